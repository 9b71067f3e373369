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

use std::borrow::Cow;
use std::fmt;
use std::io::{Cursor, Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use calamine::{Data, DataRef, Reader, SheetType, SheetVisible, Xlsx};

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
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            encoding: None,
            max_bytes: 64 * 1024 * 1024,
            max_cell_chars: 2_000,
            max_rows: 2_000_000,
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

/// Reads a table from disk; the format comes from the file name's extension.
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
    read_named(&bytes, &file, opts)
}

/// Reads a table from memory (an HTTP upload); the format comes from `file_name`'s extension.
pub fn read_table_bytes(
    bytes: &[u8],
    file_name: &str,
    opts: &ReadOptions,
) -> Result<Table, TableError> {
    read_named(bytes, file_name, opts)
}

const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
const OLE_MAGIC: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";

fn read_named(bytes: &[u8], file: &str, opts: &ReadOptions) -> Result<Table, TableError> {
    if bytes.len() > opts.max_bytes {
        return Err(TableError::TooLarge {
            file: file.to_string(),
            size: bytes.len() as u64,
            max: opts.max_bytes,
        });
    }
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
    // Staff rename files and government systems export text or HTML as ".xls": trust the
    // content over the name.
    if bytes.starts_with(OLE_MAGIC) || (bytes.starts_with(ZIP_MAGIC) && ext == "ods") {
        return Err(TableError::LegacyWorkbook {
            file: file.to_string(),
        });
    }
    if bytes.starts_with(ZIP_MAGIC) {
        return read_xlsx(bytes, file, opts);
    }
    match default_delim {
        Some(delim) => read_text(bytes, file, delim, ext == "txt", opts),
        None if looks_like_html(bytes) => Err(TableError::HtmlDisguised {
            file: file.to_string(),
        }),
        None => read_text(bytes, file, '\t', true, opts),
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

// ----- text files -----

fn read_text(
    bytes: &[u8],
    file: &str,
    default_delim: char,
    sniff_always: bool,
    opts: &ReadOptions,
) -> Result<Table, TableError> {
    let (text, encoding) = decode(bytes, file, opts.encoding)?;
    // Excel's "Unicode text" is tab-separated whatever it is named; a .txt may be either.
    let sniff = sniff_always || matches!(encoding, Encoding::Utf16Le | Encoding::Utf16Be);
    let delim = if sniff {
        sniff_delimiter(&text).unwrap_or(default_delim)
    } else {
        default_delim
    };
    let format = if delim == ',' {
        Format::Csv
    } else {
        Format::Tsv
    };
    let mut builder = Builder::new(file, opts);
    parse_delimited(&text, delim, file, opts, &mut builder)?;
    builder.finish(Some(encoding), format)
}

/// Decodes the whole file (UTF-8 is borrowed, not copied). Detection order: BOM, valid UTF-8,
/// GB18030.
fn decode<'b>(
    bytes: &'b [u8],
    file: &str,
    forced: Option<Encoding>,
) -> Result<(Cow<'b, str>, Encoding), TableError> {
    let decode_err = |line, encoding| TableError::Decode {
        file: file.to_string(),
        line,
        encoding,
    };
    let encoding = match forced {
        Some(e) => e,
        None if bytes.starts_with(b"\xEF\xBB\xBF") => Encoding::Utf8,
        None if bytes.starts_with(b"\xFF\xFE") => Encoding::Utf16Le,
        None if bytes.starts_with(b"\xFE\xFF") => Encoding::Utf16Be,
        None => match std::str::from_utf8(bytes) {
            Ok(s) => return Ok((Cow::Borrowed(s), Encoding::Utf8)),
            Err(e) => {
                let valid = &bytes[..e.valid_up_to()];
                // GB18030 decodes almost any byte soup, so a UTF-8 file with one damaged byte
                // would silently become mojibake. GBK text essentially never forms several
                // valid UTF-8 multi-byte characters before its first error, so if it did, the
                // file is damaged UTF-8.
                let non_ascii = std::str::from_utf8(valid)
                    .map(|s| s.chars().filter(|c| !c.is_ascii()).count())
                    .unwrap_or(0);
                if non_ascii >= 3 {
                    return Err(decode_err(line_at(valid), Encoding::Utf8));
                }
                match decode_strict(bytes, Encoding::Gb18030) {
                    Ok(s) => return Ok((s, Encoding::Gb18030)),
                    Err(line) => {
                        return Err(TableError::UnknownEncoding {
                            file: file.to_string(),
                            line: line.max(line_at(valid)),
                        });
                    }
                }
            }
        },
    };
    decode_strict(bytes, encoding)
        .map(|s| (s, encoding))
        .map_err(|line| decode_err(line, encoding))
}

/// Decodes without replacement characters (a silently replaced character in a name or phone
/// would be worse than an error), skipping the encoding's own BOM. Err is the line of the
/// first undecodable byte.
fn decode_strict(bytes: &[u8], encoding: Encoding) -> Result<Cow<'_, str>, usize> {
    let (enc, bom): (&'static encoding_rs::Encoding, &[u8]) = match encoding {
        Encoding::Utf8 => (encoding_rs::UTF_8, b"\xEF\xBB\xBF"),
        Encoding::Utf16Le => (encoding_rs::UTF_16LE, b"\xFF\xFE"),
        Encoding::Utf16Be => (encoding_rs::UTF_16BE, b"\xFE\xFF"),
        Encoding::Gb18030 => (encoding_rs::GB18030, b""),
    };
    let body = if !bom.is_empty() && bytes.starts_with(bom) {
        &bytes[bom.len()..]
    } else {
        bytes
    };
    if let Encoding::Utf8 = encoding {
        return match std::str::from_utf8(body) {
            Ok(s) => Ok(Cow::Borrowed(s)),
            Err(e) => Err(line_at(&body[..e.valid_up_to()])),
        };
    }
    if let Some(s) = enc.decode_without_bom_handling_and_without_replacement(body) {
        return Ok(s);
    }
    let (lossy, _) = enc.decode_without_bom_handling(body);
    let pos = lossy.find('\u{FFFD}').unwrap_or(lossy.len());
    Err(line_at(&lossy.as_bytes()[..pos]))
}

/// 1-based line number of the position just after `prefix`; CRLF, LF and lone CR each end a line.
fn line_at(prefix: &[u8]) -> usize {
    let mut line = 1;
    let mut prev_cr = false;
    for &b in prefix {
        match b {
            b'\r' => line += 1,
            b'\n' if !prev_cr => line += 1,
            _ => {}
        }
        prev_cr = b == b'\r';
    }
    line
}

/// Tab or comma, judged from the first non-blank line.
fn sniff_delimiter(text: &str) -> Option<char> {
    let first = text.split(['\r', '\n']).find(|l| !is_blank(l))?;
    if first.contains('\t') {
        Some('\t')
    } else if first.contains(',') {
        Some(',')
    } else {
        None
    }
}

/// RFC 4180 parser with Excel's leniency for quotes inside unquoted cells.
///
/// Hand-written rather than the csv crate because the csv crate silently accepts an unclosed
/// quote (swallowing the rest of the file into one cell), counts only LF as a line end (lone-CR
/// files would all be "line 1"), and cannot stop at a cell or column limit mid-record.
fn parse_delimited(
    text: &str,
    delim: char,
    file: &str,
    opts: &ReadOptions,
    builder: &mut Builder<'_>,
) -> Result<(), TableError> {
    // Delimiters are ASCII (comma or tab), as are quotes and line ends, so the scan can go
    // byte by byte: in UTF-8 an ASCII byte is never part of another character.
    let delim_byte = u8::try_from(delim)
        .ok()
        .filter(u8::is_ascii)
        .expect("the delimiter is a comma or a tab");
    let bytes = text.as_bytes();
    let peek = |pos: usize| text[pos..].chars().next();
    let mut pos = 0usize;
    let mut line = 1usize;
    while pos < bytes.len() {
        let rec_line = line;
        let width = builder.headers.as_ref().map_or(8, Vec::len);
        let mut cells: Vec<String> = Vec::with_capacity(width);
        let mut col = 0usize;
        loop {
            let mut end_of_record = false;
            let too_long = |col: usize| TableError::CellTooLong {
                file: file.to_string(),
                line: rec_line,
                column: col + 1,
                header: builder.header_name(col),
                max: opts.max_cell_chars,
            };
            let cell = if bytes.get(pos) == Some(&b'"') {
                pos += 1;
                let mut cell = String::new();
                let mut chars = 0usize;
                loop {
                    let Some(c) = peek(pos) else {
                        return Err(TableError::UnclosedQuote {
                            file: file.to_string(),
                            line: rec_line,
                            column: col + 1,
                            header: builder.header_name(col),
                        });
                    };
                    pos += c.len_utf8();
                    if c == '"' {
                        if bytes.get(pos) == Some(&b'"') {
                            pos += 1;
                        } else {
                            break;
                        }
                    } else if c == '\r' {
                        line += 1;
                        if bytes.get(pos) == Some(&b'\n') {
                            pos += 1;
                            cell.push('\r');
                            chars += 1;
                            cell.push('\n');
                            chars += 1;
                            if chars > opts.max_cell_chars {
                                return Err(too_long(col));
                            }
                            continue;
                        }
                    } else if c == '\n' {
                        line += 1;
                    }
                    cell.push(c);
                    chars += 1;
                    if chars > opts.max_cell_chars {
                        return Err(too_long(col));
                    }
                }
                // After the closing quote only padding may precede the delimiter or line end.
                loop {
                    match peek(pos) {
                        None => {
                            end_of_record = true;
                            break;
                        }
                        Some(c) if c == delim => {
                            pos += 1;
                            break;
                        }
                        Some('\r') | Some('\n') => {
                            pos = after_line_end(bytes, pos);
                            line += 1;
                            end_of_record = true;
                            break;
                        }
                        Some(c) if c.is_whitespace() => {
                            pos += c.len_utf8();
                        }
                        Some(_) => {
                            return Err(TableError::TextAfterQuote {
                                file: file.to_string(),
                                line: rec_line,
                                column: col + 1,
                                header: builder.header_name(col),
                            });
                        }
                    }
                }
                cell
            } else {
                // An unquoted cell runs to the delimiter or line end; quotes inside are kept.
                let rest = &bytes[pos..];
                let len = rest
                    .iter()
                    .position(|&b| b == delim_byte || b == b'\r' || b == b'\n')
                    .unwrap_or(rest.len());
                let cell = &text[pos..pos + len];
                // A character takes at least one byte, so only a long cell needs counting.
                if cell.len() > opts.max_cell_chars && cell.chars().count() > opts.max_cell_chars {
                    return Err(too_long(col));
                }
                pos += len;
                match bytes.get(pos) {
                    None => end_of_record = true,
                    Some(&b) if b == delim_byte => pos += 1,
                    Some(_) => {
                        pos = after_line_end(bytes, pos);
                        line += 1;
                        end_of_record = true;
                    }
                }
                cell.to_owned()
            };
            if col < MAX_COLUMNS {
                cells.push(cell);
            } else if !is_blank(&cell) {
                return Err(TableError::TooManyColumns {
                    file: file.to_string(),
                    line: rec_line,
                    column: col + 1,
                    max: MAX_COLUMNS,
                });
            }
            // Cells beyond the cap that are blank are dropped: Excel pads formatted-but-empty
            // columns with trailing delimiters.
            col += 1;
            if end_of_record {
                break;
            }
        }
        builder.push(rec_line, cells)?;
    }
    Ok(())
}

/// The position after the line end (CRLF, LF or a lone CR) at `pos`.
fn after_line_end(bytes: &[u8], pos: usize) -> usize {
    if bytes[pos] == b'\r' && bytes.get(pos + 1) == Some(&b'\n') {
        pos + 2
    } else {
        pos + 1
    }
}

// ----- workbooks -----

fn read_xlsx(bytes: &[u8], file: &str, opts: &ReadOptions) -> Result<Table, TableError> {
    let max_unzipped = (opts.max_bytes as u64).saturating_mul(UNZIP_RATIO);
    precheck_zip(bytes, max_unzipped).map_err(|detail| TableError::Workbook {
        file: file.to_string(),
        detail,
    })?;
    // calamine parses zip and XML from untrusted uploads; a bug there must become an error
    // message, not a crashed request.
    match catch_unwind(AssertUnwindSafe(|| read_xlsx_inner(bytes, file, opts))) {
        Ok(result) => result,
        Err(_) => Err(TableError::Workbook {
            file: file.to_string(),
            detail: "解析时发生内部错误".to_string(),
        }),
    }
}

fn read_xlsx_inner(bytes: &[u8], file: &str, opts: &ReadOptions) -> Result<Table, TableError> {
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
    let mut sink = CellSink::new(file, opts);
    while let Some(cell) = reader.next_cell().map_err(|e| wb_err(e.to_string()))? {
        let (row, col) = cell.get_position();
        let value: &DataRef<'_> = cell.get_value();
        if matches!(value, DataRef::Empty) {
            continue;
        }
        let data: Data = value.clone().into();
        sink.add(row, col, cell_text(&data))?;
    }
    sink.finish()
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

/// Collects workbook cells (in any order) and turns them into rows.
struct CellSink<'a> {
    file: &'a str,
    opts: &'a ReadOptions,
    cells: Vec<(u32, u32, String)>,
    cap: usize,
}

impl<'a> CellSink<'a> {
    fn new(file: &'a str, opts: &'a ReadOptions) -> Self {
        // Every row full is the most a legitimate file can hold; beyond that stop collecting
        // instead of exhausting memory on a zip bomb.
        let cap = opts.max_rows.saturating_add(1).saturating_mul(MAX_COLUMNS);
        CellSink {
            file,
            opts,
            cells: Vec::new(),
            cap,
        }
    }

    fn add(&mut self, row: u32, col: u32, text: String) -> Result<(), TableError> {
        if is_blank(&text) {
            return Ok(());
        }
        let line = row as usize + 1;
        if col as usize >= MAX_COLUMNS {
            return Err(TableError::TooManyColumns {
                file: self.file.to_string(),
                line,
                column: col as usize + 1,
                max: MAX_COLUMNS,
            });
        }
        if self.cells.len() >= self.cap {
            return Err(TableError::TooManyRows {
                file: self.file.to_string(),
                line,
                max: self.opts.max_rows,
            });
        }
        self.cells.push((row, col, text));
        Ok(())
    }

    fn finish(mut self) -> Result<Table, TableError> {
        // Stable sort: if a damaged file repeats a cell, the later one wins below.
        self.cells.sort_by_key(|&(r, c, _)| (r, c));
        let mut builder = Builder::new(self.file, self.opts);
        let mut iter = self.cells.into_iter().peekable();
        while let Some(&(row, _, _)) = iter.peek() {
            let line = row as usize + 1;
            let mut cells = Vec::new();
            while let Some((_, c, text)) = iter.next_if(|(r, _, _)| *r == row) {
                let c = c as usize;
                // Checked here rather than in add() so the message can name the column header.
                if text.chars().count() > self.opts.max_cell_chars {
                    return Err(TableError::CellTooLong {
                        file: self.file.to_string(),
                        line,
                        column: c + 1,
                        header: builder.header_name(c),
                        max: self.opts.max_cell_chars,
                    });
                }
                if cells.len() <= c {
                    cells.resize(c + 1, String::new());
                }
                cells[c] = text;
            }
            builder.push(line, cells)?;
        }
        builder.finish(None, Format::Xlsx)
    }
}

/// Cell text as Excel shows it in the General format, with integers never in scientific
/// notation (phone numbers stored as numbers must come back digit for digit).
fn cell_text(value: &Data) -> String {
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
fn format_number(f: f64) -> String {
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

// ----- zip pre-check -----
//
// calamine trusts numbers inside the file before reading the data they describe: an xlsx whose
// sharedStrings.xml claims uniqueCount="10000000000" makes it reserve 240 GB, and a failed
// allocation aborts the whole server (catch_unwind cannot stop that). Zip bombs likewise make it
// chew through gigabytes of XML. So before calamine sees an upload, walk the archive ourselves:
// inflate every entry to measure it, and check shared-string counts. The crate has no zip/inflate
// dependency of its own, hence the small RFC 1951 decoder below.

/// Largest accepted ratio of unzipped to zipped size limit (xlsx XML compresses about 10:1).
const UNZIP_RATIO: u64 = 16;

/// Most shared strings a workbook may declare; far beyond any real upload.
const MAX_SHARED_STRINGS: u128 = 16_000_000;

fn precheck_zip(bytes: &[u8], max_unzipped: u64) -> Result<(), String> {
    let damaged = || "ZIP 结构异常".to_string();
    let u16_at = |at: usize| -> Option<usize> {
        bytes
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let u32_at = |at: usize| -> Option<usize> {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    // End of central directory: the last signature within the 64 KiB comment window.
    let lowest = bytes.len().saturating_sub(22 + 0xFFFF);
    let eocd = (lowest..=bytes.len().saturating_sub(22))
        .rev()
        .find(|&i| bytes[i..].starts_with(b"PK\x05\x06"))
        .ok_or_else(damaged)?;
    let entries = u16_at(eocd + 10).ok_or_else(damaged)?;
    let cd_size = u32_at(eocd + 12).ok_or_else(damaged)?;
    let cd_offset = u32_at(eocd + 16).ok_or_else(damaged)?;
    // Excel/WPS write plain archives; ZIP64 markers or data before the archive (which readers
    // resolve differently) are refused rather than guessed at.
    if entries == 0xFFFF || cd_offset.checked_add(cd_size) != Some(eocd) {
        return Err(damaged());
    }
    let mut at = cd_offset;
    let mut total: u64 = 0;
    for _ in 0..entries {
        if !bytes
            .get(at..)
            .is_some_and(|b| b.starts_with(b"PK\x01\x02"))
        {
            return Err(damaged());
        }
        let flags = u16_at(at + 8).ok_or_else(damaged)?;
        let method = u16_at(at + 10).ok_or_else(damaged)?;
        let comp_size = u32_at(at + 20).ok_or_else(damaged)?;
        let name_len = u16_at(at + 28).ok_or_else(damaged)?;
        let extra_len = u16_at(at + 30).ok_or_else(damaged)?;
        let comment_len = u16_at(at + 32).ok_or_else(damaged)?;
        let local = u32_at(at + 42).ok_or_else(damaged)?;
        let name = bytes.get(at + 46..at + 46 + name_len).ok_or_else(damaged)?;
        at += 46 + name_len + extra_len + comment_len;
        if flags & 1 != 0 {
            return Err("文件已加密".to_string());
        }
        if !bytes
            .get(local..)
            .is_some_and(|b| b.starts_with(b"PK\x03\x04"))
        {
            return Err(damaged());
        }
        let data_start = local
            + 30
            + u16_at(local + 26).ok_or_else(damaged)?
            + u16_at(local + 28).ok_or_else(damaged)?;
        let data = bytes
            .get(data_start..data_start + comp_size)
            .ok_or_else(damaged)?;
        let name = String::from_utf8_lossy(name)
            .replace('\\', "/")
            .to_ascii_lowercase();
        let mut scanner = name
            .ends_with("sharedstrings.xml")
            .then(UniqueCountScanner::default);
        let budget = max_unzipped - total;
        let size = match method {
            0 => {
                if let Some(s) = scanner.as_mut() {
                    s.feed(data);
                }
                data.len() as u64
            }
            8 => inflate(data, budget, |chunk| {
                if let Some(s) = scanner.as_mut() {
                    s.feed(chunk);
                }
            })
            .map_err(|e| match e {
                InflateError::TooBig => unzipped_too_big(max_unzipped),
                InflateError::Corrupt => format!("压缩数据损坏({name})"),
            })?,
            _ => return Err(format!("不支持的压缩方式 {method}")),
        };
        if size > budget {
            return Err(unzipped_too_big(max_unzipped));
        }
        total += size;
        if let Some(s) = scanner
            && s.max_seen > MAX_SHARED_STRINGS
        {
            return Err(format!("共享字符串数量异常({})", s.max_seen));
        }
    }
    Ok(())
}

fn unzipped_too_big(max: u64) -> String {
    format!("解压后的内容超过 {} MiB", max / (1024 * 1024))
}

/// Finds the largest `uniqueCount="N"` anywhere in a stream fed in chunks.
#[derive(Default)]
struct UniqueCountScanner {
    /// Tail of the previous chunk, so a match split between chunks is still seen.
    carry: Vec<u8>,
    max_seen: u128,
}

impl UniqueCountScanner {
    const KEY: &'static [u8] = b"uniqueCount";
    /// Longest match worth carrying over: key, padding, quote and a long number.
    const TAIL: usize = 128;

    fn feed(&mut self, chunk: &[u8]) {
        let mut buf = std::mem::take(&mut self.carry);
        buf.extend_from_slice(chunk);
        let mut i = 0;
        while let Some(off) = find(&buf[i..], Self::KEY) {
            let mut j = i + off + Self::KEY.len();
            let skip_ws = |j: &mut usize| {
                while buf.get(*j).is_some_and(|b| b.is_ascii_whitespace()) {
                    *j += 1;
                }
            };
            skip_ws(&mut j);
            if buf.get(j) == Some(&b'=') {
                j += 1;
                skip_ws(&mut j);
                if matches!(buf.get(j), Some(b'"' | b'\'')) {
                    j += 1;
                    let mut n: u128 = 0;
                    while let Some(d) = buf.get(j).filter(|b| b.is_ascii_digit()) {
                        n = n.saturating_mul(10).saturating_add(u128::from(d - b'0'));
                        j += 1;
                    }
                    self.max_seen = self.max_seen.max(n);
                }
            }
            i += off + 1;
        }
        let keep = buf.len().saturating_sub(Self::TAIL);
        self.carry = buf.split_off(keep);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[derive(Debug, PartialEq, Eq)]
enum InflateError {
    TooBig,
    Corrupt,
}

/// RFC 1951 raw-deflate decoder in the style of zlib's `puff.c`. Streams output to `sink`
/// keeping only the 32 KiB window, stops once more than `limit` bytes came out, and returns the
/// total size.
fn inflate(input: &[u8], limit: u64, mut sink: impl FnMut(&[u8])) -> Result<u64, InflateError> {
    const WINDOW: usize = 32 * 1024;
    const FLUSH_AT: usize = 4 * WINDOW;
    let mut bits = Bits {
        input,
        pos: 0,
        buf: 0,
        count: 0,
    };
    let mut out: Vec<u8> = Vec::with_capacity(FLUSH_AT + 300);
    let mut total: u64 = 0;
    let mut flush = |out: &mut Vec<u8>, keep: usize| -> Result<(), InflateError> {
        let n = out.len().saturating_sub(keep);
        total += n as u64;
        if total > limit {
            return Err(InflateError::TooBig);
        }
        sink(&out[..n]);
        out.drain(..n);
        Ok(())
    };
    // `produced` counts bytes ever written, to validate distances against the real history.
    let mut produced: u64 = 0;
    loop {
        let last = bits.take(1)? == 1;
        match bits.take(2)? {
            0 => {
                bits.buf = 0;
                bits.count = 0;
                let len = bits.byte_pair()?;
                let nlen = bits.byte_pair()?;
                if len != !nlen & 0xFFFF {
                    return Err(InflateError::Corrupt);
                }
                let block = bits
                    .input
                    .get(bits.pos..bits.pos + len)
                    .ok_or(InflateError::Corrupt)?;
                bits.pos += len;
                out.extend_from_slice(block);
                produced += len as u64;
            }
            kind @ (1 | 2) => {
                let (lit, dist) = if kind == 1 {
                    fixed_tables()
                } else {
                    dynamic_tables(&mut bits)?
                };
                loop {
                    let sym = bits.decode(&lit)?;
                    if sym < 256 {
                        out.push(sym as u8);
                        produced += 1;
                    } else if sym == 256 {
                        break;
                    } else {
                        let i = usize::from(sym - 257);
                        let (&base, &extra) = LEN_BASE
                            .get(i)
                            .zip(LEN_EXTRA.get(i))
                            .ok_or(InflateError::Corrupt)?;
                        let len = usize::from(base) + bits.take(u32::from(extra))? as usize;
                        let d = usize::from(bits.decode(&dist)?);
                        let (&base, &extra) = DIST_BASE
                            .get(d)
                            .zip(DIST_EXTRA.get(d))
                            .ok_or(InflateError::Corrupt)?;
                        let distance = usize::from(base) + bits.take(u32::from(extra))? as usize;
                        if distance as u64 > produced || distance > out.len() {
                            return Err(InflateError::Corrupt);
                        }
                        for _ in 0..len {
                            out.push(out[out.len() - distance]);
                        }
                        produced += len as u64;
                    }
                    if out.len() >= FLUSH_AT {
                        flush(&mut out, WINDOW)?;
                    }
                }
            }
            _ => return Err(InflateError::Corrupt),
        }
        if out.len() >= FLUSH_AT {
            flush(&mut out, WINDOW)?;
        }
        if last {
            break;
        }
    }
    flush(&mut out, 0)?;
    Ok(total)
}

struct Bits<'a> {
    input: &'a [u8],
    pos: usize,
    buf: u64,
    count: u32,
}

impl Bits<'_> {
    fn take(&mut self, n: u32) -> Result<u32, InflateError> {
        while self.count < n {
            let byte = *self.input.get(self.pos).ok_or(InflateError::Corrupt)?;
            self.pos += 1;
            self.buf |= u64::from(byte) << self.count;
            self.count += 8;
        }
        let v = (self.buf & ((1u64 << n) - 1)) as u32;
        self.buf >>= n;
        self.count -= n;
        Ok(v)
    }

    /// A little-endian u16 read on a byte boundary (stored blocks).
    fn byte_pair(&mut self) -> Result<usize, InflateError> {
        let b = self
            .input
            .get(self.pos..self.pos + 2)
            .ok_or(InflateError::Corrupt)?;
        self.pos += 2;
        Ok(usize::from(u16::from_le_bytes([b[0], b[1]])))
    }

    /// Canonical Huffman decode, one bit at a time.
    fn decode(&mut self, h: &Huffman) -> Result<u16, InflateError> {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..16 {
            code |= self.take(1)? as i32;
            let count = i32::from(h.count[len]);
            if code - first < count {
                return h
                    .symbol
                    .get((index + code - first) as usize)
                    .copied()
                    .ok_or(InflateError::Corrupt);
            }
            index += count;
            first += count;
            first <<= 1;
            code <<= 1;
        }
        Err(InflateError::Corrupt)
    }
}

struct Huffman {
    count: [u16; 16],
    symbol: Vec<u16>,
}

impl Huffman {
    fn new(lengths: &[u8]) -> Result<Huffman, InflateError> {
        let mut count = [0u16; 16];
        for &l in lengths {
            count[usize::from(l)] += 1;
        }
        // Over-subscribed code sets are invalid; incomplete ones fail at decode time.
        let mut left: i32 = 1;
        for &c in &count[1..] {
            left <<= 1;
            left -= i32::from(c);
            if left < 0 {
                return Err(InflateError::Corrupt);
            }
        }
        let mut offs = [0u16; 16];
        for len in 1..15 {
            offs[len + 1] = offs[len] + count[len];
        }
        let mut symbol = vec![0u16; lengths.len()];
        for (sym, &l) in lengths.iter().enumerate() {
            if l != 0 {
                let o = &mut offs[usize::from(l)];
                symbol[usize::from(*o)] = sym as u16;
                *o += 1;
            }
        }
        Ok(Huffman { count, symbol })
    }
}

const LEN_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LEN_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

fn fixed_tables() -> (Huffman, Huffman) {
    let mut lengths = [0u8; 288];
    for (i, l) in lengths.iter_mut().enumerate() {
        *l = match i {
            0..=143 => 8,
            144..=255 => 9,
            256..=279 => 7,
            _ => 8,
        };
    }
    // Both tables are valid by construction; fall back to empty tables rather than panic.
    let lit = Huffman::new(&lengths).unwrap_or(Huffman {
        count: [0; 16],
        symbol: Vec::new(),
    });
    let dist = Huffman::new(&[5u8; 30]).unwrap_or(Huffman {
        count: [0; 16],
        symbol: Vec::new(),
    });
    (lit, dist)
}

fn dynamic_tables(bits: &mut Bits<'_>) -> Result<(Huffman, Huffman), InflateError> {
    const ORDER: [usize; 19] = [
        16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
    ];
    let nlen = bits.take(5)? as usize + 257;
    let ndist = bits.take(5)? as usize + 1;
    let ncode = bits.take(4)? as usize + 4;
    if nlen > 286 || ndist > 30 {
        return Err(InflateError::Corrupt);
    }
    let mut code_lengths = [0u8; 19];
    for &i in &ORDER[..ncode] {
        code_lengths[i] = bits.take(3)? as u8;
    }
    let lencode = Huffman::new(&code_lengths)?;
    let mut lengths = vec![0u8; nlen + ndist];
    let mut i = 0;
    while i < nlen + ndist {
        let sym = bits.decode(&lencode)?;
        let (value, repeat) = match sym {
            0..=15 => (sym as u8, 1),
            16 => {
                let prev = *lengths
                    .get(i.wrapping_sub(1))
                    .ok_or(InflateError::Corrupt)?;
                (prev, 3 + bits.take(2)? as usize)
            }
            17 => (0, 3 + bits.take(3)? as usize),
            _ => (0, 11 + bits.take(7)? as usize),
        };
        if i + repeat > nlen + ndist {
            return Err(InflateError::Corrupt);
        }
        lengths[i..i + repeat].fill(value);
        i += repeat;
    }
    if lengths[256] == 0 {
        return Err(InflateError::Corrupt);
    }
    let lit = Huffman::new(&lengths[..nlen])?;
    let dist = Huffman::new(&lengths[nlen..])?;
    Ok((lit, dist))
}

// ----- shared row handling -----

/// Turns physical records into header + rows: skips blank records, trims the header, pads and
/// trims data rows, enforces the row limit.
struct Builder<'a> {
    file: &'a str,
    opts: &'a ReadOptions,
    headers: Option<Vec<String>>,
    rows: Vec<Row>,
}

impl<'a> Builder<'a> {
    fn new(file: &'a str, opts: &'a ReadOptions) -> Self {
        Builder {
            file,
            opts,
            headers: None,
            rows: Vec::new(),
        }
    }

    fn header_name(&self, col: usize) -> String {
        self.headers
            .as_ref()
            .and_then(|h| h.get(col))
            .cloned()
            .unwrap_or_default()
    }

    fn push(&mut self, line: usize, mut cells: Vec<String>) -> Result<(), TableError> {
        if cells.iter().all(|c| is_blank(c)) {
            return Ok(());
        }
        let Some(headers) = &self.headers else {
            let mut headers: Vec<String> = cells.iter().map(|c| clean_header(c)).collect();
            while headers.last().is_some_and(String::is_empty) {
                headers.pop();
            }
            self.headers = Some(headers);
            return Ok(());
        };
        if self.rows.len() >= self.opts.max_rows {
            return Err(TableError::TooManyRows {
                file: self.file.to_string(),
                line,
                max: self.opts.max_rows,
            });
        }
        let width = headers.len();
        while cells.len() > width && cells.last().is_some_and(|c| is_blank(c)) {
            cells.pop();
        }
        if cells.len() < width {
            cells.resize(width, String::new());
        }
        self.rows.push(Row { line, cells });
        Ok(())
    }

    fn finish(self, encoding: Option<Encoding>, format: Format) -> Result<Table, TableError> {
        let Some(headers) = self.headers else {
            return Err(TableError::NoHeader {
                file: self.file.to_string(),
            });
        };
        Ok(Table {
            headers,
            rows: self.rows,
            encoding,
            format,
        })
    }
}

fn is_blank(s: &str) -> bool {
    s.chars().all(|c| c.is_whitespace() || is_invisible(c))
}

/// Characters Excel/WPS leave in headers that staff cannot see: BOM (a second one when a
/// UTF-8 file was re-saved), zero-width space.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{feff}' | '\u{200b}')
}

fn clean_header(s: &str) -> String {
    s.trim_matches(|c: char| c.is_whitespace() || is_invisible(c))
        .to_string()
}

/// Header comparison key: no whitespace/invisible characters, full-width ASCII folded to
/// half-width, ASCII lower-cased.
fn normalize_name(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && !is_invisible(*c))
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFF01 + 0x21).unwrap_or(c),
            _ => c,
        })
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/// CSV for Excel/WPS: UTF-8 with BOM unless `bom` is false (without it Excel reads UTF-8 as
/// GBK and Chinese turns to mojibake), CRLF line ends, quoting as needed.
///
/// Every cell, the header row included (a rejects file repeats the uploaded file's headers),
/// is guarded against formula injection: a cell starting with `=`,
/// `@`, tab or CR, or with `+`/`-` not followed by a plain number or phone-like digits, gets a
/// leading `'`, so a name like `=HYPERLINK(...)` typed into a roster cannot run in the
/// spreadsheet of whoever opens the export. Values like `-1.5` and `+86 139 1234 5678` are kept.
pub fn write_csv<W: Write>(
    mut out: W,
    headers: &[&str],
    rows: impl IntoIterator<Item = Vec<String>>,
    bom: bool,
) -> std::io::Result<()> {
    if bom {
        out.write_all(b"\xEF\xBB\xBF")?;
    }
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .quote_style(csv::QuoteStyle::Necessary)
        .flexible(true)
        .from_writer(out);
    w.write_record(headers.iter().map(|h| defuse_formula(h).into_owned()))?;
    for row in rows {
        let cells: Vec<_> = row.iter().map(|c| defuse_formula(c)).collect();
        w.write_record(cells.iter().map(|c| c.as_bytes()))?;
    }
    w.flush()?;
    Ok(())
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
    use rust_xlsxwriter::{Format as XFormat, Workbook};
    let file = path.display().to_string();
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
    wb.save(path).map_err(werr)
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
fn defuse_formula(s: &str) -> std::borrow::Cow<'_, str> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn opts() -> ReadOptions {
        ReadOptions::default()
    }

    fn read(bytes: &[u8], name: &str) -> Table {
        match read_table_bytes(bytes, name, &opts()) {
            Ok(t) => t,
            Err(e) => panic!("{name}: {e}"),
        }
    }

    fn read_err(bytes: &[u8], name: &str, o: &ReadOptions) -> TableError {
        match read_table_bytes(bytes, name, o) {
            Ok(t) => panic!("{name}: expected an error, got {t:?}"),
            Err(e) => e,
        }
    }

    fn write_file(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn utf16(s: &str, big_endian: bool) -> Vec<u8> {
        let mut out = if big_endian {
            vec![0xFE, 0xFF]
        } else {
            vec![0xFF, 0xFE]
        };
        for u in s.encode_utf16() {
            out.extend(if big_endian {
                u.to_be_bytes()
            } else {
                u.to_le_bytes()
            });
        }
        out
    }

    fn lines(t: &Table) -> Vec<usize> {
        t.rows.iter().map(|r| r.line).collect()
    }

    const ROSTER: &str =
        "参评单位,姓名,联系电话\r\n区教体局,王小明,13912345678\r\n区住建局,李娜,0915-3212345\r\n";

    fn check_roster(t: &Table) {
        assert_eq!(t.headers, ["参评单位", "姓名", "联系电话"]);
        assert_eq!(lines(t), [2, 3]);
        assert_eq!(t.rows[0].cells, ["区教体局", "王小明", "13912345678"]);
        assert_eq!(t.rows[1].get(1), "李娜");
        assert_eq!(t.rows[1].get(2), "0915-3212345");
        assert_eq!(t.rows[1].get(9), "");
    }

    // ----- encodings -----

    #[test]
    fn utf8_with_bom_from_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend(ROSTER.as_bytes());
        let path = write_file(&dir, "名单.csv", &bytes);
        let t = read_table_file(&path, &opts()).unwrap();
        check_roster(&t);
        assert_eq!(t.encoding, Some(Encoding::Utf8));
        assert_eq!(t.format, Format::Csv);
    }

    #[test]
    fn utf8_without_bom_lf() {
        let t = read(ROSTER.replace("\r\n", "\n").as_bytes(), "名单.CSV");
        check_roster(&t);
        assert_eq!(t.encoding, Some(Encoding::Utf8));
    }

    #[test]
    fn gbk_with_crlf_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let (bytes, _, bad) = encoding_rs::GBK.encode(ROSTER);
        assert!(!bad);
        assert!(std::str::from_utf8(&bytes).is_err());
        let path = write_file(&dir, "roster.csv", &bytes);
        let t = read_table_file(&path, &opts()).unwrap();
        check_roster(&t);
        assert_eq!(t.encoding, Some(Encoding::Gb18030));
    }

    #[test]
    fn gb18030_only_characters_decode() {
        // 㐀 (CJK Ext. A) exists in GB18030 but not GBK; rare-name characters like it turn up.
        let text = "姓名,电话\n王㐀,1\n";
        let (bytes, _, bad) = encoding_rs::GB18030.encode(text);
        assert!(!bad);
        let t = read(&bytes, "a.csv");
        assert_eq!(t.rows[0].cells, ["王㐀", "1"]);
    }

    #[test]
    fn utf16le_unicode_text_is_tab_separated() {
        let dir = tempfile::tempdir().unwrap();
        let text = ROSTER.replace(',', "\t");
        let path = write_file(&dir, "名单.txt", &utf16(&text, false));
        let t = read_table_file(&path, &opts()).unwrap();
        check_roster(&t);
        assert_eq!(t.encoding, Some(Encoding::Utf16Le));
        assert_eq!(t.format, Format::Tsv);
        // Staff rename Excel's "Unicode text" to .csv; the tab is still sniffed.
        let t = read(&utf16(&text, false), "名单.csv");
        check_roster(&t);
        assert_eq!(t.format, Format::Tsv);
    }

    #[test]
    fn utf16be_with_bom() {
        let t = read(&utf16(ROSTER, true), "名单.csv");
        check_roster(&t);
        assert_eq!(t.encoding, Some(Encoding::Utf16Be));
        assert_eq!(t.format, Format::Csv);
    }

    #[test]
    fn txt_with_commas_is_sniffed_as_csv() {
        let t = read(ROSTER.as_bytes(), "名单.txt");
        check_roster(&t);
        assert_eq!(t.format, Format::Csv);
        let t = read(ROSTER.replace(',', "\t").as_bytes(), "名单.tsv");
        check_roster(&t);
        assert_eq!(t.format, Format::Tsv);
    }

    #[test]
    fn explicit_encoding_override() {
        let (gbk, _, _) = encoding_rs::GBK.encode(ROSTER);
        let mut o = opts();
        o.encoding = Encoding::parse("GBK");
        check_roster(&read_table_bytes(&gbk, "a.csv", &o).unwrap());

        // Forcing UTF-8 on GBK bytes is an error pointing at the first bad line.
        o.encoding = Some(Encoding::Utf8);
        let e = read_err(&gbk, "a.csv", &o);
        assert!(
            matches!(
                e,
                TableError::Decode {
                    line: 1,
                    encoding: Encoding::Utf8,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("第 1 行"), "{e}");

        // UTF-16 without a BOM is only readable when named.
        let no_bom = &utf16(ROSTER, false)[2..];
        o.encoding = Encoding::parse("utf-16");
        let t = read_table_bytes(no_bom, "a.csv", &o).unwrap();
        check_roster(&t);
        assert_eq!(t.encoding, Some(Encoding::Utf16Le));

        // An override also wins over a BOM-less UTF-8 file that happens to be valid.
        o.encoding = Some(Encoding::Gb18030);
        let t = read_table_bytes(b"a,b\n1,2\n", "a.csv", &o).unwrap();
        assert_eq!(t.encoding, Some(Encoding::Gb18030));
    }

    #[test]
    fn encoding_names() {
        for (name, enc) in [
            ("utf-8", Encoding::Utf8),
            ("UTF8", Encoding::Utf8),
            ("utf-16", Encoding::Utf16Le),
            ("utf-16le", Encoding::Utf16Le),
            ("UTF-16BE", Encoding::Utf16Be),
            ("gbk", Encoding::Gb18030),
            ("gb2312", Encoding::Gb18030),
            (" GB18030 ", Encoding::Gb18030),
        ] {
            assert_eq!(Encoding::parse(name), Some(enc), "{name}");
            assert_eq!(Encoding::parse(enc.name()), Some(enc));
        }
        assert_eq!(Encoding::parse("big5"), None);
        assert_eq!(Encoding::Gb18030.to_string(), "GB18030");
    }

    #[test]
    fn damaged_utf8_is_not_misread_as_gbk() {
        let mut bytes = "姓名,电话\n张三,1\n李四,2\n".as_bytes().to_vec();
        bytes.extend(b"\xFF\n");
        let e = read_err(&bytes, "a.csv", &opts());
        assert!(
            matches!(
                e,
                TableError::Decode {
                    line: 4,
                    encoding: Encoding::Utf8,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn undecodable_bytes_give_unknown_encoding() {
        // 0xFF is neither UTF-8 nor GB18030.
        let e = read_err(b"a,b\n\xFF\xFF,1\n", "a.csv", &opts());
        assert!(
            matches!(e, TableError::UnknownEncoding { line: 2, .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("另存为"), "{e}");
    }

    // ----- line structure -----

    #[test]
    fn lone_cr_line_ends() {
        let t = read("姓名,电话\r张三,1\r\r李四,2\r".as_bytes(), "a.csv");
        assert_eq!(t.headers, ["姓名", "电话"]);
        assert_eq!(lines(&t), [2, 4]);
        assert_eq!(t.rows[1].cells, ["李四", "2"]);
    }

    #[test]
    fn quoted_multiline_cell_keeps_physical_lines() {
        let text = "姓名,备注\n张三,\"第一行\n第二行\r\n第三行, 带逗号\"\"引号\"\"\"\n李四,无\n\n王五,\"\"\n";
        let t = read(text.as_bytes(), "a.csv");
        assert_eq!(lines(&t), [2, 5, 7]);
        assert_eq!(t.rows[0].get(1), "第一行\n第二行\r\n第三行, 带逗号\"引号\"");
        assert_eq!(t.rows[1].cells, ["李四", "无"]);
        assert_eq!(t.rows[2].cells, ["王五", ""]);
    }

    #[test]
    fn blank_lines_are_skipped_but_counted() {
        let text = "\n \r\n姓名,电话\n\n张三,1\n  ,\t, \n\u{3000},\u{a0}\n李四,2";
        let t = read(text.as_bytes(), "a.csv");
        assert_eq!(t.headers, ["姓名", "电话"]);
        assert_eq!(lines(&t), [5, 8]);
        assert_eq!(t.rows[1].cells, ["李四", "2"]);
    }

    #[test]
    fn header_cells_are_trimmed() {
        let text = "\u{feff}\u{3000}参评单位\u{a0},  姓名 ,\u{feff}联系电话\t,,\n1,2,3\n";
        let t = read(text.as_bytes(), "a.csv");
        assert_eq!(t.headers, ["参评单位", "姓名", "联系电话"]);
        // Data cells are kept as written; trimming them is the caller's business.
        let t = read(" a ,b\n x ,y\n".as_bytes(), "a.csv");
        assert_eq!(t.headers, ["a", "b"]);
        assert_eq!(t.rows[0].cells, [" x ", "y"]);
    }

    #[test]
    fn ragged_rows() {
        let text = "a,b,c\n1\n1,2,3,,\n1,2,3,,extra\n,,,\n";
        let t = read(text.as_bytes(), "a.csv");
        assert_eq!(t.rows.len(), 3);
        assert_eq!(t.rows[0].cells, ["1", "", ""]);
        assert_eq!(t.rows[1].cells, ["1", "2", "3"]);
        assert_eq!(t.rows[2].cells, ["1", "2", "3", "", "extra"]);
        assert!(t.rows.iter().all(|r| r.cells.len() >= t.headers.len()));
    }

    #[test]
    fn quotes_inside_unquoted_cells_are_literal() {
        let t = read("a,b\nab\"c\"d,x\n".as_bytes(), "a.csv");
        assert_eq!(t.rows[0].cells, ["ab\"c\"d", "x"]);
        // Padding after a closing quote is tolerated.
        let t = read("a,b\n\"x\"  ,y\n".as_bytes(), "a.csv");
        assert_eq!(t.rows[0].cells, ["x", "y"]);
    }

    #[test]
    fn header_only_and_empty_files() {
        let t = read(b"a,b\r\n", "a.csv");
        assert_eq!(t.headers, ["a", "b"]);
        assert!(t.rows.is_empty());
        for bytes in [&b""[..], b"\xEF\xBB\xBF", b"\r\n , \r\n\n"] {
            let e = read_err(bytes, "a.csv", &opts());
            assert!(matches!(e, TableError::NoHeader { .. }), "{e:?}");
        }
    }

    // ----- errors and limits -----

    #[test]
    fn unclosed_quote_is_an_error_at_its_line() {
        let text = "姓名,备注\n张三,1\n李四,\"没有结束\n王五,2\n";
        let e = read_err(text.as_bytes(), "名单.csv", &opts());
        assert!(
            matches!(e, TableError::UnclosedQuote { line: 3, column: 2, ref header, .. } if header == "备注"),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains("名单.csv") && msg.contains("第 3 行") && msg.contains("B 列“备注”"),
            "{msg}"
        );
    }

    #[test]
    fn text_after_closing_quote_is_an_error() {
        let text = "姓名,备注\n\n\"他说\"好\"\",1\n";
        let e = read_err(text.as_bytes(), "a.csv", &opts());
        assert!(
            matches!(
                e,
                TableError::TextAfterQuote {
                    line: 3,
                    column: 1,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn too_large() {
        let mut o = opts();
        o.max_bytes = 10;
        let e = read_err(ROSTER.as_bytes(), "a.csv", &o);
        assert!(matches!(e, TableError::TooLarge { max: 10, .. }), "{e:?}");
        let dir = tempfile::tempdir().unwrap();
        let path = write_file(&dir, "a.xlsx", ROSTER.as_bytes());
        let e = read_table_file(&path, &o).unwrap_err();
        assert!(matches!(e, TableError::TooLarge { .. }), "{e:?}");
        assert!(e.to_string().contains("拆分"), "{e}");
    }

    #[test]
    fn cell_too_long() {
        let mut o = opts();
        o.max_cell_chars = 5;
        let text = "编号,姓名\n1,张三\n2,欧阳娜娜娜娜\n";
        let e = read_err(text.as_bytes(), "a.csv", &o);
        assert!(
            matches!(
                e,
                TableError::CellTooLong {
                    line: 3,
                    column: 2,
                    ..
                }
            ),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains("第 3 行第 2 列(B 列“姓名”)") && msg.contains("5 个字符"),
            "{msg}"
        );
        // Exactly at the limit is fine, also inside quotes.
        let t = read_table_bytes("a\n\"12345\"\n".as_bytes(), "a.csv", &o).unwrap();
        assert_eq!(t.rows[0].cells, ["12345"]);
        let e = read_err("a\n\"12\n345\"\n".as_bytes(), "a.csv", &o);
        assert!(
            matches!(e, TableError::CellTooLong { line: 2, .. }),
            "{e:?}"
        );
    }

    #[test]
    fn too_many_rows() {
        let mut o = opts();
        o.max_rows = 2;
        let ok = read_table_bytes(b"a\n1\n\n2\n", "a.csv", &o).unwrap();
        assert_eq!(ok.rows.len(), 2);
        let e = read_err(b"a\n1\n\n2\n3\n", "a.csv", &o);
        assert!(
            matches!(
                e,
                TableError::TooManyRows {
                    line: 5,
                    max: 2,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn too_many_columns() {
        let wide = vec!["x"; MAX_COLUMNS + 1].join(",");
        let e = read_err(format!("a\n{wide}\n").as_bytes(), "a.csv", &opts());
        assert!(
            matches!(
                e,
                TableError::TooManyColumns {
                    line: 2,
                    column: 201,
                    max: 200,
                    ..
                }
            ),
            "{e:?}"
        );
        // Trailing empty cells beyond the cap (formatted-but-empty Excel columns) are ignored.
        let trailing = ",".repeat(10_000);
        let t = read(format!("a{trailing}\n1{trailing}\n").as_bytes(), "a.csv");
        assert_eq!(t.headers, ["a"]);
        assert_eq!(t.rows[0].cells, ["1"]);
    }

    #[test]
    fn unsupported_extensions() {
        for name in ["a.doc", "a", ".csv", "a.pdf", "dir.csv/file"] {
            let e = read_err(b"a,b\n", name, &opts());
            assert!(
                matches!(e, TableError::UnsupportedFormat { .. }),
                "{name}: {e:?}"
            );
        }
        // Browser-style Windows paths still give the extension.
        let t = read(b"a,b\n1,2\n", "C:\\fakepath\\名单.csv");
        assert_eq!(t.headers, ["a", "b"]);
    }

    #[test]
    fn corrupt_workbook_is_a_chinese_error() {
        let e = read_err(b"PK\x03\x04garbage", "a.xlsx", &opts());
        assert!(matches!(e, TableError::Workbook { .. }), "{e:?}");
        assert!(e.to_string().contains("另存为 .xlsx"), "{e}");
        let e = read_err(
            b"<html><body><table><tr><td>1</td></tr></table></body></html>",
            "export.xls",
            &opts(),
        );
        assert!(matches!(e, TableError::HtmlDisguised { .. }), "{e:?}");
    }

    #[test]
    fn text_named_xls_is_read_as_text() {
        let t = read(ROSTER.replace(',', "\t").as_bytes(), "export.xls");
        check_roster(&t);
        assert_eq!(t.format, Format::Tsv);
    }

    // ----- workbooks -----

    fn xlsx_fixture(dir: &tempfile::TempDir, name: &str, first_row: u32) -> std::path::PathBuf {
        use rust_xlsxwriter::{ExcelDateTime, Format as XFormat, Workbook};
        let mut wb = Workbook::new();
        // A hidden sheet in front must not be taken for the data.
        let hidden = wb.add_worksheet();
        hidden.set_name("参数").unwrap();
        hidden.write_string(0, 0, "不是数据").unwrap();
        hidden.set_hidden(true);
        let ws = wb.add_worksheet();
        ws.set_name("名单").unwrap();
        // rust_xlsxwriter un-hides the first sheet unless another one is active.
        ws.set_active(true);
        let date = XFormat::new().set_num_format("yyyy-mm-dd");
        let datetime = XFormat::new().set_num_format("yyyy-mm-dd hh:mm:ss");
        let time = XFormat::new().set_num_format("hh:mm");
        let col0 = if first_row == 0 { 0 } else { 1 };
        let headers = [
            " 参评单位 ",
            "姓名",
            "联系电话",
            "得分",
            "日期",
            "时间",
            "通话时刻",
            "有效",
            "大数",
        ];
        for (c, h) in headers.iter().enumerate() {
            ws.write_string(first_row, col0 + c as u16, *h).unwrap();
        }
        let r = first_row + 1;
        ws.write_string(r, col0, "区教体局").unwrap();
        ws.write_string(r, col0 + 1, "张三").unwrap();
        ws.write_number(r, col0 + 2, 13912345678.0).unwrap();
        ws.write_number(r, col0 + 3, 85.25).unwrap();
        let d = ExcelDateTime::from_ymd(2022, 3, 15).unwrap();
        ws.write_datetime_with_format(r, col0 + 4, &d, &date)
            .unwrap();
        let dt = ExcelDateTime::from_ymd(2022, 3, 15)
            .unwrap()
            .and_hms(14, 30, 5)
            .unwrap();
        ws.write_datetime_with_format(r, col0 + 5, &dt, &datetime)
            .unwrap();
        let t = ExcelDateTime::from_hms(9, 5, 0).unwrap();
        ws.write_datetime_with_format(r, col0 + 6, &t, &time)
            .unwrap();
        ws.write_boolean(r, col0 + 7, true).unwrap();
        ws.write_number(r, col0 + 8, 999_999_999_999_999.0).unwrap();
        // A blank row (only formatting), then a short row and a row with an extra cell.
        ws.write_blank(r + 1, col0, &date).unwrap();
        ws.write_string(r + 2, col0, "区住建局").unwrap();
        ws.write_string(r + 3, col0 + 1, "李四").unwrap();
        ws.write_string(r + 3, col0 + 10, "备注外").unwrap();
        let path = dir.path().join(name);
        wb.save(&path).unwrap();
        path
    }

    #[test]
    fn xlsx_cells_as_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = xlsx_fixture(&dir, "名单.xlsx", 0);
        let t = read_table_file(&path, &opts()).unwrap();
        assert_eq!(t.format, Format::Xlsx);
        assert_eq!(t.encoding, None);
        assert_eq!(
            t.headers,
            [
                "参评单位",
                "姓名",
                "联系电话",
                "得分",
                "日期",
                "时间",
                "通话时刻",
                "有效",
                "大数"
            ]
        );
        assert_eq!(lines(&t), [2, 4, 5]);
        assert_eq!(
            t.rows[0].cells,
            [
                "区教体局",
                "张三",
                "13912345678",
                "85.25",
                "2022-03-15",
                "2022-03-15 14:30:05",
                "09:05:00",
                "TRUE",
                "999999999999999"
            ]
        );
        assert_eq!(t.rows[1].get(0), "区住建局");
        assert_eq!(t.rows[1].cells.len(), 9);
        assert_eq!(t.rows[2].cells.len(), 11);
        assert_eq!(t.rows[2].get(10), "备注外");
        assert_eq!(t.find_column(&["联系电话"]), Some(2));
    }

    #[test]
    fn xlsx_header_on_row_3_keeps_sheet_row_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = xlsx_fixture(&dir, "名单.xlsm", 2);
        let bytes = std::fs::read(&path).unwrap();
        let t = read_table_bytes(&bytes, "名单.xlsm", &opts()).unwrap();
        // The table starts in column B: column A stays, with an empty header.
        assert_eq!(t.headers[0], "");
        assert_eq!(t.headers[1], "参评单位");
        assert_eq!(lines(&t), [4, 6, 7]);
        assert_eq!(t.rows[0].get(3), "13912345678");
        assert_eq!(t.find_column(&["姓名"]), Some(2));
        assert!(
            t.unknown_columns(&[&["参评单位", "姓名"]])
                .contains(&"得分".to_string())
        );
    }

    #[test]
    fn xlsx_limits() {
        let dir = tempfile::tempdir().unwrap();
        let path = xlsx_fixture(&dir, "a.xlsx", 2);
        let mut o = opts();
        o.max_cell_chars = 8;
        let e = read_table_file(&path, &o).unwrap_err();
        // "13912345678" in D4 is the first cell over 8 characters.
        assert!(
            matches!(e, TableError::CellTooLong { line: 4, column: 4, ref header, .. } if header == "联系电话"),
            "{e:?}"
        );
        let mut o = opts();
        o.max_rows = 1;
        let e = read_table_file(&path, &o).unwrap_err();
        assert!(
            matches!(e, TableError::TooManyRows { line: 6, .. }),
            "{e:?}"
        );

        use rust_xlsxwriter::Workbook;
        let mut wb = Workbook::new();
        let ws = wb.add_worksheet();
        ws.write_string(0, 0, "a").unwrap();
        ws.write_string(1, 300, "far").unwrap();
        let bytes = wb.save_to_buffer().unwrap();
        let e = read_err(&bytes, "a.xlsx", &opts());
        assert!(
            matches!(
                e,
                TableError::TooManyColumns {
                    line: 2,
                    column: 301,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("KO 列"), "{e}");
    }

    #[test]
    fn xlsx_renamed_to_csv_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = xlsx_fixture(&dir, "a.xlsx", 0);
        let bytes = std::fs::read(path).unwrap();
        let t = read(&bytes, "名单.csv");
        assert_eq!(t.format, Format::Xlsx);
        assert_eq!(t.rows[0].get(2), "13912345678");
    }

    #[test]
    fn legacy_and_encrypted_workbooks_are_refused_with_advice() {
        // .xls (and encrypted .xlsx) are OLE compound files; .ods is a zip.
        let mut ole = OLE_MAGIC.to_vec();
        ole.extend([0u8; 600]);
        for name in ["a.xls", "a.xlsx", "a.csv"] {
            let e = read_err(&ole, name, &opts());
            assert!(
                matches!(e, TableError::LegacyWorkbook { .. }),
                "{name}: {e:?}"
            );
            assert!(e.to_string().contains("另存为”Excel 工作簿(.xlsx)"), "{e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let xlsx = std::fs::read(xlsx_fixture(&dir, "a.xlsx", 0)).unwrap();
        let e = read_err(&xlsx, "a.ods", &opts());
        assert!(matches!(e, TableError::LegacyWorkbook { .. }), "{e:?}");
    }

    #[test]
    fn cell_text_formats() {
        assert_eq!(format_number(13912345678.0), "13912345678");
        assert_eq!(format_number(999_999_999_999_999.0), "999999999999999");
        assert_eq!(format_number(1e15), "1000000000000000");
        assert_eq!(format_number(1e20), "100000000000000000000");
        assert_eq!(format_number(-0.0), "0");
        assert_eq!(format_number(-3.0), "-3");
        assert_eq!(format_number(0.1), "0.1");
        assert_eq!(format_number(85.5), "85.5");
        assert_eq!(format_number(1e-7), "0.0000001");
        assert_eq!(cell_text(&Data::Int(42)), "42");
        assert_eq!(cell_text(&Data::Bool(false)), "FALSE");
        assert_eq!(cell_text(&Data::Error(calamine::CellErrorType::NA)), "#N/A");
        assert_eq!(
            cell_text(&Data::Error(calamine::CellErrorType::Div0)),
            "#DIV/0!"
        );
        assert_eq!(cell_text(&Data::Empty), "");
        assert_eq!(
            cell_text(&Data::DateTimeIso("2022-03-15T00:00:00".into())),
            "2022-03-15"
        );
        assert_eq!(
            cell_text(&Data::DateTimeIso("2022-03-15T08:01:02".into())),
            "2022-03-15 08:01:02"
        );
        use calamine::{ExcelDateTime, ExcelDateTimeType};
        let dur = ExcelDateTime::new(1.5, ExcelDateTimeType::TimeDelta, false);
        assert_eq!(cell_text(&Data::DateTime(dur)), "36:00:00");
        let d1904 = ExcelDateTime::new(0.0, ExcelDateTimeType::DateTime, true);
        assert_eq!(cell_text(&Data::DateTime(d1904)), "1904-01-01");
        for v in [f64::NAN, f64::INFINITY, -1e300, 1e300] {
            let dt = ExcelDateTime::new(v, ExcelDateTimeType::DateTime, false);
            let _ = cell_text(&Data::DateTime(dt));
            let dt = ExcelDateTime::new(v, ExcelDateTimeType::TimeDelta, false);
            let _ = cell_text(&Data::DateTime(dt));
            let _ = cell_text(&Data::Float(v));
        }
    }

    // ----- columns -----

    #[test]
    fn column_lookup() {
        let t = Table {
            headers: [
                "参评单位",
                "姓　名",
                "Phone",
                "联系电话（手机）",
                "",
                "备注",
                "PHONE",
            ]
            .map(String::from)
            .to_vec(),
            rows: Vec::new(),
            encoding: None,
            format: Format::Csv,
        };
        assert_eq!(t.find_column(&["姓名"]), Some(1));
        assert_eq!(t.find_column(&["phone"]), Some(2));
        assert_eq!(t.find_column(&["联系电话(手机)"]), Some(3));
        // Aliases are tried in order.
        assert_eq!(t.find_column(&["不存在", "备注", "参评单位"]), Some(5));
        assert_eq!(t.find_column(&["", "电话"]), None);
        assert_eq!(t.find_columns(&["phone"]), [2, 6]);
        assert_eq!(
            t.unknown_columns(&[&["参评单位", "单位"], &["姓名"], &["phone", "电话"]]),
            ["联系电话（手机）", "备注"]
        );
        assert_eq!(column_letter(0), "A");
        assert_eq!(column_letter(25), "Z");
        assert_eq!(column_letter(26), "AA");
        assert_eq!(column_letter(16_383), "XFD");
    }

    // ----- writing -----

    fn sample_rows() -> Vec<Vec<String>> {
        [
            vec!["区教体局", "张三", "13912345678", "85.5"],
            vec!["区住建局,二科", "李\"四\"", "0915-3212345", "-1.5"],
            vec![
                "多行\r\n备注",
                "=HYPERLINK(\"x\")",
                "+86 139 1234 5678",
                "007",
            ],
            vec!["@SUM(A1)", "-2+cmd|' /C calc'!A0", "-", "1.50"],
        ]
        .into_iter()
        .map(|r| r.into_iter().map(String::from).collect())
        .collect()
    }

    const OUT_HEADERS: [&str; 4] = ["参评单位", "姓名", "联系电话", "得分"];

    fn expected_back() -> Vec<Vec<String>> {
        let mut rows = sample_rows();
        rows[2][1] = "'=HYPERLINK(\"x\")".into();
        rows[3][0] = "'@SUM(A1)".into();
        rows[3][1] = "'-2+cmd|' /C calc'!A0".into();
        rows
    }

    #[test]
    fn write_csv_bom_crlf_and_round_trip() {
        let mut out = Vec::new();
        write_csv(&mut out, &OUT_HEADERS, sample_rows(), true).unwrap();
        assert!(out.starts_with(b"\xEF\xBB\xBF\xE5"), "{:?}", &out[..8]);
        let text = std::str::from_utf8(&out[3..]).unwrap();
        assert!(
            text.starts_with("参评单位,姓名,联系电话,得分\r\n区教体局,张三,13912345678,85.5\r\n")
        );
        assert!(
            text.contains("\"区住建局,二科\",\"李\"\"四\"\"\""),
            "{text}"
        );
        let t = read(&out, "export.csv");
        assert_eq!(t.headers, OUT_HEADERS);
        assert_eq!(t.encoding, Some(Encoding::Utf8));
        let back: Vec<Vec<String>> = t.rows.iter().map(|r| r.cells.clone()).collect();
        assert_eq!(back, expected_back());
        // The multi-line cell makes the following row start one line later.
        assert_eq!(lines(&t), [2, 3, 4, 6]);

        let mut plain = Vec::new();
        write_csv(&mut plain, &["a"], vec![vec!["1".to_string()]], false).unwrap();
        assert_eq!(plain, b"a\r\n1\r\n");
    }

    #[test]
    fn write_xlsx_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("导出.xlsx");
        write_xlsx(&path, "满意度", &OUT_HEADERS, sample_rows()).unwrap();
        let t = read_table_file(&path, &opts()).unwrap();
        assert_eq!(t.headers, OUT_HEADERS);
        let back: Vec<Vec<String>> = t.rows.iter().map(|r| r.cells.clone()).collect();
        assert_eq!(back, expected_back());
        assert_eq!(lines(&t), [2, 3, 4, 5]);

        // Numbers are real numbers; look-alikes that would lose digits stay text.
        let mut wb: Xlsx<_> = calamine::open_workbook(&path).unwrap();
        assert_eq!(wb.sheet_names(), ["满意度"]);
        let range = wb.worksheet_range("满意度").unwrap();
        assert_eq!(range.get_value((1, 2)), Some(&Data::Float(13912345678.0)));
        assert_eq!(range.get_value((1, 3)), Some(&Data::Float(85.5)));
        assert_eq!(range.get_value((2, 3)), Some(&Data::Float(-1.5)));
        assert_eq!(range.get_value((3, 3)), Some(&Data::String("007".into())));
        assert_eq!(range.get_value((4, 3)), Some(&Data::String("1.50".into())));
    }

    #[test]
    fn write_xlsx_errors_are_typed() {
        let dir = tempfile::tempdir().unwrap();
        let e =
            write_xlsx(&dir.path().join("a.xlsx"), "bad[name]", &["a"], Vec::new()).unwrap_err();
        assert!(matches!(e, TableError::Write { .. }), "{e:?}");
        let e = write_xlsx(
            &dir.path().join("missing-dir").join("a.xlsx"),
            "ok",
            &["a"],
            Vec::new(),
        )
        .unwrap_err();
        assert!(matches!(e, TableError::Write { .. }), "{e:?}");
        assert!(e.to_string().contains("磁盘空间"), "{e}");
    }

    #[test]
    fn formula_guard() {
        for s in [
            "=1+1", "@x", "+x", "-x", "+ 1", "\t=1", "\r=1", "-1+cmd|x", "+1e3",
        ] {
            assert_eq!(defuse_formula(s), format!("'{s}"), "{s}");
        }
        for s in [
            "",
            "-",
            "+",
            "-1.5",
            "+8613912345678",
            "+86 139-1234-5678",
            "a=b",
            "１=1",
            "0",
        ] {
            assert_eq!(defuse_formula(s), s, "{s}");
        }
    }

    // ----- robustness -----

    const EXTENSIONS: [&str; 8] = [
        "a.csv", "a.tsv", "a.txt", "a.xlsx", "a.xlsm", "a.xls", "a.ods", "a.bin",
    ];

    fn small_opts() -> ReadOptions {
        ReadOptions {
            encoding: None,
            max_bytes: 1 << 16,
            max_cell_chars: 50,
            max_rows: 20,
        }
    }

    fn check_invariants(t: &Table) {
        let mut last = 0;
        for r in &t.rows {
            assert!(r.cells.len() >= t.headers.len());
            assert!(r.line > last, "lines increase");
            last = r.line;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            for name in EXTENSIONS {
                for o in [opts(), small_opts()] {
                    if let Ok(t) = read_table_bytes(&bytes, name, &o) {
                        check_invariants(&t);
                    }
                }
            }
        }

        #[test]
        fn arbitrary_magic_prefixed_bytes_never_panic(
            zip in any::<bool>(),
            tail in proptest::collection::vec(any::<u8>(), 0..600),
        ) {
            let mut bytes = if zip { ZIP_MAGIC.to_vec() } else { OLE_MAGIC.to_vec() };
            bytes.extend(tail);
            for name in EXTENSIONS {
                let _ = read_table_bytes(&bytes, name, &opts());
            }
        }

        #[test]
        fn csv_like_text_never_panics(
            text in "[a中\",\t\r\n \u{3000}\u{feff}\"]{0,80}",
            utf16 in any::<bool>(),
        ) {
            let bytes = if utf16 { super::tests::utf16(&text, false) } else { text.clone().into_bytes() };
            for name in ["a.csv", "a.txt", "a.xls"] {
                for o in [opts(), small_opts()] {
                    if let Ok(t) = read_table_bytes(&bytes, name, &o) {
                        check_invariants(&t);
                    }
                }
            }
        }

        #[test]
        fn csv_round_trip(
            rows in proptest::collection::vec(
                proptest::collection::vec("[a-z中,\"\r\n 　]{0,6}", 3),
                0..8,
            )
        ) {
            // The first cell is never blank, so no row is skipped as blank.
            let rows: Vec<Vec<String>> = rows
                .into_iter()
                .map(|mut r| { r[0] = format!("x{}", r[0]); r })
                .collect();
            let mut out = Vec::new();
            write_csv(&mut out, &["a", "b", "c"], rows.clone(), true).unwrap();
            let t = read_table_bytes(&out, "a.csv", &opts()).unwrap();
            let back: Vec<Vec<String>> = t.rows.iter().map(|r| r.cells.clone()).collect();
            let expected: Vec<Vec<String>> = rows
                .iter()
                .map(|r| r.iter().map(|c| defuse_formula(c).into_owned()).collect())
                .collect();
            prop_assert_eq!(back, expected);
        }
    }

    #[test]
    fn mutated_xlsx_never_panics() {
        let dir = tempfile::tempdir().unwrap();
        let path = xlsx_fixture(&dir, "a.xlsx", 0);
        let good = std::fs::read(path).unwrap();
        // A deterministic xorshift keeps the test reproducible without a seed file.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for (base, name) in [(&good, "a.xlsx"), (&stored_copy(&good), "a.xlsm")] {
            for _ in 0..300 {
                let mut bytes = base.clone();
                for _ in 0..(next() % 8 + 1) {
                    let i = (next() as usize) % bytes.len();
                    bytes[i] = next() as u8;
                }
                if next() % 4 == 0 {
                    bytes.truncate((next() as usize) % bytes.len());
                }
                if let Ok(t) = read_table_bytes(&bytes, name, &small_opts()) {
                    check_invariants(&t);
                }
            }
        }
    }

    // ----- zip pre-check and inflate -----

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    struct Entry {
        name: String,
        method: u16,
        crc: u32,
        size: u32,
        data: Vec<u8>,
    }

    fn u16le(v: usize) -> [u8; 2] {
        (v as u16).to_le_bytes()
    }

    fn u32le(v: usize) -> [u8; 4] {
        (v as u32).to_le_bytes()
    }

    /// Entries of a zip as stored (data still compressed), via the central directory.
    fn zip_entries(bytes: &[u8]) -> Vec<Entry> {
        let rd16 = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize;
        let rd32 = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let eocd = (0..bytes.len() - 21)
            .rev()
            .find(|&i| bytes[i..].starts_with(b"PK\x05\x06"))
            .unwrap();
        let mut at = rd32(eocd + 16);
        let mut out = Vec::new();
        for _ in 0..rd16(eocd + 10) {
            let name_len = rd16(at + 28);
            let local = rd32(at + 42);
            let start = local + 30 + rd16(local + 26) + rd16(local + 28);
            out.push(Entry {
                name: String::from_utf8(bytes[at + 46..at + 46 + name_len].to_vec()).unwrap(),
                method: rd16(at + 10) as u16,
                crc: rd32(at + 16) as u32,
                size: rd32(at + 24) as u32,
                data: bytes[start..start + rd32(at + 20)].to_vec(),
            });
            at += 46 + name_len + rd16(at + 30) + rd16(at + 32);
        }
        out
    }

    fn build_zip(entries: &[Entry]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for e in entries {
            let local = out.len();
            let common = |v: &mut Vec<u8>| {
                v.extend(u16le(20)); // version needed
                v.extend(u16le(0)); // flags
                v.extend(u16le(e.method.into()));
                v.extend([0u8; 4]); // time, date
                v.extend(e.crc.to_le_bytes());
                v.extend(u32le(e.data.len()));
                v.extend(e.size.to_le_bytes());
                v.extend(u16le(e.name.len()));
                v.extend(u16le(0)); // extra
            };
            out.extend(b"PK\x03\x04");
            common(&mut out);
            out.extend(e.name.as_bytes());
            out.extend(&e.data);
            central.extend(b"PK\x01\x02");
            central.extend(u16le(20)); // version made by
            common(&mut central);
            central.extend([0u8; 6]); // comment len, disk, internal attrs
            central.extend([0u8; 4]); // external attrs
            central.extend(u32le(local));
            central.extend(e.name.as_bytes());
        }
        let cd_offset = out.len();
        out.extend(&central);
        out.extend(b"PK\x05\x06");
        out.extend([0u8; 4]);
        out.extend(u16le(entries.len()));
        out.extend(u16le(entries.len()));
        out.extend(u32le(central.len()));
        out.extend(u32le(cd_offset));
        out.extend(u16le(0));
        out
    }

    fn inflate_all(data: &[u8], limit: u64) -> Result<Vec<u8>, InflateError> {
        let mut out = Vec::new();
        let n = inflate(data, limit, |c| out.extend_from_slice(c))?;
        assert_eq!(n as usize, out.len());
        Ok(out)
    }

    /// The same archive with every entry stored uncompressed (inflated by our decoder).
    fn stored_copy(xlsx: &[u8]) -> Vec<u8> {
        let entries: Vec<Entry> = zip_entries(xlsx)
            .into_iter()
            .map(|e| {
                let data = if e.method == 8 {
                    inflate_all(&e.data, u64::MAX).unwrap()
                } else {
                    e.data
                };
                Entry {
                    method: 0,
                    crc: crc32(&data),
                    size: data.len() as u32,
                    data,
                    name: e.name,
                }
            })
            .collect();
        build_zip(&entries)
    }

    #[test]
    fn inflate_matches_real_xlsx_crcs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.xlsx");
        let rows = (0..3000).map(|i| {
            vec![
                format!("单位{i}"),
                format!("{}", 13_900_000_000u64 + i * 7919),
                "满意".repeat(i as usize % 5),
            ]
        });
        write_xlsx(&path, "s", &["单位", "电话", "答案"], rows).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let entries = zip_entries(&bytes);
        assert!(entries.iter().any(|e| e.method == 8));
        for e in entries {
            let data = if e.method == 8 {
                inflate_all(&e.data, u64::MAX).unwrap()
            } else {
                e.data.clone()
            };
            assert_eq!(data.len(), e.size as usize, "{}", e.name);
            assert_eq!(crc32(&data), e.crc, "{}", e.name);
        }
        // A stored (uncompressed) repack reads the same.
        let a = read(&bytes, "a.xlsx");
        let b = read(&stored_copy(&bytes), "b.xlsx");
        assert_eq!(a.rows.len(), 3000);
        assert_eq!(a.rows.last().unwrap().cells, b.rows.last().unwrap().cells);
        assert_eq!(a.rows[2999].get(1), "13923749081");
    }

    /// Writes Huffman codes (MSB-first) and plain values (LSB-first) into a deflate bit stream.
    #[derive(Default)]
    struct BitWriter {
        out: Vec<u8>,
        acc: u64,
        n: u32,
    }

    impl BitWriter {
        fn put(&mut self, value: u32, bits: u32) {
            self.acc |= u64::from(value) << self.n;
            self.n += bits;
            while self.n >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.n -= 8;
            }
        }

        fn code(&mut self, code: u32, bits: u32) {
            let reversed = code.reverse_bits() >> (32 - bits);
            self.put(reversed, bits);
        }

        fn finish(mut self) -> Vec<u8> {
            if self.n > 0 {
                self.out.push(self.acc as u8);
            }
            self.out
        }
    }

    /// A fixed-Huffman block: the literal "a", then `copies` back-references of 258 bytes.
    fn deflate_run(copies: usize) -> Vec<u8> {
        let mut w = BitWriter::default();
        w.put(1, 1); // final block
        w.put(1, 2); // fixed Huffman
        w.code(0x30 + u32::from(b'a'), 8);
        for _ in 0..copies {
            w.code(0b1100_0101, 8); // length symbol 285 = 258 bytes
            w.code(0, 5); // distance symbol 0 = 1 byte back
        }
        w.code(0, 7); // end of block
        w.finish()
    }

    #[test]
    fn inflate_handcrafted_streams() {
        assert_eq!(inflate_all(&deflate_run(2), 1000).unwrap(), vec![b'a'; 517]);
        // Stored block "hi".
        let stored = [0x01, 0x02, 0x00, 0xFD, 0xFF, b'h', b'i'];
        assert_eq!(inflate_all(&stored, 10).unwrap(), b"hi");
        // Damaged inputs are errors, never panics.
        assert_eq!(inflate_all(&stored[..6], 10), Err(InflateError::Corrupt));
        assert_eq!(
            inflate_all(&[0x01, 0x02, 0x00, 0x00, 0x00], 10),
            Err(InflateError::Corrupt)
        );
        assert_eq!(inflate_all(&[0x07], 10), Err(InflateError::Corrupt)); // reserved type 3
        assert_eq!(inflate_all(&[], 10), Err(InflateError::Corrupt));
        let mut w = BitWriter::default();
        w.put(1, 1);
        w.put(1, 2);
        w.code(0b1100_0101, 8);
        w.code(0, 5); // distance 1 with no history
        assert_eq!(inflate_all(&w.finish(), 1000), Err(InflateError::Corrupt));
        // Output beyond the limit stops early.
        assert_eq!(
            inflate_all(&deflate_run(10_000), 100_000),
            Err(InflateError::TooBig)
        );
    }

    fn xlsx_with_shared_strings(edit: impl Fn(String) -> String) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let good = std::fs::read(xlsx_fixture(&dir, "a.xlsx", 0)).unwrap();
        let stored = stored_copy(&good);
        let entries: Vec<Entry> = zip_entries(&stored)
            .into_iter()
            .map(|mut e| {
                if e.name == "xl/sharedStrings.xml" {
                    e.data = edit(String::from_utf8(e.data).unwrap()).into_bytes();
                    e.crc = crc32(&e.data);
                    e.size = e.data.len() as u32;
                }
                e
            })
            .collect();
        build_zip(&entries)
    }

    #[test]
    fn huge_shared_string_count_is_refused_before_calamine() {
        let ok = xlsx_with_shared_strings(|s| s);
        assert_eq!(read(&ok, "a.xlsx").rows[0].get(1), "张三");
        // Without the pre-check this file aborts the process (calamine reserves 240 GB).
        let bomb = xlsx_with_shared_strings(|s| {
            let i = s.find("uniqueCount=\"").unwrap() + 13;
            let j = i + s[i..].find('"').unwrap();
            format!("{}10000000000{}", &s[..i], &s[j..])
        });
        let e = read_err(&bomb, "a.xlsx", &opts());
        assert!(
            matches!(e, TableError::Workbook { ref detail, .. } if detail.contains("共享字符串")),
            "{e:?}"
        );
        // Hidden behind a comment and odd spacing, it is still found.
        let sneaky = xlsx_with_shared_strings(|s| {
            let s = s.replacen("<sst ", "<!-- uniqueCount=\"1\" --><sst ", 1);
            let i = s.find(" uniqueCount=\"").unwrap();
            let j = i + 14 + s[i + 14..].find('"').unwrap();
            format!(
                "{} uniqueCount = '99999999999{}",
                &s[..i],
                &s[j..].replacen('"', "'", 1)
            )
        });
        let e = read_err(&sneaky, "a.xlsx", &opts());
        assert!(matches!(e, TableError::Workbook { .. }), "{e:?}");
    }

    #[test]
    fn zip_bomb_is_refused() {
        let bomb = deflate_run(20_000); // about 5 MB from 33 KB
        let entries = [Entry {
            name: "xl/worksheets/sheet1.xml".into(),
            method: 8,
            crc: 0,
            size: 5_160_001,
            data: bomb,
        }];
        let zip = build_zip(&entries);
        let mut o = opts();
        o.max_bytes = 100_000; // 1.6 MB unzipped at most
        let e = read_err(&zip, "a.xlsx", &o);
        assert!(
            matches!(e, TableError::Workbook { ref detail, .. } if detail.contains("解压后")),
            "{e:?}"
        );
    }

    #[test]
    fn odd_zip_structures_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let good = std::fs::read(xlsx_fixture(&dir, "a.xlsx", 0)).unwrap();
        // Data in front of the archive shifts every offset.
        let mut prefixed = b"PK\x03\x04junk".to_vec();
        prefixed.extend(&good);
        assert!(precheck_zip(&prefixed, u64::MAX).is_err());
        // Truncated archive: no end-of-directory record.
        assert!(precheck_zip(&good[..good.len() - 30], u64::MAX).is_err());
        assert!(precheck_zip(&good, u64::MAX).is_ok());
        // Encrypted entry flag.
        let mut enc = good.clone();
        let cd = enc.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        enc[cd + 8] |= 1;
        assert!(precheck_zip(&enc, u64::MAX).is_err());
    }
}
