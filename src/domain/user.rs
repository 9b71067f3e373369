//! Users and roles. Roles decide everything a user may see or do.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The organising office's administrator: rounds, rosters, users, plans, corrections, lock.
    Admin,
    /// A 12345 operator: their own queue and the contact they hold.
    Operator,
    /// The third party's statistician: progress, results, exports; never a phone number.
    Statistician,
    /// The evaluation group: results only.
    Evaluator,
}

impl Role {
    pub fn key(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Statistician => "statistician",
            Role::Evaluator => "evaluator",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::Admin => "管理员",
            Role::Operator => "话务员",
            Role::Statistician => "统计人员",
            Role::Evaluator => "评估组",
        }
    }

    /// The role whose key is exactly `key` (what the database stores); no label or spaces.
    pub fn from_key(key: &str) -> Option<Role> {
        [
            Role::Admin,
            Role::Operator,
            Role::Statistician,
            Role::Evaluator,
        ]
        .into_iter()
        .find(|r| r.key() == key)
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s.trim() {
            "admin" | "管理员" => Some(Role::Admin),
            "operator" | "话务员" => Some(Role::Operator),
            "statistician" | "统计人员" => Some(Role::Statistician),
            "evaluator" | "评估组" => Some(Role::Evaluator),
            _ => None,
        }
    }
}

impl Role {
    /// Whether this role may know who the operators are (their logins, names, per-operator
    /// figures under their own name): statisticians and admins. Evaluators judge units, not
    /// the call centre's staff: to them operators are [`operator_codes`] everywhere.
    pub fn sees_operator_identity(self) -> bool {
        matches!(self, Role::Admin | Role::Statistician)
    }
}

/// Stable anonymous codes for operators (话务员A, 话务员B, … 话务员Z, 话务员AA, …), given in the
/// order of their logins, so that the same operator has the same code on every page and API
/// answer made from the same data.
pub fn operator_codes<'a>(
    logins: impl IntoIterator<Item = &'a str>,
) -> std::collections::BTreeMap<String, String> {
    let sorted: std::collections::BTreeSet<&str> = logins.into_iter().collect();
    sorted
        .into_iter()
        .enumerate()
        .map(|(i, login)| (login.to_string(), format!("话务员{}", letters(i))))
        .collect()
}

/// 0 → A, 25 → Z, 26 → AA, … (bijective base 26, like spreadsheet columns).
fn letters(mut i: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + (i % 26) as u8);
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UserError {
    #[error("登录名“{0}”无效:请用 2–32 个小写字母、数字、点、下划线或连字符")]
    BadLogin(String),
    #[error("角色“{0}”无效:可选 admin、operator、statistician、evaluator")]
    BadRole(String),
    #[error("密码至少需要 10 个字符")]
    WeakPassword,
    #[error("姓名不能为空")]
    MissingName,
    #[error(transparent)]
    NameChar(#[from] super::text::TextError),
}

/// A user's name: not blank, and no character refused in any text (`domain::text`).
pub fn validate_name(name: &str) -> Result<(), UserError> {
    if name.trim().is_empty() {
        return Err(UserError::MissingName);
    }
    super::text::check("姓名", name, super::text::Lines::Multi)?;
    Ok(())
}

pub fn validate_login(login: &str) -> Result<(), UserError> {
    let ok = (2..=32).contains(&login.len())
        && login
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(UserError::BadLogin(login.to_string()))
    }
}

pub fn validate_password(password: &str) -> Result<(), UserError> {
    if password.chars().count() >= 10 {
        Ok(())
    } else {
        Err(UserError::WeakPassword)
    }
}

/// A random password for `user add` without one: 16 characters without look-alikes.
pub fn generate_password(rng: &mut impl rand::Rng) -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    (0..16)
        .map(|_| {
            // Rejection sampling keeps every character equally likely.
            loop {
                let b = (rng.next_u32() & 0x3f) as usize;
                if b < ALPHABET.len() {
                    break ALPHABET[b] as char;
                }
            }
        })
        .collect()
}

/// Hashes a password with argon2id and a fresh salt (PHC string).
pub fn hash_password(password: &str) -> String {
    use argon2::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .expect("argon2 with default parameters hashes any password")
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::PasswordVerifier;
    argon2::Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_codes_follow_login_order() {
        let codes = operator_codes(["op2", "op10", "op1", "op2"]);
        assert_eq!(codes["op1"], "话务员A");
        assert_eq!(codes["op10"], "话务员B");
        assert_eq!(codes["op2"], "话务员C");
        assert_eq!(codes.len(), 3);
        assert_eq!(letters(25), "Z");
        assert_eq!(letters(26), "AA");
        assert_eq!(letters(27), "AB");
        assert_eq!(letters(26 + 26 * 26), "AAA");
        assert!(!Role::Evaluator.sees_operator_identity());
        assert!(Role::Statistician.sees_operator_identity());
    }

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse battery");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn generated_passwords_are_long_and_varied() {
        let mut rng = rand::rng();
        let a = generate_password(&mut rng);
        let b = generate_password(&mut rng);
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
        assert!(validate_password(&a).is_ok());
    }

    #[test]
    fn logins_and_roles() {
        assert!(validate_login("op01").is_ok());
        assert!(validate_login("张三").is_err());
        assert!(validate_login("a").is_err());
        assert_eq!(Role::parse("statistician"), Some(Role::Statistician));
        assert_eq!(Role::parse("boss"), None);
    }
}
