//! Storage → scoring wiring: a small round recorded through the real engine (claims and
//! recording on a SQLite file, on-site data in the store), its results checked against
//! figures worked out by hand below. The statistics themselves are checked against scipy in
//! `src/domain/scoring.rs`; these tests check that the right numbers reach them.

use crate::common::results_fixture;

use chrono::TimeZone;
use serde_json::Value;
use sheping::domain::disposition::Outcome;
use sheping::domain::scoring::{Flag, OnsiteKind, RankBasis, SuspicionReason};
use sheping::results::{self, ResultsOptions};
use sheping::storage::ImportedAttempt;

use results_fixture::*;

const Z: f64 = 1.959963984540054;

/// Student's t quantile t(0.975, 2), in closed form for 2 degrees of freedom:
/// t_p = (2p − 1) / √(2p(1 − p)).
fn t975_df2() -> f64 {
    0.95 / (2.0 * 0.975 * 0.025f64).sqrt()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[track_caller]
fn assert_close(got: Option<f64>, want: f64) {
    let g = got.expect("a value");
    assert!(close(g, want), "got {g}, want {want}");
}

/// Sample variance (n − 1), written out for the hand calculations.
fn var(xs: &[f64]) -> f64 {
    let m = xs.iter().sum::<f64>() / xs.len() as f64;
    xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64
}

/// The fixture on the run's backend (see `common::on_postgres`).
fn setup() -> (crate::common::Sheping, Fixture) {
    let sp = crate::common::Sheping::new();
    let f = build_for(&sp);
    (sp, f)
}

fn compute(f: &Fixture, opts: &ResultsOptions) -> results::ResultsDocument {
    results::compute(f.store.as_ref(), &f.round, opts, now(), "test").unwrap()
}

#[test]
fn unit_with_three_completes_matches_the_hand_calculation() {
    let (_d, f) = setup();
    let doc = compute(&f, &ResultsOptions::default());
    let a = &doc.units[0];
    assert_eq!(a.unit, UNITS[0]);
    // Respondent scores Σ 0.2·score: (100·5)/5 = 100; 80; (100+80+60+0+100)/5 = 68.
    let r = [100.0, 80.0, 68.0];
    let mean = (100.0 + 80.0 + 68.0) / 3.0;
    let sd = (((100.0 - mean) * (100.0 - mean)
        + (80.0 - mean) * (80.0 - mean)
        + (68.0 - mean) * (68.0 - mean))
        / 2.0f64)
        .sqrt();
    let half = t975_df2() * sd / 3f64.sqrt();
    let p = &a.phone;
    assert_eq!(p.completes, 3);
    assert_close(p.mean, mean);
    assert_close(p.sd, sd);
    let ci = p.ci95.unwrap();
    assert!(
        close(ci[0], mean - half) && close(ci[1], mean + half),
        "{ci:?}"
    );
    assert_close(p.points, mean / 100.0 * 10.0);
    // Satisfied levels are the first three: shares 5/5, 5/5, 4/5.
    assert_close(p.satisfaction_rate, (1.0 + 1.0 + 0.8) / 3.0);
    // Dimension "duties": levels 0, 1, 0 → 100, 80, 100; all satisfied: Wilson [1/(1+z²/3), 1].
    let duties = &p.dimensions[0];
    assert_eq!(duties.key, "duties");
    assert_close(duties.mean, (100.0 + 80.0 + 100.0) / 3.0);
    assert_close(duties.satisfaction_rate, 1.0);
    let w = duties.satisfaction_rate_ci95.unwrap();
    assert!(close(w[0], 1.0 / (1.0 + Z * Z / 3.0)) && w[1] == 1.0);
    assert_eq!(
        duties
            .counts
            .values()
            .copied()
            .collect::<Vec<_>>()
            .iter()
            .sum::<u32>(),
        3
    );
    assert_eq!(duties.counts["satisfied"], 2);
    assert_eq!(duties.counts["fairly_satisfied"], 1);
    // "conduct": 0, 1, 3 → 100, 80, 0; two of three satisfied.
    assert_close(p.dimensions[3].mean, 60.0);
    assert_close(p.dimensions[3].satisfaction_rate, 2.0 / 3.0);
    // Cronbach's alpha over the unweighted dimension scores.
    let items = [
        [100.0, 100.0, 100.0, 100.0, 100.0],
        [80.0, 80.0, 80.0, 80.0, 80.0],
        [100.0, 80.0, 60.0, 0.0, 100.0],
    ];
    let item_vars: f64 = (0..5)
        .map(|d| var(&items.iter().map(|row| row[d]).collect::<Vec<_>>()))
        .sum();
    let totals: Vec<f64> = items.iter().map(|row| row.iter().sum()).collect();
    assert_close(
        p.cronbach_alpha,
        5.0 / 4.0 * (1.0 - item_vars / var(&totals)),
    );
    let _ = r;

    // On-site: three overall ballots at levels 1, 2, 2 → 100, 80, 80.
    let on = a.onsite.as_ref().unwrap();
    let om = (100.0 + 80.0 + 80.0) / 3.0;
    let osd = var(&[100.0, 80.0, 80.0]).sqrt();
    assert_eq!((on.kind, on.ballots), (OnsiteKind::Ballots, 3));
    assert!(close(on.mean, om) && close(on.points, om / 100.0 * 10.0));
    assert_close(on.sd, osd);
    let oci = on.ci95.unwrap();
    assert!(close(oci[0], om - t975_df2() * osd / 3f64.sqrt()));
    // Social: the sum, and z·√(a²·se_p² + b²·se_o²) with a = b = 10/100.
    let social = mean / 10.0 + om / 10.0;
    assert_close(a.social.points, social);
    assert_eq!(a.social.max_points, 20.0);
    let se = (0.01 * sd * sd / 3.0 + 0.01 * osd * osd / 3.0).sqrt();
    let sci = a.social.ci95.unwrap();
    assert!(close(sci[0], social - Z * se) && close(sci[1], social + Z * se));
    assert!(a.flags.is_empty(), "{:?}", a.flags);
}

#[test]
fn dispositions_and_rates_come_from_the_attempts() {
    let (_d, f) = setup();
    let doc = compute(&f, &ResultsOptions::default());
    // A: 3 complete, 1 refused, 1 no answer.
    let a = &doc.units[0];
    assert_eq!(a.panel, 5);
    let d = &a.dispositions;
    assert_eq!(
        (d.i, d.p, d.r, d.nc, d.o, d.uh, d.uo, d.ne),
        (3, 0, 1, 0, 0, 1, 0, 0)
    );
    assert_eq!(a.rates.rr1, Some(3.0 / 5.0));
    assert_eq!(a.rates.coop1, Some(3.0 / 4.0));
    assert_eq!(a.rates.ref1, Some(1.0 / 5.0));
    assert_eq!(a.rates.con1, Some(4.0 / 5.0));
    // B: complete, 2 refused, no answer, wrong number (UO).
    let b = &doc.units[1];
    assert_eq!(
        (
            b.dispositions.i,
            b.dispositions.r,
            b.dispositions.uh,
            b.dispositions.uo
        ),
        (1, 2, 1, 1)
    );
    assert_eq!(b.rates.rr1, Some(1.0 / 5.0));
    assert_eq!(b.rates.coop1, Some(1.0 / 3.0));
    assert!(b.flags.contains(&Flag::LowResponse), "RR1 0.2 < 0.6");
    // C: 2 complete, no answer and busy (UH), voicemail (NC): contacted = 2 of 5.
    let c = &doc.units[2];
    assert_eq!(
        (c.dispositions.i, c.dispositions.uh, c.dispositions.nc),
        (2, 2, 1)
    );
    assert_eq!(c.rates.con1, Some(2.0 / 5.0));
    assert_eq!(c.rates.coop1, Some(1.0));
    // RR1 exactly 0.6 is not low.
    assert!(!doc.units[0].flags.contains(&Flag::LowResponse));
    assert_eq!(doc.overall.panel, 25);
    assert_eq!(doc.overall.completes, 9);
    assert_eq!(doc.overall.dispositions.i, 9);
    assert_eq!(doc.overall.rates.rr1, Some(9.0 / 25.0));
}

#[test]
fn edge_cases_zero_one_two_completes_identical_answers_no_onsite_and_ties() {
    let (_d, f) = setup();
    let doc = compute(&f, &ResultsOptions::default());
    let [a, b, c, d, e] = [0, 1, 2, 3, 4].map(|i| &doc.units[i]);

    // One complete (96 = 0.2·80 + 0.8·100): a mean, no SD, interval or alpha.
    assert_eq!(b.phone.completes, 1);
    assert_close(b.phone.mean, 96.0);
    assert_eq!(
        (b.phone.sd, b.phone.ci95, b.phone.cronbach_alpha),
        (None, None, None)
    );
    assert!(b.flags.contains(&Flag::FewCompletes), "1 < min_completes 2");
    // Direct on-site score 90: no interval; social = 9.6 + 9.0, but no social interval.
    let on = b.onsite.as_ref().unwrap();
    assert_eq!(
        (on.kind, on.ballots, on.sd, on.ci95),
        (OnsiteKind::Direct, 0, None, None)
    );
    assert_close(b.social.points, 9.6 + 9.0);
    assert_eq!(b.social.ci95, None);

    // Two identical completes: SD exactly 0, degenerate interval, alpha undefined.
    assert_eq!(c.phone.completes, 2);
    assert_eq!(c.phone.mean, Some(80.0));
    assert_eq!(c.phone.sd, Some(0.0));
    assert_eq!(c.phone.ci95, Some([80.0, 80.0]));
    assert_eq!(c.phone.cronbach_alpha, None);
    assert!(!c.flags.contains(&Flag::FewCompletes), "2 = min_completes");
    // ... and no on-site data: no social score, no rank, flagged.
    assert!(c.onsite.is_none());
    assert_eq!(
        (c.social.points, c.social.rank, c.social.p_bottom),
        (None, None, None)
    );
    assert!(c.flags.contains(&Flag::OnsiteMissing));

    // No complete: nothing to report, no rank; its ballots still scored
    // (0.2·(100+100+80+80+60) = 84 and 0).
    assert_eq!(d.phone.completes, 0);
    assert_eq!(
        (d.phone.mean, d.phone.sd, d.phone.points),
        (None, None, None)
    );
    assert!(
        d.phone
            .dimensions
            .iter()
            .all(|x| x.mean.is_none() && x.satisfaction_rate_ci95.is_none())
    );
    let don = d.onsite.as_ref().unwrap();
    assert!(close(don.mean, 42.0));
    assert_close(don.sd, var(&[84.0, 0.0]).sqrt());
    assert_eq!((d.social.points, d.social.rank), (None, None));
    assert!(d.flags.contains(&Flag::FewCompletes) && d.flags.contains(&Flag::LowResponse));

    // Ties: E has A's answers and ballots, so the same points and the same rank ("1224").
    assert_eq!(doc.ranked_by, RankBasis::Social);
    assert_eq!(a.social.points, e.social.points);
    let ranks: Vec<_> = doc.units.iter().map(|u| u.social.rank).collect();
    assert_eq!(ranks, [Some(2), Some(1), None, None, Some(2)]);
    // Three ranked units and bottom 3: every unit is in the bottom 3 in every replicate.
    for u in [a, b, e] {
        assert_eq!(u.social.p_bottom, Some(1.0));
        let [lo, hi] = u.social.rank_ci95.unwrap();
        assert!(1 <= lo && lo <= hi && hi <= 3);
    }

    // Nothing undetermined is NaN or 0 in JSON: it is null.
    let json = serde_json::to_string(&doc).unwrap();
    assert!(!json.contains("NaN") && !json.contains("inf"), "{json}");
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["units"][2]["phone"]["cronbach_alpha"], Value::Null);
    assert_eq!(v["units"][2]["phone"]["sd"], 0.0);
    assert_eq!(v["units"][2]["onsite"], Value::Null);
    assert_eq!(v["units"][3]["phone"]["mean"], Value::Null);
    assert_eq!(v["units"][1]["social"]["ci95"], Value::Null);
    for key in [
        "unit",
        "kind",
        "sector",
        "panel",
        "dispositions",
        "rates",
        "phone",
        "onsite",
        "social",
        "flags",
    ] {
        assert!(v["units"][0].get(key).is_some(), "units[].{key}");
    }
    assert_eq!(v["units"][0]["dispositions"]["I"], 3);
    assert_eq!(
        v["units"][1]["flags"],
        serde_json::json!(["few_completes", "low_response"])
    );
    for key in ["cronbach_alpha", "operator_effect"] {
        assert!(v["quality"].get(key).is_some(), "quality.{key}");
    }
    assert!(v["bootstrap_seed"].is_u64());
}

#[test]
fn durations_and_answer_times_come_from_claim_and_record_times() {
    let (_d, f) = setup();
    let doc = compute(&f, &ResultsOptions::default());
    let q = &doc.quality;
    assert_eq!(q.completes, 9);
    // Two completes of unit A are suspicious: one recorded 45 s after its claim, one whose
    // answers were keyed 1 s apart. Everything else lasted ≥ 90 s with 10 s between answers.
    let mut found: Vec<_> = q
        .suspicious
        .iter()
        .map(|s| {
            (
                s.unit.as_str(),
                s.reasons.clone(),
                s.duration_secs,
                s.median_gap_secs,
            )
        })
        .collect();
    found.sort_by(|a, b| a.2.partial_cmp(&b.2).unwrap());
    assert_eq!(
        found,
        [
            (
                UNITS[0],
                vec![SuspicionReason::TooShort],
                Some(45.0),
                Some(10.0)
            ),
            (
                UNITS[0],
                vec![SuspicionReason::TooFast],
                Some(120.0),
                Some(1.0)
            ),
        ]
    );
    for s in &q.suspicious {
        assert!(f.ops.iter().any(|o| o.login == s.operator));
        // 2022-11-02 in the survey's time zone, from the record time.
        assert!(
            s.at.starts_with("2022-11-02T09:") && s.at.ends_with("+08:00"),
            "{}",
            s.at
        );
    }
    // Thresholds are options.
    let loose = compute(
        &f,
        &ResultsOptions {
            min_duration_secs: Some(30.0),
            min_median_gap_secs: Some(0.5),
            ..Default::default()
        },
    );
    assert!(loose.quality.suspicious.is_empty());
    assert_eq!(loose.quality.min_duration_secs, 30.0);
}

#[test]
fn respondent_ids_are_pseudonymous_and_stable() {
    let (_d, f) = setup();
    let one = compute(&f, &ResultsOptions::default());
    let two = compute(&f, &ResultsOptions::default());
    let ids = |d: &results::ResultsDocument| {
        d.quality
            .suspicious
            .iter()
            .map(|s| s.id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&one), ids(&two));
    for id in ids(&one) {
        assert!(id.len() == 13 && id.starts_with('R'), "{id}");
        assert!(
            id[1..]
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
        );
        // Not the number or the name. (Not its last four digits either, but that cannot be
        // asserted: twelve random hex digits contain a given four-digit string about once in
        // 7,000 ids, and this check made the test fail now and then.)
        for (name, phone) in &f.personal {
            assert!(
                !id.contains(phone.as_str()) && !id.contains(name.as_str()),
                "{id} shows {name} or {phone}"
            );
        }
    }
    // Keyed by the round's stored key: another round (another key) gives other ids.
    let settings = f.store.results_settings(f.round.id).unwrap().unwrap();
    let member = f.store.members(f.round.id, None).unwrap()[0].id;
    assert_ne!(
        results::respondent_id(&settings.pseudonym_key, member),
        results::respondent_id(&[0u8; 32], member)
    );
}

#[test]
fn the_seed_is_drawn_once_stored_and_overridable() {
    let (_d, f) = setup();
    assert!(f.store.results_settings(f.round.id).unwrap().is_none());
    let one = compute(&f, &ResultsOptions::default());
    let stored = f.store.results_settings(f.round.id).unwrap().unwrap();
    assert_eq!(one.bootstrap_seed, stored.bootstrap_seed);
    assert_eq!(one.bootstrap_seed_source, "stored");
    assert!(one.bootstrap_seed < 1 << 53, "exact in JavaScript");
    let two = compute(&f, &ResultsOptions::default());
    assert_eq!(two.bootstrap_seed, one.bootstrap_seed);
    assert_eq!(
        serde_json::to_value(&one.units).unwrap(),
        serde_json::to_value(&two.units).unwrap(),
        "same stored attempts and seed, same results"
    );
    let over = compute(
        &f,
        &ResultsOptions {
            seed: Some(7),
            replicates: Some(50),
            bottom_k: Some(1),
            ..Default::default()
        },
    );
    assert_eq!(
        (over.bootstrap_seed, over.bootstrap_seed_source),
        (7, "override")
    );
    assert_eq!((over.bootstrap_replicates, over.bottom_k), (50, 1));
    assert_eq!(
        f.store.results_settings(f.round.id).unwrap().unwrap(),
        stored
    );
    let logged = f
        .store
        .audit_entries(Some(ROUND))
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "results.settings")
        .count();
    assert_eq!(logged, 1, "drawn once, logged once");
}

#[test]
fn results_recompute_from_the_stored_attempts() {
    let (_d, f) = setup();
    let before = compute(&f, &ResultsOptions::default());
    assert_eq!(before.units[3].phone.completes, 0);
    // A paper form for one of D's members arrives and is imported.
    let member = f.store.members(f.round.id, Some(f.units[3].id)).unwrap()[0].id;
    let at = chrono::Utc.with_ymd_and_hms(2022, 11, 2, 7, 0, 0).unwrap();
    f.store
        .import_attempts(
            &f.round,
            &[ImportedAttempt {
                member_id: member,
                operator_id: f.ops[0].id,
                recorded_at: at,
                outcome: Outcome::Complete,
                answers: vec![Some(2); 5],
                comment: None,
                appointment: None,
            }],
            "test",
            now(),
        )
        .unwrap();
    let after = compute(&f, &ResultsOptions::default());
    let d = &after.units[3];
    assert_eq!(d.phone.completes, 1);
    assert_eq!(d.phone.mean, Some(60.0));
    assert_eq!(d.dispositions.i, 1);
    assert_eq!(d.rates.rr1, Some(1.0 / 5.0));
    // 60/100·10 + 42/100·10: now ranked, last.
    assert_close(d.social.points, 6.0 + 4.2);
    assert_eq!(d.social.rank, Some(4));
    // An imported interview has no claim, hence no duration: never "too short".
    assert_eq!(after.quality.completes, 10);
    assert_eq!(after.quality.suspicious.len(), 2);
}

#[test]
fn the_table_shows_every_unit() {
    let (_d, f) = setup();
    let doc = compute(&f, &ResultsOptions::default());
    let text = results::render_table(&doc);
    for u in UNITS {
        assert!(text.contains(u), "{u}");
    }
    assert!(text.contains("缺现场评价") && text.contains("完成数不足"));
    assert!(text.contains(&doc.bootstrap_seed.to_string()));
}

#[test]
fn a_purged_round_still_has_results() {
    let (_d, f) = setup();
    let before = compute(&f, &ResultsOptions::default());
    f.store.lock_round(&f.round, "test").unwrap();
    f.store
        .purge_contacts(&f.store.round(ROUND).unwrap(), "test")
        .unwrap();
    let round = f.store.round(ROUND).unwrap();
    let after = results::compute(
        f.store.as_ref(),
        &round,
        &ResultsOptions::default(),
        now(),
        "test",
    )
    .unwrap();
    assert!(after.locked);
    assert_eq!(
        serde_json::to_value(&before.units).unwrap(),
        serde_json::to_value(&after.units).unwrap()
    );
}
