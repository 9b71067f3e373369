//! `sheping compare`, `GET /api/v1/rounds/{A}/compare/{B}`: round A's published results beside
//! round B's, per unit, with the tests of `domain::compare`. Both rounds are recomputed from
//! their stored data, like the results document. JSON documented in `docs/results.md`.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::compare::{self, CompareInput, Published, UnitComparison, Unmatched};
use crate::engine::Store;
use crate::results::{self, ResultsError, ResultsOptions, RoundData, SurveySummary};
use crate::storage::RoundRecord;

#[derive(Debug, Clone, Serialize)]
pub struct CompareDocument {
    pub round: String,
    pub with: String,
    /// How the two rounds' surveys differ (empty when they are the same scale); each round's
    /// figures are as it published them.
    pub survey_differences: Vec<String>,
    pub units: Vec<UnitComparison>,
    pub unmatched_a: Vec<Unmatched>,
    pub unmatched_b: Vec<Unmatched>,
}

/// The published figures and the respondents' scores and satisfied shares per unit.
fn inputs(data: &RoundData) -> Result<Vec<CompareInput>, ResultsError> {
    // Ranks come from the points; the bootstrap is not needed here.
    let opts = ResultsOptions {
        replicates: Some(0),
        ..Default::default()
    };
    let doc = results::compute_from(data, &opts)?;
    let (_, interviews, _) = results::scoring_inputs(data)?;
    let survey = data.survey();
    let k = survey.dimensions.len().max(1) as f64;
    let mut out: Vec<CompareInput> = doc
        .units
        .iter()
        .map(|u| CompareInput {
            unit: u.unit.clone(),
            code: u.code.clone(),
            side: Published {
                completes: u.phone.completes,
                mean: u.phone.mean,
                satisfaction_rate: u.phone.satisfaction_rate,
                points: u.social.points,
                rank: u.social.rank,
            },
            scores: Vec::new(),
            shares: Vec::new(),
        })
        .collect();
    for iv in &interviews {
        let Some(unit) = out.get_mut(iv.unit) else {
            continue;
        };
        // r_i = Σ w_d · score(a_d), q_i = satisfied answers / k (docs/scoring.md).
        let score: f64 = iv
            .answers
            .iter()
            .enumerate()
            .map(|(d, &a)| survey.weight(d) * survey.level_score(a).unwrap_or(0.0))
            .sum();
        let satisfied = iv
            .answers
            .iter()
            .filter(|&&a| survey.is_satisfied(a))
            .count();
        unit.scores.push(score);
        unit.shares.push(satisfied as f64 / k);
    }
    Ok(out)
}

/// What differs between two rounds' scales, in words.
pub fn survey_differences(a: &SurveySummary, b: &SurveySummary) -> Vec<String> {
    let mut out = Vec::new();
    let num = |label: &str, x: f64, y: f64, out: &mut Vec<String>| {
        if x != y {
            out.push(format!("{label}:本轮 {x},对比轮 {y}"));
        }
    };
    num("等级最高分值", a.max_score, b.max_score, &mut out);
    num("电话调查满分", a.phone_points, b.phone_points, &mut out);
    num("现场评价满分", a.onsite_points, b.onsite_points, &mut out);
    let dims = |s: &SurveySummary| -> Vec<String> {
        s.dimensions
            .iter()
            .map(|d| format!("{}({})×{}", d.label, d.key, d.weight))
            .collect()
    };
    if dims(a) != dims(b) {
        out.push(format!(
            "评价维度或权重不同:本轮 {},对比轮 {}",
            dims(a).join("、"),
            dims(b).join("、")
        ));
    }
    let levels = |s: &SurveySummary| -> Vec<String> {
        s.levels
            .iter()
            .map(|l| format!("{}={}", l.label, l.score))
            .collect()
    };
    if levels(a) != levels(b) {
        out.push(format!(
            "评价等级或分值不同:本轮 {},对比轮 {}",
            levels(a).join("、"),
            levels(b).join("、")
        ));
    }
    if a.satisfied_levels != b.satisfied_levels {
        out.push(format!(
            "计为满意的等级不同:本轮 {},对比轮 {}",
            a.satisfied_levels.join("、"),
            b.satisfied_levels.join("、")
        ));
    }
    out
}

/// Compares round `a` with round `b`.
pub fn compare_rounds(
    store: &dyn Store,
    a: &RoundRecord,
    b: &RoundRecord,
    now: DateTime<Utc>,
    actor: &str,
) -> Result<CompareDocument, ResultsError> {
    let da = RoundData::load(store, a, now, actor)?;
    let db = RoundData::load(store, b, now, actor)?;
    let c = compare::compare(&inputs(&da)?, &inputs(&db)?);
    Ok(CompareDocument {
        round: a.key.clone(),
        with: b.key.clone(),
        survey_differences: survey_differences(
            &SurveySummary::of(da.survey()),
            &SurveySummary::of(db.survey()),
        ),
        units: c.units,
        unmatched_a: c.unmatched_a,
        unmatched_b: c.unmatched_b,
    })
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "—".into(), |v| format!("{v:.digits$}"))
}

/// The dumbbell chart of the units' social points in both rounds, ordered by this round's
/// points (highest first); significant changes (Holm p < 0.05) marked.
pub fn change_chart(doc: &CompareDocument, max_points: f64) -> crate::charts::change::ChangeChart {
    use crate::charts::change::{ChangeChart, ChangeRow};
    let mut rows: Vec<ChangeRow> = doc
        .units
        .iter()
        .map(|u| ChangeRow {
            label: u.unit.clone(),
            now: u.a.points,
            before: u.b.points,
            significant: u.significant,
        })
        .collect();
    rows.sort_by(|x, y| {
        y.now
            .unwrap_or(f64::NEG_INFINITY)
            .total_cmp(&x.now.unwrap_or(f64::NEG_INFINITY))
    });
    let significant = doc.units.iter().filter(|u| u.significant).count();
    let mut notes = vec![format!(
        "* 受访者平均分的变化经 Welch t 检验与 Holm 多重比较校正后显著(p < 0.05),共 {significant} 个单位。"
    )];
    notes.extend(
        doc.survey_differences
            .iter()
            .map(|d| format!("两轮问卷不同:{d}")),
    );
    if !doc.unmatched_a.is_empty() || !doc.unmatched_b.is_empty() {
        notes.push(format!(
            "未列出仅一轮有的单位:本轮 {} 个,对比轮 {} 个。",
            doc.unmatched_a.len(),
            doc.unmatched_b.len()
        ));
    }
    ChangeChart {
        title: format!("社会评价得分:轮次 {} 与 {} 比较", doc.round, doc.with),
        subtitles: vec![format!("{} 个单位两轮均参评", doc.units.len())],
        now_label: format!("轮次 {}", doc.round),
        before_label: format!("轮次 {}", doc.with),
        x_label: "社会评价得分(分)".into(),
        max: max_points,
        rows,
        notes,
    }
}

/// The text table of `sheping compare` without `--json`.
pub fn render_table(doc: &CompareDocument) -> String {
    let mut s = format!("轮次 {} 与 {} 比较\n", doc.round, doc.with);
    for d in &doc.survey_differences {
        s.push_str(&format!("注意:{d}\n"));
    }
    s.push_str(
        "参评单位\t社会评价(本轮)\t社会评价(对比轮)\t差值\t排名变化\t均分差\tp(Holm)\t显著\n",
    );
    for u in &doc.units {
        s.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            u.unit,
            opt(u.a.points, 2),
            opt(u.b.points, 2),
            opt(u.diff.points, 2),
            u.diff.rank.map_or_else(|| "—".into(), |r| format!("{r:+}")),
            opt(u.diff.mean, 2),
            opt(u.p_holm, 3),
            if u.significant { "是" } else { "" }
        ));
    }
    for (label, list) in [
        ("仅本轮有", &doc.unmatched_a),
        ("仅对比轮有", &doc.unmatched_b),
    ] {
        if !list.is_empty() {
            let names: Vec<&str> = list.iter().map(|u| u.unit.as_str()).collect();
            s.push_str(&format!("{label}:{}\n", names.join("、")));
        }
    }
    s
}
