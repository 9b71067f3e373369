//! End-to-end results at district-wide scale (run: `cargo bench --bench results_store`):
//! a SQLite round of 10,000 units × 45 representatives, each with one complete interview
//! recorded through the claim path (claim and record times, answer times), and 20 on-site
//! ballots per unit; then `results::compute` (read the attempts, dispositions, scoring with
//! 2,000 bootstrap replicates, the document), its JSON, and the responses export.

use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use sheping::domain::roster::{MemberCategory, NewMember};
use sheping::domain::survey::Survey;
use sheping::domain::unit::{NewUnit, UnitKind};
use sheping::domain::user::Role;
use sheping::exports::{self, ExportKind, ExportOptions};
use sheping::results::{self, ResultsOptions};
use sheping::storage::prelude::*;
use sheping::storage::results::{OnsiteBatch, StoredBallot};
use sheping::storage::sqlite::SqliteStore;
use sheping::storage::{NewRound, NewUser};

const UNITS: usize = 10_000;
const RESPONDENTS: usize = 45;
const BALLOTS: usize = 20;

fn main() {
    let dir = std::env::temp_dir().join(format!("sheping-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("bench.db");
    let store = SqliteStore::open(&db).unwrap();
    let mut survey = Survey::from_toml_str(include_str!("../surveys/default.toml")).unwrap();
    survey.calling.windows = vec!["00:00-23:59".into()];
    let round = store
        .create_round(
            &NewRound {
                key: "bench".into(),
                title: "bench".into(),
                survey,
                survey_source: "bench".into(),
                field: Some((
                    chrono::NaiveDate::from_ymd_opt(2022, 11, 1).unwrap(),
                    chrono::NaiveDate::from_ymd_opt(2022, 11, 30).unwrap(),
                )),
            },
            "bench",
        )
        .unwrap();
    let t = Instant::now();
    let units: Vec<NewUnit> = (0..UNITS)
        .map(|u| NewUnit {
            name: format!("单位{u:05}"),
            kind: UnitKind::Institution,
            sector: "bench".into(),
            code: Some(format!("B{u:05}")),
            line: u + 2,
        })
        .collect();
    store.add_units(&round, &units, "bench").unwrap();
    let stored_units = store.units(round.id).unwrap();
    let members: Vec<NewMember> = stored_units
        .iter()
        .enumerate()
        .flat_map(|(u, unit)| {
            (0..RESPONDENTS).map(move |k| NewMember {
                unit_id: unit.id,
                name: format!("代表{u}-{k}"),
                phone: format!("13{:09}", u * RESPONDENTS + k),
                phone_alt: None,
                category: MemberCategory::ServiceRecipient,
                organization: None,
                note: None,
                line: u * RESPONDENTS + k + 2,
            })
        })
        .collect();
    store.add_members(&round, &members, &[], "bench").unwrap();
    let ops: Vec<i64> = (0..30)
        .map(|i| {
            store
                .add_user(
                    &NewUser {
                        login: format!("op{i:02}"),
                        name: format!("op{i}"),
                        role: Role::Operator,
                        password_hash: "x".into(),
                    },
                    "bench",
                )
                .unwrap()
                .id
        })
        .collect();
    // Interviews written straight into the attempts table in one transaction, as the claim
    // path stores them (claimed_at, recorded_at, answers, answer_ms).
    let mut rng = ChaCha8Rng::from_seed([9; 32]);
    let ids: Vec<(i64, i64)> = store
        .members(round.id, None)
        .unwrap()
        .iter()
        .map(|m| (m.id, m.unit_id))
        .collect();
    let base = Utc.with_ymd_and_hms(2022, 11, 2, 1, 0, 0).unwrap();
    store
        .write(|tx| {
            let mut ins = tx.prepare(
                "INSERT INTO attempts (member_id, operator_id, attempt_no, claimed_at, recorded_at, outcome, aapor_code, answers, answer_ms, source)
                 VALUES (?1, ?2, 1, ?3, ?4, 'complete', '1.1', ?5, ?6, 'web')",
            )?;
            for (i, (member, unit)) in ids.iter().enumerate() {
                let lean = (*unit as usize % 3) as i64;
                let answers: Vec<usize> = (0..5)
                    .map(|_| (rng.random_range(0..3i64) + lean - 1).clamp(0, 3) as usize)
                    .collect();
                let ms: Vec<i64> = (0..5).map(|d| 20_000 + d * rng.random_range(5_000..15_000)).collect();
                let claimed = base + Duration::seconds(i as i64 % 86_400);
                let recorded = claimed + Duration::seconds(rng.random_range(40..300));
                ins.execute(rusqlite::params![
                    member,
                    ops[i % ops.len()],
                    claimed.timestamp_millis(),
                    recorded.timestamp_millis(),
                    serde_json::to_string(&answers).unwrap(),
                    serde_json::to_string(&ms).unwrap(),
                ])?;
            }
            Ok(())
        })
        .unwrap();
    let mut batch = OnsiteBatch::default();
    for unit in &stored_units {
        for b in 0..BALLOTS {
            let levels: Vec<usize> = (0..5).map(|_| rng.random_range(0..4usize)).collect();
            batch.ballots.push((
                unit.id,
                StoredBallot {
                    ballot: b.to_string(),
                    levels,
                    overall: false,
                },
                b + 2,
            ));
        }
    }
    store.store_onsite(&round, &batch, "bench").unwrap();
    println!(
        "built {UNITS} units × {RESPONDENTS} interviews + {BALLOTS} ballots in SQLite in {:.2?}",
        t.elapsed()
    );

    let now = Utc.with_ymd_and_hms(2022, 11, 3, 1, 0, 0).unwrap();
    let no_boot = ResultsOptions {
        replicates: Some(0),
        ..ResultsOptions::default()
    };
    // Draws and stores the round's seed; a warm-up of the page cache.
    results::compute(&store, &round, &no_boot, now, "bench").unwrap();
    let t = Instant::now();
    let data = results::RoundData::load(&store, &round, now, "bench").unwrap();
    let t_load = t.elapsed();
    let t = Instant::now();
    let doc0 = results::compute_from(&data, &no_boot).unwrap();
    let t_score0 = t.elapsed();
    let t = Instant::now();
    let doc = results::compute(&store, &round, &ResultsOptions::default(), now, "bench").unwrap();
    let t_full = t.elapsed();
    let t = Instant::now();
    let json = serde_json::to_vec(&doc).unwrap();
    let t_json = t.elapsed();
    let t = Instant::now();
    let out = dir.join("responses.csv");
    let summary = exports::export_to_file(
        &store,
        &round,
        ExportKind::Responses,
        &out,
        &ExportOptions::default(),
        "bench",
        now,
    )
    .unwrap();
    let t_export = t.elapsed();
    assert_eq!(doc.quality.completes as usize, UNITS * RESPONDENTS);
    assert_eq!(doc0.units.len(), UNITS);
    println!("load (attempts, dispositions, on-site):        {t_load:>10.2?}");
    println!("score + document, no bootstrap:                {t_score0:>10.2?}");
    println!("results::compute, 2000 replicates (end to end): {t_full:>10.2?}");
    println!(
        "results JSON ({:.1} MB):                        {t_json:>10.2?}",
        json.len() as f64 / 1e6
    );
    println!(
        "responses export ({} rows, CSV):             {t_export:>10.2?}",
        summary.rows
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
