//! The call engine's operations, shared by CLI and web: generating and reassigning plans,
//! progress, and call lists. Domain rules live in `domain::{plan, disposition, schedule}`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::disposition::{AttemptFact, Disposition, MemberHistory};
use crate::domain::plan::{self, Loads, PlanInput, PlanInputs, PlanKind, PlanMember};
use crate::domain::progress::{self, MemberFacts, OperatorTally, Tally};
use crate::domain::user::Role;
pub use crate::storage::Store;
use crate::storage::{
    FieldData, NewPlan, PlanRecord, RoundRecord, StorageError, UnitRecord, ms_to_utc,
};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Serialize)]
pub struct PlanOutcome {
    pub plan: PlanRecord,
    /// Members (re)planned now: never called before.
    pub planned: usize,
    /// Members already called (kept with their operator and order).
    pub called: usize,
}

/// The active operators to plan for: all of them, or the logins given (each must be an
/// active operator).
pub fn plan_operators(
    store: &dyn Store,
    logins: Option<&[String]>,
) -> Result<Vec<String>, EngineError> {
    let users = store.users()?;
    let active: Vec<String> = users
        .iter()
        .filter(|u| u.active && u.role == Role::Operator)
        .map(|u| u.login.clone())
        .collect();
    let chosen = match logins {
        None => active,
        Some(list) => {
            for l in list {
                if !active.contains(l) {
                    return Err(EngineError::Invalid(format!("`{l}` 不是在岗的话务员账号")));
                }
            }
            list.to_vec()
        }
    };
    if chosen.is_empty() {
        return Err(EngineError::Invalid(
            "没有在岗的话务员:先用 `sheping user add --role operator` 添加".into(),
        ));
    }
    Ok(chosen)
}

/// A fresh seed when none is given; below 2^53 so that JSON readers (JavaScript) keep it exact.
pub fn random_seed() -> u64 {
    use rand::Rng;
    rand::rng().next_u64() & ((1 << 53) - 1)
}

/// Plans every member never called; members already called keep their operator and order.
pub fn generate_plan(
    store: &dyn Store,
    round: &RoundRecord,
    operators: Vec<String>,
    seed: u64,
    actor: &str,
) -> Result<PlanOutcome, EngineError> {
    let state = store.plan_state(round)?;
    let kept: Vec<_> = state
        .kept
        .iter()
        .filter(|a| operators.contains(&a.operator))
        .cloned()
        .collect();
    let mut existing = Loads::from_assignments(&kept);
    // Numbering continues after every call an operator already has, called or not.
    for row in store.call_list(round, None)? {
        let max = existing.max_seq.entry(row.operator).or_default();
        *max = (*max).max(row.seq);
    }
    existing.max_seq.retain(|op, _| operators.contains(op));
    let input = PlanInput {
        members: state.never_called.clone(),
        operators: operators.clone(),
        exclusions: state.exclusions.clone(),
        seed,
        existing,
    };
    let assignments = plan::generate_plan(&input)?;
    let inputs = PlanInputs::new(PlanKind::Generate, &input);
    let record = store.apply_plan(
        round,
        &NewPlan {
            kind: "generate",
            seed,
            algorithm: plan::PLAN_ALGORITHM,
            operators: inputs.operators.clone(),
            digest: plan::plan_digest(&assignments),
            inputs: inputs_json(&inputs)?,
        },
        &assignments,
        actor,
    )?;
    Ok(PlanOutcome {
        plan: record,
        planned: assignments.len(),
        called: state.called,
    })
}

/// Moves an absent operator's pending calls (not on a call now) to `targets`.
pub fn reassign(
    store: &dyn Store,
    round: &RoundRecord,
    from: &str,
    targets: Vec<String>,
    seed: u64,
    actor: &str,
) -> Result<PlanOutcome, EngineError> {
    if targets.iter().any(|t| t == from) {
        return Err(EngineError::Invalid(format!(
            "不能把 `{from}` 的任务转给其本人"
        )));
    }
    let pending = store.pending_assignments(round)?;
    let moving: Vec<PlanMember> = pending
        .iter()
        .filter(|a| a.operator == from)
        .map(|a| PlanMember {
            member_id: a.member_id,
            unit_id: a.unit_id,
        })
        .collect();
    let exclusions = store.plan_state(round)?.exclusions;
    reassign_members(store, round, moving, targets, exclusions, seed, actor)
}

/// Plans the members no operator has (added by a roster upload after the plan) over
/// `operators`, keeping every existing assignment: the same draw as a reassignment
/// (`docs/plan.md`), with the operators' pending calls as their existing loads.
pub fn plan_unassigned(
    store: &dyn Store,
    round: &RoundRecord,
    operators: Vec<String>,
    seed: u64,
    actor: &str,
) -> Result<PlanOutcome, EngineError> {
    let state = store.plan_state(round)?;
    if state.unassigned.is_empty() {
        return Err(EngineError::Invalid(
            "每名代表都已分配话务员,没有需要安排的代表".into(),
        ));
    }
    reassign_members(
        store,
        round,
        state.unassigned,
        operators,
        state.exclusions,
        seed,
        actor,
    )
}

/// A reassignment-kind plan: `members` drawn over `targets`, whose pending calls are their
/// existing loads and whose numbering continues after every call they already have.
fn reassign_members(
    store: &dyn Store,
    round: &RoundRecord,
    members: Vec<PlanMember>,
    targets: Vec<String>,
    exclusions: std::collections::BTreeSet<(String, i64)>,
    seed: u64,
    actor: &str,
) -> Result<PlanOutcome, EngineError> {
    let staying: Vec<_> = store
        .pending_assignments(round)?
        .into_iter()
        .filter(|a| targets.contains(&a.operator))
        .collect();
    let mut existing = Loads::from_assignments(&staying);
    for row in store.call_list(round, None)? {
        if targets.contains(&row.operator) {
            let max = existing.max_seq.entry(row.operator).or_default();
            *max = (*max).max(row.seq);
        }
    }
    let assignments = plan::reassign(&members, &targets, &exclusions, &existing, seed)?;
    let inputs = PlanInputs::new(
        PlanKind::Reassign,
        &PlanInput {
            members,
            operators: targets,
            exclusions,
            seed,
            existing,
        },
    );
    let record = store.apply_plan(
        round,
        &NewPlan {
            kind: "reassign",
            seed,
            algorithm: plan::PLAN_ALGORITHM,
            operators: inputs.operators.clone(),
            digest: plan::plan_digest(&assignments),
            inputs: inputs_json(&inputs)?,
        },
        &assignments,
        actor,
    )?;
    Ok(PlanOutcome {
        plan: record,
        planned: assignments.len(),
        called: 0,
    })
}

fn inputs_json(inputs: &PlanInputs) -> Result<String, EngineError> {
    serde_json::to_string(inputs)
        .map_err(|e| EngineError::Invalid(format!("计划输入无法写成 JSON:{e}")))
}

/// What `calls verify` found for one stored plan.
#[derive(Debug, Serialize)]
pub struct PlanCheck {
    pub plan_id: i64,
    pub kind: String,
    pub seed: u64,
    pub algorithm: String,
    pub stored_digest: String,
    /// Digest of the plan re-derived from the stored inputs (absent when it could not be).
    pub derived_digest: Option<String>,
    /// Members the plan assigned, re-derived.
    pub members: usize,
    /// Current assignments still from this plan, all checked against the re-derived ones.
    pub current: usize,
    /// Differences, in Chinese, one per line; empty when the plan verifies.
    pub problems: Vec<String>,
}

impl PlanCheck {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Re-derives every stored plan of the round from its stored inputs and seed, and compares
/// it with what is stored: the digest, the member count, and every current assignment that
/// still comes from that plan (later plans legitimately replace earlier ones' members).
pub fn verify_plans(store: &dyn Store, round: &RoundRecord) -> Result<Vec<PlanCheck>, EngineError> {
    let mut out = Vec::new();
    for p in store.plans(round)? {
        let mut check = PlanCheck {
            plan_id: p.id,
            kind: p.kind.clone(),
            seed: p.seed,
            algorithm: p.algorithm.clone(),
            stored_digest: p.digest.clone(),
            derived_digest: None,
            members: 0,
            current: 0,
            problems: Vec::new(),
        };
        let derived = match store.plan_inputs(round, p.id)? {
            None => {
                check
                    .problems
                    .push("未存计划输入(该计划生成于存储输入之前),无法复核".into());
                out.push(check);
                continue;
            }
            Some(text) => serde_json::from_str::<PlanInputs>(&text)
                .map_err(|e| format!("存储的计划输入无法读取:{e}"))
                .and_then(|inputs| {
                    let mut problems = Vec::new();
                    if inputs.seed != p.seed {
                        problems.push(format!(
                            "输入中的种子 {} 与计划记录的种子 {} 不同",
                            inputs.seed, p.seed
                        ));
                    }
                    if inputs.algorithm != p.algorithm {
                        problems.push(format!(
                            "输入中的算法 {} 与计划记录的算法 {} 不同",
                            inputs.algorithm, p.algorithm
                        ));
                    }
                    if inputs.kind.key() != p.kind {
                        problems.push(format!(
                            "输入中的类型 {} 与计划记录的类型 {} 不同",
                            inputs.kind.key(),
                            p.kind
                        ));
                    }
                    check.problems.extend(problems);
                    plan::derive(&inputs).map_err(|e| format!("无法按存储的输入重算:{e}"))
                }),
        };
        let derived = match derived {
            Ok(d) => d.assignments,
            Err(problem) => {
                check.problems.push(problem);
                out.push(check);
                continue;
            }
        };
        let digest = plan::plan_digest(&derived);
        if digest != p.digest {
            check.problems.push(format!(
                "重算的摘要 {digest} 与存储的摘要 {} 不同",
                p.digest
            ));
        }
        if derived.len() != p.members {
            check.problems.push(format!(
                "重算得 {} 名代表,计划记录为 {} 名",
                derived.len(),
                p.members
            ));
        }
        let by_member: BTreeMap<i64, &plan::Assignment> =
            derived.iter().map(|a| (a.member_id, a)).collect();
        let current = store.plan_assignments(round, p.id)?;
        check.current = current.len();
        for a in &current {
            match by_member.get(&a.member_id) {
                None => check.problems.push(format!(
                    "代表 {}(单位 {})记在本计划下,但重算的计划里没有此人",
                    a.member_id, a.unit_id
                )),
                Some(d) if (&d.operator, d.seq, d.unit_id) != (&a.operator, a.seq, a.unit_id) => {
                    check.problems.push(format!(
                        "代表 {}:存储为 {} 第 {} 个(单位 {}),重算为 {} 第 {} 个(单位 {})",
                        a.member_id, a.operator, a.seq, a.unit_id, d.operator, d.seq, d.unit_id
                    ))
                }
                Some(_) => {}
            }
        }
        check.members = derived.len();
        check.derived_digest = Some(digest);
        out.push(check);
    }
    Ok(out)
}

#[derive(Debug, Serialize)]
pub struct UnitProgress {
    pub unit: String,
    pub kind: &'static str,
    pub sector: String,
    #[serde(flatten)]
    pub tally: Tally,
}

#[derive(Debug, Serialize)]
pub struct OnCall {
    pub operator: String,
    pub unit: String,
}

/// An attempt recorded after its claim lapsed while another claim or record on the member came
/// in between: stored and counted by the best-of rule, listed for the supervisor to review.
#[derive(Debug, Serialize)]
pub struct LateRecord {
    pub attempt_id: i64,
    pub member_id: i64,
    pub operator: String,
    pub unit: String,
    pub outcome: &'static str,
    pub recorded_at_ms: i64,
}

#[derive(Debug, Serialize)]
pub struct ProgressReport {
    pub round: String,
    pub field_closed: bool,
    pub units: Vec<UnitProgress>,
    pub overall: Tally,
    pub operators: Vec<OperatorTally>,
    pub on_call: Vec<OnCall>,
    pub late: Vec<LateRecord>,
}

/// Per member: its facts in time order and its current disposition.
pub struct MemberStatus {
    pub unit_id: i64,
    pub operator: Option<String>,
    pub facts: Vec<AttemptFact>,
    pub reopened_at: Option<DateTime<Utc>>,
    pub in_progress: bool,
}

impl MemberStatus {
    /// The member's history as the disposition rules read it.
    pub fn history(&self) -> MemberHistory<'_> {
        MemberHistory {
            attempts: &self.facts,
            reopened_at: self.reopened_at,
        }
    }

    /// The member's disposition: the one place a status becomes a disposition.
    pub fn disposition(&self, max_attempts: u32, field_closed: bool) -> Disposition {
        self.history().disposition(max_attempts, field_closed)
    }
}

/// Every member's history, from the stored attempts (results never keep a second copy).
pub fn member_statuses(
    store: &dyn Store,
    round: &RoundRecord,
    now: DateTime<Utc>,
) -> Result<BTreeMap<i64, MemberStatus>, EngineError> {
    let data = store.field_data(round, now)?;
    data.ensure_readable()?;
    Ok(statuses_of(&data))
}

/// Every member's history from field data already read.
fn statuses_of(data: &FieldData) -> BTreeMap<i64, MemberStatus> {
    let mut out: BTreeMap<i64, MemberStatus> = data
        .members
        .iter()
        .map(|(id, unit_id, op)| {
            (
                *id,
                MemberStatus {
                    unit_id: *unit_id,
                    operator: op.clone(),
                    facts: Vec::new(),
                    reopened_at: data.reopened.get(id).copied().map(ms_to_utc),
                    in_progress: data.claimed.contains_key(id),
                },
            )
        })
        .collect();
    for a in &data.attempts {
        if let Some(m) = out.get_mut(&a.member_id) {
            m.facts.push(a.fact());
        }
    }
    out
}

pub fn progress(
    store: &dyn Store,
    round: &RoundRecord,
    now: DateTime<Utc>,
) -> Result<ProgressReport, EngineError> {
    let units: Vec<UnitRecord> = store.units(round.id)?;
    let data = store.field_data(round, now)?;
    data.ensure_readable()?;
    let statuses = statuses_of(&data);
    let closed = round.field_closed(now);
    let unit_ids: Vec<i64> = units.iter().map(|u| u.id).collect();
    let p = progress::progress(
        &unit_ids,
        statuses.values().map(|m| MemberFacts {
            unit_id: m.unit_id,
            operator: m.operator.as_deref(),
            attempts: &m.facts,
            reopened_at: m.reopened_at,
            in_progress: m.in_progress,
        }),
        data.attempts
            .iter()
            .map(|a| (a.operator.as_str(), a.outcome)),
        round.survey.calling.max_attempts,
        closed,
    );
    let names: BTreeMap<i64, &UnitRecord> = units.iter().map(|u| (u.id, u)).collect();
    let on_call = data
        .claimed
        .iter()
        .map(|(member, op)| OnCall {
            operator: op.clone(),
            unit: statuses
                .get(member)
                .and_then(|m| names.get(&m.unit_id))
                .map(|u| u.name.clone())
                .unwrap_or_default(),
        })
        .collect();
    Ok(ProgressReport {
        round: round.key.clone(),
        field_closed: closed,
        units: units
            .iter()
            .map(|u| UnitProgress {
                unit: u.name.clone(),
                kind: u.kind.label(),
                sector: u.sector.clone(),
                tally: p.units.get(&u.id).cloned().unwrap_or_default(),
            })
            .collect(),
        overall: p.overall,
        operators: p.operators,
        on_call,
        late: data
            .attempts
            .iter()
            .filter(|a| a.late)
            .map(|a| LateRecord {
                attempt_id: a.id,
                member_id: a.member_id,
                operator: a.operator.clone(),
                unit: names
                    .get(&a.unit_id)
                    .map(|u| u.name.clone())
                    .unwrap_or_default(),
                outcome: a.outcome.label(),
                recorded_at_ms: a.recorded_at_ms,
            })
            .collect(),
    })
}

/// The call list with each member's status, phones masked unless `reveal`.
pub fn call_list_rows(
    store: &dyn Store,
    round: &RoundRecord,
    operator: Option<&str>,
    reveal: bool,
    now: DateTime<Utc>,
) -> Result<Vec<Vec<String>>, EngineError> {
    let statuses = member_statuses(store, round, now)?;
    let closed = round.field_closed(now);
    let rows = store.call_list(round, operator)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let status = match statuses.get(&r.member_id) {
                Some(m) if m.in_progress => "通话中".to_string(),
                Some(m) => {
                    let d = m.disposition(round.survey.calling.max_attempts, closed);
                    d.label().to_string()
                }
                None => String::new(),
            };
            let phone = r.phone.as_deref().map(|p| {
                if reveal {
                    p.to_string()
                } else {
                    crate::domain::phone::mask_canonical(p)
                }
            });
            vec![
                r.operator,
                r.seq.to_string(),
                r.unit,
                r.name.unwrap_or_default(),
                phone.unwrap_or_default(),
                r.category.label().to_string(),
                status,
                r.unit_id.to_string(),
                r.member_id.to_string(),
            ]
        })
        .collect())
}

/// `unit_id` and `member_id` are the keys the plan algorithm orders by (docs/plan.md), so a third
/// party can re-derive the plan from the export and the inputs file.
pub const CALL_LIST_COLUMNS: [&str; 9] = [
    "operator",
    "seq",
    "unit",
    "name",
    "phone",
    "category",
    "status",
    "unit_id",
    "member_id",
];

// ---------------------------------------------------------------------------------------------
// Conflicts of interest (`sheping operators …` and the console's exclusions page)

/// The round's conflicts of interest with the pending contacts of the plan in force.
pub fn exclusions(
    store: &dyn Store,
    round: &RoundRecord,
) -> Result<crate::domain::exclusion::ExclusionOverview, EngineError> {
    let state = store.plan_state(round)?;
    let pending = store.pending_assignments(round)?;
    Ok(crate::domain::exclusion::ExclusionOverview::new(
        &state.exclusions,
        &pending,
    ))
}

/// An exclusion added or removed, and the plan's state after it.
#[derive(Debug)]
pub struct ExclusionChange {
    pub login: String,
    pub unit: String,
    pub excluded: bool,
    /// False when there was nothing to change (already excluded / not excluded).
    pub changed: bool,
    pub overview: crate::domain::exclusion::ExclusionOverview,
    /// Pending contacts of that unit the operator still holds in the plan in force.
    pub held: usize,
}

impl ExclusionChange {
    /// What the CLI prints and the console shows.
    pub fn messages(&self) -> Vec<String> {
        let (login, unit) = (&self.login, &self.unit);
        let mut out = vec![match (self.excluded, self.changed) {
            (true, _) => {
                format!("已记录回避:话务员 {login} 不拨打“{unit}”的代表。重新生成拨打计划后生效。")
            }
            (false, true) => format!(
                "已取消回避:话务员 {login} 可以拨打“{unit}”的代表。重新生成拨打计划后生效。"
            ),
            (false, false) => {
                format!("话务员 {login} 对“{unit}”本无回避记录,未作更改。")
            }
        }];
        if self.excluded && self.held > 0 {
            out.push(format!(
                "注意:按现行计划,话务员 {login} 还有“{unit}”的 {} 名待拨代表;请重新生成拨打计划,或把 {login} 的待拨代表转派给其他话务员,回避才对这些代表生效。",
                self.held
            ));
        }
        out
    }
}

/// Adds (`excluded`) or removes the conflict of interest between an operator and a unit (by
/// name), logged in the audit log.
pub fn set_exclusion(
    store: &dyn Store,
    round: &RoundRecord,
    login: &str,
    unit: &str,
    excluded: bool,
    actor: &str,
) -> Result<ExclusionChange, EngineError> {
    let unit_id = store
        .units(round.id)?
        .into_iter()
        .find(|u| u.name == unit)
        .map(|u| u.id)
        .ok_or_else(|| EngineError::Invalid(format!("单位“{unit}”不在轮次 {} 中", round.key)))?;
    match store.users()?.into_iter().find(|u| u.login == login) {
        Some(u) if u.role == Role::Operator => {}
        Some(_) => {
            return Err(EngineError::Invalid(format!(
                "用户 {login} 不是话务员:回避只针对话务员"
            )));
        }
        None => return Err(EngineError::Invalid(format!("没有用户 `{login}`"))),
    }
    let changed = if excluded {
        let before = store.plan_state(round)?.exclusions;
        store.exclude_operator(round, login, unit_id, actor)?;
        !before.contains(&(login.to_string(), unit_id))
    } else {
        store.remove_exclusion(round, login, unit_id, actor)?
    };
    let overview = exclusions(store, round)?;
    let held = if excluded {
        overview.conflict(login, unit_id)
    } else {
        0
    };
    Ok(ExclusionChange {
        login: login.to_string(),
        unit: unit.to_string(),
        excluded,
        changed,
        overview,
        held,
    })
}
