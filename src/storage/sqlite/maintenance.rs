//! SQLite-specific maintenance: online backup, WAL checkpoint, the purge's file rewrite,
//! integrity and invariant checks, rebuilding the queue (a derived index) from the attempts,
//! and the schema version. These are inherent methods of [`SqliteStore`], deliberately not
//! part of the `storage::Store` seam: a PostgreSQL backend has its own tools for each (dumps,
//! `VACUUM`, `amcheck`, its own migrations) and the CLI calls these only on a SQLite file.

use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use super::{SqliteStore, calls::refresh_queue};
use crate::storage::{AuditStore, CallStore, Result, RoundStore, StorageError, ms_to_utc};

/// What `sheping check` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    pub integrity: Vec<String>,
    pub foreign_keys: usize,
    pub problems: Vec<String>,
    /// Entries in the audit chain, or where it breaks.
    pub audit_entries: usize,
    pub audit_break: Option<String>,
    /// Late records (stored after their claim lapsed and another claim or record came in
    /// between): not a fault, listed for the supervisor to review.
    pub late_records: Vec<String>,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.integrity == ["ok"]
            && self.foreign_keys == 0
            && self.problems.is_empty()
            && self.audit_break.is_none()
    }
}

/// Invariants of the engine, each a query that must return no rows (with a description).
const INVARIANTS: &[(&str, &str)] = &[
    (
        "queue rows without an assignment",
        "SELECT q.member_id FROM queue q LEFT JOIN assignments s ON s.member_id = q.member_id WHERE s.member_id IS NULL",
    ),
    (
        "queue rows whose operator differs from the assignment",
        "SELECT q.member_id FROM queue q JOIN assignments s ON s.member_id = q.member_id WHERE s.operator_id != q.operator_id",
    ),
    (
        "members with a complete and a later attempt",
        "SELECT a.member_id FROM attempts a JOIN attempts c ON c.member_id = a.member_id AND c.outcome = 'complete'
         WHERE a.recorded_at > c.recorded_at AND a.late = 0",
    ),
    (
        "final (completed) members still in the queue",
        "SELECT q.member_id FROM queue q JOIN attempts a ON a.member_id = q.member_id AND a.outcome = 'complete'",
    ),
    // A late record may follow or repeat a complete (the interview happened; results count
    // the first complete only): those are listed as late records, not as faults.
    (
        "members with two completes",
        "SELECT member_id FROM attempts WHERE outcome = 'complete' AND late = 0 GROUP BY member_id HAVING COUNT(*) > 1",
    ),
    (
        "attempt numbers with gaps",
        "SELECT member_id FROM attempts GROUP BY member_id HAVING MAX(attempt_no) != COUNT(*)",
    ),
    (
        "completes without all answers",
        "SELECT id FROM attempts WHERE outcome = 'complete' AND (answers IS NULL OR answers LIKE '%null%')",
    ),
    (
        "operators holding two claims in a queue row",
        "SELECT claim_token FROM queue WHERE claim_token IS NOT NULL GROUP BY claim_token HAVING COUNT(*) > 1",
    ),
    (
        "queue tallies that differ from the queue",
        "SELECT t.round_id, t.operator_id, t.priority FROM queue_tally t
         LEFT JOIN (SELECT round_id, operator_id, priority, COUNT(*) AS n FROM queue
                    GROUP BY round_id, operator_id, priority) q
           ON q.round_id = t.round_id AND q.operator_id = t.operator_id AND q.priority = t.priority
         WHERE t.n != COALESCE(q.n, 0)
         UNION ALL
         SELECT q.round_id, q.operator_id, q.priority FROM queue q
         LEFT JOIN queue_tally t
           ON t.round_id = q.round_id AND t.operator_id = q.operator_id AND t.priority = q.priority
         WHERE t.round_id IS NULL GROUP BY q.round_id, q.operator_id, q.priority",
    ),
    (
        "operator tallies that differ from the attempts",
        "SELECT t.round_id FROM operator_tally t
         LEFT JOIN (SELECT u.round_id, a.operator_id, a.recorded_at / 900000 AS quarter, COUNT(*) AS n,
                           SUM(a.outcome = 'complete') AS c
                    FROM attempts a JOIN members m ON m.id = a.member_id JOIN units u ON u.id = m.unit_id
                    GROUP BY 1, 2, 3) x
           ON x.round_id = t.round_id AND x.operator_id = t.operator_id AND x.quarter = t.quarter
         WHERE t.attempts != COALESCE(x.n, 0) OR t.completes != COALESCE(x.c, 0)
         UNION ALL
         SELECT u.round_id FROM attempts a JOIN members m ON m.id = a.member_id JOIN units u ON u.id = m.unit_id
         LEFT JOIN operator_tally t
           ON t.round_id = u.round_id AND t.operator_id = a.operator_id AND t.quarter = a.recorded_at / 900000
         WHERE t.round_id IS NULL",
    ),
    (
        "assignments with duplicate call numbers",
        "SELECT operator_id, seq FROM assignments GROUP BY operator_id, seq, plan_id HAVING COUNT(*) > 1",
    ),
];

/// A backup recorded in the audit log (`sheping backup`).
#[derive(Debug, Clone, Serialize)]
pub struct BackupRecord {
    pub at_ms: i64,
    pub out: String,
}

/// How a checkpoint went: `complete` when every page of the WAL is in the database file and
/// the WAL is empty (the `.db` alone then holds everything).
#[derive(Debug, Clone, Copy)]
pub struct Checkpoint {
    pub complete: bool,
}

impl SqliteStore {
    /// The schema version stored in the file (SQLite `user_version`).
    pub fn user_version(&self) -> Result<i64> {
        self.read(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
    }

    /// Copies every committed page from the WAL into the database file and empties the WAL
    /// (`wal_checkpoint(TRUNCATE)`), waiting at most `wait` for readers of other processes.
    /// Idle reader connections of this store are closed first.
    pub fn checkpoint(&self, wait: std::time::Duration) -> Result<Checkpoint> {
        self.readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.writer.outside_tx(|c| {
            c.busy_timeout(wait)?;
            let out = c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            });
            c.busy_timeout(std::time::Duration::from_secs(10))?;
            let (busy, log, done) = out?;
            // Not in WAL mode (log = -1): nothing to copy.
            Ok(Checkpoint {
                complete: busy == 0 && (log == -1 || log == done),
            })
        })
    }

    /// Rewrites the database file without free pages or freed cells (`VACUUM`) and empties
    /// the WAL, so deleted content is in neither file. False when another process kept the
    /// WAL from being emptied.
    pub(crate) fn scrub(&self) -> Result<bool> {
        let first = self.checkpoint(std::time::Duration::from_secs(10))?;
        self.writer.outside_tx(|c| Ok(c.execute_batch("VACUUM")?))?;
        let last = self.checkpoint(std::time::Duration::from_secs(10))?;
        Ok(first.complete && last.complete)
    }

    /// Backups recorded in the audit log at or after `since_ms`, oldest first.
    pub fn backups_since(&self, since_ms: i64) -> Result<Vec<BackupRecord>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT at, detail FROM audit_log WHERE action = 'backup' AND at >= ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map([since_ms], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (at_ms, detail) = row?;
                let path = serde_json::from_str::<serde_json::Value>(&detail)
                    .ok()
                    .and_then(|v| v.get("out").and_then(|o| o.as_str()).map(str::to_string))
                    .unwrap_or(detail);
                out.push(BackupRecord { at_ms, out: path });
            }
            Ok(out)
        })
    }

    /// Copies the database to `out` with SQLite's online backup while the service keeps
    /// writing; the copy is a consistent snapshot.
    pub fn backup_to(&self, out: &Path) -> Result<()> {
        if out.exists() {
            return Err(StorageError::Conflict(format!(
                "{} already exists; choose a new file",
                out.display()
            )));
        }
        let src = Connection::open_with_flags(self.path(), OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let mut dst = Connection::open(out)?;
        {
            let backup = rusqlite::backup::Backup::new(&src, &mut dst)?;
            // One step copies everything under a single read transaction: a consistent
            // snapshot in WAL mode, without blocking writers.
            backup.step(-1)?;
        }
        dst.pragma_update(None, "journal_mode", "DELETE")?;
        let ok: String = dst.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if ok != "ok" {
            return Err(StorageError::Conflict(format!(
                "backup failed its integrity check: {ok}"
            )));
        }
        Ok(())
    }

    /// Integrity, foreign keys, engine invariants and the audit chain.
    pub fn check(&self) -> Result<CheckReport> {
        let mut report = self.read(|c| {
            let mut r = CheckReport::default();
            let mut stmt = c.prepare("PRAGMA integrity_check")?;
            r.integrity = stmt
                .query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut stmt = c.prepare("PRAGMA foreign_key_check")?;
            r.foreign_keys = stmt.query_map([], |_| Ok(()))?.count();
            for (what, sql) in INVARIANTS {
                let n = c.prepare(sql)?.query_map([], |_| Ok(()))?.count();
                if n > 0 {
                    r.problems.push(format!("{what}: {n}"));
                }
            }
            // Categories stored before migration 013's triggers: each row named, as the
            // readers would refuse it (outcomes are named below, against the survey).
            let mut stmt = c.prepare(
                "SELECT id, category FROM members
                 WHERE category NOT IN ('党代表', '人大代表', '政协委员', '服务对象') ORDER BY id",
            )?;
            for row in stmt.query_map([], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
            })? {
                let (id, value) = row?;
                r.problems.push(
                    crate::storage::BadStoredValue {
                        table: "members",
                        row_id: id,
                        column: "category",
                        value,
                    }
                    .to_string(),
                );
            }
            Ok(r)
        })?;
        // Every stored attempt against its round's survey, and the late records to review.
        let now = Utc::now();
        for summary in self.rounds()? {
            let round = summary.round;
            let field = self.field_data(&round, now)?;
            for (id, problem) in &field.bad_attempts {
                report
                    .problems
                    .push(format!("轮次 {} 的拨打记录 #{id}: {problem}", round.key));
            }
            for a in field.attempts.iter().filter(|a| a.late) {
                report.late_records.push(format!(
                    "轮次 {} 的拨打记录 #{}: 代表 {} · {} · 话务员 {} · {}",
                    round.key,
                    a.id,
                    a.member_id,
                    a.outcome.label(),
                    a.operator,
                    ms_to_utc(a.recorded_at_ms)
                        .with_timezone(&round.survey.timezone())
                        .format("%Y-%m-%d %H:%M:%S"),
                ));
            }
        }
        match self.verify_audit()? {
            Ok(n) => report.audit_entries = n,
            Err(e) => report.audit_break = Some(e.to_string()),
        }
        Ok(report)
    }

    /// Recomputes every queue row of a round from the attempts (after a crash of a version
    /// with a bug, or a manual fix); claims are dropped.
    pub fn rebuild_queue(&self, round_key: &str, now: DateTime<Utc>) -> Result<usize> {
        let round = self.round(round_key)?;
        self.write_bulk(|tx| {
            tx.execute("DELETE FROM queue WHERE round_id = ?1", [round.id])?;
            let members: Vec<i64> = tx
                .prepare("SELECT s.member_id FROM assignments s JOIN members m ON m.id = s.member_id JOIN units u ON u.id = m.unit_id WHERE u.round_id = ?1")?
                .query_map([round.id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            for m in &members {
                refresh_queue(tx, &round, *m, now, true)?;
            }
            rebuild_tallies(tx)?;
            Ok(members.len())
        })
    }
}

/// Counts the tallies again from the queue and the attempts (the triggers only add and
/// subtract, so a tally changed behind sheping's back stays wrong until this runs).
fn rebuild_tallies(tx: &Connection) -> Result<()> {
    tx.execute_batch(
        "DELETE FROM queue_tally;
         INSERT INTO queue_tally (round_id, operator_id, priority, n)
         SELECT round_id, operator_id, priority, COUNT(*) FROM queue GROUP BY 1, 2, 3;
         DELETE FROM operator_tally;
         INSERT INTO operator_tally (round_id, operator_id, quarter, attempts, completes)
         SELECT u.round_id, a.operator_id, a.recorded_at / 900000, COUNT(*), SUM(a.outcome = 'complete')
         FROM attempts a JOIN members m ON m.id = a.member_id JOIN units u ON u.id = m.unit_id
         GROUP BY 1, 2, 3;",
    )?;
    Ok(())
}
