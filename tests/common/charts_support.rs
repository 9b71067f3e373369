//! Synthetic rounds for the chart and report tests and the report benchmark: interviews are
//! generated, scored by the real `score_round`, and wrapped in a results document the way
//! `results::compute` does for stored data.

use chrono::NaiveDate;
use sheping::charts::response::DayCount;
use sheping::domain::disposition::{DispositionCounts, ResponseRates};
use sheping::domain::scoring::{
    Ballot, Interview, OnsiteData, RoundResults, ScoringOptions, UnitInput, score_round,
};
use sheping::domain::stats::SeededRng;
use sheping::domain::survey::Survey;
use sheping::results::{
    OperatorEffect, OverallResult, QualityReport, ResultsDocument, SurveySummary, UnitResult,
};

pub const SURVEY: &str = include_str!("../../surveys/default.toml");

pub fn survey() -> Survey {
    Survey::from_toml_str(SURVEY).expect("default survey")
}

/// How to make a round.
#[derive(Debug, Clone)]
pub struct Spec {
    pub units: usize,
    /// Completes per unit (before `zero_units`).
    pub respondents: usize,
    /// Units (by index) with no complete at all.
    pub zero_units: Vec<usize>,
    /// Names of 30+ characters.
    pub long_names: bool,
    /// Units with on-site ballots; otherwise the round is ranked by phone points.
    pub onsite: bool,
    pub replicates: u32,
    pub seed: u64,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            units: 30,
            respondents: 40,
            zero_units: Vec::new(),
            long_names: false,
            onsite: true,
            replicates: 400,
            seed: 2022,
        }
    }
}

const SECTORS: [&str; 4] = ["教体", "住建", "交通运输", "上年度考核靠后"];
const BASE_NAMES: [&str; 12] = [
    "汉滨区教育体育局",
    "汉滨区教学研究室",
    "汉滨区住房和城乡建设局",
    "汉滨区房产管理中心",
    "汉滨区交通运输局",
    "汉滨区公路管理段",
    "汉滨区市场监督管理局",
    "汉滨区林业站",
    "汉滨区第一中学",
    "汉滨区住房保障中心",
    "汉滨区航运管理站",
    "汉滨区农业技术推广中心",
];

pub fn unit_name(i: usize, long: bool) -> String {
    let base = BASE_NAMES[i % BASE_NAMES.len()];
    if long {
        format!(
            "{base}关于城乡基础设施建设与公共服务保障工作领导小组办公室第{}分部",
            i + 1
        )
    } else if i < BASE_NAMES.len() {
        base.to_string()
    } else {
        format!("{base}第{}分部", i / BASE_NAMES.len() + 1)
    }
}

/// A scored round: the document, the interviews it was scored from, completes per day.
pub struct Round {
    pub doc: ResultsDocument,
    pub interviews: Vec<Interview>,
    pub days: Vec<DayCount>,
}

/// What `score_round` is given, with the dispositions and completes per day beside it.
pub struct Inputs {
    pub survey: Survey,
    pub units: Vec<UnitInput>,
    pub interviews: Vec<Interview>,
    pub dispositions: Vec<DispositionCounts>,
    pub days: Vec<DayCount>,
    pub options: ScoringOptions,
}

pub fn round(spec: &Spec) -> Round {
    let i = inputs(spec);
    let scored = score_round(&i.survey, &i.units, &i.interviews, &i.options).expect("scores");
    document(spec, i, scored)
}

pub fn inputs(spec: &Spec) -> Inputs {
    let survey = survey();
    let k = survey.dimensions.len();
    let mut rng = SeededRng::new(spec.seed, 0);
    let operators: Vec<String> = (1..=8).map(|i| format!("A{i:02}")).collect();
    let mut units = Vec::with_capacity(spec.units);
    let mut interviews = Vec::new();
    let start = NaiveDate::from_ymd_opt(2022, 11, 1).unwrap();
    let mut per_day = [0u32; 20];
    for u in 0..spec.units {
        // Units differ: the chance of the best level falls with the index.
        let quality = 0.9 - 0.35 * u as f64 / spec.units.max(1) as f64;
        let answer = |rng: &mut SeededRng, shift: u64| -> usize {
            let r = rng.below(1000) as f64 / 1000.0;
            let level = if r < quality * 0.7 {
                0
            } else if r < quality {
                1
            } else if r < 0.96 {
                2
            } else {
                3
            };
            (level + shift as usize).min(3)
        };
        let onsite = if spec.onsite {
            OnsiteData::Ballots(
                (0..12)
                    .map(|_| Ballot::Dimensions((0..k).map(|_| answer(&mut rng, 0)).collect()))
                    .collect(),
            )
        } else {
            OnsiteData::None
        };
        let n = if spec.zero_units.contains(&u) {
            0
        } else {
            spec.respondents
        };
        for i in 0..n {
            let op = rng.below(operators.len() as u64) as usize;
            // Operator A03 records systematically worse answers: the check should flag it.
            let shift = u64::from(op == 2 && rng.below(3) == 0);
            let day = rng.below(per_day.len() as u64) as usize;
            per_day[day] += 1;
            interviews.push(Interview {
                unit: u,
                operator: operators[op].clone(),
                answers: (0..k).map(|_| answer(&mut rng, shift)).collect(),
                duration_secs: Some(90.0 + rng.below(200) as f64),
                answer_offsets_secs: Some((0..k).map(|d| 20.0 + 9.0 * d as f64).collect()),
                id: format!("R{u:04}{i:03}"),
                at: format!(
                    "{}T10:00:00+08:00",
                    start + chrono::Duration::days(day as i64)
                ),
            });
        }
        units.push(UnitInput {
            name: unit_name(u, spec.long_names),
            onsite,
            rr1: None,
        });
    }
    let dispositions: Vec<DispositionCounts> = (0..spec.units)
        .map(|u| {
            let i = interviews.iter().filter(|iv| iv.unit == u).count() as u32;
            let rest = 45u32.saturating_sub(i);
            let r = rest / 3;
            let nc = rest / 4;
            let uo = rest / 8;
            let p = u32::from(rest > 0);
            let uh = rest - r - nc - uo - p;
            DispositionCounts {
                i,
                p,
                r,
                nc,
                o: 0,
                uh,
                uo,
                ne: 0,
            }
        })
        .collect();
    for (u, d) in units.iter_mut().zip(&dispositions) {
        u.rr1 = ResponseRates::from_counts(d).rr1;
    }
    let options = ScoringOptions {
        bootstrap_replicates: spec.replicates,
        ..ScoringOptions::with_seed(spec.seed)
    };
    let days = per_day
        .iter()
        .enumerate()
        .map(|(d, &c)| DayCount {
            date: start + chrono::Duration::days(d as i64),
            completes: c,
        })
        .collect();
    Inputs {
        survey,
        units,
        interviews,
        dispositions,
        days,
        options,
    }
}

/// The results document of scored inputs, as `results::compute` builds it from storage.
pub fn document(spec: &Spec, i: Inputs, scored: RoundResults) -> Round {
    let Inputs {
        survey,
        interviews,
        dispositions,
        days,
        ..
    } = i;
    let overall_disp = dispositions
        .iter()
        .fold(DispositionCounts::default(), |mut a, d| {
            a.i += d.i;
            a.p += d.p;
            a.r += d.r;
            a.nc += d.nc;
            a.o += d.o;
            a.uh += d.uh;
            a.uo += d.uo;
            a
        });
    let q = scored.quality;
    let doc = ResultsDocument {
        round: "2022".into(),
        title: "2022年度履职评估(测试数据)".into(),
        computed_at: "2022-12-01T00:00:00Z".into(),
        field_closed: true,
        locked: false,
        survey: SurveySummary::of(&survey),
        ranked_by: scored.ranked_by,
        bootstrap_seed: scored.bootstrap_seed,
        bootstrap_seed_source: "stored",
        bootstrap_replicates: scored.bootstrap_replicates,
        bottom_k: scored.bottom_k,
        units: scored
            .units
            .into_iter()
            .zip(&dispositions)
            .enumerate()
            .map(|(i, (s, d))| UnitResult {
                unit: s.name,
                code: Some(format!("T{i:04}")),
                kind: if i % 5 == 0 {
                    "党政机关"
                } else {
                    "事业单位"
                },
                sector: SECTORS[(i * SECTORS.len()) / spec.units.max(1)].to_string(),
                panel: 45,
                dispositions: *d,
                rates: ResponseRates::from_counts(d),
                phone: s.phone,
                onsite: s.onsite,
                social: s.social,
                flags: s.flags,
                evidence: Default::default(),
            })
            .collect(),
        evidence_check: Vec::new(),
        overall: OverallResult {
            panel: 45 * spec.units as u32,
            completes: q.completes,
            dispositions: overall_disp,
            rates: ResponseRates::from_counts(&overall_disp),
        },
        quality: QualityReport {
            completes: q.completes,
            cronbach_alpha: q.cronbach_alpha,
            operator_effect: OperatorEffect {
                anova: q.anova,
                chi2: q.chi2,
                operators: q.operators,
                flagged_operators: q.flagged_operators,
            },
            straight_line_share: q.straight_line_share,
            min_duration_secs: 60.0,
            min_median_gap_secs: 2.0,
            suspicious: q.suspicious,
        },
        warnings: Vec::new(),
    };
    Round {
        doc,
        interviews,
        days,
    }
}
