//! Writing CSV and xlsx files that Excel/WPS open correctly.

use std::io::Write;
use std::path::Path;

use super::TableError;
use super::xlsx::format_number;

/// CSV for Excel/WPS: UTF-8 with BOM unless `bom` is false (without it Excel reads UTF-8 as
/// GBK and Chinese turns to mojibake), CRLF line ends, quoting as needed.
///
/// Every cell, the header row included (a rejects file repeats the uploaded file's headers),
/// is guarded against formula injection: a cell starting with `=`,
/// `@`, tab or CR, or with `+`/`-` not followed by a plain number or phone-like digits, gets a
/// leading `'`, so a name like `=HYPERLINK(...)` typed into a roster cannot run in the
/// spreadsheet of whoever opens the export. Values like `-1.5` and `+86 139 1234 5678` are kept.
pub fn write_csv<W: Write>(
    out: W,
    headers: &[&str],
    rows: impl IntoIterator<Item = Vec<String>>,
    bom: bool,
) -> std::io::Result<()> {
    let mut w = CsvRowWriter::new(out, headers, bom)?;
    for row in rows {
        w.write_row(&row)?;
    }
    w.finish()
}

/// [`write_csv`] one row at a time, for files written while their rows are produced (the
/// rejected rows of an import).
pub struct CsvRowWriter<W: Write> {
    w: csv::Writer<W>,
}

impl<W: Write> CsvRowWriter<W> {
    pub fn new(mut out: W, headers: &[&str], bom: bool) -> std::io::Result<Self> {
        if bom {
            out.write_all(b"\xEF\xBB\xBF")?;
        }
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .quote_style(csv::QuoteStyle::Necessary)
            .flexible(true)
            .from_writer(out);
        w.write_record(headers.iter().map(|h| defuse_formula(h).into_owned()))?;
        Ok(CsvRowWriter { w })
    }

    pub fn write_row(&mut self, row: &[String]) -> std::io::Result<()> {
        let cells: Vec<_> = row.iter().map(|c| defuse_formula(c)).collect();
        self.w.write_record(cells.iter().map(|c| c.as_bytes()))?;
        Ok(())
    }

    pub fn finish(mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}

/// The same table as an .xlsx file whose first sheet is named `sheet`. Cells are text, except
/// values that read back identically as numbers (so "13912345678" and "85.5" become numbers,
/// but "0915" or "1.50" stay text and keep their digits). Text cells get the same formula guard
/// as [`write_csv`].
pub fn write_xlsx(
    path: &Path,
    sheet: &str,
    headers: &[&str],
    rows: impl IntoIterator<Item = Vec<String>>,
) -> Result<(), TableError> {
    write_xlsx_typed(path, sheet, headers, &[], rows)
}

/// [`write_xlsx`], with the columns whose `text[c]` is true written as text cells even when
/// a cell looks like a number (codes such as `1.1` and `3.90` must not become numbers in
/// some rows and text in others).
pub fn write_xlsx_typed(
    path: &Path,
    sheet: &str,
    headers: &[&str],
    text: &[bool],
    rows: impl IntoIterator<Item = Vec<String>>,
) -> Result<(), TableError> {
    let file = path.display().to_string();
    let mut wb = workbook(&file, sheet, headers, text, rows)?;
    wb.save(path).map_err(|e| TableError::Write {
        file,
        detail: e.to_string(),
    })
}

/// [`write_xlsx_typed`] into memory (a download); `name` names the file in errors.
pub fn xlsx_typed_bytes(
    name: &str,
    sheet: &str,
    headers: &[&str],
    text: &[bool],
    rows: impl IntoIterator<Item = Vec<String>>,
) -> Result<Vec<u8>, TableError> {
    let mut wb = workbook(name, sheet, headers, text, rows)?;
    wb.save_to_buffer().map_err(|e| TableError::Write {
        file: name.to_string(),
        detail: e.to_string(),
    })
}

fn workbook(
    file: &str,
    sheet: &str,
    headers: &[&str],
    text: &[bool],
    rows: impl IntoIterator<Item = Vec<String>>,
) -> Result<rust_xlsxwriter::Workbook, TableError> {
    use rust_xlsxwriter::{Format as XFormat, Workbook};
    let file = file.to_string();
    let werr = |e: rust_xlsxwriter::XlsxError| TableError::Write {
        file: file.clone(),
        detail: e.to_string(),
    };
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name(sheet).map_err(werr)?;
    let bold = XFormat::new().set_bold();
    // "0" keeps 12+ digit integers from showing as 1.23457E+11 in Excel's General format.
    let integer = XFormat::new().set_num_format("0");
    for (c, h) in headers.iter().enumerate() {
        let c = xlsx_col(c, &file)?;
        ws.write_string_with_format(0, c, *h, &bold).map_err(werr)?;
    }
    ws.set_freeze_panes(1, 0).map_err(werr)?;
    for (r, row) in rows.into_iter().enumerate() {
        let r = u32::try_from(r + 1)
            .ok()
            .filter(|r| *r < 1_048_576)
            .ok_or_else(|| TableError::Write {
                file: file.clone(),
                detail: "行数超过 Excel 上限 1,048,576 行,请改为导出 CSV 或分成多个文件"
                    .to_string(),
            })?;
        for (i, cell) in row.iter().enumerate() {
            let c = xlsx_col(i, &file)?;
            if cell.is_empty() {
                continue;
            }
            let number = if text.get(i).copied().unwrap_or(false) {
                None
            } else {
                plain_number(cell)
            };
            match number {
                Some(v) if v.fract() == 0.0 => {
                    ws.write_number_with_format(r, c, v, &integer)
                        .map_err(werr)?;
                }
                Some(v) => {
                    ws.write_number(r, c, v).map_err(werr)?;
                }
                None => {
                    ws.write_string(r, c, defuse_formula(cell)).map_err(werr)?;
                }
            }
        }
    }
    Ok(wb)
}

fn xlsx_col(c: usize, file: &str) -> Result<u16, TableError> {
    u16::try_from(c)
        .ok()
        .filter(|c| *c < 16_384)
        .ok_or_else(|| TableError::Write {
            file: file.to_string(),
            detail: "列数超过 Excel 上限 16,384 列".to_string(),
        })
}

/// The number a cell holds if writing it as a number loses nothing: it must print back exactly
/// as given (see [`format_number`]).
fn plain_number(s: &str) -> Option<f64> {
    let v: f64 = s.parse().ok()?;
    (v.is_finite() && format_number(v) == s).then_some(v)
}

/// Prefixes `'` to text a spreadsheet would treat as a formula.
pub(super) fn defuse_formula(s: &str) -> std::borrow::Cow<'_, str> {
    let mut chars = s.chars();
    let dangerous = match chars.next() {
        Some('=' | '@' | '\t' | '\r') => true,
        Some('+' | '-') => {
            let rest = chars.as_str();
            // "-1+cmd|' /C calc'!A0" starts with a digit too, so check the whole rest.
            let number_like = rest.starts_with(|c: char| c.is_ascii_digit())
                && rest
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '.' | ' ' | '-'));
            !rest.is_empty() && !number_like
        }
        _ => false,
    };
    if dangerous {
        std::borrow::Cow::Owned(format!("'{s}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}
