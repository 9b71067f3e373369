//! Importers: read a spreadsheet, validate it with the domain rules, and store it all at once
//! (or only the valid rows when the user asked to skip bad ones). Shared by CLI and web.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::mpsc;

use serde::Serialize;

use crate::domain::import::Rejection;
use crate::domain::roster::{
    self, NewMember, RosterOptions, RosterSummary, RosterUnit, RowChecker, UnitPanel,
};
use crate::domain::unit::{UNIT_COLUMNS, validate_units};
use crate::storage::{MemberSink, RoundRecord, StorageError, Store};
use crate::tabular::{self, CsvRowWriter, ReadOptions, Table, TableError, TableReader};

mod attempts;
pub use attempts::{
    AttemptsChecked, attempts_apply, attempts_check, attempts_import, parse_local_time,
};
mod evidence;
pub use evidence::{EvidenceImport, demo_evidence, evidence_import};
mod onsite;
pub use onsite::{
    OnsiteChecked, OnsiteImport, demo_onsite, onsite_apply, onsite_check, onsite_import,
};
mod preview;
pub use preview::{ImportPreview, PREVIEW_ROWS, batch_digest};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("{0}")]
    Header(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot write the rejects file {path}: {error}")]
    Rejects { path: String, error: String },
}

/// The result of an import, printed as text or JSON and returned by the web console.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ImportReport {
    /// Rows stored (0 when anything was rejected and skipping was not asked for).
    pub imported: usize,
    /// The rejected rows: all of them, or the first ones when the import kept only a few in
    /// memory ([`RejectLog::spill`]).
    pub rejected: Vec<Rejection>,
    /// How many rows were rejected in all.
    #[serde(skip)]
    pub rejected_count: usize,
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub units: Vec<UnitPanel>,
    /// Whether anything was stored.
    pub applied: bool,
    pub encoding: Option<String>,
    #[serde(skip)]
    pub headers: Vec<String>,
    /// Field key (`unit`, `phone`, ...) → the file's own header of that column, so that a
    /// page can name the column as the office's spreadsheet does.
    #[serde(skip)]
    pub field_headers: std::collections::BTreeMap<String, String>,
}

impl ImportReport {
    /// The file's header for a field key, or the key when the file has no such column.
    pub fn header_of<'a>(&'a self, field: &'a str) -> &'a str {
        self.field_headers.get(field).map_or(field, String::as_str)
    }
}

/// Each column's field key → the header the file gave it.
fn field_headers(
    columns: &[crate::domain::import::Column],
    indexes: impl IntoIterator<Item = Option<usize>>,
    headers: &[String],
) -> std::collections::BTreeMap<String, String> {
    columns
        .iter()
        .zip(indexes)
        .filter_map(|(c, i)| Some((c.field.to_string(), headers.get(i?)?.clone())))
        .collect()
}

impl ImportReport {
    /// Writes the rejected rows as they were, plus an error column (UTF-8 CSV with BOM).
    pub fn write_rejects(&self, path: &Path) -> Result<(), ImportError> {
        let mut headers: Vec<&str> = self.headers.iter().map(String::as_str).collect();
        headers.push("错误");
        let rows = self.rejected.iter().map(|r| {
            let mut cells = r.cells.clone();
            cells.resize(self.headers.len(), String::new());
            cells.push(rejection_note(r));
            cells
        });
        let file = std::fs::File::create(path).map_err(|e| ImportError::Rejects {
            path: path.display().to_string(),
            error: e.to_string(),
        })?;
        tabular::write_csv(std::io::BufWriter::new(file), &headers, rows, true).map_err(|e| {
            ImportError::Rejects {
                path: path.display().to_string(),
                error: e.to_string(),
            }
        })
    }
}

/// Refuses any import into a locked round before reading a single row.
pub(crate) fn ensure_open(round: &RoundRecord) -> Result<(), ImportError> {
    if round.is_locked() {
        return Err(StorageError::Locked(round.key.clone()).into());
    }
    Ok(())
}

fn rows(table: &Table) -> impl Iterator<Item = (usize, &[String])> {
    table.rows.iter().map(|r| (r.line, r.cells.as_slice()))
}

pub fn units_import(
    store: &dyn Store,
    round: &RoundRecord,
    table: &Table,
    skip_invalid: bool,
    actor: &str,
) -> Result<ImportReport, ImportError> {
    ensure_open(round)?;
    let find = |i: usize| table.find_column(UNIT_COLUMNS[i].aliases);
    let columns = [find(0), find(1), find(2), find(3)];
    let missing: Vec<String> = UNIT_COLUMNS
        .iter()
        .zip(&columns)
        .filter(|(c, idx)| c.required && idx.is_none())
        .map(|(c, _)| format!("{}(可用列名:{})", c.field, c.aliases.join("/")))
        .collect();
    if !missing.is_empty() {
        return Err(ImportError::Header(format!(
            "表头缺少必需的列:{}",
            missing.join(";")
        )));
    }
    let existing: BTreeSet<String> = store.units(round.id)?.into_iter().map(|u| u.name).collect();
    let (units, rejected) = validate_units(rows(table), &columns, &existing);
    let mut report = ImportReport {
        rejected_count: rejected.len(),
        rejected,
        encoding: table.encoding.map(|e| e.name().to_string()),
        headers: table.headers.clone(),
        field_headers: field_headers(UNIT_COLUMNS, columns, &table.headers),
        ..Default::default()
    };
    let known: Vec<&[&str]> = UNIT_COLUMNS.iter().map(|c| c.aliases).collect();
    for col in table.unknown_columns(&known) {
        report.warnings.push(format!("忽略未识别的列“{col}”"));
    }
    if report.rejected.is_empty() || skip_invalid {
        report.imported = store.add_units(round, &units, actor)?;
        report.applied = true;
    }
    Ok(report)
}

pub struct RosterImport<'a> {
    pub area_code: Option<&'a str>,
    pub skip_invalid: bool,
    pub replace: bool,
}

/// Checked members go to the writer in batches of this many.
const MEMBERS_PER_BATCH: usize = 1024;
/// Batches checked ahead of the writer, at most (bounds the memory of a large import).
const BATCHES_AHEAD: usize = 8;

/// Imports a roster read whole; see [`roster_import_stream`]. Every rejected row is kept.
pub fn roster_import(
    store: &dyn Store,
    round: &RoundRecord,
    table: &Table,
    opts: &RosterImport,
    actor: &str,
) -> Result<ImportReport, ImportError> {
    let mut log = RejectLog::all();
    roster_import_stream(
        store,
        round,
        TableReader::from_table_ref(table),
        opts,
        actor,
        &mut log,
    )
}

/// Imports a roster as it is read: every row is checked while the writer stores the rows
/// checked so far, in one transaction that is kept only if no row was rejected or
/// `skip_invalid` was asked for; otherwise nothing is stored. A file that turns out unreadable
/// halfway stores nothing either. Memory does not grow with the file: rows flow from the reader
/// through the checker to the writer, and rejected rows go to `rejects`.
pub fn roster_import_stream(
    store: &dyn Store,
    round: &RoundRecord,
    mut reader: TableReader<'_>,
    opts: &RosterImport,
    actor: &str,
    rejects: &mut RejectLog,
) -> Result<ImportReport, ImportError> {
    ensure_open(round)?;
    let (columns, unknown) = roster::map_columns(&reader.headers).map_err(ImportError::Header)?;
    let units = store.roster_units(round.id)?;
    let roster_opts = RosterOptions {
        area_code: opts.area_code.map(str::to_string),
        replace: opts.replace,
        panel_size: round.survey.panel_size as usize,
    };
    let check = Check {
        columns: &columns,
        units: &units,
        opts: &roster_opts,
        skip_invalid: opts.skip_invalid,
    };
    let headers = reader.headers.clone();
    let encoding = reader.encoding.map(|e| e.name().to_string());
    rejects.set_headers(&headers);
    let (summary, stored) = check.check_and_store(&mut reader, rejects, &mut |feed| {
        store.add_members_streamed(round, actor, feed)
    })?;
    rejects.finish();
    let mut warnings: Vec<String> = unknown
        .iter()
        .map(|c| format!("忽略未识别的列“{c}”(不会保存)"))
        .collect();
    warnings.extend(summary.warnings);
    Ok(ImportReport {
        imported: stored.unwrap_or(0),
        applied: stored.is_some(),
        rejected: std::mem::take(&mut rejects.kept),
        rejected_count: rejects.count,
        warnings,
        units: summary.units,
        encoding,
        field_headers: field_headers(roster::ROSTER_COLUMNS, columns.iter().copied(), &headers),
        headers,
    })
}

/// Where an import's rejected rows go: the first `keep` stay in memory (for the report), all
/// are counted, and with [`RejectLog::spill`] every one is also written to a rejects CSV as it
/// is found, so a file with a million bad rows costs no more memory than one with two hundred.
pub struct RejectLog {
    keep: usize,
    kept: Vec<Rejection>,
    /// Rows rejected in all.
    pub count: usize,
    spill: Option<Spill>,
}

struct Spill {
    path: std::path::PathBuf,
    writer: Option<CsvRowWriter<std::io::BufWriter<std::fs::File>>>,
    width: usize,
    /// Bytes written so far (cells only, roughly); past `max_bytes` further rows are dropped.
    written: u64,
    max_bytes: u64,
    /// Rows written to the file.
    rows: usize,
}

impl RejectLog {
    /// Keeps every rejected row in memory.
    pub fn all() -> RejectLog {
        RejectLog {
            keep: usize::MAX,
            kept: Vec::new(),
            count: 0,
            spill: None,
        }
    }

    /// Keeps the first `keep` rejected rows in memory and writes every one (up to about
    /// `max_bytes`) to a rejects CSV at `path`, in the format of [`ImportReport::write_rejects`].
    pub fn spill(keep: usize, path: &Path, max_bytes: u64) -> RejectLog {
        RejectLog {
            keep,
            kept: Vec::new(),
            count: 0,
            spill: Some(Spill {
                path: path.to_path_buf(),
                writer: None,
                width: 0,
                written: 0,
                max_bytes,
                rows: 0,
            }),
        }
    }

    /// Rows written to the rejects file (fewer than `count` when it hit its size limit; 0 when
    /// it could not be written).
    pub fn spilled(&self) -> usize {
        self.spill.as_ref().map_or(0, |s| s.rows)
    }

    fn set_headers(&mut self, headers: &[String]) {
        if let Some(spill) = &mut self.spill {
            spill.width = headers.len();
            let mut names: Vec<&str> = headers.iter().map(String::as_str).collect();
            names.push("错误");
            // A file that cannot be created is reported by finish().
            spill.writer = std::fs::File::create(&spill.path)
                .ok()
                .and_then(|f| CsvRowWriter::new(std::io::BufWriter::new(f), &names, true).ok());
        }
    }

    fn push(&mut self, rejection: Rejection) {
        self.count += 1;
        if let Some(spill) = &mut self.spill
            && spill.written <= spill.max_bytes
            && let Some(writer) = &mut spill.writer
        {
            let mut cells = rejection.cells.clone();
            cells.resize(spill.width, String::new());
            cells.push(rejection_note(&rejection));
            spill.written += cells.iter().map(|c| c.len() as u64 + 1).sum::<u64>();
            if writer.write_row(&cells).is_err() {
                spill.writer = None;
            } else {
                spill.rows += 1;
            }
        }
        if self.kept.len() < self.keep {
            self.kept.push(rejection);
        }
    }

    /// Flushes the rejects file; false when it could not be written whole (it is then
    /// removed: the import itself is not undone for it).
    fn finish(&mut self) {
        let Some(spill) = &mut self.spill else {
            return;
        };
        let complete = spill.writer.take().is_some_and(|w| w.finish().is_ok());
        if !complete {
            spill.rows = 0;
            let _ = std::fs::remove_file(&spill.path);
        }
    }
}

/// The error column of a rejects file.
fn rejection_note(r: &Rejection) -> String {
    format!("第{}行 {}:{}", r.line, r.field, r.error)
}

/// What the checker returns once the last row is checked: the checker, to sum up, and the
/// number of rejected rows; or why the file could not be read to its end.
type Rows<'u> = Result<(RowChecker<'u>, usize), TableError>;
/// The write: runs the feed it is given inside one transaction, which it keeps when the feed
/// returns true (`Storage::add_members_streamed`).
type Write<'w> = dyn FnMut(
        &mut dyn FnMut(&mut dyn MemberSink) -> Result<bool, StorageError>,
    ) -> Result<Option<usize>, StorageError>
    + 'w;

/// What the writer is sent, in row order.
enum Feed {
    /// Replace the stored panel of this unit (sent before any of its new members).
    Replace(i64),
    Members(Vec<NewMember>),
    /// Every row is checked, this many were rejected: nothing more comes.
    Checked {
        rejected: usize,
    },
}

struct Check<'a> {
    columns: &'a [Option<usize>],
    units: &'a [RosterUnit],
    opts: &'a RosterOptions,
    skip_invalid: bool,
}

impl<'a> Check<'a> {
    /// Reads and checks the rows on a second thread while this one, the writer, stores the
    /// members checked so far (storing takes longer than checking). Once the last row is
    /// checked the writer commits (or rolls back) while the checker sums up the panels and the
    /// phones shared between units: at a million rows each takes about a tenth of a second,
    /// and done in turn they were the import's tail. Without a second thread it checks and
    /// stores in turn. A panic while checking goes on once the writer has rolled back; one
    /// while summing up (a bug: it is plain arithmetic on what was checked) goes on after the
    /// commit, so the import is then kept although the caller sees the panic.
    fn check_and_store(
        &self,
        reader: &mut TableReader<'_>,
        rejects: &mut RejectLog,
        write: &mut Write<'_>,
    ) -> Result<(RosterSummary, Option<usize>), ImportError> {
        // Shared by the checker thread and, when it cannot be started, this one.
        let input = std::sync::Mutex::new((reader, rejects));
        let input = &input;
        let with_input = |f: &mut dyn FnMut(&mut TableReader<'_>, &mut RejectLog) -> Rows<'a>| {
            let mut guard = input
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let (reader, rejects) = &mut *guard;
            f(reader, rejects)
        };
        let keep = |rejected: usize| rejected == 0 || self.skip_invalid;
        let check_failed = || StorageError::Conflict("roster check failed".into());
        let (summary, stored) = std::thread::scope(|scope| {
            let (send, receive) = mpsc::sync_channel::<Feed>(BATCHES_AHEAD);
            // Stored batches go back to be refilled: their strings are freed, and their memory
            // reused, on the checker's thread, not on the writer's.
            let (give_back, take_back) = mpsc::channel::<Vec<NewMember>>();
            let checker = std::thread::Builder::new()
                .name("roster-check".into())
                .spawn_scoped(scope, move || {
                    let (checker, rejected) = with_input(&mut |reader, rejects| {
                        self.check_rows(
                            reader,
                            rejects,
                            &mut |feed| send.send(feed).is_ok(),
                            &mut || take_back.try_recv().ok(),
                        )
                    })?;
                    // The writer may go on to commit while the panels are summed up.
                    let _ = send.send(Feed::Checked { rejected });
                    drop(send);
                    Ok::<_, TableError>(checker.finish())
                });
            match checker {
                Ok(checker) => {
                    let stored = write(&mut |sink| {
                        for feed in &receive {
                            if let Feed::Checked { rejected } = feed {
                                return Ok(keep(rejected));
                            }
                            store(sink, feed, |batch| {
                                let _ = give_back.send(batch);
                            })?;
                        }
                        // The checker stopped short of the last row: joining it says why.
                        Err(check_failed())
                    });
                    // A checker still sending stops.
                    drop(receive);
                    (Some(checker.join()), stored)
                }
                Err(_) => {
                    let spare = std::cell::Cell::new(None);
                    let mut checked = None;
                    let stored = write(&mut |sink| {
                        let mut stored = Ok(());
                        // Summed up before the write is kept, so a panic there rolls it back.
                        let rows = catch_unwind(AssertUnwindSafe(|| {
                            with_input(&mut |reader, rejects| {
                                self.check_rows(
                                    reader,
                                    rejects,
                                    &mut |feed| {
                                        stored = store(sink, feed, |batch| spare.set(Some(batch)));
                                        stored.is_ok()
                                    },
                                    &mut || spare.take(),
                                )
                            })
                            .map(|(checker, rejected)| (checker.finish(), rejected))
                        }));
                        let kept = match &rows {
                            Ok(Ok((_, rejected))) => Some(keep(*rejected)),
                            _ => None,
                        };
                        checked = Some(rows.map(|rows| rows.map(|(summary, _)| summary)));
                        stored?;
                        kept.ok_or_else(check_failed)
                    });
                    (checked, stored)
                }
            }
        });
        match summary {
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            Some(Ok(Err(e))) => return Err(e.into()),
            _ => {}
        }
        let stored = stored?;
        // A write that succeeded ran its feed, which checked every row.
        let Some(Ok(Ok(summary))) = summary else {
            return Err(check_failed().into());
        };
        Ok((summary, stored))
    }

    /// Reads and checks every row and sends the writer what to store, in batches (refilling
    /// those `spare` gives back); `send` returns false when the writer failed (then checking
    /// stops: the import fails anyway). After a rejected row, unless bad rows are skipped,
    /// nothing more is sent, as nothing will be kept, but every row is still checked for the
    /// report. Returns the checker, to sum up, and the number of rows rejected.
    fn check_rows(
        &self,
        reader: &mut TableReader<'_>,
        rejects: &mut RejectLog,
        send: &mut dyn FnMut(Feed) -> bool,
        spare: &mut dyn FnMut() -> Option<Vec<NewMember>>,
    ) -> Rows<'a> {
        let mut new_batch = || {
            let mut batch = spare().unwrap_or_else(|| Vec::with_capacity(MEMBERS_PER_BATCH));
            batch.clear();
            batch
        };
        let mut checker = RowChecker::new(self.units, self.opts);
        let mut batch = new_batch();
        let mut sending = true;
        while let Some(row) = reader.next_row()? {
            let checked = checker.check(row.line, &row.cells, self.columns);
            if let Some(unit) = checker.take_replace_started()
                && sending
                && !send(Feed::Replace(unit))
            {
                return Ok((checker, rejects.count));
            }
            match checked {
                Ok(member) if sending => {
                    batch.push(member);
                    if batch.len() >= MEMBERS_PER_BATCH {
                        let full = std::mem::replace(&mut batch, new_batch());
                        if !send(Feed::Members(full)) {
                            return Ok((checker, rejects.count));
                        }
                    }
                }
                Ok(_) => {}
                Err(rejection) => {
                    rejects.push(rejection);
                    if !self.skip_invalid {
                        sending = false;
                        batch = Vec::new();
                    }
                }
            }
        }
        if sending && !batch.is_empty() {
            send(Feed::Members(batch));
        }
        Ok((checker, rejects.count))
    }
}

/// Stores what the checker sent; a stored batch goes to `give_back`.
fn store(
    sink: &mut dyn MemberSink,
    feed: Feed,
    give_back: impl FnOnce(Vec<NewMember>),
) -> Result<(), StorageError> {
    match feed {
        Feed::Replace(unit) => sink.replace_panel(unit),
        Feed::Members(members) => {
            let stored = sink.add(&members);
            give_back(members);
            stored
        }
        // The end of the rows stores nothing (the writer reads it before it gets here).
        Feed::Checked { .. } => Ok(()),
    }
}

pub fn read_file(path: &Path, encoding: Option<&str>) -> Result<Table, ImportError> {
    Ok(tabular::read_table_file(path, &read_options(encoding)?)?)
}

/// Opens a file as a stream of rows, with no limit on its size (for the roster import, whose
/// province-wide files are large).
pub fn open_file(path: &Path, encoding: Option<&str>) -> Result<TableReader<'static>, ImportError> {
    let opts = ReadOptions {
        max_bytes: usize::MAX,
        ..read_options(encoding)?
    };
    Ok(TableReader::open_file(path, &opts)?)
}

fn read_options(encoding: Option<&str>) -> Result<ReadOptions, ImportError> {
    let mut opts = ReadOptions::default();
    if let Some(name) = encoding {
        opts.encoding = Some(tabular::Encoding::parse(name).ok_or_else(|| {
            ImportError::Header(format!(
                "不认识的编码“{name}”:可用 utf-8、utf-16、gbk、gb18030"
            ))
        })?);
    }
    Ok(opts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::unit::{NewUnit, UnitKind};
    use crate::storage::NewRound;
    use crate::storage::prelude::*;
    use crate::storage::sqlite::SqliteStore;
    use crate::tabular::{Format, Row};

    /// A store with a round of three units.
    fn store() -> (tempfile::TempDir, SqliteStore, RoundRecord) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let survey = crate::domain::survey::Survey::from_toml_str(include_str!(
            "../../surveys/default.toml"
        ))
        .unwrap();
        let round = store
            .create_round(
                &NewRound {
                    key: "t".into(),
                    title: "t".into(),
                    survey,
                    survey_source: "default".into(),
                    field: None,
                },
                "t",
            )
            .unwrap();
        let units: Vec<NewUnit> = ["甲局", "乙局", "丙局"]
            .iter()
            .enumerate()
            .map(|(i, name)| NewUnit {
                name: name.to_string(),
                kind: UnitKind::Institution,
                sector: String::new(),
                code: None,
                line: i + 2,
            })
            .collect();
        store.add_units(&round, &units, "t").unwrap();
        (dir, store, round)
    }

    /// Rows of (unit, name, phone), lines from 2.
    fn table(rows: &[(String, String, String)]) -> Table {
        Table {
            headers: ["参评单位", "姓名", "联系电话"].map(String::from).to_vec(),
            rows: rows
                .iter()
                .enumerate()
                .map(|(i, (u, n, p))| Row {
                    line: i + 2,
                    cells: vec![u.clone(), n.clone(), p.clone()],
                })
                .collect(),
            encoding: None,
            format: Format::Csv,
        }
    }

    /// More rows than several batches, spread over the units: (unit, name, phone).
    fn many(n: usize, first_phone: u64) -> Vec<(String, String, String)> {
        (0..n)
            .map(|i| {
                let unit = ["甲局", "乙局", "丙局"][i * 3 / n];
                let phone = format!("139{:08}", first_phone + i as u64);
                (unit.to_string(), format!("代表{i}"), phone)
            })
            .collect()
    }

    fn import(
        store: &SqliteStore,
        round: &RoundRecord,
        rows: &[(String, String, String)],
        skip_invalid: bool,
        replace: bool,
    ) -> ImportReport {
        let opts = RosterImport {
            area_code: None,
            skip_invalid,
            replace,
        };
        roster_import(store, round, &table(rows), &opts, "t").unwrap()
    }

    #[test]
    fn a_bad_row_after_stored_batches_leaves_nothing_stored() {
        let (_dir, store, round) = store();
        let mut rows = many(5 * MEMBERS_PER_BATCH, 0);
        rows.push(("甲局".into(), "坏号".into(), "12345".into()));
        rows.extend(many(MEMBERS_PER_BATCH, 100_000));
        let report = import(&store, &round, &rows, false, false);
        assert!(!report.applied);
        assert_eq!(report.imported, 0);
        let lines: Vec<usize> = report.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, [5 * MEMBERS_PER_BATCH + 2]);
        assert!(store.members(round.id, None).unwrap().is_empty());
        // The panels are reported as they would have been.
        let panel: usize = report.units.iter().map(|u| u.panel).sum();
        assert_eq!(panel, 6 * MEMBERS_PER_BATCH);
        assert!(no_roster_import_audited(&store));
    }

    #[test]
    fn skipping_stores_every_good_row_in_file_order() {
        let (_dir, store, round) = store();
        let mut rows = many(3 * MEMBERS_PER_BATCH + 7, 0);
        rows.insert(10, ("丁局".into(), "无单位".into(), "13900000001".into()));
        rows.insert(2000, ("乙局".into(), "重复".into(), rows[1500].2.clone()));
        let report = import(&store, &round, &rows, true, false);
        assert!(report.applied);
        assert_eq!(report.rejected.len(), 2, "{:?}", report.rejected);
        assert_eq!(report.imported, 3 * MEMBERS_PER_BATCH + 7);
        let stored = store.members(round.id, None).unwrap();
        assert_eq!(stored.len(), report.imported);
        // The rows come unit by unit, and `members` lists by unit, then id (file order).
        let expected: Vec<&str> = rows
            .iter()
            .filter(|r| r.1 != "无单位" && r.1 != "重复")
            .map(|r| r.1.as_str())
            .collect();
        let got: Vec<&str> = stored.iter().filter_map(|m| m.name.as_deref()).collect();
        assert_eq!(got, expected);
        let entry = store.audit_entries(Some("t")).unwrap().pop().unwrap();
        assert_eq!(entry.action, "roster.import");
        assert!(
            entry
                .detail
                .contains(&format!("\"members\":{}", report.imported))
        );
    }

    #[test]
    fn replace_swaps_the_panels_named_and_keeps_the_others() {
        let (_dir, store, round) = store();
        let first = many(3 * MEMBERS_PER_BATCH, 0);
        assert_eq!(
            import(&store, &round, &first, false, false).imported,
            first.len()
        );
        // Again without --replace: every row is a stored duplicate, nothing changes.
        let again = import(&store, &round, &first, false, false);
        assert!(!again.applied);
        assert_eq!(again.rejected.len(), first.len());
        // A new panel for 乙局 only, overlapping its old phones.
        let new: Vec<_> = first
            .iter()
            .filter(|r| r.0 == "乙局")
            .take(50)
            .map(|r| (r.0.clone(), format!("新{}", r.1), r.2.clone()))
            .collect();
        let report = import(&store, &round, &new, false, true);
        assert!(report.applied, "{:?}", report.rejected);
        assert_eq!(report.imported, 50);
        let stored = store.members(round.id, None).unwrap();
        let count = |unit: &str| stored.iter().filter(|m| m.unit == unit).count();
        assert_eq!(
            (count("甲局"), count("乙局"), count("丙局")),
            (MEMBERS_PER_BATCH, 50, MEMBERS_PER_BATCH)
        );
        let panel = |unit: &str| report.units.iter().find(|u| u.unit == unit).unwrap().panel;
        assert_eq!((panel("甲局"), panel("乙局")), (MEMBERS_PER_BATCH, 50));
    }

    /// `rows` as CSV bytes with a header line.
    fn csv(rows: &[(String, String, String)]) -> Vec<u8> {
        let mut out = String::from("参评单位,姓名,联系电话\n");
        for (u, n, p) in rows {
            out.push_str(&format!("{u},{n},{p}\n"));
        }
        out.into_bytes()
    }

    fn no_roster_import_audited(store: &SqliteStore) -> bool {
        !store
            .audit_entries(Some("t"))
            .unwrap()
            .iter()
            .any(|e| e.action == "roster.import")
    }

    #[test]
    fn a_file_unreadable_after_stored_batches_stores_nothing_and_names_its_line() {
        let (_dir, store, round) = store();
        let mut rows = many(5 * MEMBERS_PER_BATCH, 0);
        // Longer than a cell may be: the reader stops there, after five batches were stored.
        rows.push(("甲局".into(), "长".repeat(2_001), "13900000001".into()));
        rows.extend(many(MEMBERS_PER_BATCH, 100_000));
        let bytes = csv(&rows);
        let reader = TableReader::from_bytes(&bytes, "名单.csv", &ReadOptions::default()).unwrap();
        let opts = RosterImport {
            area_code: None,
            skip_invalid: true,
            replace: false,
        };
        let out = roster_import_stream(&store, &round, reader, &opts, "t", &mut RejectLog::all());
        match out {
            Err(ImportError::Table(TableError::CellTooLong { line, .. })) => {
                assert_eq!(line, 5 * MEMBERS_PER_BATCH + 2)
            }
            other => panic!("expected the reader's error, got {other:?}"),
        }
        assert!(store.members(round.id, None).unwrap().is_empty());
        assert!(no_roster_import_audited(&store));
    }

    #[test]
    fn a_write_refused_before_any_row_is_stored_gives_its_reason_and_stores_nothing() {
        let (_dir, store, round) = store();
        // The round was locked after this record of it was read: the store refuses the write
        // while the checker is already reading.
        store.lock_round(&round, "t").unwrap();
        let rows = many(20 * MEMBERS_PER_BATCH, 0);
        let opts = RosterImport {
            area_code: None,
            skip_invalid: false,
            replace: false,
        };
        let out = roster_import(&store, &round, &table(&rows), &opts, "t");
        assert!(
            matches!(out, Err(ImportError::Storage(_))),
            "expected the store's refusal, got {out:?}"
        );
        assert!(store.members(round.id, None).unwrap().is_empty());
        assert!(no_roster_import_audited(&store));
    }
}
