//! The contract of `PlanStore` and `CallStore` (issue 22, part B): one scenario, written once,
//! run on a fresh SQLite store and a fresh PostgreSQL backend, with the same answers, errors
//! and audit entries on both; then the claim's exclusivity with several instances (each its
//! own `PgBackend`) on one PostgreSQL database.
//!
//! Needs a cluster: `bash tests/pg_cluster.sh cargo test --test it pg_contract_calls`
//! (without one the tests skip, loudly).

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::pg::{self, block_on};
use sheping::domain::disposition::Outcome;
use sheping::domain::plan::{self, Assignment};
use sheping::domain::survey::Survey;
use sheping::domain::user::Role;
use sheping::storage::postgres::{self, PgBackend};
use sheping::storage::prelude::*;
use sheping::storage::sqlite::SqliteStore;
use sheping::storage::{AttemptInput, Claim, ImportedAttempt, NewPlan, RoundRecord, UserRecord};

/// 2022-11-`day` at `h:m` in Shanghai (the default survey's time zone).
fn local(day: u32, h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2022, 11, day, h, m, 0).unwrap() - Duration::hours(8)
}

fn survey() -> Survey {
    Survey::from_toml_str(include_str!("../../surveys/default.toml")).unwrap()
}

/// The round the fixture stores (id 1, key 2022, field period November 2022).
fn round() -> RoundRecord {
    RoundRecord {
        id: 1,
        key: "2022".into(),
        title: "t".into(),
        survey: Arc::new(survey()),
        survey_source: "default".into(),
        field_start: chrono::NaiveDate::from_ymd_opt(2022, 11, 1),
        field_end: chrono::NaiveDate::from_ymd_opt(2022, 11, 30),
        locked_at_ms: None,
        created_at_ms: 0,
    }
}

fn operator(id: i64) -> UserRecord {
    UserRecord {
        id,
        login: format!("op{}", id - 1),
        name: format!("话务员{}", id - 1),
        role: Role::Operator,
        active: true,
        password_hash: "x".into(),
    }
}

/// Plain SQL, the same text on both backends: `operators` operators (ids 1.., logins op0..),
/// the round, `units` units (ids 1..) of `per_unit` members each (ids 1.., unit by unit).
fn fixture_sql(operators: usize, units: usize, per_unit: usize) -> Vec<String> {
    let mut sql = Vec::new();
    for i in 0..operators {
        sql.push(format!(
            "INSERT INTO users (id, login, name, role, password_hash, active, created_at)
             VALUES ({}, 'op{i}', '话务员{i}', 'operator', 'x', 1, 0)",
            i + 1
        ));
    }
    let toml = survey().to_toml_string().replace('\'', "''");
    sql.push(format!(
        "INSERT INTO rounds (id, key, title, survey_toml, survey_source, field_start, field_end, created_at)
         VALUES (1, '2022', 't', '{toml}', 'default', '2022-11-01', '2022-11-30', 0)"
    ));
    let mut member = 0;
    for u in 0..units {
        sql.push(format!(
            "INSERT INTO units (id, round_id, name, kind, sector) VALUES ({}, 1, '单位{u}', '党政机关', '教体')",
            u + 1
        ));
        for k in 0..per_unit {
            member += 1;
            sql.push(format!(
                "INSERT INTO members (id, unit_id, name, phone, category, created_at)
                 VALUES ({member}, {}, '代表{u}-{k}', '139{u:04}{k:04}', '服务对象', 0)",
                u + 1
            ));
        }
    }
    sql
}

struct Sqlite {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    store: SqliteStore,
}

impl Sqlite {
    fn new(sql: &[String]) -> Sqlite {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("contract.db");
        drop(SqliteStore::open(&path).unwrap());
        let c = rusqlite::Connection::open(&path).unwrap();
        for s in sql {
            c.execute_batch(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        }
        drop(c);
        let store = SqliteStore::open(&path).unwrap();
        Sqlite {
            _dir: dir,
            path,
            store,
        }
    }

    fn exec(&self, sql: &str) {
        rusqlite::Connection::open(&self.path)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
    }
}

fn pg_exec(url: &str, sql: &[String]) {
    let (url, sql) = (url.to_owned(), sql.to_vec());
    // A thread of its own: the test's client runs on a runtime of its own.
    std::thread::spawn(move || {
        block_on(async {
            let c = pg::connect(&url).await;
            for s in &sql {
                c.batch_execute(s)
                    .await
                    .unwrap_or_else(|e| panic!("{s}: {e}"));
            }
        })
    })
    .join()
    .unwrap();
}

fn pg_query_i64(url: &str, sql: &str) -> Vec<Vec<i64>> {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        block_on(async {
            let c = pg::connect(&url).await;
            c.query(&sql, &[])
                .await
                .unwrap()
                .iter()
                .map(|r| (0..r.len()).map(|i| r.get::<_, i64>(i)).collect())
                .collect()
        })
    })
    .join()
    .unwrap()
}

/// A claim without its random token.
fn claim_view(c: &Claim) -> String {
    format!(
        "member {:?} kind {:?} attempt_no {} earlier {:?} appointment {:?} claimed {} expires {}",
        c.member,
        c.unit_kind,
        c.attempt_no,
        c.earlier,
        c.appointment_at_ms,
        c.claimed_at_ms,
        c.expires_at_ms
    )
}

fn outcome(o: Outcome) -> AttemptInput {
    AttemptInput {
        outcome: Some(o),
        ..Default::default()
    }
}

fn complete(answers: Vec<Option<usize>>) -> AttemptInput {
    AttemptInput {
        outcome: Some(Outcome::Complete),
        answers,
        ..Default::default()
    }
}

/// The scenario: every answer as text (tokens left out), in order. `exec` runs plain SQL on
/// the backend (to lock the round at the end, as `lock_round` of the rounds' helper would).
fn scenario<S: PlanStore + CallStore + ?Sized>(s: &S, exec: &dyn Fn(&str)) -> Vec<String> {
    let mut out = Vec::new();
    let mut log = |label: &str, v: String| out.push(format!("{label}: {v}"));
    let round = round();
    let (op0, op1) = (operator(1), operator(2));
    let mut ops = vec![op0.login.clone(), op1.login.clone()];
    ops.sort();

    // Exclusions.
    log(
        "exclude",
        format!("{:?}", s.exclude_operator(&round, "op0", 2, "admin")),
    );
    log(
        "exclude unknown",
        format!("{:?}", s.exclude_operator(&round, "nobody", 2, "admin")),
    );
    log(
        "remove none",
        format!("{:?}", s.remove_exclusion(&round, "op1", 2, "admin")),
    );
    log(
        "remove",
        format!("{:?}", s.remove_exclusion(&round, "op0", 2, "admin")),
    );
    log(
        "exclude again",
        format!("{:?}", s.exclude_operator(&round, "op0", 2, "admin")),
    );
    let state = s.plan_state(&round).unwrap();
    log(
        "plan_state",
        format!(
            "never {:?} kept {:?} called {} unassigned {:?} excl {:?}",
            state.never_called, state.kept, state.called, state.unassigned, state.exclusions
        ),
    );

    // A plan: op0 calls unit 1 (members 1-3), op1 unit 2 (4-6), in member order.
    let assignments: Vec<Assignment> = (1..=6)
        .map(|m| Assignment {
            member_id: m,
            unit_id: if m <= 3 { 1 } else { 2 },
            operator: if m <= 3 { "op0".into() } else { "op1".into() },
            seq: ((m - 1) % 3 + 1) as u32,
        })
        .collect();
    let new_plan = NewPlan {
        kind: "generate",
        seed: 7,
        algorithm: plan::PLAN_ALGORITHM,
        operators: ops.clone(),
        digest: plan::plan_digest(&assignments),
        inputs: "{\"seed\":7}".into(),
    };
    let p = s
        .apply_plan(&round, &new_plan, &assignments, "admin")
        .unwrap();
    log(
        "plan",
        format!(
            "{} {} {} {} {:?} {} {} {}",
            p.id, p.kind, p.seed, p.algorithm, p.operators, p.members, p.digest, p.created_by
        ),
    );
    log(
        "plans",
        format!(
            "{:?}",
            s.plans(&round)
                .unwrap()
                .iter()
                .map(|p| (p.id, p.members))
                .collect::<Vec<_>>()
        ),
    );
    log("plan_inputs", format!("{:?}", s.plan_inputs(&round, p.id)));
    log(
        "plan_inputs missing",
        format!("{:?}", s.plan_inputs(&round, 999)),
    );
    log(
        "plan_assignments",
        format!("{:?}", s.plan_assignments(&round, p.id)),
    );
    log("pending", format!("{:?}", s.pending_assignments(&round)));
    log("call_list", format!("{:?}", s.call_list(&round, None)));
    log(
        "call_list op1",
        format!("{:?}", s.call_list(&round, Some("op1"))),
    );
    log(
        "operator_rounds",
        format!(
            "{:?}",
            s.operator_rounds(1)
                .map(|r| r.iter().map(|r| r.key.clone()).collect::<Vec<_>>())
        ),
    );

    // Claims in queue order; a second one refused by _if_free.
    let t0 = local(2, 10, 0);
    let c1 = s.claim_next(&round, &op0, t0).unwrap().unwrap();
    log("claim 1", claim_view(&c1));
    log(
        "if_free while holding",
        format!(
            "{:?}",
            s.claim_next_if_free(&round, &op0, t0)
                .unwrap()
                .map(|c| c.member.id)
        ),
    );
    let c2 = s.claim_next(&round, &op0, t0).unwrap().unwrap();
    log("claim 2", claim_view(&c2));
    log(
        "held",
        format!(
            "{:?}",
            s.held_claims(&round, &op0, t0)
                .unwrap()
                .iter()
                .map(claim_view)
                .collect::<Vec<_>>()
        ),
    );
    log(
        "pending with claims",
        format!("{:?}", s.pending_assignments(&round)),
    );
    log(
        "plan_state with claims",
        format!("{:?}", s.plan_state(&round).unwrap().never_called),
    );

    // Renew and release by the holder only.
    log(
        "renew by other",
        format!("{:?}", s.renew_claim(&round, &c1.token, &op1, t0)),
    );
    log(
        "renew by holder",
        format!(
            "{:?}",
            s.renew_claim(&round, &c1.token, &op0, t0 + Duration::minutes(5))
        ),
    );
    log(
        "release by other",
        format!("{:?}", s.release(&c2.token, &op1)),
    );
    log(
        "release by holder",
        format!("{:?}", s.release(&c2.token, &op0)),
    );
    log("release again", format!("{:?}", s.release(&c2.token, &op0)));

    // Record, idempotent per token; only the holder; unknown tokens refused.
    let t1 = t0 + Duration::minutes(6);
    let answers = vec![Some(0), Some(1), Some(0), Some(2), Some(0)];
    let r1 = s
        .record(&round, &c1.token, &op0, &complete(answers.clone()), t1)
        .unwrap();
    log("record", format!("{r1:?}"));
    log(
        "record again",
        format!(
            "{:?}",
            s.record(&round, &c1.token, &op0, &complete(answers.clone()), t1)
        ),
    );
    log(
        "record by other",
        format!(
            "{:?}",
            s.record(&round, &c1.token, &op1, &complete(answers.clone()), t1)
        ),
    );
    log(
        "record unknown",
        format!(
            "{:?}",
            s.record(&round, "nope", &op0, &complete(answers.clone()), t1)
        ),
    );
    log(
        "record released by other",
        format!(
            "{:?}",
            s.record(&round, &c2.token, &op1, &outcome(Outcome::NoAnswer), t1)
        ),
    );

    // An appointment is re-queued first, when due.
    let c4 = s.claim_next_if_free(&round, &op1, t1).unwrap().unwrap();
    log("op1 claim", claim_view(&c4));
    let mut appt = outcome(Outcome::Appointment);
    appt.appointment = Some(local(3, 10, 0));
    log(
        "appointment",
        format!("{:?}", s.record(&round, &c4.token, &op1, &appt, t1)),
    );
    log(
        "queue op1",
        format!("{:?}", s.operator_queue(&round, 2, t1)),
    );
    log(
        "day op1",
        format!(
            "{:?}",
            s.operator_day(&round, 2, local(2, 0, 0).timestamp_millis(), t1)
        ),
    );
    let c4b = s
        .claim_next_if_free(&round, &op1, local(3, 10, 1))
        .unwrap()
        .unwrap();
    log("appointment claimed when due", claim_view(&c4b));
    log(
        "release appointment",
        format!("{:?}", s.release(&c4b.token, &op1)),
    );

    // A late record: the claim lapses, the contact is claimed again, then the first claim's
    // record comes in.
    let t2 = t1 + Duration::minutes(1);
    let c2a = s.claim_next(&round, &op0, t2).unwrap().unwrap();
    let t3 = t2 + Duration::hours(1);
    let c2b = s.claim_next(&round, &op0, t3).unwrap().unwrap();
    log(
        "taken over",
        format!("{} {}", c2a.member.id, claim_view(&c2b)),
    );
    let late = s.record(
        &round,
        &c2a.token,
        &op0,
        &outcome(Outcome::NoAnswer),
        t3 + Duration::minutes(1),
    );
    log("late record", format!("{late:?}"));

    // The cycle in one write, and its queued form (answers read in the write).
    let t4 = t3 + Duration::minutes(2);
    let rc = s.record_then_claim(&round, &c2b.token, &op0, &outcome(Outcome::Refused), t4);
    let next = rc.as_ref().ok().and_then(|(_, c)| c.clone());
    log(
        "record_then_claim",
        format!(
            "{:?} next {:?}",
            rc.as_ref().map(|(r, _)| r),
            next.as_ref()
                .map(|c| (c.member_id, c.claimed_at_ms, c.expires_at_ms))
        ),
    );
    let next = next.expect("a next contact");
    let t5 = t4 + Duration::minutes(3);
    // Called and awaited inside an async task, as the web layer does.
    let call = block_on(async {
        s.record_then_claim_queued(
            &round,
            &next.token,
            &op0,
            &complete(answers.clone()),
            t5,
            local(2, 0, 0).timestamp_millis(),
        )
        .await
    })
    .unwrap();
    log(
        "record_then_claim_queued",
        format!(
            "{:?} claimed {:?} held {:?} day {:?} brief {:?}",
            call.recorded,
            call.claimed.as_ref().map(|c| c.member_id),
            call.held.iter().map(claim_view).collect::<Vec<_>>(),
            call.day,
            call.brief
        ),
    );
    log(
        "queued refusal",
        format!(
            "{:?}",
            block_on(s.record_then_claim_queued(
                &round,
                "nope",
                &op0,
                &outcome(Outcome::NoAnswer),
                t5,
                0
            ))
            .map(|c| c.recorded)
        ),
    );
    log("brief", format!("{:?}", s.attempt_brief(r1.attempt_id)));
    log("brief missing", format!("{:?}", s.attempt_brief(999)));
    log("attempt", format!("{:?}", s.attempt(r1.attempt_id)));
    log(
        "attempt missing",
        format!("{:?}", s.attempt(999).map(|a| a.1)),
    );
    log("member_attempts 2", format!("{:?}", s.member_attempts(2)));

    // Reopenings and phone corrections.
    log(
        "reopen",
        format!("{:?}", s.reopen(&round, 1, "核实", "admin", t5)),
    );
    log(
        "fix_phone taken",
        format!(
            "{:?}",
            s.fix_phone(&round, 3, "13900000001", "打错", "admin", t5)
        ),
    );
    log(
        "fix_phone",
        format!(
            "{:?}",
            s.fix_phone(&round, 3, "13911112222", "打错", "admin", t5)
        ),
    );
    log(
        "queue op0",
        format!("{:?}", s.operator_queue(&round, 1, t5)),
    );

    // Answer edits.
    log(
        "edit no reason",
        format!(
            "{:?}",
            s.edit_answers(&round, r1.attempt_id, &answers, " ", "admin", t5)
        ),
    );
    log(
        "edit unchanged",
        format!(
            "{:?}",
            s.edit_answers(&round, r1.attempt_id, &answers, "复核", "admin", t5)
        ),
    );
    let changed = vec![Some(1), Some(1), Some(0), Some(2), Some(1)];
    log(
        "edit",
        format!(
            "{:?}",
            s.edit_answers(&round, r1.attempt_id, &changed, "复核", "admin", t5)
        ),
    );
    log(
        "edit missing",
        format!(
            "{:?}",
            s.edit_answers(&round, 999, &changed, "复核", "admin", t5)
        ),
    );
    log(
        "answer_edits",
        format!("{:?}", s.answer_edits(&[r1.attempt_id, 999])),
    );

    // Paper attempts imported.
    let imported = vec![
        ImportedAttempt {
            member_id: 5,
            operator_id: 2,
            recorded_at: local(2, 9, 0),
            outcome: Outcome::NoAnswer,
            answers: vec![],
            comment: Some("纸质".into()),
            appointment: None,
        },
        ImportedAttempt {
            member_id: 5,
            operator_id: 2,
            recorded_at: local(2, 9, 30),
            outcome: Outcome::Complete,
            answers: answers.clone(),
            comment: None,
            appointment: None,
        },
    ];
    log(
        "import",
        format!("{:?}", s.import_attempts(&round, &imported, "admin", t5)),
    );
    let bad = vec![ImportedAttempt {
        member_id: 999,
        ..imported[0].clone()
    }];
    log(
        "import bad member",
        format!(
            "{:?}",
            s.import_attempts(&round, &bad, "admin", t5).is_err()
        ),
    );
    let data = s.field_data(&round, t5).unwrap();
    log(
        "field_data",
        format!(
            "members {:?} attempts {:?} reopened {:?} claimed {:?} bad {:?} unreadable {:?}",
            data.members,
            data.attempts,
            data.reopened,
            data.claimed,
            data.bad_attempts,
            data.unreadable
        ),
    );
    log(
        "day op0",
        format!(
            "{:?}",
            s.operator_day(&round, 1, local(2, 0, 0).timestamp_millis(), t5)
        ),
    );
    log(
        "day op1",
        format!(
            "{:?}",
            s.operator_day(&round, 2, local(2, 0, 0).timestamp_millis(), t5)
        ),
    );

    // A reassignment plan recomputes the moved members' slots from their history.
    let moved = vec![Assignment {
        member_id: 4,
        unit_id: 2,
        operator: "op0".into(),
        seq: 9,
    }];
    let re = NewPlan {
        kind: "reassign",
        digest: plan::plan_digest(&moved),
        ..new_plan.clone()
    };
    log(
        "reassign",
        format!(
            "{:?}",
            s.apply_plan(&round, &re, &moved, "admin")
                .map(|p| (p.id, p.kind, p.members))
        ),
    );
    log(
        "queue op0 after reassign",
        format!("{:?}", s.operator_queue(&round, 1, local(3, 10, 1))),
    );
    log(
        "plan_assignments 1 after",
        format!("{:?}", s.plan_assignments(&round, p.id)),
    );

    // Last of the plans: a failed insert uses up an identity value on PostgreSQL (sequences
    // are not rolled back), where SQLite would give the next plan the same id again.
    let bad_plan = NewPlan {
        operators: vec!["ghost".into()],
        ..new_plan.clone()
    };
    log(
        "plan unknown operator",
        format!(
            "{:?}",
            s.apply_plan(&round, &bad_plan, &assignments, "admin")
                .map(|p| p.id)
        ),
    );

    // A locked round refuses every write.
    exec("UPDATE rounds SET locked_at = 1 WHERE id = 1");
    log(
        "claim locked",
        format!(
            "{:?}",
            s.claim_next(&round, &op1, t5)
                .map(|c| c.map(|c| c.member.id))
        ),
    );
    log(
        "if_free locked",
        format!(
            "{:?}",
            s.claim_next_if_free(&round, &op1, t5)
                .map(|c| c.map(|c| c.member.id))
        ),
    );
    log(
        "record locked",
        format!(
            "{:?}",
            s.record(&round, "nope", &op1, &outcome(Outcome::NoAnswer), t5)
        ),
    );
    log(
        "renew locked",
        format!("{:?}", s.renew_claim(&round, "nope", &op1, t5)),
    );
    log(
        "reopen locked",
        format!("{:?}", s.reopen(&round, 1, "x", "admin", t5)),
    );
    log(
        "exclude locked",
        format!("{:?}", s.exclude_operator(&round, "op1", 1, "admin")),
    );
    log(
        "plan locked",
        format!(
            "{:?}",
            s.apply_plan(&round, &new_plan, &assignments, "admin")
                .map(|p| p.id)
        ),
    );
    out
}

/// (actor, action, round key, detail) of every audit entry, in chain order.
type AuditRows = Vec<(String, String, Option<String>, String)>;

#[test]
fn plan_and_call_stores_answer_alike_on_sqlite_and_postgres() {
    let Some(db) = pg::fresh_db("plan_and_call_stores_answer_alike") else {
        return;
    };
    let sql = fixture_sql(2, 2, 3);
    let lite = Sqlite::new(&sql);
    let on_sqlite = scenario(&lite.store, &|s: &str| lite.exec(s));
    let sqlite_audit: AuditRows = lite
        .store
        .audit_entries(None)
        .unwrap()
        .into_iter()
        .map(|e| (e.actor, e.action, e.round_key, e.detail))
        .collect();

    let backend = PgBackend::open(&db.url).expect("open PostgreSQL");
    pg_exec(&db.url, &sql);
    let url = db.url.clone();
    let on_pg = scenario(&backend, &|s: &str| pg_exec(&url, &[s.to_string()]));

    // Line by line first: a difference names its step.
    for (a, b) in on_sqlite.iter().zip(&on_pg) {
        assert_eq!(a, b, "SQLite (left) and PostgreSQL (right) differ");
    }
    assert_eq!(on_sqlite.len(), on_pg.len());
    // The scenario really went where it meant to.
    let find = |label: &str| {
        on_pg
            .iter()
            .find(|l| l.starts_with(&format!("{label}: ")))
            .unwrap_or_else(|| panic!("no step {label}"))
            .clone()
    };
    assert!(
        find("record again").contains("duplicate: true"),
        "{}",
        find("record again")
    );
    assert!(find("record by other").contains("NotYours"));
    assert!(find("record unknown").contains("UnknownClaim"));
    assert!(find("if_free while holding").ends_with("None"));
    assert!(find("claim 1").contains("id: 1,"), "{}", find("claim 1"));
    assert!(find("claim 2").contains("id: 2,"), "{}", find("claim 2"));
    assert_eq!(find("renew by other"), "renew by other: Ok(None)");
    assert_eq!(find("release by other"), "release by other: Ok(false)");
    assert_eq!(find("release by holder"), "release by holder: Ok(true)");
    assert!(
        find("late record").contains("late: true"),
        "{}",
        find("late record")
    );
    assert!(find("appointment claimed when due").contains("id: 4,"));
    assert!(find("claim locked").contains("Locked(\"2022\")"));
    assert!(find("record locked").contains("Locked(\"2022\")"));
    assert!(find("fix_phone taken").contains("该号码已在该单位的代表名单中"));
    assert!(find("exclude unknown").contains("没有用户 `nobody`"));

    // The same audit entries, and an intact chain on PostgreSQL.
    let (pg_audit, verified) = block_on(async {
        let store = postgres::PgStore::connect(&db.url).await.unwrap();
        let c = store.client().await.unwrap();
        let entries: AuditRows = postgres::audit::entries(&c)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.actor, e.action, e.round_key, e.detail))
            .collect();
        (entries, postgres::audit::verify(&c).await.unwrap())
    });
    assert_eq!(sqlite_audit, pg_audit);
    let actions: BTreeSet<&str> = pg_audit.iter().map(|e| e.1.as_str()).collect();
    for a in [
        "operator.exclude",
        "operator.include",
        "plan.generate",
        "plan.reassign",
        "contact.claim",
        "attempt.late",
        "member.reopen",
        "member.fix_phone",
        "attempt.edit_answers",
        "attempts.import",
    ] {
        assert!(actions.contains(a), "no {a} in {actions:?}");
    }
    assert_eq!(verified, Ok(pg_audit.len()));
}

/// Several instances on one database: 8 threads, each with its own `PgBackend`, two per
/// operator (one claiming with `claim_next`, one with `claim_next_if_free`), claim and record
/// until the queue is empty. No member is held by two claims at
/// once, every member is recorded exactly once, and the attempts stored are exactly those
/// acknowledged.
#[test]
fn instances_claim_and_record_without_overlap() {
    let Some(db) = pg::fresh_db("instances_claim_and_record") else {
        return;
    };
    const OPERATORS: usize = 4;
    const UNITS: usize = 8;
    const PER_UNIT: usize = 10;
    let members = UNITS * PER_UNIT;
    let first = PgBackend::open(&db.url).expect("open PostgreSQL");
    pg_exec(&db.url, &fixture_sql(OPERATORS, UNITS, PER_UNIT));
    let round = round();
    // Round-robin over the operators, in member order.
    let mut seqs = [0u32; OPERATORS];
    let assignments: Vec<Assignment> = (1..=members as i64)
        .map(|m| {
            let op = (m as usize - 1) % OPERATORS;
            seqs[op] += 1;
            Assignment {
                member_id: m,
                unit_id: (m - 1) / PER_UNIT as i64 + 1,
                operator: format!("op{op}"),
                seq: seqs[op],
            }
        })
        .collect();
    let mut logins: Vec<String> = (0..OPERATORS).map(|i| format!("op{i}")).collect();
    logins.sort();
    first
        .apply_plan(
            &round,
            &NewPlan {
                kind: "generate",
                seed: 1,
                algorithm: plan::PLAN_ALGORITHM,
                operators: logins,
                digest: plan::plan_digest(&assignments),
                inputs: "{}".into(),
            },
            &assignments,
            "admin",
        )
        .unwrap();
    drop(first);

    let now = local(2, 10, 0);
    // member -> the live claim's token, as the threads see their claims come and go.
    let live: Arc<Mutex<BTreeMap<i64, String>>> = Arc::default();
    let threads: Vec<_> = (0..2 * OPERATORS)
        .map(|t| {
            let (url, round, live) = (db.url.clone(), round.clone(), Arc::clone(&live));
            std::thread::spawn(move || {
                let s = PgBackend::open(&url).expect("an instance");
                let op = operator((t % OPERATORS) as i64 + 1);
                let mut acknowledged = Vec::new();
                let mut overlaps = Vec::new();
                let mut held: Option<(i64, String)> = None;
                let take = |m: i64, token: &str, overlaps: &mut Vec<String>| {
                    if let Some(other) = live.lock().unwrap().insert(m, token.to_string()) {
                        overlaps.push(format!("member {m} claimed while {other} was live"));
                    }
                };
                let mut done = false;
                for i in 0..20_000 {
                    let Some((m, token)) = held.take() else {
                        // Half the instances claim with `claim_next` (no check of what the
                        // operator holds): then only the row lock keeps the two instances of
                        // one operator from taking the same contact.
                        let claimed = if t < OPERATORS {
                            s.claim_next(&round, &op, now).unwrap()
                        } else {
                            s.claim_next_if_free(&round, &op, now).unwrap()
                        };
                        match claimed {
                            Some(c) => {
                                take(c.member.id, &c.token, &mut overlaps);
                                held = Some((c.member.id, c.token));
                            }
                            None if s.operator_queue(&round, op.id, now).unwrap().is_empty() => {
                                done = true;
                                break;
                            }
                            // The operator's other instance holds a contact: try again.
                            None => std::thread::yield_now(),
                        }
                        continue;
                    };
                    let input = complete(vec![Some(0), Some(1), Some(0), Some(2), Some(0)]);
                    // Before the write: once committed, the contact is gone from the queue.
                    live.lock().unwrap().remove(&m);
                    if i % 3 == 0 {
                        let r = s.record(&round, &token, &op, &input, now).unwrap();
                        assert!(!r.duplicate && !r.late, "{r:?}");
                        acknowledged.push(r.member_id);
                    } else {
                        // The cycle, blocking or awaited in an async task (the web layer's way).
                        let (r, next) = if i % 3 == 1 {
                            s.record_then_claim(&round, &token, &op, &input, now)
                                .unwrap()
                        } else {
                            let call = block_on(async {
                                s.record_then_claim_queued(&round, &token, &op, &input, now, 0)
                                    .await
                            })
                            .unwrap();
                            (call.recorded, call.claimed)
                        };
                        assert!(!r.duplicate && !r.late, "{r:?}");
                        acknowledged.push(r.member_id);
                        if let Some(c) = next {
                            take(c.member_id, &c.token, &mut overlaps);
                            held = Some((c.member_id, c.token));
                        }
                    }
                }
                assert!(done, "thread {t} did not empty its queue in its bound");
                (acknowledged, overlaps)
            })
        })
        .collect();
    let mut acknowledged = Vec::new();
    for t in threads {
        let (a, overlaps) = t.join().expect("thread");
        assert!(overlaps.is_empty(), "{overlaps:?}");
        acknowledged.extend(a);
    }
    acknowledged.sort();
    let expected: Vec<i64> = (1..=members as i64).collect();
    assert_eq!(
        acknowledged, expected,
        "each member recorded once, acknowledged once"
    );
    let per_member = pg_query_i64(
        &db.url,
        "SELECT member_id, COUNT(*) FROM attempts GROUP BY member_id ORDER BY member_id",
    );
    assert_eq!(per_member.len(), members);
    assert!(per_member.iter().all(|r| r[1] == 1), "{per_member:?}");
    assert_eq!(
        pg_query_i64(&db.url, "SELECT COUNT(*) FROM queue"),
        vec![vec![0]]
    );
    // One claim audited per contact handed out, and the chain one line.
    let claims = pg_query_i64(
        &db.url,
        "SELECT COUNT(*) FROM audit_log WHERE action = 'contact.claim'",
    );
    assert_eq!(claims, vec![vec![members as i64]]);
    let verified = block_on(async {
        let store = postgres::PgStore::connect(&db.url).await.unwrap();
        let c = store.client().await.unwrap();
        postgres::audit::verify(&c).await.unwrap()
    });
    assert!(verified.is_ok(), "{verified:?}");
}

/// Two tabs on several instances: the same operator asks `claim_next_if_free` on 8 instances at
/// once; exactly one gets a contact.
#[test]
fn if_free_hands_one_contact_to_one_operator_across_instances() {
    let Some(db) = pg::fresh_db("if_free_across_instances") else {
        return;
    };
    let first = PgBackend::open(&db.url).expect("open PostgreSQL");
    pg_exec(&db.url, &fixture_sql(1, 2, 10));
    let round = round();
    let assignments: Vec<Assignment> = (1..=20)
        .map(|m| Assignment {
            member_id: m,
            unit_id: (m - 1) / 10 + 1,
            operator: "op0".into(),
            seq: m as u32,
        })
        .collect();
    first
        .apply_plan(
            &round,
            &NewPlan {
                kind: "generate",
                seed: 1,
                algorithm: plan::PLAN_ALGORITHM,
                operators: vec!["op0".into()],
                digest: plan::plan_digest(&assignments),
                inputs: "{}".into(),
            },
            &assignments,
            "admin",
        )
        .unwrap();
    drop(first);
    const INSTANCES: usize = 8;
    let barrier = Arc::new(std::sync::Barrier::new(INSTANCES));
    let threads: Vec<_> = (0..INSTANCES)
        .map(|_| {
            let (url, round, barrier) = (db.url.clone(), round.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                let s = PgBackend::open(&url).expect("an instance");
                barrier.wait();
                s.claim_next_if_free(&round, &operator(1), local(2, 10, 0))
                    .unwrap()
                    .map(|c| c.member.id)
            })
        })
        .collect();
    let got: Vec<i64> = threads
        .into_iter()
        .filter_map(|t| t.join().expect("thread"))
        .collect();
    assert_eq!(got, vec![1], "one claim, the first in the queue");
    assert_eq!(
        pg_query_i64(
            &db.url,
            "SELECT COUNT(*) FROM queue WHERE claim_token IS NOT NULL"
        ),
        vec![vec![1]]
    );
}

/// A double submit landing on several instances at once: the same token recorded on 8
/// instances together stores one attempt; every other answer is that attempt, `duplicate`.
#[test]
fn one_token_recorded_on_many_instances_at_once_stores_one_attempt() {
    let Some(db) = pg::fresh_db("one_token_many_instances") else {
        return;
    };
    let first = PgBackend::open(&db.url).expect("open PostgreSQL");
    pg_exec(&db.url, &fixture_sql(1, 1, 2));
    let round = round();
    let assignments: Vec<Assignment> = (1..=2)
        .map(|m| Assignment {
            member_id: m,
            unit_id: 1,
            operator: "op0".into(),
            seq: m as u32,
        })
        .collect();
    first
        .apply_plan(
            &round,
            &NewPlan {
                kind: "generate",
                seed: 1,
                algorithm: plan::PLAN_ALGORITHM,
                operators: vec!["op0".into()],
                digest: plan::plan_digest(&assignments),
                inputs: "{}".into(),
            },
            &assignments,
            "admin",
        )
        .unwrap();
    let now = local(2, 10, 0);
    let claim = first
        .claim_next(&round, &operator(1), now)
        .unwrap()
        .unwrap();
    drop(first);
    const INSTANCES: usize = 8;
    let barrier = Arc::new(std::sync::Barrier::new(INSTANCES));
    let threads: Vec<_> = (0..INSTANCES)
        .map(|i| {
            let (url, round, barrier) = (db.url.clone(), round.clone(), Arc::clone(&barrier));
            let token = claim.token.clone();
            std::thread::spawn(move || {
                let s = PgBackend::open(&url).expect("an instance");
                let input = complete(vec![Some(0), Some(1), Some(0), Some(2), Some(0)]);
                barrier.wait();
                match i % 3 {
                    0 => s.record(&round, &token, &operator(1), &input, now).unwrap(),
                    1 => {
                        s.record_then_claim(&round, &token, &operator(1), &input, now)
                            .unwrap()
                            .0
                    }
                    _ => {
                        block_on(async {
                            s.record_then_claim_queued(&round, &token, &operator(1), &input, now, 0)
                                .await
                        })
                        .unwrap()
                        .recorded
                    }
                }
            })
        })
        .collect();
    let answers: Vec<_> = threads
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    assert_eq!(
        answers.iter().filter(|r| !r.duplicate).count(),
        1,
        "{answers:?}"
    );
    assert!(
        answers
            .iter()
            .all(|r| r.attempt_id == answers[0].attempt_id && r.member_id == 1 && !r.late),
        "{answers:?}"
    );
    assert_eq!(
        pg_query_i64(&db.url, "SELECT COUNT(*) FROM attempts"),
        vec![vec![1]]
    );
}

/// The cycle's write (record, claim the next contact, read the next screen back) appends the
/// claim's audit entry as its LAST step, after the read-back: the entry takes the audit chain's
/// lock, which every writer of every instance waits for until the transaction ends, so nothing
/// but the entry and the commit may run under it (it was taken before the read-back's six
/// statements, which made it the bench's bottleneck). Seen from outside: with the lock held
/// elsewhere, the write waits for it having read its screen already, so a change committed
/// while it waits is not on that screen; and the entry is in the chain once the lock is free.
#[test]
fn the_cycle_reads_its_screen_back_before_taking_the_audit_chain_lock() {
    let Some(db) = pg::fresh_db("cycle_reads_before_audit_lock") else {
        return;
    };
    let s = PgBackend::open(&db.url).expect("open PostgreSQL");
    pg_exec(&db.url, &fixture_sql(1, 1, 2));
    let round = round();
    let assignments: Vec<Assignment> = (1..=2)
        .map(|m| Assignment {
            member_id: m,
            unit_id: 1,
            operator: "op0".into(),
            seq: m as u32,
        })
        .collect();
    s.apply_plan(
        &round,
        &NewPlan {
            kind: "generate",
            seed: 1,
            algorithm: plan::PLAN_ALGORITHM,
            operators: vec!["op0".into()],
            digest: plan::plan_digest(&assignments),
            inputs: "{}".into(),
        },
        &assignments,
        "admin",
    )
    .unwrap();
    let now = local(2, 10, 0);
    let claim = s.claim_next(&round, &operator(1), now).unwrap().unwrap();
    let input = complete(vec![Some(0), Some(1), Some(0), Some(2), Some(0)]);
    let call = block_on(async {
        let other = pg::connect(&db.url).await;
        other
            .execute(
                "SELECT pg_advisory_lock($1)",
                &[&postgres::audit::AUDIT_LOCK_KEY],
            )
            .await
            .unwrap();
        // Runs at once, as a task on the backend's runtime.
        let write = s.record_then_claim_queued(&round, &claim.token, &operator(1), &input, now, 0);
        let mut waiting = false;
        for _ in 0..600 {
            let n: i64 = other
                .query_one(
                    "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if n > 0 {
                waiting = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(waiting, "the write never waited for the audit chain's lock");
        // 100 more completes on the operator's counts (a quarter of its own, far ahead, so no
        // row the write holds), committed while the write waits.
        other
            .batch_execute(
                "INSERT INTO operator_tally (round_id, operator_id, quarter, attempts, completes)
                 VALUES (1, 1, 9000000000, 100, 100)",
            )
            .await
            .unwrap();
        other
            .execute(
                "SELECT pg_advisory_unlock($1)",
                &[&postgres::audit::AUDIT_LOCK_KEY],
            )
            .await
            .unwrap();
        write.await.unwrap()
    });
    assert!(!call.recorded.duplicate);
    let next = call.claimed.as_ref().expect("the second member claimed");
    assert_eq!(next.member_id, 2);
    assert_eq!(
        (call.day.completes_today, call.day.attempts_today),
        (1, 1),
        "the screen was read after the audit lock was granted: it shows a commit made while the write waited"
    );
    let (last, verified) = block_on(async {
        let store = postgres::PgStore::connect(&db.url).await.unwrap();
        let c = store.client().await.unwrap();
        let entries = postgres::audit::entries(&c).await.unwrap();
        let last = entries.last().map(|e| (e.action.clone(), e.detail.clone()));
        (
            (last, entries.len()),
            postgres::audit::verify(&c).await.unwrap(),
        )
    });
    assert_eq!(
        last.0,
        Some((
            "contact.claim".to_string(),
            r#"{"member_id":2}"#.to_string()
        ))
    );
    assert_eq!(verified, Ok(last.1));
}
