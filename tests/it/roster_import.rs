//! The contact database through the real binary: messy files in every encoding people send,
//! all-or-nothing imports, skipping with a rejects file, duplicates and replacement.

use crate::common;

use common::{Sheping, round_with_units};
use serde_json::Value;

fn stored_phones(sp: &Sheping) -> Vec<(String, String, Option<String>, String)> {
    let conn = sp.sql();
    let mut stmt = conn
        .prepare("SELECT m.name, m.phone, m.phone_alt, m.category FROM members m ORDER BY m.id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

const MESSY_ROWS: &str = "参评单位,姓名,联系电话,代表类别,工作单位及职务,备注,籍贯\r\n\
汉滨区教育体育局,张伟,139 1234 5678,区人大代表,某中学教师,,陕西\r\n\
汉滨区教育体育局,李娜,+86-138-0000-1111,,社区居民,,\r\n\
\r\n\
汉滨区教育体育局,王芳,（0915）3212345,政协委员,,,\r\n\
汉滨区住房和城乡建设局,刘强,１３７００００２２２２,党代表,,,\r\n\
汉滨区住房和城乡建设局,陈静,3212346,,,,\r\n\
汉滨区公路管理段,杨磊,0915-3212347转801,,,,\r\n\
汉滨区公路管理段,赵敏,13600003333/0915-3212348,,,,\r\n";

fn expected_messy() -> Vec<(String, String, Option<String>, String)> {
    let e = |n: &str, p: &str, alt: Option<&str>, c: &str| {
        (
            n.to_string(),
            p.to_string(),
            alt.map(str::to_string),
            c.to_string(),
        )
    };
    vec![
        e("张伟", "13912345678", None, "人大代表"),
        e("李娜", "13800001111", None, "服务对象"),
        e("王芳", "0915-3212345", None, "政协委员"),
        e("刘强", "13700002222", None, "党代表"),
        e("陈静", "0915-3212346", None, "服务对象"),
        e("杨磊", "0915-3212347-801", None, "服务对象"),
        e("赵敏", "13600003333", Some("0915-3212348"), "服务对象"),
    ]
}

#[test]
fn gbk_csv_with_crlf_and_messy_phones_imports_correctly() {
    let sp = Sheping::new();
    round_with_units(&sp);
    let (gbk, _, bad) = encoding_rs::GBK.encode(MESSY_ROWS);
    assert!(!bad);
    assert!(
        std::str::from_utf8(&gbk).is_err(),
        "fixture must really be GBK"
    );
    let file = sp.write("roster-gbk.csv", &gbk);
    let report = sp.json(&[
        "roster",
        "import",
        "--round",
        "2022",
        file.to_str().unwrap(),
        "--area-code",
        "0915",
        "--json",
    ]);
    assert_eq!(report["imported"], 7, "{report:#}");
    assert_eq!(report["rejected"], Value::Array(vec![]));
    assert_eq!(stored_phones(&sp), expected_messy());
    let warnings: Vec<&str> = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(
        warnings.iter().filter(|w| w.contains("籍贯")).count(),
        1,
        "unknown column reported once: {warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("汉滨区教育体育局") && w.contains("有 3 人,应为 45 人")),
        "{warnings:?}"
    );
    let units = report["units"].as_array().unwrap();
    let edu = units
        .iter()
        .find(|u| u["unit"] == "汉滨区教育体育局")
        .unwrap();
    assert_eq!(
        (
            edu["panel"].as_u64(),
            edu["target"].as_u64(),
            edu["two_deputies_one_member"].as_u64()
        ),
        (Some(3), Some(45), Some(2))
    );
    // The organisation column was kept; the unknown column was not stored anywhere.
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM members WHERE organization = '某中学教师'"),
        1
    );
    let dump: String = sp
        .sql()
        .prepare("SELECT COALESCE(note,'') || COALESCE(organization,'') FROM members")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
        .join(",");
    assert!(!dump.contains("陕西"));
}

#[test]
fn a_local_number_without_area_code_is_rejected_with_advice() {
    let sp = Sheping::new();
    round_with_units(&sp);
    let file = sp.write("roster.csv", MESSY_ROWS.as_bytes());
    let out = sp.run(&[
        "roster",
        "import",
        "--round",
        "2022",
        file.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rejected = report["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{report:#}");
    assert_eq!(rejected[0]["line"], 7);
    assert_eq!(rejected[0]["field"], "phone");
    assert!(
        rejected[0]["error"].as_str().unwrap().contains("area-code"),
        "{}",
        rejected[0]["error"]
    );
    assert_eq!(report["imported"], 0);
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM members"),
        0,
        "all or nothing"
    );
}

#[test]
fn utf16_tab_separated_text_imports_correctly() {
    let sp = Sheping::new();
    round_with_units(&sp);
    let text = MESSY_ROWS.replace(',', "\t");
    let mut bytes = vec![0xFF, 0xFE];
    for unit in text.encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    let file = sp.write("roster-unicode.txt", &bytes);
    let report = sp.json(&[
        "roster",
        "import",
        "--round",
        "2022",
        file.to_str().unwrap(),
        "--area-code",
        "0915",
        "--json",
    ]);
    assert_eq!(report["imported"], 7, "{report:#}");
    assert_eq!(stored_phones(&sp), expected_messy());
}

#[test]
fn xlsx_with_numeric_phone_cells_imports_correctly() {
    let sp = Sheping::new();
    round_with_units(&sp);
    let path = sp.path("roster.xlsx");
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in ["参评单位", "姓名", "手机号码", "身份"].iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    sheet.write_string(1, 0, "汉滨区公路管理段").unwrap();
    sheet.write_string(1, 1, "周杰").unwrap();
    sheet.write_number(1, 2, 13912345679.0).unwrap(); // Excel stores a typed-in number as a float
    sheet.write_string(1, 3, "市党代表").unwrap();
    sheet.write_string(2, 0, "汉滨区公路管理段").unwrap();
    sheet.write_string(2, 1, "吴敏").unwrap();
    sheet.write_string(2, 2, "0086 135-0000-4444").unwrap();
    sheet.write_string(3, 0, " 汉滨区公路管理段 ").unwrap();
    sheet.write_string(3, 1, "郑洋").unwrap();
    sheet.write_string(3, 2, "029-88886666 ext 12").unwrap();
    book.save(&path).unwrap();
    let report = sp.json(&[
        "roster",
        "import",
        "--round",
        "2022",
        path.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(report["imported"], 3, "{report:#}");
    let phones: Vec<String> = stored_phones(&sp).into_iter().map(|r| r.1).collect();
    assert_eq!(phones, ["13912345679", "13500004444", "029-88886666-12"]);
}

const BAD_ROWS: &str = "参评单位,姓名,联系电话,代表类别\n\
汉滨区教育体育局,张伟,13912345678,\n\
,李娜,13800001111,\n\
汉滨区教育局,王芳,13800002222,\n\
\n\
汉滨区教育体育局,,13800003333,\n\
汉滨区教育体育局,刘强,1.39123E+10,\n\
汉滨区教育体育局,陈静,12345,\n\
汉滨区教育体育局,杨磊,139-1234-5678,\n\
汉滨区公路管理段,赵敏,13600003333,\n";

#[test]
fn a_file_with_bad_rows_is_rejected_as_a_whole_naming_every_line() {
    let sp = Sheping::new();
    round_with_units(&sp);
    let file = sp.write("bad.csv", BAD_ROWS.as_bytes());
    let out = sp.run(&[
        "roster",
        "import",
        "--round",
        "2022",
        file.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "non-zero exit on rejection");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let got: Vec<(u64, &str)> = report["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["field"].as_str().unwrap()))
        .collect();
    // Physical lines: the blank line 5 is skipped but still counted.
    assert_eq!(
        got,
        [
            (3, "unit"),
            (4, "unit"),
            (6, "name"),
            (7, "phone"),
            (8, "phone"),
            (9, "phone")
        ]
    );
    let errors: Vec<&str> = report["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["error"].as_str().unwrap())
        .collect();
    assert!(
        errors[1].contains("汉滨区教育体育局"),
        "suggests the closest unit: {}",
        errors[1]
    );
    assert!(
        errors[3].contains("科学计数"),
        "explains Excel's scientific notation: {}",
        errors[3]
    );
    assert!(
        errors[5].contains("重复"),
        "duplicate in file: {}",
        errors[5]
    );
    assert_eq!(report["imported"], 0);
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM members"),
        0,
        "nothing stored"
    );

    // Text output names every line too.
    let out = sp.run(&[
        "roster",
        "import",
        "--round",
        "2022",
        file.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in [3, 4, 6, 7, 8, 9] {
        assert!(
            stderr.contains(&format!("第 {line} 行")),
            "line {line} missing in:\n{stderr}"
        );
    }
}

#[test]
fn skip_invalid_stores_good_rows_and_writes_rejects_file() {
    let sp = Sheping::new();
    round_with_units(&sp);
    let file = sp.write("bad.csv", BAD_ROWS.as_bytes());
    let rejects = sp.path("rejects.csv");
    let out = sp.run(&[
        "roster",
        "import",
        "--round",
        "2022",
        file.to_str().unwrap(),
        "--skip-invalid",
        "--rejects",
        rejects.to_str().unwrap(),
        "--json",
    ]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["imported"], 2, "{report:#}");
    assert_eq!(sp.count("SELECT COUNT(*) FROM members"), 2);
    let bytes = std::fs::read(&rejects).unwrap();
    assert!(
        bytes.starts_with(&[0xEF, 0xBB, 0xBF]),
        "rejects file is UTF-8 with BOM"
    );
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let headers = rdr.headers().unwrap().clone();
    assert_eq!(headers.iter().next_back(), Some("错误"));
    let rows: Vec<csv::StringRecord> = rdr.records().collect::<Result<_, _>>().unwrap();
    assert_eq!(rows.len(), 6);
    assert_eq!(&rows[3][2], "1.39123E+10", "rows kept as they were");
    assert!(rows[3][4].contains("第7行"), "{:?}", &rows[3]);
}

#[test]
fn reimport_is_refused_as_duplicates_and_replace_swaps_a_panel() {
    let sp = Sheping::new();
    round_with_units(&sp);
    let file = sp.write("roster.csv", MESSY_ROWS.as_bytes());
    let args = [
        "roster",
        "import",
        "--round",
        "2022",
        file.to_str().unwrap(),
        "--area-code",
        "0915",
        "--json",
    ];
    assert_eq!(sp.json(&args)["imported"], 7);
    let out = sp.run(&args);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["rejected"].as_array().unwrap().len(),
        7,
        "every row is a duplicate"
    );
    assert!(
        report["rejected"][0]["error"]
            .as_str()
            .unwrap()
            .contains("已在该单位")
    );
    assert_eq!(sp.count("SELECT COUNT(*) FROM members"), 7);

    let new_panel =
        "单位,姓名,电话\n汉滨区公路管理段,孙丽,13500005555\n汉滨区公路管理段,赵敏,13600003333\n";
    let file = sp.write("replace.csv", new_panel.as_bytes());
    let report = sp.json(&[
        "roster",
        "import",
        "--round",
        "2022",
        file.to_str().unwrap(),
        "--replace",
        "--json",
    ]);
    assert_eq!(report["imported"], 2, "{report:#}");
    let road: Vec<String> = sp
        .sql()
        .prepare("SELECT m.name FROM members m JOIN units u ON u.id = m.unit_id WHERE u.name = '汉滨区公路管理段' ORDER BY m.id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(road, ["孙丽", "赵敏"]);
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM members"),
        7,
        "other units untouched"
    );

    // Once the round is planned, the members hold call assignments: a replace is refused
    // with a message (it was a 500 "FOREIGN KEY constraint failed" on the web form), and
    // nothing changes.
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
    let out = sp.run(&[
        "roster",
        "import",
        "--round",
        "2022",
        file.to_str().unwrap(),
        "--replace",
    ]);
    assert!(!out.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("已排入拨打计划"), "{said}");
    assert!(!said.contains("FOREIGN KEY"), "{said}");
    assert_eq!(sp.count("SELECT COUNT(*) FROM members"), 7);
}

#[test]
fn roster_show_masks_phone_numbers() {
    let sp = Sheping::new();
    round_with_units(&sp);
    let file = sp.write("roster.csv", MESSY_ROWS.as_bytes());
    sp.ok(&[
        "roster",
        "import",
        "--round",
        "2022",
        file.to_str().unwrap(),
        "--area-code",
        "0915",
    ]);
    let text = sp.ok(&["roster", "show", "--round", "2022"]);
    assert!(text.contains("139****5678"), "{text}");
    assert!(!text.contains("13912345678"));
    let json = sp.json(&[
        "roster",
        "show",
        "--round",
        "2022",
        "--unit",
        "汉滨区教育体育局",
        "--json",
    ]);
    let phones: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["phone"].as_str().unwrap())
        .collect();
    assert_eq!(phones.len(), 3);
    assert_eq!(phones[0], "139****5678");
    assert!(
        phones[2].starts_with("0915-")
            && phones[2].ends_with("2345")
            && !phones[2].contains("3212345"),
        "{phones:?}"
    );
}

#[test]
fn units_import_rejects_bad_rows_all_or_nothing() {
    let sp = Sheping::new();
    sp.ok(&["round", "create", "2022", "--title", "2022年度履职评估"]);
    let file = sp.write(
        "units.csv",
        "参评单位,类型,领域\n汉滨区教育体育局,党政机关,教体\n汉滨区一中,学校,教体\n".as_bytes(),
    );
    let out = sp.run(&[
        "units",
        "import",
        "--round",
        "2022",
        file.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["rejected"][0]["line"], 3);
    assert_eq!(report["rejected"][0]["field"], "kind");
    assert_eq!(sp.count("SELECT COUNT(*) FROM units"), 0);
}
