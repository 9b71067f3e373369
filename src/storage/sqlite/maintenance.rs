//! SQLite-specific maintenance: online backup, WAL checkpoint, the purge's file rewrite and
//! the schema version, as inherent methods of [`SqliteStore`] (a PostgreSQL backend has its
//! own tools for each: `pg_dump`, `VACUUM`, its own migrations); and [`MaintenanceStore`] on
//! SQLite: `integrity_check` and `foreign_key_check` beside the checks every backend runs
//! (`storage/maintenance.rs`), and rebuilding the queue (a derived index) from the attempts.

use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use super::{SqliteStore, calls::refresh_queue};
use crate::storage::maintenance::{
    BAD_CATEGORIES, CheckReport, INVARIANTS, MaintenanceStore, REBUILD_TALLIES,
    add_invariant_problems, bad_category_problem, check_stored_rounds,
};
use crate::storage::{Result, RoundStore, StorageError};

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
}

impl MaintenanceStore for SqliteStore {
    fn check(&self) -> Result<CheckReport> {
        let mut report = self.read(|c| {
            let mut r = CheckReport::default();
            let mut stmt = c.prepare("PRAGMA integrity_check")?;
            r.integrity = stmt
                .query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut stmt = c.prepare("PRAGMA foreign_key_check")?;
            r.foreign_keys = stmt.query_map([], |_| Ok(()))?.count();
            let counts = INVARIANTS
                .iter()
                .map(|(_, sql)| Ok(c.prepare(sql)?.query_map([], |_| Ok(()))?.count()))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            add_invariant_problems(&mut r, counts);
            let mut stmt = c.prepare(BAD_CATEGORIES)?;
            for row in stmt.query_map([], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
            })? {
                let (id, value) = row?;
                r.problems.push(bad_category_problem(id, value));
            }
            Ok(r)
        })?;
        check_stored_rounds(self, &mut report)?;
        Ok(report)
    }

    fn rebuild_queue(&self, round_key: &str, now: DateTime<Utc>) -> Result<usize> {
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
            tx.execute_batch(REBUILD_TALLIES)?;
            Ok(members.len())
        })
    }
}
