//! Chart inputs from a round's results document ([`crate::results::ResultsDocument`]) and,
//! for the charts that need more than the document holds, from the scoring inputs (the
//! complete interviews) and the attempts' times.
//!
//! Everything shown is either a figure of the document or computed here from the same data
//! by a stated rule (pooled round means, operators' centred-score intervals); nothing here
//! changes a score.

use std::collections::BTreeMap;

use chrono::{NaiveDate, TimeZone};

use super::distribution::{DistRow, DistributionChart, Level};
use super::operators::{OperatorRow, OperatorsChart};
use super::profile::{ProfileChart, ProfileRow};
use super::ranking::{PositionChart, RankUnit, RankingChart};
use super::response::{
    Category, CompletesPerDayChart, DayCount, DispositionsChart, ResponseUnit, aapor_fills,
};
use crate::domain::disposition::Category as Aapor;
use crate::domain::scoring::{Flag, Interview, LOW_RESPONSE_RR1, RankBasis};
use crate::domain::stats;
use crate::results::{ResultsDocument, UnitResult, flag_label};

/// The survey's levels, best first, with whether each counts as satisfied.
pub fn levels(doc: &ResultsDocument) -> Vec<Level> {
    doc.survey
        .levels
        .iter()
        .map(|l| Level {
            label: l.label.clone(),
            satisfied: doc.survey.satisfied_levels.contains(&l.key),
        })
        .collect()
}

/// A unit's answers per level for dimension `d`, best first.
fn counts(doc: &ResultsDocument, u: &UnitResult, d: usize) -> Vec<u32> {
    let dim = u.phone.dimensions.get(d);
    doc.survey
        .levels
        .iter()
        .map(|l| dim.and_then(|x| x.counts.get(&l.key)).copied().unwrap_or(0))
        .collect()
}

/// The round's answers per level for each dimension (all units pooled), computed once and
/// shared by every unit's charts.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundTotals {
    /// `counts[d][level]`, levels best first.
    pub counts: Vec<Vec<u32>>,
    /// Pooled mean level score per dimension.
    pub means: Vec<Option<f64>>,
}

impl RoundTotals {
    pub fn of(doc: &ResultsDocument) -> RoundTotals {
        let counts: Vec<Vec<u32>> = (0..doc.survey.dimensions.len())
            .map(|d| {
                let mut total = vec![0u32; doc.survey.levels.len()];
                for u in &doc.units {
                    for (t, c) in total.iter_mut().zip(counts(doc, u, d)) {
                        *t += c;
                    }
                }
                total
            })
            .collect();
        let means = counts.iter().map(|c| mean_of_counts(doc, c)).collect();
        RoundTotals { counts, means }
    }
}

/// Mean level score of answers given as counts per level.
fn mean_of_counts(doc: &ResultsDocument, counts: &[u32]) -> Option<f64> {
    let n: u32 = counts.iter().sum();
    (n > 0).then(|| {
        counts
            .iter()
            .zip(&doc.survey.levels)
            .map(|(c, l)| f64::from(*c) * l.score)
            .sum::<f64>()
            / f64::from(n)
    })
}

fn round_label(doc: &ResultsDocument) -> String {
    if doc.title.is_empty() {
        doc.round.clone()
    } else {
        doc.title.clone()
    }
}

fn provisional(doc: &ResultsDocument) -> Vec<String> {
    if doc.field_closed {
        Vec::new()
    } else {
        vec!["调查期尚未结束,图中数字为临时结果。".into()]
    }
}

/// The four-level distribution per dimension over all units.
pub fn round_distribution(doc: &ResultsDocument) -> DistributionChart {
    let totals = RoundTotals::of(doc);
    let rows = doc
        .survey
        .dimensions
        .iter()
        .enumerate()
        .map(|(d, dim)| DistRow {
            label: dim.label.clone(),
            series: None,
            counts: totals.counts[d].clone(),
            reference: false,
        })
        .collect();
    let mut notes = vec!["每段标注占比(人数);过窄的段不标注,数字见结果表。".to_string()];
    notes.extend(provisional(doc));
    DistributionChart {
        title: format!("{}:各维度评价分布", round_label(doc)),
        subtitles: vec![format!(
            "全部 {} 个参评单位,n = {} 份完成访问(每份对每个维度各答一次)",
            doc.units.len(),
            doc.quality.completes
        )],
        levels: levels(doc),
        rows,
        notes,
    }
}

/// A unit's distribution per dimension, each beside the round's.
pub fn unit_distribution(doc: &ResultsDocument, unit: usize) -> DistributionChart {
    unit_distribution_with(doc, &RoundTotals::of(doc), unit)
}

/// [`unit_distribution`] with the round's totals computed beforehand.
pub fn unit_distribution_with(
    doc: &ResultsDocument,
    totals: &RoundTotals,
    unit: usize,
) -> DistributionChart {
    let u = &doc.units[unit];
    let mut rows = Vec::new();
    for (d, dim) in doc.survey.dimensions.iter().enumerate() {
        rows.push(DistRow {
            label: dim.label.clone(),
            series: Some("本单位".into()),
            counts: counts(doc, u, d),
            reference: false,
        });
        rows.push(DistRow {
            label: String::new(),
            series: Some("全部单位".into()),
            counts: totals.counts[d].clone(),
            reference: true,
        });
    }
    let mut notes = vec!["每段标注占比(人数);细条为全部参评单位的合计,供对照。".to_string()];
    notes.extend(provisional(doc));
    DistributionChart {
        title: format!("{}:各维度评价分布", u.unit),
        subtitles: vec![format!(
            "本单位 n = {} 份完成访问;全部参评单位 n = {} 份",
            u.phone.completes, doc.quality.completes
        )],
        levels: levels(doc),
        rows,
        notes,
    }
}

/// A unit's dimension means against the round's pooled means (all respondents of the round),
/// with the weighted overall score and its 95% interval on top.
pub fn unit_profile(doc: &ResultsDocument, unit: usize) -> ProfileChart {
    unit_profile_with(doc, &RoundTotals::of(doc), unit)
}

/// [`unit_profile`] with the round's totals computed beforehand.
pub fn unit_profile_with(doc: &ResultsDocument, totals: &RoundTotals, unit: usize) -> ProfileChart {
    let u = &doc.units[unit];
    let round_means = &totals.means;
    // The weighted score is linear in the dimension scores, so its pooled mean is the
    // weighted sum of the pooled dimension means.
    let round_overall = round_means
        .iter()
        .zip(&doc.survey.dimensions)
        .try_fold(0.0, |acc, (m, d)| m.map(|m| acc + m * d.weight));
    let mut rows = vec![ProfileRow {
        label: "综合(加权)".into(),
        unit: u.phone.mean,
        unit_ci95: u.phone.ci95,
        round: round_overall,
        emphasis: true,
    }];
    for (d, dim) in doc.survey.dimensions.iter().enumerate() {
        rows.push(ProfileRow {
            label: dim.label.clone(),
            unit: u.phone.dimensions.get(d).and_then(|x| x.mean),
            unit_ci95: None,
            round: round_means[d],
            emphasis: false,
        });
    }
    let max = doc.survey.max_score;
    let levels: Vec<String> = doc
        .survey
        .levels
        .iter()
        .map(|l| format!("{}={}", l.label, stats_num(l.score)))
        .collect();
    let mut notes = vec![format!(
        "等级分值:{};全部单位的均值按全部受访者合并计算。",
        levels.join("、")
    )];
    notes.extend(provisional(doc));
    ProfileChart {
        title: format!("{}:各维度平均得分与全部单位对比", u.unit),
        subtitles: vec![format!(
            "本单位 n = {} 份完成访问;全部参评单位 n = {} 份",
            u.phone.completes, doc.quality.completes
        )],
        unit_label: "本单位".into(),
        round_label: "全部参评单位".into(),
        x_label: format!("平均得分(分,满分 {})", stats_num(max)),
        max,
        rows,
        notes,
    }
}

fn stats_num(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// What the ranking ranks on: `(points of a unit, its interval, axis maximum, axis title)`.
fn basis(doc: &ResultsDocument) -> (f64, String) {
    match doc.ranked_by {
        RankBasis::Social => (
            doc.survey.max_points,
            format!(
                "社会评价得分(分,满分 {} = 电话调查 {} + 现场评价 {})",
                stats_num(doc.survey.max_points),
                stats_num(doc.survey.phone_points),
                stats_num(doc.survey.onsite_points)
            ),
        ),
        RankBasis::Phone => (
            doc.survey.phone_points,
            format!(
                "电话调查得分(分,满分 {};尚无单位有现场评价)",
                stats_num(doc.survey.phone_points)
            ),
        ),
    }
}

/// The ranked value and its interval for a unit.
fn ranked_value(doc: &ResultsDocument, u: &UnitResult) -> (Option<f64>, Option<[f64; 2]>) {
    match doc.ranked_by {
        RankBasis::Social => (u.social.points, u.social.ci95),
        RankBasis::Phone => {
            let to_points = |m: f64| m / doc.survey.max_score * doc.survey.phone_points;
            (
                u.phone.points,
                u.phone.ci95.map(|[a, b]| [to_points(a), to_points(b)]),
            )
        }
    }
}

fn unranked_note(u: &UnitResult) -> String {
    if u.phone.completes == 0 {
        return "无完成访问".into();
    }
    let flags: Vec<&str> = u
        .flags
        .iter()
        .filter(|f| matches!(f, Flag::OnsiteMissing | Flag::FewCompletes))
        .map(|f| flag_label(*f))
        .collect();
    if flags.is_empty() {
        "无得分".into()
    } else {
        flags.join("、")
    }
}

/// The group a unit is coloured by: its sector, or its kind when it has none.
pub fn group_of(u: &UnitResult) -> String {
    if u.sector.trim().is_empty() {
        u.kind.to_string()
    } else {
        u.sector.clone()
    }
}

/// All units by points, with intervals and bottom-place probabilities; `highlight` outlines
/// one unit.
pub fn ranking(doc: &ResultsDocument, highlight: Option<usize>) -> RankingChart {
    let (max_points, x_label) = basis(doc);
    let units = doc
        .units
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let (total, ci95) = ranked_value(doc, u);
            let social = doc.ranked_by == RankBasis::Social;
            RankUnit {
                name: u.unit.clone(),
                group: group_of(u),
                phone: if social || total.is_some() {
                    u.phone.points
                } else {
                    None
                },
                onsite: if social {
                    u.onsite.as_ref().map(|o| o.points)
                } else {
                    None
                },
                total: if u.social.rank.is_some() { total } else { None },
                ci95,
                rank: u.social.rank,
                rank_ci95: u.social.rank_ci95,
                p_bottom: u.social.p_bottom,
                note: u.social.rank.is_none().then(|| unranked_note(u)),
                highlight: highlight == Some(i),
            }
        })
        .collect::<Vec<_>>();
    let ranked = units.iter().filter(|u| u.rank.is_some()).count();
    let mut notes = vec![format!(
        "名次后括号内为 95% 排名区间;后{k}名概率:在重抽样中位列最后 {k} 名的比例,5%–95% 之间标“不确定”。",
        k = doc.bottom_k
    )];
    notes.extend(provisional(doc));
    RankingChart {
        title: format!(
            "{}:{}排名",
            round_label(doc),
            match doc.ranked_by {
                RankBasis::Social => "社会评价得分",
                RankBasis::Phone => "电话调查得分",
            }
        ),
        subtitles: vec![
            format!(
                "n = {ranked} 个单位参与排名(共 {} 个);按系统着色,条内实心为电话调查、斜线为现场评价",
                doc.units.len()
            ),
            format!(
                "排名区间与后{}名概率来自 {} 次 bootstrap 重抽样(种子 {})",
                doc.bottom_k, doc.bootstrap_replicates, doc.bootstrap_seed
            ),
        ],
        x_label,
        max_points,
        phone_label: "电话调查".into(),
        onsite_label: "现场评价".into(),
        bottom_k: doc.bottom_k,
        units,
        notes,
    }
}

/// Where one unit stands among all.
pub fn position(doc: &ResultsDocument, unit: usize) -> PositionChart {
    let (max_points, x_label) = basis(doc);
    let u = &doc.units[unit];
    let values: Vec<f64> = doc
        .units
        .iter()
        .filter(|x| x.social.rank.is_some())
        .filter_map(|x| ranked_value(doc, x).0)
        .collect();
    let (value, ci) = ranked_value(doc, u);
    let ranked = values.len();
    let unit_text = match (u.social.rank, u.social.rank_ci95) {
        (Some(r), Some([a, b])) => format!("第 {r} 名 / {ranked}(95%区间 第 {a}–{b} 名)"),
        (Some(r), None) => format!("第 {r} 名 / {ranked}"),
        (None, _) => format!("未排名:{}", unranked_note(u)),
    };
    let mut notes = Vec::new();
    if let Some(p) = u.social.p_bottom {
        notes.push(format!(
            "本单位位列最后 {} 名的概率(bootstrap):{}。",
            doc.bottom_k,
            super::canvas::pct(p)
        ));
    }
    notes.extend(provisional(doc));
    PositionChart {
        title: format!("{}:在全部参评单位中的位置", u.unit),
        subtitles: vec![format!("n = {ranked} 个单位参与排名,每条竖线为一个单位")],
        x_label,
        max_points,
        values,
        unit_label: "本单位".into(),
        unit: if u.social.rank.is_some() { value } else { None },
        unit_ci95: if u.social.rank.is_some() { ci } else { None },
        unit_text,
        bottom_k: doc.bottom_k,
        notes,
    }
}

/// Each unit's panel by disposition, with RR1.
pub fn dispositions(doc: &ResultsDocument) -> DispositionsChart {
    let fills = aapor_fills();
    let cats: Vec<Aapor> = Aapor::all()
        .iter()
        .copied()
        // NE never occurs in this service (e = 1); keep it only if the data have it.
        .filter(|c| *c != Aapor::NE || doc.units.iter().any(|u| u.dispositions.ne > 0))
        .collect();
    let categories = cats
        .iter()
        .map(|c| {
            let i = Aapor::all().iter().position(|x| x == c).unwrap_or(0);
            Category::new(format!("{}({:?})", c.label(), c), fills[i])
        })
        .collect();
    let units = doc
        .units
        .iter()
        .map(|u| ResponseUnit {
            name: u.unit.clone(),
            counts: cats.iter().map(|c| u.dispositions.get(*c)).collect(),
            rr1: u.rates.rr1,
        })
        .collect();
    let mut notes = vec![format!(
        "RR1 = 完成访问 ÷ 全部合格及资格不明的代表(AAPOR,e = 1);低于 {} 以“!”标出。未拨打的代表计入“未接通”。",
        super::canvas::pct(LOW_RESPONSE_RR1)
    )];
    notes.extend(provisional(doc));
    DispositionsChart {
        title: format!("{}:各单位代表的处置结果与应答率", round_label(doc)),
        subtitles: vec![format!(
            "{} 个单位,n = {} 名代表;全轮 RR1 = {}",
            doc.units.len(),
            doc.overall.panel,
            doc.overall
                .rates
                .rr1
                .map_or_else(|| "—".into(), super::canvas::pct)
        )],
        categories,
        units,
        rr1_threshold: LOW_RESPONSE_RR1,
        notes,
    }
}

/// Completes per local day, every day from the first to the last (the field period when
/// given, widened to any completes outside it), zeros included.
pub fn days_from_times<Tz: TimeZone>(
    completes_ms: impl IntoIterator<Item = i64>,
    tz: &Tz,
    field: Option<(NaiveDate, NaiveDate)>,
) -> Vec<DayCount> {
    let mut per_day: BTreeMap<NaiveDate, u32> = BTreeMap::new();
    for ms in completes_ms {
        if let Some(t) = tz.timestamp_millis_opt(ms).single() {
            *per_day.entry(t.date_naive()).or_default() += 1;
        }
    }
    let first = [field.map(|f| f.0), per_day.keys().next().copied()]
        .into_iter()
        .flatten()
        .min();
    let last = [field.map(|f| f.1), per_day.keys().next_back().copied()]
        .into_iter()
        .flatten()
        .max();
    let (Some(first), Some(last)) = (first, last) else {
        return Vec::new();
    };
    first
        .iter_days()
        .take_while(|d| *d <= last)
        .map(|date| DayCount {
            date,
            completes: per_day.get(&date).copied().unwrap_or(0),
        })
        .collect()
}

pub fn completes_per_day(doc: &ResultsDocument, days: Vec<DayCount>) -> CompletesPerDayChart {
    let total: u32 = days.iter().map(|d| d.completes).sum();
    let span = match (days.first(), days.last()) {
        (Some(a), Some(b)) => format!("{} 至 {},", a.date, b.date),
        _ => String::new(),
    };
    CompletesPerDayChart {
        title: format!("{}:每日完成访问数", round_label(doc)),
        subtitles: vec![format!("{span}共 {} 天,n = {total} 份完成访问", days.len())],
        days,
        notes: provisional(doc),
    }
}

/// Operators' mean unit-centred scores with t intervals and their answer distributions,
/// from the complete interviews the document was scored from.
pub fn operators(doc: &ResultsDocument, interviews: &[Interview]) -> OperatorsChart {
    let n_levels = doc.survey.levels.len();
    let weights: Vec<f64> = doc.survey.dimensions.iter().map(|d| d.weight).collect();
    let score = |iv: &Interview| -> f64 {
        iv.answers
            .iter()
            .zip(&weights)
            .map(|(&a, w)| w * doc.survey.levels.get(a).map_or(0.0, |l| l.score))
            .sum()
    };
    let mut centred: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut level_counts: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for iv in interviews {
        let Some(unit_mean) = doc.units.get(iv.unit).and_then(|u| u.phone.mean) else {
            continue;
        };
        centred
            .entry(&iv.operator)
            .or_default()
            .push(score(iv) - unit_mean);
        let counts = level_counts
            .entry(&iv.operator)
            .or_insert_with(|| vec![0; n_levels]);
        for &a in &iv.answers {
            if let Some(c) = counts.get_mut(a) {
                *c += 1;
            }
        }
    }
    let checks = &doc.quality.operator_effect.operators;
    let rows: Vec<OperatorRow> = checks
        .iter()
        .map(|op| {
            let xs = centred
                .get(op.operator.as_str())
                .map_or(&[][..], Vec::as_slice);
            OperatorRow {
                name: op.operator.clone(),
                completes: op.completes,
                mean: op.mean_centred,
                ci95: stats::t_interval(xs, 0.95),
                p_holm: op.p_holm,
                flagged: op.flagged,
                straight_line_flagged: op.straight_line_flagged,
                level_counts: level_counts
                    .get(op.operator.as_str())
                    .cloned()
                    .unwrap_or_else(|| vec![0; n_levels]),
            }
        })
        .collect();
    let flagged = rows.iter().filter(|r| r.flagged).count();
    let anova = doc
        .quality
        .operator_effect
        .anova
        .as_ref()
        .and_then(|a| Some((a.f?, a.p?, a.df1, a.df2)))
        .map_or_else(
            || "方差分析无法计算".to_string(),
            |(f, p, d1, d2)| format!("方差分析 F({d1}, {d2}) = {f:.2},p = {p:.3}"),
        );
    let mut notes = vec![
        "中心化得分 = 受访者加权得分 − 所访单位的平均分;区间为 t 分布 95% 置信区间。".to_string(),
        "* Holm 校正后 p < 0.05(Welch t 检验,与其他话务员比较);“一致作答”:五个维度同一等级的比例显著偏高。"
            .to_string(),
    ];
    notes.extend(provisional(doc));
    OperatorsChart {
        title: format!("{}:话务员效应检查", round_label(doc)),
        subtitles: vec![format!(
            "n = {} 名话务员,{} 份完成访问;{anova};被标记 {flagged} 名",
            rows.len(),
            doc.quality.completes
        )],
        levels: levels(doc),
        x_label: "中心化得分(分)".into(),
        rows,
        notes,
    }
}
