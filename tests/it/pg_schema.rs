//! The PostgreSQL schema (issue 22, foundation): it migrates itself on a fresh database, once
//! when two instances start together, and it is the SQLite schema in PostgreSQL's dialect —
//! the same tables, columns, keys, indexes, constraints and triggers, behaving the same.
//!
//! These tests need a PostgreSQL cluster: `bash tests/pg_cluster.sh cargo test --test it pg_schema::`
//! (tests/run.sh does this for the whole suite). Without one they skip, loudly.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Barrier};

use common::pg::{self, PgDb, block_on};
use sheping::storage::postgres::{self, PgError, PgStore, TYPE_MAPPING, VERSION_TABLE, audit};

/// A freshly migrated SQLite database made by the application itself.
fn sqlite_db() -> (tempfile::TempDir, rusqlite::Connection) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("schema.db");
    drop(sheping::storage::sqlite::SqliteStore::open(&path).expect("open SQLite"));
    let c = rusqlite::Connection::open(&path).expect("reopen SQLite");
    c.pragma_update(None, "foreign_keys", "ON").unwrap();
    (dir, c)
}

/// A fresh PostgreSQL database migrated by `PgStore::connect` (its pool dropped again: a pool
/// belongs to the runtime that made it), or `None` to skip.
fn migrated_db(test: &str) -> Option<PgDb> {
    let db = pg::fresh_db(test)?;
    block_on(PgStore::connect(&db.url)).expect("connect and migrate");
    Some(db)
}

#[test]
fn with_dbname_replaces_only_the_database() {
    assert_eq!(
        pg::with_dbname(
            "postgresql://postgres@/postgres?host=/tmp/x&port=5432",
            "t1"
        ),
        "postgresql://postgres@/t1?host=/tmp/x&port=5432"
    );
    assert_eq!(
        pg::with_dbname("postgres://u:p@h:5432", "t2"),
        "postgres://u:p@h:5432/t2"
    );
    assert_eq!(pg::with_dbname("postgres://h/db", "t3"), "postgres://h/t3");
}

#[test]
fn the_schema_migrates_itself_on_a_fresh_database() {
    let Some(db) = pg::fresh_db("the_schema_migrates_itself_on_a_fresh_database") else {
        return;
    };
    // The same number of versions as SQLite: a migration added to one needs its twin.
    assert_eq!(
        postgres::schema_version(),
        sheping::storage::sqlite::schema_version() as i64
    );
    block_on(async {
        let store = PgStore::connect(&db.url)
            .await
            .expect("connect and migrate");
        let all: Vec<i64> = (1..=postgres::schema_version()).collect();
        assert_eq!(store.applied_now(), all.as_slice());
        assert_eq!(
            store.stored_schema_version().await.unwrap(),
            postgres::schema_version()
        );
        let recorded: Vec<(i64, String)> = store
            .client()
            .await
            .unwrap()
            .query(
                &format!("SELECT version, name FROM {VERSION_TABLE} ORDER BY version"),
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let expected: Vec<(i64, String)> = postgres::MIGRATIONS
            .iter()
            .map(|m| (m.version, m.name.to_owned()))
            .collect();
        assert_eq!(recorded, expected);

        // Starting again finds the schema current and changes nothing.
        drop(store);
        let again = PgStore::connect(&db.url).await.expect("second start");
        assert!(again.applied_now().is_empty(), "{:?}", again.applied_now());
        assert_eq!(
            again.stored_schema_version().await.unwrap(),
            postgres::schema_version()
        );
    });
}

#[test]
fn two_instances_starting_at_once_migrate_once() {
    // A few fresh databases: each time both start together, exactly one migrates.
    for attempt in 0..3 {
        let Some(db) = pg::fresh_db("two_instances_starting_at_once_migrate_once") else {
            return;
        };
        let start = Arc::new(Barrier::new(2));
        let instances: Vec<_> = (0..2)
            .map(|_| {
                let (url, start) = (db.url.clone(), Arc::clone(&start));
                std::thread::spawn(move || {
                    // Each "instance" has its own runtime and pool, as two processes would.
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    start.wait();
                    rt.block_on(async {
                        let store = PgStore::connect(&url).await?;
                        Ok::<_, PgError>(store.applied_now().len())
                    })
                })
            })
            .collect();
        let mut applied: Vec<usize> = instances
            .into_iter()
            .map(|h| h.join().expect("instance thread").expect("instance start"))
            .collect();
        applied.sort();
        assert_eq!(
            applied,
            [0, postgres::MIGRATIONS.len()],
            "attempt {attempt}: one instance migrates, the other finds it done"
        );
        let (rows, sessions): (i64, i64) = block_on(async {
            let c = pg::connect(&db.url).await;
            let r = c
                .query_one(
                    &format!("SELECT COUNT(*), COUNT(DISTINCT backend_pid) FROM {VERSION_TABLE}"),
                    &[],
                )
                .await
                .unwrap();
            (r.get(0), r.get(1))
        });
        assert_eq!(rows, postgres::schema_version(), "attempt {attempt}");
        assert_eq!(
            sessions, 1,
            "attempt {attempt}: one session ran every migration"
        );
    }
}

#[test]
fn a_database_at_an_older_version_gets_the_migrations_it_lacks() {
    let Some(db) = pg::fresh_db("a_database_at_an_older_version_gets_the_migrations_it_lacks")
    else {
        return;
    };
    let (_dir, lite) = sqlite_db();
    let expected = sqlite_schema(&lite);
    block_on(async {
        // A database an older build migrated to version 12.
        let c = pg::connect(&db.url).await;
        c.batch_execute(postgres::VERSION_TABLE_DDL).await.unwrap();
        for m in &postgres::MIGRATIONS[..12] {
            c.batch_execute(m.sql).await.unwrap();
            c.execute(
                &format!(
                    "INSERT INTO {VERSION_TABLE} (version, name, applied_at, backend_pid) VALUES ($1, $2, 0, 0)"
                ),
                &[&m.version, &m.name],
            )
            .await
            .unwrap();
        }
        let store = PgStore::connect(&db.url).await.expect("upgrade");
        assert_eq!(store.applied_now(), &[13, 14, 15]);
        assert_eq!(
            store.stored_schema_version().await.unwrap(),
            postgres::schema_version()
        );
        // The upgraded schema is the one a fresh database gets.
        assert_eq!(pg_schema(&c).await, expected);
    });
}

#[test]
fn a_failed_migration_changes_nothing_and_names_itself() {
    let Some(db) = pg::fresh_db("a_failed_migration_changes_nothing_and_names_itself") else {
        return;
    };
    // Something in the way of migration 001 (a table of the same name).
    block_on(async {
        pg::connect(&db.url)
            .await
            .batch_execute("CREATE TABLE rounds (x INTEGER)")
            .await
            .unwrap()
    });
    let err = match block_on(PgStore::connect(&db.url)) {
        Err(e) => e,
        Ok(_) => panic!("the migration should have failed"),
    };
    let text = err.to_string();
    assert!(
        matches!(err, PgError::Migration { version: 1, .. }),
        "{text}"
    );
    assert!(
        text.contains("001_foundation") && text.contains("rounds") && text.contains("未作任何修改"),
        "{text}"
    );
    // One transaction: not even the version table stayed.
    let tables: Vec<String> = block_on(async {
        pg::connect(&db.url)
            .await
            .query(
                "SELECT table_name::text FROM information_schema.tables
                 WHERE table_schema = current_schema() ORDER BY 1",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    });
    assert_eq!(tables, ["rounds"]);
}

#[test]
fn a_schema_newer_than_the_build_is_refused() {
    let Some(db) = migrated_db("a_schema_newer_than_the_build_is_refused") else {
        return;
    };
    let newer = postgres::schema_version() + 1;
    block_on(async {
        pg::connect(&db.url)
            .await
            .execute(
                &format!(
                    "INSERT INTO {VERSION_TABLE} (version, name, applied_at, backend_pid)
                     VALUES ($1, 'from_a_newer_build', 0, 0)"
                ),
                &[&newer],
            )
            .await
            .unwrap()
    });
    let err = match block_on(PgStore::connect(&db.url)) {
        Err(e) => e,
        Ok(_) => panic!("a newer schema should be refused"),
    };
    assert!(
        matches!(err, PgError::NewerSchema { found, known } if found == newer && known == newer - 1),
        "{err}"
    );
    assert!(err.to_string().contains("更新版本的 sheping"), "{err}");
}

/// One column as both schemas describe it, in PostgreSQL's terms.
#[derive(Debug, PartialEq, Eq)]
struct Column {
    name: String,
    data_type: String,
    not_null: bool,
    default: Option<String>,
    identity: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Table {
    columns: Vec<Column>,
    primary_key: Vec<String>,
    /// (columns, referenced table, referenced columns)
    foreign_keys: BTreeSet<(Vec<String>, String, Vec<String>)>,
    /// Column lists of UNIQUE constraints.
    unique: BTreeSet<Vec<String>>,
    /// Indexes made by CREATE INDEX: (name, unique, columns, partial).
    indexes: BTreeSet<(String, bool, Vec<String>, bool)>,
    triggers: BTreeSet<String>,
}

fn sqlite_schema(c: &rusqlite::Connection) -> BTreeMap<String, Table> {
    let types: BTreeMap<&str, &str> = TYPE_MAPPING.into_iter().collect();
    let strings = |sql: &str| -> Vec<String> {
        c.prepare(sql)
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let mut schema = BTreeMap::new();
    for name in strings(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    ) {
        let mut t = Table::default();
        let mut fks = BTreeMap::<i64, (Vec<String>, String, Vec<String>)>::new();
        let mut fk = c
            .prepare(&format!("PRAGMA foreign_key_list({name})"))
            .unwrap();
        let mut rows = fk.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            let e = fks
                .entry(r.get(0).unwrap())
                .or_insert_with(|| (vec![], r.get(2).unwrap(), vec![]));
            e.0.push(r.get(3).unwrap());
            e.2.push(r.get(4).unwrap());
        }
        t.foreign_keys = fks.into_values().collect();
        let referencing: BTreeSet<String> =
            t.foreign_keys.iter().flat_map(|k| k.0.clone()).collect();

        let mut info = c.prepare(&format!("PRAGMA table_info({name})")).unwrap();
        let mut pk = BTreeMap::new();
        let cols: Vec<(String, String, bool, Option<String>, i64)> = info
            .query_map([], |r| {
                Ok((
                    r.get(1)?,
                    r.get(2)?,
                    r.get::<_, i64>(3)? == 1,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let without_rowid = c
            .query_row(
                "SELECT sql LIKE '%WITHOUT ROWID%' FROM sqlite_master WHERE name = ?1",
                [&name],
                |r| r.get::<_, bool>(0),
            )
            .unwrap();
        let single_pk = cols.iter().filter(|c| c.4 > 0).count() == 1;
        for (col, decl, not_null, default, pk_pos) in cols {
            let data_type = types
                .get(decl.as_str())
                .unwrap_or_else(|| panic!("{name}.{col}: type {decl} has no PostgreSQL mapping"));
            if pk_pos > 0 {
                pk.insert(pk_pos, col.clone());
            }
            // SQLite's rowid alias, when nothing else gives its value, is numbered by the
            // database: an identity column in PostgreSQL.
            let identity = pk_pos > 0
                && single_pk
                && decl == "INTEGER"
                && !without_rowid
                && !referencing.contains(&col);
            t.columns.push(Column {
                name: col,
                data_type: data_type.to_string(),
                // A primary key's columns are NOT NULL in PostgreSQL whatever was declared.
                not_null: not_null || pk_pos > 0,
                default,
                identity,
            });
        }
        t.primary_key = pk.into_values().collect();

        let mut list = c.prepare(&format!("PRAGMA index_list({name})")).unwrap();
        let indexes: Vec<(String, bool, String, bool)> = list
            .query_map([], |r| Ok((r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for (index, unique, origin, partial) in indexes {
            let columns = strings(&format!(
                "SELECT name FROM pragma_index_info('{index}') ORDER BY seqno"
            ));
            match origin.as_str() {
                "pk" => {}
                "u" => {
                    t.unique.insert(columns);
                }
                _ => {
                    t.indexes.insert((index, unique, columns, partial));
                }
            }
        }
        t.triggers = strings(&format!(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = '{name}'"
        ))
        .into_iter()
        .collect();
        schema.insert(name, t);
    }
    schema
}

async fn pg_schema(c: &tokio_postgres::Client) -> BTreeMap<String, Table> {
    let strings = |rows: Vec<tokio_postgres::Row>| -> Vec<String> {
        rows.iter().map(|r| r.get::<_, String>(0)).collect()
    };
    let tables = strings(
        c.query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name::text <> $1
             ORDER BY 1",
            &[&VERSION_TABLE],
        )
        .await
        .unwrap(),
    );
    let mut schema = BTreeMap::new();
    for name in tables {
        let mut t = Table::default();
        for r in c
            .query(
                "SELECT column_name::text, data_type::text, is_nullable::text, column_default::text,
                        is_identity::text, collation_name::text
                 FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name::text = $1
                 ORDER BY ordinal_position",
                &[&name],
            )
            .await
            .unwrap()
        {
            let col: String = r.get(0);
            let data_type: String = r.get(1);
            if data_type == "text" {
                // Byte order like SQLite's BINARY, whatever the database's locale.
                assert_eq!(
                    r.get::<_, Option<String>>(5).as_deref(),
                    Some("C"),
                    "{name}.{col} must be COLLATE \"C\""
                );
            }
            t.columns.push(Column {
                name: col,
                data_type,
                not_null: r.get::<_, String>(2) == "NO",
                // '' and 1 read back as ''::text and 1: compare the literal.
                default: r
                    .get::<_, Option<String>>(3)
                    .map(|d| d.trim_end_matches("::text").trim_end_matches("::bigint").to_owned()),
                identity: r.get::<_, String>(4) == "YES",
            });
        }
        // Keys and indexes from the catalogue: the column names of an index in key order.
        let index_columns = "ARRAY(SELECT a.attname::text
                 FROM unnest(ix.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.attnum
                 ORDER BY k.ord)";
        for r in c
            .query(
                &format!(
                    "SELECT i.relname::text, ix.indisunique, ix.indpred IS NOT NULL, {index_columns},
                            (SELECT con.contype::text FROM pg_constraint con
                             WHERE con.conindid = ix.indexrelid AND con.conrelid = ix.indrelid
                               AND con.contype IN ('p', 'u'))
                     FROM pg_index ix
                     JOIN pg_class i ON i.oid = ix.indexrelid
                     WHERE ix.indrelid = $1::text::regclass"
                ),
                &[&name],
            )
            .await
            .unwrap()
        {
            let columns: Vec<String> = r.get(3);
            match r.get::<_, Option<String>>(4).as_deref() {
                Some("p") => t.primary_key = columns,
                Some(_) => {
                    t.unique.insert(columns);
                }
                None => {
                    t.indexes.insert((r.get(0), r.get(1), columns, r.get(2)));
                }
            }
        }
        for r in c
            .query(
                "SELECT ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(attnum, ord)
                              JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                              ORDER BY k.ord),
                        con.confrelid::regclass::text,
                        ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(attnum, ord)
                              JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
                              ORDER BY k.ord)
                 FROM pg_constraint con WHERE con.contype = 'f' AND con.conrelid = $1::text::regclass",
                &[&name],
            )
            .await
            .unwrap()
        {
            t.foreign_keys.insert((r.get(0), r.get(1), r.get(2)));
        }
        t.triggers = strings(
            c.query(
                "SELECT tgname::text FROM pg_trigger WHERE tgrelid = $1::text::regclass AND NOT tgisinternal",
                &[&name],
            )
            .await
            .unwrap(),
        )
        .into_iter()
        .collect();
        schema.insert(name, t);
    }
    schema
}

#[test]
fn the_postgres_schema_is_the_sqlite_schema() {
    let Some(db) = migrated_db("the_postgres_schema_is_the_sqlite_schema") else {
        return;
    };
    let (_dir, lite) = sqlite_db();
    let expected = sqlite_schema(&lite);
    let actual = block_on(async { pg_schema(&pg::connect(&db.url).await).await });
    assert_eq!(
        actual.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "the same tables"
    );
    for (name, want) in &expected {
        assert_eq!(&actual[name], want, "table {name}");
    }
    // The comparison saw what it should: keys, references, indexes and triggers exist.
    let q = &expected["queue"];
    assert_eq!(
        q.primary_key,
        [
            "operator_id",
            "round_id",
            "priority",
            "sort_key",
            "member_id"
        ]
    );
    assert!(
        q.triggers.contains("queue_claim_ended") && q.triggers.len() == 5,
        "{q:?}"
    );
    assert!(
        expected["attempts"]
            .triggers
            .contains("attempts_outcome_insert")
    );
    assert!(expected["rounds"].columns[0].identity);
    assert!(!expected["assignments"].columns[0].identity);
    assert!(expected["units"].foreign_keys.contains(&(
        vec!["round_id".into()],
        "rounds".into(),
        vec!["id".into()]
    )));
    assert!(
        expected["members"]
            .unique
            .contains(&vec!["unit_id".to_string(), "phone".into()])
    );
    assert!(
        expected["signin_refusals"]
            .indexes
            .iter()
            .any(|i| i.0 == "signin_refusals_open" && i.3)
    );
}

/// Portable statements that set up one round, two operators and four queued members.
const SETUP: &str = "
    INSERT INTO rounds (id, key, title, survey_toml, survey_source, created_at)
        VALUES (1, 'r1', '第一轮', '', '', 0);
    INSERT INTO units (id, round_id, name, kind) VALUES (1, 1, '甲局', '党政机关');
    INSERT INTO users (id, login, name, role, password_hash, created_at)
        VALUES (1, 'op1', '一号', 'operator', 'x', 0), (2, 'op2', '二号', 'operator', 'x', 0);
    INSERT INTO members (id, unit_id, name, phone, category, created_at)
        VALUES (1, 1, '甲', '13800000001', '党代表', 0), (2, 1, '乙', '13800000002', '人大代表', 0),
               (3, 1, '丙', '13800000003', '政协委员', 0), (4, 1, '丁', '13800000004', '服务对象', 0);
    INSERT INTO queue (operator_id, round_id, priority, sort_key, member_id)
        VALUES (1, 1, 2, 1, 1), (1, 1, 2, 2, 2), (2, 1, 2, 1, 3), (2, 1, 1, 100, 4);
    INSERT INTO attempts (id, member_id, operator_id, attempt_no, recorded_at, outcome, aapor_code, source)
        VALUES (100, 4, 2, 1, 5, 'no_answer', '3.13', 'cli');
";

/// Claims taken, recorded, lapsed, released and dropped; queue rows moved; attempts recorded,
/// edited and removed — every path of the tally and ended-claim triggers (006, 009, 011).
const LIFE: &str = "
    UPDATE queue SET claim_token = 't1', claimed_at = 1000, claim_expires = 2000, claimed_by = 1 WHERE member_id = 1;
    UPDATE queue SET claim_token = 't2', claimed_at = 1100, claim_expires = 2100 WHERE member_id = 2;
    UPDATE queue SET claim_token = 't3', claimed_at = 1200, claim_expires = 2200, claimed_by = 2 WHERE member_id = 3;
    INSERT INTO attempts (member_id, operator_id, attempt_no, claim_token, claimed_at, recorded_at, outcome, aapor_code, source)
        VALUES (1, 1, 1, 't1', 1000, 1800000, 'complete', '1.1', 'web');
    DELETE FROM queue WHERE member_id = 1;
    UPDATE queue SET claim_token = 't2b', claimed_at = 3000, claimed_by = 2 WHERE member_id = 2;
    UPDATE queue SET claim_token = NULL, claimed_at = NULL, claim_expires = NULL, claimed_by = NULL WHERE member_id = 3;
    UPDATE queue SET priority = 1, sort_key = 5000 WHERE member_id = 3;
    UPDATE queue SET operator_id = 1 WHERE member_id = 4;
    UPDATE queue SET sort_key = 6000 WHERE member_id = 4;
    INSERT INTO attempts (member_id, operator_id, attempt_no, recorded_at, outcome, aapor_code, source)
        VALUES (2, 2, 1, 2700005, 'no_answer', '3.13', 'web');
    DELETE FROM queue WHERE member_id = 2;
    UPDATE attempts SET outcome = 'partial' WHERE member_id = 1 AND attempt_no = 1;
    INSERT INTO attempts (member_id, operator_id, attempt_no, recorded_at, outcome, aapor_code, source)
        VALUES (3, 2, 1, 1800010, 'complete', '1.1', 'web');
    DELETE FROM attempts WHERE member_id = 3;
    UPDATE attempts SET recorded_at = 900001 WHERE id = 100;
";

/// The trigger-kept tables, every value as text (the same query on both backends).
const KEPT: [&str; 3] = [
    "SELECT CAST(round_id AS TEXT), CAST(operator_id AS TEXT), CAST(priority AS TEXT), CAST(n AS TEXT)
     FROM queue_tally ORDER BY round_id, operator_id, priority",
    "SELECT CAST(round_id AS TEXT), CAST(operator_id AS TEXT), CAST(quarter AS TEXT),
            CAST(attempts AS TEXT), CAST(completes AS TEXT)
     FROM operator_tally ORDER BY round_id, operator_id, quarter",
    "SELECT token, CAST(member_id AS TEXT), CAST(operator_id AS TEXT), CAST(claimed_at AS TEXT)
     FROM ended_claims ORDER BY token",
];

fn sqlite_rows(c: &rusqlite::Connection, sql: &str) -> Vec<Vec<String>> {
    let mut s = c.prepare(sql).unwrap();
    let n = s.column_count();
    s.query_map([], |r| (0..n).map(|i| r.get(i)).collect())
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

async fn pg_rows(c: &tokio_postgres::Client, sql: &str) -> Vec<Vec<String>> {
    c.query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (0..r.len()).map(|i| r.get(i)).collect())
        .collect()
}

fn rows(table: &[&[&str]]) -> Vec<Vec<String>> {
    table
        .iter()
        .map(|r| r.iter().map(|v| v.to_string()).collect())
        .collect()
}

#[test]
fn the_triggers_keep_tallies_and_ended_claims_as_in_sqlite() {
    let Some(db) = migrated_db("the_triggers_keep_tallies_and_ended_claims_as_in_sqlite") else {
        return;
    };
    let (_dir, lite) = sqlite_db();
    lite.execute_batch(SETUP).unwrap();
    lite.execute_batch(LIFE).unwrap();
    let sqlite: Vec<_> = KEPT.iter().map(|q| sqlite_rows(&lite, q)).collect();
    let postgres: Vec<_> = block_on(async {
        let c = pg::connect(&db.url).await;
        c.batch_execute(SETUP).await.unwrap();
        c.batch_execute(LIFE).await.unwrap();
        let mut all = vec![];
        for q in KEPT {
            all.push(pg_rows(&c, q).await);
        }
        all
    });
    assert_eq!(postgres, sqlite);
    // And what both hold is what the triggers were written to keep.
    assert_eq!(
        sqlite[0],
        rows(&[
            &["1", "1", "1", "1"],
            &["1", "1", "2", "0"],
            &["1", "2", "1", "1"],
            &["1", "2", "2", "0"],
        ])
    );
    assert_eq!(
        sqlite[1],
        rows(&[
            &["1", "1", "2", "1", "0"],
            &["1", "2", "0", "0", "0"],
            &["1", "2", "1", "1", "0"],
            &["1", "2", "2", "0", "0"],
            &["1", "2", "3", "1", "0"],
        ])
    );
    // t1 was recorded: no row. t2 lapsed (holder: the assignee), t3 released, t2b dropped.
    assert_eq!(
        sqlite[2],
        rows(&[
            &["t2", "2", "1", "1100"],
            &["t2b", "2", "2", "3000"],
            &["t3", "3", "2", "1200"],
        ])
    );
}

/// Statements each of which breaks one constraint of the SQLite schema, and the text the refusal
/// names. Run after [`SETUP`].
const REFUSED: [(&str, &str); 13] = [
    (
        "UPDATE attempts SET outcome = 'maybe' WHERE id = 100",
        "attempts.outcome",
    ),
    (
        "INSERT INTO attempts (member_id, operator_id, attempt_no, recorded_at, outcome, aapor_code, source)
         VALUES (1, 1, 9, 1, 'No Answer', '3.13', 'web')",
        "attempts.outcome",
    ),
    (
        "UPDATE members SET category = '群众' WHERE id = 1",
        "members.category",
    ),
    (
        "INSERT INTO members (unit_id, phone, category, created_at) VALUES (1, '13800000009', '', 0)",
        "members.category",
    ),
    ("UPDATE units SET kind = '企业' WHERE id = 1", "kind"),
    ("UPDATE users SET role = 'root' WHERE id = 1", "role"),
    ("UPDATE attempts SET source = 'api' WHERE id = 100", "source"),
    (
        "INSERT INTO plans (round_id, kind, seed, algorithm, operators, members, digest, created_at, created_by)
         VALUES (1, 'shuffle', '1', 'a', '[]', 0, 'd', 0, 'x')",
        "kind",
    ),
    (
        "INSERT INTO onsite_ballots (unit_id, ballot, overall, levels, created_at, created_by)
         VALUES (1, 'b1', 2, '[0]', 0, 'x')",
        "overall",
    ),
    (
        "INSERT INTO evidence (unit_id, kind, count, created_at, created_by) VALUES (1, 'rumour', 1, 0, 'x')",
        "kind",
    ),
    (
        "INSERT INTO evidence (unit_id, kind, count, volume, created_at, created_by)
         VALUES (1, 'complaint', -1, NULL, 0, 'x')",
        "count",
    ),
    (
        "INSERT INTO round_previous (round_id, previous_round_id) VALUES (1, 1)",
        "round_previous",
    ),
    (
        "INSERT INTO units (round_id, name, kind) VALUES (7, '乙局', '事业单位')",
        "FOREIGN KEY",
    ),
];

#[test]
fn constraints_refuse_what_sqlite_refuses() {
    let Some(db) = migrated_db("constraints_refuse_what_sqlite_refuses") else {
        return;
    };
    let (_dir, lite) = sqlite_db();
    lite.execute_batch(SETUP).unwrap();
    for (sql, _) in REFUSED {
        assert!(lite.execute_batch(sql).is_err(), "SQLite accepted {sql}");
    }
    block_on(async {
        let store = PgStore::connect(&db.url).await.unwrap();
        let c = pg::connect(&db.url).await;
        c.batch_execute(SETUP).await.unwrap();
        // New rows are numbered after SETUP's ids, as SQLite numbers them.
        store.move_identities_past_stored_ids().await.unwrap();
        for (sql, names) in REFUSED {
            let err = c
                .batch_execute(sql)
                .await
                .expect_err(&format!("PostgreSQL accepted {sql}"));
            let db_err = err.as_db_error().expect("a database error");
            let text = format!("{db_err}");
            let names_it = match names {
                "FOREIGN KEY" => {
                    db_err.code() == &tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION
                }
                _ => {
                    db_err.code() == &tokio_postgres::error::SqlState::CHECK_VIOLATION
                        && (text.contains(names)
                            || db_err.constraint().is_some_and(|c| c.contains(names)))
                }
            };
            assert!(names_it, "{sql}: {:?} {text}", db_err.code());
        }
        // The refusals of 013 read as in SQLite: the column, then what the values may be.
        let err = c
            .batch_execute("UPDATE attempts SET outcome = 'maybe' WHERE id = 100")
            .await
            .unwrap_err();
        let message = err.as_db_error().unwrap().message().to_owned();
        let sqlite_message = lite
            .execute_batch("UPDATE attempts SET outcome = 'maybe' WHERE id = 100")
            .unwrap_err()
            .to_string();
        assert!(
            sqlite_message.contains(&message),
            "{sqlite_message} / {message}"
        );
        // Without the trigger, the CHECK constraint itself still refuses.
        c.batch_execute("ALTER TABLE attempts DISABLE TRIGGER attempts_outcome_update")
            .await
            .unwrap();
        let err = c
            .batch_execute("UPDATE attempts SET outcome = 'maybe' WHERE id = 100")
            .await
            .unwrap_err();
        assert_eq!(
            err.as_db_error().unwrap().constraint(),
            Some("attempts_outcome_known"),
            "{err}"
        );
        // Nothing refused was stored.
        let outcome: String = c
            .query_one("SELECT outcome FROM attempts WHERE id = 100", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(outcome, "no_answer");
    });
}

#[test]
fn identities_continue_after_rows_copied_with_their_ids() {
    let Some(db) = migrated_db("identities_continue_after_rows_copied_with_their_ids") else {
        return;
    };
    block_on(async {
        let store = PgStore::connect(&db.url).await.unwrap();
        let c = pg::connect(&db.url).await;
        // Rows that came with their ids, as `sheping migrate` copies them.
        c.batch_execute(SETUP).await.unwrap();
        let add_unit =
            "INSERT INTO units (round_id, name, kind) VALUES (1, '乙局', '事业单位') RETURNING id";
        // The identity does not look at the stored ids by itself.
        let err = c.query_one(add_unit, &[]).await.unwrap_err();
        assert_eq!(
            err.as_db_error().unwrap().constraint(),
            Some("units_pkey"),
            "{err}"
        );
        store.move_identities_past_stored_ids().await.unwrap();
        let unit: i64 = c.query_one(add_unit, &[]).await.unwrap().get(0);
        assert_eq!(unit, 2);
        let attempt: i64 = c
            .query_one(
                "INSERT INTO attempts (member_id, operator_id, attempt_no, recorded_at, outcome, aapor_code, source)
                 VALUES (4, 2, 2, 9, 'busy', '3.12', 'cli') RETURNING id",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(attempt, 101);
        // An empty table starts at 1.
        let plan: i64 = c
            .query_one(
                "INSERT INTO plans (round_id, kind, seed, algorithm, operators, members, digest, created_at, created_by)
                 VALUES (1, 'generate', '1', 'a', '[]', 0, 'd', 0, 'x') RETURNING id",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(plan, 1);
    });
}

#[test]
fn an_unreachable_server_is_named_with_the_reason() {
    // No server behind this socket directory: the error says where and why, not only that.
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "postgresql://sheping:hunter2@/sheping?host={}&port=5999",
        dir.path().display()
    );
    let err = match block_on(PgStore::connect(&url)) {
        Err(e) => e,
        Ok(_) => panic!("nothing listens there"),
    };
    let text = err.to_string();
    assert!(matches!(err, PgError::Connect { .. }), "{text}");
    assert!(text.contains("无法连接 PostgreSQL 数据库"), "{text}");
    assert!(text.contains("postgresql://sheping:***@/sheping"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("No such file or directory"), "{text}");
}

#[test]
fn concurrent_writers_extend_one_audit_chain() {
    let Some(db) = migrated_db("concurrent_writers_extend_one_audit_chain") else {
        return;
    };
    const WRITERS: usize = 6;
    const APPENDS: usize = 40;
    let start = Arc::new(Barrier::new(WRITERS));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (url, start) = (db.url.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                // Each writer is an instance of its own: its own runtime and pool.
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let store = PgStore::connect(&url).await?;
                    start.wait();
                    let mut kept = Vec::new();
                    for i in 0..APPENDS {
                        let mut client = store.client().await?;
                        let tx = client.transaction().await.map_err(PgError::from)?;
                        let detail = format!("{{\"writer\":{w},\"n\":{i}}}");
                        audit::append(&tx, &format!("w{w}"), "test.append", Some("r1"), &detail)
                            .await?;
                        // Every tenth change fails after its entry: the entry goes with it.
                        if i % 10 == 9 {
                            tx.rollback().await.map_err(PgError::from)?;
                        } else {
                            tx.commit().await.map_err(PgError::from)?;
                            kept.push(detail);
                        }
                    }
                    Ok::<_, PgError>(kept)
                })
            })
        })
        .collect();
    let kept: Vec<Vec<String>> = writers
        .into_iter()
        .map(|h| h.join().expect("writer thread").expect("writer"))
        .collect();
    let expected = WRITERS * (APPENDS - APPENDS / 10);
    block_on(async {
        let store = PgStore::connect(&db.url).await.unwrap();
        let client = store.client().await.unwrap();
        // One linear chain through every committed entry, and its head recorded.
        assert_eq!(audit::verify(&client).await.unwrap(), Ok(expected));
        let entries = audit::entries(&client).await.unwrap();
        assert_eq!(
            entries.iter().map(|e| e.id).collect::<Vec<_>>(),
            (1..=expected as i64).collect::<Vec<_>>(),
            "numbered without gaps: a rolled-back entry leaves none"
        );
        assert!(entries.windows(2).all(|p| p[0].at_ms <= p[1].at_ms));
        // Each writer's entries, in its own order; none of the rolled-back ones.
        for (w, kept) in kept.iter().enumerate() {
            let mine: Vec<&str> = entries
                .iter()
                .filter(|e| e.actor == format!("w{w}"))
                .map(|e| e.detail.as_str())
                .collect();
            assert_eq!(mine, kept.iter().map(String::as_str).collect::<Vec<_>>());
        }
        // And the check notices a change behind its back.
        client
            .execute("UPDATE audit_log SET detail = '{}' WHERE id = 7", &[])
            .await
            .unwrap();
        assert_eq!(
            audit::verify(&client).await.unwrap(),
            Err(sheping::domain::audit::ChainBreak::Altered { id: 7 })
        );
    });
}

#[test]
fn change_notices_reach_another_instance_on_commit_and_survive_a_lost_connection() {
    use postgres::changes::{self, Change};
    let Some(db) = migrated_db(
        "change_notices_reach_another_instance_on_commit_and_survive_a_lost_connection",
    ) else {
        return;
    };
    block_on(async {
        let (sender, mut seen) = tokio::sync::mpsc::unbounded_channel();
        let _listener = changes::Listener::start(&db.url, move |c| {
            let _ = sender.send(c);
        })
        .await
        .expect("listen");
        // Bounded waits, so a missing notice fails the test instead of hanging it.
        let mut next = async || {
            tokio::time::timeout(std::time::Duration::from_secs(60), seen.recv())
                .await
                .expect("a notice within a minute")
                .expect("listener running")
        };
        // Another instance writes.
        let writer = PgStore::connect(&db.url).await.unwrap();
        let mut client = writer.client().await.unwrap();
        let tx = client.transaction().await.unwrap();
        changes::notify(&tx, "rounds").await.unwrap();
        tx.rollback().await.unwrap();
        let tx = client.transaction().await.unwrap();
        changes::notify(&tx, "sessions").await.unwrap();
        changes::notify(&tx, "sessions").await.unwrap();
        tx.commit().await.unwrap();
        let tx = client.transaction().await.unwrap();
        changes::notify(&tx, "users").await.unwrap();
        tx.commit().await.unwrap();
        // Notices come in commit order: the rolled-back one never came, the repeated one once.
        assert_eq!(next().await, Change::Group("sessions".into()));
        assert_eq!(next().await, Change::Group("users".into()));

        // The listening connection is cut: the loss is reported, listening resumes (reported
        // too), and notices flow again.
        let cut: i64 = client
            .query_one(
                "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
                &[&changes::LISTENER_NAME],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(cut, 1);
        assert_eq!(next().await, Change::Lost);
        assert_eq!(next().await, Change::Lost);
        let tx = client.transaction().await.unwrap();
        changes::notify(&tx, "rounds").await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(next().await, Change::Group("rounds".into()));
    });
}

#[test]
fn every_command_names_an_unreachable_postgres_database_with_its_password_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let url = "postgres://sheping:hunter2@127.0.0.1:1/sheping";
    for (flag, env) in [(Some(url), None), (None, Some(url))] {
        let mut cmd = std::process::Command::new(common::BIN);
        cmd.current_dir(dir.path())
            .env_remove("SHEPING_DB")
            .env("RUST_LOG", "error");
        if let Some(url) = flag {
            cmd.arg("--db").arg(url);
        }
        if let Some(url) = env {
            cmd.env("SHEPING_DB", url);
        }
        let out = cmd.arg("check").output().expect("run sheping");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        // Every command takes the URL for a PostgreSQL database, not for a file name.
        assert!(stderr.contains("无法连接 PostgreSQL 数据库"), "{stderr}");
        assert!(
            stderr.contains("postgres://sheping:***@127.0.0.1:1/sheping"),
            "{stderr}"
        );
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
    // `serve` takes the URL for a database: one that does not answer is named, password hidden.
    let out = std::process::Command::new(common::BIN)
        .current_dir(dir.path())
        .env_remove("SHEPING_DB")
        .env("RUST_LOG", "error")
        .args(["serve", "--db", url, "--addr", "127.0.0.1:0"])
        .output()
        .expect("run sheping");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("无法连接 PostgreSQL 数据库"), "{stderr}");
    assert!(
        stderr.contains("postgres://sheping:***@127.0.0.1:1/sheping"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    // The URL was not taken for a file name.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
