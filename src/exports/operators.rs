//! The `operators` export: per operator, the field figures of `/progress` and the
//! interviewer-effect checks of the results.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::domain::progress::{self, MemberFacts, OperatorTally, Tally};
use crate::domain::scoring::OperatorCheck;
use crate::engine::{self, EngineError, Store};
use crate::storage::RoundRecord;

use super::ExportError;
use super::columns::{Columns, Context, VarType, bit, category_columns, of, yes_no};

/// Per operator, the members assigned to them tallied as a panel (state, category, RR1), by
/// the same domain code as the units' tallies (the operators' table of `/progress`).
pub fn operator_panel_tallies(
    store: &dyn Store,
    round: &RoundRecord,
    now: DateTime<Utc>,
) -> Result<BTreeMap<String, Tally>, EngineError> {
    let statuses = engine::member_statuses(store, round, now)?;
    let mut logins: Vec<&str> = statuses
        .values()
        .filter_map(|m| m.operator.as_deref())
        .collect();
    logins.sort_unstable();
    logins.dedup();
    let index = |op: &str| {
        logins
            .iter()
            .position(|l| *l == op)
            .map_or(-1, |i| i as i64)
    };
    let ids: Vec<i64> = (0..logins.len() as i64).collect();
    let p = progress::progress(
        &ids,
        statuses
            .values()
            .filter(|m| m.operator.is_some())
            .map(|m| MemberFacts {
                unit_id: index(m.operator.as_deref().unwrap_or("")),
                operator: m.operator.as_deref(),
                attempts: &m.facts,
                reopened_at: m.reopened_at,
                in_progress: m.in_progress,
            }),
        std::iter::empty(),
        round.survey.calling.max_attempts,
        round.field_closed(now),
    );
    Ok(logins
        .iter()
        .enumerate()
        .map(|(i, l)| {
            (
                l.to_string(),
                p.units.get(&(i as i64)).cloned().unwrap_or_default(),
            )
        })
        .collect())
}

/// One operator's figures.
pub(super) struct OperatorLine<'a> {
    login: String,
    /// The members assigned to the operator, as a panel.
    panel: Tally,
    /// The operator's calls (`/progress`).
    calls: Option<OperatorTally>,
    /// The interviewer-effect checks.
    check: Option<&'a OperatorCheck>,
}

/// A count of the members assigned to an operator.
type Count = fn(&Tally) -> u32;

pub(super) fn columns<'a>() -> Columns<OperatorLine<'a>> {
    use VarType::*;
    let panel: [(&str, &str, Count); 6] = [
        ("panel", "名下代表人数(当前分配给该话务员)", |t| t.panel),
        ("completes", "名下代表中已完成访问的人数", |t| t.completes),
        ("partials", "名下代表中部分完成的人数", |t| {
            t.partials
        }),
        ("pending", "名下代表中待拨的人数(含未拨打)", |t| t.pending),
        ("in_progress", "名下代表中正在通话的人数", |t| {
            t.in_progress
        }),
        ("final", "名下代表中已结束的人数", |t| t.final_),
    ];
    let c = Columns::<OperatorLine>::new()
        .col("operator", "话务员(登录名)", Text, |r| {
            r.login.clone()
        })
        .each(panel, |c, (name, label, get)| {
            c.col(name, label, Integer, move |r| get(&r.panel).to_string())
        });
    category_columns(c, "名下代表", |r, cat| r.panel.dispositions.get(cat))
        .col("rr1", "名下代表的应答率 RR1", Number, |r| {
            of(r.panel.rates.rr1)
        })
        .col("attempts", "该话务员的拨打次数", Integer, |r| {
            r.calls.as_ref().map_or(0, |o| o.attempts).to_string()
        })
        .col(
            "complete_attempts",
            "该话务员拨打中结果为完成的次数",
            Integer,
            |r| r.calls.as_ref().map_or(0, |o| o.completes).to_string(),
        )
        .col(
            "completion_rate",
            "每次拨打完成率(完成次数 ÷ 拨打次数)",
            Number,
            |r| of(r.calls.as_ref().and_then(|o| o.completion_rate)),
        )
        .col(
            "scored_interviews",
            "该话务员访问的、计入得分的完成访问数",
            Integer,
            |r| r.check.map_or(0, |c| c.completes).to_string(),
        )
        .col(
            "mean_centred",
            "受访者得分减去所在单位平均分后的平均值",
            Number,
            |r| of(r.check.and_then(|c| c.mean_centred)),
        )
        .col(
            "welch_t",
            "Welch t 检验(与其他话务员比较)的 t 值",
            Number,
            |r| of(r.check.and_then(|c| c.welch_t)),
        )
        .col("welch_df", "Welch t 检验的自由度", Number, |r| {
            of(r.check.and_then(|c| c.welch_df))
        })
        .col("p", "Welch t 检验的 p 值", Number, |r| {
            of(r.check.and_then(|c| c.p))
        })
        .col("p_holm", "Holm 校正后的 p 值", Number, |r| {
            of(r.check.and_then(|c| c.p_holm))
        })
        .col(
            "flagged",
            "话务员效应提示(1=是,0=否)",
            Integer,
            |r| bit(r.check.is_some_and(|c| c.flagged)),
        )
        .values(yes_no())
        .col(
            "straight_lines",
            "五个维度答案完全相同的完成访问数",
            Integer,
            |r| r.check.map_or(0, |c| c.straight_lines).to_string(),
        )
        .col(
            "straight_line_p",
            "直线作答的二项检验 p 值(P(X ≥ 观察数))",
            Number,
            |r| of(r.check.and_then(|c| c.straight_line_p)),
        )
        .col(
            "straight_line_flagged",
            "直线作答提示(1=是,0=否)",
            Integer,
            |r| bit(r.check.is_some_and(|c| c.straight_line_flagged)),
        )
        .values(yes_no())
}

/// One row per operator who has members assigned, made attempts or conducted interviews: the
/// figures of `/progress` (`sheping progress --json`) and of the results' operator checks.
pub(super) fn rows<'a>(
    store: &dyn Store,
    cx: &'a Context<'a>,
    now: DateTime<Utc>,
) -> Result<Vec<OperatorLine<'a>>, ExportError> {
    let round = &cx.data.round;
    let report = engine::progress(store, round, now)?;
    let panels = operator_panel_tallies(store, round, now)?;
    let checks = &cx.doc.quality.operator_effect.operators;
    let mut logins: Vec<&str> = panels
        .keys()
        .map(String::as_str)
        .chain(report.operators.iter().map(|o| o.operator.as_str()))
        .chain(checks.iter().map(|c| c.operator.as_str()))
        .collect();
    logins.sort_unstable();
    logins.dedup();
    Ok(logins
        .into_iter()
        .map(|login| OperatorLine {
            login: login.to_string(),
            panel: panels.get(login).cloned().unwrap_or_default(),
            calls: report
                .operators
                .iter()
                .find(|o| o.operator == login)
                .cloned(),
            check: checks.iter().find(|c| c.operator == login),
        })
        .collect())
}
