//! [`RoundStore`] on PostgreSQL: rounds, their units, the purge, and the link to a previous
//! round. The SQL is `sqlite/rounds.rs`'s in PostgreSQL's dialect; the helpers every
//! aggregate's writes share (the lock check, the audit append) are here too.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use deadpool_postgres::GenericClient;

use super::PgBackend;
use crate::domain::survey::Survey;
use crate::domain::unit::{NewUnit, UnitKind};
use crate::storage::*;

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Refuses a write to a locked round, inside the writing transaction. `FOR SHARE`: a lock
/// being taken by another instance waits for this write to end, and this write waits for a
/// lock being taken (then sees it), so nothing is written to a round after it was locked.
pub(crate) async fn ensure_unlocked<C: GenericClient>(tx: &C, round_id: i64) -> Result<()> {
    let row = tx
        .query_opt(
            "SELECT key, locked_at FROM rounds WHERE id = $1 FOR SHARE",
            &[&round_id],
        )
        .await?;
    let Some(row) = row else {
        return Err(StorageError::NotFound(format!(
            "没有评估轮次(编号 {round_id})(用 `sheping round list` 查看已有轮次)"
        )));
    };
    let (key, locked): (String, Option<i64>) = (row.get(0), row.get(1));
    if locked.is_some() {
        Err(StorageError::Locked(key))
    } else {
        Ok(())
    }
}

/// Appends `event` to the audit chain inside `tx` (call it last in the transaction).
pub(crate) async fn append_audit<C: GenericClient>(tx: &C, event: &AuditEvent<'_>) -> Result<()> {
    super::audit::append(
        tx,
        event.actor,
        event.action,
        event.round_key,
        &event.detail.to_string(),
    )
    .await?;
    Ok(())
}

/// A constraint violation (unique, check, foreign key) as a conflict with `message`, as the
/// SQLite store words it; anything else as usual.
pub(crate) fn conflict_on_violation(
    e: tokio_postgres::Error,
    message: impl FnOnce() -> String,
) -> StorageError {
    match e.as_db_error().map(|d| d.code().code()) {
        Some("23505" | "23514" | "23503" | "23P01") => StorageError::Conflict(message()),
        _ => StorageError::from(e),
    }
}

/// How long the purge waits for snapshots older than it before rewriting the tables.
const PURGE_WAIT_STEP: std::time::Duration = std::time::Duration::from_millis(100);
const PURGE_WAIT_STEPS: usize = 300;

/// The columns [`round_from_row`] reads, in its order.
const ROUND_COLUMNS: &str = "r.id, r.key, r.title, r.survey_toml, r.survey_source, r.field_start, r.field_end, r.locked_at, r.created_at";

fn round_from_row(row: &tokio_postgres::Row) -> Result<RoundRecord> {
    let key: String = row.get(1);
    let toml: String = row.get(3);
    let survey = parsed_survey(&key, toml)?;
    let date = |s: Option<String>| s.and_then(|s| NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok());
    Ok(RoundRecord {
        id: row.get(0),
        key,
        title: row.get(2),
        survey,
        survey_source: row.get(4),
        field_start: date(row.get(5)),
        field_end: date(row.get(6)),
        locked_at_ms: row.get(7),
        created_at_ms: row.get(8),
    })
}

/// Parsed survey definitions by their TOML text, as the SQLite store keeps them: rounds are
/// read on most requests and parsing the TOML cost more than the read. Keyed by the text, so
/// an entry cannot go stale (a stored definition never changes); shared by every backend of
/// the process, a handful of rounds.
pub(super) fn parsed_survey(round_key: &str, toml: String) -> Result<Arc<Survey>> {
    static SURVEYS: std::sync::LazyLock<std::sync::Mutex<HashMap<String, Arc<Survey>>>> =
        std::sync::LazyLock::new(Default::default);
    if let Some(s) = SURVEYS.lock().unwrap_or_else(|p| p.into_inner()).get(&toml) {
        return Ok(Arc::clone(s));
    }
    let survey =
        Arc::new(
            Survey::from_toml_str(&toml).map_err(|e| StorageError::CorruptSurvey {
                round: round_key.to_owned(),
                error: e.to_string(),
            })?,
        );
    let mut cache = SURVEYS.lock().unwrap_or_else(|p| p.into_inner());
    // The bound only guards against a pathological caller.
    if cache.len() >= 64 {
        cache.clear();
    }
    cache.insert(toml, Arc::clone(&survey));
    Ok(survey)
}

fn round_not_found(key: &str) -> StorageError {
    StorageError::NotFound(format!(
        "没有评估轮次 `{key}`(用 `sheping round list` 查看已有轮次)"
    ))
}

fn count(row: &tokio_postgres::Row, idx: usize) -> usize {
    row.get::<_, i64>(idx).max(0) as usize
}

impl RoundStore for PgBackend {
    fn create_round(&self, round: &NewRound, actor: &str) -> Result<RoundRecord> {
        self.block_on(async {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            let exists: bool = tx
                .query_one(
                    "SELECT EXISTS(SELECT 1 FROM rounds WHERE key = $1)",
                    &[&round.key],
                )
                .await?
                .get(0);
            if exists {
                return Err(StorageError::Conflict(format!(
                    "评估轮次 `{}` 已存在",
                    round.key
                )));
            }
            let fmt = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
            tx.execute(
                "INSERT INTO rounds (key, title, survey_toml, survey_source, field_start, field_end, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &round.key,
                    &round.title,
                    &round.survey.to_toml_string(),
                    &round.survey_source,
                    &round.field.map(|f| fmt(f.0)),
                    &round.field.map(|f| fmt(f.1)),
                    &now_ms(),
                ],
            )
            .await
            // Two instances creating the same key at once: the second meets the unique key.
            .map_err(|e| conflict_on_violation(e, || format!("评估轮次 `{}` 已存在", round.key)))?;
            append_audit(
                &tx,
                &AuditEvent {
                    actor,
                    action: "round.create",
                    round_key: Some(&round.key),
                    detail: serde_json::json!({ "title": round.title, "survey": round.survey_source }),
                },
            )
            .await?;
            tx.commit().await?;
            self.caches.generations.rounds.bump();
            Ok(())
        })?;
        self.round(&round.key)
    }

    fn rounds(&self) -> Result<Vec<RoundSummary>> {
        self.read(async |c| {
            let rows = c
                .query(
                    &format!(
                        "SELECT {ROUND_COLUMNS},
                            (SELECT COUNT(*) FROM units u WHERE u.round_id = r.id),
                            (SELECT COUNT(*) FROM members m JOIN units u ON m.unit_id = u.id WHERE u.round_id = r.id)
                         FROM rounds r ORDER BY r.created_at DESC, r.id DESC"
                    ),
                    &[],
                )
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(RoundSummary {
                        round: round_from_row(r)?,
                        units: count(r, 9),
                        members: count(r, 10),
                    })
                })
                .collect()
        })
    }

    fn round(&self, key: &str) -> Result<RoundRecord> {
        // PostgreSQL's text cannot hold NUL, and refuses it as a parameter (a 500 for a URL
        // with `%00`): no round has such a key, as SQLite answers.
        if key.contains('\0') {
            return Err(round_not_found(key));
        }
        self.read(async |c| {
            let row = c
                .query_opt(
                    &format!("SELECT {ROUND_COLUMNS} FROM rounds r WHERE r.key = $1"),
                    &[&key],
                )
                .await?;
            match row {
                Some(r) => round_from_row(&r),
                None => Err(round_not_found(key)),
            }
        })
    }

    fn set_field_period(
        &self,
        round: &RoundRecord,
        start: NaiveDate,
        end: NaiveDate,
        actor: &str,
    ) -> Result<()> {
        self.block_on(async {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            ensure_unlocked(&tx, round.id).await?;
            tx.execute(
                "UPDATE rounds SET field_start = $1, field_end = $2 WHERE id = $3",
                &[
                    &start.format("%Y-%m-%d").to_string(),
                    &end.format("%Y-%m-%d").to_string(),
                    &round.id,
                ],
            )
            .await?;
            append_audit(
                &tx,
                &AuditEvent {
                    actor,
                    action: "round.field",
                    round_key: Some(&round.key),
                    detail: serde_json::json!({
                        "before": [round.field_start, round.field_end],
                        "after": [start, end],
                    }),
                },
            )
            .await?;
            tx.commit().await?;
            self.caches.generations.rounds.bump();
            Ok(())
        })
    }

    fn lock_round(&self, round: &RoundRecord, actor: &str) -> Result<()> {
        self.block_on(async {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            ensure_unlocked(&tx, round.id).await?;
            tx.execute(
                "UPDATE rounds SET locked_at = $1, locked_by = $2 WHERE id = $3",
                &[&now_ms(), &actor, &round.id],
            )
            .await?;
            // Claims end with the lock: nothing more can be recorded.
            tx.execute(
                "UPDATE queue SET claim_token = NULL, claimed_at = NULL, claim_expires = NULL WHERE round_id = $1",
                &[&round.id],
            )
            .await?;
            append_audit(
                &tx,
                &AuditEvent {
                    actor,
                    action: "round.lock",
                    round_key: Some(&round.key),
                    detail: serde_json::json!({}),
                },
            )
            .await?;
            tx.commit().await?;
            self.caches.generations.rounds.bump();
            Ok(())
        })
    }

    /// The rows as on SQLite, then `VACUUM FULL` of the two tables that held the values: it
    /// writes them anew without the dead row versions the updates left (PostgreSQL keeps
    /// the old version of an updated row until a vacuum). What PostgreSQL's write-ahead log
    /// and its archive still hold ages out with them (docs/deploy.md).
    fn purge_contacts(&self, round: &RoundRecord, actor: &str) -> Result<usize> {
        let n = self.block_on(async {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            let locked: Option<i64> = tx
                .query_opt(
                    "SELECT locked_at FROM rounds WHERE id = $1 FOR UPDATE",
                    &[&round.id],
                )
                .await?
                .ok_or_else(|| round_not_found(&round.key))?
                .get(0);
            if locked.is_none() {
                return Err(StorageError::Conflict(format!(
                    "轮次 {} 尚未锁定:先锁定轮次(结果定稿)再清除联系方式",
                    round.key
                )));
            }
            // Comments the operators typed may name the respondent or a number: masked for
            // good, as exports and feedback pages already show them.
            let rows = tx
                .query(
                    "SELECT a.id, a.comment, m.name, m.phone, m.phone_alt FROM attempts a
                     JOIN members m ON m.id = a.member_id JOIN units u ON u.id = m.unit_id
                     WHERE u.round_id = $1 AND a.comment IS NOT NULL",
                    &[&round.id],
                )
                .await?;
            for r in &rows {
                let (id, comment): (i64, String) = (r.get(0), r.get(1));
                let personal: Vec<String> = [
                    r.get::<_, Option<String>>(2),
                    r.get(3),
                    r.get(4),
                ]
                .into_iter()
                .flatten()
                .collect();
                let refs: Vec<&str> = personal.iter().map(String::as_str).collect();
                let masked = crate::domain::personal::scrub_comment(&comment, &refs);
                if masked != comment {
                    tx.execute(
                        "UPDATE attempts SET comment = $2 WHERE id = $1",
                        &[&id, &masked],
                    )
                    .await?;
                }
            }
            let n = tx
                .execute(
                    "UPDATE members SET name = NULL, phone = NULL, phone_alt = NULL, organization = NULL, note = NULL
                     WHERE unit_id IN (SELECT id FROM units WHERE round_id = $1)
                       AND (name IS NOT NULL OR phone IS NOT NULL OR phone_alt IS NOT NULL OR organization IS NOT NULL OR note IS NOT NULL)",
                    &[&round.id],
                )
                .await? as usize;
            append_audit(
                &tx,
                &AuditEvent {
                    actor,
                    action: "round.purge_contacts",
                    round_key: Some(&round.key),
                    detail: serde_json::json!({ "members": n }),
                },
            )
            .await?;
            // This transaction's id, as `xid` (the low 32 bits), to wait for older snapshots.
            let xid: String = tx
                .query_one("SELECT (pg_current_xact_id()::text::numeric % 4294967296)::text", &[])
                .await?
                .get(0);
            tx.commit().await?;
            self.caches.generations.rounds.bump();
            // VACUUM FULL keeps a row version a running transaction may still see, so one that
            // began before the purge (another instance's long read or import) would keep the old
            // names and numbers in the files. Wait for those to end (bounded), then rewrite the
            // tables. Every session of the server counts, not only this database's: measured,
            // a long import in another database of the cluster kept them too.
            let mut settled = false;
            for _ in 0..PURGE_WAIT_STEPS {
                let older: i64 = c
                    .query_one(
                        "SELECT COUNT(*) FROM pg_stat_activity
                         WHERE pid <> pg_backend_pid()
                           AND (age(backend_xmin) >= age($1::text::xid)
                                OR age(backend_xid) >= age($1::text::xid))",
                        &[&xid],
                    )
                    .await?
                    .get(0);
                if older == 0 {
                    settled = true;
                    break;
                }
                tokio::time::sleep(PURGE_WAIT_STEP).await;
            }
            // Outside any transaction, one statement each (VACUUM cannot run in a transaction
            // block, and several statements in one query string make one).
            c.batch_execute("VACUUM FULL members").await?;
            c.batch_execute("VACUUM FULL attempts").await?;
            Ok((n, settled))
        })?;
        match n {
            (n, true) => Ok(n),
            (n, false) => Err(StorageError::Conflict(format!(
                "已清除轮次 {} 中 {n} 名代表的姓名和联系方式,但数据库中仍有清除前开始的读取(如另一个实例上的长时间查询),\
                 旧数据可能仍留在数据表文件中:稍后再运行一次 `sheping round purge-contacts {}`",
                round.key, round.key
            ))),
        }
    }

    fn units(&self, round_id: i64) -> Result<Vec<UnitRecord>> {
        self.read(async |c| {
            let rows = c
                .query(
                    "SELECT u.id, u.name, u.kind, u.sector, u.code,
                            COUNT(m.id),
                            COUNT(m.id) FILTER (WHERE m.category IN ('党代表', '人大代表', '政协委员'))
                     FROM units u LEFT JOIN members m ON m.unit_id = u.id
                     WHERE u.round_id = $1 GROUP BY u.id ORDER BY u.id",
                    &[&round_id],
                )
                .await?;
            rows.iter()
                .map(|r| {
                    let id: i64 = r.get(0);
                    let kind: String = r.get(2);
                    Ok(UnitRecord {
                        id,
                        name: r.get(1),
                        kind: UnitKind::from_stored_label(&kind).ok_or_else(|| {
                            BadStoredValue {
                                table: "units",
                                row_id: id,
                                column: "kind",
                                value: kind.clone(),
                            }
                        })?,
                        sector: r.get(3),
                        code: r.get(4),
                        panel: count(r, 5),
                        two_deputies_one_member: count(r, 6),
                    })
                })
                .collect()
        })
    }

    fn add_units(&self, round: &RoundRecord, units: &[NewUnit], actor: &str) -> Result<usize> {
        self.block_on(async {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            ensure_unlocked(&tx, round.id).await?;
            let ins = tx
                .prepare(
                    "INSERT INTO units (round_id, name, kind, sector, code) VALUES ($1, $2, $3, $4, $5)",
                )
                .await?;
            for u in units {
                tx.execute(&ins, &[&round.id, &u.name, &u.kind.label(), &u.sector, &u.code])
                    .await
                    .map_err(|e| {
                        conflict_on_violation(e, || format!("单位“{}”已在本轮评估中", u.name))
                    })?;
            }
            append_audit(
                &tx,
                &AuditEvent {
                    actor,
                    action: "units.import",
                    round_key: Some(&round.key),
                    detail: serde_json::json!({ "units": units.len() }),
                },
            )
            .await?;
            tx.commit().await?;
            self.caches.generations.rounds.bump();
            Ok(units.len())
        })
    }

    fn set_previous_round(
        &self,
        round: &RoundRecord,
        previous: &RoundRecord,
        actor: &str,
    ) -> Result<()> {
        if round.id == previous.id {
            return Err(StorageError::Conflict(format!(
                "轮次 {} 不能以自身为上一轮",
                round.key
            )));
        }
        self.block_on(async {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            tx.execute(
                "INSERT INTO round_previous (round_id, previous_round_id) VALUES ($1, $2)
                 ON CONFLICT (round_id) DO UPDATE SET previous_round_id = EXCLUDED.previous_round_id",
                &[&round.id, &previous.id],
            )
            .await?;
            append_audit(
                &tx,
                &AuditEvent {
                    actor,
                    action: "round.previous",
                    round_key: Some(&round.key),
                    detail: serde_json::json!({ "previous": previous.key }),
                },
            )
            .await?;
            tx.commit().await?;
            self.caches.generations.rounds.bump();
            Ok(())
        })
    }

    fn previous_round(&self, round_id: i64) -> Result<Option<String>> {
        self.read(async |c| {
            Ok(c.query_opt(
                "SELECT r.key FROM round_previous p JOIN rounds r ON r.id = p.previous_round_id
                 WHERE p.round_id = $1",
                &[&round_id],
            )
            .await?
            .map(|r| r.get(0)))
        })
    }

    fn round_counts(&self, round: &RoundRecord) -> Result<crate::domain::round_path::RoundCounts> {
        let min = round.survey.scoring.min_completes;
        self.read(async |c| {
            let r = c
                .query_one(COUNTS, &[&round.id, &i64::from(min), &round.key])
                .await?;
            Ok(crate::domain::round_path::RoundCounts {
                units: count(&r, 0),
                units_with_members: count(&r, 1),
                members: count(&r, 2),
                members_unassigned: count(&r, 3),
                members_with_contacts: count(&r, 4),
                operators: count(&r, 5),
                exclusions: count(&r, 6),
                plans: count(&r, 7),
                attempts: count(&r, 8),
                completes: count(&r, 9),
                units_with_completes: count(&r, 10),
                units_short: count(&r, 11),
                min_completes: min,
                units_with_onsite: count(&r, 12),
                locked: r.get::<_, Option<bool>>(13).unwrap_or(false),
                contacts_purged: r.get(14),
            })
        })
    }
}

/// Every count in one statement (one snapshot), as `sqlite/rounds.rs`'s. Completes are members
/// with an attempt coded AAPOR 1.1, as in the progress tallies.
const COUNTS: &str = "
WITH m AS (
    SELECT m.id, m.unit_id, m.name IS NOT NULL OR m.phone IS NOT NULL OR m.phone_alt IS NOT NULL
           OR m.organization IS NOT NULL OR m.note IS NOT NULL AS contact
    FROM members m JOIN units u ON u.id = m.unit_id WHERE u.round_id = $1
),
done AS (
    SELECT m.unit_id, COUNT(DISTINCT m.id) AS n FROM m JOIN attempts a ON a.member_id = m.id
    WHERE a.aapor_code = '1.1' GROUP BY m.unit_id
)
SELECT
    (SELECT COUNT(*) FROM units WHERE round_id = $1),
    (SELECT COUNT(DISTINCT unit_id) FROM m),
    (SELECT COUNT(*) FROM m),
    (SELECT COUNT(*) FROM m WHERE NOT EXISTS (SELECT 1 FROM assignments s WHERE s.member_id = m.id)
                              AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.member_id = m.id)),
    (SELECT COUNT(*) FROM m WHERE contact),
    (SELECT COUNT(*) FROM users WHERE role = 'operator' AND active = 1),
    (SELECT COUNT(*) FROM operator_exclusions WHERE round_id = $1),
    (SELECT COUNT(*) FROM plans WHERE round_id = $1),
    (SELECT COUNT(*) FROM attempts a JOIN m ON m.id = a.member_id),
    (SELECT COALESCE(SUM(n), 0)::BIGINT FROM done),
    (SELECT COUNT(*) FROM done),
    (SELECT COUNT(*) FROM units u LEFT JOIN done d ON d.unit_id = u.id
     WHERE u.round_id = $1 AND COALESCE(d.n, 0) < $2),
    (SELECT COUNT(*) FROM units u WHERE u.round_id = $1
       AND (EXISTS (SELECT 1 FROM onsite_ballots b WHERE b.unit_id = u.id)
            OR EXISTS (SELECT 1 FROM onsite_scores s WHERE s.unit_id = u.id))),
    (SELECT locked_at IS NOT NULL FROM rounds WHERE id = $1),
    EXISTS (SELECT 1 FROM audit_log WHERE action = 'round.purge_contacts' AND round_key = $3)";
