//! Reading spreadsheets exported by Excel/WPS (CSV/TSV/TXT in UTF-8, UTF-16 or GBK; xlsx/xlsm)
//! into a plain table of text cells, and writing CSV/xlsx that Excel/WPS open correctly.
//!
//! Legacy .xls and .ods are refused with advice to re-save as .xlsx: calamine's readers for them
//! allocate from sizes declared inside the file, so a damaged or crafted upload can abort the
//! whole server process (found by fuzzing; allocation failure cannot be caught).
//!
//! Every importer (units, rosters, call attempts, on-site ballots) goes through [`read_table_file`]
//! or [`read_table_bytes`]; every export goes through [`write_csv`] or [`write_xlsx`].
//!
//! Row numbers are the physical line (text files) or sheet row (workbooks) the office staff see
//! when they open the file, so error messages can point at the exact place to fix.

use std::fmt;
use std::io::{Cursor, Read};
use std::path::Path;

mod decode;
mod delimited;
mod header;
#[cfg(test)]
mod tests;
mod write;
mod xlsx;
mod zipcheck;

use decode::{Detected, SNIFF_BYTES, TextDecoder};
use delimited::{Records, sniff_delimiter};
use header::{Shaper, normalize_name};
pub use write::{CsvRowWriter, write_csv, write_xlsx, write_xlsx_typed, xlsx_typed_bytes};
use xlsx::SheetRows;
#[cfg(test)]
use {
    write::defuse_formula,
    xlsx::{cell_text, format_number},
    zipcheck::{InflateError, inflate, precheck_zip},
};

/// Most columns a table may have. Real rosters have about a dozen; the cap keeps a hostile file
/// (one line of a million commas) from costing memory.
pub const MAX_COLUMNS: usize = 200;

/// Text encodings of CSV/TSV/TXT files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16Le,
    Utf16Be,
    /// GB18030, a superset of GBK and GB2312 (what Chinese Windows calls "ANSI").
    Gb18030,
}

impl Encoding {
    /// Parses a user-supplied encoding name (case-insensitive). "utf-16"/"unicode" mean
    /// little-endian, as Windows writes it.
    pub fn parse(name: &str) -> Option<Encoding> {
        match name.trim().to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" | "utf-8-sig" => Some(Encoding::Utf8),
            "utf-16" | "utf16" | "utf-16le" | "utf16le" | "unicode" => Some(Encoding::Utf16Le),
            "utf-16be" | "utf16be" => Some(Encoding::Utf16Be),
            "gbk" | "gb2312" | "gb18030" | "cp936" => Some(Encoding::Gb18030),
            _ => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Utf16Le => "UTF-16LE",
            Encoding::Utf16Be => "UTF-16BE",
            Encoding::Gb18030 => "GB18030",
        }
    }

    /// Name as office staff know it, for messages.
    fn label_zh(&self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Utf16Le | Encoding::Utf16Be => "Unicode(UTF-16)",
            Encoding::Gb18030 => "GBK(GB18030)",
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a file is read. `Default` gives limits suited to rosters of a few thousand lines with a
/// wide safety margin.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Skip detection and decode text files with this encoding (ignored for workbooks).
    pub encoding: Option<Encoding>,
    pub max_bytes: usize,
    pub max_cell_chars: usize,
    /// Most data rows (the header and blank rows do not count).
    pub max_rows: usize,
    /// Most cells in all data rows, each row counted at the header's width (a bound on the
    /// memory of a table read whole; unbounded by default, as streamed rows need none).
    pub max_cells: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            encoding: None,
            max_bytes: 64 * 1024 * 1024,
            max_cell_chars: 2_000,
            max_rows: 2_000_000,
            max_cells: usize::MAX,
        }
    }
}

/// What was actually parsed: `Xlsx` for workbooks (.xlsx, .xlsm); a text file is `Csv` or
/// `Tsv` by the delimiter actually used, whatever its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Tsv,
    Xlsx,
}

/// A table of text cells.
///
/// Invariants: `headers` are trimmed and have no trailing empty names (interior ones may be
/// empty); every row has `cells.len() >= headers.len()`, and a row is longer than the header
/// only when some cell beyond the header is non-blank.
#[derive(Debug, Clone)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Row>,
    /// Encoding of a text file; `None` for workbooks.
    pub encoding: Option<Encoding>,
    pub format: Format,
}

/// One non-blank data row.
#[derive(Debug, Clone)]
pub struct Row {
    /// Physical line in the file (or sheet row number), 1-based, where the row starts.
    pub line: usize,
    pub cells: Vec<String>,
}

impl Row {
    /// The cell at `col`, or "" when the row is shorter.
    pub fn get(&self, col: usize) -> &str {
        self.cells.get(col).map_or("", String::as_str)
    }
}

impl Table {
    /// Index of the first column whose header matches an alias, trying aliases in order (so
    /// put the preferred name first). Matching ignores ASCII case, all whitespace (office staff
    /// pad "姓　名" with full-width spaces) and full-width vs half-width ASCII ("（" = "(").
    pub fn find_column(&self, aliases: &[&str]) -> Option<usize> {
        aliases.iter().find_map(|alias| {
            let alias = normalize_name(alias);
            self.headers
                .iter()
                .position(|h| !alias.is_empty() && normalize_name(h) == alias)
        })
    }

    /// Every column matching any alias, in header order: more than one means the file is
    /// ambiguous (e.g. two "联系电话" columns) and the caller should say so.
    pub fn find_columns(&self, aliases: &[&str]) -> Vec<usize> {
        let aliases: Vec<String> = aliases.iter().map(|a| normalize_name(a)).collect();
        self.headers
            .iter()
            .enumerate()
            .filter(|(_, h)| {
                let h = normalize_name(h);
                !h.is_empty() && aliases.contains(&h)
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Non-empty headers that match none of the known alias groups, in header order.
    pub fn unknown_columns(&self, known: &[&[&str]]) -> Vec<String> {
        let known: Vec<String> = known
            .iter()
            .flat_map(|group| group.iter().map(|a| normalize_name(a)))
            .collect();
        self.headers
            .iter()
            .filter(|h| {
                let n = normalize_name(h);
                !n.is_empty() && !known.contains(&n)
            })
            .cloned()
            .collect()
    }
}

/// Spreadsheet column letters for a 0-based index: 0 → "A", 26 → "AA".
pub fn column_letter(index: usize) -> String {
    let mut n = index + 1;
    let mut out = Vec::new();
    while n > 0 {
        let rem = (n - 1) % 26;
        out.push(b'A' + rem as u8);
        n = (n - 1) / 26;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// "第 3 列(C 列“联系电话”)" for a 1-based column number.
fn col_label(column: usize, header: &str) -> String {
    let letter = column_letter(column.saturating_sub(1));
    if header.is_empty() {
        format!("第 {column} 列({letter} 列)")
    } else {
        format!("第 {column} 列({letter} 列“{header}”)")
    }
}

/// Errors from reading or writing tables. Messages are for office staff: which file, where,
/// what is wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("无法读取文件“{file}”:{source}。请确认文件存在、有读取权限,并且没有被其他程序占用。")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error(
        "文件“{file}”太大({size} 字节),上限是 {max} 字节。请把表格拆分成几个较小的文件分别导入。"
    )]
    TooLarge { file: String, size: u64, max: usize },
    #[error(
        "不支持文件“{file}”的类型。请上传 .xlsx、.csv、.tsv 或 .txt 文件(可在 Excel/WPS 中用“另存为”转换)。"
    )]
    UnsupportedFormat { file: String },
    #[error(
        "文件“{file}”第 {line} 行有无法按 {} 编码识别的内容。请确认选择的编码正确,或在 Excel/WPS 中把文件另存为“CSV UTF-8(逗号分隔)”或 .xlsx 后重新导入。",
        .encoding.label_zh()
    )]
    Decode {
        file: String,
        line: usize,
        encoding: Encoding,
    },
    #[error(
        "无法识别文件“{file}”的文字编码(第 {line} 行既不是 UTF-8 也不是 GBK)。请在 Excel/WPS 中把文件另存为“CSV UTF-8(逗号分隔)”或 .xlsx 后重新导入。"
    )]
    UnknownEncoding { file: String, line: usize },
    #[error(
        "文件“{file}”中没有内容,找不到表头行。请确认选择了正确的文件,并且表格第一行是列名(如“姓名”“联系电话”)。"
    )]
    NoHeader { file: String },
    #[error(
        "文件“{file}”第 {line} 行{}的内容超过 {max} 个字符。请检查该单元格是否粘贴了多余内容;如果是 CSV 文件,也请检查前面是否有没有闭合的英文双引号。",
        col_label(*.column, .header)
    )]
    CellTooLong {
        file: String,
        line: usize,
        /// 1-based.
        column: usize,
        header: String,
        max: usize,
    },
    #[error("文件“{file}”的数据超过 {max} 行(在第 {line} 行超出)。请拆分文件后分批导入。")]
    TooManyRows {
        file: String,
        line: usize,
        max: usize,
    },
    #[error(
        "文件“{file}”的内容超过 {max} 个单元格(在第 {line} 行超出),不像是这一类名单。请确认选择的文件,或删去多余的行和列后重新上传。"
    )]
    TooManyCells {
        file: String,
        line: usize,
        max: usize,
    },
    #[error(
        "文件“{file}”第 {line} 行{}有内容,但表格最多只能有 {max} 列。请删除多余的列后重新导入。",
        col_label(*.column, "")
    )]
    TooManyColumns {
        file: String,
        line: usize,
        /// 1-based.
        column: usize,
        max: usize,
    },
    #[error(
        "文件“{file}”第 {line} 行{}以英文双引号开头,但直到文件末尾都没有对应的结束引号。请在该单元格内容末尾补上引号,或在 Excel/WPS 中打开后重新另存为 CSV。",
        col_label(*.column, .header)
    )]
    UnclosedQuote {
        file: String,
        line: usize,
        /// 1-based.
        column: usize,
        header: String,
    },
    #[error(
        "文件“{file}”第 {line} 行{}的结束引号后面还有其他文字。单元格内容中的英文双引号要写成两个(\"\"),请修改后重新导入,或在 Excel/WPS 中打开后重新另存为 CSV。",
        col_label(*.column, .header)
    )]
    TextAfterQuote {
        file: String,
        line: usize,
        /// 1-based.
        column: usize,
        header: String,
    },
    #[error(
        "无法打开电子表格“{file}”,文件可能已损坏、设置了打开密码,或并不是真正的 Excel 文件(技术信息:{detail})。请在 Excel/WPS 中打开它,另存为 .xlsx 后重新导入。"
    )]
    Workbook { file: String, detail: String },
    #[error(
        "暂不支持直接导入文件“{file}”的格式(旧版 .xls、.ods,或设置了打开密码的工作簿)。请在 Excel/WPS 中打开它(有密码的请先取消密码),“另存为”Excel 工作簿(.xlsx)后重新导入。"
    )]
    LegacyWorkbook { file: String },
    #[error(
        "文件“{file}”虽然扩展名是电子表格,实际内容却是网页(HTML)。请在 Excel/WPS 中打开它,另存为 .xlsx 后重新导入。"
    )]
    HtmlDisguised { file: String },
    #[error("电子表格“{file}”里没有可读取的工作表。请确认数据放在第一个工作表中后重新导入。")]
    NoWorksheet { file: String },
    #[error("无法写出文件“{file}”:{detail}。请检查磁盘空间和目录权限后重试。")]
    Write { file: String, detail: String },
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// Reads a whole table from disk (refusing files above `opts.max_bytes`); the format comes from
/// the file name's extension.
pub fn read_table_file(path: &Path, opts: &ReadOptions) -> Result<Table, TableError> {
    let file = path.display().to_string();
    let io_err = |source| TableError::Io {
        file: file.clone(),
        source,
    };
    let f = std::fs::File::open(path).map_err(io_err)?;
    let size = f.metadata().map_err(io_err)?.len();
    if size > opts.max_bytes as u64 {
        return Err(TableError::TooLarge {
            file,
            size,
            max: opts.max_bytes,
        });
    }
    // The file may grow between stat and read; never read more than the limit allows. Sized
    // up front: growing a large buffer by doubling copies it and touches fresh memory again.
    let mut bytes = Vec::with_capacity(size as usize + 1);
    f.take(opts.max_bytes as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    read_table_bytes(&bytes, &file, opts)
}

/// Reads a whole table from memory (an HTTP upload); the format comes from `file_name`'s
/// extension.
pub fn read_table_bytes(
    bytes: &[u8],
    file_name: &str,
    opts: &ReadOptions,
) -> Result<Table, TableError> {
    check_size(bytes.len(), file_name, opts)?;
    TableReader::open(Cursor::new(bytes), file_name, opts)?.into_table()
}

fn check_size(len: usize, file: &str, opts: &ReadOptions) -> Result<(), TableError> {
    if len > opts.max_bytes {
        return Err(TableError::TooLarge {
            file: file.to_string(),
            size: len as u64,
            max: opts.max_bytes,
        });
    }
    Ok(())
}

const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
const OLE_MAGIC: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";

/// A table read one row at a time: the header is read when it is opened, the rows as they are
/// asked for, so memory does not grow with the file. Text files are decoded and parsed as a
/// stream; a workbook is kept compressed in memory while its first worksheet is read as a
/// stream on a thread of its own.
pub struct TableReader<'r> {
    pub headers: Vec<String>,
    /// Encoding of a text file; `None` for workbooks.
    pub encoding: Option<Encoding>,
    pub format: Format,
    source: Source<'r>,
    shaper: Shaper,
}

enum Source<'r> {
    Text(Records<'r>),
    Sheet(SheetRows),
    /// A borrowed table, its rows copied one at a time.
    Borrowed(std::slice::Iter<'r, Row>),
}

impl<'r> TableReader<'r> {
    /// Opens a file on disk as a stream, whatever its size (the command line has no size
    /// limit; `opts.max_bytes` still bounds what a workbook may unzip to).
    pub fn open_file(path: &Path, opts: &ReadOptions) -> Result<TableReader<'static>, TableError> {
        let file = path.display().to_string();
        let f = std::fs::File::open(path).map_err(|source| TableError::Io {
            file: file.clone(),
            source,
        })?;
        TableReader::open(std::io::BufReader::with_capacity(1 << 16, f), &file, opts)
    }

    /// Opens an upload held in memory, refusing it above `opts.max_bytes`.
    pub fn from_bytes(
        bytes: &'r [u8],
        file_name: &str,
        opts: &ReadOptions,
    ) -> Result<TableReader<'r>, TableError> {
        check_size(bytes.len(), file_name, opts)?;
        TableReader::open(Cursor::new(bytes), file_name, opts)
    }

    /// A borrowed table, as a reader (rows are copied as they are read).
    pub fn from_table_ref(table: &'r Table) -> TableReader<'r> {
        TableReader {
            headers: table.headers.clone(),
            encoding: table.encoding,
            format: table.format,
            source: Source::Borrowed(table.rows.iter()),
            shaper: Shaper::new("", usize::MAX, usize::MAX),
        }
    }

    /// Reads the start of `input` to tell the format and encoding, then up to the header.
    fn open(
        mut input: impl Read + Send + 'r,
        file: &str,
        opts: &ReadOptions,
    ) -> Result<TableReader<'r>, TableError> {
        let ext = extension(file);
        let default_delim = match ext.as_str() {
            "csv" => Some(','),
            "tsv" | "txt" | "tab" => Some('\t'),
            "xlsx" | "xlsm" | "xls" | "ods" => None,
            _ => {
                return Err(TableError::UnsupportedFormat {
                    file: file.to_string(),
                });
            }
        };
        let io_err = |source| TableError::Io {
            file: file.to_string(),
            source,
        };
        let mut prefix = Vec::new();
        (&mut input)
            .take(SNIFF_BYTES as u64)
            .read_to_end(&mut prefix)
            .map_err(io_err)?;
        let complete = prefix.len() < SNIFF_BYTES;
        // Staff rename files and government systems export text or HTML as ".xls": trust the
        // content over the name.
        if prefix.starts_with(OLE_MAGIC) || (prefix.starts_with(ZIP_MAGIC) && ext == "ods") {
            return Err(TableError::LegacyWorkbook {
                file: file.to_string(),
            });
        }
        let shaper = Shaper::new(file, opts.max_rows, opts.max_cells);
        if prefix.starts_with(ZIP_MAGIC) {
            // The archive's directory is at its end: a workbook is read whole (compressed).
            input.read_to_end(&mut prefix).map_err(io_err)?;
            check_size(prefix.len(), file, opts)?;
            let source = Source::Sheet(SheetRows::open(prefix, file, opts)?);
            return TableReader::start(source, shaper, None, Format::Xlsx);
        }
        let sniff_always = match default_delim {
            Some(_) => ext == "txt",
            None if looks_like_html(&prefix) => {
                return Err(TableError::HtmlDisguised {
                    file: file.to_string(),
                });
            }
            None => true,
        };
        let default_delim = default_delim.unwrap_or('\t');
        let detected: Detected = decode::detect(&prefix, complete, opts.encoding, file)?;
        let encoding = detected.encoding;
        let decoder = TextDecoder::new(detected, file);
        let mut records = Records::new(
            &prefix,
            complete,
            Box::new(input),
            decoder,
            file,
            opts.max_cell_chars,
        )?;
        drop(prefix);
        // Excel's "Unicode text" is tab-separated whatever it is named; a .txt may be either.
        let sniff = sniff_always || matches!(encoding, Encoding::Utf16Le | Encoding::Utf16Be);
        let delim = if sniff {
            sniff_delimiter(records.head()?).unwrap_or(default_delim)
        } else {
            default_delim
        };
        records.set_delimiter(delim);
        let format = if delim == ',' {
            Format::Csv
        } else {
            Format::Tsv
        };
        TableReader::start(Source::Text(records), shaper, Some(encoding), format)
    }

    /// Reads records up to the header.
    fn start(
        mut source: Source<'r>,
        mut shaper: Shaper,
        encoding: Option<Encoding>,
        format: Format,
    ) -> Result<TableReader<'r>, TableError> {
        while shaper.headers.is_none() {
            let Some((line, cells)) = source.next_record(&[])? else {
                return Err(TableError::NoHeader {
                    file: shaper.file().to_string(),
                });
            };
            shaper.push(line, cells)?;
        }
        Ok(TableReader {
            headers: shaper.headers.clone().unwrap_or_default(),
            encoding,
            format,
            source,
            shaper,
        })
    }

    /// The next non-blank data row, or `None` at the end of the table.
    pub fn next_row(&mut self) -> Result<Option<Row>, TableError> {
        if let Source::Borrowed(rows) = &mut self.source {
            return Ok(rows.next().cloned());
        }
        loop {
            let Some((line, cells)) = self.source.next_record(&self.headers)? else {
                return Ok(None);
            };
            if let Some(row) = self.shaper.push(line, cells)? {
                return Ok(Some(row));
            }
        }
    }

    /// Reads every remaining row into a [`Table`].
    pub fn into_table(mut self) -> Result<Table, TableError> {
        let mut rows = Vec::new();
        while let Some(row) = self.next_row()? {
            rows.push(row);
        }
        Ok(Table {
            headers: self.headers,
            rows,
            encoding: self.encoding,
            format: self.format,
        })
    }
}

impl Source<'_> {
    fn next_record(
        &mut self,
        headers: &[String],
    ) -> Result<Option<(usize, Vec<String>)>, TableError> {
        match self {
            Source::Text(records) => records.next_record(headers),
            Source::Sheet(rows) => rows.next_record(),
            Source::Borrowed(rows) => Ok(rows.next().map(|r| (r.line, r.cells.clone()))),
        }
    }
}

/// Lower-cased extension of a bare name or a path with either separator (browsers send
/// "C:\fakepath\名单.xlsx").
fn extension(file: &str) -> String {
    let base = file.rsplit(['/', '\\']).next().unwrap_or(file).trim();
    match base.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext.trim().to_ascii_lowercase(),
        _ => String::new(),
    }
}

fn looks_like_html(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(1024)];
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let text = text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    text.starts_with("<!doctype html")
        || text.starts_with("<html")
        || (text.starts_with('<') && text.contains("<table"))
}
