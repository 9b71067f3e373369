//! Hostile input for every importer, with a fixed budget: no panic, and an import that is
//! refused stores nothing. The on-site importer is checked more closely: an accepted import
//! stores exactly the rows it accepted (and replaces only what it was asked to).

use crate::common::fuzz;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

use sheping::domain::survey::Survey;
use sheping::domain::unit::{NewUnit, UnitKind};
use sheping::imports::{self, OnsiteImport, RosterImport};
use sheping::storage::Store;
use sheping::storage::{NewRound, NewUser, RoundRecord};
use sheping::tabular::{ReadOptions, Table, read_table_bytes};

const TOKENS: &[&str] = &[
    "参评单位",
    "单位名称",
    "姓名",
    "联系电话",
    "代表类别",
    "unit",
    "phone",
    "operator",
    "outcome",
    "at",
    "满意",
    "不满意",
    "complete",
    "no_answer",
    "汉滨区教育体育局",
    "汉滨区公路管理段",
    "13912345678",
    "139 1234 5679",
    "+86 138-0000-1111",
    "0915-3212345转801",
    "1.39E+10",
    "3212345",
    "",
    " ",
    ",",
    ",",
    "\t",
    "\"",
    "\"\"",
    "\n",
    "\r\n",
    "\r",
    "=cmd|' /C calc'!A0",
    "２０２２-11-02 10:00",
    "2022-11-02 10:00",
    "人大代表",
    "\u{feff}",
    "\u{0}",
    "🙂",
    "𠀀",
    "1",
    "4",
    "9",
    "-1",
    "NaN",
    "op1",
];

fn table_text() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..80).prop_map(|t| t.concat())
}

/// A round on the run's backend (see `common::on_postgres`).
struct Db {
    store: std::sync::Arc<dyn Store>,
    round: RoundRecord,
    // Last: the database outlives the store's connections.
    sp: crate::common::Sheping,
}

fn db() -> Db {
    let sp = crate::common::Sheping::new();
    let store = sp.store();
    let survey = Survey::from_toml_str(include_str!("../../surveys/default.toml")).unwrap();
    let round = store
        .create_round(
            &NewRound {
                key: "2022".into(),
                title: "t".into(),
                survey,
                survey_source: "d".into(),
                field: None,
            },
            "t",
        )
        .unwrap();
    let units = ["汉滨区教育体育局", "汉滨区公路管理段"]
        .iter()
        .enumerate()
        .map(|(i, n)| NewUnit {
            name: n.to_string(),
            kind: UnitKind::Organ,
            sector: String::new(),
            code: None,
            line: i + 2,
        })
        .collect::<Vec<_>>();
    store.add_units(&round, &units, "t").unwrap();
    store
        .add_user(
            &NewUser {
                login: "op1".into(),
                name: "话务员".into(),
                role: sheping::domain::user::Role::Operator,
                password_hash: "x".into(),
            },
            "t",
        )
        .unwrap();
    Db { store, round, sp }
}

fn count(d: &Db, table: &str) -> i64 {
    d.sp.count(&format!("SELECT COUNT(*) FROM {table}"))
}

fn config() -> Config {
    Config {
        cases: 48,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        rng_seed: fuzz::seed(),
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn roster_units_and_attempts_imports_never_panic_and_refusals_store_nothing(
        header in prop::sample::select(&[
            "参评单位,姓名,联系电话,代表类别\n", "单位名称,单位类型,系统\n",
            "unit,phone,operator,outcome,at,duties,efficiency,service,conduct,reputation,comment\n", "",
        ][..]),
        body in table_text(),
        ext in prop::sample::select(&["csv", "tsv", "txt", "xlsx"][..]),
        skip in any::<bool>(),
    ) {
        let d = db();
        let bytes = format!("{header}{body}").into_bytes();
        let Ok(table) = read_table_bytes(&bytes, &format!("f.{ext}"), &ReadOptions::default()) else { return Ok(()); };
        let (m0, u0, a0) = (count(&d, "members"), count(&d, "units"), count(&d, "attempts"));
        // Applied: exactly the reported rows were added; refused: nothing was.
        let expect = |before: i64, r: &imports::ImportReport| before + if r.applied { r.imported as i64 } else { 0 };
        if let Ok(r) = imports::roster_import(d.store.as_ref(), &d.round, &table, &RosterImport { area_code: Some("0915"), skip_invalid: skip, replace: false }, "fuzz") {
            prop_assert_eq!(count(&d, "members"), expect(m0, &r));
        }
        if let Ok(r) = imports::units_import(d.store.as_ref(), &d.round, &table, skip, "fuzz") {
            prop_assert_eq!(count(&d, "units"), expect(u0, &r));
        }
        if let Ok(r) = imports::attempts_import(d.store.as_ref(), &d.round, &table, skip, "fuzz", chrono::Utc::now()) {
            prop_assert_eq!(count(&d, "attempts"), expect(a0, &r));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_readers(bytes in prop::collection::vec(any::<u8>(), 0..2048), ext in prop::sample::select(&["csv", "tsv", "txt", "xlsx"][..])) {
        let _ = read_table_bytes(&bytes, &format!("f.{ext}"), &ReadOptions::default());
    }

    #[test]
    fn mutated_survey_definitions_never_panic(cut in 0usize..4000, insert in prop::sample::select(TOKENS), pos in 0usize..4000) {
        let text = include_str!("../../surveys/default.toml");
        let mut chars: Vec<char> = text.chars().collect();
        let cut = cut.min(chars.len());
        chars.truncate(chars.len() - cut / 4);
        let pos = pos.min(chars.len());
        let mut s: String = chars[..pos].iter().collect();
        s.push_str(insert);
        s.extend(&chars[pos..]);
        let _ = Survey::from_toml_str(&s);
    }
}

#[test]
fn oversized_uploads_and_cells_are_refused_with_a_clear_message() {
    let opts = ReadOptions {
        max_bytes: 1024,
        ..ReadOptions::default()
    };
    let big = vec![b'a'; 4096];
    let err = read_table_bytes(&big, "big.csv", &opts)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("1") && (err.contains("大") || err.contains("超过")),
        "{err}"
    );
    let cell = format!("参评单位,姓名\n{},x\n", "长".repeat(5000));
    let err = read_table_bytes(cell.as_bytes(), "cell.csv", &ReadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("第 2 行") || err.contains("2"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// On-site evaluation (现场评价): ballots and direct scores.

const EDU: &str = "汉滨区教育体育局";
const ROAD: &str = "汉滨区公路管理段";

/// Header lines the on-site importer accepts (by key, label or alias), and some it must refuse.
const ONSITE_HEADERS: &[&str] = &[
    "参评单位,选票编号,职能职责履行,办事效率,服务质量,作风形象,社会反响,总体评价",
    "unit,ballot,duties,efficiency,service,conduct,reputation",
    "unit,ballot,duties,efficiency,service,conduct,reputation,overall,备注",
    "unit,ballot,overall",
    "单位名称,票号,总体满意度",
    "单位,编号,综合评价",
    "参评单位,现场评价得分",
    "unit,score",
    "\u{feff}单位名称,得分",
    "\"unit\",\"分数\",\"comment\"",
    // Refused: both shapes, some dimensions only, two unit columns, no unit, nothing to score.
    "unit,ballot,score",
    "unit,ballot,duties,efficiency",
    "unit,单位,ballot,overall",
    "ballot,overall",
    "unit,ballot",
    "unit,overall,overall",
    "",
];

/// Cells: unit names (right, near, padded), levels by key, label and number, scores, ballot
/// ids, and junk.
const ONSITE_CELLS: &[&str] = &[
    EDU,
    EDU,
    ROAD,
    ROAD,
    " 汉滨区教育体育局 ",
    "汉滨区公路管理段\u{200b}",
    "汉滨区教育局",
    "满意",
    "比较满意",
    "基本满意",
    "不满意",
    "很满意",
    "satisfied",
    "fairly_satisfied",
    "dissatisfied",
    "1",
    "2",
    "3",
    "4",
    "4.0",
    "0",
    "5",
    "-1",
    "１",
    "01",
    "100",
    "95.5",
    "０９５．５",
    "100.0001",
    "1e2",
    "1e309",
    "-0",
    "-0.0001",
    "NaN",
    "inf",
    "-inf",
    "0x10",
    "99999999999999999999999",
    "A-001",
    "A-002",
    "001",
    "=1+1",
    "'001",
    "../../etc/passwd",
    "𠀀",
    "🙂",
    "\"满意\"",
    "\"a,b\"",
    "\"",
    "",
    "",
    " ",
    "\u{3000}",
    "\u{0}",
    "\u{feff}",
    "unit",
    "ballot",
    "overall",
    "score",
];

/// Raw bytes spliced into the encoded file: invalid UTF-8, GBK double bytes, a UTF-16 BOM.
const JUNK_BYTES: &[&[u8]] = &[
    b"\xff",
    b"\x80",
    b"\xc3",
    b"\xb5\xa5",
    b"\xce\xbb",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    b"\x00",
    b"\r",
    b",",
];

#[derive(Debug, Clone, Copy)]
enum Enc {
    Utf8,
    Utf8Bom,
    Gbk,
    Utf16Le,
    Xlsx,
}

const UNIT_CELLS: &[&str] = &[
    EDU,
    EDU,
    ROAD,
    ROAD,
    " 汉滨区教育体育局 ",
    "汉滨区教育局",
    "",
];
/// Ballot ids (few, so that duplicates happen) and direct scores.
const ID_CELLS: &[&str] = &[
    "1",
    "2",
    "3",
    "A-001",
    "A-002",
    " 7 ",
    "88",
    "100",
    "0",
    "95.5",
    "０９５．５",
    "101",
    "-1",
    "NaN",
    "1e309",
    "",
];
const LEVEL_CELLS: &[&str] = &[
    "满意",
    "比较满意",
    "基本满意",
    "不满意",
    "satisfied",
    "dissatisfied",
    "1",
    "2",
    "3",
    "4",
    "4.0",
    "满意",
    "2",
    "5",
    "很满意",
    "",
];

fn cells(
    from: &'static [&'static str],
    n: impl Into<prop::collection::SizeRange>,
) -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(prop::sample::select(from).prop_map(str::to_string), n)
}

/// A row: mostly shaped like one of the accepted layouts (unit, ballot or score, then no
/// level, one, five, or five blank and one), with cells that are often but not always valid;
/// sometimes any cells at all.
fn onsite_row() -> impl Strategy<Value = Vec<String>> {
    let levels = prop_oneof![
        Just(Vec::new()),
        cells(LEVEL_CELLS, 1),
        cells(LEVEL_CELLS, 5),
        cells(LEVEL_CELLS, 5).prop_map(|mut v| {
            v.push(String::new());
            v
        }),
        cells(LEVEL_CELLS, 1).prop_map(|v| [vec![String::new(); 5], v].concat()),
    ];
    prop_oneof![
        4 => (cells(UNIT_CELLS, 1), cells(ID_CELLS, 1), levels)
            .prop_map(|(u, i, l)| [u, i, l].concat()),
        1 => cells(ONSITE_CELLS, 0..10),
    ]
}

/// A CSV-ish line: cells joined by a delimiter (sometimes the wrong one).
fn join_row(cells: &[String], delim: &str) -> String {
    cells.join(delim)
}

fn encode(text: &str, enc: Enc) -> Vec<u8> {
    match enc {
        Enc::Utf8 | Enc::Xlsx => text.as_bytes().to_vec(),
        Enc::Utf8Bom => [&b"\xef\xbb\xbf"[..], text.as_bytes()].concat(),
        Enc::Gbk => encoding_rs::GB18030.encode(text).0.into_owned(),
        Enc::Utf16Le => {
            let mut out = vec![0xff, 0xfe];
            out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
            out
        }
    }
}

/// A stored on-site row: a ballot or a direct score.
#[derive(Debug, Clone, PartialEq)]
struct OnsiteRow {
    unit: i64,
    /// The ballot's id, or `None` for a direct score.
    ballot: Option<String>,
    overall: bool,
    levels: Vec<usize>,
    score: Option<f64>,
    line: Option<i64>,
    at: i64,
    by: String,
}

fn onsite_rows(d: &Db) -> Vec<OnsiteRow> {
    let c = d.sp.sql();
    let mut out = Vec::new();
    let ballots = c
        .prepare(
            "SELECT unit_id, ballot, overall, levels, source_line, created_at, created_by
             FROM onsite_ballots ORDER BY id",
        )
        .unwrap()
        .query_map([], |r| {
            let levels: String = r.get(3)?;
            Ok(OnsiteRow {
                unit: r.get(0)?,
                ballot: Some(r.get(1)?),
                overall: r.get(2)?,
                levels: serde_json::from_str(&levels).expect("levels are JSON"),
                score: None,
                line: r.get(4)?,
                at: r.get(5)?,
                by: r.get(6)?,
            })
        })
        .unwrap();
    for r in ballots {
        out.push(r.unwrap());
    }
    let scores = c
        .prepare(
            "SELECT unit_id, score, source_line, created_at, created_by
             FROM onsite_scores ORDER BY unit_id",
        )
        .unwrap()
        .query_map([], |r| {
            Ok(OnsiteRow {
                unit: r.get(0)?,
                ballot: None,
                overall: false,
                levels: Vec::new(),
                score: Some(r.get(1)?),
                line: r.get(2)?,
                at: r.get(3)?,
                by: r.get(4)?,
            })
        })
        .unwrap();
    for r in scores {
        out.push(r.unwrap());
    }
    out
}

fn clean(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}' || c == '\u{200b}')
}

/// A score cell as the importer reads it (full-width digits and point allowed).
fn score_of(text: &str) -> Option<f64> {
    let t: String = clean(text)
        .chars()
        .map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - 0xFF10 + 0x30).unwrap(),
            '．' => '.',
            c => c,
        })
        .collect();
    t.parse().ok()
}

/// Stored on-site data before the fuzzed import: none, ballots for one unit, a direct score
/// for the other, or both; stored by the actor `seed`.
fn seed_onsite(d: &Db, which: u8) {
    let mut files = Vec::new();
    if which & 1 != 0 {
        files.push(format!(
            "unit,ballot,overall\n{EDU},A-001,满意\n{EDU},S-2,不满意\n"
        ));
    }
    if which & 2 != 0 {
        files.push(format!("unit,score\n{ROAD},88.5\n"));
    }
    for f in files {
        let t = read_table_bytes(f.as_bytes(), "seed.csv", &ReadOptions::default()).unwrap();
        let r = imports::onsite_import(
            d.store.as_ref(),
            &d.round,
            &t,
            &OnsiteImport::default(),
            "seed",
        )
        .unwrap();
        assert!(r.applied && r.rejected.is_empty(), "{:?}", r.rejected);
    }
}

/// What an on-site import must have done, given what was stored before and after.
fn check_onsite(
    d: &Db,
    table: &Table,
    opts: OnsiteImport,
    result: &Result<imports::ImportReport, imports::ImportError>,
    before: &[OnsiteRow],
    audit_before: i64,
    actor: &str,
) -> Result<(), TestCaseError> {
    let after = onsite_rows(d);
    // The store's own reader accepts whatever was stored (never ballots and a score for a unit).
    prop_assert!(d.store.onsite(d.round.id).is_ok());
    let r = match result {
        Ok(r) if r.applied => r,
        Ok(r) => {
            prop_assert!(!r.rejected.is_empty() && !opts.skip_invalid, "{r:?}");
            prop_assert_eq!(r.imported, 0);
            prop_assert_eq!(&after, before, "a refused import stored something");
            prop_assert_eq!(count(d, "audit_log"), audit_before);
            return Ok(());
        }
        Err(_) => {
            prop_assert_eq!(&after, before, "a failed import stored something");
            prop_assert_eq!(count(d, "audit_log"), audit_before);
            return Ok(());
        }
    };
    prop_assert!(r.rejected.is_empty() || opts.skip_invalid);
    let names: std::collections::BTreeMap<i64, String> = d
        .store
        .units(d.round.id)
        .unwrap()
        .into_iter()
        .map(|u| (u.id, u.name))
        .collect();
    let rejected: std::collections::BTreeSet<usize> = r.rejected.iter().map(|x| x.line).collect();
    prop_assert_eq!(rejected.len(), r.rejected.len(), "one rejection per row");
    let accepted: std::collections::BTreeSet<usize> = table
        .rows
        .iter()
        .map(|row| row.line)
        .filter(|l| !rejected.contains(l))
        .collect();
    let (new, kept): (Vec<&OnsiteRow>, Vec<&OnsiteRow>) = after.iter().partition(|x| x.by == actor);
    // Exactly the accepted rows were stored, once each.
    prop_assert_eq!(new.len(), r.imported);
    let lines: std::collections::BTreeSet<usize> = new
        .iter()
        .map(|x| x.line.expect("source line") as usize)
        .collect();
    prop_assert_eq!(lines.len(), new.len());
    prop_assert_eq!(&lines, &accepted);
    for x in &new {
        let line = x.line.unwrap() as usize;
        let row = table.rows.iter().find(|row| row.line == line).unwrap();
        let cells: Vec<&str> = row.cells.iter().map(|c| clean(c)).collect();
        prop_assert!(
            cells.contains(&names[&x.unit].as_str()),
            "line {line}: {x:?} from {cells:?}"
        );
        match (&x.ballot, x.score) {
            (Some(b), None) => {
                prop_assert!(!b.is_empty() && clean(b) == b.as_str());
                prop_assert!(
                    cells.contains(&b.as_str()),
                    "line {line}: ballot {b} from {cells:?}"
                );
                prop_assert_eq!(x.levels.len(), if x.overall { 1 } else { 5 });
                prop_assert!(x.levels.iter().all(|&l| l < 4), "{x:?}");
            }
            (None, Some(s)) => {
                prop_assert!(s.is_finite() && (0.0..=100.0).contains(&s), "{x:?}");
                prop_assert!(
                    row.cells.iter().any(|c| score_of(c) == Some(s)),
                    "line {line}: score {s} from {cells:?}"
                );
            }
            other => prop_assert!(false, "{other:?}"),
        }
    }
    // What was stored before stays, except the units replaced on request.
    let replaced: std::collections::BTreeSet<i64> = if opts.replace {
        new.iter().map(|x| x.unit).collect()
    } else {
        Default::default()
    };
    let expect_kept: Vec<&OnsiteRow> = before
        .iter()
        .filter(|x| !replaced.contains(&x.unit))
        .collect();
    prop_assert_eq!(kept, expect_kept);
    // A unit holds ballots or one direct score, never both; ballot ids are unique per unit.
    for unit in names.keys() {
        let ballots: Vec<&String> = after
            .iter()
            .filter(|x| x.unit == *unit)
            .filter_map(|x| x.ballot.as_ref())
            .collect();
        let scores = after
            .iter()
            .filter(|x| x.unit == *unit && x.score.is_some())
            .count();
        prop_assert!(ballots.is_empty() || scores == 0);
        let unique: std::collections::BTreeSet<&&String> = ballots.iter().collect();
        prop_assert_eq!(unique.len(), ballots.len());
    }
    prop_assert_eq!(count(d, "audit_log"), audit_before + 1);
    Ok(())
}

fn onsite_config() -> Config {
    Config {
        cases: 96,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        rng_seed: fuzz::seed(),
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(onsite_config())]

    /// Hostile on-site files: no panic; refused stores nothing; accepted stores exactly the
    /// accepted rows and keeps the rest.
    #[test]
    fn onsite_import_never_panics_and_stores_exactly_what_it_accepts(
        header in prop_oneof![
            3 => prop::sample::select(&ONSITE_HEADERS[..10]),
            1 => prop::sample::select(ONSITE_HEADERS),
        ],
        rows in prop::collection::vec(onsite_row(), 0..8),
        soup in prop::collection::vec(prop::sample::select(ONSITE_CELLS), 0..4),
        newline in prop::sample::select(&["\n", "\r\n", "\r"][..]),
        enc in prop::sample::select(&[Enc::Utf8, Enc::Utf8, Enc::Utf8Bom, Enc::Gbk, Enc::Utf16Le, Enc::Xlsx][..]),
        junk in prop::option::weighted(0.25, (any::<prop::sample::Index>(), prop::sample::select(JUNK_BYTES))),
        ext_delim in prop::sample::select(&[
            ("csv", ","), ("csv", ","), ("csv", ","), ("txt", ","), ("tsv", "\t"), ("txt", "\t"),
            ("csv", ";"), ("tsv", ","), ("xlsx", ","),
        ][..]),
        seeded in 0u8..4,
        skip in any::<bool>(),
        replace in any::<bool>(),
    ) {
        let (ext, delim) = ext_delim;
        let d = db();
        seed_onsite(&d, seeded);
        let bytes = if let Enc::Xlsx = enc {
            // A real workbook with the same cells.
            let path = d.sp.dir.path().join("onsite.xlsx");
            let headers: Vec<&str> = header.split(',').collect();
            if sheping::tabular::write_xlsx(&path, "现场评价", &headers, rows.clone()).is_err() {
                return Ok(());
            }
            std::fs::read(&path).unwrap()
        } else {
            let mut text = header.replace(',', delim);
            for r in &rows {
                text.push_str(newline);
                text.push_str(&join_row(r, delim));
            }
            text.push_str(&soup.concat());
            let mut bytes = encode(&text, enc);
            if let Some((at, j)) = &junk {
                let at = at.index(bytes.len() + 1);
                bytes.splice(at..at, j.iter().copied());
            }
            bytes
        };
        let name = if let Enc::Xlsx = enc { "onsite.xlsx".to_string() } else { format!("onsite.{ext}") };
        let Ok(table) = read_table_bytes(&bytes, &name, &ReadOptions::default()) else { return Ok(()); };
        let before = onsite_rows(&d);
        let audit_before = count(&d, "audit_log");
        let opts = OnsiteImport { skip_invalid: skip, replace };
        let result = imports::onsite_import(d.store.as_ref(), &d.round, &table, &opts, "fuzz");
        check_onsite(&d, &table, opts, &result, &before, audit_before, "fuzz")?;
    }
}

/// The same harness's checks on hand-made files whose outcome is known, so that the harness
/// itself is known to look at something.
#[test]
fn onsite_checks_see_accepted_and_refused_rows() {
    let d = db();
    seed_onsite(&d, 3);
    let before = onsite_rows(&d);
    let audit_before = count(&d, "audit_log");
    // A bad level, a duplicate ballot and a good one: refused as a whole…
    let csv = format!("unit,ballot,overall\n{EDU},B1,满意\n{EDU},B2,很满意\n{EDU},B1,满意\n");
    let t = read_table_bytes(csv.as_bytes(), "x.csv", &ReadOptions::default()).unwrap();
    let opts = OnsiteImport::default();
    let r = imports::onsite_import(d.store.as_ref(), &d.round, &t, &opts, "fuzz");
    assert!(!r.as_ref().unwrap().applied);
    check_onsite(&d, &t, opts, &r, &before, audit_before, "fuzz").unwrap();
    // …or, when skipping, exactly line 2 stored beside the seeded ballots.
    let opts = OnsiteImport {
        skip_invalid: true,
        replace: false,
    };
    let r = imports::onsite_import(d.store.as_ref(), &d.round, &t, &opts, "fuzz");
    assert_eq!(r.as_ref().unwrap().imported, 1);
    check_onsite(&d, &t, opts, &r, &before, audit_before, "fuzz").unwrap();
    let after = onsite_rows(&d);
    assert_eq!(after.len(), before.len() + 1);
    // Replacing the road's direct score with ballots drops the score and keeps EDU's ballots.
    let before = after;
    let audit_before = count(&d, "audit_log");
    let csv = format!("unit,ballot,overall\n{ROAD},R1,2\n");
    let t = read_table_bytes(csv.as_bytes(), "x.csv", &ReadOptions::default()).unwrap();
    let opts = OnsiteImport {
        skip_invalid: false,
        replace: true,
    };
    let r = imports::onsite_import(d.store.as_ref(), &d.round, &t, &opts, "again");
    check_onsite(&d, &t, opts, &r, &before, audit_before, "again").unwrap();
    let after = onsite_rows(&d);
    assert!(after.iter().all(|x| x.score.is_none()));
    assert_eq!(after.len(), before.len());
    // The harness would notice a stored row too many or a replaced unit kept.
    let mut wrong = before.clone();
    wrong.remove(0);
    assert!(check_onsite(&d, &t, opts, &r, &wrong, audit_before, "again").is_err());
}

#[test]
fn oversized_onsite_files_and_cells_are_refused_clearly_and_store_nothing() {
    let d = db();
    seed_onsite(&d, 1);
    let before = onsite_rows(&d);
    // A file above the reader's limit (sparse: the size is refused before anything is read).
    let big = d.sp.dir.path().join("ballots.csv");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(ReadOptions::default().max_bytes as u64 + 1)
        .unwrap();
    drop(f);
    let err = imports::read_file(&big, None).unwrap_err().to_string();
    assert!(
        err.contains("ballots.csv") && (err.contains("大") || err.contains("超过")),
        "{err}"
    );
    // A cell above the cell limit: the line is named.
    let csv = format!(
        "unit,ballot,overall\n{EDU},B1,满意\n{EDU},{},满意\n",
        "票".repeat(ReadOptions::default().max_cell_chars + 1)
    );
    let path = d.sp.dir.path().join("cell.csv");
    std::fs::write(&path, csv).unwrap();
    let err = imports::read_file(&path, None).unwrap_err().to_string();
    assert!(err.contains("第 3 行"), "{err}");
    // Huge numbers are refused as scores, not stored as infinity.
    let csv = format!("unit,score\n{ROAD},1e309\n");
    let t = read_table_bytes(csv.as_bytes(), "s.csv", &ReadOptions::default()).unwrap();
    let r = imports::onsite_import(
        d.store.as_ref(),
        &d.round,
        &t,
        &OnsiteImport::default(),
        "fuzz",
    )
    .unwrap();
    assert!(!r.applied);
    assert_eq!(r.rejected[0].field, "score");
    assert_eq!(onsite_rows(&d), before);
}
