//! [`AccountStore`] on SQLite: users, web sessions and sign-in throttling, API tokens.

use rusqlite::{Connection, OptionalExtension, params};

use chrono::{DateTime, Utc};

use super::{SqliteStore, append_audit, conflict_on_unique, map_full, now_ms, strict};
use crate::domain::user::Role;
use crate::storage::*;

fn user_from_row(r: &rusqlite::Row) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        id: r.get("id")?,
        login: r.get("login")?,
        name: r.get("name")?,
        role: strict(
            r,
            r.as_ref().column_index("role")?,
            "users",
            "role",
            r.get("id")?,
            Role::from_key,
        )?,
        active: r.get("active")?,
        password_hash: r.get("password_hash")?,
    })
}

/// How often a token's `last_used_at` is refreshed (a write on every request would compete
/// with the operators' recording for the single writer).
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

const TOKEN_COLUMNS: &str = "t.id, u.login, u.role, u.active, t.prefix, t.label, t.created_at, t.created_by, \
     t.expires_at, t.revoked_at, t.last_used_at, u.id";

fn token_from_row(r: &rusqlite::Row) -> rusqlite::Result<ApiTokenRecord> {
    Ok(ApiTokenRecord {
        id: r.get(0)?,
        login: r.get(1)?,
        // Column 11 is the user's id (the row the role belongs to).
        role: super::strict(r, 2, "users", "role", r.get(11)?, Role::from_key)?,
        user_active: r.get(3)?,
        prefix: r.get(4)?,
        label: r.get(5)?,
        created_at_ms: r.get(6)?,
        created_by: r.get(7)?,
        expires_at_ms: r.get(8)?,
        revoked_at_ms: r.get(9)?,
        last_used_at_ms: r.get(10)?,
    })
}

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

impl AccountStore for SqliteStore {
    fn add_user(&self, user: &NewUser, actor: &str) -> Result<UserRecord> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO users (login, name, role, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![user.login, user.name, user.role.key(), user.password_hash, now_ms()],
            )
            .map_err(|e| conflict_on_unique(e, || format!("登录名 `{}` 已被使用", user.login)))?;
            append_audit(
                tx,
                &AuditEvent {
                    actor,
                    action: "user.add",
                    round_key: None,
                    detail: serde_json::json!({ "login": user.login, "role": user.role.key() }),
                },
            )?;
            Ok(())
        })?;
        self.user(&user.login)
    }

    fn users(&self) -> Result<Vec<UserRecord>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT * FROM users ORDER BY role, login")?;
            Ok(stmt
                .query_map([], user_from_row)?
                .collect::<rusqlite::Result<_>>()?)
        })
    }

    fn user(&self, login: &str) -> Result<UserRecord> {
        self.read(|c| {
            c.prepare_cached("SELECT * FROM users WHERE login = ?1")?
                .query_row([login], user_from_row)
                .optional()?
                .ok_or_else(|| StorageError::NotFound(format!("没有用户 `{login}`")))
        })
    }

    fn set_user_active(&self, login: &str, active: bool, actor: &str) -> Result<()> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE users SET active = ?1 WHERE login = ?2",
                params![active, login],
            )?;
            if n == 0 {
                return Err(StorageError::NotFound(format!("没有用户 `{login}`")));
            }
            let action = if active {
                "user.enable"
            } else {
                "user.disable"
            };
            append_audit(
                tx,
                &AuditEvent {
                    actor,
                    action,
                    round_key: None,
                    detail: serde_json::json!({ "login": login }),
                },
            )
        })
    }

    fn set_password(&self, login: &str, password_hash: &str, actor: &str) -> Result<()> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE users SET password_hash = ?1 WHERE login = ?2",
                params![password_hash, login],
            )?;
            if n == 0 {
                return Err(StorageError::NotFound(format!("没有用户 `{login}`")));
            }
            append_audit(
                tx,
                &AuditEvent {
                    actor,
                    action: "user.password",
                    round_key: None,
                    detail: serde_json::json!({ "login": login }),
                },
            )
        })
    }

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

    fn add_api_token(&self, token: &NewApiToken, actor: &str) -> Result<ApiTokenRecord> {
        let id = self.write(|tx| {
            let user: Option<i64> = tx
                .query_row("SELECT id FROM users WHERE login = ?1", [&token.login], |r| {
                    r.get(0)
                })
                .optional()?;
            let Some(user) = user else {
                return Err(StorageError::NotFound(format!(
                    "没有用户 `{}`(用 `sheping user list` 查看)",
                    token.login
                )));
            };
            tx.execute(
                "INSERT INTO api_tokens (user_id, token_hash, prefix, label, created_at, created_by, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    user,
                    token.token_hash,
                    token.prefix,
                    token.label,
                    now_ms(),
                    actor,
                    token.expires_at.map(|t| t.timestamp_millis())
                ],
            )
            .map_err(map_full)?;
            let id = tx.last_insert_rowid();
            append_audit(
                tx,
                &AuditEvent {
                    actor,
                    action: "api_token.create",
                    round_key: None,
                    detail: serde_json::json!({
                        "id": id,
                        "login": token.login,
                        "prefix": token.prefix,
                        "label": token.label,
                        "expires_at": token.expires_at,
                    }),
                },
            )?;
            Ok(id)
        })?;
        self.api_tokens()?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or_else(|| StorageError::NotFound(format!("API token {id}")))
    }

    fn api_tokens(&self) -> Result<Vec<ApiTokenRecord>> {
        self.read(|c| {
            let sql = format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id ORDER BY t.id"
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map([], token_from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn revoke_api_token(&self, id: i64, actor: &str) -> Result<()> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE api_tokens SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
                params![now_ms(), id],
            )?;
            if n == 0 {
                return Err(StorageError::NotFound(format!(
                    "没有可吊销的 API 令牌 #{id}(用 `sheping token list` 查看)"
                )));
            }
            append_audit(
                tx,
                &AuditEvent {
                    actor,
                    action: "api_token.revoke",
                    round_key: None,
                    detail: serde_json::json!({ "id": id }),
                },
            )
        })
    }

    fn api_token_user(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(ApiTokenRecord, UserRecord)>> {
        let found = self.read(|c| {
            let sql = format!(
                "SELECT {TOKEN_COLUMNS}, u.name, u.password_hash FROM api_tokens t JOIN users u ON u.id = t.user_id
                 WHERE t.token_hash = ?1"
            );
            Ok(c.prepare_cached(&sql)?
                .query_row([token_hash], |r| {
                    let token = token_from_row(r)?;
                    let user = UserRecord {
                        id: r.get(11)?,
                        login: token.login.clone(),
                        name: r.get(12)?,
                        role: token.role,
                        active: token.user_active,
                        password_hash: r.get(13)?,
                    };
                    Ok((token, user))
                })
                .optional()?)
        })?;
        if let Some((token, _)) = &found {
            let now_ms = now.timestamp_millis();
            let stale = token
                .last_used_at_ms
                .is_none_or(|t| now_ms - t >= LAST_USED_RESOLUTION_MS);
            if stale && token.is_usable(now) {
                self.write(|tx| {
                    tx.execute(
                        "UPDATE api_tokens SET last_used_at = ?1 WHERE id = ?2",
                        params![now_ms, token.id],
                    )
                    .map_err(map_full)?;
                    Ok(())
                })?;
            }
        }
        Ok(found)
    }
}
