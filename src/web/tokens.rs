//! API tokens in the administrator's console (`/admin/tokens`): created (the secret shown once,
//! on the response page, never again: only its hash is stored), listed with their last use,
//! revoked. The same rules as `sheping token` ([`crate::results::create_api_token`]); the store
//! logs every creation and revocation.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;

use super::auth::{ADMIN, Allow, CheckedForm, Session};
use super::views::Frame;
use super::{AppState, WebError};
use crate::results::{TokenError, create_api_token};
use crate::storage::StorageError;

super::auth::form_token!(CreateForm, RevokeForm);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/tokens", get(tokens_page).post(create))
        .route("/admin/tokens/{id}/revoke", post(revoke))
}

pub struct TokenRow {
    pub id: i64,
    pub login: String,
    pub role: &'static str,
    pub prefix: String,
    pub label: String,
    pub created: String,
    pub created_by: String,
    pub expires: String,
    pub last_used: String,
    pub state: &'static str,
    pub revoked: bool,
}

pub struct UserChoice {
    pub login: String,
    pub name: String,
    pub role: &'static str,
}

/// The token just created, on its one and only page.
pub struct Created {
    pub id: i64,
    pub secret: String,
    pub notes: Vec<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "tokens.html")]
pub struct TokensPage {
    pub f: Frame,
    pub tokens: Vec<TokenRow>,
    pub users: Vec<UserChoice>,
    pub created: Option<Created>,
    pub message: Option<String>,
    pub error: Option<String>,
    /// The form as submitted, when it was refused.
    pub login: String,
    pub label: String,
    pub days: String,
}

fn time(ms: Option<i64>) -> String {
    ms.map(|t| super::views::local_time(t, chrono_tz::Asia::Shanghai, "%Y-%m-%d %H:%M"))
        .unwrap_or_else(|| "—".into())
}

async fn page(
    state: &AppState,
    session: &Session,
    created: Option<Created>,
    message: Option<String>,
    error: Option<String>,
    form: Option<&CreateForm>,
) -> Result<TokensPage, WebError> {
    let (tokens, users) = state
        .blocking(|s| Ok((s.api_tokens()?, s.users()?)))
        .await?;
    let now = Utc::now();
    Ok(TokensPage {
        f: session.frame("tokens"),
        tokens: tokens
            .into_iter()
            .rev()
            .map(|t| TokenRow {
                // The same states as `sheping token list`.
                state: t.state_label(now),
                revoked: t.revoked_at_ms.is_some(),
                id: t.id,
                role: t.role.label(),
                prefix: t.prefix,
                label: t.label,
                created: time(Some(t.created_at_ms)),
                created_by: t.created_by,
                expires: t
                    .expires_at_ms
                    .map_or_else(|| "永不过期".into(), |ms| time(Some(ms))),
                last_used: t
                    .last_used_at_ms
                    .map_or_else(|| "从未使用".into(), |ms| time(Some(ms))),
                login: t.login,
            })
            .collect(),
        users: users
            .into_iter()
            .filter(|u| u.active)
            .map(|u| UserChoice {
                role: u.role.label(),
                login: u.login,
                name: u.name,
            })
            .collect(),
        created,
        message,
        error,
        login: form.map(|f| f.login.clone()).unwrap_or_default(),
        label: form.map(|f| f.label.clone()).unwrap_or_default(),
        days: form.map_or_else(|| "365".into(), |f| f.days.clone()),
    })
}

#[derive(Deserialize, Default)]
pub struct DoneQuery {
    #[serde(default)]
    revoked: Option<i64>,
}

async fn tokens_page(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    Query(q): Query<DoneQuery>,
) -> Result<TokensPage, WebError> {
    let message = q.revoked.map(|id| format!("已吊销 API 令牌 #{id}。"));
    page(&state, &session, None, message, None, None).await
}

#[derive(Deserialize, Default)]
pub struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    login: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    days: String,
}

async fn create(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    CheckedForm(form): CheckedForm<CreateForm>,
) -> Result<Response, WebError> {
    let refuse = |error: String| (StatusCode::UNPROCESSABLE_ENTITY, error);
    let days = match form.days.trim() {
        "" => Ok(365),
        d => d.parse::<u32>().map_err(|_| {
            refuse(format!(
                "有效天数“{d}”不是整数:请填写 0(永不过期)到 {} 之间的整数",
                crate::results::MAX_TOKEN_DAYS
            ))
        }),
    };
    let login = form.login.trim().to_string();
    let result = match days {
        Err(e) => Err(e),
        Ok(_) if login.is_empty() => Err(refuse("请选择令牌所属的用户".into())),
        Ok(days) => {
            let (label, actor) = (form.label.clone(), session.user.login.clone());
            let l = login.clone();
            let r = state
                .blocking(move |s| Ok(create_api_token(s, &l, &label, days, &actor, Utc::now())))
                .await?;
            match r {
                Ok(created) => Ok(created),
                Err(TokenError::Storage(StorageError::NotFound(_))) => Err((
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("没有用户“{login}”:请从列表中选择用户"),
                )),
                Err(TokenError::Storage(e)) => return Err(e.into()),
                Err(e) => Err(refuse(e.to_string())),
            }
        }
    };
    match result {
        Ok(created) => {
            let shown = Created {
                id: created.record.id,
                notes: created.notes(),
                secret: created.secret,
            };
            Ok(page(&state, &session, Some(shown), None, None, None)
                .await?
                .into_response())
        }
        Err((status, error)) => {
            let p = page(&state, &session, None, None, Some(error), Some(&form)).await?;
            Ok((status, p).into_response())
        }
    }
}

#[derive(Deserialize, Default)]
pub struct RevokeForm {
    #[serde(default)]
    csrf: String,
}

async fn revoke(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    Path(id): Path<i64>,
    CheckedForm(_form): CheckedForm<RevokeForm>,
) -> Result<Response, WebError> {
    let actor = session.user.login.clone();
    state
        .blocking(move |s| Ok(s.revoke_api_token(id, &actor)?))
        .await?;
    Ok(Redirect::to(&format!("/admin/tokens?revoked={id}")).into_response())
}
