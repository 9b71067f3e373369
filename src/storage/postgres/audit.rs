//! The audit chain on PostgreSQL: one linear chain however many instances write at once.
//!
//! SQLite has one writer, so reading the chain's head and appending after it cannot interleave.
//! Here any connection of any instance may append: the read and the append run under a
//! transaction-level advisory lock, so the next writer waits for this transaction to end and
//! then reads the head it left (committed) or the one before (rolled back). The lock is held
//! until the transaction ends: append the entry as the last step of a transaction, so other
//! writers wait as little as possible.

use deadpool_postgres::GenericClient;

use super::PgError;
use crate::domain::audit::{self, AuditEntry, ChainBreak};

/// The key of the advisory lock around every append ("shepingA" in ASCII).
pub const AUDIT_LOCK_KEY: i64 = 0x7368_6570_696e_6741;

/// Appends one entry to the chain, inside the caller's transaction `tx` (the entry stands or
/// falls with the change it records). Its time is the database server's clock, one clock for
/// every instance, read under the lock: times never go backwards along the chain.
pub async fn append<C: GenericClient>(
    tx: &C,
    actor: &str,
    action: &str,
    round_key: Option<&str>,
    detail: &str,
) -> Result<AuditEntry, PgError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK_KEY])
        .await?;
    let row = tx
        .query_one(
            "SELECT (SELECT value FROM meta WHERE key = 'audit_head'),
                    (SELECT COALESCE(MAX(id), 0) + 1 FROM audit_log),
                    (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT",
            &[],
        )
        .await?;
    let prev: Option<String> = row.get(0);
    let prev = prev.unwrap_or_else(|| audit::GENESIS.to_string());
    let (id, at_ms): (i64, i64) = (row.get(1), row.get(2));
    let hash = audit::entry_hash(&prev, id, at_ms, actor, action, round_key, detail);
    tx.execute(
        "INSERT INTO audit_log (id, at, actor, action, round_key, detail, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &id, &at_ms, &actor, &action, &round_key, &detail, &prev, &hash,
        ],
    )
    .await?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('audit_head', $1)
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        &[&hash],
    )
    .await?;
    Ok(AuditEntry {
        id,
        at_ms,
        actor: actor.to_owned(),
        action: action.to_owned(),
        round_key: round_key.map(str::to_owned),
        detail: detail.to_owned(),
        prev_hash: prev,
        hash,
    })
}

/// Every entry, oldest first.
pub async fn entries<C: GenericClient>(client: &C) -> Result<Vec<AuditEntry>, PgError> {
    let rows = client
        .query(
            "SELECT id, at, actor, action, round_key, detail, prev_hash, hash
             FROM audit_log ORDER BY id",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| AuditEntry {
            id: r.get(0),
            at_ms: r.get(1),
            actor: r.get(2),
            action: r.get(3),
            round_key: r.get(4),
            detail: r.get(5),
            prev_hash: r.get(6),
            hash: r.get(7),
        })
        .collect())
}

/// Checks the chain against the head recorded in `meta`, as `sheping audit verify` does on
/// SQLite: the number of entries, or where the chain breaks.
pub async fn verify<C: GenericClient>(client: &C) -> Result<Result<usize, ChainBreak>, PgError> {
    let entries = entries(client).await?;
    let head: Option<String> = client
        .query_opt("SELECT value FROM meta WHERE key = 'audit_head'", &[])
        .await?
        .map(|r| r.get(0));
    Ok(audit::verify_chain(&entries, head.as_deref()))
}
