//! Corroborating records in real headless Chromium against the real server: the administrator
//! uploads the file through the round page's form, sees a bad file refused with its line and a
//! good one imported; an evaluator reads the counts with their sources on the results page.
//! The demo's comparison of 2022 with 2021 is read from the results page's link.
//! Screenshots go to `target/screenshots/`.

use crate::common;

use std::time::Duration;

use crate::chromium::{BROWSER, Browser, screenshot_dir, sign_in, sign_in_with, wait_for};
use common::browser::{ROUND, UNITS, WebServer, fixture};
use thirtyfour::prelude::*;

/// Chooses `file` in the evidence form and submits it; returns the import report's text.
async fn upload(d: &WebDriver, url: &str, file: &std::path::Path) -> String {
    d.goto(format!("{url}/admin/rounds/{ROUND}")).await.unwrap();
    let form = wait_for(d, "#evidence-form").await;
    form.find(By::Css("input[type=file]"))
        .await
        .unwrap()
        .send_keys(file.to_str().unwrap())
        .await
        .unwrap();
    form.find(By::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(d, "#import-report").await.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_uploads_evidence_and_an_evaluator_reads_it() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let _one = BROWSER.lock().await;
    let b = Browser::start(true).await;
    let d = b.d();
    sign_in(d, &server.url, "admin").await;
    let bad = sp.write(
        "bad.csv",
        format!(
            "参评单位,类别,数量,来源\n{},投诉,-2,汉审函〔2022〕31号\n",
            UNITS[0]
        )
        .as_bytes(),
    );
    let report = upload(d, &server.url, &bad).await;
    assert!(report.contains("整个文件未导入"), "{report}");
    assert!(report.contains("count"), "{report}");
    assert_eq!(sp.count("SELECT COUNT(*) FROM evidence"), 0);
    let good = sp.write(
        "good.csv",
        format!(
            "参评单位,类别,数量,业务量,来源\n{},投诉,6,1200,区行政审批服务局 汉审函〔2022〕31号\n{},信访,1,,区信访局 汉信函〔2022〕8号\n",
            UNITS[0], UNITS[2]
        )
        .as_bytes(),
    );
    let report = upload(d, &server.url, &good).await;
    assert!(report.contains("已导入 2 行"), "{report}");
    assert_eq!(sp.count("SELECT COUNT(*) FROM evidence"), 2);
    d.screenshot(&screenshot_dir().join("evidence-upload.png"))
        .await
        .unwrap();

    d.goto(format!("{}/logout", server.url)).await.unwrap();
    let eval = Browser::start(true).await;
    let e = eval.d();
    sign_in(e, &server.url, "eval").await;
    e.goto(format!("{}/rounds/{ROUND}/results", server.url))
        .await
        .unwrap();
    let section = wait_for(e, "#evidence").await;
    let text = section.text().await.unwrap();
    assert!(text.contains(UNITS[0]), "{text}");
    assert!(text.contains("5.00"), "6 per 1,200 = 5 per 1,000: {text}");
    assert!(
        text.contains("12345投诉:区行政审批服务局 汉审函〔2022〕31号"),
        "{text}"
    );
    assert!(text.contains("信访:区信访局 汉信函〔2022〕8号"), "{text}");
    e.screenshot(&screenshot_dir().join("evidence-results.png"))
        .await
        .unwrap();
    eval.quit().await;
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_evaluator_follows_the_link_to_the_comparison_with_the_previous_round() {
    let sp = common::Sheping::new();
    assert!(sp.with_store(sheping::demo::ensure_demo).unwrap());
    let server = WebServer::start(&sp, &[]);
    let _one = BROWSER.lock().await;
    let b = Browser::start(true).await;
    let d = b.d();
    sign_in_with(d, &server.url, "eval", "demo-eval-2022").await;
    d.goto(format!("{}/rounds/2022/results", server.url))
        .await
        .unwrap();
    wait_for(d, "#compare-links a").await.click().await.unwrap();
    let table = wait_for(d, "#compare").await;
    assert!(
        d.current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/rounds/2022/compare/2021")
    );
    let rows = table.find_all(By::Css("tbody tr")).await.unwrap();
    assert_eq!(rows.len(), 29);
    let marked = table
        .find_all(By::Css("tbody tr.significant"))
        .await
        .unwrap()
        .len();
    assert!(marked >= 4, "the demo's clearly changed units are marked");
    // The chart loaded as an image.
    let img = d
        .find(By::Css("img[src$='/compare/2021/chart.svg']"))
        .await
        .unwrap();
    // Lazy: scrolled into view, then given a bounded time to load (not a timed assertion).
    img.scroll_into_view().await.unwrap();
    let mut width = 0i64;
    for _ in 0..150 {
        width = d
            .execute(
                "return arguments[0].complete ? arguments[0].naturalWidth : 0;",
                vec![img.to_json().unwrap()],
            )
            .await
            .unwrap()
            .convert()
            .unwrap();
        if width > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(width > 0, "the chart rendered");
    d.screenshot(&screenshot_dir().join("compare-2022-2021.png"))
        .await
        .unwrap();
    b.quit().await;
}
