//! Edges of the web console's security (issue 17): forwarded headers count only behind a
//! trusted proxy; refused sign-ins against a lock are counted, not logged one by one; the
//! evaluators never see who the operators are.

use crate::common;

use common::browser::{PASSWORD, ROUND, Web, WebServer, fixture};

fn secure_session_cookie(page: &common::browser::Page) -> Option<bool> {
    page.set_cookies()
        .iter()
        .find(|c| c.starts_with("sheping_session=") && !c.starts_with("sheping_session=;"))
        .map(|c| c.contains("; Secure"))
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_headers_count_only_behind_a_trusted_proxy() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    // Without a trusted proxy, `X-Forwarded-Proto` does not make the cookie Secure nor turn
    // HSTS on (a plain-HTTP client could otherwise pin the host to HTTPS).
    let web = Web::new(&server.url);
    let page = web
        .sign_in_with("op1", PASSWORD, &[("x-forwarded-proto", "https")])
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(secure_session_cookie(&page), Some(false));
    assert!(!page.headers.contains_key("strict-transport-security"));
    // … and `X-Forwarded-Host` cannot make a foreign origin look like this host.
    let csrf = web.csrf().await;
    let claims = || sp.count("SELECT COUNT(*) FROM queue WHERE claim_token IS NOT NULL");
    let forged = web
        .post_with(
            "/call/next",
            &[("round", ROUND), ("csrf", &csrf)],
            &[
                ("origin", "https://evil.example"),
                ("x-forwarded-host", "evil.example"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert_eq!(claims(), 0);
    drop(server);

    // Behind a trusted proxy both headers count.
    let server = WebServer::start(&sp, &[("SHEPING_TRUST_PROXY", "1")]);
    let web = Web::new(&server.url);
    let page = web
        .sign_in_with("op1", PASSWORD, &[("x-forwarded-proto", "https")])
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(secure_session_cookie(&page), Some(true));
    assert!(page.headers.contains_key("strict-transport-security"));
    let csrf = web.csrf().await;
    let proxied = web
        .post_with(
            "/call/next",
            &[("round", ROUND), ("csrf", &csrf)],
            &[
                ("origin", "https://survey.example"),
                ("x-forwarded-host", "survey.example"),
            ],
        )
        .await;
    assert_eq!(proxied.status, 303, "{}", proxied.body);
    assert_eq!(claims(), 1);
    let foreign = web
        .post_with(
            "/call/next",
            &[("round", ROUND), ("csrf", &csrf)],
            &[
                ("origin", "https://evil.example"),
                ("x-forwarded-host", "survey.example"),
            ],
        )
        .await;
    assert_eq!(foreign.status, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn attempts_against_a_lock_are_counted_in_one_audit_entry_per_window() {
    let sp = fixture();
    let server = WebServer::start(
        &sp,
        &[
            ("SHEPING_SIGNIN_MAX_IP_FAILURES", "3"),
            ("SHEPING_SIGNIN_LOCK_SECS", "2"),
        ],
    );
    for i in 0..3 {
        let page = Web::new(&server.url)
            .sign_in(&format!("guess{i}"), "wrong-password-x")
            .await;
        assert!(page.status == 401 || page.status == 429, "{}", page.status);
    }
    let audit_rows = || sp.count("SELECT COUNT(*) FROM audit_log");
    let before = audit_rows();
    // A flood against the lock: refused, and the audit log does not grow.
    let web = Web::new(&server.url);
    // Each answer carries the next sign-in token (the page rotates it), as a browser resends.
    let mut token = web.get("/login").await.input("token").unwrap();
    const FLOOD: i64 = 120;
    for i in 0..FLOOD {
        let login = format!("flood{}", i % 7);
        let page = web
            .post(
                "/login",
                &[
                    ("login", login.as_str()),
                    ("password", "whatever-pass"),
                    ("token", &token),
                    ("next", ""),
                ],
            )
            .await;
        assert_eq!(page.status, 429, "attempt {i}");
        token = page.input("token").expect("sign-in token");
    }
    assert_eq!(
        audit_rows(),
        before,
        "refused attempts write no audit entry"
    );
    assert_eq!(
        sp.count("SELECT count FROM signin_refusals WHERE scope = 'ip'"),
        FLOOD
    );
    // Once the window has ended, the next sign-in writes its one entry with the count.
    let mut signed_in = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let page = Web::new(&server.url).sign_in("op1", PASSWORD).await;
        if page.status == 303 {
            signed_in = true;
            break;
        }
    }
    assert!(signed_in, "the lock ends");
    let entries: Vec<(String, i64, String)> = sp
        .audit_details("auth.signin_locked")
        .iter()
        .map(|d| {
            (
                d["scope"].as_str().unwrap().to_string(),
                d["count"].as_i64().unwrap(),
                d["ip"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let refused_while_polling = sp.count("SELECT SUM(count) FROM signin_refusals") - FLOOD;
    assert_eq!(entries[0].0, "ip");
    assert_eq!(entries[0].1, FLOOD + refused_while_polling);
    assert_eq!(entries[0].2, "127.0.0.1");
    // The chain still verifies.
    drop(server);
    let out = sp.ok(&["audit", "verify"]);
    assert!(!out.is_empty());
}

/// The demo's operators: logins and names.
const OPERATORS: [&str; 6] = [
    "op1",
    "op2",
    "op3",
    "话务员王静",
    "话务员李娜",
    "话务员张敏",
];

/// The operators named in `body`: a login as a whole word ("coop1" is a response rate, not
/// op1), a name anywhere.
fn operators_in(body: &str) -> Vec<&'static str> {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    OPERATORS
        .iter()
        .copied()
        .filter(|o| {
            body.match_indices(o).any(|(i, _)| {
                !o.is_ascii()
                    || (!word(body[..i].chars().next_back())
                        && !word(body[i + o.len()..].chars().next()))
            })
        })
        .collect()
}

/// The operator codes or logins of a results document, in its lists' order.
fn operator_fields(doc: &serde_json::Value) -> (Vec<String>, Vec<String>, Vec<String>) {
    let strings = |v: &serde_json::Value, field: Option<&str>| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| field.map_or(x, |f| &x[f]).as_str().unwrap().to_string())
            .collect()
    };
    let q = &doc["quality"];
    (
        strings(&q["operator_effect"]["operators"], Some("operator")),
        strings(&q["operator_effect"]["flagged_operators"], None),
        strings(&q["suspicious"], Some("operator")),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn evaluators_never_see_who_the_operators_are() {
    let sp = common::Sheping::new();
    let server = common::Server::start(&sp, &["demo"]);
    let eval = Web::new(&server.url);
    assert_eq!(eval.sign_in("eval", "demo-eval-2022").await.status, 303);
    let token = sp
        .ok(&["token", "create", "--login", "eval", "--label", "test"])
        .trim()
        .to_string();
    let bearer = format!("Bearer {token}");
    let with_token = [("authorization", bearer.as_str())];

    // Everything an evaluator can fetch: pages, the API by session and by token, the charts.
    let unit: String = sp
        .sql()
        .query_row("SELECT name FROM units ORDER BY id LIMIT 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    let unit_path = format!("/api/v1/rounds/2022/units/{unit}/results");
    let mut paths: Vec<String> = [
        "/results",
        "/rounds/2022/results",
        "/console",
        "/api/v1/rounds",
        "/api/v1/rounds/2022/results",
        "/api/v1/openapi.json",
        "/rounds/2022/charts/ranking.svg",
        "/rounds/2022/charts/distribution.svg",
        "/rounds/2022/charts/dispositions.svg",
        "/rounds/2022/charts/completes-per-day.svg",
        "/rounds/2022/charts/operators.svg",
        "/rounds/2022/report.zip",
        "/api/v1/rounds/2022/exports/responses",
        "/api/v1/rounds/2022/exports/scores",
        "/api/v1/rounds/2022/exports/distributions",
        "/progress",
        "/audit",
    ]
    .iter()
    .map(|p| p.to_string())
    .collect();
    paths.push(unit_path);
    // The evaluators' unit page and its charts (issue 18).
    let page = format!("/rounds/2022/units/{unit}");
    for chart in ["profile", "distribution", "position"] {
        paths.push(format!("{page}/charts/{chart}.svg"));
    }
    paths.push(page);
    let mut docs = Vec::new();
    for path in &paths {
        for page in [eval.get(path).await, eval.get_with(path, &with_token).await] {
            if let Some(o) = operators_in(&page.body).first() {
                let at = page.body.find(o).unwrap_or(0).saturating_sub(120);
                let at = (0..=at)
                    .rev()
                    .find(|&k| page.body.is_char_boundary(k))
                    .unwrap_or(0);
                let around: String = page.body[at..].chars().take(240).collect();
                panic!("{path} ({}) names operator {o}: …{around}…", page.status);
            }
            if path == "/api/v1/rounds/2022/results" {
                assert_eq!(page.status, 200);
                docs.push(serde_json::from_str::<serde_json::Value>(&page.body).unwrap());
            }
        }
    }
    // Operators appear as stable codes: the same on every call, by session or token.
    let (ops, flagged, suspicious) = operator_fields(&docs[0]);
    assert!(ops.len() >= 2, "{ops:?}");
    assert!(
        ops.iter()
            .all(|o| o.starts_with("话务员") && o.len() > "话务员".len())
    );
    assert_eq!(ops[0], "话务员A");
    for d in &docs[1..] {
        assert_eq!(
            operator_fields(d),
            (ops.clone(), flagged.clone(), suspicious.clone())
        );
    }
    for s in suspicious.iter().chain(&flagged) {
        assert!(ops.contains(s), "{s} is one of the codes {ops:?}");
    }

    // Statisticians still see the logins, in the same order as the codes.
    let stat = Web::new(&server.url);
    assert_eq!(stat.sign_in("stat", "demo-stat-2022").await.status, 303);
    let doc: serde_json::Value =
        serde_json::from_str(&stat.get("/api/v1/rounds/2022/results").await.body).unwrap();
    let (logins, _, stat_suspicious) = operator_fields(&doc);
    assert!(logins.iter().all(|l| l.starts_with("op")), "{logins:?}");
    let mut sorted = logins.clone();
    sorted.sort();
    // Codes go by login order: the k-th login is 话务员 and the k-th letter.
    let code_of = |login: &str| {
        let k = sorted.iter().position(|l| l == login).unwrap() as u8;
        format!("话务员{}", (b'A' + k) as char)
    };
    let expected: Vec<String> = sorted.iter().map(|l| code_of(l)).collect();
    assert_eq!(ops, expected);
    let expected: Vec<String> = stat_suspicious.iter().map(|l| code_of(l)).collect();
    assert_eq!(suspicious, expected);
}
