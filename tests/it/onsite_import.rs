//! On-site evaluation data through the real binary: ballots (per dimension or overall, by key,
//! label or number) and direct scores, all or nothing with line-numbered errors, skipping,
//! replacement, encodings and workbooks, and the scores they lead to.

use crate::common;

use common::{Sheping, round_with_units};
use serde_json::Value;

const EDU: &str = "汉滨区教育体育局";
const HOUSING: &str = "汉滨区住房和城乡建设局";
const ROAD: &str = "汉滨区公路管理段";

fn import(sp: &Sheping, name: &str, body: &[u8], extra: &[&str]) -> (i32, Value) {
    let file = sp.write(name, body);
    let mut args = vec![
        "onsite",
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

fn counts(sp: &Sheping) -> (i64, i64) {
    (
        sp.count("SELECT COUNT(*) FROM onsite_ballots"),
        sp.count("SELECT COUNT(*) FROM onsite_scores"),
    )
}

fn onsite_of(sp: &Sheping, unit: &str) -> Value {
    let v = sp.json(&["results", "--round", "2022", "--json", "--replicates", "0"]);
    v["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit"] == unit)
        .unwrap()["onsite"]
        .clone()
}

#[test]
fn ballots_by_key_label_or_number_score_as_worked_out() {
    let sp = Sheping::new();
    round_with_units(&sp);
    // Dimension columns by key and by label, plus an overall column; levels by key, label, number.
    let csv = format!(
        "unit,ballot,duties,办事效率,service,作风形象,reputation,overall\n\
         {EDU},1,satisfied,满意,1,满意,satisfied,\n\
         {EDU},2,,,,,,比较满意\n\
         {EDU},3,1,2,3,4,1,\n\
         {HOUSING},1,,,,,,4\n"
    );
    let (code, v) = import(&sp, "ballots.csv", csv.as_bytes(), &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["imported"], 4);
    assert_eq!(counts(&sp), (4, 0));
    // Ballots: 100; overall 80; 0.2·(100 + 80 + 60 + 0 + 100) = 68.
    let on = onsite_of(&sp, EDU);
    assert_eq!(on["kind"], "ballots");
    assert_eq!(on["ballots"], 3);
    let mean = (100.0 + 80.0 + 68.0) / 3.0;
    assert!((on["mean"].as_f64().unwrap() - mean).abs() < 1e-9);
    assert!((on["points"].as_f64().unwrap() - mean / 10.0).abs() < 1e-9);
    let on = onsite_of(&sp, HOUSING);
    assert_eq!((on["mean"].as_f64(), on["sd"].as_f64()), (Some(0.0), None));
    // The road unit has none: warned at import, flagged in the results.
    assert!(
        v["warnings"]
            .to_string()
            .contains("1 个单位没有现场评价数据")
    );
    assert_eq!(onsite_of(&sp, ROAD), Value::Null);
    let audit = sp.count("SELECT COUNT(*) FROM audit_log WHERE action = 'onsite.import'");
    assert_eq!(audit, 1);
}

#[test]
fn a_bad_row_stores_nothing_and_names_its_line() {
    let sp = Sheping::new();
    round_with_units(&sp);
    let csv = format!(
        "参评单位,选票编号,总体评价\n\
         {EDU},1,满意\n\
         {EDU},2,很满意\n\
         {EDU},1,满意\n\
         汉滨区教育局,4,满意\n\
         {EDU},,满意\n\
         {EDU},6,\n\
         {ROAD},7,不满意\n"
    );
    let (code, v) = import(&sp, "bad.csv", csv.as_bytes(), &[]);
    assert_eq!(code, 1);
    assert_eq!(v["applied"], false);
    assert_eq!(counts(&sp), (0, 0), "all or nothing");
    let rejected: Vec<(u64, String)> = v["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["field"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        [
            (3, "overall".into()),
            (4, "ballot".into()),
            (5, "unit".into()),
            (6, "ballot".into()),
            (7, "overall".into()),
        ]
    );
    let text = v["rejected"].to_string();
    assert!(
        text.contains("很满意") && text.contains("第 2 行"),
        "{text}"
    );
    assert!(text.contains("是否应为“汉滨区教育体育局”"), "{text}");

    // --skip-invalid stores the two good rows and writes the rejects.
    let rejects = sp.path("rejects.csv");
    let (code, v) = import(
        &sp,
        "bad.csv",
        csv.as_bytes(),
        &["--skip-invalid", "--rejects", rejects.to_str().unwrap()],
    );
    assert_eq!(code, 1, "still non-zero: rows were skipped");
    assert_eq!(v["imported"], 2);
    assert_eq!(counts(&sp), (2, 0));
    let bytes = std::fs::read(&rejects).unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"));
    assert_eq!(String::from_utf8(bytes).unwrap().lines().count(), 6);
}

#[test]
fn a_ballot_must_fill_every_dimension_or_only_overall() {
    let sp = Sheping::new();
    round_with_units(&sp);
    let csv = format!(
        "unit,ballot,duties,efficiency,service,conduct,reputation,overall\n\
         {EDU},1,1,1,,1,1,\n\
         {EDU},2,1,1,1,1,1,1\n\
         {EDU},3,1,1,1,1,9,\n\
         {EDU},4,,,,,,\n"
    );
    let (code, v) = import(&sp, "partial.csv", csv.as_bytes(), &[]);
    assert_eq!(code, 1);
    let fields: Vec<&str> = v["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["service", "overall", "reputation", "duties"]);
    // A file with only some dimension columns is refused before any row is read.
    let csv = format!("unit,ballot,duties,efficiency\n{EDU},1,1,1\n");
    let out = sp.run(&[
        "onsite",
        "import",
        "--round",
        "2022",
        sp.write("cols.csv", csv.as_bytes()).to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("service") && err.contains("overall"), "{err}");
}

#[test]
fn direct_scores_are_checked_against_the_scale() {
    let sp = Sheping::new();
    round_with_units(&sp);
    let csv = format!("unit,score\n{EDU},８５.５\n{HOUSING},120\n{ROAD},abc\n{EDU},90\n");
    let (code, v) = import(&sp, "scores.csv", csv.as_bytes(), &[]);
    assert_eq!(code, 1);
    let lines: Vec<u64> = v["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [3, 4, 5]);
    assert!(
        v["rejected"][0]["error"]
            .as_str()
            .unwrap()
            .contains("0 到 100")
    );
    let csv = format!("单位名称,现场评价得分\n{EDU},85.5\n{HOUSING},0\n");
    let (code, _) = import(&sp, "scores.csv", csv.as_bytes(), &[]);
    assert_eq!(code, 0);
    let on = onsite_of(&sp, EDU);
    assert_eq!(
        (
            on["kind"].as_str(),
            on["mean"].as_f64(),
            on["ballots"].as_u64()
        ),
        (Some("direct"), Some(85.5), Some(0))
    );
    assert!((on["points"].as_f64().unwrap() - 8.55).abs() < 1e-12);
    assert_eq!(on["ci95"], Value::Null);
}

#[test]
fn stored_data_is_kept_unless_replaced() {
    let sp = Sheping::new();
    round_with_units(&sp);
    let first = format!("unit,ballot,overall\n{EDU},1,满意\n{EDU},2,满意\n");
    assert_eq!(import(&sp, "a.csv", first.as_bytes(), &[]).0, 0);
    // New ballot ids append; a repeated id is refused.
    let more = format!("unit,ballot,overall\n{EDU},3,不满意\n");
    assert_eq!(import(&sp, "b.csv", more.as_bytes(), &[]).0, 0);
    assert_eq!(onsite_of(&sp, EDU)["ballots"], 3);
    let (code, v) = import(&sp, "c.csv", first.as_bytes(), &[]);
    assert_eq!(code, 1);
    assert!(
        v["rejected"][0]["error"]
            .as_str()
            .unwrap()
            .contains("--replace")
    );
    // A direct score for a unit with ballots is refused; with --replace it replaces them.
    let direct = format!("unit,score\n{EDU},70\n");
    assert_eq!(import(&sp, "d.csv", direct.as_bytes(), &[]).0, 1);
    let (code, v) = import(&sp, "d.csv", direct.as_bytes(), &["--replace"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(counts(&sp), (0, 1));
    assert!(v["warnings"].to_string().contains("替换了 1 个单位"));
    assert_eq!(onsite_of(&sp, EDU)["mean"], 70.0);
    // And ballots for a unit with a direct score are refused.
    assert_eq!(import(&sp, "e.csv", first.as_bytes(), &[]).0, 1);
}

#[test]
fn the_file_shape_must_be_recognisable() {
    let sp = Sheping::new();
    round_with_units(&sp);
    for (body, needle) in [
        (
            format!("unit,ballot,score,overall\n{EDU},1,90,1\n"),
            "无法判断格式",
        ),
        (
            format!("unit,note\n{EDU},x\n"),
            "无法判断现场评价文件的格式",
        ),
        ("ballot,overall\n1,1\n".to_string(), "unit"),
    ] {
        let out = sp.run(&[
            "onsite",
            "import",
            "--round",
            "2022",
            sp.write("x.csv", body.as_bytes()).to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{err}");
    }
    assert_eq!(counts(&sp), (0, 0));
}

#[test]
fn gbk_csv_and_xlsx_files_are_read() {
    let sp = Sheping::new();
    round_with_units(&sp);
    let text = format!("参评单位,票号,总体评价\r\n{EDU},A1,比较满意\r\n{ROAD},B1,基本满意\r\n");
    let (gbk, _, bad) = encoding_rs::GBK.encode(&text);
    assert!(!bad && std::str::from_utf8(&gbk).is_err());
    let (code, v) = import(&sp, "gbk.csv", &gbk, &[]);
    assert_eq!(code, 0, "{v}");
    assert!(v["encoding"].as_str().unwrap().starts_with("GB"), "{v}");

    let path = sp.path("scores.xlsx");
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    ws.write_string(0, 0, "参评单位").unwrap();
    ws.write_string(0, 1, "得分").unwrap();
    ws.write_string(1, 0, HOUSING).unwrap();
    ws.write_number(1, 1, 77.25).unwrap();
    wb.save(&path).unwrap();
    let out = sp.run(&[
        "onsite",
        "import",
        "--round",
        "2022",
        path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(onsite_of(&sp, HOUSING)["mean"], 77.25);
    let shown = sp.ok(&["onsite", "show", "--round", "2022"]);
    assert!(
        shown.contains("直接得分 77.25") && shown.contains("1 张选票"),
        "{shown}"
    );
}

#[test]
fn a_locked_round_refuses_on_site_data() {
    let sp = Sheping::new();
    round_with_units(&sp);
    sp.ok(&["round", "lock", "2022"]);
    let csv = format!("unit,score\n{EDU},70\n");
    let out = sp.run(&[
        "onsite",
        "import",
        "--round",
        "2022",
        sp.write("s.csv", csv.as_bytes()).to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("locked"));
    assert_eq!(counts(&sp), (0, 0));
}
