//! Rounds, survey copies and the schema's migrations, on real SQLite files.

use crate::common;

use common::Sheping;
use sheping::storage::prelude::*;
use sheping::storage::sqlite::{SqliteStore, schema_version};

#[test]
fn migrations_run_from_an_empty_file() {
    let Some(sp) = Sheping::sqlite_only("SQLite's migrations, journal mode and schema") else {
        return;
    };
    assert!(!sp.db.exists());
    let store = SqliteStore::open(&sp.db).unwrap();
    assert_eq!(store.user_version().unwrap(), schema_version() as i64);
    let conn = sp.sqlite();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    for table in ["rounds", "units", "members", "users", "audit_log", "meta"] {
        let n: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1, "table {table}");
    }
    // Opening again is a no-op, not a second migration.
    drop(store);
    let store = SqliteStore::open(&sp.db).unwrap();
    assert_eq!(store.user_version().unwrap(), schema_version() as i64);
    // Foreign keys are enforced on our connections.
    let err = store.write(|tx| {
        tx.execute(
            "INSERT INTO units (round_id, name, kind) VALUES (999, 'x', '党政机关')",
            [],
        )?;
        Ok(())
    });
    assert!(err.is_err(), "foreign key violation must fail");
}

#[test]
fn the_default_db_path_and_env_var_are_honoured() {
    let sp = Sheping::new();
    let out = std::process::Command::new(common::BIN)
        .args(["round", "create", "2023", "--title", "t", "--survey"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/surveys/default.toml"))
        .env("SHEPING_DB", sp.db_arg())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM rounds WHERE key = '2023'"),
        1
    );
    // Without --db or SHEPING_DB the file is data/sheping.db in the working directory.
    let cwd = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::BIN)
        .args(["round", "list"])
        .env_remove("SHEPING_DB")
        .current_dir(cwd.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(cwd.path().join("data/sheping.db").exists());
}

#[test]
fn a_round_keeps_its_survey_copy_when_the_file_changes() {
    let sp = Sheping::new();
    let original =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/surveys/default.toml"))
            .unwrap();
    let file = sp.write("survey.toml", original.as_bytes());
    sp.ok(&[
        "round",
        "create",
        "2022",
        "--title",
        "2022年度",
        "--survey",
        file.to_str().unwrap(),
        "--from",
        "2022-11-01",
        "--to",
        "2022-11-30",
    ]);
    std::fs::write(&file, original.replace("办事效率", "效率")).unwrap();
    let store = sp.store();
    let round = store.round("2022").unwrap();
    assert_eq!(round.survey.dimensions[1].label, "办事效率");
    assert_eq!(round.field_start.unwrap().to_string(), "2022-11-01");
    // Creating the same key twice is refused.
    let out = sp.run(&["round", "create", "2022", "--title", "again"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("已存在"));
}

#[test]
fn a_bad_survey_file_is_refused_naming_the_key() {
    let sp = Sheping::new();
    let original =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/surveys/default.toml"))
            .unwrap();
    let file = sp.write(
        "bad.toml",
        original
            .replacen("weight = 0.2", "weight = 0.25", 1)
            .as_bytes(),
    );
    let out = sp.run(&[
        "round",
        "create",
        "2022",
        "--title",
        "t",
        "--survey",
        file.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("dimensions.weight") && err.contains("sum to 1"),
        "{err}"
    );
    assert_eq!(sp.count("SELECT COUNT(*) FROM rounds"), 0);
}

#[test]
fn audit_chain_records_imports_and_detects_tampering() {
    let sp = Sheping::new();
    common::round_with_units(&sp);
    let ok = sp.ok(&["audit", "verify"]);
    assert!(ok.contains("2 条"), "{ok}");
    sp.sql()
        .execute("UPDATE audit_log SET actor = 'someone' WHERE id = 1", [])
        .unwrap();
    let out = sp.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("entry 1"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Keys with control characters, backslashes, path dots or look-alikes, and titles with line
/// breaks or control characters, are refused with a message naming the character and the
/// rule; nothing is stored or logged.
#[test]
fn round_keys_and_titles_with_control_characters_are_refused() {
    let sp = Sheping::new();
    let survey = concat!(env!("CARGO_MANIFEST_DIR"), "/surveys/default.toml");
    let keys: &[(&str, &str)] = &[
        ("a\u{1}b", "第 2 个字符是控制字符 U+0001"),
        ("a\tb", "第 2 个字符是制表符"),
        ("2022\n", "第 5 个字符是换行符"),
        ("a\u{7f}", "控制字符 U+007F"),
        ("a\\..\\b", "第 2 个字符是反斜杠"),
        ("..", "不能以“.”开头"),
        ("_x", "不能以“_”开头"),
        ("%2e%2e", "第 1 个字符是“%”"),
        ("20 23", "第 3 个字符是空格"),
        ("a/b", "斜杠"),
        ("ｔ", "“ｔ”"),
        ("a\u{200b}b", "不可见字符 U+200B"),
    ];
    for (key, want) in keys {
        let out = sp.run(&[
            "round",
            "create",
            key,
            "--title",
            "2022年度",
            "--survey",
            survey,
        ]);
        assert!(!out.status.success(), "{key:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("轮次代码")
                && err.contains(want)
                && err.contains("只能由英文字母、数字、汉字"),
            "{key:?}: {err}"
        );
        assert!(
            !err.trim_end().chars().any(char::is_control),
            "the message echoes a control character of {key:?}: {err:?}"
        );
    }
    let titles: &[(&str, &str)] = &[
        ("x.\nERASE FILE='a'.", "第 3 个字符是换行符"),
        ("2022年度\r", "回车符"),
        ("a\tb", "制表符"),
        ("a\u{1}", "控制字符 U+0001"),
        ("a\u{2028}b", "换行符 U+2028"),
        ("   ", "请填写轮次名称"),
    ];
    for (title, want) in titles {
        let out = sp.run(&[
            "round", "create", "2022", "--title", title, "--survey", survey,
        ]);
        assert!(!out.status.success(), "{title:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("轮次名称") && err.contains(want),
            "{title:?}: {err}"
        );
    }
    // The survey's labels are one line each too (its script may span lines).
    let bad = include_str!("../../surveys/default.toml").replacen(
        "label = \"满意\"",
        "label = \"满\\t意\"",
        1,
    );
    let bad_path = sp.write("bad_survey.toml", bad.as_bytes());
    let out = sp.run(&[
        "round",
        "create",
        "2022",
        "--title",
        "2022年度",
        "--survey",
        bad_path.to_str().unwrap(),
    ]);
    assert!(!out.status.success(), "a tab in a level label was accepted");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad_survey.toml") && err.contains("levels.") && err.contains("制表符"),
        "{err}"
    );
    assert_eq!(sp.count("SELECT COUNT(*) FROM rounds"), 0);
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM audit_log WHERE action = 'round.create'"),
        0
    );
    // What the rule allows still works.
    for key in ["2022", "2022-下半年", "round_2.1"] {
        sp.ok(&[
            "round",
            "create",
            key,
            "--title",
            "2022年度",
            "--survey",
            survey,
        ]);
    }
    assert_eq!(sp.count("SELECT COUNT(*) FROM rounds"), 3);
}

/// Reads inside one snapshot agree with each other while another writer commits between
/// them, yet see the snapshot's own writes; the snapshot ends with its closure (no read
/// transaction left open to hold the WAL back), and a read nested inside a read still works.
#[test]
fn a_snapshot_reads_one_state_and_ends_with_its_closure() {
    use sheping::domain::user::Role;
    use sheping::storage::prelude::*;
    use sheping::storage::{NewUser, in_snapshot};
    let Some(sp) = Sheping::sqlite_only("the SQLite store's pinned read transaction and WAL")
    else {
        return;
    };
    let store = SqliteStore::open(&sp.db).unwrap();
    let other = SqliteStore::open(&sp.db).unwrap();
    let add = |s: &SqliteStore, login: &str| {
        s.add_user(
            &NewUser {
                login: login.into(),
                name: "n".into(),
                role: Role::Evaluator,
                password_hash: "x".into(),
            },
            "test",
        )
        .unwrap();
    };
    add(&store, "a");
    let seen = in_snapshot(&store, || {
        let first = store.users().unwrap().len();
        add(&other, "b");
        let after_other = store.users().unwrap().len();
        // A read while the snapshot's connection is in use gets a connection of its own.
        let nested = store.read(|_| Ok(store.users().unwrap().len())).unwrap();
        add(&store, "c");
        let after_own = store.users().unwrap().len();
        (first, after_other, nested, after_own)
    });
    assert_eq!(
        seen,
        (1, 1, 2, 3),
        "(first read, after another writer, nested, after its own write)"
    );
    assert_eq!(store.users().unwrap().len(), 3, "after the snapshot");
    // Nothing holds a read transaction now: a full checkpoint completes.
    let (busy, _, _): (i64, i64, i64) = sp
        .sqlite()
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!(busy, 0);
}

/// Every index costs a B-tree write per row written: no two indexes of a table may cover the
/// same columns in the same order (migration 007 dropped one that repeated a UNIQUE key).
#[test]
fn no_index_repeats_another() {
    let sp = Sheping::new();
    drop(sp.store());
    let conn = sp.sql();
    // (name, table, partial, columns) of every index.
    let indexes: Vec<(String, String, bool, Vec<String>)> = if sp.is_postgres() {
        conn.prepare(
            "SELECT i.relname, t.relname, ix.indpred IS NOT NULL, ix.indkey::text
             FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid
             JOIN pg_class t ON t.oid = ix.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
             WHERE n.nspname = 'public'",
        )
        .unwrap()
        .query_map([], |r| {
            let key: String = r.get(3)?;
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                key.split(' ').map(str::to_string).collect(),
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    } else {
        let indexes: Vec<(String, String, bool)> = conn
            .prepare("SELECT i.name, i.tbl_name, i.sql LIKE '% WHERE %' FROM sqlite_master i WHERE i.type = 'index'")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, Option<bool>>(2)?.unwrap_or(false))))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        indexes
            .into_iter()
            .map(|(name, table, partial)| {
                let columns: Vec<String> = conn
                    .prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")
                    .unwrap()
                    .query_map([&name], |r| r.get(0))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                (name, table, partial, columns)
            })
            .collect()
    };
    assert!(indexes.len() > 10, "the schema's indexes were read");
    let mut seen = std::collections::HashMap::new();
    for (name, table, partial, columns) in indexes {
        if partial {
            continue; // a partial index holds other rows than a full one of the same columns
        }
        if let Some(other) = seen.insert((table.clone(), columns.clone()), name.clone()) {
            panic!("{table}: indexes {other} and {name} both cover {columns:?}");
        }
    }
}

/// The web state's one handle: every aggregate's trait is reached through a single
/// `Arc<dyn Store>` (each trait object-safe on its own), and writes made through different
/// aggregates land on one store and in one audit chain.
#[test]
fn one_store_handle_serves_every_aggregate() {
    use std::sync::Arc;

    use sheping::domain::survey::Survey;
    use sheping::domain::unit::{NewUnit, UnitKind};
    use sheping::domain::user::Role;
    use sheping::storage::{AuditEvent, NewRound, NewUser};
    let sp = Sheping::new();
    let store: Arc<dyn Store> = sp.store();
    let rounds: &dyn RoundStore = store.as_ref();
    let accounts: &dyn AccountStore = store.as_ref();
    let plans: &dyn PlanStore = store.as_ref();
    let calls: &dyn CallStore = store.as_ref();
    let roster: &dyn RosterStore = store.as_ref();
    let results: &dyn ResultsStore = store.as_ref();
    let audit: &dyn AuditStore = store.as_ref();
    let survey =
        Survey::from_toml_str(include_str!("../../surveys/default.toml")).expect("default survey");
    let round = rounds
        .create_round(
            &NewRound {
                key: "2024".into(),
                title: "t".into(),
                survey,
                survey_source: "default".into(),
                field: None,
            },
            "test",
        )
        .unwrap();
    let unit = NewUnit {
        name: "单位甲".into(),
        kind: UnitKind::Organ,
        sector: String::new(),
        code: None,
        line: 2,
    };
    assert_eq!(rounds.add_units(&round, &[unit], "test").unwrap(), 1);
    accounts
        .add_user(
            &NewUser {
                login: "op1".into(),
                name: "n".into(),
                role: Role::Operator,
                password_hash: "x".into(),
            },
            "test",
        )
        .unwrap();
    audit
        .audit(&AuditEvent {
            actor: "test",
            action: "test.note",
            round_key: Some("2024"),
            detail: serde_json::json!({}),
        })
        .unwrap();
    // Read back through the other aggregates and the supertrait itself.
    assert_eq!(store.round("2024").unwrap().id, round.id);
    assert_eq!(store.units(round.id).unwrap().len(), 1);
    assert_eq!(accounts.user("op1").unwrap().role, Role::Operator);
    assert!(roster.members(round.id, None).unwrap().is_empty());
    assert!(plans.plans(&round).unwrap().is_empty());
    assert!(
        calls
            .operator_rounds(accounts.user("op1").unwrap().id)
            .unwrap()
            .is_empty()
    );
    assert!(results.results_settings(round.id).unwrap().is_none());
    let actions: Vec<String> = audit
        .audit_entries(None)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions.len(), 4, "{actions:?}");
    assert_eq!(actions[0], "round.create");
    assert_eq!(actions[3], "test.note");
    assert_eq!(
        store.verify_audit().unwrap(),
        Ok(4),
        "one chain over every aggregate"
    );
}
