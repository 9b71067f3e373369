//! The operator's form over real HTTP: the same form sent twice records once and answers the
//! same; the server refuses what must not be stored (incomplete completes, empty partials,
//! appointments in the past, answers on a no-answer, expired or foreign claims) with a clear
//! message and keeps what was keyed; releasing puts the contact back.

use crate::common;

use common::browser::{ROUND, Web, WebServer, fixture};

struct Op {
    web: Web,
    csrf: String,
}

impl Op {
    async fn new(url: &str, login: &str) -> Op {
        let web = Web::signed_in(url, login).await;
        let csrf = web.csrf().await;
        Op { web, csrf }
    }

    async fn claim(&self) -> String {
        let r = self
            .web
            .post("/call/next", &[("csrf", &self.csrf), ("round", ROUND)])
            .await;
        assert_eq!(r.status, 303);
        self.web
            .get(&format!("/call?round={ROUND}"))
            .await
            .input("token")
            .expect("a contact")
    }

    async fn renew(&self, token: &str) -> common::browser::Page {
        self.web
            .post(
                "/call/renew",
                &[("csrf", &self.csrf), ("round", ROUND), ("token", token)],
            )
            .await
    }

    async fn record(&self, token: &str, fields: &[(&str, &str)]) -> common::browser::Page {
        let mut form = vec![
            ("csrf", self.csrf.as_str()),
            ("round", ROUND),
            ("token", token),
        ];
        form.extend_from_slice(fields);
        self.web.post("/call/record", &form).await
    }
}

const ALL_FIVE: [(&str, &str); 5] = [
    ("a0", "1"),
    ("a1", "2"),
    ("a2", "2"),
    ("a3", "1"),
    ("a4", "4"),
];

#[tokio::test(flavor = "multi_thread")]
async fn the_same_form_twice_records_once_and_answers_the_same() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let op = Op::new(&server.url, "op1").await;
    let token = op.claim().await;
    let mut fields = vec![("outcome", "complete"), ("ms0", "1500"), ("ms1", "2600")];
    fields.extend_from_slice(&ALL_FIVE);
    let first = op.record(&token, &fields).await;
    let second = op.record(&token, &fields).await;
    assert_eq!(first.status, 200);
    assert_eq!(second.status, 200);
    // The answer is the next screen, with the confirmation and its own address.
    let done_url = first.page_url().unwrap();
    assert!(
        done_url.starts_with(&format!("/call?round={ROUND}&done=")),
        "{done_url}"
    );
    assert_eq!(second.page_url(), first.page_url(), "the same confirmation");
    assert_eq!(
        second.input("token"),
        first.input("token"),
        "the same next contact"
    );
    assert_eq!(sp.count("SELECT COUNT(*) FROM attempts"), 1);
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM queue WHERE claim_token IS NOT NULL"),
        1,
        "one next contact, not two"
    );
    let page = op.web.get(&done_url).await;
    assert!(page.body.contains("id=\"confirmation\""));
    // The line names the recorded contact's unit, the attempt's number and its outcome.
    let unit: String = sp
        .sql()
        .query_row(
            "SELECT u.name FROM attempts a JOIN members m ON m.id = a.member_id JOIN units u ON u.id = m.unit_id",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let line = format!("✓ 已保存:{unit} · 第 1 次拨打 · 完成");
    assert!(page.body.contains(&line), "{line} in {}", page.body);
    let ms: String = sp
        .sql()
        .query_row("SELECT answer_ms FROM attempts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ms, "[1500,2600,null,null,null]");
    // Another operator replaying op1's form gets nothing stored.
    let op2 = Op::new(&server.url, "op2").await;
    let stolen = op2.record(&token, &fields).await;
    assert_eq!(stolen.status, 409);
    assert!(stolen.body.contains("其他话务员"), "{}", stolen.body);
    assert_eq!(sp.count("SELECT COUNT(*) FROM attempts"), 1);
    // Nor does op2 see op1's attempt by putting its id in the URL, or anything for an id that
    // does not exist.
    let peek = op2.web.get(&done_url).await;
    assert_eq!(peek.status, 200);
    assert!(!peek.body.contains("已保存"), "{}", peek.body);
    let nothing = op
        .web
        .get(&format!("/call?round={ROUND}&done=999999"))
        .await;
    assert_eq!(nothing.status, 200);
    assert!(!nothing.body.contains("已保存"));
}

/// The answer to a recorded call is the next screen, read in the record's own write: the same
/// page the screen's address shows when it is loaded again (contact, counts, confirmation).
#[tokio::test(flavor = "multi_thread")]
async fn a_record_answers_with_the_next_screen_as_its_write_left_it() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let op = Op::new(&server.url, "op1").await;
    let token = op.claim().await;
    let mut fields = vec![("outcome", "complete")];
    fields.extend_from_slice(&ALL_FIVE);
    let answer = op.record(&token, &fields).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let attempt: i64 = sp.count("SELECT id FROM attempts");
    assert_eq!(answer.done_id(), Some(attempt));
    let (next_token, unit): (String, String) = sp
        .sql()
        .query_row(
            "SELECT q.claim_token, u.name FROM queue q JOIN members m ON m.id = q.member_id
             JOIN units u ON u.id = m.unit_id WHERE q.claim_token IS NOT NULL",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(answer.input("token").as_deref(), Some(next_token.as_str()));
    assert!(answer.body.contains(&unit), "the next contact's unit");
    assert!(answer.body.contains("id=\"confirmation\""));
    assert!(
        answer.body.contains("id=\"today-completes\">1</b>"),
        "{}",
        answer.body
    );
    // Loaded again from its address: the same screen, apart from the moment of rendering
    // (and the appointment picker's default, by the minute).
    let again = op.web.get(&answer.page_url().unwrap()).await;
    assert_eq!(again.status, 200);
    let normal = |body: &str| {
        body.lines()
            .filter(|l| !l.contains("data-rendered=") && !l.contains("name=\"appointment\""))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(normal(&answer.body), normal(&again.body));
    // Showing the number again is a logged view; the answer itself was covered by the claim.
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM audit_log WHERE action = 'contact.view'"),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn what_must_not_be_stored_is_refused_with_the_reason() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let op = Op::new(&server.url, "op1").await;
    let token = op.claim().await;
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![
                ("outcome", "complete"),
                ("a0", "1"),
                ("a1", "1"),
                ("a2", "3"),
            ],
            "未答",
        ),
        (vec![("outcome", "partial")], "部分"),
        (vec![("outcome", "no_answer"), ("a0", "2")], "答案"),
        (
            vec![
                ("outcome", "appointment"),
                ("appointment", "2001-01-01T09:00"),
            ],
            "",
        ),
        (vec![("outcome", "appointment"), ("appointment", "")], ""),
        (
            vec![("outcome", "appointment"), ("appointment", "明天上午")],
            "预约时间",
        ),
    ];
    for (fields, says) in cases {
        let page = op.record(&token, &fields).await;
        assert!(
            page.status == 422 || page.status == 400,
            "{fields:?}: {} {}",
            page.status,
            page.body
        );
        assert!(page.body.contains(says), "{fields:?}: {}", page.body);
        if page.status == 422 {
            assert!(page.body.contains("id=\"error\""));
            // Still the same contact, with what was keyed.
            assert_eq!(page.input("token").as_deref(), Some(token.as_str()));
            if let Some((_, v)) = fields.iter().find(|(k, _)| *k == "a0") {
                assert!(
                    page.body
                        .contains(&format!("name=\"a0\" value=\"{v}\" checked"))
                );
            }
        }
    }
    assert_eq!(sp.count("SELECT COUNT(*) FROM attempts"), 0);
    // A partial interview with two answers is fine.
    let ok = op
        .record(&token, &[("outcome", "partial"), ("a0", "1"), ("a1", "2")])
        .await;
    assert_eq!(ok.status, 200);
    let answers: String = sp
        .sql()
        .query_row("SELECT answers FROM attempts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(answers, "[0,1,null,null,null]");
}

/// Lets a claim lapse without waiting a quarter of an hour.
fn lapse(sp: &common::Sheping, token: &str) {
    let n = sp
        .sql()
        .execute(
            "UPDATE queue SET claim_expires = ?1 WHERE claim_token = ?2",
            crate::params![chrono::Utc::now().timestamp_millis() - 1, token],
        )
        .unwrap();
    assert_eq!(n, 1, "the claim is in the queue");
}

fn member_of_claim(sp: &common::Sheping, token: &str) -> i64 {
    sp.sql()
        .query_row(
            "SELECT member_id FROM queue WHERE claim_token = ?1",
            [token],
            |r| r.get(0),
        )
        .unwrap()
}

/// A long conversation outlived the lease, but nobody claimed the contact since: the interview
/// is stored as usual (the claim taken again in the same write), with its comment.
#[tokio::test(flavor = "multi_thread")]
async fn a_lapsed_claim_nobody_took_is_still_recorded() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let op = Op::new(&server.url, "op1").await;
    let token = op.claim().await;
    let member = member_of_claim(&sp, &token);
    lapse(&sp, &token);
    // A mistake after the lapse (an answer missing) brings the form back with what was keyed.
    let incomplete = op
        .record(
            &token,
            &[
                ("outcome", "complete"),
                ("a0", "2"),
                ("comment", "希望窗口延长服务时间"),
            ],
        )
        .await;
    assert_eq!(incomplete.status, 422, "{}", incomplete.body);
    assert_eq!(incomplete.input("token").as_deref(), Some(token.as_str()));
    assert!(incomplete.body.contains("name=\"a0\" value=\"2\" checked"));
    assert!(incomplete.body.contains("希望窗口延长服务时间"));
    lapse(&sp, &token);
    let mut fields = vec![("outcome", "complete"), ("comment", "希望窗口延长服务时间")];
    fields.extend_from_slice(&ALL_FIVE);
    let page = op.record(&token, &fields).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains("超时"), "{}", page.body);
    let (stored_member, late, comment, answers): (i64, bool, String, String) = sp
        .sql()
        .query_row(
            "SELECT member_id, late, comment, answers FROM attempts WHERE claim_token = ?1",
            [&token],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(stored_member, member);
    assert!(!late, "nobody claimed the contact since: not a late record");
    assert_eq!(comment, "希望窗口延长服务时间");
    assert_eq!(answers, "[0,1,1,0,3]");
    // The member is done and the operator holds the next contact.
    assert_eq!(
        sp.count(&format!(
            "SELECT COUNT(*) FROM queue WHERE member_id = {member}"
        )),
        0
    );
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM queue WHERE claim_token IS NOT NULL"),
        1
    );
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM audit_log WHERE action = 'attempt.late'"),
        0
    );
}

/// op1's claim lapsed during a long interview and the contact went to op2, who claimed it:
/// op1's interview is still stored, flagged late, shown to the supervisor (/progress,
/// `sheping check`, the audit log); op2's claim ends with the complete, and a second complete
/// op2 might still send is kept as a late record but never counted twice.
#[tokio::test(flavor = "multi_thread")]
async fn a_late_record_after_another_claim_is_stored_and_flagged() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let op1 = Op::new(&server.url, "op1").await;
    let op2 = Op::new(&server.url, "op2").await;
    let token1 = op1.claim().await;
    let member = member_of_claim(&sp, &token1);
    lapse(&sp, &token1);
    // The lapsed contact is handed to op2 as a due appointment, so it is op2's next call.
    let c = sp.sql();
    let op2_id: i64 = c
        .query_row("SELECT id FROM users WHERE login = 'op2'", [], |r| r.get(0))
        .unwrap();
    c.execute(
        "UPDATE assignments SET operator_id = ?1,
             seq = (SELECT MAX(seq) + 1 FROM assignments WHERE operator_id = ?1) WHERE member_id = ?2",
        [op2_id, member],
    )
    .unwrap();
    c.execute(
        "UPDATE queue SET operator_id = ?1, priority = 0, sort_key = 0 WHERE member_id = ?2",
        [op2_id, member],
    )
    .unwrap();
    drop(c);
    let token2 = op2.claim().await;
    assert_eq!(
        member_of_claim(&sp, &token2),
        member,
        "op2 holds the contact"
    );
    // op1 presses Enter on the interview keyed meanwhile.
    let mut fields = vec![("outcome", "complete"), ("comment", "办事很快")];
    fields.extend_from_slice(&ALL_FIVE);
    let page = op1.record(&token1, &fields).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("迟交记录"), "{}", page.body);
    let (attempt, late, comment): (i64, bool, String) = sp
        .sql()
        .query_row(
            "SELECT id, late, comment FROM attempts WHERE claim_token = ?1",
            [&token1],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert!(late);
    assert_eq!(comment, "办事很快");
    // The member is complete: op2's claim ended with it, and op2 cannot renew it.
    assert_eq!(
        sp.count(&format!(
            "SELECT COUNT(*) FROM queue WHERE member_id = {member}"
        )),
        0
    );
    let renew = op2.renew(&token2).await;
    assert_eq!(renew.status, 409, "{}", renew.body);
    // The audit log names the late record and the claim it ended.
    let detail: String = sp
        .sql()
        .query_row(
            "SELECT detail FROM audit_log WHERE action = 'attempt.late'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let detail: serde_json::Value = serde_json::from_str(&detail).unwrap();
    assert_eq!(detail["attempt_id"], attempt);
    assert_eq!(detail["other_operator"], "op2");
    assert_eq!(detail["other_claim_ended"], true);
    // The supervisor sees it on the progress page.
    let stat = common::browser::Web::signed_in(&server.url, "stat").await;
    let progress = stat.get(&format!("/rounds/{ROUND}/progress")).await;
    assert_eq!(progress.status, 200);
    assert!(
        progress.body.contains("id=\"late-records\""),
        "{}",
        progress.body
    );
    assert!(progress.body.contains(&format!("#{attempt}")));
    // op2 had talked to the member too and records a complete: kept, late, counted once.
    let page = op2.record(&token2, &fields).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        sp.count(&format!(
            "SELECT COUNT(*) FROM attempts WHERE member_id = {member} AND outcome = 'complete' AND late = 1"
        )),
        2
    );
    let out = sp.run(&["check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("迟交记录"), "{text}");
    assert!(text.contains(&format!("#{attempt}")), "{text}");
    assert!(text.contains("检查通过"), "{text}");
    let results = sp.json(&["results", "--round", ROUND, "--json"]);
    assert_eq!(results["overall"]["completes"], 1, "{results}");
}

/// The open page renews its claim: the lease moves for the holder, a lapsed claim nobody
/// took is taken again, and nobody else can renew it.
#[tokio::test(flavor = "multi_thread")]
async fn renewal_extends_the_lease_only_for_the_holder() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let op1 = Op::new(&server.url, "op1").await;
    let op2 = Op::new(&server.url, "op2").await;
    let token = op1.claim().await;
    let expires = |sp: &common::Sheping| {
        sp.sql()
            .query_row(
                "SELECT claim_expires FROM queue WHERE claim_token = ?1",
                [&token],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
    };
    let soon = chrono::Utc::now().timestamp_millis() + 30_000;
    sp.sql()
        .execute(
            "UPDATE queue SET claim_expires = ?1 WHERE claim_token = ?2",
            crate::params![soon, token],
        )
        .unwrap();
    // Another operator cannot renew op1's claim.
    let refused = op2.renew(&token).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.body.contains("不在您的名下"), "{}", refused.body);
    assert_eq!(expires(&sp), soon);
    // The holder can: a full lease from now.
    let before = chrono::Utc::now().timestamp_millis();
    let ok = op1.renew(&token).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let answer: serde_json::Value = serde_json::from_str(&ok.body).unwrap();
    let new_expiry = answer["expires_at_ms"].as_i64().unwrap();
    assert_eq!(expires(&sp), new_expiry);
    assert!(
        new_expiry >= before + 15 * 60_000,
        "{new_expiry} vs {before}"
    );
    // A lapsed claim nobody took is taken again.
    lapse(&sp, &token);
    let again = op1.renew(&token).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert!(expires(&sp) > chrono::Utc::now().timestamp_millis());
    // Without the CSRF token: refused.
    let forged = op1
        .web
        .post("/call/renew", &[("round", ROUND), ("token", &token)])
        .await;
    assert_ne!(forged.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn release_returns_the_contact_and_the_list_shows_no_numbers() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let op = Op::new(&server.url, "op1").await;
    let token = op.claim().await;
    // A second "next" (double click, second tab) keeps the same contact.
    let again = op.claim().await;
    assert_eq!(again, token);
    let released = op
        .web
        .post(
            "/call/release",
            &[("csrf", &op.csrf), ("round", ROUND), ("token", &token)],
        )
        .await;
    assert_eq!(released.status, 303);
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM queue WHERE claim_token IS NOT NULL"),
        0
    );
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM audit_log WHERE action = 'contact.release'"),
        1
    );
    let idle = op.web.get(released.location.as_deref().unwrap()).await;
    assert!(idle.body.contains("联系人已释放"));
    let list = op.web.get("/call/list").await;
    assert_eq!(list.status, 200);
    let rows = list.body.matches("<tr><td class=\"num\">").count();
    let mine = sp.count(
        "SELECT COUNT(*) FROM queue q JOIN users u ON u.id = q.operator_id WHERE u.login = 'op1'",
    );
    assert_eq!(rows as i64, mine);
    assert!(!list.body.contains("1391"), "no phone numbers in the list");
    // Someone else's round: not found.
    assert_eq!(op.web.get("/call?round=other").await.status, 404);
}

/// A second round `key` like the fixture's, whose survey keeps only the first `dims`
/// dimensions, with the same units, representatives and operators.
fn add_round(sp: &common::Sheping, key: &str, dims: usize) {
    let survey = std::fs::read_to_string(sp.path("allday.toml")).unwrap();
    let mut parts = survey.split("[[dimensions]]");
    let head = parts.next().unwrap().to_string();
    let rest: Vec<&str> = parts.collect();
    let (last, tail) = rest[rest.len() - 1].split_once("[scoring]").unwrap();
    let mut blocks: Vec<String> = rest[..rest.len() - 1]
        .iter()
        .map(|b| b.to_string())
        .collect();
    blocks.push(last.to_string());
    let mut text = head;
    for b in blocks.iter().take(dims) {
        text.push_str("[[dimensions]]");
        // Equal weights when omitted.
        text.push_str(
            &b.lines()
                .filter(|l| !l.starts_with("weight"))
                .collect::<Vec<_>>()
                .join("\n"),
        );
        text.push('\n');
    }
    text.push_str("[scoring]");
    text.push_str(tail);
    let file = sp.write(&format!("{key}.toml"), text.as_bytes());
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive();
    sp.ok(&[
        "round",
        "create",
        key,
        "--title",
        "第二轮",
        "--survey",
        file.to_str().unwrap(),
        "--from",
        &(today - chrono::Duration::days(3)).to_string(),
        "--to",
        &(today + chrono::Duration::days(20)).to_string(),
    ]);
    let units = sp.path("units.csv");
    sp.ok(&["units", "import", "--round", key, units.to_str().unwrap()]);
    let roster = sp.path("roster.csv");
    sp.ok(&["roster", "import", "--round", key, roster.to_str().unwrap()]);
    sp.ok(&["calls", "generate", "--round", key, "--seed", "7"]);
}

/// op1 holds a contact of round `d3` (three questions) and posts a form naming round `t`
/// (five questions) with five answers: the claim token decides the round, so the form is
/// refused and nothing is stored; `d3`'s results stay computable.
#[tokio::test(flavor = "multi_thread")]
async fn a_form_naming_another_round_than_its_claim_is_refused() {
    let sp = fixture();
    add_round(&sp, "d3", 3);
    let server = WebServer::start(&sp, &[]);
    let op = Op::new(&server.url, "op1").await;
    let next = op
        .web
        .post("/call/next", &[("csrf", &op.csrf), ("round", "d3")])
        .await;
    assert_eq!(next.status, 303);
    let screen = op.web.get("/call?round=d3").await;
    assert_eq!(
        screen.body.matches("class=\"q\"").count(),
        3,
        "three questions"
    );
    let token = screen.input("token").expect("a contact in d3");
    let mut fields = vec![("outcome", "complete")];
    fields.extend_from_slice(&ALL_FIVE);
    let page = op.record(&token, &fields).await; // round = t
    assert_eq!(page.status, 409, "{}", page.body);
    assert!(
        page.body.contains("d3"),
        "names the claim's round: {}",
        page.body
    );
    assert_eq!(sp.count("SELECT COUNT(*) FROM attempts"), 0);
    // The same claim with its own round and three answers is recorded.
    let ok = op
        .web
        .post(
            "/call/record",
            &[
                ("csrf", &op.csrf),
                ("round", "d3"),
                ("token", &token),
                ("outcome", "complete"),
                ("a0", "1"),
                ("a1", "2"),
                ("a2", "3"),
            ],
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let answers: String = sp
        .sql()
        .query_row("SELECT answers FROM attempts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(answers, "[0,1,2]");
    let stat = common::browser::Web::signed_in(&server.url, "stat").await;
    assert_eq!(stat.get("/api/v1/rounds/d3/results").await.status, 200);
    assert!(sp.ok(&["check"]).contains("检查通过"));
}

/// A stored attempt that does not fit its round's survey (written behind sheping's back):
/// `sheping check` names it and fails, and the results page, the API, the exports and the
/// report answer a clear error naming the attempt, never a 500.
#[tokio::test(flavor = "multi_thread")]
async fn a_corrupted_attempt_is_named_by_check_and_results() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let op = Op::new(&server.url, "op1").await;
    let token = op.claim().await;
    let mut fields = vec![("outcome", "complete")];
    fields.extend_from_slice(&ALL_FIVE);
    assert_eq!(op.record(&token, &fields).await.status, 200);
    let stat = common::browser::Web::signed_in(&server.url, "stat").await;
    assert_eq!(
        stat.get(&format!("/api/v1/rounds/{ROUND}/results"))
            .await
            .status,
        200
    );
    // Seven answers, one of them beyond the four levels, and a code that is not the outcome's.
    let c = sp.sql();
    let (member, operator): (i64, i64) = c
        .query_row(
            "SELECT m.id, s.operator_id FROM members m JOIN assignments s ON s.member_id = m.id
             WHERE m.id NOT IN (SELECT member_id FROM attempts) LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let bad: i64 = c
        .query_row(
            "INSERT INTO attempts (member_id, operator_id, attempt_no, recorded_at, outcome, aapor_code, answers, source)
             VALUES (?1, ?2, 1, ?3, 'complete', '1.1', '[0,1,2,3,0,1,9]', 'cli') RETURNING id",
            crate::params![member, operator, chrono::Utc::now().timestamp_millis()],
            |r| r.get(0),
        )
        .unwrap();
    drop(c);
    let out = sp.run(&["check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains(&format!("#{bad}")), "{text}");
    assert!(text.contains("7 个答案"), "{text}");
    assert!(text.contains("检查未通过"), "{text}");
    let named = format!("拨打记录 #{bad}");
    for path in [
        format!("/api/v1/rounds/{ROUND}/results"),
        format!("/api/v1/rounds/{ROUND}/exports/responses"),
        format!("/rounds/{ROUND}/report.zip"),
    ] {
        let page = stat.get(&path).await;
        assert_eq!(page.status, 409, "{path}: {}", page.body);
        assert!(page.body.contains(&named), "{path}: {}", page.body);
    }
    let page = stat.get(&format!("/rounds/{ROUND}/results")).await;
    assert!(page.status < 500, "{}", page.status);
    assert!(page.body.contains(&named), "{}", page.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_script_a_record_redirects_to_the_screen() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let op = Op::new(&server.url, "op1").await;
    let token = op.claim().await;
    let screen = op.web.get(&format!("/call?round={ROUND}")).await;
    // The plain form carries the marker that call.js removes.
    assert!(screen.body.contains("name=\"nojs\" value=\"1\""));
    assert_eq!(
        screen
            .headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store"),
        "the call screen is never served from the cache"
    );
    let done = op
        .record(&token, &[("outcome", "busy"), ("nojs", "1")])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let to = done.location.expect("a redirect");
    assert!(
        to.starts_with(&format!("/call?round={ROUND}&done=")),
        "{to}"
    );
    assert_eq!(sp.count("SELECT COUNT(*) FROM attempts"), 1);
    let page = op.web.get(&to).await;
    assert!(page.body.contains("id=\"confirmation\""), "{}", page.body);
    assert_eq!(
        page.headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mistyped_appointment_keeps_the_screen_with_the_error_by_the_field() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let op = Op::new(&server.url, "op1").await;
    let token = op.claim().await;
    let page = op
        .record(
            &token,
            &[
                ("outcome", "appointment"),
                ("appointment", "202603-12-08T03:00"),
                ("a0", "2"),
                ("comment", "下午再打"),
            ],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(page.body.contains("id=\"appointment-error\""));
    assert!(page.body.contains("202603-12-08T03:00"));
    assert_eq!(page.input("token").as_deref(), Some(token.as_str()));
    assert!(page.body.contains("name=\"a0\" value=\"2\" checked"));
    assert!(page.body.contains(">下午再打</textarea>"));
    assert_eq!(sp.count("SELECT COUNT(*) FROM attempts"), 0);
}
