//! What leaves sheping opens in the programs people use: every `.sps` (CLI, console, API,
//! report.zip) runs in GNU PSPP without a warning and declares the columns of the file it
//! reads under the name that file is saved with; xlsx codes are text; the API answers every
//! error as JSON; the operators' table is an export. Real SQLite file, real server on a
//! loopback port, real PSPP (`tests/run.sh` installs the Debian package `pspp`).

use crate::common;
use crate::common::results_fixture;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use calamine::{Data, Reader, Xlsx, open_workbook};
use common::browser::{PASSWORD, Web, WebServer};
use common::{Sheping, add_user, api_token};
use results_fixture::{ROUND, build_in};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// PSPP

/// One variable as PSPP's DISPLAY DICTIONARY shows it.
#[derive(Debug, Clone, Default)]
struct PsppVar {
    level: String,
    format: String,
}

/// Runs `sps` (plus `extra` commands) in PSPP in `dir`; fails on any warning, error or halt.
/// Returns PSPP's text output.
fn run_pspp(dir: &Path, sps: &str, extra: &str) -> String {
    let script = dir.join("pspp-check.sps");
    std::fs::write(&script, format!("{sps}\n{extra}\n")).unwrap();
    let out_file = dir.join("pspp-out.txt");
    let _ = std::fs::remove_file(&out_file);
    let out = std::process::Command::new("pspp")
        .arg("-O")
        .arg("format=txt")
        .arg("-o")
        .arg(&out_file)
        .arg(&script)
        .current_dir(dir)
        .output()
        .expect("GNU PSPP is installed (tests/run.sh installs the Debian package pspp)");
    let report = format!(
        "{}\n{}\n{}",
        std::fs::read_to_string(&out_file).unwrap_or_default(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "pspp failed:\n{report}");
    for line in report.lines() {
        let l = line.to_ascii_lowercase();
        assert!(
            !l.contains("warning") && !l.contains("error") && !l.contains("halted"),
            "PSPP complained: {line}\n--- syntax ---\n{sps}\n--- output ---\n{report}"
        );
    }
    report
}

/// The variables of DISPLAY DICTIONARY: name → measurement level and print format.
fn dictionary(report: &str) -> BTreeMap<String, PsppVar> {
    let mut vars: BTreeMap<String, PsppVar> = BTreeMap::new();
    for line in report.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // `|name|position|label|level|role|width|alignment|` (first table) and
        // `|name|print|write|` (second table); continuation lines have an empty name.
        if cells.len() < 4 || cells[1].is_empty() || !cells[1].is_ascii() {
            continue;
        }
        let name = cells[1];
        if name == "Name" {
            continue;
        }
        if cells.len() >= 9 && cells[2].parse::<u32>().is_ok() {
            vars.entry(name.to_string()).or_default().level = cells[4].to_string();
        } else if cells.len() == 5 {
            let v = vars.entry(name.to_string()).or_default();
            if v.format.is_empty() {
                v.format = cells[2].to_string();
            }
        }
    }
    // The LIST output has three-cell rows too: only what the Variables table names counts.
    vars.retain(|_, v| !v.level.is_empty());
    vars
}

/// The header and rows of a responses CSV (BOM skipped).
fn read_csv(path: &Path) -> (Vec<String>, Vec<BTreeMap<String, String>>) {
    let bytes = std::fs::read(path).unwrap();
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let mut r = csv::Reader::from_reader(body);
    let headers: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    let rows = r
        .records()
        .map(|rec| {
            headers
                .iter()
                .cloned()
                .zip(rec.unwrap().iter().map(str::to_string))
                .collect()
        })
        .collect();
    (headers, rows)
}

/// `2022-11-03 10:15:07` as PSPP shows a DATETIME20 value: `03-NOV-2022 10:15:07`.
fn pspp_datetime(local: &str) -> String {
    let (date, time) = local.split_once(' ').unwrap();
    let p: Vec<&str> = date.split('-').collect();
    let months = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ];
    let m: usize = p[1].parse().unwrap();
    format!("{}-{}-{} {time}", p[2], months[m - 1], p[0])
}

/// The file name an `.sps` reads (`/FILE='…'`).
fn file_read_by(sps: &str) -> String {
    let line = sps
        .lines()
        .find_map(|l| l.trim().strip_prefix("/FILE="))
        .expect("GET DATA /FILE=");
    line.trim_matches('\'').replace("''", "'")
}

/// Runs an `.sps` next to its data file in PSPP and checks, from DISPLAY DICTIONARY and a
/// listing of the data, that every column of the file is declared with the right level and
/// format and every row was read whole.
fn check_sps_in_pspp(dir: &Path, sps: &str, with_comments: bool) {
    let data = dir.join(file_read_by(sps));
    assert!(
        data.exists(),
        "the syntax reads {} but the data file beside it is not named so",
        data.display()
    );
    let (headers, rows) = read_csv(&data);
    assert_eq!(
        headers.iter().any(|h| h == "remark"),
        with_comments,
        "{headers:?}"
    );
    let report = run_pspp(
        dir,
        sps,
        "DISPLAY DICTIONARY.\nLIST VARIABLES=respondent_id interview_at scored.",
    );
    let dict = dictionary(&report);
    let names: Vec<&String> = dict.keys().collect();
    let mut want: Vec<&String> = headers.iter().collect();
    want.sort();
    assert_eq!(names, want, "PSPP's variables are the file's columns");
    for h in &headers {
        let v = &dict[h];
        let (level, format): (&str, &str) = if h.ends_with("_level") {
            ("Ordinal", "F8.0")
        } else if h == "scored" {
            ("Nominal", "F8.0")
        } else if h == "interview_at" {
            ("Scale", "DATETIME20.0")
        } else if h.ends_with("_score")
            || ["satisfied_share", "duration_secs"].contains(&h.as_str())
        {
            ("Scale", "F")
        } else if h == "attempt_no" {
            ("Scale", "F8.0")
        } else {
            ("Nominal", "A")
        };
        assert_eq!(v.level, level, "{h}: {v:?}");
        assert!(v.format.starts_with(format), "{h}: {v:?}");
    }
    assert!(!rows.is_empty());
    for r in &rows {
        let shown = pspp_datetime(&r["interview_at"]);
        assert!(
            report.contains(&shown),
            "{} read as DATETIME ({shown}):\n{report}",
            r["interview_at"]
        );
        assert!(
            report.contains(&r["respondent_id"]),
            "{}",
            r["respondent_id"]
        );
    }
}

fn cli_export(sp: &Sheping, args: &[&str]) {
    let mut all = vec!["export"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--round", ROUND]);
    sp.ok(&all);
}

/// The commands: `export spss --with-comments --responses-file responses_comments.csv`
/// halted PSPP (a variable `comment` read as the COMMENT command); now it and the plain
/// syntax and the codebook's syntax run clean.
#[test]
fn cli_spss_syntax_runs_clean_in_pspp_with_and_without_comments() {
    let sp = Sheping::new();
    build_in(&sp);
    let dir = sp.dir.path();
    let out = |f: &str| sp.path(f).to_str().unwrap().to_string();

    cli_export(
        &sp,
        &[
            "responses",
            "--with-comments",
            "--out",
            &out("responses_comments.csv"),
        ],
    );
    cli_export(
        &sp,
        &[
            "spss",
            "--with-comments",
            "--responses-file",
            "responses_comments.csv",
            "--out",
            &out("withc.sps"),
        ],
    );
    let withc = std::fs::read_to_string(sp.path("withc.sps")).unwrap();
    assert!(
        withc.contains(&format!(
            "sheping export responses --round {ROUND} --with-comments --out responses_comments.csv"
        )),
        "the header tells the command that writes the file it reads:\n{withc}"
    );
    check_sps_in_pspp(dir, &withc, true);
    let (_, rows) = read_csv(&sp.path("responses_comments.csv"));
    assert!(
        rows.iter().any(|r| r["remark"].contains("COMMENT_MARKER")),
        "the comments column is there"
    );

    cli_export(&sp, &["responses", "--out", &out("responses.csv")]);
    cli_export(&sp, &["spss", "--out", &out("plain.sps")]);
    let plain = std::fs::read_to_string(sp.path("plain.sps")).unwrap();
    assert!(plain.contains(&format!(
        "sheping export responses --round {ROUND} --out responses.csv"
    )));
    assert!(!plain.contains("--with-comments"));
    check_sps_in_pspp(dir, &plain, false);

    cli_export(&sp, &["codebook", "--out", &out("codebook.csv")]);
    let codebook_sps = std::fs::read_to_string(sp.path("codebook.sps")).unwrap();
    check_sps_in_pspp(dir, &codebook_sps, false);
}

// ---------------------------------------------------------------------------------------------
// HTTP

struct Api {
    sp: Sheping,
    server: WebServer,
    client: reqwest::Client,
    stat: String,
    eval: String,
}

fn start() -> Api {
    let sp = Sheping::new();
    build_in(&sp);
    add_user(&sp, "stat", "statistician");
    add_user(&sp, "eval", "evaluator");
    let stat = api_token(&sp, "stat");
    let eval = api_token(&sp, "eval");
    let server = WebServer::start(&sp, &[]);
    Api {
        sp,
        server,
        client: reqwest::Client::new(),
        stat,
        eval,
    }
}

/// A download: status, content type, the file name of Content-Disposition, the bytes.
struct Download {
    status: u16,
    content_type: String,
    file_name: Option<String>,
    bytes: Vec<u8>,
}

async fn download(req: reqwest::RequestBuilder) -> Download {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let header = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let content_type = header("content-type");
    let file_name = header("content-disposition")
        .split("filename=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .map(str::to_string);
    Download {
        status,
        content_type,
        file_name,
        bytes: r.bytes().await.unwrap().to_vec(),
    }
}

impl Api {
    fn get(&self, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client
            .get(format!("{}{path}", self.server.url))
            .bearer_auth(token)
    }

    /// Saves a download under its Content-Disposition name in `dir`.
    async fn save(&self, dir: &Path, path: &str) -> (String, PathBuf) {
        let d = download(self.get(path, &self.stat)).await;
        assert_eq!(
            d.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&d.bytes)
        );
        let name = d.file_name.expect("Content-Disposition filename");
        let p = dir.join(&name);
        std::fs::write(&p, &d.bytes).unwrap();
        (name, p)
    }

    async fn error(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = r.text().await.unwrap();
        assert!(
            ct.starts_with("application/json"),
            "{status} answered {ct}: {body}"
        );
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert!(
            v["error"]["code"].is_string() && v["error"]["message"].is_string(),
            "{v}"
        );
        (status, v)
    }
}

/// The API's syntax reads the responses file under the name the API downloads it with
/// (`2022-responses.csv`), with and without comments, and runs clean in PSPP.
#[tokio::test(flavor = "multi_thread")]
async fn api_spss_reads_the_downloaded_responses_file_in_pspp() {
    let api = start();
    for (query, with_comments) in [("", false), ("?with_comments=true", true)] {
        let dir = tempfile::tempdir().unwrap();
        let base = format!("/api/v1/rounds/{ROUND}/exports");
        let (data_name, _) = api
            .save(dir.path(), &format!("{base}/responses{query}"))
            .await;
        assert_eq!(data_name, format!("{ROUND}-responses.csv"));
        let (sps_name, sps_path) = api.save(dir.path(), &format!("{base}/spss{query}")).await;
        assert_eq!(sps_name, format!("{ROUND}-spss.sps"));
        let sps = std::fs::read_to_string(sps_path).unwrap();
        assert_eq!(file_read_by(&sps), data_name);
        assert_eq!(
            sps.contains("--with-comments") && sps.contains("with_comments=true"),
            with_comments,
            "{sps}"
        );
        check_sps_in_pspp(dir.path(), &sps, with_comments);
    }
}

/// The console's results page labels the syntax as SPSS (not "CSV · Excel"); its two links
/// give a syntax and a responses file that PSPP reads together.
#[tokio::test(flavor = "multi_thread")]
async fn console_spss_download_is_labelled_and_runs_in_pspp() {
    let api = start();
    let web = Web::signed_in(&api.server.url, "stat").await;
    let page = web.get(&format!("/rounds/{ROUND}/results")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let item = page
        .body
        .split("<li>")
        .find(|li| li.contains("/exports/spss"))
        .expect("an SPSS item among the exports")
        .split("</li>")
        .next()
        .unwrap();
    assert!(item.contains("SPSS 语法"), "{item}");
    assert!(
        !item.contains(">CSV<") && !item.contains(">Excel<"),
        "{item}"
    );
    assert!(!item.contains("format=xlsx"), "{item}");
    let dir = tempfile::tempdir().unwrap();
    let mut sps = String::new();
    for kind in ["responses", "spss"] {
        let href = format!("/api/v1/rounds/{ROUND}/exports/{kind}");
        assert!(page.body.contains(&format!("href=\"{href}\"")), "{kind}");
        let d = download(web.client.get(format!("{}{href}", api.server.url))).await;
        assert_eq!(d.status, 200);
        let name = d.file_name.unwrap();
        std::fs::write(dir.path().join(&name), &d.bytes).unwrap();
        if kind == "spss" {
            assert!(d.content_type.starts_with("text/plain"));
            sps = String::from_utf8(d.bytes).unwrap();
        }
    }
    check_sps_in_pspp(dir.path(), &sps, false);
}

/// The `.sps` inside report.zip reads the responses CSV beside it, in PSPP.
#[tokio::test(flavor = "multi_thread")]
async fn report_zip_spss_runs_in_pspp() {
    let api = start();
    let web = Web::signed_in(&api.server.url, "stat").await;
    let d = download(
        web.client
            .get(format!("{}/rounds/{ROUND}/report.zip", api.server.url)),
    )
    .await;
    assert_eq!(d.status, 200);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(d.bytes)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut sps = None;
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let name = f.name().unwrap().rsplit('/').next().unwrap().to_string();
        if !(name.ends_with("-responses.csv") || name.ends_with(".sps")) {
            continue;
        }
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        std::fs::write(dir.path().join(&name), &bytes).unwrap();
        if name.ends_with(".sps") {
            sps = Some(String::from_utf8(bytes).unwrap());
        }
    }
    let sps = sps.expect("an .sps in report.zip");
    check_sps_in_pspp(dir.path(), &sps, false);
}

// ---------------------------------------------------------------------------------------------
// API errors

#[tokio::test(flavor = "multi_thread")]
async fn every_api_error_is_json_and_bottom_k_is_checked() {
    let api = start();
    let results = format!("/api/v1/rounds/{ROUND}/results");
    let r = api.get(&results, &api.eval).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    let ranked = doc["units"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| !u["social"]["rank"].is_null())
        .count();
    assert!(ranked >= 3, "{ranked}");

    let bad = |m: &str| m.to_string();
    for q in [
        "bottom_k=abc",
        "bottom_k=-1",
        "bottom_k=0",
        "bottom_k=31",
        "bottom_k=1000000",
        &format!("bottom_k={ranked}"),
        "bottom_k=1&bottom_k=2",
        "bottomk=2",
    ] {
        let (s, v) = api
            .error(api.get(&format!("{results}?{q}"), &api.eval))
            .await;
        assert_eq!(s, 400, "{q}: {v}");
        assert_eq!(v["error"]["code"], "bad_request", "{q}");
        let m = bad(v["error"]["message"].as_str().unwrap());
        assert!(m.contains("bottom_k") || m.contains("bottomk"), "{q}: {m}");
        assert!(!m.contains("Failed to deserialize"), "{m}");
    }
    let (_, v) = api
        .error(api.get(&format!("{results}?bottom_k={ranked}"), &api.eval))
        .await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("1 到 {}", ranked - 1)),
        "{v}"
    );
    // The largest meaningful k is accepted, and not every unit is certain to be in it.
    let r = api
        .get(&format!("{results}?bottom_k={}", ranked - 1), &api.eval)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["bottom_k"], ranked - 1);
    let unit = doc["units"][0]["unit"].as_str().unwrap().to_string();
    let (s, _) = api
        .error(api.get(
            &format!(
                "/api/v1/rounds/{ROUND}/units/{}/results?bottom_k=x",
                urlencode(&unit)
            ),
            &api.eval,
        ))
        .await;
    assert_eq!(s, 400);

    let exports = format!("/api/v1/rounds/{ROUND}/exports/responses");
    for q in ["bom=maybe", "with_comments=yes please", "format=pdf", "x=1"] {
        let (s, v) = api
            .error(api.get(&format!("{exports}?{q}"), &api.stat))
            .await;
        assert_eq!(s, 400, "{q}: {v}");
        let key = q.split('=').next().unwrap();
        assert!(
            v["error"]["message"].as_str().unwrap().contains(key),
            "{q}: {v}"
        );
    }

    for path in [
        "/api/v1/nothing",
        "/api",
        "/api/",
        "/api/v2/rounds",
        "/api/v1/rounds/x/y/z",
    ] {
        let (s, v) = api.error(api.get(path, &api.eval)).await;
        assert_eq!(s, 404, "{path}");
        assert_eq!(v["error"]["code"], "not_found");
    }

    let url = |p: &str| format!("{}{p}", api.server.url);
    for req in [
        api.client
            .post(url("/api/v1/rounds"))
            .bearer_auth(&api.eval),
        api.client.delete(url(&results)).bearer_auth(&api.eval),
        api.client.put(url("/api/v1/openapi.json")),
    ] {
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 405);
        let allow = r.headers()["allow"].to_str().unwrap().to_string();
        assert!(allow.contains("GET"), "{allow}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("application/json"), "{ct}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "method_not_allowed");
    }
    // A cross-site request is refused in the API's shape too.
    let (s, v) = api
        .error(
            api.client
                .post(url("/api/v1/rounds"))
                .header("origin", "http://evil.example")
                .bearer_auth(&api.eval),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["error"]["code"], "forbidden");
    let (s, v) = api
        .error(
            // Its own connection: the server closes it rather than read the body.
            reqwest::Client::new()
                .get(url("/api/v1/rounds"))
                .bearer_auth(&api.eval)
                .body(vec![b'x'; 100_000]),
        )
        .await;
    assert_eq!(s, 413, "{v}");
    assert_eq!(v["error"]["code"], "payload_too_large");

    let r = api
        .client
        .get(url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    let doc: Value = r.json().await.unwrap();
    let codes = doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]
        ["enum"]
        .to_string();
    for path in [
        "/api/v1/rounds",
        "/api/v1/rounds/{key}/results",
        "/api/v1/rounds/{key}/units/{unit}/results",
        "/api/v1/rounds/{key}/exports/{kind}",
    ] {
        let responses = &doc["paths"][path]["get"]["responses"];
        for code in ["400", "404", "405", "413", "429"] {
            assert_eq!(
                responses[code]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/Error",
                "{path} {code}"
            );
        }
    }
    for c in ["bad_request", "method_not_allowed", "payload_too_large"] {
        assert!(codes.contains(c), "{codes}");
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Typed xlsx cells

/// `aapor_code` is text in every row of every xlsx export (`1.1` and `2.21` were numbers, `3.90`
/// text), as the codebook says.
#[test]
fn xlsx_codes_are_text_cells() {
    let sp = Sheping::new();
    build_in(&sp);
    for kind in ["responses", "attempts"] {
        let path = sp.path(&format!("{kind}.xlsx"));
        cli_export(&sp, &[kind, "--out", path.to_str().unwrap()]);
        let mut wb: Xlsx<_> = open_workbook(&path).unwrap();
        let range = wb.worksheet_range(kind).unwrap();
        let mut rows = range.rows();
        let header: Vec<String> = rows.next().unwrap().iter().map(|c| c.to_string()).collect();
        let col = header.iter().position(|h| h == "aapor_code").unwrap();
        let mut n = 0;
        for row in rows {
            match &row[col] {
                Data::String(s) => assert!(s.contains('.'), "{s}"),
                other => panic!("{kind}: aapor_code cell {other:?} is not text"),
            }
            n += 1;
        }
        assert!(n > 0);
        // Numbers stay numbers.
        let attempt_no = header.iter().position(|h| h == "attempt_no").unwrap();
        assert!(
            range
                .rows()
                .skip(1)
                .all(|r| matches!(r[attempt_no], Data::Float(_) | Data::Int(_)))
        );
    }
    let cb = sp.path("codebook.csv");
    cli_export(&sp, &["codebook", "--out", cb.to_str().unwrap()]);
    let (_, rows) = read_csv(&cb);
    assert!(
        rows.iter()
            .filter(|r| r["variable"] == "aapor_code")
            .all(|r| r["type"] == "string")
    );
}

// ---------------------------------------------------------------------------------------------
// The operators export

fn num(s: &str) -> f64 {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s:?}"))
}

fn close(a: &str, b: &Value) {
    match b.as_f64() {
        Some(b) => assert!((num(a) - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} vs {b}"),
        None => assert_eq!(a, "", "null is an empty cell"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn operators_export_matches_progress_results_and_the_stored_attempts() {
    let api = start();
    let dir = tempfile::tempdir().unwrap();
    let path = format!("/api/v1/rounds/{ROUND}/exports/operators");
    let (name, file) = api.save(dir.path(), &path).await;
    assert_eq!(name, format!("{ROUND}-operators.csv"));
    let (headers, rows) = read_csv(&file);
    assert!(!rows.is_empty());

    // Independent counts from the stored attempts.
    let conn = api.sp.sql();
    let mut stmt = conn
        .prepare(
            "SELECT u.login, COUNT(*), SUM(CASE WHEN a.outcome = 'complete' THEN 1 ELSE 0 END) FROM attempts a
             JOIN users u ON u.id = a.operator_id GROUP BY u.login ORDER BY u.login",
        )
        .unwrap();
    let stored: Vec<(String, i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!stored.is_empty());
    for (login, attempts, completes) in &stored {
        let row = rows
            .iter()
            .find(|r| &r["operator"] == login)
            .unwrap_or_else(|| panic!("{login} has a row"));
        assert_eq!(num(&row["attempts"]) as i64, *attempts, "{login}");
        assert_eq!(num(&row["complete_attempts"]) as i64, *completes, "{login}");
    }

    // The figures of /progress (`sheping progress --json`).
    let progress = api.sp.json(&["progress", "--round", ROUND, "--json"]);
    for o in progress["operators"].as_array().unwrap() {
        let login = o["operator"].as_str().unwrap();
        let row = rows.iter().find(|r| r["operator"] == login).unwrap();
        assert_eq!(row["attempts"], o["attempts"].to_string(), "{login}");
        assert_eq!(row["complete_attempts"], o["completes"].to_string());
        close(&row["completion_rate"], &o["completion_rate"]);
    }

    // The interviewer-effect checks of the results JSON.
    let r = api
        .get(&format!("/api/v1/rounds/{ROUND}/results"), &api.stat)
        .send()
        .await
        .unwrap();
    let doc: Value = r.json().await.unwrap();
    let checks = doc["quality"]["operator_effect"]["operators"]
        .as_array()
        .unwrap();
    assert!(!checks.is_empty());
    for c in checks {
        let login = c["operator"].as_str().unwrap();
        let row = rows.iter().find(|r| r["operator"] == login).unwrap();
        assert_eq!(row["scored_interviews"], c["completes"].to_string());
        for k in [
            "mean_centred",
            "welch_t",
            "welch_df",
            "p",
            "p_holm",
            "straight_line_p",
        ] {
            close(&row[k], &c[k]);
        }
        assert_eq!(row["straight_lines"], c["straight_lines"].to_string());
        let bit = |b: &Value| if b.as_bool().unwrap() { "1" } else { "0" };
        assert_eq!(row["flagged"], bit(&c["flagged"]));
        assert_eq!(
            row["straight_line_flagged"],
            bit(&c["straight_line_flagged"])
        );
    }
    // Members per operator add up to the panel; RR1 of the panel.
    for row in &rows {
        let cats: f64 = ["n_I", "n_P", "n_R", "n_NC", "n_O", "n_UH", "n_UO", "n_NE"]
            .iter()
            .map(|k| num(&row[*k]))
            .sum();
        assert_eq!(cats, num(&row["panel"]), "{row:?}");
    }

    // xlsx too; the codebook documents every column; evaluators may not download it.
    let d = download(api.get(&format!("{path}?format=xlsx"), &api.stat)).await;
    assert_eq!(d.status, 200);
    assert!(d.bytes.starts_with(b"PK"));
    let x = dir.path().join("ops.xlsx");
    std::fs::write(&x, &d.bytes).unwrap();
    let mut wb: Xlsx<_> = open_workbook(&x).unwrap();
    let range = wb.worksheet_range("operators").unwrap();
    assert_eq!(range.height(), rows.len() + 1);
    let (s, v) = api.error(api.get(&path, &api.eval)).await;
    assert_eq!(s, 403, "{v}");
    let (_, cb) = api
        .save(
            dir.path(),
            &format!("/api/v1/rounds/{ROUND}/exports/codebook"),
        )
        .await;
    let (_, cb_rows) = read_csv(&cb);
    let documented: Vec<&str> = cb_rows
        .iter()
        .filter(|r| r["file"] == "operators")
        .map(|r| r["variable"].as_str())
        .collect();
    assert_eq!(
        documented,
        headers.iter().map(String::as_str).collect::<Vec<_>>()
    );
    drop(stmt);
}

/// The CLI checks an explicit `--bottom-k` by the same rule as the API.
#[test]
fn cli_results_refuse_a_bottom_k_outside_the_ranked_units() {
    let sp = Sheping::new();
    build_in(&sp);
    let doc = sp.json(&["results", "--round", ROUND, "--json"]);
    let ranked = doc["units"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| !u["social"]["rank"].is_null())
        .count();
    for k in ["0", &ranked.to_string(), "31", "1000000"] {
        let out = sp.run(&["results", "--round", ROUND, "--bottom-k", k]);
        assert!(!out.status.success(), "--bottom-k {k} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("bottom_k"), "{err}");
    }
    let ok = sp.json(&[
        "results",
        "--round",
        ROUND,
        "--json",
        "--bottom-k",
        &(ranked - 1).to_string(),
    ]);
    assert_eq!(ok["bottom_k"], ranked - 1);
}

/// In Chromium, the results page shows the syntax as an SPSS download, the tables as CSV and
/// Excel (the operators' table among them).
#[tokio::test(flavor = "multi_thread")]
async fn console_shows_the_spss_link_as_spss_in_chromium() {
    use thirtyfour::prelude::*;
    let api = start();
    let b = crate::chromium::Browser::start(true).await;
    let d = b.d();
    d.goto(format!("{}/login", api.server.url)).await.unwrap();
    d.find(By::Css("input[name=login]"))
        .await
        .unwrap()
        .send_keys("stat")
        .await
        .unwrap();
    d.find(By::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    d.find(By::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    d.query(By::Css("header nav .who")).first().await.unwrap();
    d.goto(format!("{}/rounds/{ROUND}/results", api.server.url))
        .await
        .unwrap();
    let spss = d
        .query(By::Css("a[href$='/exports/spss']"))
        .first()
        .await
        .unwrap();
    let text = spss.text().await.unwrap();
    assert!(text.contains("SPSS 语法"), "{text}");
    assert!(text.contains(&format!("{ROUND}-responses.csv")), "{text}");
    let item = spss
        .find(By::XPath("./ancestor::li"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!item.contains("CSV ·") && !item.contains("Excel"), "{item}");
    let ops = d
        .find(By::Css("a[href$='/exports/operators?format=xlsx']"))
        .await
        .unwrap();
    assert_eq!(ops.text().await.unwrap(), "Excel");
    b.quit().await;
}

/// `sheping report --with-comments` writes a syntax that declares the comments column of the
/// responses CSV beside it; plain, neither has it. Both run clean in PSPP.
#[test]
fn cli_report_spss_runs_in_pspp_with_and_without_comments() {
    let sp = Sheping::new();
    build_in(&sp);
    for (folder, with_comments) in [("plain", false), ("with-comments", true)] {
        let out = sp.path(folder);
        let mut args = vec![
            "report",
            "--round",
            ROUND,
            "--out",
            out.to_str().unwrap(),
            "--no-png",
        ];
        if with_comments {
            args.push("--with-comments");
        }
        sp.ok(&args);
        let csv = out.join("csv");
        let sps = std::fs::read_to_string(csv.join(format!("{ROUND}-responses.sps"))).unwrap();
        assert_eq!(sps.contains("--with-comments"), with_comments, "{sps}");
        check_sps_in_pspp(&csv, &sps, with_comments);
    }
}
