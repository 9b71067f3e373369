//! Sign-in, sessions and form tokens over real HTTP: cookies, session fixation, throttling of
//! failed sign-ins, idle expiry, sign-out, changing one's password, CSRF, security headers.

use crate::common;

use std::time::Duration;

use common::browser::{PASSWORD, ROUND, Web, WebServer, fixture};

fn cookie_value(set_cookies: &[String], name: &str) -> Option<String> {
    set_cookies
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| {
            c[name.len() + 1..]
                .split(';')
                .next()
                .unwrap_or("")
                .to_string()
        })
}

fn audit_count(sp: &common::Sheping, action: &str) -> i64 {
    sp.count(&format!(
        "SELECT COUNT(*) FROM audit_log WHERE action = '{action}'"
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_makes_a_new_http_only_session_and_sign_out_ends_it() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let web = Web::new(&server.url);
    // Unauthenticated: pages go to sign-in (and come back), scripts get 401.
    let call = web.get("/call").await;
    assert_eq!(call.status, 303);
    assert_eq!(call.location.as_deref(), Some("/login?next=/call"));
    let live = web
        .get_with(
            &format!("/rounds/{ROUND}/progress/live"),
            &[("x-requested-with", "fetch")],
        )
        .await;
    assert_eq!(live.status, 401);

    let page = web.sign_in("op1", PASSWORD).await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/call"));
    let cookies = page.set_cookies();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("sheping_session="))
        .expect("session cookie");
    assert!(session.contains("HttpOnly"), "{session}");
    assert!(session.contains("SameSite=Lax"), "{session}");
    assert!(!session.contains("Secure"), "plain HTTP: {session}");
    let token = cookie_value(&cookies, "sheping_session").unwrap();
    assert_eq!(token.len(), 64, "256 random bits");
    // Only the hash is stored.
    assert_eq!(sp.count("SELECT COUNT(*) FROM sessions"), 1);
    let stored: String = sp
        .sql()
        .query_row("SELECT id_hash FROM sessions", [], |r| r.get(0))
        .unwrap();
    assert_ne!(stored, token);
    assert_eq!(web.get("/call").await.status, 200);
    assert_eq!(audit_count(&sp, "auth.signin"), 1);

    // Sign-out needs the form token, then the session is gone.
    assert_eq!(web.post("/logout", &[("csrf", "nope")]).await.status, 403);
    let csrf = web.csrf().await;
    let out = web.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location.as_deref(), Some("/login?signed_out=1"));
    assert_eq!(sp.count("SELECT COUNT(*) FROM sessions"), 0);
    assert_eq!(web.get("/call").await.status, 303);
    assert_eq!(audit_count(&sp, "auth.signout"), 1);

    // Behind a trusted TLS-terminating proxy the cookie is Secure (an untrusted
    // `X-Forwarded-Proto` counts for nothing: tests/it/edge_security.rs).
    drop(server);
    let server = WebServer::start(&sp, &[("SHEPING_TRUST_PROXY", "1")]);
    let tls = Web::new(&server.url);
    let page = tls
        .sign_in_with("op1", PASSWORD, &[("x-forwarded-proto", "https")])
        .await;
    let session = page
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("sheping_session="))
        .unwrap();
    assert!(session.contains("; Secure"), "{session}");
    assert!(page.headers.contains_key("strict-transport-security"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_id_planted_before_sign_in_is_worth_nothing() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    // The attacker's own valid session, planted in the victim's browser.
    let attacker = Web::signed_in(&server.url, "op2").await;
    let _ = attacker;
    let planted_hash: String = sp
        .sql()
        .query_row("SELECT id_hash FROM sessions", [], |r| r.get(0))
        .unwrap();
    let victim = Web::new(&server.url);
    let login = victim.get("/login").await;
    let token = login.input("token").unwrap();
    let planted = "a".repeat(64);
    let page = victim
        .post_with(
            "/login",
            &[
                ("login", "op1"),
                ("password", PASSWORD),
                ("token", &token),
                ("next", ""),
            ],
            &[(
                "cookie",
                &format!("sheping_signin={token}; sheping_session={planted}"),
            )],
        )
        .await;
    assert_eq!(page.status, 303);
    let new = cookie_value(&page.set_cookies(), "sheping_session").unwrap();
    assert_ne!(new, planted, "the session id changes at sign-in");
    // Signing in again (a sign-in page left open in another tab) rotates it once more and
    // ends the previous session of this browser.
    let before = sp.count("SELECT COUNT(*) FROM sessions");
    let other_tab = Web::new(&server.url).get("/login").await;
    let token = other_tab.input("token").unwrap();
    let again = Web::new(&server.url)
        .post_with(
            "/login",
            &[
                ("login", "op1"),
                ("password", PASSWORD),
                ("token", &token),
                ("next", ""),
            ],
            &[(
                "cookie",
                &format!("sheping_signin={token}; sheping_session={new}"),
            )],
        )
        .await;
    assert_eq!(again.status, 303);
    let newer = cookie_value(&again.set_cookies(), "sheping_session").unwrap();
    assert_ne!(newer, new);
    assert_eq!(sp.count("SELECT COUNT(*) FROM sessions"), before);
    let stale = Web::new(&server.url)
        .get_with("/call", &[("cookie", &format!("sheping_session={new}"))])
        .await;
    assert_eq!(
        stale.status, 303,
        "the pre-rotation session no longer works"
    );
    let fresh = Web::new(&server.url)
        .get_with("/call", &[("cookie", &format!("sheping_session={newer}"))])
        .await;
    assert_eq!(fresh.status, 200);
    // The attacker's session is untouched and still theirs (op2), never op1's.
    let still: i64 = sp
        .sql()
        .query_row(
            "SELECT COUNT(*) FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ?1 AND u.login = 'op2'",
            [&planted_hash],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(still, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_failures_lock_the_login_then_the_lock_ends() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[("SHEPING_SIGNIN_LOCK_SECS", "5")]);
    let web = Web::new(&server.url);
    for i in 0..5 {
        let page = web.sign_in("op1", "wrong-password-x").await;
        let expected = if i < 4 { 401 } else { 429 };
        assert_eq!(page.status, expected, "failure {}", i + 1);
        if i < 4 {
            assert!(page.body.contains("登录名或密码错误"));
        }
    }
    // Locked now: even the right password is refused, with a clear message.
    let locked = web.sign_in("op1", PASSWORD).await;
    assert_eq!(locked.status, 429);
    assert!(locked.body.contains("暂时锁定"), "{}", locked.body);
    assert_eq!(sp.count("SELECT COUNT(*) FROM sessions"), 0);
    // Case and spaces do not get round it.
    assert_eq!(web.sign_in(" OP1", PASSWORD).await.status, 429);
    // Another login from the same address is not affected by op1's lock.
    assert_eq!(
        Web::new(&server.url).sign_in("op2", PASSWORD).await.status,
        303
    );
    assert_eq!(audit_count(&sp, "auth.signin_failed"), 5);
    assert_eq!(audit_count(&sp, "auth.lockout"), 1);
    // The two refused attempts are counted, not logged one by one (issue 17): the window's
    // one entry, with the count, is written once the lock has ended.
    assert_eq!(audit_count(&sp, "auth.signin_locked"), 0);
    assert_eq!(
        sp.count("SELECT SUM(count) FROM signin_refusals WHERE scope = 'login'"),
        2
    );
    // Unknown logins fail the same way (no hint which logins exist).
    let unknown = Web::new(&server.url)
        .sign_in("nobody", "whatever-pass")
        .await;
    assert_eq!(unknown.status, 401);
    assert!(unknown.body.contains("登录名或密码错误"));
    // The lock ends after its time.
    tokio::time::sleep(Duration::from_millis(5_200)).await;
    assert_eq!(web.sign_in("op1", PASSWORD).await.status, 303);
    assert_eq!(audit_count(&sp, "auth.signin_locked"), 1);
    assert_eq!(sp.audit_details("auth.signin_locked")[0]["count"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_failures_from_one_address_lock_that_address() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[("SHEPING_SIGNIN_MAX_IP_FAILURES", "6")]);
    for i in 0..6 {
        let page = Web::new(&server.url)
            .sign_in(&format!("guess{i}"), "wrong-password-x")
            .await;
        assert!(page.status == 401 || page.status == 429, "{}", page.status);
    }
    let page = Web::new(&server.url).sign_in("op1", PASSWORD).await;
    assert_eq!(page.status, 429);
    assert!(page.body.contains("本机登录失败次数过多"), "{}", page.body);
    let scope = &sp.audit_details("auth.lockout")[0]["scope"];
    assert_eq!(scope, "ip");
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_end_after_the_idle_timeout() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[("SHEPING_SESSION_IDLE_SECS", "3")]);
    let web = Web::signed_in(&server.url, "op1").await;
    // Activity keeps the session alive beyond the timeout.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(web.get("/call").await.status, 200);
    }
    // Background refreshes do not count as activity.
    let admin = Web::signed_in(&server.url, "admin").await;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let live = admin
            .get_with(
                &format!("/rounds/{ROUND}/progress/live"),
                &[("x-requested-with", "fetch")],
            )
            .await;
        if live.status == 401 {
            break;
        }
    }
    assert_eq!(
        admin
            .get_with(
                &format!("/rounds/{ROUND}/progress/live"),
                &[("x-requested-with", "fetch")]
            )
            .await
            .status,
        401
    );
    // Idle past the timeout: back to sign-in, told why.
    tokio::time::sleep(Duration::from_millis(3_300)).await;
    let page = web.get("/call").await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.location.as_deref(),
        Some("/login?next=/call&expired=1")
    );
    let login = web.get(page.location.as_deref().unwrap()).await;
    assert!(login.body.contains("会话已超时"));
    assert_eq!(sp.count("SELECT COUNT(*) FROM sessions"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_changes_their_password_and_other_sessions_end() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let web = Web::signed_in(&server.url, "stat").await;
    let other = Web::signed_in(&server.url, "stat").await;
    let csrf = web.csrf().await;
    let new = "a-much-better-password";
    let wrong = web
        .post(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current", "not-my-password"),
                ("new", new),
                ("confirm", new),
            ],
        )
        .await;
    assert_eq!(wrong.status, 422);
    assert!(wrong.body.contains("当前密码不正确"));
    let short = web
        .post(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current", PASSWORD),
                ("new", "short"),
                ("confirm", "short"),
            ],
        )
        .await;
    assert_eq!(short.status, 422);
    let ok = web
        .post(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current", PASSWORD),
                ("new", new),
                ("confirm", new),
            ],
        )
        .await;
    assert_eq!(ok.status, 200);
    assert!(ok.body.contains("密码已修改"));
    assert_eq!(web.get("/progress").await.status, 303, "this session stays");
    assert_eq!(
        web.get(&format!("/rounds/{ROUND}/progress")).await.status,
        200
    );
    assert_eq!(
        other.get("/progress").await.location.as_deref(),
        Some("/login?next=/progress"),
        "the other session ended"
    );
    assert_eq!(
        Web::new(&server.url).sign_in("stat", PASSWORD).await.status,
        401
    );
    assert_eq!(Web::new(&server.url).sign_in("stat", new).await.status, 303);
    assert_eq!(audit_count(&sp, "auth.password_change"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn state_changes_need_the_session_form_token() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let op = Web::signed_in(&server.url, "op1").await;
    let admin = Web::signed_in(&server.url, "admin").await;
    let claims = || sp.count("SELECT COUNT(*) FROM queue WHERE claim_token IS NOT NULL");
    // Missing and wrong tokens: 403, nothing stored.
    let missing = op.post("/call/next", &[("round", ROUND)]).await;
    assert_eq!(missing.status, 403);
    assert!(missing.body.contains("表单已失效"));
    let wrong = op
        .post("/call/next", &[("round", ROUND), ("csrf", &"0".repeat(64))])
        .await;
    assert_eq!(wrong.status, 403);
    // Another session's token is no good either.
    let admins = admin.csrf().await;
    assert_eq!(
        op.post("/call/next", &[("round", ROUND), ("csrf", &admins)])
            .await
            .status,
        403
    );
    assert_eq!(claims(), 0);
    let lock = admin
        .post(
            &format!("/admin/rounds/{ROUND}/lock"),
            &[("csrf", "forged"), ("confirm", ROUND)],
        )
        .await;
    assert_eq!(lock.status, 403);
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM rounds WHERE locked_at IS NOT NULL"),
        0
    );
    // The right token works …
    let csrf = op.csrf().await;
    assert_eq!(
        op.post("/call/next", &[("round", ROUND), ("csrf", &csrf)])
            .await
            .status,
        303
    );
    assert_eq!(claims(), 1);
    // … but not from another site.
    let cross = op
        .post_with(
            "/call/release",
            &[("round", ROUND), ("csrf", &csrf), ("token", "x")],
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(cross.status, 403);
    // Sign-in itself needs the token of the sign-in page.
    let bare = Web::new(&server.url)
        .post(
            "/login",
            &[("login", "op1"), ("password", PASSWORD), ("token", "x")],
        )
        .await;
    assert_eq!(bare.status, 403);
    assert!(
        !bare
            .set_cookies()
            .iter()
            .any(|c| c.starts_with("sheping_session=") && !c.starts_with("sheping_session=;"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_response_carries_the_security_headers() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let anon = Web::new(&server.url);
    let op = Web::signed_in(&server.url, "op1").await;
    let mut pages = vec![
        anon.get("/").await,
        anon.get("/login").await,
        anon.get("/call").await,
        anon.get("/static/style.css").await,
        anon.get("/static/call.js").await,
        anon.get("/no/such/page").await,
        op.get("/call").await,
        op.get("/admin").await,
    ];
    pages.push(op.get("/call?round=nope").await);
    for p in &pages {
        let h = &p.headers;
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "same-origin");
        assert_eq!(h["x-frame-options"], "DENY");
    }
    // Pages are never cached (personal data); and there is no inline script anywhere.
    assert_eq!(pages[6].headers["cache-control"], "no-store");
    for p in &pages {
        assert!(
            !p.body.contains("<script>") && !p.body.contains("onclick="),
            "inline script"
        );
    }
    // Errors say nothing about the internals.
    assert_eq!(pages[7].status, 403);
    assert!(pages[7].body.contains("无权访问"));
    assert_eq!(pages[8].status, 404);
    for p in &pages {
        for leak in ["rusqlite", "panicked", "src/", "SELECT "] {
            assert!(!p.body.contains(leak), "{leak} in a response");
        }
    }
}
