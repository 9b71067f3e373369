//! Benchmark of call-plan generation (`sheping::domain::plan`) at a size far beyond a real
//! round (30 units): 1,000,000 members in 22,223 units of 45, and 500 operators.
//!
//! Needs `[[bench]] name = "plan"`, `harness = false` in Cargo.toml; run with
//! `cargo bench --bench plan`. The baseline, measured in the same run on the same data, is what
//! any plan must pay anyway: sorting the members into canonical order and one Fisher–Yates
//! shuffle over all of them. The ratio is the plan's cost above that.

// Under the default libtest harness `main` would be unused; keep `--all-targets` lints quiet.
#![cfg_attr(test, allow(dead_code))]

use std::collections::BTreeSet;
use std::hint::black_box;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use sheping::domain::plan::{
    Loads, PLAN_ALGORITHM, PlanInput, PlanMember, generate_plan, plan_digest, reassign,
};

const MEMBERS: i64 = 1_000_000;
const PANEL: i64 = 45;
const OPERATORS: usize = 500;
const RUNS: usize = 3;

/// Uniform on `0..n`, multiply-and-reject, as the plan module does it.
fn below(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    let threshold = n.wrapping_neg() % n;
    loop {
        let m = u128::from(rng.next_u64()) * u128::from(n);
        if (m as u64) >= threshold {
            return (m >> 64) as u64;
        }
    }
}

fn fisher_yates<T>(rng: &mut ChaCha8Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = below(rng, i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// Fastest of `RUNS` timings (the machine is shared, so the minimum is the least noisy).
fn best<T>(mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut fastest = Duration::MAX;
    let mut out = None;
    for _ in 0..RUNS {
        let start = Instant::now();
        let value = black_box(f());
        fastest = fastest.min(start.elapsed());
        out = Some(value);
    }
    (fastest, out.expect("at least one run"))
}

fn per_second(n: usize, d: Duration) -> String {
    format!("{:>6.2} M members/s", n as f64 / d.as_secs_f64() / 1e6)
}

fn main() {
    let mut rng = ChaCha8Rng::from_seed([7; 32]);
    let mut members: Vec<PlanMember> = (0..MEMBERS)
        .map(|i| PlanMember {
            member_id: i + 1,
            unit_id: i / PANEL + 1,
        })
        .collect();
    // As read from a database: no useful order.
    fisher_yates(&mut rng, &mut members);
    let units = members.iter().map(|m| m.unit_id).max().unwrap_or(0);
    let operators: Vec<String> = (0..OPERATORS).map(|i| format!("op{i:03}")).collect();
    let n = members.len();
    println!(
        "{PLAN_ALGORITHM}: {n} members in {units} units, {OPERATORS} operators, best of {RUNS}"
    );

    // Baseline: canonical sort plus one plain Fisher–Yates over all members.
    let (sort_time, _) = best(|| {
        let mut v = members.clone();
        v.sort_unstable_by_key(|m| (m.unit_id, m.member_id));
        v
    });
    let (shuffle_time, _) = best(|| {
        let mut v = members.clone();
        fisher_yates(&mut rng, &mut v);
        v
    });
    let baseline = sort_time + shuffle_time;
    println!(
        "sort                {:>9.1?}  {}",
        sort_time,
        per_second(n, sort_time)
    );
    println!(
        "fisher-yates        {:>9.1?}  {}",
        shuffle_time,
        per_second(n, shuffle_time)
    );
    println!(
        "baseline (sum)      {:>9.1?}  {}",
        baseline,
        per_second(n, baseline)
    );

    let input = PlanInput {
        members: members.clone(),
        operators: operators.clone(),
        exclusions: BTreeSet::new(),
        seed: 20221,
        existing: Loads::default(),
    };
    let (plan_time, plan) = best(|| generate_plan(&input).expect("plan"));
    println!(
        "generate_plan       {:>9.1?}  {}  {:.2}x baseline",
        plan_time,
        per_second(n, plan_time),
        plan_time.as_secs_f64() / baseline.as_secs_f64()
    );
    let loads = Loads::from_assignments(&plan);
    println!(
        "  digest {}  calls per operator {:?}",
        plan_digest(&plan),
        spread(loads.total.values())
    );

    // Conflicts of interest: every operator barred from two random units.
    let mut excluded = input.clone();
    for op in &operators {
        for _ in 0..2 {
            let unit = below(&mut rng, units as u64) as i64 + 1;
            excluded.exclusions.insert((op.clone(), unit));
        }
    }
    let (excl_time, excl_plan) = best(|| generate_plan(&excluded).expect("plan"));
    println!(
        "  with {} exclusions {:>9.1?}  {}  {:.2}x baseline  calls per operator {:?}",
        excluded.exclusions.len(),
        excl_time,
        per_second(n, excl_time),
        excl_time.as_secs_f64() / baseline.as_secs_f64(),
        spread(Loads::from_assignments(&excl_plan).total.values())
    );

    // One operator absent: hand their calls to the other 499.
    let absent = &operators[0];
    let pending: Vec<PlanMember> = plan
        .iter()
        .filter(|a| &a.operator == absent)
        .map(|a| PlanMember {
            member_id: a.member_id,
            unit_id: a.unit_id,
        })
        .collect();
    let kept: Vec<_> = plan
        .iter()
        .filter(|a| &a.operator != absent)
        .cloned()
        .collect();
    let existing = Loads::from_assignments(&kept);
    let targets: Vec<String> = operators[1..].to_vec();
    let (re_time, moved) = best(|| {
        reassign(&pending, &targets, &BTreeSet::new(), &existing, 20221).expect("reassign")
    });
    let mut after = existing.total.clone();
    for a in &moved {
        *after.entry(a.operator.clone()).or_default() += 1;
    }
    println!(
        "reassign {} calls to {} operators {:>9.1?}  calls per operator {:?}",
        pending.len(),
        targets.len(),
        re_time,
        spread(after.values())
    );
}

/// (fewest, most) calls per operator.
fn spread<'a>(values: impl Iterator<Item = &'a u32>) -> (u32, u32) {
    let v: Vec<u32> = values.copied().collect();
    let (min, max) = (v.iter().min(), v.iter().max());
    (min.copied().unwrap_or(0), max.copied().unwrap_or(0))
}
