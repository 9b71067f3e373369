//! Round operations that were command-line only: the field-period correction
//! (`/admin/rounds/{key}/field`, as `sheping round field`), the database backup as a download
//! (`/admin/backup`, as `sheping backup`) and the purge of a locked round's contacts
//! (`/admin/rounds/{key}/purge-contacts`, as `sheping round purge-contacts`). Each calls the
//! same rule and storage method as the CLI, and each lands in the audit log.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::NaiveDate;
use serde::Deserialize;

use super::auth::{ADMIN, Allow, CheckedForm, Session};
use super::error::encode_component;
use super::views::{Frame, local_time};
use super::{AppState, WebError};
use crate::domain::round as round_text;
use crate::storage::StorageError;

super::auth::form_token!(FieldForm, PurgeForm, BackupForm);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/rounds/{key}/field", get(field_page).post(set_field))
        .route(
            "/admin/rounds/{key}/purge-contacts",
            get(purge_page).post(purge),
        )
        .route("/admin/backup", get(backup_page).post(backup))
}

fn round_url(key: &str) -> String {
    format!("/admin/rounds/{}", encode_component(key))
}

// ---------------------------------------------------------------------------------------------
// Field period

#[derive(Template, WebTemplate)]
#[template(path = "round_field.html")]
pub struct FieldPage {
    pub f: Frame,
    pub key: String,
    pub title: String,
    pub current: String,
    pub from: String,
    pub to: String,
    pub locked: bool,
    pub message: Option<String>,
    pub error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct FieldForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

#[derive(Deserialize, Default)]
pub struct DoneQuery {
    #[serde(default)]
    done: String,
}

async fn field_view(
    state: &AppState,
    session: &Session,
    key: String,
    form: Option<&FieldForm>,
    message: Option<String>,
    error: Option<String>,
) -> Result<FieldPage, WebError> {
    let round = state.blocking(move |s| Ok(s.round(&key)?)).await?;
    let date = |d: Option<NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
    Ok(FieldPage {
        f: session.frame("admin"),
        current: match (round.field_start, round.field_end) {
            (Some(a), Some(b)) => format!("{a} 至 {b}"),
            _ => "未设定".into(),
        },
        from: form.map_or_else(|| date(round.field_start), |f| f.from.clone()),
        to: form.map_or_else(|| date(round.field_end), |f| f.to.clone()),
        locked: round.is_locked(),
        key: round.key,
        title: round.title,
        message,
        error,
    })
}

async fn field_page(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    Path(key): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<FieldPage, WebError> {
    let message =
        (q.done == "field").then(|| "调查期已更正,更正前后的日期已记入审计日志。".to_string());
    field_view(&state, &session, key, None, message, None).await
}

/// A date as typed in the form; the message names the field.
fn parse_date(what: &str, v: &str) -> Result<NaiveDate, String> {
    let v = v.trim();
    if v.is_empty() {
        return Err(format!("请填写{what}(格式 YYYY-MM-DD,例如 2022-11-01)"));
    }
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .map_err(|_| format!("{what}“{v}”不是有效日期:请按 YYYY-MM-DD 填写(例如 2022-11-01)"))
}

async fn set_field(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    Path(key): Path<String>,
    CheckedForm(form): CheckedForm<FieldForm>,
) -> Result<Response, WebError> {
    let checked = parse_date("开始日期", &form.from).and_then(|from| {
        let to = parse_date("结束日期", &form.to)?;
        round_text::check_field_period(from, to)
            .map(|()| (from, to))
            .map_err(|e| e.to_string())
    });
    let (from, to) = match checked {
        Ok(p) => p,
        Err(error) => {
            let page = field_view(&state, &session, key, Some(&form), None, Some(error)).await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let actor = session.user.login.clone();
    let k = key.clone();
    let stored = state
        .blocking(move |s| {
            let round = s.round(&k)?;
            Ok(s.set_field_period(&round, from, to, &actor))
        })
        .await?;
    match stored {
        Ok(()) => {
            Ok(Redirect::to(&format!("{}/field?done=field", round_url(&key))).into_response())
        }
        Err(StorageError::Locked(_)) => {
            let error = format!("轮次 {key} 已锁定,调查期不能再更正。");
            let page = field_view(&state, &session, key, Some(&form), None, Some(error)).await?;
            Ok((StatusCode::CONFLICT, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------------
// Purge of contacts

pub struct BackupRow {
    pub at: String,
    pub out: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "round_purge.html")]
pub struct PurgePage {
    pub f: Frame,
    pub key: String,
    pub title: String,
    pub locked: bool,
    /// Members whose name or a number is still stored.
    pub with_contacts: usize,
    pub members: usize,
    /// Backups made since the round was created: they still hold its names and numbers.
    pub backups: Vec<BackupRow>,
    pub message: Option<String>,
    pub error: Option<String>,
}

async fn purge_view(
    state: &AppState,
    session: &Session,
    key: String,
    message: Option<String>,
    error: Option<String>,
) -> Result<PurgePage, WebError> {
    let (round, counts, backups) = state
        .blocking(move |s| {
            let round = s.round(&key)?;
            let counts = s.round_counts(&round)?;
            let backups = s.backups_made_since(round.created_at_ms)?;
            Ok((round, counts, backups))
        })
        .await?;
    let tz = round.survey.timezone();
    Ok(PurgePage {
        f: session.frame("admin"),
        locked: round.is_locked(),
        with_contacts: counts.members_with_contacts,
        members: counts.members,
        backups: backups
            .into_iter()
            .map(|b| BackupRow {
                at: local_time(b.at_ms, tz, "%Y-%m-%d %H:%M"),
                out: b.out,
            })
            .collect(),
        key: round.key,
        title: round.title,
        message,
        error,
    })
}

async fn purge_page(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    Path(key): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<PurgePage, WebError> {
    let message = (q.done == "purge").then(|| {
        "已清除本轮代表的姓名和联系方式(存放它们的表已重写,旧值不再留在数据文件中);统计结果与导出不受影响。"
            .to_string()
    });
    purge_view(&state, &session, key, message, None).await
}

#[derive(Deserialize, Default)]
pub struct PurgeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
}

async fn purge(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    Path(key): Path<String>,
    CheckedForm(form): CheckedForm<PurgeForm>,
) -> Result<Response, WebError> {
    // As the lock: the round's key typed in, since the purge cannot be undone.
    if form.confirm.trim() != key {
        let error = format!("未清除:请在确认框中输入轮次代码“{key}”。清除后姓名和号码无法恢复。");
        let page = purge_view(&state, &session, key, None, Some(error)).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let actor = session.user.login.clone();
    let k = key.clone();
    let purged = state
        .blocking(move |s| {
            let round = s.round(&k)?;
            Ok(s.purge_contacts(&round, &actor))
        })
        .await?;
    match purged {
        Ok(_) => Ok(
            Redirect::to(&format!("{}/purge-contacts?done=purge", round_url(&key))).into_response(),
        ),
        // Not locked (or the WAL could not be emptied): the store's message says what to do.
        Err(StorageError::Conflict(error)) => {
            let page = purge_view(&state, &session, key, None, Some(error)).await?;
            Ok((StatusCode::CONFLICT, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------------
// Backup

#[derive(Template, WebTemplate)]
#[template(path = "backup.html")]
pub struct BackupPage {
    pub f: Frame,
}

async fn backup_page(Allow(session): Allow<ADMIN>) -> BackupPage {
    BackupPage {
        f: session.frame("backup"),
    }
}

#[derive(Deserialize, Default)]
pub struct BackupForm {
    #[serde(default)]
    csrf: String,
}

/// A copy of the whole database as a download: made with SQLite's online backup (a
/// consistent snapshot while the operators keep recording) into a temporary file, which is
/// removed as soon as it is open and streamed from the handle.
async fn backup(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    CheckedForm(_form): CheckedForm<BackupForm>,
) -> Result<Response, WebError> {
    let now = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai);
    let name = format!("sheping-backup-{}.db", now.format("%Y%m%d-%H%M"));
    let dir = std::env::temp_dir().join("sheping-backups");
    std::fs::create_dir_all(&dir)
        .map_err(|e| WebError::Internal(format!("backup directory {}: {e}", dir.display())))?;
    let tmp = dir.join(format!("{}-{name}", {
        use rand::Rng;
        let mut b = [0u8; 8];
        rand::rng().fill_bytes(&mut b);
        hex::encode(b)
    }));
    let actor = session.user.login.clone();
    let recorded = format!("网页下载 {name}(由 {actor} 下载,服务器上不留副本)");
    let path = tmp.clone();
    let made = state
        .blocking(move |s| Ok(s.backup_logged(&path, &recorded, &actor)))
        .await;
    let file = match made {
        Ok(Ok(())) => tokio::fs::File::open(&tmp).await,
        Ok(Err(e)) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let _ = tokio::fs::remove_file(&tmp).await;
    let file = file.map_err(|e| WebError::Internal(format!("opening the backup: {e}")))?;
    let len = file.metadata().await.map(|m| m.len()).ok();
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file));
    let mut headers = vec![
        (header::CONTENT_TYPE, "application/vnd.sqlite3".to_string()),
        (
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ),
        (header::CACHE_CONTROL, "no-store".to_string()),
    ];
    if let Some(len) = len {
        headers.push((header::CONTENT_LENGTH, len.to_string()));
    }
    let mut resp = body.into_response();
    for (k, v) in headers {
        if let Ok(v) = v.parse() {
            resp.headers_mut().insert(k, v);
        }
    }
    Ok(resp)
}
