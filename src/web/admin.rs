//! The administrator's console: rounds, units and rosters (uploads), the call plan (generate,
//! reassign), corrections (wrong number, reopening, recorded answers) and the lock; users.
//! Every change goes through the same storage methods as the CLI and lands in the audit log.
//! Phone numbers show masked here; a corrected number is typed in, never shown back.

use std::collections::BTreeMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{NaiveDate, Utc};
use serde::Deserialize;

use super::auth::{ADMIN, Allow, CheckedForm, Session};
use super::error::encode_component;
use super::supervise::engine_error;
use super::views::{Frame, local_time};
use super::{AppState, WebError};
use crate::domain::disposition::Outcome;
use crate::domain::phone::{self, mask_canonical};
use crate::domain::round as round_text;
use crate::domain::survey::Survey;
use crate::domain::text;
use crate::domain::user::{self, Role};
use crate::engine;
use crate::imports::{
    EvidenceImport, ImportError, ImportReport, RejectLog, RosterImport, evidence_import,
    roster_import_stream, units_import,
};
use crate::storage::{NewRound, NewUser, RoundRecord, StorageError};
use crate::tabular::{ReadOptions, TableReader, read_table_bytes};

pub(super) const UPLOAD_LIMIT: usize = 32 * 1024 * 1024;
/// Most cells of an upload read whole (units, evidence): a province's units list is a few
/// thousand rows; a million cells keep such a table, and its rejected rows, far below the
/// server's 256 MiB bound per upload.
pub(super) const WHOLE_TABLE_CELLS: usize = 1_000_000;
/// Largest survey definition accepted with a new round.
const SURVEY_LIMIT: usize = 256 * 1024;

super::auth::form_token!(ActiveForm, AddUserForm, FixPhoneForm, LockForm, ReasonForm);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(index))
        .route(
            "/admin/rounds",
            post(create_round).layer(DefaultBodyLimit::max(UPLOAD_LIMIT)),
        )
        .route("/admin/rounds/{key}", get(round_page))
        .route(
            "/admin/rounds/{key}/units",
            post(upload_units).layer(DefaultBodyLimit::max(UPLOAD_LIMIT)),
        )
        .route(
            "/admin/rounds/{key}/roster",
            post(upload_roster).layer(DefaultBodyLimit::max(UPLOAD_LIMIT)),
        )
        .route(
            "/admin/rounds/{key}/evidence",
            post(upload_evidence).layer(DefaultBodyLimit::max(UPLOAD_LIMIT)),
        )
        .route("/admin/rounds/{key}/rejects/{token}", get(download_rejects))
        .route("/admin/rounds/{key}/plan", post(generate_plan))
        .route("/admin/rounds/{key}/reassign", post(reassign))
        .route("/admin/rounds/{key}/plan-unassigned", post(plan_unassigned))
        .route("/admin/rounds/{key}/lock", post(lock_round))
        .route("/admin/rounds/{key}/members", get(members_page))
        .route("/admin/rounds/{key}/members/{id}", get(member_page))
        .route("/admin/rounds/{key}/members/{id}/phone", post(fix_phone))
        .route("/admin/rounds/{key}/members/{id}/reopen", post(reopen))
        .route(
            "/admin/rounds/{key}/attempts/{id}/answers",
            post(edit_answers),
        )
        .route("/admin/users", get(users_page).post(add_user))
        .route("/admin/users/{login}/active", post(set_active))
        .route("/admin/users/{login}/password", post(reset_password))
}

pub(super) fn round_url(key: &str) -> String {
    format!("/admin/rounds/{}", encode_component(key))
}

pub(super) fn import_error(e: ImportError) -> WebError {
    match e {
        ImportError::Table(t) => WebError::BadRequest(t.to_string()),
        ImportError::Header(m) => WebError::BadRequest(m),
        ImportError::Storage(s) => WebError::Storage(s),
        ImportError::Rejects { .. } => WebError::Internal(e.to_string()),
    }
}

/// A multipart form: its text fields and at most one file.
#[derive(Default)]
pub(super) struct Upload {
    fields: BTreeMap<String, String>,
    pub(super) file: Option<(String, Vec<u8>)>,
}

impl Upload {
    pub(super) async fn read(mut mp: Multipart) -> Result<Upload, WebError> {
        let mut up = Upload::default();
        let bad = |e: axum::extract::multipart::MultipartError| {
            WebError::BadRequest(format!("上传未完成:{}", e.body_text()))
        };
        while let Some(field) = mp.next_field().await.map_err(bad)? {
            let name = field.name().unwrap_or("").to_string();
            match field.file_name().map(str::to_string) {
                Some(file_name) => {
                    let bytes = field.bytes().await.map_err(bad)?;
                    if !bytes.is_empty() {
                        up.file = Some((file_name, bytes.to_vec()));
                    }
                }
                None => {
                    let text = field.text().await.map_err(bad)?;
                    up.fields.insert(name, text);
                }
            }
        }
        Ok(up)
    }

    pub(super) fn get(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", |s| s.trim())
    }

    pub(super) fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), "1" | "on" | "true")
    }
}

// ---------------------------------------------------------------------------------------------
// Rounds

pub struct RoundRow {
    pub key: String,
    pub title: String,
    pub units: usize,
    pub members: usize,
    pub period: String,
    pub locked: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_index.html")]
pub struct AdminIndex {
    pub f: Frame,
    pub rounds: Vec<RoundRow>,
    pub error: Option<String>,
}

fn period(r: &RoundRecord) -> String {
    match (r.field_start, r.field_end) {
        (Some(a), Some(b)) => format!("{a} 至 {b}"),
        _ => "未设定".into(),
    }
}

async fn admin_index(
    state: &AppState,
    session: &Session,
    error: Option<String>,
) -> Result<AdminIndex, WebError> {
    let rounds = state.blocking(|s| Ok(s.rounds()?)).await?;
    Ok(AdminIndex {
        f: session.frame("admin"),
        rounds: rounds
            .into_iter()
            .map(|r| RoundRow {
                period: period(&r.round),
                locked: r.round.is_locked(),
                key: r.round.key,
                title: r.round.title,
                units: r.units,
                members: r.members,
            })
            .collect(),
        error,
    })
}

async fn index(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
) -> Result<AdminIndex, WebError> {
    admin_index(&state, &session, None).await
}

async fn create_round(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    mp: Multipart,
) -> Result<Response, WebError> {
    let up = Upload::read(mp).await?;
    session.check_csrf(up.get("csrf"))?;
    let key = up.get("key").to_string();
    let title = up.get("title").to_string();
    let problem = round_text::validate_round_key(&key)
        .and_then(|()| round_text::validate_round_title(&title))
        .err()
        .map(|e| e.to_string());
    let date = |name: &str| -> Result<Option<NaiveDate>, String> {
        match up.get(name) {
            "" => Ok(None),
            v => NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .map(Some)
                .map_err(|_| format!("日期“{v}”格式不正确")),
        }
    };
    let field = match (date("from"), date("to")) {
        // The CLI's rule and message (`round create --from/--to`).
        (Ok(Some(a)), Ok(Some(b))) => round_text::check_field_period(a, b)
            .map(|()| Some((a, b)))
            .map_err(|e| e.to_string()),
        (Ok(None), Ok(None)) => Ok(None),
        (Err(e), _) | (_, Err(e)) => Err(e),
        _ => Err("实施期需同时填写开始和结束日期".to_string()),
    };
    let (survey_text, source) = match &up.file {
        // A survey definition is a few kilobytes; parsing a huge one would cost the server
        // many times its size.
        Some((name, bytes)) if bytes.len() > SURVEY_LIMIT => {
            return Err(WebError::BadRequest(format!(
                "问卷文件“{name}”有 {} 字节,超过 {} KiB 的上限:问卷定义只需几千字节,请确认选择的是问卷 TOML 文件",
                bytes.len(),
                SURVEY_LIMIT / 1024
            )));
        }
        Some((name, bytes)) => (
            String::from_utf8(bytes.clone())
                .map_err(|_| WebError::BadRequest("问卷文件必须是 UTF-8 编码的 TOML".into()))?,
            format!("上传:{name}"),
        ),
        None => (
            include_str!("../../surveys/default.toml").to_string(),
            "surveys/default.toml".to_string(),
        ),
    };
    let survey = Survey::from_toml_str(&survey_text)
        .map_err(|e| e.to_string())
        .and_then(|s| {
            round_text::validate_survey_labels(&s)
                .map(|()| s)
                .map_err(|e| e.to_string())
        });
    let error = problem
        .or_else(|| field.clone().err())
        .or_else(|| survey.as_ref().err().map(|e| format!("问卷定义有误:{e}")));
    if let Some(error) = error {
        let page = admin_index(&state, &session, Some(error)).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let round = NewRound {
        key: key.clone(),
        title,
        survey: survey.expect("checked"),
        survey_source: source,
        field: field.expect("checked"),
    };
    let actor = session.user.login.clone();
    state
        .blocking(move |s| Ok(s.create_round(&round, &actor)?))
        .await?;
    Ok(Redirect::to(&round_url(&key)).into_response())
}

pub struct PlanRow {
    pub id: i64,
    pub kind: &'static str,
    pub seed: u64,
    pub operators: String,
    pub members: usize,
    pub digest: String,
    pub at: String,
    pub by: String,
}

pub struct OperatorChoice {
    pub login: String,
    pub name: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_round.html")]
pub struct RoundPage {
    pub f: Frame,
    pub key: String,
    pub title: String,
    pub period: String,
    pub survey_title: String,
    pub survey_source: String,
    pub locked: bool,
    pub locked_at: String,
    pub units: usize,
    pub members: usize,
    /// Members never called that no operator has (a roster upload after the plan).
    pub unassigned: usize,
    pub plans: Vec<PlanRow>,
    pub operators: Vec<OperatorChoice>,
    pub message: Option<String>,
    pub error: Option<String>,
    pub report: Option<ImportView>,
    /// The round's stages at a glance (`web/round_path.rs`).
    pub path: super::round_path::PathView,
}

pub struct ImportView {
    pub what: &'static str,
    pub applied: bool,
    pub imported: usize,
    /// The first rejected rows (at most [`REJECTS_SHOWN`]).
    pub rejected: Vec<(usize, String, String)>,
    /// Rows rejected in all.
    pub rejected_count: usize,
    /// Where every rejected row can be downloaded as a CSV, when it was kept.
    pub rejects_url: Option<String>,
    /// Rejected rows in that file (fewer than `rejected_count` only past its size limit).
    pub rejects_in_file: usize,
    pub warnings: Vec<String>,
    pub encoding: String,
    /// Some row names a unit the round does not have: the page says where units are uploaded.
    pub unit_missing: bool,
}

/// Rejected rows listed on the page; the rest are in the rejects download.
const REJECTS_SHOWN: usize = 200;
/// Most bytes of rejected rows kept (on disk) for download per upload: every row of a full
/// upload with a long reason each.
const REJECTS_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// Rejects downloads, removed when not fetched within an hour.
const REJECTS: super::temp_area::TempArea =
    super::temp_area::TempArea::new("sheping-rejects", std::time::Duration::from_secs(3600));

impl ImportView {
    pub(super) fn new(
        what: &'static str,
        r: ImportReport,
        rejects: Option<(String, usize)>,
    ) -> ImportView {
        let (rejects_url, rejects_in_file) = rejects.unzip();
        // Fields are named by the file's own headers, as the office's spreadsheet shows them.
        let rejected = r
            .rejected
            .iter()
            .take(REJECTS_SHOWN)
            .map(|x| (x.line, r.header_of(&x.field).to_string(), x.error.clone()))
            .collect();
        ImportView {
            what,
            applied: r.applied,
            imported: r.imported,
            rejected_count: r.rejected_count.max(r.rejected.len()),
            unit_missing: r
                .rejected
                .iter()
                .any(|x| x.field == "unit" && x.error.contains("不在本轮参评单位中")),
            rejected,
            rejects_url,
            rejects_in_file: rejects_in_file.unwrap_or(0),
            warnings: r.warnings,
            encoding: r.encoding.unwrap_or_default(),
        }
    }
}

/// Uploads' rejected rows wait here for their download, one CSV file per upload, named by a
/// random token (the link is the only way to it; it is removed once fetched or expired).
fn rejects_path(token: &str) -> Option<std::path::PathBuf> {
    super::temp_area::TempArea::valid_token(token)
        .then(|| REJECTS.dir().join(format!("{token}.csv")))
}

/// A new token and its file's path; expired files are removed on the way.
pub(super) fn new_rejects_file() -> Option<(String, std::path::PathBuf)> {
    let token = REJECTS.new_token().ok()?;
    let path = rejects_path(&token)?;
    Some((token, path))
}

async fn download_rejects(
    Allow(_session): Allow<ADMIN>,
    Path((_key, token)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let gone = || {
        WebError::NotFound("错误行文件不存在或已过期(每个文件只能下载一次,保留一小时),请重新上传文件以生成新的错误行清单。".into())
    };
    let path = rejects_path(&token).ok_or_else(gone)?;
    let file = tokio::fs::File::open(&path).await.map_err(|_| gone())?;
    // Removed now, read from the open handle: one download, streamed, whatever its size.
    let _ = tokio::fs::remove_file(&path).await;
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file));
    use axum::http::header;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"rejects.csv\"; filename*=UTF-8''%E9%94%99%E8%AF%AF%E8%A1%8C.csv"
                    .to_string(),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response())
}

#[derive(Default)]
struct RoundPageExtra {
    message: Option<String>,
    error: Option<String>,
    report: Option<ImportView>,
}

async fn round_view(
    state: &AppState,
    session: &Session,
    key: String,
    extra: RoundPageExtra,
) -> Result<RoundPage, WebError> {
    let path = super::round_path::PathView::load(state, key.clone(), Role::Admin).await?;
    let (summary, plans, unassigned, users) = state
        .blocking(move |s| {
            let summary = s
                .rounds()?
                .into_iter()
                .find(|r| r.round.key == key)
                .ok_or_else(|| StorageError::NotFound(format!("没有评估轮次 `{key}`")))?;
            let plans = s.plans(&summary.round)?;
            let unassigned = s.plan_state(&summary.round)?.unassigned.len();
            Ok((summary, plans, unassigned, s.users()?))
        })
        .await?;
    let r = &summary.round;
    let tz = r.survey.timezone();
    Ok(RoundPage {
        f: session.frame("admin"),
        key: r.key.clone(),
        title: r.title.clone(),
        period: period(r),
        survey_title: r.survey.title.clone(),
        survey_source: r.survey_source.clone(),
        locked: r.is_locked(),
        locked_at: r
            .locked_at_ms
            .map(|t| local_time(t, tz, "%Y-%m-%d %H:%M"))
            .unwrap_or_default(),
        units: summary.units,
        members: summary.members,
        unassigned,
        plans: plans
            .into_iter()
            .rev()
            .map(|p| PlanRow {
                id: p.id,
                kind: if p.kind == "generate" {
                    "生成"
                } else {
                    "转派"
                },
                seed: p.seed,
                operators: p.operators.join("、"),
                members: p.members,
                digest: p.digest.chars().take(12).collect(),
                at: local_time(p.created_at_ms, tz, "%Y-%m-%d %H:%M"),
                by: p.created_by,
            })
            .collect(),
        operators: users
            .into_iter()
            .filter(|u| u.active && u.role == Role::Operator)
            .map(|u| OperatorChoice {
                login: u.login,
                name: u.name,
            })
            .collect(),
        message: extra.message,
        error: extra.error,
        report: extra.report,
        path,
    })
}

#[derive(Deserialize, Default)]
pub struct DoneQuery {
    #[serde(default)]
    done: String,
    #[serde(default)]
    n: Option<usize>,
}

fn done_message(q: &DoneQuery) -> Option<String> {
    let n = q.n.unwrap_or(0);
    Some(match q.done.as_str() {
        "plan" => format!("已生成拨打计划:{n} 名代表分配给话务员。"),
        "reassign" => format!("已转派 {n} 名代表。"),
        "unassigned" => {
            format!("已为 {n} 名未分配的代表安排话务员;原有的分配和拨打顺序都未改变。")
        }
        "lock" => "本轮评估已锁定。此后任何拨打记录、导入和更正都会被拒绝。".to_string(),
        "phone" => "号码已更正,该代表已重新开放拨打。".to_string(),
        "reopen" => "该代表已重新开放拨打。".to_string(),
        "answers" => "答案已修改,修改前后的内容和原因已记入审计日志。".to_string(),
        _ => return None,
    })
}

async fn round_page(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    Path(key): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<RoundPage, WebError> {
    let extra = RoundPageExtra {
        message: done_message(&q),
        ..Default::default()
    };
    round_view(&state, &session, key, extra).await
}

async fn upload_units(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    Path(key): Path<String>,
    mp: Multipart,
) -> Result<Response, WebError> {
    upload(state, session, key, mp, "单位").await
}

async fn upload_roster(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    Path(key): Path<String>,
    mp: Multipart,
) -> Result<Response, WebError> {
    upload(state, session, key, mp, "代表名单").await
}

async fn upload_evidence(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    Path(key): Path<String>,
    mp: Multipart,
) -> Result<Response, WebError> {
    upload(state, session, key, mp, "佐证数据").await
}

async fn upload(
    state: AppState,
    session: Session,
    key: String,
    mp: Multipart,
    what: &'static str,
) -> Result<Response, WebError> {
    let mut up = Upload::read(mp).await?;
    session.check_csrf(up.get("csrf"))?;
    let Some((file_name, bytes)) = up.file.take() else {
        let extra = RoundPageExtra {
            error: Some("请选择要上传的文件".into()),
            ..Default::default()
        };
        let page = round_view(&state, &session, key, extra).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    let actor = session.user.login.clone();
    let skip_invalid = up.flag("skip_invalid");
    let replace = up.flag("replace");
    let area_code = Some(up.get("area_code").to_string()).filter(|a| !a.is_empty());
    let k = key.clone();
    let result = state
        .blocking(move |s| {
            let round = s.round(&k)?;
            let mut rejects_url = None;
            let mut run = || -> Result<ImportReport, ImportError> {
                if what == "单位" || what == "佐证数据" {
                    // Read whole (these lists are small by nature): the cell budget bounds the
                    // table's memory whatever the file's shape, and every rejected row is
                    // offered as a download like a roster's.
                    let opts = ReadOptions {
                        max_cells: WHOLE_TABLE_CELLS,
                        ..ReadOptions::default()
                    };
                    let table = read_table_bytes(&bytes, &file_name, &opts)?;
                    let report = if what == "单位" {
                        units_import(s, &round, &table, skip_invalid, &actor)?
                    } else {
                        evidence_import(s, &round, &table, &EvidenceImport { replace }, &actor)?
                    };
                    if !report.rejected.is_empty()
                        && let Some((token, path)) = new_rejects_file()
                    {
                        match report.write_rejects(&path) {
                            Ok(()) => {
                                rejects_url = Some((
                                    format!("{}/rejects/{token}", round_url(&round.key)),
                                    report.rejected.len(),
                                ));
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "could not keep the rejected rows");
                                let _ = std::fs::remove_file(path);
                            }
                        }
                    }
                    return Ok(report);
                }
                // Read as a stream, rejected rows to a file: memory does not grow with the
                // upload's rows or its errors.
                let reader = TableReader::from_bytes(&bytes, &file_name, &ReadOptions::default())?;
                let spill = new_rejects_file();
                let mut rejects = match &spill {
                    Some((_, path)) => RejectLog::spill(REJECTS_SHOWN, path, REJECTS_MAX_BYTES),
                    None => RejectLog::all(),
                };
                let report = roster_import_stream(
                    s,
                    &round,
                    reader,
                    &RosterImport {
                        area_code: area_code.as_deref(),
                        skip_invalid,
                        replace,
                    },
                    &actor,
                    &mut rejects,
                );
                if let Some((token, path)) = spill {
                    if report.is_ok() && rejects.spilled() > 0 {
                        rejects_url = Some((
                            format!("{}/rejects/{token}", round_url(&round.key)),
                            rejects.spilled(),
                        ));
                    } else {
                        let _ = std::fs::remove_file(path);
                    }
                }
                report
            };
            let report = run();
            Ok((report, rejects_url))
        })
        .await?;
    let (result, rejects_url) = result;
    let (status, extra) = match result {
        Ok(report) => {
            let status = if report.applied {
                StatusCode::OK
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            (
                status,
                RoundPageExtra {
                    report: Some(ImportView::new(what, report, rejects_url)),
                    ..Default::default()
                },
            )
        }
        Err(ImportError::Storage(e @ StorageError::Locked(_))) => return Err(e.into()),
        Err(e) => {
            let e = import_error(e);
            if matches!(e, WebError::Internal(_) | WebError::Storage(_)) {
                return Err(e);
            }
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                RoundPageExtra {
                    error: Some(format!("{what}导入失败:{e}")),
                    ..Default::default()
                },
            )
        }
    };
    let page = round_view(&state, &session, key, extra).await?;
    Ok((status, page).into_response())
}

fn parse_seed(text: &str) -> Result<u64, WebError> {
    match text.trim() {
        "" => Ok(engine::random_seed()),
        t => t
            .parse()
            .map_err(|_| WebError::BadRequest(format!("随机种子“{t}”必须是非负整数"))),
    }
}

async fn generate_plan(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    Path(key): Path<String>,
    CheckedForm(fields): CheckedForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let get = |n: &str| fields.iter().find(|(k, _)| k == n).map_or("", |(_, v)| v);
    let ops: Vec<String> = fields
        .iter()
        .filter(|(k, _)| k == "operator")
        .map(|(_, v)| v.clone())
        .collect();
    let seed = parse_seed(get("seed"))?;
    let actor = session.user.login.clone();
    let k = key.clone();
    let out = state
        .blocking(move |s| {
            let round = s.round(&k)?;
            let ops = engine::plan_operators(s, (!ops.is_empty()).then_some(ops.as_slice()))
                .map_err(engine_error)?;
            engine::generate_plan(s, &round, ops, seed, &actor).map_err(engine_error)
        })
        .await?;
    Ok(Redirect::to(&format!("{}?done=plan&n={}", round_url(&key), out.planned)).into_response())
}

/// Plans the members no operator has (added by a roster upload after the plan) over every
/// active operator, keeping each existing assignment.
async fn plan_unassigned(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    Path(key): Path<String>,
    CheckedForm(fields): CheckedForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let get = |n: &str| fields.iter().find(|(k, _)| k == n).map_or("", |(_, v)| v);
    let seed = parse_seed(get("seed"))?;
    let actor = session.user.login.clone();
    let k = key.clone();
    let out = state
        .blocking(move |s| {
            let round = s.round(&k)?;
            let ops = engine::plan_operators(s, None).map_err(engine_error)?;
            engine::plan_unassigned(s, &round, ops, seed, &actor).map_err(engine_error)
        })
        .await?;
    Ok(Redirect::to(&format!(
        "{}?done=unassigned&n={}",
        round_url(&key),
        out.planned
    ))
    .into_response())
}

async fn reassign(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    Path(key): Path<String>,
    CheckedForm(fields): CheckedForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let get = |n: &str| fields.iter().find(|(k, _)| k == n).map_or("", |(_, v)| v);
    let from = get("from").to_string();
    let to: Vec<String> = fields
        .iter()
        .filter(|(k, _)| k == "to")
        .map(|(_, v)| v.clone())
        .collect();
    let seed = parse_seed(get("seed"))?;
    let actor = session.user.login.clone();
    let k = key.clone();
    let out = state
        .blocking(move |s| {
            let round = s.round(&k)?;
            let targets = if to.is_empty() {
                engine::plan_operators(s, None)
                    .map_err(engine_error)?
                    .into_iter()
                    .filter(|o| *o != from)
                    .collect()
            } else {
                engine::plan_operators(s, Some(&to)).map_err(engine_error)?
            };
            engine::reassign(s, &round, &from, targets, seed, &actor).map_err(engine_error)
        })
        .await?;
    Ok(Redirect::to(&format!(
        "{}?done=reassign&n={}",
        round_url(&key),
        out.planned
    ))
    .into_response())
}

#[derive(Deserialize)]
pub struct LockForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
}

async fn lock_round(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    Path(key): Path<String>,
    CheckedForm(form): CheckedForm<LockForm>,
) -> Result<Response, WebError> {
    if form.confirm.trim() != key {
        let extra = RoundPageExtra {
            error: Some(format!(
                "未锁定:请在确认框中输入轮次代码“{key}”。锁定后不能撤销。"
            )),
            ..Default::default()
        };
        let page = round_view(&state, &session, key, extra).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let actor = session.user.login.clone();
    let k = key.clone();
    state
        .blocking(move |s| {
            let round = s.round(&k)?;
            Ok(s.lock_round(&round, &actor)?)
        })
        .await?;
    Ok(Redirect::to(&format!("{}?done=lock", round_url(&key))).into_response())
}

// ---------------------------------------------------------------------------------------------
// Members and corrections

pub struct MemberRow {
    pub id: i64,
    pub unit: String,
    pub name: String,
    pub category: &'static str,
    pub phone: String,
    pub operator: String,
    pub attempts: usize,
    pub status: String,
    pub is_final: bool,
}

pub struct UnitChoice {
    pub id: i64,
    pub name: String,
    pub selected: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_members.html")]
pub struct MembersPage {
    pub f: Frame,
    pub key: String,
    pub title: String,
    pub locked: bool,
    pub units: Vec<UnitChoice>,
    pub q: String,
    pub all_units: bool,
    pub rows: Vec<MemberRow>,
}

#[derive(Deserialize, Default)]
pub struct MembersQuery {
    /// A unit's id; empty or absent: every unit (a search must not miss a name in another unit).
    #[serde(default)]
    unit: String,
    #[serde(default)]
    q: String,
}

impl MembersQuery {
    fn unit(&self) -> Result<Option<i64>, WebError> {
        let t = self.unit.trim();
        if t.is_empty() {
            return Ok(None);
        }
        t.parse().map(Some).map_err(|_| {
            WebError::BadRequest("参评单位的选择无效。请从下拉框中选择一个单位。".into())
        })
    }
}

async fn members_page(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    Path(key): Path<String>,
    Query(q): Query<MembersQuery>,
) -> Result<MembersPage, WebError> {
    let unit = q.unit()?;
    let (round, units, members, statuses) = state
        .blocking(move |s| {
            let round = s.round(&key)?;
            let units = s.units(round.id)?;
            let members = s.members(round.id, unit)?;
            let statuses = engine::member_statuses(s, &round, Utc::now()).map_err(engine_error)?;
            Ok((round, units, members, statuses))
        })
        .await?;
    let selected = unit;
    let closed = round.field_closed(Utc::now());
    let needle = q.q.trim().to_string();
    let rows = members
        .into_iter()
        .filter(|m| {
            needle.is_empty()
                || m.name.as_deref().is_some_and(|n| n.contains(&needle))
                || m.id.to_string() == needle
        })
        .map(|m| {
            let st = statuses.get(&m.id);
            let (status, is_final, attempts) = match st {
                Some(st) if st.in_progress => ("通话中".to_string(), false, st.facts.len()),
                Some(st) => {
                    let d = st.disposition(round.survey.calling.max_attempts, closed);
                    (
                        format!("{}({})", d.label(), d.code),
                        d.is_final(),
                        st.facts.len(),
                    )
                }
                None => (String::new(), false, 0),
            };
            MemberRow {
                id: m.id,
                unit: m.unit,
                name: m.name.unwrap_or_default(),
                category: m.category.label(),
                phone: m.phone.as_deref().map(mask_canonical).unwrap_or_default(),
                operator: st.and_then(|s| s.operator.clone()).unwrap_or_default(),
                attempts,
                status,
                is_final,
            }
        })
        .collect();
    Ok(MembersPage {
        f: session.frame("admin"),
        key: round.key.clone(),
        title: round.title.clone(),
        locked: round.is_locked(),
        units: units
            .into_iter()
            .map(|u| UnitChoice {
                selected: Some(u.id) == selected,
                id: u.id,
                name: u.name,
            })
            .collect(),
        q: q.q,
        all_units: selected.is_none(),
        rows,
    })
}

pub struct AnswerCell {
    pub dimension: String,
    pub level: String,
    pub ms: String,
}

pub struct LevelOption {
    pub value: usize,
    pub label: String,
    pub selected: bool,
}

pub struct EditDimension {
    pub index: usize,
    pub label: String,
    pub options: Vec<LevelOption>,
}

pub struct AttemptView {
    pub id: i64,
    pub attempt_no: u32,
    pub at: String,
    pub operator: String,
    pub outcome: &'static str,
    pub code: String,
    pub answers: Vec<AnswerCell>,
    pub comment: String,
    pub appointment: String,
    pub source: String,
    pub editable: bool,
    pub edit: Vec<EditDimension>,
}

pub struct EditView {
    pub attempt_no: u32,
    pub at: String,
    pub actor: String,
    pub reason: String,
    pub before: String,
    pub after: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_member.html")]
pub struct MemberPage {
    pub f: Frame,
    pub key: String,
    pub locked: bool,
    pub id: i64,
    pub unit: String,
    pub name: String,
    pub category: &'static str,
    pub organization: String,
    pub phone: String,
    pub phone_alt: String,
    pub operator: String,
    pub status: String,
    pub is_final: bool,
    pub complete: bool,
    pub attempts: Vec<AttemptView>,
    pub edits: Vec<EditView>,
    pub message: Option<String>,
    pub error: Option<String>,
}

async fn member_view(
    state: &AppState,
    session: &Session,
    key: String,
    id: i64,
    message: Option<String>,
    error: Option<String>,
) -> Result<MemberPage, WebError> {
    let (round, member, attempts, edits, status) = state
        .blocking(move |s| {
            let round = s.round(&key)?;
            let member = s
                .members(round.id, None)?
                .into_iter()
                .find(|m| m.id == id)
                .ok_or_else(|| StorageError::NotFound(format!("轮次 {key} 中没有代表 {id}")))?;
            let attempts = s.member_attempts(id)?;
            let ids: Vec<i64> = attempts.iter().map(|a| a.id).collect();
            let edits = s.answer_edits(&ids)?;
            let status = engine::member_statuses(s, &round, Utc::now())
                .map_err(engine_error)?
                .remove(&id);
            Ok((round, member, attempts, edits, status))
        })
        .await?;
    let survey = &round.survey;
    let tz = survey.timezone();
    let level_label = |l: Option<usize>| {
        l.and_then(|l| survey.levels.get(l))
            .map_or_else(|| "—".to_string(), |l| l.label.clone())
    };
    let closed = round.field_closed(Utc::now());
    let (status_text, is_final, complete, operator) = match &status {
        Some(st) => {
            let d = st.disposition(survey.calling.max_attempts, closed);
            (
                format!(
                    "{}(AAPOR {}){}",
                    d.label(),
                    d.code,
                    if st.in_progress { ",通话中" } else { "" }
                ),
                d.is_final(),
                d.outcome == Some(Outcome::Complete),
                st.operator.clone().unwrap_or_default(),
            )
        }
        None => (String::new(), false, false, String::new()),
    };
    let attempt_no: BTreeMap<i64, u32> = attempts.iter().map(|a| (a.id, a.attempt_no)).collect();
    let answers_text = |v: &[Option<usize>]| {
        v.iter()
            .map(|l| level_label(*l))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    Ok(MemberPage {
        f: session.frame("admin"),
        key: round.key.clone(),
        locked: round.is_locked(),
        id: member.id,
        unit: member.unit.clone(),
        name: member.name.clone().unwrap_or_default(),
        category: member.category.label(),
        organization: member.organization.clone().unwrap_or_default(),
        phone: member
            .phone
            .as_deref()
            .map(mask_canonical)
            .unwrap_or_default(),
        phone_alt: member
            .phone_alt
            .as_deref()
            .map(mask_canonical)
            .unwrap_or_default(),
        operator,
        status: status_text,
        is_final,
        complete,
        attempts: attempts
            .iter()
            .map(|a| AttemptView {
                id: a.id,
                attempt_no: a.attempt_no,
                at: local_time(a.recorded_at_ms, tz, "%Y-%m-%d %H:%M:%S"),
                operator: a.operator.clone(),
                outcome: a.outcome.label(),
                code: a.aapor_code.clone(),
                answers: survey
                    .dimensions
                    .iter()
                    .enumerate()
                    .map(|(i, d)| AnswerCell {
                        dimension: d.label.clone(),
                        level: level_label(a.answers.get(i).copied().flatten()),
                        ms: a
                            .answer_ms
                            .get(i)
                            .copied()
                            .flatten()
                            .map(|ms| format!("{:.1} 秒", ms as f64 / 1000.0))
                            .unwrap_or_default(),
                    })
                    .collect(),
                comment: a.comment.clone().unwrap_or_default(),
                appointment: a
                    .appointment_at_ms
                    .map(|t| local_time(t, tz, "%Y-%m-%d %H:%M"))
                    .unwrap_or_default(),
                source: a.source.clone(),
                editable: a.outcome.needs_answers(),
                edit: survey
                    .dimensions
                    .iter()
                    .enumerate()
                    .map(|(i, d)| EditDimension {
                        index: i,
                        label: d.label.clone(),
                        options: survey
                            .levels
                            .iter()
                            .enumerate()
                            .map(|(l, level)| LevelOption {
                                value: l + 1,
                                label: level.label.clone(),
                                selected: a.answers.get(i).copied().flatten() == Some(l),
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
        edits: edits
            .into_iter()
            .map(|e| EditView {
                attempt_no: attempt_no.get(&e.attempt_id).copied().unwrap_or_default(),
                at: local_time(e.at_ms, tz, "%Y-%m-%d %H:%M:%S"),
                actor: e.actor,
                reason: e.reason,
                before: answers_text(&e.before),
                after: answers_text(&e.after),
            })
            .collect(),
        message,
        error,
    })
}

async fn member_page(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    Path((key, id)): Path<(String, i64)>,
    Query(q): Query<DoneQuery>,
) -> Result<MemberPage, WebError> {
    member_view(&state, &session, key, id, done_message(&q), None).await
}

fn member_url(key: &str, id: i64) -> String {
    format!("{}/members/{id}", round_url(key))
}

/// Re-shows the member page with a correction's error (422), or passes storage errors on.
async fn member_error(
    state: &AppState,
    session: &Session,
    key: String,
    id: i64,
    e: WebError,
) -> Result<Response, WebError> {
    let message = match e {
        WebError::Conflict(m) | WebError::BadRequest(m) => m,
        WebError::Storage(StorageError::Conflict(m)) => m,
        other => return Err(other),
    };
    let page = member_view(state, session, key, id, None, Some(message)).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

#[derive(Deserialize)]
pub struct FixPhoneForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    area_code: String,
    #[serde(default)]
    reason: String,
}

async fn fix_phone(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    Path((key, id)): Path<(String, i64)>,
    CheckedForm(form): CheckedForm<FixPhoneForm>,
) -> Result<Response, WebError> {
    let area = Some(form.area_code.trim()).filter(|a| !a.is_empty());
    let parsed = phone::parse_phone(&form.phone, area);
    let reason = form.reason.trim().to_string();
    let reason_problem = text::check_reason(&reason).err();
    let result = match parsed {
        Err(e) => Err(WebError::BadRequest(format!("新号码无效:{e}"))),
        Ok(_) if reason.is_empty() => Err(WebError::BadRequest("请填写更正原因".into())),
        Ok(_) if reason_problem.is_some() => Err(WebError::BadRequest(
            reason_problem.map(|e| e.to_string()).unwrap_or_default(),
        )),
        Ok(p) => {
            let (k, actor) = (key.clone(), session.user.login.clone());
            state
                .blocking(move |s| {
                    let round = s.round(&k)?;
                    match s.fix_phone(&round, id, p.canonical(), &reason, &actor, Utc::now()) {
                        // The store reports an unknown member id as a failed lookup (a
                        // database error on SQLite, NotFound on PostgreSQL): it is a 404, not a
                        // 500, worded the same on both. Checked only on this error path, so a
                        // correction never scans the round's members.
                        Err(StorageError::Database(_) | StorageError::NotFound(_))
                            if !s.members(round.id, None)?.iter().any(|m| m.id == id) =>
                        {
                            Err(WebError::NotFound(format!("轮次 {k} 中没有代表 {id}")))
                        }
                        other => Ok(other?),
                    }
                })
                .await
        }
    };
    match result {
        Ok(()) => Ok(Redirect::to(&format!("{}?done=phone", member_url(&key, id))).into_response()),
        Err(e) => member_error(&state, &session, key, id, e).await,
    }
}

#[derive(Deserialize)]
pub struct ReasonForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

async fn reopen(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    Path((key, id)): Path<(String, i64)>,
    CheckedForm(form): CheckedForm<ReasonForm>,
) -> Result<Response, WebError> {
    let reason = form.reason.trim().to_string();
    let result = if reason.is_empty() {
        Err(WebError::BadRequest("请填写重新开放的原因".into()))
    } else if let Err(e) = text::check_reason(&reason) {
        Err(WebError::BadRequest(e.to_string()))
    } else {
        let (k, actor) = (key.clone(), session.user.login.clone());
        state
            .blocking(move |s| {
                let round = s.round(&k)?;
                let now = Utc::now();
                let statuses = engine::member_statuses(s, &round, now).map_err(engine_error)?;
                let st = statuses
                    .get(&id)
                    .ok_or_else(|| StorageError::NotFound(format!("轮次 {k} 中没有代表 {id}")))?;
                let d = st.disposition(round.survey.calling.max_attempts, round.field_closed(now));
                if d.outcome == Some(Outcome::Complete) {
                    return Err(WebError::Conflict("该代表已完成访问,不能重新开放".into()));
                }
                if !d.is_final() {
                    return Err(WebError::Conflict(
                        "该代表仍在拨打中(尚未结束),无需重新开放".into(),
                    ));
                }
                Ok(s.reopen(&round, id, &reason, &actor, now)?)
            })
            .await
    };
    match result {
        Ok(()) => {
            Ok(Redirect::to(&format!("{}?done=reopen", member_url(&key, id))).into_response())
        }
        Err(e) => member_error(&state, &session, key, id, e).await,
    }
}

async fn edit_answers(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    Path((key, attempt_id)): Path<(String, i64)>,
    CheckedForm(fields): CheckedForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let get = |n: &str| fields.iter().find(|(k, _)| k == n).map_or("", |(_, v)| v);
    let reason = get("reason").trim().to_string();
    let k = key.clone();
    let (round, attempt) = state
        .blocking(move |s| {
            let round = s.round(&k)?;
            let (attempt, round_id) = s.attempt(attempt_id)?;
            if round_id != round.id {
                return Err(WebError::NotFound(format!(
                    "第 {attempt_id} 号拨打记录不在轮次 {k} 中"
                )));
            }
            Ok((round, attempt))
        })
        .await?;
    let member = attempt.member_id;
    let levels = round.survey.levels.len();
    let mut answers = Vec::new();
    for d in 0..round.survey.dimensions.len() {
        answers.push(match get(&format!("a{d}")).trim() {
            "" => None,
            v => match v.parse::<usize>() {
                Ok(l) if (1..=levels).contains(&l) => Some(l - 1),
                _ => return Err(WebError::BadRequest(format!("第 {} 题的答案无效", d + 1))),
            },
        });
    }
    text::check_reason(&reason).map_err(|e| WebError::BadRequest(e.to_string()))?;
    let actor = session.user.login.clone();
    let result = state
        .blocking(move |s| {
            Ok(s.edit_answers(&round, attempt_id, &answers, &reason, &actor, Utc::now())?)
        })
        .await;
    match result {
        Ok(_) => {
            Ok(Redirect::to(&format!("{}?done=answers", member_url(&key, member))).into_response())
        }
        Err(e) => member_error(&state, &session, key, member, e).await,
    }
}

// ---------------------------------------------------------------------------------------------
// Users

pub struct UserRow {
    pub login: String,
    pub name: String,
    pub role: &'static str,
    pub active: bool,
    pub me: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_users.html")]
pub struct UsersPage {
    pub f: Frame,
    pub users: Vec<UserRow>,
    pub message: Option<String>,
    pub error: Option<String>,
    /// A password shown once (new user or reset).
    pub password: Option<(String, String)>,
}

async fn users_view(
    state: &AppState,
    session: &Session,
    message: Option<String>,
    error: Option<String>,
    password: Option<(String, String)>,
) -> Result<UsersPage, WebError> {
    let users = state.blocking(|s| Ok(s.users()?)).await?;
    Ok(UsersPage {
        f: session.frame("users"),
        users: users
            .into_iter()
            .map(|u| UserRow {
                me: u.login == session.user.login,
                login: u.login,
                name: u.name,
                role: u.role.label(),
                active: u.active,
            })
            .collect(),
        message,
        error,
        password,
    })
}

async fn users_page(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
) -> Result<UsersPage, WebError> {
    users_view(&state, &session, None, None, None).await
}

#[derive(Deserialize)]
pub struct AddUserForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    login: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

async fn add_user(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    CheckedForm(form): CheckedForm<AddUserForm>,
) -> Result<Response, WebError> {
    let login = form.login.trim().to_string();
    let name = form.name.trim().to_string();
    let generated = form.password.is_empty();
    let password = if generated {
        user::generate_password(&mut rand::rng())
    } else {
        form.password.clone()
    };
    let problem = user::validate_login(&login)
        .err()
        .map(|e| e.to_string())
        .or_else(|| user::validate_name(&name).err().map(|e| e.to_string()))
        .or_else(|| {
            Role::parse(&form.role)
                .is_none()
                .then(|| user::UserError::BadRole(form.role.clone()).to_string())
        })
        .or_else(|| {
            user::validate_password(&password)
                .err()
                .map(|e| e.to_string())
        });
    if let Some(p) = problem {
        let page = users_view(&state, &session, None, Some(p), None).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let role = Role::parse(&form.role).expect("checked");
    let actor = session.user.login.clone();
    let (l, pw) = (login.clone(), password.clone());
    let result = state
        .blocking(move |s| {
            let hash = user::hash_password(&pw);
            Ok(s.add_user(
                &NewUser {
                    login: l,
                    name,
                    role,
                    password_hash: hash,
                },
                &actor,
            )?)
        })
        .await;
    match result {
        Ok(u) => {
            let page = users_view(
                &state,
                &session,
                Some(format!("已添加用户 {}({})", u.login, u.role.label())),
                None,
                generated.then(|| (u.login.clone(), password)),
            )
            .await?;
            Ok(page.into_response())
        }
        Err(WebError::Storage(StorageError::Conflict(m))) => {
            let page = users_view(&state, &session, None, Some(m), None).await?;
            Ok((StatusCode::CONFLICT, page).into_response())
        }
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
pub struct ActiveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    active: String,
}

async fn set_active(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    Path(login): Path<String>,
    CheckedForm(form): CheckedForm<ActiveForm>,
) -> Result<Response, WebError> {
    let active = form.active == "1";
    if !active && login == session.user.login {
        let page = users_view(
            &state,
            &session,
            None,
            Some("不能停用自己正在使用的账号".into()),
            None,
        )
        .await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let actor = session.user.login.clone();
    let l = login.clone();
    state
        .blocking(move |s| {
            s.set_user_active(&l, active, &actor)?;
            if !active {
                let u = s.user(&l)?;
                s.end_user_sessions(u.id, None)?;
            }
            Ok(())
        })
        .await?;
    let msg = if active {
        format!("已启用 {login}")
    } else {
        format!("已停用 {login},其登录会话已结束")
    };
    Ok(users_view(&state, &session, Some(msg), None, None)
        .await?
        .into_response())
}

async fn reset_password(
    State(state): State<AppState>,
    Allow(session): Allow<ADMIN>,
    Path(login): Path<String>,
    CheckedForm(_form): CheckedForm<super::auth::CsrfOnly>,
) -> Result<Response, WebError> {
    let password = user::generate_password(&mut rand::rng());
    let actor = session.user.login.clone();
    let (l, pw) = (login.clone(), password.clone());
    let keep = (login == session.user.login).then(|| session.id_hash.clone());
    state
        .blocking(move |s| {
            let hash = user::hash_password(&pw);
            s.set_password(&l, &hash, &actor)?;
            let u = s.user(&l)?;
            s.end_user_sessions(u.id, keep.as_deref())?;
            Ok(())
        })
        .await?;
    Ok(users_view(
        &state,
        &session,
        Some(format!("已重置 {login} 的密码,其登录会话已结束")),
        None,
        Some((login, password)),
    )
    .await?
    .into_response())
}
