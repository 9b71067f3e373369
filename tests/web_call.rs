//! The operator's form over real HTTP: the same form sent twice records once and answers the
//! same; the server refuses what must not be stored (incomplete completes, empty partials,
//! appointments in the past, answers on a no-answer, expired or foreign claims) with a clear
//! message and keeps what was keyed; releasing puts the contact back.

mod common;

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

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_claim_is_refused_and_the_contact_goes_back() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let op = Op::new(&server.url, "op1").await;
    let token = op.claim().await;
    sp.sql()
        .execute(
            "UPDATE queue SET claim_expires = ?1 WHERE claim_token = ?2",
            rusqlite::params![chrono::Utc::now().timestamp_millis() - 1, token],
        )
        .unwrap();
    let mut fields = vec![("outcome", "complete")];
    fields.extend_from_slice(&ALL_FIVE);
    let page = op.record(&token, &fields).await;
    assert_eq!(page.status, 409);
    assert!(page.body.contains("领取已超时"), "{}", page.body);
    assert_eq!(sp.count("SELECT COUNT(*) FROM attempts"), 0);
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM queue WHERE claim_token IS NOT NULL"),
        0
    );
    // The idle screen offers the next call again.
    assert!(page.body.contains("id=\"next\""));
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
