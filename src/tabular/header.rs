//! Header and row shaping shared by every format: blank rows, trimmed headers, padded rows.

use super::{Row, TableError};

/// Turns physical records, one at a time, into header + rows: skips blank records, takes the
/// first non-blank one as the (trimmed) header, pads and trims data rows, enforces the row limit.
pub(super) struct Shaper {
    file: String,
    max_rows: usize,
    /// Most cells in all data rows (padded to the header's width): bounds the memory of a
    /// table read whole, whatever its shape.
    max_cells: usize,
    pub(super) headers: Option<Vec<String>>,
    rows: usize,
    cells: usize,
}

impl Shaper {
    pub(super) fn new(file: &str, max_rows: usize, max_cells: usize) -> Self {
        Shaper {
            file: file.to_string(),
            max_rows,
            max_cells,
            headers: None,
            rows: 0,
            cells: 0,
        }
    }

    pub(super) fn file(&self) -> &str {
        &self.file
    }

    /// A data row, or `None` for a blank record or the header (kept in `headers`).
    pub(super) fn push(
        &mut self,
        line: usize,
        mut cells: Vec<String>,
    ) -> Result<Option<Row>, TableError> {
        if cells.iter().all(|c| is_blank(c)) {
            return Ok(None);
        }
        let Some(headers) = &self.headers else {
            let mut headers: Vec<String> = cells.iter().map(|c| clean_header(c)).collect();
            while headers.last().is_some_and(String::is_empty) {
                headers.pop();
            }
            self.headers = Some(headers);
            return Ok(None);
        };
        if self.rows >= self.max_rows {
            return Err(TableError::TooManyRows {
                file: self.file.clone(),
                line,
                max: self.max_rows,
            });
        }
        self.rows += 1;
        let width = headers.len();
        while cells.len() > width && cells.last().is_some_and(|c| is_blank(c)) {
            cells.pop();
        }
        if cells.len() < width {
            cells.resize(width, String::new());
        }
        self.cells = self.cells.saturating_add(cells.len());
        if self.cells > self.max_cells {
            return Err(TableError::TooManyCells {
                file: self.file.clone(),
                line,
                max: self.max_cells,
            });
        }
        Ok(Some(Row { line, cells }))
    }
}

/// The header of column `col` (0-based), or "" before the header is known or past its end.
pub(super) fn header_name(headers: &[String], col: usize) -> String {
    headers.get(col).cloned().unwrap_or_default()
}

pub(super) fn is_blank(s: &str) -> bool {
    s.chars().all(|c| c.is_whitespace() || is_invisible(c))
}

/// Characters Excel/WPS leave in headers that staff cannot see: BOM (a second one when a
/// UTF-8 file was re-saved), zero-width space.
pub(super) fn is_invisible(c: char) -> bool {
    matches!(c, '\u{feff}' | '\u{200b}')
}

pub(super) fn clean_header(s: &str) -> String {
    s.trim_matches(|c: char| c.is_whitespace() || is_invisible(c))
        .to_string()
}

/// Header comparison key: no whitespace/invisible characters, full-width ASCII folded to
/// half-width, ASCII lower-cased.
pub(super) fn normalize_name(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && !is_invisible(*c))
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFF01 + 0x21).unwrap_or(c),
            _ => c,
        })
        .map(|c| c.to_ascii_lowercase())
        .collect()
}
