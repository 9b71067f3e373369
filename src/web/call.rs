//! The operator's call screen: claim the next contact, read the script, key the five answers
//! or the outcome, next contact.
//!
//! It is a plain HTML form (radio buttons and submit buttons) that works without JavaScript;
//! `web/static/call.js` adds the keyboard: digits answer the current question and move on,
//! Backspace/← go back, Enter submits, one letter per outcome (then Enter), Esc releases.
//!
//! Recording is idempotent by the claim's token: a second submission of the same form (double
//! click, refresh, network retry) stores nothing and shows the same confirmation. After a
//! recorded attempt the next contact is claimed at once, so the operator's screen always holds
//! the next call. That write also reads the next screen in its own transaction, and the
//! record's answer is that screen: the cycle is one request and one write. The page carries
//! its own address (`/call?round=…&done=…`), which `call.js` puts in the address bar, so a
//! reload reads the screen again instead of sending the form twice (without the script a
//! reload sends it again, which records nothing new: see above).

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use super::auth::{Allow, CheckedForm, OPERATOR, Session};
use super::error::encode_component;
use super::views::{Frame, local_midnight_ms, local_time, short_time};
use super::{AppState, Store, WebError};
use crate::domain::appointment::{self, AppointmentError};
use crate::domain::disposition::Outcome;
use crate::domain::phone::Phone;
use crate::domain::survey::Survey;
use crate::storage::{
    AttemptBrief, AttemptInput, AuditEvent, Claim, OperatorDay, RecordError, RecordedCall,
    RoundRecord, StorageError, UserRecord, in_snapshot,
};

super::auth::form_token!(NextForm, ReleaseForm, RenewForm);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/call", get(call_page))
        .route("/call/next", post(next))
        .route("/call/record", post(record))
        .route("/call/release", post(release))
        .route("/call/renew", post(renew))
        .route("/call/list", get(my_list))
}

/// The key that selects each outcome that is not a complete interview (pinyin initials, so
/// operators remember them: 无人接听 W, 占线 Z, 预约回访 H …). Digits answer questions.
pub fn hotkey(o: Outcome) -> Option<char> {
    Some(match o {
        Outcome::Complete => return None,
        Outcome::NoAnswer => 'W',
        Outcome::Busy => 'Z',
        Outcome::Appointment => 'H',
        Outcome::RespondentUnavailable => 'B',
        Outcome::Voicemail => 'Y',
        Outcome::Partial => 'P',
        Outcome::Refused => 'J',
        Outcome::BreakOff => 'G',
        Outcome::WrongNumber => 'C',
        Outcome::NotInService => 'K',
        Outcome::Unable => 'F',
    })
}

/// The outcome buttons in the order operators need them most.
const BUTTON_ORDER: [Outcome; 11] = [
    Outcome::NoAnswer,
    Outcome::Busy,
    Outcome::Appointment,
    Outcome::RespondentUnavailable,
    Outcome::Voicemail,
    Outcome::Partial,
    Outcome::Refused,
    Outcome::BreakOff,
    Outcome::WrongNumber,
    Outcome::NotInService,
    Outcome::Unable,
];

pub struct OutcomeButton {
    pub key: &'static str,
    pub label: &'static str,
    pub hotkey: char,
    pub is_final: bool,
}

fn outcome_buttons() -> Vec<OutcomeButton> {
    BUTTON_ORDER
        .iter()
        .filter_map(|o| {
            hotkey(*o).map(|k| OutcomeButton {
                key: o.key(),
                label: o.label(),
                hotkey: k,
                is_final: o.is_final(),
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Views

pub struct OptionView {
    pub value: usize,
    pub label: String,
    pub checked: bool,
}

pub struct QuestionView {
    pub index: usize,
    pub number: usize,
    pub label: String,
    pub text: String,
    pub options: Vec<OptionView>,
    pub ms: String,
}

pub struct EarlierView {
    pub at: String,
    pub outcome: &'static str,
    pub operator: String,
    pub comment: String,
    pub appointment: String,
}

pub struct ContactView {
    pub token: String,
    pub unit: String,
    pub unit_kind: &'static str,
    pub name: String,
    pub category: &'static str,
    pub deputy: bool,
    pub organization: String,
    pub note: String,
    pub phone: String,
    pub dial: String,
    pub phone_alt: Option<(String, String)>,
    pub attempt_no: u32,
    pub max_attempts: u32,
    pub earlier: Vec<EarlierView>,
    pub appointment: Option<String>,
    pub intro: String,
    pub questions: Vec<QuestionView>,
    pub comment: String,
    pub claimed_at_ms: i64,
    pub rendered_at_ms: i64,
    pub expires: String,
    /// The lease's end (ms), for the page's renewal and its warning before a lapse.
    pub expires_at_ms: i64,
    pub appt_value: String,
    /// One-key appointment times: (label, value for the field).
    pub appt_presets: Vec<(String, String)>,
    pub appt_error: Option<String>,
}

pub struct DoneView {
    /// The agreed call-back time, shown instead of the save time for an appointment.
    pub appointment: Option<String>,
    pub outcome: &'static str,
    pub complete: bool,
    pub unit: String,
    pub attempt_no: u32,
    pub at: String,
}

pub struct RoundChoice {
    pub key: String,
    pub title: String,
    pub current: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "call.html")]
pub struct CallPage {
    pub f: Frame,
    /// The screen's own address: the address bar shows it also when the page answers a form.
    pub page_url: String,
    pub round_key: String,
    pub round_title: String,
    pub locked: bool,
    pub rounds: Vec<RoundChoice>,
    pub contact: Option<ContactView>,
    pub done: Option<DoneView>,
    pub error: Option<String>,
    pub notice: Option<String>,
    pub idle: String,
    pub day: OperatorDay,
    pub next_due: String,
    pub buttons: Vec<OutcomeButton>,
    pub levels: Vec<String>,
    pub windows: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "call_none.html")]
pub struct NoRoundPage {
    pub f: Frame,
}

/// Phone as operators read it aloud: "139 1234 5678", "0915-3212345 转 801".
fn display_phone(p: &Phone) -> String {
    let c = p.canonical();
    if !c.starts_with('0') && c.len() == 11 {
        return format!("{} {} {}", &c[..3], &c[3..7], &c[7..]);
    }
    match p.extension() {
        Some(ext) => {
            let base = c.rsplit_once('-').map_or(c, |(b, _)| b);
            format!("{base} 转 {ext}")
        }
        None => c.to_string(),
    }
}

/// What the operator submitted, kept when the form comes back with an error.
#[derive(Default, Clone)]
struct Submitted {
    answers: Vec<Option<usize>>,
    ms: Vec<Option<i64>>,
    comment: String,
    appointment: String,
    /// Why the typed appointment time was not understood (shown beside the field).
    appt_error: Option<String>,
}

/// The appointment field's text: what operators type, and what the server reads back.
const APPT_FORMAT: &str = "%Y-%m-%d %H:%M";

fn contact_view(
    claim: &Claim,
    round: &RoundRecord,
    operator: &UserRecord,
    submitted: Option<&Submitted>,
    now: DateTime<Utc>,
) -> ContactView {
    let survey = &round.survey;
    let tz = survey.timezone();
    let now_ms = now.timestamp_millis();
    let m = &claim.member;
    let name = m.name.clone().unwrap_or_else(|| "(姓名已清除)".into());
    let phone = m.phone.as_deref().and_then(Phone::from_canonical);
    let alt = m.phone_alt.as_deref().and_then(Phone::from_canonical);
    let questions = survey
        .dimensions
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let chosen = submitted.and_then(|s| s.answers.get(i).copied().flatten());
            QuestionView {
                index: i,
                number: i + 1,
                label: d.label.clone(),
                text: Survey::render(&d.question, &m.unit, &name, &operator.name),
                options: survey
                    .levels
                    .iter()
                    .enumerate()
                    .map(|(l, level)| OptionView {
                        value: l + 1,
                        label: level.label.clone(),
                        checked: chosen == Some(l),
                    })
                    .collect(),
                ms: submitted
                    .and_then(|s| s.ms.get(i).copied().flatten())
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
            }
        })
        .collect();
    // The field's default is the first preset: an hour from now, on the minute.
    let presets = appointment::presets(now.with_timezone(&tz).naive_local());
    ContactView {
        token: claim.token.clone(),
        unit: m.unit.clone(),
        unit_kind: claim.unit_kind.label(),
        category: m.category.label(),
        deputy: m.category.is_two_deputies_one_member(),
        organization: m.organization.clone().unwrap_or_default(),
        note: m.note.clone().unwrap_or_default(),
        phone: phone
            .as_ref()
            .map_or_else(|| "(号码已清除)".into(), display_phone),
        dial: phone.as_ref().map(Phone::dial).unwrap_or_default(),
        phone_alt: alt.as_ref().map(|p| (display_phone(p), p.dial())),
        attempt_no: claim.attempt_no,
        max_attempts: survey.calling.max_attempts,
        earlier: claim
            .earlier
            .iter()
            .map(|a| EarlierView {
                at: short_time(a.recorded_at_ms, tz, now_ms),
                outcome: a.outcome.label(),
                operator: a.operator.clone(),
                comment: a.comment.clone().unwrap_or_default(),
                appointment: a
                    .appointment_at_ms
                    .map(|t| short_time(t, tz, now_ms))
                    .unwrap_or_default(),
            })
            .collect(),
        appointment: claim
            .appointment_at_ms
            .map(|t| local_time(t, tz, "%m月%d日 %H:%M")),
        intro: Survey::render(&survey.intro, &m.unit, &name, &operator.name),
        questions,
        comment: submitted.map(|s| s.comment.clone()).unwrap_or_default(),
        claimed_at_ms: claim.claimed_at_ms,
        // The form's clock for the answers' timings starts now, also when the screen's data was
        // read a moment ago in the record's write.
        rendered_at_ms: Utc::now().timestamp_millis().max(now_ms),
        expires: local_time(claim.expires_at_ms, tz, "%H:%M"),
        expires_at_ms: claim.expires_at_ms,
        appt_value: submitted
            .map(|s| s.appointment.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| {
                presets
                    .first()
                    .map(|p| p.at.format(APPT_FORMAT).to_string())
                    .unwrap_or_default()
            }),
        appt_presets: presets
            .iter()
            .map(|p| (p.label.clone(), p.at.format(APPT_FORMAT).to_string()))
            .collect(),
        appt_error: submitted.and_then(|s| s.appt_error.clone()),
        name,
    }
}

// ---------------------------------------------------------------------------------------------
// Which round the operator works on

struct OperatorRound {
    round: RoundRecord,
    choices: Vec<RoundChoice>,
}

/// The rounds in which the operator has calls; the requested one, else the newest unlocked.
async fn operator_round(
    state: &AppState,
    user: &UserRecord,
    requested: Option<String>,
) -> Result<Option<OperatorRound>, WebError> {
    // Every request of the call screen asks this: it must not scan the round's members, and
    // mostly it is answered from memory without a trip to the blocking pool.
    let rounds = match state.store.operator_rounds_cached(user.id) {
        Some(rounds) => rounds,
        None => {
            let user_id = user.id;
            state
                .blocking(move |s| Ok(s.operator_rounds(user_id)?))
                .await?
        }
    };
    choose_round(rounds, requested)
}

fn choose_round(
    rounds: Vec<RoundRecord>,
    requested: Option<String>,
) -> Result<Option<OperatorRound>, WebError> {
    let chosen = match requested.filter(|r| !r.is_empty()) {
        Some(key) => rounds
            .iter()
            .position(|r| r.key == key)
            .ok_or_else(|| WebError::NotFound(format!("您在评估轮次 {key} 中没有拨打任务")))?,
        None => match rounds.iter().position(|r| !r.is_locked()) {
            Some(i) => i,
            None if rounds.is_empty() => return Ok(None),
            None => 0,
        },
    };
    let choices = rounds
        .iter()
        .enumerate()
        .map(|(i, r)| RoundChoice {
            key: r.key.clone(),
            title: r.title.clone(),
            current: i == chosen,
        })
        .collect();
    Ok(Some(OperatorRound {
        round: rounds[chosen].clone(),
        choices,
    }))
}

/// What the call screen is made from: the contacts the operator holds (the screen shows the
/// first), the operator's figures, and the attempt just recorded (its "just recorded" line).
/// Read in one snapshot, or in the record's own write ([`RecordedCall`]).
struct CallScreen {
    held: Vec<Claim>,
    day: OperatorDay,
    done: Option<AttemptBrief>,
}

impl From<RecordedCall> for CallScreen {
    fn from(call: RecordedCall) -> CallScreen {
        CallScreen {
            held: call.held,
            day: call.day,
            done: call.brief,
        }
    }
}

#[derive(Default)]
struct PageOptions {
    done: Option<i64>,
    error: Option<String>,
    notice: Option<String>,
    submitted: Option<Submitted>,
}

/// The screen's reads; the caller runs them in one snapshot.
fn load_screen(
    s: &dyn Store,
    round: &RoundRecord,
    user: &UserRecord,
    done_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<CallScreen, WebError> {
    let since = local_midnight_ms(round.survey.timezone(), now);
    Ok(CallScreen {
        held: s.held_claims(round, user, now)?,
        day: s.operator_day(round, user.id, since, now)?,
        done: match done_id {
            Some(id) => s.attempt_brief(id)?,
            None => None,
        },
    })
}

async fn render(
    state: &AppState,
    session: &Session,
    or: OperatorRound,
    opts: PageOptions,
) -> Result<CallPage, WebError> {
    let now = Utc::now();
    let data = {
        let round = or.round.clone();
        let user = session.user.clone();
        let done_id = opts.done;
        state
            .screen_read(move |s| in_snapshot(s, || load_screen(s, &round, &user, done_id, now)))
            .await?
    };
    page(state, session, or, opts, data, now).await
}

/// The call screen from what was read (a reload of a held contact logs a view).
async fn page(
    state: &AppState,
    session: &Session,
    or: OperatorRound,
    opts: PageOptions,
    data: CallScreen,
    now: DateTime<Utc>,
) -> Result<CallPage, WebError> {
    let round = or.round;
    let user = session.user.clone();
    let tz = round.survey.timezone();
    let CallScreen { held, day, done } = data;
    // The id comes from the URL: shown only for the operator's own attempt in this round.
    let done = done
        .filter(|a| a.round_id == round.id && a.operator_id == user.id)
        .map(|a| DoneView {
            appointment: a
                .appointment_at_ms
                .map(|t| local_time(t, tz, "%m月%d日 %H:%M")),
            outcome: a.outcome.label(),
            complete: a.outcome == Outcome::Complete,
            unit: a.unit_name,
            attempt_no: a.attempt_no,
            at: local_time(a.recorded_at_ms, tz, "%H:%M:%S"),
        });
    let claim = held.into_iter().next();
    if let Some(c) = &claim
        && !state.take_fresh_claim(&session.id_hash, &c.token)
    {
        // The full number is shown again (reload, back from another page): a logged view.
        let (login, key, member) = (user.login.clone(), round.key.clone(), c.member.id);
        state
            .blocking(move |s| {
                Ok(s.audit(&AuditEvent {
                    actor: &login,
                    action: "contact.view",
                    round_key: Some(&key),
                    detail: serde_json::json!({ "member_id": member }),
                })?)
            })
            .await?;
    }
    let first_calls_open =
        crate::domain::schedule::may_call_now(&round.survey, &round.field_period(), now);
    let idle = if round.is_locked() {
        "本轮评估已锁定,不能再拨打或记录。".to_string()
    } else if round.field_closed(now) {
        "本轮调查的实施期已结束。".to_string()
    } else if day.remaining == 0 {
        "您名单中的联系人都已拨打完毕。".to_string()
    } else if !first_calls_open && day.due_now == 0 {
        "现在不在拨打时段内。".to_string()
    } else if day.due_now == 0 {
        "暂时没有到期可拨的联系人。".to_string()
    } else {
        String::new()
    };
    Ok(CallPage {
        f: session.frame("call"),
        page_url: call_url(&round.key, opts.done),
        round_key: round.key.clone(),
        round_title: round.title.clone(),
        locked: round.is_locked(),
        rounds: or.choices,
        contact: claim.map(|c| contact_view(&c, &round, &user, opts.submitted.as_ref(), now)),
        done,
        error: opts.error,
        notice: opts.notice,
        idle,
        next_due: day
            .next_due_ms
            .map(|t| short_time(t, tz, now.timestamp_millis()))
            .unwrap_or_default(),
        day,
        buttons: outcome_buttons(),
        levels: round
            .survey
            .levels
            .iter()
            .map(|l| l.label.clone())
            .collect(),
        windows: round.survey.calling.windows.join("、"),
    })
}

#[derive(Deserialize, Default)]
pub struct CallQuery {
    #[serde(default)]
    round: Option<String>,
    #[serde(default)]
    done: Option<i64>,
    #[serde(default)]
    released: Option<String>,
    /// Set by the no-script redirect after a record stored late (the notice survives the 303).
    #[serde(default)]
    late: Option<String>,
}

async fn call_page(
    State(state): State<AppState>,
    Allow(session): Allow<OPERATOR>,
    Query(q): Query<CallQuery>,
) -> Result<Response, WebError> {
    let now = Utc::now();
    // The page's reads share one snapshot and one trip to the screen reader.
    let loaded = {
        let user = session.user.clone();
        let (requested, done_id) = (q.round, q.done);
        state
            .screen_read(move |s| {
                in_snapshot(s, || {
                    let Some(or) = choose_round(s.operator_rounds(user.id)?, requested)? else {
                        return Ok(None);
                    };
                    let data = load_screen(s, &or.round, &user, done_id, now)?;
                    Ok(Some((or, data)))
                })
            })
            .await?
    };
    let Some((or, data)) = loaded else {
        return Ok(NoRoundPage {
            f: session.frame("call"),
        }
        .into_response());
    };
    let opts = PageOptions {
        done: q.done,
        notice: if q.late.is_some() {
            Some(LATE_NOTICE.to_string())
        } else {
            q.released
                .map(|_| "联系人已释放,回到队列中。准备好后点击“下一个”。".to_string())
        },
        ..Default::default()
    };
    Ok(page(&state, &session, or, opts, data, now)
        .await?
        .into_response())
}

const LATE_NOTICE: &str = "该记录提交时领取已超时,且其间其他话务员领取或记录过该联系人:记录已保存,并标记为“迟交记录”供统计人员核查。";

fn call_url(round: &str, done: Option<i64>) -> String {
    let mut url = format!("/call?round={}", encode_component(round));
    if let Some(id) = done {
        url.push_str(&format!("&done={id}"));
    }
    url
}

/// Claims the next contact unless one is held already (a second tab, a double click).
async fn claim_if_free(
    state: &AppState,
    session: &Session,
    round: &RoundRecord,
) -> Result<(), WebError> {
    let now = Utc::now();
    let (round, user) = (round.clone(), session.user.clone());
    let claimed = state
        .blocking(move |s| Ok(s.claim_next_if_free(&round, &user, now)?))
        .await?;
    if let Some(c) = claimed {
        state.mark_fresh_claim(&session.id_hash, &c.token);
    }
    Ok(())
}

#[derive(Deserialize)]
pub struct NextForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    round: String,
}

async fn next(
    State(state): State<AppState>,
    Allow(session): Allow<OPERATOR>,
    CheckedForm(form): CheckedForm<NextForm>,
) -> Result<Response, WebError> {
    let Some(or) = operator_round(&state, &session.user, Some(form.round)).await? else {
        return Ok(Redirect::to("/call").into_response());
    };
    match claim_if_free(&state, &session, &or.round).await {
        Ok(()) => Ok(Redirect::to(&call_url(&or.round.key, None)).into_response()),
        Err(WebError::Storage(StorageError::Locked(_))) => {
            let opts = PageOptions {
                error: Some("本轮评估已锁定,不能再领取联系人。".into()),
                ..Default::default()
            };
            Ok((
                StatusCode::CONFLICT,
                render(&state, &session, or, opts).await?,
            )
                .into_response())
        }
        Err(e) => Err(e),
    }
}

/// Reads a typed appointment time ("2022-11-03 15:00", "11-03 15:00", "15:00", the picker's
/// "2022-11-03T15:00") as local time of the round.
fn parse_local(text: &str, tz: Tz, now: DateTime<Utc>) -> Result<DateTime<Utc>, AppointmentError> {
    let naive = appointment::parse_appointment(text, now.with_timezone(&tz).naive_local())?;
    // A time skipped by a clock change reads as the first valid time after it.
    let local = tz
        .from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(naive + chrono::Duration::hours(1)))
                .earliest()
        })
        .ok_or_else(|| AppointmentError::NoSuchTime(text.trim().to_string()))?;
    Ok(local.with_timezone(&Utc))
}

/// The call form's fields as the operator's submission (kept to show again) and the attempt.
fn parse_submission(
    fields: &[(String, String)],
    survey: &Survey,
    now: DateTime<Utc>,
) -> Result<(Submitted, AttemptInput), WebError> {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    };
    let n = survey.dimensions.len();
    let levels = survey.levels.len();
    let mut submitted = Submitted {
        comment: get("comment").trim().chars().take(500).collect(),
        appointment: get("appointment").trim().to_string(),
        ..Default::default()
    };
    for d in 0..n {
        let a = get(&format!("a{d}")).trim();
        let level = match a {
            "" => None,
            v => match v.parse::<usize>() {
                Ok(l) if (1..=levels).contains(&l) => Some(l - 1),
                _ => return Err(WebError::BadRequest(format!("第 {} 题的答案无效", d + 1))),
            },
        };
        submitted.answers.push(level);
        submitted.ms.push(
            get(&format!("ms{d}"))
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|v| *v >= 0),
        );
    }
    let outcome_key = match get("outcome") {
        "" => "complete",
        k => k,
    };
    let outcome = Outcome::parse(outcome_key)
        .filter(|o| o.key() == outcome_key)
        .ok_or_else(|| WebError::BadRequest("未知的拨打结果".into()))?;
    let tz = survey.timezone();
    // A time the server cannot read comes back beside the field with everything keyed so far;
    // the caller stores nothing then.
    let appointment = if outcome == Outcome::Appointment && !submitted.appointment.is_empty() {
        match parse_local(&submitted.appointment, tz, now) {
            Ok(at) => Some(at),
            Err(e) => {
                submitted.appt_error = Some(e.to_string());
                None
            }
        }
    } else {
        None
    };
    let any_answer = submitted.answers.iter().any(Option::is_some);
    let input = AttemptInput {
        outcome: Some(outcome),
        answers: if any_answer || outcome.needs_answers() {
            submitted.answers.clone()
        } else {
            Vec::new()
        },
        answer_ms: if submitted.ms.iter().any(Option::is_some) && any_answer {
            submitted.ms.clone()
        } else {
            Vec::new()
        },
        comment: Some(submitted.comment.clone()).filter(|c| !c.is_empty()),
        appointment,
    };
    Ok((submitted, input))
}

async fn record(
    State(state): State<AppState>,
    Allow(session): Allow<OPERATOR>,
    CheckedForm(fields): CheckedForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    };
    let token = get("token").to_string();
    let requested = get("round").to_string();
    let now = Utc::now();
    // The write is queued for the writer thread and awaited without holding a pool thread.
    let step = match operator_round(&state, &session.user, Some(requested)).await? {
        None => None,
        Some(or) => {
            let (submitted, input) = parse_submission(&fields, &or.round.survey, now)?;
            if submitted.appt_error.is_some() {
                let opts = PageOptions {
                    error: Some("未保存:预约时间有误,说明见预约时间一栏。".into()),
                    submitted: Some(submitted),
                    ..Default::default()
                };
                return held_form_again(&state, &session, or, &token, opts).await;
            }
            let since = local_midnight_ms(or.round.survey.timezone(), now);
            let result = state
                .store
                .record_then_claim_queued(&or.round, &token, &session.user, &input, now, since)
                .await;
            Some((or, submitted, result))
        }
    };
    let Some((or, submitted, result)) = step else {
        return Ok(Redirect::to("/call").into_response());
    };
    match result {
        Ok(call) => {
            if let Some(c) = &call.claimed {
                state.mark_fresh_claim(&session.id_hash, &c.token);
            }
            // Without the script (the form still carries `nojs`), post-redirect-get: Back and
            // reload then read the screen instead of offering to send the form again.
            if !get("nojs").is_empty() {
                let mut url = call_url(&or.round.key, Some(call.recorded.attempt_id));
                if call.recorded.late {
                    url.push_str("&late=1");
                }
                return Ok(Redirect::to(&url).into_response());
            }
            // The next screen as this write's commit left it: no redirect, no second read.
            let opts = PageOptions {
                done: Some(call.recorded.attempt_id),
                notice: call.recorded.late.then(|| LATE_NOTICE.to_string()),
                ..Default::default()
            };
            Ok(page(&state, &session, or, opts, call.into(), now)
                .await?
                .into_response())
        }
        Err(e) => {
            let (status, message, keep) = match e {
                RecordError::Invalid(e) => (StatusCode::UNPROCESSABLE_ENTITY, e.to_string(), true),
                RecordError::Storage(StorageError::Locked(_)) => (
                    StatusCode::CONFLICT,
                    "本轮评估已锁定,记录未保存。".to_string(),
                    false,
                ),
                RecordError::Storage(e) => return Err(e.into()),
                other => (StatusCode::CONFLICT, other.to_string(), false),
            };
            let opts = PageOptions {
                error: Some(message),
                submitted: keep.then_some(submitted),
                ..Default::default()
            };
            if keep {
                return held_form_again(&state, &session, or, &token, opts).await;
            }
            Ok((status, render(&state, &session, or, opts).await?).into_response())
        }
    }
}

/// The held contact's form again (422) with what was keyed and why it was refused.
async fn held_form_again(
    state: &AppState,
    session: &Session,
    or: OperatorRound,
    token: &str,
    opts: PageOptions,
) -> Result<Response, WebError> {
    // The contact is still held: this display is part of the same call, not a new view.
    // A lapsed claim nobody took is taken again, so the form comes back with what was keyed
    // instead of an idle screen.
    state.mark_fresh_claim(&session.id_hash, token);
    let (round, user, token) = (or.round.clone(), session.user.clone(), token.to_string());
    state
        .blocking(move |s| Ok(s.renew_claim(&round, &token, &user, Utc::now())?))
        .await?;
    Ok((
        StatusCode::UNPROCESSABLE_ENTITY,
        render(state, session, or, opts).await?,
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct ReleaseForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    round: String,
    #[serde(default)]
    token: String,
}

async fn release(
    State(state): State<AppState>,
    Allow(session): Allow<OPERATOR>,
    CheckedForm(form): CheckedForm<ReleaseForm>,
) -> Result<Response, WebError> {
    let user = session.user.clone();
    let round = form.round.clone();
    let token = form.token.clone();
    state
        .blocking(move |s| {
            // Find the member before releasing, for the log.
            let member = match s.round(&round) {
                Ok(r) => s
                    .held_claims(&r, &user, Utc::now())?
                    .into_iter()
                    .find(|c| c.token == token)
                    .map(|c| c.member.id),
                Err(_) => None,
            };
            if s.release(&token, &user)? {
                s.audit(&AuditEvent {
                    actor: &user.login,
                    action: "contact.release",
                    round_key: Some(&round),
                    detail: serde_json::json!({ "member_id": member }),
                })?;
            }
            Ok(())
        })
        .await?;
    Ok(Redirect::to(&format!(
        "/call?round={}&released=1",
        encode_component(&form.round)
    ))
    .into_response())
}

#[derive(Deserialize)]
pub struct RenewForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    round: String,
    #[serde(default)]
    token: String,
}

/// Keeps the open call screen's claim alive: `call.js` asks every third of the lease, so a
/// long conversation never lapses while the page is open. Only the holder renews; the answer
/// says when the claim now lapses, or (409) why it cannot be renewed.
async fn renew(
    State(state): State<AppState>,
    Allow(session): Allow<OPERATOR>,
    CheckedForm(form): CheckedForm<RenewForm>,
) -> Result<Response, WebError> {
    let refused = |message: &str| {
        (
            StatusCode::CONFLICT,
            axum::Json(serde_json::json!({ "renewed": false, "error": message })),
        )
            .into_response()
    };
    let Some(or) = operator_round(&state, &session.user, Some(form.round)).await? else {
        return Ok(refused("您在该轮次中没有拨打任务"));
    };
    let now = Utc::now();
    let (round, user, token) = (or.round.clone(), session.user.clone(), form.token);
    let renewed = state
        .blocking(move |s| Ok(s.renew_claim(&round, &token, &user, now)?))
        .await;
    match renewed {
        Ok(Some(expires)) => Ok(axum::Json(serde_json::json!({
            "renewed": true,
            "expires_at_ms": expires,
            "now_ms": now.timestamp_millis(),
            "expires": local_time(expires, or.round.survey.timezone(), "%H:%M:%S"),
        }))
        .into_response()),
        Ok(None) => Ok(refused(
            "该联系人已不在您的名下(领取超时后已由其他话务员领取,或已释放)。您仍可提交本次访问:记录会保存,并标记为迟交记录。",
        )),
        Err(WebError::Storage(StorageError::Locked(_))) => {
            Ok(refused("本轮评估已锁定,不能再拨打或记录。"))
        }
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------------------------
// The operator's own list (no phone numbers: those show only for the contact being called).

pub struct ListRow {
    pub seq: u32,
    pub unit: String,
    pub category: &'static str,
    pub state: String,
    pub attempts: u32,
    pub last: &'static str,
}

#[derive(Template, WebTemplate)]
#[template(path = "call_list.html")]
pub struct ListPage {
    pub f: Frame,
    pub round_key: String,
    pub round_title: String,
    pub locked: bool,
    pub rows: Vec<ListRow>,
}

async fn my_list(
    State(state): State<AppState>,
    Allow(session): Allow<OPERATOR>,
    Query(q): Query<CallQuery>,
) -> Result<Response, WebError> {
    let Some(or) = operator_round(&state, &session.user, q.round).await? else {
        return Ok(NoRoundPage {
            f: session.frame("list"),
        }
        .into_response());
    };
    let now = Utc::now();
    let round = or.round.clone();
    let user_id = session.user.id;
    let queue = state
        .blocking(move |s| Ok(s.operator_queue(&round, user_id, now)?))
        .await?;
    let tz = or.round.survey.timezone();
    let now_ms = now.timestamp_millis();
    let rows = queue
        .into_iter()
        .map(|r| ListRow {
            seq: r.seq,
            unit: r.unit,
            category: r.category.label(),
            state: if r.on_call {
                "通话中".to_string()
            } else {
                match (r.priority, r.due_ms) {
                    (0, Some(t)) => format!("预约 {}", short_time(t, tz, now_ms)),
                    (1, Some(t)) if t <= now_ms => "待重拨(已到时间)".to_string(),
                    (1, Some(t)) => format!("{} 后重拨", short_time(t, tz, now_ms)),
                    _ => "未拨打".to_string(),
                }
            },
            attempts: r.attempts,
            last: r.last_outcome.map_or("", Outcome::label),
        })
        .collect();
    Ok(ListPage {
        f: session.frame("list"),
        round_key: or.round.key.clone(),
        round_title: or.round.title.clone(),
        locked: or.round.is_locked(),
        rows,
    }
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_but_complete_has_its_own_letter() {
        let mut seen = std::collections::BTreeSet::new();
        for o in Outcome::all() {
            match hotkey(*o) {
                None => assert_eq!(*o, Outcome::Complete),
                Some(k) => {
                    assert!(k.is_ascii_uppercase(), "{k}");
                    assert!(seen.insert(k), "{k} used twice");
                }
            }
        }
        assert_eq!(seen.len(), Outcome::all().len() - 1);
        assert_eq!(outcome_buttons().len(), Outcome::all().len() - 1);
    }

    #[test]
    fn phones_read_aloud() {
        let m = Phone::from_canonical("13912345678").unwrap();
        assert_eq!(display_phone(&m), "139 1234 5678");
        let l = Phone::from_canonical("0915-3212345-801").unwrap();
        assert_eq!(display_phone(&l), "0915-3212345 转 801");
    }

    #[test]
    fn appointment_times_are_local_to_the_round() {
        let now = Utc::now();
        let t = parse_local("2022-11-03T15:00", chrono_tz::Asia::Shanghai, now).unwrap();
        assert_eq!(t.to_rfc3339(), "2022-11-03T07:00:00+00:00");
        assert!(parse_local("tomorrow", chrono_tz::Asia::Shanghai, now).is_err());
    }
}
