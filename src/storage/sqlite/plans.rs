//! [`PlanStore`] on SQLite: plans, assignments, exclusions and call lists. Applying a plan
//! writes the members' queue rows in the same transaction (`calls::refresh_queue`).

use std::collections::BTreeMap;

use chrono::Utc;
use rusqlite::{Connection, OptionalExtension, params};

use super::calls::refresh_queue;
use super::{SqliteStore, append_audit, ensure_unlocked, now_ms, strict};
use crate::domain::plan::{Assignment, PlanMember};
use crate::domain::queue::Priority;
use crate::domain::roster::MemberCategory;
use crate::storage::*;

fn operator_id(c: &Connection, login: &str) -> Result<i64> {
    c.prepare_cached("SELECT id FROM users WHERE login = ?1")?
        .query_row([login], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StorageError::NotFound(format!("没有用户 `{login}`")))
}

impl PlanStore for SqliteStore {
    fn exclude_operator(
        &self,
        round: &RoundRecord,
        login: &str,
        unit_id: i64,
        actor: &str,
    ) -> Result<()> {
        self.write(|tx| {
            ensure_unlocked(tx, round.id)?;
            let op = operator_id(tx, login)?;
            tx.execute(
                "INSERT OR IGNORE INTO operator_exclusions (round_id, user_id, unit_id, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![round.id, op, unit_id, now_ms()],
            )?;
            append_audit(
                tx,
                &AuditEvent {
                    actor,
                    action: "operator.exclude",
                    round_key: Some(&round.key),
                    detail: serde_json::json!({ "operator": login, "unit_id": unit_id }),
                },
            )
        })
    }

    fn remove_exclusion(
        &self,
        round: &RoundRecord,
        login: &str,
        unit_id: i64,
        actor: &str,
    ) -> Result<bool> {
        self.write(|tx| {
            ensure_unlocked(tx, round.id)?;
            let op = operator_id(tx, login)?;
            let n = tx.execute(
                "DELETE FROM operator_exclusions WHERE round_id = ?1 AND user_id = ?2 AND unit_id = ?3",
                params![round.id, op, unit_id],
            )?;
            if n > 0 {
                append_audit(
                    tx,
                    &AuditEvent {
                        actor,
                        action: "operator.include",
                        round_key: Some(&round.key),
                        detail: serde_json::json!({ "operator": login, "unit_id": unit_id }),
                    },
                )?;
            }
            Ok(n > 0)
        })
    }

    fn plan_state(&self, round: &RoundRecord) -> Result<PlanState> {
        self.read(|c| {
            let mut state = PlanState::default();
            let mut stmt = c.prepare_cached(
                "SELECT m.id, m.unit_id,
                        EXISTS(SELECT 1 FROM attempts a WHERE a.member_id = m.id) AS called,
                        q.claim_token IS NOT NULL AND q.claim_expires > ?2 AS claimed,
                        q.member_id IS NOT NULL AS queued, u2.login, s.seq
                 FROM members m JOIN units u ON u.id = m.unit_id
                 LEFT JOIN queue q ON q.member_id = m.id
                 LEFT JOIN assignments s ON s.member_id = m.id
                 LEFT JOIN users u2 ON u2.id = s.operator_id
                 WHERE u.round_id = ?1 ORDER BY m.unit_id, m.id",
            )?;
            let rows = stmt.query_map(params![round.id, now_ms()], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, bool>(3)?,
                    r.get::<_, bool>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<u32>>(6)?,
                ))
            })?;
            for row in rows {
                let (member_id, unit_id, called, claimed, queued, login, seq) = row?;
                if called {
                    state.called += 1;
                }
                if !called && login.is_none() {
                    state.unassigned.push(PlanMember { member_id, unit_id });
                }
                if !called && !claimed {
                    state.never_called.push(PlanMember { member_id, unit_id });
                } else if queued && let (Some(operator), Some(seq)) = (login, seq) {
                    state.kept.push(Assignment { member_id, unit_id, operator, seq });
                }
            }
            let mut stmt = c.prepare_cached(
                "SELECT u.login, e.unit_id FROM operator_exclusions e JOIN users u ON u.id = e.user_id WHERE e.round_id = ?1",
            )?;
            for r in stmt.query_map([round.id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
                state.exclusions.insert(r?);
            }
            Ok(state)
        })
    }

    fn apply_plan(
        &self,
        round: &RoundRecord,
        plan: &NewPlan,
        assignments: &[Assignment],
        actor: &str,
    ) -> Result<PlanRecord> {
        let now = Utc::now();
        let plan_id = self.write_bulk(|tx| {
            ensure_unlocked(tx, round.id)?;
            tx.execute(
                "INSERT INTO plans (round_id, kind, seed, algorithm, operators, members, digest, created_at, created_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    round.id,
                    plan.kind,
                    plan.seed.to_string(),
                    plan.algorithm,
                    serde_json::to_string(&plan.operators).unwrap_or_default(),
                    assignments.len() as i64,
                    plan.digest,
                    now.timestamp_millis(),
                    actor
                ],
            )?;
            let plan_id = tx.last_insert_rowid();
            tx.execute("INSERT INTO plan_inputs (plan_id, inputs) VALUES (?1, ?2)", params![plan_id, plan.inputs])?;
            let mut ids: BTreeMap<&str, i64> = BTreeMap::new();
            for login in &plan.operators {
                ids.insert(login, operator_id(tx, login)?);
            }
            let mut upsert = tx.prepare_cached(
                "INSERT INTO assignments (member_id, operator_id, seq, plan_id) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(member_id) DO UPDATE SET operator_id = excluded.operator_id, seq = excluded.seq, plan_id = excluded.plan_id",
            )?;
            // A generated plan holds only members never called: their queue slot is a first
            // call at their plan position, no history needed. Reassigned members may have a
            // history (retries, appointments), so their slot is recomputed.
            let mut first_call = tx.prepare_cached(
                "INSERT INTO queue (member_id, round_id, operator_id, priority, sort_key) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(member_id) DO UPDATE SET operator_id = excluded.operator_id, priority = excluded.priority,
                     sort_key = excluded.sort_key",
            )?;
            for a in assignments {
                let op = ids.get(a.operator.as_str()).copied().ok_or_else(|| StorageError::NotFound(a.operator.clone()))?;
                upsert.execute(params![a.member_id, op, a.seq, plan_id])?;
                if plan.kind == "generate" {
                    first_call.execute(params![a.member_id, round.id, op, Priority::FirstCall as i64, i64::from(a.seq)])?;
                } else {
                    refresh_queue(tx, round, a.member_id, now, false)?;
                }
            }
            append_audit(
                tx,
                &AuditEvent {
                    actor,
                    action: if plan.kind == "generate" { "plan.generate" } else { "plan.reassign" },
                    round_key: Some(&round.key),
                    detail: serde_json::json!({
                        "plan_id": plan_id, "seed": plan.seed.to_string(), "algorithm": plan.algorithm,
                        "operators": plan.operators, "members": assignments.len(), "digest": plan.digest,
                    }),
                },
            )?;
            Ok(plan_id)
        })?;
        self.plans(round)?
            .into_iter()
            .find(|p| p.id == plan_id)
            .ok_or_else(|| StorageError::NotFound("plan".into()))
    }

    fn plans(&self, round: &RoundRecord) -> Result<Vec<PlanRecord>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, kind, seed, algorithm, operators, members, digest, created_at, created_by FROM plans WHERE round_id = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map([round.id], |r| {
                Ok(PlanRecord {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    seed: r.get::<_, String>(2)?.parse().unwrap_or_default(),
                    algorithm: r.get(3)?,
                    operators: serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or_default(),
                    members: r.get::<_, i64>(5)? as usize,
                    digest: r.get(6)?,
                    created_at_ms: r.get(7)?,
                    created_by: r.get(8)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn plan_inputs(&self, round: &RoundRecord, plan_id: i64) -> Result<Option<String>> {
        self.read(|c| {
            let inputs: Option<Option<String>> = c
                .query_row(
                    "SELECT i.inputs FROM plans p LEFT JOIN plan_inputs i ON i.plan_id = p.id
                     WHERE p.id = ?1 AND p.round_id = ?2",
                    params![plan_id, round.id],
                    |r| r.get(0),
                )
                .optional()?;
            inputs.ok_or_else(|| StorageError::NotFound(format!("plan #{plan_id}")))
        })
    }

    fn plan_assignments(&self, round: &RoundRecord, plan_id: i64) -> Result<Vec<Assignment>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT s.member_id, m.unit_id, u.login, s.seq FROM assignments s
                 JOIN members m ON m.id = s.member_id JOIN users u ON u.id = s.operator_id
                 JOIN plans p ON p.id = s.plan_id
                 WHERE s.plan_id = ?1 AND p.round_id = ?2
                 ORDER BY u.login, s.seq, m.unit_id, s.member_id",
            )?;
            let rows = stmt.query_map(params![plan_id, round.id], |r| {
                Ok(Assignment {
                    member_id: r.get(0)?,
                    unit_id: r.get(1)?,
                    operator: r.get(2)?,
                    seq: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn pending_assignments(&self, round: &RoundRecord) -> Result<Vec<Assignment>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT q.member_id, m.unit_id, u.login, s.seq FROM queue q
                 JOIN members m ON m.id = q.member_id JOIN assignments s ON s.member_id = q.member_id
                 JOIN users u ON u.id = s.operator_id
                 WHERE q.round_id = ?1 AND (q.claim_token IS NULL OR q.claim_expires <= ?2)
                 ORDER BY u.login, s.seq",
            )?;
            let rows = stmt.query_map(params![round.id, now_ms()], |r| {
                Ok(Assignment { member_id: r.get(0)?, unit_id: r.get(1)?, operator: r.get(2)?, seq: r.get(3)? })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn call_list(&self, round: &RoundRecord, operator: Option<&str>) -> Result<Vec<CallListRow>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT us.login, s.seq, m.id, m.unit_id, u.name, m.name, m.phone, m.category
                 FROM assignments s JOIN members m ON m.id = s.member_id JOIN units u ON u.id = m.unit_id
                 JOIN users us ON us.id = s.operator_id
                 WHERE u.round_id = ?1 AND (?2 IS NULL OR us.login = ?2) ORDER BY us.login, s.seq",
            )?;
            let rows = stmt.query_map(params![round.id, operator], |r| {
                Ok(CallListRow {
                    operator: r.get(0)?,
                    seq: r.get(1)?,
                    member_id: r.get(2)?,
                    unit_id: r.get(3)?,
                    unit: r.get(4)?,
                    name: r.get(5)?,
                    phone: r.get(6)?,
                    category: strict(r, 7, "members", "category", r.get(2)?, MemberCategory::from_stored_label)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }
}
