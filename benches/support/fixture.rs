//! A planned round on a real SQLite file, for the benchmarks and the crash test: `members`
//! representatives (45 per unit), `operators` operators who share one password, calls windows
//! over the whole day and a field period around today.
#![allow(dead_code)]

use std::path::Path;

use sheping::domain::roster::{MemberCategory, NewMember};
use sheping::domain::survey::Survey;
use sheping::domain::unit::{NewUnit, UnitKind};
use sheping::domain::user::{Role, hash_password};
use sheping::storage::prelude::*;
use sheping::storage::sqlite::SqliteStore;
use sheping::storage::{NewRound, NewUser};

pub const PASSWORD: &str = "fixture-password-1";

/// Builds round `key` and its plan (seed 1); operators are `op0`, `op1`, ...
pub fn planned_round(path: &Path, key: &str, members: usize, operators: usize) -> SqliteStore {
    // PAGE_SIZE=N (A/B runs): the file is made with that page size first, which the store
    // keeps (a new database gets SQLite's default of 4096).
    if let Some(size) = std::env::var("PAGE_SIZE")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
    {
        let c = rusqlite::Connection::open(path).unwrap();
        c.pragma_update(None, "page_size", size).unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
    }
    let store = SqliteStore::open(path).unwrap();
    let mut survey = Survey::from_toml_str(include_str!("../../surveys/default.toml")).unwrap();
    survey.calling.windows = vec!["00:00-23:59".into()];
    let today = chrono::Utc::now().date_naive();
    let field = (
        today - chrono::Duration::days(1),
        today + chrono::Duration::days(30),
    );
    let round = store
        .create_round(
            &NewRound {
                key: key.into(),
                title: key.into(),
                survey,
                survey_source: "default".into(),
                field: Some(field),
            },
            "fixture",
        )
        .unwrap();
    let n_units = members.div_ceil(45);
    let units: Vec<NewUnit> = (0..n_units)
        .map(|u| NewUnit {
            name: format!("单位{u:06}"),
            kind: UnitKind::Institution,
            sector: String::new(),
            code: None,
            line: u + 2,
        })
        .collect();
    store.add_units(&round, &units, "fixture").unwrap();
    let ids: Vec<i64> = store
        .units(round.id)
        .unwrap()
        .iter()
        .map(|u| u.id)
        .collect();
    let new: Vec<NewMember> = (0..members)
        .map(|i| NewMember {
            unit_id: ids[i / 45],
            name: format!("代表{i}"),
            phone: format!("139{i:08}"),
            phone_alt: None,
            category: MemberCategory::ServiceRecipient,
            organization: None,
            note: None,
            line: i + 2,
        })
        .collect();
    store.add_members(&round, &new, &[], "fixture").unwrap();
    let hash = hash_password(PASSWORD);
    for i in 0..operators {
        store
            .add_user(
                &NewUser {
                    login: format!("op{i}"),
                    name: format!("话务员{i}"),
                    role: Role::Operator,
                    password_hash: hash.clone(),
                },
                "fixture",
            )
            .unwrap();
    }
    sheping::engine::generate_plan(
        &store,
        &round,
        (0..operators).map(|i| format!("op{i}")).collect(),
        1,
        "fixture",
    )
    .unwrap();
    store
}
