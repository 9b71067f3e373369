//! The report's HTML pages: view models with every figure already formatted, rendered by
//! askama templates in `reports/templates/` (auto-escaped; the SVG charts are the only
//! unescaped content, and plotters escapes their text).

use std::collections::BTreeMap;

use askama::Template;

use super::{REPORT_EXPORTS, ReportData, RoundChart, UnitChart, feedback_path, href, unit_stem};
use crate::charts::from_results::RoundTotals;
use crate::domain::disposition::Category;
use crate::domain::scoring::{Flag, RankBasis, SuspicionReason};
use crate::results::{UnitResult, flag_label};

fn dash() -> String {
    "—".into()
}

fn n2(x: Option<f64>) -> String {
    x.map_or_else(dash, |v| format!("{v:.2}"))
}

fn n1(x: Option<f64>) -> String {
    x.map_or_else(dash, |v| format!("{v:.1}"))
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(dash, |v| format!("{:.1}%", v * 100.0))
}

fn ci2(x: Option<[f64; 2]>) -> String {
    x.map_or_else(dash, |[a, b]| format!("[{a:.2}, {b:.2}]"))
}

/// An interval of a rate, bounds held to 0–100 %: the t interval of the overall satisfaction
/// rate (docs/scoring.md) can reach past 100 % near the ceiling, which no rate can.
fn ci_pct(x: Option<[f64; 2]>) -> String {
    x.map_or_else(dash, |[a, b]| {
        format!(
            "[{:.1}%, {:.1}%]",
            a.clamp(0.0, 1.0) * 100.0,
            b.clamp(0.0, 1.0) * 100.0
        )
    })
}

fn p_value(x: Option<f64>) -> String {
    match x {
        None => dash(),
        Some(p) if p < 0.001 => "<0.001".into(),
        Some(p) => format!("{p:.3}"),
    }
}

fn p_bottom(x: Option<f64>) -> String {
    match x {
        None => dash(),
        Some(p) if p > 0.0 && p < 0.01 => "<1%".into(),
        Some(p) if p > 0.99 && p < 1.0 => ">99%".into(),
        Some(p) => format!("{:.0}%", p * 100.0),
    }
}

fn rank_ci(x: Option<[u32; 2]>) -> String {
    x.map_or_else(dash, |[a, b]| {
        if a == b {
            format!("{a}")
        } else {
            format!("{a}–{b}")
        }
    })
}

fn flag_explained(f: Flag, min_completes: u32) -> String {
    match f {
        Flag::FewCompletes => format!("完成访问少于 {min_completes} 份,得分的不确定性较大"),
        Flag::OnsiteMissing => "尚无现场评价数据,社会评价得分暂缺".into(),
        Flag::LowResponse => "应答率 RR1 低于 60%,未应答者的看法可能与受访者不同".into(),
        Flag::EvidenceMismatch => "社会评价得分与12345投诉同处前三分之一或后三分之一(评价高而投诉多,或评价低而投诉少),请评估组结合佐证材料核实;不影响得分".into(),
    }
}

fn flags_text(u: &UnitResult) -> String {
    u.flags
        .iter()
        .map(|f| flag_label(*f))
        .collect::<Vec<_>>()
        .join("、")
}

fn provisional_text(data: &ReportData) -> Option<String> {
    (!data.doc.field_closed)
        .then(|| "调查期尚未结束:本报告中的数字为临时结果,以调查结束后的正式报告为准。".to_string())
}

fn ranked_by_text(data: &ReportData) -> &'static str {
    match data.doc.ranked_by {
        RankBasis::Social => "社会评价得分(电话调查 + 现场评价)",
        RankBasis::Phone => "电话调查得分(尚无单位有现场评价)",
    }
}

/// A chart in a page.
pub struct Figure {
    pub id: String,
    pub svg: String,
    pub svg_href: String,
    pub png_href: Option<String>,
}

pub struct KeyValue {
    pub key: String,
    pub value: String,
}

fn kv(key: impl Into<String>, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: value.into(),
    }
}

pub struct ResultRow {
    pub rank: String,
    pub rank_ci: String,
    pub unit: String,
    pub href: String,
    pub sector: String,
    pub kind: String,
    pub completes: String,
    pub rr1: String,
    pub phone: String,
    pub onsite: String,
    pub social: String,
    pub social_ci: String,
    pub satisfaction: String,
    pub p_bottom: String,
    pub flags: String,
    pub likely_bottom: bool,
}

pub struct OperatorLine {
    pub operator: String,
    pub completes: u32,
    pub mean: String,
    pub p: String,
    pub p_holm: String,
    pub flagged: bool,
    pub straight_lines: String,
}

pub struct SuspiciousLine {
    pub id: String,
    pub unit: String,
    pub operator: String,
    pub at: String,
    pub reasons: String,
}

pub struct Chi2Line {
    pub dimension: String,
    pub statistic: String,
    pub p: String,
    pub low_expected: String,
}

pub struct FlagLine {
    pub unit: String,
    pub href: String,
    pub flags: String,
}

pub struct FileLink {
    pub label: String,
    pub href: String,
}

#[derive(Template)]
#[template(path = "report_index.html")]
pub struct IndexPage {
    pub page_title: String,
    pub title: String,
    pub round: String,
    pub generated_at: String,
    pub provisional: Option<String>,
    pub locked: bool,
    pub method: Vec<KeyValue>,
    pub dimensions: Vec<KeyValue>,
    pub levels: Vec<KeyValue>,
    pub plans: Vec<KeyValue>,
    pub response: Vec<KeyValue>,
    pub dispositions: Vec<KeyValue>,
    pub bottom_k: u32,
    pub rows: Vec<ResultRow>,
    pub figures: BTreeMap<String, Figure>,
    pub quality: Vec<KeyValue>,
    pub chi2: Vec<Chi2Line>,
    pub operators: Vec<OperatorLine>,
    pub suspicious: Vec<SuspiciousLine>,
    pub suspicious_total: usize,
    pub flags: Vec<FlagLine>,
    pub warnings: Vec<String>,
    pub files: Vec<FileLink>,
}

/// Suspicious interviews listed in the page (all of them are in the CSV exports).
const SUSPICIOUS_SHOWN: usize = 200;

fn figure(id: &str, svg: &str, dir: &str, stem: &str, png: bool) -> Figure {
    Figure {
        id: id.to_string(),
        svg: svg.to_string(),
        svg_href: href(&format!("{dir}{stem}.svg")),
        png_href: png.then(|| href(&format!("{dir}{stem}.png"))),
    }
}

pub fn index(
    data: &ReportData,
    svgs: &BTreeMap<&str, String>,
    png: bool,
    list_exports: bool,
) -> Result<String, askama::Error> {
    let doc = &data.doc;
    let s = &doc.survey;
    let title = if doc.title.is_empty() {
        doc.round.clone()
    } else {
        doc.title.clone()
    };
    let field = match data.field_period {
        Some((a, b)) => format!("{a} 至 {b}"),
        None => "未设定".into(),
    };
    let method = vec![
        kv("调查", format!("{}(12345 热线电话访问)", s.title)),
        kv(
            "调查对象",
            format!(
                "每个参评单位 {} 名服务对象代表(含“两代一委”);共 {} 个单位、{} 名代表",
                data.panel_size,
                doc.units.len(),
                doc.overall.panel
            ),
        ),
        kv("调查期", field),
        kv(
            "计分",
            format!(
                "受访者得分 = 各维度等级分值的加权和(满分 {});电话调查得分 = 单位受访者平均分 ÷ {} × {};现场评价得分同理折算为 {} 分;社会评价得分 = 两者之和(满分 {})",
                fr_num(s.max_score),
                fr_num(s.max_score),
                fr_num(s.phone_points),
                fr_num(s.onsite_points),
                fr_num(s.max_points)
            ),
        ),
        kv(
            "满意率",
            format!(
                "回答为 {} 的占比",
                s.levels
                    .iter()
                    .filter(|l| s.satisfied_levels.contains(&l.key))
                    .map(|l| l.label.as_str())
                    .collect::<Vec<_>>()
                    .join("、")
            ),
        ),
        kv(
            "最少完成数",
            format!("{} 份(少于此数的单位加注“完成数不足”)", s.min_completes),
        ),
        kv("排名依据", ranked_by_text(data)),
        kv(
            "排名不确定性",
            format!(
                "bootstrap 重抽样 {} 次,种子 {}({});报告 95% 排名区间和位列最后 {} 名的概率",
                doc.bootstrap_replicates,
                doc.bootstrap_seed,
                if doc.bootstrap_seed_source == "stored" {
                    "本轮保存的种子,可复现"
                } else {
                    "本次指定的种子,未保存"
                },
                doc.bottom_k
            ),
        ),
        kv(
            "得分区间",
            "电话调查得分:t 分布 95% 置信区间;社会评价得分:电话与现场两部分标准误合成的 95% 区间;满意率:Wilson 区间(总体满意率按受访者聚类的有效样本量)",
        ),
    ];
    let dimensions = s
        .dimensions
        .iter()
        .map(|d| kv(d.label.clone(), format!("{:.0}%", d.weight * 100.0)))
        .collect();
    let levels = s
        .levels
        .iter()
        .map(|l| {
            kv(
                l.label.clone(),
                format!(
                    "{} 分{}",
                    fr_num(l.score),
                    if s.satisfied_levels.contains(&l.key) {
                        ",计入满意率"
                    } else {
                        ""
                    }
                ),
            )
        })
        .collect();
    let plans = data
        .plans
        .iter()
        .map(|p| {
            kv(
                format!("{}({})", p.created, p.kind),
                format!("种子 {},算法 {}", p.seed, p.algorithm),
            )
        })
        .collect();
    let r = &doc.overall.rates;
    let response = vec![
        kv("代表总数", doc.overall.panel.to_string()),
        kv("完成访问", doc.overall.completes.to_string()),
        kv("RR1(完成 ÷ 合格及资格不明)", pct(r.rr1)),
        kv("RR2(含部分完成)", pct(r.rr2)),
        kv("COOP1 合作率", pct(r.coop1)),
        kv("REF1 拒访率", pct(r.ref1)),
        kv("CON1 接触率", pct(r.con1)),
    ];
    let dispositions = Category::all()
        .iter()
        .map(|c| {
            kv(
                format!("{}({c:?})", c.label()),
                doc.overall.dispositions.get(*c).to_string(),
            )
        })
        .collect();

    let mut order: Vec<usize> = (0..doc.units.len()).collect();
    order.sort_by_key(|&i| {
        (
            doc.units[i].social.rank.is_none(),
            doc.units[i].social.rank,
            i,
        )
    });
    let rows = order
        .iter()
        .map(|&i| {
            let u = &doc.units[i];
            let (value, ci) = match doc.ranked_by {
                RankBasis::Social => (u.social.points, u.social.ci95),
                RankBasis::Phone => (u.phone.points, phone_points_ci(data, u)),
            };
            ResultRow {
                rank: u.social.rank.map_or_else(dash, |r| r.to_string()),
                rank_ci: rank_ci(u.social.rank_ci95),
                unit: u.unit.clone(),
                href: href(&feedback_path(data, i)),
                sector: u.sector.clone(),
                kind: u.kind.to_string(),
                completes: format!("{}/{}", u.phone.completes, u.panel),
                rr1: pct(u.rates.rr1),
                phone: n2(u.phone.points),
                onsite: n2(u.onsite.as_ref().map(|o| o.points)),
                social: n2(value),
                social_ci: ci2(ci),
                satisfaction: pct(u.phone.satisfaction_rate),
                p_bottom: p_bottom(u.social.p_bottom),
                flags: flags_text(u),
                likely_bottom: u
                    .social
                    .p_bottom
                    .is_some_and(|p| p >= crate::charts::ranking::LIKELY_BOTTOM),
            }
        })
        .collect();

    let mut figures = BTreeMap::new();
    for which in RoundChart::all() {
        if let Some(svg) = svgs.get(which.key()) {
            figures.insert(
                which.key().to_string(),
                figure(which.key(), svg, "charts/", which.key(), png),
            );
        }
    }

    let q = &doc.quality;
    let oe = &q.operator_effect;
    let mut quality = vec![
        kv("完成访问", q.completes.to_string()),
        kv(
            "内部一致性 Cronbach α",
            q.cronbach_alpha
                .map_or_else(|| "无法计算".into(), |a| format!("{a:.3}")),
        ),
        kv(
            "话务员效应(单位中心化得分的方差分析)",
            oe.anova.as_ref().map_or_else(
                || "无法计算(需至少 2 名话务员且组内有变异)".to_string(),
                |a| {
                    format!(
                        "F({}, {}) = {},p = {};组内相关 ρ = {};设计效应 = {}",
                        a.df1,
                        a.df2,
                        n2(a.f),
                        p_value(a.p),
                        a.rho_int.map_or_else(dash, |v| format!("{v:.4}")),
                        a.deff.map_or_else(dash, |v| format!("{v:.3}"))
                    )
                },
            ),
        ),
        kv(
            "评分显著偏离的话务员(Holm 校正 p < 0.05)",
            if oe.flagged_operators.is_empty() {
                "无".to_string()
            } else {
                oe.flagged_operators.join("、")
            },
        ),
        kv("一致作答(五个维度同一等级)占比", pct(q.straight_line_share)),
    ];
    quality.push(kv(
        "可疑访问的判定",
        format!(
            "时长 < {} 秒、答题间隔中位数 < {} 秒,或话务员的一致作答比例显著偏高",
            fr_num(q.min_duration_secs),
            fr_num(q.min_median_gap_secs)
        ),
    ));
    let dim_label = |key: &str| {
        s.dimensions
            .iter()
            .find(|d| d.key == key)
            .map_or_else(|| key.to_string(), |d| d.label.clone())
    };
    let chi2 = oe
        .chi2
        .iter()
        .map(|c| Chi2Line {
            dimension: dim_label(&c.dimension),
            statistic: match (c.statistic, c.df) {
                (Some(x), Some(df)) => format!("χ²({df}) = {x:.2}"),
                _ => "无法计算".into(),
            },
            p: p_value(c.p),
            low_expected: c.low_expected.map_or_else(dash, |n| n.to_string()),
        })
        .collect();
    let operators = oe
        .operators
        .iter()
        .map(|o| OperatorLine {
            operator: o.operator.clone(),
            completes: o.completes,
            mean: o.mean_centred.map_or_else(dash, |v| format!("{v:+.2}")),
            p: p_value(o.p),
            p_holm: p_value(o.p_holm),
            flagged: o.flagged,
            straight_lines: format!(
                "{}{}",
                o.straight_lines,
                if o.straight_line_flagged {
                    "(显著偏高)"
                } else {
                    ""
                }
            ),
        })
        .collect();
    let suspicious = q
        .suspicious
        .iter()
        .take(SUSPICIOUS_SHOWN)
        .map(|x| SuspiciousLine {
            id: x.id.clone(),
            unit: x.unit.clone(),
            operator: x.operator.clone(),
            // RFC 3339 in the round's zone: shown as every page shows a time.
            at: chrono::DateTime::parse_from_rfc3339(&x.at).map_or_else(
                |_| x.at.clone(),
                |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
            ),
            reasons: x
                .reasons
                .iter()
                .map(|r| match r {
                    SuspicionReason::TooShort => "时长过短",
                    SuspicionReason::TooFast => "答题过快",
                    SuspicionReason::StraightLining => "一致作答",
                })
                .collect::<Vec<_>>()
                .join("、"),
        })
        .collect();
    let flags = doc
        .units
        .iter()
        .enumerate()
        .filter(|(_, u)| !u.flags.is_empty())
        .map(|(i, u)| FlagLine {
            unit: u.unit.clone(),
            href: href(&feedback_path(data, i)),
            flags: flags_text(u),
        })
        .collect();
    let mut files: Vec<FileLink> = Vec::new();
    if list_exports {
        let key = crate::exports::file_name_part(&doc.round);
        for kind in REPORT_EXPORTS {
            files.push(FileLink {
                label: format!("{}(CSV)", kind.label()),
                href: href(&format!("csv/{key}-{}.csv", kind.key())),
            });
        }
        files.push(FileLink {
            label: "SPSS 读取语法(.sps)".into(),
            href: href(&format!("csv/{key}-responses.sps")),
        });
    }
    IndexPage {
        page_title: format!("{title} · 社会评价结果报告"),
        title,
        round: doc.round.clone(),
        generated_at: data.generated_at.clone(),
        provisional: provisional_text(data),
        locked: doc.locked,
        method,
        dimensions,
        levels,
        plans,
        response,
        dispositions,
        bottom_k: doc.bottom_k,
        rows,
        figures,
        quality,
        chi2,
        operators,
        suspicious,
        suspicious_total: q.suspicious.len(),
        flags,
        warnings: doc.warnings.clone(),
        files,
    }
    .render()
}

fn fr_num(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

fn phone_points_ci(data: &ReportData, u: &UnitResult) -> Option<[f64; 2]> {
    let s = &data.doc.survey;
    u.phone.ci95.map(|[a, b]| {
        [
            a / s.max_score * s.phone_points,
            b / s.max_score * s.phone_points,
        ]
    })
}

pub struct ScoreLine {
    pub label: String,
    pub value: String,
    pub interval: String,
    pub note: String,
}

pub struct DimensionLine {
    pub label: String,
    pub mean: String,
    pub round_mean: String,
    pub satisfaction: String,
    pub satisfaction_ci: String,
    pub counts: Vec<String>,
}

#[derive(Template)]
#[template(path = "report_feedback.html")]
pub struct FeedbackPage {
    pub page_title: String,
    pub unit: String,
    pub round_title: String,
    pub about: String,
    pub generated_at: String,
    pub provisional: Option<String>,
    pub scores: Vec<ScoreLine>,
    pub level_labels: Vec<String>,
    pub dimensions: Vec<DimensionLine>,
    pub flags: Vec<String>,
    /// Corroborating records (kind, count, source); empty when none were imported.
    pub evidence: Vec<EvidenceLine>,
    /// 与上年度比较: the previous round's key and the lines, when the round is linked to one.
    pub previous: Option<PreviousSection>,
    pub figures: Vec<Figure>,
    pub with_comments: bool,
    pub comments: Vec<String>,
    pub notes: Vec<String>,
    pub index_href: Option<String>,
}

pub struct PreviousSection {
    pub round: String,
    pub lines: Vec<PreviousLine>,
    pub note: String,
}

pub struct PreviousLine {
    pub label: String,
    pub now: String,
    pub before: String,
    pub diff: String,
}

/// The unit's figures beside the previous round's, or why there are none.
fn previous_section(data: &ReportData, u: &UnitResult) -> Option<PreviousSection> {
    let c = data.previous.as_ref()?;
    let Some(m) = c.units.iter().find(|m| m.unit == u.unit) else {
        return Some(PreviousSection {
            round: c.with.clone(),
            lines: Vec::new(),
            note: format!(
                "轮次 {} 中没有与本单位对应的单位(按单位代码或名称)。",
                c.with
            ),
        });
    };
    let signed = |x: Option<f64>, digits: usize| x.map_or_else(dash, |v| format!("{v:+.digits$}"));
    let rank = |r: Option<u32>| r.map_or_else(dash, |r| format!("第 {r} 名"));
    let lines = vec![
        PreviousLine {
            label: "社会评价得分".into(),
            now: n2(m.a.points),
            before: n2(m.b.points),
            diff: signed(m.diff.points, 2),
        },
        PreviousLine {
            label: "排名".into(),
            now: rank(m.a.rank),
            before: rank(m.b.rank),
            diff: m.diff.rank.map_or_else(dash, |d| format!("{d:+}")),
        },
        PreviousLine {
            label: "电话调查受访者平均分".into(),
            now: n1(m.a.mean),
            before: n1(m.b.mean),
            diff: signed(m.diff.mean, 1),
        },
        PreviousLine {
            label: "满意率".into(),
            now: pct(m.a.satisfaction_rate),
            before: pct(m.b.satisfaction_rate),
            diff: signed(m.diff.satisfaction_rate.map(|d| d * 100.0), 1) + " 个百分点",
        },
    ];
    let mut note = match (m.welch, m.p_holm) {
        (Some(w), Some(p)) if m.significant => format!(
            "受访者平均分的变化在统计上显著(Welch t 检验 p = {:.3},经 Holm 多重比较校正 p = {p:.3})。",
            w.p
        ),
        (Some(w), Some(p)) => format!(
            "受访者平均分的变化在统计上不显著(Welch t 检验 p = {:.3},经 Holm 多重比较校正 p = {p:.3}),可能只是抽样波动。",
            w.p
        ),
        _ => "受访者人数不足,无法检验变化是否显著。".to_string(),
    };
    if !c.survey_differences.is_empty() {
        note.push_str(&format!(
            "两轮问卷不同({}),各自按本轮公布的口径列出。",
            c.survey_differences.join(";")
        ));
    }
    Some(PreviousSection {
        round: c.with.clone(),
        lines,
        note,
    })
}

pub struct EvidenceLine {
    pub kind: String,
    pub count: String,
    pub source: String,
}

/// The unit's counts per kind with where each comes from.
fn evidence_lines(u: &UnitResult) -> Vec<EvidenceLine> {
    use crate::domain::evidence::EvidenceKind;
    let e = &u.evidence;
    EvidenceKind::ALL
        .iter()
        .filter_map(|&k| {
            let count = e.count(k)?;
            let mut text = format!("{count} 件");
            if k == EvidenceKind::Complaint
                && let (Some(r), Some(v)) = (e.complaint_rate, e.volume)
            {
                text.push_str(&format!("(业务量 {v} 件,每千件 {r:.2} 件)"));
            }
            let source = e
                .sources
                .iter()
                .find(|s| s.kind == k)
                .map(|s| {
                    if s.note.is_empty() {
                        s.source.clone()
                    } else {
                        format!("{}({})", s.source, s.note)
                    }
                })
                .unwrap_or_default();
            Some(EvidenceLine {
                kind: k.label().to_string(),
                count: text,
                source,
            })
        })
        .collect()
}

pub fn feedback(
    data: &ReportData,
    totals: &RoundTotals,
    unit: usize,
    svgs: &BTreeMap<&str, &str>,
    png: bool,
    single: bool,
) -> Result<String, askama::Error> {
    let doc = &data.doc;
    let s = &doc.survey;
    let u = &doc.units[unit];
    let round_title = if doc.title.is_empty() {
        doc.round.clone()
    } else {
        doc.title.clone()
    };
    let ranked = doc.units.iter().filter(|x| x.social.rank.is_some()).count();
    let phone_ci = phone_points_ci(data, u);
    let onsite_ci = u.onsite.as_ref().and_then(|o| {
        o.ci95.map(|[a, b]| {
            [
                a / s.max_score * s.onsite_points,
                b / s.max_score * s.onsite_points,
            ]
        })
    });
    let mut scores = vec![
        ScoreLine {
            label: "电话调查得分".into(),
            value: format!("{} / {}", n2(u.phone.points), fr_num(s.phone_points)),
            interval: ci2(phone_ci),
            note: format!(
                "{} 份完成访问,受访者平均 {} 分(满分 {})",
                u.phone.completes,
                n1(u.phone.mean),
                fr_num(s.max_score)
            ),
        },
        ScoreLine {
            label: "现场评价得分".into(),
            value: match &u.onsite {
                Some(o) => format!("{:.2} / {}", o.points, fr_num(s.onsite_points)),
                None => "暂缺".into(),
            },
            interval: ci2(onsite_ci),
            note: match &u.onsite {
                Some(o) if o.ballots > 0 => format!("{} 张现场评价票", o.ballots),
                Some(_) => "现场直接评分".into(),
                None => "尚无现场评价数据".into(),
            },
        },
        ScoreLine {
            label: "社会评价得分".into(),
            value: format!("{} / {}", n2(u.social.points), fr_num(s.max_points)),
            interval: ci2(u.social.ci95),
            note: "电话调查得分 + 现场评价得分".into(),
        },
        ScoreLine {
            label: "排名".into(),
            value: u
                .social
                .rank
                .map_or_else(|| "未排名".into(), |r| format!("第 {r} 名 / {ranked}")),
            interval: u
                .social
                .rank_ci95
                .map_or_else(dash, |c| format!("第 {} 名", rank_ci(Some(c)))),
            note: format!("按{}排名", ranked_by_text(data)),
        },
        ScoreLine {
            label: format!("位列最后 {} 名的概率", doc.bottom_k),
            value: p_bottom(u.social.p_bottom),
            interval: String::new(),
            note: format!("{} 次 bootstrap 重抽样", doc.bootstrap_replicates),
        },
        ScoreLine {
            label: "满意率".into(),
            value: pct(u.phone.satisfaction_rate),
            interval: ci_pct(u.phone.satisfaction_rate_ci95),
            note: "五个维度回答为满意类等级的平均占比".into(),
        },
        ScoreLine {
            label: "应答率 RR1".into(),
            value: pct(u.rates.rr1),
            interval: String::new(),
            note: format!("代表 {} 名,完成访问 {} 份", u.panel, u.phone.completes),
        },
    ];
    if doc.ranked_by == RankBasis::Phone {
        scores[2].note = "尚无单位有现场评价,排名依据电话调查得分".into();
    }
    let dimensions = s
        .dimensions
        .iter()
        .enumerate()
        .map(|(d, dim)| {
            let ud = u.phone.dimensions.get(d);
            let round_mean = totals.means.get(d).copied().flatten();
            DimensionLine {
                label: dim.label.clone(),
                mean: n1(ud.and_then(|x| x.mean)),
                round_mean: n1(round_mean),
                satisfaction: pct(ud.and_then(|x| x.satisfaction_rate)),
                satisfaction_ci: ci_pct(ud.and_then(|x| x.satisfaction_rate_ci95)),
                counts: s
                    .levels
                    .iter()
                    .map(|l| {
                        ud.and_then(|x| x.counts.get(&l.key))
                            .copied()
                            .unwrap_or(0)
                            .to_string()
                    })
                    .collect(),
            }
        })
        .collect();
    let stem = unit_stem(unit, doc.units.len(), &u.unit);
    let figures = UnitChart::all()
        .iter()
        .filter_map(|w| {
            svgs.get(w.key()).map(|svg| {
                figure(
                    w.key(),
                    svg,
                    "../charts/units/",
                    &format!("{stem}-{}", w.key()),
                    png,
                )
            })
        })
        .collect();
    let about = [
        Some(u.sector.clone()).filter(|x| !x.is_empty()),
        Some(u.kind.to_string()),
        u.code.clone().map(|c| format!("单位代码 {c}")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" · ");
    let notes = vec![
        format!(
            "得分区间为 95% 置信区间;排名区间与位列最后 {} 名的概率来自 {} 次 bootstrap 重抽样(种子 {}),反映抽样带来的不确定性。",
            doc.bottom_k, doc.bootstrap_replicates, doc.bootstrap_seed
        ),
        "本页不含任何受访者的姓名、电话等个人信息;意见建议中的姓名与号码已遮盖。".into(),
    ];
    FeedbackPage {
        page_title: format!("{} · 社会评价反馈意见 · {round_title}", u.unit),
        unit: u.unit.clone(),
        round_title,
        about,
        generated_at: data.generated_at.clone(),
        provisional: provisional_text(data),
        scores,
        level_labels: s.levels.iter().map(|l| l.label.clone()).collect(),
        dimensions,
        flags: u
            .flags
            .iter()
            .map(|f| format!("{}:{}", flag_label(*f), flag_explained(*f, s.min_completes)))
            .collect(),
        evidence: evidence_lines(u),
        previous: previous_section(data, u),
        figures,
        with_comments: data.with_comments,
        comments: data.comments.get(unit).cloned().unwrap_or_default(),
        notes,
        index_href: (!single).then(|| "../index.html".to_string()),
    }
    .render()
}
