//! Path traversal: nothing the server serves and nothing the CLI writes can be steered outside
//! where it belongs by a path, a round key or a unit name.
//!
//! * Downloads (charts, the report zip, API exports, static files, per-unit results) with
//!   `../`, encoded and double-encoded dots and slashes, backslashes, absolute paths, NUL and
//!   unicode look-alikes in the path answer 4xx and show no file from outside (a canary file
//!   beside the database, `Cargo.toml` of the server's working directory, `/etc/passwd`).
//! * Rounds whose keys are odd (`t..`, accepted; `..`, backslashes, a control character, which
//!   the forms refuse but an old database may hold) download under safe file names, and the
//!   report zip's entries stay inside one folder.
//! * `sheping report --out` and `sheping export --out` with round keys and unit names full of
//!   `../`, `/` and `\` (also keys no form would accept, as an old or hand-edited database may
//!   hold) write only inside the output asked for; every chart a feedback page shows exists.

use crate::common;
use crate::common::raw_http;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use common::Sheping;
use common::browser::{PASSWORD, WebServer, fixture};
use raw_http::{Session, encode, send, sign_in};

const CANARY: &str = "CANARY-7f1e2d3c-outside-the-data";

/// Contents that must never come back from the server.
fn outside_content(text: &str) -> Option<&'static str> {
    [
        CANARY,
        "root:x:0:0",
        "[package]",
        "[dependencies]",
        "daemon:x:",
    ]
    .into_iter()
    .find(|m| text.contains(m))
}

/// Unit names that are paths.
const HOSTILE_UNITS: &[&str] = &[
    "../../逃逸单位",
    "/etc/passwd",
    "..",
    "a\\..\\..\\b",
    "..\\..\\windows\\win.ini",
    "C:\\evil",
    "单位.名称/../x",
    "x.y",
];

fn units_csv(names: &[&str]) -> String {
    let mut s = String::from("单位名称,单位类型,系统,单位代码\n");
    for (i, n) in names.iter().enumerate() {
        // Quoted: the names hold commas' friends (slashes, backslashes, dots).
        s.push_str(&format!("\"{n}\",党政机关,测试,H{i}\n"));
    }
    s
}

/// Creates a round through the administrator's form (multipart, default survey).
fn create_round_on_the_web(url: &str, admin: &Session, key: &str) -> u16 {
    let b = "----traversal0boundary";
    let mut body = String::new();
    for (k, v) in [
        ("csrf", admin.csrf.as_str()),
        ("key", key),
        ("title", "奇怪的轮次"),
    ] {
        body.push_str(&format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
        ));
    }
    body.push_str(&format!("--{b}--\r\n"));
    let ct = format!("multipart/form-data; boundary={b}");
    send(
        url,
        "POST",
        b"/admin/rounds",
        &[("Cookie", &admin.cookie), ("Content-Type", &ct)],
        body.as_bytes(),
    )
    .unwrap()
    .status
}

/// A file name that is one plain component on every system: not `.` or `..`, no separator
/// (`/`, or `\` as Windows and many unzip tools read it), no drive colon, no control
/// character, no quote.
fn assert_safe_file_name(name: &str, what: &str) {
    assert!(
        !name.is_empty()
            && name != "."
            && name != ".."
            && !name.contains(['/', '\\', ':', '"'])
            && !name.chars().any(char::is_control),
        "{what}: unsafe file name {name:?}"
    );
}

/// The file names in a `Content-Disposition` header (`filename` and decoded `filename*`).
fn disposition_names(header: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in header.split(';').map(str::trim) {
        if let Some(v) = part.strip_prefix("filename=") {
            out.push(v.trim_matches('"').to_string());
        } else if let Some(v) = part.strip_prefix("filename*=UTF-8''") {
            let bytes = v.as_bytes();
            let mut decoded = Vec::new();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'%' && i + 3 <= bytes.len() {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                    decoded.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 3;
                } else {
                    decoded.push(bytes[i]);
                    i += 1;
                }
            }
            out.push(String::from_utf8_lossy(&decoded).into_owned());
        }
    }
    out
}

/// Every entry of a zip sits in one top folder whose name is safe, with no `..`, no absolute
/// path and no backslash anywhere.
fn assert_safe_zip(bytes: &[u8], what: &str) -> Vec<String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec()))
        .unwrap_or_else(|e| panic!("{what}: not a zip: {e}"));
    let names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
    assert!(!names.is_empty(), "{what}: empty zip");
    let top = names[0].split('/').next().unwrap().to_string();
    assert_safe_file_name(&top, &format!("{what}: top folder"));
    for n in &names {
        assert!(
            !n.starts_with('/') && !n.contains('\\') && !n.chars().any(char::is_control),
            "{what}: unsafe entry {n:?}"
        );
        assert!(
            n.split('/').all(|c| c != ".." && c != "."),
            "{what}: entry {n:?} climbs out"
        );
        assert_eq!(
            n.split('/').next().unwrap(),
            top,
            "{what}: {n:?} outside {top}"
        );
        let mut f = zip.by_name(n).unwrap();
        let mut text = Vec::new();
        f.read_to_end(&mut text).unwrap();
        if let Some(m) = outside_content(&String::from_utf8_lossy(&text)) {
            panic!("{what}: {n} holds {m}");
        }
    }
    names
}

#[test]
fn downloads_refuse_traversal_and_name_their_files_safely() {
    let sp = fixture();
    std::fs::write(sp.path("secret.txt"), CANARY).unwrap();
    // A round whose units are named like paths.
    sp.ok(&[
        "round",
        "create",
        "trav",
        "--title",
        "路径单位",
        "--survey",
        concat!(env!("CARGO_MANIFEST_DIR"), "/surveys/default.toml"),
    ]);
    let units = sp.write("hostile-units.csv", units_csv(HOSTILE_UNITS).as_bytes());
    sp.ok(&[
        "units",
        "import",
        "--round",
        "trav",
        units.to_str().unwrap(),
    ]);
    let server = WebServer::start(&sp, &[]);
    let url = server.url.as_str();
    let admin = sign_in(url, "admin", PASSWORD);
    let stat = sign_in(url, "stat", PASSWORD);

    // Keys the administrator's form accepts although they hold dots.
    let accepted_keys = ["t..", "t.-_"];
    for k in accepted_keys {
        let status = create_round_on_the_web(url, &admin, k);
        assert_eq!(status, 303, "creating round {k:?}");
    }
    // Keys like paths, with a control character or look-alikes: the form refuses them...
    let odd_keys = ["..", "..\\..\\evil", "a\u{1}b", "%2e%2e", "ｔ"];
    for k in odd_keys
        .iter()
        .chain(&["../../etc", "/etc/passwd", "a/b", ".", "a\\b"])
    {
        assert_eq!(create_round_on_the_web(url, &admin, k), 422, "{k:?}");
    }
    // ...but a database from before the rule (or edited by hand) may hold them.
    for (i, k) in odd_keys.iter().enumerate() {
        let plain = format!("legacy{i}");
        assert_eq!(create_round_on_the_web(url, &admin, &plain), 303, "{plain}");
        sp.sql()
            .execute(
                "UPDATE rounds SET key = ?2 WHERE key = ?1",
                [plain.as_str(), k],
            )
            .unwrap();
    }

    let hostile = [
        // Charts: only the named charts exist.
        "/rounds/t/charts/../../../../etc/passwd",
        "/rounds/t/charts/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/rounds/t/charts/%2e%2e%2f%2e%2e%2fCargo.toml",
        "/rounds/t/charts/%2e%2e/%2e%2e/Cargo.toml",
        "/rounds/t/charts/%252e%252e%252fCargo.toml",
        "/rounds/t/charts/..%5c..%5cCargo.toml",
        "/rounds/t/charts/..\\..\\Cargo.toml",
        "/rounds/t/charts//etc/passwd",
        "/rounds/t/charts/%2fetc%2fpasswd",
        "/rounds/t/charts/ranking.svg%00.png",
        "/rounds/t/charts/ranking.svg%00",
        "/rounds/t/charts/ranking.svg/..%2f..%2fsecret.txt",
        "/rounds/t/charts/%EF%BC%8E%EF%BC%8E%EF%BC%8Fsecret.txt",
        "/rounds/t/charts/%E2%80%A4%E2%80%A4%2Fsecret.txt",
        "/rounds/t/charts/%C0%AE%C0%AE%2Fsecret.txt",
        "/rounds/t/charts/ranking%E2%88%95..%E2%88%95secret.txt",
        "/rounds/t/charts/secret.txt",
        "/rounds/t/charts/../../secret.txt",
        // The report zip: only rounds that exist.
        "/rounds/..%2f..%2fetc%2fpasswd/report.zip",
        "/rounds/../../etc/passwd",
        "/rounds/t/../../etc/passwd/report.zip",
        "/rounds/%00/report.zip",
        "/rounds/t%00/report.zip",
        "/rounds/%2Fetc%2Fpasswd/report.zip",
        "/rounds/C:%5CWindows%5Cwin.ini/report.zip",
        "/rounds/t/report.zip/../../../../etc/passwd",
        "/rounds/t/report.zip%2f..%2f..%2fsecret.txt",
        "/rounds/%E2%80%A4%E2%80%A4/report.zip",
        // API exports and per-unit results.
        "/api/v1/rounds/t/exports/..%2f..%2f..%2fetc%2fpasswd",
        "/api/v1/rounds/t/exports/../../../etc/passwd",
        "/api/v1/rounds/t/exports/scores%2f..%2f..%2fsecret.txt",
        "/api/v1/rounds/t/exports/scores?format=..%2f..%2fsecret.txt",
        "/api/v1/rounds/t/exports/scores?format=/etc/passwd",
        "/api/v1/rounds/t/exports/scores%00.csv",
        "/api/v1/rounds/..%2f..%2fetc/exports/scores",
        "/api/v1/rounds/t/units/..%2f..%2fetc%2fpasswd/results",
        "/api/v1/rounds/t/units/%2e%2e/results",
        "/api/v1/rounds/t/units/%2Fetc%2Fpasswd/results",
        // Static files: a fixed list, no directory behind it.
        "/static/..%2f..%2fCargo.toml",
        "/static/../../Cargo.toml",
        "/static/%2e%2e/%2e%2e/Cargo.toml",
        "/static/style.css/../../../Cargo.toml",
        "/static/style.css%00",
        "/static/..%5c..%5cCargo.toml",
        "/static/%2e%2e%5c%2e%2e%5cCargo.toml",
        "/static/secret.txt",
        // Anything else.
        "/..%2f..%2fetc%2fpasswd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "//etc/passwd",
        "/../../../../etc/passwd",
        "/Cargo.toml",
        "/secret.txt",
        "/%2e%2e%2fsecret.txt",
    ];
    for target in hostile {
        for s in [&stat, &admin] {
            let r = raw_http::get(url, target, Some(&s.cookie));
            let text = r.text();
            assert!(
                (400..500).contains(&r.status),
                "GET {target} as {}: {} {}",
                s.login,
                r.status,
                text.chars().take(300).collect::<String>()
            );
            if let Some(m) = outside_content(&text) {
                panic!("GET {target}: shows {m}");
            }
        }
    }

    // The odd rounds download under safe names, their zips stay in one folder, and no
    // download holds anything from outside.
    let keys: Vec<String> = {
        let c = sp.sql();
        let mut st = c.prepare("SELECT key FROM rounds ORDER BY id").unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert!(
        keys.len() >= 1 + accepted_keys.len() + odd_keys.len(),
        "{keys:?}"
    );
    for key in &keys {
        let k = encode(key.as_bytes());
        let zip = raw_http::get(url, &format!("/rounds/{k}/report.zip"), Some(&stat.cookie));
        assert_eq!(
            zip.status,
            200,
            "report.zip of {key:?}: {}",
            zip.text().chars().take(300).collect::<String>()
        );
        let cd = zip.header("content-disposition").unwrap_or("");
        let names = disposition_names(cd);
        assert!(!names.is_empty(), "report.zip of {key:?}: {cd}");
        for n in &names {
            assert_safe_file_name(n, &format!("report.zip of {key:?}"));
        }
        let entries = assert_safe_zip(&zip.body, &format!("report.zip of {key:?}"));
        if key == "trav" {
            // One feedback page per unit, whatever its name.
            let pages = entries.iter().filter(|e| e.contains("/feedback/")).count();
            assert_eq!(pages, HOSTILE_UNITS.len(), "{entries:?}");
        }
        for kind in ["scores", "codebook", "spss"] {
            for format in ["csv", "xlsx"] {
                if kind == "spss" && format == "xlsx" {
                    continue;
                }
                let path = format!("/api/v1/rounds/{k}/exports/{kind}?format={format}");
                let r = raw_http::get(url, &path, Some(&stat.cookie));
                assert_eq!(r.status, 200, "{path}: {}", r.text());
                let cd = r.header("content-disposition").unwrap_or("");
                let names = disposition_names(cd);
                assert_eq!(names.len(), 2, "{path}: {cd}");
                for n in &names {
                    assert_safe_file_name(n, &path);
                }
                if let Some(m) = outside_content(&r.text()) {
                    panic!("{path}: holds {m}");
                }
            }
        }
        let chart = raw_http::get(
            url,
            &format!("/rounds/{k}/charts/ranking.svg"),
            Some(&stat.cookie),
        );
        assert_eq!(chart.status, 200, "ranking chart of {key:?}");
    }
    // A round that does not exist is a 404 for each download, not an error.
    for path in [
        "/rounds/nope/report.zip",
        "/rounds/nope/charts/ranking.svg",
        "/api/v1/rounds/nope/exports/scores",
    ] {
        assert_eq!(raw_http::get(url, path, Some(&stat.cookie)).status, 404);
    }
    // The administrator's own pages for the odd rounds work too (links are encoded).
    for key in &keys {
        let r = raw_http::get(
            url,
            &format!("/admin/rounds/{}", encode(key.as_bytes())),
            Some(&admin.cookie),
        );
        assert_eq!(r.status, 200, "admin page of {key:?}");
    }
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p);
            }
        }
    }
    out
}

/// Runs a CLI command that writes files and checks that every file it added lies under
/// `inside`.
fn writes_only_inside(sp: &Sheping, args: &[&str], inside: &Path) -> Vec<PathBuf> {
    let watch = sp.dir.path();
    let before = files_under(watch);
    let out = sp.run(args);
    assert!(
        out.status.success(),
        "sheping {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let after = files_under(watch);
    let db = sp.db.display().to_string();
    let added: Vec<PathBuf> = after
        .difference(&before)
        .filter(|p| !p.display().to_string().starts_with(&db))
        .cloned()
        .collect();
    assert!(!added.is_empty(), "sheping {args:?} wrote nothing");
    for p in &added {
        assert!(
            p.starts_with(inside),
            "sheping {args:?} wrote {} outside {}",
            p.display(),
            inside.display()
        );
    }
    added
}

#[test]
fn cli_reports_and_exports_stay_inside_their_output() {
    let sp = Sheping::new();
    let survey = concat!(env!("CARGO_MANIFEST_DIR"), "/surveys/default.toml");
    let units = sp.write("hostile-units.csv", units_csv(HOSTILE_UNITS).as_bytes());
    // Keys the CLI accepts, and keys only an old or hand-edited database could hold.
    let accepted = ["2022", "t..", "legacy1", "legacy2", "legacy3", "legacy4"];
    for k in accepted {
        sp.ok(&["round", "create", k, "--title", "路径", "--survey", survey]);
        sp.ok(&["units", "import", "--round", k, units.to_str().unwrap()]);
    }
    for k in ["../../x", "..", "a\\..\\..\\b"] {
        let refused = sp.run(&["round", "create", k, "--title", "x", "--survey", survey]);
        assert!(!refused.status.success(), "{k:?}");
    }
    let absolute = format!("{}/absolute", sp.dir.path().display());
    let stored: Vec<(String, String)> = vec![
        ("legacy1".into(), "../../escape".into()),
        ("legacy2".into(), absolute.clone()),
        ("legacy3".into(), "..".into()),
        ("legacy4".into(), "a\\..\\..\\b".into()),
    ];
    for (from, to) in &stored {
        sp.sql()
            .execute("UPDATE rounds SET key = ?2 WHERE key = ?1", [from, to])
            .unwrap();
    }
    let keys: Vec<String> = accepted[..2]
        .iter()
        .map(|s| s.to_string())
        .chain(stored.iter().map(|(_, k)| k.clone()))
        .collect();

    let outdir = sp.path("out");
    for (i, key) in keys.iter().enumerate() {
        // The whole report, zipped.
        let dir = outdir.join(format!("r{i}"));
        let added = writes_only_inside(
            &sp,
            &[
                "report",
                "--round",
                key,
                "--out",
                dir.to_str().unwrap(),
                "--zip",
                "--no-png",
            ],
            &outdir,
        );
        let zip_path = outdir.join(format!("r{i}.zip"));
        for p in &added {
            assert!(
                p.starts_with(&dir) || *p == zip_path,
                "report of {key:?} wrote {}",
                p.display()
            );
        }
        let bytes = std::fs::read(&zip_path).unwrap();
        assert_safe_zip(&bytes, &format!("report --zip of {key:?}"));
        for p in &added {
            let name = p.file_name().unwrap().to_str().unwrap();
            assert_safe_file_name(name, &format!("report of {key:?}"));
        }
        // Every chart a feedback page shows is there (unit names with dots included).
        let pages: Vec<&PathBuf> = added
            .iter()
            .filter(|p| p.parent().is_some_and(|d| d.ends_with("feedback")))
            .collect();
        assert_eq!(pages.len(), HOSTILE_UNITS.len(), "{key:?}: {added:?}");
        for page in pages {
            let html = std::fs::read_to_string(page).unwrap();
            let mut rest = html.as_str();
            let mut linked = 0;
            while let Some(at) = rest.find("../charts/units/") {
                let tail = &rest[at..];
                let end = tail.find(['"', '\'', ')']).unwrap();
                let rel = percent_decode(&tail[3..end]);
                assert!(
                    dir.join(&rel).exists(),
                    "{} links {rel}, which was not written",
                    page.display()
                );
                linked += 1;
                rest = &tail[end..];
            }
            assert!(linked >= 3, "{}: {linked} charts", page.display());
        }
        // One unit's page, chosen by a path-like name.
        let unit_dir = outdir.join(format!("u{i}"));
        writes_only_inside(
            &sp,
            &[
                "report",
                "--round",
                key,
                "--unit",
                "../../逃逸单位",
                "--out",
                unit_dir.to_str().unwrap(),
                "--no-png",
            ],
            &unit_dir,
        );
        // Exports write exactly the file asked for (and a codebook its .sps beside it).
        let exp = outdir.join(format!("e{i}"));
        std::fs::create_dir_all(&exp).unwrap();
        for (kind, file, expect) in [
            ("scores", "scores.csv", vec!["scores.csv"]),
            (
                "codebook",
                "codebook.xlsx",
                vec!["codebook.xlsx", "codebook.sps"],
            ),
            ("spss", "syntax.sps", vec!["syntax.sps"]),
        ] {
            let target = exp.join(file);
            let added = writes_only_inside(
                &sp,
                &[
                    "export",
                    kind,
                    "--round",
                    key,
                    "--out",
                    target.to_str().unwrap(),
                ],
                &exp,
            );
            let names: BTreeSet<String> = added
                .iter()
                .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
                .collect();
            let expect: BTreeSet<String> = expect.into_iter().map(String::from).collect();
            assert_eq!(names, expect, "export {kind} of {key:?}");
        }
    }
    assert!(!Path::new(&format!("{absolute}-scores.csv")).exists());
    assert!(!sp.path("escape-scores.csv").exists());
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 3 <= b.len() {
            out.push(
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap(), 16).unwrap(),
            );
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}
