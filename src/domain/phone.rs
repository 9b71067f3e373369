//! Phone numbers of roster members (服务对象代表): turning the messy cells that arrive from
//! Excel/WPS into one canonical form, which is both the stored value and the duplicate key.
//!
//! Only mainland numbers are accepted (mobile, or landline with area code): the 12345 hotline
//! dials nothing else. Parsing never guesses digits: a number that cannot be read with certainty
//! is rejected with a message, in 简体中文, that tells office staff how to fix the cell.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Cells longer than this are rejected before any other work, so a pasted paragraph cannot make
/// an import slow; two numbers with extensions and brackets fit well within it.
pub const MAX_CELL_CHARS: usize = 200;

/// Government switchboards use 3–4 digit extensions; 6 leaves room without accepting a second
/// number glued onto the first.
const MAX_EXTENSION_DIGITS: usize = 6;

/// How much of a cell an error message quotes: enough to find it, short enough for a table row.
const QUOTE_CHARS: usize = 40;

/// Words people type into a phone cell to say there is no number.
const NO_NUMBER_WORDS: &[&str] = &[
    "无", "暂无", "没有", "空", "未知", "不详", "null", "none", "nil", "n/a", "na",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PhoneKind {
    Mobile,
    Landline,
}

impl PhoneKind {
    pub fn label(self) -> &'static str {
        match self {
            PhoneKind::Mobile => "手机",
            PhoneKind::Landline => "固定电话",
        }
    }
}

/// A valid mainland phone number. Only the canonical text is stored, so equality, ordering and
/// hashing are exactly those of the duplicate key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Phone {
    canonical: String,
}

impl Phone {
    fn mobile(digits: &str) -> Phone {
        Phone {
            canonical: digits.to_owned(),
        }
    }

    fn landline(area: &str, local: &str, extension: Option<&str>) -> Phone {
        let mut canonical = format!("{area}-{local}");
        if let Some(ext) = extension {
            canonical.push('-');
            canonical.push_str(ext);
        }
        Phone { canonical }
    }

    pub fn kind(&self) -> PhoneKind {
        // Mobiles start with 1 and landlines with the 0 of the area code, so the first digit decides.
        if self.canonical.starts_with('0') {
            PhoneKind::Landline
        } else {
            PhoneKind::Mobile
        }
    }

    /// Canonical text, the storage and duplicate key: mobile "13912345678";
    /// landline "0915-3212345", with extension "0915-3212345-801".
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// The canonical text, moved out.
    pub fn into_canonical(self) -> String {
        self.canonical
    }

    /// The canonical text packed into a number, a cheap duplicate key: equal for equal phones
    /// and different for different ones (see [`pack_canonical`]).
    pub fn key(&self) -> u128 {
        pack_canonical(&self.canonical).expect("canonical text is at most 20 digits and dashes")
    }

    /// Parses a canonical string back (for values read from storage); None if not canonical.
    pub fn from_canonical(s: &str) -> Option<Phone> {
        if is_mobile(s) {
            return Some(Phone::mobile(s));
        }
        let mut parts = s.split('-');
        let area = parts.next()?;
        let local = parts.next()?;
        let extension = parts.next();
        if parts.next().is_some() || !is_valid_area_code(area) || !is_valid_local(local) {
            return None;
        }
        if extension.is_some_and(|e| !is_valid_extension(e)) {
            return None;
        }
        Some(Phone::landline(area, local, extension))
    }

    /// The area code of a landline, e.g. "0915".
    pub fn area_code(&self) -> Option<&str> {
        self.landline_parts().map(|(area, _, _)| area)
    }

    /// The extension of a landline, e.g. "801".
    pub fn extension(&self) -> Option<&str> {
        self.landline_parts().and_then(|(_, _, ext)| ext)
    }

    fn landline_parts(&self) -> Option<(&str, &str, Option<&str>)> {
        if self.kind() == PhoneKind::Mobile {
            return None;
        }
        let mut parts = self.canonical.split('-');
        let area = parts.next()?;
        let local = parts.next()?;
        Some((area, local, parts.next()))
    }

    /// Masked for display: mobile "139****5678"; landline keeps the area code and the last four
    /// digits of the local number: "0915-***2345" (extension dropped).
    pub fn masked(&self) -> String {
        match self.landline_parts() {
            None => format!("{}****{}", &self.canonical[..3], &self.canonical[7..]),
            Some((area, local, _)) => {
                // Locals are 7–8 ASCII digits, so byte offsets are character offsets.
                let keep = local.len() - 4;
                format!("{area}-{}{}", "*".repeat(keep), &local[keep..])
            }
        }
    }

    /// Digits for a tel: link, e.g. "13912345678" or "09153212345,801" (comma = pause before
    /// the extension).
    pub fn dial(&self) -> String {
        match self.landline_parts() {
            None => self.canonical.clone(),
            Some((area, local, None)) => format!("{area}{local}"),
            Some((area, local, Some(ext))) => format!("{area}{local},{ext}"),
        }
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical)
    }
}

/// Serialised as the canonical text, the same value storage keeps.
impl Serialize for Phone {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.canonical)
    }
}

/// Accepts only canonical text: lenient parsing belongs to imports, where errors reach a person.
impl<'de> Deserialize<'de> for Phone {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Phone, D::Error> {
        let s = String::deserialize(deserializer)?;
        Phone::from_canonical(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("“{}”不是规范格式的电话号码", quote(&s)))
        })
    }
}

/// The numbers of one roster cell: a primary number and maybe an alternate one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneCell {
    pub primary: Phone,
    pub alternate: Option<Phone>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("没有填写电话号码,请填写手机号或带区号的固定电话")]
    Missing,
    #[error("单元格内容超过 {limit} 个字符,不像电话号码:请只填写号码,最多两个,用 / 隔开")]
    TooLong { limit: usize },
    #[error(
        "“{text}”是被 Excel 显示成科学计数法的号码,最后几位数字已经丢失,无法还原:\
         请把该列设置为“文本”格式,再重新录入完整号码"
    )]
    ScientificNotation { text: String },
    #[error("“{text}”是打了码的号码,无法拨打:请向提供名单的单位索要完整号码")]
    Masked { text: String },
    #[error(
        "“{number}”中有无法识别的内容“{found}”:号码只能包含数字、空格、短横线和括号,\
         分机号用“转”标出,例如 0915-3212345转801"
    )]
    InvalidCharacters { number: String, found: String },
    #[error("一个单元格最多填写两个号码(主号码和备用号码),这里有 {count} 个:请删去多余的号码")]
    TooManyNumbers { count: usize },
    #[error("这里填写了两个号码,只能填写一个:请删去多余的号码")]
    NotSingle,
    #[error("“{number}”里没有电话号码,请填写手机号或带区号的固定电话")]
    NoNumber { number: String },
    #[error("“{number}”不是中国大陆号码:只能填写手机号、带区号的固定电话,或 +86 开头的号码")]
    CountryCode { number: String },
    #[error("“{number}”有 {len} 位,手机号应为 11 位:请核对号码{hint}", hint = length_hint(*len, 11))]
    MobileLength { number: String, len: usize },
    #[error("“{number}”不是有效的手机号:手机号以 13–19 开头,请核对号码")]
    MobilePrefix { number: String },
    #[error(
        "“{number}”的区号“{code}”无效:区号是 010、020–029,或以 0 开头的四位数(如安康 0915),\
         请核对号码"
    )]
    AreaCode { number: String, code: String },
    #[error(
        "“{number}”的本地号码有 {len} 位,固定电话的本地号码应为 7–8 位:请核对号码{hint}",
        hint = local_length_hint(*len)
    )]
    LocalLength { number: String, len: usize },
    #[error("“{number}”的本地号码以 0 或 1 开头,这样的固定电话不存在:请核对号码和区号")]
    LocalPrefix { number: String },
    #[error(
        "“{number}”有 {len} 位,既不是 11 位手机号,也不是带区号的固定电话:请核对号码{hint}",
        hint = length_hint(*len, 12)
    )]
    Length { number: String, len: usize },
    #[error(
        "“{number}”没有区号:请在表格里补上区号(如 0915-3212345),\
         或导入时用 --area-code 指定默认区号(如 --area-code 0915)"
    )]
    NeedAreaCode { number: String },
    #[error(
        "默认区号“{code}”无效:区号是 010、020–029,或以 0 开头的四位数(如安康 0915),\
         请修改 --area-code"
    )]
    DefaultAreaCode { code: String },
    #[error(
        "“{number}”像是丢了开头 0 的固定电话({suggestion}),通常是 Excel 把号码存成了数字:\
         请把该列设置为“文本”格式,再重新录入完整号码"
    )]
    LeadingZeroLost { number: String, suggestion: String },
    #[error("分机号“{text}”无效:分机号应为 1–6 位数字,例如 0915-3212345转801")]
    Extension { text: String },
    #[error("“{number}”是手机号,手机号没有分机号:请删去分机号")]
    ExtensionOnMobile { number: String },
    #[error("“{number}”看不出哪几位是分机号:请用“转”标出分机号,例如 0915-3212345转801")]
    AmbiguousExtension { number: String },
}

/// Too many digits usually means two numbers written without a separator; a short number
/// after a landline is usually its extension.
fn length_hint(len: usize, max: usize) -> &'static str {
    if len > max {
        ";如果是两个号码,请用 / 隔开"
    } else if len <= MAX_EXTENSION_DIGITS {
        ";如果是分机号,请用“转”写在号码后面,例如 0915-3212345转801"
    } else {
        ""
    }
}

/// A landline with too many digits usually has an extension that is not marked.
fn local_length_hint(len: usize) -> &'static str {
    if len > 8 {
        ";如果带分机号,请用“转”标出,例如 0915-3212345转801"
    } else {
        ""
    }
}

/// Parses a roster cell holding one number, or two (primary and alternate) separated by
/// `/`, `、`, `;`, `；`, `,`, `，` or a line break.
///
/// A bare local number (7–8 digits) takes the area code of a landline before it in the same
/// cell, else `default_area_code`, and is rejected without either.
pub fn parse_phone_cell(
    cell: &str,
    default_area_code: Option<&str>,
) -> Result<PhoneCell, PhoneError> {
    // Checked up front, so a wrong --area-code fails on the first row, not only on bare numbers.
    let default_area = match default_area_code.map(str::trim) {
        Some(code) if !is_valid_area_code(code) => {
            return Err(PhoneError::DefaultAreaCode { code: quote(code) });
        }
        other => other,
    };
    if let Some(primary) = fast_mobile(cell) {
        return Ok(PhoneCell {
            primary,
            alternate: None,
        });
    }
    parse_cell_in_full(cell, default_area)
}

/// The common cell, one mobile written with plain spaces or dashes and maybe `+86`
/// ("13912345678", "139 1234 5678", "+86-139-1234-5678"), read without the allocations of the
/// full parser. `None` for every other shape, which then goes to the full parser; on every
/// cell this accepts, the full parser gives the same phone (a proptest checks it).
fn fast_mobile(cell: &str) -> Option<Phone> {
    let text = cell.trim_matches(' ');
    if text.len() > MAX_CELL_CHARS {
        return None;
    }
    let (plus, rest) = match text.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    // "+86" and 11 digits at most.
    let mut digits = [0u8; 13];
    let mut len = 0;
    for &b in rest.as_bytes() {
        match b {
            b'0'..=b'9' => {
                *digits.get_mut(len)? = b;
                len += 1;
            }
            b' ' | b'-' => {}
            _ => return None,
        }
    }
    let national = match (plus, &digits[..len]) {
        (false, national) if national.len() == 11 => national,
        (true, [b'8', b'6', national @ ..]) if national.len() == 11 => national,
        _ => return None,
    };
    let national = std::str::from_utf8(national).ok()?;
    is_mobile(national).then(|| Phone::mobile(national))
}

/// `parse_phone_cell` without the fast path; `default_area` is already checked.
fn parse_cell_in_full(cell: &str, default_area: Option<&str>) -> Result<PhoneCell, PhoneError> {
    let text = prepare(cell)?;
    let parts: Vec<&str> = text
        .split(is_list_separator)
        .map(str::trim)
        .filter(|p| !p.chars().all(is_group_separator))
        .collect();
    match parts.as_slice() {
        [] => Err(PhoneError::Missing),
        [one] => Ok(PhoneCell {
            primary: parse_part(one, default_area)?,
            alternate: None,
        }),
        [first, second] => {
            let primary = parse_part(first, default_area)?;
            // "0915-3212345/3212346": the writer meant the same area code for both.
            let area = primary.area_code().or(default_area);
            let alternate = parse_part(second, area)?;
            let alternate = (alternate != primary).then_some(alternate);
            Ok(PhoneCell { primary, alternate })
        }
        more => Err(PhoneError::TooManyNumbers { count: more.len() }),
    }
}

/// Parses exactly one number.
pub fn parse_phone(text: &str, default_area_code: Option<&str>) -> Result<Phone, PhoneError> {
    let cell = parse_phone_cell(text, default_area_code)?;
    match cell.alternate {
        None => Ok(cell.primary),
        Some(_) => Err(PhoneError::NotSingle),
    }
}

/// The longest text [`pack_canonical`] packs: 12^35 < 2^126.
const MAX_PACKED: usize = 35;

/// Packs text of digits and dashes, at most `MAX_PACKED` characters (canonical phones have at
/// most 20: area 4, local 8, extension 6, two dashes), into a number: read as base-12 digits
/// 1–11 (never 0, so lengths cannot alias), different texts give different numbers. `None` for
/// other text.
pub fn pack_canonical(s: &str) -> Option<u128> {
    if s.len() > MAX_PACKED {
        return None;
    }
    s.bytes().try_fold(0u128, |key, b| {
        let digit = match b {
            b'0'..=b'9' => b - b'0' + 1,
            b'-' => 11,
            _ => return None,
        };
        Some(key * 12 + u128::from(digit))
    })
}

/// The text [`pack_canonical`] packed into `key`; `None` for a number it never gives.
pub fn unpack_canonical(mut key: u128) -> Option<String> {
    let mut text = Vec::new();
    while key > 0 {
        text.push(match key % 12 {
            0 => return None,
            11 => b'-',
            digit => b'0' + digit as u8 - 1,
        });
        key /= 12;
    }
    if text.len() > MAX_PACKED {
        return None;
    }
    text.reverse();
    String::from_utf8(text).ok()
}

/// Masks a canonical phone string (for values read from storage); garbage in → "****".
pub fn mask_canonical(s: &str) -> String {
    Phone::from_canonical(s).map_or_else(|| "****".to_owned(), |p| p.masked())
}

/// Whether `code` is a mainland area code: 010, 020–029, or 0 followed by three digits, the
/// first of them 3–9. Unassigned codes of that shape pass: there is no authoritative list here.
pub fn is_valid_area_code(code: &str) -> bool {
    matches!(
        code.as_bytes(),
        [b'0', b'1', b'0']
            | [b'0', b'2', b'0'..=b'9']
            | [b'0', b'3'..=b'9', b'0'..=b'9', b'0'..=b'9']
    )
}

fn is_mobile(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]) && all_digits(s)
}

fn is_valid_local(s: &str) -> bool {
    (7..=8).contains(&s.len()) && !s.starts_with(['0', '1']) && all_digits(s)
}

fn is_valid_extension(s: &str) -> bool {
    (1..=MAX_EXTENSION_DIGITS).contains(&s.len()) && all_digits(s)
}

fn all_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// Characters that Excel and WPS leave in cells without showing them.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}'
    )
}

fn is_blank(c: char) -> bool {
    c.is_whitespace() || is_invisible(c)
}

fn is_list_separator(c: char) -> bool {
    matches!(c, '/' | '、' | ';' | ',' | '\n')
}

/// Characters people put between digit groups of one number.
fn is_group_separator(c: char) -> bool {
    matches!(c, ' ' | '-' | '.' | '(' | ')' | ':')
}

/// Trims, bounds, normalises and screens a whole cell; what remains is split into numbers.
fn prepare(cell: &str) -> Result<String, PhoneError> {
    let trimmed = cell.trim_matches(is_blank);
    if trimmed.is_empty() {
        return Err(PhoneError::Missing);
    }
    if trimmed.chars().nth(MAX_CELL_CHARS).is_some() {
        return Err(PhoneError::TooLong {
            limit: MAX_CELL_CHARS,
        });
    }
    let normalised = normalise(trimmed);
    let text = unwrap_text_markers(&normalised);
    let lower = text.to_ascii_lowercase();
    if text.is_empty() || NO_NUMBER_WORDS.contains(&lower.as_str()) {
        return Err(PhoneError::Missing);
    }
    // Before splitting: "1,39E+10" would otherwise split at its decimal comma.
    if looks_scientific(text) {
        return Err(PhoneError::ScientificNotation { text: quote(text) });
    }
    if text.contains("**") || lower.contains("xxx") || text.contains("××") {
        return Err(PhoneError::Masked { text: quote(text) });
    }
    Ok(text.to_owned())
}

/// Maps full-width forms, the many dashes, spaces and brackets to their ASCII forms and drops
/// invisible characters, so later steps see one spelling of each. Letters keep their case
/// because errors quote this text.
fn normalise(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = match c {
            // Full-width ASCII (０-９, （）, －, ＋, ，, ；, Ｅ ...) sits at a fixed offset.
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        };
        let c = match c {
            '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}' => '\n',
            c if is_invisible(c) => continue,
            c if c.is_whitespace() => ' ',
            '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE58}' | '\u{FE63}' => '-',
            '[' | '【' | '〔' => '(',
            ']' | '】' | '〕' => ')',
            '。' | '·' => '.',
            '\u{201C}' | '\u{201D}' => '"',
            '\u{2018}' | '\u{2019}' => '\'',
            c => c,
        };
        out.push(c);
    }
    out
}

/// Removes what spreadsheets add to keep a number as text: `="…"`, surrounding quotes, a
/// leading apostrophe.
fn unwrap_text_markers(s: &str) -> &str {
    let s = s.trim();
    let s = s
        .strip_prefix("=\"")
        .or_else(|| s.strip_prefix('"'))
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(s)
        .trim();
    s.strip_prefix('\'').unwrap_or(s).trim()
}

/// Excel's display of a long number: "1.39123E+10", "1.39123e10", "1,39E+10".
fn looks_scientific(text: &str) -> bool {
    let s: String = text.chars().filter(|&c| c != ' ').collect();
    let Some((mantissa, exponent)) = s.split_once(['e', 'E']) else {
        return false;
    };
    let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    let (whole, fraction) = mantissa.split_once(['.', ',']).unwrap_or((mantissa, ""));
    !whole.is_empty()
        && all_digits(whole)
        && all_digits(fraction)
        && !exponent.is_empty()
        && all_digits(exponent)
}

/// Quotes user text in an error message, bounded and on one line.
fn quote(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(QUOTE_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().nth(QUOTE_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// One number as written, normalised and split into its parts.
struct Scanned {
    plus: bool,
    digits: String,
    /// Offsets into `digits` where a `-` separated two digit groups; only there can a `-`
    /// introduce an extension.
    dashes: Vec<usize>,
    extension: Option<String>,
}

fn parse_part(part: &str, default_area: Option<&str>) -> Result<Phone, PhoneError> {
    let number = quote(part);
    if looks_scientific(part) {
        return Err(PhoneError::ScientificNotation { text: number });
    }
    let scanned = scan(strip_float_suffix(part), &number)?;
    if scanned.digits.is_empty() {
        return Err(PhoneError::NoNumber { number });
    }
    resolve(&scanned, default_area, &number)
}

/// "13912345678.0" is how a numeric Excel column comes out of some exports; only an all-zero
/// fraction after a plain digit run is dropped, so "0915.3212345" keeps its dot as a separator.
fn strip_float_suffix(part: &str) -> &str {
    match part.split_once('.') {
        Some((whole, zeros))
            if !whole.is_empty()
                && all_digits(whole)
                && !zeros.is_empty()
                && zeros.bytes().all(|b| b == b'0') =>
        {
            whole
        }
        _ => part,
    }
}

/// Finds where an extension marker starts and how long it is: 转, 分机, 分机号, #, and the
/// words x, ext, extn, extension (whole words only, so "fax" is junk, not an extension).
fn find_extension_marker(part: &str) -> Option<(usize, usize)> {
    let mut i = 0;
    while let Some(c) = part[i..].chars().next() {
        let rest = &part[i..];
        if let Some(marker) = ["分机号", "分机", "转", "#"]
            .into_iter()
            .find(|m| rest.starts_with(m))
        {
            return Some((i, marker.len()));
        }
        if c.is_ascii_alphabetic() {
            let word_len = rest
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(rest.len());
            let word = rest[..word_len].to_ascii_lowercase();
            if matches!(word.as_str(), "x" | "ext" | "extn" | "extension") {
                return Some((i, word_len));
            }
            i += word_len;
        } else {
            i += c.len_utf8();
        }
    }
    None
}

fn scan(part: &str, number: &str) -> Result<Scanned, PhoneError> {
    let (main, extension) = match find_extension_marker(part) {
        Some((at, len)) => (&part[..at], Some(extension_digits(&part[at + len..])?)),
        None => (part, None),
    };
    let mut scanned = Scanned {
        plus: false,
        digits: String::new(),
        dashes: Vec::new(),
        extension,
    };
    let mut junk: Vec<String> = Vec::new();
    let mut dash_pending = false;
    let mut last_was_junk = false;
    for c in main.chars() {
        let is_junk = match c {
            '0'..='9' => {
                if dash_pending && !scanned.digits.is_empty() {
                    scanned.dashes.push(scanned.digits.len());
                }
                dash_pending = false;
                scanned.digits.push(c);
                false
            }
            '-' => {
                dash_pending = true;
                false
            }
            c if is_group_separator(c) => false,
            '+' if !scanned.plus && scanned.digits.is_empty() => {
                scanned.plus = true;
                false
            }
            _ => true,
        };
        if is_junk {
            match junk.last_mut() {
                Some(run) if last_was_junk => run.push(c),
                _ => junk.push(c.to_string()),
            }
        }
        last_was_junk = is_junk;
    }
    if !junk.is_empty() {
        return Err(PhoneError::InvalidCharacters {
            number: number.to_owned(),
            found: quote(&junk.join("、")),
        });
    }
    Ok(scanned)
}

/// The digits after an extension marker: "转801", "ext. 801", "转分机801", "#801#".
fn extension_digits(raw: &str) -> Result<String, PhoneError> {
    let mut ext = raw;
    loop {
        let trimmed = ext.trim_start_matches(|c| is_group_separator(c) || c == '#');
        let trimmed = ["分机号", "分机"]
            .into_iter()
            .find_map(|m| trimmed.strip_prefix(m))
            .unwrap_or(trimmed);
        if trimmed.len() == ext.len() {
            break;
        }
        ext = trimmed;
    }
    let ext = ext.trim_end_matches(|c| is_group_separator(c) || c == '#');
    if is_valid_extension(ext) {
        Ok(ext.to_owned())
    } else {
        Err(PhoneError::Extension {
            text: quote(raw.trim()),
        })
    }
}

fn resolve(
    scanned: &Scanned,
    default_area: Option<&str>,
    number: &str,
) -> Result<Phone, PhoneError> {
    let digits = scanned.digits.as_str();
    let dashes = scanned.dashes.as_slice();
    let ext = scanned.extension.as_deref();
    let country_code = if scanned.plus {
        if !digits.starts_with("86") {
            return Err(PhoneError::CountryCode {
                number: number.to_owned(),
            });
        }
        Some(2)
    } else if digits.starts_with("0086") {
        Some(4)
    } else {
        None
    };
    if let Some(skip) = country_code {
        let (national, dashes) = after_country_code(digits, dashes, skip);
        return with_national_prefix(&national, &dashes, ext, number);
    }
    if digits.starts_with("00") {
        return Err(PhoneError::CountryCode {
            number: number.to_owned(),
        });
    }
    // A bare "86" is only a country code when what follows is a complete number; a local
    // number is at most 8 digits, so a local number starting with 86 is never eaten.
    if digits.starts_with("86") && digits.len() > 8 {
        let (national, dashes) = after_country_code(digits, dashes, 2);
        if let Ok(phone) = with_national_prefix(&national, &dashes, ext, number) {
            return Ok(phone);
        }
    }
    match digits.as_bytes()[0] {
        b'1' => mobile(digits, ext, number),
        b'0' => with_trunk_zero(digits, dashes, ext, number),
        _ => local_only(digits, dashes, ext, default_area, number),
    }
}

/// The national number after a country code, with the 0 of the area code put back: written
/// internationally, "+86 915 3212345" is 0915-3212345 and "+86 10 62345678" is 010-62345678
/// (no mobile starts with 10).
fn after_country_code(digits: &str, dashes: &[usize], skip: usize) -> (String, Vec<usize>) {
    let rest = &digits[skip..];
    let add_zero = match rest.as_bytes() {
        [b'0', ..] | [] => false,
        [b'1', b'0', ..] => true,
        [b'1', ..] => false,
        _ => true,
    };
    let national = if add_zero {
        format!("0{rest}")
    } else {
        rest.to_owned()
    };
    let dashes = dashes
        .iter()
        .filter(|&&p| p > skip)
        .map(|&p| p - skip + usize::from(add_zero))
        .collect();
    (national, dashes)
}

/// A national number that must be complete: a mobile, or a landline with its area code.
fn with_national_prefix(
    national: &str,
    dashes: &[usize],
    ext: Option<&str>,
    number: &str,
) -> Result<Phone, PhoneError> {
    match national.as_bytes().first() {
        None => Err(PhoneError::NoNumber {
            number: number.to_owned(),
        }),
        Some(b'1') => mobile(national, ext, number),
        _ => with_trunk_zero(national, dashes, ext, number),
    }
}

fn mobile(digits: &str, ext: Option<&str>, number: &str) -> Result<Phone, PhoneError> {
    let number = number.to_owned();
    if ext.is_some() {
        return Err(PhoneError::ExtensionOnMobile { number });
    }
    if digits.len() != 11 {
        return Err(PhoneError::MobileLength {
            number,
            len: digits.len(),
        });
    }
    if !is_mobile(digits) {
        return Err(PhoneError::MobilePrefix { number });
    }
    Ok(Phone::mobile(digits))
}

/// Digits starting with 0: a landline with its area code, or a mobile dialled with a leading 0
/// (the old long-distance habit; no area code starts 013–019, so this cannot eat a landline).
fn with_trunk_zero(
    digits: &str,
    dashes: &[usize],
    ext: Option<&str>,
    number: &str,
) -> Result<Phone, PhoneError> {
    let b = digits.as_bytes();
    let area_len = match (b.get(1), b.get(2)) {
        (Some(b'1'), Some(b'0')) | (Some(b'2'), _) => 3,
        (Some(b'3'..=b'9'), _) => 4,
        (Some(b'0'), _) => {
            return Err(PhoneError::CountryCode {
                number: number.to_owned(),
            });
        }
        (Some(b'1'), _) if digits.len() == 12 && ext.is_none() && is_mobile(&digits[1..]) => {
            return Ok(Phone::mobile(&digits[1..]));
        }
        (Some(b'1'), _) => {
            return Err(PhoneError::AreaCode {
                number: number.to_owned(),
                code: digits.chars().take(3).collect(),
            });
        }
        _ => 1,
    };
    if digits.len() < area_len {
        return Err(PhoneError::LocalLength {
            number: number.to_owned(),
            len: 0,
        });
    }
    let (local, ext) = split_local(digits, area_len, dashes, ext, number)?;
    Ok(Phone::landline(&digits[..area_len], local, ext))
}

/// Digits starting 2–9: a local number without area code, or something broken.
fn local_only(
    digits: &str,
    dashes: &[usize],
    ext: Option<&str>,
    default_area: Option<&str>,
    number: &str,
) -> Result<Phone, PhoneError> {
    let len = digits.len();
    if (7..=8).contains(&len) || dash_extensions(digits, 0, dashes).next().is_some() {
        let Some(area) = default_area else {
            return Err(PhoneError::NeedAreaCode {
                number: number.to_owned(),
            });
        };
        let (local, ext) = split_local(digits, 0, dashes, ext, number)?;
        return Ok(Phone::landline(area, local, ext));
    }
    // 9–11 digits that become a landline with a 0 in front: Excel dropped the 0. Only said,
    // never fixed, because the same digits may be a typo. 400/800 numbers are service lines.
    if (9..=11).contains(&len)
        && !digits.starts_with("400")
        && !digits.starts_with("800")
        && let Ok(phone) = with_trunk_zero(&format!("0{digits}"), &[], None, number)
    {
        return Err(PhoneError::LeadingZeroLost {
            number: number.to_owned(),
            suggestion: phone.canonical,
        });
    }
    Err(PhoneError::Length {
        number: number.to_owned(),
        len,
    })
}

/// Dashes that end a complete local number (7–8 digits after `start`) and are followed by
/// more digits: those digits can only be an extension, as in "0915-3212345-801".
fn dash_extensions<'a>(
    digits: &'a str,
    start: usize,
    dashes: &'a [usize],
) -> impl Iterator<Item = usize> + 'a {
    dashes
        .iter()
        .copied()
        .filter(move |&p| p > start && (7..=8).contains(&(p - start)) && p < digits.len())
}

/// Splits what follows the area code (from `start`) into the local number and the extension.
fn split_local<'a>(
    digits: &'a str,
    start: usize,
    dashes: &[usize],
    marked_ext: Option<&'a str>,
    number: &str,
) -> Result<(&'a str, Option<&'a str>), PhoneError> {
    let (local, ext) = if marked_ext.is_some() {
        (&digits[start..], marked_ext)
    } else {
        let mut candidates = dash_extensions(digits, start, dashes);
        match (candidates.next(), candidates.next()) {
            (None, _) => (&digits[start..], None),
            (Some(p), None) => (&digits[start..p], Some(&digits[p..])),
            (Some(_), Some(_)) => {
                return Err(PhoneError::AmbiguousExtension {
                    number: number.to_owned(),
                });
            }
        }
    };
    if !(7..=8).contains(&local.len()) {
        return Err(PhoneError::LocalLength {
            number: number.to_owned(),
            len: local.len(),
        });
    }
    if local.starts_with(['0', '1']) {
        return Err(PhoneError::LocalPrefix {
            number: number.to_owned(),
        });
    }
    if let Some(e) = ext.filter(|e| !is_valid_extension(e)) {
        return Err(PhoneError::Extension { text: quote(e) });
    }
    Ok((local, ext))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The variant name of an error, so the table can name expected failures briefly.
    fn variant(e: &PhoneError) -> String {
        let debug = format!("{e:?}");
        debug
            .split([' ', '{', '('])
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    /// "canonical", "primary | alternate" or "ERR Variant".
    fn outcome(cell: &str, area: Option<&str>) -> String {
        match parse_phone_cell(cell, area) {
            Ok(PhoneCell {
                primary,
                alternate: None,
            }) => primary.canonical().to_owned(),
            Ok(PhoneCell {
                primary,
                alternate: Some(alt),
            }) => format!("{primary} | {alt}"),
            Err(e) => format!("ERR {}", variant(&e)),
        }
    }

    const AK: Option<&str> = Some("0915");

    #[rustfmt::skip]
    const TABLE: &[(&str, Option<&str>, &str)] = &[
        // mobiles
        ("13912345678", None, "13912345678"),
        ("139 1234 5678", None, "13912345678"),
        ("139-1234-5678", None, "13912345678"),
        ("139 - 1234 - 5678", None, "13912345678"),
        ("+86 139 1234 5678", None, "13912345678"),
        ("+8613912345678", None, "13912345678"),
        ("+86-139-1234-5678", None, "13912345678"),
        ("0086 13912345678", None, "13912345678"),
        ("008613912345678", None, "13912345678"),
        ("86 13912345678", None, "13912345678"),
        ("8613912345678", None, "13912345678"),
        ("１３９１２３４５６７８", None, "13912345678"),
        ("＋８６\u{3000}１３９－１２３４－５６７８", None, "13912345678"),
        ("(+86)13912345678", None, "13912345678"),
        ("（＋86）139 1234 5678", None, "13912345678"),
        ("139.1234.5678", None, "13912345678"),
        ("\u{a0}139\u{a0}1234\u{a0}5678\u{a0}", None, "13912345678"),
        ("139—1234—5678", None, "13912345678"),
        ("139–1234–5678", None, "13912345678"),
        ("\t13912345678", None, "13912345678"),
        ("\u{feff}139\u{200b}12345678", None, "13912345678"),
        ("13912345678.0", None, "13912345678"),
        ("13912345678.00", None, "13912345678"),
        ("'13912345678", None, "13912345678"),
        ("=\"13912345678\"", None, "13912345678"),
        ("013912345678", None, "13912345678"),
        ("19912345678", AK, "19912345678"),
        // landlines
        ("0915-3212345", None, "0915-3212345"),
        ("0915-3212345", AK, "0915-3212345"),
        ("(0915)3212345", None, "0915-3212345"),
        ("（0915）3212345", None, "0915-3212345"),
        ("【0915】3212345", None, "0915-3212345"),
        ("0915 321 2345", None, "0915-3212345"),
        ("0915 3212345", None, "0915-3212345"),
        ("09153212345", None, "0915-3212345"),
        ("0915—3212345", None, "0915-3212345"),
        ("０９１５－３２１２３４５", None, "0915-3212345"),
        ("0915.3212345", None, "0915-3212345"),
        ("010-62345678", None, "010-62345678"),
        ("010 6234 5678", None, "010-62345678"),
        ("010-12345678", None, "ERR LocalPrefix"),
        ("029-88886666", None, "029-88886666"),
        ("02988886666", None, "029-88886666"),
        ("(029)8888-6666", None, "029-88886666"),
        ("+86 29 8888 6666", None, "029-88886666"),
        ("+86 915 3212345", None, "0915-3212345"),
        ("+86 10 6234 5678", None, "010-62345678"),
        ("86 10 62345678", None, "010-62345678"),
        ("+86 010 62345678", None, "010-62345678"),
        ("+86 (0)915 3212345", None, "0915-3212345"),
        ("0086 915 3212345", None, "0915-3212345"),
        ("86 915 3212345", None, "0915-3212345"),
        ("8602988886666", None, "029-88886666"),
        ("0755-26543210", None, "0755-26543210"),
        // extensions
        ("0915-3212345转801", None, "0915-3212345-801"),
        ("0915-3212345 转 801", None, "0915-3212345-801"),
        ("0915-3212345 ext 801", None, "0915-3212345-801"),
        ("0915-3212345 ext. 801", None, "0915-3212345-801"),
        ("0915-3212345EXT801", None, "0915-3212345-801"),
        ("0915-3212345 x801", None, "0915-3212345-801"),
        ("0915-3212345#801", None, "0915-3212345-801"),
        ("0915-3212345＃801", None, "0915-3212345-801"),
        ("0915-3212345-801", None, "0915-3212345-801"),
        ("0915-3212345分机801", None, "0915-3212345-801"),
        ("0915-3212345转分机801", None, "0915-3212345-801"),
        ("0915-3212345 ext:801", None, "0915-3212345-801"),
        ("010-62345678-1", None, "010-62345678-1"),
        ("+86 915 3212345-801", None, "0915-3212345-801"),
        ("3212345转801", AK, "0915-3212345-801"),
        ("3212345-801", AK, "0915-3212345-801"),
        ("13912345678转801", None, "ERR ExtensionOnMobile"),
        ("0915-3212345转", None, "ERR Extension"),
        ("0915-3212345转8012345", None, "ERR Extension"),
        ("0915-3212345-8012345", None, "ERR Extension"),
        ("0915-3212345转801 办公室", None, "ERR Extension"),
        ("0915-3212345-8-01", None, "ERR AmbiguousExtension"),
        ("0915 3212345 801", None, "ERR LocalLength"),
        // bare local numbers
        ("3212345", AK, "0915-3212345"),
        ("321-2345", AK, "0915-3212345"),
        ("３２１２３４５", AK, "0915-3212345"),
        ("3212345", None, "ERR NeedAreaCode"),
        ("88886666", Some("029"), "029-88886666"),
        ("86123456", Some("029"), "029-86123456"),
        ("3212345", Some(" 0915 "), "0915-3212345"),
        ("3212345", Some("915"), "ERR DefaultAreaCode"),
        ("13912345678", Some("abc"), "ERR DefaultAreaCode"),
        // two numbers
        ("13912345678/13812345678", None, "13912345678 | 13812345678"),
        ("13912345678、0915-3212345", None, "13912345678 | 0915-3212345"),
        ("13912345678;13812345678", None, "13912345678 | 13812345678"),
        ("13912345678；13812345678", None, "13912345678 | 13812345678"),
        ("13912345678,13812345678", None, "13912345678 | 13812345678"),
        ("13912345678，13812345678", None, "13912345678 | 13812345678"),
        ("13912345678\n13812345678", None, "13912345678 | 13812345678"),
        ("0915-3212345\r\n13912345678", None, "0915-3212345 | 13912345678"),
        ("139 1234 5678 / 0915-321-2345转801", None, "13912345678 | 0915-3212345-801"),
        ("0915-3212345/3212346", None, "0915-3212345 | 0915-3212346"),
        ("13912345678/3212346", AK, "13912345678 | 0915-3212346"),
        ("13912345678/3212346", None, "ERR NeedAreaCode"),
        ("13912345678/139-1234-5678", None, "13912345678"),
        ("13912345678/", None, "13912345678"),
        ("13912345678/13812345678/13712345678", None, "ERR TooManyNumbers"),
        ("13912345678 13812345678", None, "ERR MobileLength"),
        // scientific notation
        ("1.39123E+10", None, "ERR ScientificNotation"),
        ("1.39123e10", None, "ERR ScientificNotation"),
        ("1,39E+10", None, "ERR ScientificNotation"),
        ("１.３９１２３Ｅ＋１０", None, "ERR ScientificNotation"),
        ("1.39123E+10/13812345678", None, "ERR ScientificNotation"),
        ("1E+10", None, "ERR ScientificNotation"),
        // wrong length or prefix
        ("1391234567", None, "ERR MobileLength"),
        ("139123456789", None, "ERR MobileLength"),
        ("12345", None, "ERR MobileLength"),
        ("12912345678", None, "ERR MobilePrefix"),
        ("10012345678", None, "ERR MobilePrefix"),
        ("5678", AK, "ERR Length"),
        ("321234567890", AK, "ERR Length"),
        ("0915-321234", None, "ERR LocalLength"),
        ("0915-321234567", None, "ERR LocalLength"),
        ("0915", None, "ERR LocalLength"),
        ("0915-0212345", None, "ERR LocalPrefix"),
        ("011-12345678", None, "ERR AreaCode"),
        ("01", None, "ERR AreaCode"),
        ("9153212345", None, "ERR LeadingZeroLost"),
        ("4008123456", None, "ERR Length"),
        ("+852 2345 6789", None, "ERR CountryCode"),
        ("001 212 555 1234", None, "ERR CountryCode"),
        // junk
        ("abc", None, "ERR InvalidCharacters"),
        ("张三13912345678", None, "ERR InvalidCharacters"),
        ("13912345678(手机)", None, "ERR InvalidCharacters"),
        ("tel 13912345678", None, "ERR InvalidCharacters"),
        ("fax 0915-3212345", None, "ERR InvalidCharacters"),
        ("139+12345678", None, "ERR InvalidCharacters"),
        ("139****5678", None, "ERR Masked"),
        ("139xxxx5678", None, "ERR Masked"),
        ("+86", None, "ERR NoNumber"),
        ("转801", None, "ERR NoNumber"),
        // empty
        ("", None, "ERR Missing"),
        ("   ", None, "ERR Missing"),
        ("\u{3000}\u{a0}\t", None, "ERR Missing"),
        ("无", None, "ERR Missing"),
        ("N/A", None, "ERR Missing"),
        ("/", None, "ERR Missing"),
        ("-", None, "ERR Missing"),
        ("（）", None, "ERR Missing"),
        ("\"\"", None, "ERR Missing"),
    ];

    #[test]
    fn real_world_spellings() {
        let failures: Vec<String> = TABLE
            .iter()
            .filter_map(|&(cell, area, want)| {
                let got = outcome(cell, area);
                (got != want).then(|| format!("{cell:?} (area {area:?}): want {want}, got {got}"))
            })
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn overlong_cells_are_rejected_early() {
        let cell = "1".repeat(MAX_CELL_CHARS + 1);
        assert_eq!(
            parse_phone_cell(&cell, None),
            Err(PhoneError::TooLong {
                limit: MAX_CELL_CHARS
            })
        );
        let huge = "13912345678/".repeat(100_000);
        assert!(matches!(
            parse_phone_cell(&huge, None),
            Err(PhoneError::TooLong { .. })
        ));
        // Surrounding blanks do not count against the limit.
        let padded = format!("{}13912345678{}", " ".repeat(500), "\u{3000}".repeat(500));
        assert_eq!(outcome(&padded, None), "13912345678");
    }

    #[test]
    fn parse_phone_takes_exactly_one_number() {
        assert_eq!(
            parse_phone("139 1234 5678", None).unwrap().canonical(),
            "13912345678"
        );
        assert_eq!(
            parse_phone("13912345678/13812345678", None),
            Err(PhoneError::NotSingle)
        );
        assert_eq!(parse_phone(" ", None), Err(PhoneError::Missing));
        assert_eq!(
            parse_phone("0915-3212345", None).unwrap().canonical(),
            "0915-3212345"
        );
    }

    #[test]
    fn kinds_and_parts() {
        let m = parse_phone("13912345678", None).unwrap();
        assert_eq!(m.kind(), PhoneKind::Mobile);
        assert_eq!(m.area_code(), None);
        assert_eq!(m.extension(), None);
        let l = parse_phone("0915-3212345转801", None).unwrap();
        assert_eq!(l.kind(), PhoneKind::Landline);
        assert_eq!(l.area_code(), Some("0915"));
        assert_eq!(l.extension(), Some("801"));
        assert_eq!(l.kind().label(), "固定电话");
        assert_eq!(l.to_string(), "0915-3212345-801");
    }

    #[test]
    fn masking() {
        let masked = |s: &str| parse_phone(s, None).unwrap().masked();
        assert_eq!(masked("13912345678"), "139****5678");
        assert_eq!(masked("0915-3212345"), "0915-***2345");
        assert_eq!(masked("0915-3212345-801"), "0915-***2345");
        assert_eq!(masked("010-62345678"), "010-****5678");
        assert_eq!(mask_canonical("13912345678"), "139****5678");
        assert_eq!(mask_canonical("0915-3212345-801"), "0915-***2345");
        for garbage in [
            "",
            "1391234567",
            "139 1234 5678",
            "0915 3212345",
            "0915-3212345-",
            "0915-3212345-801-1",
            "abc",
            "张三",
            "0915-３212345",
        ] {
            assert_eq!(mask_canonical(garbage), "****", "{garbage:?}");
        }
    }

    #[test]
    fn dialling() {
        let dial = |s: &str| parse_phone(s, None).unwrap().dial();
        assert_eq!(dial("+86 139 1234 5678"), "13912345678");
        assert_eq!(dial("0915-3212345"), "09153212345");
        assert_eq!(dial("0915-3212345转801"), "09153212345,801");
    }

    #[test]
    fn from_canonical_accepts_only_canonical_text() {
        for s in [
            "13912345678",
            "0915-3212345",
            "0915-3212345-801",
            "010-62345678",
            "029-88886666-1",
        ] {
            let p = Phone::from_canonical(s).unwrap();
            assert_eq!(p.canonical(), s);
            assert_eq!(parse_phone(s, None).unwrap(), p);
        }
        for s in [
            "",
            "139 1234 5678",
            "+8613912345678",
            "12912345678",
            "09153212345",
            "0915-0212345",
            "0915-321234",
            "915-3212345",
            "011-62345678",
            "0915-3212345-",
            "0915-3212345-1234567",
            "0915--3212345",
        ] {
            assert_eq!(Phone::from_canonical(s), None, "{s:?}");
        }
    }

    #[test]
    fn area_codes() {
        for ok in ["010", "020", "029", "0915", "0311", "0999"] {
            assert!(is_valid_area_code(ok), "{ok}");
        }
        for bad in [
            "", "0", "01", "011", "0100", "0291", "030", "915", "00915", "0８15",
        ] {
            assert!(!is_valid_area_code(bad), "{bad}");
        }
    }

    #[test]
    fn messages_tell_staff_what_to_do() {
        let message =
            |s: &str, area: Option<&str>| parse_phone_cell(s, area).unwrap_err().to_string();
        let sci = message("1.39123E+10", None);
        assert!(sci.contains("科学计数法") && sci.contains("文本"), "{sci}");
        assert!(message("3212345", None).contains("--area-code"));
        let junk = message("张三 13912345678", None);
        assert!(junk.contains("“张三”"), "{junk}");
        let zero = message("9153212345", None);
        assert!(zero.contains("0915-3212345"), "{zero}");
        assert!(message("13912345678 13812345678", None).contains("/ 隔开"));
        assert!(!message("1391234567", None).contains("/ 隔开"));
        assert!(message("0915 3212345 801", None).contains("转"));
        assert!(message("0915-3212345/801", None).contains("转"));
        let sci = message("1.39123E+10", None);
        assert!(
            sci.contains("“1.39123E+10”"),
            "quotes the cell as written: {sci}"
        );
        let area = message("012-1234567", None);
        assert!(area.contains("区号“012”"), "{area}");
        // Long junk is quoted only in part.
        let long = message(&"a".repeat(150), None);
        assert!(long.chars().count() < 250, "{long}");
    }

    #[test]
    fn serde_uses_the_canonical_text() {
        use serde::de::IntoDeserializer;
        use serde::de::value::{Error, StrDeserializer};
        let de: StrDeserializer<'_, Error> = "0915-3212345-801".into_deserializer();
        let p = Phone::deserialize(de).unwrap();
        assert_eq!(p.canonical(), "0915-3212345-801");
        let de: StrDeserializer<'_, Error> = "139 1234 5678".into_deserializer();
        assert!(Phone::deserialize(de).is_err());
    }

    fn canonical_mobile() -> impl Strategy<Value = String> {
        "1[3-9][0-9]{9}"
    }

    fn canonical_landline() -> impl Strategy<Value = String> {
        let area = prop_oneof![Just("010".to_owned()), "02[0-9]", "0[3-9][0-9]{2}",];
        (area, "[2-9][0-9]{6,7}", proptest::option::of("[0-9]{1,6}")).prop_map(
            |(area, local, ext)| match ext {
                Some(ext) => format!("{area}-{local}-{ext}"),
                None => format!("{area}-{local}"),
            },
        )
    }

    fn valid_phone() -> impl Strategy<Value = Phone> {
        prop_oneof![canonical_mobile(), canonical_landline()]
            .prop_map(|s| Phone::from_canonical(&s).expect("strategy yields canonical text"))
    }

    /// Cells in and around the fast path's shape: mobiles (and near misses of 10–13 digits,
    /// wrong prefixes) with prefixes and separators it reads or must leave to the full parser.
    fn mobile_like_cell() -> impl Strategy<Value = String> {
        use proptest::sample::select;
        // Mostly what the fast path reads, now and then something it must leave alone.
        let digits = prop_oneof![
            4 => canonical_mobile(),
            1 => "[0-9]{10,13}",
            1 => "1[0-2][0-9]{9}",
        ];
        let prefix = prop_oneof![
            3 => select(&["", "+86", "+86 ", "+86-", " +86", "+ 86", "-", " "][..]),
            1 => select(&["+", "+8", "+85", "86", "0086", "++86", "+86+", "\t", "'"][..]),
        ];
        let sep = prop_oneof![
            20 => select(&["", "", "", " ", "-", "  ", "--", " - "][..]),
            1 => select(&[".", "\t", "+", "/", "x", "\n", "*", "、"][..]),
        ];
        let suffix = prop_oneof![
            3 => select(&["", " ", "-", "  "][..]),
            1 => select(&[".0", "转8", "\u{3000}", "/", "1"][..]),
        ];
        let structured = (digits, prefix, proptest::collection::vec(sep, 13), suffix).prop_map(
            |(digits, prefix, seps, suffix)| {
                let mut cell = prefix.to_owned();
                for (d, sep) in digits.chars().zip(&seps) {
                    cell.push(d);
                    cell.push_str(sep);
                }
                cell.push_str(suffix);
                cell
            },
        );
        let pieces = proptest::collection::vec(
            select(&["1", "3", "9", "0", "8", "6", "86", " ", "-", "+", "+86"][..]),
            0..30,
        )
        .prop_map(|p| p.concat());
        prop_oneof![4 => structured, 1 => pieces, 1 => "[0-9 +-]{0,24}"]
    }

    #[test]
    fn fast_mobile_reads_the_common_shapes_only() {
        for cell in [
            "13912345678",
            "139 1234 5678",
            "139-1234-5678",
            "+86-13912345678",
            "+86 139 1234 5678",
            " 13912345678 ",
        ] {
            assert_eq!(
                fast_mobile(cell),
                Some(Phone::mobile("13912345678")),
                "{cell}"
            );
        }
        for cell in [
            "1391234567",
            "139123456789",
            "12912345678",
            "+8513912345678",
            "8613912345678",
            "0086 13912345678",
            "139.1234.5678",
            "13912345678转8",
            "\t13912345678",
            "１３９１２３４５６７８",
            "139 1234 5678/13900000000",
        ] {
            assert_eq!(fast_mobile(cell), None, "{cell}");
        }
    }

    /// Characters that reach the deeper parsing paths, mixed at random.
    const PHONEISH: &[&str] = &[
        "0", "1", "2", "3", "5", "8", "9", "86", "0086", "+", "-", "—", " ", "\u{3000}", ".", "(",
        ")", "（", "）", "/", "、", ";", "，", "\n", "转", "分机", "ext", "x", "#", "e", "E+", "*",
        "０", "９", "张", "'", "=\"", "\"",
    ];

    /// Parsing must not panic, and whatever it accepts must be canonical and stable.
    fn check_any(cell: &str) {
        for area in [None, AK, Some("029"), Some("bad")] {
            if let Ok(c) = parse_phone_cell(cell, area) {
                for p in std::iter::once(&c.primary).chain(c.alternate.as_ref()) {
                    assert_eq!(Phone::from_canonical(p.canonical()).as_ref(), Some(p));
                    assert_eq!(parse_phone(p.canonical(), None).as_ref(), Ok(p));
                    assert_eq!(mask_canonical(p.canonical()), p.masked());
                    let _ = p.dial();
                }
            }
            let _ = parse_phone(cell, area);
        }
        let _ = mask_canonical(cell);
        let _ = Phone::from_canonical(cell);
    }

    proptest! {
        // Failures are reported, not saved: the regressions directory is outside this module.
        #![proptest_config(ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn no_panic_on_arbitrary_strings(s in any::<String>()) {
            check_any(&s);
        }

        #[test]
        fn no_panic_on_huge_unicode(chars in proptest::collection::vec(any::<char>(), 0..3000)) {
            let s: String = chars.into_iter().collect();
            check_any(&s);
        }

        #[test]
        fn no_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            check_any(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn no_panic_on_phone_like_text(
            pieces in proptest::collection::vec(proptest::sample::select(PHONEISH), 0..60)
        ) {
            check_any(&pieces.concat());
        }

        #[test]
        fn canonical_text_parses_back(p in valid_phone()) {
            prop_assert_eq!(parse_phone(p.canonical(), None), Ok(p.clone()));
            prop_assert_eq!(parse_phone(p.canonical(), Some("029")), Ok(p.clone()));
            prop_assert_eq!(Phone::from_canonical(p.canonical()), Some(p.clone()));
            prop_assert_eq!(mask_canonical(p.canonical()), p.masked());
        }

        #[test]
        fn messy_mobiles_parse_to_the_same_phone(
            digits in canonical_mobile(),
            prefix in proptest::sample::select(&["", "+86 ", "+86-", "0086 ", "86", "(+86)", "＋８６"][..]),
            seps in proptest::collection::vec(proptest::sample::select(&["", "", "", " ", "-", ".", "—", "\u{3000}"][..]), 11),
            full_width in any::<bool>(),
        ) {
            let mut cell = prefix.to_owned();
            for (d, sep) in digits.chars().zip(&seps) {
                cell.push(if full_width { char::from_u32(d as u32 + 0xFEE0).unwrap() } else { d });
                cell.push_str(sep);
            }
            prop_assert_eq!(parse_phone(&cell, None), Ok(Phone::mobile(&digits)), "{}", cell);
        }

        #[test]
        fn messy_landlines_parse_to_the_same_phone(
            area in prop_oneof![Just("010".to_owned()), "02[0-9]", "0[3-9][0-9]{2}"],
            local in "[2-9][0-9]{6,7}",
            style in 0..6usize,
        ) {
            let cell = match style {
                0 => format!("({area}){local}"),
                1 => format!("{area} {local}"),
                2 => format!("{area}{local}"),
                3 => format!("+86 {} {local}", &area[1..]),
                4 => format!("0086-{}-{local}", &area[1..]),
                _ => format!("（{area}）{}-{}", &local[..3], &local[3..]),
            };
            prop_assert_eq!(
                parse_phone(&cell, None),
                Ok(Phone::landline(&area, &local, None)),
                "{}", cell
            );
        }

        #[test]
        fn fast_mobile_agrees_with_the_full_parser(cell in mobile_like_cell()) {
            if let Some(phone) = fast_mobile(&cell) {
                let expected = Ok(PhoneCell { primary: phone, alternate: None });
                for area in [None, AK, Some("029")] {
                    prop_assert_eq!(&parse_cell_in_full(&cell, area), &expected, "{:?}", cell);
                }
            }
        }

        #[test]
        fn fast_mobile_accepts_nothing_the_full_parser_rejects(s in any::<String>()) {
            if let Some(phone) = fast_mobile(&s) {
                prop_assert_eq!(parse_cell_in_full(&s, None).map(|c| c.primary), Ok(phone));
            }
        }

        #[test]
        fn keys_are_equal_exactly_for_equal_phones(a in valid_phone(), b in valid_phone()) {
            prop_assert_eq!(a.key() == b.key(), a == b);
            prop_assert_eq!(a.key(), a.clone().key());
        }

        #[test]
        fn packing_is_injective(a in "[0-9-]{0,35}", b in "[0-9-]{0,35}", cut in 0..36usize) {
            prop_assert_eq!(pack_canonical(&a) == pack_canonical(&b), a == b);
            // Prefixes and zero-padded texts are the closest calls.
            let prefix = &a[..cut.min(a.len())];
            prop_assert_eq!(pack_canonical(prefix) == pack_canonical(&a), prefix == a);
            let padded = format!("0{prefix}");
            prop_assert_ne!(pack_canonical(&padded), pack_canonical(prefix));
        }

        #[test]
        fn unpacking_gives_back_the_packed_text(s in "[0-9-]{0,35}", key in any::<u128>()) {
            prop_assert_eq!(unpack_canonical(pack_canonical(&s).unwrap()), Some(s));
            if let Some(text) = unpack_canonical(key) {
                prop_assert_eq!(pack_canonical(&text), Some(key));
            }
        }

        #[test]
        fn packing_takes_only_short_digit_and_dash_text(s in any::<String>()) {
            let packable = s.len() <= 35 && s.bytes().all(|b| b.is_ascii_digit() || b == b'-');
            prop_assert_eq!(pack_canonical(&s).is_some(), packable);
        }

        #[test]
        fn masked_mobile_hides_the_middle_digits(digits in canonical_mobile()) {
            let masked = Phone::mobile(&digits).masked();
            prop_assert_eq!(&masked[3..7], "****");
            prop_assert_eq!(&masked[..3], &digits[..3]);
            prop_assert_eq!(&masked[7..], &digits[7..]);
            prop_assert_eq!(masked.chars().filter(char::is_ascii_digit).count(), 7);
        }

        #[test]
        fn masked_landline_hides_all_but_four_local_digits(s in canonical_landline()) {
            let p = Phone::from_canonical(&s).unwrap();
            let masked = p.masked();
            let area = p.area_code().unwrap();
            let digits_shown = masked.chars().filter(char::is_ascii_digit).count();
            prop_assert_eq!(digits_shown, area.len() + 4);
            let prefix = format!("{area}-");
            prop_assert!(masked.starts_with(&prefix));
            // The extension is dropped: one dash, after the area code.
            prop_assert_eq!(masked.matches('-').count(), 1);
        }
    }
}
