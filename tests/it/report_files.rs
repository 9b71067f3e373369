//! `sheping report` on the demo round (real binary, real SQLite file): what it writes, that
//! the pages are self-contained and link only to files that exist, that no representative's
//! name or number appears anywhere, comments only when asked for, one unit alone, the zip,
//! and the audit entry.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{self, Sheping};

struct Demo {
    sp: Sheping,
}

/// The demo round (30 units, simulated calls with comments), made once (it takes a while)
/// and copied for each test: the SQLite file by `sheping backup`, a PostgreSQL database as a
/// template.
fn demo() -> Demo {
    static ORIGINAL: std::sync::OnceLock<Sheping> = std::sync::OnceLock::new();
    let original = ORIGINAL.get_or_init(|| {
        let sp = Sheping::new();
        let store = sp.store();
        assert!(sheping::demo::ensure_demo(store.as_ref()).unwrap());
        drop(store);
        sp
    });
    if let Some(template) = &original.pg {
        let mut sp = Sheping::new_sqlite();
        sp.pg =
            Some(common::pg::copy_of(&common::test_name(), template).expect("the test cluster"));
        return Demo { sp };
    }
    let sp = Sheping::new();
    let backup = Command::new(env!("CARGO_BIN_EXE_sheping"))
        .arg("--db")
        .arg(&original.db)
        .args(["backup", "--out"])
        .arg(&sp.db)
        .env_remove("SHEPING_DB")
        .output()
        .unwrap();
    assert!(backup.status.success(), "{backup:?}");
    Demo { sp }
}

impl Demo {
    fn sheping(&self, args: &[&str]) -> String {
        self.sp.ok(args)
    }

    fn out(&self, name: &str) -> PathBuf {
        self.sp.dir.path().join(name)
    }

    /// Names and phone numbers of every representative (as stored and as digits only).
    fn personal_data(&self) -> Vec<String> {
        let store = self.sp.store();
        let round = store.round("2022").unwrap();
        let mut out = Vec::new();
        for m in store.members(round.id, None).unwrap() {
            out.extend(m.name);
            for p in [m.phone, m.phone_alt].into_iter().flatten() {
                out.push(p.chars().filter(char::is_ascii_digit).collect());
                out.push(p);
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// The first of `needles` found in `text`. Needles are names (2–4 characters) and phone
/// numbers (digits, maybe with `-`); every window of the text of such a length is looked up,
/// so a scan costs the text's length, not its length times the number of needles.
fn find_any<'a>(text: &str, needles: &'a std::collections::HashSet<String>) -> Option<&'a str> {
    let chars: Vec<char> = text.chars().collect();
    let longest = needles.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    let mut window = String::new();
    for i in 0..chars.len() {
        window.clear();
        for &c in chars.iter().skip(i).take(longest) {
            window.push(c);
            if let Some(n) = needles.get(&window) {
                return Some(n.as_str());
            }
        }
    }
    None
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Every `href="…"` and `src="…"` of a page.
fn links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["href=\"", "src=\""] {
        for part in html.split(attr).skip(1) {
            out.push(part.split('"').next().unwrap().to_string());
        }
    }
    out
}

/// A page is self-contained: no script, no external stylesheet or font, nothing fetched;
/// every local link resolves to a file of the report.
fn check_page(page: &Path) {
    let html = std::fs::read_to_string(page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"), "{}", page.display());
    // The SVG namespace is a name, not an address that is fetched.
    let html = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    for banned in [
        "<script", "<link", "@import", "url(", "http://", "https://", "<img",
    ] {
        assert!(
            !html.contains(banned),
            "{}: contains {banned}",
            page.display()
        );
    }
    for l in links(&html) {
        if let Some(id) = l.strip_prefix('#') {
            assert!(
                html.contains(&format!("id=\"{id}\"")),
                "{}: anchor {l}",
                page.display()
            );
            continue;
        }
        let target = page.parent().unwrap().join(percent_decode(&l));
        assert!(target.exists(), "{}: broken link {l}", page.display());
    }
}

#[test]
fn round_report_writes_pages_charts_and_exports() {
    let d = demo();
    let out = d.out("report");
    let stdout = d.sheping(&[
        "report",
        "--round",
        "2022",
        "--out",
        out.to_str().unwrap(),
        "--zip",
    ]);
    assert!(stdout.contains("已写出报告"), "{stdout}");
    let all = files(&out);
    let rel: BTreeSet<String> = all
        .iter()
        .map(|p| p.strip_prefix(&out).unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(rel.contains("index.html"));
    for chart in [
        "ranking",
        "distribution",
        "dispositions",
        "completes-per-day",
        "operators",
    ] {
        assert!(rel.contains(&format!("charts/{chart}.svg")), "{chart}");
        assert!(rel.contains(&format!("charts/{chart}.png")), "{chart}");
    }
    let feedback: Vec<&PathBuf> = all
        .iter()
        .filter(|p| p.parent().unwrap().ends_with("feedback"))
        .collect();
    assert_eq!(feedback.len(), 30, "one feedback page per unit");
    assert!(rel.contains("feedback/001-汉滨区教育体育局.html"));
    assert_eq!(
        rel.iter()
            .filter(|r| r.starts_with("charts/units/") && r.ends_with(".png"))
            .count(),
        90,
        "three charts per unit"
    );
    for kind in [
        "scores",
        "distributions",
        "dispositions",
        "responses",
        "attempts",
        "codebook",
    ] {
        let csv = out.join(format!("csv/2022-{kind}.csv"));
        let bytes = std::fs::read(&csv).unwrap();
        assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "{kind}: UTF-8 with BOM");
    }
    assert!(out.join("csv/2022-responses.sps").exists());

    // The index: method, results, charts inline, quality, links that resolve.
    let index = out.join("index.html");
    check_page(&index);
    let html = std::fs::read_to_string(&index).unwrap();
    for expect in [
        "2022年度履职评估(演示数据) · 社会评价结果报告",
        "调查与计分方法",
        "职能职责履行",
        "随机化种子",
        "bootstrap 重抽样",
        "结果与排名",
        "RR1",
        "质量检查",
        "话务员",
        "提示事项",
        "汉滨区林业站",
    ] {
        assert!(html.contains(expect), "index lacks {expect}");
    }
    assert_eq!(html.matches("<svg").count(), 5, "five charts inline");
    // Every unit's feedback page is linked from the index.
    for p in &feedback {
        check_page(p);
        let name = p.file_name().unwrap().to_str().unwrap();
        assert!(
            html.contains(&sheping_href(&format!("feedback/{name}"))),
            "index links {name}"
        );
    }
    let page = std::fs::read_to_string(out.join("feedback/001-汉滨区教育体育局.html")).unwrap();
    for expect in [
        "汉滨区教育体育局 社会评价反馈意见",
        "电话调查得分",
        "社会评价得分",
        "排名",
        "95%区间",
        "各维度评价",
        "返回总报告",
    ] {
        assert!(page.contains(expect), "feedback page lacks {expect}");
    }
    assert_eq!(page.matches("<svg").count(), 3, "three charts inline");
    assert!(
        !page.contains("四、意见建议"),
        "no comments unless asked for"
    );

    // No representative's name or number anywhere in the report.
    let personal: std::collections::HashSet<String> = d.personal_data().into_iter().collect();
    assert!(personal.len() > 1000);
    for f in &all {
        let bytes = std::fs::read(f).unwrap();
        if f.extension().is_some_and(|e| e == "png") {
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        if let Some(p) = find_any(&text, &personal) {
            panic!("{} contains personal data {p:?}", f.display());
        }
    }

    // The zip holds the same files under one folder.
    let zip_path = d.out("report.zip");
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    assert_eq!(zip.len(), all.len());
    let mut index_in_zip = String::new();
    zip.by_name("report-2022/index.html")
        .unwrap()
        .read_to_string(&mut index_in_zip)
        .unwrap();
    assert_eq!(index_in_zip, html);

    // The report is in the audit log.
    let store = d.sp.store();
    let entries = store.audit_entries(Some("2022")).unwrap();
    assert!(
        entries
            .iter()
            .any(|e| format!("{e:?}").contains("report.write")),
        "audited"
    );
}

fn sheping_href(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[test]
fn comments_appear_masked_when_asked_for() {
    let d = demo();
    // A respondent who names themself and gives their number in the comment.
    let (name, phone): (String, String) = {
        let db = d.sp.sql();
        let (attempt, name, phone): (i64, String, String) = db
            .query_row(
                "SELECT a.id, m.name, m.phone FROM attempts a JOIN members m ON m.id = a.member_id
                 WHERE a.outcome = 'complete' AND m.phone NOT LIKE '0%' ORDER BY a.id LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        db.execute(
            "UPDATE attempts SET comment = ?1 WHERE id = ?2",
            crate::params![
                format!("我是{name},有事打我电话 {phone},窗口服务很好"),
                attempt
            ],
        )
        .unwrap();
        (name, phone)
    };
    let out = d.out("with-comments");
    d.sheping(&[
        "report",
        "--round",
        "2022",
        "--out",
        out.to_str().unwrap(),
        "--with-comments",
        "--no-png",
    ]);
    let pages: Vec<String> = files(&out.join("feedback"))
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(pages.iter().all(|p| p.contains("四、意见建议")));
    // The demo's respondents comment on about one complete in six.
    let with = pages
        .iter()
        .filter(|p| p.contains("条),其中的姓名与电话号码已遮盖"))
        .count();
    assert!(with > 10, "{with} pages with comments");
    assert!(pages.iter().any(|p| p.contains("建议在网上公开办理进度。")));
    assert!(
        !files(&out)
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "png"))
    );
    let personal: std::collections::HashSet<String> = d.personal_data().into_iter().collect();
    for p in &pages {
        assert_eq!(find_any(p, &personal), None, "personal data in a page");
    }
    let masked = pages
        .iter()
        .find(|p| p.contains("有事打我电话"))
        .expect("the planted comment is shown");
    assert!(masked.contains("我是[姓名],有事打我电话 [号码],窗口服务很好"));
    assert!(!masked.contains(&name) && !masked.contains(&phone));
}

#[test]
fn one_unit_alone() {
    let d = demo();
    let out = d.out("one");
    let stdout = d.sheping(&[
        "report",
        "--round",
        "2022",
        "--unit",
        "汉滨区林业站",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(stdout.contains("单位反馈意见"), "{stdout}");
    let all = files(&out);
    let names: Vec<String> = all
        .iter()
        .map(|p| p.strip_prefix(&out).unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(!out.join("index.html").exists(), "{names:?}");
    assert!(
        !out.join("csv").exists(),
        "no round-wide exports for one unit"
    );
    assert_eq!(
        names.iter().filter(|n| n.starts_with("feedback/")).count(),
        1
    );
    let page = all
        .iter()
        .find(|p| p.parent().unwrap().ends_with("feedback"))
        .unwrap();
    check_page(page);
    let html = std::fs::read_to_string(page).unwrap();
    assert!(html.contains("汉滨区林业站 社会评价反馈意见"));
    assert!(!html.contains("返回总报告"));
    // Other units appear only as anonymous ticks, never by name.
    assert!(!html.contains("汉滨区教育体育局"));

    let missing = Command::new(env!("CARGO_BIN_EXE_sheping"))
        .arg("--db")
        .arg(d.sp.db_arg())
        .args([
            "report",
            "--round",
            "2022",
            "--unit",
            "不存在的单位",
            "--out",
        ])
        .arg(d.out("none"))
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("不存在的单位"));
}
