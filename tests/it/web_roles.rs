//! The role matrix over real HTTP: every console route × every role (and no session) gives the
//! expected status; refusals are logged; no response to a statistician or an evaluator
//! contains a phone number, and an operator sees only the number of the contact they hold.

use crate::common;

use common::browser::{ROUND, UNITS, Web, WebServer, fixture, fixture_phones};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    Anon,
    Admin,
    Operator,
    Statistician,
    Evaluator,
}

const ROLES: [Who; 5] = [
    Who::Anon,
    Who::Admin,
    Who::Operator,
    Who::Statistician,
    Who::Evaluator,
];

fn login(w: Who) -> Option<&'static str> {
    match w {
        Who::Anon => None,
        Who::Admin => Some("admin"),
        Who::Operator => Some("op1"),
        Who::Statistician => Some("stat"),
        Who::Evaluator => Some("eval"),
    }
}

/// Who may use a route.
#[derive(Clone, Copy)]
enum Allowed {
    Public,
    Anyone,
    Admin,
    Operator,
    Supervisors,
    Results,
}

impl Allowed {
    fn admits(self, w: Who) -> bool {
        match self {
            Allowed::Public => true,
            Allowed::Anyone => w != Who::Anon,
            Allowed::Admin => w == Who::Admin,
            Allowed::Operator => w == Who::Operator,
            Allowed::Supervisors => matches!(w, Who::Admin | Who::Statistician),
            Allowed::Results => matches!(w, Who::Admin | Who::Statistician | Who::Evaluator),
        }
    }
}

/// (path, who may, status when allowed)
fn get_routes(member: i64) -> Vec<(String, Allowed, u16)> {
    let r = ROUND;
    let unit: String = UNITS[0].bytes().map(|b| format!("%{b:02X}")).collect();
    vec![
        ("/".into(), Allowed::Public, 200),
        ("/healthz".into(), Allowed::Public, 200),
        ("/static/style.css".into(), Allowed::Public, 200),
        ("/static/call.js".into(), Allowed::Public, 200),
        ("/static/live.js".into(), Allowed::Public, 200),
        ("/console".into(), Allowed::Anyone, 303),
        ("/account/password".into(), Allowed::Anyone, 200),
        ("/call".into(), Allowed::Operator, 200),
        (format!("/call?round={r}"), Allowed::Operator, 200),
        ("/call/list".into(), Allowed::Operator, 200),
        ("/progress".into(), Allowed::Supervisors, 303),
        (format!("/rounds/{r}/progress"), Allowed::Supervisors, 200),
        (
            format!("/rounds/{r}/progress/live"),
            Allowed::Supervisors,
            200,
        ),
        ("/audit".into(), Allowed::Supervisors, 200),
        (
            format!("/audit?action=auth.&round={r}"),
            Allowed::Supervisors,
            200,
        ),
        ("/results".into(), Allowed::Results, 200),
        (format!("/rounds/{r}/results"), Allowed::Results, 200),
        // A unit's page and charts: every results reader (issue 18).
        (format!("/rounds/{r}/units/{unit}"), Allowed::Results, 200),
        (
            format!("/rounds/{r}/units/{unit}/charts/profile.svg"),
            Allowed::Results,
            200,
        ),
        (
            format!("/rounds/{r}/charts/operators.svg"),
            Allowed::Supervisors,
            200,
        ),
        (format!("/rounds/{r}/report.zip"), Allowed::Supervisors, 200),
        ("/admin".into(), Allowed::Admin, 200),
        ("/admin/users".into(), Allowed::Admin, 200),
        (format!("/admin/rounds/{r}"), Allowed::Admin, 200),
        // What was command-line only (issue 24).
        ("/admin/tokens".into(), Allowed::Admin, 200),
        ("/admin/backup".into(), Allowed::Admin, 200),
        (format!("/admin/rounds/{r}/field"), Allowed::Admin, 200),
        (
            format!("/admin/rounds/{r}/purge-contacts"),
            Allowed::Admin,
            200,
        ),
        // The round's path: read-only for statisticians, results stages for evaluators.
        (format!("/rounds/{r}"), Allowed::Results, 200),
        (format!("/admin/rounds/{r}/members"), Allowed::Admin, 200),
        (
            format!("/admin/rounds/{r}/members/{member}"),
            Allowed::Admin,
            200,
        ),
        (format!("/admin/rounds/{r}/onsite"), Allowed::Admin, 200),
        (format!("/admin/rounds/{r}/attempts"), Allowed::Admin, 200),
        (format!("/admin/rounds/{r}/exclusions"), Allowed::Admin, 200),
    ]
}

/// State-changing routes. Allowed roles post without the form token and must get the CSRF
/// refusal (so the role check passed and nothing changes); others get 403 "no access".
fn post_routes(member: i64, attempt: i64) -> Vec<(String, Allowed, bool)> {
    let r = ROUND;
    vec![
        ("/logout".into(), Allowed::Anyone, false),
        ("/account/password".into(), Allowed::Anyone, false),
        ("/call/next".into(), Allowed::Operator, false),
        ("/call/record".into(), Allowed::Operator, false),
        ("/call/release".into(), Allowed::Operator, false),
        ("/admin/rounds".into(), Allowed::Admin, true),
        (format!("/admin/rounds/{r}/units"), Allowed::Admin, true),
        (format!("/admin/rounds/{r}/roster"), Allowed::Admin, true),
        (format!("/admin/rounds/{r}/plan"), Allowed::Admin, false),
        (format!("/admin/rounds/{r}/reassign"), Allowed::Admin, false),
        (format!("/admin/rounds/{r}/lock"), Allowed::Admin, false),
        (
            format!("/admin/rounds/{r}/members/{member}/phone"),
            Allowed::Admin,
            false,
        ),
        (
            format!("/admin/rounds/{r}/members/{member}/reopen"),
            Allowed::Admin,
            false,
        ),
        (
            format!("/admin/rounds/{r}/attempts/{attempt}/answers"),
            Allowed::Admin,
            false,
        ),
        (format!("/admin/rounds/{r}/onsite"), Allowed::Admin, true),
        (
            format!("/admin/rounds/{r}/onsite/confirm"),
            Allowed::Admin,
            false,
        ),
        (format!("/admin/rounds/{r}/attempts"), Allowed::Admin, true),
        (
            format!("/admin/rounds/{r}/attempts/confirm"),
            Allowed::Admin,
            false,
        ),
        (
            format!("/admin/rounds/{r}/exclusions"),
            Allowed::Admin,
            false,
        ),
        (
            format!("/admin/rounds/{r}/exclusions/remove"),
            Allowed::Admin,
            false,
        ),
        ("/admin/users".into(), Allowed::Admin, false),
        ("/admin/tokens".into(), Allowed::Admin, false),
        ("/admin/tokens/1/revoke".into(), Allowed::Admin, false),
        ("/admin/backup".into(), Allowed::Admin, false),
        (format!("/admin/rounds/{r}/field"), Allowed::Admin, false),
        (
            format!("/admin/rounds/{r}/purge-contacts"),
            Allowed::Admin,
            false,
        ),
        ("/admin/users/op2/active".into(), Allowed::Admin, false),
        ("/admin/users/op2/password".into(), Allowed::Admin, false),
    ]
}

/// Runs of digits that are a phone number: 11-digit mobiles, and the fixture's landlines
/// written any way (with or without the dash).
fn phones_in(body: &str, landlines: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    // Random tokens (form tokens, claim tokens) are long hex runs: not phone numbers.
    let mut chars: Vec<char> = body.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        while i < chars.len() && (chars[i].is_ascii_digit() || ('a'..='f').contains(&chars[i])) {
            i += 1;
        }
        if i - start >= 32 {
            chars[start..i].iter_mut().for_each(|c| *c = 'x');
        }
        if i == start {
            i += 1;
        }
    }
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let run: String = chars[start..i].iter().collect();
            if run.len() == 11 && run.starts_with('1') {
                found.push(run);
            }
        } else {
            i += 1;
        }
    }
    for l in landlines {
        let local = l.split('-').nth(1).unwrap_or(l);
        if body.contains(l.as_str()) || body.contains(&l.replace('-', "")) || body.contains(local) {
            found.push(l.clone());
        }
    }
    found
}

/// A round with some history: a complete interview, a refusal, a corrected number, op1 on a call.
async fn with_history(url: &str) -> (i64, i64) {
    let op = Web::signed_in(url, "op1").await;
    let csrf = op.csrf().await;
    assert_eq!(
        op.post("/call/next", &[("csrf", &csrf), ("round", ROUND)])
            .await
            .status,
        303
    );
    let page = op.get("/call").await;
    let token = page.input("token").unwrap();
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("round", ROUND),
        ("token", token.as_str()),
        ("outcome", "complete"),
        ("comment", "服务很好"),
    ];
    for q in ["a0", "a1", "a2", "a3", "a4"] {
        form.push((q, "2"));
    }
    let done = op.post("/call/record", &form).await;
    assert_eq!(done.status, 200);
    let attempt = done.done_id().expect("the screen confirms the attempt");
    // The next contact (claimed automatically) refuses.
    let page = op.get("/call").await;
    let token = page.input("token").unwrap();
    let refused = op
        .post(
            "/call/record",
            &[
                ("csrf", &csrf),
                ("round", ROUND),
                ("token", &token),
                ("outcome", "refused"),
            ],
        )
        .await;
    assert_eq!(refused.status, 200);
    // op1 holds a third contact now; the admin corrects someone's number.
    assert!(op.get("/call").await.input("token").is_some());
    (attempt, 1)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_for_every_role() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let (attempt, _) = with_history(&server.url).await;
    let member: i64 = sp
        .sql()
        .query_row("SELECT MIN(id) FROM members", [], |r| r.get(0))
        .unwrap();
    let admin = Web::signed_in(&server.url, "admin").await;
    let csrf = admin.csrf().await;
    let fixed = admin
        .post(
            &format!("/admin/rounds/{ROUND}/members/{member}/phone"),
            &[
                ("csrf", &csrf),
                ("phone", "139 0000 1111"),
                ("area_code", "0915"),
                ("reason", "单位来函更正"),
            ],
        )
        .await;
    assert_eq!(fixed.status, 303, "{}", fixed.body);

    let mut clients = Vec::new();
    for w in ROLES {
        let web = match login(w) {
            Some(l) => Web::signed_in(&server.url, l).await,
            None => Web::new(&server.url),
        };
        clients.push((w, web));
    }
    let landlines: Vec<String> = fixture_phones()
        .into_iter()
        .filter(|p| p.starts_with('0'))
        .collect();
    let mut checked = 0;
    for (path, allowed, ok) in get_routes(member) {
        for (w, web) in &clients {
            let page = web.get(&path).await;
            let expected = if allowed.admits(*w) {
                ok
            } else if *w == Who::Anon {
                303
            } else {
                403
            };
            assert_eq!(
                page.status,
                expected,
                "GET {path} as {w:?}: {}",
                &page.body.chars().take(300).collect::<String>()
            );
            if expected == 303 && *w == Who::Anon && !matches!(allowed, Allowed::Public) {
                let loc = page.location.clone().unwrap_or_default();
                assert!(loc.starts_with("/login?next="), "{path}: {loc}");
            }
            if matches!(w, Who::Statistician | Who::Evaluator) {
                let found = phones_in(&page.body, &landlines);
                assert!(found.is_empty(), "GET {path} as {w:?} shows {found:?}");
            }
            checked += 1;
        }
    }
    for (path, allowed, multipart) in post_routes(member, attempt) {
        for (w, web) in &clients {
            let url = format!("{}{path}", server.url);
            let resp = if multipart {
                let form = reqwest::multipart::Form::new().text("key", "x");
                web.client.post(&url).multipart(form).send().await.unwrap()
            } else {
                web.client
                    .post(&url)
                    .form(&[("round", ROUND), ("reason", "x")])
                    .send()
                    .await
                    .unwrap()
            };
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap();
            match (allowed.admits(*w), w) {
                (_, Who::Anon) => assert_eq!(status, 303, "POST {path} anonymously"),
                (true, _) => {
                    assert_eq!(status, 403, "POST {path} as {w:?} without a token");
                    assert!(body.contains("表单已失效"), "POST {path} as {w:?}: {body}");
                }
                (false, _) => {
                    assert_eq!(status, 403, "POST {path} as {w:?}");
                    assert!(body.contains("无权访问"), "POST {path} as {w:?}: {body}");
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 150, "{checked} requests");
    // Nothing changed through the refused requests.
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM rounds WHERE locked_at IS NOT NULL"),
        0
    );
    assert_eq!(sp.count("SELECT COUNT(*) FROM rounds"), 1);
    assert_eq!(sp.count("SELECT COUNT(*) FROM users WHERE active = 1"), 5);
    // Refusals are logged with who, what and where.
    let logged = sp
        .sql()
        .rows(
            "SELECT detail FROM audit_log WHERE action = 'auth.forbidden' AND actor = 'op1'",
            [],
        )
        .unwrap()
        .iter()
        .filter(|row| match &row[0] {
            common::db::Val::Text(t) => {
                serde_json::from_str::<serde_json::Value>(t).unwrap()["path"] == "/admin"
            }
            _ => false,
        })
        .count();
    assert_eq!(logged, 1);
    assert!(sp.count("SELECT COUNT(*) FROM audit_log WHERE action = 'auth.forbidden'") > 40);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_sees_only_the_number_of_the_contact_held() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let op = Web::signed_in(&server.url, "op1").await;
    let landlines: Vec<String> = fixture_phones()
        .into_iter()
        .filter(|p| p.starts_with('0'))
        .collect();
    // Before a claim: the screen and the list show no number at all.
    for path in ["/call", "/call/list", "/console", "/account/password"] {
        let page = op.get(path).await;
        assert!(phones_in(&page.body, &landlines).is_empty(), "{path}");
    }
    let csrf = op.csrf().await;
    op.post("/call/next", &[("csrf", &csrf), ("round", ROUND)])
        .await;
    let page = op.get("/call").await;
    let held: String = sp
        .sql()
        .query_row(
            "SELECT m.phone FROM queue q JOIN members m ON m.id = q.member_id WHERE q.claim_token IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let shown = phones_in(&page.body.replace(' ', ""), &landlines);
    assert!(!shown.is_empty(), "the held number is shown");
    for p in &shown {
        assert!(
            *p == held || held.replace('-', "").starts_with(p.as_str()),
            "{p} is not the held contact's number {held}"
        );
    }
    let list = op.get("/call/list").await;
    assert!(phones_in(&list.body, &landlines).is_empty());
    // The first display was the logged claim; showing it again (a reload) is a logged view.
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM audit_log WHERE action = 'contact.claim'"),
        1
    );
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM audit_log WHERE action = 'contact.view'"),
        0
    );
    op.get("/call").await;
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM audit_log WHERE action = 'contact.view'"),
        1
    );
    // Another operator's round view never shows op1's contact.
    let op2 = Web::signed_in(&server.url, "op2").await;
    let other = op2.get("/call").await;
    assert!(!other.body.contains(&held.replace('-', "")));
    assert!(phones_in(&other.body, &landlines).is_empty());
}
