//! The administrator's console over real HTTP: rounds and uploads, the plan, corrections (a
//! wrong number, a reopened refusal, an edited answer with before/after/who/when/why in the
//! audit log), users, the audit-log filters, and the lock, after which nothing changes and
//! every page says so.

use crate::common;

use common::browser::{PASSWORD, ROUND, Web, WebServer, fixture};
use reqwest::multipart::{Form, Part};

/// Posts a multipart form to `path`; (status, page).
async fn post_multipart(web: &Web, path: &str, form: Form) -> (u16, String) {
    let r = web
        .client
        .post(format!("{}{path}", web.url))
        .multipart(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn upload(web: &Web, path: &str, csrf: &str, file: &str, bytes: Vec<u8>) -> (u16, String) {
    let form = Form::new()
        .text("csrf", csrf.to_string())
        .part("file", Part::bytes(bytes).file_name(file.to_string()));
    post_multipart(web, path, form).await
}

/// op1 claims and records; returns the attempt id.
async fn record(url: &str, form_extra: &[(&str, &str)]) -> i64 {
    let op = Web::signed_in(url, "op1").await;
    let csrf = op.csrf().await;
    op.post("/call/next", &[("csrf", &csrf), ("round", ROUND)])
        .await;
    let token = op.get("/call").await.input("token").expect("a contact");
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("round", ROUND),
        ("token", token.as_str()),
    ];
    form.extend_from_slice(form_extra);
    let done = op.post("/call/record", &form).await;
    assert_eq!(done.status, 200, "{}", done.body);
    done.done_id().expect("the screen confirms the attempt")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_sets_up_a_round_through_the_browser_forms() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let admin = Web::signed_in(&server.url, "admin").await;
    let csrf = admin.csrf().await;
    // A new round with the default survey.
    let form = Form::new()
        .text("csrf", csrf.clone())
        .text("key", "2023")
        .text("title", "2023年度履职评估")
        .text("from", "2023-11-01")
        .text("to", "2023-11-30");
    let r = admin
        .client
        .post(format!("{}/admin/rounds", server.url))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        "/admin/rounds/2023"
    );
    // A bad key is refused with the reason.
    let bad = Form::new()
        .text("csrf", csrf.clone())
        .text("key", "20 23")
        .text("title", "x");
    let r = admin
        .client
        .post(format!("{}/admin/rounds", server.url))
        .multipart(bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    assert!(r.text().await.unwrap().contains("轮次代码"));
    // Units, then a roster in GBK with one bad row: nothing stored, the row named.
    let units = "单位名称,单位类型,系统\n汉滨区教育体育局,党政机关,教体\n汉滨区公路管理段,事业单位,交通运输\n";
    let (status, body) = upload(
        &admin,
        "/admin/rounds/2023/units",
        &csrf,
        "units.csv",
        units.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("已导入 2 行"));
    let roster = "参评单位,姓名,联系电话,代表类别\n汉滨区教育体育局,张三,13912340001,人大代表\n汉滨区教育体育局,李四,1391234,\n汉滨区公路管理段,王五,0915-3212345,\n";
    let (gbk, _, _) = encoding_rs::GBK.encode(roster);
    let (status, body) = upload(
        &admin,
        "/admin/rounds/2023/roster",
        &csrf,
        "roster.csv",
        gbk.to_vec(),
    )
    .await;
    assert_eq!(status, 422);
    assert!(body.contains("整个文件未导入"), "{body}");
    assert!(body.contains("<td class=\"num\">3</td>"), "line 3 is named");
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM members m JOIN units u ON u.id = m.unit_id JOIN rounds r ON r.id = u.round_id WHERE r.key = '2023'"),
        0
    );
    let fixed = roster.replace("1391234,", "13912340002,");
    let (gbk, _, _) = encoding_rs::GBK.encode(&fixed);
    let (status, body) = upload(
        &admin,
        "/admin/rounds/2023/roster",
        &csrf,
        "roster.csv",
        gbk.to_vec(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("已导入 3 行"));
    // The plan for all active operators, with a seed kept for re-derivation.
    let plan = admin
        .post(
            "/admin/rounds/2023/plan",
            &[("csrf", &csrf), ("seed", "42")],
        )
        .await;
    assert_eq!(plan.status, 303);
    let page = admin.get(plan.location.as_deref().unwrap()).await;
    assert!(
        page.body.contains("已生成拨打计划:3 名代表"),
        "{}",
        page.body
    );
    assert!(page.body.contains("<code>42</code>"));
    assert_eq!(
        sp.count(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'plan.generate' AND actor = 'admin'"
        ),
        1
    );
    // Reassigning op1's pending calls to op2.
    let moved = admin
        .post(
            &format!("/admin/rounds/{ROUND}/reassign"),
            &[
                ("csrf", &csrf),
                ("from", "op1"),
                ("to", "op2"),
                ("seed", "1"),
            ],
        )
        .await;
    assert_eq!(moved.status, 303, "{}", moved.body);
    assert_eq!(
        sp.count(&format!(
            "SELECT COUNT(*) FROM queue q JOIN users u ON u.id = q.operator_id JOIN rounds r ON r.id = q.round_id
             WHERE u.login = 'op1' AND r.key = '{ROUND}'"
        )),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn corrections_keep_before_after_who_when_and_why() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let complete = record(
        &server.url,
        &[
            ("outcome", "complete"),
            ("a0", "1"),
            ("a1", "1"),
            ("a2", "2"),
            ("a3", "1"),
            ("a4", "3"),
        ],
    )
    .await;
    let admin = Web::signed_in(&server.url, "admin").await;
    let csrf = admin.csrf().await;
    let member: i64 = sp
        .sql()
        .query_row(
            "SELECT member_id FROM attempts WHERE id = ?1",
            [complete],
            |r| r.get(0),
        )
        .unwrap();
    let path = format!("/admin/rounds/{ROUND}/attempts/{complete}/answers");
    // Without a reason, or leaving a complete interview incomplete: refused, nothing stored.
    let no_reason = admin
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("a0", "1"),
                ("a1", "1"),
                ("a2", "1"),
                ("a3", "1"),
                ("a4", "3"),
            ],
        )
        .await;
    assert_eq!(no_reason.status, 422);
    assert!(no_reason.body.contains("必须填写原因"));
    let incomplete = admin
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("a0", "1"),
                ("a1", ""),
                ("a2", "1"),
                ("a3", "1"),
                ("a4", "3"),
                ("reason", "x"),
            ],
        )
        .await;
    assert_eq!(incomplete.status, 422);
    assert!(
        incomplete.body.contains("完成访问必须回答全部"),
        "{}",
        incomplete.body
    );
    assert_eq!(sp.count("SELECT COUNT(*) FROM answer_edits"), 0);
    // A keying error corrected, with its reason.
    let ok = admin
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("a0", "1"),
                ("a1", "1"),
                ("a2", "1"),
                ("a3", "1"),
                ("a4", "3"),
                ("reason", "回听录音,第3题应为满意"),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let answers: String = sp
        .sql()
        .query_row(
            "SELECT answers FROM attempts WHERE id = ?1",
            [complete],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(answers, "[0,0,0,0,2]");
    let detail: String = sp
        .sql()
        .query_row(
            "SELECT detail FROM audit_log WHERE action = 'attempt.edit_answers' AND actor = 'admin'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let d: serde_json::Value = serde_json::from_str(&detail).unwrap();
    assert_eq!(d["before"], serde_json::json!([0, 0, 1, 0, 2]));
    assert_eq!(d["after"], serde_json::json!([0, 0, 0, 0, 2]));
    assert_eq!(d["reason"], "回听录音,第3题应为满意");
    assert_eq!(d["before_labels"][2], "比较满意");
    let page = admin
        .get(&format!("/admin/rounds/{ROUND}/members/{member}"))
        .await;
    assert!(page.body.contains("回听录音,第3题应为满意"));
    assert!(page.body.contains("id=\"edits\""));

    // A refusal is final until an admin reopens it with a reason.
    let refusal = record(&server.url, &[("outcome", "refused")]).await;
    let refused: i64 = sp
        .sql()
        .query_row(
            "SELECT member_id FROM attempts WHERE id = ?1",
            [refusal],
            |r| r.get(0),
        )
        .unwrap();
    let in_queue = |m: i64| sp.count(&format!("SELECT COUNT(*) FROM queue WHERE member_id = {m}"));
    assert_eq!(in_queue(refused), 0);
    let reopen = format!("/admin/rounds/{ROUND}/members/{refused}/reopen");
    assert_eq!(
        admin
            .post(&reopen, &[("csrf", &csrf), ("reason", " ")])
            .await
            .status,
        422
    );
    let done = admin
        .post(
            &reopen,
            &[("csrf", &csrf), ("reason", "本人来电表示愿意接受访问")],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(in_queue(refused), 1);
    // A complete interview cannot be reopened.
    let nope = admin
        .post(
            &format!("/admin/rounds/{ROUND}/members/{member}/reopen"),
            &[("csrf", &csrf), ("reason", "试试")],
        )
        .await;
    assert_eq!(nope.status, 422);
    assert!(nope.body.contains("已完成访问"));

    // A wrong number corrected: the member is called again; the log keeps only masks.
    let wrong = record(&server.url, &[("outcome", "wrong_number")]).await;
    let wrong_member: i64 = sp
        .sql()
        .query_row(
            "SELECT member_id FROM attempts WHERE id = ?1",
            [wrong],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(in_queue(wrong_member), 0);
    let fix = format!("/admin/rounds/{ROUND}/members/{wrong_member}/phone");
    let bad = admin
        .post(
            &fix,
            &[("csrf", &csrf), ("phone", "12345"), ("reason", "更正")],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("新号码无效"));
    let fixed = admin
        .post(
            &fix,
            &[
                ("csrf", &csrf),
                ("phone", "139-0000-2222"),
                ("area_code", "0915"),
                ("reason", "单位来函更正"),
            ],
        )
        .await;
    assert_eq!(fixed.status, 303, "{}", fixed.body);
    assert_eq!(in_queue(wrong_member), 1);
    let phone: String = sp
        .sql()
        .query_row(
            "SELECT phone FROM members WHERE id = ?1",
            [wrong_member],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(phone, "13900002222");
    let logged: String = sp
        .sql()
        .query_row(
            "SELECT detail FROM audit_log WHERE action = 'member.fix_phone'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        logged.contains("139****2222") && !logged.contains("13900002222"),
        "{logged}"
    );
    // The admin's member page shows the number masked.
    let page = admin
        .get(&format!("/admin/rounds/{ROUND}/members/{wrong_member}"))
        .await;
    assert!(page.body.contains("139****2222"));
    assert!(!page.body.contains("13900002222"));

    // The audit log filters by action prefix, actor and round.
    let rows = |body: &str| body[body.find("id=\"audit\"").unwrap()..].to_string();
    let auth = admin.get("/audit?action=auth.").await;
    assert!(rows(&auth.body).contains("auth.signin"));
    assert!(!rows(&auth.body).contains("member.fix_phone"));
    let by_admin = admin
        .get(&format!("/audit?actor=admin&round={ROUND}"))
        .await;
    assert!(rows(&by_admin.body).contains("attempt.edit_answers"));
    assert!(rows(&by_admin.body).contains("member.reopen"));
    assert!(!rows(&by_admin.body).contains("contact.claim"));
    assert!(!rows(&by_admin.body).contains("auth.signin"));
    assert!(by_admin.body.contains("哈希链完整"));
}

#[tokio::test(flavor = "multi_thread")]
async fn users_are_added_disabled_and_reset_from_the_console() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let admin = Web::signed_in(&server.url, "admin").await;
    let csrf = admin.csrf().await;
    let added = admin
        .post(
            "/admin/users",
            &[
                ("csrf", &csrf),
                ("login", "op3"),
                ("name", "话务员三"),
                ("role", "operator"),
                ("password", ""),
            ],
        )
        .await;
    assert_eq!(added.status, 200);
    let start = added.body.find("<code>").unwrap() + 6;
    let password = &added.body[start..start + 16];
    let op3 = Web::new(&server.url);
    assert_eq!(op3.sign_in("op3", password).await.status, 303);
    // A login in use, a weak password: refused with the reason.
    let dup = admin
        .post(
            "/admin/users",
            &[
                ("csrf", &csrf),
                ("login", "op3"),
                ("name", "x"),
                ("role", "operator"),
                ("password", "long-enough-pw"),
            ],
        )
        .await;
    assert_eq!(dup.status, 409);
    let weak = admin
        .post(
            "/admin/users",
            &[
                ("csrf", &csrf),
                ("login", "op4"),
                ("name", "x"),
                ("role", "operator"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(weak.status, 422);
    // Disabling ends the user's sessions at once.
    let off = admin
        .post(
            "/admin/users/op3/active",
            &[("csrf", &csrf), ("active", "0")],
        )
        .await;
    assert_eq!(off.status, 200);
    assert_eq!(op3.get("/call").await.status, 303);
    assert_eq!(
        Web::new(&server.url).sign_in("op3", password).await.status,
        401
    );
    // A reset password is shown once and the old one stops working.
    let op2 = Web::signed_in(&server.url, "op2").await;
    let reset = admin
        .post("/admin/users/op2/password", &[("csrf", &csrf)])
        .await;
    assert_eq!(reset.status, 200);
    assert!(reset.body.contains("id=\"new-password\""));
    assert_eq!(op2.get("/call").await.status, 303, "sessions ended");
    assert_eq!(
        Web::new(&server.url).sign_in("op2", PASSWORD).await.status,
        401
    );
    // An admin cannot lock themselves out.
    let me = admin
        .post(
            "/admin/users/admin/active",
            &[("csrf", &csrf), ("active", "0")],
        )
        .await;
    assert_eq!(me.status, 422);
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM users WHERE login = 'admin' AND active = 1"),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_locked_round_refuses_every_change_and_says_so_everywhere() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let complete = record(
        &server.url,
        &[
            ("outcome", "complete"),
            ("a0", "1"),
            ("a1", "1"),
            ("a2", "1"),
            ("a3", "1"),
            ("a4", "1"),
        ],
    )
    .await;
    let op = Web::signed_in(&server.url, "op1").await;
    let op_csrf = op.csrf().await;
    // op1 holds the next contact (claimed after recording) while the admin locks.
    let held = op.get("/call").await;
    let token = held.input("token").expect("held contact");
    let admin = Web::signed_in(&server.url, "admin").await;
    let csrf = admin.csrf().await;
    let lock = format!("/admin/rounds/{ROUND}/lock");
    let unconfirmed = admin
        .post(&lock, &[("csrf", &csrf), ("confirm", "no")])
        .await;
    assert_eq!(unconfirmed.status, 422);
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM rounds WHERE locked_at IS NOT NULL"),
        0
    );
    let locked = admin
        .post(&lock, &[("csrf", &csrf), ("confirm", ROUND)])
        .await;
    assert_eq!(locked.status, 303);
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM rounds WHERE locked_at IS NOT NULL AND locked_by = 'admin'"),
        1
    );
    let before = sp.count("SELECT COUNT(*) FROM attempts");
    // The operator can record nothing more and is told why.
    let mut form = vec![
        ("csrf", op_csrf.as_str()),
        ("round", ROUND),
        ("token", token.as_str()),
        ("outcome", "no_answer"),
    ];
    let refused = op.post("/call/record", &form).await;
    assert_eq!(refused.status, 409);
    assert!(refused.body.contains("已锁定"));
    form.truncate(2);
    let next = op.post("/call/next", &form).await;
    assert_eq!(next.status, 409);
    assert!(next.body.contains("已锁定"));
    assert_eq!(sp.count("SELECT COUNT(*) FROM attempts"), before);
    // Corrections, plans and uploads are refused too.
    let member: i64 = sp
        .sql()
        .query_row(
            "SELECT member_id FROM attempts WHERE id = ?1",
            [complete],
            |r| r.get(0),
        )
        .unwrap();
    for (path, form) in [
        (
            format!("/admin/rounds/{ROUND}/attempts/{complete}/answers"),
            vec![
                ("csrf", csrf.as_str()),
                ("a0", "2"),
                ("a1", "1"),
                ("a2", "1"),
                ("a3", "1"),
                ("a4", "1"),
                ("reason", "x"),
            ],
        ),
        (
            format!("/admin/rounds/{ROUND}/members/{member}/phone"),
            vec![
                ("csrf", csrf.as_str()),
                ("phone", "13900003333"),
                ("reason", "x"),
            ],
        ),
        (
            format!("/admin/rounds/{ROUND}/plan"),
            vec![("csrf", csrf.as_str())],
        ),
        (
            format!("/admin/rounds/{ROUND}/lock"),
            vec![("csrf", csrf.as_str()), ("confirm", ROUND)],
        ),
    ] {
        let page = admin.post(&path, &form).await;
        assert_eq!(page.status, 409, "{path}: {}", page.body);
        assert!(page.body.contains("已锁定"), "{path}");
    }
    let (status, _) = upload(
        &admin,
        &format!("/admin/rounds/{ROUND}/units"),
        &csrf,
        "u.csv",
        "单位名称,单位类型\n新单位,事业单位\n".as_bytes().to_vec(),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(sp.count("SELECT COUNT(*) FROM answer_edits"), 0);
    // "已锁定" everywhere.
    let stat = Web::signed_in(&server.url, "stat").await;
    for (web, path) in [
        (&admin, format!("/admin/rounds/{ROUND}")),
        (&admin, "/admin".to_string()),
        (&admin, format!("/admin/rounds/{ROUND}/members/{member}")),
        (&stat, format!("/rounds/{ROUND}/progress")),
        (&op, format!("/call?round={ROUND}")),
        (&op, "/call/list".to_string()),
        (&admin, "/".to_string()),
        (&stat, "/results".to_string()),
    ] {
        let page = web.get(&path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(page.body.contains("已锁定"), "{path} does not say 已锁定");
    }
    let admin_page = admin.get(&format!("/admin/rounds/{ROUND}")).await;
    assert!(
        !admin_page.body.contains("id=\"lock-form\""),
        "no second lock"
    );
    assert!(
        !admin_page.body.contains("id=\"plan-form\""),
        "no plan form"
    );
}

/// The administrator's form refuses keys and titles with control characters (and keys with
/// backslashes, path dots or look-alikes) with 422 and the reason in Chinese; nothing is
/// stored or logged.
#[tokio::test(flavor = "multi_thread")]
async fn the_round_form_refuses_control_characters_in_keys_and_titles() {
    let sp = fixture();
    let rounds_before = sp.count("SELECT COUNT(*) FROM rounds");
    let logged_before = sp.count("SELECT COUNT(*) FROM audit_log WHERE action = 'round.create'");
    let server = WebServer::start(&sp, &[]);
    let admin = Web::signed_in(&server.url, "admin").await;
    let csrf = admin.csrf().await;
    let cases: &[(&str, &str, &str)] = &[
        (
            "a\u{1}b",
            "2023年度",
            "轮次代码的第 2 个字符是控制字符 U+0001",
        ),
        ("a\tb", "2023年度", "轮次代码的第 2 个字符是制表符"),
        ("a\nb", "2023年度", "轮次代码的第 2 个字符是换行符"),
        ("a\\b", "2023年度", "反斜杠"),
        ("..", "2023年度", "轮次代码不能以“.”开头"),
        ("%2e%2e", "2023年度", "“%”"),
        ("ｔ", "2023年度", "“ｔ”"),
        (
            "2023",
            "x.\nERASE FILE='a'.",
            "轮次名称的第 3 个字符是换行符",
        ),
        ("2023", "a\u{1}b", "轮次名称的第 2 个字符是控制字符 U+0001"),
        ("2023", "a\tb", "制表符"),
    ];
    for (key, title, want) in cases {
        let form = Form::new()
            .text("csrf", csrf.clone())
            .text("key", key.to_string())
            .text("title", title.to_string());
        let (status, body) = post_multipart(&admin, "/admin/rounds", form).await;
        assert_eq!(status, 422, "{key:?} / {title:?}: {body}");
        assert!(
            body.contains(want),
            "{key:?} / {title:?}: no {want} in\n{body}"
        );
    }
    // A survey whose label holds a line break (TOML's "\n") is refused with the field named.
    let survey = include_str!("../../surveys/default.toml").replacen(
        "label = \"办事效率\"",
        "label = \"办事\\n效率\"",
        1,
    );
    assert!(survey.contains("办事\\n效率"));
    let form = Form::new()
        .text("csrf", csrf.clone())
        .text("key", "2024")
        .text("title", "2024年度")
        .part(
            "file",
            Part::bytes(survey.into_bytes()).file_name("survey.toml"),
        );
    let (status, body) = post_multipart(&admin, "/admin/rounds", form).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("dimensions.efficiency.label 的第 3 个字符是换行符"),
        "{body}"
    );
    assert_eq!(sp.count("SELECT COUNT(*) FROM rounds"), rounds_before);
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM audit_log WHERE action = 'round.create'"),
        logged_before
    );
}

/// The member search looks in every unit unless the admin narrows it to one: a name in the
/// third unit is found from the page's default, and the unit is shown beside it.
#[tokio::test(flavor = "multi_thread")]
async fn member_search_looks_in_every_unit_by_default() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let admin = Web::signed_in(&server.url, "admin").await;
    let members = format!("/admin/rounds/{ROUND}/members");
    // 代表21 is in the third unit (汉滨区公路管理段), not the first.
    let found = admin.get(&format!("{members}?q=代表21")).await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert!(found.body.contains("<td>代表21</td>"), "{}", found.body);
    assert!(
        found.body.contains("<td>汉滨区公路管理段</td>"),
        "{}",
        found.body
    );
    assert!(
        found
            .body
            .contains("<option value=\"\" selected>全部单位</option>"),
        "{}",
        found.body
    );
    // The form's own submission sends `unit=` empty: every unit too.
    let form = admin.get(&format!("{members}?unit=&q=代表21")).await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("<td>代表21</td>"));
    // With no query, every unit's members are listed (3 × 5).
    let all = admin.get(&members).await;
    assert_eq!(all.body.matches("详情与更正").count(), 15, "{}", all.body);
    // Narrowed to the first unit, the same search finds nothing and says where it looked.
    let first_unit: i64 = sp
        .sql()
        .query_row("SELECT MIN(id) FROM units", [], |r| r.get(0))
        .unwrap();
    let narrowed = admin
        .get(&format!("{members}?unit={first_unit}&q=代表21"))
        .await;
    assert_eq!(narrowed.status, 200);
    assert!(!narrowed.body.contains("<td>代表21</td>"));
    assert!(
        narrowed
            .body
            .contains("所选单位中没有姓名或编号为“代表21”的代表"),
        "{}",
        narrowed.body
    );
    // A forged unit value is a clear 400, not a bare deserialisation error.
    let bad = admin.get(&format!("{members}?unit=abc")).await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("参评单位的选择无效"), "{}", bad.body);
}

/// Members added by a roster upload after the plan have no operator: the round page says how
/// many, and one button plans them over the operators without moving anyone already planned.
#[tokio::test(flavor = "multi_thread")]
async fn members_added_after_the_plan_are_planned_by_one_button() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let admin = Web::signed_in(&server.url, "admin").await;
    let csrf = admin.csrf().await;
    let before: Vec<(i64, i64, i64)> = {
        let c = sp.sql();
        let mut st = c
            .prepare("SELECT member_id, operator_id, seq FROM assignments ORDER BY member_id")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(before.len(), 15);
    let roster = "参评单位,姓名,联系电话\n汉滨区教育体育局,新代表甲,13955501001\n汉滨区公路管理段,新代表乙,13955501002\n汉滨区公路管理段,新代表丙,13955501003\n";
    let (status, page) = upload(
        &admin,
        &format!("/admin/rounds/{ROUND}/roster"),
        &csrf,
        "more.csv",
        roster.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("已导入 3 行"), "{page}");
    let round = admin.get(&format!("/admin/rounds/{ROUND}")).await;
    assert!(
        round.body.contains("有 <b>3</b> 名代表尚未分配话务员"),
        "{}",
        round.body
    );
    let done = admin
        .post(
            &format!("/admin/rounds/{ROUND}/plan-unassigned"),
            &[("csrf", &csrf), ("seed", "11")],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let round = admin
        .get(&format!("/admin/rounds/{ROUND}?done=unassigned&n=3"))
        .await;
    assert!(round.body.contains("已为 3 名未分配的代表安排话务员"));
    assert!(!round.body.contains("尚未分配话务员"), "{}", round.body);
    // Everyone planned before keeps operator and place; the three new ones are queued.
    let c = sp.sql();
    for (member, operator, seq) in &before {
        let now: (i64, i64) = c
            .query_row(
                "SELECT operator_id, seq FROM assignments WHERE member_id = ?1",
                [member],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(now, (*operator, *seq), "member {member} moved");
    }
    assert_eq!(sp.count("SELECT COUNT(*) FROM assignments"), 18);
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM queue q JOIN members m ON m.id = q.member_id WHERE m.name LIKE '新代表%'"),
        3
    );
    // Both operators now have 9 calls each (15 + 3 over two operators, balanced).
    assert_eq!(
        sp.count("SELECT MAX(n) - MIN(n) FROM (SELECT COUNT(*) AS n FROM assignments GROUP BY operator_id) AS t"),
        0
    );
    // The plan is stored with its inputs and re-derives for an auditor.
    let verify = sp.run(&["calls", "verify", "--round", ROUND]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    // Nothing left to plan: a second press says so and changes nothing.
    let again = admin
        .post(
            &format!("/admin/rounds/{ROUND}/plan-unassigned"),
            &[("csrf", &csrf), ("seed", "")],
        )
        .await;
    assert!(
        again.body.contains("每名代表都已分配话务员"),
        "{}",
        again.body
    );
    assert_eq!(sp.count("SELECT COUNT(*) FROM plans"), 2);
}

/// An attempt stored with an outcome no reader knows (before migration 013's triggers): the
/// console names the row instead of showing "no answer", and no page fails with a 500.
#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_stored_outcome_is_named_on_every_page() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let attempt = record(&server.url, &[("outcome", "no_answer")]).await;
    let c = sp.sql();
    let member: i64 = c
        .query_row(
            "SELECT member_id FROM attempts WHERE id = ?1",
            [attempt],
            |r| r.get(0),
        )
        .unwrap();
    // Written as an older version could have: around the trigger, which then comes back.
    if sp.is_postgres() {
        c.execute_batch(&format!(
            "ALTER TABLE attempts DISABLE TRIGGER attempts_outcome_update;
             ALTER TABLE attempts DROP CONSTRAINT attempts_outcome_known;
             UPDATE attempts SET outcome = 'maybe' WHERE id = {attempt};
             ALTER TABLE attempts ENABLE TRIGGER attempts_outcome_update;
             ALTER TABLE attempts ADD CONSTRAINT attempts_outcome_known CHECK (
                 outcome IN ('complete', 'partial', 'refused', 'break_off', 'respondent_unavailable',
                             'voicemail', 'no_answer', 'busy', 'appointment', 'wrong_number',
                             'not_in_service', 'unable')) NOT VALID;"
        ))
        .unwrap();
    } else {
        let trigger: String = c
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'attempts_outcome_update'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        c.execute_batch(&format!(
            "DROP TRIGGER attempts_outcome_update;
             UPDATE attempts SET outcome = 'maybe' WHERE id = {attempt};
             {trigger};"
        ))
        .unwrap();
    }
    drop(c);
    let named = format!("attempts 第 {attempt} 行的 outcome 列");

    let admin = Web::signed_in(&server.url, "admin").await;
    for path in [
        format!("/admin/rounds/{ROUND}/members/{member}"),
        format!("/admin/rounds/{ROUND}/members"),
    ] {
        let page = admin.get(&path).await;
        assert_eq!(page.status, 409, "{path}: {}", page.body);
        assert!(
            page.body.contains(&named) && page.body.contains("maybe"),
            "{path}: {}",
            page.body
        );
        assert!(!page.body.contains("无人接听"), "{path}");
    }
    // The operator's list shows each member's last outcome: named too, not "no answer".
    let op = Web::signed_in(&server.url, "op1").await;
    let page = op.get("/call/list").await;
    assert_eq!(page.status, 409, "{}", page.body);
    assert!(page.body.contains(&named), "{}", page.body);
    // The results refuse and name the attempt; never a 500.
    let stat = Web::signed_in(&server.url, "stat").await;
    let page = stat.get(&format!("/rounds/{ROUND}/results")).await;
    assert_ne!(page.status, 500, "{}", page.body);
    assert!(page.body.contains(&format!("#{attempt}")), "{}", page.body);
}

/// A refused roster upload, as the office sees it: rows name the file's own column headers,
/// a unit the round lacks points to this page's unit upload (never to a command-line tool),
/// and warnings say that nothing was stored.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_upload_speaks_the_offices_language() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let admin = Web::signed_in(&server.url, "admin").await;
    let csrf = admin.csrf().await;
    // The file's own headers: 单位 / 代表姓名 / 手机号码 (aliases of unit / name / phone);
    // one unknown unit, one bad phone, and a warning-worthy extra column.
    let roster = "单位,代表姓名,手机号码,籍贯\n不存在的局,张三,13955501001,汉滨\n汉滨区教育体育局,李四,12345,汉滨\n";
    let (status, page) = upload(
        &admin,
        &format!("/admin/rounds/{ROUND}/roster"),
        &csrf,
        "bad.csv",
        roster.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("整个文件未导入"), "{page}");
    assert!(page.contains("<td>单位</td>"), "{page}");
    assert!(page.contains("<td>手机号码</td>"), "{page}");
    assert!(!page.contains("<td>unit</td>") && !page.contains("<td>phone</td>"));
    assert!(!page.contains("sheping "), "no command-line advice: {page}");
    assert!(page.contains("id=\"units-hint\""), "{page}");
    assert!(page.contains("“导入参评单位”"), "{page}");
    assert!(
        page.contains("籍贯"),
        "the ignored column is warned about: {page}"
    );
    assert!(page.contains("本次没有保存任何数据"), "{page}");
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM members WHERE name IN ('张三', '李四')"),
        0
    );
}

/// Rejected rows wait for their download on the server's disk, with the names and numbers the
/// file had: in a folder only the service's user may enter, even one an older build left open.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn rejected_rows_wait_in_a_folder_only_the_service_may_enter() {
    use std::os::unix::fs::PermissionsExt;
    let sp = fixture();
    let tmp = sp.path("server-tmp");
    let rejects = tmp.join("sheping-rejects");
    std::fs::create_dir_all(&rejects).unwrap();
    std::fs::set_permissions(&rejects, std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = WebServer::start(&sp, &[("TMPDIR", tmp.to_str().unwrap())]);
    let admin = Web::signed_in(&server.url, "admin").await;
    let csrf = admin.csrf().await;
    let roster = "参评单位,姓名,联系电话\n汉滨区教育体育局,王五,12345\n";
    let (status, page) = upload(
        &admin,
        &format!("/admin/rounds/{ROUND}/roster"),
        &csrf,
        "bad.csv",
        roster.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(status, 422, "{page}");
    let files: Vec<_> = std::fs::read_dir(&rejects).unwrap().flatten().collect();
    assert_eq!(files.len(), 1, "the rejected row waits for its download");
    assert!(
        std::fs::read_to_string(files[0].path())
            .unwrap()
            .contains("王五")
    );
    let mode = std::fs::metadata(&rejects).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "rejects folder mode {mode:o}");
}
