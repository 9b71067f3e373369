//! Sign-in, sessions, roles and form tokens.
//!
//! * The session cookie holds 256 random bits; the server keeps only their SHA-256, with the
//!   user, a per-session CSRF token and the times that make it expire. A new session (new
//!   token) is made at every sign-in and the browser's previous one is deleted, so a token
//!   planted before sign-in is worth nothing (no session fixation).
//! * Cookies are HttpOnly and SameSite=Lax, Secure over TLS.
//! * Every state-changing form carries the session's token (`csrf`), checked here; the sign-in
//!   form, before any session, carries a token that must match a short-lived cookie.
//! * Roles are checked by the [`Allow`] extractor on every route; refusals answer 403 and are
//!   written to the audit log.

use std::net::SocketAddr;

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{ConnectInfo, FromRequestParts, OptionalFromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::security::{
    client_ip, constant_time_eq, cookie, is_https, random_token, set_cookie, token_hash,
};
use super::views::{Frame, local_time};
use super::{AppState, WebError};
use crate::domain::user::{self, Role};
use crate::storage::{AuditEvent, StorageError, UserRecord};
use crate::storage::{FailureReason, Lockout, NewSession, SessionLookup};

pub const SESSION_COOKIE: &str = "sheping_session";
const SIGNIN_COOKIE: &str = "sheping_signin";

pub const ADMIN: u8 = 1;
pub const OPERATOR: u8 = 2;
pub const STATISTICIAN: u8 = 4;
pub const EVALUATOR: u8 = 8;
/// Who sees field progress and the audit log: administrators, and statisticians read-only.
pub const SUPERVISORS: u8 = ADMIN | STATISTICIAN;
/// Who sees results.
pub const RESULTS: u8 = ADMIN | STATISTICIAN | EVALUATOR;
pub const ANYONE: u8 = ADMIN | OPERATOR | STATISTICIAN | EVALUATOR;

pub fn role_bit(role: Role) -> u8 {
    match role {
        Role::Admin => ADMIN,
        Role::Operator => OPERATOR,
        Role::Statistician => STATISTICIAN,
        Role::Evaluator => EVALUATOR,
    }
}

/// Where each role starts.
pub fn home_of(role: Role) -> &'static str {
    match role {
        Role::Admin => "/admin",
        Role::Operator => "/call",
        Role::Statistician => "/progress",
        Role::Evaluator => "/results",
    }
}

/// A signed-in user's session.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: UserRecord,
    pub csrf: String,
    pub id_hash: String,
    pub ip: String,
    pub https: bool,
}

impl Session {
    /// Checks a submitted form token against the session's.
    pub fn check_csrf(&self, submitted: &str) -> Result<(), WebError> {
        if !submitted.is_empty() && constant_time_eq(submitted, &self.csrf) {
            Ok(())
        } else {
            tracing::warn!(user = %self.user.login, "form token mismatch");
            Err(WebError::Csrf)
        }
    }

    pub fn frame(&self, active: &str) -> Frame {
        Frame::new(self, active)
    }
}

/// Scripts and the API get 401, pages a redirect to sign-in.
fn wants_status(parts: &Parts) -> bool {
    parts.uri.path().starts_with("/api/") || parts.headers.contains_key("x-requested-with")
}

fn next_of(parts: &Parts) -> String {
    let p = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    if parts.method == axum::http::Method::GET {
        p
    } else {
        // After sign-in the browser comes back with GET: return to the page, not the action.
        parts
            .headers
            .get(header::REFERER)
            .and_then(|r| r.to_str().ok())
            .and_then(|r| r.find("://").map(|i| &r[i + 3..]))
            .and_then(|r| r.find('/').map(|i| r[i..].to_string()))
            .unwrap_or_else(|| "/console".to_string())
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        if let Some(s) = parts.extensions.get::<Session>() {
            return Ok(s.clone());
        }
        let status_only = wants_status(parts);
        let reject = |expired: bool| {
            if status_only {
                WebError::Unauthorized
            } else {
                WebError::SignIn {
                    next: next_of(parts),
                    expired,
                }
            }
        };
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(reject(false));
        };
        let id_hash = token_hash(token);
        let limits = state.config.limits;
        let now_ms = chrono::Utc::now().timestamp_millis();
        // Background refreshes (live progress) do not count as activity.
        let touch = !parts.headers.contains_key("x-requested-with");
        // Most requests find their session in memory: no trip to the blocking pool.
        let lookup = match state.store.session_cached(&id_hash, now_ms, &limits, touch) {
            Some(record) => SessionLookup::Valid(record),
            None => {
                let id_hash = id_hash.clone();
                state
                    .blocking(move |s| Ok(s.session(&id_hash, now_ms, &limits, touch)?))
                    .await?
            }
        };
        let record = match lookup {
            SessionLookup::Valid(r) => r,
            SessionLookup::Expired => return Err(reject(true)),
            SessionLookup::Missing => return Err(reject(false)),
        };
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>();
        let session = Session {
            ip: client_ip(&parts.headers, peer, state),
            https: is_https(&parts.headers, state),
            user: record.user,
            csrf: record.csrf,
            id_hash,
        };
        parts.extensions.insert(session.clone());
        Ok(session)
    }
}

impl OptionalFromRequestParts<AppState> for Session {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, WebError> {
        match <Session as FromRequestParts<AppState>>::from_request_parts(parts, state).await {
            Ok(s) => Ok(Some(s)),
            Err(WebError::SignIn { .. } | WebError::Unauthorized) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A session whose role is in `MASK` (see [`ADMIN`] …); any other role gets 403, logged.
pub struct Allow<const MASK: u8>(pub Session);

/// The form token a state-changing form must carry, left in the request by [`Allow`] for
/// [`CheckedForm`].
#[derive(Clone)]
struct ExpectedToken {
    csrf: String,
    login: String,
}

/// A state-changing form whose token matches the session's. It comes after an [`Allow`] in a
/// handler's arguments (the role is checked first, as before any path or form is read) and
/// checks the token itself, so no handler can forget it. Multipart uploads carry their token
/// inside the body and check it themselves ([`Session::check_csrf`]).
pub struct CheckedForm<T>(pub T);

/// A form that carries the session's form token.
pub trait FormToken {
    fn form_token(&self) -> &str;
}

/// Forms read as name/value pairs (several values per name).
impl FormToken for Vec<(String, String)> {
    fn form_token(&self) -> &str {
        self.iter()
            .find(|(k, _)| k == "csrf")
            .map_or("", |(_, v)| v.as_str())
    }
}

impl<T> axum::extract::FromRequest<AppState> for CheckedForm<T>
where
    T: serde::de::DeserializeOwned + FormToken + Send,
{
    type Rejection = WebError;

    async fn from_request(req: axum::extract::Request, state: &AppState) -> Result<Self, WebError> {
        // Without an `Allow` before it there is no session to check against: refused.
        let expected = req
            .extensions()
            .get::<ExpectedToken>()
            .cloned()
            .ok_or(WebError::Csrf)?;
        let Form(form) =
            <Form<T> as axum::extract::FromRequest<AppState>>::from_request(req, state)
                .await
                .map_err(|r| WebError::Form(r.status(), r.body_text()))?;
        let submitted = form.form_token();
        if !submitted.is_empty() && constant_time_eq(submitted, &expected.csrf) {
            Ok(CheckedForm(form))
        } else {
            tracing::warn!(user = %expected.login, "form token mismatch");
            Err(WebError::Csrf)
        }
    }
}

/// Forms with a `csrf` field.
macro_rules! form_token {
    ($($t:ty),* $(,)?) => {
        $(impl $crate::web::auth::FormToken for $t {
            fn form_token(&self) -> &str {
                &self.csrf
            }
        })*
    };
}
pub(crate) use form_token;

form_token!(CsrfOnly, PasswordForm);

impl<const MASK: u8> FromRequestParts<AppState> for Allow<MASK> {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let session =
            <Session as FromRequestParts<AppState>>::from_request_parts(parts, state).await?;
        if role_bit(session.user.role) & MASK != 0 {
            if !matches!(
                parts.method,
                axum::http::Method::GET | axum::http::Method::HEAD
            ) {
                parts.extensions.insert(ExpectedToken {
                    csrf: session.csrf.clone(),
                    login: session.user.login.clone(),
                });
            }
            return Ok(Allow(session));
        }
        let login = session.user.login.clone();
        let detail = serde_json::json!({
            "method": parts.method.as_str(),
            "path": parts.uri.path(),
            "role": session.user.role.key(),
            "ip": session.ip,
        });
        tracing::warn!(user = %login, path = %parts.uri.path(), "forbidden");
        state
            .blocking(move |s| {
                Ok(s.audit(&AuditEvent {
                    actor: &login,
                    action: "auth.forbidden",
                    round_key: None,
                    detail,
                })?)
            })
            .await?;
        Err(WebError::Forbidden)
    }
}

// ---------------------------------------------------------------------------------------------
// Sign-in and sign-out.

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
struct LoginPage {
    token: String,
    next: String,
    login: String,
    error: Option<String>,
    notice: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
    #[serde(default)]
    expired: Option<String>,
    #[serde(default)]
    signed_out: Option<String>,
}

/// Only same-site paths: never `//host` or `/\host` (open redirect).
pub fn safe_next(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.starts_with("/login")
        && !next.chars().any(|c| c.is_control());
    ok.then_some(next)
}

fn login_page(
    https: bool,
    next: String,
    login: String,
    error: Option<String>,
    notice: Option<String>,
    status: StatusCode,
) -> Response {
    let token = random_token();
    let cookie = set_cookie(SIGNIN_COOKIE, &token, "/login", "Strict", Some(3600), https);
    let page = LoginPage {
        token,
        next,
        login,
        error,
        notice,
    };
    (status, [(header::SET_COOKIE, cookie)], page).into_response()
}

pub async fn login_form(
    State(state): State<AppState>,
    session: Option<Session>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    if let Some(s) = session {
        let to = safe_next(&q.next).unwrap_or(home_of(s.user.role));
        return Redirect::to(to).into_response();
    }
    let notice = if q.expired.is_some() {
        Some("会话已超时,请重新登录。".to_string())
    } else if q.signed_out.is_some() {
        Some("您已安全退出。".to_string())
    } else {
        None
    };
    let mut res = login_page(
        is_https(&headers, &state),
        q.next,
        String::new(),
        None,
        notice,
        StatusCode::OK,
    );
    if q.expired.is_some() {
        res.headers_mut()
            .append(header::SET_COOKIE, clear_session_cookie(false));
    }
    res
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: String,
}

fn clear_session_cookie(secure: bool) -> axum::http::HeaderValue {
    set_cookie(SESSION_COOKIE, "", "/", "Lax", Some(0), secure)
}

fn lock_message(lock: Lockout) -> String {
    let until = lock.until_ms().unwrap_or_default();
    let minutes = ((until - chrono::Utc::now().timestamp_millis()).max(0) + 59_999) / 60_000;
    let at = local_time(until, chrono_tz::Asia::Shanghai, "%H:%M");
    match lock {
        Lockout::Ip { .. } => {
            format!("本机登录失败次数过多,已暂时锁定登录,请于 {at} 后再试(约 {minutes} 分钟)。")
        }
        _ => format!(
            "该账号连续登录失败次数过多,已暂时锁定,请于 {at} 后再试(约 {minutes} 分钟)。如忘记密码,请联系管理员重置。"
        ),
    }
}

/// A hash to verify against when the login is unknown, so that the answer takes as long as
/// for a known login with a wrong password.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| user::hash_password("sheping-dummy-password"));
    &HASH
}

pub async fn login_submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    let https = is_https(&headers, &state);
    let ip = client_ip(&headers, Some(&ConnectInfo(peer)), &state);
    let next = form.next.clone();
    let typed = form.login.trim().to_string();
    let fail_page = |error: String, status: StatusCode| {
        login_page(
            https,
            next.clone(),
            typed.clone(),
            Some(error),
            None,
            status,
        )
    };
    let cookie_token = cookie(&headers, SIGNIN_COOKIE).unwrap_or("");
    if form.token.is_empty() || !constant_time_eq(&form.token, cookie_token) {
        return Ok(fail_page(
            "登录页面已过期,请重新输入登录名和密码。".into(),
            StatusCode::FORBIDDEN,
        ));
    }
    if typed.is_empty() || form.password.is_empty() {
        return Ok(fail_page(
            "请输入登录名和密码。".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ));
    }
    let policy = state.config.throttle;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(200)
        .collect::<String>();
    let previous = cookie(&headers, SESSION_COOKIE).map(token_hash);
    let login = typed.clone();
    let ip2 = ip.clone();
    let outcome = state
        .blocking(move |s| {
            let lock = s.signin_lockout(&login, &ip2, now_ms, &policy)?;
            if lock != Lockout::Open {
                // Counted, not logged one by one: the window's single audit entry carries
                // the count (anonymous traffic must not grow the audit log).
                s.signin_refused(&login, &ip2, lock, now_ms)?;
                return Ok(Err(lock));
            }
            let user = match s.user(&login) {
                Ok(u) => Some(u),
                Err(StorageError::NotFound(_)) => None,
                Err(e) => return Err(e.into()),
            };
            let verified = user::verify_password(
                &form.password,
                user.as_ref().map_or(dummy_hash(), |u| &u.password_hash),
            );
            let failure = match &user {
                None => Some(FailureReason::UnknownLogin),
                Some(_) if !verified => Some(FailureReason::BadPassword),
                Some(u) if !u.active => Some(FailureReason::Disabled),
                Some(_) => None,
            };
            if let Some(reason) = failure {
                let lock = s.signin_failed(&login, &ip2, reason, now_ms, &policy)?;
                return Ok(Err(lock));
            }
            let user = user.expect("verified user");
            let token = random_token();
            let csrf = random_token();
            let id_hash = token_hash(&token);
            s.start_session(
                &NewSession {
                    id_hash: &id_hash,
                    user: &user,
                    csrf: &csrf,
                    ip: &ip2,
                    user_agent: &user_agent,
                    now_ms,
                },
                previous.as_deref(),
            )?;
            Ok(Ok((user, token)))
        })
        .await?;
    match outcome {
        Err(Lockout::Open) => Ok(fail_page(
            "登录名或密码错误。".into(),
            StatusCode::UNAUTHORIZED,
        )),
        Err(lock) => Ok(fail_page(lock_message(lock), StatusCode::TOO_MANY_REQUESTS)),
        Ok((user, token)) => {
            tracing::info!(user = %user.login, ip = %ip, "signed in");
            let to = safe_next(&form.next).unwrap_or(home_of(user.role));
            let mut res = Redirect::to(to).into_response();
            let h = res.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(SESSION_COOKIE, &token, "/", "Lax", None, https),
            );
            h.append(
                header::SET_COOKIE,
                set_cookie(SIGNIN_COOKIE, "", "/login", "Strict", Some(0), https),
            );
            Ok(res)
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    pub csrf: String,
}

pub async fn logout(
    State(state): State<AppState>,
    Allow(session): Allow<ANYONE>,
    CheckedForm(_form): CheckedForm<CsrfOnly>,
) -> Result<Response, WebError> {
    let id_hash = session.id_hash.clone();
    let login = session.user.login.clone();
    state
        .blocking(move |s| Ok(s.end_session(&id_hash, &login)?))
        .await?;
    let mut res = Redirect::to("/login?signed_out=1").into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, clear_session_cookie(session.https));
    Ok(res)
}

pub async fn console(Allow(session): Allow<ANYONE>) -> Redirect {
    Redirect::to(home_of(session.user.role))
}

// ---------------------------------------------------------------------------------------------
// Changing one's own password.

#[derive(Template, WebTemplate)]
#[template(path = "password.html")]
struct PasswordPage {
    f: Frame,
    error: Option<String>,
    done: bool,
}

pub async fn password_form(Allow(session): Allow<ANYONE>) -> impl IntoResponse {
    PasswordPage {
        f: session.frame("password"),
        error: None,
        done: false,
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    confirm: String,
}

pub async fn password_submit(
    State(state): State<AppState>,
    Allow(session): Allow<ANYONE>,
    CheckedForm(form): CheckedForm<PasswordForm>,
) -> Result<Response, WebError> {
    let page = |error: Option<String>, done: bool| PasswordPage {
        f: session.frame("password"),
        error,
        done,
    };
    let stored = session.user.password_hash.clone();
    let current = form.current.clone();
    let ok = tokio::task::spawn_blocking(move || user::verify_password(&current, &stored))
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let problem = if !ok {
        Some("当前密码不正确。".to_string())
    } else if let Err(e) = user::validate_password(&form.new) {
        Some(e.to_string())
    } else if form.new != form.confirm {
        Some("两次输入的新密码不一致。".to_string())
    } else if form.new == form.current {
        Some("新密码不能与当前密码相同。".to_string())
    } else {
        None
    };
    if let Some(p) = problem {
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page(Some(p), false)).into_response());
    }
    let user = session.user.clone();
    let keep = session.id_hash.clone();
    let ip = session.ip.clone();
    let new = form.new.clone();
    state
        .blocking(move |s| {
            let hash = user::hash_password(&new);
            Ok(s.change_own_password(&user, &hash, &keep, &ip)?)
        })
        .await?;
    Ok(page(None, true).into_response())
}
