//! The report in real headless Chromium (Debian's chromium + chromedriver, never a downloaded
//! browser): `index.html` and a feedback page open from disk with no broken image, no console
//! error and nothing fetched; every chart is drawn; the feedback page fits the A4 text width;
//! printed to PDF it has A4 pages (MediaBox 595 × 842 pt). Screenshots and the PDF go to
//! `target/screenshots/` for a reviewer.

use crate::common::charts_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sheping::report::{self, PlanSeed, ReportData, ReportOptions};
use thirtyfour::LoggingPrefsLogLevel;
use thirtyfour::prelude::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

use crate::chromium::BROWSER;

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target")));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A 30-unit round with on-site data and comments, written once as a report.
fn report_dir() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let r = charts_support::round(&charts_support::Spec::default());
        let comments = (0..r.doc.units.len())
            .map(|u| {
                if u % 3 == 0 {
                    vec![
                        "办事流程比以前简化了,希望继续保持。".to_string(),
                        "建议在网上公开办理进度,电话 [号码] 经常占线。".to_string(),
                    ]
                } else {
                    Vec::new()
                }
            })
            .collect();
        let data = ReportData {
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
            comments,
            with_comments: true,
            panel_size: 45,
            generated_at: "2022-12-01 09:00".into(),
            previous: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("report");
        report::write(&data, &ReportOptions::default(), None, false, &out).unwrap();
        (dir, out)
    })
    .1
}

fn first_feedback_page() -> PathBuf {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(report_dir().join("feedback"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    pages.sort();
    pages.remove(0)
}

fn file_url(p: &Path) -> String {
    format!("file://{}", p.display())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// chromedriver on a free port and a headless Chromium that records the console.
struct Browser {
    driver: Option<WebDriver>,
    chromedriver: std::process::Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        for bin in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: install Debian's chromium and chromium-driver (bash tests/run.sh does)"
            );
        }
        let port = free_port();
        let chromedriver = {
            use std::os::unix::process::CommandExt;
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap()
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(CHROMIUM).unwrap();
        for arg in [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-extensions",
            "--hide-scrollbars",
            "--lang=zh-CN",
            "--window-size=1280,900",
            &format!("--user-data-dir={}", profile.path().display()),
        ] {
            caps.add_arg(arg).unwrap();
        }
        caps.set_browser_log_level(LoggingPrefsLogLevel::All)
            .unwrap();
        let driver = WebDriver::new(format!("http://127.0.0.1:{port}"), caps)
            .await
            .expect("start Chromium through chromedriver");
        Browser {
            driver: Some(driver),
            chromedriver,
            _profile: profile,
        }
    }

    fn d(&self) -> &WebDriver {
        self.driver.as_ref().unwrap()
    }

    async fn quit(mut self) {
        if let Some(d) = self.driver.take() {
            let _ = d.quit().await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver leads its own process group: end it and the Chromium it started.
        let pid = self.chromedriver.id() as i32;
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{pid}")])
            .status();
        let _ = self.chromedriver.wait();
    }
}

/// What a loaded page reports about itself.
#[derive(Debug, serde::Deserialize)]
struct PageState {
    broken_images: Vec<String>,
    images: usize,
    /// Width × height of every inline chart as laid out.
    svgs: Vec<[f64; 2]>,
    /// Resources the page fetched (a self-contained page fetches none).
    resources: Vec<String>,
    scripts: usize,
    scroll_width: f64,
    inner_width: f64,
    scroll_height: f64,
    /// Whether the CJK font the charts name is available to the page.
    cjk_font: bool,
}

const STATE_JS: &str = r#"
const imgs = Array.from(document.images);
return {
  broken_images: imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src.slice(0, 80)),
  images: imgs.length,
  svgs: Array.from(document.querySelectorAll('svg')).map(s => { const r = s.getBoundingClientRect(); return [r.width, r.height]; }),
  resources: performance.getEntriesByType('resource').map(e => e.name.slice(0, 120)),
  scripts: document.scripts.length,
  scroll_width: document.documentElement.scrollWidth,
  inner_width: window.innerWidth,
  scroll_height: document.documentElement.scrollHeight,
  cjk_font: document.fonts.check('12px "WenQuanYi Micro Hei"'),
};
"#;

async fn open(d: &WebDriver, page: &Path) -> PageState {
    d.goto(file_url(page)).await.unwrap();
    let v = d.execute(STATE_JS, vec![]).await.unwrap();
    v.convert().unwrap()
}

/// Console entries of the page so far (errors, warnings and any message).
async fn console(d: &WebDriver) -> Vec<String> {
    d.browser_log()
        .await
        .unwrap()
        .into_iter()
        .map(|e| format!("{} {}", e.level, e.message))
        .collect()
}

/// A screenshot of the whole page at `width`.
async fn full_page_shot(d: &WebDriver, width: u32, name: &str) -> PathBuf {
    d.set_window_rect(0, 0, width, 900).await.unwrap();
    let h: f64 = d
        .execute("return document.documentElement.scrollHeight;", vec![])
        .await
        .unwrap()
        .convert()
        .unwrap();
    d.set_window_rect(0, 0, width, (h as u32).clamp(600, 16_000))
        .await
        .unwrap();
    let path = screenshot_dir().join(name);
    d.screenshot(&path).await.unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() > 20_000, "{name}");
    path
}

fn fonts_installed() -> bool {
    Command::new("fc-list")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .to_lowercase()
                .contains("wenquanyi")
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread")]
async fn index_and_feedback_page_render_cleanly() {
    let index = report_dir().join("index.html");
    let feedback = first_feedback_page();
    let _one = BROWSER.lock().await;
    let b = Browser::start().await;
    let d = b.d();

    // The detector works: a page with a broken image and a console error is caught.
    let bad = tempfile::tempdir().unwrap();
    let bad_page = bad.path().join("bad.html");
    std::fs::write(
        &bad_page,
        "<!DOCTYPE html><img src=\"missing.png\"><script>console.error('boom')</script>",
    )
    .unwrap();
    let s = open(d, &bad_page).await;
    assert_eq!(s.broken_images.len(), 1, "{s:?}");
    let log = console(d).await;
    assert!(log.iter().any(|l| l.contains("boom")), "{log:?}");

    let s = open(d, &index).await;
    assert!(s.broken_images.is_empty(), "{s:?}");
    assert_eq!(s.scripts, 0, "the report runs no script");
    assert!(
        s.resources.is_empty(),
        "self-contained, fetched {:?}",
        s.resources
    );
    assert_eq!(s.svgs.len(), 5, "{s:?}");
    for [w, h] in &s.svgs {
        assert!(*w >= 600.0 && *h >= 150.0, "chart drawn at {w}×{h}");
    }
    if fonts_installed() {
        assert!(s.cjk_font, "the charts' CJK font is used");
    }
    let log = console(d).await;
    assert!(log.is_empty(), "console: {log:?}");
    let title = d.title().await.unwrap();
    assert!(title.contains("社会评价结果报告"), "{title}");
    full_page_shot(d, 1280, "report-index.png").await;

    let s = open(d, &feedback).await;
    assert!(s.broken_images.is_empty() && s.images == 0, "{s:?}");
    assert_eq!(s.scripts, 0);
    assert!(s.resources.is_empty(), "fetched {:?}", s.resources);
    assert_eq!(s.svgs.len(), 3, "{s:?}");
    let log = console(d).await;
    assert!(log.is_empty(), "console: {log:?}");
    // The back link leads to the index, which opens.
    d.find(By::LinkText("返回总报告"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(
        d.current_url()
            .await
            .unwrap()
            .as_str()
            .ends_with("/index.html")
    );
    d.back().await.unwrap();

    // On the A4 text width (180 mm ≈ 680 CSS px) nothing sticks out sideways, even with the
    // screen's padding.
    d.set_window_rect(0, 0, 680, 1000).await.unwrap();
    let s = open(d, &feedback).await;
    assert!(
        s.scroll_width <= s.inner_width + 0.5,
        "feedback page overflows the A4 width: {} > {}",
        s.scroll_width,
        s.inner_width
    );
    for [w, _] in &s.svgs {
        assert!(*w <= s.inner_width, "chart wider than the page");
    }
    assert!(s.scroll_height > 1000.0);
    full_page_shot(d, 794, "report-feedback.png").await;
    b.quit().await;
}

/// `(pages, MediaBoxes)` of a PDF as Chromium writes it (page objects in plain text).
fn pdf_pages(pdf: &[u8]) -> (usize, Vec<[f64; 4]>) {
    let text = String::from_utf8_lossy(pdf);
    let pages = text.matches("/Type /Page").count() - text.matches("/Type /Pages").count();
    let boxes = text
        .split("/MediaBox [")
        .skip(1)
        .map(|s| {
            let nums: Vec<f64> = s
                .split(']')
                .next()
                .unwrap()
                .split_whitespace()
                .map(|n| n.parse().unwrap())
                .collect();
            [nums[0], nums[1], nums[2], nums[3]]
        })
        .collect();
    (pages, boxes)
}

#[test]
fn feedback_page_prints_on_a4() {
    assert!(Path::new(CHROMIUM).exists(), "install Debian's chromium");
    let feedback = first_feedback_page();
    let profile = tempfile::tempdir().unwrap();
    let pdf = screenshot_dir().join("report-feedback.pdf");
    let _ = std::fs::remove_file(&pdf);
    let _one = BROWSER.blocking_lock();
    let out = Command::new(CHROMIUM)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-pdf-header-footer",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(file_url(&feedback))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF-"));
    let (pages, boxes) = pdf_pages(&bytes);
    // Scores, dimensions, three charts and comments: at most three A4 pages.
    assert!((1..=3).contains(&pages), "{pages} pages");
    assert_eq!(boxes.len(), pages, "one MediaBox per page");
    for b in boxes {
        assert_eq!(b[0], 0.0);
        assert_eq!(b[1], 0.0);
        assert!((b[2] - 595.0).abs() < 1.0, "width {} pt is not A4", b[2]);
        assert!((b[3] - 842.0).abs() < 1.0, "height {} pt is not A4", b[3]);
    }
}
