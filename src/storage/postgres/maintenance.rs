//! [`MaintenanceStore`] on PostgreSQL. PostgreSQL checks its own pages (checksums, its
//! write-ahead log) and enforces every foreign key on every write, so `integrity` reports the
//! catalogue's view instead of SQLite's `integrity_check`: an index left invalid (a failed
//! concurrent build) is named, and `foreign_keys` counts constraints not validated. The
//! engine's invariants, the stored attempts and the audit chain are checked as on SQLite.

use chrono::{DateTime, Utc};

use super::PgBackend;
use super::calls::refresh_queue;
use crate::storage::maintenance::{
    BAD_CATEGORIES, CheckReport, INVARIANTS, MaintenanceStore, REBUILD_TALLIES,
    add_invariant_problems, bad_category_problem, check_stored_rounds,
};
use crate::storage::{Result, RoundStore, StorageError};

impl MaintenanceStore for PgBackend {
    fn check(&self) -> Result<CheckReport> {
        let mut report = self.block_on(async {
            let mut c = self.store().client().await?;
            // One snapshot for every query of the check, as SQLite's read transaction.
            let tx = c
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let mut r = CheckReport::default();
            let invalid = tx
                .query(
                    "SELECT i.indexrelid::regclass::text FROM pg_index i
                     JOIN pg_class t ON t.oid = i.indrelid
                     WHERE t.relnamespace = current_schema()::regnamespace
                       AND NOT (i.indisvalid AND i.indisready)
                     ORDER BY 1",
                    &[],
                )
                .await?;
            r.integrity = if invalid.is_empty() {
                vec!["ok".to_owned()]
            } else {
                invalid
                    .iter()
                    .map(|row| format!("索引 {} 无效,请重建(REINDEX)", row.get::<_, String>(0)))
                    .collect()
            };
            let unvalidated: i64 = tx
                .query_one(
                    "SELECT COUNT(*) FROM pg_constraint
                     WHERE contype = 'f' AND NOT convalidated
                       AND connamespace = current_schema()::regnamespace",
                    &[],
                )
                .await?
                .get(0);
            r.foreign_keys = unvalidated as usize;
            let mut counts = Vec::with_capacity(INVARIANTS.len());
            for (_, sql) in INVARIANTS {
                counts.push(tx.query(*sql, &[]).await?.len());
            }
            add_invariant_problems(&mut r, counts);
            for row in tx.query(BAD_CATEGORIES, &[]).await? {
                r.problems
                    .push(bad_category_problem(row.get(0), row.get(1)));
            }
            tx.commit().await?;
            Ok::<_, StorageError>(r)
        })?;
        check_stored_rounds(self, &mut report)?;
        Ok(report)
    }

    fn rebuild_queue(&self, round_key: &str, now: DateTime<Utc>) -> Result<usize> {
        let round = self.round(round_key)?;
        self.block_on(async {
            let mut c = self.store().client().await?;
            let tx = c.transaction().await?;
            // The queue and its tallies are rewritten whole: no claim or record may interleave.
            tx.batch_execute("LOCK TABLE queue, queue_tally, operator_tally IN EXCLUSIVE MODE")
                .await?;
            tx.execute("DELETE FROM queue WHERE round_id = $1", &[&round.id])
                .await?;
            let members: Vec<i64> = tx
                .query(
                    "SELECT s.member_id FROM assignments s JOIN members m ON m.id = s.member_id
                     JOIN units u ON u.id = m.unit_id WHERE u.round_id = $1 ORDER BY s.member_id",
                    &[&round.id],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            for m in &members {
                refresh_queue(&tx, &round, *m, now, true).await?;
            }
            tx.batch_execute(REBUILD_TALLIES).await?;
            tx.commit().await?;
            Ok(members.len())
        })
    }
}
