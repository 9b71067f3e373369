//! The unit-level exports: `distributions` (answers per dimension and level), `scores` and
//! `dispositions` (one row per unit).

use crate::domain::scoring::{DimensionScore, OnsiteKind};
use crate::domain::survey::Survey;
use crate::results::{self, UnitResult};

use super::columns::{
    Columns, Context, UnitCells, UnitRow, VarType, category_columns, f, hi, level_values, lo, of,
    ou, unit_columns,
};

/// How many of a unit's completes gave one level on one dimension.
pub(super) struct LevelCount<'a> {
    unit: &'a str,
    code: String,
    dimension: &'a str,
    dimension_label: &'a str,
    /// Level index (0 = best).
    level: usize,
    level_key: &'a str,
    level_label: &'a str,
    count: u32,
    completes: u32,
}

pub(super) fn distributions_columns<'a>(survey: &Survey) -> Columns<LevelCount<'a>> {
    use VarType::*;
    Columns::<LevelCount>::new()
        .col("unit", "参评单位", Text, |r| r.unit.to_string())
        .col("unit_code", "单位代码", Text, |r| r.code.clone())
        .col("dimension", "维度(键)", Text, |r| {
            r.dimension.to_string()
        })
        .col("dimension_label", "维度", Text, |r| {
            r.dimension_label.to_string()
        })
        .col("level_number", "等级序号(1=最好)", Integer, |r| {
            (r.level + 1).to_string()
        })
        .values(level_values(survey))
        .col("level", "等级(键)", Text, |r| r.level_key.to_string())
        .col("level_label", "等级", Text, |r| r.level_label.to_string())
        .col("count", "回答该等级的完成访问数", Integer, |r| {
            r.count.to_string()
        })
        .col("completes", "完成访问数", Integer, |r| {
            r.completes.to_string()
        })
        .col("percent", "占完成访问的百分比", Number, |r| {
            if r.completes > 0 {
                f(f64::from(r.count) / f64::from(r.completes) * 100.0)
            } else {
                String::new()
            }
        })
}

/// Units in the round's order, each unit's dimensions, each dimension's levels.
pub(super) fn distributions_rows<'a>(cx: &'a Context<'a>) -> Vec<LevelCount<'a>> {
    let survey = cx.data.survey();
    let mut rows = Vec::new();
    for (u, rec) in cx.doc.units.iter().zip(&cx.data.units) {
        for (d, dim) in u.phone.dimensions.iter().enumerate() {
            for (l, level) in survey.levels.iter().enumerate() {
                rows.push(LevelCount {
                    unit: &u.unit,
                    code: rec.code.clone().unwrap_or_default(),
                    dimension: &dim.key,
                    dimension_label: &survey.dimensions[d].label,
                    level: l,
                    level_key: &level.key,
                    level_label: &level.label,
                    count: dim.counts.get(&level.key).copied().unwrap_or(0),
                    completes: u.phone.completes,
                });
            }
        }
    }
    rows
}

/// One unit's results (for `scores` and `dispositions`).
pub(super) struct UnitLine<'a> {
    u: &'a UnitResult,
    unit: UnitCells<'a>,
}

impl UnitRow for UnitLine<'_> {
    fn unit(&self) -> &UnitCells<'_> {
        &self.unit
    }
}

/// Every unit, in the round's order.
pub(super) fn unit_rows<'a>(cx: &'a Context<'a>) -> Vec<UnitLine<'a>> {
    cx.doc
        .units
        .iter()
        .zip(&cx.data.units)
        .map(|(u, rec)| UnitLine {
            u,
            unit: UnitCells {
                name: &u.unit,
                code: rec.code.clone().unwrap_or_default(),
                kind: u.kind,
                sector: &u.sector,
            },
        })
        .collect()
}

/// A number of a unit's results.
type Figure = fn(&UnitResult) -> Option<f64>;

pub(super) fn scores_columns<'a>(survey: &Survey) -> Columns<UnitLine<'a>> {
    use VarType::*;
    let phone: [(&str, &str, Figure); 9] = [
        ("phone_mean", "电话调查平均分(0–满分)", |u| {
            u.phone.mean
        }),
        ("phone_sd", "电话调查得分标准差", |u| u.phone.sd),
        (
            "phone_ci95_low",
            "电话调查平均分 95% 置信区间下限",
            |u| u.phone.ci95.map(|v| v[0]),
        ),
        (
            "phone_ci95_high",
            "电话调查平均分 95% 置信区间上限",
            |u| u.phone.ci95.map(|v| v[1]),
        ),
        ("satisfaction_rate", "总体满意率", |u| {
            u.phone.satisfaction_rate
        }),
        (
            "satisfaction_rate_ci95_low",
            "总体满意率 95% 置信区间下限",
            |u| u.phone.satisfaction_rate_ci95.map(|v| v[0]),
        ),
        (
            "satisfaction_rate_ci95_high",
            "总体满意率 95% 置信区间上限",
            |u| u.phone.satisfaction_rate_ci95.map(|v| v[1]),
        ),
        ("cronbach_alpha", "Cronbach α", |u| u.phone.cronbach_alpha),
        ("phone_points", "电话调查得分(折算)", |u| {
            u.phone.points
        }),
    ];
    let onsite: [(&str, &str, Figure); 5] = [
        ("onsite_mean", "现场评价平均分", |u| {
            u.onsite.as_ref().map(|o| o.mean)
        }),
        ("onsite_sd", "现场评价标准差", |u| {
            u.onsite.as_ref().and_then(|o| o.sd)
        }),
        (
            "onsite_ci95_low",
            "现场评价平均分 95% 置信区间下限",
            |u| u.onsite.as_ref().and_then(|o| o.ci95).map(|v| v[0]),
        ),
        (
            "onsite_ci95_high",
            "现场评价平均分 95% 置信区间上限",
            |u| u.onsite.as_ref().and_then(|o| o.ci95).map(|v| v[1]),
        ),
        ("onsite_points", "现场评价得分(折算)", |u| {
            u.onsite.as_ref().map(|o| o.points)
        }),
    ];
    let social: [(&str, &str, Figure); 4] = [
        ("social_points", "社会评价得分", |u| u.social.points),
        ("social_max_points", "社会评价满分", |u| {
            Some(u.social.max_points)
        }),
        (
            "social_ci95_low",
            "社会评价得分 95% 置信区间下限",
            |u| u.social.ci95.map(|v| v[0]),
        ),
        (
            "social_ci95_high",
            "社会评价得分 95% 置信区间上限",
            |u| u.social.ci95.map(|v| v[1]),
        ),
    ];
    let figure = |c: Columns<UnitLine<'a>>, (name, label, get): (&str, &str, Figure)| {
        c.col(name, label, Number, move |r| of(get(r.u)))
    };
    let c = unit_columns(Columns::<UnitLine>::new())
        .col("panel", "代表人数", Integer, |r| r.u.panel.to_string())
        .col("completes", "完成访问数", Integer, |r| {
            r.u.phone.completes.to_string()
        })
        .col("rr1", "应答率 RR1", Number, |r| of(r.u.rates.rr1))
        .each(phone, figure);
    let c = c.each(survey.dimensions.iter().enumerate(), |c, (d, dim)| {
        c.col(
            format!("{}_mean", dim.key),
            format!("{}:平均分", dim.label),
            Number,
            move |r| of(dimension(r, d).and_then(|d| d.mean)),
        )
        .col(
            format!("{}_mean_ci95_low", dim.key),
            format!("{}:平均分 95% 置信区间下限", dim.label),
            Number,
            move |r| lo(dimension(r, d).and_then(|d| d.ci95)),
        )
        .col(
            format!("{}_mean_ci95_high", dim.key),
            format!("{}:平均分 95% 置信区间上限", dim.label),
            Number,
            move |r| hi(dimension(r, d).and_then(|d| d.ci95)),
        )
        .col(
            format!("{}_satisfaction_rate", dim.key),
            format!("{}:满意率", dim.label),
            Number,
            move |r| of(dimension(r, d).and_then(|d| d.satisfaction_rate)),
        )
        .col(
            format!("{}_satisfaction_rate_ci95_low", dim.key),
            format!("{}:满意率 Wilson 95% 区间下限", dim.label),
            Number,
            move |r| lo(dimension(r, d).and_then(|d| d.satisfaction_rate_ci95)),
        )
        .col(
            format!("{}_satisfaction_rate_ci95_high", dim.key),
            format!("{}:满意率 Wilson 95% 区间上限", dim.label),
            Number,
            move |r| hi(dimension(r, d).and_then(|d| d.satisfaction_rate_ci95)),
        )
    });
    c.col(
        "onsite_kind",
        "现场评价形式(ballots/direct)",
        Text,
        |r| {
            r.u.onsite
                .as_ref()
                .map(|o| match o.kind {
                    OnsiteKind::Ballots => "ballots",
                    OnsiteKind::Direct => "direct",
                })
                .unwrap_or_default()
                .to_string()
        },
    )
    .values(vec![
        ("ballots".into(), "逐张选票".into()),
        ("direct".into(), "直接给分".into()),
    ])
    .col("onsite_ballots", "现场评价选票数", Integer, |r| {
        ou(r.u.onsite.as_ref().map(|o| o.ballots))
    })
    .each(onsite, figure)
    .each(social, figure)
    .col("rank", "排名", Integer, |r| ou(r.u.social.rank))
    .col("rank_ci95_low", "排名 95% 区间(最好)", Integer, |r| {
        ou(r.u.social.rank_ci95.map(|v| v[0]))
    })
    .col(
        "rank_ci95_high",
        "排名 95% 区间(最差)",
        Integer,
        |r| ou(r.u.social.rank_ci95.map(|v| v[1])),
    )
    .col("p_bottom", "落入倒数 k 名的概率", Number, |r| {
        of(r.u.social.p_bottom)
    })
    .col(
        "flags",
        "提示(few_completes、onsite_missing、low_response、evidence_mismatch,分号分隔)",
        Text,
        |r| {
            let flags: Vec<&str> = r.u.flags.iter().map(|f| results::flag_key(*f)).collect();
            flags.join(";")
        },
    )
    .col(
        "evidence_complaint",
        "佐证:12345投诉件数",
        Integer,
        |r| ou(r.u.evidence.complaint),
    )
    .col(
        "evidence_petition",
        "佐证:信访事项件数",
        Integer,
        |r| ou(r.u.evidence.petition),
    )
    .col(
        "evidence_discipline",
        "佐证:违纪违法案件数",
        Integer,
        |r| ou(r.u.evidence.discipline),
    )
    .col(
        "evidence_volume",
        "佐证:本期业务量(件)",
        Integer,
        |r| ou(r.u.evidence.volume),
    )
    .col(
        "evidence_complaint_rate",
        "佐证:每千件业务量的12345投诉",
        Number,
        |r| of(r.u.evidence.complaint_rate),
    )
    .col(
        "evidence_sources",
        "佐证:来源(分号分隔)",
        Text,
        |r| results::evidence_sources(&r.u.evidence),
    )
}

fn dimension<'r>(r: &'r UnitLine, d: usize) -> Option<&'r DimensionScore> {
    r.u.phone.dimensions.get(d)
}

pub(super) fn dispositions_columns<'a>() -> Columns<UnitLine<'a>> {
    use VarType::*;
    let rates: [(&str, &str, Figure); 5] = [
        ("rr1", "应答率 RR1", |u| u.rates.rr1),
        ("rr2", "应答率 RR2", |u| u.rates.rr2),
        ("coop1", "合作率 COOP1", |u| u.rates.coop1),
        ("ref1", "拒访率 REF1", |u| u.rates.ref1),
        ("con1", "接触率 CON1", |u| u.rates.con1),
    ];
    let c = unit_columns(Columns::<UnitLine>::new())
        .col("panel", "代表人数", Integer, |r| r.u.panel.to_string());
    category_columns(c, "代表", |r, cat| r.u.dispositions.get(cat))
        .each(rates, |c, (name, label, get)| {
            c.col(name, label, Number, move |r| of(get(r.u)))
        })
}
