//! Disk full: on a small tmpfs that fills up, a write fails with a clear error, nothing saved
//! before is lost, and the service recovers when room returns.

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{Duration, TimeZone, Utc};
use sheping::domain::disposition::Outcome;
use sheping::domain::roster::{MemberCategory, NewMember};
use sheping::domain::survey::Survey;
use sheping::domain::unit::{NewUnit, UnitKind};
use sheping::domain::user::Role;
use sheping::storage::prelude::*;
use sheping::storage::sqlite::SqliteStore;
use sheping::storage::{AttemptInput, NewRound, NewUser, RecordError, StorageError};

/// A size-limited tmpfs, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then_some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

/// Fills the filesystem with a file until writing fails; returns it.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = vec![0u8; 4096];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
    path
}

#[test]
fn a_full_disk_refuses_the_write_keeps_the_data_and_recovers() {
    if crate::common::sqlite_only("fills the file system under the SQLite file") {
        return;
    }
    let Some(fs) = Tmpfs::mount("3m") else {
        assert!(!is_root(), "running as root, mounting a tmpfs must work");
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let db = fs.path().join("full.db");
    let store = SqliteStore::open(&db).unwrap();
    let mut survey = Survey::from_toml_str(include_str!("../../surveys/default.toml")).unwrap();
    survey.calling.windows = vec!["00:00-23:59".into()];
    let day = chrono::NaiveDate::from_ymd_opt(2022, 11, 1).unwrap();
    let round = store
        .create_round(
            &NewRound {
                key: "2022".into(),
                title: "t".into(),
                survey,
                survey_source: "d".into(),
                field: Some((day, day + Duration::days(29))),
            },
            "t",
        )
        .unwrap();
    store
        .add_units(
            &round,
            &[NewUnit {
                name: "单位".into(),
                kind: UnitKind::Organ,
                sector: String::new(),
                code: None,
                line: 2,
            }],
            "t",
        )
        .unwrap();
    let unit = store.units(round.id).unwrap()[0].id;
    let members: Vec<NewMember> = (0..45)
        .map(|i| NewMember {
            unit_id: unit,
            name: format!("代表{i}"),
            phone: format!("139{i:08}"),
            phone_alt: None,
            category: MemberCategory::ServiceRecipient,
            organization: None,
            note: None,
            line: i + 2,
        })
        .collect();
    store.add_members(&round, &members, &[], "t").unwrap();
    let op = store
        .add_user(
            &NewUser {
                login: "op1".into(),
                name: "o".into(),
                role: Role::Operator,
                password_hash: "x".into(),
            },
            "t",
        )
        .unwrap();
    sheping::engine::generate_plan(&store, &round, vec!["op1".into()], 1, "t").unwrap();
    let now = Utc.with_ymd_and_hms(2022, 11, 2, 2, 0, 0).unwrap();
    let complete = AttemptInput {
        outcome: Some(Outcome::Complete),
        answers: vec![Some(0); 5],
        comment: Some("满意".repeat(200)),
        ..Default::default()
    };
    for _ in 0..5 {
        let c = store.claim_next(&round, &op, now).unwrap().unwrap();
        store.record(&round, &c.token, &op, &complete, now).unwrap();
    }

    let filler = fill(fs.path());
    // Writes now fail with the clear "full" error, whatever the path.
    let mut refused = 0;
    for _ in 0..40 {
        match store.claim_next(&round, &op, now) {
            Err(StorageError::Full) => refused += 1,
            Ok(Some(c)) => match store.record(&round, &c.token, &op, &complete, now) {
                Err(RecordError::Storage(StorageError::Full)) => refused += 1,
                Err(e) => panic!("unexpected error: {e}"),
                Ok(_) => {}
            },
            Ok(None) => break,
            Err(e) => panic!("unexpected error: {e}"),
        }
        if refused >= 3 {
            break;
        }
    }
    assert!(refused >= 3, "the full disk must refuse writes");
    // The operators' path, run by the writer's own thread (record and claim the next in one
    // write; the "next" button), says the same.
    let mut queued_refused = 0;
    for _ in 0..40 {
        match store.claim_next_if_free(&round, &op, now) {
            Err(StorageError::Full) => queued_refused += 1,
            Ok(_) => {
                let held = store.held_claims(&round, &op, now).unwrap();
                let Some(c) = held.first() else { break };
                match store.record_then_claim(&round, &c.token, &op, &complete, now) {
                    Err(RecordError::Storage(StorageError::Full)) => queued_refused += 1,
                    Err(e) => panic!("unexpected error: {e}"),
                    Ok(_) => {}
                }
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
        if queued_refused >= 3 {
            break;
        }
    }
    assert!(
        queued_refused >= 3,
        "the queued path must refuse writes too"
    );
    assert!(StorageError::Full.to_string().contains("存储空间已满"));
    // Nothing acknowledged was lost: the five completes are there and the file is sound.
    let completes = store
        .field_data(&round, now)
        .unwrap()
        .attempts
        .iter()
        .filter(|a| a.outcome == Outcome::Complete)
        .count();
    assert!(completes >= 5);
    let acknowledged_before = completes;

    // Room returns: the service writes again without a restart.
    std::fs::remove_file(filler).unwrap();
    let c = store.claim_next(&round, &op, now).unwrap().unwrap();
    store.record(&round, &c.token, &op, &complete, now).unwrap();
    let after = store
        .field_data(&round, now)
        .unwrap()
        .attempts
        .iter()
        .filter(|a| a.outcome == Outcome::Complete)
        .count();
    assert_eq!(after, acknowledged_before + 1);
    drop(store);
    let store = SqliteStore::open(&db).unwrap();
    let report = store.check().unwrap();
    assert!(report.ok(), "{report:?}");
}
