//! The storage contract for rounds and units (issue 22): one scenario, written once against
//! the traits, run on a fresh SQLite file and a fresh PostgreSQL database, giving the same
//! answers, the same errors and the same audit entries. Needs the test cluster
//! (`bash tests/pg_cluster.sh cargo test --test it pg_contract`); skips loudly without one.
//!
//! The helpers here (both backends, plain-SQL fixtures, comparable errors and audit entries)
//! serve the other `pg_contract_*` files too.

use crate::common;

use chrono::NaiveDate;
use common::pg::{self, PgDb};
use sheping::domain::audit::AuditEntry;
use sheping::domain::roster::{MemberCategory, NewMember};
use sheping::domain::survey::Survey;
use sheping::domain::unit::{NewUnit, UnitKind};
use sheping::storage::postgres::{self, PgBackend};
use sheping::storage::sqlite::SqliteStore;
use sheping::storage::*;

/// A fresh SQLite store and a fresh PostgreSQL backend (with what keeps them alive).
pub(crate) struct Backends {
    pub sqlite: SqliteStore,
    pub pg: PgBackend,
    _dir: tempfile::TempDir,
    _db: PgDb,
}

impl Backends {
    /// The PostgreSQL database's URL, for a second instance on it.
    pub fn url(&self) -> String {
        self._db.url.clone()
    }
}

/// Both backends, or `None` when PostgreSQL tests skip.
pub(crate) fn backends(test: &str) -> Option<Backends> {
    let db = pg::fresh_db(test)?;
    let pg = PgBackend::open(&db.url).expect("open PostgreSQL");
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("contract.db")).expect("open SQLite");
    Some(Backends {
        sqlite,
        pg,
        _dir: dir,
        _db: db,
    })
}

/// The two backends' fixture SQL (written in the common subset of both dialects).
pub(crate) fn sql_sqlite(s: &SqliteStore, sql: &str) {
    s.write(|c| Ok(c.execute_batch(sql)?))
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

pub(crate) fn sql_pg(s: &PgBackend, sql: &str) {
    s.block_on(async {
        let c = s.store().client().await.unwrap();
        c.batch_execute(sql).await
    })
    .unwrap_or_else(|e| panic!("{sql}: {}", postgres::describe(&e)));
}

/// One count on PostgreSQL.
pub(crate) fn count_pg(s: &PgBackend, sql: &str) -> i64 {
    s.block_on(async {
        let c = s.store().client().await.unwrap();
        c.query_one(sql, &[]).await.map(|r| r.get::<_, i64>(0))
    })
    .unwrap_or_else(|e| panic!("{sql}: {}", postgres::describe(&e)))
}

/// An error as the caller sees it: its kind and its message (a backend's own database errors
/// are not part of the contract and show as "other").
pub(crate) fn kind(e: &StorageError) -> String {
    match e {
        StorageError::NotFound(m) => format!("NotFound: {m}"),
        StorageError::Conflict(m) => format!("Conflict: {m}"),
        StorageError::Locked(k) => format!("Locked: {k}"),
        StorageError::Full => "Full".into(),
        other => format!("other: {other}"),
    }
}

pub(crate) fn err<T: std::fmt::Debug>(r: Result<T>) -> String {
    kind(&r.expect_err("the call must fail"))
}

/// The audit entries without their times and hashes: who, what, which round, the detail.
pub(crate) fn audit_trail(entries: &[AuditEntry]) -> Vec<(String, String, Option<String>, String)> {
    entries
        .iter()
        .map(|e| {
            (
                e.actor.clone(),
                e.action.clone(),
                e.round_key.clone(),
                e.detail.clone(),
            )
        })
        .collect()
}

pub(crate) fn new_round(key: &str) -> NewRound {
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/surveys/default.toml");
    let survey = Survey::from_toml_str(&std::fs::read_to_string(source).unwrap()).unwrap();
    NewRound {
        key: key.into(),
        title: format!("{key} 年度评议"),
        survey,
        survey_source: "surveys/default.toml".into(),
        field: None,
    }
}

pub(crate) fn unit(name: &str, line: usize) -> NewUnit {
    NewUnit {
        name: name.into(),
        kind: UnitKind::from_stored_label("党政机关").unwrap(),
        sector: "综合".into(),
        code: None,
        line,
    }
}

pub(crate) fn member(unit_id: i64, phone: String, line: usize) -> NewMember {
    NewMember {
        unit_id,
        name: format!("代表{line}"),
        phone,
        phone_alt: line.is_multiple_of(3).then(|| format!("0571{line:08}")),
        category: if line.is_multiple_of(4) {
            MemberCategory::NpcDeputy
        } else {
            MemberCategory::ServiceRecipient
        },
        organization: line.is_multiple_of(2).then(|| "某街道".to_string()),
        note: None,
        line,
    }
}

/// What a scenario observed, compared between the backends.
type Seen = Vec<String>;

fn rounds_scenario<S: RoundStore + RosterStore + AuditStore>(
    s: &S,
    fixture: &dyn Fn(&str),
) -> Seen {
    let mut seen = Seen::new();
    let r1 = s.create_round(&new_round("2025"), "admin").unwrap();
    seen.push(format!(
        "{} {} {} {:?} {:?} {:?} {}",
        r1.id, r1.key, r1.title, r1.field_start, r1.field_end, r1.locked_at_ms, r1.survey_source
    ));
    seen.push(err(s.create_round(&new_round("2025"), "admin")));
    seen.push(err(s.round("1999")));
    let r2 = s.create_round(&new_round("2026"), "admin").unwrap();
    seen.push(format!(
        "{:?}",
        s.rounds()
            .unwrap()
            .iter()
            .map(|r| (r.round.key.clone(), r.units, r.members))
            .collect::<Vec<_>>()
    ));

    // Units: all or none.
    let n = s
        .add_units(&r2, &[unit("市教育局", 2), unit("市卫健委", 3)], "admin")
        .unwrap();
    seen.push(format!("added {n}"));
    seen.push(err(s.add_units(
        &r2,
        &[unit("市民政局", 2), unit("市教育局", 3)],
        "admin",
    )));
    let units = s.units(r2.id).unwrap();
    seen.push(format!("{units:?}"));

    // Field period, then the previous round (replaced by a later link).
    let (a, b) = (
        NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
        NaiveDate::from_ymd_opt(2026, 3, 31).unwrap(),
    );
    s.set_field_period(&r2, a, b, "admin").unwrap();
    let r2 = s.round("2026").unwrap();
    seen.push(format!("{:?} {:?}", r2.field_start, r2.field_end));
    seen.push(format!("{:?}", s.previous_round(r2.id).unwrap()));
    seen.push(err(s.set_previous_round(&r2, &r2, "admin")));
    s.set_previous_round(&r2, &r1, "admin").unwrap();
    seen.push(format!("{:?}", s.previous_round(r2.id).unwrap()));

    // Members (one 两代一委 of three), an operator, and one completed call, for the counts.
    let members: Vec<NewMember> = (0..3)
        .map(|i| member(units[0].id, format!("1380000000{i}"), 4 + i))
        .collect();
    s.add_members(&r2, &members, &[], "admin").unwrap();
    fixture(
        "INSERT INTO users (login, name, role, password_hash, active, created_at)
             VALUES ('op1', '话务员', 'operator', 'x', 1, 0);
         INSERT INTO attempts (member_id, operator_id, attempt_no, recorded_at, outcome, aapor_code, comment, source)
             SELECT m.id, u.id, 1, 0, 'complete', '1.1', '代表4说请打13800000000找他', 'cli'
             FROM members m, users u WHERE m.phone = '13800000000' AND u.login = 'op1';",
    );
    seen.push(format!("{:?}", s.units(r2.id).unwrap()));
    seen.push(format!("{:?}", s.round_counts(&r2).unwrap()));

    // The lock: every later write of the round is refused.
    s.lock_round(&r2, "admin").unwrap();
    let r2 = s.round("2026").unwrap();
    seen.push(format!("locked {}", r2.is_locked()));
    seen.push(err(s.lock_round(&r2, "admin")));
    seen.push(err(s.set_field_period(&r2, a, b, "admin")));
    seen.push(err(s.add_units(&r2, &[unit("市民政局", 2)], "admin")));
    seen.push(err(s.add_members(&r2, &members[..1], &[], "admin")));
    // The purge: only a locked round, names and numbers gone, the comment masked.
    seen.push(err(s.purge_contacts(&r1, "admin")));
    seen.push(format!(
        "purged {}",
        s.purge_contacts(&r2, "admin").unwrap()
    ));
    seen.push(format!("{:?}", s.members(r2.id, None).unwrap()));
    seen.push(format!("{:?}", s.round_counts(&r2).unwrap()));
    seen
}

#[test]
fn pg_contract_rounds_and_units_answer_alike() {
    let Some(b) = backends("pg_contract_rounds_and_units_answer_alike") else {
        return;
    };
    let on_sqlite = rounds_scenario(&b.sqlite, &|sql| sql_sqlite(&b.sqlite, sql));
    let on_pg = rounds_scenario(&b.pg, &|sql| sql_pg(&b.pg, sql));
    for (i, (l, p)) in on_sqlite.iter().zip(&on_pg).enumerate() {
        assert_eq!(l, p, "step {i} differs (left SQLite, right PostgreSQL)");
    }
    assert_eq!(on_sqlite.len(), on_pg.len());
    // The scenario saw what it should (not just the same thing twice).
    assert!(on_pg[1].starts_with("Conflict: 评估轮次 `2025` 已存在"));
    assert!(on_pg[2].starts_with("NotFound: 没有评估轮次 `1999`"));
    assert_eq!(on_pg[5], "Conflict: 单位“市教育局”已在本轮评估中");
    assert!(on_pg.iter().any(|s| s == "Locked: 2026"));
    assert!(on_pg.iter().any(|s| s == "purged 3"));
    assert!(on_pg.iter().any(|s| s.contains("contacts_purged: true")));
    // The comment keeps no number after the purge, on PostgreSQL too.
    assert_eq!(
        count_pg(
            &b.pg,
            "SELECT COUNT(*) FROM attempts WHERE comment LIKE '%13800000000%' OR comment LIKE '%代表4%'"
        ),
        0
    );
    assert_eq!(
        count_pg(
            &b.pg,
            "SELECT COUNT(*) FROM members WHERE phone IS NOT NULL OR name IS NOT NULL"
        ),
        0
    );

    // Nor does any file of the schema's tables and indexes: the old row versions the purge's
    // updates left are gone (after a checkpoint, every page is in its file).
    sql_pg(&b.pg, "CHECKPOINT");
    assert_eq!(
        count_pg(
            &b.pg,
            "SELECT COUNT(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'i', 't')
               AND (position(convert_to('13800000000', 'UTF8') IN pg_read_binary_file(pg_relation_filepath(c.oid))) > 0
                 OR position(convert_to('13800000002', 'UTF8') IN pg_read_binary_file(pg_relation_filepath(c.oid))) > 0)"
        ),
        0,
        "a purged number is still in a table's or an index's file: {:?}",
        b.pg.block_on(async {
            let c = b.pg.store().client().await.unwrap();
            c.query(
                "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'i', 't')
                   AND position(convert_to('13800000000', 'UTF8') IN pg_read_binary_file(pg_relation_filepath(c.oid))) > 0",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
        })
    );

    // The same audit trail, and PostgreSQL's chain verifies.
    let trail_sqlite = audit_trail(&b.sqlite.audit_entries(None).unwrap());
    let trail_pg = audit_trail(&b.pg.audit_entries(None).unwrap());
    assert_eq!(trail_sqlite, trail_pg);
    let actions: Vec<&str> = trail_pg.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(
        actions,
        [
            "round.create",
            "round.create",
            "units.import",
            "round.field",
            "round.previous",
            "roster.import",
            "round.lock",
            "round.purge_contacts"
        ]
    );
    assert_eq!(b.sqlite.verify_audit().unwrap(), Ok(8));
    assert_eq!(b.pg.verify_audit().unwrap(), Ok(8));
    let pg_verify =
        b.pg.block_on(async {
            let c = b.pg.store().client().await.unwrap();
            postgres::audit::verify(&c).await
        })
        .unwrap();
    assert_eq!(pg_verify, Ok(8));
}
