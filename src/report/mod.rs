//! Reports (报告): `sheping report --round KEY [--unit UNIT] --out DIR [--with-comments]`.
//!
//! Writes into DIR:
//! - `index.html` — the round report, self-contained (charts as inline SVG, CSS inline, no
//!   script, nothing fetched): method, results table, charts, quality checks, flags;
//! - `feedback/NNN-单位.html` — one feedback page (反馈意见) per unit, printable on A4: its
//!   scores and rank with intervals, its charts against the round, and, with
//!   `--with-comments`, the respondents' comments with names and numbers masked; never any
//!   personal data;
//! - `charts/*.svg|png` (round) and `charts/units/NNN-*.svg|png` (per unit);
//! - `csv/*.csv` — the statisticians' exports (`crate::exports`), UTF-8 with BOM.
//!
//! With `--unit`, only that unit's feedback page and charts are written: a report meant to be
//! sent to one unit carries no other unit's figures by name (the CSV exports, which do, are
//! left out).
//!
//! [`zip_dir`] packs a written report for download.

mod pages;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::charts::from_results::{self as fr, RoundTotals};
use crate::charts::response::DayCount;
use crate::charts::{self, Chart, ChartError, PNG_SCALE};
use crate::domain::disposition::Outcome;
use crate::domain::scoring::Interview;
use crate::engine::Store;
use crate::exports::{self, ExportError, ExportKind};
use crate::results::{self, ResultsDocument, ResultsError, ResultsOptions, RoundData};
use crate::storage::{AuditEvent, RoundRecord, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error(transparent)]
    Chart(#[from] ChartError),
    #[error("页面生成失败: {0}")]
    Template(#[from] askama::Error),
    #[error("无法写出 {path}: {error}")]
    Io { path: String, error: String },
    #[error("本轮没有名为「{0}」的单位")]
    NoSuchUnit(String),
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> ReportError + '_ {
    move |e| ReportError::Io {
        path: path.display().to_string(),
        error: e.to_string(),
    }
}

#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// Only this unit's feedback page (by name or unit code).
    pub unit: Option<String>,
    /// Respondents' comments (意见建议) on the feedback pages and in the CSV exports.
    pub with_comments: bool,
    /// Skip the PNG files (the HTML needs only the SVG); for quick previews.
    pub skip_png: bool,
    pub results: ResultsOptions,
}

/// A plan's seed as the method section shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PlanSeed {
    pub kind: String,
    pub seed: u64,
    pub algorithm: String,
    pub created: String,
}

/// Everything a report is made from, loaded once.
#[derive(Debug, Clone)]
pub struct ReportData {
    pub doc: ResultsDocument,
    /// The complete interviews the document was scored from (for the operators' chart).
    pub interviews: Vec<Interview>,
    /// Completes per local day over the field period.
    pub days: Vec<DayCount>,
    pub field_period: Option<(NaiveDate, NaiveDate)>,
    pub plans: Vec<PlanSeed>,
    /// Per unit (document order): respondents' comments, masked; empty without comments.
    pub comments: Vec<Vec<String>>,
    /// Whether comments were asked for (a page then says when a unit has none).
    pub with_comments: bool,
    /// Representatives per unit the survey asks for.
    pub panel_size: u32,
    /// When the report was made, local time of the survey.
    pub generated_at: String,
    /// The comparison with the round's linked previous round (`round create --previous`).
    pub previous: Option<crate::compare::CompareDocument>,
}

impl ReportData {
    /// Loads a round and computes everything the report shows.
    pub fn load(
        store: &dyn Store,
        round: &RoundRecord,
        opts: &ReportOptions,
        now: DateTime<Utc>,
        actor: &str,
    ) -> Result<(ReportData, RoundData), ReportError> {
        let data = RoundData::load(store, round, now, actor)?;
        let doc = results::compute_from(&data, &opts.results)?;
        let (_, interviews, _) = results::scoring_inputs(&data)?;
        let tz = round.survey.timezone();
        let field_period = round.field_start.zip(round.field_end);
        let (scored, _) = data.interviews();
        let days = fr::days_from_times(scored.iter().map(|a| a.recorded_at_ms), &tz, field_period);
        let plans = store
            .plans(round)?
            .into_iter()
            .map(|p| PlanSeed {
                kind: p.kind,
                seed: p.seed,
                algorithm: p.algorithm,
                created: data.local_time(p.created_at_ms),
            })
            .collect();
        let comments = if opts.with_comments {
            unit_comments(store, &data)?
        } else {
            vec![Vec::new(); data.units.len()]
        };
        let generated_at = now.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string();
        let previous = match store.previous_round(round.id)? {
            Some(key) => {
                let b = store.round(&key)?;
                Some(crate::compare::compare_rounds(
                    store, round, &b, now, actor,
                )?)
            }
            None => None,
        };
        Ok((
            ReportData {
                doc,
                interviews,
                days,
                field_period,
                plans,
                comments,
                with_comments: opts.with_comments,
                panel_size: round.survey.panel_size,
                generated_at,
                previous,
            },
            data,
        ))
    }

    /// The index of the unit named `name` (or with that unit code).
    pub fn unit_index(&self, name: &str) -> Option<usize> {
        let name = name.trim();
        self.doc
            .units
            .iter()
            .position(|u| u.unit == name)
            .or_else(|| {
                self.doc
                    .units
                    .iter()
                    .position(|u| u.code.as_deref() == Some(name))
            })
    }
}

/// Respondents' comments per unit: from interviews (complete or partial), masked with
/// [`exports::scrub_comment`] against the names and numbers of every member of that unit.
fn unit_comments(store: &dyn Store, data: &RoundData) -> Result<Vec<Vec<String>>, ReportError> {
    let index: BTreeMap<i64, usize> = data
        .units
        .iter()
        .enumerate()
        .map(|(i, u)| (u.id, i))
        .collect();
    let mut personal: Vec<Vec<String>> = vec![Vec::new(); data.units.len()];
    for m in store.members(data.round.id, None)? {
        if let Some(&i) = index.get(&m.unit_id) {
            personal[i].extend(m.name);
            personal[i].extend(m.phone);
            personal[i].extend(m.phone_alt);
        }
    }
    let mut attempts: Vec<_> = data
        .field
        .attempts
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Complete | Outcome::Partial))
        .filter(|a| a.comment.as_deref().is_some_and(|c| !c.trim().is_empty()))
        .collect();
    attempts.sort_by_key(|a| (a.recorded_at_ms, a.id));
    let mut out = vec![Vec::new(); data.units.len()];
    for a in attempts {
        if let (Some(&i), Some(c)) = (index.get(&a.unit_id), a.comment.as_deref()) {
            let names: Vec<&str> = personal[i].iter().map(String::as_str).collect();
            out[i].push(exports::scrub_comment(c.trim(), &names));
        }
    }
    Ok(out)
}

/// The round's charts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundChart {
    Ranking,
    Distribution,
    Dispositions,
    CompletesPerDay,
    /// Statisticians only.
    Operators,
}

impl RoundChart {
    pub fn all() -> &'static [RoundChart] {
        use RoundChart::*;
        &[
            Ranking,
            Distribution,
            Dispositions,
            CompletesPerDay,
            Operators,
        ]
    }
    pub fn key(self) -> &'static str {
        match self {
            RoundChart::Ranking => "ranking",
            RoundChart::Distribution => "distribution",
            RoundChart::Dispositions => "dispositions",
            RoundChart::CompletesPerDay => "completes-per-day",
            RoundChart::Operators => "operators",
        }
    }
    pub fn parse(key: &str) -> Option<RoundChart> {
        RoundChart::all().iter().copied().find(|c| c.key() == key)
    }
}

/// A unit's charts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitChart {
    Position,
    Profile,
    Distribution,
}

impl UnitChart {
    pub fn all() -> &'static [UnitChart] {
        &[
            UnitChart::Position,
            UnitChart::Profile,
            UnitChart::Distribution,
        ]
    }
    pub fn key(self) -> &'static str {
        match self {
            UnitChart::Position => "position",
            UnitChart::Profile => "profile",
            UnitChart::Distribution => "distribution",
        }
    }
    pub fn parse(key: &str) -> Option<UnitChart> {
        UnitChart::all().iter().copied().find(|c| c.key() == key)
    }
}

/// A chart as SVG and, unless skipped, PNG.
pub struct Drawn {
    pub svg: String,
    pub png: Option<Vec<u8>>,
}

fn draw<C: Chart>(chart: &C, png: bool) -> Result<Drawn, ChartError> {
    Ok(Drawn {
        svg: charts::svg(chart)?,
        png: if png {
            Some(charts::png(chart, PNG_SCALE)?)
        } else {
            None
        },
    })
}

/// Renders one of the round's charts.
pub fn round_chart(data: &ReportData, which: RoundChart, png: bool) -> Result<Drawn, ChartError> {
    let doc = &data.doc;
    match which {
        RoundChart::Ranking => draw(&fr::ranking(doc, None), png),
        RoundChart::Distribution => draw(&fr::round_distribution(doc), png),
        RoundChart::Dispositions => draw(&fr::dispositions(doc), png),
        RoundChart::CompletesPerDay => draw(&fr::completes_per_day(doc, data.days.clone()), png),
        RoundChart::Operators => draw(&fr::operators(doc, &data.interviews), png),
    }
}

/// Renders one of a unit's charts (`unit` indexes `doc.units`).
pub fn unit_chart(
    data: &ReportData,
    unit: usize,
    which: UnitChart,
    png: bool,
) -> Result<Drawn, ChartError> {
    unit_chart_with(data, &RoundTotals::of(&data.doc), unit, which, png)
}

/// [`unit_chart`] with the round's totals computed once for many units.
pub fn unit_chart_with(
    data: &ReportData,
    totals: &RoundTotals,
    unit: usize,
    which: UnitChart,
    png: bool,
) -> Result<Drawn, ChartError> {
    let doc = &data.doc;
    match which {
        UnitChart::Position => draw(&fr::position(doc, unit), png),
        UnitChart::Profile => draw(&fr::unit_profile_with(doc, totals, unit), png),
        UnitChart::Distribution => draw(&fr::unit_distribution_with(doc, totals, unit), png),
    }
}

/// A unit's file stem: its number in the round (zero-padded) and its name, made safe for
/// every file system (and kept short).
pub fn unit_stem(index: usize, units: usize, name: &str) -> String {
    let width = units.to_string().len().max(3);
    let safe: String = name
        .chars()
        // Bidi overrides (U+202E would show `gpj.exe` for `exe.jpg`) and other invisibles go
        // too: `domain::text::is_file_name_char`.
        .map(|c| {
            if crate::domain::text::is_file_name_char(c) {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    format!("{:0width$}-{safe}", index + 1)
}

/// Percent-encodes a relative path for an `href` (keeps `/`).
pub(crate) fn href(path: &str) -> String {
    let mut out = String::with_capacity(path.len() * 3);
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// What a report run wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ReportSummary {
    pub dir: PathBuf,
    pub index: Option<PathBuf>,
    pub feedback_pages: usize,
    pub charts: usize,
    pub exports: Vec<PathBuf>,
    pub files: usize,
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    std::fs::write(path, bytes).map_err(io_err(path))
}

fn create_dir(path: &Path) -> Result<(), ReportError> {
    std::fs::create_dir_all(path).map_err(io_err(path))
}

/// Writes the report's HTML pages and charts into `out` (not the CSV exports, which need
/// the store: see [`run`]; `list_exports` links them from the index). `only` restricts it
/// to one unit's feedback page.
///
/// The work — each round chart, each unit's charts and page — is shared by one thread per
/// core, each writing its own files (so memory holds one unit's output per thread, however
/// many units); the index follows once the round charts are drawn.
pub fn write(
    data: &ReportData,
    opts: &ReportOptions,
    only: Option<usize>,
    list_exports: bool,
    out: &Path,
) -> Result<ReportSummary, ReportError> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Clone, Copy)]
    enum Task {
        Round(RoundChart),
        Unit(usize),
    }
    #[derive(Default)]
    struct Done {
        files: usize,
        charts: usize,
        pages: usize,
    }

    let png = !opts.skip_png;
    let n_units = data.doc.units.len();
    create_dir(&out.join("charts/units"))?;
    create_dir(&out.join("feedback"))?;
    // Writes a chart's files; returns how many. The extension is appended, never swapped in:
    // a unit's stem may hold dots ("001-x.y-profile"), and `with_extension` would cut the name
    // there (the unit's charts overwrote each other under a name no page links to).
    let save = |stem: &Path, drawn: &Drawn| -> Result<usize, ReportError> {
        let with = |ext: &str| {
            let mut name = stem.as_os_str().to_owned();
            name.push(".");
            name.push(ext);
            PathBuf::from(name)
        };
        write_file(&with("svg"), drawn.svg.as_bytes())?;
        if let Some(p) = &drawn.png {
            write_file(&with("png"), p)?;
            return Ok(2);
        }
        Ok(1)
    };
    // Round charts first: the ranking and the dispositions of a large round are the biggest
    // single pieces of work.
    let mut tasks: Vec<Task> = Vec::new();
    match only {
        Some(u) => tasks.push(Task::Unit(u)),
        None => {
            tasks.extend(RoundChart::all().iter().map(|&c| Task::Round(c)));
            tasks.extend((0..n_units).map(Task::Unit));
        }
    }
    let totals = RoundTotals::of(&data.doc);
    let round_svgs: Mutex<BTreeMap<&'static str, String>> = Mutex::new(BTreeMap::new());
    let next = AtomicUsize::new(0);
    let run_task = |task: Task, done: &mut Done| -> Result<(), ReportError> {
        match task {
            Task::Round(which) => {
                let drawn = round_chart(data, which, png)?;
                done.files += save(&out.join("charts").join(which.key()), &drawn)?;
                done.charts += 1;
                round_svgs
                    .lock()
                    .expect("no thread panics holding it")
                    .insert(which.key(), drawn.svg);
            }
            Task::Unit(u) => {
                let stem = unit_stem(u, n_units, &data.doc.units[u].unit);
                let mut svgs: Vec<(UnitChart, String)> = Vec::new();
                for &which in UnitChart::all() {
                    let drawn = unit_chart_with(data, &totals, u, which, png)?;
                    done.files += save(
                        &out.join("charts/units")
                            .join(format!("{stem}-{}", which.key())),
                        &drawn,
                    )?;
                    done.charts += 1;
                    svgs.push((which, drawn.svg));
                }
                let by_key: BTreeMap<&str, &str> =
                    svgs.iter().map(|(w, s)| (w.key(), s.as_str())).collect();
                let html = pages::feedback(data, &totals, u, &by_key, png, only.is_some())?;
                write_file(
                    &out.join("feedback").join(format!("{stem}.html")),
                    html.as_bytes(),
                )?;
                done.files += 1;
                done.pages += 1;
            }
        }
        Ok(())
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, tasks.len().max(1));
    let results: Vec<Result<Done, ReportError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<Done, ReportError> {
                    let mut done = Done::default();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&task) = tasks.get(i) else {
                            return Ok(done);
                        };
                        if let Err(e) = run_task(task, &mut done) {
                            // Stop the other threads too.
                            next.store(tasks.len(), Ordering::Relaxed);
                            return Err(e);
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("report thread panicked"))
            .collect()
    });
    let mut total = Done::default();
    for r in results {
        let d = r?;
        total.files += d.files;
        total.charts += d.charts;
        total.pages += d.pages;
    }
    let mut index = None;
    if only.is_none() {
        let round_svgs = round_svgs.into_inner().expect("no thread panicked");
        let html = pages::index(data, &round_svgs, png, list_exports)?;
        let path = out.join("index.html");
        write_file(&path, html.as_bytes())?;
        total.files += 1;
        index = Some(path);
    }
    Ok(ReportSummary {
        dir: out.to_path_buf(),
        index,
        feedback_pages: total.pages,
        charts: total.charts,
        exports: Vec::new(),
        files: total.files,
    })
}

/// The CSV exports written beside the report.
pub const REPORT_EXPORTS: [ExportKind; 6] = [
    ExportKind::Scores,
    ExportKind::Distributions,
    ExportKind::Dispositions,
    ExportKind::Responses,
    ExportKind::Attempts,
    ExportKind::Codebook,
];

fn write_exports(
    store: &dyn Store,
    data: &RoundData,
    doc: &ResultsDocument,
    with_comments: bool,
    out: &Path,
) -> Result<Vec<PathBuf>, ReportError> {
    let dir = out.join("csv");
    create_dir(&dir)?;
    let key = exports::file_name_part(&data.round.key);
    let opts = exports::ExportOptions {
        format: exports::ExportFormat::Csv,
        bom: true,
        with_comments,
        responses_file: format!("{key}-responses.csv"),
        ..exports::ExportOptions::default()
    };
    let mut paths = Vec::new();
    for kind in REPORT_EXPORTS {
        let rendered = exports::render(store, data, doc, kind, &opts)?;
        let path = dir.join(format!("{key}-{}.{}", kind.key(), rendered.format));
        write_file(&path, &rendered.bytes)?;
        paths.push(path);
        if let Some(text) = rendered.syntax_beside {
            let sps = dir.join(format!("{key}-responses.sps"));
            write_file(&sps, text.as_bytes())?;
            paths.push(sps);
        }
    }
    Ok(paths)
}

/// The whole command: loads the round, writes pages, charts and (for a round report) the
/// CSV exports, and records the report in the audit log.
pub fn run(
    store: &dyn Store,
    round: &RoundRecord,
    opts: &ReportOptions,
    out: &Path,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<ReportSummary, ReportError> {
    let (data, round_data) = ReportData::load(store, round, opts, now, actor)?;
    let only = match &opts.unit {
        Some(name) => Some(
            data.unit_index(name)
                .ok_or_else(|| ReportError::NoSuchUnit(name.clone()))?,
        ),
        None => None,
    };
    store.audit(&AuditEvent {
        actor,
        action: "report.write",
        round_key: Some(&round.key),
        detail: serde_json::json!({
            "unit": only.map(|u| data.doc.units[u].unit.clone()),
            "with_comments": opts.with_comments,
            "out": out.display().to_string(),
        }),
    })?;
    create_dir(out)?;
    let mut summary = write(&data, opts, only, only.is_none(), out)?;
    if only.is_none() {
        summary.exports = write_exports(store, &round_data, &data.doc, opts.with_comments, out)?;
        summary.files += summary.exports.len();
    }
    Ok(summary)
}

/// The files under `dir`, relative, sorted, with `/` separators.
fn walk(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .expect("walked below dir")
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((rel, path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Packs a report directory into a zip (names in UTF-8, under a top folder `prefix`):
/// text deflated, PNG stored (already compressed).
pub fn zip_dir(dir: &Path, prefix: &str) -> Result<Vec<u8>, ReportError> {
    use zip::write::SimpleFileOptions;
    let files = walk(dir).map_err(io_err(dir))?;
    let mut buf = std::io::Cursor::new(Vec::new());
    let zip_err = |e: zip::result::ZipError| ReportError::Io {
        path: dir.display().to_string(),
        error: e.to_string(),
    };
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        for (rel, path) in files {
            let method = if rel.ends_with(".png") {
                zip::CompressionMethod::Stored
            } else {
                zip::CompressionMethod::Deflated
            };
            let opts = SimpleFileOptions::default()
                .compression_method(method)
                .unix_permissions(0o644);
            let name = if prefix.is_empty() {
                rel
            } else {
                format!("{prefix}/{rel}")
            };
            zip.start_file(name, opts).map_err(zip_err)?;
            let bytes = std::fs::read(&path).map_err(io_err(&path))?;
            zip.write_all(&bytes).map_err(io_err(&path))?;
        }
        zip.finish().map_err(zip_err)?;
    }
    Ok(buf.into_inner())
}

/// A round report made in a private temporary directory and returned as a zip (for an HTTP
/// download). The directory is removed afterwards.
pub fn report_zip(
    store: &dyn Store,
    round: &RoundRecord,
    opts: &ReportOptions,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Vec<u8>, ReportError> {
    let mut suffix = [0u8; 12];
    {
        use rand::Rng;
        rand::rng().fill_bytes(&mut suffix);
    }
    let tmp = std::env::temp_dir().join(format!("sheping-report-{}", hex::encode(suffix)));
    // A fresh directory of our own (fails rather than reuse anything already there).
    std::fs::create_dir(&tmp).map_err(io_err(&tmp))?;
    let result = run(store, round, opts, &tmp, actor, now)
        .and_then(|_| zip_dir(&tmp, &zip_folder(&round.key)));
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

/// The default output directory: `reports/KEY/` (the key made a plain file name).
pub fn default_out(round_key: &str) -> PathBuf {
    PathBuf::from("reports").join(exports::file_name_part(round_key))
}

/// The one folder a report zip holds, and the zip's name: `report-KEY` (the key made a plain
/// file name, so that no entry can climb out of the folder wherever it is unpacked).
pub fn zip_folder(round_key: &str) -> String {
    format!("report-{}", exports::file_name_part(round_key))
}

/// A unit's feedback page, relative to the report directory.
pub fn feedback_path(data: &ReportData, unit: usize) -> String {
    format!(
        "feedback/{}.html",
        unit_stem(unit, data.doc.units.len(), &data.doc.units[unit].unit)
    )
}

/// Packs the written directory `out` as `out.zip` next to it; returns the zip's path.
pub fn write_zip(out: &Path, round_key: &str) -> Result<PathBuf, ReportError> {
    let bytes = zip_dir(out, &zip_folder(round_key))?;
    let mut name = out.as_os_str().to_owned();
    name.push(".zip");
    let path = PathBuf::from(name);
    write_file(&path, &bytes)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_stems_are_numbered_and_safe() {
        assert_eq!(unit_stem(0, 30, "汉滨区教育体育局"), "001-汉滨区教育体育局");
        assert_eq!(unit_stem(41, 1000, "a/b:c d"), "0042-a_b_c_d");
        assert_eq!(
            unit_stem(1, 5, "汉滨\u{202E}exe.jpg\u{0}\u{FFFE}"),
            "002-汉滨_exe.jpg__"
        );
        let long = "很".repeat(60);
        assert_eq!(unit_stem(0, 5, &long).chars().count(), 4 + 40);
    }

    #[test]
    fn hrefs_are_percent_encoded() {
        assert_eq!(href("feedback/001-a b.html"), "feedback/001-a%20b.html");
        assert_eq!(href("单位"), "%E5%8D%95%E4%BD%8D");
        assert_eq!(default_out("2022/x"), PathBuf::from("reports/2022_x"));
    }

    #[test]
    fn chart_keys_round_trip() {
        for c in RoundChart::all() {
            assert_eq!(RoundChart::parse(c.key()), Some(*c));
        }
        for c in UnitChart::all() {
            assert_eq!(UnitChart::parse(c.key()), Some(*c));
        }
        assert_eq!(RoundChart::parse("nope"), None);
    }

    #[test]
    fn zip_holds_every_file_under_the_prefix() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("charts/units")).unwrap();
        std::fs::write(dir.path().join("index.html"), "<p>报告</p>").unwrap();
        std::fs::write(
            dir.path().join("charts/units/001-单位.png"),
            [137, 80, 78, 71],
        )
        .unwrap();
        let bytes = zip_dir(dir.path(), "report-2022").unwrap();
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut names: Vec<String> = z.file_names().map(|n| n.unwrap().into_owned()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "report-2022/charts/units/001-单位.png",
                "report-2022/index.html"
            ]
        );
        let mut s = String::new();
        z.by_name("report-2022/index.html")
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "<p>报告</p>");
        let png = z.by_name("report-2022/charts/units/001-单位.png").unwrap();
        assert_eq!(png.compression(), zip::CompressionMethod::Stored);
    }

    #[test]
    fn report_css_names_the_charts_font_stack() {
        let css = include_str!("../../reports/templates/report_style.css");
        assert!(css.contains(&format!(
            "font-family: {};",
            crate::charts::fonts::CSS_FAMILY
        )));
        assert!(css.contains("@page { size: A4;"));
    }
}
