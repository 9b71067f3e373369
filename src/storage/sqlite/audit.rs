//! [`AuditStore`] on SQLite: the hash-chained log, appended inside each write's transaction
//! (the single writer keeps the chain in one linear order), and its search.

use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, now_ms};
use crate::domain::audit::{self, AuditEntry, ChainBreak};
use crate::storage::*;

/// Appends an audit entry inside the caller's transaction, extending the hash chain.
pub(crate) fn append_audit(tx: &Connection, event: &AuditEvent) -> Result<()> {
    // The chain's head and the next entry's number in one read (every call appends one).
    let (prev, id): (Option<String>, i64) = tx
        .prepare_cached(
            "SELECT (SELECT value FROM meta WHERE key = 'audit_head'),
                    (SELECT COALESCE(MAX(id), 0) + 1 FROM audit_log)",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let prev = prev.unwrap_or_else(|| audit::GENESIS.to_string());
    let at = now_ms();
    let detail = event.detail.to_string();
    let hash = audit::entry_hash(
        &prev,
        id,
        at,
        event.actor,
        event.action,
        event.round_key,
        &detail,
    );
    tx.prepare_cached(
        "INSERT INTO audit_log (id, at, actor, action, round_key, detail, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![id, at, event.actor, event.action, event.round_key, detail, prev, hash])?;
    tx.prepare_cached("INSERT INTO meta (key, value) VALUES ('audit_head', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value")?
        .execute([&hash])?;
    Ok(())
}

impl AuditStore for SqliteStore {
    fn audit(&self, event: &AuditEvent) -> Result<()> {
        self.write(|tx| append_audit(tx, event))
    }

    fn audit_entries(&self, round_key: Option<&str>) -> Result<Vec<AuditEntry>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, at, actor, action, round_key, detail, prev_hash, hash FROM audit_log
                 WHERE ?1 IS NULL OR round_key = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map([round_key], |r| {
                Ok(AuditEntry {
                    id: r.get(0)?,
                    at_ms: r.get(1)?,
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    round_key: r.get(4)?,
                    detail: r.get(5)?,
                    prev_hash: r.get(6)?,
                    hash: r.get(7)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn verify_audit(&self) -> Result<Result<usize, ChainBreak>> {
        let entries = self.audit_entries(None)?;
        let head: Option<String> = self.read(|c| {
            Ok(
                c.query_row("SELECT value FROM meta WHERE key = 'audit_head'", [], |r| {
                    r.get(0)
                })
                .optional()?,
            )
        })?;
        Ok(audit::verify_chain(&entries, head.as_deref()))
    }
    fn search_audit(&self, f: &AuditFilter) -> Result<AuditPage> {
        const WHERE: &str = "WHERE (?1 IS NULL OR action = ?1
                   OR (substr(?1, -1) = '.' AND substr(action, 1, length(?1)) = ?1))
              AND (?2 IS NULL OR actor = ?2)
              AND (?3 IS NULL OR round_key = ?3)";
        self.read(|c| {
            let total: i64 = c
                .prepare_cached(&format!("SELECT COUNT(*) FROM audit_log {WHERE}"))?
                .query_row(params![f.action, f.actor, f.round_key], |r| r.get(0))?;
            let mut stmt = c.prepare_cached(&format!(
                "SELECT id, at, actor, action, round_key, detail, prev_hash, hash FROM audit_log {WHERE}
                 ORDER BY id DESC LIMIT ?4 OFFSET ?5"
            ))?;
            let rows = stmt.query_map(
                params![
                    f.action,
                    f.actor,
                    f.round_key,
                    f.limit as i64,
                    f.offset as i64
                ],
                |r| {
                    Ok(AuditEntry {
                        id: r.get(0)?,
                        at_ms: r.get(1)?,
                        actor: r.get(2)?,
                        action: r.get(3)?,
                        round_key: r.get(4)?,
                        detail: r.get(5)?,
                        prev_hash: r.get(6)?,
                        hash: r.get(7)?,
                    })
                },
            )?;
            Ok(AuditPage {
                entries: rows.collect::<rusqlite::Result<_>>()?,
                total: total as usize,
            })
        })
    }

    fn audit_facets(&self) -> Result<(Vec<String>, Vec<String>)> {
        self.read(|c| {
            let mut actions =
                c.prepare_cached("SELECT DISTINCT action FROM audit_log ORDER BY action")?;
            let actions = actions
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            let mut actors =
                c.prepare_cached("SELECT DISTINCT actor FROM audit_log ORDER BY actor")?;
            let actors = actors
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok((actions, actors))
        })
    }
}
