//! The `onsite` export: what a third party needs to replay the on-site side of the bootstrap
//! (docs/results.md): units in the round's order, each unit's ballots in the order the scoring
//! reads them, with levels and scores, and direct scores.

mod common;

use common::{Sheping, round_with_units};

const EDU: &str = "汉滨区教育体育局";
const ROAD: &str = "汉滨区公路管理段";

fn import(sp: &Sheping, name: &str, body: &str) {
    let file = sp.write(name, body.as_bytes());
    sp.ok(&[
        "onsite",
        "import",
        "--round",
        "2022",
        file.to_str().unwrap(),
    ]);
}

#[test]
fn the_onsite_export_lists_ballots_in_scoring_order_and_direct_scores() {
    let sp = Sheping::new();
    round_with_units(&sp);
    // Two imports: ballot ids out of order, an overall ballot; a direct score for the third unit.
    import(
        &sp,
        "first.csv",
        &format!(
            "unit,ballot,duties,办事效率,service,作风形象,reputation,overall\n\
             {EDU},b9,1,2,3,4,1,\n\
             {EDU},b2,,,,,,比较满意\n"
        ),
    );
    import(
        &sp,
        "second.csv",
        &format!("unit,ballot,overall\n{EDU},b1,满意\n"),
    );
    import(&sp, "direct.csv", &format!("unit,score\n{ROAD},87.5\n"));

    let out = sp.path("onsite.csv");
    sp.ok(&[
        "export",
        "onsite",
        "--round",
        "2022",
        "--out",
        out.to_str().unwrap(),
        "--no-bom",
    ]);
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines[0],
        "unit_no,unit,unit_code,unit_kind,sector,onsite_kind,ballot_no,ballot,\
         duties_level,efficiency_level,service_level,conduct_level,reputation_level,\
         overall_level,ballot_score,direct_score"
    );
    assert_eq!(
        &lines[1..],
        &[
            // 0.2·(100 + 80 + 60 + 0 + 100) = 68, in import order (b9 before b2 before b1).
            "1,汉滨区教育体育局,A01,党政机关,教体,ballots,1,b9,1,2,3,4,1,,68,",
            "1,汉滨区教育体育局,A01,党政机关,教体,ballots,2,b2,,,,,,2,80,",
            "1,汉滨区教育体育局,A01,党政机关,教体,ballots,3,b1,,,,,,1,100,",
            // The second unit has no on-site data: no row.
            "3,汉滨区公路管理段,B01,事业单位,交通运输,direct,,,,,,,,,,87.5",
        ]
    );
    // The export's ballots are what the scoring used: their mean is the unit's on-site mean.
    let v = sp.json(&["results", "--round", "2022", "--json", "--replicates", "0"]);
    let edu = v["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit"] == EDU)
        .unwrap();
    assert!((edu["onsite"]["mean"].as_f64().unwrap() - (68.0 + 80.0 + 100.0) / 3.0).abs() < 1e-9);
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM audit_log WHERE action = 'export.onsite'"),
        1
    );
}
