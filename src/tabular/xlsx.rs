//! Workbooks (.xlsx, .xlsm) read as a stream of rows: after the zip pre-check, a thread walks
//! the first worksheet with calamine's cell reader and sends rows in batches, so neither the
//! sheet nor its cells are ever held whole.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;

use calamine::{Data, DataRef, Reader, SheetType, SheetVisible, Xlsx};

use super::header::{clean_header, header_name, is_blank};
use super::zipcheck::{UNZIP_RATIO, precheck_zip};
use super::{MAX_COLUMNS, ReadOptions, TableError};

/// Rows sent to the reader at a time.
const ROWS_PER_BATCH: usize = 256;
/// Batches read ahead of the consumer, at most.
const BATCHES_AHEAD: usize = 4;

type Batch = Result<Vec<(usize, Vec<String>)>, TableError>;

/// The rows of a workbook's first worksheet, as (sheet row, cells), in sheet order.
pub(super) struct SheetRows {
    receive: mpsc::Receiver<Batch>,
    batch: std::vec::IntoIter<(usize, Vec<String>)>,
}

impl SheetRows {
    /// Checks the archive, then starts reading it on its own thread.
    pub(super) fn open(
        bytes: Vec<u8>,
        file: &str,
        opts: &ReadOptions,
    ) -> Result<SheetRows, TableError> {
        // The unzip limit follows the web's upload limit, not the CLI's absent one.
        let max_unzipped =
            (opts.max_bytes.min(64 * 1024 * 1024) as u64).saturating_mul(UNZIP_RATIO);
        precheck_zip(&bytes, max_unzipped).map_err(|detail| TableError::Workbook {
            file: file.to_string(),
            detail,
        })?;
        let (send, receive) = mpsc::sync_channel(BATCHES_AHEAD);
        let thread_file = file.to_string();
        let max_cell_chars = opts.max_cell_chars;
        let spawned = std::thread::Builder::new()
            .name("xlsx-read".into())
            .spawn(move || {
                // calamine parses zip and XML from untrusted uploads; a bug there must become an
                // error message, not a crashed request.
                let read = catch_unwind(AssertUnwindSafe(|| {
                    read_sheet(bytes, &thread_file, max_cell_chars, &send)
                }));
                let failed = match read {
                    Ok(Ok(())) => return,
                    Ok(Err(e)) => e,
                    Err(_) => TableError::Workbook {
                        file: thread_file,
                        detail: "解析时发生内部错误".to_string(),
                    },
                };
                let _ = send.send(Err(failed));
            });
        if let Err(e) = spawned {
            return Err(TableError::Workbook {
                file: file.to_string(),
                detail: e.to_string(),
            });
        }
        Ok(SheetRows {
            receive,
            batch: Vec::new().into_iter(),
        })
    }

    pub(super) fn next_record(&mut self) -> Result<Option<(usize, Vec<String>)>, TableError> {
        loop {
            if let Some(row) = self.batch.next() {
                return Ok(Some(row));
            }
            match self.receive.recv() {
                Ok(batch) => self.batch = batch?.into_iter(),
                // The reading thread finished and said so by dropping its end.
                Err(_) => return Ok(None),
            }
        }
    }
}

/// Reads the first worksheet and sends its non-blank rows; stops when the receiver is gone.
fn read_sheet(
    bytes: Vec<u8>,
    file: &str,
    max_cell_chars: usize,
    send: &mpsc::SyncSender<Batch>,
) -> Result<(), TableError> {
    let wb_err = |detail: String| TableError::Workbook {
        file: file.to_string(),
        detail,
    };
    let mut wb: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).map_err(|e| wb_err(e.to_string()))?;
    let name = first_worksheet(wb.sheets_metadata()).ok_or_else(|| TableError::NoWorksheet {
        file: file.to_string(),
    })?;
    // Streaming rather than worksheet_range(): a range is allocated as its bounding box, so two
    // cells at A1 and XFD1048576 would ask for billions of cells.
    let mut reader = wb
        .worksheet_cells_reader(&name)
        .map_err(|e| wb_err(e.to_string()))?;
    let mut headers: Option<Vec<String>> = None;
    let mut batch = Vec::with_capacity(ROWS_PER_BATCH);
    // The row being collected: sheet row (0-based) and cells.
    let mut current: Option<(u32, Vec<String>)> = None;
    let flush_row = |row: (u32, Vec<String>),
                     batch: &mut Vec<(usize, Vec<String>)>,
                     headers: &mut Option<Vec<String>>|
     -> Result<bool, TableError> {
        let (r, cells) = row;
        let line = r as usize + 1;
        let empty: &[String] = &[];
        let names = headers.as_deref().unwrap_or(empty);
        for (c, text) in cells.iter().enumerate() {
            // Checked per cell here so the message can name the column header.
            if text.len() > max_cell_chars && text.chars().count() > max_cell_chars {
                return Err(TableError::CellTooLong {
                    file: file.to_string(),
                    line,
                    column: c + 1,
                    header: header_name(names, c),
                    max: max_cell_chars,
                });
            }
        }
        if headers.is_none() {
            let mut h: Vec<String> = cells.iter().map(|c| clean_header(c)).collect();
            while h.last().is_some_and(String::is_empty) {
                h.pop();
            }
            *headers = Some(h);
        }
        batch.push((line, cells));
        if batch.len() >= ROWS_PER_BATCH {
            let full = std::mem::replace(batch, Vec::with_capacity(ROWS_PER_BATCH));
            return Ok(send.send(Ok(full)).is_ok());
        }
        Ok(true)
    };
    while let Some(cell) = reader.next_cell().map_err(|e| wb_err(e.to_string()))? {
        let (row, col) = cell.get_position();
        let value: &DataRef<'_> = cell.get_value();
        if matches!(value, DataRef::Empty) {
            continue;
        }
        let data: Data = value.clone().into();
        let text = cell_text(&data);
        if is_blank(&text) {
            continue;
        }
        if col as usize >= MAX_COLUMNS {
            return Err(TableError::TooManyColumns {
                file: file.to_string(),
                line: row as usize + 1,
                column: col as usize + 1,
                max: MAX_COLUMNS,
            });
        }
        match &mut current {
            Some((r, cells)) if *r == row => {
                let c = col as usize;
                if cells.len() <= c {
                    cells.resize(c + 1, String::new());
                }
                // A damaged file may repeat a cell: the later one wins.
                cells[c] = text;
                continue;
            }
            Some((r, _)) if *r > row => {
                // Excel and WPS write rows in order; rows out of order would need the whole
                // sheet in memory to sort.
                return Err(wb_err(format!(
                    "第 {} 行出现在第 {} 行之后,工作表的行顺序异常",
                    row + 1,
                    *r + 1
                )));
            }
            _ => {}
        }
        let mut cells = vec![String::new(); col as usize + 1];
        cells[col as usize] = text;
        if let Some(done) = current.replace((row, cells))
            && !flush_row(done, &mut batch, &mut headers)?
        {
            return Ok(());
        }
    }
    if let Some(done) = current.take()
        && !flush_row(done, &mut batch, &mut headers)?
    {
        return Ok(());
    }
    if !batch.is_empty() {
        let _ = send.send(Ok(batch));
    }
    Ok(())
}

/// The first visible worksheet (what staff see when they open the file), else the first
/// worksheet of any visibility.
fn first_worksheet(sheets: &[calamine::Sheet]) -> Option<String> {
    let worksheets = || sheets.iter().filter(|s| s.typ == SheetType::WorkSheet);
    worksheets()
        .find(|s| s.visible == SheetVisible::Visible)
        .or_else(|| worksheets().next())
        .map(|s| s.name.clone())
}

/// Cell text as Excel shows it in the General format, with integers never in scientific
/// notation (phone numbers stored as numbers must come back digit for digit).
pub(super) fn cell_text(value: &Data) -> String {
    match value {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) => format_number(*f),
        Data::Bool(true) => "TRUE".to_string(),
        Data::Bool(false) => "FALSE".to_string(),
        Data::Error(e) => e.to_string(),
        Data::DateTime(dt) => format_excel_datetime(dt),
        Data::DateTimeIso(s) => format_iso_datetime(s),
        Data::DurationIso(s) => s.clone(),
    }
}

/// Integral values below 1e15 print as integers; others use Rust's shortest round-trip
/// representation (which never uses an exponent).
pub(super) fn format_number(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

fn format_excel_datetime(dt: &calamine::ExcelDateTime) -> String {
    let v = dt.as_f64();
    if dt.is_duration() {
        let total = (v * 86_400.0).round();
        let sign = if total < 0.0 { "-" } else { "" };
        let total = total.abs().min(i64::MAX as f64) as i64;
        return format!(
            "{sign}{}:{:02}:{:02}",
            total / 3600,
            total / 60 % 60,
            total % 60
        );
    }
    let (y, mo, d, h, mi, s, _ms) = dt.to_ymd_hms_milli();
    // A time-of-day cell (e.g. a call time "14:30") has no date part.
    if (0.0..1.0).contains(&v) && v != 0.0 {
        return format!("{h:02}:{mi:02}:{s:02}");
    }
    if h == 0 && mi == 0 && s == 0 {
        format!("{y:04}-{mo:02}-{d:02}")
    } else {
        format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
    }
}

/// Cells of type `d` (written by some non-Excel tools) hold ISO 8601 text; render them like
/// serial dates.
fn format_iso_datetime(s: &str) -> String {
    use chrono::{NaiveDate, NaiveDateTime, Timelike};
    if let Ok(dt) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        let (h, m, sec) = (dt.hour(), dt.minute(), dt.second());
        return if h == 0 && m == 0 && sec == 0 {
            dt.format("%Y-%m-%d").to_string()
        } else {
            dt.format("%Y-%m-%d %H:%M:%S").to_string()
        };
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.format("%Y-%m-%d").to_string();
    }
    s.to_string()
}
