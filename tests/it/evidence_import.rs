//! Corroborating records (佐证依据) through the real binary: the importer (all or nothing,
//! line-numbered errors, names or codes, Chinese or English kinds, --replace, audit) and what
//! the results gain (per-unit evidence, the Spearman check, the evidence_mismatch flag).

use crate::common;

use common::{Sheping, round_with_units};
use serde_json::Value;

const EDU: &str = "汉滨区教育体育局";
const HOUSING: &str = "汉滨区住房和城乡建设局";
const ROAD: &str = "汉滨区公路管理段";

fn import(sp: &Sheping, name: &str, body: &[u8], extra: &[&str]) -> (i32, Value) {
    let file = sp.write(name, body);
    let mut args = vec![
        "evidence",
        "import",
        "--round",
        "2022",
        file.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = sp.run(&args);
    let code = out.status.code().unwrap_or(-1);
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (code, v)
}

fn stored(sp: &Sheping) -> i64 {
    sp.count("SELECT COUNT(*) FROM evidence")
}

fn results(sp: &Sheping) -> Value {
    sp.json(&["results", "--round", "2022", "--json", "--replicates", "0"])
}

fn unit<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit"] == name)
        .unwrap()
}

#[test]
fn a_good_file_is_stored_and_shown_per_unit_with_its_sources() {
    let sp = Sheping::new();
    round_with_units(&sp);
    // Units by name or by code; kinds in Chinese or English; volume optional.
    let csv = format!(
        "参评单位,类别,数量,业务量,来源,备注\n\
         {EDU},12345投诉,12,4000,区行政审批服务局 汉审函〔2022〕31号,\n\
         A02,complaint,3,,区行政审批服务局 汉审函〔2022〕31号,\n\
         {EDU},信访,2,,区信访局 汉信函〔2022〕8号,含重复信访1件\n\
         B01,discipline,0,,区纪委监委 汉纪函〔2022〕5号,\n"
    );
    let (code, v) = import(&sp, "evidence.csv", csv.as_bytes(), &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["imported"], 4);
    assert_eq!(stored(&sp), 4);
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM audit_log WHERE action = 'evidence.import'"),
        1
    );
    let doc = results(&sp);
    let edu = &unit(&doc, EDU)["evidence"];
    assert_eq!(edu["complaint"], 12);
    assert_eq!(edu["petition"], 2);
    assert_eq!(edu["discipline"], Value::Null);
    assert_eq!(edu["volume"], 4000);
    assert_eq!(edu["complaint_rate"].as_f64().unwrap(), 3.0);
    let sources = edu["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 2);
    assert_eq!(sources[0]["kind"], "complaint");
    assert_eq!(sources[1]["source"], "区信访局 汉信函〔2022〕8号");
    assert_eq!(sources[1]["note"], "含重复信访1件");
    let housing = &unit(&doc, HOUSING)["evidence"];
    assert_eq!(housing["complaint"], 3);
    assert_eq!(housing["complaint_rate"], Value::Null, "no volume, no rate");
    assert_eq!(unit(&doc, ROAD)["evidence"]["discipline"], 0);
    // Three units only: no kind reaches the five units a check needs.
    assert_eq!(doc["evidence_check"], serde_json::json!([]));
    // The scores export carries the same, one column per field.
    let out = sp.path("scores.csv");
    sp.ok(&[
        "export",
        "scores",
        "--round",
        "2022",
        "--out",
        out.to_str().unwrap(),
        "--replicates",
        "0",
    ]);
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.trim_start_matches('\u{feff}').lines();
    let headers: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| headers.iter().position(|h| *h == name).unwrap();
    let edu_row: Vec<&str> = lines
        .find(|l| l.starts_with(EDU))
        .unwrap()
        .split(',')
        .collect();
    assert_eq!(edu_row[col("evidence_complaint")], "12");
    assert_eq!(edu_row[col("evidence_petition")], "2");
    assert_eq!(edu_row[col("evidence_discipline")], "");
    assert_eq!(edu_row[col("evidence_volume")], "4000");
    assert_eq!(edu_row[col("evidence_complaint_rate")], "3");
    assert!(edu_row[col("evidence_sources")].contains("汉审函〔2022〕31号"));
}

#[test]
fn a_bad_file_stores_nothing_and_names_every_line() {
    let sp = Sheping::new();
    round_with_units(&sp);
    let csv = format!(
        "unit,kind,count,volume,source\n\
         {EDU},complaint,5,1000,a\n\
         汉滨区教育局,complaint,1,,a\n\
         {HOUSING},表扬,1,,a\n\
         {HOUSING},complaint,-1,,a\n\
         {ROAD},petition,2.5,,a\n\
         {ROAD},complaint,2,0,a\n\
         {EDU},投诉,7,,a\n\
         ,petition,1,,a\n"
    );
    let (code, v) = import(&sp, "bad.csv", csv.as_bytes(), &[]);
    assert_ne!(code, 0);
    assert_eq!(v["applied"], false);
    assert_eq!(stored(&sp), 0, "all or nothing");
    let rejected: Vec<(u64, String, String)> = v["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["field"].as_str().unwrap().to_string(),
                r["error"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let lines: Vec<(u64, &str)> = rejected.iter().map(|r| (r.0, r.1.as_str())).collect();
    assert_eq!(
        lines,
        [
            (3, "unit"),
            (4, "kind"),
            (5, "count"),
            (6, "count"),
            (7, "volume"),
            (8, "kind"),
            (9, "unit"),
        ]
    );
    assert!(
        rejected[0].2.contains(EDU),
        "suggests the closest name: {}",
        rejected[0].2
    );
    assert!(rejected[5].2.contains("第 2 行"), "{}", rejected[5].2);
    // Missing required column: a header error, nothing stored.
    let out = sp.run(&[
        "evidence",
        "import",
        "--round",
        "2022",
        sp.write(
            "nohead.csv",
            format!("unit,kind\n{EDU},complaint\n").as_bytes(),
        )
        .to_str()
        .unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("count"));
    assert_eq!(stored(&sp), 0);
}

#[test]
fn importing_again_needs_replace_which_replaces_the_whole_set() {
    let sp = Sheping::new();
    round_with_units(&sp);
    let first = format!("unit,kind,count\n{EDU},complaint,5\n{HOUSING},petition,1\n");
    assert_eq!(import(&sp, "a.csv", first.as_bytes(), &[]).0, 0);
    let again = format!("unit,kind,count\n{EDU},complaint,9\n");
    let (code, v) = import(&sp, "b.csv", again.as_bytes(), &[]);
    assert_ne!(code, 0);
    assert_eq!(v["rejected"][0]["line"], 2);
    assert!(
        v["rejected"][0]["error"]
            .as_str()
            .unwrap()
            .contains("--replace")
    );
    assert_eq!(unit(&results(&sp), EDU)["evidence"]["complaint"], 5);
    let (code, v) = import(&sp, "b.csv", again.as_bytes(), &["--replace"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(stored(&sp), 1, "the file is the whole set");
    let doc = results(&sp);
    assert_eq!(unit(&doc, EDU)["evidence"]["complaint"], 9);
    assert_eq!(unit(&doc, HOUSING)["evidence"]["petition"], Value::Null);
}

/// The demo round's 30 units with points (its demo evidence replaced): complaints rising with the points give rho = 1 and
/// flag exactly the units in the top and bottom thirds of both.
#[test]
fn results_check_spearman_and_flag_units_in_the_same_third() {
    let sp = Sheping::new();
    {
        let store = sp.store();
        assert!(sheping::demo::ensure_demo(store.as_ref()).unwrap());
        let _ = store.round(sheping::demo::DEMO_ROUND).unwrap();
    }
    let before = results(&sp);
    let mut pts: Vec<(String, f64)> = before["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["unit"].as_str().unwrap().to_string(),
                u["social"]["points"].as_f64().unwrap(),
            )
        })
        .collect();
    let n = pts.len();
    assert_eq!(n, 30);
    pts.sort_by(|a, b| a.1.total_cmp(&b.1));
    assert!(pts.windows(2).all(|w| w[0].1 < w[1].1), "distinct points");
    let mut csv = String::from("单位,类别,数量,业务量,来源\n");
    for (i, (name, _)) in pts.iter().enumerate() {
        csv.push_str(&format!(
            "{name},complaint,{},2000,汉审函〔2022〕31号\n",
            10 + i
        ));
    }
    for (name, _) in pts.iter().take(3) {
        csv.push_str(&format!("{name},petition,1,2000,汉信函〔2022〕8号\n"));
    }
    // The demo has its own evidence: this file replaces it.
    let (code, v) = import(&sp, "ev.csv", csv.as_bytes(), &["--replace"]);
    assert_eq!(code, 0, "{v}");
    let doc = results(&sp);
    let checks = doc["evidence_check"].as_array().unwrap();
    assert_eq!(checks.len(), 1, "petitions for 3 units only: {checks:?}");
    assert_eq!(checks[0]["kind"], "complaint");
    assert_eq!(checks[0]["n"], 30);
    assert_eq!(checks[0]["basis"], "rate");
    assert!((checks[0]["spearman_rho"].as_f64().unwrap() - 1.0).abs() < 1e-12);
    assert_eq!(checks[0]["p"].as_f64().unwrap(), 0.0);
    for (i, (name, p)) in pts.iter().enumerate() {
        let u = unit(&doc, name);
        // Percentile rank i/(n−1): top third ≥ 2/3, bottom third ≤ 1/3.
        let expected = 3 * i >= 2 * (n - 1) || 3 * i < n;
        let flagged = u["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "evidence_mismatch");
        assert_eq!(flagged, expected, "{name} (rank {})", i + 1);
        // The flag never changes a score.
        assert_eq!(u["social"]["points"].as_f64().unwrap(), *p);
        assert_eq!(
            u["evidence"]["complaint_rate"].as_f64().unwrap(),
            (10 + i) as f64 / 2.0
        );
    }
    // The unit's feedback page shows its counts with their sources and explains the flag.
    let (top, _) = pts.last().unwrap();
    let out = sp.path("report");
    sp.ok(&[
        "report",
        "--round",
        "2022",
        "--unit",
        top,
        "--out",
        out.to_str().unwrap(),
    ]);
    let page = std::fs::read_dir(out.join("feedback"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "html"))
        .unwrap();
    let html = std::fs::read_to_string(page).unwrap();
    assert!(html.contains("<h2>佐证依据</h2>"), "{html}");
    assert!(
        html.contains("39 件(业务量 2000 件,每千件 19.50 件)"),
        "{html}"
    );
    assert!(html.contains("汉审函〔2022〕31号"));
    assert!(html.contains("佐证不符:"), "the flag is explained");
}
