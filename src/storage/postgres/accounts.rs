//! [`AccountStore`] on PostgreSQL: users, web sessions and sign-in throttling, API tokens. The
//! SQL is `sqlite/accounts.rs`'s in PostgreSQL's dialect, and the answers and messages are the
//! same. What differs is that several instances write at once:
//! - Throttling lives in the database, so a lock set through one instance holds on every other.
//!   The writes that count failures or summarise lock windows take [`THROTTLE_LOCK_KEY`] first,
//!   so that two instances neither both announce one lock (`auth.lockout`) nor both summarise
//!   one window (`auth.signin_locked`); SQLite's single writer gives the same order.
//! - Sessions are cached in memory as on SQLite (`session_cached`), bounded to a second across
//!   instances: a sign-out, a disabled user or a password change made through this instance
//!   drops its entries at once; made through another, it is seen here within one second
//!   (`read_cache::TTL`, see `sync.rs`'s `Caches`).
//! - A token's last use is written only when a minute has passed, checked in the `UPDATE`
//!   itself, so instances answering the same token at once write it once.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::PgBackend;
use super::audit::append;
use super::rounds::now_ms;
use crate::domain::user::Role;
use crate::storage::*;

/// The key of the advisory lock around the throttling writes ("shepingT" in ASCII).
pub const THROTTLE_LOCK_KEY: i64 = 0x7368_6570_696e_6754;

/// How often a token's `last_used_at` is refreshed (as on SQLite).
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

const USER_COLUMNS: &str = "id, login, name, role, active, password_hash";

const TOKEN_COLUMNS: &str = "t.id, u.login, u.role, u.active, t.prefix, t.label, t.created_at, t.created_by, \
     t.expires_at, t.revoked_at, t.last_used_at, u.id";

/// The role in column `idx` of a `users` row with id `row_id`, strictly (contract point 9).
fn role(r: &Row, idx: usize, row_id: i64) -> Result<Role> {
    let value: String = r.get(idx);
    Role::from_key(&value).ok_or_else(|| {
        StorageError::BadStoredValue(BadStoredValue {
            table: "users",
            row_id,
            column: "role",
            value,
        })
    })
}

fn user_from_row(r: &Row) -> Result<UserRecord> {
    let id: i64 = r.get(0);
    Ok(UserRecord {
        id,
        login: r.get(1),
        name: r.get(2),
        role: role(r, 3, id)?,
        active: r.get::<_, i64>(4) != 0,
        password_hash: r.get(5),
    })
}

fn token_from_row(r: &Row) -> Result<ApiTokenRecord> {
    Ok(ApiTokenRecord {
        id: r.get(0),
        login: r.get(1),
        // Column 11 is the user's id (the row the role belongs to).
        role: role(r, 2, r.get(11))?,
        user_active: r.get::<_, i64>(3) != 0,
        prefix: r.get(4),
        label: r.get(5),
        created_at_ms: r.get(6),
        created_by: r.get(7),
        expires_at_ms: r.get(8),
        revoked_at_ms: r.get(9),
        last_used_at_ms: r.get(10),
    })
}

fn no_user(login: &str) -> StorageError {
    StorageError::NotFound(format!("没有用户 `{login}`"))
}

/// PostgreSQL's text cannot hold NUL and refuses it as a parameter (a 500 for a URL with
/// `%00`): no user has such a login, as SQLite answers.
fn nul_login(login: &str) -> Result<()> {
    if login.contains('\0') {
        return Err(no_user(login));
    }
    Ok(())
}

async fn session_row<C: deadpool_postgres::GenericClient>(
    c: &C,
    id_hash: &str,
) -> Result<Option<SessionRecord>> {
    let Some(r) = c
        .query_opt(
            "SELECT s.id_hash, s.csrf, s.created_at, s.last_seen,
                    u.id, u.login, u.name, u.role, u.active, u.password_hash
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1",
            &[&id_hash],
        )
        .await?
    else {
        return Ok(None);
    };
    let user_id: i64 = r.get(4);
    Ok(Some(SessionRecord {
        id_hash: r.get(0),
        csrf: r.get(1),
        created_at_ms: r.get(2),
        last_seen_ms: r.get(3),
        user: UserRecord {
            id: user_id,
            login: r.get(5),
            name: r.get(6),
            role: role(&r, 7, user_id)?,
            active: r.get::<_, i64>(8) != 0,
            password_hash: r.get(9),
        },
    }))
}

/// Which failures a lock counts: by login key or by client address.
#[derive(Clone, Copy)]
enum Counted {
    Login,
    Ip,
}

/// The lock `limit` failures younger than the window set, if any (until `lock_ms` after the
/// latest of them).
async fn lock_for<C: deadpool_postgres::GenericClient>(
    c: &C,
    counted: Counted,
    value: &str,
    limit: u32,
    now_ms: i64,
    policy: &ThrottlePolicy,
) -> Result<Option<i64>> {
    // Two constant statements: the column is not a parameter.
    let sql = match counted {
        Counted::Login => {
            "SELECT COUNT(*), MAX(at) FROM signin_failures WHERE login = $1 AND at > $2"
        }
        Counted::Ip => "SELECT COUNT(*), MAX(at) FROM signin_failures WHERE ip = $1 AND at > $2",
    };
    let r = c
        .query_one(sql, &[&value, &(now_ms - policy.window_ms)])
        .await?;
    let (count, latest): (i64, Option<i64>) = (r.get(0), r.get(1));
    Ok(match latest {
        Some(latest) if count >= i64::from(limit) && now_ms < latest + policy.lock_ms => {
            Some(latest + policy.lock_ms)
        }
        _ => None,
    })
}

async fn lockout<C: deadpool_postgres::GenericClient>(
    c: &C,
    login: &str,
    ip: &str,
    now_ms: i64,
    policy: &ThrottlePolicy,
) -> Result<Lockout> {
    if let Some(until_ms) = lock_for(
        c,
        Counted::Login,
        login,
        policy.max_login_failures,
        now_ms,
        policy,
    )
    .await?
    {
        return Ok(Lockout::Login { until_ms });
    }
    if let Some(until_ms) =
        lock_for(c, Counted::Ip, ip, policy.max_ip_failures, now_ms, policy).await?
    {
        return Ok(Lockout::Ip { until_ms });
    }
    Ok(Lockout::Open)
}

async fn throttle_lock<C: deadpool_postgres::GenericClient>(tx: &C) -> Result<()> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&THROTTLE_LOCK_KEY])
        .await?;
    Ok(())
}

/// Writes one `auth.signin_locked` entry, with its count, for each counted lock window that
/// has ended by `now_ms`, and marks it written (as `sqlite/accounts.rs` does). Call it under
/// [`throttle_lock`].
async fn log_ended_refusals<C: deadpool_postgres::GenericClient>(
    tx: &C,
    now_ms: i64,
) -> Result<usize> {
    let ended = tx
        .query(
            "SELECT ip, scope, subject, until_ms, actor, first_at, last_at, count
             FROM signin_refusals WHERE logged IS NULL AND until_ms <= $1
             ORDER BY until_ms, ip, scope, subject",
            &[&now_ms],
        )
        .await?;
    for w in &ended {
        let (ip, scope, subject, until_ms): (String, String, String, i64) =
            (w.get(0), w.get(1), w.get(2), w.get(3));
        let (actor, first_at, last_at, count): (String, i64, i64, i64) =
            (w.get(4), w.get(5), w.get(6), w.get(7));
        let detail = serde_json::json!({
            "ip": ip, "scope": scope, "subject": subject, "until_ms": until_ms,
            "first_at_ms": first_at, "last_at_ms": last_at, "count": count,
        });
        tx.execute(
            "UPDATE signin_refusals SET logged = $1
             WHERE ip = $2 AND scope = $3 AND subject = $4 AND until_ms = $5",
            &[&now_ms, &ip, &scope, &subject, &until_ms],
        )
        .await?;
        append(tx, &actor, "auth.signin_locked", None, &detail.to_string()).await?;
    }
    Ok(ended.len())
}

impl AccountStore for PgBackend {
    fn add_user(&self, user: &NewUser, actor: &str) -> Result<UserRecord> {
        self.block_on(async {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            tx.execute(
                "INSERT INTO users (login, name, role, password_hash, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &user.login,
                    &user.name,
                    &user.role.key(),
                    &user.password_hash,
                    &now_ms(),
                ],
            )
            .await
            .map_err(|e| match StorageError::from(e) {
                StorageError::Conflict(_) => {
                    StorageError::Conflict(format!("登录名 `{}` 已被使用", user.login))
                }
                other => other,
            })?;
            let detail = serde_json::json!({ "login": user.login, "role": user.role.key() });
            append(&tx, actor, "user.add", None, &detail.to_string()).await?;
            tx.commit().await?;
            self.caches.generations.sessions.bump();
            Ok::<_, StorageError>(())
        })?;
        self.user(&user.login)
    }

    fn users(&self) -> Result<Vec<UserRecord>> {
        self.read(async |c| {
            let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY role, login");
            c.query(&sql, &[])
                .await?
                .iter()
                .map(user_from_row)
                .collect()
        })
    }

    fn user(&self, login: &str) -> Result<UserRecord> {
        nul_login(login)?;
        self.read(async |c| {
            let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE login = $1");
            match c.query_opt(&sql, &[&login]).await? {
                Some(r) => user_from_row(&r),
                None => Err(no_user(login)),
            }
        })
    }

    fn set_user_active(&self, login: &str, active: bool, actor: &str) -> Result<()> {
        nul_login(login)?;
        self.block_on(async {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            let n = tx
                .execute(
                    "UPDATE users SET active = $1 WHERE login = $2",
                    &[&i64::from(active), &login],
                )
                .await?;
            if n == 0 {
                return Err(no_user(login));
            }
            let action = if active {
                "user.enable"
            } else {
                "user.disable"
            };
            let detail = serde_json::json!({ "login": login });
            append(&tx, actor, action, None, &detail.to_string()).await?;
            tx.commit().await?;
            self.caches.generations.sessions.bump();
            Ok(())
        })
    }

    fn set_password(&self, login: &str, password_hash: &str, actor: &str) -> Result<()> {
        nul_login(login)?;
        self.block_on(async {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            let n = tx
                .execute(
                    "UPDATE users SET password_hash = $1 WHERE login = $2",
                    &[&password_hash, &login],
                )
                .await?;
            if n == 0 {
                return Err(no_user(login));
            }
            let detail = serde_json::json!({ "login": login });
            append(&tx, actor, "user.password", None, &detail.to_string()).await?;
            tx.commit().await?;
            self.caches.generations.sessions.bump();
            Ok(())
        })
    }

    fn start_session(&self, s: &NewSession, replaces: Option<&str>) -> Result<()> {
        self.block_on(async {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            throttle_lock(&tx).await?;
            if let Some(old) = replaces {
                tx.execute("DELETE FROM sessions WHERE id_hash = $1", &[&old])
                    .await?;
            }
            tx.execute(
                "INSERT INTO sessions (id_hash, user_id, csrf, created_at, last_seen, ip, user_agent)
                 VALUES ($1, $2, $3, $4, $4, $5, $6)",
                &[&s.id_hash, &s.user.id, &s.csrf, &s.now_ms, &s.ip, &s.user_agent],
            )
            .await?;
            tx.execute(
                "DELETE FROM signin_failures WHERE login = $1",
                &[&throttle_login_key(&s.user.login)],
            )
            .await?;
            log_ended_refusals(&tx, s.now_ms).await?;
            let detail = serde_json::json!({
                "ip": s.ip,
                "role": s.user.role.key(),
                "user_agent": s.user_agent.chars().take(120).collect::<String>(),
            });
            append(&tx, &s.user.login, "auth.signin", None, &detail.to_string()).await?;
            tx.commit().await?;
            self.caches.generations.sessions.bump();
            Ok(())
        })
    }

    fn session(
        &self,
        id_hash: &str,
        now_ms: i64,
        limits: &SessionLimits,
        touch: bool,
    ) -> Result<SessionLookup> {
        // As `sqlite/accounts.rs`: the cached row when it is current and needs nothing done,
        // else one read. (A due touch reads again: the entry kept after it is then fresh, so
        // no entry serves data older than the cache's bound.)
        let generation = self.caches.generations.sessions.now();
        if let Some(s) = self.caches.sessions.get(id_hash, generation)
            && limits.due(&s, now_ms, touch) == SessionDue::Nothing
        {
            return Ok(SessionLookup::Valid(s));
        }
        let Some(mut s) = self.read(async |c| session_row(c, id_hash).await)? else {
            return Ok(SessionLookup::Missing);
        };
        match limits.due(&s, now_ms, touch) {
            SessionDue::End => {
                self.block_on(async {
                    let c = self.conn().await?;
                    c.execute("DELETE FROM sessions WHERE id_hash = $1", &[&id_hash])
                        .await?;
                    Ok::<_, StorageError>(())
                })?;
                self.caches.generations.sessions.bump();
                return Ok(SessionLookup::Expired);
            }
            SessionDue::EndUser => {
                self.block_on(async {
                    let c = self.conn().await?;
                    c.execute("DELETE FROM sessions WHERE user_id = $1", &[&s.user.id])
                        .await?;
                    Ok::<_, StorageError>(())
                })?;
                self.caches.generations.sessions.bump();
                return Ok(SessionLookup::Missing);
            }
            SessionDue::Touch => {
                self.block_on(async {
                    let c = self.conn().await?;
                    c.execute(
                        "UPDATE sessions SET last_seen = GREATEST(last_seen, $1) WHERE id_hash = $2",
                        &[&now_ms, &id_hash],
                    )
                    .await?;
                    Ok::<_, StorageError>(())
                })?;
                s.last_seen_ms = now_ms;
            }
            SessionDue::Nothing => {}
        }
        // Kept under the generation taken before the read: a sign-out through this instance
        // meanwhile leaves the entry stale.
        self.caches
            .sessions
            .put(id_hash.to_string(), generation, s.clone());
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
            .caches
            .sessions
            .get(id_hash, self.caches.generations.sessions.now())?;
        (limits.due(&s, now_ms, touch) == SessionDue::Nothing).then_some(s)
    }

    fn end_session(&self, id_hash: &str, actor: &str) -> Result<()> {
        self.block_on(async {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            let n = tx
                .execute("DELETE FROM sessions WHERE id_hash = $1", &[&id_hash])
                .await?;
            if n > 0 {
                append(&tx, actor, "auth.signout", None, "{}").await?;
            }
            tx.commit().await?;
            self.caches.generations.sessions.bump();
            Ok(())
        })
    }

    fn end_user_sessions(&self, user_id: i64, keep: Option<&str>) -> Result<usize> {
        self.block_on(async {
            let c = self.conn().await?;
            let n = c
                .execute(
                    "DELETE FROM sessions WHERE user_id = $1 AND ($2::text IS NULL OR id_hash <> $2)",
                    &[&user_id, &keep],
                )
                .await?;
            self.caches.generations.sessions.bump();
            Ok(n as usize)
        })
    }

    fn change_own_password(
        &self,
        user: &UserRecord,
        password_hash: &str,
        keep: &str,
        ip: &str,
    ) -> Result<()> {
        self.block_on(async {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            tx.execute(
                "UPDATE users SET password_hash = $1 WHERE id = $2",
                &[&password_hash, &user.id],
            )
            .await?;
            let ended = tx
                .execute(
                    "DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2",
                    &[&user.id, &keep],
                )
                .await?;
            let detail = serde_json::json!({ "ip": ip, "other_sessions_ended": ended });
            append(
                &tx,
                &user.login,
                "auth.password_change",
                None,
                &detail.to_string(),
            )
            .await?;
            tx.commit().await?;
            self.caches.generations.sessions.bump();
            Ok(())
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
        self.read(async |c| lockout(c, &key, ip, now_ms, policy).await)
    }

    fn signin_refused(&self, login: &str, ip: &str, lock: Lockout, now_ms: i64) -> Result<()> {
        let key = throttle_login_key(login);
        let (scope, subject, until_ms) = match lock {
            Lockout::Open => return Ok(()),
            Lockout::Login { until_ms } => ("login", key.as_str(), until_ms),
            Lockout::Ip { until_ms } => ("ip", ip, until_ms),
        };
        self.block_on(async {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            throttle_lock(&tx).await?;
            log_ended_refusals(&tx, now_ms).await?;
            tx.execute(
                "INSERT INTO signin_refusals
                     (ip, scope, subject, until_ms, actor, first_at, last_at, count)
                 VALUES ($1, $2, $3, $4, $5, $6, $6, 1)
                 ON CONFLICT (ip, scope, subject, until_ms)
                 DO UPDATE SET count = signin_refusals.count + 1,
                               last_at = GREATEST(signin_refusals.last_at, EXCLUDED.last_at)",
                &[&ip, &scope, &subject, &until_ms, &key, &now_ms],
            )
            .await?;
            tx.commit().await?;
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
        self.block_on(async {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            throttle_lock(&tx).await?;
            log_ended_refusals(&tx, now_ms).await?;
            let before = lockout(&tx, &key, ip, now_ms, policy).await?;
            tx.execute(
                "INSERT INTO signin_failures (login, ip, at) VALUES ($1, $2, $3)",
                &[&key, &ip, &now_ms],
            )
            .await?;
            let after = lockout(&tx, &key, ip, now_ms, policy).await?;
            let detail = serde_json::json!({ "ip": ip, "reason": reason.key() });
            append(&tx, &key, "auth.signin_failed", None, &detail.to_string()).await?;
            if before == Lockout::Open
                && let Some(until) = after.until_ms()
            {
                let (scope, subject) = match after {
                    Lockout::Ip { .. } => ("ip", ip),
                    _ => ("login", key.as_str()),
                };
                let detail = serde_json::json!({
                    "scope": scope, "subject": subject, "ip": ip, "until_ms": until,
                });
                append(&tx, &key, "auth.lockout", None, &detail.to_string()).await?;
            }
            tx.commit().await?;
            Ok(after)
        })
    }

    fn purge_web_state(
        &self,
        now_ms: i64,
        limits: &SessionLimits,
        policy: &ThrottlePolicy,
    ) -> Result<usize> {
        self.block_on(async {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            throttle_lock(&tx).await?;
            let sessions = tx
                .execute(
                    "DELETE FROM sessions WHERE last_seen <= $1 OR created_at <= $2",
                    &[&(now_ms - limits.idle_ms), &(now_ms - limits.absolute_ms)],
                )
                .await?;
            let horizon = policy.window_ms.max(policy.lock_ms);
            let failures = tx
                .execute(
                    "DELETE FROM signin_failures WHERE at <= $1",
                    &[&(now_ms - horizon)],
                )
                .await?;
            log_ended_refusals(&tx, now_ms).await?;
            // Summarised rows are kept as long as failures, then go (the chain has the count).
            let refusals = tx
                .execute(
                    "DELETE FROM signin_refusals WHERE logged IS NOT NULL AND until_ms <= $1",
                    &[&(now_ms - horizon)],
                )
                .await?;
            tx.commit().await?;
            self.caches.generations.sessions.bump();
            Ok((sessions + failures + refusals) as usize)
        })
    }

    fn add_api_token(&self, token: &NewApiToken, actor: &str) -> Result<ApiTokenRecord> {
        let id = self.block_on(async {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            let Some(user) = tx
                .query_opt("SELECT id FROM users WHERE login = $1", &[&token.login])
                .await?
            else {
                return Err(StorageError::NotFound(format!(
                    "没有用户 `{}`(用 `sheping user list` 查看)",
                    token.login
                )));
            };
            let user: i64 = user.get(0);
            let id: i64 = tx
                .query_one(
                    "INSERT INTO api_tokens (user_id, token_hash, prefix, label, created_at, created_by, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                    &[
                        &user,
                        &token.token_hash,
                        &token.prefix,
                        &token.label,
                        &now_ms(),
                        &actor,
                        &token.expires_at.map(|t| t.timestamp_millis()),
                    ],
                )
                .await?
                .get(0);
            let detail = serde_json::json!({
                "id": id,
                "login": token.login,
                "prefix": token.prefix,
                "label": token.label,
                "expires_at": token.expires_at,
            });
            append(&tx, actor, "api_token.create", None, &detail.to_string()).await?;
            tx.commit().await?;
            Ok(id)
        })?;
        self.api_tokens()?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or_else(|| StorageError::NotFound(format!("API token {id}")))
    }

    fn api_tokens(&self) -> Result<Vec<ApiTokenRecord>> {
        self.read(async |c| {
            let sql = format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id ORDER BY t.id"
            );
            c.query(&sql, &[]).await?.iter().map(token_from_row).collect()
        })
    }

    fn revoke_api_token(&self, id: i64, actor: &str) -> Result<()> {
        self.block_on(async {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            let n = tx
                .execute(
                    "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                    &[&now_ms(), &id],
                )
                .await?;
            if n == 0 {
                return Err(StorageError::NotFound(format!(
                    "没有可吊销的 API 令牌 #{id}(用 `sheping token list` 查看)"
                )));
            }
            let detail = serde_json::json!({ "id": id });
            append(&tx, actor, "api_token.revoke", None, &detail.to_string()).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn api_token_user(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(ApiTokenRecord, UserRecord)>> {
        let found = self.read(async |c| {
            let sql = format!(
                "SELECT {TOKEN_COLUMNS}, u.name, u.password_hash FROM api_tokens t JOIN users u ON u.id = t.user_id
                 WHERE t.token_hash = $1"
            );
            let Some(r) = c.query_opt(&sql, &[&token_hash]).await? else {
                return Ok(None);
            };
            let token = token_from_row(&r)?;
            let user = UserRecord {
                id: r.get(11),
                login: token.login.clone(),
                name: r.get(12),
                role: token.role,
                active: token.user_active,
                password_hash: r.get(13),
            };
            Ok(Some((token, user)))
        })?;
        let Some((token, user)) = found else {
            return Ok(None);
        };
        let now_ms = now.timestamp_millis();
        let stale = token
            .last_used_at_ms
            .is_none_or(|t| now_ms - t >= LAST_USED_RESOLUTION_MS);
        if stale && token.is_usable(now) {
            // The minute is checked again in the statement: of several instances answering
            // the token at once, one writes.
            self.block_on(async {
                let c = self.conn().await?;
                c.execute(
                    "UPDATE api_tokens SET last_used_at = $1
                     WHERE id = $2 AND (last_used_at IS NULL OR last_used_at <= $1::bigint - $3::bigint)",
                    &[&now_ms, &token.id, &LAST_USED_RESOLUTION_MS],
                )
                .await?;
                Ok::<_, StorageError>(())
            })?;
        }
        Ok(Some((token, user)))
    }
}
