//! The statisticians' exports: raw answers, distributions, scores, dispositions, call paradata
//! and a codebook with SPSS syntax. Every export is anonymised (a pseudonymous respondent id,
//! never a name or a phone number), has stable English column keys, and is written to the
//! audit log. Columns are documented in `docs/results.md` and in the codebook export itself.
//!
//! CSV is UTF-8 with a BOM (for Excel/WPS) unless asked otherwise; xlsx has one sheet named
//! after the export.
//!
//! - `columns`: the column specification type and what every kind shares (units, counts);
//!   one file per family of kinds holds each kind's columns and rows: `interviews`
//!   (responses, attempts), `units` (distributions, scores, dispositions), `onsite`,
//!   `operators`, `codebook`;
//! - `render`: a kind as the bytes of its file, for the CLI, the API and the report;
//! - `spss`: the SPSS syntax and which exports bring it.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::domain::user::Role;
use crate::engine::{EngineError, Store};
use crate::results::{self, ResultsError, ResultsOptions, RoundData};
use crate::storage::{AuditEvent, RoundRecord, StorageError};
use crate::tabular::TableError;

mod codebook;
mod columns;
mod interviews;
mod onsite;
mod operators;
mod render;
mod spss;
#[cfg(test)]
mod tests;
mod units;

pub use crate::domain::personal::scrub_comment;
pub use columns::{ExportTable, Measure, Var, VarType, build_table, variables};
pub use operators::operator_panel_tallies;
pub use render::{Rendered, render};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("无法写出文件 {path}:{error}")]
    Io { path: String, error: String },
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportKind {
    Responses,
    Distributions,
    Scores,
    Dispositions,
    Attempts,
    /// The on-site data in the order the scoring reads it (ballots, direct scores).
    Onsite,
    /// Per operator: field figures (as on /progress) and the interviewer-effect checks.
    Operators,
    Codebook,
    /// SPSS syntax reading the responses CSV (also written beside a codebook).
    Spss,
}

impl ExportKind {
    pub fn all() -> &'static [ExportKind] {
        use ExportKind::*;
        &[
            Responses,
            Distributions,
            Scores,
            Dispositions,
            Attempts,
            Onsite,
            Operators,
            Codebook,
            Spss,
        ]
    }

    pub fn key(self) -> &'static str {
        match self {
            ExportKind::Responses => "responses",
            ExportKind::Distributions => "distributions",
            ExportKind::Scores => "scores",
            ExportKind::Dispositions => "dispositions",
            ExportKind::Attempts => "attempts",
            ExportKind::Onsite => "onsite",
            ExportKind::Operators => "operators",
            ExportKind::Codebook => "codebook",
            ExportKind::Spss => "spss",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ExportKind::Responses => "访问答案(每份访问一行)",
            ExportKind::Distributions => "各维度答案分布",
            ExportKind::Scores => "各单位得分",
            ExportKind::Dispositions => "各单位拨打结果与应答率",
            ExportKind::Attempts => "全部拨打记录(过程数据)",
            ExportKind::Onsite => "现场评价数据(选票与直接得分)",
            ExportKind::Operators => "各话务员进度与话务员效应检验",
            ExportKind::Codebook => "变量说明(codebook)",
            ExportKind::Spss => "SPSS 读取语法",
        }
    }

    /// The roles that may download this export: the one rule for the console, the API and the
    /// links on the results page. Evaluators get the unit-level tables (scores,
    /// distributions): nothing in them is respondent-level or names an operator. Everything
    /// else (interviews, call records, operators, on-site ballots, the codebook and syntax
    /// for the responses) stays with the statisticians and administrators.
    pub fn roles(self) -> &'static [Role] {
        match self {
            ExportKind::Scores | ExportKind::Distributions => {
                &[Role::Admin, Role::Statistician, Role::Evaluator]
            }
            _ => &[Role::Admin, Role::Statistician],
        }
    }

    pub fn downloadable_by(self, role: Role) -> bool {
        self.roles().contains(&role)
    }

    /// The exports `role` may download, in the usual order.
    pub fn for_role(role: Role) -> Vec<ExportKind> {
        ExportKind::all()
            .iter()
            .copied()
            .filter(|k| k.downloadable_by(role))
            .collect()
    }

    pub fn parse(text: &str) -> Option<ExportKind> {
        let t = text.trim().to_ascii_lowercase();
        ExportKind::all()
            .iter()
            .copied()
            .find(|k| k.key() == t || (t == "sps" && *k == ExportKind::Spss))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExportFormat {
    #[default]
    Csv,
    Xlsx,
}

impl ExportFormat {
    pub fn parse(text: &str) -> Option<ExportFormat> {
        match text.trim().to_ascii_lowercase().as_str() {
            "csv" => Some(ExportFormat::Csv),
            "xlsx" | "excel" => Some(ExportFormat::Xlsx),
            _ => None,
        }
    }

    /// From a file name's extension: `.xlsx` is xlsx, anything else CSV.
    pub fn from_path(path: &Path) -> ExportFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("xlsx") => ExportFormat::Xlsx,
            _ => ExportFormat::Csv,
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Xlsx => "xlsx",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub format: ExportFormat,
    /// UTF-8 BOM at the start of a CSV (for Excel/WPS).
    pub bom: bool,
    /// Include the operators' free-text comments (names and phone numbers in them are masked).
    pub with_comments: bool,
    /// The responses file the SPSS syntax reads.
    pub responses_file: String,
    pub results: ResultsOptions,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            format: ExportFormat::Csv,
            bom: true,
            with_comments: false,
            responses_file: "responses.csv".into(),
            results: ResultsOptions::default(),
        }
    }
}

/// Only `scores` shows the bootstrap's rank intervals; the other exports skip it.
fn doc_options(kind: ExportKind, base: &ResultsOptions) -> ResultsOptions {
    match kind {
        ExportKind::Scores => base.clone(),
        _ => ResultsOptions {
            replicates: Some(0),
            ..base.clone()
        },
    }
}

/// What an export wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportSummary {
    pub kind: &'static str,
    pub format: &'static str,
    pub rows: usize,
    pub files: Vec<PathBuf>,
}

fn sps_path(out: &Path) -> PathBuf {
    out.with_extension("sps")
}

/// Loads the round, computes its results (only `scores` runs the bootstrap) and renders one
/// export.
fn compute(
    store: &dyn Store,
    round: &RoundRecord,
    kind: ExportKind,
    opts: &ExportOptions,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Rendered, ExportError> {
    let data = RoundData::load(store, round, now, actor)?;
    let doc = results::compute_from(&data, &doc_options(kind, &opts.results))?;
    render(store, &data, &doc, kind, opts)
}

/// Writes a rendered file; xlsx errors read as they always have (the spreadsheet writer's).
fn write_rendered(path: &Path, rendered: &Rendered) -> Result<(), ExportError> {
    std::fs::write(path, &rendered.bytes).map_err(|e| match rendered.format {
        "xlsx" => ExportError::Table(TableError::Write {
            file: path.display().to_string(),
            detail: e.to_string(),
        }),
        _ => ExportError::Io {
            path: path.display().to_string(),
            error: e.to_string(),
        },
    })
}

/// Computes and writes one export (and the syntax that comes beside it) and records it in
/// the audit log.
pub fn export_to_file(
    store: &dyn Store,
    round: &RoundRecord,
    kind: ExportKind,
    out: &Path,
    opts: &ExportOptions,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<ExportSummary, ExportError> {
    let rendered = compute(store, round, kind, opts, actor, now)?;
    write_rendered(out, &rendered)?;
    let mut files = vec![out.to_path_buf()];
    if let Some(text) = &rendered.syntax_beside {
        let p = sps_path(out);
        if let Err(e) = std::fs::write(&p, text) {
            let _ = std::fs::remove_file(out);
            return Err(ExportError::Io {
                path: p.display().to_string(),
                error: e.to_string(),
            });
        }
        files.push(p);
    }
    // Logged once written; a file whose export cannot be logged is not left behind.
    if let Err(e) = audit_export(
        store,
        round,
        &rendered,
        opts.with_comments,
        actor,
        out.file_name().and_then(|n| n.to_str()),
    ) {
        for f in &files {
            let _ = std::fs::remove_file(f);
        }
        return Err(e);
    }
    Ok(ExportSummary {
        kind: kind.key(),
        format: rendered.format,
        rows: rendered.rows,
        files,
    })
}

fn audit_export(
    store: &dyn Store,
    round: &RoundRecord,
    rendered: &Rendered,
    with_comments: bool,
    actor: &str,
    file: Option<&str>,
) -> Result<(), ExportError> {
    store.audit(&AuditEvent {
        actor,
        action: &format!("export.{}", rendered.kind.key()),
        round_key: Some(&round.key),
        detail: serde_json::json!({
            "format": rendered.format,
            "rows": rendered.rows,
            "with_comments": with_comments,
            "file": file,
        }),
    })?;
    Ok(())
}

/// A round key (or any name) as part of a file name: letters, digits, `-` and `_` kept,
/// anything else (separators, dots, control characters, spaces) `_`. Keys with `/` are refused
/// when rounds are created, but a file name must never depend on that: `..`, `\` (a separator
/// for Windows and many unzip tools), NUL and absolute paths all come out as one plain
/// component.
pub fn file_name_part(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.is_empty() {
        "_".to_string()
    } else {
        safe
    }
}

/// A download's file name without extension: `2022-responses`.
pub fn download_stem(round_key: &str, kind: ExportKind) -> String {
    format!("{}-{}", file_name_part(round_key), kind.key())
}

/// One export in memory (for an HTTP download): bytes, content type and a file name.
pub struct ExportBytes {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub file_name: String,
    pub rows: usize,
}

/// Computes one export into memory, after recording it in the audit log. A codebook comes
/// without its syntax (one download is one file; the `spss` export is the syntax).
pub fn export_bytes(
    store: &dyn Store,
    round: &RoundRecord,
    kind: ExportKind,
    opts: &ExportOptions,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<ExportBytes, ExportError> {
    // The syntax reads the responses CSV under the name it is downloaded with.
    let opts = ExportOptions {
        responses_file: format!("{}.csv", download_stem(&round.key, ExportKind::Responses)),
        ..opts.clone()
    };
    let rendered = compute(store, round, kind, &opts, actor, now)?;
    let file_name = format!("{}.{}", download_stem(&round.key, kind), rendered.format);
    audit_export(
        store,
        round,
        &rendered,
        opts.with_comments,
        actor,
        Some(&file_name),
    )?;
    Ok(ExportBytes {
        content_type: rendered.content_type(),
        rows: rendered.rows,
        bytes: rendered.bytes,
        file_name,
    })
}
