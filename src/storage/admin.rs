//! What the web consoles need beyond `Storage` and `CallStore`: correcting recorded answers,
//! an operator's day and list, and searching the audit log. Plain types; the SQLite
//! implementation is `sqlite::admin`.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{AttemptRecord, Result, RoundRecord};
use crate::domain::audit::AuditEntry;
use crate::domain::disposition::Outcome;
use crate::domain::roster::MemberCategory;

/// An administrator's correction of an attempt's answers.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerEditRecord {
    pub id: i64,
    pub attempt_id: i64,
    pub at_ms: i64,
    pub actor: String,
    pub reason: String,
    pub before: Vec<Option<usize>>,
    pub after: Vec<Option<usize>>,
}

/// An operator's figures for the call screen.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct OperatorDay {
    /// Complete interviews recorded since `since_ms` (local midnight).
    pub completes_today: u32,
    /// Attempts of any outcome recorded since `since_ms`.
    pub attempts_today: u32,
    /// Contacts still in the operator's queue (not final), on a call or not.
    pub remaining: u32,
    /// Of those, callable now (first calls, and retries and appointments that are due).
    pub due_now: u32,
    /// The earliest later due time of a retry or appointment.
    pub next_due_ms: Option<i64>,
}

/// One row of an operator's own list (no phone number).
#[derive(Debug, Clone, Serialize)]
pub struct QueueRow {
    pub member_id: i64,
    pub seq: u32,
    pub unit: String,
    pub category: MemberCategory,
    /// 0 appointment, 1 retry, 2 first call.
    pub priority: u8,
    /// Due time (ms) of retries and appointments.
    pub due_ms: Option<i64>,
    pub attempts: u32,
    pub last_outcome: Option<Outcome>,
    pub on_call: bool,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Exact action, or a prefix ending in '.' ("auth." finds every sign-in event).
    pub action: Option<String>,
    pub actor: Option<String>,
    pub round_key: Option<String>,
    /// Newest first; this many entries from `offset`.
    pub limit: usize,
    pub offset: usize,
}

#[derive(Debug, Clone, Default)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Entries matching the filter in all.
    pub total: usize,
}

/// Why edited answers are refused; the message is shown to the administrator.
pub fn check_edited_answers(
    outcome: Outcome,
    answers: &[Option<usize>],
    n_dimensions: usize,
    n_levels: usize,
) -> std::result::Result<(), String> {
    if !outcome.needs_answers() {
        return Err(format!(
            "这次拨打的结果是“{}”,没有答案可以修改",
            outcome.label()
        ));
    }
    if answers.len() != n_dimensions {
        return Err(format!(
            "答案数量不符:问卷共 {n_dimensions} 个维度,收到 {} 个",
            answers.len()
        ));
    }
    if let Some((d, l)) = answers
        .iter()
        .enumerate()
        .find_map(|(d, l)| l.filter(|l| *l >= n_levels).map(|l| (d, l)))
    {
        return Err(format!(
            "第 {} 个维度的答案超出范围:共 {n_levels} 个等级,收到第 {} 级",
            d + 1,
            l + 1
        ));
    }
    let answered = answers.iter().filter(|a| a.is_some()).count();
    match outcome {
        Outcome::Complete if answered < n_dimensions => Err(format!(
            "完成访问必须回答全部 {n_dimensions} 个维度,还缺 {} 个",
            n_dimensions - answered
        )),
        Outcome::Partial if answered == 0 => Err("部分完成至少要有一个维度的答案".into()),
        Outcome::Partial if answered == n_dimensions => Err(format!(
            "{n_dimensions} 个维度都有答案就不是部分完成;如确属完成访问,请说明情况后由统计人员处理"
        )),
        _ => Ok(()),
    }
}

pub trait AdminStore: Send + Sync {
    /// One attempt and the id of its round.
    fn attempt(&self, attempt_id: i64) -> Result<(AttemptRecord, i64)>;

    /// A member's attempts, oldest first.
    fn member_attempts(&self, member_id: i64) -> Result<Vec<AttemptRecord>>;

    /// Replaces the answers of a complete or partial attempt, keeping before, after, who, when
    /// and why (`answer_edits` and the audit log's `attempt.edit_answers`).
    fn edit_answers(
        &self,
        round: &RoundRecord,
        attempt_id: i64,
        answers: &[Option<usize>],
        reason: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<AnswerEditRecord>;

    /// The answer edits of the given attempts, oldest first.
    fn answer_edits(&self, attempt_ids: &[i64]) -> Result<Vec<AnswerEditRecord>>;

    /// The operator's day on the round, counted from `since_ms`.
    fn operator_day(
        &self,
        round: &RoundRecord,
        operator_id: i64,
        since_ms: i64,
        now: DateTime<Utc>,
    ) -> Result<OperatorDay>;

    /// The operator's remaining contacts in call order.
    fn operator_queue(
        &self,
        round: &RoundRecord,
        operator_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<QueueRow>>;

    fn search_audit(&self, filter: &AuditFilter) -> Result<AuditPage>;

    /// Distinct actions and actors in the audit log, for the filter's choices.
    fn audit_facets(&self) -> Result<(Vec<String>, Vec<String>)>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edited_answers_follow_the_outcome() {
        let all = vec![Some(0), Some(1), Some(2), Some(3), Some(0)];
        assert!(check_edited_answers(Outcome::Complete, &all, 5, 4).is_ok());
        assert!(check_edited_answers(Outcome::Partial, &all, 5, 4).is_err());
        let some = vec![Some(0), None, None, None, None];
        assert!(check_edited_answers(Outcome::Partial, &some, 5, 4).is_ok());
        assert!(check_edited_answers(Outcome::Complete, &some, 5, 4).is_err());
        assert!(check_edited_answers(Outcome::Partial, &[None; 5], 5, 4).is_err());
        assert!(check_edited_answers(Outcome::Refused, &all, 5, 4).is_err());
        assert!(check_edited_answers(Outcome::Complete, &all[..4], 5, 4).is_err());
        let out = vec![Some(0), Some(1), Some(2), Some(4), Some(0)];
        let e = check_edited_answers(Outcome::Complete, &out, 5, 4).unwrap_err();
        assert!(e.contains("第 4 个维度"), "{e}");
    }
}
