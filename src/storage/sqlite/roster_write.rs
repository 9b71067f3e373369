//! The roster import's write plan: what a large import sets aside inside its own transaction,
//! and puts back before it commits, so that SQLite does only the work the import's rows need.
//!
//! Measured on a million members (`cargo bench --bench roster_import`, BENCHMARKS.md): the
//! category trigger (migration 013) was about two thirds of the writer's CPU. Its `NOT IN
//! (...)` list is compiled into a temporary table that is built again every time the trigger
//! fires, once per row. The import's rows carry only categories from `MemberCategory`, which
//! is what the trigger checks, so the import drops it and creates it again from its own stored
//! SQL. Both happen inside the import's savepoint: an import that fails, is not kept or is
//! killed rolls the drop back with its rows, and the schema after a kept import is the schema
//! before it (`sqlite_master` row for row).
//!
//! The unique `(unit_id, phone)` index stays: it belongs to the table's `UNIQUE` constraint,
//! which SQLite cannot drop short of rebuilding the table, and with members arriving unit by
//! unit its inserts land at the right edge of the B-tree.

use rusqlite::{Connection, OptionalExtension};

use crate::storage::{Result, StorageError};

/// Triggers on `members` that cannot refuse an imported row: they check only what the import
/// has already checked (the category is a `MemberCategory` label).
/// (name, the statement that drops it).
const REDUNDANT_FOR_IMPORT: &[(&str, &str)] = &[(
    "members_category_insert",
    "DROP TRIGGER members_category_insert",
)];

/// Imports up to this many rows keep the triggers: for them the schema change (every
/// connection prepares its statements again) costs more than the trigger.
pub(super) const SUSPEND_TRIGGERS_ABOVE: usize = 4096;

/// Triggers dropped for the length of an import, with the SQL that creates them again.
#[derive(Default)]
pub(super) struct Suspended {
    triggers: Vec<(String, String)>,
    active: bool,
}

impl Suspended {
    /// Whether the triggers are set aside now.
    pub(super) fn active(&self) -> bool {
        self.active
    }

    /// Drops the import's redundant triggers (inside the caller's savepoint).
    pub(super) fn suspend(&mut self, tx: &Connection) -> Result<()> {
        if self.active {
            return Ok(());
        }
        for (name, drop) in REDUNDANT_FOR_IMPORT {
            let sql: Option<String> = tx
                .prepare_cached(
                    "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?1 AND tbl_name = 'members'",
                )?
                .query_row([name], |r| r.get(0))
                .optional()?;
            if let Some(sql) = sql {
                tx.execute_batch(drop)?;
                self.triggers.push((name.to_string(), sql));
            }
        }
        self.active = true;
        Ok(())
    }

    /// Creates the dropped triggers again, from the SQL they were stored with.
    pub(super) fn restore(&mut self, tx: &Connection) -> Result<()> {
        for (_, sql) in self.triggers.drain(..) {
            tx.execute_batch(&sql)?;
        }
        self.active = false;
        Ok(())
    }
}

/// The units an import stored members in, each with the first line that named it. Foreign-key
/// enforcement is off for the import's rows (it cost a lookup of the unit, and of every table
/// that refers to members, per row), so the import checks its units itself, once each, before
/// it is kept: every one must be a unit of the round.
#[derive(Default)]
pub(super) struct UnitsSeen {
    first_line: std::collections::BTreeMap<i64, usize>,
    /// The unit of the last row noted: rows come unit by unit, so most need no map lookup.
    last: Option<i64>,
}

impl UnitsSeen {
    pub(super) fn note(&mut self, unit_id: i64, line: usize) {
        if self.last != Some(unit_id) {
            self.first_line.entry(unit_id).or_insert(line);
            self.last = Some(unit_id);
        }
    }

    /// Refuses the import, naming the first line of a unit that is not the round's.
    pub(super) fn check(&self, tx: &Connection, round_id: i64) -> Result<()> {
        let mut round_of = tx.prepare_cached("SELECT round_id FROM units WHERE id = ?1")?;
        let mut unknown: Option<usize> = None;
        for (unit, line) in &self.first_line {
            let round: Option<i64> = round_of.query_row([unit], |r| r.get(0)).optional()?;
            if round != Some(round_id) {
                unknown = Some(unknown.map_or(*line, |l| l.min(*line)));
            }
        }
        match unknown {
            None => Ok(()),
            Some(line) => Err(StorageError::Conflict(format!(
                "第 {line} 行:参评单位不在本轮次中(可能刚被修改),请重新导入"
            ))),
        }
    }
}

/// Whether a row of another table refers to a member of the unit: what foreign-key
/// enforcement would refuse to delete. Every table with a foreign key to members is here (a
/// test checks it against the schema, so a table added later cannot be missed).
const REFERENCED: &str = "SELECT EXISTS (SELECT 1 FROM assignments WHERE member_id IN (SELECT id FROM members WHERE unit_id = ?1))
        OR EXISTS (SELECT 1 FROM queue WHERE member_id IN (SELECT id FROM members WHERE unit_id = ?1))
        OR EXISTS (SELECT 1 FROM attempts WHERE member_id IN (SELECT id FROM members WHERE unit_id = ?1))
        OR EXISTS (SELECT 1 FROM reopenings WHERE member_id IN (SELECT id FROM members WHERE unit_id = ?1))
        OR EXISTS (SELECT 1 FROM ended_claims WHERE member_id IN (SELECT id FROM members WHERE unit_id = ?1))";

pub(super) fn panel_referenced(tx: &Connection, unit_id: i64) -> Result<bool> {
    Ok(tx
        .prepare_cached(REFERENCED)?
        .query_row([unit_id], |r| r.get::<_, bool>(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every table that refers to members is in [`REFERENCED`], with its column.
    #[test]
    fn the_member_references_are_every_foreign_key_to_members() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::super::SqliteStore::open(&dir.path().join("fk.db")).unwrap();
        let mut found: Vec<(String, String)> = store
            .write(|c| {
                let mut stmt = c.prepare(
                    "SELECT m.name, f.\"from\" FROM sqlite_master m, pragma_foreign_key_list(m.name) f
                     WHERE m.type = 'table' AND f.\"table\" = 'members'",
                )?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .unwrap();
        found.sort();
        assert!(!found.is_empty());
        for (table, column) in &found {
            let probe = [
                "FROM ",
                table,
                " WHERE ",
                column,
                " IN (SELECT id FROM members",
            ]
            .concat();
            assert!(
                REFERENCED.contains(&probe),
                "{table}.{column} is not checked"
            );
        }
    }
}
