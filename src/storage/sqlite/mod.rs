//! The SQLite implementation of [`Store`]: one file, WAL, foreign keys on, `synchronous=FULL`
//! so that an acknowledged write survives a power loss, schema under versioned migrations.
//!
//! One file per aggregate (`rounds`, `plans`, `calls`, `accounts`, `results`, `audit`); the
//! roster's impl is here, beside its import's write path. Everything SQLite-only (backup,
//! checkpoint, `check`, queue rebuild, `user_version`) is inherent methods of [`SqliteStore`]
//! in `maintenance.rs`, outside the seam a second backend implements.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use chrono::NaiveDate;
use rusqlite::{Connection, OpenFlags, params};
use rusqlite_migration::{M, Migrations};

mod accounts;
mod audit;
mod backup;
mod borrowed_binds;
mod calls;
mod maintenance;
use crate::storage::read_cache;
mod plans;
mod results;
mod roster_write;
mod rounds;
mod writer;
pub use crate::storage::maintenance::CheckReport;
pub(crate) use audit::append_audit;
pub use maintenance::{BackupRecord, Checkpoint};

use super::*;
use crate::domain::roster::{MemberCategory, NewMember, RosterUnit};
use crate::domain::survey::Survey;

/// The schema's migrations in order; an applied migration is never edited, only followed.
const MIGRATION_SQL: [&str; 16] = [
    include_str!("../migrations/001_foundation.sql"),
    include_str!("../migrations/002_engine.sql"),
    include_str!("../migrations/003_web.sql"),
    include_str!("../migrations/004_results.sql"),
    include_str!("../migrations/005_claims_index.sql"),
    include_str!("../migrations/006_tallies.sql"),
    include_str!("../migrations/007_drop_duplicate_index.sql"),
    include_str!("../migrations/008_drop_operator_attempts_index.sql"),
    include_str!("../migrations/009_queue_by_operator.sql"),
    include_str!("../migrations/010_plan_inputs.sql"),
    include_str!("../migrations/011_late_records.sql"),
    include_str!("../migrations/012_signin_refusals.sql"),
    include_str!("../migrations/013_stored_value_checks.sql"),
    include_str!("../migrations/014_evidence.sql"),
    include_str!("../migrations/015_previous_round.sql"),
    include_str!("../migrations/016_assignments_by_operator_plan.sql"),
];

static MIGRATIONS: LazyLock<Migrations<'static>> =
    LazyLock::new(|| Migrations::new(MIGRATION_SQL.iter().map(|sql| M::up(sql)).collect()));

/// The number of schema versions this build knows.
pub fn schema_version() -> usize {
    MIGRATION_SQL.len()
}

pub struct SqliteStore {
    path: PathBuf,
    /// The one connection that writes (several writers would only fight for SQLite's lock),
    /// with group commit.
    writer: writer::Writer,
    /// Idle read-only connections; WAL lets them read while the writer writes.
    readers: Mutex<Vec<Connection>>,
    /// Parsed survey definitions by their TOML text: every call-screen request reads its
    /// round, and parsing the TOML each time cost more than the rest of the lookup.
    surveys: Mutex<HashMap<String, Arc<Survey>>>,
    /// What commits have changed, for the caches below.
    generations: Arc<read_cache::Generations>,
    /// Each operator's rounds (every call-screen request asks).
    operator_rounds: read_cache::ReadCache<i64, Vec<RoundRecord>>,
    /// Valid sessions by the hash of their id (every signed-in request asks).
    sessions: read_cache::ReadCache<String, crate::storage::SessionRecord>,
}

thread_local! {
    /// The read connection of a [`Store::snapshot`] running on this thread, by store.
    static SNAPSHOT: std::cell::RefCell<Option<(usize, Connection)>> =
        const { std::cell::RefCell::new(None) };
}

/// The writer's page cache. 8 MiB holds the interior pages of every hot B-tree. Bigger costs
/// the operators: a transaction that splits a B-tree page leaves SQLite's cache believing it
/// holds the lock page (the one at byte 2^30), so the commit scans the whole cache for pages
/// past the end of the file. At 64 MiB that scan was about 7% of the writer under the cycle
/// load (`BENCHMARKS.md`, sixth session).
const WRITER_CACHE_KIB: i64 = 8_192;
/// The writer's page cache during bulk writes (a plan, an import, a queue rebuild): their
/// inserts land all over B-trees of a million rows, and with 8 MiB they kept re-reading pages.
const BULK_CACHE_KIB: i64 = 65_536;
/// The page cache of a roster import: members arrive unit by unit, so their rows and their
/// (unit, phone) index grow at the right edge and a small cache serves them; the import's
/// memory must stay bounded for a province-wide file (issue 20.2).
const ROSTER_CACHE_KIB: i64 = 8_192;

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // The call screen alone runs a few dozen distinct statements; rusqlite's default of 16
    // cached statements made them compile again and again.
    conn.set_prepared_statement_cache_capacity(128);
    // Reads map the file instead of copying each page out of the OS cache. Under load every
    // commit empties each reader's page cache (WAL), so reads are mostly cold: mapping made
    // the operator cycle about 20% cheaper. SQLite only reads through the map, never writes.
    conn.pragma_update(None, "mmap_size", 1_i64 << 30)?;
    Ok(())
}

pub(crate) fn map_full(e: rusqlite::Error) -> StorageError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => StorageError::Full,
        _ => StorageError::from(e),
    }
}

/// Reads the enumerated text in column `idx` with `decode`, which accepts only what the
/// writers store; anything else is a `BadStoredValue` naming table, row, column and value.
pub(crate) fn strict<T>(
    r: &rusqlite::Row,
    idx: usize,
    table: &'static str,
    column: &'static str,
    row_id: i64,
    decode: impl FnOnce(&str) -> Option<T>,
) -> rusqlite::Result<T> {
    let value: String = r.get(idx)?;
    decode(&value).ok_or_else(|| bad_value(idx, table, column, row_id, value))
}

/// A `BadStoredValue` as a row mapper's error (see `From<rusqlite::Error> for StorageError`).
pub(crate) fn bad_value(
    idx: usize,
    table: &'static str,
    column: &'static str,
    row_id: i64,
    value: String,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        idx,
        rusqlite::types::Type::Text,
        Box::new(BadStoredValue {
            table,
            row_id,
            column,
            value,
        }),
    )
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        Self::open_with(path, true)
    }

    /// Opens with group commit on or off (off: one fsync per write, for comparison).
    pub fn open_with(path: &Path, group_commit: bool) -> Result<SqliteStore> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| StorageError::Open {
                path: path.display().to_string(),
                error: e.to_string(),
            })?;
        }
        let mut conn = Connection::open(path).map_err(|e| StorageError::Open {
            path: path.display().to_string(),
            error: e.to_string(),
        })?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(mode, "SQLite did not switch to WAL mode");
        }
        configure(&conn)?;
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        // Each write of a group commit runs in a savepoint, whose statement journal holds the
        // pages it changes; kept in memory it no longer spills to a temporary file.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        MIGRATIONS.to_latest(&mut conn)?;
        let generations = Arc::new(read_cache::Generations::default());
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writer: writer::Writer::new(conn, group_commit, Arc::clone(&generations))?,
            readers: Mutex::new(Vec::new()),
            surveys: Mutex::new(HashMap::new()),
            generations,
            operator_rounds: read_cache::ReadCache::new(4096),
            sessions: read_cache::ReadCache::new(4096),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in one IMMEDIATE transaction on the writer connection and commits.
    pub fn write<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let out = self.writer.write(f);
        self.after_write();
        out
    }

    /// Like [`SqliteStore::write`], for a bulk write: it runs with the larger page cache, which
    /// is shrunk again after it (freeing the pages above the limit), also when it fails.
    pub(crate) fn write_bulk<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.write_bulk_with_cache(BULK_CACHE_KIB, f)
    }

    /// [`SqliteStore::write_bulk`] with a page cache of `cache_kib`.
    fn write_bulk_with_cache<T>(
        &self,
        cache_kib: i64,
        f: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        self.write(|tx| {
            tx.pragma_update(None, "cache_size", -cache_kib)?;
            let out = f(tx);
            if let Err(e) = tx.pragma_update(None, "cache_size", -WRITER_CACHE_KIB) {
                tracing::warn!(error = %e, "could not shrink the writer's page cache after a bulk write");
            }
            out
        })
    }

    /// Like [`SqliteStore::write`], run on the writer's own thread among the other queued
    /// writes (`f` owns its data): for the operators' hot path. `f` may run twice, the first
    /// run undone, when another write of its batch fails (see `writer`).
    pub(crate) fn write_queued<T: Send + 'static>(
        &self,
        f: impl FnMut(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let out = self.writer.submit(f);
        self.after_write();
        out
    }

    /// A snapshot on this thread must see its own writes: its next read starts afresh.
    fn after_write(&self) {
        let key = self.snapshot_key();
        SNAPSHOT.with(|s| {
            if let Some((k, conn)) = s.borrow().as_ref()
                && *k == key
            {
                let _ = conn.execute_batch("COMMIT; BEGIN");
            }
        });
    }

    /// Runs `f` on a read-only connection (a consistent snapshot inside one statement; use a
    /// transaction inside `f` for several).
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        // Inside `snapshot` on this thread: use its connection (taken out while in use, so a
        // read nested in a read gets a connection of its own instead of a borrow conflict).
        let key = self.snapshot_key();
        let held = SNAPSHOT.with(|s| {
            let mut s = s.borrow_mut();
            match s.as_ref() {
                Some((k, _)) if *k == key => s.take().map(|(_, c)| c),
                _ => None,
            }
        });
        if let Some(conn) = held {
            let out = f(&conn);
            SNAPSHOT.with(|s| *s.borrow_mut() = Some((key, conn)));
            return out;
        }
        let conn = self.take_reader()?;
        let out = f(&conn);
        self.return_reader(conn);
        out
    }

    /// Which store a snapshot on this thread belongs to (its address).
    fn snapshot_key(&self) -> usize {
        self as *const SqliteStore as usize
    }

    fn take_reader(&self) -> Result<Connection> {
        let conn = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match conn {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY
                        | OpenFlags::SQLITE_OPEN_NO_MUTEX
                        | OpenFlags::SQLITE_OPEN_URI,
                )?;
                configure(&c)?;
                // Pages come from the memory map; the page cache holds little of its own.
                c.pragma_update(None, "cache_size", -2_048)?;
                c
            }
        };
        Ok(conn)
    }

    fn return_reader(&self, conn: Connection) {
        let mut pool = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        // Enough readers for the request concurrency a call centre brings (64 operators at
        // once in the benchmark): a new connection parses the schema again, which cost a
        // tenth of the operator cycle when the pool held 32.
        if pool.len() < 128 {
            pool.push(conn);
        }
    }

    pub(crate) fn round_from_row(row: &rusqlite::Row) -> rusqlite::Result<(RoundRecord, String)> {
        let toml: String = row.get("survey_toml")?;
        let date =
            |s: Option<String>| s.and_then(|s| NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok());
        Ok((
            RoundRecord {
                id: row.get("id")?,
                key: row.get("key")?,
                title: row.get("title")?,
                survey: placeholder_survey(),
                survey_source: row.get("survey_source")?,
                field_start: date(row.get("field_start")?),
                field_end: date(row.get("field_end")?),
                locked_at_ms: row.get("locked_at")?,
                created_at_ms: row.get("created_at")?,
            },
            toml,
        ))
    }

    pub(crate) fn parse_round(&self, pair: (RoundRecord, String)) -> Result<RoundRecord> {
        let (mut round, toml) = pair;
        if let Some(survey) = self
            .surveys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&toml)
        {
            round.survey = Arc::clone(survey);
            return Ok(round);
        }
        round.survey =
            Arc::new(
                Survey::from_toml_str(&toml).map_err(|e| StorageError::CorruptSurvey {
                    round: round.key.clone(),
                    error: e.to_string(),
                })?,
            );
        let mut cache = self.surveys.lock().unwrap_or_else(|p| p.into_inner());
        // A handful of rounds exist; the bound only guards against a pathological caller.
        if cache.len() >= 64 {
            cache.clear();
        }
        cache.insert(toml, Arc::clone(&round.survey));
        Ok(round)
    }
}

/// Stand-in replaced right after the row is read (keeps row mapping free of fallible parsing).
fn placeholder_survey() -> Arc<Survey> {
    static DEFAULT: LazyLock<Arc<Survey>> = LazyLock::new(|| {
        Arc::new(
            Survey::from_toml_str(include_str!("../../../surveys/default.toml"))
                .expect("default survey is valid"),
        )
    });
    Arc::clone(&DEFAULT)
}

/// `MEMBER_COLUMNS` (in that order, first in the SELECT) as a record.
pub(crate) fn member_from_row(r: &rusqlite::Row) -> rusqlite::Result<MemberRecord> {
    Ok(MemberRecord {
        id: r.get(0)?,
        unit_id: r.get(1)?,
        unit: r.get(2)?,
        name: r.get(3)?,
        phone: r.get(4)?,
        phone_alt: r.get(5)?,
        category: strict(
            r,
            6,
            "members",
            "category",
            r.get(0)?,
            MemberCategory::from_stored_label,
        )?,
        organization: r.get(7)?,
        note: r.get(8)?,
    })
}

/// A unique-constraint violation becomes a conflict with `message`; anything else as usual.
pub(crate) fn conflict_on_unique(
    e: rusqlite::Error,
    message: impl FnOnce() -> String,
) -> StorageError {
    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) {
        StorageError::Conflict(message())
    } else {
        map_full(e)
    }
}

/// The writer's side of a streamed roster import.
struct MembersSink<'c> {
    tx: &'c Connection,
    /// Units with calls: their panels cannot be replaced.
    called: BTreeSet<i64>,
    now: i64,
    stored: usize,
    replaced: Vec<i64>,
    /// The writer's triggers, off during a large import (`roster_write`).
    suspended: roster_write::TriggersOff<'c>,
    /// The units stored members belong to, each with the first line naming it: checked
    /// against the round's units before the import is kept, as foreign-key enforcement is off
    /// for its rows.
    units: roster_write::UnitsSeen,
    /// The many-row INSERT, prepared once per import (it has hundreds of parameters).
    many: Option<borrowed_binds::BorrowedBinds<'c>>,
}

impl MemberSink for MembersSink<'_> {
    fn replace_panel(&mut self, unit_id: i64) -> Result<()> {
        // Foreign keys are not enforced during the import: a member another table refers to
        // is refused here, as the enforcement would.
        if self.called.contains(&unit_id) || roster_write::panel_referenced(self.tx, unit_id)? {
            return Err(StorageError::Conflict(
                "该单位已排入拨打计划或已开始电话调查,不能替换代表名单".into(),
            ));
        }
        self.tx
            .prepare_cached("DELETE FROM members WHERE unit_id = ?1")?
            .execute([unit_id])?;
        self.replaced.push(unit_id);
        Ok(())
    }

    fn add(&mut self, members: &[NewMember]) -> Result<()> {
        if !self.suspended.active()
            && self.stored + members.len() > roster_write::SUSPEND_TRIGGERS_ABOVE
        {
            self.suspended.suspend(self.tx)?;
        }
        for m in members {
            self.units.note(m.unit_id, m.line);
        }
        let many = match &mut self.many {
            Some(many) => many,
            None => self.many.insert(borrowed_binds::BorrowedBinds::prepare(
                self.tx,
                &members_insert_sql("INSERT OR FAIL", MEMBERS_PER_INSERT),
            )?),
        };
        insert_members(self.tx, many, members, self.now)?;
        self.stored += members.len();
        Ok(())
    }
}

/// The roster import inside its transaction (see [`Storage::add_members_streamed`]).
fn import_members(
    tx: &Connection,
    round: &RoundRecord,
    actor: &str,
    feed: &mut dyn FnMut(&mut dyn MemberSink) -> Result<bool>,
) -> Result<Option<usize>> {
    ensure_unlocked(tx, round.id)?;
    let mut sink = MembersSink {
        tx,
        called: units_in_use(tx, round.id)?,
        now: now_ms(),
        stored: 0,
        replaced: Vec::new(),
        suspended: Default::default(),
        units: Default::default(),
        many: None,
    };
    // Its own savepoint, to drop what was stored when `feed` does not keep it; an error
    // rolls back the writer's savepoint around all of this.
    tx.execute_batch("SAVEPOINT roster_import")?;
    if !feed(&mut sink)? {
        tx.execute_batch("ROLLBACK TO roster_import; RELEASE roster_import")?;
        return Ok(None);
    }
    sink.units.check(tx, round.id)?;
    sink.suspended.restore()?;
    tx.execute_batch("RELEASE roster_import")?;
    let (stored, mut replaced) = (sink.stored, sink.replaced);
    replaced.sort_unstable();
    append_audit(
        tx,
        &AuditEvent {
            actor,
            action: "roster.import",
            round_key: Some(&round.key),
            detail: serde_json::json!({ "members": stored, "replaced_units": replaced }),
        },
    )?;
    Ok(Some(stored))
}

/// Rows per multi-row INSERT of members (9 parameters each, far below SQLite's limit of 32,766).
const MEMBERS_PER_INSERT: usize = 64;

/// The INSERT of `rows` members. `?1` is the time, the same for every row; a row's own values
/// are the 8 parameters after it ([`member_params`]).
fn members_insert_sql(verb: &str, rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|i| {
            let p: Vec<String> = (2 + 8 * i..2 + 8 * (i + 1))
                .map(|n| format!("?{n}"))
                .collect();
            format!("({}, ?1)", p.join(", "))
        })
        .collect();
    let values = values.join(", ");
    format!(
        "{verb} INTO members (unit_id, name, phone, phone_alt, category, organization, note, source_line, created_at) VALUES {values}"
    )
}

/// A member's 8 values, in the order of [`members_insert_sql`].
fn member_params(m: &NewMember) -> [borrowed_binds::Param<'_>; 8] {
    use borrowed_binds::Param;
    [
        Param::Int(m.unit_id),
        Param::Text(&m.name),
        Param::Text(&m.phone),
        Param::from(&m.phone_alt),
        Param::Text(m.category.label()),
        Param::from(&m.organization),
        Param::from(&m.note),
        Param::Int(m.line as i64),
    ]
}

/// Inserts members in file order (so their ids follow the file), many rows per statement: one
/// statement execution per row costs more than the row itself. The many-row statement (`many`,
/// from [`members_insert_sql`] with [`MEMBERS_PER_INSERT`] rows) is `INSERT OR FAIL`: a
/// conflict stops it, keeping the rows before (the import fails as a whole anyway), so SQLite
/// keeps no statement journal of every page it changes. The rest of that batch is then
/// inserted row by row to name the offending line. Its texts are bound without a copy
/// (`borrowed_binds`).
fn insert_members(
    tx: &Connection,
    many: &mut borrowed_binds::BorrowedBinds<'_>,
    members: &[NewMember],
    now: i64,
) -> Result<()> {
    static ONE: LazyLock<String> = LazyLock::new(|| members_insert_sql("INSERT", 1));
    let mut values = Vec::with_capacity(1 + 8 * MEMBERS_PER_INSERT);
    for chunk in members.chunks(MEMBERS_PER_INSERT) {
        let mut rest = chunk;
        if chunk.len() == MEMBERS_PER_INSERT {
            values.clear();
            values.push(borrowed_binds::Param::Int(now));
            for m in chunk {
                values.extend(member_params(m));
            }
            match many.execute(&values) {
                Ok(_) => continue,
                Err(e)
                    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) =>
                {
                    // The rows the statement stored before it failed.
                    let kept = usize::try_from(tx.changes()).unwrap_or(0).min(chunk.len());
                    rest = &chunk[kept..];
                }
                Err(e) => return Err(map_full(e)),
            }
        }
        let mut one = tx.prepare_cached(&ONE)?;
        for m in rest {
            one.raw_bind_parameter(1, now)?;
            for (i, value) in member_params(m).into_iter().enumerate() {
                one.raw_bind_parameter(2 + i, value)?;
            }
            one.raw_execute().map_err(|e| {
                conflict_on_unique(e, || {
                    format!(
                        "第 {} 行:该号码已在该单位的代表名单中(可能是同时进行的另一次导入)",
                        m.line
                    )
                })
            })?;
        }
    }
    Ok(())
}

/// Refuses a write to a locked round (every write path calls this inside its transaction).
pub(crate) fn ensure_unlocked(tx: &Connection, round_id: i64) -> Result<()> {
    let (key, locked): (String, Option<i64>) = tx
        .prepare_cached("SELECT key, locked_at FROM rounds WHERE id = ?1")?
        .query_row([round_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if locked.is_some() {
        Err(StorageError::Locked(key))
    } else {
        Ok(())
    }
}

/// Closing the store leaves a self-contained `.db`: without this the WAL outlived every
/// command (the read-only reader connections, closed after the writer, cannot checkpoint), and
/// copying the `.db` alone lost the latest writes.
impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Short: another process reading (a running server) must not hold up a command's exit;
        // that process checkpoints when it stops.
        match self.checkpoint(std::time::Duration::from_secs(1)) {
            Ok(c) if c.complete => {}
            Ok(_) => tracing::debug!("the WAL is still in use by another process; left for it"),
            Err(e) => tracing::warn!(error = %e, "checkpoint on close failed"),
        }
    }
}

impl Store for SqliteStore {
    fn snapshot(&self, f: &mut dyn FnMut()) {
        let key = self.snapshot_key();
        if SNAPSHOT.with(|s| s.borrow().as_ref().is_some_and(|(k, _)| *k == key)) {
            return f();
        }
        // Without a connection or a transaction the reads still work, each on its own.
        let Ok(conn) = self.take_reader() else {
            return f();
        };
        if conn.execute_batch("BEGIN").is_err() {
            self.return_reader(conn);
            return f();
        }
        /// Ends the read transaction and gives the connection back, also if `f` panics (a
        /// read transaction left open would keep the WAL from being checkpointed).
        struct Restore<'a> {
            store: &'a SqliteStore,
            prev: Option<Option<(usize, Connection)>>,
        }
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                let prev = self.prev.take().flatten();
                let mine = SNAPSHOT.with(|s| std::mem::replace(&mut *s.borrow_mut(), prev));
                if let Some((_, conn)) = mine
                    && conn.execute_batch("COMMIT").is_ok()
                {
                    self.store.return_reader(conn);
                }
            }
        }
        let prev = SNAPSHOT.with(|s| s.borrow_mut().replace((key, conn)));
        let _restore = Restore {
            store: self,
            prev: Some(prev),
        };
        f();
    }
}

/// The roster beside its import's write path (`MembersSink`, `insert_members` above).
impl RosterStore for SqliteStore {
    fn roster_units(&self, round_id: i64) -> Result<Vec<RosterUnit>> {
        self.read(|c| {
            let mut units: BTreeMap<i64, RosterUnit> = BTreeMap::new();
            let mut stmt = c.prepare_cached("SELECT id, name FROM units WHERE round_id = ?1 ORDER BY id")?;
            for r in stmt.query_map([round_id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))? {
                let (id, name) = r?;
                units.insert(id, RosterUnit { id, name, phones: BTreeSet::new(), two_deputies_one_member: 0, in_use: false });
            }
            let mut stmt = c.prepare_cached(
                "SELECT m.unit_id, m.phone, m.category, m.id FROM members m JOIN units u ON u.id = m.unit_id WHERE u.round_id = ?1 AND m.phone IS NOT NULL",
            )?;
            for r in stmt.query_map([round_id], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, strict(r, 2, "members", "category", r.get(3)?, MemberCategory::from_stored_label)?))
            })? {
                let (unit, phone, category) = r?;
                if let Some(u) = units.get_mut(&unit) {
                    u.phones.insert(phone);
                    u.two_deputies_one_member += usize::from(category.is_two_deputies_one_member());
                }
            }
            for id in units_in_use(c, round_id)? {
                if let Some(u) = units.get_mut(&id) {
                    u.in_use = true;
                }
            }
            Ok(units.into_values().collect())
        })
    }

    fn add_members(
        &self,
        round: &RoundRecord,
        members: &[NewMember],
        replace_units: &[i64],
        actor: &str,
    ) -> Result<usize> {
        // The streamed import's path, fed the whole list at once.
        let stored = self.add_members_streamed(round, actor, &mut |sink| {
            for unit in replace_units {
                sink.replace_panel(*unit)?;
            }
            sink.add(members)?;
            Ok(true)
        })?;
        Ok(stored.unwrap_or(0))
    }

    fn add_members_streamed(
        &self,
        round: &RoundRecord,
        actor: &str,
        feed: &mut dyn FnMut(&mut dyn MemberSink) -> Result<bool>,
    ) -> Result<Option<usize>> {
        // Without foreign-key enforcement: it cost a lookup of the unit and of each table that
        // refers to members for every row; the import checks its units itself (`roster_write`).
        let out = self.writer.write_without_foreign_keys(|tx| {
            tx.pragma_update(None, "cache_size", -ROSTER_CACHE_KIB)?;
            let out = import_members(tx, round, actor, feed);
            if let Err(e) = tx.pragma_update(None, "cache_size", -WRITER_CACHE_KIB) {
                tracing::warn!(error = %e, "could not shrink the writer's page cache after a roster import");
            }
            out
        });
        self.after_write();
        out
    }

    fn members(&self, round_id: i64, unit_id: Option<i64>) -> Result<Vec<MemberRecord>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT m.id, m.unit_id, u.name, m.name, m.phone, m.phone_alt, m.category, m.organization, m.note
                 FROM members m JOIN units u ON u.id = m.unit_id
                 WHERE u.round_id = ?1 AND (?2 IS NULL OR u.id = ?2) ORDER BY u.id, m.id",
            )?;
            let rows = stmt.query_map(params![round_id, unit_id], member_from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }
}

/// Units of a round whose panel is in use: planned (members hold call assignments, which
/// refer to them) or called. Their panels cannot be replaced. Before the call engine's tables
/// exist no unit is in use.
fn units_in_use(c: &Connection, round_id: i64) -> Result<BTreeSet<i64>> {
    let has_attempts: bool = c.query_row(
        "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'attempts')",
        [],
        |r| r.get(0),
    )?;
    if !has_attempts {
        return Ok(BTreeSet::new());
    }
    let mut stmt = c.prepare_cached(
        "SELECT m.unit_id FROM attempts a JOIN members m ON m.id = a.member_id JOIN units u ON u.id = m.unit_id WHERE u.round_id = ?1
         UNION
         SELECT m.unit_id FROM assignments s JOIN members m ON m.id = s.member_id JOIN units u ON u.id = m.unit_id WHERE u.round_id = ?1",
    )?;
    let ids = stmt
        .query_map([round_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache_kib(c: &Connection) -> Result<i64> {
        Ok(-c.query_row("PRAGMA cache_size", [], |r| r.get::<_, i64>(0))?)
    }

    /// The bundled SQLite is built without memory statistics (`.cargo/config.toml` sets
    /// `LIBSQLITE3_FLAGS`): a build that lost the flag fails here.
    #[test]
    fn the_bundled_sqlite_keeps_no_memory_statistics() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("options.db")).unwrap();
        let options: Vec<String> = store
            .read(|c| {
                let mut stmt = c.prepare("PRAGMA compile_options")?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .unwrap();
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "compile options: {options:?}"
        );
    }

    #[test]
    fn bulk_writes_get_the_large_cache_and_leave_the_writer_with_the_small_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("cache.db")).unwrap();
        assert_eq!(store.write(cache_kib).unwrap(), WRITER_CACHE_KIB);
        let during = store.write_bulk(cache_kib).unwrap();
        assert_eq!(during, BULK_CACHE_KIB);
        assert_eq!(store.write(cache_kib).unwrap(), WRITER_CACHE_KIB);
        // A bulk write that fails (a bad row rolls the import back) shrinks the cache too.
        let failed: Result<()> =
            store.write_bulk(|_| Err(StorageError::Conflict("bad row".into())));
        assert!(failed.is_err());
        assert_eq!(store.write(cache_kib).unwrap(), WRITER_CACHE_KIB);
    }
}
