//! The console serves the report's charts as SVG to results readers (operator effects only to
//! statisticians and admins) and the whole report as a zip to statisticians and admins.

use crate::common;

use common::browser::Web;
use common::{Server, Sheping};

#[tokio::test(flavor = "multi_thread")]
async fn charts_and_report_zip_by_role() {
    let sp = Sheping::new();
    let server = Server::start(&sp, &["demo"]);
    let eval = Web::new(&server.url);
    assert_eq!(eval.sign_in("eval", "demo-eval-2022").await.status, 303);
    let page = eval.get("/rounds/2022/results").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("/rounds/2022/charts/ranking.svg"));
    assert!(
        !page.body.contains("operators.svg"),
        "evaluators get no operator chart"
    );
    let svg = eval.get("/rounds/2022/charts/ranking.svg").await;
    assert_eq!(svg.status, 200);
    assert!(
        svg.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("image/svg+xml")
    );
    assert!(
        svg.body.starts_with("<svg") || svg.body.contains("<svg"),
        "an SVG document"
    );
    assert!(svg.body.contains("社会评价"), "Chinese labels in the SVG");
    assert_eq!(
        eval.get("/rounds/2022/charts/operators.svg").await.status,
        403
    );
    assert_eq!(eval.get("/rounds/2022/report.zip").await.status, 403);
    assert_eq!(eval.get("/rounds/2022/charts/nope.svg").await.status, 404);

    let op = Web::new(&server.url);
    assert_eq!(op.sign_in("op1", "demo-op1-2022").await.status, 303);
    assert_eq!(op.get("/rounds/2022/charts/ranking.svg").await.status, 403);

    let stat = Web::new(&server.url);
    assert_eq!(stat.sign_in("stat", "demo-stat-2022").await.status, 303);
    assert_eq!(
        stat.get("/rounds/2022/charts/operators.svg").await.status,
        200
    );
    let zip = stat.get("/rounds/2022/report.zip").await;
    assert_eq!(zip.status, 200);
    assert_eq!(zip.headers["content-type"], "application/zip");
    assert!(zip.body.starts_with("PK"), "a zip archive");
    let anonymous = Web::new(&server.url);
    assert_ne!(
        anonymous
            .get("/rounds/2022/charts/ranking.svg")
            .await
            .status,
        200
    );
}

/// The demo round with one sector renamed to a long name ("上年度考核优秀单位所在系统"), served.
fn demo_with_long_sector(sp: &Sheping) -> Server {
    // Seed the demo round, then serve the same file with the sector renamed.
    drop(Server::start(sp, &["demo"]));
    let renamed = sp
        .sql()
        .execute(
            "UPDATE units SET sector = ?1 WHERE sector = '上年度考核靠后'",
            [LONG_SECTOR],
        )
        .unwrap();
    assert!(renamed > 0, "the demo has units of that sector");
    Server::start(sp, &["serve"])
}

const LONG_SECTOR: &str = "上年度考核优秀单位所在系统";

/// Every chart of the results page fills its box at any window width, and no text of any chart
/// lies outside the chart (checked on the SVG as the browser lays it out); the ranking prints
/// the long sector name whole.
#[tokio::test(flavor = "multi_thread")]
async fn results_charts_scale_and_clip_no_label() {
    use crate::chromium::Browser;
    use thirtyfour::prelude::*;

    let sp = Sheping::new();
    let server = demo_with_long_sector(&sp);
    let b = Browser::start(true).await;
    let d = b.d();
    d.goto(format!("{}/login", server.url)).await.unwrap();
    d.find(By::Css("input[name=login]"))
        .await
        .unwrap()
        .send_keys("eval")
        .await
        .unwrap();
    d.find(By::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys("demo-eval-2022")
        .await
        .unwrap();
    d.find(By::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    d.query(By::Css("header nav .who"))
        .wait(
            std::time::Duration::from_secs(15),
            std::time::Duration::from_millis(50),
        )
        .first()
        .await
        .unwrap();

    // The charts as laid out: each image's width and its figure's content width.
    const LAID_OUT: &str = r#"
const imgs = Array.from(document.querySelectorAll('.charts figure img'));
imgs.forEach(i => { i.loading = 'eager'; });
return Promise.all(imgs.map(i => i.decode().catch(() => null))).then(() => imgs.map(i => {
  const f = i.parentElement, cs = getComputedStyle(f);
  const box = f.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
  return [i.getAttribute('src'), i.getBoundingClientRect().width, box, i.naturalWidth];
}));
"#;
    let mut widths: Vec<Vec<f64>> = Vec::new();
    let mut charts: Vec<String> = Vec::new();
    for width in [800u32, 1366] {
        d.set_window_rect(0, 0, width, 900).await.unwrap();
        d.goto(format!("{}/rounds/2022/results", server.url))
            .await
            .unwrap();
        let laid: Vec<(String, f64, f64, f64)> = d
            .execute(LAID_OUT, vec![])
            .await
            .unwrap()
            .convert()
            .unwrap();
        assert_eq!(laid.len(), 4, "{laid:?}");
        let mut these = Vec::new();
        for (src, w, boxw, natural) in &laid {
            assert!(*natural > 0.0, "{src} did not load");
            assert!(
                (w - boxw).abs() <= 1.0,
                "{src} is {w} px wide in a {boxw} px box at window width {width}"
            );
            these.push(*w);
        }
        charts = laid.into_iter().map(|(src, ..)| src).collect();
        widths.push(these);
    }
    for (narrow, wide) in widths[0].iter().zip(&widths[1]) {
        assert!(
            wide > &(narrow + 200.0),
            "charts follow the window: {widths:?}"
        );
    }
    assert!(
        widths[1].iter().all(|w| *w > 700.0),
        "no fixed 680 px: {widths:?}"
    );

    // Each chart's own document: every text's box inside the chart's box (the viewBox, and the
    // drawn rectangle), at two widths of the browser.
    const TEXTS: &str = r#"
const svg = document.documentElement;
const vb = svg.viewBox.baseVal, r = svg.getBoundingClientRect();
const out = [];
for (const t of svg.querySelectorAll('text')) {
  const b = t.getBBox(), c = t.getBoundingClientRect();
  const inside = b.x >= vb.x - 0.5 && b.y >= vb.y - 0.5
    && b.x + b.width <= vb.x + vb.width + 0.5 && b.y + b.height <= vb.y + vb.height + 0.5
    && c.left >= r.left - 0.5 && c.top >= r.top - 0.5
    && c.right <= r.right + 0.5 && c.bottom <= r.bottom + 0.5;
  out.push([t.textContent.trim(), inside, [b.x, b.y, b.width, b.height], [vb.width, vb.height]]);
}
return out;
"#;
    for src in &charts {
        d.goto(format!("{}{src}", server.url)).await.unwrap();
        type Text = (String, bool, [f64; 4], [f64; 2]);
        let texts: Vec<Text> = d.execute(TEXTS, vec![]).await.unwrap().convert().unwrap();
        assert!(texts.len() > 10, "{src}: {} texts", texts.len());
        for (text, inside, bbox, vb) in &texts {
            assert!(
                inside,
                "{src}: “{text}” at {bbox:?} lies outside the chart {vb:?}"
            );
        }
        if src.ends_with("ranking.svg") {
            // In the legend and beside each of the sector's units.
            assert!(
                texts.iter().filter(|(t, ..)| t == LONG_SECTOR).count() > 1,
                "the ranking names the sector whole: {:?}",
                texts.iter().map(|t| &t.0).collect::<Vec<_>>()
            );
            assert!(
                !texts
                    .iter()
                    .any(|(t, ..)| t.starts_with("上年度考核") && t.ends_with('…')),
                "no sector name cut"
            );
        }
    }
    b.quit().await;
}
