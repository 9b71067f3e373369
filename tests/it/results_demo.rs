//! The demo round (30 units, simulated calls) with its on-site data: results for every unit
//! (on the run's backend).

use crate::common::Sheping;
use sheping::imports::demo_onsite;
use sheping::results::{self, ResultsOptions};

#[test]
fn the_demo_shows_results_for_its_30_units() {
    let sp = Sheping::new();
    let store = sp.store();
    let store = store.as_ref();
    assert!(sheping::demo::ensure_demo(store).unwrap());
    let round = store.round(sheping::demo::DEMO_ROUND).unwrap();
    // `sheping demo` stores the on-site data itself; a second call adds nothing.
    assert_eq!(demo_onsite(store, &round, "demo").unwrap(), 0, "only once");
    assert_eq!(store.onsite(round.id).unwrap().len(), 30);
    let doc = results::compute(
        store,
        &round,
        &ResultsOptions::default(),
        chrono::Utc::now(),
        "demo",
    )
    .unwrap();
    assert_eq!(doc.units.len(), 30);
    assert!(
        doc.units
            .iter()
            .all(|u| u.onsite.is_some() && u.phone.completes > 0)
    );
    assert!(
        doc.units
            .iter()
            .all(|u| u.social.rank.is_some() && u.social.rank_ci95.is_some())
    );
    let json = serde_json::to_string(&doc).unwrap();
    assert!(!json.contains("NaN"));
    assert!(doc.quality.operator_effect.anova.is_some());
    let text = results::render_table(&doc);
    assert_eq!(text.lines().filter(|l| l.starts_with("汉滨区")).count(), 30);
}

#[test]
fn the_demo_has_evidence_beside_the_scores() {
    let sp = Sheping::new();
    let store = sp.store();
    let store = store.as_ref();
    assert!(sheping::demo::ensure_demo(store).unwrap());
    let round = store.round(sheping::demo::DEMO_ROUND).unwrap();
    assert_eq!(
        sheping::imports::demo_evidence(store, &round, "demo").unwrap(),
        0,
        "only once"
    );
    let doc = results::compute(
        store,
        &round,
        &ResultsOptions {
            replicates: Some(0),
            ..Default::default()
        },
        chrono::Utc::now(),
        "demo",
    )
    .unwrap();
    assert!(doc.units.iter().all(|u| {
        u.evidence.complaint.is_some()
            && u.evidence.complaint_rate.is_some()
            && !u.evidence.sources.is_empty()
    }));
    let kinds: Vec<&str> = doc.evidence_check.iter().map(|c| c.kind.key()).collect();
    assert_eq!(kinds, ["complaint", "petition", "discipline"]);
    assert_eq!(doc.evidence_check[0].n, 30);
    assert_eq!(doc.evidence_check[0].basis, "rate");
    assert!(doc.evidence_check.iter().all(|c| c.p.is_some()));
}
