//! Where a member stands in its operator's queue after its latest attempt: the engine keeps
//! one queue row per callable member, ordered by priority (appointments, then retries, then
//! first calls) and then by due time or plan order.

use chrono::{DateTime, Utc};

use super::disposition::{MemberHistory, Outcome};
use super::schedule::{FieldPeriod, NextStep, member_next_step};
use super::survey::Survey;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    Appointment = 0,
    Retry = 1,
    FirstCall = 2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueSlot {
    /// Final: the member leaves the queue.
    Remove,
    /// `sort_key` is the due time in ms for appointments and retries, the plan's `seq` for first calls.
    Place { priority: Priority, sort_key: i64 },
}

/// The queue slot of a member with plan position `seq`, given its whole history.
pub fn queue_slot(
    survey: &Survey,
    field: &FieldPeriod,
    history: &MemberHistory,
    seq: u32,
    now: DateTime<Utc>,
) -> QueueSlot {
    if history.attempts.is_empty() {
        return QueueSlot::Place {
            priority: Priority::FirstCall,
            sort_key: i64::from(seq),
        };
    }
    match member_next_step(survey, field, history, now) {
        NextStep::Final => QueueSlot::Remove,
        NextStep::Due(at) => {
            let last = history.last_since_reopen();
            let appointment = last
                .is_some_and(|a| a.outcome == Outcome::Appointment && a.appointment == Some(at));
            let priority = if appointment {
                Priority::Appointment
            } else {
                Priority::Retry
            };
            QueueSlot::Place {
                priority,
                sort_key: at.timestamp_millis(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::disposition::AttemptFact;
    use chrono::{NaiveDate, TimeZone};

    fn survey() -> Survey {
        Survey::from_toml_str(include_str!("../../surveys/default.toml")).unwrap()
    }

    fn field() -> FieldPeriod {
        FieldPeriod {
            start: NaiveDate::from_ymd_opt(2022, 11, 1).unwrap(),
            end: NaiveDate::from_ymd_opt(2022, 11, 30).unwrap(),
        }
    }

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        // 2022-11-02 h:m in Shanghai (UTC+8)
        Utc.with_ymd_and_hms(2022, 11, 2, h, m, 0).unwrap() - chrono::Duration::hours(8)
    }

    #[test]
    fn first_calls_keep_plan_order() {
        let h = MemberHistory {
            attempts: &[],
            reopened_at: None,
        };
        assert_eq!(
            queue_slot(&survey(), &field(), &h, 7, at(10, 0)),
            QueueSlot::Place {
                priority: Priority::FirstCall,
                sort_key: 7
            }
        );
    }

    #[test]
    fn no_answer_becomes_a_retry_and_an_appointment_comes_first() {
        let s = survey();
        let tries = [AttemptFact {
            outcome: Outcome::NoAnswer,
            at: at(10, 0),
            appointment: None,
        }];
        let h = MemberHistory {
            attempts: &tries,
            reopened_at: None,
        };
        let QueueSlot::Place { priority, sort_key } = queue_slot(&s, &field(), &h, 1, at(10, 0))
        else {
            panic!()
        };
        assert_eq!(priority, Priority::Retry);
        assert_eq!(
            sort_key,
            at(14, 30).timestamp_millis(),
            "afternoon window, a different one"
        );
        let when = at(19, 0);
        let tries = [AttemptFact {
            outcome: Outcome::Appointment,
            at: at(10, 0),
            appointment: Some(when),
        }];
        let h = MemberHistory {
            attempts: &tries,
            reopened_at: None,
        };
        assert_eq!(
            queue_slot(&s, &field(), &h, 1, at(10, 0)),
            QueueSlot::Place {
                priority: Priority::Appointment,
                sort_key: when.timestamp_millis()
            }
        );
    }

    #[test]
    fn final_members_leave_the_queue() {
        let tries = [AttemptFact {
            outcome: Outcome::Refused,
            at: at(10, 0),
            appointment: None,
        }];
        let h = MemberHistory {
            attempts: &tries,
            reopened_at: None,
        };
        assert_eq!(
            queue_slot(&survey(), &field(), &h, 1, at(10, 0)),
            QueueSlot::Remove
        );
    }
}
