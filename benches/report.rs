//! Benchmark of the full report for 1,000 units (run: `cargo bench --bench report`).
//!
//! 1,000 units × 45 respondents with on-site ballots, scored with 2,000 bootstrap replicates;
//! the report is `index.html`, 1,000 feedback pages, 3,005 charts as SVG and PNG (192 dpi).
//! Baselines measured in the same run: computing the results alone (`score_round`), and
//! writing the same number of files, empty, into a fresh directory.

// Shared with the tests, which use the rest of it.
#[allow(dead_code)]
#[path = "../tests/common/charts_support.rs"]
mod charts_support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use charts_support::{Spec, document, inputs};
use sheping::domain::scoring::score_round;
use sheping::report::{self, PlanSeed, ReportData, ReportOptions};

const UNITS: usize = 1_000;

fn count_files(dir: &std::path::Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        n += if p.is_dir() { count_files(&p) } else { 1 };
    }
    n
}

fn main() {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let spec = Spec {
        units: UNITS,
        respondents: 45,
        replicates: 2_000,
        ..Spec::default()
    };
    let t = Instant::now();
    let i = inputs(&spec);
    println!(
        "generated {UNITS} units × {} respondents in {:.2?}",
        spec.respondents,
        t.elapsed()
    );

    // Baseline 1: the results alone.
    let t = Instant::now();
    let scored = score_round(&i.survey, &i.units, &i.interviews, &i.options).unwrap();
    let t_results = t.elapsed();
    let round = document(&spec, i, black_box(scored));

    let data = ReportData {
        doc: round.doc,
        interviews: round.interviews,
        days: round.days,
        field_period: None,
        plans: vec![PlanSeed {
            kind: "generate".into(),
            seed: 2022,
            algorithm: "bench".into(),
            created: "2022-10-31 09:00:00".into(),
        }],
        comments: vec![Vec::new(); UNITS],
        with_comments: false,
        panel_size: 45,
        generated_at: "2022-12-01 09:00".into(),
        previous: None,
    };
    let tmp = tempfile::tempdir().unwrap();

    // The report, with PNG and without.
    let out = tmp.path().join("report");
    let t = Instant::now();
    let summary = report::write(&data, &ReportOptions::default(), None, false, &out).unwrap();
    let t_report = t.elapsed();
    let files = count_files(&out);
    assert_eq!(files, summary.files);
    let bytes: u64 = walk_bytes(&out);

    let out_svg = tmp.path().join("report-svg");
    let svg_only = ReportOptions {
        skip_png: true,
        ..ReportOptions::default()
    };
    let t = Instant::now();
    report::write(&data, &svg_only, None, false, &out_svg).unwrap();
    let t_svg = t.elapsed();

    // Baseline 2: the same number of files, empty, in the same layout of directories.
    let empty = tmp.path().join("empty");
    let t = Instant::now();
    for d in ["charts/units", "feedback"] {
        std::fs::create_dir_all(empty.join(d)).unwrap();
    }
    for k in 0..files {
        let dir = if k < 10 { "charts" } else { "charts/units" };
        std::fs::write(empty.join(dir).join(format!("{k}.txt")), b"").unwrap();
    }
    let t_empty = t.elapsed();

    // The single largest pieces: the round charts of 1,000 units (SVG and PNG each).
    let mut round_times = Vec::new();
    for &which in report::RoundChart::all() {
        let t = Instant::now();
        let drawn = report::round_chart(&data, which, true).unwrap();
        round_times.push((which.key(), t.elapsed(), drawn.png.map_or(0, |p| p.len())));
    }

    // The zip of the report.
    let t = Instant::now();
    let zip = report::zip_dir(&out, "report").unwrap();
    let t_zip = t.elapsed();

    let per = |d: Duration| d.as_secs_f64() * 1000.0 / UNITS as f64;
    println!("threads: {threads}");
    println!("baseline, results alone (score_round, 2,000 replicates): {t_results:>10.2?}");
    println!("baseline, {files} empty files:                          {t_empty:>10.2?}");
    println!(
        "full report ({files} files, {:.1} MB):                   {t_report:>10.2?}  ({:.1} ms per unit)",
        bytes as f64 / 1e6,
        per(t_report)
    );
    println!(
        "report without PNG:                                  {t_svg:>10.2?}  ({:.1} ms per unit)",
        per(t_svg)
    );
    println!(
        "zip of the report ({:.1} MB):                          {t_zip:>10.2?}",
        zip.len() as f64 / 1e6
    );
    for (key, t, png) in round_times {
        println!(
            "  round chart {key:<18} SVG + PNG ({:.1} MB):        {t:>10.2?}",
            png as f64 / 1e6
        );
    }
    println!(
        "report / results: {:.1}×; report / empty files: {:.0}×",
        t_report.as_secs_f64() / t_results.as_secs_f64(),
        t_report.as_secs_f64() / t_empty.as_secs_f64()
    );
}

fn walk_bytes(dir: &std::path::Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        n += if p.is_dir() {
            walk_bytes(&p)
        } else {
            std::fs::metadata(&p).unwrap().len()
        };
    }
    n
}
