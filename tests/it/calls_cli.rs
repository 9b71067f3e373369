//! The call engine through the real binary: users, exclusions, reproducible plans and their
//! exports, the queue from the command line, attempts import and progress.

use crate::common;

use common::{Sheping, round_with_units};
use serde_json::Value;

/// A round whose field period covers today and whose call window covers the whole day.
fn open_round(sp: &Sheping) {
    let survey =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/surveys/default.toml"))
            .unwrap()
            .replace(
                r#"windows = ["09:00-11:30", "14:30-17:30"]"#,
                r#"windows = ["00:00-23:59"]"#,
            );
    let file = sp.write("allday.toml", survey.as_bytes());
    let today = chrono::Utc::now().date_naive();
    let from = (today - chrono::Duration::days(10)).to_string();
    let to = (today + chrono::Duration::days(10)).to_string();
    sp.ok(&[
        "round",
        "create",
        "2022",
        "--title",
        "2022年度履职评估",
        "--survey",
        file.to_str().unwrap(),
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
}

/// 3 units × 12 representatives with distinct phones.
fn roster(sp: &Sheping) {
    let mut csv = String::from("参评单位,姓名,联系电话,代表类别\n");
    for (u, unit) in [
        "汉滨区教育体育局",
        "汉滨区住房和城乡建设局",
        "汉滨区公路管理段",
    ]
    .iter()
    .enumerate()
    {
        for k in 0..12 {
            csv.push_str(&format!(
                "{unit},代表{u}{k:02},1390{u}{k:06},{}\n",
                if k == 0 { "人大代表" } else { "" }
            ));
        }
    }
    let file = sp.write("roster.csv", csv.as_bytes());
    sp.ok(&[
        "roster",
        "import",
        "--round",
        "2022",
        file.to_str().unwrap(),
    ]);
}

fn add_operators(sp: &Sheping, n: usize) {
    for i in 1..=n {
        let login = format!("op{i}");
        let out = sp
            .command()
            .args([
                "user",
                "add",
                "--login",
                &login,
                "--name",
                &format!("话务员{i}"),
                "--role",
                "operator",
                "--password-env",
                "PW",
            ])
            .env("PW", "a-long-password")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn user_add_prints_a_generated_password_once_and_stores_only_a_hash() {
    let sp = Sheping::new();
    let out = sp.ok(&[
        "user",
        "add",
        "--login",
        "stat1",
        "--name",
        "统计员",
        "--role",
        "statistician",
    ]);
    let password = out
        .lines()
        .find_map(|l| l.split("初始密码(只显示这一次): ").nth(1))
        .expect("password printed")
        .trim()
        .to_string();
    assert_eq!(password.len(), 16);
    let hash: String = sp
        .sql()
        .query_row(
            "SELECT password_hash FROM users WHERE login = 'stat1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(hash.starts_with("$argon2id$") && !hash.contains(&password));
    assert!(sheping::domain::user::verify_password(&password, &hash));
    let list = sp.json(&["user", "list", "--json"]);
    assert_eq!(list[0]["role"], "statistician");
    assert!(list[0].get("password_hash").is_none());
    sp.ok(&["user", "disable", "stat1"]);
    assert_eq!(
        sp.count("SELECT active FROM users WHERE login = 'stat1'"),
        0
    );
    let bad = sp.run(&[
        "user", "add", "--login", "x1", "--name", "n", "--role", "boss",
    ]);
    assert!(!bad.status.success());
}

fn export(sp: &Sheping, extra: &[&str]) -> Vec<u8> {
    let out = sp.path(&format!("calls-{}.csv", extra.len()));
    let mut args = vec![
        "calls",
        "export",
        "--round",
        "2022",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    sp.ok(&args);
    std::fs::read(out).unwrap()
}

#[test]
fn the_same_roster_operators_and_seed_give_byte_identical_call_lists() {
    let make = |seed: &str| {
        let sp = Sheping::new();
        round_with_units(&sp);
        roster(&sp);
        add_operators(&sp, 3);
        let out = sp.ok(&["calls", "generate", "--round", "2022", "--seed", seed]);
        assert!(
            out.contains(&format!("种子 {seed}")) && out.contains("sheping-plan-v1"),
            "{out}"
        );
        sp
    };
    let a = make("20221");
    let b = make("20221");
    let c = make("20222");
    let ea = export(&a, &[]);
    let eb = export(&b, &[]);
    let ec = export(&c, &[]);
    assert_eq!(ea, eb, "same seed, two databases: byte for byte the same");
    assert_ne!(ea, ec, "another seed gives another plan");
    assert!(ea.starts_with(&[0xEF, 0xBB, 0xBF]), "UTF-8 with BOM");
    let text = String::from_utf8(ea[3..].to_vec()).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("operator,seq,unit,name,phone,category,status,unit_id,member_id")
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 36);
    assert!(
        rows.iter().all(|r| r.contains("****")),
        "phones masked by default"
    );
    assert!(rows.iter().all(|r| r.contains(",未拨打,")));
    // The plan's seed, algorithm and digest are stored for a third party.
    let plans = a.json(&["calls", "plans", "--round", "2022"]);
    assert_eq!(plans[0]["seed"], 20221);
    assert_eq!(plans[0]["algorithm"], "sheping-plan-v1");
    assert_eq!(
        plans[0]["digest"],
        b.json(&["calls", "plans", "--round", "2022"])[0]["digest"]
    );
}

#[test]
fn revealing_phones_is_logged_and_exclusions_are_honoured() {
    let sp = Sheping::new();
    round_with_units(&sp);
    roster(&sp);
    add_operators(&sp, 3);
    sp.ok(&[
        "operators",
        "exclude",
        "op1",
        "--round",
        "2022",
        "--unit",
        "汉滨区公路管理段",
    ]);
    sp.ok(&["calls", "generate", "--round", "2022", "--seed", "1"]);
    let full = String::from_utf8(export(&sp, &["--reveal-phones"])).unwrap();
    assert!(
        full.contains("1390000000"),
        "full numbers with --reveal-phones"
    );
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM audit_log WHERE action = 'export.call_list.reveal_phones'"),
        1
    );
    for line in full.lines().skip(1) {
        assert!(
            !(line.starts_with("op1,") && line.contains("汉滨区公路管理段")),
            "excluded operator got the unit: {line}"
        );
    }
    // Each unit spread over its allowed operators within one.
    let conn = sp.sql();
    let mut stmt = conn
        .prepare("SELECT m.unit_id, s.operator_id, COUNT(*) FROM assignments s JOIN members m ON m.id = s.member_id GROUP BY 1, 2")
        .unwrap();
    let rows: Vec<(i64, i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for unit in 1..=3 {
        let counts: Vec<i64> = rows.iter().filter(|r| r.0 == unit).map(|r| r.2).collect();
        assert!(
            counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1,
            "unit {unit}: {counts:?}"
        );
    }
}

#[test]
fn the_queue_works_from_the_command_line() {
    let sp = Sheping::new();
    open_round(&sp);
    roster(&sp);
    add_operators(&sp, 1);
    sp.ok(&["calls", "generate", "--round", "2022", "--seed", "3"]);
    let claim = sp.json(&["calls", "next", "--round", "2022", "--operator", "op1"]);
    let token = claim["token"].as_str().unwrap();
    assert_eq!(claim["attempt_no"], 1);
    let rec = sp.json(&[
        "calls",
        "record",
        "--round",
        "2022",
        "--operator",
        "op1",
        "--token",
        token,
        "--outcome",
        "complete",
        "--answers",
        "1,2,满意,4,1",
    ]);
    assert_eq!(rec["duplicate"], false);
    let again = sp.json(&[
        "calls",
        "record",
        "--round",
        "2022",
        "--operator",
        "op1",
        "--token",
        token,
        "--outcome",
        "complete",
        "--answers",
        "1,2,1,4,1",
    ]);
    assert_eq!(again["duplicate"], true);
    assert_eq!(sp.count("SELECT COUNT(*) FROM attempts"), 1);
    let answers: String = sp
        .sql()
        .query_row("SELECT answers FROM attempts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(answers, "[0,1,0,3,0]");
    // A partial with all answers is refused with a clear message.
    let claim = sp.json(&["calls", "next", "--round", "2022", "--operator", "op1"]);
    let out = sp.run(&[
        "calls",
        "record",
        "--round",
        "2022",
        "--operator",
        "op1",
        "--token",
        claim["token"].as_str().unwrap(),
        "--outcome",
        "complete",
        "--answers",
        "1,2",
    ]);
    assert!(!out.status.success());
    assert_eq!(sp.count("SELECT COUNT(*) FROM attempts"), 1);
}

const ATTEMPTS_OK: &str = "unit,phone,operator,outcome,at,职能职责履行,办事效率,服务质量,作风形象,社会反响,comment\n\
汉滨区教育体育局,139 0000 0000 01,op1,no_answer,{d1} 09:10,,,,,,\n\
汉滨区教育体育局,13900000000001,op1,完成,{d2} 10:15,满意,比较满意,1,2,3,窗口服务好\n\
汉滨区教育体育局,13900000000002,op1,拒访,{d1} 09:20,,,,,,\n\
汉滨区住房和城乡建设局,13901000000000,话务员1,1.1,{d1} 11:00,1,1,1,1,1,\n";

fn dated(template: &str) -> String {
    let today = chrono::Utc::now().date_naive();
    template
        .replace("{d1}", &(today - chrono::Duration::days(3)).to_string())
        .replace("{d2}", &(today - chrono::Duration::days(2)).to_string())
}

#[test]
fn attempts_import_applies_a_good_file_and_progress_counts_it() {
    let sp = Sheping::new();
    open_round(&sp);
    roster(&sp);
    add_operators(&sp, 1);
    sp.ok(&["calls", "generate", "--round", "2022", "--seed", "3"]);
    // The phone column in the fixture uses the roster's numbers: 1390{u}{k:06}.
    let csv = dated(ATTEMPTS_OK)
        .replace("139 0000 0000 01", "13900000001")
        .replace("13900000000001", "13900000001")
        .replace("13900000000002", "13900000002")
        .replace("13901000000000", "13901000000");
    let file = sp.write("attempts.csv", csv.as_bytes());
    let report = sp.json(&[
        "attempts",
        "import",
        "--round",
        "2022",
        file.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(report["imported"], 4, "{report:#}");
    let p = sp.json(&["progress", "--round", "2022", "--json"]);
    // 36 members: 2 completes (I), 1 refusal (R), 33 never reached or not attempted (UH).
    let overall = &p["overall"];
    assert_eq!(overall["dispositions"]["I"], 2);
    assert_eq!(overall["dispositions"]["R"], 1);
    assert_eq!(overall["dispositions"]["UH"], 33);
    // RR1 = I / (I+P+R+NC+O+UH+UO) = 2/36; COOP1 = I/(I+P+R+O) = 2/3; REF1 = 1/36; CON1 = (2+1)/36.
    let close = |v: &Value, x: f64| (v.as_f64().unwrap() - x).abs() < 1e-12;
    assert!(close(&overall["rates"]["rr1"], 2.0 / 36.0));
    assert!(close(&overall["rates"]["coop1"], 2.0 / 3.0));
    assert!(close(&overall["rates"]["ref1"], 1.0 / 36.0));
    assert!(close(&overall["rates"]["con1"], 3.0 / 36.0));
    let edu = p["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit"] == "汉滨区教育体育局")
        .unwrap();
    assert_eq!(edu["completes"], 1);
    assert!(close(&edu["rates"]["rr1"], 1.0 / 12.0));
    assert_eq!(p["operators"][0]["attempts"], 4);
    let comment: String = sp
        .sql()
        .query_row(
            "SELECT comment FROM attempts WHERE outcome = 'complete' AND comment IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(comment, "窗口服务好");
}

#[test]
fn attempts_import_rejects_a_bad_file_as_a_whole() {
    let sp = Sheping::new();
    open_round(&sp);
    roster(&sp);
    add_operators(&sp, 1);
    let future = (chrono::Utc::now().date_naive() + chrono::Duration::days(2)).to_string();
    let csv = dated(
        "unit,phone,operator,outcome,at,职能职责履行,办事效率,服务质量,作风形象,社会反响\n\
汉滨区教育体育局,13900000001,op1,complete,{d1} 09:10,1,1,1,1,1\n\
汉滨区教育局,13900000002,op1,complete,{d1} 09:10,1,1,1,1,1\n\
汉滨区教育体育局,13999999999,op1,complete,{d1} 09:10,1,1,1,1,1\n\
汉滨区教育体育局,13900000003,nobody,complete,{d1} 09:10,1,1,1,1,1\n\
汉滨区教育体育局,13900000004,op1,maybe,{d1} 09:10,1,1,1,1,1\n\
汉滨区教育体育局,13900000005,op1,complete,yesterday,1,1,1,1,1\n\
汉滨区教育体育局,13900000006,op1,complete,{d1} 09:10,1,1,1,1,\n\
汉滨区教育体育局,13900000007,op1,complete,{d1} 09:10,1,1,9,1,1\n\
汉滨区教育体育局,13900000001,op1,no_answer,{d2} 09:10,,,,,\n\
汉滨区教育体育局,13900000008,op1,busy,FUTURE 09:10,,,,,\n",
    )
    .replace("FUTURE", &future);
    let file = sp.write("bad.csv", csv.as_bytes());
    let out = sp.run(&[
        "attempts",
        "import",
        "--round",
        "2022",
        file.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let got: Vec<(u64, &str)> = report["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["field"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            (3, "unit"),
            (4, "phone"),
            (5, "operator"),
            (6, "outcome"),
            (7, "at"),
            (8, "outcome"),
            (9, "service"),
            (10, "outcome"),
            (11, "at")
        ],
        "{report:#}"
    );
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM attempts"),
        0,
        "all or nothing"
    );
    // With --skip-invalid the one good row is stored.
    let report = sp.json(&[
        "attempts",
        "import",
        "--round",
        "2022",
        file.to_str().unwrap(),
        "--skip-invalid",
        "--json",
    ]);
    assert_eq!(report["imported"], 1);
}
