//! Personal data in free text: what the operators type (comments) may name the respondent or
//! a number. Exports and feedback pages show comments masked, and a purge masks them for good.

/// Masks what could identify a person in a free-text comment: the member's own name, and
/// any run of 7 or more digits (with spaces, dashes or brackets between them) as a phone
/// number would be written.
pub fn scrub_comment(text: &str, personal: &[&str]) -> String {
    let mut s = text.to_string();
    // Numbers first (a name is never made of digits), then names.
    let (phones, names): (Vec<&str>, Vec<&str>) = personal.iter().partition(|p| is_number(p));
    for p in phones {
        s = s.replace(p, "[号码]");
    }
    for n in names {
        if n.chars().count() >= 2 {
            s = s.replace(n, "[姓名]");
        }
    }
    let chars: Vec<char> = s.chars().collect();
    let is_digit = |c: char| c.is_ascii_digit() || ('０'..='９').contains(&c);
    let is_joiner = |c: char| matches!(c, ' ' | '-' | '(' | ')' | '（' | '）' | '+' | '\u{3000}');
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        if is_digit(chars[i]) {
            let mut j = i;
            let mut digits = 0;
            let mut last_digit = i;
            while j < chars.len() && (is_digit(chars[j]) || is_joiner(chars[j])) {
                if is_digit(chars[j]) {
                    digits += 1;
                    last_digit = j;
                }
                j += 1;
            }
            let run: String = chars[i..=last_digit].iter().collect();
            if digits >= 7 && !looks_like_date(&run) {
                out.push_str("[号码]");
                i = last_digit + 1;
                continue;
            }
            out.extend(&chars[i..=last_digit]);
            i = last_digit + 1;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// A phone number as stored (digits with `-`, `+`, spaces), not a name.
fn is_number(s: &str) -> bool {
    s.chars().filter(char::is_ascii_digit).count() >= 5
        && s.chars().all(|c| c.is_ascii_digit() || "-+ ()".contains(c))
}

/// `2022-11-02`, `2022/11/2`, `2022 11 02`: a date, not a phone number.
fn looks_like_date(run: &str) -> bool {
    let groups: Vec<usize> = run
        .split(|c: char| !(c.is_ascii_digit() || ('０'..='９').contains(&c)))
        .filter(|g| !g.is_empty())
        .map(|g| g.chars().count())
        .collect();
    matches!(groups.as_slice(), [4, m, d] if *m <= 2 && *d <= 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_lose_names_and_numbers() {
        let c = scrub_comment(
            "张伟说请回电 139 1234 5678 或 0915-3212345,找张伟本人;办了3次",
            &["张伟", "13912345678"],
        );
        assert_eq!(c, "[姓名]说请回电 [号码] 或 [号码],找[姓名]本人;办了3次");
        assert_eq!(
            scrub_comment("全角１３９１２３４５６７８", &[]),
            "全角[号码]"
        );
        assert_eq!(scrub_comment("2022-11-02 办结", &[]), "2022-11-02 办结");
    }
}
