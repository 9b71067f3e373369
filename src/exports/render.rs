//! The one renderer: an export kind as the bytes of its file (CSV, xlsx or SPSS syntax) plus,
//! for a codebook, the syntax written beside it. `sheping export`, the API and the report's
//! `csv/` folder all go through [`render`]; they differ only in where the bytes go.

use crate::engine::Store;
use crate::results::{ResultsDocument, RoundData};
use crate::tabular;

use super::columns::{ExportTable, VarType, build_table};
use super::spss::{Syntax, spss_syntax};
use super::{ExportError, ExportFormat, ExportKind, ExportOptions};

/// One export, rendered.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub kind: ExportKind,
    /// `csv`, `xlsx` or `sps`: the file's extension and what the audit log records.
    pub format: &'static str,
    pub bytes: Vec<u8>,
    /// Rows of the table (for `spss`, of the codebook table it comes with).
    pub rows: usize,
    /// SPSS syntax to write beside the file as `.sps` (a codebook's).
    pub syntax_beside: Option<String>,
}

impl Rendered {
    pub fn content_type(&self) -> &'static str {
        match self.format {
            "csv" => "text/csv; charset=utf-8",
            "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            _ => "text/plain; charset=utf-8",
        }
    }
}

/// Renders `kind` from loaded data in `opts.format` (the `spss` kind is always syntax). The
/// syntax reads the responses CSV as `opts.responses_file`.
pub fn render(
    store: &dyn Store,
    data: &RoundData,
    doc: &ResultsDocument,
    kind: ExportKind,
    opts: &ExportOptions,
) -> Result<Rendered, ExportError> {
    let table = build_table(store, data, doc, kind, opts.with_comments)?;
    let syntax = || -> Result<String, ExportError> {
        let responses = build_table(store, data, doc, ExportKind::Responses, opts.with_comments)?;
        Ok(spss_syntax(&data.round, &responses, &opts.responses_file))
    };
    let (format, bytes, syntax_beside) = match Syntax::of(kind) {
        Syntax::Alone => ("sps", syntax()?.into_bytes(), None),
        Syntax::Beside => (
            opts.format.key(),
            table_bytes(&table, opts.format, opts.bom)?,
            Some(syntax()?),
        ),
        Syntax::None => (
            opts.format.key(),
            table_bytes(&table, opts.format, opts.bom)?,
            None,
        ),
    };
    Ok(Rendered {
        kind,
        format,
        bytes,
        rows: table.rows.len(),
        syntax_beside,
    })
}

/// A table as CSV (with or without BOM) or xlsx (one sheet named after the export).
fn table_bytes(
    table: &ExportTable,
    format: ExportFormat,
    bom: bool,
) -> Result<Vec<u8>, ExportError> {
    let headers = table.headers();
    match format {
        ExportFormat::Csv => {
            let mut buf = Vec::new();
            tabular::write_csv(&mut buf, &headers, table.rows.iter().cloned(), bom).map_err(
                |e| ExportError::Io {
                    path: table.kind.key().to_string(),
                    error: e.to_string(),
                },
            )?;
            Ok(buf)
        }
        ExportFormat::Xlsx => {
            // Codes and times stay text even where a cell looks like a number.
            let text: Vec<bool> = table
                .vars
                .iter()
                .map(|v| matches!(v.kind, VarType::Text | VarType::DateTime))
                .collect();
            Ok(tabular::xlsx_typed_bytes(
                table.kind.key(),
                table.kind.key(),
                &headers,
                &text,
                table.rows.iter().cloned(),
            )?)
        }
    }
}
