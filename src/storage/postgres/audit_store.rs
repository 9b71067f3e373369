//! [`AuditStore`] on PostgreSQL: the chain of `audit.rs`, and its search as on SQLite.

use super::PgBackend;
use super::rounds::append_audit;
use crate::domain::audit::{AuditEntry, ChainBreak};
use crate::storage::*;

const ENTRY_COLUMNS: &str = "id, at, actor, action, round_key, detail, prev_hash, hash";

fn entry(r: &tokio_postgres::Row) -> AuditEntry {
    AuditEntry {
        id: r.get(0),
        at_ms: r.get(1),
        actor: r.get(2),
        action: r.get(3),
        round_key: r.get(4),
        detail: r.get(5),
        prev_hash: r.get(6),
        hash: r.get(7),
    }
}

/// SQLite's filter: an exact action, or a prefix ending in '.'; actor and round exact.
const WHERE: &str = "WHERE ($1::TEXT IS NULL OR action = $1
           OR (right($1, 1) = '.' AND left(action, length($1)) = $1))
      AND ($2::TEXT IS NULL OR actor = $2)
      AND ($3::TEXT IS NULL OR round_key = $3)";

impl AuditStore for PgBackend {
    fn audit(&self, event: &AuditEvent) -> Result<()> {
        self.block_on(async {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            append_audit(&tx, event).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn audit_entries(&self, round_key: Option<&str>) -> Result<Vec<AuditEntry>> {
        self.read(async |c| {
            let rows = c
                .query(
                    &format!(
                        "SELECT {ENTRY_COLUMNS} FROM audit_log
                         WHERE $1::TEXT IS NULL OR round_key = $1 ORDER BY id"
                    ),
                    &[&round_key],
                )
                .await?;
            Ok(rows.iter().map(entry).collect())
        })
    }

    fn verify_audit(&self) -> Result<Result<usize, ChainBreak>> {
        self.read(async |c| Ok(super::audit::verify(c).await?))
    }

    fn search_audit(&self, f: &AuditFilter) -> Result<AuditPage> {
        self.read(async |c| {
            // One snapshot for the count and the page.
            let (limit, offset) = (
                i64::try_from(f.limit).unwrap_or(i64::MAX),
                i64::try_from(f.offset).unwrap_or(i64::MAX),
            );
            let total: i64 = c
                .query_one(
                    &format!("SELECT COUNT(*) FROM audit_log {WHERE}"),
                    &[&f.action, &f.actor, &f.round_key],
                )
                .await?
                .get(0);
            let rows = c
                .query(
                    &format!(
                        "SELECT {ENTRY_COLUMNS} FROM audit_log {WHERE}
                         ORDER BY id DESC LIMIT $4 OFFSET $5"
                    ),
                    &[&f.action, &f.actor, &f.round_key, &limit, &offset],
                )
                .await?;
            Ok(AuditPage {
                entries: rows.iter().map(entry).collect(),
                total: total as usize,
            })
        })
    }

    fn audit_facets(&self) -> Result<(Vec<String>, Vec<String>)> {
        self.read(async |c| {
            let actions = c
                .query("SELECT DISTINCT action FROM audit_log ORDER BY action", &[])
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let actors = c
                .query("SELECT DISTINCT actor FROM audit_log ORDER BY actor", &[])
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            Ok((actions, actors))
        })
    }
}
