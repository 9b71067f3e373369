//! Comparison of a round with another (usually the previous year's): units matched by unit
//! code where both have one, else by exact name; per matched unit the published figures of
//! both rounds, their differences, Welch's t tests on the respondents' scores and satisfied
//! shares, and Holm's adjustment across units. Defined in `docs/scoring.md` "Comparison with
//! another round".

use serde::Serialize;

use super::stats::{WelchT, holm, welch_t_test};

/// What a round published for a unit, and its respondents' figures.
#[derive(Debug, Clone, Default)]
pub struct CompareInput {
    pub unit: String,
    pub code: Option<String>,
    pub side: Published,
    /// Respondent scores `r_i` (0 … max).
    pub scores: Vec<f64>,
    /// Respondents' satisfied shares `q_i`.
    pub shares: Vec<f64>,
}

/// A unit's published figures in one round.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Published {
    pub completes: u32,
    pub mean: Option<f64>,
    pub satisfaction_rate: Option<f64>,
    pub points: Option<f64>,
    pub rank: Option<u32>,
}

/// `a − b`; `null` where either is.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Diff {
    pub mean: Option<f64>,
    pub satisfaction_rate: Option<f64>,
    pub points: Option<f64>,
    /// Negative: a better (smaller) rank in `a`.
    pub rank: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitComparison {
    pub unit: String,
    pub code: Option<String>,
    pub a: Published,
    pub b: Published,
    pub diff: Diff,
    pub welch: Option<WelchT>,
    pub welch_rate: Option<WelchT>,
    pub p_holm: Option<f64>,
    pub significant: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unmatched {
    pub unit: String,
    pub code: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Comparison {
    pub units: Vec<UnitComparison>,
    pub unmatched_a: Vec<Unmatched>,
    pub unmatched_b: Vec<Unmatched>,
}

fn sub(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? - b?)
}

/// Whether two units are the same: by code when both have one, else by exact name.
fn same(a: &CompareInput, b: &CompareInput) -> bool {
    match (&a.code, &b.code) {
        (Some(x), Some(y)) => x == y,
        _ => a.unit == b.unit,
    }
}

/// Compares round `a` with round `b`, in `a`'s unit order.
pub fn compare(a: &[CompareInput], b: &[CompareInput]) -> Comparison {
    let mut taken = vec![false; b.len()];
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    let mut unmatched_a = Vec::new();
    for (i, ua) in a.iter().enumerate() {
        // A code match wins over a name match with another unit.
        let found = (0..b.len())
            .filter(|&j| !taken[j] && same(ua, &b[j]))
            .min_by_key(|&j| !(ua.code.is_some() && ua.code == b[j].code));
        match found {
            Some(j) => {
                taken[j] = true;
                pairs.push((i, j));
            }
            None => unmatched_a.push(Unmatched {
                unit: ua.unit.clone(),
                code: ua.code.clone(),
            }),
        }
    }
    let mut units: Vec<UnitComparison> = pairs
        .iter()
        .map(|&(i, j)| {
            let (ua, ub) = (&a[i], &b[j]);
            UnitComparison {
                unit: ua.unit.clone(),
                code: ua.code.clone().or_else(|| ub.code.clone()),
                a: ua.side.clone(),
                b: ub.side.clone(),
                diff: Diff {
                    mean: sub(ua.side.mean, ub.side.mean),
                    satisfaction_rate: sub(ua.side.satisfaction_rate, ub.side.satisfaction_rate),
                    points: sub(ua.side.points, ub.side.points),
                    rank: match (ua.side.rank, ub.side.rank) {
                        (Some(x), Some(y)) => Some(i64::from(x) - i64::from(y)),
                        _ => None,
                    },
                },
                welch: welch_t_test(&ua.scores, &ub.scores),
                welch_rate: welch_t_test(&ua.shares, &ub.shares),
                p_holm: None,
                significant: false,
            }
        })
        .collect();
    // Holm across the matched units that have a Welch p value.
    let tested: Vec<usize> = (0..units.len())
        .filter(|&k| units[k].welch.is_some())
        .collect();
    let ps: Vec<f64> = tested
        .iter()
        .filter_map(|&k| units[k].welch.map(|w| w.p))
        .collect();
    for (&k, p) in tested.iter().zip(holm(&ps)) {
        units[k].p_holm = Some(p);
        units[k].significant = p < 0.05;
    }
    let unmatched_b = b
        .iter()
        .zip(&taken)
        .filter(|(_, t)| !**t)
        .map(|(u, _)| Unmatched {
            unit: u.unit.clone(),
            code: u.code.clone(),
        })
        .collect();
    Comparison {
        units,
        unmatched_a,
        unmatched_b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(name: &str, code: Option<&str>) -> CompareInput {
        CompareInput {
            unit: name.into(),
            code: code.map(String::from),
            ..Default::default()
        }
    }

    #[test]
    fn units_match_by_code_where_both_have_one_else_by_name() {
        let a = [
            unit("甲局", Some("A1")),
            unit("乙局(更名)", Some("B1")),
            unit("丙局", None),
            unit("丁局", Some("D1")),
        ];
        let b = [
            unit("乙局", Some("B1")),
            unit("甲局", Some("A1")),
            unit("丙局", Some("C1")),
            unit("丁局", Some("D2")),
            unit("戊局", None),
        ];
        let c = compare(&a, &b);
        let names: Vec<&str> = c.units.iter().map(|u| u.unit.as_str()).collect();
        assert_eq!(names, ["甲局", "乙局(更名)", "丙局"]);
        assert_eq!(c.units[2].code.as_deref(), Some("C1"));
        assert_eq!(c.unmatched_a.len(), 1, "丁局: codes differ");
        let rest: Vec<&str> = c.unmatched_b.iter().map(|u| u.unit.as_str()).collect();
        assert_eq!(rest, ["丁局", "戊局"]);
    }

    /// Welch (scores and shares), Holm and `significant` against
    /// tests/reference/compare_reference.py (scipy).
    #[test]
    fn matches_the_scipy_reference() {
        const REFERENCE: &str = include_str!("../../tests/reference/compare_reference.json");
        let doc: serde_json::Value = serde_json::from_str(REFERENCE).unwrap();
        let floats = |v: &serde_json::Value| -> Vec<f64> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        };
        let side = |u: &serde_json::Value, s: &str, i: usize| CompareInput {
            unit: format!("单位{i}"),
            code: None,
            side: Published::default(),
            scores: floats(&u[format!("{s}_scores")]),
            shares: floats(&u[format!("{s}_shares")]),
        };
        let units = doc["units"].as_array().unwrap();
        let a: Vec<CompareInput> = units
            .iter()
            .enumerate()
            .map(|(i, u)| side(u, "a", i))
            .collect();
        let b: Vec<CompareInput> = units
            .iter()
            .enumerate()
            .map(|(i, u)| side(u, "b", i))
            .collect();
        let got = compare(&a, &b);
        let want = doc["results"].as_array().unwrap();
        assert_eq!(got.units.len(), want.len());
        let close = |x: f64, y: f64, what: &str| {
            assert!(
                (x - y).abs() <= 1e-10 * y.abs().max(1.0),
                "{what}: {x} vs {y}"
            )
        };
        for (k, (g, w)) in got.units.iter().zip(want).enumerate() {
            for (name, t) in [("welch", g.welch), ("welch_rate", g.welch_rate)] {
                match (t, w[name].is_null()) {
                    (None, true) => {}
                    (Some(t), false) => {
                        close(
                            t.t,
                            w[name]["t"].as_f64().unwrap(),
                            &format!("{k} {name} t"),
                        );
                        close(
                            t.df,
                            w[name]["df"].as_f64().unwrap(),
                            &format!("{k} {name} df"),
                        );
                        close(
                            t.p,
                            w[name]["p"].as_f64().unwrap(),
                            &format!("{k} {name} p"),
                        );
                    }
                    (t, _) => panic!("unit {k} {name}: {t:?} vs {}", w[name]),
                }
            }
            match (g.p_holm, w["p_holm"].as_f64()) {
                (Some(x), Some(y)) => close(x, y, &format!("{k} p_holm")),
                (x, y) => assert_eq!(x, y, "unit {k} p_holm"),
            }
            assert_eq!(
                g.significant,
                w["significant"].as_bool().unwrap(),
                "unit {k}"
            );
        }
        assert!(
            got.units.iter().any(|u| u.significant),
            "the fixture has a change"
        );
    }
}
