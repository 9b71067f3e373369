//! [`ResultsStore`] on PostgreSQL: on-site data, evidence and results settings, as
//! `sqlite/results.rs` stores them.

use std::collections::BTreeMap;

use super::PgBackend;
use super::rounds::{append_audit, conflict_on_violation, ensure_unlocked, now_ms};
use crate::domain::evidence::{EvidenceKind, EvidenceRecord};
use crate::storage::results::*;
use crate::storage::*;

fn parse_key(hex_key: &str) -> Option<[u8; 32]> {
    hex::decode(hex_key).ok()?.try_into().ok()
}

impl ResultsStore for PgBackend {
    fn onsite(&self, round_id: i64) -> Result<BTreeMap<i64, StoredOnsite>> {
        self.read(async |c| {
            let mut out: BTreeMap<i64, StoredOnsite> = BTreeMap::new();
            let rows = c
                .query(
                    "SELECT b.unit_id, b.ballot, b.overall, b.levels FROM onsite_ballots b JOIN units u ON u.id = b.unit_id
                     WHERE u.round_id = $1 ORDER BY b.unit_id, b.id",
                    &[&round_id],
                )
                .await?;
            for r in rows {
                let (unit, ballot, overall, levels): (i64, String, i64, String) =
                    (r.get(0), r.get(1), r.get(2), r.get(3));
                let levels: Vec<usize> = serde_json::from_str(&levels).map_err(|e| {
                    StorageError::Conflict(format!(
                        "stored on-site ballot `{ballot}` of unit {unit} is unreadable: {e}"
                    ))
                })?;
                let b = StoredBallot {
                    ballot,
                    levels,
                    overall: overall != 0,
                };
                match out
                    .entry(unit)
                    .or_insert_with(|| StoredOnsite::Ballots(Vec::new()))
                {
                    StoredOnsite::Ballots(v) => v.push(b),
                    StoredOnsite::Direct(_) => {}
                }
            }
            let rows = c
                .query(
                    "SELECT s.unit_id, s.score FROM onsite_scores s JOIN units u ON u.id = s.unit_id
                     WHERE u.round_id = $1 ORDER BY s.unit_id",
                    &[&round_id],
                )
                .await?;
            for r in rows {
                let (unit, score): (i64, f64) = (r.get(0), r.get(1));
                if out.contains_key(&unit) {
                    return Err(StorageError::Conflict(format!(
                        "unit {unit} has both on-site ballots and a direct on-site score"
                    )));
                }
                out.insert(unit, StoredOnsite::Direct(score));
            }
            Ok(out)
        })
    }

    fn store_onsite(&self, round: &RoundRecord, batch: &OnsiteBatch, actor: &str) -> Result<usize> {
        self.block_on(async {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            ensure_unlocked(&tx, round.id).await?;
            for unit in &batch.replace_units {
                tx.execute("DELETE FROM onsite_ballots WHERE unit_id = $1", &[unit])
                    .await?;
                tx.execute("DELETE FROM onsite_scores WHERE unit_id = $1", &[unit])
                    .await?;
            }
            let now = now_ms();
            let ins = tx
                .prepare(
                    "INSERT INTO onsite_ballots (unit_id, ballot, overall, levels, source_line, created_at, created_by)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .await?;
            for (unit, b, line) in &batch.ballots {
                let levels = serde_json::to_string(&b.levels).unwrap_or_default();
                tx.execute(
                    &ins,
                    &[unit, &b.ballot, &i64::from(b.overall), &levels, &(*line as i64), &now, &actor],
                )
                .await
                .map_err(|e| {
                    conflict_on_violation(e, || {
                        format!(
                            "第 {line} 行:选票编号“{}”已导入过(可能是同时进行的另一次导入)",
                            b.ballot
                        )
                    })
                })?;
            }
            let ins = tx
                .prepare(
                    "INSERT INTO onsite_scores (unit_id, score, source_line, created_at, created_by)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .await?;
            for (unit, score, line) in &batch.scores {
                tx.execute(&ins, &[unit, score, &(*line as i64), &now, &actor])
                    .await
                    .map_err(|e| {
                        conflict_on_violation(e, || format!("第 {line} 行:该单位已有现场评价得分"))
                    })?;
            }
            append_audit(
                &tx,
                &AuditEvent {
                    actor,
                    action: "onsite.import",
                    round_key: Some(&round.key),
                    detail: serde_json::json!({
                        "ballots": batch.ballots.len(),
                        "scores": batch.scores.len(),
                        "replaced_units": batch.replace_units,
                    }),
                },
            )
            .await?;
            tx.commit().await?;
            Ok(batch.ballots.len() + batch.scores.len())
        })
    }

    fn evidence(&self, round_id: i64) -> Result<BTreeMap<i64, Vec<EvidenceRecord>>> {
        self.read(async |c| {
            let mut out: BTreeMap<i64, Vec<EvidenceRecord>> = BTreeMap::new();
            let rows = c
                .query(
                    "SELECT e.unit_id, e.kind, e.count, e.volume, e.source, e.note FROM evidence e
                     JOIN units u ON u.id = e.unit_id WHERE u.round_id = $1 ORDER BY e.unit_id, e.kind",
                    &[&round_id],
                )
                .await?;
            for r in rows {
                let (unit, kind, count, volume, source, note): (
                    i64,
                    String,
                    i64,
                    Option<i64>,
                    String,
                    String,
                ) = (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5));
                let kind = EvidenceKind::parse(&kind).ok_or_else(|| {
                    StorageError::Conflict(format!(
                        "stored evidence of unit {unit} has an unknown kind `{kind}`"
                    ))
                })?;
                out.entry(unit).or_default().push(EvidenceRecord {
                    kind,
                    count: u64::try_from(count).unwrap_or(0),
                    volume: volume.and_then(|v| u64::try_from(v).ok()),
                    source,
                    note,
                });
            }
            for records in out.values_mut() {
                records.sort_by_key(|r| r.kind);
            }
            Ok(out)
        })
    }

    fn store_evidence(
        &self,
        round: &RoundRecord,
        batch: &EvidenceBatch,
        actor: &str,
    ) -> Result<usize> {
        self.block_on(async {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            ensure_unlocked(&tx, round.id).await?;
            let mut replaced = 0;
            if batch.replace {
                replaced = tx
                    .execute(
                        "DELETE FROM evidence WHERE unit_id IN (SELECT id FROM units WHERE round_id = $1)",
                        &[&round.id],
                    )
                    .await?;
            }
            let now = now_ms();
            let ins = tx
                .prepare(
                    "INSERT INTO evidence (unit_id, kind, count, volume, source, note, source_line, created_at, created_by)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .await?;
            for (unit, r, line) in &batch.records {
                let count = i64::try_from(r.count).unwrap_or(i64::MAX);
                let volume = r.volume.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
                tx.execute(
                    &ins,
                    &[
                        unit,
                        &r.kind.key(),
                        &count,
                        &volume,
                        &r.source,
                        &r.note,
                        &(*line as i64),
                        &now,
                        &actor,
                    ],
                )
                .await
                .map_err(|e| {
                    conflict_on_violation(e, || {
                        format!(
                            "第 {line} 行:该单位的{}已导入过(可能是同时进行的另一次导入);如需替换,请加 --replace",
                            r.kind.label()
                        )
                    })
                })?;
            }
            append_audit(
                &tx,
                &AuditEvent {
                    actor,
                    action: "evidence.import",
                    round_key: Some(&round.key),
                    detail: serde_json::json!({
                        "records": batch.records.len(),
                        "replace": batch.replace,
                        "replaced_records": replaced,
                    }),
                },
            )
            .await?;
            tx.commit().await?;
            Ok(batch.records.len())
        })
    }

    fn results_settings(&self, round_id: i64) -> Result<Option<ResultsSettings>> {
        let row: Option<(String, String)> = self.read(async |c| {
            Ok::<_, StorageError>(
                c.query_opt(
                    "SELECT bootstrap_seed, pseudonym_key FROM round_results WHERE round_id = $1",
                    &[&round_id],
                )
                .await?
                .map(|r| (r.get(0), r.get(1))),
            )
        })?;
        row.map(
            |(seed, key)| match (seed.parse::<u64>().ok(), parse_key(&key)) {
                (Some(bootstrap_seed), Some(pseudonym_key)) => Ok(ResultsSettings {
                    bootstrap_seed,
                    pseudonym_key,
                }),
                _ => Err(StorageError::Conflict(format!(
                    "stored results settings of round {round_id} are unreadable"
                ))),
            },
        )
        .transpose()
    }

    fn init_results_settings(
        &self,
        round: &RoundRecord,
        fresh: &ResultsSettings,
        actor: &str,
    ) -> Result<ResultsSettings> {
        let inserted = self.block_on(async {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            // ON CONFLICT DO NOTHING: two instances drawing at once keep the first one's.
            let n = tx
                .execute(
                    "INSERT INTO round_results (round_id, bootstrap_seed, pseudonym_key, created_at)
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    &[
                        &round.id,
                        &fresh.bootstrap_seed.to_string(),
                        &hex::encode(fresh.pseudonym_key),
                        &now_ms(),
                    ],
                )
                .await?;
            if n == 1 {
                append_audit(
                    &tx,
                    &AuditEvent {
                        actor,
                        action: "results.settings",
                        round_key: Some(&round.key),
                        detail: serde_json::json!({ "bootstrap_seed": fresh.bootstrap_seed }),
                    },
                )
                .await?;
            }
            tx.commit().await?;
            Ok::<_, StorageError>(n == 1)
        })?;
        if inserted {
            return Ok(fresh.clone());
        }
        self.results_settings(round.id)?.ok_or_else(|| {
            StorageError::NotFound(format!("results settings of round {}", round.key))
        })
    }
}
