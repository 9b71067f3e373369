//! Call plans: who calls whom in which order (assignments), the exclusions plans respect, and
//! the call lists printed from them. Applying a plan also (re)fills the operators' queues.

use serde::Serialize;

use super::{Result, RoundRecord};
use crate::domain::plan::Assignment;
use crate::domain::roster::MemberCategory;

/// What plan generation starts from.
#[derive(Debug, Clone, Default)]
pub struct PlanState {
    /// Members never called and not on a call now: these get (re)planned.
    pub never_called: Vec<crate::domain::plan::PlanMember>,
    /// Pending assignments that stay (members already called and still open, or on a call now).
    pub kept: Vec<Assignment>,
    /// Members with at least one attempt.
    pub called: usize,
    /// Members never called that no operator has (added by a roster upload after the plan).
    pub unassigned: Vec<crate::domain::plan::PlanMember>,
    /// (operator login, unit id)
    pub exclusions: std::collections::BTreeSet<(String, i64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanRecord {
    pub id: i64,
    pub kind: String,
    pub seed: u64,
    pub algorithm: String,
    pub operators: Vec<String>,
    pub members: usize,
    pub digest: String,
    pub created_at_ms: i64,
    pub created_by: String,
}

#[derive(Debug, Clone)]
pub struct NewPlan {
    pub kind: &'static str,
    pub seed: u64,
    pub algorithm: &'static str,
    pub operators: Vec<String>,
    pub digest: String,
    /// The canonical inputs as JSON (`domain::plan::PlanInputs`).
    pub inputs: String,
}

/// A call-list row (for `calls export`); `phone` is canonical, the caller masks it.
#[derive(Debug, Clone, Serialize)]
pub struct CallListRow {
    pub operator: String,
    pub seq: u32,
    pub member_id: i64,
    pub unit_id: i64,
    pub unit: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub category: MemberCategory,
}

pub trait PlanStore: Send + Sync {
    /// Keeps `login` from calling the unit's members in later plans (audited).
    fn exclude_operator(
        &self,
        round: &RoundRecord,
        login: &str,
        unit_id: i64,
        actor: &str,
    ) -> Result<()>;
    /// Ends a conflict of interest; false when there was none (nothing logged then).
    fn remove_exclusion(
        &self,
        round: &RoundRecord,
        login: &str,
        unit_id: i64,
        actor: &str,
    ) -> Result<bool>;
    fn plan_state(&self, round: &RoundRecord) -> Result<PlanState>;
    /// Stores assignments (replacing those of the same members) and their queue rows, in one
    /// transaction.
    fn apply_plan(
        &self,
        round: &RoundRecord,
        plan: &NewPlan,
        assignments: &[Assignment],
        actor: &str,
    ) -> Result<PlanRecord>;
    fn plans(&self, round: &RoundRecord) -> Result<Vec<PlanRecord>>;
    /// A plan's stored inputs (JSON), `None` for plans made before inputs were stored.
    fn plan_inputs(&self, round: &RoundRecord, plan_id: i64) -> Result<Option<String>>;
    /// The current assignments that a plan made and no later plan replaced, by `(operator, seq)`.
    fn plan_assignments(&self, round: &RoundRecord, plan_id: i64) -> Result<Vec<Assignment>>;
    /// Pending (unclaimed, open) assignments, by `(operator, seq)`.
    fn pending_assignments(&self, round: &RoundRecord) -> Result<Vec<Assignment>>;
    fn call_list(&self, round: &RoundRecord, operator: Option<&str>) -> Result<Vec<CallListRow>>;
}
