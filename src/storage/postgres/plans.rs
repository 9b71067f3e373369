//! [`PlanStore`] on PostgreSQL: plans, assignments, exclusions and call lists, as
//! `sqlite/plans.rs`. Applying a plan writes the members' queue rows in the same transaction.

use std::collections::BTreeMap;

use chrono::Utc;
use deadpool_postgres::GenericClient;

use super::PgBackend;
use super::calls::{refresh_queue, strict};
use super::rounds::now_ms;
use super::rounds::{append_audit, ensure_unlocked};
use crate::domain::plan::{Assignment, PlanMember};
use crate::domain::queue::Priority;
use crate::domain::roster::MemberCategory;
use crate::storage::*;

async fn operator_id<C: GenericClient>(c: &C, login: &str) -> Result<i64> {
    c.query_opt("SELECT id FROM users WHERE login = $1", &[&login])
        .await?
        .map(|r| r.get(0))
        .ok_or_else(|| StorageError::NotFound(format!("没有用户 `{login}`")))
}

impl PlanStore for PgBackend {
    fn exclude_operator(
        &self,
        round: &RoundRecord,
        login: &str,
        unit_id: i64,
        actor: &str,
    ) -> Result<()> {
        self.block_on(async {
            let mut client = self.conn().await?;
            let tx = client.transaction().await?;
            ensure_unlocked(&tx, round.id).await?;
            let op = operator_id(&tx, login).await?;
            tx.execute(
                "INSERT INTO operator_exclusions (round_id, user_id, unit_id, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING",
                &[&round.id, &op, &unit_id, &now_ms()],
            )
            .await?;
            append_audit(
                &tx,
                &AuditEvent {
                    actor,
                    action: "operator.exclude",
                    round_key: Some(&round.key),
                    detail: serde_json::json!({ "operator": login, "unit_id": unit_id }),
                },
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn remove_exclusion(
        &self,
        round: &RoundRecord,
        login: &str,
        unit_id: i64,
        actor: &str,
    ) -> Result<bool> {
        self.block_on(async {
            let mut client = self.conn().await?;
            let tx = client.transaction().await?;
            ensure_unlocked(&tx, round.id).await?;
            let op = operator_id(&tx, login).await?;
            let n = tx
                .execute(
                    "DELETE FROM operator_exclusions WHERE round_id = $1 AND user_id = $2 AND unit_id = $3",
                    &[&round.id, &op, &unit_id],
                )
                .await?;
            if n > 0 {
                append_audit(
                    &tx,
                    &AuditEvent {
                        actor,
                        action: "operator.include",
                        round_key: Some(&round.key),
                        detail: serde_json::json!({ "operator": login, "unit_id": unit_id }),
                    },
                )
                .await?;
            }
            tx.commit().await?;
            Ok(n > 0)
        })
    }

    fn plan_state(&self, round: &RoundRecord) -> Result<PlanState> {
        self.read_consistent(async |tx| {
            // One snapshot for both reads, as SQLite's read transaction.
            let mut state = PlanState::default();
            let rows = tx
                .query(
                    "SELECT m.id, m.unit_id,
                            EXISTS(SELECT 1 FROM attempts a WHERE a.member_id = m.id) AS called,
                            COALESCE(q.claim_token IS NOT NULL AND q.claim_expires > $2, false) AS claimed,
                            q.member_id IS NOT NULL AS queued, u2.login, s.seq
                     FROM members m JOIN units u ON u.id = m.unit_id
                     LEFT JOIN queue q ON q.member_id = m.id
                     LEFT JOIN assignments s ON s.member_id = m.id
                     LEFT JOIN users u2 ON u2.id = s.operator_id
                     WHERE u.round_id = $1 ORDER BY m.unit_id, m.id",
                    &[&round.id, &now_ms()],
                )
                .await?;
            for r in rows {
                let (member_id, unit_id): (i64, i64) = (r.get(0), r.get(1));
                let (called, claimed, queued): (bool, bool, bool) = (r.get(2), r.get(3), r.get(4));
                let login: Option<String> = r.get(5);
                let seq: Option<i64> = r.get(6);
                if called {
                    state.called += 1;
                }
                if !called && login.is_none() {
                    state.unassigned.push(PlanMember { member_id, unit_id });
                }
                if !called && !claimed {
                    state.never_called.push(PlanMember { member_id, unit_id });
                } else if queued && let (Some(operator), Some(seq)) = (login, seq) {
                    state.kept.push(Assignment {
                        member_id,
                        unit_id,
                        operator,
                        seq: seq as u32,
                    });
                }
            }
            for r in tx
                .query(
                    "SELECT u.login, e.unit_id FROM operator_exclusions e JOIN users u ON u.id = e.user_id WHERE e.round_id = $1",
                    &[&round.id],
                )
                .await?
            {
                state.exclusions.insert((r.get(0), r.get(1)));
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
        let plan_id = self.block_on(async {
            let mut client = self.conn().await?;
            let tx = client.transaction().await?;
            ensure_unlocked(&tx, round.id).await?;
            let plan_id: i64 = tx
                .query_one(
                    "INSERT INTO plans (round_id, kind, seed, algorithm, operators, members, digest, created_at, created_by)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                    &[
                        &round.id,
                        &plan.kind,
                        &plan.seed.to_string(),
                        &plan.algorithm,
                        &serde_json::to_string(&plan.operators).unwrap_or_default(),
                        &(assignments.len() as i64),
                        &plan.digest,
                        &now.timestamp_millis(),
                        &actor,
                    ],
                )
                .await?
                .get(0);
            tx.execute(
                "INSERT INTO plan_inputs (plan_id, inputs) VALUES ($1, $2)",
                &[&plan_id, &plan.inputs],
            )
            .await?;
            let mut ids: BTreeMap<&str, i64> = BTreeMap::new();
            for login in &plan.operators {
                ids.insert(login, operator_id(&tx, login).await?);
            }
            let upsert = tx
                .prepare(
                    "INSERT INTO assignments (member_id, operator_id, seq, plan_id) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (member_id) DO UPDATE SET operator_id = EXCLUDED.operator_id, seq = EXCLUDED.seq,
                         plan_id = EXCLUDED.plan_id",
                )
                .await?;
            // As on SQLite: a generated plan holds only members never called (a first call at
            // their plan position); reassigned members' slots are recomputed from history.
            let first_call = tx
                .prepare(
                    "INSERT INTO queue (member_id, round_id, operator_id, priority, sort_key) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (member_id) DO UPDATE SET operator_id = EXCLUDED.operator_id, priority = EXCLUDED.priority,
                         sort_key = EXCLUDED.sort_key",
                )
                .await?;
            for a in assignments {
                let op = ids
                    .get(a.operator.as_str())
                    .copied()
                    .ok_or_else(|| StorageError::NotFound(a.operator.clone()))?;
                let seq = i64::from(a.seq);
                tx.execute(&upsert, &[&a.member_id, &op, &seq, &plan_id])
                    .await?;
                if plan.kind == "generate" {
                    tx.execute(
                        &first_call,
                        &[&a.member_id, &round.id, &op, &(Priority::FirstCall as i64), &seq],
                    )
                    .await?;
                } else {
                    refresh_queue(&tx, round, a.member_id, now, false).await?;
                }
            }
            append_audit(
                &tx,
                &AuditEvent {
                    actor,
                    action: if plan.kind == "generate" { "plan.generate" } else { "plan.reassign" },
                    round_key: Some(&round.key),
                    detail: serde_json::json!({
                        "plan_id": plan_id, "seed": plan.seed.to_string(), "algorithm": plan.algorithm,
                        "operators": plan.operators, "members": assignments.len(), "digest": plan.digest,
                    }),
                },
            )
            .await?;
            tx.commit().await?;
            self.caches.generations.rounds.bump();
            Ok::<_, StorageError>(plan_id)
        })?;
        self.plans(round)?
            .into_iter()
            .find(|p| p.id == plan_id)
            .ok_or_else(|| StorageError::NotFound("plan".into()))
    }

    fn plans(&self, round: &RoundRecord) -> Result<Vec<PlanRecord>> {
        self.read(async |c| {
            let rows = c
                .query(
                    "SELECT id, kind, seed, algorithm, operators, members, digest, created_at, created_by
                     FROM plans WHERE round_id = $1 ORDER BY id",
                    &[&round.id],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| PlanRecord {
                    id: r.get(0),
                    kind: r.get(1),
                    seed: r.get::<_, String>(2).parse().unwrap_or_default(),
                    algorithm: r.get(3),
                    operators: serde_json::from_str(&r.get::<_, String>(4)).unwrap_or_default(),
                    members: r.get::<_, i64>(5) as usize,
                    digest: r.get(6),
                    created_at_ms: r.get(7),
                    created_by: r.get(8),
                })
                .collect())
        })
    }

    fn plan_inputs(&self, round: &RoundRecord, plan_id: i64) -> Result<Option<String>> {
        self.read(async |c| {
            c.query_opt(
                "SELECT i.inputs FROM plans p LEFT JOIN plan_inputs i ON i.plan_id = p.id
                 WHERE p.id = $1 AND p.round_id = $2",
                &[&plan_id, &round.id],
            )
            .await?
            .map(|r| r.get::<_, Option<String>>(0))
            .ok_or_else(|| StorageError::NotFound(format!("plan #{plan_id}")))
        })
    }

    fn plan_assignments(&self, round: &RoundRecord, plan_id: i64) -> Result<Vec<Assignment>> {
        self.read(async |c| {
            let rows = c
                .query(
                    "SELECT s.member_id, m.unit_id, u.login, s.seq FROM assignments s
                     JOIN members m ON m.id = s.member_id JOIN users u ON u.id = s.operator_id
                     JOIN plans p ON p.id = s.plan_id
                     WHERE s.plan_id = $1 AND p.round_id = $2
                     ORDER BY u.login, s.seq, m.unit_id, s.member_id",
                    &[&plan_id, &round.id],
                )
                .await?;
            Ok(rows.iter().map(assignment).collect())
        })
    }

    fn pending_assignments(&self, round: &RoundRecord) -> Result<Vec<Assignment>> {
        self.read(async |c| {
            let rows = c
                .query(
                    "SELECT q.member_id, m.unit_id, u.login, s.seq FROM queue q
                     JOIN members m ON m.id = q.member_id JOIN assignments s ON s.member_id = q.member_id
                     JOIN users u ON u.id = s.operator_id
                     WHERE q.round_id = $1 AND (q.claim_token IS NULL OR q.claim_expires <= $2)
                     ORDER BY u.login, s.seq, q.member_id",
                    &[&round.id, &now_ms()],
                )
                .await?;
            Ok(rows.iter().map(assignment).collect())
        })
    }

    fn call_list(&self, round: &RoundRecord, operator: Option<&str>) -> Result<Vec<CallListRow>> {
        self.read(async |c| {
            let rows = c
                .query(
                    "SELECT us.login, s.seq, m.id, m.unit_id, u.name, m.name, m.phone, m.category
                     FROM assignments s JOIN members m ON m.id = s.member_id JOIN units u ON u.id = m.unit_id
                     JOIN users us ON us.id = s.operator_id
                     WHERE u.round_id = $1 AND ($2::TEXT IS NULL OR us.login = $2::TEXT)
                     ORDER BY us.login, s.seq, m.id",
                    &[&round.id, &operator],
                )
                .await?;
            rows.iter()
                .map(|r| {
                    let member_id: i64 = r.get(2);
                    Ok(CallListRow {
                        operator: r.get(0),
                        seq: r.get::<_, i64>(1) as u32,
                        member_id,
                        unit_id: r.get(3),
                        unit: r.get(4),
                        name: r.get(5),
                        phone: r.get(6),
                        category: strict(
                            r.get(7),
                            "members",
                            "category",
                            member_id,
                            MemberCategory::from_stored_label,
                        )?,
                    })
                })
                .collect()
        })
    }
}

fn assignment(r: &tokio_postgres::Row) -> Assignment {
    Assignment {
        member_id: r.get(0),
        unit_id: r.get(1),
        operator: r.get(2),
        seq: r.get::<_, i64>(3) as u32,
    }
}
