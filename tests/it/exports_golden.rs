//! Every export, byte for byte: each kind in each format, with and without comments, written to
//! a file (as `sheping export` does), rendered into memory (as the API serves it) and written
//! beside a report (`csv/`), compared with the files under `tests/reference/exports/`. Those
//! were written by the exports as they were before `src/exports` was split into column specs
//! and one renderer, so the split is shown not to change a byte.
//!
//! The fixture is `results_fixture` with a fixed bootstrap seed and pseudonym key and a fixed
//! "now". An xlsx file is compared part by part after unzipping, with the workbook's creation
//! time (the only part that changes from run to run) masked.
//!
//! `SHEPING_BLESS=1 cargo test --test exports_golden` rewrites the reference files; do that
//! only when an export is meant to change, and say so in the commit.

use crate::common;
use crate::common::results_fixture;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use common::Sheping;
use sheping::exports::{self, ExportFormat, ExportKind, ExportOptions};
use sheping::report::{self, ReportOptions};

const REFERENCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/exports");

/// The fixture round with its results settings fixed (they are random when first drawn).
fn fixture(sp: &Sheping) -> results_fixture::Fixture {
    let fx = results_fixture::build_for(sp);
    let db = sp.sql();
    db.execute(
        "DELETE FROM round_results WHERE round_id = ?1",
        [fx.round.id],
    )
    .unwrap();
    db.execute(
        "INSERT INTO round_results (round_id, bootstrap_seed, pseudonym_key, created_at) \
         VALUES (?1, '20221102', ?2, 0)",
        crate::params![fx.round.id, "5e".repeat(32)],
    )
    .unwrap();
    fx
}

/// Every file the exports write, by its name under `tests/reference/exports/`, plus a
/// manifest of what the calls answered (rows, formats, content types, file names).
fn produce(sp: &Sheping) -> BTreeMap<String, Vec<u8>> {
    let fx = fixture(sp);
    let store = &*fx.store;
    let round = &fx.round;
    let now = results_fixture::now();
    let mut files = BTreeMap::new();
    let mut manifest = String::new();
    let keep = |files: &mut BTreeMap<String, Vec<u8>>, name: String, path: &Path| {
        files.insert(name, std::fs::read(path).unwrap());
    };
    for with_comments in [false, true] {
        let wc = if with_comments { "comments" } else { "plain" };
        for &kind in ExportKind::all() {
            let formats: &[ExportFormat] = if kind == ExportKind::Spss {
                &[ExportFormat::Csv]
            } else {
                &[ExportFormat::Csv, ExportFormat::Xlsx]
            };
            for &format in formats {
                let opts = ExportOptions {
                    format,
                    with_comments,
                    ..ExportOptions::default()
                };
                // To a file, as `sheping export` writes it.
                let dir = sp.path(&format!("file-{wc}-{}", format.key()));
                std::fs::create_dir_all(&dir).unwrap();
                let ext = if kind == ExportKind::Spss {
                    "sps"
                } else {
                    format.key()
                };
                let out = dir.join(format!("{}.{ext}", kind.key()));
                let summary =
                    exports::export_to_file(store, round, kind, &out, &opts, "golden", now)
                        .unwrap();
                manifest.push_str(&format!(
                    "file {wc} {} {}: rows {} format {}\n",
                    kind.key(),
                    format.key(),
                    summary.rows,
                    summary.format
                ));
                for f in &summary.files {
                    let name = f.file_name().unwrap().to_str().unwrap();
                    manifest.push_str(&format!("  wrote {name}\n"));
                    keep(&mut files, format!("file-{wc}-{}/{name}", format.key()), f);
                }
                // In memory, as the API serves it.
                let b = exports::export_bytes(store, round, kind, &opts, "golden", now).unwrap();
                manifest.push_str(&format!(
                    "bytes {wc} {} {}: rows {} {} {}\n",
                    kind.key(),
                    format.key(),
                    b.rows,
                    b.content_type,
                    b.file_name
                ));
                files.insert(format!("api-{wc}/{}", b.file_name), b.bytes);
            }
        }
    }
    // Without a BOM, and SPSS syntax reading a file of another name.
    for kind in [ExportKind::Responses, ExportKind::Scores] {
        let opts = ExportOptions {
            bom: false,
            ..ExportOptions::default()
        };
        let out = sp.path(&format!("{}-nobom.csv", kind.key()));
        exports::export_to_file(store, round, kind, &out, &opts, "golden", now).unwrap();
        keep(&mut files, format!("nobom/{}.csv", kind.key()), &out);
        let b = exports::export_bytes(store, round, kind, &opts, "golden", now).unwrap();
        files.insert(format!("nobom/api-{}", b.file_name), b.bytes);
    }
    let opts = ExportOptions {
        responses_file: "答案 2022's/x.csv".into(),
        ..ExportOptions::default()
    };
    let out = sp.path("named.sps");
    exports::export_to_file(store, round, ExportKind::Spss, &out, &opts, "golden", now).unwrap();
    keep(&mut files, "named/named.sps".into(), &out);
    // Beside a report.
    for with_comments in [false, true] {
        let wc = if with_comments { "comments" } else { "plain" };
        let out = sp.path(&format!("report-{wc}"));
        let opts = ReportOptions {
            unit: None,
            with_comments,
            skip_png: true,
            results: Default::default(),
        };
        let summary = report::run(store, round, &opts, &out, "golden", now).unwrap();
        for p in &summary.exports {
            let name = p
                .strip_prefix(&out)
                .unwrap()
                .to_str()
                .unwrap()
                .replace('\\', "/");
            manifest.push_str(&format!("report {wc}: {name}\n"));
            keep(&mut files, format!("report-{wc}/{name}"), p);
        }
    }
    files.insert("manifest.txt".into(), manifest.into_bytes());
    files
}

/// The parts of an xlsx file with the creation time masked.
fn xlsx_parts(bytes: &[u8]) -> BTreeMap<String, String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut parts = BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let mut text = String::new();
        f.read_to_string(&mut text).unwrap();
        for tag in ["dcterms:created", "dcterms:modified"] {
            if let (Some(a), Some(b)) = (
                text.find(&format!("<{tag}")),
                text.find(&format!("</{tag}>")),
            ) {
                text.replace_range(a..b, &format!("<{tag}>(time)"));
            }
        }
        let name = f.name().unwrap().to_string();
        parts.insert(name, text);
    }
    parts
}

fn first_difference(want: &[u8], got: &[u8]) -> String {
    let want = String::from_utf8_lossy(want);
    let got = String::from_utf8_lossy(got);
    for (i, (w, g)) in want.lines().zip(got.lines()).enumerate() {
        if w != g {
            return format!("line {}:\n  want {w:?}\n  got  {g:?}", i + 1);
        }
    }
    format!(
        "lengths differ: want {} lines, got {} lines",
        want.lines().count(),
        got.lines().count()
    )
}

fn reference_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::from(dir)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.file_name().unwrap().to_str().unwrap().starts_with('.') {
                let rel = p.strip_prefix(dir).unwrap().to_str().unwrap();
                out.push(rel.replace('\\', "/"));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_export_is_byte_identical_to_the_reference_files() {
    let sp = Sheping::new();
    let files = produce(&sp);
    let reference = Path::new(REFERENCE);
    if std::env::var_os("SHEPING_BLESS").is_some() {
        for old in reference_files(reference) {
            std::fs::remove_file(reference.join(old)).unwrap();
        }
        for (name, bytes) in &files {
            let p = reference.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        }
        return;
    }
    let names: Vec<String> = files.keys().cloned().collect();
    assert_eq!(
        reference_files(reference),
        names,
        "the exports wrote other files than tests/reference/exports/ holds"
    );
    for (name, got) in &files {
        let want = std::fs::read(reference.join(name)).unwrap();
        if name.ends_with(".xlsx") {
            let (w, g) = (xlsx_parts(&want), xlsx_parts(got));
            assert_eq!(
                w.keys().collect::<Vec<_>>(),
                g.keys().collect::<Vec<_>>(),
                "{name}: the workbook's parts differ"
            );
            for (part, text) in &w {
                assert!(
                    g[part] == *text,
                    "{name} ({part}) differs from the reference: {}",
                    first_difference(text.as_bytes(), g[part].as_bytes())
                );
            }
        } else {
            assert!(
                want == *got,
                "{name} differs from the reference: {}",
                first_difference(&want, got)
            );
        }
    }
}

/// The reference files are what a fresh run writes: nothing in them depends on the run (a
/// random key, the clock), so the comparison above can only fail when an export changed.
#[test]
fn two_runs_write_the_same_bytes() {
    let (a, b) = (Sheping::new(), Sheping::new());
    let (fa, fb) = (produce(&a), produce(&b));
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (name, bytes) in &fa {
        if name.ends_with(".xlsx") {
            assert_eq!(xlsx_parts(bytes), xlsx_parts(&fb[name]), "{name}");
        } else {
            assert!(*bytes == fb[name], "{name}");
        }
    }
}

/// The API renders an xlsx download in memory: with no writable temporary directory (the
/// exports used to go through a temporary file) it still serves the same workbook, and the
/// same bytes over HTTP as the reference files hold (kinds that do not depend on the clock:
/// the server computes at its own "now").
#[tokio::test(flavor = "multi_thread")]
async fn api_downloads_need_no_temporary_file() {
    let sp = Sheping::new();
    // Built and closed on a thread of its own (the PostgreSQL store has a runtime of its own).
    std::thread::scope(|s| s.spawn(|| drop(fixture(&sp))).join().unwrap());
    common::add_user(&sp, "stat", "statistician");
    let token = common::api_token(&sp, "stat");
    let missing = sp.path("no-such-temp-dir");
    let server = common::browser::WebServer::start(&sp, &[("TMPDIR", missing.to_str().unwrap())]);
    let client = reqwest::Client::new();
    for name in [
        "2022-responses.xlsx",
        "2022-onsite.xlsx",
        "2022-responses.csv",
    ] {
        let (kind, format) = name
            .strip_prefix("2022-")
            .and_then(|n| n.split_once('.'))
            .unwrap();
        let r = client
            .get(format!(
                "{}/api/v1/rounds/2022/exports/{kind}?format={format}",
                server.url
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name}");
        let got = r.bytes().await.unwrap();
        let want = std::fs::read(Path::new(REFERENCE).join("api-plain").join(name)).unwrap();
        if format == "xlsx" {
            assert_eq!(xlsx_parts(&got), xlsx_parts(&want), "{name}");
        } else {
            assert!(*got == *want, "{name}: {}", first_difference(&want, &got));
        }
    }
    assert!(!missing.exists());
}
