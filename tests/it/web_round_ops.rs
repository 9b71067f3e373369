//! What was command-line only, now in the administrator's console over real HTTP (issue 24):
//! API tokens (shown once, used, listed with their last use, revoked), the field-period
//! correction with the CLI's rule, the backup as a download, the purge of a locked round's
//! contacts, and the round's path for the admin, the statistician and the evaluator.

use crate::common;

use common::browser::{ROUND, UNITS, Web, WebServer, fixture, fixture_phones};

fn count(sp: &common::Sheping, sql: &str) -> i64 {
    sp.count(sql)
}

/// The text between `id="{id}"…>` and the next `<`.
fn text_of(body: &str, id: &str) -> Option<String> {
    let start = body.find(&format!("id=\"{id}\""))?;
    let open = body[start..].find('>')? + start + 1;
    let end = body[open..].find('<')? + open;
    Some(body[open..end].to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_is_shown_once_works_on_the_api_shows_its_last_use_and_is_revoked() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let admin = Web::signed_in(&server.url, "admin").await;
    let csrf = admin.csrf().await;
    let page = admin.get("/admin/tokens").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("还没有令牌"), "{}", page.body);

    // The CLI's rules: a description on one line, a bounded validity.
    let bad = admin
        .post(
            "/admin/tokens",
            &[
                ("csrf", &csrf),
                ("login", "eval"),
                ("label", "第一行\n第二行"),
                ("days", "30"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("令牌说明的第 4 个字符"), "{}", bad.body);
    let bad = admin
        .post(
            "/admin/tokens",
            &[("csrf", &csrf), ("login", "eval"), ("days", "九十")],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("有效天数“九十”不是整数"), "{}", bad.body);
    assert_eq!(count(&sp, "SELECT COUNT(*) FROM api_tokens"), 0);

    let made = admin
        .post(
            "/admin/tokens",
            &[
                ("csrf", &csrf),
                ("login", "eval"),
                ("label", "评估组季度分析"),
                ("days", "30"),
            ],
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.body);
    let secret = text_of(&made.body, "token-secret").expect("the secret on the page");
    assert!(secret.starts_with("shp_") && secret.len() == 68, "{secret}");
    assert!(made.body.contains("只显示这一次"));
    // Never again: not on the list, not in the database.
    let list = admin.get("/admin/tokens").await;
    assert!(!list.body.contains(&secret));
    assert!(!list.body.contains("token-secret"));
    assert!(list.body.contains("评估组季度分析") && list.body.contains("从未使用"));
    let stored: String = sp
        .sql()
        .query_row("SELECT token_hash FROM api_tokens", [], |r| r.get(0))
        .unwrap();
    assert_ne!(stored, secret);
    assert_eq!(
        count(
            &sp,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'api_token.create' AND actor = 'admin'"
        ),
        1
    );

    // It works on the API, and the list shows when it was last used.
    let api = reqwest::Client::new();
    let call = |token: String| {
        let api = api.clone();
        let url = format!("{}/api/v1/rounds", server.url);
        async move {
            api.get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(call(secret.clone()).await, 200);
    let list = admin.get("/admin/tokens").await;
    let id: i64 = sp
        .sql()
        .query_row("SELECT id FROM api_tokens", [], |r| r.get(0))
        .unwrap();
    let row_start = list.body.find(&format!("id=\"token-{id}\"")).unwrap();
    let row = &list.body[row_start..row_start + list.body[row_start..].find("</tr>").unwrap()];
    assert!(!row.contains("从未使用"), "{row}");
    assert!(row.contains("有效"), "{row}");
    let last_used = || -> i64 {
        sp.sql()
            .query_row("SELECT last_used_at FROM api_tokens", [], |r| r.get(0))
            .unwrap()
    };
    let first = last_used();
    // At most one write a minute per token: a second read right away stores nothing.
    assert_eq!(call(secret.clone()).await, 200);
    assert_eq!(last_used(), first);

    // Revoked: refused by the API from then on.
    let revoked = admin
        .post(&format!("/admin/tokens/{id}/revoke"), &[("csrf", &csrf)])
        .await;
    assert_eq!(revoked.status, 303);
    let list = admin.get(revoked.location.as_deref().unwrap()).await;
    assert!(list.body.contains(&format!("已吊销 API 令牌 #{id}")));
    assert_eq!(call(secret).await, 401);
    assert_eq!(
        count(
            &sp,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'api_token.revoke' AND actor = 'admin'"
        ),
        1
    );
    // Revoking twice: the store's message, nothing logged.
    let again = admin
        .post(&format!("/admin/tokens/{id}/revoke"), &[("csrf", &csrf)])
        .await;
    assert_eq!(again.status, 404);
    assert!(again.body.contains("没有可吊销的 API 令牌"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_field_period_is_corrected_with_the_cli_rule_and_message() {
    let sp = fixture();
    // The CLI's message for a reversed period, read before the server holds the database.
    let cli = sp.run(&[
        "round",
        "field",
        ROUND,
        "--from",
        "2022-11-30",
        "--to",
        "2022-11-01",
    ]);
    assert!(!cli.status.success());
    let cli_err = String::from_utf8_lossy(&cli.stderr).to_string();
    let rule = "调查期的开始日期 2022-11-30 晚于结束日期 2022-11-01";
    assert!(cli_err.contains(rule), "{cli_err}");

    let server = WebServer::start(&sp, &[]);
    let admin = Web::signed_in(&server.url, "admin").await;
    let csrf = admin.csrf().await;
    let path = format!("/admin/rounds/{ROUND}/field");
    let page = admin.get(&path).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("field-form"));
    let before: String = sp
        .sql()
        .query_row("SELECT field_start FROM rounds WHERE key = 't'", [], |r| {
            r.get(0)
        })
        .unwrap();

    let reversed = admin
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("from", "2022-11-30"),
                ("to", "2022-11-01"),
            ],
        )
        .await;
    assert_eq!(reversed.status, 422);
    assert!(reversed.body.contains(rule), "{}", reversed.body);
    let bad = admin
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("from", "2022-13-01"),
                ("to", "2022-12-01"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(
        bad.body.contains("开始日期“2022-13-01”不是有效日期"),
        "{}",
        bad.body
    );
    let empty = admin
        .post(&path, &[("csrf", &csrf), ("from", "2022-11-01")])
        .await;
    assert_eq!(empty.status, 422);
    assert!(empty.body.contains("请填写结束日期"));
    // A new round's period: the same rule and message.
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf.clone())
        .text("key", "2023")
        .text("title", "2023年度")
        .text("from", "2022-11-30")
        .text("to", "2022-11-01");
    let r = admin
        .client
        .post(format!("{}/admin/rounds", server.url))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    assert!(r.text().await.unwrap().contains(rule));
    let unchanged: String = sp
        .sql()
        .query_row("SELECT field_start FROM rounds WHERE key = 't'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(unchanged, before);

    let ok = admin
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("from", "2022-11-01"),
                ("to", "2022-11-30"),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let shown = admin.get(ok.location.as_deref().unwrap()).await;
    assert_eq!(
        text_of(&shown.body, "current").as_deref(),
        Some("2022-11-01 至 2022-11-30")
    );
    assert!(shown.body.contains("调查期已更正"));
    let (a, b): (String, String) = sp
        .sql()
        .query_row(
            "SELECT field_start, field_end FROM rounds WHERE key = 't'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((a.as_str(), b.as_str()), ("2022-11-01", "2022-11-30"));
    assert_eq!(
        count(
            &sp,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'round.field' AND actor = 'admin' AND round_key = 't'"
        ),
        1
    );

    // Locked: refused, as by the CLI.
    let lock = admin
        .post(
            &format!("/admin/rounds/{ROUND}/lock"),
            &[("csrf", &csrf), ("confirm", ROUND)],
        )
        .await;
    assert_eq!(lock.status, 303);
    let locked = admin
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("from", "2022-11-02"),
                ("to", "2022-11-30"),
            ],
        )
        .await;
    assert_eq!(locked.status, 409);
    assert!(locked.body.contains("已锁定"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_downloads_as_a_valid_database_and_is_audited() {
    if common::sqlite_only("the console's backup is SQLite's online copy of the file") {
        return;
    }
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let admin = Web::signed_in(&server.url, "admin").await;
    let csrf = admin.csrf().await;
    let page = admin.get("/admin/backup").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("备份含有个人信息"));
    let r = admin
        .client
        .post(format!("{}/admin/backup", server.url))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disposition.starts_with("attachment; filename=\"sheping-backup-")
            && disposition.ends_with(".db\""),
        "{disposition}"
    );
    assert_eq!(r.headers()["cache-control"], "no-store");
    let bytes = r.bytes().await.unwrap();
    assert!(bytes.starts_with(b"SQLite format 3\0"));
    let file = sp.path("downloaded.db");
    std::fs::write(&file, &bytes).unwrap();
    let copy = rusqlite::Connection::open(&file).unwrap();
    let ok: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let members: i64 = copy
        .query_row("SELECT COUNT(*) FROM members", [], |r| r.get(0))
        .unwrap();
    assert_eq!(members, 15);
    let name: String = copy
        .query_row("SELECT title FROM rounds WHERE key = 't'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(name, "测试轮次");
    // Logged, naming who downloaded it; no copy left on the server.
    let detail: String = sp
        .sql()
        .query_row(
            "SELECT detail FROM audit_log WHERE action = 'backup' AND actor = 'admin'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let fname = disposition
        .trim_start_matches("attachment; filename=\"")
        .trim_end_matches('"');
    assert!(detail.contains(fname), "{detail}");
    let dir = std::env::temp_dir().join("sheping-backups");
    let left: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.ends_with(fname))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    // Only with the form token.
    let forged = admin.post("/admin/backup", &[]).await;
    assert_eq!(forged.status, 403);
    assert_eq!(
        count(
            &sp,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'backup'"
        ),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn contacts_are_purged_only_on_a_locked_round_with_the_key_typed() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let admin = Web::signed_in(&server.url, "admin").await;
    let csrf = admin.csrf().await;
    let path = format!("/admin/rounds/{ROUND}/purge-contacts");
    let names_left = "SELECT COUNT(*) FROM members WHERE name IS NOT NULL OR phone IS NOT NULL";
    // A backup before the purge: listed as still holding the names. (PostgreSQL has no
    // online copy to download: its backups are pg_dump's.)
    let file_checks = sp.sqlite_file_checks("the backup download and the file's bytes");
    let before_purge = if file_checks {
        let r = admin
            .client
            .post(format!("{}/admin/backup", server.url))
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        r.bytes().await.unwrap().to_vec()
    } else {
        Vec::new()
    };

    let page = admin.get(&path).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"not-locked\""));
    assert!(!page.body.contains("purge-form"));
    let early = admin
        .post(&path, &[("csrf", &csrf), ("confirm", ROUND)])
        .await;
    assert_eq!(early.status, 409);
    assert!(early.body.contains("尚未锁定"), "{}", early.body);
    assert_eq!(count(&sp, names_left), 15);

    let lock = admin
        .post(
            &format!("/admin/rounds/{ROUND}/lock"),
            &[("csrf", &csrf), ("confirm", ROUND)],
        )
        .await;
    assert_eq!(lock.status, 303);
    let page = admin.get(&path).await;
    assert!(page.body.contains("purge-form"));
    assert_eq!(text_of(&page.body, "with-contacts").as_deref(), Some("15"));
    if file_checks {
        assert!(
            page.body.contains("网页下载 sheping-backup-"),
            "{}",
            page.body
        );
    }
    // The confirmation the lock asks too: the round's key typed in.
    let wrong = admin
        .post(&path, &[("csrf", &csrf), ("confirm", "T")])
        .await;
    assert_eq!(wrong.status, 422);
    assert!(wrong.body.contains("请在确认框中输入轮次代码"));
    assert_eq!(count(&sp, names_left), 15);

    let done = admin
        .post(&path, &[("csrf", &csrf), ("confirm", ROUND)])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let page = admin.get(done.location.as_deref().unwrap()).await;
    assert!(page.body.contains("已清除本轮代表的姓名和联系方式"));
    assert_eq!(text_of(&page.body, "with-contacts").as_deref(), Some("0"));
    assert_eq!(count(&sp, names_left), 0);
    assert_eq!(count(&sp, "SELECT COUNT(*) FROM members"), 15);
    assert_eq!(
        count(
            &sp,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'round.purge_contacts' AND actor = 'admin' AND round_key = 't'"
        ),
        1
    );
    // Gone from the files, not only from the rows (as the CLI's purge test checks).
    let mut needles: Vec<String> = fixture_phones();
    for p in fixture_phones() {
        needles.push(p.replace('-', ""));
        if !p.starts_with('0') {
            needles.push(format!("+86{p}"));
        }
    }
    for u in 0..UNITS.len() {
        for k in 0..5 {
            needles.push(format!("代表{u}{k}"));
        }
    }
    if !file_checks {
        // PostgreSQL: no row of any table holds one.
        for row in sp.pg_rows_as_text() {
            let found: Vec<&String> = needles.iter().filter(|n| row.contains(*n)).collect();
            assert!(found.is_empty(), "{row} still holds {found:?}");
        }
        return;
    }
    // The needles are as stored: the backup made before the purge holds every name and
    // every mobile number.
    let held = |bytes: &[u8], n: &str| bytes.windows(n.len()).any(|w| w == n.as_bytes());
    for n in needles
        .iter()
        .filter(|n| n.starts_with("代表") || n.starts_with("139"))
    {
        assert!(
            held(&before_purge, n),
            "the backup before the purge lacks {n}"
        );
    }
    let mut files = vec![sp.db.clone()];
    let wal = sp.db.with_file_name(format!(
        "{}-wal",
        sp.db.file_name().unwrap().to_str().unwrap()
    ));
    if wal.exists() {
        files.push(wal);
    }
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        for n in &needles {
            assert!(!held(&bytes, n), "{} still holds {n}", f.display());
        }
    }
}

/// `id="stage-{stage}" data-state="…"`: the stage's state on a page, if shown.
fn stage(body: &str, stage: &str) -> Option<String> {
    let needle = format!("id=\"stage-{stage}\" data-state=\"");
    let start = body.find(&needle)? + needle.len();
    let end = body[start..].find('"')? + start;
    Some(body[start..end].to_string())
}

/// The stage's `<li>`.
fn stage_html<'a>(body: &'a str, stage: &str) -> &'a str {
    let start = body
        .find(&format!("id=\"stage-{stage}\""))
        .unwrap_or_else(|| panic!("stage {stage} shown"));
    let end = body[start..].find("</li>").unwrap() + start;
    &body[start..end]
}

#[tokio::test(flavor = "multi_thread")]
async fn the_round_path_follows_the_round_for_each_role() {
    let sp = fixture();
    // A fresh round, and one with units and a roster for one unit only.
    sp.ok(&["round", "create", "fresh", "--title", "新轮次"]);
    sp.ok(&["round", "create", "half", "--title", "名单未齐"]);
    let units = sp.write(
        "half-units.csv",
        "单位名称,单位类型,系统\n甲局,党政机关,测试\n乙局,党政机关,测试\n丙段,事业单位,测试\n"
            .as_bytes(),
    );
    sp.ok(&[
        "units",
        "import",
        "--round",
        "half",
        units.to_str().unwrap(),
    ]);
    let roster = sp.write(
        "half-roster.csv",
        "参评单位,姓名,联系电话\n甲局,张三,13700000001\n甲局,李四,13700000002\n".as_bytes(),
    );
    sp.ok(&[
        "roster",
        "import",
        "--round",
        "half",
        roster.to_str().unwrap(),
    ]);
    // Round t had its plan; two representatives come later and have no operator yet.
    let late = sp.write(
        "late.csv",
        format!(
            "参评单位,姓名,联系电话\n{u},迟到一,13700000011\n{u},迟到二,13700000012\n",
            u = UNITS[0]
        )
        .as_bytes(),
    );
    sp.ok(&["roster", "import", "--round", ROUND, late.to_str().unwrap()]);
    let server = WebServer::start(&sp, &[]);
    let admin = Web::signed_in(&server.url, "admin").await;
    let stat = Web::signed_in(&server.url, "stat").await;
    let eval = Web::signed_in(&server.url, "eval").await;
    let op = Web::signed_in(&server.url, "op1").await;

    // Fresh: every stage not started, each saying what is missing.
    let fresh = admin.get("/admin/rounds/fresh").await;
    assert_eq!(fresh.status, 200);
    for s in [
        "units",
        "roster",
        "operators",
        "plan",
        "calling",
        "onsite",
        "results",
        "lock",
        "report",
        "purge",
    ] {
        let want = if s == "operators" {
            "done" // the fixture's operators are there for every round
        } else {
            "not-started"
        };
        assert_eq!(stage(&fresh.body, s).as_deref(), Some(want), "fresh {s}");
    }
    assert!(stage_html(&fresh.body, "units").contains("尚未导入参评单位"));
    assert!(stage_html(&fresh.body, "plan").contains("尚未生成拨打计划"));
    // The stages are in order.
    let order: Vec<usize> = [
        "units", "roster", "plan", "calling", "onsite", "lock", "purge",
    ]
    .iter()
    .map(|s| fresh.body.find(&format!("id=\"stage-{s}\"")).unwrap())
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");

    // A roster for one unit of three.
    let half = admin.get("/admin/rounds/half").await;
    assert_eq!(stage(&half.body, "units").as_deref(), Some("done"));
    assert_eq!(stage(&half.body, "roster").as_deref(), Some("in-progress"));
    assert!(stage_html(&half.body, "roster").contains("2 个单位尚无代表名单"));
    assert_eq!(stage(&half.body, "plan").as_deref(), Some("not-started"));

    // Planned, with two representatives added after the plan; links to each stage's page.
    let t = admin.get(&format!("/admin/rounds/{ROUND}")).await;
    assert_eq!(stage(&t.body, "roster").as_deref(), Some("done"));
    assert_eq!(stage(&t.body, "plan").as_deref(), Some("in-progress"));
    assert!(stage_html(&t.body, "plan").contains("2 名代表未分配话务员"));
    assert_eq!(stage(&t.body, "calling").as_deref(), Some("not-started"));
    assert_eq!(stage(&t.body, "onsite").as_deref(), Some("not-started"));
    assert!(stage_html(&t.body, "onsite").contains("3 个单位尚无现场评价数据"));
    assert!(stage_html(&t.body, "onsite").contains("href=\"/admin/rounds/t/onsite\""));
    assert!(stage_html(&t.body, "operators").contains("href=\"/admin/rounds/t/exclusions\""));
    assert!(stage_html(&t.body, "purge").contains("href=\"/admin/rounds/t/purge-contacts\""));

    // Some calls: one complete interview.
    let csrf = op.csrf().await;
    op.post("/call/next", &[("csrf", &csrf), ("round", ROUND)])
        .await;
    let token = op.get("/call").await.input("token").expect("a contact");
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
    let t = admin.get(&format!("/admin/rounds/{ROUND}")).await;
    assert_eq!(stage(&t.body, "calling").as_deref(), Some("in-progress"));
    let calling = stage_html(&t.body, "calling");
    assert!(calling.contains("已拨打 1 次,完成访问 1 份"), "{calling}");
    assert!(calling.contains("3 个单位完成访问不足 30 份"), "{calling}");
    assert_eq!(stage(&t.body, "results").as_deref(), Some("in-progress"));
    assert_eq!(stage(&t.body, "report").as_deref(), Some("in-progress"));
    assert_eq!(stage(&t.body, "lock").as_deref(), Some("not-started"));

    // The statistician: the same stages, read-only; no admin pages linked, no forms.
    let s = stat.get(&format!("/rounds/{ROUND}")).await;
    assert_eq!(s.status, 200, "{}", s.body);
    assert!(s.body.contains("只读"));
    for st in ["units", "roster", "plan", "calling", "results", "purge"] {
        assert_eq!(stage(&s.body, st), stage(&t.body, st), "statistician {st}");
    }
    assert!(!s.body.contains("href=\"/admin"), "{}", s.body);
    assert!(!s.body.contains("action=\"/admin"));
    assert!(stage_html(&s.body, "calling").contains("href=\"/rounds/t/progress\""));
    // The evaluator: the results stages only.
    let e = eval.get(&format!("/rounds/{ROUND}")).await;
    assert_eq!(e.status, 200);
    for st in [
        "units",
        "roster",
        "operators",
        "plan",
        "calling",
        "onsite",
        "purge",
    ] {
        assert_eq!(stage(&e.body, st), None, "evaluator sees {st}");
    }
    for st in ["results", "lock", "report"] {
        assert_eq!(stage(&e.body, st), stage(&t.body, st), "evaluator {st}");
    }
    assert!(!e.body.contains("href=\"/admin"));
    assert!(!e.body.contains("/progress\""));
    // Operators have no round page.
    assert_eq!(op.get(&format!("/rounds/{ROUND}")).await.status, 403);

    // Locked: the lock and the report are done; the purge is next.
    let csrf = admin.csrf().await;
    let lock = admin
        .post(
            &format!("/admin/rounds/{ROUND}/lock"),
            &[("csrf", &csrf), ("confirm", ROUND)],
        )
        .await;
    assert_eq!(lock.status, 303);
    let t = admin.get(&format!("/admin/rounds/{ROUND}")).await;
    assert_eq!(stage(&t.body, "lock").as_deref(), Some("done"));
    assert_eq!(stage(&t.body, "report").as_deref(), Some("done"));
    assert_eq!(stage(&t.body, "purge").as_deref(), Some("not-started"));
    assert!(stage_html(&t.body, "purge").contains("17 名代表的姓名和号码尚未清除"));
    let e = eval.get(&format!("/rounds/{ROUND}")).await;
    assert_eq!(stage(&e.body, "lock").as_deref(), Some("done"));
    let purged = admin
        .post(
            &format!("/admin/rounds/{ROUND}/purge-contacts"),
            &[("csrf", &csrf), ("confirm", ROUND)],
        )
        .await;
    assert_eq!(purged.status, 303, "{}", purged.body);
    let s = stat.get(&format!("/rounds/{ROUND}")).await;
    assert_eq!(stage(&s.body, "purge").as_deref(), Some("done"));
}
