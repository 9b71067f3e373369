//! Round tasks that needed the command line before: on-site evaluation data (现场评价) and
//! paper or offline call attempts, each uploaded to a preview the admin confirms, and
//! operators' conflicts of interest (回避). The same importers and engine functions as
//! `sheping onsite import`, `sheping attempts import` and `sheping operators …`.
//!
//! An upload is checked in full and shown as a preview (nothing stored). The file waits
//! server-side under a random token bound to the session and the round; confirming reads it
//! again, checks it again against the round as it is now, and stores it only when the
//! validated batch is exactly the one previewed (same digest).

use std::path::PathBuf;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::admin::{
    ImportView, UPLOAD_LIMIT, Upload, WHOLE_TABLE_CELLS, import_error, new_rejects_file,
};
use super::auth::{ADMIN, Allow, CheckedForm, Session};
use super::supervise::engine_error;
use super::views::Frame;
use super::{AppState, WebError};
use crate::engine::{self, Store};
use crate::imports::{self, ImportError, ImportPreview, ImportReport, OnsiteImport};
use crate::storage::results::StoredOnsite;
use crate::storage::{AuditEvent, RoundRecord, StorageError};
use crate::tabular::{ReadOptions, Table, read_table_bytes};

super::auth::form_token!(ConfirmForm, ExclusionForm);

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/admin/rounds/{key}/onsite",
            get(onsite_page)
                .post(onsite_upload)
                .layer(DefaultBodyLimit::max(UPLOAD_LIMIT)),
        )
        .route("/admin/rounds/{key}/onsite/confirm", post(onsite_confirm))
        .route(
            "/admin/rounds/{key}/attempts",
            get(attempts_page)
                .post(attempts_upload)
                .layer(DefaultBodyLimit::max(UPLOAD_LIMIT)),
        )
        .route(
            "/admin/rounds/{key}/attempts/confirm",
            post(attempts_confirm),
        )
        .route(
            "/admin/rounds/{key}/exclusions",
            get(exclusions_page).post(add_exclusion),
        )
        .route(
            "/admin/rounds/{key}/exclusions/remove",
            post(remove_exclusion),
        )
}

// ---------------------------------------------------------------------------------------------
// Uploads with a preview

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Kind {
    Onsite,
    Attempts,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Kind::Onsite => "onsite",
            Kind::Attempts => "attempts",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Kind::Onsite => "现场评价数据",
            Kind::Attempts => "纸质或离线拨打记录",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Onsite => "条现场评价数据",
            Kind::Attempts => "条拨打记录",
        }
    }
}

/// The options an upload is checked and stored with (as the CLI's flags).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Options {
    skip_invalid: bool,
    replace: bool,
}

/// An upload waiting for its confirmation.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    /// The session's id hash: only the session that previewed can confirm.
    session: String,
    round: String,
    kind: Kind,
    file_name: String,
    options: Options,
    /// SHA-256 of the file's bytes.
    file_sha256: String,
    /// The validated batch's digest ([`ImportPreview::digest`]).
    digest: String,
}

/// Uploads waiting for their confirmation, removed when not confirmed within an hour.
const PENDING: super::temp_area::TempArea =
    super::temp_area::TempArea::new("sheping-previews", std::time::Duration::from_secs(3600));

fn pending_paths(token: &str) -> Option<(PathBuf, PathBuf)> {
    let valid = super::temp_area::TempArea::valid_token(token);
    let dir = PENDING.dir();
    valid.then(|| {
        (
            dir.join(format!("{token}.json")),
            dir.join(format!("{token}.upload")),
        )
    })
}

/// Keeps an upload for its confirmation; expired ones are removed on the way.
fn save_pending(pending: &Pending, bytes: &[u8]) -> std::io::Result<String> {
    let token = PENDING.new_token()?;
    let (meta, data) = pending_paths(&token).ok_or_else(|| std::io::Error::other("token"))?;
    // Paper attempts carry phone numbers: readable by the service's user only.
    let write = |path: &std::path::Path, body: &[u8]| -> std::io::Result<()> {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(path)?.write_all(body)
    };
    write(&data, bytes)?;
    write(&meta, &serde_json::to_vec(pending)?)?;
    Ok(token)
}

/// The pending upload, once: of two confirmations at the same moment only one renames its
/// description away (an atomic rename), and both files are removed as it is taken.
fn take_pending(token: &str) -> Option<(Pending, Vec<u8>)> {
    let (meta, data) = pending_paths(token)?;
    let taken = meta.with_extension("taken");
    std::fs::rename(&meta, &taken).ok()?;
    let fresh = PENDING.fresh(&taken);
    let read = fresh
        .then(|| {
            let p: Pending = serde_json::from_slice(&std::fs::read(&taken).ok()?).ok()?;
            Some((p, std::fs::read(&data).ok()?))
        })
        .flatten();
    let _ = std::fs::remove_file(&taken);
    let _ = std::fs::remove_file(&data);
    read
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn read_upload(bytes: &[u8], file_name: &str) -> Result<Table, ImportError> {
    let opts = ReadOptions {
        max_cells: WHOLE_TABLE_CELLS,
        ..ReadOptions::default()
    };
    Ok(read_table_bytes(bytes, file_name, &opts)?)
}

/// Validates a file with the importer of `kind`; stores nothing.
fn check(
    s: &dyn Store,
    round: &RoundRecord,
    kind: Kind,
    table: &Table,
    options: Options,
) -> Result<(ImportReport, ImportPreview), ImportError> {
    match kind {
        Kind::Onsite => {
            let c = imports::onsite_check(
                s,
                round,
                table,
                &OnsiteImport {
                    skip_invalid: options.skip_invalid,
                    replace: options.replace,
                },
            )?;
            Ok((c.report, c.preview))
        }
        Kind::Attempts => {
            let c = imports::attempts_check(s, round, table, Utc::now())?;
            Ok((c.report, c.preview))
        }
    }
}

/// Checks the file again and stores it when its batch is the one previewed (`digest`);
/// `None` when it is not (the round changed since the preview): nothing stored then.
fn apply(
    s: &dyn Store,
    round: &RoundRecord,
    kind: Kind,
    table: &Table,
    options: Options,
    digest: &str,
    actor: &str,
) -> Result<Option<ImportReport>, ImportError> {
    match kind {
        Kind::Onsite => {
            let c = imports::onsite_check(
                s,
                round,
                table,
                &OnsiteImport {
                    skip_invalid: options.skip_invalid,
                    replace: options.replace,
                },
            )?;
            if c.preview.digest != digest {
                return Ok(None);
            }
            imports::onsite_apply(s, round, c, options.skip_invalid, actor).map(Some)
        }
        Kind::Attempts => {
            let now = Utc::now();
            let c = imports::attempts_check(s, round, table, now)?;
            if c.preview.digest != digest {
                return Ok(None);
            }
            imports::attempts_apply(s, round, c, options.skip_invalid, actor, now).map(Some)
        }
    }
}

/// Keeps a report's rejected rows for download; the link, and how many rows it holds.
fn keep_rejects(round: &RoundRecord, report: &ImportReport) -> Option<(String, usize)> {
    if report.rejected.is_empty() {
        return None;
    }
    let (token, path) = new_rejects_file()?;
    match report.write_rejects(&path) {
        Ok(()) => Some((
            format!("{}/rejects/{token}", super::admin::round_url(&round.key)),
            report.rejected.len(),
        )),
        Err(e) => {
            tracing::warn!(error = %e, "could not keep the rejected rows");
            let _ = std::fs::remove_file(path);
            None
        }
    }
}

pub struct PreviewView {
    pub token: String,
    pub file_name: String,
    pub encoding: String,
    pub total: usize,
    pub per_unit: Vec<(String, String)>,
    pub columns: Vec<String>,
    pub rows: Vec<(usize, Vec<String>)>,
    pub warnings: Vec<String>,
    pub replace: bool,
    /// Rows that will be skipped (`skip_invalid`), shown as in a refused upload.
    pub skipped: Option<ImportView>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_round_upload.html")]
pub struct UploadPage {
    pub f: Frame,
    pub key: String,
    pub title: String,
    pub locked: bool,
    pub path: &'static str,
    pub heading: &'static str,
    pub noun: &'static str,
    pub onsite: bool,
    pub dimensions: Vec<String>,
    pub levels: Vec<String>,
    pub max_score: String,
    /// On-site data stored now, per unit (on-site page only).
    pub current: Vec<(String, String)>,
    pub preview: Option<PreviewView>,
    pub report: Option<ImportView>,
    pub message: Option<String>,
    pub error: Option<String>,
}

#[derive(Default)]
struct UploadExtra {
    preview: Option<PreviewView>,
    report: Option<ImportView>,
    message: Option<String>,
    error: Option<String>,
}

async fn upload_view(
    state: &AppState,
    session: &Session,
    key: String,
    kind: Kind,
    extra: UploadExtra,
) -> Result<UploadPage, WebError> {
    let (round, units, onsite) = state
        .blocking(move |s| {
            let round = s.round(&key)?;
            let units = s.units(round.id)?;
            let onsite = match kind {
                Kind::Onsite => s.onsite(round.id)?,
                Kind::Attempts => Default::default(),
            };
            Ok((round, units, onsite))
        })
        .await?;
    let survey = &round.survey;
    let current = if kind == Kind::Onsite {
        units
            .iter()
            .map(|u| {
                let what = match onsite.get(&u.id) {
                    Some(StoredOnsite::Ballots(b)) => format!("{} 张选票", b.len()),
                    Some(StoredOnsite::Direct(x)) => format!("直接得分 {x}"),
                    None => "尚无数据".to_string(),
                };
                (u.name.clone(), what)
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(UploadPage {
        f: session.frame("admin"),
        key: round.key.clone(),
        title: round.title.clone(),
        locked: round.is_locked(),
        path: kind.path(),
        heading: kind.what(),
        noun: kind.noun(),
        onsite: kind == Kind::Onsite,
        dimensions: survey.dimensions.iter().map(|d| d.label.clone()).collect(),
        levels: survey
            .levels
            .iter()
            .enumerate()
            .map(|(i, l)| format!("{}={}", i + 1, l.label))
            .collect(),
        max_score: survey.max_score().to_string(),
        current,
        preview: extra.preview,
        report: extra.report,
        message: extra.message,
        error: extra.error,
    })
}

async fn onsite_page(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    Path(key): Path<String>,
) -> Result<UploadPage, WebError> {
    upload_view(&state, &session, key, Kind::Onsite, UploadExtra::default()).await
}

async fn attempts_page(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    Path(key): Path<String>,
) -> Result<UploadPage, WebError> {
    upload_view(
        &state,
        &session,
        key,
        Kind::Attempts,
        UploadExtra::default(),
    )
    .await
}

async fn onsite_upload(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    Path(key): Path<String>,
    mp: Multipart,
) -> Result<Response, WebError> {
    preview_upload(state, session, key, mp, Kind::Onsite).await
}

async fn attempts_upload(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    Path(key): Path<String>,
    mp: Multipart,
) -> Result<Response, WebError> {
    preview_upload(state, session, key, mp, Kind::Attempts).await
}

/// Turns an import's error into the page's message (422), or passes server errors on.
fn page_error(kind: Kind, e: ImportError) -> Result<String, WebError> {
    if let ImportError::Storage(e @ StorageError::Locked(_)) = e {
        return Err(e.into());
    }
    let e = import_error(e);
    if matches!(e, WebError::Internal(_) | WebError::Storage(_)) {
        return Err(e);
    }
    Ok(format!("{}未导入:{e}", kind.what()))
}

async fn preview_upload(
    state: AppState,
    session: Session,
    key: String,
    mp: Multipart,
    kind: Kind,
) -> Result<Response, WebError> {
    let mut up = Upload::read(mp).await?;
    session.check_csrf(up.get("csrf"))?;
    let Some((file_name, bytes)) = up.file.take() else {
        let extra = UploadExtra {
            error: Some("请选择要上传的文件".into()),
            ..Default::default()
        };
        let page = upload_view(&state, &session, key, kind, extra).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    let options = Options {
        skip_invalid: up.flag("skip_invalid"),
        replace: kind == Kind::Onsite && up.flag("replace"),
    };
    let (k, actor, session_id) = (
        key.clone(),
        session.user.login.clone(),
        session.id_hash.clone(),
    );
    let outcome = state
        .blocking(move |s| {
            let round = s.round(&k)?;
            let checked = read_upload(&bytes, &file_name)
                .and_then(|table| check(s, &round, kind, &table, options));
            let (report, preview) = match checked {
                Ok(c) => c,
                Err(e) => return Ok(Err(e)),
            };
            let rejects = keep_rejects(&round, &report);
            let refused = !report.rejected.is_empty() && !options.skip_invalid;
            let token = if refused {
                None
            } else {
                let pending = Pending {
                    session: session_id,
                    round: round.key.clone(),
                    kind,
                    file_name: file_name.clone(),
                    options,
                    file_sha256: sha256_hex(&bytes),
                    digest: preview.digest.clone(),
                };
                Some(save_pending(&pending, &bytes).map_err(|e| {
                    WebError::Internal(format!("cannot keep the upload for its preview: {e}"))
                })?)
            };
            // A preview stores nothing, but the upload itself is an action: logged.
            s.audit(&AuditEvent {
                actor: &actor,
                action: match kind {
                    Kind::Onsite => "onsite.preview",
                    Kind::Attempts => "attempts.preview",
                },
                round_key: Some(&round.key),
                detail: serde_json::json!({
                    "file": file_name,
                    "rows": preview.total,
                    "rejected": report.rejected.len(),
                    "refused": refused,
                    "digest": preview.digest,
                    "replace": options.replace,
                    "skip_invalid": options.skip_invalid,
                }),
            })?;
            Ok(Ok((report, preview, rejects, token, file_name)))
        })
        .await?;
    let (report, preview, rejects, token, file_name) = match outcome {
        Ok(x) => x,
        Err(e) => {
            let extra = UploadExtra {
                error: Some(page_error(kind, e)?),
                ..Default::default()
            };
            let page = upload_view(&state, &session, key, kind, extra).await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let extra = match token {
        None => UploadExtra {
            report: Some(ImportView::new(kind.what(), report, rejects)),
            ..Default::default()
        },
        Some(token) => {
            let mut warnings = report.warnings.clone();
            warnings.extend(preview.notes.iter().cloned());
            let skipped = (!report.rejected.is_empty())
                .then(|| ImportView::new(kind.what(), report.clone(), rejects));
            UploadExtra {
                preview: Some(PreviewView {
                    token,
                    file_name,
                    encoding: report.encoding.clone().unwrap_or_default(),
                    total: preview.total,
                    per_unit: preview.per_unit,
                    columns: preview.columns,
                    rows: preview.rows,
                    warnings,
                    replace: options.replace,
                    skipped,
                }),
                ..Default::default()
            }
        }
    };
    let status = if extra.preview.is_some() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = upload_view(&state, &session, key, kind, extra).await?;
    Ok((status, page).into_response())
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
}

async fn onsite_confirm(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    Path(key): Path<String>,
    CheckedForm(form): CheckedForm<ConfirmForm>,
) -> Result<Response, WebError> {
    confirm(state, session, key, form, Kind::Onsite).await
}

async fn attempts_confirm(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    Path(key): Path<String>,
    CheckedForm(form): CheckedForm<ConfirmForm>,
) -> Result<Response, WebError> {
    confirm(state, session, key, form, Kind::Attempts).await
}

enum Confirmed {
    Stored(ImportReport),
    /// The preview is gone, expired, or not this session's, round's or kind's.
    Missing,
    /// The round changed since the preview: the file now validates to another batch.
    Changed,
    Failed(ImportError),
}

async fn confirm(
    state: AppState,
    session: Session,
    key: String,
    form: ConfirmForm,
    kind: Kind,
) -> Result<Response, WebError> {
    let (k, actor, session_id) = (
        key.clone(),
        session.user.login.clone(),
        session.id_hash.clone(),
    );
    let outcome = state
        .blocking(move |s| {
            let round = s.round(&k)?;
            // Another session's token is not taken (and so not spent) by this one.
            let Some((meta, _)) = pending_paths(&form.token) else {
                return Ok(Confirmed::Missing);
            };
            let owner = std::fs::read(&meta)
                .ok()
                .and_then(|b| serde_json::from_slice::<Pending>(&b).ok());
            let ours = owner
                .is_some_and(|p| p.session == session_id && p.round == round.key && p.kind == kind);
            if !ours {
                return Ok(Confirmed::Missing);
            }
            let Some((pending, bytes)) = take_pending(&form.token) else {
                return Ok(Confirmed::Missing);
            };
            if sha256_hex(&bytes) != pending.file_sha256 {
                return Ok(Confirmed::Missing);
            }
            let applied = read_upload(&bytes, &pending.file_name).and_then(|table| {
                apply(
                    s,
                    &round,
                    kind,
                    &table,
                    pending.options,
                    &pending.digest,
                    &actor,
                )
            });
            Ok(match applied {
                Ok(Some(report)) => Confirmed::Stored(report),
                Ok(None) => {
                    s.audit(&AuditEvent {
                        actor: &actor,
                        action: match kind {
                            Kind::Onsite => "onsite.confirm_refused",
                            Kind::Attempts => "attempts.confirm_refused",
                        },
                        round_key: Some(&round.key),
                        detail: serde_json::json!({
                            "file": pending.file_name,
                            "digest": pending.digest,
                            "reason": "changed since the preview",
                        }),
                    })?;
                    Confirmed::Changed
                }
                Err(e) => Confirmed::Failed(e),
            })
        })
        .await?;
    let (status, extra) = match outcome {
        Confirmed::Stored(report) => {
            let status = if report.applied {
                StatusCode::OK
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            (
                status,
                UploadExtra {
                    report: Some(ImportView::new(kind.what(), report, None)),
                    ..Default::default()
                },
            )
        }
        Confirmed::Missing => (
            StatusCode::NOT_FOUND,
            UploadExtra {
                error: Some(
                    "这份预览已不存在(已确认过、已过期或不属于当前登录),未保存任何数据。请重新上传文件并预览。"
                        .into(),
                ),
                ..Default::default()
            },
        ),
        Confirmed::Changed => (
            StatusCode::CONFLICT,
            UploadExtra {
                error: Some(
                    "预览之后本轮的数据已有变化,文件按现在的数据读出的结果与预览不同,因此未保存任何数据。请重新上传文件,核对新的预览后再确认。"
                        .into(),
                ),
                ..Default::default()
            },
        ),
        Confirmed::Failed(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            UploadExtra {
                error: Some(page_error(kind, e)?),
                ..Default::default()
            },
        ),
    };
    let page = upload_view(&state, &session, key, kind, extra).await?;
    Ok((status, page).into_response())
}

// ---------------------------------------------------------------------------------------------
// Conflicts of interest

pub struct ExcludedUnit {
    pub unit: String,
    /// Pending contacts of that unit the operator still holds.
    pub held: usize,
}

pub struct OperatorRow {
    pub login: String,
    pub name: String,
    pub active: bool,
    pub pending: usize,
    pub units: Vec<ExcludedUnit>,
}

pub struct UnitRow {
    pub name: String,
    pub operators: Vec<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_exclusions.html")]
pub struct ExclusionsPage {
    pub f: Frame,
    pub key: String,
    pub title: String,
    pub locked: bool,
    pub operators: Vec<OperatorRow>,
    pub units: Vec<UnitRow>,
    pub unit_names: Vec<String>,
    /// Largest minus smallest pending load among active operators.
    pub spread: usize,
    pub has_plan: bool,
    pub conflicts: usize,
    pub message: Option<String>,
    pub warnings: Vec<String>,
    pub error: Option<String>,
}

#[derive(Default)]
struct ExclusionsExtra {
    message: Option<String>,
    warnings: Vec<String>,
    error: Option<String>,
}

async fn exclusions_view(
    state: &AppState,
    session: &Session,
    key: String,
    extra: ExclusionsExtra,
) -> Result<ExclusionsPage, WebError> {
    let (round, units, users, overview, plans) = state
        .blocking(move |s| {
            let round = s.round(&key)?;
            let units = s.units(round.id)?;
            let users = s.users()?;
            let overview = engine::exclusions(s, &round).map_err(engine_error)?;
            let plans = s.plans(&round)?.len();
            Ok((round, units, users, overview, plans))
        })
        .await?;
    let name_of = |id: i64| {
        units
            .iter()
            .find(|u| u.id == id)
            .map_or_else(String::new, |u| u.name.clone())
    };
    let operators: Vec<OperatorRow> = users
        .iter()
        .filter(|u| u.role == crate::domain::user::Role::Operator)
        .map(|u| OperatorRow {
            login: u.login.clone(),
            name: u.name.clone(),
            active: u.active,
            pending: overview.balance.get(&u.login).copied().unwrap_or(0),
            units: overview
                .by_operator
                .get(&u.login)
                .into_iter()
                .flatten()
                .map(|&unit| ExcludedUnit {
                    unit: name_of(unit),
                    held: overview.conflict(&u.login, unit),
                })
                .collect(),
        })
        .collect();
    let active: Vec<String> = operators
        .iter()
        .filter(|o| o.active)
        .map(|o| o.login.clone())
        .collect();
    Ok(ExclusionsPage {
        f: session.frame("admin"),
        key: round.key.clone(),
        title: round.title.clone(),
        locked: round.is_locked(),
        spread: overview.spread(&active),
        has_plan: plans > 0,
        conflicts: overview.conflicts.values().sum(),
        units: units
            .iter()
            .filter_map(|u| {
                let ops = overview.by_unit.get(&u.id)?;
                Some(UnitRow {
                    name: u.name.clone(),
                    operators: ops.iter().cloned().collect(),
                })
            })
            .collect(),
        unit_names: units.iter().map(|u| u.name.clone()).collect(),
        operators,
        message: extra.message,
        warnings: extra.warnings,
        error: extra.error,
    })
}

async fn exclusions_page(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    Path(key): Path<String>,
) -> Result<ExclusionsPage, WebError> {
    exclusions_view(&state, &session, key, ExclusionsExtra::default()).await
}

#[derive(Deserialize)]
pub struct ExclusionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    operator: String,
    #[serde(default)]
    unit: String,
}

async fn add_exclusion(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    Path(key): Path<String>,
    CheckedForm(form): CheckedForm<ExclusionForm>,
) -> Result<Response, WebError> {
    change_exclusion(state, session, key, form, true).await
}

async fn remove_exclusion(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    Path(key): Path<String>,
    CheckedForm(form): CheckedForm<ExclusionForm>,
) -> Result<Response, WebError> {
    change_exclusion(state, session, key, form, false).await
}

async fn change_exclusion(
    state: AppState,
    session: Session,
    key: String,
    form: ExclusionForm,
    excluded: bool,
) -> Result<Response, WebError> {
    let (k, actor) = (key.clone(), session.user.login.clone());
    let (login, unit) = (
        form.operator.trim().to_string(),
        form.unit.trim().to_string(),
    );
    let result = state
        .blocking(move |s| {
            let round = s.round(&k)?;
            Ok(engine::set_exclusion(
                s, &round, &login, &unit, excluded, &actor,
            ))
        })
        .await?;
    let (status, extra) = match result {
        Ok(change) => {
            let mut messages = change.messages().into_iter();
            (
                StatusCode::OK,
                ExclusionsExtra {
                    message: messages.next(),
                    warnings: messages.collect(),
                    error: None,
                },
            )
        }
        Err(engine::EngineError::Invalid(m)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            ExclusionsExtra {
                error: Some(m),
                ..Default::default()
            },
        ),
        Err(e) => return Err(engine_error(e)),
    };
    let page = exclusions_view(&state, &session, key, extra).await?;
    Ok((status, page).into_response())
}
