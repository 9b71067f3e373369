//! The contract of `AccountStore` (issue 22): one scenario, run on a fresh SQLite store and on a
//! fresh PostgreSQL database, gives the same answers, the same errors and the same audit
//! entries; and throttling holds across two PostgreSQL instances on one database.
//!
//! Needs a cluster: `bash tests/pg_cluster.sh cargo test --test it pg_contract_accounts`.

use crate::common;

use chrono::{DateTime, Utc};
use common::pg;
use sheping::domain::user::Role;
use sheping::storage::postgres::{self, PgBackend};
use sheping::storage::sqlite::SqliteStore;
use sheping::storage::*;

const T0: i64 = 1_800_000_000_000;

const LIMITS: SessionLimits = SessionLimits {
    idle_ms: 60_000,
    absolute_ms: 600_000,
};

const POLICY: ThrottlePolicy = ThrottlePolicy {
    window_ms: 60_000,
    lock_ms: 120_000,
    max_login_failures: 3,
    max_ip_failures: 5,
};

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

fn new_user(login: &str, role: Role) -> NewUser {
    NewUser {
        login: login.into(),
        name: format!("{login} 的名字"),
        role,
        password_hash: format!("hash-{login}"),
    }
}

fn user_line(u: &UserRecord) -> String {
    format!(
        "user #{} {} {} {} active={} hash={}",
        u.id,
        u.login,
        u.name,
        u.role.key(),
        u.active,
        u.password_hash
    )
}

/// A session lookup without the times the store wrote itself.
fn lookup_line(l: &SessionLookup) -> String {
    match l {
        SessionLookup::Valid(s) => format!(
            "valid {} {} csrf={} created={} seen={}",
            s.id_hash,
            user_line(&s.user),
            s.csrf,
            s.created_at_ms,
            s.last_seen_ms
        ),
        SessionLookup::Expired => "expired".into(),
        SessionLookup::Missing => "missing".into(),
    }
}

/// A token without its creation time (the store's clock).
fn token_line(t: &ApiTokenRecord) -> String {
    format!(
        "token #{} {} {} active={} {} {} by={} exp={:?} revoked={} used={:?}",
        t.id,
        t.login,
        t.role.key(),
        t.user_active,
        t.prefix,
        t.label,
        t.created_by,
        t.expires_at_ms,
        t.revoked_at_ms.is_some(),
        t.last_used_at_ms
    )
}

fn err_line(e: StorageError) -> String {
    match e {
        StorageError::NotFound(m) => format!("NotFound: {m}"),
        StorageError::Conflict(m) => format!("Conflict: {m}"),
        other => panic!("unexpected error kind: {other:?}"),
    }
}

fn session<'a>(id: &'a str, user: &'a UserRecord, now_ms: i64) -> NewSession<'a> {
    NewSession {
        id_hash: id,
        user,
        csrf: "csrf-token",
        ip: "10.0.0.1",
        user_agent: "Mozilla/5.0 测试",
        now_ms,
    }
}

/// The scenario: every method of `AccountStore`, its answers written down line by line.
fn scenario(s: &dyn AccountStore) -> Vec<String> {
    let mut out = Vec::new();
    // Users.
    let root = s
        .add_user(&new_user("root", Role::Admin), "cli:test")
        .unwrap();
    out.push(user_line(&root));
    let op1 = s
        .add_user(&new_user("op1", Role::Operator), "cli:test")
        .unwrap();
    out.push(user_line(&op1));
    s.add_user(&new_user("stat", Role::Statistician), "root")
        .unwrap();
    out.push(err_line(
        s.add_user(&new_user("op1", Role::Evaluator), "root")
            .unwrap_err(),
    ));
    out.push(err_line(s.user("nobody").unwrap_err()));
    s.set_user_active("op1", false, "root").unwrap();
    out.push(user_line(&s.user("op1").unwrap()));
    out.push(err_line(
        s.set_user_active("ghost", true, "root").unwrap_err(),
    ));
    s.set_user_active("op1", true, "root").unwrap();
    s.set_password("op1", "hash-new", "root").unwrap();
    out.push(err_line(s.set_password("ghost", "x", "root").unwrap_err()));
    for u in s.users().unwrap() {
        out.push(user_line(&u));
    }
    let op1 = s.user("op1").unwrap();
    assert_eq!(op1.password_hash, "hash-new");

    // Sessions: create, read, touch, replace, expire, end.
    s.start_session(&session("s1", &op1, T0), None).unwrap();
    out.push(lookup_line(
        &s.session("s1", T0 + 10, &LIMITS, false).unwrap(),
    ));
    let touch_at = T0 + LIMITS.touch_every_ms();
    out.push(lookup_line(
        &s.session("s1", touch_at, &LIMITS, true).unwrap(),
    ));
    // The touch was stored: idle expiry now counts from it.
    let read = s
        .session("s1", touch_at + LIMITS.idle_ms - 1, &LIMITS, false)
        .unwrap();
    assert!(matches!(read, SessionLookup::Valid(_)), "{read:?}");
    out.push(lookup_line(&read));
    s.start_session(&session("s2", &op1, T0 + 1_000), Some("s1"))
        .unwrap();
    out.push(lookup_line(
        &s.session("s1", T0 + 1_001, &LIMITS, false).unwrap(),
    ));
    let expired = s
        .session("s2", T0 + 1_000 + LIMITS.idle_ms, &LIMITS, false)
        .unwrap();
    assert!(matches!(expired, SessionLookup::Expired), "{expired:?}");
    out.push(lookup_line(&expired));
    out.push(lookup_line(
        &s.session("s2", T0 + 1_001, &LIMITS, false).unwrap(),
    ));
    // Other sessions of a user end; the kept one stays.
    let t = T0 + 2_000;
    for id in ["s3", "s4", "s5"] {
        s.start_session(&session(id, &op1, t), None).unwrap();
    }
    out.push(format!(
        "ended {}",
        s.end_user_sessions(op1.id, Some("s3")).unwrap()
    ));
    out.push(lookup_line(&s.session("s4", t, &LIMITS, false).unwrap()));
    s.start_session(&session("s6", &op1, t), None).unwrap();
    s.change_own_password(&op1, "hash-own", "s3", "10.0.0.9")
        .unwrap();
    out.push(lookup_line(&s.session("s6", t, &LIMITS, false).unwrap()));
    out.push(lookup_line(&s.session("s3", t, &LIMITS, false).unwrap()));
    // Disabling the user ends their sessions at the next request.
    s.set_user_active("op1", false, "root").unwrap();
    out.push(lookup_line(&s.session("s3", t, &LIMITS, false).unwrap()));
    s.set_user_active("op1", true, "root").unwrap();
    let op1 = s.user("op1").unwrap();
    s.start_session(&session("s7", &op1, t), None).unwrap();
    s.end_session("s7", "op1").unwrap();
    // Ending it twice writes no second `auth.signout`.
    s.end_session("s7", "op1").unwrap();
    out.push(lookup_line(&s.session("s7", t, &LIMITS, false).unwrap()));
    out.push(format!(
        "ended all {}",
        s.end_user_sessions(op1.id, None).unwrap()
    ));

    // Throttling: three failures lock the login, refusals are counted and summarised once
    // the lock has ended.
    let t = T0 + 10_000;
    for i in 0..3 {
        let lock = s
            .signin_failed(
                "OP2 ",
                "10.0.0.2",
                FailureReason::UnknownLogin,
                t + i,
                &POLICY,
            )
            .unwrap();
        out.push(format!("failed {i}: {lock:?}"));
    }
    let lock = s
        .signin_lockout("op2", "10.0.0.3", t + 10, &POLICY)
        .unwrap();
    assert_eq!(
        lock,
        Lockout::Login {
            until_ms: t + 2 + POLICY.lock_ms
        }
    );
    out.push(format!("lockout {lock:?}"));
    s.signin_refused("op2", "10.0.0.3", lock, t + 11).unwrap();
    s.signin_refused("op2", "10.0.0.3", lock, t + 12).unwrap();
    s.signin_refused("op2", "10.0.0.3", Lockout::Open, t + 13)
        .unwrap();
    let after = t + 2 + POLICY.lock_ms;
    out.push(format!(
        "lockout after {:?}",
        s.signin_lockout("op2", "10.0.0.3", after, &POLICY).unwrap()
    ));
    out.push(format!(
        "purged {}",
        s.purge_web_state(after + POLICY.lock_ms, &LIMITS, &POLICY)
            .unwrap()
    ));
    // A successful sign-in clears the login's failures.
    s.signin_failed(
        "root",
        "10.0.0.4",
        FailureReason::BadPassword,
        after,
        &POLICY,
    )
    .unwrap();
    s.start_session(&session("s8", &root, after + 1), None)
        .unwrap();
    out.push(format!(
        "root failures after sign-in {:?}",
        s.signin_lockout("root", "10.0.0.4", after + 2, &POLICY)
            .unwrap()
    ));

    // API tokens: create, last use (at most once a minute), revoke.
    let token = NewApiToken {
        login: "stat".into(),
        token_hash: "a".repeat(64),
        prefix: "shp_abcd".into(),
        label: "报表机器".into(),
        expires_at: None,
    };
    out.push(token_line(&s.add_api_token(&token, "root").unwrap()));
    out.push(err_line(
        s.add_api_token(
            &NewApiToken {
                login: "ghost".into(),
                token_hash: "b".repeat(64),
                ..token.clone()
            },
            "root",
        )
        .unwrap_err(),
    ));
    out.push(format!(
        "unknown token: {:?}",
        s.api_token_user(&"c".repeat(64), at(T0)).unwrap().is_none()
    ));
    for dt in [0, 30_000, 59_999, 60_000, 61_000] {
        let (t, u) = s
            .api_token_user(&"a".repeat(64), at(T0 + dt))
            .unwrap()
            .unwrap();
        out.push(format!("use +{dt}: {} / {}", token_line(&t), user_line(&u)));
    }
    let listed = s.api_tokens().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].last_used_at_ms, Some(T0 + 60_000));
    out.push(token_line(&listed[0]));
    s.revoke_api_token(listed[0].id, "root").unwrap();
    out.push(err_line(
        s.revoke_api_token(listed[0].id, "root").unwrap_err(),
    ));
    out.push(err_line(s.revoke_api_token(999, "root").unwrap_err()));
    let (t, _) = s
        .api_token_user(&"a".repeat(64), at(T0 + 500_000))
        .unwrap()
        .unwrap();
    // A revoked token is found (the caller refuses it) but its use is not recorded.
    assert_eq!(t.last_used_at_ms, Some(T0 + 60_000));
    assert_eq!(t.state_label(at(T0 + 500_000)), "已吊销");
    out.push(token_line(&t));
    out
}

/// The audit entries as (actor, action, detail), the time left out.
fn audit_lines(entries: &[sheping::domain::audit::AuditEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| format!("{} {} {}", e.actor, e.action, e.detail))
        .collect()
}

#[test]
fn pg_contract_accounts_same_answers_on_both_backends() {
    let Some(db) = pg::fresh_db("pg_contract_accounts_same") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("accounts.db")).unwrap();
    let on_sqlite = scenario(&sqlite);
    let sqlite_audit = audit_lines(&AuditStore::audit_entries(&sqlite, None).unwrap());

    let pg = PgBackend::open(&db.url).unwrap();
    // Nothing cached on PostgreSQL: every lookup asks the database (contract point 8).
    let on_pg = scenario(&pg);
    assert_eq!(on_pg, on_sqlite);
    assert!(
        on_sqlite.iter().any(|l| l.contains("已被使用")),
        "the scenario checks the conflict"
    );

    let (pg_audit, verified) = pg.block_on(async {
        let c = pg.store().client().await.unwrap();
        (
            postgres::audit::entries(&c).await.unwrap(),
            postgres::audit::verify(&c).await.unwrap(),
        )
    });
    assert_eq!(audit_lines(&pg_audit), sqlite_audit);
    assert_eq!(verified, Ok(pg_audit.len()));
    for action in [
        "user.add",
        "user.disable",
        "user.enable",
        "user.password",
        "auth.signin",
        "auth.password_change",
        "auth.signout",
        "auth.signin_failed",
        "auth.lockout",
        "auth.signin_locked",
        "api_token.create",
        "api_token.revoke",
    ] {
        assert!(
            pg_audit.iter().any(|e| e.action == action),
            "no {action} in the audit log"
        );
    }
    // One `auth.signout` (the second end_session ended nothing) and one summary of the
    // refused attempts, counting both.
    assert_eq!(
        pg_audit
            .iter()
            .filter(|e| e.action == "auth.signout")
            .count(),
        1
    );
    let locked: Vec<_> = pg_audit
        .iter()
        .filter(|e| e.action == "auth.signin_locked")
        .collect();
    assert_eq!(locked.len(), 1);
    assert!(
        locked[0].detail.contains("\"count\":2"),
        "{}",
        locked[0].detail
    );
    // The cached read answers nothing for a session this instance never read.
    assert!(pg.session_cached("s8", T0, &LIMITS, false).is_none());
}

#[test]
fn pg_contract_accounts_two_instances_share_sessions_and_locks() {
    let Some(db) = pg::fresh_db("pg_contract_accounts_two") else {
        return;
    };
    let a = PgBackend::open(&db.url).unwrap();
    let b = PgBackend::open(&db.url).unwrap();
    let op = a
        .add_user(&new_user("op1", Role::Operator), "root")
        .unwrap();
    assert_eq!(user_line(&b.user("op1").unwrap()), user_line(&op));

    // A lock set through one instance is seen by the other.
    let t = T0;
    for i in 0..2 {
        a.signin_failed(
            "op1",
            "10.0.0.2",
            FailureReason::BadPassword,
            t + i,
            &POLICY,
        )
        .unwrap();
    }
    assert_eq!(
        b.signin_lockout("op1", "10.0.0.7", t + 5, &POLICY).unwrap(),
        Lockout::Open
    );
    let lock = b
        .signin_failed(
            "OP1",
            "10.0.0.3",
            FailureReason::BadPassword,
            t + 6,
            &POLICY,
        )
        .unwrap();
    let until_ms = t + 6 + POLICY.lock_ms;
    assert_eq!(lock, Lockout::Login { until_ms });
    assert_eq!(
        a.signin_lockout("op1", "10.0.0.8", t + 7, &POLICY).unwrap(),
        Lockout::Login { until_ms }
    );
    // Refusals counted on both instances land in one window, summarised once.
    a.signin_refused("op1", "10.0.0.8", lock, t + 8).unwrap();
    b.signin_refused("op1", "10.0.0.8", lock, t + 9).unwrap();
    a.purge_web_state(until_ms, &LIMITS, &POLICY).unwrap();
    b.purge_web_state(until_ms + 1, &LIMITS, &POLICY).unwrap();

    // A session started on one instance is valid on the other; signed out on one, gone on
    // the other at its next request (the other never read it, so had nothing in memory).
    a.start_session(&session("sx", &op, until_ms + 10), None)
        .unwrap();
    assert!(matches!(
        b.session("sx", until_ms + 11, &LIMITS, false).unwrap(),
        SessionLookup::Valid(_)
    ));
    assert_eq!(
        b.signin_lockout("op1", "10.0.0.2", until_ms + 12, &POLICY)
            .unwrap(),
        Lockout::Open
    );
    b.end_session("sx", "op1").unwrap();
    assert!(matches!(
        a.session("sx", until_ms + 13, &LIMITS, false).unwrap(),
        SessionLookup::Missing
    ));

    // Tokens: created on one, used on the other.
    let token = a
        .add_api_token(
            &NewApiToken {
                login: "op1".into(),
                token_hash: "d".repeat(64),
                prefix: "shp_d".into(),
                label: String::new(),
                expires_at: None,
            },
            "root",
        )
        .unwrap();
    b.api_token_user(&"d".repeat(64), at(T0)).unwrap().unwrap();
    assert_eq!(a.api_tokens().unwrap()[0].last_used_at_ms, Some(T0));
    b.revoke_api_token(token.id, "root").unwrap();
    assert!(a.api_tokens().unwrap()[0].revoked_at_ms.is_some());

    let entries = a.block_on(async {
        let c = a.store().client().await.unwrap();
        assert!(postgres::audit::verify(&c).await.unwrap().is_ok());
        postgres::audit::entries(&c).await.unwrap()
    });
    let count = |action: &str| entries.iter().filter(|e| e.action == action).count();
    assert_eq!(count("auth.lockout"), 1);
    assert_eq!(count("auth.signin_failed"), 3);
    assert_eq!(count("auth.signin_locked"), 1);
    let locked = entries
        .iter()
        .find(|e| e.action == "auth.signin_locked")
        .unwrap();
    assert!(locked.detail.contains("\"count\":2"), "{}", locked.detail);
}

/// A NUL in a text value: SQLite stores it, PostgreSQL cannot. The store answers it as the
/// input's fault (invalid input naming the character), not as a failure of the database.
#[test]
fn pg_contract_accounts_a_nul_in_text_is_the_inputs_fault() {
    let Some(db) = pg::fresh_db("pg_contract_accounts_nul") else {
        return;
    };
    let pg = PgBackend::open(&db.url).unwrap();
    let mut user = new_user("nul_name", Role::Operator);
    user.name = "张\0三".into();
    match pg.add_user(&user, "test") {
        Err(StorageError::Invalid(message)) => assert!(message.contains("NUL"), "{message}"),
        other => panic!("expected invalid input naming the NUL, got {other:?}"),
    }
    // Nothing was stored, and the store goes on.
    assert!(matches!(
        pg.user("nul_name"),
        Err(StorageError::NotFound(_))
    ));
    user.name = "张三".into();
    pg.add_user(&user, "test").unwrap();
}
