//! What a third party needs to replay the bootstrap: the `onsite` export for the on-site side
//! (docs/results.md): units in the round's order, each unit's ballots in the order the scoring
//! reads them, with levels and scores, and direct scores; and the stated order of interviews
//! recorded at the same time, which the `responses` export follows.

use crate::common;

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

/// docs/results.md: interviews are ordered by recorded time in milliseconds, then by attempt id;
/// paper forms recorded at the same minute keep their file order, and the `responses` export
/// lists interviews in exactly the order the scoring (and its bootstrap) reads them.
#[test]
fn interviews_recorded_at_the_same_time_keep_their_stated_order_in_the_responses_export() {
    let sp = Sheping::new();
    let today = chrono::Utc::now().date_naive();
    let from = (today - chrono::Duration::days(10)).to_string();
    let to = (today + chrono::Duration::days(10)).to_string();
    sp.ok(&[
        "round",
        "create",
        "2022",
        "--title",
        "2022年度履职评估",
        "--from",
        &from,
        "--to",
        &to,
    ]);
    let units = sp.write("units.csv", common::UNITS_CSV.as_bytes());
    sp.ok(&[
        "units",
        "import",
        "--round",
        "2022",
        units.to_str().unwrap(),
    ]);
    let mut roster = String::from("参评单位,姓名,联系电话\n");
    for i in 0..3 {
        roster.push_str(&format!("{EDU},代表{i},1390000000{i}\n"));
    }
    let file = sp.write("roster.csv", roster.as_bytes());
    sp.ok(&[
        "roster",
        "import",
        "--round",
        "2022",
        file.to_str().unwrap(),
    ]);
    let out = sp
        .command()
        .args([
            "user",
            "add",
            "--login",
            "op1",
            "--name",
            "话务员",
            "--role",
            "operator",
            "--password-env",
            "PW",
        ])
        .env("PW", "a-long-password")
        .output()
        .unwrap();
    assert!(out.status.success());
    sp.ok(&["calls", "generate", "--round", "2022", "--seed", "1"]);
    // Three completes at the same minute; the file lists member 2, then 0, then 1, each with
    // its own first answer (level 3, 1, 2) to tell them apart.
    let day = (today - chrono::Duration::days(2)).to_string();
    let attempts = format!(
        "unit,phone,operator,outcome,at,职能职责履行,办事效率,服务质量,作风形象,社会反响\n\
         {EDU},13900000002,op1,complete,{day} 10:15,3,1,1,1,1\n\
         {EDU},13900000000,op1,complete,{day} 10:15,1,1,1,1,1\n\
         {EDU},13900000001,op1,complete,{day} 10:15,2,1,1,1,1\n"
    );
    let file = sp.write("attempts.csv", attempts.as_bytes());
    sp.ok(&[
        "attempts",
        "import",
        "--round",
        "2022",
        file.to_str().unwrap(),
    ]);
    let out = sp.path("responses.csv");
    sp.ok(&[
        "export",
        "responses",
        "--round",
        "2022",
        "--out",
        out.to_str().unwrap(),
        "--no-bom",
    ]);
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (level, at, scored) = (col("duties_level"), col("interview_at"), col("scored"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter()
            .all(|r| r[at] == rows[0][at] && r[scored] == "1")
    );
    let order: Vec<&str> = rows.iter().map(|r| r[level]).collect();
    assert_eq!(order, ["3", "1", "2"], "file order kept for the same time");
}
