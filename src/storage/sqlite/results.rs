//! [`ResultsStore`] on SQLite: on-site data, evidence and results settings (migration 004).

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, append_audit, ensure_unlocked, map_full, now_ms};
use crate::domain::evidence::{EvidenceKind, EvidenceRecord};
use crate::storage::results::*;
use crate::storage::*;

fn parse_key(hex_key: &str) -> Option<[u8; 32]> {
    hex::decode(hex_key).ok()?.try_into().ok()
}

impl ResultsStore for SqliteStore {
    fn onsite(&self, round_id: i64) -> Result<BTreeMap<i64, StoredOnsite>> {
        self.read(|c| {
            let mut out: BTreeMap<i64, StoredOnsite> = BTreeMap::new();
            let mut stmt = c.prepare_cached(
                "SELECT b.unit_id, b.ballot, b.overall, b.levels FROM onsite_ballots b JOIN units u ON u.id = b.unit_id
                 WHERE u.round_id = ?1 ORDER BY b.unit_id, b.id",
            )?;
            let rows = stmt.query_map([round_id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?;
            for row in rows {
                let (unit, ballot, overall, levels) = row?;
                let levels: Vec<usize> = serde_json::from_str(&levels).map_err(|e| {
                    StorageError::Conflict(format!(
                        "stored on-site ballot `{ballot}` of unit {unit} is unreadable: {e}"
                    ))
                })?;
                let b = StoredBallot {
                    ballot,
                    levels,
                    overall,
                };
                match out
                    .entry(unit)
                    .or_insert_with(|| StoredOnsite::Ballots(Vec::new()))
                {
                    StoredOnsite::Ballots(v) => v.push(b),
                    StoredOnsite::Direct(_) => {}
                }
            }
            let mut stmt = c.prepare_cached(
                "SELECT s.unit_id, s.score FROM onsite_scores s JOIN units u ON u.id = s.unit_id WHERE u.round_id = ?1",
            )?;
            for row in stmt.query_map([round_id], |r| Ok((r.get::<_, i64>(0)?, r.get(1)?)))? {
                let (unit, score) = row?;
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
        self.write(|tx| {
            ensure_unlocked(tx, round.id)?;
            for unit in &batch.replace_units {
                tx.prepare_cached("DELETE FROM onsite_ballots WHERE unit_id = ?1")?
                    .execute([unit])?;
                tx.prepare_cached("DELETE FROM onsite_scores WHERE unit_id = ?1")?
                    .execute([unit])?;
            }
            let now = now_ms();
            let conflict = |e: rusqlite::Error, what: String| {
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) {
                    StorageError::Conflict(what)
                } else {
                    map_full(e)
                }
            };
            let mut ins = tx.prepare_cached(
                "INSERT INTO onsite_ballots (unit_id, ballot, overall, levels, source_line, created_at, created_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for (unit, b, line) in &batch.ballots {
                let levels = serde_json::to_string(&b.levels).unwrap_or_default();
                ins.execute(params![unit, b.ballot, b.overall, levels, *line as i64, now, actor])
                    .map_err(|e| {
                        conflict(
                            e,
                            format!("第 {line} 行:选票编号“{}”已导入过(可能是同时进行的另一次导入)", b.ballot),
                        )
                    })?;
            }
            let mut ins = tx.prepare_cached(
                "INSERT INTO onsite_scores (unit_id, score, source_line, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (unit, score, line) in &batch.scores {
                ins.execute(params![unit, score, *line as i64, now, actor])
                    .map_err(|e| {
                        conflict(e, format!("第 {line} 行:该单位已有现场评价得分"))
                    })?;
            }
            append_audit(
                tx,
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
            )?;
            Ok(batch.ballots.len() + batch.scores.len())
        })
    }

    fn evidence(&self, round_id: i64) -> Result<BTreeMap<i64, Vec<EvidenceRecord>>> {
        self.read(|c| {
            let mut out: BTreeMap<i64, Vec<EvidenceRecord>> = BTreeMap::new();
            let mut stmt = c.prepare_cached(
                "SELECT e.unit_id, e.kind, e.count, e.volume, e.source, e.note FROM evidence e
                 JOIN units u ON u.id = e.unit_id WHERE u.round_id = ?1 ORDER BY e.unit_id",
            )?;
            let rows = stmt.query_map([round_id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })?;
            for row in rows {
                let (unit, kind, count, volume, source, note) = row?;
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
        self.write(|tx| {
            ensure_unlocked(tx, round.id)?;
            let mut replaced = 0;
            if batch.replace {
                replaced = tx
                    .prepare_cached(
                        "DELETE FROM evidence WHERE unit_id IN (SELECT id FROM units WHERE round_id = ?1)",
                    )?
                    .execute([round.id])?;
            }
            let now = now_ms();
            let mut ins = tx.prepare_cached(
                "INSERT INTO evidence (unit_id, kind, count, volume, source, note, source_line, created_at, created_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for (unit, r, line) in &batch.records {
                let count = i64::try_from(r.count).unwrap_or(i64::MAX);
                let volume = r.volume.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
                ins.execute(params![
                    unit,
                    r.kind.key(),
                    count,
                    volume,
                    r.source,
                    r.note,
                    *line as i64,
                    now,
                    actor
                ])
                .map_err(|e| {
                    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) {
                        StorageError::Conflict(format!(
                            "第 {line} 行:该单位的{}已导入过(可能是同时进行的另一次导入);如需替换,请加 --replace",
                            r.kind.label()
                        ))
                    } else {
                        map_full(e)
                    }
                })?;
            }
            append_audit(
                tx,
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
            )?;
            Ok(batch.records.len())
        })
    }

    fn results_settings(&self, round_id: i64) -> Result<Option<ResultsSettings>> {
        let row: Option<(String, String)> = self.read(|c| {
            Ok(c.query_row(
                "SELECT bootstrap_seed, pseudonym_key FROM round_results WHERE round_id = ?1",
                [round_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
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
        let inserted = self.write(|tx| {
            let n = tx.execute(
                "INSERT OR IGNORE INTO round_results (round_id, bootstrap_seed, pseudonym_key, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![
                    round.id,
                    fresh.bootstrap_seed.to_string(),
                    hex::encode(fresh.pseudonym_key),
                    now_ms()
                ],
            )
            .map_err(map_full)?;
            if n == 1 {
                append_audit(
                    tx,
                    &AuditEvent {
                        actor,
                        action: "results.settings",
                        round_key: Some(&round.key),
                        detail: serde_json::json!({ "bootstrap_seed": fresh.bootstrap_seed }),
                    },
                )?;
            }
            Ok(n == 1)
        })?;
        if inserted {
            return Ok(fresh.clone());
        }
        self.results_settings(round.id)?.ok_or_else(|| {
            StorageError::NotFound(format!("results settings of round {}", round.key))
        })
    }
}
