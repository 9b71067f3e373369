//! The round's tasks in the admin console over real HTTP: on-site data and paper/offline
//! attempts (upload → preview that stores nothing → confirm that stores exactly the preview,
//! the same as the CLI with the same file), refused files with line numbers in the file's own
//! headers, conflicts of interest added and removed with the plan's balance, roles, form
//! tokens and the audit log.

use crate::common;

use common::Sheping;
use common::browser::{ROUND, UNITS, Web, WebServer, fixture, fixture_phones};
use reqwest::multipart::{Form, Part};

async fn upload(
    web: &Web,
    path: &str,
    csrf: &str,
    file: &str,
    body: &str,
    flags: &[&str],
) -> (u16, String) {
    let mut form = Form::new().text("csrf", csrf.to_string()).part(
        "file",
        Part::bytes(body.as_bytes().to_vec()).file_name(file.to_string()),
    );
    for f in flags {
        form = form.text(f.to_string(), "1");
    }
    let r = web
        .client
        .post(format!("{}{path}", web.url))
        .multipart(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn token_of(body: &str) -> String {
    common::browser::input_value(body, "token").expect("a confirm token on the preview")
}

fn onsite_rows(sp: &Sheping) -> i64 {
    sp.count("SELECT COUNT(*) FROM onsite_ballots") + sp.count("SELECT COUNT(*) FROM onsite_scores")
}

fn audit_count(sp: &Sheping, action: &str) -> i64 {
    sp.count(&format!(
        "SELECT COUNT(*) FROM audit_log WHERE action = '{action}'"
    ))
}

fn ballots_csv() -> String {
    format!(
        "参评单位,选票编号,职能职责履行,办事效率,服务质量,作风形象,社会反响,总体评价\n\
         {a},1,满意,满意,比较满意,满意,满意,\n\
         {a},2,1,2,1,1,3,\n\
         {a},3,,,,,,比较满意\n\
         {b},1,满意,基本满意,满意,满意,满意,\n\
         {b},2,,,,,,不满意\n",
        a = UNITS[0],
        b = UNITS[1]
    )
}

/// What `onsite show --json` says, per unit.
fn onsite_show(sp: &Sheping) -> serde_json::Value {
    sp.json(&["onsite", "show", "--round", ROUND, "--json"])
}

#[tokio::test(flavor = "multi_thread")]
async fn onsite_preview_stores_nothing_and_confirm_stores_what_the_cli_stores() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let admin = Web::signed_in(&server.url, "admin").await;
    let csrf = admin.csrf().await;
    let page = admin.get(&format!("/admin/rounds/{ROUND}")).await;
    assert!(
        page.body.contains(&format!("/admin/rounds/{ROUND}/onsite")),
        "the round page links to the on-site page"
    );
    let page = admin.get(&format!("/admin/rounds/{ROUND}/onsite")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("上传并预览"));

    let path = format!("/admin/rounds/{ROUND}/onsite");
    let (status, body) = upload(&admin, &path, &csrf, "ballots.csv", &ballots_csv(), &[]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("尚未保存任何数据"), "{body}");
    assert!(body.contains("<b id=\"preview-total\">5</b>"), "{body}");
    assert!(body.contains("3 张选票(其中 1 张只填总体评价)"), "{body}");
    assert!(body.contains("2 张选票(其中 1 张只填总体评价)"), "{body}");
    // The first rows as read: line 3 with its levels by number turned into labels.
    assert!(
        body.contains("<td class=\"num\">3</td><td>汉滨区教育体育局</td><td>2</td><td>满意</td><td>比较满意</td><td>满意</td><td>满意</td><td>基本满意</td>"),
        "{body}"
    );
    assert!(body.contains("还有 1 个单位没有现场评价数据"), "{body}");
    assert_eq!(onsite_rows(&sp), 0, "a preview stores nothing");
    assert_eq!(audit_count(&sp, "onsite.preview"), 1);
    assert_eq!(audit_count(&sp, "onsite.import"), 0);

    // Another admin's session cannot confirm this preview (and does not spend it).
    common::add_user(&sp, "admin2", "admin");
    let other = Web::signed_in(&server.url, "admin2").await;
    let other_csrf = other.csrf().await;
    let token = token_of(&body);
    let r = other
        .post(
            &format!("{path}/confirm"),
            &[("csrf", &other_csrf), ("token", &token)],
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(onsite_rows(&sp), 0);

    let r = admin
        .post(
            &format!("{path}/confirm"),
            &[("csrf", &csrf), ("token", &token)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("已导入 5 条现场评价数据"), "{}", r.body);
    assert_eq!(onsite_rows(&sp), 5);
    assert_eq!(audit_count(&sp, "onsite.import"), 1);
    // A second confirmation of the same preview stores nothing more.
    let again = admin
        .post(
            &format!("{path}/confirm"),
            &[("csrf", &csrf), ("token", &token)],
        )
        .await;
    assert_eq!(again.status, 404);
    assert_eq!(onsite_rows(&sp), 5);

    // The same file through the CLI on the same round built the same way stores the same.
    let twin = fixture();
    let file = twin.write("ballots.csv", ballots_csv().as_bytes());
    twin.ok(&["onsite", "import", "--round", ROUND, file.to_str().unwrap()]);
    assert_eq!(onsite_show(&sp), onsite_show(&twin));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_onsite_file_names_lines_by_its_own_headers_and_stores_nothing() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let admin = Web::signed_in(&server.url, "admin").await;
    let csrf = admin.csrf().await;
    let path = format!("/admin/rounds/{ROUND}/onsite");
    let bad = ballots_csv()
        .replace("3,,,,,,比较满意", "3,,,,,,很好")
        .replace(UNITS[1], "汉滨区住房和城乡建设");
    let (status, body) = upload(&admin, &path, &csrf, "bad.csv", &bad, &[]).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("整个文件未导入"), "{body}");
    assert!(!body.contains("id=\"confirm\""), "no confirmation offered");
    // Line 4 is the bad level, lines 5 and 6 the misspelt unit; columns by the file's headers.
    assert!(
        body.contains("<td class=\"num\">4</td><td>总体评价</td>"),
        "{body}"
    );
    assert!(
        body.contains("<td class=\"num\">5</td><td>参评单位</td>"),
        "{body}"
    );
    assert!(body.contains("是否应为“汉滨区住房和城乡建设局”"), "{body}");
    let link = body
        .split("id=\"rejects-link\"")
        .next()
        .and_then(|b| b.rsplit("href=\"").next())
        .and_then(|h| h.split('"').next())
        .expect("a rejects link")
        .to_string();
    let rejects = admin.get(&link).await;
    assert_eq!(rejects.status, 200);
    assert!(rejects.body.contains("很好"), "{}", rejects.body);
    assert_eq!(onsite_rows(&sp), 0);

    // With "skip invalid rows" the preview lists the skipped rows and stores only the rest.
    let (status, body) = upload(&admin, &path, &csrf, "bad.csv", &bad, &["skip_invalid"]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("id=\"preview-skipped\""), "{body}");
    assert!(body.contains("<b id=\"preview-total\">2</b>"), "{body}");
    assert_eq!(onsite_rows(&sp), 0);
    let token = token_of(&body);
    let r = admin
        .post(
            &format!("{path}/confirm"),
            &[("csrf", &csrf), ("token", &token)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(onsite_rows(&sp), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_confirmation_after_the_round_changed_stores_nothing() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let admin = Web::signed_in(&server.url, "admin").await;
    let csrf = admin.csrf().await;
    let path = format!("/admin/rounds/{ROUND}/onsite");
    let direct = format!(
        "参评单位,现场评价得分\n{},88.5\n{},90\n",
        UNITS[0], UNITS[1]
    );
    let (status, body) = upload(&admin, &path, &csrf, "direct.csv", &direct, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("直接得分 88.5"), "{body}");
    let token = token_of(&body);
    // Meanwhile the CLI stores a score for the first unit: the file no longer reads the same.
    let other = sp.write(
        "one.csv",
        format!("unit,score\n{},70\n", UNITS[0]).as_bytes(),
    );
    sp.ok(&[
        "onsite",
        "import",
        "--round",
        ROUND,
        other.to_str().unwrap(),
    ]);
    let r = admin
        .post(
            &format!("{path}/confirm"),
            &[("csrf", &csrf), ("token", &token)],
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("未保存任何数据"));
    assert_eq!(onsite_rows(&sp), 1, "only the CLI's score");
    assert_eq!(audit_count(&sp, "onsite.confirm_refused"), 1);
}

fn attempts_csv() -> String {
    let yesterday = (chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai)
        - chrono::Duration::days(1))
    .format("%Y-%m-%d")
    .to_string();
    let phones = fixture_phones();
    format!(
        "参评单位,联系电话,话务员,拨打结果,拨打时间,职能职责履行,办事效率,服务质量,作风形象,社会反响\n\
         {a},{p0},op1,complete,{y} 10:00,满意,满意,比较满意,满意,满意\n\
         {a},{p1},op1,no_answer,{y} 10:05,,,,,\n\
         {b},{p5},op2,refused,{y} 11:00,,,,,\n",
        a = UNITS[0],
        b = UNITS[1],
        p0 = phones[0],
        p1 = phones[1],
        p5 = phones[5],
        y = yesterday
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn paper_attempts_preview_then_confirm_like_the_cli() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let admin = Web::signed_in(&server.url, "admin").await;
    let csrf = admin.csrf().await;
    let path = format!("/admin/rounds/{ROUND}/attempts");
    let attempts = || sp.count("SELECT COUNT(*) FROM attempts");
    let before = attempts();

    // A refused file: a phone not on the unit's panel, named by line and the file's header.
    let bad = attempts_csv().replace(&fixture_phones()[5], "13800000000");
    let (status, body) = upload(&admin, &path, &csrf, "paper.csv", &bad, &[]).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("<td class=\"num\">4</td><td>联系电话</td>"),
        "{body}"
    );
    assert_eq!(attempts(), before);

    let (status, body) = upload(&admin, &path, &csrf, "paper.csv", &attempts_csv(), &[]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("尚未保存任何数据"));
    assert!(body.contains("2 条拨打记录,其中完成访问 1 条"), "{body}");
    assert!(body.contains("<td>完成</td>"), "{body}");
    assert!(!body.contains(&fixture_phones()[0]), "numbers are masked");
    assert_eq!(attempts(), before, "a preview stores nothing");
    assert_eq!(audit_count(&sp, "attempts.preview"), 2);
    // Two confirmations of one preview at the same moment (a double click): stored once.
    let token = token_of(&body);
    let confirm_path = format!("{path}/confirm");
    let form = [("csrf", csrf.as_str()), ("token", token.as_str())];
    let (r, twice) = tokio::join!(
        admin.post(&confirm_path, &form),
        admin.post(&confirm_path, &form)
    );
    let (r, other) = if r.status == 200 {
        (r, twice)
    } else {
        (twice, r)
    };
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(other.status, 404, "{}", other.body);
    assert!(r.body.contains("已导入 3 条拨打记录"), "{}", r.body);
    assert_eq!(attempts(), before + 3);
    assert_eq!(audit_count(&sp, "attempts.import"), 1);

    let twin = fixture();
    let file = twin.write("paper.csv", attempts_csv().as_bytes());
    twin.ok(&[
        "attempts",
        "import",
        "--round",
        ROUND,
        file.to_str().unwrap(),
    ]);
    let q = "SELECT m.phone || '/' || u.login || '/' || a.outcome || '/' || CAST(a.recorded_at AS TEXT) || '/' || COALESCE(a.answers, '') FROM attempts a JOIN members m ON m.id = a.member_id JOIN users u ON u.id = a.operator_id ORDER BY a.member_id, a.recorded_at";
    let of = |s: &Sheping| -> String {
        s.sql()
            .prepare(q)
            .unwrap()
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
            .join(";")
    };
    assert_eq!(of(&sp), of(&twin));
}

#[tokio::test(flavor = "multi_thread")]
async fn exclusions_are_listed_added_and_removed_with_the_plans_balance() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let admin = Web::signed_in(&server.url, "admin").await;
    let csrf = admin.csrf().await;
    let path = format!("/admin/rounds/{ROUND}/exclusions");
    let page = admin.get(&path).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("本轮没有回避记录"));
    // 15 members over two operators by the plan: 8 and 7.
    assert!(
        page.body.contains("<td class=\"num balance\">8</td>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("<td class=\"num balance\">7</td>"));
    assert!(page.body.contains("相差 1 名"));

    let held = sp.count(&format!(
        "SELECT COUNT(*) FROM assignments s JOIN users u ON u.id = s.operator_id JOIN members m ON m.id = s.member_id JOIN units n ON n.id = m.unit_id WHERE u.login = 'op1' AND n.name = '{}'",
        UNITS[0]
    ));
    assert!(held > 0, "the plan gave op1 members of the first unit");
    let r = admin
        .post(
            &path,
            &[("csrf", &csrf), ("operator", "op1"), ("unit", UNITS[0])],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body
            .contains("已记录回避:话务员 op1 不拨打“汉滨区教育体育局”")
    );
    assert!(
        r.body.contains(&format!(
            "话务员 op1 还有“汉滨区教育体育局”的 {held} 名待拨代表"
        )),
        "{}",
        r.body
    );
    assert!(r.body.contains("id=\"by-unit\""));
    assert_eq!(sp.count("SELECT COUNT(*) FROM operator_exclusions"), 1);
    assert_eq!(audit_count(&sp, "operator.exclude"), 1);
    // The CLI lists the same conflict.
    let listed = sp.json(&["operators", "list", "--round", ROUND, "--json"]);
    assert_eq!(listed["by_unit"][UNITS[0]][0], "op1");
    assert_eq!(listed["conflicts"][0]["pending"], held);

    // A re-generated plan honours it; the page then shows no conflict and the new balance.
    let plan = admin
        .post(
            &format!("/admin/rounds/{ROUND}/plan"),
            &[("csrf", &csrf), ("seed", "9")],
        )
        .await;
    assert_eq!(plan.status, 303);
    let page = admin.get(&path).await;
    assert!(!page.body.contains("名待拨代表)"), "{}", page.body);
    // Each unit's five are shared within one between the operators who may call it: op1
    // gets at most 3 + 3 of the other two units, op2 the rest.
    assert!(
        page.body.contains("<td class=\"num balance\">6</td>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("<td class=\"num balance\">9</td>"));
    assert!(page.body.contains("相差 3 名"), "{}", page.body);

    // A user who is not an operator, or a unit not in the round: refused, nothing stored.
    let r = admin
        .post(
            &path,
            &[("csrf", &csrf), ("operator", "stat"), ("unit", UNITS[1])],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("不是话务员"));
    let r = admin
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("operator", "op2"),
                ("unit", "没有这个单位"),
            ],
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(sp.count("SELECT COUNT(*) FROM operator_exclusions"), 1);

    let r = admin
        .post(
            &format!("{path}/remove"),
            &[("csrf", &csrf), ("operator", "op1"), ("unit", UNITS[0])],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("已取消回避"));
    assert_eq!(sp.count("SELECT COUNT(*) FROM operator_exclusions"), 0);
    assert_eq!(audit_count(&sp, "operator.include"), 1);
    assert!(r.body.contains("本轮没有回避记录"));
}

#[tokio::test(flavor = "multi_thread")]
async fn only_admins_with_the_form_token_reach_the_round_tasks() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    for login in ["op1", "eval", "stat"] {
        let web = Web::signed_in(&server.url, login).await;
        let csrf = web.csrf().await;
        for page in ["onsite", "attempts", "exclusions"] {
            let r = web.get(&format!("/admin/rounds/{ROUND}/{page}")).await;
            assert_eq!(r.status, 403, "{login} GET {page}");
        }
        let r = web
            .post(
                &format!("/admin/rounds/{ROUND}/exclusions"),
                &[("csrf", &csrf), ("operator", "op1"), ("unit", UNITS[0])],
            )
            .await;
        assert_eq!(r.status, 403, "{login} adds an exclusion");
        let (status, _) = upload(
            &web,
            &format!("/admin/rounds/{ROUND}/onsite"),
            &csrf,
            "b.csv",
            &ballots_csv(),
            &[],
        )
        .await;
        assert_eq!(status, 403, "{login} uploads on-site data");
    }
    let admin = Web::signed_in(&server.url, "admin").await;
    let r = admin
        .post(
            &format!("/admin/rounds/{ROUND}/exclusions"),
            &[("csrf", "wrong"), ("operator", "op1"), ("unit", UNITS[0])],
        )
        .await;
    assert_eq!(r.status, 403, "a wrong form token");
    let (status, _) = upload(
        &admin,
        &format!("/admin/rounds/{ROUND}/onsite"),
        "wrong",
        "b.csv",
        &ballots_csv(),
        &[],
    )
    .await;
    assert_eq!(status, 403);
    let r = admin
        .post(
            &format!("/admin/rounds/{ROUND}/onsite/confirm"),
            &[
                ("csrf", "wrong"),
                ("token", "00000000000000000000000000000000"),
            ],
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(sp.count("SELECT COUNT(*) FROM operator_exclusions"), 0);
    assert_eq!(onsite_rows(&sp), 0);
    assert!(sp.count("SELECT COUNT(*) FROM audit_log WHERE action = 'auth.forbidden'") >= 9);
}
