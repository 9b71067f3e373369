//! CSV/TSV records read as a stream: bytes are decoded chunk by chunk and records are parsed
//! from the decoded text, so a file of any size costs a chunk and a record of memory.
//!
//! RFC 4180 with Excel's leniency for quotes inside unquoted cells. Hand-written rather than the
//! csv crate because the csv crate silently accepts an unclosed quote (swallowing the rest of the
//! file into one cell), counts only LF as a line end (lone-CR files would all be "line 1"), and
//! cannot stop at a cell or column limit mid-record.

use std::io::Read;

use super::decode::TextDecoder;
use super::header::{header_name, is_blank};
use super::{MAX_COLUMNS, TableError};

/// Bytes read at a time.
const CHUNK: usize = 256 * 1024;

/// A source of raw text records (line, cells) in file order.
pub(super) struct Records<'r> {
    input: Box<dyn Read + Send + 'r>,
    decoder: TextDecoder,
    /// Decoded text; records are parsed from `buf[pos..]`.
    buf: String,
    pos: usize,
    /// The input is exhausted and the decoder flushed.
    done: bool,
    /// Physical line at `buf[pos]`.
    line: usize,
    delim: u8,
    file: String,
    max_cell_chars: usize,
    chunk: Vec<u8>,
}

impl<'r> Records<'r> {
    /// `prefix` is the start of the file, already read from `input` (`complete` when it is the
    /// whole file).
    pub(super) fn new(
        prefix: &[u8],
        complete: bool,
        input: Box<dyn Read + Send + 'r>,
        mut decoder: TextDecoder,
        file: &str,
        max_cell_chars: usize,
    ) -> Result<Self, TableError> {
        let mut buf = String::new();
        decoder.decode(prefix, complete, &mut buf)?;
        Ok(Records {
            input,
            decoder,
            buf,
            pos: 0,
            done: complete,
            line: 1,
            delim: b',',
            file: file.to_string(),
            max_cell_chars,
            chunk: Vec::new(),
        })
    }

    pub(super) fn set_delimiter(&mut self, delim: char) {
        self.delim = u8::try_from(delim)
            .ok()
            .filter(u8::is_ascii)
            .expect("the delimiter is a comma or a tab");
    }

    /// Reads until the decoded text holds a complete first non-blank line (or the whole file),
    /// and returns the text read so far, for sniffing the delimiter.
    pub(super) fn head(&mut self) -> Result<&str, TableError> {
        loop {
            let complete_line = self
                .buf
                .split_inclusive(['\r', '\n'])
                .find(|l| !is_blank(l))
                .is_some_and(|l| l.ends_with(['\r', '\n']));
            if complete_line || self.done {
                return Ok(&self.buf);
            }
            self.more()?;
        }
    }

    /// Reads and decodes another chunk onto the buffer, dropping the text already parsed.
    fn more(&mut self) -> Result<(), TableError> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        // A record longer than a chunk is parsed again from its start after each read: growing
        // the reads with it keeps that linear.
        let want = CHUNK.max(self.buf.len());
        self.chunk.resize(want, 0);
        let n = loop {
            match self.input.read(&mut self.chunk) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(TableError::Io {
                        file: self.file.clone(),
                        source,
                    });
                }
            }
        };
        if n == 0 {
            self.done = true;
        }
        self.decoder.decode(&self.chunk[..n], n == 0, &mut self.buf)
    }

    /// The next record and the line it starts on, or `None` at the end of the file. `headers`
    /// name columns in error messages.
    pub(super) fn next_record(
        &mut self,
        headers: &[String],
    ) -> Result<Option<(usize, Vec<String>)>, TableError> {
        loop {
            if self.pos >= self.buf.len() {
                if self.done {
                    return Ok(None);
                }
                self.more()?;
                continue;
            }
            let parsed = parse_record(
                &self.buf[self.pos..],
                self.delim,
                self.done,
                self.line,
                &self.file,
                self.max_cell_chars,
                headers,
            )?;
            match parsed {
                Some((cells, len, lines)) => {
                    let line = self.line;
                    self.pos += len;
                    self.line += lines;
                    return Ok(Some((line, cells)));
                }
                // The record goes on past the text decoded so far.
                None if !self.done => self.more()?,
                None => unreachable!("a record at the end of the file is complete"),
            }
        }
    }
}

/// Parses the record at the start of `text` (starting on line `rec_line`): its cells, the bytes
/// it takes and the line ends in it. `None` when the record may go on past `text` (`eof` false).
#[allow(clippy::too_many_arguments)]
fn parse_record(
    text: &str,
    delim_byte: u8,
    eof: bool,
    rec_line: usize,
    file: &str,
    max_cell_chars: usize,
    headers: &[String],
) -> Result<Option<(Vec<String>, usize, usize)>, TableError> {
    // Delimiters are ASCII (comma or tab), as are quotes and line ends, so the scan can go
    // byte by byte: in UTF-8 an ASCII byte is never part of another character.
    let bytes = text.as_bytes();
    let peek = |pos: usize| text[pos..].chars().next();
    // Whether more text could change how the byte at `pos` (at or past the end) is read.
    let cut = |pos: usize| pos >= bytes.len() && !eof;
    let mut pos = 0usize;
    let mut line = 0usize;
    let width = if headers.is_empty() { 8 } else { headers.len() };
    let mut cells: Vec<String> = Vec::with_capacity(width);
    let mut col = 0usize;
    loop {
        let mut end_of_record = false;
        let too_long = |col: usize| TableError::CellTooLong {
            file: file.to_string(),
            line: rec_line,
            column: col + 1,
            header: header_name(headers, col),
            max: max_cell_chars,
        };
        let cell = if bytes.get(pos) == Some(&b'"') {
            pos += 1;
            let mut cell = String::new();
            let mut chars = 0usize;
            loop {
                let Some(c) = peek(pos) else {
                    if !eof {
                        return Ok(None);
                    }
                    return Err(TableError::UnclosedQuote {
                        file: file.to_string(),
                        line: rec_line,
                        column: col + 1,
                        header: header_name(headers, col),
                    });
                };
                pos += c.len_utf8();
                if c == '"' {
                    if cut(pos) {
                        return Ok(None);
                    }
                    if bytes.get(pos) == Some(&b'"') {
                        pos += 1;
                    } else {
                        break;
                    }
                } else if c == '\r' {
                    if cut(pos) {
                        return Ok(None);
                    }
                    line += 1;
                    if bytes.get(pos) == Some(&b'\n') {
                        pos += 1;
                        cell.push('\r');
                        chars += 1;
                        cell.push('\n');
                        chars += 1;
                        if chars > max_cell_chars {
                            return Err(too_long(col));
                        }
                        continue;
                    }
                } else if c == '\n' {
                    line += 1;
                }
                cell.push(c);
                chars += 1;
                if chars > max_cell_chars {
                    return Err(too_long(col));
                }
            }
            // After the closing quote only padding may precede the delimiter or line end.
            loop {
                match peek(pos) {
                    None if !eof => return Ok(None),
                    None => {
                        end_of_record = true;
                        break;
                    }
                    Some(c) if c as u32 == u32::from(delim_byte) => {
                        pos += 1;
                        break;
                    }
                    Some('\r') | Some('\n') => {
                        if bytes[pos] == b'\r' && cut(pos + 1) {
                            return Ok(None);
                        }
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
                            header: header_name(headers, col),
                        });
                    }
                }
            }
            cell
        } else {
            // An unquoted cell runs to the delimiter or line end; quotes inside are kept.
            let rest = &bytes[pos..];
            let found = rest
                .iter()
                .position(|&b| b == delim_byte || b == b'\r' || b == b'\n');
            let len = found.unwrap_or(rest.len());
            let cell = &text[pos..pos + len];
            // A character takes at least one byte, so only a long cell needs counting. Checked
            // before waiting for the rest of the cell: it can only grow.
            if cell.len() > max_cell_chars && cell.chars().count() > max_cell_chars {
                return Err(too_long(col));
            }
            if found.is_none() && !eof {
                return Ok(None);
            }
            pos += len;
            match bytes.get(pos) {
                None => end_of_record = true,
                Some(&b) if b == delim_byte => pos += 1,
                Some(&b) => {
                    if b == b'\r' && cut(pos + 1) {
                        return Ok(None);
                    }
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
            return Ok(Some((cells, pos, line)));
        }
    }
}

/// The position after the line end (CRLF, LF or a lone CR) at `pos`.
fn after_line_end(bytes: &[u8], pos: usize) -> usize {
    if bytes[pos] == b'\r' && bytes.get(pos + 1) == Some(&b'\n') {
        pos + 2
    } else {
        pos + 1
    }
}

/// Tab or comma, judged from the first non-blank line.
pub(super) fn sniff_delimiter(text: &str) -> Option<char> {
    let first = text.split(['\r', '\n']).find(|l| !is_blank(l))?;
    if first.contains('\t') {
        Some('\t')
    } else if first.contains(',') {
        Some(',')
    } else {
        None
    }
}
