//! The report printed from real headless Chromium (`--print-to-pdf`), read back with poppler
//! (`pdfinfo`, `pdftotext -layout`): every feedback page of a 30-unit round — including the unit
//! with the longest name and the most flags — prints on exactly one A4 page, with nothing left
//! of the hidden download links; the round report's 14-column results table prints on landscape
//! A4 pages with its last column and every unit name whole.

use crate::common::charts_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use charts_support::{Spec, inputs};
use sheping::domain::scoring::{Flag, OnsiteData, score_round};
use sheping::report::{self, PlanSeed, ReportData, ReportOptions};

const CHROMIUM: &str = "/usr/bin/chromium";
/// Longer than any unit name of the 2022 round.
const LONGEST: &str = "汉滨区城乡基础设施建设与公共服务保障工作领导小组办公室";
const LONG_SECTOR: &str = "上年度考核优秀单位所在系统";
/// The unit given the longest name, no complete interview and no on-site data.
const WORST: usize = 7;

use crate::chromium::BROWSER as CHROME;

/// A 30-unit round without comments, written once as a report.
/// Kept under `target/screenshots/report-print/` with the PDFs, for a reviewer.
fn report_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let spec = Spec {
            zero_units: vec![WORST],
            ..Spec::default()
        };
        let mut i = inputs(&spec);
        i.units[WORST].name = LONGEST.to_string();
        i.units[WORST].onsite = OnsiteData::None;
        // One interview too short to trust: listed with its time among the suspicious ones.
        i.interviews[0].duration_secs = Some(20.0);
        let scored = score_round(&i.survey, &i.units, &i.interviews, &i.options).unwrap();
        let mut r = charts_support::document(&spec, i, scored);
        for u in r.doc.units.iter_mut().skip(20) {
            u.sector = LONG_SECTOR.to_string();
        }
        let worst = &r.doc.units[WORST];
        assert_eq!(worst.unit, LONGEST);
        for f in [Flag::FewCompletes, Flag::OnsiteMissing, Flag::LowResponse] {
            assert!(worst.flags.contains(&f), "{:?}", worst.flags);
        }
        let data = ReportData {
            comments: vec![Vec::new(); r.doc.units.len()],
            doc: r.doc,
            interviews: r.interviews,
            days: r.days,
            field_period: None,
            plans: vec![PlanSeed {
                kind: "generate".into(),
                seed: 2022,
                algorithm: "test".into(),
                created: "2022-10-31 09:00:00".into(),
            }],
            with_comments: false,
            panel_size: 45,
            previous: None,
            generated_at: "2022-12-01 09:00".into(),
        };
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target")));
        let out = target.join("screenshots/report-print");
        let _ = std::fs::remove_dir_all(&out);
        let opts = ReportOptions {
            skip_png: true,
            ..ReportOptions::default()
        };
        report::write(&data, &opts, None, false, &out).unwrap();
        out
    })
}

fn tool(bin: &str) -> Command {
    assert!(
        Command::new("sh")
            .args(["-c", &format!("command -v {bin}")])
            .output()
            .unwrap()
            .status
            .success(),
        "{bin} is missing: install Debian's poppler-utils (bash tests/run.sh does)"
    );
    Command::new(bin)
}

/// Prints `page` to a PDF beside it, as a person would from Chromium (no header or footer).
fn print(page: &Path, pdf: &Path) {
    assert!(Path::new(CHROMIUM).exists(), "install Debian's chromium");
    let profile = tempfile::tempdir().unwrap();
    let _one = CHROME.blocking_lock();
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-pdf-header-footer",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(pdf.exists(), "no PDF for {}", page.display());
}

/// Each page's size in points, from `pdfinfo`.
fn page_sizes(pdf: &Path) -> Vec<(f64, f64)> {
    let out = tool("pdfinfo")
        .args(["-f", "1", "-l", "9999"])
        .arg(pdf)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let pages: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .expect("pdfinfo prints Pages:")
        .trim()
        .parse()
        .unwrap();
    // "Page    2 size: 841.92 x 594.96 pts (A4)"
    let sizes: Vec<(f64, f64)> = text
        .lines()
        .filter(|l| l.starts_with("Page ") && l.contains(" size:"))
        .map(|l| {
            let dims: Vec<f64> = l
                .split("size:")
                .nth(1)
                .unwrap()
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect();
            (dims[0], dims[1])
        })
        .collect();
    assert_eq!(sizes.len(), pages, "{text}");
    sizes
}

fn is_a4(w: f64, h: f64) -> bool {
    (w - 595.0).abs() < 1.5 && (h - 842.0).abs() < 1.5
}

fn pdf_text(pdf: &Path) -> String {
    let out = tool("pdftotext")
        .arg("-layout")
        .arg(pdf)
        .arg("-")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_feedback_page_prints_on_one_a4_page() {
    let dir = report_dir().join("feedback");
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "html"))
        .collect();
    pages.sort();
    assert_eq!(pages.len(), 30);
    let pdfs = report_dir().join("pdf");
    std::fs::create_dir_all(&pdfs).unwrap();
    let mut seen_worst = false;
    for (n, page) in pages.iter().enumerate() {
        let pdf = pdfs.join(format!("feedback-{n:02}.pdf"));
        print(page, &pdf);
        let sizes = page_sizes(&pdf);
        assert_eq!(
            sizes.len(),
            1,
            "{} prints on {} pages",
            page.display(),
            sizes.len()
        );
        let (w, h) = sizes[0];
        assert!(
            is_a4(w, h),
            "{}: {w} × {h} pt is not portrait A4",
            page.display()
        );
        let text = pdf_text(&pdf);
        // Headings may wrap after a long unit name: compare without the line breaks.
        let squeezed: String = text.split_whitespace().collect();
        // The page as promised: title, scores, dimensions, charts and notes, all on it.
        for part in [
            "社会评价反馈意见",
            "一、得分与排名",
            "二、各维度评价",
            "三、与全部参评单位对比",
            "由 sheping(社评)生成",
        ] {
            let part: String = part.split_whitespace().collect();
            assert!(
                squeezed.contains(&part),
                "{}: {part} missing",
                page.display()
            );
        }
        // Nothing left of the download links hidden in print.
        for leftover in ["图件下载", "SVG", "PNG", "返回总报告"] {
            assert!(
                !text.contains(leftover),
                "{}: prints {leftover:?}",
                page.display()
            );
        }
        if squeezed.contains("完成数不足") && squeezed.contains("尚无现场评价") {
            seen_worst |= squeezed.contains(LONGEST);
        }
    }
    assert!(
        seen_worst,
        "the unit with the longest name and all three flags was printed"
    );
}

#[test]
fn results_table_prints_on_landscape_a4_whole() {
    let index = report_dir().join("index.html");
    let html = std::fs::read_to_string(&index).unwrap();
    // Times read like every other time of the report: local, no "T", no offset.
    assert!(
        html.contains("可疑访问(1 份)"),
        "the short interview is listed"
    );
    assert!(!html.contains("T10:00:00"), "a raw ISO time in the report");
    assert!(
        html.contains(" 10:00:00</td>"),
        "the interview's local time"
    );
    let pdf = report_dir().join("index.pdf");
    print(&index, &pdf);
    let sizes = page_sizes(&pdf);
    assert!(
        sizes.iter().all(|&(w, h)| is_a4(w, h) || is_a4(h, w)),
        "{sizes:?}"
    );
    assert!(
        sizes.iter().any(|&(w, h)| is_a4(h, w)),
        "the results table has a landscape page: {sizes:?}"
    );
    assert!(
        sizes.iter().any(|&(w, h)| is_a4(w, h)),
        "the rest stays portrait: {sizes:?}"
    );
    let text = pdf_text(&pdf);
    // The table's header row, with its last columns, on one line.
    let header = text
        .lines()
        .find(|l| l.contains("名次") && l.contains("得分95%区间"))
        .unwrap_or_else(|| panic!("no header line in:\n{text}"));
    for col in ["单位", "系统", "满意率", "后3名概率", "提示"] {
        assert!(header.contains(col), "header cut: {header}");
    }
    assert!(
        header.trim_end().ends_with("提示"),
        "the last column is the last: {header}"
    );
    let table: Vec<&str> = text
        .split("二、结果与排名")
        .nth(1)
        .unwrap()
        .split("社会评价得分排名")
        .next()
        .unwrap()
        .lines()
        .collect();
    // Every unit's name whole on a line of the table (the longest at least its first nine
    // characters together: it may wrap, but never one character a line).
    let mut names = 0;
    for part in html.split("<td class=\"name\"><a href=\"").skip(1) {
        let name = part.split('>').nth(1).unwrap().split('<').next().unwrap();
        let head: String = name.chars().take(9).collect();
        let want = if name.chars().count() <= 16 {
            name
        } else {
            head.as_str()
        };
        assert!(
            table.iter().any(|l| l.contains(want)),
            "{want} is not whole in the printed table:\n{}",
            table.join("\n")
        );
        names += 1;
    }
    assert_eq!(names, 30);
    // A column squeezed to a character a line would leave lines of single characters.
    let single = table
        .iter()
        .filter(|l| {
            let t = l.trim();
            t.chars().count() == 1 && !t.chars().all(|c| c.is_ascii_digit())
        })
        .count();
    assert_eq!(single, 0, "{}", table.join("\n"));
    // The long sector name wraps at most into lines of five characters or more.
    let head: String = LONG_SECTOR.chars().take(5).collect();
    assert!(
        table.iter().any(|l| l.contains(&head)),
        "{}",
        table.join("\n")
    );
}
