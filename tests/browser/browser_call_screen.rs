//! The call screen as operators found it (issue 19), in real headless Chromium against the real
//! server: Back after a submit, clearing after a refusal, clicks confirmed like keys, hotkeys
//! under a Chinese input method, banners and zoom, the no-script page, the answers' groups and
//! the number circles' contrast, a mistyped appointment time. Screenshots go to
//! `target/screenshots/`.

use crate::common;

use std::time::Duration;

use crate::chromium::{BROWSER, Browser, press, screenshot_dir, sign_in, wait_for};
use common::browser::{WebServer, fixture};
use thirtyfour::prelude::*;

async fn js(d: &WebDriver, script: &str) -> serde_json::Value {
    d.execute(script, vec![]).await.unwrap().json().clone()
}

async fn token(d: &WebDriver) -> String {
    wait_for(d, "input[name=token]")
        .await
        .attr("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// Signs in as op1 and claims a contact; returns its token.
async fn claim(d: &WebDriver, url: &str, javascript: bool) -> String {
    sign_in(d, url, "op1").await;
    let next = wait_for(d, "#next").await;
    if javascript {
        press(d, Key::Enter).await;
    } else {
        next.click().await.unwrap();
    }
    wait_for(d, "#callform").await;
    token(d).await
}

/// The token of the contact op1 holds now, as the database says.
fn held(sp: &common::Sheping) -> String {
    sp.sql()
        .query_row(
            "SELECT claim_token FROM queue WHERE claim_token IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

async fn checked_answers(d: &WebDriver) -> i64 {
    js(
        d,
        "return document.querySelectorAll('#callform input[type=radio]:checked').length",
    )
    .await
    .as_i64()
    .unwrap()
}

async fn shot(d: &WebDriver, name: &str) {
    let path = screenshot_dir().join(name);
    d.screenshot(&path).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn back_after_a_submit_shows_the_live_screen() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let _one = BROWSER.lock().await;
    let b = Browser::start(true).await;
    let d = b.d();
    let first = claim(d, &server.url, true).await;
    for k in ["1", "2", "1", "3", "4"] {
        press(d, k).await;
    }
    press(d, Key::Enter).await;
    wait_for(d, "#confirmation").await;
    for _ in 0..200 {
        if token(d).await != first {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let second = held(&sp);
    assert_ne!(second, first);
    d.back().await.unwrap();
    wait_for(d, "#callform").await;
    // Whatever the history held, the screen shows the contact held now, ready for keys.
    let mut shown = String::new();
    for _ in 0..100 {
        shown = token(d).await;
        if shown == second {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        shown, second,
        "Back shows the live screen, not the saved contact"
    );
    let sent = js(
        d,
        "return document.getElementById('callform').dataset.sent || ''",
    )
    .await;
    assert_eq!(sent.as_str(), Some(""), "not stuck while saving");
    press(d, "w").await;
    wait_for(d, "button.outcome.armed").await;
    assert_eq!(sp.count("SELECT COUNT(*) FROM attempts"), 1);
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_javascript_a_record_redirects_and_hints_hide() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let _one = BROWSER.lock().await;
    let b = Browser::start(false).await;
    let d = b.d();
    let first = claim(d, &server.url, false).await;
    // No key hints that do nothing; the notice at the top, above the questions.
    let hints = d.find(By::Css("p.keys")).await.unwrap();
    assert!(!hints.is_displayed().await.unwrap(), "key hints without JS");
    let kbd = d.find(By::Css("#submit-complete kbd")).await.unwrap();
    assert!(!kbd.is_displayed().await.unwrap(), "Enter hint without JS");
    let notice = d.find(By::Id("nojs-notice")).await.unwrap();
    let q1 = d.find(By::Css("li.q")).await.unwrap();
    let (ny, qy) = (notice.rect().await.unwrap().y, q1.rect().await.unwrap().y);
    assert!(ny < qy, "the notice ({ny}) is above the questions ({qy})");
    shot(d, "call-nojs-top.png").await;
    d.find(By::Css("button[value=busy]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(d, "#confirmation").await;
    // Post, redirect, get: the address is the screen's, so Back and reload only read.
    let url = d.current_url().await.unwrap();
    assert_eq!(url.path(), "/call", "{url}");
    assert!(url.query().unwrap_or("").contains("done="), "{url}");
    let second = token(d).await;
    assert_ne!(second, first);
    d.back().await.unwrap();
    wait_for(d, "#callform").await;
    assert_eq!(d.current_url().await.unwrap().path(), "/call");
    d.refresh().await.unwrap();
    wait_for(d, "#callform").await;
    assert_eq!(sp.count("SELECT COUNT(*) FROM attempts"), 1);
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn clearing_after_a_refusal_clears_and_the_banner_goes() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let _one = BROWSER.lock().await;
    let b = Browser::start(true).await;
    let d = b.d();
    claim(d, &server.url, true).await;
    press(d, "2").await;
    // A complete with four answers missing: the server refuses and sends the answer back.
    d.find(By::Id("submit-complete"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let error = wait_for(d, "#error").await;
    assert!(error.text().await.unwrap().contains("未答"));
    assert_eq!(checked_answers(d).await, 1, "the answer came back");
    d.find(By::Id("reset"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(checked_answers(d).await, 0, "清空答案 clears");
    assert!(
        !d.find(By::Id("error"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap(),
        "the refusal's banner goes once the operator acts"
    );
    // A letter outcome is accepted again (no "已有答案").
    press(d, "w").await;
    let armed = wait_for(d, "button.outcome.armed").await;
    assert!(armed.text().await.unwrap().contains("无人接听"));
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_keyed_answer_dismisses_the_error_banner() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let _one = BROWSER.lock().await;
    let b = Browser::start(true).await;
    let d = b.d();
    claim(d, &server.url, true).await;
    d.find(By::Id("submit-complete"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let error = wait_for(d, "#error").await;
    assert!(error.is_displayed().await.unwrap());
    press(d, "1").await;
    assert!(
        !error.is_displayed().await.unwrap(),
        "banner after an answer"
    );
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_click_on_an_outcome_asks_the_same_confirmation_as_its_key() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let _one = BROWSER.lock().await;
    let b = Browser::start(true).await;
    let d = b.d();
    let first = claim(d, &server.url, true).await;
    let refused = d.find(By::Css("button[value=refused]")).await.unwrap();
    refused.click().await.unwrap();
    let armed = wait_for(d, "button.outcome.armed").await;
    assert!(armed.text().await.unwrap().contains("拒访"));
    let status = d
        .find(By::Id("status"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(status.contains("确认"), "{status}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM attempts"),
        0,
        "one click records nothing"
    );
    // Esc cancels; a click and Enter record, like the letter and Enter.
    press(d, Key::Escape).await;
    assert!(
        d.find_all(By::Css("button.outcome.armed"))
            .await
            .unwrap()
            .is_empty()
    );
    d.find(By::Css("button[value=refused]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    d.find(By::Css("button[value=refused]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(d, "#confirmation").await;
    let outcome: String = sp
        .sql()
        .query_row(
            "SELECT outcome FROM attempts WHERE claim_token = ?1",
            [&first],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(outcome, "refused");
    assert_eq!(sp.count("SELECT COUNT(*) FROM attempts"), 1);
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hotkeys_read_the_physical_key_and_never_fire_in_the_comment() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let _one = BROWSER.lock().await;
    let b = Browser::start(true).await;
    let d = b.d();
    claim(d, &server.url, true).await;
    // A Chinese input method reports the key as "Process" (keyCode 229); the physical key counts.
    js(
        d,
        "document.body.dispatchEvent(new KeyboardEvent('keydown', {key: 'Process', code: 'Digit2', keyCode: 229, bubbles: true, cancelable: true})); return 0;",
    )
    .await;
    let a0 = js(
        d,
        "const c = document.querySelector('input[name=a0]:checked'); return c ? c.value : '';",
    )
    .await;
    assert_eq!(a0.as_str(), Some("2"), "digit 2 under an input method");
    // In the comment box a letter is text, not a hotkey.
    js(
        d,
        "const c = document.getElementById('comment'); c.focus(); c.dispatchEvent(new KeyboardEvent('keydown', {key: 'p', code: 'KeyP', bubbles: true, cancelable: true})); c.dispatchEvent(new KeyboardEvent('keydown', {key: 'Process', code: 'KeyP', keyCode: 229, bubbles: true, cancelable: true})); c.blur(); return 0;",
    )
    .await;
    assert!(
        d.find_all(By::Css("button.outcome.armed"))
            .await
            .unwrap()
            .is_empty(),
        "no hotkey while typing a comment"
    );
    // Outside it, P under the input method chooses 部分完成.
    js(
        d,
        "document.body.dispatchEvent(new KeyboardEvent('keydown', {key: 'Process', code: 'KeyP', keyCode: 229, bubbles: true, cancelable: true})); return 0;",
    )
    .await;
    let armed = wait_for(d, "button.outcome.armed").await;
    assert!(armed.text().await.unwrap().contains("部分完成"));
    // While a composition runs, nothing fires.
    press(d, Key::Escape).await;
    js(
        d,
        "document.body.dispatchEvent(new KeyboardEvent('keydown', {key: 'Process', code: 'KeyW', keyCode: 229, isComposing: true, bubbles: true, cancelable: true})); return 0;",
    )
    .await;
    assert!(
        d.find_all(By::Css("button.outcome.armed"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(sp.count("SELECT COUNT(*) FROM attempts"), 0);
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn at_double_zoom_the_current_question_stays_in_view() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let _one = BROWSER.lock().await;
    let b = Browser::start(true).await;
    let d = b.d();
    claim(d, &server.url, true).await;
    // 200 % zoom of a 1366×768 window is a 683×384 CSS viewport.
    d.set_window_rect(0, 0, 683, 384 + 100).await.unwrap();
    let inner = js(d, "return window.innerHeight").await.as_i64().unwrap();
    assert!(inner < 500, "the window shrank: {inner}");
    for k in ["1", "2", "3", "4"] {
        press(d, k).await;
        let (top, bottom, height) = {
            let v = js(
                d,
                "const r = document.querySelector('li.q.current').getBoundingClientRect(); return [r.top, r.bottom, window.innerHeight];",
            )
            .await;
            let a: Vec<f64> = serde_json::from_value(v).unwrap();
            (a[0], a[1], a[2])
        };
        assert!(
            top >= -1.0 && bottom <= height + 1.0,
            "after {k} the current question is at {top}–{bottom} of {height}"
        );
    }
    shot(d, "call-zoomed-current.png").await;
    b.quit().await;
}

/// WCAG 2 relative luminance of "rgb(r, g, b)" / "rgba(…)".
fn luminance(css: &str) -> f64 {
    let inner = css
        .trim()
        .trim_start_matches("rgba(")
        .trim_start_matches("rgb(")
        .trim_end_matches(')');
    let c: Vec<f64> = inner
        .split(',')
        .take(3)
        .map(|v| v.trim().parse::<f64>().unwrap() / 255.0)
        .map(|v| {
            if v <= 0.03928 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            }
        })
        .collect();
    0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]
}

fn contrast(a: &str, b: &str) -> f64 {
    let (x, y) = (luminance(a), luminance(b));
    (x.max(y) + 0.05) / (x.min(y) + 0.05)
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_form_groups_named_by_their_question_and_numbers_are_legible() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let _one = BROWSER.lock().await;
    let b = Browser::start(true).await;
    let d = b.d();
    claim(d, &server.url, true).await;
    // Each question's answers are one radio group named by the question's text.
    let groups = js(
        d,
        "return Array.from(document.querySelectorAll('li.q')).map(q => {
           const g = q.querySelector('[role=radiogroup]');
           if (!g) return null;
           const name = document.getElementById(g.getAttribute('aria-labelledby'));
           return [g.querySelectorAll('input[type=radio]').length, name ? name.textContent : '',
                   q.querySelector('.qtext').textContent];
         });",
    )
    .await;
    let groups: Vec<Option<(usize, String, String)>> = serde_json::from_value(groups).unwrap();
    assert_eq!(groups.len(), 5);
    for g in groups {
        let (radios, name, text) = g.expect("a radiogroup per question");
        assert_eq!(radios, 4);
        assert!(!name.trim().is_empty() && name == text, "{name} / {text}");
    }
    // The number circles, unanswered and answered, reach 4.5:1.
    press(d, "1").await;
    let colours = js(
        d,
        "return Array.from(document.querySelectorAll('li.q .qno')).slice(0, 2).map(e => {
           const s = getComputedStyle(e); return [s.color, s.backgroundColor]; });",
    )
    .await;
    let colours: Vec<(String, String)> = serde_json::from_value(colours).unwrap();
    for (fg, bg) in colours {
        let ratio = contrast(&fg, &bg);
        assert!(ratio >= 4.5, "{fg} on {bg}: {ratio:.2}:1");
    }
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mistyped_appointment_time_brings_the_screen_back() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let _one = BROWSER.lock().await;
    let b = Browser::start(true).await;
    let d = b.d();
    let first = claim(d, &server.url, true).await;
    let unit = d
        .find(By::Id("contact-unit"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // A six-digit year, as Chrome's picker lets one type: the value reaches the server as is.
    js(
        d,
        "const a = document.getElementById('appointment'); a.type = 'text'; a.value = '202603-12-08T03:00';
         document.getElementById('comment').value = '下午再打';
         return 0;",
    )
    .await;
    press(d, "h").await;
    press(d, Key::Enter).await;
    let error = wait_for(d, "#appointment-error").await;
    let said = error.text().await.unwrap();
    assert!(
        said.contains("202603-12-08T03:00") && said.contains("四位"),
        "{said}"
    );
    shot(d, "call-appointment-error.png").await;
    // The same contact, the comment kept, nothing stored.
    assert_eq!(token(d).await, first);
    assert_eq!(
        d.find(By::Id("contact-unit"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        unit
    );
    let comment = js(d, "return document.getElementById('comment').value").await;
    assert_eq!(comment.as_str(), Some("下午再打"));
    assert_eq!(sp.count("SELECT COUNT(*) FROM attempts"), 0);
    b.quit().await;
}

fn appointment_of(sp: &common::Sheping, token: &str) -> String {
    let at: i64 = sp
        .sql()
        .query_row(
            "SELECT appointment_at FROM attempts WHERE claim_token = ?1 AND outcome = 'appointment'",
            [token],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("no appointment for {token}: {e}"));
    chrono::DateTime::from_timestamp_millis(at)
        .unwrap()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn appointments_take_a_few_keys_and_the_confirmation_shows_their_time() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let _one = BROWSER.lock().await;
    let b = Browser::start(true).await;
    let d = b.d();
    let first = claim(d, &server.url, true).await;
    let now = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .naive_local();
    // H ↓ ↓ Enter: tomorrow at 09:00.
    press(d, "h").await;
    press(d, Key::Down).await;
    press(d, Key::Down).await;
    shot(d, "call-appointment-presets.png").await;
    press(d, Key::Enter).await;
    let said = wait_for(d, "#confirmation")
        .await
        .prop("textContent")
        .await
        .unwrap()
        .unwrap();
    let tomorrow = now.date() + chrono::Duration::days(1);
    assert_eq!(appointment_of(&sp, &first), format!("{tomorrow} 09:00"));
    let shown = tomorrow.format("预约 %m月%d日 09:00").to_string();
    assert!(said.contains(&shown), "{shown} in {said}");
    // H, a typed day and time, Enter.
    let mut second = token(d).await;
    for _ in 0..100 {
        if second != first {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        second = token(d).await;
    }
    assert_ne!(second, first);
    let day = now.date() + chrono::Duration::days(2);
    press(d, "h").await;
    press(d, day.format("%m-%d 16:45").to_string()).await;
    press(d, Key::Enter).await;
    for _ in 0..100 {
        if sp.count("SELECT COUNT(*) FROM attempts") == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(appointment_of(&sp, &second), format!("{day} 16:45"));
    b.quit().await;
}
