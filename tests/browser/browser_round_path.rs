//! The round's path on a phone-sized screen (issue 24), in real headless Chromium against the
//! real server: every stage readable without scrolling sideways, for the admin and the
//! statistician. Screenshots go to `target/screenshots/`.

use crate::common;

use crate::chromium::{BROWSER, Browser, screenshot_dir, sign_in, wait_for};
use common::browser::{ROUND, WebServer, fixture};
use thirtyfour::prelude::*;

async fn js(d: &WebDriver, script: &str) -> serde_json::Value {
    d.execute(script, vec![]).await.unwrap().json().clone()
}

/// (the path's stages, those whose box reaches past the viewport's right edge, the page's
/// sideways overflow of the path section in CSS pixels).
async fn fit(d: &WebDriver) -> (i64, i64, f64) {
    let v = js(
        d,
        "const w = document.documentElement.clientWidth;
         const stages = [...document.querySelectorAll('#round-path li.stage')];
         const out = stages.filter(li => [...li.children].some(c => c.getBoundingClientRect().right > w + 1)).length;
         const sec = document.getElementById('round-path');
         return [stages.length, out, sec.scrollWidth - sec.clientWidth];",
    )
    .await;
    let a: Vec<f64> = serde_json::from_value(v).unwrap();
    (a[0] as i64, a[1] as i64, a[2])
}

#[tokio::test(flavor = "multi_thread")]
async fn the_round_path_fits_a_narrow_screen() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let _one = BROWSER.lock().await;
    let b = Browser::start(false).await;
    let d = b.d();
    sign_in(d, &server.url, "admin").await;
    d.goto(format!("{}/admin/rounds/{ROUND}", server.url))
        .await
        .unwrap();
    wait_for(d, "#round-path").await;
    d.screenshot(&screenshot_dir().join("round-path-admin-wide.png"))
        .await
        .unwrap();
    d.set_window_rect(0, 0, 360, 740).await.unwrap();
    let width = js(d, "return document.documentElement.clientWidth")
        .await
        .as_i64()
        .unwrap();
    assert!(width <= 400, "the window is narrow: {width}");
    d.goto(format!("{}/admin/rounds/{ROUND}", server.url))
        .await
        .unwrap();
    wait_for(d, "#round-path").await;
    let (stages, out, overflow) = fit(d).await;
    assert_eq!(stages, 10);
    assert_eq!(out, 0, "stages reach past the right edge at {width}px");
    assert!(overflow <= 1.0, "the path scrolls sideways by {overflow}px");
    // What is missing is on screen, not cut off.
    let missing = d
        .find(By::Css("#stage-onsite .stage-missing"))
        .await
        .unwrap();
    assert!(missing.is_displayed().await.unwrap());
    assert_eq!(missing.text().await.unwrap(), "3 个单位尚无现场评价数据");
    d.screenshot(&screenshot_dir().join("round-path-admin-360.png"))
        .await
        .unwrap();

    // The statistician's read-only page, same width.
    d.delete_all_cookies().await.unwrap();
    sign_in(d, &server.url, "stat").await;
    d.goto(format!("{}/rounds/{ROUND}", server.url))
        .await
        .unwrap();
    wait_for(d, "#round-path").await;
    let (stages, out, overflow) = fit(d).await;
    assert_eq!(stages, 10);
    assert_eq!(out, 0);
    assert!(overflow <= 1.0, "{overflow}");
    let forms = js(d, "return document.querySelectorAll('main form').length").await;
    assert_eq!(forms, 0, "nothing to submit on the read-only path");
    d.screenshot(&screenshot_dir().join("round-path-statistician-360.png"))
        .await
        .unwrap();
    b.quit().await;
}
