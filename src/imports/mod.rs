//! Importers: read a spreadsheet, validate it with the domain rules, and store it all at once
//! (or only the valid rows when the user asked to skip bad ones). Shared by CLI and web.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

use crate::domain::import::Rejection;
use crate::domain::roster::{self, RosterOptions, UnitPanel};
use crate::domain::unit::{UNIT_COLUMNS, validate_units};
use crate::storage::{RoundRecord, Storage, StorageError};
use crate::tabular::{self, ReadOptions, Table, TableError};

mod attempts;
pub use attempts::{attempts_import, parse_local_time};
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
    let check = roster::check_roster(
        rows(table),
        &columns,
        &units,
        &RosterOptions {
            area_code: opts.area_code.map(str::to_string),
            replace: opts.replace,
            panel_size: round.survey.panel_size as usize,
        },
    );
    let mut warnings: Vec<String> = unknown
        .iter()
        .map(|c| format!("忽略未识别的列“{c}”(不会保存)"))
        .collect();
    warnings.extend(check.warnings);
    let mut report = ImportReport {
        rejected: check.rejected,
        warnings,
        units: check.units,
        encoding: table.encoding.map(|e| e.name().to_string()),
        headers: table.headers.clone(),
        ..Default::default()
    };
    if report.rejected.is_empty() || opts.skip_invalid {
        report.imported = store.add_members(round, &check.members, &check.replace_units, actor)?;
        report.applied = true;
    }
    Ok(report)
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
