//! The PostgreSQL backend's in-memory caches (issue 22): sessions (`session_cached`) and an
//! operator's rounds (`operator_rounds_cached`) are answered from memory as on SQLite, bounded
//! to a second across instances: a change made through the instance itself drops its entries
//! at once, one made through another instance on the same database is seen within the bound.
//! Needs the test cluster (`bash tests/pg_cluster.sh cargo test --test it pg_caches`).

use std::time::{Duration, Instant};

use crate::common;
use crate::pg_contract_rounds::{count_pg, new_round, sql_pg, unit};

use chrono::NaiveDate;
use common::pg;
use sheping::domain::user::Role;
use sheping::storage::postgres::PgBackend;
use sheping::storage::*;

const LIMITS: SessionLimits = SessionLimits {
    idle_ms: 3_600_000,
    absolute_ms: 36_000_000,
};

/// How long the tests wait for another instance's change to be seen: three times the bound.
const PATIENCE: Duration = Duration::from_secs(3);

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// As the web's sign-in check asks: memory first, then the store.
fn lookup(s: &PgBackend, id: &str) -> bool {
    let now = now_ms();
    if s.session_cached(id, now, &LIMITS, false).is_some() {
        return true;
    }
    matches!(
        s.session(id, now, &LIMITS, false).unwrap(),
        SessionLookup::Valid(_)
    )
}

/// Polls `refused` every 50 ms for at most [`PATIENCE`]; true once it held.
fn refused_within_bound(mut refused: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < PATIENCE {
        if refused() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    refused()
}

fn start(s: &PgBackend, id: &str, user: &UserRecord) {
    s.start_session(
        &NewSession {
            id_hash: id,
            user,
            csrf: "c",
            ip: "127.0.0.1",
            user_agent: "test",
            now_ms: now_ms(),
        },
        None,
    )
    .unwrap();
}

fn user(s: &PgBackend, login: &str) -> UserRecord {
    s.add_user(
        &NewUser {
            login: login.into(),
            name: login.into(),
            role: Role::Operator,
            password_hash: "x".into(),
        },
        "root",
    )
    .unwrap()
}

#[test]
fn pg_caches_a_session_ended_on_one_instance_is_refused_on_the_other_within_a_second() {
    let Some(db) = pg::fresh_db("pg_caches_sessions") else {
        return;
    };
    let a = PgBackend::open(&db.url).unwrap();
    let b = PgBackend::open(&db.url).unwrap();
    let op = user(&a, "op1");
    let op2 = user(&a, "op2");

    // Signed out on A: refused on A at once, on B within the bound.
    start(&a, "s1", &op);
    assert!(lookup(&a, "s1") && lookup(&b, "s1"));
    assert!(
        b.session_cached("s1", now_ms(), &LIMITS, false).is_some(),
        "a session just read is answered from memory"
    );
    a.end_session("s1", "op1").unwrap();
    assert!(a.session_cached("s1", now_ms(), &LIMITS, false).is_none());
    assert!(!lookup(&a, "s1"), "refused at once where it was signed out");
    assert!(refused_within_bound(|| !lookup(&b, "s1")));

    // A user disabled on B: their session refused on B at once, on A within the bound.
    start(&a, "s2", &op2);
    assert!(lookup(&a, "s2") && lookup(&b, "s2"));
    assert!(a.session_cached("s2", now_ms(), &LIMITS, false).is_some());
    b.set_user_active("op2", false, "root").unwrap();
    assert!(!lookup(&b, "s2"));
    assert!(refused_within_bound(|| !lookup(&a, "s2")));

    // A password changed on A ends op1's other sessions: refused on A at once, on B within
    // the bound; the kept session goes on.
    start(&a, "keep", &op);
    start(&a, "other", &op);
    assert!(lookup(&a, "other") && lookup(&b, "other") && lookup(&b, "keep"));
    a.change_own_password(&op, "y", "keep", "127.0.0.1")
        .unwrap();
    assert!(!lookup(&a, "other"));
    assert!(refused_within_bound(|| !lookup(&b, "other")));
    assert!(lookup(&a, "keep") && lookup(&b, "keep"));
}

/// A cached session is answered without asking the database: its row deleted behind the
/// instance's back (plain SQL, as another instance would), the cached answer still comes —
/// which no read of the database could give — and stops within the bound.
#[test]
fn pg_caches_a_cached_session_is_answered_from_memory_then_expires() {
    let Some(db) = pg::fresh_db("pg_caches_memory") else {
        return;
    };
    let a = PgBackend::open(&db.url).unwrap();
    let other = PgBackend::open(&db.url).unwrap();
    let op = user(&a, "op1");
    // Entries live between half a second and a second: on a busy machine the first tries may
    // come too late, so a few are allowed; one is enough to show it.
    let mut from_memory = false;
    for i in 0..10 {
        let id = format!("m{i}");
        start(&a, &id, &op);
        assert!(lookup(&a, &id));
        sql_pg(
            &other,
            &format!("DELETE FROM sessions WHERE id_hash = '{id}'"),
        );
        if a.session_cached(&id, now_ms(), &LIMITS, false).is_some() {
            from_memory = true;
            assert!(refused_within_bound(|| !lookup(&a, &id)));
            break;
        }
    }
    assert!(from_memory, "no lookup was answered from memory");
    // A touch that is due is never answered from memory: it is written (`SessionDue`).
    start(&a, "t", &op);
    assert!(lookup(&a, "t"));
    let later = now_ms() + LIMITS.touch_every_ms();
    assert!(a.session_cached("t", later, &LIMITS, true).is_none());
    let SessionLookup::Valid(s) = a.session("t", later, &LIMITS, true).unwrap() else {
        panic!("the session is valid");
    };
    assert_eq!(s.last_seen_ms, later);
    assert_eq!(
        count_pg(&a, "SELECT last_seen FROM sessions WHERE id_hash = 't'"),
        later
    );
}

#[test]
fn pg_caches_an_operators_rounds_follow_changes_of_either_instance() {
    let Some(db) = pg::fresh_db("pg_caches_rounds") else {
        return;
    };
    let a = PgBackend::open(&db.url).unwrap();
    let b = PgBackend::open(&db.url).unwrap();
    let op = user(&a, "op1");
    let round = a.create_round(&new_round("2024"), "root").unwrap();
    a.add_units(&round, &[unit("甲局", 1)], "root").unwrap();
    let unit_id = a.units(round.id).unwrap()[0].id;
    sql_pg(
        &a,
        &format!(
            "INSERT INTO members (id, unit_id, name, phone, category, created_at)
             VALUES (1, {unit_id}, '代表', '13900000000', '服务对象', 0);
             INSERT INTO plans (id, round_id, kind, seed, algorithm, operators, members, digest, created_at, created_by)
             VALUES (1, {}, 'generate', '1', 'test', '[\"op1\"]', 1, 'd', 0, 'root');
             INSERT INTO assignments (member_id, operator_id, seq, plan_id) VALUES (1, {}, 1, 1)",
            round.id, op.id
        ),
    );
    let field = |s: &PgBackend| {
        s.operator_rounds(op.id)
            .unwrap()
            .iter()
            .map(|r| r.field_start)
            .collect::<Vec<_>>()
    };
    let cached_field = |s: &PgBackend| {
        s.operator_rounds_cached(op.id)
            .map(|rs| rs.iter().map(|r| r.field_start).collect::<Vec<_>>())
    };
    assert_eq!(field(&a), vec![None]);
    assert_eq!(field(&b), vec![None]);
    assert_eq!(cached_field(&a), Some(vec![None]));

    // Changed through A: A's entry goes at once.
    let d = |day| NaiveDate::from_ymd_opt(2024, 11, day).unwrap();
    a.set_field_period(&round, d(1), d(30), "root").unwrap();
    assert_eq!(cached_field(&a), None);
    assert_eq!(field(&a), vec![Some(d(1))]);

    // Changed through B: A sees it within the bound.
    b.set_field_period(&round, d(2), d(30), "root").unwrap();
    assert!(refused_within_bound(|| {
        cached_field(&a).unwrap_or_else(|| field(&a)) == vec![Some(d(2))]
    }));
}
