//! Benchmark of `score_round` at district-wide scale (run: `cargo bench --bench results`).
//!
//! 10,000 units × 45 respondents, 20 on-site ballots each, 2,000 bootstrap replicates.
//! Beside it, in the same run, the unavoidable part: drawing the 2,000 × 650,000 bootstrap
//! indices alone on the same threads, so the ratio shows what the scoring adds on top.

use std::hint::black_box;
use std::time::Instant;

use sheping::domain::scoring::*;
use sheping::domain::stats::SeededRng;
use sheping::domain::survey::Survey;

const UNITS: usize = 10_000;
const RESPONDENTS: usize = 45;
const BALLOTS: usize = 20;
const REPLICATES: u32 = 2_000;

fn generate(survey: &Survey) -> (Vec<UnitInput>, Vec<Interview>) {
    let mut rng = SeededRng::new(1, 0);
    let k = survey.dimensions.len();
    let operators: Vec<String> = (1..=30).map(|i| format!("A{i:02}")).collect();
    let mut units = Vec::with_capacity(UNITS);
    let mut interviews = Vec::with_capacity(UNITS * RESPONDENTS);
    for u in 0..UNITS {
        // Each unit leans towards better or worse answers.
        let lean = rng.below(3) as usize;
        let answer = |rng: &mut SeededRng| (rng.below(3) as usize + lean).saturating_sub(1).min(3);
        let ballots = (0..BALLOTS)
            .map(|b| {
                if b % 4 == 0 {
                    Ballot::Overall(answer(&mut rng))
                } else {
                    Ballot::Dimensions((0..k).map(|_| answer(&mut rng)).collect())
                }
            })
            .collect();
        units.push(UnitInput {
            name: format!("unit {u}"),
            onsite: OnsiteData::Ballots(ballots),
            rr1: Some(0.7),
        });
        for i in 0..RESPONDENTS {
            let start = 10.0 + rng.below(20) as f64;
            interviews.push(Interview {
                unit: u,
                operator: operators[rng.below(operators.len() as u64) as usize].clone(),
                answers: (0..k).map(|_| answer(&mut rng)).collect(),
                duration_secs: Some(40.0 + rng.below(300) as f64),
                answer_offsets_secs: Some((0..k).map(|d| start + 8.0 * d as f64).collect()),
                id: format!("{u}-{i}"),
                at: "2022-11-01T10:00:00+08:00".into(),
            });
        }
    }
    (units, interviews)
}

/// The random indices alone, split over threads the same way as the scoring's bootstrap.
fn draws_only(threads: usize) -> u64 {
    let b = REPLICATES as usize;
    let chunk = b.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut acc = 0u64;
                    for rep in (t * chunk)..((t + 1) * chunk).min(b) {
                        let mut rng = SeededRng::new(42, rep as u64);
                        for _ in 0..UNITS {
                            for _ in 0..RESPONDENTS {
                                acc = acc.wrapping_add(rng.below(RESPONDENTS as u64));
                            }
                            for _ in 0..BALLOTS {
                                acc = acc.wrapping_add(rng.below(BALLOTS as u64));
                            }
                        }
                    }
                    acc
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

fn main() {
    let survey = Survey::from_toml_str(include_str!("../surveys/default.toml")).unwrap();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let t = Instant::now();
    let (units, interviews) = generate(&survey);
    println!(
        "generated {UNITS} units × {RESPONDENTS} respondents + {BALLOTS} ballots in {:.2?}",
        t.elapsed()
    );

    // Baseline 1: the 10,000 phone means, nothing else.
    let scale: Vec<f64> = (0..survey.levels.len())
        .map(|i| survey.level_score(i).unwrap())
        .collect();
    let t = Instant::now();
    let mut sums = vec![0.0f64; UNITS];
    for iv in black_box(&interviews) {
        sums[iv.unit] += iv
            .answers
            .iter()
            .enumerate()
            .map(|(d, &a)| survey.weight(d) * scale[a])
            .sum::<f64>();
    }
    let means: Vec<f64> = sums.iter().map(|s| s / RESPONDENTS as f64).collect();
    black_box(&means);
    let t_means = t.elapsed();

    // Baseline 2: the bootstrap's random indices alone.
    let t = Instant::now();
    black_box(draws_only(threads));
    let t_draws = t.elapsed();

    // Scoring without the bootstrap, then the full scoring.
    let no_boot = ScoringOptions {
        bootstrap_replicates: 0,
        ..ScoringOptions::with_seed(2022)
    };
    let t = Instant::now();
    let r0 = score_round(&survey, &units, &interviews, &no_boot).unwrap();
    let t_no_boot = t.elapsed();
    black_box(&r0);

    let opts = ScoringOptions {
        bootstrap_replicates: REPLICATES,
        ..ScoringOptions::with_seed(2022)
    };
    let t = Instant::now();
    let r = score_round(&survey, &units, &interviews, &opts).unwrap();
    let t_full = t.elapsed();

    let ranked = r.units.iter().filter(|u| u.social.rank.is_some()).count();
    let sure_bottom = r
        .units
        .iter()
        .filter(|u| u.social.p_bottom.is_some_and(|p| p > 0.5))
        .count();
    println!(
        "threads: {threads}; ranked units: {ranked}; units with p_bottom > 0.5: {sure_bottom}"
    );
    println!("baseline, 10,000 phone means:                 {t_means:>10.2?}");
    println!(
        "baseline, {REPLICATES} × {} bootstrap draws: {t_draws:>10.2?}",
        UNITS * (RESPONDENTS + BALLOTS)
    );
    println!("score_round, no bootstrap:                    {t_no_boot:>10.2?}");
    println!("score_round, {REPLICATES} replicates:                {t_full:>10.2?}");
    println!(
        "ratio full / draws alone: {:.2}; bootstrap beyond draws: {:.2?}",
        t_full.as_secs_f64() / t_draws.as_secs_f64(),
        t_full.saturating_sub(t_no_boot).saturating_sub(t_draws)
    );
}
