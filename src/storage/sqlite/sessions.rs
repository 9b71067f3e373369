//! Web sessions and sign-in throttling on SQLite.

use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, append_audit, map_full};
use crate::domain::user::Role;
use crate::storage::sessions::*;
use crate::storage::{AuditEvent, Result, UserRecord};

fn session_row(c: &Connection, id_hash: &str) -> rusqlite::Result<Option<SessionRecord>> {
    c.prepare_cached(
        "SELECT s.id_hash, s.csrf, s.created_at, s.last_seen,
                u.id, u.login, u.name, u.role, u.active, u.password_hash
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ?1",
    )?
    .query_row([id_hash], |r| {
        Ok(SessionRecord {
            id_hash: r.get(0)?,
            csrf: r.get(1)?,
            created_at_ms: r.get(2)?,
            last_seen_ms: r.get(3)?,
            user: UserRecord {
                id: r.get(4)?,
                login: r.get(5)?,
                name: r.get(6)?,
                role: super::strict(r, 7, "users", "role", r.get(4)?, Role::from_key)?,
                active: r.get(8)?,
                password_hash: r.get(9)?,
            },
        })
    })
    .optional()
}

/// The lock a column's failures set, if any: `limit` failures younger than the window lock
/// until `lock_ms` after the latest of them.
fn lock_for(
    c: &Connection,
    column: &str,
    value: &str,
    limit: u32,
    now_ms: i64,
    policy: &ThrottlePolicy,
) -> rusqlite::Result<Option<i64>> {
    let sql =
        format!("SELECT COUNT(*), MAX(at) FROM signin_failures WHERE {column} = ?1 AND at > ?2");
    let (count, latest): (i64, Option<i64>) = c
        .prepare_cached(&sql)?
        .query_row(params![value, now_ms - policy.window_ms], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    Ok(match latest {
        Some(latest) if count >= i64::from(limit) && now_ms < latest + policy.lock_ms => {
            Some(latest + policy.lock_ms)
        }
        _ => None,
    })
}

fn lockout(
    c: &Connection,
    login: &str,
    ip: &str,
    now_ms: i64,
    policy: &ThrottlePolicy,
) -> rusqlite::Result<Lockout> {
    if let Some(until_ms) = lock_for(c, "login", login, policy.max_login_failures, now_ms, policy)?
    {
        return Ok(Lockout::Login { until_ms });
    }
    if let Some(until_ms) = lock_for(c, "ip", ip, policy.max_ip_failures, now_ms, policy)? {
        return Ok(Lockout::Ip { until_ms });
    }
    Ok(Lockout::Open)
}

/// A counted lock window (a row of `signin_refusals`).
struct Refusals {
    ip: String,
    scope: String,
    subject: String,
    until_ms: i64,
    actor: String,
    first_at: i64,
    last_at: i64,
    count: i64,
}

/// Writes one `auth.signin_locked` entry, with its count, for each counted lock window that
/// has ended by `now_ms`, and marks it written (see migration 010 for why at the end).
fn log_ended_refusals(tx: &Connection, now_ms: i64) -> Result<usize> {
    let ended: Vec<Refusals> = tx
        .prepare_cached(
            "SELECT ip, scope, subject, until_ms, actor, first_at, last_at, count
             FROM signin_refusals WHERE logged IS NULL AND until_ms <= ?1
             ORDER BY until_ms, ip, scope, subject",
        )?
        .query_map([now_ms], |r| {
            Ok(Refusals {
                ip: r.get(0)?,
                scope: r.get(1)?,
                subject: r.get(2)?,
                until_ms: r.get(3)?,
                actor: r.get(4)?,
                first_at: r.get(5)?,
                last_at: r.get(6)?,
                count: r.get(7)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    for w in &ended {
        append_audit(
            tx,
            &AuditEvent {
                actor: &w.actor,
                action: "auth.signin_locked",
                round_key: None,
                detail: serde_json::json!({
                    "ip": w.ip, "scope": w.scope, "subject": w.subject, "until_ms": w.until_ms,
                    "first_at_ms": w.first_at, "last_at_ms": w.last_at, "count": w.count,
                }),
            },
        )?;
        tx.prepare_cached(
            "UPDATE signin_refusals SET logged = ?1
             WHERE ip = ?2 AND scope = ?3 AND subject = ?4 AND until_ms = ?5",
        )?
        .execute(params![now_ms, w.ip, w.scope, w.subject, w.until_ms])?;
    }
    Ok(ended.len())
}

impl SessionStore for SqliteStore {
    fn start_session(&self, s: &NewSession, replaces: Option<&str>) -> Result<()> {
        self.write(|tx| {
            if let Some(old) = replaces {
                tx.prepare_cached("DELETE FROM sessions WHERE id_hash = ?1")?
                    .execute([old])?;
            }
            tx.prepare_cached(
                "INSERT INTO sessions (id_hash, user_id, csrf, created_at, last_seen, ip, user_agent)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6)",
            )?
            .execute(params![
                s.id_hash,
                s.user.id,
                s.csrf,
                s.now_ms,
                s.ip,
                s.user_agent
            ])
            .map_err(map_full)?;
            tx.prepare_cached("DELETE FROM signin_failures WHERE login = ?1")?
                .execute([throttle_login_key(&s.user.login)])?;
            log_ended_refusals(tx, s.now_ms)?;
            append_audit(
                tx,
                &AuditEvent {
                    actor: &s.user.login,
                    action: "auth.signin",
                    round_key: None,
                    detail: serde_json::json!({
                        "ip": s.ip,
                        "role": s.user.role.key(),
                        "user_agent": s.user_agent.chars().take(120).collect::<String>(),
                    }),
                },
            )
        })
    }

    fn session(
        &self,
        id_hash: &str,
        now_ms: i64,
        limits: &SessionLimits,
        touch: bool,
    ) -> Result<SessionLookup> {
        let generation = self.generations.sessions.now();
        let found = match self.sessions.get(id_hash, generation) {
            Some(s) => Some(s),
            None => {
                let row = self.read(|c| Ok(session_row(c, id_hash)?))?;
                if let Some(s) = &row {
                    self.sessions
                        .put(id_hash.to_string(), generation, s.clone());
                }
                row
            }
        };
        let Some(mut s) = found else {
            return Ok(SessionLookup::Missing);
        };
        match limits.due(&s, now_ms, touch) {
            SessionDue::End => {
                self.write(|tx| {
                    tx.prepare_cached("DELETE FROM sessions WHERE id_hash = ?1")?
                        .execute([id_hash])?;
                    Ok(())
                })?;
                return Ok(SessionLookup::Expired);
            }
            SessionDue::EndUser => {
                self.write(|tx| {
                    tx.prepare_cached("DELETE FROM sessions WHERE user_id = ?1")?
                        .execute([s.user.id])?;
                    Ok(())
                })?;
                return Ok(SessionLookup::Missing);
            }
            SessionDue::Touch => {
                self.write(|tx| {
                    tx.prepare_cached(
                        "UPDATE sessions SET last_seen = MAX(last_seen, ?1) WHERE id_hash = ?2",
                    )?
                    .execute(params![now_ms, id_hash])?;
                    Ok(())
                })?;
                s.last_seen_ms = now_ms;
            }
            SessionDue::Nothing => {}
        }
        Ok(SessionLookup::Valid(s))
    }

    fn session_cached(
        &self,
        id_hash: &str,
        now_ms: i64,
        limits: &SessionLimits,
        touch: bool,
    ) -> Option<SessionRecord> {
        let s = self
            .sessions
            .get(id_hash, self.generations.sessions.now())?;
        (limits.due(&s, now_ms, touch) == SessionDue::Nothing).then_some(s)
    }

    fn end_session(&self, id_hash: &str, actor: &str) -> Result<()> {
        self.write(|tx| {
            let n = tx
                .prepare_cached("DELETE FROM sessions WHERE id_hash = ?1")?
                .execute([id_hash])?;
            if n > 0 {
                append_audit(
                    tx,
                    &AuditEvent {
                        actor,
                        action: "auth.signout",
                        round_key: None,
                        detail: serde_json::json!({}),
                    },
                )?;
            }
            Ok(())
        })
    }

    fn end_user_sessions(&self, user_id: i64, keep: Option<&str>) -> Result<usize> {
        self.write(|tx| {
            Ok(tx
                .prepare_cached(
                    "DELETE FROM sessions WHERE user_id = ?1 AND (?2 IS NULL OR id_hash != ?2)",
                )?
                .execute(params![user_id, keep])?)
        })
    }

    fn change_own_password(
        &self,
        user: &UserRecord,
        password_hash: &str,
        keep: &str,
        ip: &str,
    ) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached("UPDATE users SET password_hash = ?1 WHERE id = ?2")?
                .execute(params![password_hash, user.id])?;
            let ended = tx
                .prepare_cached("DELETE FROM sessions WHERE user_id = ?1 AND id_hash != ?2")?
                .execute(params![user.id, keep])?;
            append_audit(
                tx,
                &AuditEvent {
                    actor: &user.login,
                    action: "auth.password_change",
                    round_key: None,
                    detail: serde_json::json!({ "ip": ip, "other_sessions_ended": ended }),
                },
            )
        })
    }

    fn signin_lockout(
        &self,
        login: &str,
        ip: &str,
        now_ms: i64,
        policy: &ThrottlePolicy,
    ) -> Result<Lockout> {
        let key = throttle_login_key(login);
        self.read(|c| Ok(lockout(c, &key, ip, now_ms, policy)?))
    }

    fn signin_refused(&self, login: &str, ip: &str, lock: Lockout, now_ms: i64) -> Result<()> {
        let key = throttle_login_key(login);
        let (scope, subject, until_ms) = match lock {
            Lockout::Open => return Ok(()),
            Lockout::Login { until_ms } => ("login", key.as_str(), until_ms),
            Lockout::Ip { until_ms } => ("ip", ip, until_ms),
        };
        self.write(|tx| {
            log_ended_refusals(tx, now_ms)?;
            tx.prepare_cached(
                "INSERT INTO signin_refusals
                     (ip, scope, subject, until_ms, actor, first_at, last_at, count)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 1)
                 ON CONFLICT (ip, scope, subject, until_ms)
                 DO UPDATE SET count = count + 1, last_at = MAX(last_at, excluded.last_at)",
            )?
            .execute(params![ip, scope, subject, until_ms, key, now_ms])
            .map_err(map_full)?;
            Ok(())
        })
    }

    fn signin_failed(
        &self,
        login: &str,
        ip: &str,
        reason: FailureReason,
        now_ms: i64,
        policy: &ThrottlePolicy,
    ) -> Result<Lockout> {
        let key = throttle_login_key(login);
        self.write(|tx| {
            log_ended_refusals(tx, now_ms)?;
            let before = lockout(tx, &key, ip, now_ms, policy)?;
            tx.prepare_cached("INSERT INTO signin_failures (login, ip, at) VALUES (?1, ?2, ?3)")?
                .execute(params![key, ip, now_ms])
                .map_err(map_full)?;
            append_audit(
                tx,
                &AuditEvent {
                    actor: &key,
                    action: "auth.signin_failed",
                    round_key: None,
                    detail: serde_json::json!({ "ip": ip, "reason": reason.key() }),
                },
            )?;
            let after = lockout(tx, &key, ip, now_ms, policy)?;
            if before == Lockout::Open
                && let Some(until) = after.until_ms()
            {
                let (scope, subject) = match after {
                    Lockout::Ip { .. } => ("ip", ip),
                    _ => ("login", key.as_str()),
                };
                append_audit(
                    tx,
                    &AuditEvent {
                        actor: &key,
                        action: "auth.lockout",
                        round_key: None,
                        detail: serde_json::json!({
                            "scope": scope, "subject": subject, "ip": ip, "until_ms": until,
                        }),
                    },
                )?;
            }
            Ok(after)
        })
    }

    fn purge_web_state(
        &self,
        now_ms: i64,
        limits: &SessionLimits,
        policy: &ThrottlePolicy,
    ) -> Result<usize> {
        self.write(|tx| {
            let sessions = tx
                .prepare_cached("DELETE FROM sessions WHERE last_seen <= ?1 OR created_at <= ?2")?
                .execute(params![
                    now_ms - limits.idle_ms,
                    now_ms - limits.absolute_ms
                ])?;
            let horizon = policy.window_ms.max(policy.lock_ms);
            let failures = tx
                .prepare_cached("DELETE FROM signin_failures WHERE at <= ?1")?
                .execute([now_ms - horizon])?;
            log_ended_refusals(tx, now_ms)?;
            // Summarised rows are kept as long as failures, then go (the chain has the count).
            let refusals = tx
                .prepare_cached(
                    "DELETE FROM signin_refusals WHERE logged IS NOT NULL AND until_ms <= ?1",
                )?
                .execute([now_ms - horizon])?;
            Ok(sessions + failures + refusals)
        })
    }
}
