//! What group commit buys: concurrent operators recording outcomes through the store, with
//! group commit on and off (one fsync per write), `synchronous=FULL` in both.
//!
//! Run: `cargo bench --bench group_commit` (THREADS=64 RECORDS=20 to change the load).

use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};
use sheping::domain::disposition::Outcome;
use sheping::domain::roster::{MemberCategory, NewMember};
use sheping::domain::survey::Survey;
use sheping::domain::unit::{NewUnit, UnitKind};
use sheping::domain::user::Role;
use sheping::engine;
use sheping::storage::prelude::*;
use sheping::storage::sqlite::SqliteStore;
use sheping::storage::{AttemptInput, NewRound, NewUser};

fn run(group_commit: bool, threads: usize, per_thread: usize) -> (f64, usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open_with(&dir.path().join("gc.db"), group_commit).unwrap());
    let mut survey = Survey::from_toml_str(include_str!("../surveys/default.toml")).unwrap();
    survey.calling.windows = vec!["00:00-23:59".into()];
    let day = chrono::NaiveDate::from_ymd_opt(2022, 11, 1).unwrap();
    let round = store
        .create_round(
            &NewRound {
                key: "b".into(),
                title: "b".into(),
                survey,
                survey_source: "d".into(),
                field: Some((day, day + Duration::days(30))),
            },
            "b",
        )
        .unwrap();
    let per_unit = 45;
    let members = threads * per_thread;
    let n_units = members.div_ceil(per_unit);
    let units: Vec<NewUnit> = (0..n_units)
        .map(|u| NewUnit {
            name: format!("u{u}"),
            kind: UnitKind::Organ,
            sector: String::new(),
            code: None,
            line: u,
        })
        .collect();
    store.add_units(&round, &units, "b").unwrap();
    let ids: Vec<i64> = store
        .units(round.id)
        .unwrap()
        .iter()
        .map(|u| u.id)
        .collect();
    let new: Vec<NewMember> = (0..members)
        .map(|i| NewMember {
            unit_id: ids[i / per_unit],
            name: format!("m{i}"),
            phone: format!("139{i:08}"),
            phone_alt: None,
            category: MemberCategory::ServiceRecipient,
            organization: None,
            note: None,
            line: i,
        })
        .collect();
    store.add_members(&round, &new, &[], "b").unwrap();
    let ops: Vec<_> = (0..threads)
        .map(|i| {
            store
                .add_user(
                    &NewUser {
                        login: format!("op{i}"),
                        name: "o".into(),
                        role: Role::Operator,
                        password_hash: "x".into(),
                    },
                    "b",
                )
                .unwrap()
        })
        .collect();
    engine::generate_plan(
        store.as_ref(),
        &round,
        ops.iter().map(|o| o.login.clone()).collect(),
        1,
        "b",
    )
    .unwrap();
    let now = Utc.with_ymd_and_hms(2022, 11, 2, 2, 0, 0).unwrap();
    let start = Instant::now();
    let handles: Vec<_> = ops
        .into_iter()
        .map(|op| {
            let store = store.clone();
            let round = round.clone();
            std::thread::spawn(move || {
                let mut n = 0;
                while let Some(c) = store.claim_next(&round, &op, now).unwrap() {
                    let input = AttemptInput {
                        outcome: Some(Outcome::Complete),
                        answers: vec![Some(0); 5],
                        ..Default::default()
                    };
                    store.record(&round, &c.token, &op, &input, now).unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let done: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    (start.elapsed().as_secs_f64(), done)
}

fn main() {
    let threads: usize = std::env::var("THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    let per: usize = std::env::var("RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    println!(
        "group commit: {threads} concurrent operators, each claiming and recording {per} completes (2 writes per call), synchronous=FULL"
    );
    let (off, n_off) = run(false, threads, per);
    let (on, n_on) = run(true, threads, per);
    assert_eq!(n_off, n_on);
    println!(
        "without group commit: {off:.2} s, {:.0} calls/s",
        n_off as f64 / off
    );
    println!(
        "with group commit:    {on:.2} s, {:.0} calls/s",
        n_on as f64 / on
    );
    println!("speed-up: {:.2}x", off / on);
}
