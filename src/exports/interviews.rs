//! The respondent-level exports: `responses` (one row per interview) and `attempts` (one row
//! per call, the paradata).

use std::collections::BTreeSet;

use crate::domain::disposition::Outcome;
use crate::domain::survey::Survey;
use crate::results;
use crate::storage::AttemptRecord;

use super::columns::{
    Columns, Context, Measure, UnitCells, UnitRow, VarType, f, level_values, of, outcome_values,
    unit_columns,
};

/// One interview (an attempt with answers) and what its columns show.
pub(super) struct Interview<'a> {
    cx: &'a Context<'a>,
    a: &'a AttemptRecord,
    unit: UnitCells<'a>,
    scored: bool,
    /// Per dimension: the level index answered and its score.
    answers: Vec<Option<(usize, f64)>>,
    /// Score and share of satisfied answers, for complete interviews only.
    respondent_score: Option<f64>,
    satisfied_share: Option<f64>,
}

impl UnitRow for Interview<'_> {
    fn unit(&self) -> &UnitCells<'_> {
        &self.unit
    }
}

/// The operators' free-text comments. Not named `comment`: at the start of a line SPSS and
/// PSPP read that as the COMMENT command, even inside GET DATA's variable list.
const REMARK: (&str, &str) = ("remark", "话务员记录的意见建议(姓名、号码已遮蔽)");

pub(super) fn responses_columns<'a>(
    survey: &Survey,
    with_comments: bool,
) -> Columns<Interview<'a>> {
    use VarType::*;
    let levels = level_values(survey);
    let c = unit_columns(Columns::<Interview>::new().col(
        "respondent_id",
        "受访者化名编号(本轮内稳定,不可反推身份)",
        Text,
        |r| r.cx.data.respondent_id(r.a.member_id),
    ))
    .col("category", "代表类别", Text, |r| {
        r.cx.data
            .categories
            .get(&r.a.member_id)
            .map(|c| c.label().to_string())
            .unwrap_or_default()
    })
    .col("operator", "话务员(登录名)", Text, |r| {
        r.a.operator.clone()
    })
    .col("attempt_no", "该代表的第几次拨打", Integer, |r| {
        r.a.attempt_no.to_string()
    })
    .measure(Measure::Scale)
    .col(
        "interview_at",
        "访问时间(本地时间)",
        DateTime,
        |r| r.cx.data.local_time(r.a.recorded_at_ms),
    )
    .col(
        "duration_secs",
        "访问时长(秒,从领取到提交;导入的记录为空)",
        Number,
        |r| of(results::duration_secs(r.a)),
    )
    .col("outcome", "拨打结果", Text, |r| {
        r.a.outcome.key().to_string()
    })
    .values(outcome_values(&[Outcome::Complete, Outcome::Partial]))
    .col("aapor_code", "AAPOR 结果代码", Text, |r| {
        r.a.aapor_code.clone()
    })
    .col("scored", "是否计入得分(1=是,0=否)", Integer, |r| {
        u8::from(r.scored).to_string()
    })
    .values(vec![
        ("1".into(), "计入".into()),
        ("0".into(), "不计入".into()),
    ]);
    c.each(survey.dimensions.iter().enumerate(), |c, (d, dim)| {
        c.col(
            format!("{}_level", dim.key),
            format!("{}:等级序号(1=最好)", dim.label),
            Integer,
            move |r| {
                r.answers
                    .get(d)
                    .copied()
                    .flatten()
                    .map(|(l, _)| (l + 1).to_string())
                    .unwrap_or_default()
            },
        )
        .values(levels.clone())
        .measure(Measure::Ordinal)
        .col(
            format!("{}_score", dim.key),
            format!("{}:等级分值", dim.label),
            Number,
            move |r| {
                r.answers
                    .get(d)
                    .copied()
                    .flatten()
                    .map(|(_, s)| f(s))
                    .unwrap_or_default()
            },
        )
    })
    .col(
        "respondent_score",
        "受访者得分(各维度分值加权和,完成访问才有)",
        Number,
        |r| of(r.respondent_score),
    )
    .col(
        "satisfied_share",
        "满意答案占比(计为满意的等级,完成访问才有)",
        Number,
        |r| of(r.satisfied_share),
    )
    .when(with_comments, |c| {
        c.col(REMARK.0, REMARK.1, Text, |r| r.cx.comment(r.a))
    })
}

/// Every attempt with answers, in the order recorded (ties by id: the stated order of
/// interviews recorded at the same time).
pub(super) fn responses_rows<'a>(cx: &'a Context<'a>) -> Vec<Interview<'a>> {
    let data = cx.data;
    let survey = data.survey();
    let (scored, _) = data.interviews();
    let scored: BTreeSet<i64> = scored.iter().map(|a| a.id).collect();
    let mut attempts: Vec<&AttemptRecord> = data
        .field
        .attempts
        .iter()
        .filter(|a| a.outcome.needs_answers() && a.answers.iter().any(Option::is_some))
        .collect();
    attempts.sort_by_key(|a| (a.recorded_at_ms, a.id));
    let k = survey.dimensions.len();
    attempts
        .into_iter()
        .map(|a| {
            let mut weighted = 0.0;
            let mut satisfied = 0usize;
            let mut complete = a.answers.len() == k;
            let answers: Vec<Option<(usize, f64)>> = (0..k)
                .map(|d| {
                    let l = a.answers.get(d).copied().flatten();
                    match l {
                        Some(l) => {
                            let score = survey.level_score(l).unwrap_or(0.0);
                            // Same order of summation as the scoring (dimension order).
                            weighted += survey.weight(d) * score;
                            satisfied += usize::from(survey.is_satisfied(l));
                            Some((l, score))
                        }
                        None => {
                            complete = false;
                            None
                        }
                    }
                })
                .collect();
            let complete = complete && a.outcome == Outcome::Complete;
            Interview {
                cx,
                a,
                unit: cx.unit(a.unit_id),
                scored: scored.contains(&a.id),
                answers,
                respondent_score: complete.then_some(weighted),
                satisfied_share: complete.then(|| satisfied as f64 / k as f64),
            }
        })
        .collect()
}

/// One call attempt.
pub(super) struct Attempt<'a> {
    cx: &'a Context<'a>,
    a: &'a AttemptRecord,
    unit: UnitCells<'a>,
}

pub(super) fn attempts_columns<'a>(with_comments: bool) -> Columns<Attempt<'a>> {
    use VarType::*;
    Columns::<Attempt>::new()
        .col("respondent_id", "受访者化名编号", Text, |r| {
            r.cx.data.respondent_id(r.a.member_id)
        })
        .col("unit", "参评单位", Text, |r| r.unit.name.to_string())
        .col("unit_code", "单位代码", Text, |r| r.unit.code.clone())
        .col("operator", "话务员(登录名)", Text, |r| {
            r.a.operator.clone()
        })
        .col("attempt_no", "该代表的第几次拨打", Integer, |r| {
            r.a.attempt_no.to_string()
        })
        .measure(Measure::Scale)
        .col(
            "claimed_at",
            "领取时间(本地时间;导入的记录为空)",
            DateTime,
            |r| {
                r.a.claimed_at_ms
                    .map(|t| r.cx.data.local_time(t))
                    .unwrap_or_default()
            },
        )
        .col("recorded_at", "记录时间(本地时间)", DateTime, |r| {
            r.cx.data.local_time(r.a.recorded_at_ms)
        })
        .col(
            "duration_secs",
            "时长(秒,从领取到提交;导入的记录为空)",
            Number,
            |r| of(results::duration_secs(r.a)),
        )
        .col("outcome", "拨打结果", Text, |r| {
            r.a.outcome.key().to_string()
        })
        .values(outcome_values(Outcome::all()))
        .col("outcome_label", "拨打结果(中文)", Text, |r| {
            r.a.outcome.label().to_string()
        })
        .col("aapor_code", "AAPOR 结果代码", Text, |r| {
            r.a.aapor_code.clone()
        })
        .col(
            "aapor_category",
            "AAPOR 类别(I/P/R/NC/O/UH/UO)",
            Text,
            |r| format!("{:?}", r.a.outcome.category()),
        )
        .col("answers", "已回答的维度数", Integer, |r| {
            r.a.answers.iter().flatten().count().to_string()
        })
        .col(
            "appointment_at",
            "预约回访时间(本地时间)",
            DateTime,
            |r| {
                r.a.appointment_at_ms
                    .map(|t| r.cx.data.local_time(t))
                    .unwrap_or_default()
            },
        )
        .col("source", "来源(web/cli/import)", Text, |r| {
            r.a.source.clone()
        })
        .when(with_comments, |c| {
            c.col(REMARK.0, REMARK.1, Text, |r| r.cx.comment(r.a))
        })
}

/// Every attempt, in the order recorded.
pub(super) fn attempts_rows<'a>(cx: &'a Context<'a>) -> Vec<Attempt<'a>> {
    let mut all: Vec<&AttemptRecord> = cx.data.field.attempts.iter().collect();
    all.sort_by_key(|a| (a.recorded_at_ms, a.id));
    all.into_iter()
        .map(|a| Attempt {
            cx,
            a,
            unit: cx.unit(a.unit_id),
        })
        .collect()
}
