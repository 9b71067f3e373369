//! Field progress: per unit and overall, members by state and AAPOR category with response
//! rates; per operator, attempts and completes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::disposition::{
    AttemptFact, Category, DispositionCounts, MemberHistory, MemberState, Outcome, ResponseRates,
    disposition,
};

/// One member as progress needs it.
pub struct MemberFacts<'a> {
    pub unit_id: i64,
    pub operator: Option<&'a str>,
    pub attempts: &'a [AttemptFact],
    pub reopened_at: Option<DateTime<Utc>>,
    /// Claimed by an operator right now.
    pub in_progress: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Tally {
    pub panel: u32,
    pub completes: u32,
    pub partials: u32,
    /// Not final and not on a call now (including never attempted).
    pub pending: u32,
    pub in_progress: u32,
    #[serde(rename = "final")]
    pub final_: u32,
    pub not_attempted: u32,
    pub dispositions: DispositionCounts,
    pub rates: ResponseRates,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OperatorTally {
    pub operator: String,
    pub attempts: u32,
    pub completes: u32,
    /// Completes per attempt.
    pub completion_rate: Option<f64>,
    /// Members assigned to the operator that are not final yet.
    pub open_assigned: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Progress {
    pub units: BTreeMap<i64, Tally>,
    pub overall: Tally,
    pub operators: Vec<OperatorTally>,
}

impl Tally {
    fn add(&mut self, state: MemberState, category: Category, in_progress: bool) {
        self.panel += 1;
        self.dispositions.add(category);
        match category {
            Category::I => self.completes += 1,
            Category::P => self.partials += 1,
            _ => {}
        }
        if state == MemberState::NotAttempted {
            self.not_attempted += 1;
        }
        if state == MemberState::Final {
            self.final_ += 1;
        } else if in_progress {
            self.in_progress += 1;
        } else {
            self.pending += 1;
        }
    }

    fn finish(&mut self) {
        self.rates = ResponseRates::from_counts(&self.dispositions);
    }
}

/// Summarises the members (each unit listed in `units` appears even with no member) and the
/// attempts as `(operator, outcome)`.
pub fn progress<'a>(
    units: &[i64],
    members: impl IntoIterator<Item = MemberFacts<'a>>,
    attempts_by_operator: impl IntoIterator<Item = (&'a str, Outcome)>,
    max_attempts: u32,
    field_closed: bool,
) -> Progress {
    let mut out = Progress::default();
    for u in units {
        out.units.entry(*u).or_default();
    }
    let mut ops: BTreeMap<String, OperatorTally> = BTreeMap::new();
    for m in members {
        let d = disposition(
            &MemberHistory {
                attempts: m.attempts,
                reopened_at: m.reopened_at,
            },
            max_attempts,
            field_closed,
        );
        let in_progress = m.in_progress && d.state != MemberState::Final;
        out.units
            .entry(m.unit_id)
            .or_default()
            .add(d.state, d.category, in_progress);
        out.overall.add(d.state, d.category, in_progress);
        if let Some(op) = m.operator
            && d.state != MemberState::Final
        {
            ops.entry(op.to_string()).or_default().open_assigned += 1;
        }
    }
    for (op, outcome) in attempts_by_operator {
        let t = ops.entry(op.to_string()).or_default();
        t.attempts += 1;
        t.completes += u32::from(outcome == Outcome::Complete);
    }
    for t in out.units.values_mut() {
        t.finish();
    }
    out.overall.finish();
    out.operators = ops
        .into_iter()
        .map(|(operator, mut t)| {
            t.operator = operator;
            t.completion_rate =
                (t.attempts > 0).then(|| f64::from(t.completes) / f64::from(t.attempts));
            t
        })
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn fact(outcome: Outcome, minute: u32) -> AttemptFact {
        AttemptFact {
            outcome,
            at: Utc.with_ymd_and_hms(2022, 11, 2, 2, minute, 0).unwrap(),
            appointment: None,
        }
    }

    #[test]
    fn tallies_states_categories_and_operators() {
        let a = [fact(Outcome::Complete, 1)];
        let b = [fact(Outcome::NoAnswer, 1), fact(Outcome::Refused, 2)];
        let c = [fact(Outcome::Busy, 1)];
        let members = vec![
            MemberFacts {
                unit_id: 1,
                operator: Some("op1"),
                attempts: &a,
                reopened_at: None,
                in_progress: false,
            },
            MemberFacts {
                unit_id: 1,
                operator: Some("op1"),
                attempts: &b,
                reopened_at: None,
                in_progress: false,
            },
            MemberFacts {
                unit_id: 2,
                operator: Some("op2"),
                attempts: &c,
                reopened_at: None,
                in_progress: true,
            },
            MemberFacts {
                unit_id: 2,
                operator: Some("op2"),
                attempts: &[],
                reopened_at: None,
                in_progress: false,
            },
        ];
        let attempts = [
            ("op1", Outcome::Complete),
            ("op1", Outcome::NoAnswer),
            ("op1", Outcome::Refused),
            ("op2", Outcome::Busy),
        ];
        let p = progress(&[1, 2, 3], members, attempts, 5, false);
        let u1 = &p.units[&1];
        assert_eq!(
            (u1.panel, u1.completes, u1.final_, u1.pending),
            (2, 1, 2, 0)
        );
        assert_eq!((u1.dispositions.i, u1.dispositions.r), (1, 1));
        // RR1 = I / all eligible = 1/2
        assert_eq!(u1.rates.rr1, Some(0.5));
        let u2 = &p.units[&2];
        assert_eq!(
            (u2.panel, u2.in_progress, u2.pending, u2.not_attempted),
            (2, 1, 1, 1)
        );
        assert_eq!(u2.dispositions.uh, 2, "busy and not attempted are both UH");
        assert_eq!(p.units[&3].panel, 0);
        assert_eq!(p.units[&3].rates.rr1, None);
        assert_eq!(p.overall.panel, 4);
        assert_eq!(p.operators[0].operator, "op1");
        assert_eq!((p.operators[0].attempts, p.operators[0].completes), (3, 1));
        assert_eq!(p.operators[0].completion_rate, Some(1.0 / 3.0));
        assert_eq!(p.operators[1].open_assigned, 2);
    }
}
