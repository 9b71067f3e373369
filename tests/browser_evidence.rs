//! Corroborating records in real headless Chromium against the real server: the administrator
//! uploads the file through the round page's form, sees a bad file refused with its line and a
//! good one imported; an evaluator reads the counts with their sources on the results page.
//! Screenshots go to `target/screenshots/`.

mod common;

use std::time::Duration;

use common::browser::{Browser, PASSWORD, ROUND, UNITS, WebServer, fixture, screenshot_dir};
use thirtyfour::prelude::*;

async fn wait_for(d: &WebDriver, css: &str) -> WebElement {
    d.query(By::Css(css))
        .wait(Duration::from_secs(15), Duration::from_millis(50))
        .first()
        .await
        .unwrap_or_else(|e| panic!("{css} did not appear: {e}"))
}

async fn sign_in(d: &WebDriver, url: &str, login: &str) {
    d.goto(format!("{url}/login")).await.unwrap();
    wait_for(d, "input[name=login]")
        .await
        .send_keys(login)
        .await
        .unwrap();
    d.find(By::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    d.find(By::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(d, "header nav .who").await;
}

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
