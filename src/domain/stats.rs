//! Small, general statistics used by the scoring (see `docs/scoring.md`).
//!
//! Every function returns `None` when the data do not determine the statistic (no
//! observations, a zero denominator, fewer than two values for a variance), so that no NaN
//! or made-up 0 ever reaches a report.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng as _, SeedableRng};
use serde::{Deserialize, Serialize};
use statrs::distribution::{ChiSquared, ContinuousCDF, FisherSnedecor, StudentsT};

/// The 0.975 quantile of the standard normal distribution (two-sided 95 %).
pub const Z95: f64 = 1.959963984540054;

/// Arithmetic mean.
///
/// Computed as `x₀ + Σ(xᵢ − x₀)/n` so that identical values give exactly that value back
/// (and hence an SD of exactly 0, which the callers test for).
pub fn mean(xs: &[f64]) -> Option<f64> {
    let first = *xs.first()?;
    let shift: f64 = xs.iter().map(|x| x - first).sum();
    Some(first + shift / xs.len() as f64)
}

/// Sample variance with the n − 1 denominator (two-pass).
pub fn sample_variance(xs: &[f64]) -> Option<f64> {
    if xs.len() < 2 {
        return None;
    }
    let m = mean(xs)?;
    let ss: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
    Some(ss / (xs.len() - 1) as f64)
}

/// Sample standard deviation (n − 1).
pub fn sample_sd(xs: &[f64]) -> Option<f64> {
    sample_variance(xs).map(f64::sqrt)
}

/// Median (mean of the two middle values for an even count).
pub fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Quantile `p` of Student's t with `df` degrees of freedom (statrs).
pub fn t_quantile(p: f64, df: f64) -> Option<f64> {
    // Written positively so that NaN inputs also give None.
    let valid = p > 0.0 && p < 1.0 && df > 0.0;
    if !valid {
        return None;
    }
    Some(StudentsT::new(0.0, 1.0, df).ok()?.inverse_cdf(p))
}

/// Two-sided t interval `mean ± t((1+level)/2, n−1)·sd/√n` from summary values.
pub fn t_interval_from(mean: f64, sd: f64, n: usize, level: f64) -> Option<[f64; 2]> {
    if n < 2 || !mean.is_finite() || !sd.is_finite() {
        return None;
    }
    let t = t_quantile((1.0 + level) / 2.0, (n - 1) as f64)?;
    let half = t * sd / (n as f64).sqrt();
    Some([mean - half, mean + half])
}

/// Two-sided t interval for the mean of `xs` (no finite-population correction).
pub fn t_interval(xs: &[f64], level: f64) -> Option<[f64; 2]> {
    t_interval_from(mean(xs)?, sample_sd(xs)?, xs.len(), level)
}

/// Wilson score interval for a proportion `successes / n`.
pub fn wilson(successes: u64, n: u64, z: f64) -> Option<[f64; 2]> {
    if n == 0 || successes > n {
        return None;
    }
    wilson_of(successes as f64 / n as f64, n as f64, z)
}

/// Wilson score interval for a proportion `p` observed on `n` (possibly effective, not whole)
/// trials.
fn wilson_of(p: f64, n: f64, z: f64) -> Option<[f64; 2]> {
    let valid = (0.0..=1.0).contains(&p) && n > 0.0 && z.is_finite();
    if !valid {
        return None;
    }
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    // At p = 0 (p = 1) the exact lower (upper) bound is 0 (1); say so rather than leave
    // rounding noise, and clamp the rest into [0, 1].
    let lo = if p == 0.0 {
        0.0
    } else {
        (centre - half).max(0.0)
    };
    let hi = if p == 1.0 {
        1.0
    } else {
        (centre + half).min(1.0)
    };
    Some([lo, hi])
}

/// Interval for a proportion measured as the mean of per-respondent shares `q_i` (each the
/// share of a respondent's `k` answers that are satisfied): a cluster sample, one cluster per
/// respondent. The Wilson interval on the effective sample size
/// `n* = q̄(1−q̄) / (s_q²/n)` (the design effect of the clustering taken out; at most n·k, the
/// size had every answer been independent, which it is also when `s_q = 0` or `q̄` is 0 or 1),
/// with `z` replaced by `t_{(1+level)/2, n−1}` (Korn & Graubard 1998). Unlike `q̄ ± t·s_q/√n`
/// it stays within [0, 1]: a unit with 96% satisfaction on 10 interviews got an upper bound
/// above 100%. `None` for n < 2.
pub fn clustered_proportion_interval(shares: &[f64], k: usize, level: f64) -> Option<[f64; 2]> {
    let n = shares.len();
    if n < 2 || k == 0 || shares.iter().any(|q| !(0.0..=1.0).contains(q)) {
        return None;
    }
    let q = mean(shares)?;
    let var_mean = sample_variance(shares)? / n as f64;
    let cap = (n * k) as f64;
    let n_eff = if var_mean > 0.0 && q > 0.0 && q < 1.0 {
        (q * (1.0 - q) / var_mean).min(cap)
    } else {
        cap
    };
    let t = t_quantile((1.0 + level) / 2.0, (n - 1) as f64)?;
    wilson_of(q, n_eff, t)
}

/// Cronbach's alpha `k/(k−1)·(1 − Σ s²_d / s²_X)`; `items` holds one row of k item scores
/// per respondent. `None` for n < 2, k < 2, ragged rows or `s²_X = 0`.
pub fn cronbach_alpha(items: &[Vec<f64>]) -> Option<f64> {
    let k = items.first()?.len();
    if items.len() < 2 || k < 2 || items.iter().any(|row| row.len() != k) {
        return None;
    }
    let item_var_sum: f64 = (0..k)
        .map(|d| {
            let col: Vec<f64> = items.iter().map(|row| row[d]).collect();
            sample_variance(&col)
        })
        .sum::<Option<f64>>()?;
    let totals: Vec<f64> = items.iter().map(|row| row.iter().sum()).collect();
    let total_var = sample_variance(&totals)?;
    if total_var == 0.0 {
        return None;
    }
    let k = k as f64;
    Some(k / (k - 1.0) * (1.0 - item_var_sum / total_var))
}

/// One-way ANOVA with the ANOVA estimator of the intraclass correlation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anova {
    /// Number of non-empty groups (J).
    pub groups: u32,
    /// Number of observations (N).
    pub n: u32,
    pub df1: u32,
    pub df2: u32,
    pub ss_between: f64,
    pub ss_within: f64,
    pub ms_between: f64,
    pub ms_within: f64,
    /// `MSB / MSW`; `None` when MSW = 0.
    pub f: Option<f64>,
    /// Upper tail of F(df1, df2) at `f`.
    pub p: Option<f64>,
    /// `(MSB − MSW) / (MSB + (m₀ − 1)·MSW)`, `m₀ = (N − Σ m_j²/N)/(J − 1)`.
    pub rho_int: Option<f64>,
    /// `1 + max(rho_int, 0)·(N/J − 1)`.
    pub deff: Option<f64>,
}

/// One-way ANOVA over `groups`; empty groups are ignored. `None` unless J ≥ 2 and N > J.
pub fn one_way_anova(groups: &[Vec<f64>]) -> Option<Anova> {
    let groups: Vec<&Vec<f64>> = groups.iter().filter(|g| !g.is_empty()).collect();
    let j = groups.len();
    let n: usize = groups.iter().map(|g| g.len()).sum();
    if j < 2 || n <= j {
        return None;
    }
    let all: Vec<f64> = groups.iter().flat_map(|g| g.iter().copied()).collect();
    let grand = mean(&all)?;
    let mut ssb = 0.0;
    let mut ssw = 0.0;
    for g in &groups {
        let m = mean(g)?;
        ssb += g.len() as f64 * (m - grand) * (m - grand);
        ssw += g.iter().map(|x| (x - m) * (x - m)).sum::<f64>();
    }
    let (df1, df2) = (j - 1, n - j);
    let msb = ssb / df1 as f64;
    let msw = ssw / df2 as f64;
    let f = (msw > 0.0).then(|| msb / msw);
    let p = f.and_then(|f| Some(FisherSnedecor::new(df1 as f64, df2 as f64).ok()?.sf(f)));
    let nf = n as f64;
    let sum_m2: f64 = groups.iter().map(|g| (g.len() * g.len()) as f64).sum();
    let m0 = (nf - sum_m2 / nf) / df1 as f64;
    let denom = msb + (m0 - 1.0) * msw;
    let rho_int = (denom != 0.0).then(|| (msb - msw) / denom);
    let deff = rho_int.map(|r| 1.0 + r.max(0.0) * (nf / j as f64 - 1.0));
    Some(Anova {
        groups: j as u32,
        n: n as u32,
        df1: df1 as u32,
        df2: df2 as u32,
        ss_between: ssb,
        ss_within: ssw,
        ms_between: msb,
        ms_within: msw,
        f,
        p,
        rho_int,
        deff,
    })
}

/// Pearson χ² test of independence (no continuity correction).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChiSquare {
    pub statistic: f64,
    pub df: u32,
    pub p: f64,
    /// Cells whose expected count is below 5 (the usual warning sign).
    pub low_expected: u32,
    /// Rows and columns kept (those with a non-zero total).
    pub rows: u32,
    pub cols: u32,
}

/// χ² test of independence on a contingency table; rows and columns with zero totals are
/// left out. `None` unless at least a 2 × 2 table remains.
pub fn chi2_independence(table: &[Vec<u64>]) -> Option<ChiSquare> {
    let ncols = table.iter().map(|r| r.len()).max()?;
    let cell = |r: &Vec<u64>, c: usize| r.get(c).copied().unwrap_or(0);
    let rows: Vec<&Vec<u64>> = table.iter().filter(|r| r.iter().any(|&x| x > 0)).collect();
    let cols: Vec<usize> = (0..ncols)
        .filter(|&c| rows.iter().any(|r| cell(r, c) > 0))
        .collect();
    if rows.len() < 2 || cols.len() < 2 {
        return None;
    }
    let row_tot: Vec<f64> = rows
        .iter()
        .map(|r| cols.iter().map(|&c| cell(r, c) as f64).sum())
        .collect();
    let col_tot: Vec<f64> = cols
        .iter()
        .map(|&c| rows.iter().map(|r| cell(r, c) as f64).sum())
        .collect();
    let n: f64 = row_tot.iter().sum();
    let mut stat = 0.0;
    let mut low = 0;
    for (r, rt) in rows.iter().zip(&row_tot) {
        for (&c, ct) in cols.iter().zip(&col_tot) {
            let e = rt * ct / n;
            let d = cell(r, c) as f64 - e;
            stat += d * d / e;
            if e < 5.0 {
                low += 1;
            }
        }
    }
    let df = (rows.len() - 1) * (cols.len() - 1);
    let p = ChiSquared::new(df as f64).ok()?.sf(stat);
    Some(ChiSquare {
        statistic: stat,
        df: df as u32,
        p,
        low_expected: low,
        rows: rows.len() as u32,
        cols: cols.len() as u32,
    })
}

/// Welch's two-sample t test (unequal variances), two-sided.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WelchT {
    pub t: f64,
    pub df: f64,
    pub p: f64,
}

/// `None` unless both samples have ≥ 2 values and the standard error is > 0.
pub fn welch_t_test(a: &[f64], b: &[f64]) -> Option<WelchT> {
    let (va, vb) = (sample_variance(a)?, sample_variance(b)?);
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (qa, qb) = (va / na, vb / nb);
    let se2 = qa + qb;
    if se2 <= 0.0 {
        return None;
    }
    let t = (mean(a)? - mean(b)?) / se2.sqrt();
    let df = se2 * se2 / (qa * qa / (na - 1.0) + qb * qb / (nb - 1.0));
    let p = 2.0 * StudentsT::new(0.0, 1.0, df).ok()?.sf(t.abs());
    Some(WelchT {
        t,
        df,
        p: p.min(1.0),
    })
}

/// Holm's step-down adjustment of p-values (same order as given).
pub fn holm(ps: &[f64]) -> Vec<f64> {
    let m = ps.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| ps[a].total_cmp(&ps[b]));
    let mut out = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * ps[i]).min(1.0));
        out[i] = running;
    }
    out
}

/// `P(X ≥ x)` for X ~ Binomial(n, p), via the regularised incomplete beta function.
pub fn binomial_upper_tail(x: u64, n: u64, p: f64) -> Option<f64> {
    if x > n || !(0.0..=1.0).contains(&p) {
        return None;
    }
    if x == 0 {
        return Some(1.0);
    }
    if p == 0.0 {
        return Some(0.0);
    }
    if p == 1.0 {
        return Some(1.0);
    }
    // P(X ≥ x) = I_p(x, n − x + 1).
    Some(statrs::function::beta::beta_reg(
        x as f64,
        (n - x + 1) as f64,
        p,
    ))
}

/// Rounds to two decimals as `round(x·100)/100`, halves away from zero (the ranking rule).
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Competition ranking ("1224"), highest value first: rank = 1 + number of values strictly
/// greater. `None` values get no rank and do not count.
pub fn competition_rank(values: &[Option<f64>]) -> Vec<Option<u32>> {
    let mut present: Vec<f64> = values.iter().flatten().copied().collect();
    present.sort_by(|a, b| b.total_cmp(a));
    values
        .iter()
        .map(|v| {
            let v = (*v)?;
            // Values strictly greater come first in descending order.
            Some(present.partition_point(|&x| x > v) as u32 + 1)
        })
        .collect()
}

/// Type-1 (inverse empirical CDF) quantile of sorted data for `p = num/den`:
/// the `⌈p·B⌉`-th smallest value (at least the first). Integer arithmetic, so the chosen
/// order statistic never depends on floating-point rounding.
pub fn quantile_type1<T: Copy>(sorted: &[T], num: u64, den: u64) -> Option<T> {
    let b = sorted.len() as u64;
    if b == 0 || den == 0 || num > den {
        return None;
    }
    let j = (b * num).div_ceil(den).max(1);
    Some(sorted[(j - 1) as usize])
}

/// SplitMix64 step (Steele, Lea & Flood 2014); used only to expand a u64 seed into a key.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The 32-byte ChaCha key for a u64 seed: four SplitMix64 outputs starting from state
/// `seed`, each written little-endian. Spelled out here (not `seed_from_u64`) so the
/// stream can never change with a dependency upgrade.
pub fn derive_key(seed: u64) -> [u8; 32] {
    let mut state = seed;
    let mut key = [0u8; 32];
    for chunk in key.chunks_exact_mut(8) {
        chunk.copy_from_slice(&splitmix64(&mut state).to_le_bytes());
    }
    key
}

/// A reproducible random stream: ChaCha8 keyed by [`derive_key`]`(seed)`, 64-bit nonce
/// `stream`, block counter from 0; `next_u64` takes two consecutive keystream words, the
/// first as the low half.
#[derive(Debug, Clone)]
pub struct SeededRng(ChaCha8Rng);

impl SeededRng {
    pub fn new(seed: u64, stream: u64) -> SeededRng {
        let mut rng = ChaCha8Rng::from_seed(derive_key(seed));
        rng.set_stream(stream);
        SeededRng(rng)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform integer in `0..n` without bias (Lemire's multiply-and-reject):
    /// `m = x·n` as 128 bits; reject while the low half is below `2⁶⁴ mod n`; return the
    /// high half. Our own code so the mapping never changes with `rand`.
    ///
    /// # Panics
    /// If `n == 0`.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
            }
        }
        (m >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    #[test]
    fn mean_and_sd() {
        assert_eq!(mean(&[]), None);
        assert_eq!(mean(&[3.0]), Some(3.0));
        assert!(close(mean(&[1.0, 2.0, 4.0]).unwrap(), 7.0 / 3.0));
        assert_eq!(sample_sd(&[5.0]), None);
        // Textbook value: sd of 2,4,4,4,5,5,7,9 with n−1 is √(32/7).
        let xs = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert!(close(sample_sd(&xs).unwrap(), (32.0f64 / 7.0).sqrt()));
        // Identical values: exactly 0, not rounding noise.
        assert_eq!(sample_sd(&[0.1; 7]), Some(0.0));
        assert_eq!(mean(&[0.1; 3]), Some(0.1));
    }

    #[test]
    fn median_even_and_odd() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn t_quantiles_match_tables() {
        // Printed tables: t(0.975, 1) = 12.706, t(0.975, 10) = 2.228, t(0.975, 29) = 2.045.
        assert!((t_quantile(0.975, 1.0).unwrap() - 12.7062047361747).abs() < 1e-9);
        assert!((t_quantile(0.975, 10.0).unwrap() - 2.22813885198627).abs() < 1e-9);
        assert!((t_quantile(0.975, 29.0).unwrap() - 2.04522964213270).abs() < 1e-9);
        assert_eq!(t_quantile(0.975, 0.0), None);
    }

    #[test]
    fn t_interval_needs_two_values() {
        assert_eq!(t_interval(&[1.0], 0.95), None);
        let ci = t_interval(&[1.0, 3.0], 0.95).unwrap();
        // mean 2, sd √2, se 1 → 2 ± 12.706…
        assert!(close(ci[0], 2.0 - 12.706204736174694));
        assert!(close(ci[1], 2.0 + 12.706204736174694));
        assert_eq!(t_interval(&[4.0; 3], 0.95), Some([4.0, 4.0]));
    }

    /// Reference values from scipy 1.17 (`stats.t.ppf(0.975, n-1)` and the Wilson formula on
    /// `n* = q̄(1−q̄)/(var(q, ddof=1)/n)`, capped at n·k), as in tests/reference.
    #[test]
    fn clustered_proportion_interval_stays_in_bounds() {
        let close =
            |a: [f64; 2], b: [f64; 2]| (a[0] - b[0]).abs() < 1e-9 && (a[1] - b[1]).abs() < 1e-9;
        // Shares 1, 1, 0.8 (k = 5): q̄ = 14/15, var(q)/n = 0.04/9, n* = 14, t(0.975, 2) = 4.3027.
        let ci = clustered_proportion_interval(&[1.0, 1.0, 0.8], 5, 0.95).unwrap();
        assert!(
            close(ci, [0.3762543174215757, 0.9969318024522418]),
            "{ci:?}"
        );
        // The old q̄ ± t·s/√n gave [0.647, 1.220] here: above 100%.
        // Everyone fully satisfied: s = 0, n* = n·k = 20, lower bound 1/(1 + t²/20), t(0.975, 3).
        let ci = clustered_proportion_interval(&[1.0; 4], 5, 0.95).unwrap();
        let t = 3.1824463052837078_f64;
        assert!(close(ci, [1.0 / (1.0 + t * t / 20.0), 1.0]), "{ci:?}");
        // 98% on 10 interviews (one respondent 4 of 5).
        let mut shares = vec![1.0; 8];
        shares.extend([0.8, 1.0]);
        let ci = clustered_proportion_interval(&shares, 5, 0.95).unwrap();
        assert!(close(ci, [0.872052747247266, 0.9971693345529141]), "{ci:?}");
        // Mid-range shares: n* = 10.714, t(0.975, 5).
        let ci = clustered_proportion_interval(&[0.2, 0.4, 0.6, 0.8, 1.0, 0.0], 5, 0.95).unwrap();
        assert!(
            close(ci, [0.19118370613575586, 0.8088162938642441]),
            "{ci:?}"
        );
        assert_eq!(clustered_proportion_interval(&[1.0], 5, 0.95), None);
        assert_eq!(clustered_proportion_interval(&[1.0, 1.5], 5, 0.95), None);
    }

    #[test]
    fn wilson_interval() {
        assert_eq!(wilson(0, 0, Z95), None);
        assert_eq!(wilson(3, 2, Z95), None);
        // Newcombe (1998) example: 81/263 → 0.2553, 0.3662.
        let [lo, hi] = wilson(81, 263, Z95).unwrap();
        assert!((lo - 0.2553).abs() < 5e-5 && (hi - 0.3662).abs() < 5e-5);
        let [lo, hi] = wilson(0, 10, Z95).unwrap();
        assert_eq!(lo, 0.0);
        assert!(hi > 0.0 && hi < 1.0);
        assert_eq!(wilson(10, 10, Z95).unwrap()[1], 1.0);
    }

    #[test]
    fn alpha_cases() {
        assert_eq!(cronbach_alpha(&[]), None);
        assert_eq!(cronbach_alpha(&[vec![1.0, 2.0]]), None);
        assert_eq!(cronbach_alpha(&[vec![1.0], vec![2.0]]), None);
        assert_eq!(cronbach_alpha(&[vec![1.0, 1.0], vec![1.0, 1.0]]), None);
        // Two perfectly parallel items: alpha = 1.
        let a = cronbach_alpha(&[vec![1.0, 1.0], vec![2.0, 2.0], vec![3.0, 3.0]]).unwrap();
        assert!(close(a, 1.0));
        // Hand computation: items (1,2),(2,1),(3,3): s1²=1, s2²=1, totals 3,3,6 → s²=3;
        // alpha = 2·(1 − 2/3) = 2/3.
        let a = cronbach_alpha(&[vec![1.0, 2.0], vec![2.0, 1.0], vec![3.0, 3.0]]).unwrap();
        assert!(close(a, 2.0 / 3.0));
    }

    #[test]
    fn anova_by_hand() {
        assert!(one_way_anova(&[vec![1.0, 2.0]]).is_none());
        assert!(one_way_anova(&[vec![1.0], vec![2.0]]).is_none());
        // Groups (1,2,3) and (4,5,6): grand 3.5, SSB = 3·2.25·2 = 13.5, SSW = 2 + 2 = 4.
        let a = one_way_anova(&[vec![1.0, 2.0, 3.0], vec![], vec![4.0, 5.0, 6.0]]).unwrap();
        assert_eq!((a.groups, a.n, a.df1, a.df2), (2, 6, 1, 4));
        assert!(close(a.ss_between, 13.5) && close(a.ss_within, 4.0));
        assert!(close(a.f.unwrap(), 13.5));
        // F(1,4) = 13.5 ⇔ t(4) = √13.5; p from the t distribution.
        let p_t = 2.0 * StudentsT::new(0.0, 1.0, 4.0).unwrap().sf(13.5f64.sqrt());
        assert!(close(a.p.unwrap(), p_t));
        // Balanced: m0 = 3, rho = (13.5 − 1)/(13.5 + 2) ; deff = 1 + rho·2.
        let rho = 12.5 / 15.5;
        assert!(close(a.rho_int.unwrap(), rho));
        assert!(close(a.deff.unwrap(), 1.0 + 2.0 * rho));
        // No within-group variation: no F, no p.
        let a = one_way_anova(&[vec![1.0, 1.0], vec![2.0, 2.0]]).unwrap();
        assert_eq!((a.f, a.p), (None, None));
        assert_eq!(a.rho_int, Some(1.0));
    }

    #[test]
    fn chi2_by_hand_and_dropping_empty_margins() {
        // [[10, 20], [20, 10]]: E = 15 everywhere, χ² = 4·25/15.
        let c = chi2_independence(&[vec![10, 20, 0], vec![0, 0, 0], vec![20, 10, 0]]).unwrap();
        assert_eq!((c.df, c.rows, c.cols, c.low_expected), (1, 2, 2, 0));
        assert!(close(c.statistic, 100.0 / 15.0));
        let p = ChiSquared::new(1.0).unwrap().sf(100.0 / 15.0);
        assert!(close(c.p, p));
        assert!(chi2_independence(&[vec![1, 2]]).is_none());
        assert!(chi2_independence(&[vec![1, 0], vec![3, 0]]).is_none());
        assert!(chi2_independence(&[]).is_none());
        let c = chi2_independence(&[vec![1, 2], vec![3, 1]]).unwrap();
        assert_eq!(c.low_expected, 4);
    }

    #[test]
    fn welch_and_holm() {
        assert!(welch_t_test(&[1.0], &[1.0, 2.0]).is_none());
        assert!(welch_t_test(&[1.0, 1.0], &[2.0, 2.0]).is_none());
        // Equal sizes and variances: Welch t equals Student's t, df = 2n − 2.
        let w = welch_t_test(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]).unwrap();
        assert!(close(w.t, -3.0f64 / (2.0f64 / 3.0).sqrt()));
        assert!(close(w.df, 4.0));
        let h = holm(&[0.01, 0.04, 0.03, 0.5]);
        // Sorted 0.01,0.03,0.04,0.5 → 0.04, 0.09, max(0.09,0.08)=0.09, 0.5.
        assert!(close(h[0], 0.04) && close(h[2], 0.09) && close(h[1], 0.09) && close(h[3], 0.5));
        assert!(holm(&[]).is_empty());
        assert_eq!(holm(&[0.9, 0.8]), vec![1.0, 1.0]);
    }

    #[test]
    fn binomial_tail() {
        assert_eq!(binomial_upper_tail(0, 5, 0.3), Some(1.0));
        assert_eq!(binomial_upper_tail(6, 5, 0.3), None);
        // P(X ≥ 5 | 5, 0.5) = 1/32; P(X ≥ 1 | 3, 0.5) = 7/8.
        assert!(close(binomial_upper_tail(5, 5, 0.5).unwrap(), 1.0 / 32.0));
        assert!(close(binomial_upper_tail(1, 3, 0.5).unwrap(), 7.0 / 8.0));
        assert_eq!(binomial_upper_tail(2, 4, 0.0), Some(0.0));
    }

    #[test]
    fn ranking_1224() {
        let r = competition_rank(&[Some(3.0), None, Some(5.0), Some(3.0), Some(1.0)]);
        assert_eq!(r, vec![Some(2), None, Some(1), Some(2), Some(4)]);
        assert!(competition_rank(&[]).is_empty());
        assert_eq!(round2(16.824999), 16.82);
        assert_eq!(round2(16.8251), 16.83);
    }

    #[test]
    fn type1_quantiles() {
        let v: Vec<u32> = (1..=2000).collect();
        assert_eq!(quantile_type1(&v, 25, 1000), Some(50));
        assert_eq!(quantile_type1(&v, 975, 1000), Some(1950));
        assert_eq!(quantile_type1(&[7u32], 25, 1000), Some(7));
        let v: Vec<u32> = (1..=10).collect();
        assert_eq!(quantile_type1(&v, 25, 1000), Some(1));
        assert_eq!(quantile_type1(&v, 975, 1000), Some(10));
        assert_eq!(quantile_type1::<u32>(&[], 1, 2), None);
    }

    #[test]
    fn rng_is_reproducible_and_bounded() {
        let mut a = SeededRng::new(42, 0);
        let mut b = SeededRng::new(42, 0);
        let xs: Vec<u64> = (0..100).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..100).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        let mut c = SeededRng::new(42, 1);
        assert_ne!(c.next_u64(), xs[0]);
        let mut counts = [0u32; 3];
        for _ in 0..30_000 {
            counts[a.below(3) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_400..10_600).contains(&c)),
            "{counts:?}"
        );
        assert_eq!(a.below(1), 0);
        // SplitMix64 reference output for state 0 (Vigna's splitmix64.c).
        assert_eq!(&derive_key(0)[..8], &0xE220_A839_7B1D_CDAFu64.to_le_bytes());
    }
}
