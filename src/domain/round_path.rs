//! A round's path at a glance (the office's "施工图"): the stages of an evaluation in order —
//! units, roster, operators and conflicts, plan, calling, on-site data, results, lock, report
//! and feedback pages, contacts purged — each with its state, what it has done so far, what is
//! still missing, and the page that does it. Computed from a round's counts; no SQL, no HTTP.

/// What the path is computed from: one round's counts, as storage reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundCounts {
    pub units: usize,
    /// Units with at least one representative.
    pub units_with_members: usize,
    pub members: usize,
    /// Members never called that no operator has (not in any plan).
    pub members_unassigned: usize,
    /// Members whose name or a number is still stored.
    pub members_with_contacts: usize,
    /// Active operator accounts.
    pub operators: usize,
    /// Conflict-of-interest exclusions (operator × unit) of this round.
    pub exclusions: usize,
    /// Plans generated or reassignments made.
    pub plans: usize,
    pub attempts: usize,
    /// Members with a completed interview.
    pub completes: usize,
    /// Units with at least one completed interview.
    pub units_with_completes: usize,
    /// Units with fewer completes than `min_completes`.
    pub units_short: usize,
    /// The survey's minimum of completed interviews per unit.
    pub min_completes: u32,
    /// Units with on-site evaluation data (ballots or a direct score).
    pub units_with_onsite: usize,
    pub locked: bool,
    pub contacts_purged: bool,
}

/// The stages, in the order a round goes through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageKind {
    Units,
    Roster,
    Operators,
    Plan,
    Calling,
    Onsite,
    Results,
    Lock,
    Report,
    Purge,
}

impl StageKind {
    pub const ALL: [StageKind; 10] = [
        StageKind::Units,
        StageKind::Roster,
        StageKind::Operators,
        StageKind::Plan,
        StageKind::Calling,
        StageKind::Onsite,
        StageKind::Results,
        StageKind::Lock,
        StageKind::Report,
        StageKind::Purge,
    ];

    pub fn title(self) -> &'static str {
        match self {
            StageKind::Units => "参评单位",
            StageKind::Roster => "代表名单",
            StageKind::Operators => "话务员与回避",
            StageKind::Plan => "拨打计划",
            StageKind::Calling => "电话调查",
            StageKind::Onsite => "现场评价数据",
            StageKind::Results => "评估结果",
            StageKind::Lock => "锁定本轮",
            StageKind::Report => "报告与反馈页",
            StageKind::Purge => "清除联系方式",
        }
    }

    /// A stable name for HTML ids and tests.
    pub fn key(self) -> &'static str {
        match self {
            StageKind::Units => "units",
            StageKind::Roster => "roster",
            StageKind::Operators => "operators",
            StageKind::Plan => "plan",
            StageKind::Calling => "calling",
            StageKind::Onsite => "onsite",
            StageKind::Results => "results",
            StageKind::Lock => "lock",
            StageKind::Report => "report",
            StageKind::Purge => "purge",
        }
    }

    /// The stages an evaluator sees: those about the results.
    pub fn concerns_results(self) -> bool {
        matches!(
            self,
            StageKind::Results | StageKind::Lock | StageKind::Report
        )
    }

    /// The administrator's page for this stage, `{key}` standing for the round's key
    /// (percent-encoded by the caller).
    pub fn admin_link(self) -> &'static str {
        match self {
            StageKind::Units => "/admin/rounds/{key}#units",
            StageKind::Roster => "/admin/rounds/{key}/members",
            StageKind::Operators => "/admin/rounds/{key}/exclusions",
            StageKind::Plan => "/admin/rounds/{key}#plan",
            StageKind::Calling => "/rounds/{key}/progress",
            StageKind::Onsite => "/admin/rounds/{key}/onsite",
            StageKind::Results => "/rounds/{key}/results",
            StageKind::Lock => "/admin/rounds/{key}#lock",
            StageKind::Report => "/rounds/{key}/results",
            StageKind::Purge => "/admin/rounds/{key}/purge-contacts",
        }
    }

    /// The page a statistician can open for this stage (read-only), if any.
    pub fn statistician_link(self) -> Option<&'static str> {
        match self {
            StageKind::Calling => Some("/rounds/{key}/progress"),
            StageKind::Results | StageKind::Report => Some("/rounds/{key}/results"),
            _ => None,
        }
    }

    /// The page an evaluator can open for this stage, if any.
    pub fn evaluator_link(self) -> Option<&'static str> {
        match self {
            StageKind::Results | StageKind::Report => Some("/rounds/{key}/results"),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageState {
    NotStarted,
    InProgress,
    Done,
}

impl StageState {
    pub fn label(self) -> &'static str {
        match self {
            StageState::NotStarted => "未开始",
            StageState::InProgress => "进行中",
            StageState::Done => "已完成",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            StageState::NotStarted => "not-started",
            StageState::InProgress => "in-progress",
            StageState::Done => "done",
        }
    }
}

/// One stage of the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub kind: StageKind,
    pub state: StageState,
    /// What is there so far, with counts (e.g. "3 个单位,15 名代表").
    pub summary: String,
    /// What is still missing, one sentence each (empty when nothing is).
    pub missing: Vec<String>,
}

/// The round's stages in order, each with its state, counts and what is missing.
pub fn round_path(c: &RoundCounts) -> Vec<Stage> {
    StageKind::ALL
        .iter()
        .map(|&kind| {
            let (state, summary, missing) = stage(kind, c);
            Stage {
                kind,
                state,
                summary,
                missing,
            }
        })
        .collect()
}

fn stage(kind: StageKind, c: &RoundCounts) -> (StageState, String, Vec<String>) {
    use StageState::*;
    let min = c.min_completes as usize;
    let units_without_members = c.units.saturating_sub(c.units_with_members);
    let units_without_onsite = c.units.saturating_sub(c.units_with_onsite);
    match kind {
        StageKind::Units => {
            if c.units == 0 {
                (
                    NotStarted,
                    "尚无参评单位".into(),
                    vec!["尚未导入参评单位".into()],
                )
            } else {
                (Done, format!("{} 个参评单位", c.units), vec![])
            }
        }
        StageKind::Roster => {
            let summary = format!(
                "{} 个单位有代表名单,共 {} 名代表",
                c.units_with_members, c.members
            );
            if c.members == 0 {
                (NotStarted, summary, vec!["尚未导入代表名单".into()])
            } else if units_without_members > 0 {
                (
                    InProgress,
                    summary,
                    vec![format!("{units_without_members} 个单位尚无代表名单")],
                )
            } else {
                (Done, summary, vec![])
            }
        }
        StageKind::Operators => {
            let summary = format!("{} 名在岗话务员,{} 条回避关系", c.operators, c.exclusions);
            if c.operators == 0 {
                (
                    NotStarted,
                    summary,
                    vec!["尚无在岗话务员账号(在“用户”中添加)".into()],
                )
            } else {
                (Done, summary, vec![])
            }
        }
        StageKind::Plan => {
            let assigned = c.members.saturating_sub(c.members_unassigned);
            let summary = format!("{} 次计划或转派,{assigned} 名代表已分配话务员", c.plans);
            if c.plans == 0 {
                (NotStarted, summary, vec!["尚未生成拨打计划".into()])
            } else if c.members_unassigned > 0 {
                (
                    InProgress,
                    summary,
                    vec![format!("{} 名代表未分配话务员", c.members_unassigned)],
                )
            } else {
                (Done, summary, vec![])
            }
        }
        StageKind::Calling => {
            let summary = format!(
                "已拨打 {} 次,完成访问 {} 份(每单位至少 {min} 份)",
                c.attempts, c.completes
            );
            if c.attempts == 0 {
                (NotStarted, summary, vec!["尚未开始拨打".into()])
            } else if c.units_short > 0 {
                (
                    InProgress,
                    summary,
                    vec![format!("{} 个单位完成访问不足 {min} 份", c.units_short)],
                )
            } else {
                (Done, summary, vec![])
            }
        }
        StageKind::Onsite => {
            let summary = format!("{} 个单位有现场评价数据", c.units_with_onsite);
            let missing = vec![format!("{units_without_onsite} 个单位尚无现场评价数据")];
            if c.units_with_onsite == 0 {
                (NotStarted, summary, missing)
            } else if units_without_onsite > 0 {
                (InProgress, summary, missing)
            } else {
                (Done, summary, vec![])
            }
        }
        StageKind::Results => {
            let summary = format!("{} 个单位可计算电话调查得分", c.units_with_completes);
            let mut missing = Vec::new();
            if c.units_short > 0 {
                missing.push(format!(
                    "{} 个单位完成访问不足 {min} 份,结果加注“完成数不足”",
                    c.units_short
                ));
            }
            if units_without_onsite > 0 {
                missing.push(format!(
                    "{units_without_onsite} 个单位缺现场评价数据,社会评价得分不完整"
                ));
            }
            if c.completes == 0 {
                (
                    NotStarted,
                    summary,
                    vec!["尚无完成的访问,不能计算结果".into()],
                )
            } else if !missing.is_empty() {
                (InProgress, summary, missing)
            } else {
                (Done, summary, vec![])
            }
        }
        StageKind::Lock => {
            if c.locked {
                (Done, "本轮已锁定,结果定稿".into(), vec![])
            } else {
                (
                    NotStarted,
                    "尚未锁定".into(),
                    vec!["结果定稿后锁定本轮,此后数据不能再修改".into()],
                )
            }
        }
        StageKind::Report => {
            if c.completes == 0 {
                (
                    NotStarted,
                    "尚无结果,报告和反馈页不可用".into(),
                    vec!["有完成的访问后才能生成报告和各单位反馈页".into()],
                )
            } else if c.locked {
                (
                    Done,
                    format!("报告和 {} 个单位的反馈页可用(定稿)", c.units),
                    vec![],
                )
            } else {
                (
                    InProgress,
                    format!("报告和 {} 个单位的反馈页可预览", c.units),
                    vec!["锁定前为初稿,数据仍可能变化".into()],
                )
            }
        }
        StageKind::Purge => {
            if c.contacts_purged && c.members_with_contacts == 0 {
                (Done, "代表的姓名和号码已清除".into(), vec![])
            } else if !c.locked {
                (
                    NotStarted,
                    format!("{} 名代表的姓名和号码在库中", c.members_with_contacts),
                    vec!["锁定本轮后才能清除联系方式".into()],
                )
            } else if c.members_with_contacts == 0 {
                (Done, "库中已无代表的姓名和号码".into(), vec![])
            } else {
                let state = if c.contacts_purged {
                    InProgress
                } else {
                    NotStarted
                };
                (
                    state,
                    format!("{} 名代表的姓名和号码在库中", c.members_with_contacts),
                    vec![format!(
                        "{} 名代表的姓名和号码尚未清除",
                        c.members_with_contacts
                    )],
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(path: &[Stage], kind: StageKind) -> &Stage {
        path.iter().find(|s| s.kind == kind).unwrap()
    }

    fn fresh() -> RoundCounts {
        RoundCounts {
            min_completes: 30,
            ..Default::default()
        }
    }

    #[test]
    fn a_fresh_round_has_every_stage_not_started_in_order() {
        let path = round_path(&fresh());
        let kinds: Vec<StageKind> = path.iter().map(|s| s.kind).collect();
        assert_eq!(kinds, StageKind::ALL);
        for s in &path {
            assert_eq!(s.state, StageState::NotStarted, "{:?}", s.kind);
            assert!(!s.missing.is_empty(), "{:?} says what is missing", s.kind);
        }
        assert_eq!(find(&path, StageKind::Units).missing, ["尚未导入参评单位"]);
        assert_eq!(find(&path, StageKind::Plan).missing, ["尚未生成拨打计划"]);
    }

    #[test]
    fn a_roster_for_some_units_is_in_progress_and_names_the_rest() {
        let c = RoundCounts {
            units: 5,
            units_with_members: 2,
            members: 12,
            members_with_contacts: 12,
            ..fresh()
        };
        let path = round_path(&c);
        assert_eq!(find(&path, StageKind::Units).state, StageState::Done);
        let roster = find(&path, StageKind::Roster);
        assert_eq!(roster.state, StageState::InProgress);
        assert_eq!(roster.missing, ["3 个单位尚无代表名单"]);
        assert!(roster.summary.contains("12 名代表"));
    }

    #[test]
    fn a_plan_with_members_left_over_says_how_many_lack_an_operator() {
        let c = RoundCounts {
            units: 3,
            units_with_members: 3,
            members: 40,
            members_unassigned: 12,
            operators: 2,
            exclusions: 1,
            plans: 1,
            ..fresh()
        };
        let path = round_path(&c);
        let plan = find(&path, StageKind::Plan);
        assert_eq!(plan.state, StageState::InProgress);
        assert_eq!(plan.missing, ["12 名代表未分配话务员"]);
        assert!(plan.summary.contains("28 名代表已分配"));
        let ops = find(&path, StageKind::Operators);
        assert_eq!(ops.state, StageState::Done);
        assert!(ops.summary.contains("1 条回避"));
        let all = RoundCounts {
            members_unassigned: 0,
            ..c
        };
        assert_eq!(
            find(&round_path(&all), StageKind::Plan).state,
            StageState::Done
        );
    }

    #[test]
    fn calling_and_onsite_count_what_is_missing_per_unit() {
        let c = RoundCounts {
            units: 3,
            units_with_members: 3,
            members: 90,
            operators: 1,
            plans: 1,
            attempts: 50,
            completes: 40,
            units_with_completes: 3,
            units_short: 2,
            units_with_onsite: 0,
            ..fresh()
        };
        let path = round_path(&c);
        let calling = find(&path, StageKind::Calling);
        assert_eq!(calling.state, StageState::InProgress);
        assert_eq!(calling.missing, ["2 个单位完成访问不足 30 份"]);
        let onsite = find(&path, StageKind::Onsite);
        assert_eq!(onsite.state, StageState::NotStarted);
        assert_eq!(onsite.missing, ["3 个单位尚无现场评价数据"]);
        let results = find(&path, StageKind::Results);
        assert_eq!(results.state, StageState::InProgress);
        assert_eq!(results.missing.len(), 2);
        assert_eq!(find(&path, StageKind::Report).state, StageState::InProgress);
        let some = RoundCounts {
            units_with_onsite: 1,
            ..c
        };
        let onsite = round_path(&some)[StageKind::Onsite as usize].clone();
        assert_eq!(onsite.state, StageState::InProgress);
        assert_eq!(onsite.missing, ["2 个单位尚无现场评价数据"]);
    }

    #[test]
    fn a_locked_round_is_final_and_then_purged() {
        let c = RoundCounts {
            units: 2,
            units_with_members: 2,
            members: 60,
            members_with_contacts: 60,
            operators: 1,
            plans: 1,
            attempts: 70,
            completes: 60,
            units_with_completes: 2,
            units_short: 0,
            units_with_onsite: 2,
            locked: true,
            ..fresh()
        };
        let path = round_path(&c);
        for k in [
            StageKind::Units,
            StageKind::Roster,
            StageKind::Plan,
            StageKind::Calling,
            StageKind::Onsite,
            StageKind::Results,
            StageKind::Lock,
            StageKind::Report,
        ] {
            assert_eq!(find(&path, k).state, StageState::Done, "{k:?}");
            assert!(find(&path, k).missing.is_empty(), "{k:?}");
        }
        let purge = find(&path, StageKind::Purge);
        assert_eq!(purge.state, StageState::NotStarted);
        assert_eq!(purge.missing, ["60 名代表的姓名和号码尚未清除"]);
        let purged = RoundCounts {
            members_with_contacts: 0,
            contacts_purged: true,
            ..c
        };
        assert_eq!(
            find(&round_path(&purged), StageKind::Purge).state,
            StageState::Done
        );
    }

    #[test]
    fn purging_waits_for_the_lock() {
        let c = RoundCounts {
            units: 1,
            members: 5,
            members_with_contacts: 5,
            ..fresh()
        };
        let purge = round_path(&c)[StageKind::Purge as usize].clone();
        assert_eq!(purge.state, StageState::NotStarted);
        assert_eq!(purge.missing, ["锁定本轮后才能清除联系方式"]);
    }

    #[test]
    fn evaluators_see_only_the_results_stages() {
        let shown: Vec<&str> = StageKind::ALL
            .iter()
            .filter(|k| k.concerns_results())
            .map(|k| k.title())
            .collect();
        assert_eq!(shown, ["评估结果", "锁定本轮", "报告与反馈页"]);
        assert!(
            StageKind::ALL
                .iter()
                .all(|k| k.evaluator_link().is_none_or(|l| !l.starts_with("/admin")))
        );
        assert!(StageKind::ALL.iter().all(|k| {
            k.statistician_link()
                .is_none_or(|l| !l.starts_with("/admin"))
        }));
    }
}
