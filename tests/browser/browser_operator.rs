//! The consoles in real headless Chromium (Debian's chromium + chromedriver) against the real
//! server: an operator completes an interview with six keystrokes, a no-answer and an
//! appointment come back when due, a double submit records once, the form works without
//! JavaScript, and the supervisor's view refreshes itself. Screenshots go to
//! `target/screenshots/` for a reviewer.

use crate::common;

use std::time::Duration;

use crate::chromium::{BROWSER, Browser, press, screenshot_dir, sign_in, wait_for};
use common::browser::{ROUND, WebServer, fixture};
use thirtyfour::prelude::*;

async fn value(d: &WebDriver, css: &str) -> String {
    d.find(By::Css(css))
        .await
        .unwrap()
        .attr("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// The element's text; retried because the live view replaces its elements every few seconds
/// (an element found just before a refresh is stale when read).
async fn text(d: &WebDriver, css: &str) -> String {
    let mut last = None;
    for _ in 0..20 {
        match d.find(By::Css(css)).await {
            Ok(e) => match e.text().await {
                Ok(t) => return t,
                Err(err) => last = Some(err),
            },
            Err(err) => last = Some(err),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no text at {css}: {last:?}");
}

/// Waits until the contact on screen is another one than `token`; returns the new token.
async fn next_contact(d: &WebDriver, token: &str) -> String {
    for _ in 0..300 {
        if let Ok(Some(t)) = match d.find(By::Css("input[name=token]")).await {
            Ok(e) => e.attr("value").await,
            Err(_) => Ok(None),
        } && t != token
        {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the next contact did not load");
}

async fn shot(d: &WebDriver, name: &str) {
    let path = screenshot_dir().join(name);
    d.screenshot(&path).await.unwrap();
    assert!(
        std::fs::metadata(&path).unwrap().len() > 10_000,
        "{name} is empty"
    );
}

/// (scrollHeight, innerHeight, scrollWidth, innerWidth)
async fn extent(d: &WebDriver) -> (i64, i64, i64, i64) {
    let v = d
        .execute(
            "const e = document.documentElement; return [e.scrollHeight, window.innerHeight, e.scrollWidth, window.innerWidth];",
            vec![],
        )
        .await
        .unwrap();
    let a: Vec<i64> = v.convert().unwrap();
    (a[0], a[1], a[2], a[3])
}

fn member_of(sp: &common::Sheping, token: &str) -> i64 {
    sp.sql()
        .query_row(
            "SELECT member_id FROM attempts WHERE claim_token = ?1",
            [token],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("no attempt for token {token}: {e}"))
}

/// Moves a member's due time into the past, as if the clock had run on.
fn make_due(sp: &common::Sheping, member: i64) {
    let now = chrono::Utc::now().timestamp_millis();
    let n = sp
        .sql()
        .execute(
            "UPDATE queue SET sort_key = ?1 WHERE member_id = ?2",
            [now - 1_000, member],
        )
        .unwrap();
    assert_eq!(n, 1, "member {member} is in the queue");
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_completes_an_interview_with_six_keystrokes() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let _one = BROWSER.lock().await;
    let b = Browser::start(true).await;
    let d = b.d();
    sign_in(d, &server.url, "op1").await;
    assert!(d.current_url().await.unwrap().path().starts_with("/call"));
    // The idle screen: Enter claims the next contact.
    wait_for(d, "#next").await;
    press(d, Key::Enter).await;
    wait_for(d, "#callform").await;
    let token = value(d, "input[name=token]").await;
    // The held contact: unit, name, category, the number in full as a tel: link.
    let phone = d.find(By::Id("phone")).await.unwrap();
    let href = phone.attr("href").await.unwrap().unwrap();
    assert!(href.starts_with("tel:") && href.len() > 10, "{href}");
    assert!(!text(d, "#contact-unit").await.is_empty());
    assert!(text(d, "#contact-name").await.starts_with("代表"));
    assert_eq!(text(d, "#attempt-no").await, "1");
    assert!(
        text(d, "#script").await.contains("话务员一"),
        "the script names the operator"
    );
    assert_eq!(d.find_all(By::Css("li.q")).await.unwrap().len(), 5);
    assert_eq!(
        d.find_all(By::Css("button[data-hotkey]"))
            .await
            .unwrap()
            .len(),
        11,
        "a button with a key for every non-complete outcome"
    );
    // One screen at 1366×768: nothing to scroll.
    let (sh, ih, sw, iw) = extent(d).await;
    assert!(
        sh <= ih && sw <= iw,
        "page {sw}×{sh} exceeds the window {iw}×{ih}"
    );
    shot(d, "operator-form.png").await;

    // The interview: five answers and Enter, nothing else.
    let keystrokes: Vec<TypingData> = vec![
        "1".into(),
        "2".into(),
        "1".into(),
        "3".into(),
        "4".into(),
        Key::Enter.into(),
    ];
    assert_eq!(keystrokes.len(), 6);
    for k in keystrokes {
        press(d, k).await;
    }
    let confirmation = wait_for(d, "#confirmation").await;
    // textContent: the banner fades out after a few seconds, and hidden text reads as "".
    let said = confirmation.prop("textContent").await.unwrap().unwrap();
    assert!(said.contains("已保存") && said.contains("完成"), "{said}");
    let next = next_contact(d, &token).await;
    assert_ne!(next, token, "the next contact loaded");
    assert_eq!(text(d, "#today-completes").await, "1");
    shot(d, "operator-confirmation.png").await;

    let (outcome, answers, ms, source): (String, String, String, String) = sp
        .sql()
        .query_row(
            "SELECT outcome, answers, answer_ms, source FROM attempts WHERE claim_token = ?1",
            [&token],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(outcome, "complete");
    assert_eq!(answers, "[0,1,0,2,3]");
    assert_eq!(source, "web");
    let ms: Vec<i64> = serde_json::from_str(&ms).unwrap();
    assert_eq!(ms.len(), 5, "each answer's time since the claim");
    assert!(ms.windows(2).all(|w| w[0] <= w[1]) && ms[0] > 0, "{ms:?}");
    assert_eq!(sp.count("SELECT COUNT(*) FROM attempts"), 1);
    // The claim logged the view of the number; the next contact is held now.
    assert!(
        sp.count("SELECT COUNT(*) FROM audit_log WHERE action = 'contact.claim' AND actor = 'op1'")
            >= 2
    );
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_answer_puts_the_contact_back_for_later() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let _one = BROWSER.lock().await;
    let b = Browser::start(true).await;
    let d = b.d();
    sign_in(d, &server.url, "op1").await;
    wait_for(d, "#next").await;
    press(d, Key::Enter).await;
    wait_for(d, "#callform").await;
    let token = value(d, "input[name=token]").await;
    // W chooses 无人接听, Enter confirms.
    press(d, "w").await;
    let armed = wait_for(d, "button.outcome.armed").await;
    assert!(armed.text().await.unwrap().contains("无人接听"));
    press(d, Key::Enter).await;
    wait_for(d, "#confirmation").await;
    let second = next_contact(d, &token).await;
    let member = member_of(&sp, &token);
    let (priority, due): (i64, i64) = sp
        .sql()
        .query_row(
            "SELECT priority, sort_key FROM queue WHERE member_id = ?1",
            [member],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    assert_eq!(priority, 1, "back in the queue as a retry");
    assert!(due > now + 50 * 60_000, "retried later, not now");
    // Not yet due: releasing and claiming again gives someone else.
    press(d, Key::Escape).await;
    wait_for(d, "#next").await;
    press(d, Key::Enter).await;
    wait_for(d, "#callform").await;
    let third = value(d, "input[name=token]").await;
    let third_member: i64 = sp
        .sql()
        .query_row(
            "SELECT member_id FROM queue WHERE claim_token = ?1",
            [&third],
            |r| r.get(0),
        )
        .unwrap();
    assert_ne!(third_member, member);
    let _ = second;
    // The retry falls due: it comes back first, as the second attempt with its history.
    make_due(&sp, member);
    press(d, Key::Escape).await;
    wait_for(d, "#next").await;
    press(d, Key::Enter).await;
    wait_for(d, "#callform").await;
    assert_eq!(text(d, "#attempt-no").await, "2");
    assert!(text(d, "#earlier").await.contains("无人接听"));
    let back: i64 = sp
        .sql()
        .query_row(
            "SELECT member_id FROM queue WHERE claim_token IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(back, member);
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_appointment_comes_back_when_due() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let _one = BROWSER.lock().await;
    let b = Browser::start(true).await;
    let d = b.d();
    sign_in(d, &server.url, "op1").await;
    wait_for(d, "#next").await;
    press(d, Key::Enter).await;
    wait_for(d, "#callform").await;
    let token = value(d, "input[name=token]").await;
    // H: the picker takes the focus with a time an hour ahead; Enter records the appointment.
    press(d, "h").await;
    let focused = d
        .execute("return document.activeElement.id", vec![])
        .await
        .unwrap();
    assert_eq!(focused.json().as_str(), Some("appointment"));
    let chosen = value(d, "#appointment").await;
    press(d, Key::Enter).await;
    wait_for(d, "#confirmation").await;
    next_contact(d, &token).await;
    let member = member_of(&sp, &token);
    let (outcome, at): (String, i64) = sp
        .sql()
        .query_row(
            "SELECT outcome, appointment_at FROM attempts WHERE claim_token = ?1",
            [&token],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(outcome, "appointment");
    let local = chrono::DateTime::from_timestamp_millis(at)
        .unwrap()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y-%m-%d %H:%M")
        .to_string();
    assert_eq!(local, chosen, "stored as picked, in the round's time zone");
    let priority: i64 = sp
        .sql()
        .query_row(
            "SELECT priority FROM queue WHERE member_id = ?1",
            [member],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(priority, 0, "queued as an appointment");
    // The appointment falls due: it is offered before anything else.
    make_due(&sp, member);
    sp.sql()
        .execute(
            "UPDATE attempts SET appointment_at = ?1 WHERE claim_token = ?2",
            crate::params![chrono::Utc::now().timestamp_millis() - 1_000, token],
        )
        .unwrap();
    press(d, Key::Escape).await;
    wait_for(d, "#next").await;
    press(d, Key::Enter).await;
    wait_for(d, "#callform").await;
    assert!(text(d, "#appointment-info").await.contains("预约回访"));
    assert_eq!(text(d, "#attempt-no").await, "2");
    let held: i64 = sp
        .sql()
        .query_row(
            "SELECT member_id FROM queue WHERE claim_token IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(held, member);
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_double_submit_records_once() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let _one = BROWSER.lock().await;
    let b = Browser::start(true).await;
    let d = b.d();
    sign_in(d, &server.url, "op1").await;
    wait_for(d, "#next").await;
    press(d, Key::Enter).await;
    wait_for(d, "#callform").await;
    let token = value(d, "input[name=token]").await;
    // Backspace goes back one question: the third answer is keyed again.
    let keys: Vec<TypingData> = vec![
        "2".into(),
        "2".into(),
        "1".into(),
        Key::Backspace.into(),
        "3".into(),
        "1".into(),
        "2".into(),
    ];
    for k in keys {
        press(d, k).await;
    }
    // Keep what the form will send, to send it again later (a network retry).
    let body = d
        .execute(
            "return new URLSearchParams(new FormData(document.getElementById('callform'))).toString() + '&outcome=complete';",
            vec![],
        )
        .await
        .unwrap();
    let body = body.json().as_str().unwrap().to_string();
    // Enter twice in a row (an impatient operator).
    d.action_chain()
        .send_keys(Key::Enter)
        .send_keys(Key::Enter)
        .perform()
        .await
        .unwrap();
    wait_for(d, "#confirmation").await;
    next_contact(d, &token).await;
    // The record answered with the next screen; the address bar shows that screen's own
    // address (so a reload reads it, not the form again).
    let first_url = d.current_url().await.unwrap();
    assert_eq!(first_url.path(), "/call");
    assert!(
        first_url.query().unwrap_or("").contains("done="),
        "{first_url}"
    );
    // The same form again, as a retry would send it: same confirmation, nothing new stored.
    let again = d
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('/call/record', { method: 'POST', body: arguments[0],
                    headers: { 'Content-Type': 'application/x-www-form-urlencoded' } })
               .then(r => r.text()).then(t => {
                 const p = new DOMParser().parseFromString(t, 'text/html');
                 done(p.getElementById('page-url').getAttribute('data-url'));
               }).catch(e => done('error ' + e));",
            vec![serde_json::Value::String(body)],
        )
        .await
        .unwrap();
    let own = format!(
        "{}?{}",
        first_url.path(),
        first_url.query().unwrap_or_default()
    );
    assert_eq!(again.json().as_str().unwrap(), own);
    // A reload reads the screen: nothing recorded again, the same contact on screen.
    d.refresh().await.unwrap();
    wait_for(d, "#confirmation").await;
    assert_eq!(d.current_url().await.unwrap(), first_url);
    assert_eq!(sp.count("SELECT COUNT(*) FROM attempts"), 1);
    let answers: String = sp
        .sql()
        .query_row("SELECT answers FROM attempts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(answers, "[1,1,2,0,1]");
    let held = sp.count("SELECT COUNT(*) FROM queue WHERE claim_token IS NOT NULL");
    assert_eq!(held, 1, "the retry claimed no second contact");
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_form_works_without_javascript() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let _one = BROWSER.lock().await;
    let b = Browser::start(false).await;
    let d = b.d();
    sign_in(d, &server.url, "op1").await;
    wait_for(d, "#next").await.click().await.unwrap();
    wait_for(d, "#callform").await;
    // No script ran: the keyboard hints' status line stays empty.
    assert_eq!(text(d, "#status").await, "");
    let token = value(d, "input[name=token]").await;
    for (q, level) in [(0, 1), (1, 1), (2, 2), (3, 1), (4, 4)] {
        d.find(By::Css(format!("input[name=a{q}][value='{level}']")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }
    d.find(By::Id("comment"))
        .await
        .unwrap()
        .send_keys("希望窗口延长服务时间")
        .await
        .unwrap();
    shot(d, "operator-form-nojs.png").await;
    d.find(By::Id("submit-complete"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(d, "#confirmation").await;
    let second = next_contact(d, &token).await;
    let (outcome, answers, ms, comment): (String, String, Option<String>, String) = sp
        .sql()
        .query_row(
            "SELECT outcome, answers, answer_ms, comment FROM attempts WHERE claim_token = ?1",
            [&token],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(outcome, "complete");
    assert_eq!(answers, "[0,0,1,0,3]");
    assert_eq!(ms, None, "no timing without the script");
    assert_eq!(comment, "希望窗口延长服务时间");
    // A busy line: one button.
    d.find(By::Css("button[value=busy]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(d, "#confirmation").await;
    next_contact(d, &second).await;
    let busy: String = sp
        .sql()
        .query_row(
            "SELECT outcome FROM attempts WHERE claim_token = ?1",
            [&second],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(busy, "busy");
    // A complete with a missing answer is refused with the reason, answers kept.
    let third = value(d, "input[name=token]").await;
    d.find(By::Css("input[name=a0][value='2']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    d.find(By::Id("submit-complete"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let error = wait_for(d, "#error").await.text().await.unwrap();
    assert!(error.contains("未答"), "{error}");
    assert!(
        d.find(By::Css("input[name=a0][value='2']"))
            .await
            .unwrap()
            .is_selected()
            .await
            .unwrap()
    );
    assert_eq!(
        value(d, "input[name=token]").await,
        third,
        "still the same contact"
    );
    assert_eq!(sp.count("SELECT COUNT(*) FROM attempts"), 2);
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_supervisor_view_refreshes_itself() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    // op1 is on a call, seen live by the supervisor.
    let op = common::browser::Web::signed_in(&server.url, "op1").await;
    let csrf = op.csrf().await;
    let claimed = op
        .post("/call/next", &[("csrf", &csrf), ("round", ROUND)])
        .await;
    assert_eq!(claimed.status, 303);
    let _one = BROWSER.lock().await;
    let b = Browser::start(true).await;
    let d = b.d();
    sign_in(d, &server.url, "admin").await;
    d.goto(format!("{}/rounds/{ROUND}/progress", server.url))
        .await
        .unwrap();
    let oncall = wait_for(d, "#oncall").await.text().await.unwrap();
    assert!(oncall.contains("op1"), "{oncall}");
    let overall = text(d, "#overall .completes").await;
    assert_eq!(overall, "0");
    let updated = text(d, "#updated").await;
    // op1 records a complete interview; the open page shows it without a reload.
    let call = op.get(&format!("/call?round={ROUND}")).await;
    let token = call.input("token").unwrap();
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("round", ROUND),
        ("token", token.as_str()),
        ("outcome", "complete"),
    ];
    for q in ["a0", "a1", "a2", "a3", "a4"] {
        form.push((q, "1"));
    }
    assert_eq!(op.post("/call/record", &form).await.status, 200);
    let mut seen = false;
    for _ in 0..200 {
        if text(d, "#overall .completes").await == "1" {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen, "the live view showed the new complete within 20 s");
    assert_ne!(text(d, "#updated").await, updated);
    assert_eq!(
        d.current_url().await.unwrap().path(),
        format!("/rounds/{ROUND}/progress"),
        "no reload"
    );
    shot(d, "supervisor-progress.png").await;
    // The admin's member page and the audit log, for the reviewer.
    d.goto(format!("{}/audit?round={ROUND}", server.url))
        .await
        .unwrap();
    wait_for(d, "#audit").await;
    shot(d, "audit-log.png").await;
    d.goto(format!("{}/admin/rounds/{ROUND}", server.url))
        .await
        .unwrap();
    wait_for(d, "#lock-form").await;
    shot(d, "admin-round.png").await;
    let member: i64 = sp
        .sql()
        .query_row("SELECT member_id FROM attempts LIMIT 1", [], |r| r.get(0))
        .unwrap();
    d.goto(format!(
        "{}/admin/rounds/{ROUND}/members/{member}",
        server.url
    ))
    .await
    .unwrap();
    wait_for(d, "#fix-phone").await;
    shot(d, "admin-member.png").await;
    d.goto(format!("{}/rounds/{ROUND}/results", server.url))
        .await
        .unwrap();
    wait_for(d, "h1").await;
    shot(d, "results.png").await;
    b.quit().await;
}

/// The open call screen keeps its claim alive on its own (a six-second lease here, through
/// `SHEPING_LEASE_SECS`): the lease moves while the page is open, a conversation longer than
/// the lease is recorded as usual, and when renewal becomes impossible (the server is gone)
/// the operator is warned before the claim lapses.
#[tokio::test(flavor = "multi_thread")]
async fn the_call_screen_renews_its_claim_and_warns_when_it_cannot() {
    let sp = fixture();
    let mut server = WebServer::start(&sp, &[("SHEPING_LEASE_SECS", "6")]);
    let _one = BROWSER.lock().await;
    let b = Browser::start(true).await;
    let d = b.d();
    sign_in(d, &server.url, "op1").await;
    wait_for(d, "#next").await;
    press(d, Key::Enter).await;
    wait_for(d, "#callform").await;
    let token = value(d, "input[name=token]").await;
    let lease = |sp: &common::Sheping| -> (i64, i64) {
        sp.sql()
            .query_row(
                "SELECT claimed_at, claim_expires FROM queue WHERE claim_token = ?1",
                [&token],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    };
    let (claimed_at, first_expiry) = lease(&sp);
    assert_eq!(
        first_expiry - claimed_at,
        6_000,
        "the lease from the environment"
    );
    // The page renews by itself, past the original lease's end.
    let mut renewed = false;
    for _ in 0..150 {
        let (_, expiry) = lease(&sp);
        if expiry > first_expiry + 6_000 {
            renewed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(renewed, "the claim was renewed past its first lease");
    assert!(
        lease(&sp).1 > chrono::Utc::now().timestamp_millis(),
        "still held after its first lease ran out"
    );
    assert!(
        !d.find(By::Id("lease-warning"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap(),
        "no warning while renewal works"
    );
    // The long interview is recorded as usual, not as a late record.
    for k in ["1", "2", "2", "1", "3"] {
        press(d, k).await;
    }
    press(d, Key::Enter).await;
    let next = next_contact(d, &token).await;
    let late: bool = sp
        .sql()
        .query_row(
            "SELECT late FROM attempts WHERE claim_token = ?1",
            [&token],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!late);
    // The next contact is taken over behind the page's back (as when a lapsed claim goes to
    // another operator): the next renewal is refused and the page says so at once.
    let n = sp
        .sql()
        .execute(
            "UPDATE queue SET claim_token = 'taken-over', claimed_at = claimed_at + 1,
                 claimed_by = (SELECT id FROM users WHERE login = 'op2')
             WHERE claim_token = ?1",
            [&next],
        )
        .unwrap();
    assert_eq!(n, 1);
    let warning = d
        .query(By::Id("lease-warning"))
        .wait(Duration::from_secs(30), Duration::from_millis(100))
        .and_displayed()
        .first()
        .await
        .expect("the lost-claim warning appears");
    let said = warning.text().await.unwrap();
    assert!(said.contains("不在您的名下"), "{said}");
    // The interview is still sent, and stored as a late record.
    for k in ["2", "2", "2", "2", "2"] {
        press(d, k).await;
    }
    press(d, Key::Enter).await;
    let third = next_contact(d, &next).await;
    let late: bool = sp
        .sql()
        .query_row(
            "SELECT late FROM attempts WHERE claim_token = ?1",
            [&next],
            |r| r.get(0),
        )
        .unwrap();
    assert!(late, "stored, flagged late");
    assert!(!third.is_empty());
    // The server goes away: renewal fails, and the operator is warned before the lapse.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let warning = d
        .query(By::Id("lease-warning"))
        .wait(Duration::from_secs(30), Duration::from_millis(100))
        .and_displayed()
        .first()
        .await
        .expect("the lease warning appears");
    let said = warning.text().await.unwrap();
    assert!(said.contains("续期失败"), "{said}");
    shot(d, "call-lease-warning.png").await;
    b.quit().await;
}
