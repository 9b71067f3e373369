//! The roster import's write plan: what a large import sets aside for its own transaction,
//! and puts back before it commits, so that SQLite does only the work the import's rows need.
//!
//! Measured on a million members (`cargo bench --bench roster_import`, BENCHMARKS.md): the
//! category trigger (migration 013) was about two thirds of the writer's CPU. Its `NOT IN
//! (...)` list is compiled into a temporary table that is built again every time the trigger
//! fires, once per row. The import's rows carry only categories from `MemberCategory`, which
//! is what the trigger checks, so the import runs with the writer connection's triggers off
//! (`SQLITE_DBCONFIG_ENABLE_TRIGGER`) when the only triggers its statements could fire are
//! those redundant ones; [`TriggersOff`] turns them on again however the import ends.
//!
//! The import used to drop the trigger and create it again instead. That changed the schema
//! twice: every connection prepared its statements again, and the schema page, changed at the
//! start of the transaction and again at its end, was the one page written to the WAL twice,
//! which makes SQLite read back the whole WAL at commit to recompute its checksums (100 MB
//! for a million members). Turning triggers off changes no page.
//!
//! The unique `(unit_id, phone)` index stays: it belongs to the table's `UNIQUE` constraint,
//! which SQLite cannot drop short of rebuilding the table, and with members arriving unit by
//! unit its inserts land at the right edge of the B-tree.

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OptionalExtension};

use crate::storage::{Result, StorageError};

/// The tables the import's statements write (`members`: insert and delete; `audit`: its
/// entry), and the triggers on them that may be off while it runs: each checks only what the
/// import has already checked (the category is a `MemberCategory` label). A trigger on these
/// tables that is not listed keeps every trigger on.
const WRITTEN_TABLES: &str = "'members', 'audit'";
const REDUNDANT_FOR_IMPORT: &[&str] = &["members_category_insert", "members_category_update"];

/// Imports up to this many rows keep the triggers: for them preparing the connection's
/// statements again (which turning triggers off or on asks for) costs more than the trigger.
pub(super) const SUSPEND_TRIGGERS_ABOVE: usize = 4096;

/// The writer connection's triggers, off for the length of an import; on again when this is
/// dropped (whether the import was kept, failed or panicked).
#[derive(Default)]
pub(super) struct TriggersOff<'c> {
    /// The connection whose triggers are off, while they are.
    conn: Option<&'c Connection>,
}

impl<'c> TriggersOff<'c> {
    /// Whether the triggers are off now.
    pub(super) fn active(&self) -> bool {
        self.conn.is_some()
    }

    /// Turns the connection's triggers off, if every trigger the import could fire is
    /// redundant for it (else leaves them on: slower, never wrong).
    pub(super) fn suspend(&mut self, tx: &'c Connection) -> Result<()> {
        if self.conn.is_some() {
            return Ok(());
        }
        let mut names = tx.prepare_cached(&format!(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ({WRITTEN_TABLES})"
        ))?;
        let unknown: Option<String> = names
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .find(|name| !REDUNDANT_FOR_IMPORT.contains(&name.as_str()));
        if let Some(name) = unknown {
            tracing::debug!(trigger = %name, "a roster import keeps triggers on");
            return Ok(());
        }
        tx.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false)?;
        self.conn = Some(tx);
        Ok(())
    }

    /// Turns the triggers on again.
    pub(super) fn restore(&mut self) -> Result<()> {
        if let Some(conn) = self.conn.take() {
            conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, true)?;
        }
        Ok(())
    }
}

impl Drop for TriggersOff<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            // The writer turns them on after every bulk write too (`writer`).
            tracing::error!(error = %e, "could not turn the writer's triggers back on after a roster import");
        }
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

    /// A large import, kept or refused, leaves the writer connection enforcing the category
    /// trigger: a server goes on writing through it.
    #[test]
    fn the_writer_checks_categories_again_after_a_large_import_kept_or_refused() {
        use crate::domain::roster::{MemberCategory, NewMember};
        use crate::domain::unit::{NewUnit, UnitKind};
        use crate::storage::NewRound;
        use crate::storage::prelude::*;

        let dir = tempfile::tempdir().unwrap();
        let store = super::super::SqliteStore::open(&dir.path().join("triggers.db")).unwrap();
        let survey = crate::domain::survey::Survey::from_toml_str(include_str!(
            "../../../surveys/default.toml"
        ))
        .unwrap();
        let round = store
            .create_round(
                &NewRound {
                    key: "t".into(),
                    title: "t".into(),
                    survey,
                    survey_source: "default".into(),
                    field: None,
                },
                "test",
            )
            .unwrap();
        let units: Vec<NewUnit> = (0..200)
            .map(|u| NewUnit {
                name: format!("单位{u}"),
                kind: UnitKind::Institution,
                sector: String::new(),
                code: None,
                line: u + 2,
            })
            .collect();
        store.add_units(&round, &units, "test").unwrap();
        let unit_ids: Vec<i64> = store
            .roster_units(round.id)
            .unwrap()
            .iter()
            .map(|u| u.id)
            .collect();
        let members = |from: usize, n: usize| -> Vec<NewMember> {
            (from..from + n)
                .map(|i| NewMember {
                    unit_id: unit_ids[i / 45],
                    name: format!("代表{i}"),
                    phone: format!("139{i:08}"),
                    phone_alt: None,
                    category: MemberCategory::ServiceRecipient,
                    organization: None,
                    note: None,
                    line: i + 2,
                })
                .collect()
        };
        let refuses_a_bad_category = || {
            let refused = store.write(|c| {
                Ok(c.execute(
                    "INSERT INTO members (unit_id, name, phone, category, created_at) VALUES (?1, '甲', '13000000000', '不存在的类别', 0)",
                    [unit_ids[0]],
                )?)
            });
            matches!(&refused, Err(e) if e.to_string().contains("members.category"))
        };
        assert!(refuses_a_bad_category());

        // Refused: its last row repeats a phone, past the rows that turned the triggers off.
        let mut bad = members(0, 2 * SUSPEND_TRIGGERS_ABOVE);
        let repeated = bad[bad.len() - 2].clone();
        bad.last_mut().unwrap().phone = repeated.phone;
        bad.last_mut().unwrap().unit_id = repeated.unit_id;
        assert!(store.add_members(&round, &bad, &[], "test").is_err());
        assert!(refuses_a_bad_category(), "after a refused import");

        // Kept.
        let stored = store
            .add_members(&round, &members(0, 2 * SUSPEND_TRIGGERS_ABOVE), &[], "test")
            .unwrap();
        assert_eq!(stored, 2 * SUSPEND_TRIGGERS_ABOVE);
        assert!(refuses_a_bad_category(), "after a kept import");
    }
}
