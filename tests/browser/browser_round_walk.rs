//! A whole round walked through the admin console alone, in real headless Chromium: create
//! the round, upload units, roster and on-site ballots (preview, then confirm), add operators
//! and a conflict of interest, plan, call every representative on the operators' call screen
//! with the keyboard, lock, open the results — and the results equal those of the same round
//! built through the CLI with the same files, the same seed and the same answers.
//!
//! Only the first administrator is made with the CLI: someone has to sign in.

use crate::common;

use std::time::Duration;

use crate::chromium::{BROWSER, Browser, press, screenshot_dir, sign_in, wait_for};
use common::Sheping;
use common::browser::PASSWORD;
use thirtyfour::prelude::*;

const KEY: &str = "w";
const UNITS: [&str; 3] = [
    "汉滨区教育体育局",
    "汉滨区住房和城乡建设局",
    "汉滨区公路管理段",
];
const PER_UNIT: usize = 4;
const SEED: &str = "11";

/// The survey with calls allowed all day (the walk runs whenever the tests do).
fn survey_file(sp: &Sheping) -> std::path::PathBuf {
    let survey =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/surveys/default.toml"))
            .unwrap()
            .replace(
                r#"windows = ["09:00-11:30", "14:30-17:30"]"#,
                r#"windows = ["00:00-23:59"]"#,
            );
    assert!(survey.contains("00:00-23:59"));
    sp.write("allday.toml", survey.as_bytes())
}

fn period() -> (String, String) {
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive();
    (
        (today - chrono::Duration::days(2)).to_string(),
        (today + chrono::Duration::days(20)).to_string(),
    )
}

fn units_csv() -> String {
    let mut s = String::from("单位名称,单位类型,系统,单位代码\n");
    for (i, u) in UNITS.iter().enumerate() {
        let kind = if i == 2 {
            "事业单位"
        } else {
            "党政机关"
        };
        s.push_str(&format!("{u},{kind},测试,W{i}\n"));
    }
    s
}

fn roster_csv() -> String {
    let mut s = String::from("参评单位,姓名,联系电话,代表类别\n");
    for (u, unit) in UNITS.iter().enumerate() {
        for k in 0..PER_UNIT {
            s.push_str(&format!("{unit},代表{u}{k},1390{u}{k}12345,\n"));
        }
    }
    s
}

/// Two units with ballots (one of them an overall-only ballot), the third with a direct score.
fn ballots_csv() -> String {
    format!(
        "参评单位,选票编号,职能职责履行,办事效率,服务质量,作风形象,社会反响,总体评价\n\
         {a},1,满意,满意,比较满意,满意,满意,\n\
         {a},2,比较满意,满意,满意,基本满意,满意,\n\
         {a},3,,,,,,满意\n\
         {b},1,基本满意,比较满意,满意,满意,不满意,\n\
         {b},2,满意,比较满意,比较满意,比较满意,比较满意,\n",
        a = UNITS[0],
        b = UNITS[1]
    )
}

fn scores_csv() -> String {
    format!("参评单位,现场评价得分\n{},86.5\n", UNITS[2])
}

/// The answers a representative gives (1-based levels), the same on both paths: from the
/// digits of the name `代表{u}{k}`.
fn answers_of(name: &str) -> Vec<u32> {
    let digits: Vec<u32> = name.chars().filter_map(|c| c.to_digit(10)).collect();
    let (u, k) = (digits[0], digits[1]);
    (0..5).map(|d| 1 + (u + k * d + d / 2) % 3).collect()
}

/// The scoring results compared on both paths: every unit's figures and the overall ones,
/// with the bootstrap on a given seed.
fn results(sp: &Sheping) -> serde_json::Value {
    let v = sp.json(&[
        "results",
        "--round",
        KEY,
        "--json",
        "--seed",
        "5",
        "--replicates",
        "200",
    ]);
    serde_json::json!({ "units": v["units"], "overall": v["overall"], "locked": v["locked"] })
}

/// The same round built through the CLI.
fn cli_round() -> Sheping {
    let sp = Sheping::new();
    let (from, to) = period();
    let survey = survey_file(&sp);
    sp.ok(&[
        "round",
        "create",
        KEY,
        "--title",
        "控制台演练",
        "--survey",
        survey.to_str().unwrap(),
        "--from",
        &from,
        "--to",
        &to,
    ]);
    for (what, name, body) in [
        ("units", "units.csv", units_csv()),
        ("roster", "roster.csv", roster_csv()),
        ("onsite", "ballots.csv", ballots_csv()),
        ("onsite", "scores.csv", scores_csv()),
    ] {
        let f = sp.write(name, body.as_bytes());
        sp.ok(&[what, "import", "--round", KEY, f.to_str().unwrap()]);
    }
    for login in ["admin", "op1", "op2"] {
        common::add_user(
            &sp,
            login,
            if login == "admin" {
                "admin"
            } else {
                "operator"
            },
        );
    }
    sp.ok(&[
        "operators",
        "exclude",
        "op1",
        "--round",
        KEY,
        "--unit",
        UNITS[0],
    ]);
    sp.ok(&["calls", "generate", "--round", KEY, "--seed", SEED]);
    for op in ["op1", "op2"] {
        loop {
            let claim = sp.json(&["calls", "next", "--round", KEY, "--operator", op]);
            if claim.is_null() {
                break;
            }
            let name = claim["member"]["name"].as_str().unwrap().to_string();
            let answers: Vec<String> = answers_of(&name).iter().map(u32::to_string).collect();
            sp.ok(&[
                "calls",
                "record",
                "--round",
                KEY,
                "--operator",
                op,
                "--token",
                claim["token"].as_str().unwrap(),
                "--outcome",
                "complete",
                "--answers",
                &answers.join(","),
            ]);
        }
    }
    sp.ok(&["round", "lock", KEY]);
    sp
}

async fn goto(d: &WebDriver, url: &str) {
    d.goto(url).await.unwrap();
}

/// Chooses `file` in the form `form` (CSS) and submits it.
async fn submit_file(d: &WebDriver, form: &str, file: &std::path::Path) {
    let f = wait_for(d, form).await;
    f.find(By::Css("input[type=file]"))
        .await
        .unwrap()
        .send_keys(file.to_str().unwrap())
        .await
        .unwrap();
    click_through(d, f.find(By::Css("button[type=submit]")).await.unwrap()).await;
}

/// Clicks `target` and waits until the browser has left the page it was on: a form post
/// answers with a new page, and ids repeat across pages, so reading before that could read the
/// old page (or an element of it going stale).
async fn click_through(d: &WebDriver, target: WebElement) {
    let page = d.find(By::Css("html")).await.unwrap();
    target.click().await.unwrap();
    page.wait_until()
        .wait(Duration::from_secs(15), Duration::from_millis(50))
        .stale()
        .await
        .unwrap();
}

async fn text_of(d: &WebDriver, css: &str) -> String {
    wait_for(d, css).await.text().await.unwrap()
}

async fn field(d: &WebDriver, css: &str, value: &str) {
    let e = wait_for(d, css).await;
    e.clear().await.unwrap();
    e.send_keys(value).await.unwrap();
}

/// Uploads an on-site file on its page, checks the preview, confirms.
async fn onsite_upload(d: &WebDriver, url: &str, file: &std::path::Path, expect: &str) {
    goto(d, &format!("{url}/admin/rounds/{KEY}")).await;
    click_through(d, wait_for(d, "#link-onsite").await).await;
    submit_file(d, "#upload-form", file).await;
    let preview = text_of(d, "#preview").await;
    assert!(preview.contains("尚未保存任何数据"), "{preview}");
    assert!(preview.contains(expect), "{preview}");
    let shot = screenshot_dir().join(format!(
        "round-walk-preview-{}.png",
        file.file_stem().unwrap().to_string_lossy()
    ));
    d.screenshot(&shot).await.unwrap();
    click_through(d, wait_for(d, "#confirm").await).await;
    let stored = text_of(d, "#stored").await;
    assert!(stored.contains("已导入"), "{stored}");
}

/// Waits until the page in the window has finished loading (the call screen answers each
/// recorded call with a new page).
async fn loaded(d: &WebDriver) {
    for _ in 0..300 {
        let state = d
            .execute("return document.readyState;", vec![])
            .await
            .ok()
            .and_then(|v| v.convert::<String>().ok());
        if state.as_deref() == Some("complete") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the page did not finish loading");
}

/// A key press; sent again if the browser was between pages and did not take it (a busy
/// machine). A key taken twice would shift the answers, and the comparison with the CLI's
/// round would show it.
async fn key(d: &WebDriver, k: impl Into<TypingData> + Clone) {
    for _ in 0..3 {
        match d.action_chain().send_keys(k.clone()).perform().await {
            Ok(()) => return,
            Err(_) => loaded(d).await,
        }
    }
    press(d, k).await;
}

/// One operator calls every contact of their list on the call screen with the keyboard.
async fn call_everyone(d: &WebDriver, url: &str, login: &str) -> usize {
    d.delete_all_cookies().await.unwrap();
    sign_in(d, url, login).await;
    wait_for(d, "#next").await;
    press(d, Key::Enter).await;
    let mut done = 0;
    let mut token = String::new();
    loop {
        // The next contact, or the idle screen once the list is done.
        let mut next = None;
        for _ in 0..300 {
            if let Ok(e) = d.find(By::Css("input[name=token]")).await
                && let Ok(Some(t)) = e.attr("value").await
                && t != token
            {
                next = Some(t);
                break;
            }
            if done > 0 && d.find(By::Id("idle")).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let Some(t) = next else { break };
        token = t;
        loaded(d).await;
        let name = text_of(d, "#contact-name").await;
        for a in answers_of(&name) {
            key(d, a.to_string()).await;
        }
        key(d, Key::Enter).await;
        done += 1;
        assert!(
            done <= UNITS.len() * PER_UNIT,
            "more calls than representatives"
        );
    }
    done
}

#[tokio::test(flavor = "multi_thread")]
async fn a_round_walked_through_the_console_equals_the_same_round_through_the_cli() {
    let sp = Sheping::new();
    common::add_user(&sp, "admin", "admin");
    let server = common::browser::WebServer::start(&sp, &[]);
    let url = server.url.clone();
    let files = [
        ("units.csv", units_csv()),
        ("roster.csv", roster_csv()),
        ("ballots.csv", ballots_csv()),
        ("scores.csv", scores_csv()),
    ]
    .map(|(n, b)| sp.write(n, b.as_bytes()));
    let survey = survey_file(&sp);
    let (from, to) = period();

    let _one = BROWSER.lock().await;
    let b = Browser::start(true).await;
    let d = b.d();
    sign_in(d, &url, "admin").await;

    // The round, with the survey file.
    goto(d, &format!("{url}/admin")).await;
    let form = wait_for(d, "form[action='/admin/rounds']").await;
    for (name, value) in [("key", KEY), ("title", "控制台演练")] {
        form.find(By::Css(format!("input[name={name}]")))
            .await
            .unwrap()
            .send_keys(value)
            .await
            .unwrap();
    }
    // Date inputs take their value as typed in the browser's locale: set it directly.
    for (name, value) in [("from", &from), ("to", &to)] {
        let input = form
            .find(By::Css(format!("input[name={name}]")))
            .await
            .unwrap();
        d.execute(
            "arguments[0].value = arguments[1];",
            vec![input.to_json().unwrap(), serde_json::json!(value)],
        )
        .await
        .unwrap();
    }
    form.find(By::Css("input[name=survey]"))
        .await
        .unwrap()
        .send_keys(survey.to_str().unwrap())
        .await
        .unwrap();
    click_through(d, form.find(By::Css("button[type=submit]")).await.unwrap()).await;
    wait_for(d, "#link-onsite").await;
    assert!(
        d.current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/admin/rounds/w")
    );

    // Units and roster on the round page.
    submit_file(d, "form[action='/admin/rounds/w/units']", &files[0]).await;
    assert!(text_of(d, "#import-report").await.contains("已导入 3 行"));
    submit_file(d, "form[action='/admin/rounds/w/roster']", &files[1]).await;
    assert!(text_of(d, "#import-report").await.contains("已导入 12 行"));

    // On-site data: ballots for two units, a direct score for the third.
    onsite_upload(d, &url, &files[2], "3 张选票(其中 1 张只填总体评价)").await;
    onsite_upload(d, &url, &files[3], "直接得分 86.5").await;

    // Two operators.
    for (login, name) in [("op1", "话务员一"), ("op2", "话务员二")] {
        goto(d, &format!("{url}/admin/users")).await;
        let form = wait_for(d, "form[action='/admin/users']").await;
        for (field_name, value) in [("login", login), ("name", name), ("password", PASSWORD)] {
            form.find(By::Css(format!("input[name={field_name}]")))
                .await
                .unwrap()
                .send_keys(value)
                .await
                .unwrap();
        }
        click_through(d, form.find(By::Css("button[type=submit]")).await.unwrap()).await;
        let said = text_of(d, "main").await;
        assert!(said.contains(&format!("已添加用户 {login}")), "{said}");
    }

    // The conflict of interest: op1 never calls the first unit.
    goto(d, &format!("{url}/admin/rounds/{KEY}")).await;
    click_through(d, wait_for(d, "#link-exclusions").await).await;
    let form = wait_for(d, "#exclusion-form").await;
    form.find(By::Css("select[name=operator] option[value=op1]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    form.find(By::Css(format!(
        "select[name=unit] option[value='{}']",
        UNITS[0]
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    click_through(d, form.find(By::Css("button[type=submit]")).await.unwrap()).await;
    assert!(text_of(d, "#message").await.contains("已记录回避"));
    assert!(text_of(d, "#by-unit").await.contains("op1"));

    // The plan, with the same seed as the CLI's.
    goto(d, &format!("{url}/admin/rounds/{KEY}")).await;
    field(d, "#plan-form input[name=seed]", SEED).await;
    click_through(d, wait_for(d, "#plan-form button[type=submit]").await).await;
    assert!(
        text_of(d, "#message")
            .await
            .contains("已生成拨打计划:12 名代表")
    );
    // The balance after the plan: op1 may call only two units.
    goto(d, &format!("{url}/admin/rounds/{KEY}/exclusions")).await;
    assert!(text_of(d, "#balance").await.contains("相差"));
    d.screenshot(&screenshot_dir().join("round-walk-exclusions.png"))
        .await
        .unwrap();

    // The operators call everyone on the call screen.
    let calls = call_everyone(d, &url, "op1").await + call_everyone(d, &url, "op2").await;
    assert_eq!(calls, UNITS.len() * PER_UNIT);
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM attempts WHERE outcome = 'complete'"),
        12
    );
    assert_eq!(
        sp.count(&format!(
            "SELECT COUNT(*) FROM attempts a JOIN users u ON u.id = a.operator_id JOIN members m ON m.id = a.member_id JOIN units n ON n.id = m.unit_id WHERE u.login = 'op1' AND n.name = '{}'",
            UNITS[0]
        )),
        0,
        "op1 never called the unit it is excluded from"
    );

    // The admin locks the round and opens its results.
    d.delete_all_cookies().await.unwrap();
    sign_in(d, &url, "admin").await;
    goto(d, &format!("{url}/admin/rounds/{KEY}")).await;
    field(d, "#lock-form input[name=confirm]", KEY).await;
    click_through(d, wait_for(d, "#lock-form button[type=submit]").await).await;
    wait_for(d, "#locked-badge").await;
    goto(d, &format!("{url}/rounds/{KEY}/results")).await;
    let page = text_of(d, "main").await;
    for u in UNITS {
        assert!(page.contains(u), "the results page lists {u}: {page}");
    }
    // …and the report: a unit's feedback page from the table, and the whole report as a zip.
    click_through(
        d,
        wait_for(d, &format!("a[href$='/units/{}']", urlencoding(UNITS[0]))).await,
    )
    .await;
    let unit_page = text_of(d, "main").await;
    assert!(unit_page.contains(UNITS[0]), "{unit_page}");
    assert!(
        unit_page.contains("社会评价"),
        "the feedback page shows the social score: {unit_page}"
    );
    let cookies = d
        .get_all_cookies()
        .await
        .unwrap()
        .iter()
        .map(|c| format!("{}={}", c.name, c.value))
        .collect::<Vec<_>>()
        .join("; ");
    let zip = reqwest::Client::new()
        .get(format!("{url}/rounds/{KEY}/report.zip"))
        .header("cookie", cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(zip.status(), 200);
    let bytes = zip.bytes().await.unwrap();
    assert!(bytes.starts_with(b"PK\x03\x04"), "the report is a zip file");
    b.quit().await;
    drop(server);

    let twin = cli_round();
    let walked = results(&sp);
    assert_eq!(walked, results(&twin));
    // Not vacuous: every unit has its four interviews, its on-site score and social points.
    let units = walked["units"].as_array().unwrap();
    assert_eq!(units.len(), UNITS.len());
    for u in units {
        assert_eq!(u["phone"]["completes"], PER_UNIT as u64, "{u}");
        assert!(u["onsite"]["points"].as_f64().is_some(), "{u}");
        assert!(u["social"]["points"].as_f64().is_some(), "{u}");
        assert!(u["social"]["rank"].as_u64().is_some(), "{u}");
    }
    assert_eq!(walked["locked"], true);
}

/// The unit's name as the results table writes it in its links (`urlencode_strict`).
fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
