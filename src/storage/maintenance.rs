//! `sheping check` and `check --repair-round`, on every backend: the engine's invariants (each
//! a query in SQL both backends speak), every stored attempt against its round's survey, the
//! late records to review, and the audit chain. How a backend checks its own pages differs
//! (SQLite's `integrity_check` and `foreign_key_check`; PostgreSQL's catalogue), so each
//! implementation fills `integrity` and `foreign_keys` itself and runs the rest through
//! [`add_invariant_problems`] and [`check_stored_rounds`].

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{AuditStore, CallStore, Result, RoundStore, ms_to_utc};

/// What `sheping check` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    pub integrity: Vec<String>,
    pub foreign_keys: usize,
    pub problems: Vec<String>,
    /// Entries in the audit chain, or where it breaks.
    pub audit_entries: usize,
    pub audit_break: Option<String>,
    /// Late records (stored after their claim lapsed and another claim or record came in
    /// between): not a fault, listed for the supervisor to review.
    pub late_records: Vec<String>,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.integrity == ["ok"]
            && self.foreign_keys == 0
            && self.problems.is_empty()
            && self.audit_break.is_none()
    }
}

/// The checks and the repair a backend answers for `sheping check`.
pub trait MaintenanceStore: Send + Sync {
    /// Integrity, foreign keys, engine invariants, stored values and the audit chain.
    fn check(&self) -> Result<CheckReport>;
    /// Recomputes every queue row of a round from the attempts (after a crash of a version
    /// with a bug, or a manual fix), and the tallies from the queue and the attempts; claims
    /// are dropped. Answers the number of members placed.
    fn rebuild_queue(&self, round_key: &str, now: DateTime<Utc>) -> Result<usize>;
}

/// Invariants of the engine, each a query that must return no rows (with a description).
/// Written in SQL that SQLite and PostgreSQL read alike.
pub const INVARIANTS: &[(&str, &str)] = &[
    (
        "queue rows without an assignment",
        "SELECT q.member_id FROM queue q LEFT JOIN assignments s ON s.member_id = q.member_id WHERE s.member_id IS NULL",
    ),
    (
        "queue rows whose operator differs from the assignment",
        "SELECT q.member_id FROM queue q JOIN assignments s ON s.member_id = q.member_id WHERE s.operator_id != q.operator_id",
    ),
    (
        "members with a complete and a later attempt",
        "SELECT a.member_id FROM attempts a JOIN attempts c ON c.member_id = a.member_id AND c.outcome = 'complete'
         WHERE a.recorded_at > c.recorded_at AND a.late = 0",
    ),
    (
        "final (completed) members still in the queue",
        "SELECT q.member_id FROM queue q JOIN attempts a ON a.member_id = q.member_id AND a.outcome = 'complete'",
    ),
    // A late record may follow or repeat a complete (the interview happened; results count
    // the first complete only): those are listed as late records, not as faults.
    (
        "members with two completes",
        "SELECT member_id FROM attempts WHERE outcome = 'complete' AND late = 0 GROUP BY member_id HAVING COUNT(*) > 1",
    ),
    (
        "attempt numbers with gaps",
        "SELECT member_id FROM attempts GROUP BY member_id HAVING MAX(attempt_no) != COUNT(*)",
    ),
    (
        "completes without all answers",
        "SELECT id FROM attempts WHERE outcome = 'complete' AND (answers IS NULL OR answers LIKE '%null%')",
    ),
    (
        "operators holding two claims in a queue row",
        "SELECT claim_token FROM queue WHERE claim_token IS NOT NULL GROUP BY claim_token HAVING COUNT(*) > 1",
    ),
    (
        "queue tallies that differ from the queue",
        "SELECT t.round_id, t.operator_id, t.priority FROM queue_tally t
         LEFT JOIN (SELECT round_id, operator_id, priority, COUNT(*) AS n FROM queue
                    GROUP BY round_id, operator_id, priority) q
           ON q.round_id = t.round_id AND q.operator_id = t.operator_id AND q.priority = t.priority
         WHERE t.n != COALESCE(q.n, 0)
         UNION ALL
         SELECT q.round_id, q.operator_id, q.priority FROM queue q
         LEFT JOIN queue_tally t
           ON t.round_id = q.round_id AND t.operator_id = q.operator_id AND t.priority = q.priority
         WHERE t.round_id IS NULL GROUP BY q.round_id, q.operator_id, q.priority",
    ),
    (
        "operator tallies that differ from the attempts",
        "SELECT t.round_id FROM operator_tally t
         LEFT JOIN (SELECT u.round_id, a.operator_id, a.recorded_at / 900000 AS quarter, COUNT(*) AS n,
                           SUM(CASE WHEN a.outcome = 'complete' THEN 1 ELSE 0 END) AS c
                    FROM attempts a JOIN members m ON m.id = a.member_id JOIN units u ON u.id = m.unit_id
                    GROUP BY 1, 2, 3) x
           ON x.round_id = t.round_id AND x.operator_id = t.operator_id AND x.quarter = t.quarter
         WHERE t.attempts != COALESCE(x.n, 0) OR t.completes != COALESCE(x.c, 0)
         UNION ALL
         SELECT u.round_id FROM attempts a JOIN members m ON m.id = a.member_id JOIN units u ON u.id = m.unit_id
         LEFT JOIN operator_tally t
           ON t.round_id = u.round_id AND t.operator_id = a.operator_id AND t.quarter = a.recorded_at / 900000
         WHERE t.round_id IS NULL",
    ),
    // Which rounds an operator works in is read through the plans (`operator_rounds`).
    (
        "assignments whose plan is of another round than their member",
        "SELECT s.member_id FROM assignments s JOIN plans p ON p.id = s.plan_id
         JOIN members m ON m.id = s.member_id JOIN units u ON u.id = m.unit_id
         WHERE p.round_id != u.round_id",
    ),
    (
        "assignments with duplicate call numbers",
        "SELECT operator_id, seq FROM assignments GROUP BY operator_id, seq, plan_id HAVING COUNT(*) > 1",
    ),
];

/// Members whose category is none of the four (stored before migration 013's triggers):
/// `(id, category)`, each named as the readers would refuse it.
pub const BAD_CATEGORIES: &str = "SELECT id, category FROM members
     WHERE category NOT IN ('党代表', '人大代表', '政协委员', '服务对象') ORDER BY id";

/// The tallies counted again from the queue and the attempts (the triggers only add and
/// subtract, so a tally changed behind sheping's back stays wrong until this runs).
pub const REBUILD_TALLIES: &str = "DELETE FROM queue_tally;
     INSERT INTO queue_tally (round_id, operator_id, priority, n)
     SELECT round_id, operator_id, priority, COUNT(*) FROM queue GROUP BY 1, 2, 3;
     DELETE FROM operator_tally;
     INSERT INTO operator_tally (round_id, operator_id, quarter, attempts, completes)
     SELECT u.round_id, a.operator_id, a.recorded_at / 900000, COUNT(*),
            SUM(CASE WHEN a.outcome = 'complete' THEN 1 ELSE 0 END)
     FROM attempts a JOIN members m ON m.id = a.member_id JOIN units u ON u.id = m.unit_id
     GROUP BY 1, 2, 3;";

/// Adds to `report` a problem for each invariant whose query returned rows: `counts` are the
/// row counts of [`INVARIANTS`]' queries, in their order.
pub fn add_invariant_problems(report: &mut CheckReport, counts: impl IntoIterator<Item = usize>) {
    for ((what, _), n) in INVARIANTS.iter().zip(counts) {
        if n > 0 {
            report.problems.push(format!("{what}: {n}"));
        }
    }
}

/// A row of [`BAD_CATEGORIES`], named as the readers would refuse it.
pub fn bad_category_problem(row_id: i64, value: String) -> String {
    super::BadStoredValue {
        table: "members",
        row_id,
        column: "category",
        value,
    }
    .to_string()
}

/// Every stored attempt against its round's survey, the late records to review, and the
/// audit chain, through the storage traits (the same on every backend).
pub fn check_stored_rounds(
    store: &(impl RoundStore + CallStore + AuditStore + ?Sized),
    report: &mut CheckReport,
) -> Result<()> {
    let now = Utc::now();
    for summary in store.rounds()? {
        let round = summary.round;
        let field = store.field_data(&round, now)?;
        for (id, problem) in &field.bad_attempts {
            report
                .problems
                .push(format!("轮次 {} 的拨打记录 #{id}: {problem}", round.key));
        }
        for a in field.attempts.iter().filter(|a| a.late) {
            report.late_records.push(format!(
                "轮次 {} 的拨打记录 #{}: 代表 {} · {} · 话务员 {} · {}",
                round.key,
                a.id,
                a.member_id,
                a.outcome.label(),
                a.operator,
                ms_to_utc(a.recorded_at_ms)
                    .with_timezone(&round.survey.timezone())
                    .format("%Y-%m-%d %H:%M:%S"),
            ));
        }
    }
    match store.verify_audit()? {
        Ok(n) => report.audit_entries = n,
        Err(e) => report.audit_break = Some(e.to_string()),
    }
    Ok(())
}
