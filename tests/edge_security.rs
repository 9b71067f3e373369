//! Edges of the web console's security (issue 17): forwarded headers count only behind a
//! trusted proxy; refused sign-ins against a lock are counted, not logged one by one; the
//! evaluators never see who the operators are.

mod common;

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
        .sql()
        .prepare(
            "SELECT json_extract(detail, '$.scope'), json_extract(detail, '$.count'),
                    json_extract(detail, '$.ip')
             FROM audit_log WHERE action = 'auth.signin_locked'",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
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
