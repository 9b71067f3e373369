//! Hostile input for every importer, with a fixed budget: no panic, and an import that is
//! refused stores nothing.

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

use sheping::domain::survey::Survey;
use sheping::domain::unit::{NewUnit, UnitKind};
use sheping::imports::{self, RosterImport};
use sheping::storage::sqlite::SqliteStore;
use sheping::storage::{CallStore, NewRound, NewUser, RoundRecord, Storage};
use sheping::tabular::{ReadOptions, read_table_bytes};

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

struct Db {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    round: RoundRecord,
}

fn db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("fuzz.db")).unwrap();
    let survey = Survey::from_toml_str(include_str!("../surveys/default.toml")).unwrap();
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
    Db {
        _dir: dir,
        store,
        round,
    }
}

fn count(store: &SqliteStore, table: &str) -> i64 {
    store
        .read(|c| Ok(c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?))
        .unwrap()
}

fn config() -> Config {
    Config {
        cases: 48,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
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
        let (m0, u0, a0) = (count(&d.store, "members"), count(&d.store, "units"), count(&d.store, "attempts"));
        // Applied: exactly the reported rows were added; refused: nothing was.
        let expect = |before: i64, r: &imports::ImportReport| before + if r.applied { r.imported as i64 } else { 0 };
        if let Ok(r) = imports::roster_import(&d.store, &d.round, &table, &RosterImport { area_code: Some("0915"), skip_invalid: skip, replace: false }, "fuzz") {
            prop_assert_eq!(count(&d.store, "members"), expect(m0, &r));
        }
        if let Ok(r) = imports::units_import(&d.store, &d.round, &table, skip, "fuzz") {
            prop_assert_eq!(count(&d.store, "units"), expect(u0, &r));
        }
        if let Ok(r) = imports::attempts_import(&d.store, &d.round, &table, skip, "fuzz", chrono::Utc::now()) {
            prop_assert_eq!(count(&d.store, "attempts"), expect(a0, &r));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_readers(bytes in prop::collection::vec(any::<u8>(), 0..2048), ext in prop::sample::select(&["csv", "tsv", "txt", "xlsx"][..])) {
        let _ = read_table_bytes(&bytes, &format!("f.{ext}"), &ReadOptions::default());
    }

    #[test]
    fn mutated_survey_definitions_never_panic(cut in 0usize..4000, insert in prop::sample::select(TOKENS), pos in 0usize..4000) {
        let text = include_str!("../surveys/default.toml");
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
