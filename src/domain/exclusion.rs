//! Conflicts of interest (回避): which operator never calls which unit, listed both ways, and
//! what a change means for the plan in force — each operator's pending contacts, and the
//! pending contacts an operator still holds in a unit they are now excluded from (the plan
//! keeps them until it is regenerated or they are reassigned; the CLI says so too).

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::plan::Assignment;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExclusionOverview {
    /// Operator login → excluded unit ids.
    pub by_operator: BTreeMap<String, BTreeSet<i64>>,
    /// Unit id → excluded operator logins.
    pub by_unit: BTreeMap<i64, BTreeSet<String>>,
    /// Operator login → pending (open, unclaimed) contacts in the plan in force.
    pub balance: BTreeMap<String, usize>,
    /// (operator, unit id) → pending contacts an excluded operator still holds in that unit.
    pub conflicts: BTreeMap<(String, i64), usize>,
}

impl ExclusionOverview {
    /// `exclusions`: (operator login, unit id); `pending`: the pending assignments.
    pub fn new(exclusions: &BTreeSet<(String, i64)>, pending: &[Assignment]) -> ExclusionOverview {
        let mut o = ExclusionOverview::default();
        for (login, unit) in exclusions {
            o.by_operator
                .entry(login.clone())
                .or_default()
                .insert(*unit);
            o.by_unit.entry(*unit).or_default().insert(login.clone());
        }
        for a in pending {
            *o.balance.entry(a.operator.clone()).or_default() += 1;
            if exclusions.contains(&(a.operator.clone(), a.unit_id)) {
                *o.conflicts
                    .entry((a.operator.clone(), a.unit_id))
                    .or_default() += 1;
            }
        }
        o
    }

    /// Pending contacts `login` holds in `unit` although excluded from it.
    pub fn conflict(&self, login: &str, unit: i64) -> usize {
        self.conflicts
            .get(&(login.to_string(), unit))
            .copied()
            .unwrap_or(0)
    }

    /// The largest minus the smallest pending load among `operators` (0 with fewer than two).
    pub fn spread(&self, operators: &[String]) -> usize {
        let loads: Vec<usize> = operators
            .iter()
            .map(|o| self.balance.get(o).copied().unwrap_or(0))
            .collect();
        match (loads.iter().max(), loads.iter().min()) {
            (Some(a), Some(b)) => a - b,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(member_id: i64, unit_id: i64, operator: &str) -> Assignment {
        Assignment {
            member_id,
            unit_id,
            operator: operator.into(),
            seq: member_id as u32,
        }
    }

    #[test]
    fn lists_both_ways_and_counts_conflicts() {
        let ex: BTreeSet<(String, i64)> = [("op1".to_string(), 1), ("op2".to_string(), 1)].into();
        let pending = [
            a(1, 1, "op1"),
            a(2, 1, "op3"),
            a(3, 2, "op1"),
            a(4, 2, "op2"),
        ];
        let o = ExclusionOverview::new(&ex, &pending);
        assert_eq!(o.by_unit[&1].len(), 2);
        assert_eq!(o.by_operator["op1"], [1].into());
        assert_eq!(o.balance["op1"], 2);
        assert_eq!(o.conflict("op1", 1), 1);
        assert_eq!(o.conflict("op2", 1), 0);
        assert_eq!(
            o.spread(&["op1".into(), "op2".into(), "op3".into(), "op4".into()]),
            2
        );
    }
}
