//! Text decoding: the encoding is judged from a prefix of the file (BOM, valid UTF-8, else
//! GB18030), then the file is decoded as a stream, strictly (no replacement characters: a
//! silently replaced character in a name or phone would be worse than an error).

use super::{Encoding, TableError};

/// How much of a text file is looked at to judge its encoding.
pub(super) const SNIFF_BYTES: usize = 4 * 1024 * 1024;

/// The encoding of a file whose first bytes are `prefix` (`complete` when that is the whole
/// file). Detection order: BOM, valid UTF-8, GB18030. `Err` when the prefix is damaged UTF-8.
pub(super) fn detect(
    prefix: &[u8],
    complete: bool,
    forced: Option<Encoding>,
    file: &str,
) -> Result<Detected, TableError> {
    let known = |encoding| Detected {
        encoding,
        guessed: false,
        min_error_line: 1,
    };
    Ok(match forced {
        Some(e) => known(e),
        None if prefix.starts_with(b"\xEF\xBB\xBF") => known(Encoding::Utf8),
        None if prefix.starts_with(b"\xFF\xFE") => known(Encoding::Utf16Le),
        None if prefix.starts_with(b"\xFE\xFF") => known(Encoding::Utf16Be),
        None => match std::str::from_utf8(prefix) {
            Ok(_) => known(Encoding::Utf8),
            // A character cut by the end of the prefix, not by the end of the file.
            Err(e) if e.error_len().is_none() && !complete => known(Encoding::Utf8),
            Err(e) => {
                let valid = &prefix[..e.valid_up_to()];
                // GB18030 decodes almost any byte soup, so a UTF-8 file with one damaged byte
                // would silently become mojibake. GBK text essentially never forms several
                // valid UTF-8 multi-byte characters before its first error, so if it did, the
                // file is damaged UTF-8.
                let non_ascii = std::str::from_utf8(valid)
                    .map(|s| s.chars().filter(|c| !c.is_ascii()).count())
                    .unwrap_or(0);
                if non_ascii >= 3 {
                    return Err(TableError::Decode {
                        file: file.to_string(),
                        line: line_at(valid),
                        encoding: Encoding::Utf8,
                    });
                }
                Detected {
                    encoding: Encoding::Gb18030,
                    guessed: true,
                    min_error_line: line_at(valid),
                }
            }
        },
    })
}

pub(super) struct Detected {
    pub encoding: Encoding,
    /// GB18030 chosen because the file is not UTF-8: a decoding error then means the encoding
    /// is unknown rather than that the file is damaged.
    pub guessed: bool,
    /// A decoding error is reported at this line at least (where UTF-8 failed).
    pub min_error_line: usize,
}

/// Strict streaming decoder that knows the line it has reached, for error messages.
pub(super) struct TextDecoder {
    detected: Detected,
    decoder: encoding_rs::Decoder,
    /// Bytes of the encoding's own BOM still to skip at the start of the stream.
    bom_left: &'static [u8],
    lines: LineCounter,
    file: String,
}

impl TextDecoder {
    pub(super) fn new(detected: Detected, file: &str) -> Self {
        let (enc, bom): (&'static encoding_rs::Encoding, &'static [u8]) = match detected.encoding {
            Encoding::Utf8 => (encoding_rs::UTF_8, b"\xEF\xBB\xBF"),
            Encoding::Utf16Le => (encoding_rs::UTF_16LE, b"\xFF\xFE"),
            Encoding::Utf16Be => (encoding_rs::UTF_16BE, b"\xFE\xFF"),
            Encoding::Gb18030 => (encoding_rs::GB18030, b""),
        };
        TextDecoder {
            detected,
            decoder: enc.new_decoder_without_bom_handling(),
            bom_left: bom,
            lines: LineCounter::default(),
            file: file.to_string(),
        }
    }

    /// Decodes `src` onto the end of `dst`; `last` when `src` ends the file.
    pub(super) fn decode(
        &mut self,
        mut src: &[u8],
        last: bool,
        dst: &mut String,
    ) -> Result<(), TableError> {
        // The BOM is skipped only when the stream starts with it (it may arrive split).
        while let Some((&want, rest)) = self.bom_left.split_first() {
            match src.first() {
                Some(&b) if b == want => {
                    src = &src[1..];
                    self.bom_left = rest;
                }
                Some(_) => self.bom_left = b"",
                None if last => self.bom_left = b"",
                None => return Ok(()),
            }
        }
        loop {
            let start = dst.len();
            if let Some(need) = self
                .decoder
                .max_utf8_buffer_length_without_replacement(src.len())
            {
                dst.reserve(need);
            }
            let (result, read) = self
                .decoder
                .decode_to_string_without_replacement(src, dst, last);
            self.lines.count(&dst.as_bytes()[start..]);
            src = &src[read..];
            match result {
                encoding_rs::DecoderResult::InputEmpty => return Ok(()),
                encoding_rs::DecoderResult::OutputFull => dst.reserve(src.len() * 3 + 16),
                encoding_rs::DecoderResult::Malformed(_, _) => {
                    let line = self.lines.line.max(self.detected.min_error_line);
                    return Err(if self.detected.guessed {
                        TableError::UnknownEncoding {
                            file: self.file.clone(),
                            line,
                        }
                    } else {
                        TableError::Decode {
                            file: self.file.clone(),
                            line,
                            encoding: self.detected.encoding,
                        }
                    });
                }
            }
        }
    }
}

/// Counts lines across chunks; CRLF, LF and lone CR each end a line.
struct LineCounter {
    /// 1-based line of the next byte.
    line: usize,
    prev_cr: bool,
}

impl Default for LineCounter {
    fn default() -> Self {
        LineCounter {
            line: 1,
            prev_cr: false,
        }
    }
}

impl LineCounter {
    fn count(&mut self, text: &[u8]) {
        let Some(&first) = text.first() else {
            return;
        };
        // Most text has no CR: counting LFs alone vectorises.
        if !text.contains(&b'\r') {
            let lf = text.iter().filter(|&&b| b == b'\n').count();
            self.line += lf - usize::from(self.prev_cr && first == b'\n');
            self.prev_cr = false;
            return;
        }
        for &b in text {
            match b {
                b'\r' => self.line += 1,
                b'\n' if !self.prev_cr => self.line += 1,
                _ => {}
            }
            self.prev_cr = b == b'\r';
        }
    }
}

/// 1-based line number of the position just after `prefix`; CRLF, LF and lone CR each end a line.
pub(super) fn line_at(prefix: &[u8]) -> usize {
    let mut counter = LineCounter::default();
    counter.count(prefix);
    counter.line
}
