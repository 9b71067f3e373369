//! Control characters and bidi overrides in text (issue 17): every importer and every form that
//! stores text refuses them naming line and field; the SVG charts stay XML whatever the stored
//! names hold; report file names are safe; a rejects file neutralises its header row too.

use crate::common;

use common::browser::{PASSWORD, ROUND, UNITS, Web, WebServer, fixture, fixture_phones};
use common::{Server, Sheping, round_with_units};

/// Runs an import that must be refused; returns its stderr.
fn refused(sp: &Sheping, args: &[&str]) -> String {
    let out = sp.run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{args:?} accepted:\n{stderr}");
    stderr
}

/// What the CLI prints for a rejected row: `第 N 行 [field]: …`.
fn names_line_and_field(stderr: &str, line: usize, field: &str, what: &str) {
    let prefix = format!("第 {line} 行 [{field}]");
    let found = stderr
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in:\n{stderr}"));
    assert!(found.contains(what), "{found}");
    assert!(
        !found.chars().any(|c| c.is_control()
            || ('\u{202A}'..='\u{202E}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)),
        "the message echoes the character: {found:?}"
    );
}

#[test]
fn every_importer_refuses_control_characters_naming_line_and_field() {
    let sp = Sheping::new();
    round_with_units(&sp);
    // Units: a NUL in a name (it broke the ranking SVG), ESC in a sector.
    let units = sp.write(
        "units2.csv",
        "单位名称,单位类型,系统,单位代码\n汉滨区司法局,党政机关,政法,C01\n汉滨区\u{0}民政局,党政机关,民政,C02\n汉滨区统计局,党政机关,\u{1b}[2J统计,C03\n"
            .as_bytes(),
    );
    let err = refused(
        &sp,
        &[
            "units",
            "import",
            "--round",
            "2022",
            units.to_str().unwrap(),
        ],
    );
    names_line_and_field(&err, 3, "name", "单位名称的第 4 个字符是控制字符 U+0000");
    names_line_and_field(&err, 4, "sector", "控制字符 U+001B");
    assert_eq!(sp.count("SELECT COUNT(*) FROM units"), 3, "nothing stored");

    // Roster: ESC in a person's name (it reached the terminal through `roster show`), C1 in an
    // organisation, U+202E in a note, U+2066 in the unit.
    let roster = sp.write(
        "roster.csv",
        "参评单位,姓名,联系电话,代表类别,工作单位及职务,备注\n\
         汉滨区教育体育局,张\u{1b}]0;pwned\u{7}伟,13912345678,,,\n\
         汉滨区教育体育局,李娜,13800001111,,某厂\u{85}厂长,\n\
         汉滨区教育体育局,王芳,13800002222,,,见\u{202e}fdp.exe\n\
         \u{2066}汉滨区教育体育局,赵敏,13800003333,,,\n\
         汉滨区教育体育局,刘强,13800004444,人大代表,某中学\t教师,第一行\n第二行\n"
            .as_bytes(),
    );
    let err = refused(
        &sp,
        &[
            "roster",
            "import",
            "--round",
            "2022",
            roster.to_str().unwrap(),
        ],
    );
    names_line_and_field(&err, 2, "name", "姓名的第 2 个字符是控制字符 U+001B");
    names_line_and_field(&err, 3, "organization", "控制字符 U+0085");
    names_line_and_field(&err, 4, "note", "不可见字符 U+202E");
    names_line_and_field(&err, 5, "unit", "不可见字符 U+2066");
    assert!(
        !err.contains("第 6 行"),
        "tab and line breaks stay allowed:\n{err}"
    );
    assert_eq!(sp.count("SELECT COUNT(*) FROM members"), 0);

    // On-site ballots: a control character in a ballot id.
    let onsite = sp.write(
        "onsite.csv",
        "unit,ballot,overall\n汉滨区教育体育局,A-001,满意\n汉滨区教育体育局,A\u{1b}002,满意\n"
            .as_bytes(),
    );
    let err = refused(
        &sp,
        &[
            "onsite",
            "import",
            "--round",
            "2022",
            onsite.to_str().unwrap(),
        ],
    );
    names_line_and_field(&err, 3, "ballot", "选票编号的第 2 个字符是控制字符 U+001B");
}

#[test]
fn the_attempts_importer_refuses_control_characters_in_a_comment() {
    let sp = fixture();
    let at = (chrono::Utc::now() - chrono::Duration::hours(1))
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y-%m-%d %H:%M")
        .to_string();
    let phone = &fixture_phones()[0];
    let file = sp.write(
        "attempts.csv",
        format!(
            "unit,phone,operator,outcome,at,comment\n{u},{phone},op1,no_answer,{at},\u{9b}31m意见\n",
            u = UNITS[0]
        )
        .as_bytes(),
    );
    let err = refused(
        &sp,
        &[
            "attempts",
            "import",
            "--round",
            ROUND,
            file.to_str().unwrap(),
        ],
    );
    names_line_and_field(&err, 2, "comment", "意见建议的第 1 个字符是控制字符 U+009B");
    assert_eq!(sp.count("SELECT COUNT(*) FROM attempts"), 0);
}

#[test]
fn cli_arguments_that_store_text_refuse_control_characters() {
    let sp = Sheping::new();
    let out = sp.run(&[
        "user",
        "add",
        "--login",
        "op9",
        "--name",
        "王\u{1b}[8m静",
        "--role",
        "operator",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("姓名的第 2 个字符是控制字符 U+001B"), "{err}");
    assert_eq!(sp.count("SELECT COUNT(*) FROM users"), 0);
    let out = sp.run(&["round", "create", "2023", "--title", "2023\u{202e}年度"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("U+202E"), "{err}");
    assert_eq!(sp.count("SELECT COUNT(*) FROM rounds"), 0);
}

#[test]
fn a_rejects_file_neutralises_its_header_row() {
    let sp = Sheping::new();
    round_with_units(&sp);
    let file = sp.write(
        "roster.csv",
        "参评单位,姓名,联系电话,\"=HYPERLINK(\"\"http://evil.example\"\",\"\"点此\"\")\"\n\
         汉滨区教育体育局,张伟,13912345678,x\n\
         汉滨区教育体育局,,13800001111,=1+1\n"
            .as_bytes(),
    );
    let rejects = sp.path("rejects.csv");
    // Exit status 1: a row was skipped.
    sp.run(&[
        "roster",
        "import",
        "--round",
        "2022",
        file.to_str().unwrap(),
        "--skip-invalid",
        "--rejects",
        rejects.to_str().unwrap(),
    ]);
    let bytes = std::fs::read(&rejects).unwrap();
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let headers: Vec<String> = rdr.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(
        headers,
        [
            "参评单位",
            "姓名",
            "联系电话",
            "'=HYPERLINK(\"http://evil.example\",\"点此\")",
            "错误"
        ]
    );
    let rows: Vec<csv::StringRecord> = rdr.records().collect::<Result<_, _>>().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(&rows[0][3], "'=1+1", "data cells as before");
}

#[tokio::test(flavor = "multi_thread")]
async fn web_forms_refuse_control_characters() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let admin = Web::signed_in(&server.url, "admin").await;
    let csrf = admin.csrf().await;
    // A user's name.
    let page = admin
        .post(
            "/admin/users",
            &[
                ("csrf", &csrf),
                ("login", "op9"),
                ("name", "王\u{1b}[8m静"),
                ("role", "operator"),
                ("password", ""),
            ],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(
        page.body.contains("姓名的第 2 个字符是控制字符 U+001B"),
        "{}",
        page.body
    );
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM users WHERE login = 'op9'"),
        0
    );
    // A correction's reason.
    let member: i64 = sp.count("SELECT MIN(id) FROM members");
    let page = admin
        .post(
            &format!("/admin/rounds/{ROUND}/members/{member}/phone"),
            &[
                ("csrf", &csrf),
                ("phone", "13700007777"),
                ("area_code", ""),
                ("reason", "受访者\u{202e}要求"),
            ],
        )
        .await;
    assert!(
        page.body.contains("原因的第 4 个字符是不可见字符 U+202E"),
        "{}",
        page.body
    );
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM members WHERE phone LIKE '%13700007777%'"),
        0
    );
    // A units upload goes through the importer's rule.
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf.clone())
        .part(
            "file",
            reqwest::multipart::Part::bytes(
                "单位名称,单位类型\n汉滨区\u{0}民政局,党政机关\n"
                    .as_bytes()
                    .to_vec(),
            )
            .file_name("units.csv"),
        );
    let r = admin
        .client
        .post(format!("{}/admin/rounds/{ROUND}/units", server.url))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    assert!(
        body.contains("单位名称的第 4 个字符是控制字符 U+0000"),
        "{body}"
    );
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM units WHERE name LIKE '%民政局%'"),
        0
    );
    // The operator's comment on the call screen.
    let op = Web::signed_in(&server.url, "op1").await;
    let csrf = op.csrf().await;
    let claimed = op
        .post("/call/next", &[("csrf", &csrf), ("round", ROUND)])
        .await;
    assert_eq!(claimed.status, 303);
    let screen = op.get(&format!("/call?round={ROUND}")).await;
    let token = screen.input("token").expect("claim token");
    let page = op
        .post(
            "/call/record",
            &[
                ("csrf", &csrf),
                ("round", ROUND),
                ("token", &token),
                ("outcome", "no_answer"),
                ("comment", "请\u{1b}[2J回电"),
            ],
        )
        .await;
    assert!(
        page.body.contains("意见建议的第 2 个字符是控制字符 U+001B"),
        "{}",
        page.body
    );
    assert_eq!(sp.count("SELECT COUNT(*) FROM attempts"), 0);
    let _ = PASSWORD;
}

// ---------------------------------------------------------------------------------------------
// SVG and file names made from stored names (stored before the rule, or by another tool).

/// XML 1.0's `Char` production.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// XML 1.0 well-formedness as far as these documents need: only characters XML allows, and
/// a parse with matching end tags and valid escapes.
fn assert_xml(doc: &str, what: &str) {
    let bad = doc.chars().find(|&c| !xml_char(c));
    assert_eq!(bad, None, "{what}: a character XML 1.0 forbids");
    let mut reader = quick_xml::Reader::from_str(doc);
    reader.config_mut().check_end_names = true;
    let mut depth = 0i64;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(quick_xml::events::Event::Start(_)) => depth += 1,
            Ok(quick_xml::events::Event::End(_)) => depth -= 1,
            Ok(quick_xml::events::Event::GeneralRef(r)) => {
                if r.is_char_ref() {
                    let c = r
                        .resolve_char_ref()
                        .unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert!(
                        c.is_some_and(xml_char),
                        "{what}: a reference to a forbidden char"
                    );
                } else {
                    let name = r.into_inner();
                    assert!(
                        ["lt", "gt", "amp", "quot", "apos"].contains(&name.as_ref()),
                        "{what}: undefined entity &{name};"
                    );
                }
            }
            Ok(_) => {}
            Err(e) => panic!("{what}: not XML at {}: {e}", reader.buffer_position()),
        }
    }
    assert_eq!(depth, 0, "{what}: unclosed elements");
}

const NUL_UNIT: &str = "汉滨区\u{0}民政局\u{FFFE}";
/// PostgreSQL's text cannot hold NUL at all (no importer could have stored one there): its
/// name carries another control character instead.
const SOH_UNIT: &str = "汉滨区\u{1}民政局\u{FFFE}";
const RLO_UNIT: &str = "汉滨区\u{202E}exe.jpg";

/// The demo round with two units renamed the way the old importer let through.
fn demo_with_hostile_names() -> Sheping {
    let sp = Sheping::new();
    drop(Server::start(&sp, &["demo"]));
    let c = sp.sql();
    let ids: Vec<i64> = c
        .prepare("SELECT id FROM units ORDER BY id LIMIT 2")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    c.execute(
        "UPDATE units SET name = ?1 WHERE id = ?2",
        crate::params![if sp.is_postgres() { SOH_UNIT } else { NUL_UNIT }, ids[0]],
    )
    .unwrap();
    c.execute(
        "UPDATE units SET name = ?1 WHERE id = ?2",
        crate::params![RLO_UNIT, ids[1]],
    )
    .unwrap();
    sp
}

#[tokio::test(flavor = "multi_thread")]
async fn charts_stay_xml_whatever_the_unit_names_hold() {
    let sp = demo_with_hostile_names();
    let server = WebServer::start(&sp, &[]);
    let eval = Web::new(&server.url);
    assert_eq!(eval.sign_in("eval", "demo-eval-2022").await.status, 303);
    for chart in ["ranking", "dispositions"] {
        let svg = eval.get(&format!("/rounds/2022/charts/{chart}.svg")).await;
        assert_eq!(svg.status, 200, "{chart}");
        assert_xml(&svg.body, chart);
        assert!(
            svg.body.contains("汉滨区民政局"),
            "{chart}: the name without the NUL"
        );
    }
}

#[test]
fn report_files_stay_xml_and_their_names_safe() {
    let sp = demo_with_hostile_names();
    let out = sp.path("report");
    sp.ok(&[
        "report",
        "--round",
        "2022",
        "--out",
        out.to_str().unwrap(),
        "--no-png",
    ]);
    let mut stack = vec![out.clone()];
    let mut svgs = 0;
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            assert!(
                !name.chars().any(|c| c.is_control()
                    || ('\u{202A}'..='\u{202E}').contains(&c)
                    || c == '\u{FFFE}'),
                "unsafe file name {name:?}"
            );
            if path.is_dir() {
                stack.push(path);
            } else if name.ends_with(".svg") {
                svgs += 1;
                assert_xml(&std::fs::read_to_string(&path).unwrap(), &name);
            }
        }
    }
    assert!(svgs > 2, "{svgs} SVG files");
    assert!(out.join("feedback").read_dir().unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .contains("汉滨区_exe.jpg")
    }));
}

/// Names stored before the rule refused control characters still never reach the admin's
/// terminal as control sequences: `roster show` prints them escaped.
#[test]
fn roster_show_never_sends_a_stored_control_character_to_the_terminal() {
    let sp = Sheping::new();
    common::round_with_units(&sp);
    let roster = sp.write(
        "roster.csv",
        "参评单位,姓名,联系电话\n汉滨区教育体育局,王静,13912345678\n".as_bytes(),
    );
    sp.ok(&[
        "roster",
        "import",
        "--round",
        "2022",
        roster.to_str().unwrap(),
    ]);
    // As an older version (or another program) could have stored it.
    sp.sql()
        .execute("UPDATE members SET name = ?1", ["王\u{1b}[2J静\u{202E}"])
        .unwrap();
    let out = sp.ok(&["roster", "show", "--round", "2022"]);
    assert!(!out.contains('\u{1b}'), "ESC reached the terminal: {out:?}");
    assert!(
        !out.contains('\u{202E}'),
        "U+202E reached the terminal: {out:?}"
    );
    assert!(out.contains("王\\u{001B}[2J静\\u{202E}"), "{out}");
}
