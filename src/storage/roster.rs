//! The roster: the members on each unit's panel. Members are written by imports (all or
//! nothing) and read by plans, the call screen, results and exports; a panel in use (planned or
//! called) cannot be replaced.

use serde::Serialize;

use super::{Result, RoundRecord};
use crate::domain::roster::{MemberCategory, NewMember, RosterUnit};

#[derive(Debug, Clone, Serialize)]
pub struct MemberRecord {
    pub id: i64,
    pub unit_id: i64,
    pub unit: String,
    /// `None` once the round's contacts were purged.
    pub name: Option<String>,
    pub phone: Option<String>,
    pub phone_alt: Option<String>,
    pub category: MemberCategory,
    pub organization: Option<String>,
    pub note: Option<String>,
}

/// Where [`RosterStore::add_members_streamed`] puts a roster, inside its open transaction.
pub trait MemberSink {
    /// Deletes the stored panel of a unit (refused once calls were made for it).
    fn replace_panel(&mut self, unit_id: i64) -> Result<()>;
    /// Stores members, in the order given.
    fn add(&mut self, members: &[NewMember]) -> Result<()>;
}

pub trait RosterStore: Send + Sync {
    /// Stored phones per unit and whether the unit's panel is in use, for roster validation.
    fn roster_units(&self, round_id: i64) -> Result<Vec<RosterUnit>>;
    /// Stores members in one transaction, first deleting the panels of `replace_units`.
    fn add_members(
        &self,
        round: &RoundRecord,
        members: &[NewMember],
        replace_units: &[i64],
        actor: &str,
    ) -> Result<usize>;
    /// Stores members as they come, in one transaction: `feed` runs on the writer, gives the
    /// sink the panels to replace and the members to store (a panel before its new members),
    /// and returns whether to keep them. Kept: durable when this returns, `Some(members
    /// stored)`. Not kept: nothing is stored, `None`; when `feed` or the sink fails, nothing is
    /// stored either and the error is returned.
    fn add_members_streamed(
        &self,
        round: &RoundRecord,
        actor: &str,
        feed: &mut dyn FnMut(&mut dyn MemberSink) -> Result<bool>,
    ) -> Result<Option<usize>>;
    fn members(&self, round_id: i64, unit_id: Option<i64>) -> Result<Vec<MemberRecord>>;
}
