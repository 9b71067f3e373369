//! Hostile evidence files with a fixed budget: the importer never panics, a refused file
//! stores nothing, an accepted one stores exactly the rows it reports (all of the round's
//! evidence when --replace), and the results are computed whatever was stored.

use crate::common::fuzz;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

use sheping::domain::survey::Survey;
use sheping::domain::unit::{NewUnit, UnitKind};
use sheping::imports::{self, EvidenceImport};
use sheping::storage::NewRound;
use sheping::tabular::{ReadOptions, read_table_bytes};

const TOKENS: &[&str] = &[
    ",",
    ",",
    "\n",
    "\t",
    "\"",
    " ",
    "汉滨区教育体育局",
    "汉滨区公路管理段",
    "U1",
    "U9",
    "complaint",
    "petition",
    "discipline",
    "12345投诉",
    "信访",
    "违纪违法案件",
    "表扬",
    "0",
    "1",
    "12",
    "-3",
    "1.5",
    "1,000",
    "99999999999999999999999",
    "NaN",
    "",
    "汉审函〔2022〕31号",
    "０",
    "７",
];

fn config() -> Config {
    Config {
        cases: 64,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        rng_seed: fuzz::seed(),
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn evidence_import_never_panics_and_stores_exactly_what_it_accepts(
        header in prop::sample::select(&[
            "参评单位,类别,数量,业务量,来源,备注\n", "unit,kind,count\n", "单位,类别,数量,数量\n", "",
        ][..]),
        body in prop::collection::vec(prop::sample::select(TOKENS), 0..80).prop_map(|t| t.concat()),
        ext in prop::sample::select(&["csv", "tsv", "xlsx"][..]),
        replace in any::<bool>(),
        seeded in any::<bool>(),
    ) {
        let sp = crate::common::Sheping::new();
        let store = sp.store();
        let store = store.as_ref();
        let survey = Survey::from_toml_str(include_str!("../../surveys/default.toml")).unwrap();
        let round = store
            .create_round(&NewRound { key: "2022".into(), title: "t".into(), survey, survey_source: "d".into(), field: None }, "t")
            .unwrap();
        let units: Vec<NewUnit> = ["汉滨区教育体育局", "汉滨区公路管理段"].iter().enumerate().map(|(i, n)| NewUnit {
            name: n.to_string(), kind: UnitKind::Organ, sector: String::new(), code: Some(format!("U{i}")), line: i + 2,
        }).collect();
        store.add_units(&round, &units, "t").unwrap();
        let count = || sp.count("SELECT COUNT(*) FROM evidence");
        if seeded {
            let seed = read_table_bytes("unit,kind,count\n汉滨区教育体育局,complaint,3\n".as_bytes(), "s.csv", &ReadOptions::default()).unwrap();
            let r = imports::evidence_import(store, &round, &seed, &EvidenceImport::default(), "t").unwrap();
            prop_assert!(r.applied);
        }
        let before = count();
        let bytes = format!("{header}{body}").into_bytes();
        let Ok(table) = read_table_bytes(&bytes, &format!("f.{ext}"), &ReadOptions::default()) else { return Ok(()); };
        match imports::evidence_import(store, &round, &table, &EvidenceImport { replace }, "fuzz") {
            Ok(r) if r.applied => {
                prop_assert!(r.rejected.is_empty());
                let expected = if replace { r.imported as i64 } else { before + r.imported as i64 };
                prop_assert_eq!(count(), expected);
            }
            _ => prop_assert_eq!(count(), before, "refused: nothing stored"),
        }
        let doc = sheping::results::compute(store, &round, &sheping::results::ResultsOptions { replicates: Some(0), ..Default::default() }, chrono::Utc::now(), "t");
        prop_assert!(doc.is_ok());
    }
}
