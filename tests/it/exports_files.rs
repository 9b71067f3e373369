//! The statisticians' exports through the real binary, parsed back: CSV with BOM, xlsx via
//! calamine, the codebook and SPSS syntax; the figures in them checked by hand; no name or
//! phone number anywhere; every export in the audit log.

use crate::common;
use crate::common::results_fixture;

use std::collections::BTreeMap;
use std::path::Path;

use calamine::{Data, Reader, Xlsx, open_workbook};
use common::Sheping;
use results_fixture::{UNITS, build_in};

const KINDS: [&str; 6] = [
    "responses",
    "distributions",
    "scores",
    "dispositions",
    "attempts",
    "codebook",
];

struct Csv {
    headers: Vec<String>,
    rows: Vec<BTreeMap<String, String>>,
}

fn read_csv(path: &Path) -> Csv {
    let bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.starts_with(b"\xEF\xBB\xBF"),
        "{} has no BOM",
        path.display()
    );
    let mut r = csv::Reader::from_reader(&bytes[3..]);
    let headers: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    let rows = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            headers
                .iter()
                .cloned()
                .zip(rec.iter().map(str::to_string))
                .collect()
        })
        .collect();
    Csv { headers, rows }
}

fn export(sp: &Sheping, kind: &str, file: &str, extra: &[&str]) -> std::path::PathBuf {
    let out = sp.path(file);
    let mut args = vec![
        "export",
        kind,
        "--round",
        "2022",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    sp.ok(&args);
    out
}

fn setup() -> Sheping {
    let sp = Sheping::new();
    build_in(&sp);
    sp
}

fn num(s: &str) -> f64 {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s:?}"))
}

#[test]
fn responses_have_stable_columns_and_the_recorded_answers() {
    let sp = setup();
    let csv = read_csv(&export(&sp, "responses", "responses.csv", &[]));
    let mut want = vec![
        "respondent_id",
        "unit",
        "unit_code",
        "unit_kind",
        "sector",
        "category",
        "operator",
        "attempt_no",
        "interview_at",
        "duration_secs",
        "outcome",
        "aapor_code",
        "scored",
    ];
    let dims = ["duties", "efficiency", "service", "conduct", "reputation"];
    let per_dim: Vec<String> = dims
        .iter()
        .flat_map(|d| [format!("{d}_level"), format!("{d}_score")])
        .collect();
    want.extend(per_dim.iter().map(String::as_str));
    want.extend(["respondent_score", "satisfied_share"]);
    assert_eq!(csv.headers, want);
    // One row per interview: the 9 completes.
    assert_eq!(csv.rows.len(), 9);
    let a: Vec<_> = csv.rows.iter().filter(|r| r["unit"] == UNITS[0]).collect();
    let mut scores: Vec<f64> = a.iter().map(|r| num(&r["respondent_score"])).collect();
    scores.sort_by(f64::total_cmp);
    assert_eq!(scores, [68.0, 80.0, 100.0]);
    let mut durations: Vec<f64> = a.iter().map(|r| num(&r["duration_secs"])).collect();
    durations.sort_by(f64::total_cmp);
    assert_eq!(durations, [45.0, 120.0, 120.0], "record time − claim time");
    let r68 = a.iter().find(|r| r["respondent_score"] == "68").unwrap();
    let levels: Vec<&str> = dims
        .iter()
        .map(|d| r68[&format!("{d}_level")].as_str())
        .collect();
    assert_eq!(levels, ["1", "2", "3", "4", "1"]);
    let points: Vec<&str> = dims
        .iter()
        .map(|d| r68[&format!("{d}_score")].as_str())
        .collect();
    assert_eq!(points, ["100", "80", "60", "0", "100"]);
    assert_eq!(num(&r68["satisfied_share"]), 0.8);
    for r in &csv.rows {
        assert_eq!(
            (
                r["outcome"].as_str(),
                r["aapor_code"].as_str(),
                r["scored"].as_str()
            ),
            ("complete", "1.1", "1")
        );
        assert!(
            r["interview_at"].starts_with("2022-11-02 09:"),
            "{}",
            r["interview_at"]
        );
        assert!(r["operator"] == "op0" || r["operator"] == "op1");
        assert_eq!(r["attempt_no"], "1");
        assert!(r["respondent_id"].starts_with('R') && r["respondent_id"].len() == 13);
    }
    let ids: std::collections::BTreeSet<_> = csv
        .rows
        .iter()
        .map(|r| r["respondent_id"].clone())
        .collect();
    assert_eq!(ids.len(), 9, "one pseudonym per respondent");
    assert!(!csv.headers.iter().any(|h| h == "comment" || h == "remark"));
    // The category of each representative (the first of each unit is a deputy).
    assert!(
        csv.rows
            .iter()
            .all(|r| ["人大代表", "服务对象"].contains(&r["category"].as_str()))
    );
}

#[test]
fn summary_exports_agree_with_the_hand_figures() {
    let sp = setup();
    // Distributions: 5 units × 5 dimensions × 4 levels, percent of completes.
    let d = read_csv(&export(&sp, "distributions", "dist.csv", &[]));
    assert_eq!(
        d.headers,
        [
            "unit",
            "unit_code",
            "dimension",
            "dimension_label",
            "level_number",
            "level",
            "level_label",
            "count",
            "completes",
            "percent"
        ]
    );
    assert_eq!(d.rows.len(), 100);
    let cell = |unit: &str, dim: &str, level: &str| {
        d.rows
            .iter()
            .find(|r| r["unit"] == unit && r["dimension"] == dim && r["level"] == level)
            .unwrap()
            .clone()
    };
    let a = cell(UNITS[0], "duties", "satisfied");
    assert_eq!((a["count"].as_str(), a["completes"].as_str()), ("2", "3"));
    assert!((num(&a["percent"]) - 200.0 / 3.0).abs() < 1e-9);
    let none = cell(UNITS[3], "duties", "satisfied");
    assert_eq!(
        (none["count"].as_str(), none["percent"].as_str()),
        ("0", ""),
        "no completes: no percent"
    );

    // Scores: one row per unit, flattened.
    let s = read_csv(&export(&sp, "scores", "scores.csv", &[]));
    assert_eq!(s.rows.len(), 5);
    for key in [
        "phone_mean",
        "phone_ci95_low",
        "onsite_points",
        "social_points",
        "rank",
        "rank_ci95_high",
        "p_bottom",
        "flags",
        "duties_satisfaction_rate_ci95_low",
    ] {
        assert!(s.headers.iter().any(|h| h == key), "{key}");
    }
    let a = &s.rows[0];
    assert_eq!(a["unit"], UNITS[0]);
    let mean = (100.0 + 80.0 + 68.0) / 3.0;
    assert!((num(&a["phone_mean"]) - mean).abs() < 1e-9);
    assert!((num(&a["social_points"]) - (mean / 10.0 + 260.0 / 30.0)).abs() < 1e-9);
    assert_eq!(
        (
            a["rank"].as_str(),
            a["onsite_kind"].as_str(),
            a["flags"].as_str()
        ),
        ("2", "ballots", "")
    );
    let c = &s.rows[2];
    assert_eq!(
        (
            c["phone_sd"].as_str(),
            c["cronbach_alpha"].as_str(),
            c["rank"].as_str()
        ),
        ("0", "", "")
    );
    assert_eq!(c["flags"], "onsite_missing;low_response");
    assert_eq!(s.rows[1]["onsite_kind"], "direct");

    // Dispositions: counts per AAPOR category and the rates.
    let p = read_csv(&export(&sp, "dispositions", "disp.csv", &[]));
    assert_eq!(
        &p.headers[5..13],
        ["n_I", "n_P", "n_R", "n_NC", "n_O", "n_UH", "n_UO", "n_NE"],
        "`NE` alone is an SPSS reserved word"
    );
    let a = &p.rows[0];
    assert_eq!(
        (
            a["n_I"].as_str(),
            a["n_R"].as_str(),
            a["n_UH"].as_str(),
            a["panel"].as_str()
        ),
        ("3", "1", "1", "5")
    );
    assert_eq!(
        (num(&a["rr1"]), num(&a["coop1"]), num(&a["con1"])),
        (0.6, 0.75, 0.8)
    );
    assert_eq!(p.rows[3]["rr1"], "0");

    // Attempts: every call, anonymised, with its timing.
    let t = read_csv(&export(&sp, "attempts", "attempts.csv", &[]));
    assert_eq!(t.rows.len(), 25);
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for r in &t.rows {
        *outcomes.entry(r["outcome"].clone()).or_default() += 1;
        assert_eq!(r["source"], "web");
        assert!(!r["claimed_at"].is_empty() && r["recorded_at"] >= r["claimed_at"]);
    }
    assert_eq!(outcomes["complete"], 9);
    assert_eq!(outcomes["no_answer"], 9);
    assert_eq!(outcomes["refused"], 4);
    let wrong = t
        .rows
        .iter()
        .find(|r| r["outcome"] == "wrong_number")
        .unwrap();
    assert_eq!(
        (
            wrong["aapor_code"].as_str(),
            wrong["aapor_category"].as_str()
        ),
        ("3.90", "UO")
    );
    assert_eq!(num(&wrong["duration_secs"]), 30.0);
}

#[test]
fn xlsx_exports_read_back_with_the_same_columns() {
    let sp = setup();
    for kind in KINDS {
        let csv = read_csv(&export(&sp, kind, &format!("{kind}.csv"), &[]));
        let path = export(&sp, kind, &format!("{kind}.xlsx"), &[]);
        let mut wb: Xlsx<_> = open_workbook(&path).unwrap();
        assert_eq!(wb.sheet_names(), [kind.to_string()]);
        let range = wb.worksheet_range(kind).unwrap();
        let mut rows = range.rows();
        let headers: Vec<String> = rows.next().unwrap().iter().map(|c| c.to_string()).collect();
        assert_eq!(headers, csv.headers, "{kind}");
        assert_eq!(range.height() - 1, csv.rows.len(), "{kind}");
        if kind == "scores" {
            let first = range.rows().nth(1).unwrap();
            let col = headers.iter().position(|h| h == "phone_mean").unwrap();
            match &first[col] {
                Data::Float(v) => assert!((v - (100.0 + 80.0 + 68.0) / 3.0).abs() < 1e-9),
                other => panic!("phone_mean is {other:?}"),
            }
        }
    }
    // --format overrides the extension.
    let out = export(&sp, "scores", "scores.dat", &["--format", "xlsx"]);
    assert!(std::fs::read(out).unwrap().starts_with(b"PK"));
}

#[test]
fn no_bom_when_asked() {
    let sp = setup();
    let out = export(&sp, "scores", "plain.csv", &["--no-bom"]);
    let bytes = std::fs::read(out).unwrap();
    assert!(bytes.starts_with(b"unit,"));
}

/// Every export of the fixture round, in every format and with comments, as text.
fn all_exports_as_text(sp: &Sheping) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for kind in KINDS {
        for (file, extra) in [
            (format!("{kind}.csv"), vec![]),
            (format!("{kind}-c.csv"), vec!["--with-comments"]),
            (format!("{kind}-nobom.csv"), vec!["--no-bom"]),
        ] {
            let path = export(sp, kind, &file, &extra);
            out.push((
                file,
                String::from_utf8(std::fs::read(&path).unwrap()).unwrap(),
            ));
        }
        let path = export(sp, kind, &format!("{kind}.xlsx"), &["--with-comments"]);
        let mut wb: Xlsx<_> = open_workbook(&path).unwrap();
        let range = wb.worksheet_range(kind).unwrap();
        let text: String = range
            .rows()
            .map(|r| {
                r.iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join("\t")
                    + "\n"
            })
            .collect();
        out.push((format!("{kind}.xlsx"), text));
    }
    let sps = export(sp, "spss", "responses.sps", &["--with-comments"]);
    out.push((
        "responses.sps".into(),
        std::fs::read_to_string(sps).unwrap(),
    ));
    out.push((
        "codebook.sps".into(),
        std::fs::read_to_string(sp.path("codebook.sps")).unwrap(),
    ));
    out
}

#[test]
fn no_export_contains_a_name_or_a_phone_number() {
    let sp = setup();
    let personal = build_personal(&sp);
    let files = all_exports_as_text(&sp);
    assert!(files.len() >= 20);
    for (file, text) in &files {
        for (name, phone) in &personal {
            assert!(
                !text.contains(name.as_str()),
                "{file} contains the name {name}"
            );
            assert!(
                !text.contains(phone.as_str()),
                "{file} contains the phone {phone}"
            );
            // Nor the number's distinctive part, however written.
            assert!(
                !text.contains(&phone[3..]),
                "{file} contains part of {phone}"
            );
        }
    }
    // The comment made it into the exports asked for with comments, masked.
    let with: Vec<_> = files
        .iter()
        .filter(|(f, t)| f.contains("-c.csv") && t.contains("COMMENT_MARKER"))
        .collect();
    assert_eq!(with.len(), 2, "responses and attempts");
    for (f, t) in &with {
        let line = t.lines().find(|l| l.contains("COMMENT_MARKER")).unwrap();
        assert!(
            line.contains("[姓名]") && line.contains("[号码]"),
            "{f}: {line}"
        );
    }
    assert!(
        !files.iter().any(|(f, t)| !f.contains("-c.")
            && !f.ends_with(".xlsx")
            && t.contains("COMMENT_MARKER"))
    );
}

/// Names and phones as stored (read straight from the database).
fn build_personal(sp: &Sheping) -> Vec<(String, String)> {
    let conn = sp.sql();
    let mut stmt = conn.prepare("SELECT name, phone FROM members").unwrap();
    let v: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(v.len(), 25);
    v
}

#[test]
fn codebook_and_spss_syntax_describe_the_responses_file() {
    let sp = setup();
    let cb = read_csv(&export(&sp, "codebook", "codebook.csv", &[]));
    assert_eq!(cb.headers, ["file", "variable", "label", "type", "values"]);
    let responses = read_csv(&export(&sp, "responses", "responses.csv", &[]));
    let described: Vec<&str> = cb
        .rows
        .iter()
        .filter(|r| r["file"] == "responses")
        .map(|r| r["variable"].as_str())
        .collect();
    assert_eq!(
        described,
        responses
            .headers
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    let level = cb
        .rows
        .iter()
        .find(|r| r["variable"] == "duties_level")
        .unwrap();
    assert_eq!(level["values"], "1=满意; 2=比较满意; 3=基本满意; 4=不满意");
    for kind in ["distributions", "scores", "dispositions", "attempts"] {
        assert!(cb.rows.iter().any(|r| r["file"] == kind), "{kind}");
    }

    let sps = std::fs::read_to_string(sp.path("codebook.sps")).unwrap();
    assert!(
        sps.contains("GET DATA")
            && sps.contains("/FILE='responses.csv'")
            && sps.contains("/ENCODING='UTF8'")
    );
    assert!(sps.contains("/FIRSTCASE=2"));
    for h in &responses.headers {
        assert!(sps.contains(&format!("    {h} ")), "{h} declared");
    }
    assert!(sps.contains("VARIABLE LABELS") && sps.contains("VALUE LABELS"));
    assert!(
        sps.contains("duties_level efficiency_level service_level conduct_level reputation_level")
    );
    assert!(sps.contains("    1 '满意'") && sps.contains("    4 '不满意'"));
    assert!(sps.contains("(ORDINAL)") && sps.contains("(SCALE)"));

    // When GNU PSPP is installed, run the syntax on the export for real.
    if std::process::Command::new("pspp")
        .arg("--version")
        .output()
        .is_ok()
    {
        let run = sp.path("check.sps");
        std::fs::write(
            &run,
            format!("{sps}\nDESCRIPTIVES VARIABLES=respondent_score duration_secs.\nFREQUENCIES VARIABLES=duties_level.\n"),
        )
        .unwrap();
        let out = std::process::Command::new("pspp")
            .arg("-O")
            .arg("format=txt")
            .arg("-o")
            .arg(sp.path("out.txt"))
            .arg(&run)
            .current_dir(sp.dir.path())
            .output()
            .unwrap();
        let report = std::fs::read_to_string(sp.path("out.txt")).unwrap_or_default();
        assert!(
            out.status.success(),
            "pspp failed: {}\n{report}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !report.contains("Error") && !report.contains("error:"),
            "{report}"
        );
        // 9 valid cases; mean of the respondent scores (100+80+68 + 96 + 80+80 + 100+80+68)/9.
        let mean = (100.0 + 80.0 + 68.0 + 96.0 + 80.0 + 80.0 + 100.0 + 80.0 + 68.0) / 9.0;
        assert!(report.contains(&format!("{mean:.2}")), "{report}");
        assert!(report.contains("满意"), "value labels shown: {report}");
    } else {
        eprintln!("pspp not installed: the SPSS syntax was checked structurally only");
    }
}

#[test]
fn every_export_is_logged() {
    let sp = setup();
    export(&sp, "responses", "r.csv", &["--with-comments"]);
    export(&sp, "scores", "s.xlsx", &[]);
    let conn = sp.sql();
    let mut stmt = conn
        .prepare("SELECT action, detail FROM audit_log WHERE action LIKE 'export.%' ORDER BY id")
        .unwrap();
    let rows: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].0, "export.responses");
    let d: serde_json::Value = serde_json::from_str(&rows[0].1).unwrap();
    assert_eq!(
        (
            d["rows"].as_u64(),
            d["with_comments"].as_bool(),
            d["format"].as_str()
        ),
        (Some(9), Some(true), Some("csv"))
    );
    assert_eq!(rows[1].0, "export.scores");
    assert!(rows[1].1.contains("xlsx"));
    let out = sp.run(&["audit", "verify"]);
    assert!(out.status.success());
}

#[test]
fn unknown_kinds_and_formats_are_refused() {
    let sp = setup();
    let out = sp.run(&[
        "export",
        "names",
        "--round",
        "2022",
        "--out",
        sp.path("x.csv").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("responses"));
    let out = sp.run(&[
        "export",
        "scores",
        "--round",
        "2022",
        "--out",
        sp.path("x.csv").to_str().unwrap(),
        "--format",
        "pdf",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!sp.path("x.csv").exists());
}

#[test]
fn every_export_column_is_documented() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/results.md")).unwrap();
    let survey =
        sheping::domain::survey::Survey::from_toml_str(include_str!("../../surveys/default.toml"))
            .unwrap();
    for kind in sheping::exports::ExportKind::all() {
        for v in sheping::exports::variables(*kind, &survey, true) {
            let generic = survey
                .dimensions
                .iter()
                .find_map(|d| v.name.strip_prefix(&format!("{}_", d.key)))
                .map(|rest| format!("`{{dimension}}_{rest}`"));
            let needle = generic.unwrap_or_else(|| format!("`{}`", v.name));
            assert!(
                doc.contains(&needle),
                "docs/results.md does not document {needle} ({kind:?})"
            );
        }
    }
}

/// Runs SPSS syntax in GNU PSPP (in the fixture's folder); `None` when PSPP is not installed.
fn run_pspp(sp: &Sheping, syntax: &Path) -> Option<(bool, String)> {
    std::process::Command::new("pspp")
        .arg("--version")
        .output()
        .ok()?;
    let report = sp.path("pspp-out.txt");
    let _ = std::fs::remove_file(&report);
    let out = std::process::Command::new("pspp")
        .arg("-O")
        .arg("format=txt")
        .arg("-o")
        .arg(&report)
        .arg(syntax)
        .current_dir(sp.dir.path())
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&report).unwrap_or_default();
    Some((
        out.status.success(),
        format!("{text}\n{}", String::from_utf8_lossy(&out.stderr)),
    ))
}

/// Every line of SPSS syntax is a comment, a command of ours or part of one: none begins with
/// the commands the hostile text carries.
fn assert_no_injected_command(sps: &str) {
    for line in sps.lines() {
        let t = line.trim_start();
        assert!(
            !t.to_ascii_uppercase().starts_with("ERASE")
                && !t.to_ascii_uppercase().starts_with("HOST"),
            "injected command on its own line: {line:?}\n{sps}"
        );
    }
    assert!(!sps.contains('\r') && !sps.contains('\t'), "{sps:?}");
}

/// A round title, survey labels and the responses file name full of line breaks, quotes and
/// SPSS commands (as an old database or an uploaded survey may hold them) stay inside the
/// comments and quoted strings of the SPSS syntax: PSPP runs it, shows the labels verbatim
/// (line breaks as spaces) and runs none of the commands.
#[test]
fn spss_syntax_keeps_hostile_text_inside_comments_and_strings() {
    use sheping::domain::survey::Survey;
    let sp = setup();
    let canaries = [
        "canary-title.txt",
        "canary-label.txt",
        "canary-value.txt",
        "canary-file.txt",
    ];
    for c in canaries {
        std::fs::write(sp.path(c), "still here").unwrap();
    }
    {
        let conn = sp.sql();
        conn.execute(
            "UPDATE rounds SET title = ?1 WHERE key = '2022'",
            ["2022年度.\nERASE FILE='canary-title.txt'.\r\nHOST COMMAND=['touch hosted'].\n* ("],
        )
        .unwrap();
        let toml: String = conn
            .query_row(
                "SELECT survey_toml FROM rounds WHERE key = '2022'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let mut survey = Survey::from_toml_str(&toml).unwrap();
        survey.dimensions[1].label = "办事'效率'.\nERASE FILE='canary-label.txt'.\n".into();
        // Long enough to be split into pieces joined by `+`.
        survey.dimensions[2].label = format!("服务质量{}", "'优'".repeat(20));
        survey.levels[0].label = "满意'\nERASE FILE='canary-value.txt'.\n'".into();
        conn.execute(
            "UPDATE rounds SET survey_toml = ?1 WHERE key = '2022'",
            [survey.to_toml_string()],
        )
        .unwrap();
    }
    let data = "it's data.csv";
    export(&sp, "responses", data, &[]);
    let sps_path = export(&sp, "spss", "hostile.sps", &["--responses-file", data]);
    let sps = std::fs::read_to_string(&sps_path).unwrap();
    assert_no_injected_command(&sps);
    assert!(sps.contains("/FILE='it''s data.csv'"), "{sps}");
    assert!(
        sps.contains(
            "efficiency_level '办事''效率''. ERASE FILE=''canary-label.txt''. :等级序号(1=最好)'"
        ),
        "{sps}"
    );
    assert!(sps.contains("\n    + '"), "long labels are split: {sps}");
    for line in sps.lines() {
        assert!(line.len() <= 256, "line of {} bytes: {line}", line.len());
    }

    // A file name with line breaks cannot break out either (PSPP then finds no such file).
    let newline_file = "r.csv'\nERASE FILE='canary-file.txt'.\n";
    let sps2_path = export(
        &sp,
        "spss",
        "newline.sps",
        &["--responses-file", newline_file],
    );
    let sps2 = std::fs::read_to_string(&sps2_path).unwrap();
    assert_no_injected_command(&sps2);

    let Some((ok, report)) = run_pspp(&sp, &sps_path) else {
        eprintln!("pspp not installed: the SPSS syntax was checked structurally only");
        return;
    };
    assert!(ok && !report.contains("error:"), "pspp failed:\n{report}");
    let _ = run_pspp(&sp, &sps2_path);
    for c in canaries {
        assert!(sp.path(c).exists(), "the syntax erased {c}");
    }
    assert!(
        !sp.path("hosted").exists(),
        "the syntax ran a shell command"
    );
    // The labels arrive whole: quotes undoubled, the long one joined again.
    let check = sp.write(
        "labels.sps",
        format!("{sps}\nDISPLAY LABELS.\nFREQUENCIES VARIABLES=duties_level.\n").as_bytes(),
    );
    let (ok, report) = run_pspp(&sp, &check).unwrap();
    assert!(ok, "{report}");
    assert!(
        report.contains("办事'效率'. ERASE FILE='canary-label.txt'."),
        "{report}"
    );
    assert!(report.contains("满意' ERASE"), "{report}");
}

/// Text cells a spreadsheet would run as formulas (a unit named `=HYPERLINK(…)`, a sector
/// `+cmd|…`, a code `@SUM(…)`, survey labels) come out of CSV and xlsx exports with a leading
/// `'`; the numeric columns are exactly what they were.
#[test]
fn exports_defuse_formulas_in_text_and_keep_numbers() {
    let sp = setup();
    let before = read_csv(&export(&sp, "scores", "before.csv", &[]));
    {
        let conn = sp.sql();
        conn.execute(
            "UPDATE units SET name = '=HYPERLINK(\"http://x\",\"点此\")', sector = '+cmd|'' /C calc''!A0', code = '@SUM(A1)' WHERE code = 'U0'",
            [],
        )
        .unwrap();
        conn.execute("UPDATE units SET sector = '-1+1' WHERE code = 'U1'", [])
            .unwrap();
    }
    let after = read_csv(&export(&sp, "scores", "after.csv", &[]));
    let row = after
        .rows
        .iter()
        .find(|r| r["unit_code"] == "'@SUM(A1)")
        .expect("code defused");
    assert_eq!(row["unit"], "'=HYPERLINK(\"http://x\",\"点此\")");
    assert_eq!(row["sector"], "'+cmd|' /C calc'!A0");
    assert!(after.rows.iter().any(|r| r["sector"] == "'-1+1"));
    // Every number column is unchanged.
    assert_eq!(before.headers, after.headers);
    for (b, a) in before.rows.iter().zip(&after.rows) {
        for h in &before.headers {
            if ["unit", "unit_code", "sector"].contains(&h.as_str()) {
                continue;
            }
            assert_eq!(b[h], a[h], "{h}");
        }
    }
    // xlsx: the same guard on text cells.
    let path = export(&sp, "responses", "after.xlsx", &[]);
    let mut wb: Xlsx<_> = open_workbook(&path).unwrap();
    let range = wb.worksheet_range("responses").unwrap();
    let cells: Vec<String> = range
        .rows()
        .flat_map(|r| r.iter().map(|c| c.to_string()))
        .collect();
    assert!(
        cells
            .iter()
            .any(|c| c == "'=HYPERLINK(\"http://x\",\"点此\")")
    );
    assert!(
        !cells
            .iter()
            .any(|c| c.starts_with('=') || c.starts_with('@'))
    );
}
