//! Corroborating records (佐证依据): per unit, counts of 12345 complaints, petitions and
//! disciplinary cases from the offices that hold them, read beside the social evaluation.
//! The statistics here (Spearman with average ranks, thirds by percentile rank) are defined in
//! `docs/scoring.md` "Corroborating evidence"; the flag they raise never changes a score.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// A kind is checked (and units flagged by it) only when at least this many units with social
/// points have it: with fewer, ranks and thirds say nothing.
pub const MIN_UNITS: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// 12345 电话投诉
    Complaint,
    /// 信访事项受理
    Petition,
    /// 违纪违法案件查处
    Discipline,
}

impl EvidenceKind {
    pub const ALL: [EvidenceKind; 3] = [
        EvidenceKind::Complaint,
        EvidenceKind::Petition,
        EvidenceKind::Discipline,
    ];

    pub fn key(self) -> &'static str {
        match self {
            EvidenceKind::Complaint => "complaint",
            EvidenceKind::Petition => "petition",
            EvidenceKind::Discipline => "discipline",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            EvidenceKind::Complaint => "12345投诉",
            EvidenceKind::Petition => "信访",
            EvidenceKind::Discipline => "违纪违法案件",
        }
    }

    /// The kind as people write it (English key or a Chinese name).
    pub fn parse(text: &str) -> Option<EvidenceKind> {
        let t = text.trim();
        let lower = t.to_ascii_lowercase();
        match lower.as_str() {
            "complaint" | "complaints" | "12345" | "12345投诉" | "12345电话投诉" | "投诉" => {
                Some(EvidenceKind::Complaint)
            }
            "petition" | "petitions" | "信访" | "信访事项" | "信访事项受理" => {
                Some(EvidenceKind::Petition)
            }
            "discipline" | "违纪违法案件" | "违纪违法" | "违纪违法案件查处" | "违纪" => {
                Some(EvidenceKind::Discipline)
            }
            _ => None,
        }
    }
}

/// One stored record: a unit's count of one kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvidenceRecord {
    pub kind: EvidenceKind,
    pub count: u64,
    /// Cases the unit handled in the period (the denominator of a rate).
    pub volume: Option<u64>,
    /// Where the count comes from (letter number, sending office).
    pub source: String,
    pub note: String,
}

/// Where one of a unit's counts comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceSource {
    pub kind: EvidenceKind,
    pub source: String,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub note: String,
}

/// A unit's evidence as published beside its scores (`null` where not given).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnitEvidence {
    pub complaint: Option<u64>,
    pub petition: Option<u64>,
    pub discipline: Option<u64>,
    pub volume: Option<u64>,
    /// Complaints per 1,000 of volume.
    pub complaint_rate: Option<f64>,
    pub sources: Vec<EvidenceSource>,
}

impl UnitEvidence {
    /// Combines a unit's records (at most one per kind). The volume is the complaint record's,
    /// else the first one given.
    pub fn of(records: &[EvidenceRecord]) -> UnitEvidence {
        let mut e = UnitEvidence::default();
        let mut sorted: Vec<&EvidenceRecord> = records.iter().collect();
        sorted.sort_by_key(|r| r.kind);
        for r in &sorted {
            match r.kind {
                EvidenceKind::Complaint => e.complaint = Some(r.count),
                EvidenceKind::Petition => e.petition = Some(r.count),
                EvidenceKind::Discipline => e.discipline = Some(r.count),
            }
            if e.volume.is_none() {
                e.volume = r.volume;
            }
            if !r.source.is_empty() || !r.note.is_empty() {
                e.sources.push(EvidenceSource {
                    kind: r.kind,
                    source: r.source.clone(),
                    note: r.note.clone(),
                });
            }
        }
        e.complaint_rate = rate(e.complaint, e.volume);
        e
    }

    pub fn count(&self, kind: EvidenceKind) -> Option<u64> {
        match kind {
            EvidenceKind::Complaint => self.complaint,
            EvidenceKind::Petition => self.petition,
            EvidenceKind::Discipline => self.discipline,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.complaint.is_none() && self.petition.is_none() && self.discipline.is_none()
    }
}

/// Per 1,000 of volume (volume > 0).
fn rate(count: Option<u64>, volume: Option<u64>) -> Option<f64> {
    match (count, volume) {
        (Some(c), Some(v)) if v > 0 => Some(c as f64 * 1000.0 / v as f64),
        _ => None,
    }
}

/// Spearman's correlation of one kind with the units' social points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceCheck {
    pub kind: EvidenceKind,
    pub n: u32,
    /// `rate` (per 1,000 of volume, when every unit in the check has a volume) or `count`.
    pub basis: String,
    /// `None` when either variable is constant.
    pub spearman_rho: Option<f64>,
    pub p: Option<f64>,
}

/// Ranks 1..=n ascending, ties given the average of the ranks they span.
pub fn average_ranks(xs: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut ranks = vec![0.0; xs.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && xs[order[j + 1]] == xs[order[i]] {
            j += 1;
        }
        // Positions i..=j (0-based) share ranks i+1..=j+1.
        let avg = (i + j + 2) as f64 / 2.0;
        for &k in &order[i..=j] {
            ranks[k] = avg;
        }
        i = j + 1;
    }
    ranks
}

/// Spearman's rho (Pearson's r of the average ranks) and its two-sided p value as
/// `scipy.stats.spearmanr` computes it: `t = rho·√((n−2)/((1+rho)(1−rho)))`, Student t with
/// n − 2 degrees of freedom. `None` when n < 3, the lengths differ or a variable is constant.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<(f64, f64)> {
    let n = x.len();
    if n < 3 || y.len() != n {
        return None;
    }
    let (rx, ry) = (average_ranks(x), average_ranks(y));
    let mean = (n as f64 + 1.0) / 2.0;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in rx.iter().zip(&ry) {
        let (da, db) = (a - mean, b - mean);
        sxy += da * db;
        sxx += da * da;
        syy += db * db;
    }
    if sxx <= 0.0 || syy <= 0.0 {
        return None;
    }
    let rho = (sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0);
    let df = (n - 2) as f64;
    let denom = (1.0 + rho) * (1.0 - rho);
    let p = if denom <= 0.0 {
        0.0
    } else {
        let t = rho * (df / denom).sqrt();
        (2.0 * StudentsT::new(0.0, 1.0, df).ok()?.sf(t.abs())).min(1.0)
    };
    Some((rho, p))
}

/// Which third a value's percentile rank `(average rank − 1)/(n − 1)` lies in: `Some(true)`
/// top (≥ 2/3), `Some(false)` bottom (≤ 1/3), `None` middle. Compared as `3(r−1)` against
/// `2(n−1)` and `n−1`, exact since average ranks are halves.
fn thirds(xs: &[f64]) -> Vec<Option<bool>> {
    let n1 = (xs.len() as f64 - 1.0).max(1.0);
    average_ranks(xs)
        .into_iter()
        .map(|r| {
            let v = 3.0 * (r - 1.0);
            if v >= 2.0 * n1 {
                Some(true)
            } else if v <= n1 {
                Some(false)
            } else {
                None
            }
        })
        .collect()
}

/// The checks per kind and, per unit, whether its points and complaints lie in the same third.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvidenceAnalysis {
    pub checks: Vec<EvidenceCheck>,
    /// Same order as the units given.
    pub mismatch: Vec<bool>,
}

/// `points[i]` and `evidence[i]` are unit i's social points and evidence. Units without points
/// take no part.
pub fn analyse(points: &[Option<f64>], evidence: &[UnitEvidence]) -> EvidenceAnalysis {
    let mut out = EvidenceAnalysis {
        checks: Vec::new(),
        mismatch: vec![false; points.len()],
    };
    for kind in EvidenceKind::ALL {
        let members: Vec<(usize, f64, u64, Option<u64>)> = points
            .iter()
            .zip(evidence)
            .enumerate()
            .filter_map(|(i, (p, e))| Some((i, (*p)?, e.count(kind)?, e.volume)))
            .collect();
        if members.len() < MIN_UNITS {
            continue;
        }
        let by_rate = members.iter().all(|m| m.3.is_some_and(|v| v > 0));
        let values: Vec<f64> = members
            .iter()
            .map(|&(_, _, c, v)| {
                if by_rate {
                    rate(Some(c), v).unwrap_or(0.0)
                } else {
                    c as f64
                }
            })
            .collect();
        let pts: Vec<f64> = members.iter().map(|m| m.1).collect();
        let sp = spearman(&values, &pts);
        out.checks.push(EvidenceCheck {
            kind,
            n: members.len() as u32,
            basis: if by_rate { "rate" } else { "count" }.into(),
            spearman_rho: sp.map(|s| s.0),
            p: sp.map(|s| s.1),
        });
        if kind == EvidenceKind::Complaint {
            for ((m, tp), tv) in members.iter().zip(thirds(&pts)).zip(thirds(&values)) {
                if tp.is_some() && tp == tv {
                    out.mismatch[m.0] = true;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_ranks_share_ties() {
        assert_eq!(
            average_ranks(&[3.0, 1.0, 3.0, 2.0]),
            vec![3.5, 1.0, 3.5, 2.0]
        );
    }

    #[test]
    fn perfect_order_has_rho_one_and_p_zero() {
        let (rho, p) = spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 30.0, 40.0]).unwrap();
        assert_eq!((rho, p), (1.0, 0.0));
        assert!(spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_none());
    }

    #[test]
    fn kinds_parse_in_both_languages() {
        assert_eq!(EvidenceKind::parse("信访"), Some(EvidenceKind::Petition));
        assert_eq!(
            EvidenceKind::parse(" Complaint "),
            Some(EvidenceKind::Complaint)
        );
        assert_eq!(
            EvidenceKind::parse("违纪违法案件"),
            Some(EvidenceKind::Discipline)
        );
        assert_eq!(EvidenceKind::parse("表扬"), None);
    }

    /// Spearman, basis and thirds against tests/reference/evidence_reference.py (scipy).
    #[test]
    fn matches_the_scipy_reference() {
        const REFERENCE: &str = include_str!("../../tests/reference/evidence_reference.json");
        let doc: serde_json::Value = serde_json::from_str(REFERENCE).unwrap();
        let cases = doc["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 5);
        for (c, case) in cases.iter().enumerate() {
            let units = case["units"].as_array().unwrap();
            let points: Vec<Option<f64>> = units.iter().map(|u| u["points"].as_f64()).collect();
            let evidence: Vec<UnitEvidence> = units
                .iter()
                .map(|u| {
                    let e = &u["evidence"];
                    let records: Vec<EvidenceRecord> = EvidenceKind::ALL
                        .iter()
                        .filter_map(|k| {
                            Some(EvidenceRecord {
                                kind: *k,
                                count: e[k.key()].as_u64()?,
                                volume: e["volume"].as_u64(),
                                source: String::new(),
                                note: String::new(),
                            })
                        })
                        .collect();
                    UnitEvidence::of(&records)
                })
                .collect();
            let got = analyse(&points, &evidence);
            let want = case["checks"].as_array().unwrap();
            assert_eq!(got.checks.len(), want.len(), "case {c}");
            for (g, w) in got.checks.iter().zip(want) {
                assert_eq!(g.kind.key(), w["kind"].as_str().unwrap(), "case {c}");
                assert_eq!(u64::from(g.n), w["n"].as_u64().unwrap(), "case {c}");
                assert_eq!(g.basis, w["basis"].as_str().unwrap(), "case {c}");
                for (name, gv) in [("spearman_rho", g.spearman_rho), ("p", g.p)] {
                    match (gv, w[name].as_f64()) {
                        (Some(a), Some(b)) => {
                            assert!(
                                (a - b).abs() < 1e-12,
                                "case {c} {:?} {name}: {a} vs {b}",
                                g.kind
                            )
                        }
                        (a, b) => assert_eq!(a, b, "case {c} {:?} {name}", g.kind),
                    }
                }
            }
            let want: Vec<bool> = case["mismatch"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b.as_bool().unwrap())
                .collect();
            assert_eq!(got.mismatch, want, "case {c}");
        }
    }
}
