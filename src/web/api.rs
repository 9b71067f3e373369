//! The evaluators' HTTP API (`/api/v1/...`): the results JSON (the same document as
//! `sheping results --json`), the exports, and an OpenAPI description.
//!
//! Authentication: `Authorization: Bearer <token>` with a token from
//! `sheping token create --login LOGIN` (only its SHA-256 is stored), or the console's session
//! cookie. Results: admin, statistician, evaluator. Exports: as `ExportKind::roles` says
//! (evaluators: `scores` and `distributions`; admin and statistician: all). Every answer
//! under `/api` that is not a success is JSON: `{"error": {"code": "...", "message": "..."}}`
//! with 400 (query parameters), 401 (no or unknown token), 403 (role), 404 (round, unit or
//! path), 405 (method), 413 (a request body: the API reads none).

use std::sync::LazyLock;

use axum::extract::{FromRequestParts, OptionalFromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::AppState;
use super::auth::Session;
use crate::domain::user::Role;
use crate::exports::{self, ExportError, ExportFormat, ExportKind, ExportOptions};
use crate::results::{self, ResultsError, ResultsOptions};
use crate::storage::{AuditEvent, StorageError, UserRecord};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/rounds", get(rounds))
        .route("/api/v1/rounds/{key}/results", get(round_results))
        .route("/api/v1/rounds/{key}/compare/{with}", get(compare_rounds))
        .route(
            "/api/v1/rounds/{key}/units/{unit}/results",
            get(unit_results),
        )
        .route("/api/v1/rounds/{key}/exports/{kind}", get(export))
        // Unknown paths under /api answer in the API's JSON, not the console's HTML page.
        .route("/api", any(no_such_path))
        .route("/api/", any(no_such_path))
        .route("/api/{*rest}", any(no_such_path))
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(axum::middleware::from_fn(no_request_body))
}

/// Largest request body the API lets through to its handlers; every endpoint is a GET and
/// reads none.
const MAX_BODY_BYTES: u64 = 64 * 1024;

async fn no_request_body(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return ApiError::PayloadTooLarge(format!(
            "请求体过大({} 字节):本接口只接受不带请求体的 GET 请求",
            declared.unwrap_or_default()
        ))
        .into_response();
    }
    next.run(req).await
}

async fn no_such_path(req: Request) -> ApiError {
    ApiError::NotFound(format!(
        "没有这个接口:{} {}。接口列表见 /api/v1/openapi.json",
        req.method(),
        req.uri().path()
    ))
}

async fn method_not_allowed(req: Request) -> Response {
    let mut res = ApiError::MethodNotAllowed(format!(
        "{} 不能用于 {}:本接口只接受 GET(及 HEAD)请求",
        req.method(),
        req.uri().path()
    ))
    .into_response();
    res.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET,HEAD"));
    res
}

/// Results and exports run the bootstrap on every core: at most two at a time, the others wait.
static COMPUTE: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(2));

const READ_RESULTS: &[Role] = &[Role::Admin, Role::Statistician, Role::Evaluator];

// ---------------------------------------------------------------------------------------------
// Errors

#[derive(Debug)]
pub enum ApiError {
    Unauthorized(String),
    Forbidden(String),
    NotFound(String),
    BadRequest(String),
    MethodNotAllowed(String),
    PayloadTooLarge(String),
    Unavailable(String),
    /// The stored data cannot answer as asked (e.g. attempts that do not fit the survey).
    Conflict(String),
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, "unauthorized", m),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request", m),
            ApiError::MethodNotAllowed(m) => {
                (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", m)
            }
            ApiError::PayloadTooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", m),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, "conflict", m),
            ApiError::Internal(m) => {
                tracing::error!(error = %m, "API request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "系统内部错误,已记录。请稍后重试或联系管理员。".to_string(),
                )
            }
        };
        let mut res = (
            status,
            Json(json!({ "error": { "code": code, "message": message } })),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"sheping\""),
            );
        }
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        res
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound(m) => ApiError::NotFound(m),
            StorageError::Invalid(m) => ApiError::BadRequest(m),
            StorageError::Full => ApiError::Unavailable("服务器存储空间已满,请通知管理员。".into()),
            StorageError::BadStoredValue(bad) => ApiError::Conflict(bad.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<ResultsError> for ApiError {
    fn from(e: ResultsError) -> Self {
        match e {
            ResultsError::Storage(s) => s.into(),
            ResultsError::BadAttempts(m) => ApiError::Conflict(m),
            ResultsError::Scoring(crate::domain::scoring::ScoringError::BadOptions(m)) => {
                ApiError::BadRequest(m)
            }
            ResultsError::BottomK(e) => ApiError::BadRequest(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<ExportError> for ApiError {
    fn from(e: ExportError) -> Self {
        match e {
            ExportError::Results(r) => r.into(),
            ExportError::Storage(s) => s.into(),
            ExportError::Invalid(m) => ApiError::BadRequest(m),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<super::WebError> for ApiError {
    fn from(e: super::WebError) -> Self {
        match e {
            super::WebError::Storage(s) => s.into(),
            super::WebError::NotFound(m) => ApiError::NotFound(m),
            super::WebError::BadRequest(m) => ApiError::BadRequest(m),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// Runs blocking work (storage, scoring) off the async threads.
async fn blocking<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&dyn crate::engine::Store) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|e| ApiError::Internal(format!("task failed: {e}")))?
}

// ---------------------------------------------------------------------------------------------
// Who is calling

/// The authenticated caller: by bearer token, or else by the console's session cookie.
pub struct Caller {
    pub user: UserRecord,
    /// `token` or `session`.
    pub via: &'static str,
}

impl Caller {
    fn actor(&self) -> String {
        format!("api:{}", self.user.login)
    }

    /// 403 (logged) unless the caller's role is one of `roles`.
    async fn require(&self, state: &AppState, roles: &[Role], path: &str) -> Result<(), ApiError> {
        if roles.contains(&self.user.role) {
            return Ok(());
        }
        let login = self.user.login.clone();
        let detail = json!({ "path": path, "role": self.user.role.key(), "via": self.via });
        tracing::warn!(user = %login, path, "API forbidden");
        blocking(state, move |s| {
            Ok(s.audit(&AuditEvent {
                actor: &format!("api:{login}"),
                action: "api.forbidden",
                round_key: None,
                detail,
            })?)
        })
        .await?;
        let allowed: Vec<&str> = roles.iter().map(|r| r.label()).collect();
        Err(ApiError::Forbidden(format!(
            "{}({})无权访问:仅限{}",
            self.user.login,
            self.user.role.label(),
            allowed.join("、")
        )))
    }
}

fn bearer(parts: &Parts) -> Option<Result<String, ApiError>> {
    let value = parts.headers.get(header::AUTHORIZATION)?;
    let malformed = || {
        ApiError::Unauthorized(
            "Authorization 头格式不对:应为 `Authorization: Bearer <令牌>`".into(),
        )
    };
    let Ok(text) = value.to_str() else {
        return Some(Err(malformed()));
    };
    let (scheme, token) = text.trim().split_once(' ').unwrap_or((text, ""));
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Some(Err(malformed()));
    }
    Some(Ok(token.to_string()))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(token) = bearer(parts) {
            let hash = results::api_token_hash(&token?);
            let now = chrono::Utc::now();
            let found = blocking(state, move |s| Ok(s.api_token_user(&hash, now)?)).await?;
            return match found {
                None => Err(ApiError::Unauthorized(
                    "令牌无效:请用 `sheping token create --login 登录名` 创建令牌".into(),
                )),
                Some((t, _)) if t.revoked_at_ms.is_some() => {
                    Err(ApiError::Unauthorized("令牌已吊销".into()))
                }
                Some((t, _)) if !t.user_active => {
                    Err(ApiError::Unauthorized("令牌所属用户已停用".into()))
                }
                Some((t, _)) if !t.is_usable(now) => {
                    Err(ApiError::Unauthorized("令牌已过期".into()))
                }
                Some((_, user)) => Ok(Caller { user, via: "token" }),
            };
        }
        match <Session as OptionalFromRequestParts<AppState>>::from_request_parts(parts, state)
            .await
        {
            Ok(Some(s)) => Ok(Caller {
                user: s.user,
                via: "session",
            }),
            Ok(None) => Err(ApiError::Unauthorized(
                "需要认证:请在请求头加 `Authorization: Bearer <令牌>`(令牌由 `sheping token create` 创建),或先登录控制台".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Handlers

/// A path's parameters, with a JSON error when they cannot be read (bad percent-encoding).
pub struct ApiPath<T>(pub T);

impl<T> FromRequestParts<AppState> for ApiPath<T>
where
    T: serde::de::DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match <Path<T> as FromRequestParts<AppState>>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(ApiPath(v)),
            Err(e) => Err(ApiError::BadRequest(format!(
                "路径 {} 无法读取({}):请按 UTF-8 百分号编码轮次和单位名称",
                parts.uri.path(),
                e.body_text()
            ))),
        }
    }
}

/// The query string as name/value pairs: every parameter is checked by name, so a wrong
/// value answers with which parameter, what is wrong and what is accepted.
pub struct ApiQuery(pub Vec<(String, String)>);

impl FromRequestParts<AppState> for ApiQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match Query::<Vec<(String, String)>>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(ApiQuery(v)),
            Err(e) => Err(ApiError::BadRequest(format!(
                "查询字符串无法读取({}):应为 name=value&name=value,按 UTF-8 百分号编码",
                e.body_text()
            ))),
        }
    }
}

impl ApiQuery {
    /// The value of `name` (once at most); any parameter not in `allowed` is an error.
    fn get(&self, name: &str, allowed: &[&str]) -> Result<Option<&str>, ApiError> {
        if let Some((unknown, _)) = self.0.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
            return Err(ApiError::BadRequest(if allowed.is_empty() {
                format!("未知的查询参数“{unknown}”:此接口不接受查询参数")
            } else {
                format!(
                    "未知的查询参数“{unknown}”:此接口只接受 {}",
                    allowed.join("、")
                )
            }));
        }
        let mut values = self.0.iter().filter(|(k, _)| k == name);
        let first = values.next().map(|(_, v)| v.as_str());
        if values.next().is_some() {
            return Err(ApiError::BadRequest(format!(
                "查询参数 {name} 出现了多次:只能给一次"
            )));
        }
        Ok(first)
    }

    fn boolean(&self, name: &str, allowed: &[&str]) -> Result<Option<bool>, ApiError> {
        self.get(name, allowed)?
            .map(|v| match v.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(ApiError::BadRequest(format!(
                    "查询参数 {name}“{v}”无效:应为 true 或 false"
                ))),
            })
            .transpose()
    }
}

#[derive(Debug, Default)]
pub struct ResultsQuery {
    /// `p_bottom` is the probability of falling in the bottom K (default 3).
    pub bottom_k: Option<u32>,
}

impl ResultsQuery {
    fn parse(q: &ApiQuery) -> Result<ResultsQuery, ApiError> {
        let bottom_k = q
            .get("bottom_k", &["bottom_k"])?
            .map(|v| {
                v.trim().parse::<u32>().map_err(|_| {
                    ApiError::BadRequest(format!(
                        "查询参数 bottom_k“{v}”无效:应为 1 到(参与排名的单位数 − 1)之间的整数"
                    ))
                })
            })
            .transpose()?;
        Ok(ResultsQuery { bottom_k })
    }
}

fn json_response(value: &impl serde::Serialize) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(value).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response())
}

async fn rounds(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller
        .require(&state, READ_RESULTS, "/api/v1/rounds")
        .await?;
    let rounds = blocking(&state, |s| {
        Ok(s.rounds()?
            .into_iter()
            .map(|r| {
                json!({
                    "key": r.round.key,
                    "title": r.round.title,
                    "field_start": r.round.field_start,
                    "field_end": r.round.field_end,
                    "locked": r.round.is_locked(),
                    "units": r.units,
                    "members": r.members,
                })
            })
            .collect::<Vec<_>>())
    })
    .await?;
    json_response(&json!({ "rounds": rounds }))
}

async fn compute(
    state: &AppState,
    caller: &Caller,
    key: String,
    q: &ResultsQuery,
) -> Result<results::ResultsDocument, ApiError> {
    let _permit = COMPUTE
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let actor = caller.actor();
    let opts = ResultsOptions {
        bottom_k: q.bottom_k,
        ..ResultsOptions::default()
    };
    blocking(state, move |s| {
        let round = s.round(&key)?;
        Ok(results::compute(
            s,
            &round,
            &opts,
            chrono::Utc::now(),
            &actor,
        )?)
    })
    .await
}

async fn round_results(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(key): ApiPath<String>,
    q: ApiQuery,
) -> Result<Response, ApiError> {
    let q = ResultsQuery::parse(&q)?;
    caller
        .require(
            &state,
            READ_RESULTS,
            &format!("/api/v1/rounds/{key}/results"),
        )
        .await?;
    let doc = caller.visible(compute(&state, &caller, key, &q).await?);
    json_response(&doc)
}

async fn compare_rounds(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((key, with)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    caller
        .require(
            &state,
            READ_RESULTS,
            &format!("/api/v1/rounds/{key}/compare/{with}"),
        )
        .await?;
    let _permit = COMPUTE
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let actor = caller.actor();
    let doc = blocking(&state, move |s| {
        let a = s.round(&key)?;
        let b = s.round(&with)?;
        Ok(crate::compare::compare_rounds(
            s,
            &a,
            &b,
            chrono::Utc::now(),
            &actor,
        )?)
    })
    .await?;
    json_response(&doc)
}

impl Caller {
    /// The results as this caller may see them: operators as anonymous codes unless the
    /// role may know who they are (`Role::sees_operator_identity`).
    fn visible(&self, mut doc: results::ResultsDocument) -> results::ResultsDocument {
        if !self.user.role.sees_operator_identity() {
            doc.hide_operators();
        }
        doc
    }
}

/// One unit's object from the round's document, with the round-level fields it depends on.
pub fn unit_document(doc: &results::ResultsDocument, unit: &str) -> Option<Value> {
    let u = doc
        .units
        .iter()
        .find(|u| u.unit == unit)
        .or_else(|| doc.units.iter().find(|u| u.code.as_deref() == Some(unit)))?;
    Some(json!({
        "round": doc.round,
        "title": doc.title,
        "computed_at": doc.computed_at,
        "field_closed": doc.field_closed,
        "locked": doc.locked,
        "survey": doc.survey,
        "ranked_by": doc.ranked_by,
        "bootstrap_seed": doc.bootstrap_seed,
        "bootstrap_seed_source": doc.bootstrap_seed_source,
        "bootstrap_replicates": doc.bootstrap_replicates,
        "bottom_k": doc.bottom_k,
        "ranked_units": doc.units.iter().filter(|u| u.social.rank.is_some()).count(),
        "unit": u,
    }))
}

async fn unit_results(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((key, unit)): ApiPath<(String, String)>,
    q: ApiQuery,
) -> Result<Response, ApiError> {
    let q = ResultsQuery::parse(&q)?;
    caller
        .require(
            &state,
            READ_RESULTS,
            &format!("/api/v1/rounds/{key}/units/{unit}/results"),
        )
        .await?;
    let doc = caller.visible(compute(&state, &caller, key.clone(), &q).await?);
    let value = unit_document(&doc, &unit).ok_or_else(|| {
        ApiError::NotFound(format!("轮次 {key} 中没有名称或代码为“{unit}”的单位"))
    })?;
    json_response(&value)
}

const EXPORT_PARAMS: &[&str] = &["format", "bom", "with_comments"];

async fn export(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((key, kind)): ApiPath<(String, String)>,
    q: ApiQuery,
) -> Result<Response, ApiError> {
    let path = format!("/api/v1/rounds/{key}/exports/{kind}");
    // Who may download anything at all first (an operator learns nothing about the kinds),
    // then the kind's own rule (`ExportKind::roles`).
    caller.require(&state, READ_RESULTS, &path).await?;
    let kind_parsed = ExportKind::parse(&kind).ok_or_else(|| {
        let kinds: Vec<&str> = ExportKind::for_role(caller.user.role)
            .iter()
            .map(|k| k.key())
            .collect();
        ApiError::NotFound(format!("没有导出种类“{kind}”:可选 {}", kinds.join("、")))
    })?;
    caller.require(&state, kind_parsed.roles(), &path).await?;
    let format = match q.get("format", EXPORT_PARAMS)? {
        None => ExportFormat::Csv,
        Some(f) => ExportFormat::parse(f).ok_or_else(|| {
            ApiError::BadRequest(format!("查询参数 format“{f}”无效:可选 csv、xlsx"))
        })?,
    };
    let opts = ExportOptions {
        format,
        bom: q.boolean("bom", EXPORT_PARAMS)?.unwrap_or(true),
        with_comments: q.boolean("with_comments", EXPORT_PARAMS)?.unwrap_or(false),
        ..ExportOptions::default()
    };
    let _permit = COMPUTE
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let actor = caller.actor();
    let out = blocking(&state, move |s| {
        let round = s.round(&key)?;
        Ok(exports::export_bytes(
            s,
            &round,
            kind_parsed,
            &opts,
            &actor,
            chrono::Utc::now(),
        )?)
    })
    .await?;
    let ascii: String = out
        .file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        super::error::encode_component(&out.file_name)
    );
    Ok((
        [
            (header::CONTENT_TYPE, out.content_type.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        out.bytes,
    )
        .into_response())
}

async fn openapi() -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        Json(openapi_document()),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// OpenAPI

fn nullable(schema: Value) -> Value {
    json!({ "oneOf": [schema, { "type": "null" }] })
}

fn num() -> Value {
    json!({ "type": "number" })
}

fn interval() -> Value {
    nullable(
        json!({ "type": "array", "items": { "type": "number" }, "minItems": 2, "maxItems": 2 }),
    )
}

/// The OpenAPI 3.1 description of this API (served at `/api/v1/openapi.json`).
pub fn openapi_document() -> Value {
    let error_response = |description: &str| {
        json!({
            "description": description,
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
        })
    };
    let key_param = json!({
        "name": "key", "in": "path", "required": true,
        "description": "Round key, e.g. 2022.", "schema": { "type": "string" }
    });
    let bottom_k = json!({
        "name": "bottom_k", "in": "query", "required": false,
        "schema": { "type": "integer", "minimum": 1 },
        "description": "p_bottom is the probability of falling in the bottom k units (default 3); an explicit k must lie in 1 … (ranked units − 1), otherwise 400."
    });
    let security = json!([{ "bearerAuth": [] }, { "cookieAuth": [] }]);
    let errors = |ok: Value| {
        let mut r = json!({
            "400": error_response("A query parameter is unknown, repeated or has a wrong value (the message names it and what is accepted)."),
            "401": error_response("No, unknown, revoked or expired token (and no session)."),
            "403": error_response("The caller's role may not read this."),
            "404": error_response("No such round, unit, export kind or path."),
            "405": error_response("Only GET and HEAD are allowed (header Allow)."),
            "413": error_response("The request carries a body (the API reads none)."),
            "429": error_response("Too many requests (from a throttle in front of the API); retry later."),
        });
        r["200"] = ok;
        r
    };
    let paths = json!({
        "/api/v1/rounds": {
            "get": {
                "summary": "Rounds (key, title, field period, locked, units, members).",
                "operationId": "listRounds",
                "responses": errors(json!({
                    "description": "The rounds.",
                    "content": { "application/json": { "schema": { "type": "object", "properties": {
                        "rounds": { "type": "array", "items": { "type": "object" } } } } } }
                }))
            }
        },
        "/api/v1/rounds/{key}/results": {
            "get": {
                "summary": "The round's results document (the same JSON as `sheping results --json`).",
                "operationId": "roundResults",
                "parameters": [key_param, bottom_k],
                "responses": errors(json!({
                    "description": "Results of every unit, and the round's quality checks.",
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Results" } } }
                }))
            }
        },
        "/api/v1/rounds/{key}/compare/{with}": {
            "get": {
                "summary": "Round `key` compared with round `with` per unit (the same JSON as `sheping compare --json`).",
                "operationId": "compareRounds",
                "parameters": [key_param, { "name": "with", "in": "path", "required": true, "schema": { "type": "string" }, "description": "The round compared with (e.g. the previous year's)." }],
                "responses": errors(json!({
                    "description": "Matched units with both rounds' figures, differences, Welch tests and Holm-adjusted p values; unmatched units; differences between the surveys (docs/results.md).",
                    "content": { "application/json": { "schema": { "type": "object",
                        "required": ["round", "with", "units", "unmatched_a", "unmatched_b"] } } }
                }))
            }
        },
        "/api/v1/rounds/{key}/units/{unit}/results": {
            "get": {
                "summary": "One unit's results, with the round-level fields they depend on.",
                "operationId": "unitResults",
                "parameters": [
                    key_param,
                    { "name": "unit", "in": "path", "required": true,
                      "description": "The unit's name (URL-encoded) or its code.",
                      "schema": { "type": "string" } },
                    bottom_k
                ],
                "responses": errors(json!({
                    "description": "The unit's object exactly as in the round's `units` array, under `unit`.",
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/UnitResults" } } }
                }))
            }
        },
        "/api/v1/rounds/{key}/exports/{kind}": {
            "get": {
                "summary": "An export (anonymised; logged in the audit log). Evaluators: scores and distributions; admins and statisticians: every kind (403 otherwise).",
                "operationId": "export",
                "parameters": [
                    key_param,
                    { "name": "kind", "in": "path", "required": true,
                      "schema": { "type": "string", "enum": ExportKind::all().iter().map(|k| k.key()).collect::<Vec<_>>() } },
                    { "name": "format", "in": "query", "schema": { "type": "string", "enum": ["csv", "xlsx"], "default": "csv" } },
                    { "name": "bom", "in": "query", "schema": { "type": "boolean", "default": true },
                      "description": "UTF-8 BOM at the start of a CSV (Excel/WPS need it)." },
                    { "name": "with_comments", "in": "query", "schema": { "type": "boolean", "default": false },
                      "description": "Include operators' comments (names and numbers masked) in responses and attempts." }
                ],
                "responses": errors(json!({
                    "description": "The file (Content-Disposition: attachment).",
                    "content": {
                        "text/csv": { "schema": { "type": "string" } },
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": { "schema": { "type": "string", "format": "binary" } },
                        "text/plain": { "schema": { "type": "string" } }
                    }
                }))
            }
        },
        "/api/v1/openapi.json": {
            "get": {
                "summary": "This document.",
                "operationId": "openapi",
                "security": [],
                "responses": { "200": { "description": "OpenAPI 3.1 document." } }
            }
        }
    });
    let mut schemas = json!({
        "Error": {
            "type": "object", "required": ["error"],
            "properties": { "error": { "type": "object", "required": ["code", "message"], "properties": {
                "code": { "type": "string", "enum": ["unauthorized", "forbidden", "not_found", "bad_request", "method_not_allowed", "payload_too_large", "too_many_requests", "unavailable", "internal"] },
                "message": { "type": "string" } } } }
        },
        "Interval": interval(),
        "Rates": { "type": "object", "properties": {
            "rr1": nullable(num()), "rr2": nullable(num()), "coop1": nullable(num()),
            "ref1": nullable(num()), "con1": nullable(num()) } },
        "Dispositions": { "type": "object",
            "properties": { "I": {"type": "integer"}, "P": {"type": "integer"}, "R": {"type": "integer"},
                "NC": {"type": "integer"}, "O": {"type": "integer"}, "UH": {"type": "integer"},
                "UO": {"type": "integer"}, "NE": {"type": "integer"} } },
        "Phone": { "type": "object", "properties": {
            "completes": { "type": "integer" },
            "mean": nullable(num()), "sd": nullable(num()), "ci95": interval(),
            "satisfaction_rate": nullable(num()), "satisfaction_rate_ci95": interval(),
            "cronbach_alpha": nullable(num()), "points": nullable(num()),
            "dimensions": { "type": "array", "items": { "type": "object", "properties": {
                "key": { "type": "string" }, "label": { "type": "string" },
                "mean": nullable(num()), "ci95": interval(), "satisfaction_rate": nullable(num()),
                "satisfaction_rate_ci95": interval(),
                "counts": { "type": "object", "additionalProperties": { "type": "integer" } } } } } } },
        "Onsite": nullable(json!({ "type": "object", "properties": {
            "kind": { "type": "string", "enum": ["ballots", "direct"] },
            "ballots": { "type": "integer" }, "mean": num(), "sd": nullable(num()),
            "ci95": interval(), "points": num() } })),
        "Social": { "type": "object", "properties": {
            "points": nullable(num()), "max_points": num(), "ci95": interval(),
            "rank": nullable(json!({ "type": "integer" })),
            "rank_ci95": nullable(json!({ "type": "array", "items": { "type": "integer" }, "minItems": 2, "maxItems": 2 })),
            "p_bottom": nullable(num()) } }
    });
    let more = json!({
        "Unit": { "type": "object",
            "required": ["unit", "kind", "sector", "panel", "dispositions", "rates", "phone", "onsite", "social", "flags"],
            "properties": {
                "unit": { "type": "string" }, "code": nullable(json!({ "type": "string" })),
                "kind": { "type": "string", "description": "党政机关 or 事业单位" },
                "sector": { "type": "string" }, "panel": { "type": "integer" },
                "dispositions": { "$ref": "#/components/schemas/Dispositions" },
                "rates": { "$ref": "#/components/schemas/Rates" },
                "phone": { "$ref": "#/components/schemas/Phone" },
                "onsite": { "$ref": "#/components/schemas/Onsite" },
                "social": { "$ref": "#/components/schemas/Social" },
                "flags": { "type": "array", "items": { "type": "string", "enum": ["few_completes", "onsite_missing", "low_response", "evidence_mismatch"] } },
                "evidence": { "type": "object", "description": "Corroborating records (佐证依据); null where not given. docs/results.md.",
                    "properties": {
                        "complaint": nullable(json!({ "type": "integer" })),
                        "petition": nullable(json!({ "type": "integer" })),
                        "discipline": nullable(json!({ "type": "integer" })),
                        "volume": nullable(json!({ "type": "integer" })),
                        "complaint_rate": nullable(num()),
                        "sources": { "type": "array", "items": { "type": "object", "properties": {
                            "kind": { "type": "string", "enum": ["complaint", "petition", "discipline"] },
                            "source": { "type": "string" }, "note": { "type": "string" } } } } } } } },
        "Results": { "type": "object",
            "required": ["round", "units", "quality", "bootstrap_seed", "ranked_by"],
            "properties": {
                "round": { "type": "string" }, "title": { "type": "string" },
                "computed_at": { "type": "string", "format": "date-time" },
                "field_closed": { "type": "boolean" }, "locked": { "type": "boolean" },
                "survey": { "type": "object" },
                "ranked_by": { "type": "string", "enum": ["social", "phone"] },
                "bootstrap_seed": { "type": "integer", "description": "Stored per round; below 2^53." },
                "bootstrap_seed_source": { "type": "string", "enum": ["stored", "override"] },
                "bootstrap_replicates": { "type": "integer" }, "bottom_k": { "type": "integer" },
                "units": { "type": "array", "items": { "$ref": "#/components/schemas/Unit" } },
                "evidence_check": { "type": "array", "description": "Spearman's rho between each evidence kind and the social points (docs/scoring.md).",
                    "items": { "type": "object", "properties": {
                        "kind": { "type": "string", "enum": ["complaint", "petition", "discipline"] },
                        "n": { "type": "integer" }, "basis": { "type": "string", "enum": ["rate", "count"] },
                        "spearman_rho": nullable(num()), "p": nullable(num()) } } },
                "overall": { "type": "object" },
                "quality": { "type": "object", "properties": {
                    "completes": { "type": "integer" },
                    "cronbach_alpha": nullable(num()),
                    "operator_effect": { "type": "object", "properties": {
                        "anova": nullable(json!({ "type": "object" })),
                        "chi2": { "type": "array", "items": { "type": "object" } },
                        "operators": { "type": "array", "items": { "type": "object" } },
                        "flagged_operators": { "type": "array", "items": { "type": "string" } } } },
                    "straight_line_share": nullable(num()),
                    "suspicious": { "type": "array", "items": { "type": "object" } } } },
                "warnings": { "type": "array", "items": { "type": "string" } } } },
        "UnitResults": { "type": "object", "required": ["round", "unit"],
            "properties": { "round": { "type": "string" }, "bootstrap_seed": { "type": "integer" },
                "unit": { "$ref": "#/components/schemas/Unit" } } }
    });
    if let (Some(a), Value::Object(b)) = (schemas.as_object_mut(), more) {
        a.extend(b);
    }
    let security_schemes = json!({"bearerAuth": { "type": "http", "scheme": "bearer",
            "description": "A token from `sheping token create --login LOGIN` (roles admin, statistician, evaluator)." },
        "cookieAuth": { "type": "apiKey", "in": "cookie", "name": "sheping_session" }
    });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "sheping results API",
            "version": "1",
            "description": "Social-evaluation results (社会评价) of a performance-of-duties evaluation round: per-unit phone and on-site scores with their uncertainty, rank intervals and the statistician's quality checks, recomputed from the stored call attempts on every request. Numbers are unrounded; a statistic the data do not determine is null. Definitions: docs/scoring.md and docs/results.md."
        },
        "servers": [{ "url": "/" }],
        "security": security,
        "paths": paths,
        "components": { "securitySchemes": security_schemes, "schemas": schemas }
    })
}
