//! Zip pre-check of workbooks before calamine sees them.
//!
//! calamine trusts numbers inside the file before reading the data they describe: an xlsx whose
//! sharedStrings.xml claims uniqueCount="10000000000" makes it reserve 240 GB, and a failed
//! allocation aborts the whole server (catch_unwind cannot stop that). Zip bombs likewise make it
//! chew through gigabytes of XML. So before calamine sees an upload, walk the archive ourselves:
//! inflate every entry (with flate2, as the zip crate does) to measure it, stopping at the limit
//! while inflating, and check shared-string counts and size.

/// Largest accepted ratio of unzipped to zipped size limit (xlsx XML compresses about 10:1).
pub(super) const UNZIP_RATIO: u64 = 16;

/// Most shared strings a workbook may declare; far beyond any real upload.
const MAX_SHARED_STRINGS: u128 = 16_000_000;

/// Largest unzipped shared-strings part: calamine keeps every shared string in memory, so this
/// bounds what a workbook costs before its first row is read (a real million-row roster needs
/// about a third of it).
const MAX_SHARED_STRINGS_BYTES: u64 = 64 * 1024 * 1024;

pub(super) fn precheck_zip(bytes: &[u8], max_unzipped: u64) -> Result<(), String> {
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
        if scanner.is_some() && size > MAX_SHARED_STRINGS_BYTES {
            return Err(format!(
                "共享字符串表解压后超过 {} MiB",
                MAX_SHARED_STRINGS_BYTES / (1024 * 1024)
            ));
        }
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
pub(super) enum InflateError {
    TooBig,
    Corrupt,
}

/// Inflates raw deflate data, streaming the output to `sink` in chunks of at most 64 KiB, and
/// returns the total size. Stops as soon as more than `limit` bytes came out, whatever size the
/// archive declares, so a bomb costs one chunk of memory. A stream that ends before its final
/// block is corrupt (flate2's `Read` adapters would report a clean end).
pub(super) fn inflate(
    input: &[u8],
    limit: u64,
    mut sink: impl FnMut(&[u8]),
) -> Result<u64, InflateError> {
    let mut inflater = flate2::Decompress::new(false);
    let mut out = vec![0u8; 64 * 1024];
    let mut total: u64 = 0;
    loop {
        let (in_before, out_before) = (inflater.total_in(), inflater.total_out());
        let rest = input
            .get(in_before as usize..)
            .ok_or(InflateError::Corrupt)?;
        let status = inflater
            .decompress(rest, &mut out, flate2::FlushDecompress::None)
            .map_err(|_| InflateError::Corrupt)?;
        let produced = (inflater.total_out() - out_before) as usize;
        total += produced as u64;
        if total > limit {
            return Err(InflateError::TooBig);
        }
        sink(&out[..produced]);
        if status == flate2::Status::StreamEnd {
            return Ok(total);
        }
        if produced == 0 && inflater.total_in() == in_before {
            return Err(InflateError::Corrupt);
        }
    }
}
