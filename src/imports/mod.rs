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
use crate::storage::{MemberSink, RoundRecord, Storage, StorageError};
use crate::tabular::{self, ReadOptions, Table, TableError};

mod attempts;
pub use attempts::{attempts_import, parse_local_time};
mod evidence;
pub use evidence::{EvidenceImport, demo_evidence, evidence_import};
mod onsite;
pub use onsite::{OnsiteImport, demo_onsite, onsite_import};

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
    pub rejected: Vec<Rejection>,
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub units: Vec<UnitPanel>,
    /// Whether anything was stored.
    pub applied: bool,
    pub encoding: Option<String>,
    #[serde(skip)]
    pub headers: Vec<String>,
}

impl ImportReport {
    /// Writes the rejected rows as they were, plus an error column (UTF-8 CSV with BOM).
    pub fn write_rejects(&self, path: &Path) -> Result<(), ImportError> {
        let mut headers: Vec<&str> = self.headers.iter().map(String::as_str).collect();
        headers.push("错误");
        let rows = self.rejected.iter().map(|r| {
            let mut cells = r.cells.clone();
            cells.resize(self.headers.len(), String::new());
            cells.push(format!("第{}行 {}:{}", r.line, r.field, r.error));
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
    store: &dyn Storage,
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
        rejected,
        encoding: table.encoding.map(|e| e.name().to_string()),
        headers: table.headers.clone(),
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
const BATCHES_AHEAD: usize = 64;

/// Imports a roster: every row is checked while the writer stores the rows checked so far, in
/// one transaction that is kept only if no row was rejected or `skip_invalid` was asked for;
/// otherwise nothing is stored.
pub fn roster_import(
    store: &dyn Storage,
    round: &RoundRecord,
    table: &Table,
    opts: &RosterImport,
    actor: &str,
) -> Result<ImportReport, ImportError> {
    ensure_open(round)?;
    let (columns, unknown) = roster::map_columns(&table.headers).map_err(ImportError::Header)?;
    let units = store.roster_units(round.id)?;
    let roster_opts = RosterOptions {
        area_code: opts.area_code.map(str::to_string),
        replace: opts.replace,
        panel_size: round.survey.panel_size as usize,
    };
    let check = Check {
        table,
        columns: &columns,
        units: &units,
        opts: &roster_opts,
        skip_invalid: opts.skip_invalid,
    };
    let mut checked = None;
    let mut panicked = None;
    let stored = store.add_members_streamed(round, actor, &mut |sink| {
        match check.check_and_store(sink) {
            Ok((summary, rejected, stored)) => {
                let keep = rejected.is_empty() || opts.skip_invalid;
                checked = Some((summary, rejected));
                stored.map(|()| keep)
            }
            Err(panic) => {
                // Failing the write rolls it back; the panic goes on after that.
                panicked = Some(panic);
                Err(StorageError::Conflict("roster check failed".into()))
            }
        }
    });
    if let Some(panic) = panicked {
        std::panic::resume_unwind(panic);
    }
    let stored = stored?;
    let (summary, rejected) = checked.expect("add_members_streamed runs feed before it succeeds");
    let mut warnings: Vec<String> = unknown
        .iter()
        .map(|c| format!("忽略未识别的列“{c}”(不会保存)"))
        .collect();
    warnings.extend(summary.warnings);
    Ok(ImportReport {
        imported: stored.unwrap_or(0),
        applied: stored.is_some(),
        rejected,
        warnings,
        units: summary.units,
        encoding: table.encoding.map(|e| e.name().to_string()),
        headers: table.headers.clone(),
    })
}

/// The summary, the rejected rows, and whether storing succeeded.
type Checked = (RosterSummary, Vec<Rejection>, Result<(), StorageError>);

/// What the writer is sent, in row order.
enum Feed {
    /// Replace the stored panel of this unit (sent before any of its new members).
    Replace(i64),
    Members(Vec<NewMember>),
}

struct Check<'a> {
    table: &'a Table,
    columns: &'a [Option<usize>],
    units: &'a [RosterUnit],
    opts: &'a RosterOptions,
    skip_invalid: bool,
}

impl Check<'_> {
    /// Checks the rows on a second thread while this one, the writer, stores the members
    /// checked so far (storing takes longer than checking). Without a second thread it checks
    /// and stores in turn. A panic while checking is returned (`Err`), for the caller to
    /// resume once the writer has rolled back.
    fn check_and_store(&self, sink: &mut dyn MemberSink) -> std::thread::Result<Checked> {
        std::thread::scope(|scope| {
            let (send, receive) = mpsc::sync_channel::<Feed>(BATCHES_AHEAD);
            // Stored batches go back to be refilled: their strings are freed, and their memory
            // reused, on the checker's thread, not on the writer's.
            let (give_back, take_back) = mpsc::channel::<Vec<NewMember>>();
            let checker = std::thread::Builder::new()
                .name("roster-check".into())
                .spawn_scoped(scope, move || {
                    self.check_rows(&mut |feed| send.send(feed).is_ok(), &mut || {
                        take_back.try_recv().ok()
                    })
                });
            match checker {
                Ok(checker) => {
                    let mut stored = Ok(());
                    for feed in &receive {
                        stored = store(sink, feed, |batch| {
                            let _ = give_back.send(batch);
                        });
                        if stored.is_err() {
                            break;
                        }
                    }
                    // A checker still sending stops.
                    drop(receive);
                    let (summary, rejected) = checker.join()?;
                    Ok((summary, rejected, stored))
                }
                Err(_) => {
                    let mut stored = Ok(());
                    let spare = std::cell::Cell::new(None);
                    let (summary, rejected) = catch_unwind(AssertUnwindSafe(|| {
                        self.check_rows(
                            &mut |feed| {
                                stored = store(sink, feed, |batch| spare.set(Some(batch)));
                                stored.is_ok()
                            },
                            &mut || spare.take(),
                        )
                    }))?;
                    Ok((summary, rejected, stored))
                }
            }
        })
    }

    /// Checks every row and sends the writer what to store, in batches (refilling those
    /// `spare` gives back); `send` returns false when the writer failed (then checking stops:
    /// the import fails anyway). After a rejected row, unless bad rows are skipped, nothing
    /// more is sent, as nothing will be kept, but every row is still checked for the report.
    fn check_rows(
        &self,
        send: &mut dyn FnMut(Feed) -> bool,
        spare: &mut dyn FnMut() -> Option<Vec<NewMember>>,
    ) -> (RosterSummary, Vec<Rejection>) {
        let mut new_batch = || {
            let mut batch = spare().unwrap_or_else(|| Vec::with_capacity(MEMBERS_PER_BATCH));
            batch.clear();
            batch
        };
        let mut checker = RowChecker::new(self.units, self.opts);
        let mut rejected = Vec::new();
        let mut batch = new_batch();
        let mut sending = true;
        for row in &self.table.rows {
            let checked = checker.check(row.line, &row.cells, self.columns);
            if let Some(unit) = checker.take_replace_started()
                && sending
                && !send(Feed::Replace(unit))
            {
                return (checker.finish(), rejected);
            }
            match checked {
                Ok(member) if sending => {
                    batch.push(member);
                    if batch.len() >= MEMBERS_PER_BATCH {
                        let full = std::mem::replace(&mut batch, new_batch());
                        if !send(Feed::Members(full)) {
                            return (checker.finish(), rejected);
                        }
                    }
                }
                Ok(_) => {}
                Err(rejection) => {
                    rejected.push(rejection);
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
        (checker.finish(), rejected)
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
    }
}

pub fn read_file(path: &Path, encoding: Option<&str>) -> Result<Table, ImportError> {
    let mut opts = ReadOptions::default();
    if let Some(name) = encoding {
        opts.encoding = Some(tabular::Encoding::parse(name).ok_or_else(|| {
            ImportError::Header(format!(
                "不认识的编码“{name}”:可用 utf-8、utf-16、gbk、gb18030"
            ))
        })?);
    }
    Ok(tabular::read_table_file(path, &opts)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::unit::{NewUnit, UnitKind};
    use crate::storage::NewRound;
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
        assert!(
            !store
                .audit_entries(Some("t"))
                .unwrap()
                .iter()
                .any(|e| e.action == "roster.import")
        );
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
}
