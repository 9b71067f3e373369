//! Accounts: users, their web sessions and sign-in throttling, and API tokens. The SQLite
//! implementation is `sqlite::accounts`.
//!
//! A session is known by the SHA-256 of the random token in the browser's cookie (the token
//! itself is never stored). Sessions end after `idle_ms` without a request, after
//! `absolute_ms` whatever happens, at sign-out, when the user is disabled, and (the other
//! sessions of the user) when the password changes.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Result;
use crate::domain::user::Role;

#[derive(Debug, Clone, Serialize)]
pub struct UserRecord {
    pub id: i64,
    pub login: String,
    pub name: String,
    pub role: Role,
    pub active: bool,
    #[serde(skip)]
    pub password_hash: String,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub login: String,
    pub name: String,
    pub role: Role,
    pub password_hash: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApiTokenRecord {
    pub id: i64,
    pub login: String,
    pub role: Role,
    pub user_active: bool,
    /// First characters of the token (never the whole token).
    pub prefix: String,
    pub label: String,
    pub created_at_ms: i64,
    pub created_by: String,
    pub expires_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
    pub last_used_at_ms: Option<i64>,
}

impl ApiTokenRecord {
    /// Its state in words, as `token list` and the console show it.
    pub fn state_label(&self, now: DateTime<Utc>) -> &'static str {
        if self.revoked_at_ms.is_some() {
            "已吊销"
        } else if !self.user_active {
            "用户已停用"
        } else if self.is_usable(now) {
            "有效"
        } else {
            "已过期"
        }
    }

    /// Not revoked, not expired at `now`, and its user is active.
    pub fn is_usable(&self, now: DateTime<Utc>) -> bool {
        self.user_active
            && self.revoked_at_ms.is_none()
            && self
                .expires_at_ms
                .is_none_or(|e| e > now.timestamp_millis())
    }
}

#[derive(Debug, Clone)]
pub struct NewApiToken {
    pub login: String,
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    pub prefix: String,
    pub label: String,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub id_hash: &'a str,
    pub user: &'a UserRecord,
    pub csrf: &'a str,
    pub ip: &'a str,
    pub user_agent: &'a str,
    pub now_ms: i64,
}

#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub id_hash: String,
    pub user: UserRecord,
    pub csrf: String,
    pub created_at_ms: i64,
    pub last_seen_ms: i64,
}

/// How long sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Ends a session this long after its last request.
    pub idle_ms: i64,
    /// Ends a session this long after sign-in, however active.
    pub absolute_ms: i64,
}

impl SessionLimits {
    /// `last_seen` is written at most this often (one write per request would be wasteful);
    /// a quarter of the idle timeout keeps the error below 25 %.
    pub fn touch_every_ms(&self) -> i64 {
        (self.idle_ms / 4).clamp(0, 60_000)
    }

    pub fn is_expired(&self, created_at_ms: i64, last_seen_ms: i64, now_ms: i64) -> bool {
        now_ms >= last_seen_ms.saturating_add(self.idle_ms)
            || now_ms >= created_at_ms.saturating_add(self.absolute_ms)
    }

    /// What a stored session needs before it serves a request at `now_ms` (`touch`: the
    /// request counts as activity). One rule for the store's lookup and its in-memory answer.
    pub fn due(&self, s: &SessionRecord, now_ms: i64, touch: bool) -> SessionDue {
        if self.is_expired(s.created_at_ms, s.last_seen_ms, now_ms) {
            SessionDue::End
        } else if !s.user.active {
            SessionDue::EndUser
        } else if touch && now_ms - s.last_seen_ms >= self.touch_every_ms() {
            SessionDue::Touch
        } else {
            SessionDue::Nothing
        }
    }
}

/// See [`SessionLimits::due`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionDue {
    /// Timed out: the session ends.
    End,
    /// Its user was disabled: every session of the user ends.
    EndUser,
    /// `last_seen` is to be written.
    Touch,
    /// Valid as it is.
    Nothing,
}

#[derive(Debug, Clone)]
pub enum SessionLookup {
    Valid(SessionRecord),
    /// The session existed but timed out (it is deleted now).
    Expired,
    /// Unknown token, signed out, or the user was disabled.
    Missing,
}

/// When repeated failed sign-ins lock a login or a client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures count while younger than this.
    pub window_ms: i64,
    /// A lock lasts this long after the failure that set it.
    pub lock_ms: i64,
    pub max_login_failures: u32,
    /// Higher than the per-login limit: a call centre signs in from behind one address.
    pub max_ip_failures: u32,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            window_ms: 15 * 60_000,
            lock_ms: 15 * 60_000,
            max_login_failures: 5,
            max_ip_failures: 20,
        }
    }
}

/// Whether sign-in is refused now, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lockout {
    Open,
    Login { until_ms: i64 },
    Ip { until_ms: i64 },
}

impl Lockout {
    pub fn until_ms(self) -> Option<i64> {
        match self {
            Lockout::Open => None,
            Lockout::Login { until_ms } | Lockout::Ip { until_ms } => Some(until_ms),
        }
    }
}

/// Why a sign-in failed (kept in the audit log; the user is told only "wrong login or password").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    UnknownLogin,
    BadPassword,
    Disabled,
}

impl FailureReason {
    pub fn key(self) -> &'static str {
        match self {
            FailureReason::UnknownLogin => "unknown_login",
            FailureReason::BadPassword => "bad_password",
            FailureReason::Disabled => "disabled",
        }
    }
}

/// Normalises a typed login for throttling, so that "OP1 " and "op1" share one counter.
pub fn throttle_login_key(login: &str) -> String {
    login.trim().to_lowercase().chars().take(64).collect()
}

pub trait AccountStore: Send + Sync {
    fn add_user(&self, user: &NewUser, actor: &str) -> Result<UserRecord>;
    fn users(&self) -> Result<Vec<UserRecord>>;
    fn user(&self, login: &str) -> Result<UserRecord>;
    /// Enables or disables a user; disabling ends the user's sessions at their next request.
    fn set_user_active(&self, login: &str, active: bool, actor: &str) -> Result<()>;
    /// An administrator sets a user's password.
    fn set_password(&self, login: &str, password_hash: &str, actor: &str) -> Result<()>;

    /// Signs in: stores the new session, deletes `replaces` (this browser's previous session),
    /// clears the login's failed sign-ins and writes `auth.signin` — in one transaction.
    fn start_session(&self, session: &NewSession, replaces: Option<&str>) -> Result<()>;

    /// Finds a session, ending it when it timed out. `touch` records the request as activity.
    fn session(
        &self,
        id_hash: &str,
        now_ms: i64,
        limits: &SessionLimits,
        touch: bool,
    ) -> Result<SessionLookup>;

    /// [`AccountStore::session`] answered from memory when that needs no read and no write
    /// (the session is cached, current, unexpired, its user active, and no touch is due);
    /// else `None`: ask [`AccountStore::session`]. Cheap enough for an async request thread.
    fn session_cached(
        &self,
        id_hash: &str,
        now_ms: i64,
        limits: &SessionLimits,
        touch: bool,
    ) -> Option<SessionRecord>;

    /// Signs out (writes `auth.signout`).
    fn end_session(&self, id_hash: &str, actor: &str) -> Result<()>;

    /// Ends every session of a user except `keep`; returns how many ended.
    fn end_user_sessions(&self, user_id: i64, keep: Option<&str>) -> Result<usize>;

    /// A user changes their own password: stores the new hash, ends the user's other sessions
    /// and writes `auth.password_change`, in one transaction.
    fn change_own_password(
        &self,
        user: &UserRecord,
        password_hash: &str,
        keep: &str,
        ip: &str,
    ) -> Result<()>;

    /// Whether sign-in for `login` from `ip` is locked at `now_ms`.
    fn signin_lockout(
        &self,
        login: &str,
        ip: &str,
        now_ms: i64,
        policy: &ThrottlePolicy,
    ) -> Result<Lockout>;

    /// Counts a sign-in attempt refused because `lock` is on (no audit entry of its own: one
    /// `auth.signin_locked` entry per address and lock window carries the count once the
    /// window has ended; see [`AccountStore::purge_web_state`]).
    fn signin_refused(&self, login: &str, ip: &str, lock: Lockout, now_ms: i64) -> Result<()>;

    /// Records a failed sign-in (`auth.signin_failed`) and, when it reaches a limit, the lock
    /// (`auth.lockout`); returns the state after it.
    fn signin_failed(
        &self,
        login: &str,
        ip: &str,
        reason: FailureReason,
        now_ms: i64,
        policy: &ThrottlePolicy,
    ) -> Result<Lockout>;

    /// Deletes sessions and failure records too old to matter, and writes the
    /// `auth.signin_locked` entry of each lock window that has ended; returns rows deleted.
    /// (Every sign-in, failed or not, writes those entries too.)
    fn purge_web_state(
        &self,
        now_ms: i64,
        limits: &SessionLimits,
        policy: &ThrottlePolicy,
    ) -> Result<usize>;

    fn add_api_token(&self, token: &NewApiToken, actor: &str) -> Result<ApiTokenRecord>;
    fn api_tokens(&self) -> Result<Vec<ApiTokenRecord>>;
    fn revoke_api_token(&self, id: i64, actor: &str) -> Result<()>;
    /// The token with this hash and its user, if any (usable or not: the caller decides).
    /// Records the use time (at most once a minute per token).
    fn api_token_user(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(ApiTokenRecord, UserRecord)>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_expire_on_idle_and_absolute() {
        let l = SessionLimits {
            idle_ms: 1_000,
            absolute_ms: 10_000,
        };
        assert!(!l.is_expired(0, 0, 999));
        assert!(l.is_expired(0, 0, 1_000));
        assert!(!l.is_expired(0, 9_000, 9_999));
        assert!(l.is_expired(0, 9_500, 10_000));
        assert_eq!(l.touch_every_ms(), 250);
    }

    #[test]
    fn login_keys_fold_case_and_space() {
        assert_eq!(throttle_login_key("  OP1 "), "op1");
        assert_eq!(throttle_login_key(&"x".repeat(100)).len(), 64);
    }
}
