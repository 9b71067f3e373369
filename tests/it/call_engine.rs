//! The call engine on a real database (the run's backend: a SQLite file, or PostgreSQL under
//! `SHEPING_TEST_BACKEND=postgres`): queue order, leases, idempotent recording, scheduling
//! through the store, corrections, regeneration and concurrency.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use sheping::domain::disposition::Outcome;
use sheping::domain::roster::{MemberCategory, NewMember};
use sheping::domain::survey::Survey;
use sheping::domain::unit::{NewUnit, UnitKind};
use sheping::domain::user::Role;
use sheping::engine;
use sheping::storage::Store;
use sheping::storage::{AttemptInput, NewRound, NewUser, RecordError, RoundRecord, UserRecord};

use crate::common::Sheping;

struct Fixture {
    store: Arc<dyn Store>,
    round: RoundRecord,
    ops: Vec<UserRecord>,
    // Last: the database outlives the store's connections.
    db: Sheping,
}

/// 2022-11-02 at `h:m` in Shanghai.
fn local(day: u32, h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2022, 11, day, h, m, 0).unwrap() - Duration::hours(8)
}

fn setup(units: usize, per_unit: usize, operators: usize) -> Fixture {
    let survey = Survey::from_toml_str(include_str!("../../surveys/default.toml")).unwrap();
    setup_with(survey, units, per_unit, operators)
}

fn setup_with(survey: Survey, units: usize, per_unit: usize, operators: usize) -> Fixture {
    let db = Sheping::new();
    let store = db.store();
    let round = store
        .create_round(
            &NewRound {
                key: "2022".into(),
                title: "t".into(),
                survey,
                survey_source: "default".into(),
                field: Some((
                    chrono::NaiveDate::from_ymd_opt(2022, 11, 1).unwrap(),
                    chrono::NaiveDate::from_ymd_opt(2022, 11, 30).unwrap(),
                )),
            },
            "test",
        )
        .unwrap();
    let new_units: Vec<NewUnit> = (0..units)
        .map(|u| NewUnit {
            name: format!("单位{u}"),
            kind: UnitKind::Organ,
            sector: "教体".into(),
            code: None,
            line: u + 2,
        })
        .collect();
    store.add_units(&round, &new_units, "test").unwrap();
    let stored = store.units(round.id).unwrap();
    let mut members = Vec::new();
    for (u, unit) in stored.iter().enumerate() {
        for k in 0..per_unit {
            members.push(NewMember {
                unit_id: unit.id,
                name: format!("代表{u}-{k}"),
                phone: format!("139{:04}{:04}", u, k),
                phone_alt: None,
                category: MemberCategory::ServiceRecipient,
                organization: None,
                note: None,
                line: members.len() + 2,
            });
        }
    }
    store.add_members(&round, &members, &[], "test").unwrap();
    let ops = (0..operators)
        .map(|i| {
            store
                .add_user(
                    &NewUser {
                        login: format!("op{i}"),
                        name: format!("话务员{i}"),
                        role: Role::Operator,
                        password_hash: "x".into(),
                    },
                    "test",
                )
                .unwrap()
        })
        .collect::<Vec<_>>();
    let logins = ops.iter().map(|o| o.login.clone()).collect();
    engine::generate_plan(store.as_ref(), &round, logins, 7, "test").unwrap();
    Fixture {
        db,
        store,
        round,
        ops,
    }
}

fn complete() -> AttemptInput {
    AttemptInput {
        outcome: Some(Outcome::Complete),
        answers: vec![Some(0), Some(1), Some(0), Some(2), Some(0)],
        ..Default::default()
    }
}

fn outcome(o: Outcome) -> AttemptInput {
    AttemptInput {
        outcome: Some(o),
        ..Default::default()
    }
}

#[test]
fn first_calls_come_in_plan_order_and_a_no_answer_comes_back_in_another_window() {
    let f = setup(2, 5, 1);
    let op = &f.ops[0];
    let list = f.store.call_list(&f.round, Some("op0")).unwrap();
    let t0 = local(2, 10, 0);
    let first = f.store.claim_next(&f.round, op, t0).unwrap().unwrap();
    assert_eq!(first.member.id, list[0].member_id, "plan order");
    assert_eq!(first.attempt_no, 1);
    f.store
        .record(
            &f.round,
            &first.token,
            op,
            &outcome(Outcome::NoAnswer),
            t0 + Duration::minutes(1),
        )
        .unwrap();
    // Later the same morning: the no-answer is not due, the next first call comes.
    let second = f
        .store
        .claim_next(&f.round, op, t0 + Duration::minutes(2))
        .unwrap()
        .unwrap();
    assert_eq!(second.member.id, list[1].member_id);
    f.store.release(&second.token, op).unwrap();
    // In the afternoon window the retry is due and comes before first calls.
    let retry = f
        .store
        .claim_next(&f.round, op, local(2, 14, 31))
        .unwrap()
        .unwrap();
    assert_eq!(retry.member.id, first.member.id);
    assert_eq!(retry.attempt_no, 2);
    assert_eq!(retry.earlier.len(), 1);
    assert_eq!(retry.earlier[0].outcome, Outcome::NoAnswer);
}

#[test]
fn nothing_is_offered_outside_call_windows_or_the_field_period() {
    let f = setup(1, 3, 1);
    let op = &f.ops[0];
    assert!(
        f.store
            .claim_next(&f.round, op, local(2, 12, 0))
            .unwrap()
            .is_none(),
        "lunch break is no window"
    );
    assert!(
        f.store
            .claim_next(&f.round, op, local(2, 20, 0))
            .unwrap()
            .is_none(),
        "evening"
    );
    let after = Utc.with_ymd_and_hms(2022, 12, 2, 2, 0, 0).unwrap();
    assert!(
        f.store.claim_next(&f.round, op, after).unwrap().is_none(),
        "after the field period"
    );
    assert!(
        f.store
            .claim_next(&f.round, op, local(2, 9, 0))
            .unwrap()
            .is_some()
    );
}

#[test]
fn an_appointment_comes_back_when_due_before_retries_and_first_calls() {
    let f = setup(1, 6, 1);
    let op = &f.ops[0];
    let t0 = local(2, 9, 30);
    let a = f.store.claim_next(&f.round, op, t0).unwrap().unwrap();
    let when = local(3, 16, 0);
    let input = AttemptInput {
        outcome: Some(Outcome::Appointment),
        appointment: Some(when),
        ..Default::default()
    };
    f.store.record(&f.round, &a.token, op, &input, t0).unwrap();
    let b = f.store.claim_next(&f.round, op, t0).unwrap().unwrap();
    f.store
        .record(&f.round, &b.token, op, &outcome(Outcome::Busy), t0)
        .unwrap();
    // Before the appointment: the busy retry (due in the afternoon) comes first.
    let at_15 = local(3, 15, 0);
    let next = f.store.claim_next(&f.round, op, at_15).unwrap().unwrap();
    assert_eq!(next.member.id, b.member.id);
    f.store.release(&next.token, op).unwrap();
    // At the appointment it comes before the due retry.
    let next = f.store.claim_next(&f.round, op, when).unwrap().unwrap();
    assert_eq!(next.member.id, a.member.id);
    assert_eq!(next.appointment_at_ms, Some(when.timestamp_millis()));
    // An appointment in the past is refused.
    let c = f.store.claim_next(&f.round, op, when).unwrap().unwrap();
    let past = AttemptInput {
        outcome: Some(Outcome::Appointment),
        appointment: Some(when - Duration::hours(1)),
        ..Default::default()
    };
    assert!(matches!(
        f.store.record(&f.round, &c.token, op, &past, when),
        Err(RecordError::Invalid(_))
    ));
}

#[test]
fn a_lease_expires_and_returns_the_contact() {
    let f = setup(1, 4, 2);
    let op = &f.ops[0];
    let t0 = local(2, 10, 0);
    let claim = f.store.claim_next(&f.round, op, t0).unwrap().unwrap();
    let lease = Duration::minutes(i64::from(f.round.survey.calling.lease_minutes));
    assert_eq!(
        claim.expires_at_ms - claim.claimed_at_ms,
        lease.num_milliseconds()
    );
    // While held, the operator's next claim gets another member.
    let other = f
        .store
        .claim_next(&f.round, op, t0 + Duration::minutes(1))
        .unwrap()
        .unwrap();
    assert_ne!(other.member.id, claim.member.id);
    f.store.release(&other.token, op).unwrap();
    // After expiry the contact is offered again under a new token.
    let later = t0 + lease + Duration::seconds(1);
    let again = f.store.claim_next(&f.round, op, later).unwrap().unwrap();
    assert_eq!(again.member.id, claim.member.id);
    assert_ne!(again.token, claim.token);
    // A token held by someone else is refused with a clear message.
    let err = f
        .store
        .record(&f.round, &again.token, &f.ops[1], &complete(), later)
        .unwrap_err();
    assert!(matches!(err, RecordError::NotYours));
    assert_eq!(
        f.store.field_data(&f.round, later).unwrap().attempts.len(),
        0
    );
    // The interview on the stale token happened: it is stored, flagged late (the contact was
    // claimed again since), and the new claim ends with the complete.
    let rec = f
        .store
        .record(&f.round, &claim.token, op, &complete(), later)
        .unwrap();
    assert!(rec.late && !rec.duplicate);
    assert_eq!(rec.member_id, claim.member.id);
    let err = f
        .store
        .renew_claim(&f.round, &again.token, op, later)
        .unwrap();
    assert_eq!(err, None, "the member is complete: the newer claim ended");
}

#[test]
fn an_expired_claim_nobody_took_is_recorded() {
    let f = setup(1, 2, 1);
    let op = &f.ops[0];
    let t0 = local(2, 10, 0);
    let claim = f.store.claim_next(&f.round, op, t0).unwrap().unwrap();
    let rec = f
        .store
        .record(
            &f.round,
            &claim.token,
            op,
            &complete(),
            t0 + Duration::minutes(16),
        )
        .unwrap();
    assert!(!rec.late && !rec.duplicate);
    assert_eq!(rec.member_id, claim.member.id);
}

#[test]
fn recording_the_same_token_twice_stores_one_attempt() {
    let f = setup(1, 2, 1);
    let op = &f.ops[0];
    let t0 = local(2, 10, 0);
    let claim = f.store.claim_next(&f.round, op, t0).unwrap().unwrap();
    let first = f
        .store
        .record(
            &f.round,
            &claim.token,
            op,
            &complete(),
            t0 + Duration::minutes(3),
        )
        .unwrap();
    let second = f
        .store
        .record(
            &f.round,
            &claim.token,
            op,
            &complete(),
            t0 + Duration::minutes(3),
        )
        .unwrap();
    assert!(!first.duplicate);
    assert!(second.duplicate);
    assert_eq!(first.attempt_id, second.attempt_id);
    let data = f.store.field_data(&f.round, t0).unwrap();
    assert_eq!(data.attempts.len(), 1);
    assert_eq!(data.attempts[0].claimed_at_ms, Some(t0.timestamp_millis()));
    assert_eq!(
        data.attempts[0].recorded_at_ms,
        (t0 + Duration::minutes(3)).timestamp_millis()
    );
}

#[test]
fn a_complete_is_final_and_max_attempts_end_a_member() {
    let f = setup(1, 2, 1);
    let op = &f.ops[0];
    let mut t = local(2, 9, 0);
    let c = f.store.claim_next(&f.round, op, t).unwrap().unwrap();
    f.store
        .record(&f.round, &c.token, op, &complete(), t)
        .unwrap();
    // The other member: no answer until attempts run out (5), then final.
    let mut seen = 0;
    for _ in 0..40 {
        if let Some(claim) = f.store.claim_next(&f.round, op, t).unwrap() {
            assert_ne!(
                claim.member.id, c.member.id,
                "a complete is never offered again"
            );
            f.store
                .record(&f.round, &claim.token, op, &outcome(Outcome::NoAnswer), t)
                .unwrap();
            seen += 1;
        }
        t += Duration::hours(3);
    }
    assert_eq!(
        seen, f.round.survey.calling.max_attempts,
        "exactly max_attempts attempts"
    );
    let p = engine::progress(f.store.as_ref(), &f.round, t).unwrap();
    assert_eq!(p.overall.completes, 1);
    assert_eq!(p.overall.final_, 2);
    assert_eq!(p.overall.dispositions.uh, 1);
}

#[test]
fn a_wrong_number_is_final_until_the_number_is_corrected() {
    let f = setup(1, 1, 1);
    let op = &f.ops[0];
    let t0 = local(2, 10, 0);
    let c = f.store.claim_next(&f.round, op, t0).unwrap().unwrap();
    f.store
        .record(&f.round, &c.token, op, &outcome(Outcome::WrongNumber), t0)
        .unwrap();
    assert!(
        f.store
            .claim_next(&f.round, op, t0 + Duration::hours(5))
            .unwrap()
            .is_none(),
        "final"
    );
    f.store
        .fix_phone(
            &f.round,
            c.member.id,
            "13800138000",
            "单位提供了新号码",
            "admin",
            t0 + Duration::hours(5),
        )
        .unwrap();
    let again = f
        .store
        .claim_next(&f.round, op, local(3, 9, 0))
        .unwrap()
        .unwrap();
    assert_eq!(again.member.id, c.member.id);
    assert_eq!(again.member.phone.as_deref(), Some("13800138000"));
    assert!(
        f.store
            .audit_entries(Some("2022"))
            .unwrap()
            .iter()
            .any(|e| e.action == "member.fix_phone")
    );
}

#[test]
fn a_reopened_refusal_is_called_again() {
    let f = setup(1, 1, 1);
    let op = &f.ops[0];
    let t0 = local(2, 10, 0);
    let c = f.store.claim_next(&f.round, op, t0).unwrap().unwrap();
    f.store
        .record(&f.round, &c.token, op, &outcome(Outcome::Refused), t0)
        .unwrap();
    assert!(
        f.store
            .claim_next(&f.round, op, local(3, 10, 0))
            .unwrap()
            .is_none()
    );
    f.store
        .reopen(
            &f.round,
            c.member.id,
            "受访者来电表示愿意接受访问",
            "admin",
            local(3, 10, 0),
        )
        .unwrap();
    let again = f
        .store
        .claim_next(&f.round, op, local(3, 10, 1))
        .unwrap()
        .unwrap();
    assert_eq!(again.member.id, c.member.id);
    f.store
        .record(&f.round, &again.token, op, &complete(), local(3, 10, 5))
        .unwrap();
    let p = engine::progress(f.store.as_ref(), &f.round, local(3, 11, 0)).unwrap();
    assert_eq!(p.overall.completes, 1);
}

#[test]
fn regenerating_after_calls_touches_only_members_never_called() {
    let f = setup(3, 10, 3);
    let t0 = local(2, 10, 0);
    let mut called = BTreeMap::new();
    for op in &f.ops {
        for _ in 0..2 {
            let c = f.store.claim_next(&f.round, op, t0).unwrap().unwrap();
            f.store
                .record(&f.round, &c.token, op, &outcome(Outcome::Busy), t0)
                .unwrap();
            called.insert(c.member.id, op.login.clone());
        }
    }
    let before: BTreeMap<i64, (String, u32)> = f
        .store
        .call_list(&f.round, None)
        .unwrap()
        .into_iter()
        .map(|r| (r.member_id, (r.operator, r.seq)))
        .collect();
    let out = engine::generate_plan(
        f.store.as_ref(),
        &f.round,
        vec!["op0".into(), "op1".into(), "op2".into()],
        99,
        "test",
    )
    .unwrap();
    assert_eq!(out.called, 6, "says how many were already called");
    assert_eq!(out.planned, 24, "only never-called members are planned");
    let after: BTreeMap<i64, (String, u32)> = f
        .store
        .call_list(&f.round, None)
        .unwrap()
        .into_iter()
        .map(|r| (r.member_id, (r.operator, r.seq)))
        .collect();
    for (member, op) in &called {
        assert_eq!(&after[member].0, op, "called member keeps its operator");
        assert_eq!(after[member], before[member], "and its place");
    }
    // Every member still has exactly one operator; seqs are unique per operator.
    assert_eq!(after.len(), 30);
    let mut seqs = BTreeSet::new();
    for (op, seq) in after.values() {
        assert!(seqs.insert((op.clone(), *seq)), "duplicate seq {op} {seq}");
    }
}

#[test]
fn reassigning_an_absent_operator_keeps_the_balance() {
    let f = setup(4, 45, 4);
    let out = engine::reassign(
        f.store.as_ref(),
        &f.round,
        "op3",
        vec!["op0".into(), "op1".into(), "op2".into()],
        5,
        "test",
    )
    .unwrap();
    assert_eq!(out.planned, 45);
    let list = f.store.call_list(&f.round, None).unwrap();
    let mut totals: BTreeMap<String, u32> = BTreeMap::new();
    let mut per_unit: BTreeMap<(i64, String), u32> = BTreeMap::new();
    for r in &list {
        *totals.entry(r.operator.clone()).or_default() += 1;
        *per_unit.entry((r.unit_id, r.operator.clone())).or_default() += 1;
    }
    assert!(!totals.contains_key("op3"));
    assert_eq!(totals.values().sum::<u32>(), 180);
    assert!(
        totals.values().max().unwrap() - totals.values().min().unwrap() <= 1,
        "{totals:?}"
    );
    for unit in f.store.units(f.round.id).unwrap() {
        let counts: Vec<u32> = ["op0", "op1", "op2"]
            .iter()
            .map(|o| {
                per_unit
                    .get(&(unit.id, o.to_string()))
                    .copied()
                    .unwrap_or(0)
            })
            .collect();
        assert!(
            counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1,
            "unit {}: {counts:?}",
            unit.name
        );
    }
}

#[test]
fn concurrent_operators_never_share_a_contact_and_lose_no_attempt() {
    let f = setup(6, 45, 4);
    let t0 = local(2, 10, 0);
    let round = Arc::new(f.round.clone());
    let mut handles = Vec::new();
    // Two threads per operator: the same operator in two tabs, plus the others at once.
    for (i, op) in f.ops.iter().cloned().enumerate() {
        for tab in 0..2 {
            let store = f.store.clone();
            let round = round.clone();
            let op = op.clone();
            handles.push(std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                let mut recorded = Vec::new();
                let mut k = 0;
                let mut held = store.claim_next(&round, &op, t0).unwrap();
                while let Some(c) = held.take() {
                    let input = if (k + i + tab) % 3 == 0 {
                        outcome(Outcome::Refused)
                    } else {
                        complete()
                    };
                    // The second tab records through the writer's queue (and claims the next
                    // contact in the same write), the first on its own thread: both at once.
                    let r = if tab == 1 {
                        // Every other record is awaited, as the web form does, instead of
                        // blocking this thread.
                        let (r, next) = if k % 2 == 0 {
                            store.record_then_claim(&round, &c.token, &op, &input, t0)
                        } else {
                            let since = t0.timestamp_millis() - 3_600_000;
                            let queued = store
                                .record_then_claim_queued(&round, &c.token, &op, &input, t0, since);
                            rt.block_on(queued).map(|call| {
                                // The screen read in the same write shows this record and
                                // the contact it claimed.
                                let done = call.brief.as_ref().expect("the record's line");
                                assert_eq!((done.operator_id, done.round_id), (op.id, round.id));
                                assert_eq!(done.attempt_no, call.recorded.attempt_no);
                                if let Some(next) = &call.claimed {
                                    assert!(
                                        call.held.iter().any(|h| h.token == next.token
                                            && h.member.id == next.member_id)
                                    );
                                }
                                (call.recorded, call.claimed)
                            })
                        }
                        .unwrap();
                        // The claim made with the record is among those the call screen
                        // shows (the other tab may hold one too).
                        if let Some(next) = next {
                            let shown = store.held_claims(&round, &op, t0).unwrap();
                            let mine = shown.into_iter().find(|c| c.token == next.token);
                            let mine = mine.expect("the new claim is held");
                            assert_eq!(mine.member.id, next.member_id);
                            held = Some(mine);
                        }
                        r
                    } else {
                        store.record(&round, &c.token, &op, &input, t0).unwrap()
                    };
                    if held.is_none() {
                        // Nothing claimed with the record (the other tab held a contact).
                        held = store.claim_next(&round, &op, t0).unwrap();
                    }
                    assert!(!r.duplicate);
                    // A network retry of the same submission changes nothing.
                    assert!(
                        store
                            .record(&round, &c.token, &op, &input, t0)
                            .unwrap()
                            .duplicate
                    );
                    recorded.push((c.member.id, r.attempt_id));
                    k += 1;
                }
                recorded
            }));
        }
    }
    let mut members = BTreeSet::new();
    let mut attempts = BTreeSet::new();
    for h in handles {
        for (m, a) in h.join().unwrap() {
            assert!(members.insert(m), "member {m} was given to two claims");
            assert!(attempts.insert(a));
        }
    }
    assert_eq!(members.len(), 6 * 45, "every member called exactly once");
    let data = f.store.field_data(&f.round, t0).unwrap();
    assert_eq!(
        data.attempts.len(),
        members.len(),
        "no attempt lost or duplicated"
    );
    let n: i64 = f.db.count("SELECT COUNT(*) FROM queue");
    assert_eq!(n, 0, "every member is final");
}

/// The operator's rounds and sessions are kept in memory between requests (see
/// `storage/sqlite/read_cache.rs`): a change made through the store is seen at once, one made
/// behind its back (another process, the sqlite3 shell) within the cache's TTL of a second.
#[test]
fn cached_rounds_and_sessions_follow_every_change() {
    use sheping::storage::{NewSession, SessionLimits, SessionLookup};
    let f = setup(2, 3, 2);
    let op = &f.ops[0];
    assert!(
        f.store.operator_rounds_cached(op.id).is_none(),
        "never read: not in memory"
    );
    let rounds = f.store.operator_rounds(op.id).unwrap();
    assert_eq!(rounds.len(), 1);
    assert!(!rounds[0].is_locked());
    let cached = f
        .store
        .operator_rounds_cached(op.id)
        .expect("read once: in memory");
    assert_eq!((cached.len(), cached[0].key.as_str()), (1, "2022"));
    // Through the store: the next lookup sees the lock, and the copy in memory is not used.
    f.store.lock_round(&f.round, "test").unwrap();
    assert!(f.store.operator_rounds_cached(op.id).is_none());
    assert!(f.store.operator_rounds(op.id).unwrap()[0].is_locked());
    // A second round planned for op1 only.
    let survey = Survey::from_toml_str(include_str!("../../surveys/default.toml")).unwrap();
    let second = f
        .store
        .create_round(
            &NewRound {
                key: "2023".into(),
                title: "t2".into(),
                survey,
                survey_source: "default".into(),
                field: None,
            },
            "test",
        )
        .unwrap();
    assert_eq!(f.store.operator_rounds(f.ops[1].id).unwrap().len(), 1);
    let unit = NewUnit {
        name: "单位甲".into(),
        kind: UnitKind::Organ,
        sector: "教体".into(),
        code: None,
        line: 2,
    };
    f.store.add_units(&second, &[unit], "test").unwrap();
    let unit_id = f.store.units(second.id).unwrap()[0].id;
    let member = NewMember {
        unit_id,
        name: "代表".into(),
        phone: "13900000001".into(),
        phone_alt: None,
        category: MemberCategory::ServiceRecipient,
        organization: None,
        note: None,
        line: 2,
    };
    f.store
        .add_members(&second, &[member], &[], "test")
        .unwrap();
    engine::generate_plan(f.store.as_ref(), &second, vec!["op1".into()], 3, "test").unwrap();
    let keys = |id| -> Vec<String> {
        let rounds = f.store.operator_rounds(id).unwrap();
        rounds.into_iter().map(|r| r.key).collect()
    };
    assert_eq!(keys(f.ops[1].id), ["2023", "2022"]);
    assert_eq!(keys(op.id), ["2022"]);
    // Behind the store's back: unseen at first perhaps, seen once the TTL has passed.
    f.store.operator_rounds(op.id).unwrap();
    let raw = f.db.sql();
    raw.execute("UPDATE rounds SET title = '改名' WHERE key = '2022'", [])
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert!(
        f.store.operator_rounds_cached(op.id).is_none(),
        "past the TTL the copy in memory is not used"
    );
    assert_eq!(f.store.operator_rounds(op.id).unwrap()[0].title, "改名");

    // Sessions.
    let limits = SessionLimits {
        idle_ms: 3_600_000,
        absolute_ms: 36_000_000,
    };
    let now = sheping::storage::sqlite::now_ms();
    let start = |id: &str, user: &UserRecord| {
        f.store
            .start_session(
                &NewSession {
                    id_hash: id,
                    user,
                    csrf: "c",
                    ip: "127.0.0.1",
                    user_agent: "test",
                    now_ms: now,
                },
                None,
            )
            .unwrap()
    };
    let valid = |id: &str| {
        matches!(
            f.store.session(id, now, &limits, false).unwrap(),
            SessionLookup::Valid(_)
        )
    };
    // What an async request thread may answer from memory, without a read or a write.
    let cached = |id: &str, at: i64, touch: bool| {
        f.store
            .session_cached(id, at, &limits, touch)
            .map(|s| s.user.login)
    };
    start("s0", op);
    start("s1", &f.ops[1]);
    assert_eq!(cached("s0", now, false), None, "never read: not in memory");
    assert!(valid("s0") && valid("s1"));
    assert_eq!(cached("s0", now, false).as_deref(), Some("op0"));
    assert_eq!(
        cached("s1", now, true).as_deref(),
        Some("op1"),
        "no touch due yet"
    );
    let touch_due = now + limits.touch_every_ms();
    assert_eq!(
        cached("s0", touch_due, true),
        None,
        "a touch is a write: the store does it"
    );
    assert_eq!(cached("s0", touch_due, false).as_deref(), Some("op0"));
    let idle = now + limits.idle_ms;
    assert_eq!(
        cached("s0", idle, false),
        None,
        "timed out: the store ends it"
    );
    f.store.end_session("s0", "op0").unwrap();
    assert_eq!(cached("s0", now, false), None);
    assert!(!valid("s0"), "signed out: gone at once");
    f.store.set_user_active("op1", false, "admin").unwrap();
    assert_eq!(cached("s1", now, false), None);
    assert!(!valid("s1"), "a disabled user's session ends at once");
    start("s2", op);
    assert!(valid("s2"));
    raw.execute("DELETE FROM sessions WHERE id_hash = 's2'", [])
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert!(
        !valid("s2"),
        "deleted behind the store's back: gone within the TTL"
    );
}

/// A respondent who asks on the last allowed attempt to be called back gets that call, at the
/// agreed time, and only that one.
#[test]
fn an_appointment_on_the_last_allowed_attempt_is_honoured_once() {
    let mut survey = Survey::from_toml_str(include_str!("../../surveys/default.toml")).unwrap();
    survey.calling.max_attempts = 2;
    let f = setup_with(survey, 1, 1, 1);
    let op = &f.ops[0];
    let t0 = local(2, 10, 0);
    let c = f.store.claim_next(&f.round, op, t0).unwrap().unwrap();
    f.store
        .record(&f.round, &c.token, op, &outcome(Outcome::NoAnswer), t0)
        .unwrap();
    let t1 = local(2, 15, 0);
    let c = f.store.claim_next(&f.round, op, t1).unwrap().unwrap();
    assert_eq!(c.attempt_no, 2);
    let agreed = local(3, 16, 30);
    let appointment = AttemptInput {
        outcome: Some(Outcome::Appointment),
        appointment: Some(agreed),
        ..Default::default()
    };
    f.store
        .record(&f.round, &c.token, op, &appointment, t1)
        .unwrap();
    // Not before the agreed time…
    assert!(
        f.store
            .claim_next(&f.round, op, agreed - Duration::minutes(5))
            .unwrap()
            .is_none()
    );
    // …then a third call, though the survey allows two.
    let c = f.store.claim_next(&f.round, op, agreed).unwrap().unwrap();
    assert_eq!(c.attempt_no, 3);
    assert_eq!(c.appointment_at_ms, Some(agreed.timestamp_millis()));
    let again = AttemptInput {
        appointment: Some(local(4, 16, 30)),
        ..appointment
    };
    f.store
        .record(&f.round, &c.token, op, &again, agreed)
        .unwrap();
    // Another appointment does not earn a fourth.
    for day in 3..=10 {
        assert!(
            f.store
                .claim_next(&f.round, op, local(day, 16, 30))
                .unwrap()
                .is_none(),
            "day {day}"
        );
    }
}
