//! Imports at province scale, measured on the real processes: a million-row roster through the
//! CLI in bounded memory, a zip bomb stopped at the unzip limit without inflating into memory,
//! and an upload with hundreds of thousands of bad rows that neither grows the server nor its
//! answer with the errors (the page lists the first 200; every rejected row is a download).
//!
//! Memory is the process's peak resident size (VmHWM in /proc), a bound rather than a timing.

use crate::common;

use std::io::Write;
use std::process::{Child, Command, Stdio};

use common::Sheping;
use common::browser::{Web, WebServer, fixture};
use reqwest::multipart::{Form, Part};

const MIB: u64 = 1024 * 1024;

/// The peak resident size of a running process, in bytes.
fn vm_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Waits for `child`, polling its peak resident size; returns (exit success, peak bytes,
/// stdout, stderr). Bounded: gives up (and kills the child) after about twenty minutes.
fn run_measured(mut cmd: Command) -> (bool, u64, String, String) {
    let out_path = tempfile::NamedTempFile::new().unwrap();
    let err_path = tempfile::NamedTempFile::new().unwrap();
    cmd.stdout(Stdio::from(out_path.reopen().unwrap()))
        .stderr(Stdio::from(err_path.reopen().unwrap()));
    let mut child: Child = cmd.spawn().expect("spawn sheping");
    let mut peak = 0;
    let mut status = None;
    for _ in 0..120_000 {
        if let Some(hwm) = vm_hwm(child.id()) {
            peak = peak.max(hwm);
        }
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the import did not finish");
    };
    let read = |p: &tempfile::NamedTempFile| std::fs::read_to_string(p.path()).unwrap();
    (status.success(), peak, read(&out_path), read(&err_path))
}

/// The address of the rejects download an upload's page offers.
fn rejects_link(page: &str) -> String {
    page.split("id=\"rejects-link\"")
        .next()
        .and_then(|s| s.rsplit("href=\"").next())
        .and_then(|s| s.split('"').next())
        .expect("a rejects link")
        .to_string()
}

/// Writes a roster of `rows` rows (45 per unit, messy but valid phones) and the units file it
/// needs; returns (units path, roster path).
fn million_roster(sp: &Sheping, rows: usize) -> (std::path::PathBuf, std::path::PathBuf) {
    let per_unit = 45;
    let units = sp.path("units.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&units).unwrap());
    writeln!(out, "单位名称,单位类型").unwrap();
    for u in 0..rows.div_ceil(per_unit) {
        writeln!(out, "单位{u:06},事业单位").unwrap();
    }
    out.flush().unwrap();
    let roster = sp.path("roster.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&roster).unwrap());
    writeln!(out, "参评单位,姓名,联系电话,代表类别,工作单位及职务").unwrap();
    for i in 0..rows {
        let n = 3_000_000_000u64 + i as u64;
        let phone = match i % 3 {
            0 => format!(
                "1{} {:04} {:05}",
                3 + n % 7,
                (n % 1_000_000_000) / 100_000,
                n % 100_000
            ),
            1 => format!("+86-1{}{:09}", 3 + n % 7, n % 1_000_000_000),
            _ => format!("1{}-{:09}", 3 + n % 7, n % 1_000_000_000),
        };
        let cat = if i % 15 == 0 { "人大代表" } else { "" };
        writeln!(
            out,
            "单位{:06},代表{i},{phone},{cat},某社区居民委员会居民代表",
            i / per_unit
        )
        .unwrap();
    }
    out.flush().unwrap();
    (units, roster)
}

#[test]
fn a_million_row_roster_above_the_old_size_cap_imports_in_bounded_memory() {
    let sp = Sheping::new();
    let rows = 1_000_000;
    let (units, roster) = million_roster(&sp, rows);
    let size = std::fs::metadata(&roster).unwrap().len();
    // Above the 64 MiB the CLI used to refuse.
    assert!(size > 64 * MIB, "{size}");
    sp.ok(&["round", "create", "2022", "--title", "全省名单"]);
    sp.ok(&[
        "units",
        "import",
        "--round",
        "2022",
        units.to_str().unwrap(),
    ]);
    let mut cmd = sp.command();
    cmd.args(["roster", "import", "--round", "2022"])
        .arg(&roster);
    let (ok, peak, stdout, stderr) = run_measured(cmd);
    assert!(ok, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.contains(&format!("已导入 {rows} 名代表")),
        "{stdout}"
    );
    assert_eq!(sp.count("SELECT COUNT(*) FROM members"), rows as i64);
    eprintln!(
        "roster import of {rows} rows: peak memory {} MiB",
        peak / MIB
    );
    assert!(
        peak <= 128 * MIB,
        "peak memory {} MiB for {rows} rows",
        peak / MIB
    );
}

#[test]
fn a_bad_row_near_the_end_of_a_large_roster_stores_nothing_and_names_its_line() {
    let sp = Sheping::new();
    let rows = 200_000;
    let (units, roster) = million_roster(&sp, rows);
    // One unknown unit on the second-to-last data line.
    let mut text = std::fs::read_to_string(&roster).unwrap();
    let last_lines: Vec<&str> = text.trim_end().rsplitn(3, '\n').collect();
    let bad = last_lines[1].replacen("单位", "无此单位", 1);
    let cut = text.trim_end().len() - last_lines[0].len() - last_lines[1].len() - 1;
    text = format!("{}{bad}\n{}\n", &text[..cut], last_lines[0]);
    std::fs::write(&roster, text).unwrap();
    sp.ok(&["round", "create", "2022", "--title", "名单"]);
    sp.ok(&[
        "units",
        "import",
        "--round",
        "2022",
        units.to_str().unwrap(),
    ]);
    let out = sp.run(&[
        "roster",
        "import",
        "--round",
        "2022",
        roster.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Header on line 1, so data row k is on line k + 1: the bad one is row rows - 1.
    assert!(stderr.contains(&format!("第 {} 行", rows)), "{stderr}");
    assert_eq!(sp.count("SELECT COUNT(*) FROM members"), 0);
}

/// The raw deflate of an xlsx worksheet that repeats one row until it is `size` bytes.
fn bomb_sheet(size: u64) -> Vec<u8> {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(b"<?xml version=\"1.0\"?><worksheet><sheetData>")
        .unwrap();
    let row = b"<row><c t=\"inlineStr\"><is><t>x</t></is></c></row>".repeat(20_000);
    let mut written = 0;
    while written < size {
        enc.write_all(&row).unwrap();
        written += row.len() as u64;
    }
    enc.write_all(b"</sheetData></worksheet>").unwrap();
    enc.finish().unwrap()
}

/// A zip with one deflated entry whose headers declare `declared` bytes unzipped.
fn zip_one(name: &str, data: &[u8], declared: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let u16le = |v: usize| (v as u16).to_le_bytes();
    let u32le = |v: usize| (v as u32).to_le_bytes();
    let mut local = Vec::new();
    local.extend(b"PK\x03\x04");
    local.extend(u16le(20));
    local.extend(u16le(0));
    local.extend(u16le(8));
    local.extend(u32le(0));
    local.extend(u32le(0)); // crc
    local.extend(u32le(data.len()));
    local.extend(declared.to_le_bytes());
    local.extend(u16le(name.len()));
    local.extend(u16le(0));
    local.extend(name.as_bytes());
    out.extend(&local);
    out.extend(data);
    let cd_offset = out.len();
    let mut central = Vec::new();
    central.extend(b"PK\x01\x02");
    central.extend(u16le(20));
    central.extend(u16le(20));
    central.extend(u16le(0));
    central.extend(u16le(8));
    central.extend(u32le(0));
    central.extend(u32le(0));
    central.extend(u32le(data.len()));
    central.extend(declared.to_le_bytes());
    central.extend(u16le(name.len()));
    central.extend([0; 12]);
    central.extend(u32le(0)); // local header offset
    central.extend(name.as_bytes());
    out.extend(&central);
    out.extend(b"PK\x05\x06");
    out.extend([0; 4]);
    out.extend(u16le(1));
    out.extend(u16le(1));
    out.extend(u32le(central.len()));
    out.extend(u32le(cd_offset));
    out.extend(u16le(0));
    out
}

/// An .xlsx of about a megabyte whose sheet declares 1 KB but inflates past the 1 GiB limit.
fn bomb_xlsx() -> Vec<u8> {
    zip_one(
        "xl/worksheets/sheet1.xml",
        &bomb_sheet(1024 * MIB + 64 * MIB),
        1000,
    )
}

#[test]
fn a_zip_bomb_is_stopped_at_the_unzip_limit_in_bounded_memory() {
    let sp = Sheping::new();
    let bomb = bomb_xlsx();
    assert!(bomb.len() < 8 * MIB as usize, "{}", bomb.len());
    let path = sp.write("bomb.xlsx", &bomb);
    sp.ok(&["round", "create", "2022", "--title", "炸弹"]);
    let mut cmd = sp.command();
    cmd.args(["roster", "import", "--round", "2022"]).arg(&path);
    let (ok, peak, stdout, stderr) = run_measured(cmd);
    assert!(!ok, "{stdout}");
    assert!(stderr.contains("解压后的内容超过 1024 MiB"), "{stderr}");
    assert!(peak <= 64 * MIB, "peak memory {} MiB", peak / MIB);
}

/// A roster upload of `rows` rows naming a unit that does not exist (each one rejected).
fn bad_roster(rows: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows * 60);
    out.extend("参评单位,姓名,联系电话,工作单位及职务\n".as_bytes());
    for i in 0..rows {
        writeln!(out, "不存在的单位,代表{i},139{:08},某社区居民", i).unwrap();
    }
    out
}

async fn upload(web: &Web, path: &str, csrf: &str, file: &str, bytes: Vec<u8>) -> (u16, String) {
    let form = Form::new()
        .text("csrf", csrf.to_string())
        .text("skip_invalid", "1")
        .part("file", Part::bytes(bytes).file_name(file.to_string()));
    let r = web
        .client
        .post(format!("{}{path}", web.url))
        .multipart(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_with_half_a_million_bad_rows_answers_briefly_and_offers_them_all() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let admin = Web::signed_in(&server.url, "admin").await;
    let csrf = admin.csrf().await;
    let pid = server.child.id();
    let before = vm_hwm(pid).unwrap();
    let rows = 500_000;
    let body = bad_roster(rows);
    assert!(body.len() < 32 * MIB as usize, "within the upload limit");
    let (status, page) = upload(&admin, "/admin/rounds/t/roster", &csrf, "roster.csv", body).await;
    let grown = vm_hwm(pid).unwrap().saturating_sub(before);
    assert_eq!(status, 200, "{}", &page[..page.len().min(2000)]);
    assert!(
        page.contains(&format!("跳过了 {rows} 行")),
        "the count is shown"
    );
    assert!(page.contains("下表只列出前 200 行"));
    let report = page
        .split("id=\"import-report\"")
        .nth(1)
        .and_then(|s| s.split("</section>").next())
        .unwrap();
    assert_eq!(report.matches("<td class=\"num\">").count(), 200);
    assert!(page.len() < 256 * 1024, "page of {} bytes", page.len());
    assert!(grown <= 256 * MIB, "the server grew by {} MiB", grown / MIB);
    // Every rejected row, once, as a CSV with the reason.
    let link = rejects_link(&page);
    assert!(link.starts_with("/admin/rounds/t/rejects/"), "{link}");
    let csv = admin.get(&link).await;
    assert_eq!(csv.status, 200);
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines.len(), rows + 1);
    assert!(lines[0].ends_with("错误"), "{}", lines[0]);
    assert!(
        lines[rows].starts_with(&format!("不存在的单位,代表{},", rows - 1)),
        "{}",
        lines[rows]
    );
    assert!(lines[rows].contains(&format!("第{}行", rows + 1)));
    // Fetched once, it is gone.
    assert_eq!(admin.get(&link).await.status, 404);
    // Nobody else's link: a made-up token is not found either.
    let other = format!("/admin/rounds/t/rejects/{}", "0".repeat(32));
    assert_eq!(admin.get(&other).await.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_uploaded_zip_bomb_is_refused_without_growing_the_server() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let admin = Web::signed_in(&server.url, "admin").await;
    let csrf = admin.csrf().await;
    let pid = server.child.id();
    let before = vm_hwm(pid).unwrap();
    let (status, page) = upload(
        &admin,
        "/admin/rounds/t/roster",
        &csrf,
        "bomb.xlsx",
        bomb_xlsx(),
    )
    .await;
    let grown = vm_hwm(pid).unwrap().saturating_sub(before);
    assert_eq!(status, 422);
    assert!(page.contains("解压后的内容超过"), "{page}");
    assert!(grown <= 256 * MIB, "the server grew by {} MiB", grown / MIB);
}

#[test]
fn a_roster_read_through_the_cli_reports_lines_across_read_chunks() {
    // Rows with multi-line quoted cells and CRLF line ends spanning the reader's chunks keep
    // their physical line numbers.
    let sp = Sheping::new();
    common::round_with_units(&sp);
    let mut text = String::from("参评单位,姓名,联系电话,备注\r\n");
    // Well past the 4 MiB looked at first, so most rows are read in later chunks.
    let rows = 120_000;
    for i in 0..rows {
        text.push_str(&format!(
            "汉滨区教育体育局,代表{i},139{i:08},\"第一行\r\n第二行\"\r\n"
        ));
    }
    text.push_str("汉滨区教育体育局,坏号,12345,\r\n");
    let path = sp.write("multi.csv", text.as_bytes());
    let out = sp.run(&[
        "roster",
        "import",
        "--round",
        "2022",
        path.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Header line 1, then two physical lines per row.
    assert!(text.len() > 5 * MIB as usize);
    assert!(
        stderr.contains(&format!("第 {} 行", 2 + 2 * rows)),
        "{stderr}"
    );
}

/// Uploads read whole (units, evidence) are bounded by their cell count, whatever the file's
/// shape: a units file of nearly 32 MiB is refused naming the limit, and the server does not
/// grow by more than 256 MiB.
#[tokio::test(flavor = "multi_thread")]
async fn a_huge_units_upload_is_refused_by_its_cell_budget_without_growing_the_server() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let admin = Web::signed_in(&server.url, "admin").await;
    let csrf = admin.csrf().await;
    let pid = server.child.id();
    let before = vm_hwm(pid).unwrap();
    // 15 million one-character cells: the most cells a 32 MiB CSV can hold.
    let mut body = String::from("单位名称,单位类型,系统,单位代码\n");
    while body.len() < 30 * MIB as usize {
        body.push_str("x,y,z,w\n");
    }
    let (status, page) = upload(
        &admin,
        "/admin/rounds/t/units",
        &csrf,
        "units.csv",
        body.into_bytes(),
    )
    .await;
    let grown = vm_hwm(pid).unwrap().saturating_sub(before);
    assert_eq!(status, 422, "{}", &page[..page.len().min(2000)]);
    assert!(page.contains("超过 1000000 个单元格"), "{page}");
    assert!(grown <= 256 * MIB, "the server grew by {} MiB", grown / MIB);
    assert_eq!(sp.count("SELECT COUNT(*) FROM units"), 3);
}

/// A units upload's rejected rows are all offered as a download, like a roster's, and the
/// page lists only the first 200 with the count (the helper uploads with 跳过有错误的行).
#[tokio::test(flavor = "multi_thread")]
async fn a_units_upload_offers_every_rejected_row() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let admin = Web::signed_in(&server.url, "admin").await;
    let csrf = admin.csrf().await;
    let rows = 1_500;
    let mut body = String::from("单位名称,单位类型,系统,单位代码\n");
    for i in 0..rows {
        body.push_str(&format!("新单位{i},不知道什么类型,测试,N{i}\n"));
    }
    let (status, page) = upload(
        &admin,
        "/admin/rounds/t/units",
        &csrf,
        "units.csv",
        body.into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{}", &page[..page.len().min(2000)]);
    assert!(page.contains(&format!("跳过了 {rows} 行")), "{page}");
    assert!(page.contains("下表只列出前 200 行"), "{page}");
    let link = rejects_link(&page);
    assert!(link.starts_with("/admin/rounds/t/rejects/"), "{link}");
    let csv = admin.get(&link).await;
    assert_eq!(csv.status, 200);
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines.len(), rows + 1);
    assert!(lines[0].ends_with("错误"), "{}", lines[0]);
    assert!(
        lines[rows].starts_with(&format!("新单位{},", rows - 1)),
        "{}",
        lines[rows]
    );
    assert_eq!(sp.count("SELECT COUNT(*) FROM units"), 3);
}

/// A survey definition uploaded with a new round is a few kilobytes: a file of many megabytes
/// (within the upload limit) is refused before it is parsed, and the server does not grow.
#[tokio::test(flavor = "multi_thread")]
async fn a_huge_survey_upload_is_refused_before_it_is_parsed() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let admin = Web::signed_in(&server.url, "admin").await;
    let csrf = admin.csrf().await;
    let pid = server.child.id();
    let before = vm_hwm(pid).unwrap();
    let mut toml = String::from("title = \"大\"\n");
    while toml.len() < 20 * MIB as usize {
        toml.push_str("# 注释注释注释注释注释注释注释注释注释注释注释注释注释\n");
    }
    let form = Form::new()
        .text("csrf", csrf)
        .text("key", "big")
        .text("title", "大问卷")
        .part(
            "survey",
            Part::bytes(toml.into_bytes()).file_name("big.toml"),
        );
    let r = admin
        .client
        .post(format!("{}/admin/rounds", admin.url))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let page = r.text().await.unwrap();
    let grown = vm_hwm(pid).unwrap().saturating_sub(before);
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("超过 256 KiB 的上限"), "{page}");
    assert!(grown <= 256 * MIB, "the server grew by {} MiB", grown / MIB);
    assert_eq!(sp.count("SELECT COUNT(*) FROM rounds WHERE key = 'big'"), 0);
}

// ---------------------------------------------------------------------------------------------
// The large import's write plan (issue 20.2): foreign-key enforcement off and the category
// trigger set aside inside the import's transaction, every guarantee kept.

/// The schema as `sqlite_master` holds it: (type, name, table, SQL), ordered; on PostgreSQL
/// the same from its catalog (tables with their columns, indexes, triggers and whether each
/// is enabled).
fn schema(sp: &Sheping) -> Vec<(String, String, String, Option<String>)> {
    let conn = sp.sql();
    let sql = if sp.is_postgres() {
        "SELECT * FROM (
             SELECT 'table' AS type, c.table_name AS name, c.table_name AS tbl,
                    string_agg(c.column_name || ' ' || c.data_type || ' ' || c.is_nullable, ', ' ORDER BY c.ordinal_position) AS sql
             FROM information_schema.columns c WHERE c.table_schema = 'public' GROUP BY c.table_name
             UNION ALL
             SELECT 'index', indexname, tablename, indexdef FROM pg_indexes WHERE schemaname = 'public'
             UNION ALL
             SELECT 'trigger', t.tgname, r.relname, pg_get_triggerdef(t.oid) || ' ' || t.tgenabled::text
             FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid
             JOIN pg_namespace n ON n.oid = r.relnamespace
             WHERE n.nspname = 'public' AND NOT t.tgisinternal
         ) s ORDER BY type, name"
    } else {
        "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
    };
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Round 2022 with the units of a `rows`-row [`million_roster`]; returns the roster's path.
fn round_for_roster(sp: &Sheping, rows: usize) -> std::path::PathBuf {
    let (units, roster) = million_roster(sp, rows);
    sp.ok(&["round", "create", "2022", "--title", "名单"]);
    sp.ok(&[
        "units",
        "import",
        "--round",
        "2022",
        units.to_str().unwrap(),
    ]);
    roster
}

/// Replaces data row `row` (0-based) of a roster file with `line`.
fn replace_row(roster: &std::path::Path, row: usize, line: &str) {
    let text = std::fs::read_to_string(roster).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[row + 1] = line;
    std::fs::write(roster, lines.join("\n") + "\n").unwrap();
}

/// The category trigger must refuse a bad category on this connection (it is there and works).
fn assert_category_trigger_works(sp: &Sheping) {
    let conn = sp.sql();
    let unit: i64 = conn
        .query_row("SELECT MIN(id) FROM units", [], |r| r.get(0))
        .unwrap();
    let refused = conn.execute(
        "INSERT INTO members (unit_id, name, phone, category, created_at) VALUES (?1, '甲', '13999999999', '不存在的类别', 0)",
        [unit],
    );
    assert!(
        matches!(&refused, Err(e) if e.to_string().contains("members.category")),
        "{refused:?}"
    );
}

#[test]
fn a_large_import_leaves_the_schema_as_it_was_with_its_indexes_and_triggers() {
    let sp = Sheping::new();
    let rows = 20_000;
    let roster = round_for_roster(&sp, rows);
    let before = schema(&sp);
    assert!(
        before
            .iter()
            .any(|(t, n, _, _)| t == "trigger" && n == "members_category_insert")
    );
    let unique_index = if sp.is_postgres() {
        "members_unit_id_phone_key"
    } else {
        "sqlite_autoindex_members_1"
    };
    assert!(
        before
            .iter()
            .any(|(t, n, _, _)| t == "index" && n == unique_index),
        "{before:?}"
    );
    let out = sp.ok(&[
        "roster",
        "import",
        "--round",
        "2022",
        roster.to_str().unwrap(),
    ]);
    assert!(out.contains(&format!("已导入 {rows} 名代表")), "{out}");
    assert_eq!(sp.count("SELECT COUNT(*) FROM members"), rows as i64);
    assert_eq!(
        schema(&sp),
        before,
        "the schema is the same after the import"
    );
    assert_category_trigger_works(&sp);
    let check = sp.run(&["check"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}

#[test]
fn a_duplicate_phone_in_a_large_roster_is_refused_with_its_line_and_nothing_stored() {
    let sp = Sheping::new();
    let rows = 20_000;
    let roster = round_for_roster(&sp, rows);
    let before = schema(&sp);
    // Row 15,000 repeats row 14,999's phone in the same unit (rows 14,985..15,029 are one
    // unit): far past the rows whose import set the trigger aside.
    let text = std::fs::read_to_string(&roster).unwrap();
    let previous: Vec<&str> = text.lines().nth(14_999 + 1).unwrap().split(',').collect();
    replace_row(
        &roster,
        15_000,
        &format!("{},重复者,{},,", previous[0], previous[2]),
    );
    let out = sp.run(&[
        "roster",
        "import",
        "--round",
        "2022",
        roster.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Header on line 1: data row k is on line k + 2.
    assert!(stderr.contains("第 15002 行"), "{stderr}");
    assert_eq!(sp.count("SELECT COUNT(*) FROM members"), 0);
    assert_eq!(schema(&sp), before);
    assert_category_trigger_works(&sp);
}

#[test]
fn a_phone_already_stored_is_refused_in_a_large_roster_with_its_line() {
    let sp = Sheping::new();
    let rows = 20_000;
    let roster = round_for_roster(&sp, rows);
    // A member stored first, in the unit of row 12,000, with a phone the roster repeats there.
    let text = std::fs::read_to_string(&roster).unwrap();
    let row: Vec<&str> = text.lines().nth(12_000 + 1).unwrap().split(',').collect();
    let first = sp.write(
        "first.csv",
        format!("参评单位,姓名,联系电话\n{},先到者,{}\n", row[0], row[2]).as_bytes(),
    );
    sp.ok(&[
        "roster",
        "import",
        "--round",
        "2022",
        first.to_str().unwrap(),
    ]);
    let before = schema(&sp);
    let out = sp.run(&[
        "roster",
        "import",
        "--round",
        "2022",
        roster.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("第 12002 行"), "{stderr}");
    assert_eq!(sp.count("SELECT COUNT(*) FROM members"), 1);
    assert_eq!(schema(&sp), before);
}

/// The writer's own checks, behind the roster checker: members handed straight to the storage
/// (as a concurrent import or a bug in the checker would), in one large batch.
mod storage_checks {
    use super::*;
    use sheping::domain::roster::{MemberCategory, NewMember};
    use sheping::storage::StorageError;
    use sheping::storage::Store;

    fn member(unit_id: i64, i: usize) -> NewMember {
        NewMember {
            unit_id,
            name: format!("代表{i}"),
            phone: format!("139{i:08}"),
            phone_alt: None,
            category: MemberCategory::ServiceRecipient,
            organization: None,
            note: None,
            line: i + 2,
        }
    }

    /// A store with round 2022 (two units) and round 2021 (one unit); returns the store, the
    /// 2022 round, its unit ids and the 2021 unit's id.
    fn setup(
        sp: &Sheping,
    ) -> (
        std::sync::Arc<dyn Store>,
        sheping::storage::RoundRecord,
        Vec<i64>,
        i64,
    ) {
        sp.ok(&["round", "create", "2021", "--title", "去年"]);
        let units = sp.write("u21.csv", "单位名称,单位类型\n旧局,事业单位\n".as_bytes());
        sp.ok(&[
            "units",
            "import",
            "--round",
            "2021",
            units.to_str().unwrap(),
        ]);
        sp.ok(&["round", "create", "2022", "--title", "今年"]);
        let units = sp.write(
            "u22.csv",
            "单位名称,单位类型\n甲局,事业单位\n乙局,事业单位\n".as_bytes(),
        );
        sp.ok(&[
            "units",
            "import",
            "--round",
            "2022",
            units.to_str().unwrap(),
        ]);
        let store = sp.store();
        let round = store.round("2022").unwrap();
        let ids = store
            .units(round.id)
            .unwrap()
            .iter()
            .map(|u| u.id)
            .collect();
        let old = store.round("2021").unwrap();
        let old_unit = store.units(old.id).unwrap()[0].id;
        (store, round, ids, old_unit)
    }

    fn refusal(out: Result<usize, StorageError>) -> String {
        match out {
            Err(StorageError::Conflict(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_unit_of_another_round_or_none_is_refused_with_its_line() {
        let sp = Sheping::new();
        let (store, round, units, old_unit) = setup(&sp);
        let before = schema(&sp);
        for (stranger, what) in [(old_unit, "another round's unit"), (987_654, "no unit")] {
            let mut members: Vec<NewMember> = (0..10_000).map(|i| member(units[0], i)).collect();
            members[8_000].unit_id = stranger;
            let m = refusal(store.add_members(&round, &members, &[], "t"));
            assert!(m.contains("第 8002 行"), "{what}: {m}");
            assert_eq!(sp.count("SELECT COUNT(*) FROM members"), 0, "{what}");
            assert_eq!(schema(&sp), before, "{what}");
        }
        // Foreign keys are enforced again on the writer after the import (PostgreSQL's
        // cannot be turned off).
        if sp.sqlite_file_checks("PRAGMA foreign_keys on the store's writer") {
            let store = sheping::storage::sqlite::SqliteStore::open(&sp.db).unwrap();
            let on: i64 = store
                .write(|c| Ok(c.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?))
                .unwrap();
            assert_eq!(on, 1);
        }
    }

    #[test]
    fn a_duplicate_the_checker_did_not_see_is_refused_with_its_line() {
        let sp = Sheping::new();
        let (store, round, units, _) = setup(&sp);
        store
            .add_members(&round, &[member(units[1], 5_000)], &[], "t")
            .unwrap();
        let before = schema(&sp);
        // Inside the batch: row 9,000 repeats row 10's phone in the same unit.
        let mut members: Vec<NewMember> = (0..10_000).map(|i| member(units[0], i)).collect();
        members[9_000].phone = members[10].phone.clone();
        let m = refusal(store.add_members(&round, &members, &[], "t"));
        assert!(m.contains("第 9002 行"), "{m}");
        // Against the member stored before: row 5,000 is in its unit with its phone.
        let mut members: Vec<NewMember> = (0..10_000).map(|i| member(units[0], i)).collect();
        members[5_000].unit_id = units[1];
        let m = refusal(store.add_members(&round, &members, &[], "t"));
        assert!(m.contains("第 5002 行"), "{m}");
        assert_eq!(sp.count("SELECT COUNT(*) FROM members"), 1);
        assert_eq!(schema(&sp), before);
    }

    #[test]
    fn a_panel_another_table_refers_to_is_not_replaced() {
        let sp = Sheping::new();
        let (store, round, units, _) = setup(&sp);
        store
            .add_members(
                &round,
                &[member(units[0], 1), member(units[1], 2)],
                &[],
                "t",
            )
            .unwrap();
        // A reopening names the member of 甲局 (no attempt, no assignment): deleting the
        // member would break the reference.
        sp.sql()
            .execute(
                "INSERT INTO reopenings (member_id, at, reason, actor) SELECT id, 0, '核对号码', 't' FROM members WHERE unit_id = ?1",
                [units[0]],
            )
            .unwrap();
        let new: Vec<NewMember> = (10..6_000).map(|i| member(units[0], i)).collect();
        let m = refusal(store.add_members(&round, &new, &[units[0]], "t"));
        assert!(m.contains("不能替换"), "{m}");
        assert_eq!(sp.count("SELECT COUNT(*) FROM members"), 2);
        // The panel nothing refers to is replaced.
        let new: Vec<NewMember> = (10..6_000).map(|i| member(units[1], i)).collect();
        assert_eq!(
            store.add_members(&round, &new, &[units[1]], "t").unwrap(),
            5_990
        );
        // Every reference still resolves.
        let fk: i64 = sp.count(
            "SELECT COUNT(*) FROM reopenings r WHERE NOT EXISTS (SELECT 1 FROM members m WHERE m.id = r.member_id)",
        );
        assert_eq!(fk, 0);
        if sp.sqlite_file_checks("PRAGMA foreign_key_check") {
            let fk: i64 = sp.count("SELECT COUNT(*) FROM pragma_foreign_key_check('members')");
            assert_eq!(fk, 0);
        }
    }
}

#[test]
fn a_roster_import_killed_midway_leaves_the_database_as_it_was() {
    let sp = Sheping::new();
    let rows = 400_000;
    let roster = round_for_roster(&sp, rows);
    // Something stored before, which must stay.
    let first = sp.write(
        "first.csv",
        "参评单位,姓名,联系电话\n单位000000,先到者,13912345678\n".as_bytes(),
    );
    sp.ok(&[
        "roster",
        "import",
        "--round",
        "2022",
        first.to_str().unwrap(),
    ]);
    let before = schema(&sp);
    // Progress: SQLite's WAL grows; PostgreSQL's table grows with the uncommitted rows.
    let wal = sp.db.with_extension("db-wal");
    let db = sp.sql();
    let wal_size = || {
        if sp.is_postgres() {
            db.query_row("SELECT pg_relation_size('members')", [], |r| r.get(0))
                .map(|n: i64| n as u64)
                .unwrap()
        } else {
            std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0)
        }
    };
    let start = wal_size();
    let mut child = sp
        .command()
        .args(["roster", "import", "--round", "2022"])
        .arg(&roster)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed once the import has written pages of its transaction to the WAL (past the
    // trigger's drop, which comes with its first rows), while it still runs.
    let mut killed = false;
    for _ in 0..30_000 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if wal_size() > start + 4 * MIB {
            child.kill().unwrap();
            killed = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let _ = child.wait();
    assert!(killed, "the import ended before it could be killed midway");
    assert_eq!(sp.count("SELECT COUNT(*) FROM members"), 1);
    assert_eq!(schema(&sp), before, "the schema is as it was");
    if sp.sqlite_file_checks("PRAGMA integrity_check") {
        let integrity: String = sp
            .sqlite()
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok");
    }
    assert_category_trigger_works(&sp);
    let check = sp.run(&["check"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}
