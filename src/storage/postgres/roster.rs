//! [`RosterStore`] on PostgreSQL, with the streamed import's sink. The import is one
//! transaction, all or nothing, as on SQLite; the members go in many rows per statement (the
//! columns as arrays, `unnest`ed), and a row the unique `(unit_id, phone)` key refuses is found
//! by its line without aborting the statement (`ON CONFLICT DO NOTHING RETURNING`), so the
//! error names the same line SQLite's row-by-row retry names.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use deadpool_postgres::GenericClient;

use super::PgBackend;
use super::rounds::{append_audit, ensure_unlocked, now_ms};
use crate::domain::roster::{MemberCategory, NewMember, RosterUnit};
use crate::storage::*;

/// Rows per INSERT: one round trip per this many members.
const MEMBERS_PER_INSERT: usize = 2_000;

const INSERT_MEMBERS: &str = "INSERT INTO members
        (unit_id, name, phone, phone_alt, category, organization, note, source_line, created_at)
    SELECT u, n, p, pa, c, o, nt, l, $9
    FROM unnest($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[], $8::BIGINT[])
        WITH ORDINALITY AS t(u, n, p, pa, c, o, nt, l, ord)
    ORDER BY ord
    ON CONFLICT DO NOTHING
    RETURNING source_line";

/// Whether a row of another table refers to a member of the unit (as `sqlite/roster_write.rs`'s
/// `REFERENCED`): PostgreSQL's foreign keys would refuse the delete with a database error; the
/// import refuses it first with the SQLite store's message.
const REFERENCED: &str = "SELECT EXISTS (SELECT 1 FROM assignments WHERE member_id IN (SELECT id FROM members WHERE unit_id = $1))
        OR EXISTS (SELECT 1 FROM queue WHERE member_id IN (SELECT id FROM members WHERE unit_id = $1))
        OR EXISTS (SELECT 1 FROM attempts WHERE member_id IN (SELECT id FROM members WHERE unit_id = $1))
        OR EXISTS (SELECT 1 FROM reopenings WHERE member_id IN (SELECT id FROM members WHERE unit_id = $1))
        OR EXISTS (SELECT 1 FROM ended_claims WHERE member_id IN (SELECT id FROM members WHERE unit_id = $1))";

/// Units of a round whose panel is in use: planned (members hold call assignments) or called.
async fn units_in_use<C: GenericClient>(c: &C, round_id: i64) -> Result<BTreeSet<i64>> {
    let rows = c
        .query(
            "SELECT m.unit_id FROM attempts a JOIN members m ON m.id = a.member_id JOIN units u ON u.id = m.unit_id WHERE u.round_id = $1
             UNION
             SELECT m.unit_id FROM assignments s JOIN members m ON m.id = s.member_id JOIN units u ON u.id = m.unit_id WHERE u.round_id = $1",
            &[&round_id],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The import's side inside its open transaction; each call blocks on the backend's runtime.
struct PgSink<'a> {
    backend: &'a PgBackend,
    tx: &'a deadpool_postgres::Transaction<'a>,
    round_id: i64,
    called: BTreeSet<i64>,
    /// Units checked to be the round's (the rest are refused before their rows are sent).
    units_ok: HashSet<i64>,
    now: i64,
    stored: usize,
    replaced: Vec<i64>,
}

impl MemberSink for PgSink<'_> {
    fn replace_panel(&mut self, unit_id: i64) -> Result<()> {
        let tx = self.tx;
        let referenced: bool = self.called.contains(&unit_id)
            || self
                .backend
                .block_on(async { tx.query_one(REFERENCED, &[&unit_id]).await })?
                .get(0);
        if referenced {
            return Err(StorageError::Conflict(
                "该单位已排入拨打计划或已开始电话调查,不能替换代表名单".into(),
            ));
        }
        self.backend.block_on(async {
            tx.execute("DELETE FROM members WHERE unit_id = $1", &[&unit_id])
                .await
        })?;
        self.replaced.push(unit_id);
        Ok(())
    }

    fn add(&mut self, members: &[NewMember]) -> Result<()> {
        for chunk in members.chunks(MEMBERS_PER_INSERT) {
            self.check_units(chunk)?;
            self.insert(chunk)?;
            self.stored += chunk.len();
        }
        Ok(())
    }
}

impl PgSink<'_> {
    /// Refuses members of a unit that is not the round's, naming the first such line (as
    /// SQLite's import checks its units; here before the foreign key would refuse the row).
    fn check_units(&mut self, chunk: &[NewMember]) -> Result<()> {
        let mut first_line: BTreeMap<i64, usize> = BTreeMap::new();
        for m in chunk {
            if !self.units_ok.contains(&m.unit_id) {
                first_line.entry(m.unit_id).or_insert(m.line);
            }
        }
        if first_line.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = first_line.keys().copied().collect();
        let (tx, round_id) = (self.tx, self.round_id);
        let rows = self.backend.block_on(async {
            tx.query(
                "SELECT id FROM units WHERE round_id = $1 AND id = ANY($2)",
                &[&round_id, &ids],
            )
            .await
        })?;
        for r in rows {
            let id: i64 = r.get(0);
            first_line.remove(&id);
            self.units_ok.insert(id);
        }
        match first_line.values().min() {
            None => Ok(()),
            Some(line) => Err(StorageError::Conflict(format!(
                "第 {line} 行:参评单位不在本轮次中(可能刚被修改),请重新导入"
            ))),
        }
    }

    fn insert(&mut self, chunk: &[NewMember]) -> Result<()> {
        let unit: Vec<i64> = chunk.iter().map(|m| m.unit_id).collect();
        let name: Vec<&str> = chunk.iter().map(|m| m.name.as_str()).collect();
        let phone: Vec<&str> = chunk.iter().map(|m| m.phone.as_str()).collect();
        let phone_alt: Vec<Option<&str>> = chunk.iter().map(|m| m.phone_alt.as_deref()).collect();
        let category: Vec<&str> = chunk.iter().map(|m| m.category.label()).collect();
        let organization: Vec<Option<&str>> =
            chunk.iter().map(|m| m.organization.as_deref()).collect();
        let note: Vec<Option<&str>> = chunk.iter().map(|m| m.note.as_deref()).collect();
        let line: Vec<i64> = chunk.iter().map(|m| m.line as i64).collect();
        let (tx, now) = (self.tx, self.now);
        let rows = self.backend.block_on(async {
            tx.query(
                INSERT_MEMBERS,
                &[
                    &unit,
                    &name,
                    &phone,
                    &phone_alt,
                    &category,
                    &organization,
                    &note,
                    &line,
                    &now,
                ],
            )
            .await
        })?;
        if rows.len() == chunk.len() {
            return Ok(());
        }
        // The first row in file order that was not stored met a stored (or earlier) phone.
        let stored: HashSet<i64> = rows.iter().map(|r| r.get(0)).collect();
        let line = chunk
            .iter()
            .find(|m| !stored.contains(&(m.line as i64)))
            .map_or(0, |m| m.line);
        Err(StorageError::Conflict(format!(
            "第 {line} 行:该号码已在该单位的代表名单中(可能是同时进行的另一次导入)"
        )))
    }
}

impl RosterStore for PgBackend {
    fn roster_units(&self, round_id: i64) -> Result<Vec<RosterUnit>> {
        self.read(async |c| {
            let mut units: BTreeMap<i64, RosterUnit> = BTreeMap::new();
            for r in c
                .query(
                    "SELECT id, name FROM units WHERE round_id = $1 ORDER BY id",
                    &[&round_id],
                )
                .await?
            {
                let id: i64 = r.get(0);
                units.insert(
                    id,
                    RosterUnit {
                        id,
                        name: r.get(1),
                        phones: BTreeSet::new(),
                        two_deputies_one_member: 0,
                        in_use: false,
                    },
                );
            }
            for r in c
                .query(
                    "SELECT m.unit_id, m.phone, m.category, m.id FROM members m JOIN units u ON u.id = m.unit_id
                     WHERE u.round_id = $1 AND m.phone IS NOT NULL",
                    &[&round_id],
                )
                .await?
            {
                let (unit, phone, label): (i64, String, String) = (r.get(0), r.get(1), r.get(2));
                let category = category(&label, r.get(3))?;
                if let Some(u) = units.get_mut(&unit) {
                    u.phones.insert(phone);
                    u.two_deputies_one_member +=
                        usize::from(category.is_two_deputies_one_member());
                }
            }
            for id in units_in_use(c, round_id).await? {
                if let Some(u) = units.get_mut(&id) {
                    u.in_use = true;
                }
            }
            Ok(units.into_values().collect())
        })
    }

    fn add_members(
        &self,
        round: &RoundRecord,
        members: &[NewMember],
        replace_units: &[i64],
        actor: &str,
    ) -> Result<usize> {
        // The streamed import's path, fed the whole list at once (as on SQLite).
        let stored = self.add_members_streamed(round, actor, &mut |sink| {
            for unit in replace_units {
                sink.replace_panel(*unit)?;
            }
            sink.add(members)?;
            Ok(true)
        })?;
        Ok(stored.unwrap_or(0))
    }

    fn add_members_streamed(
        &self,
        round: &RoundRecord,
        actor: &str,
        feed: &mut dyn FnMut(&mut dyn MemberSink) -> Result<bool>,
    ) -> Result<Option<usize>> {
        // `feed` is synchronous and calls the sink, which blocks on the runtime per statement:
        // the transaction is held here, between those calls. Dropped without a commit (an
        // error, a panic, an import not kept) it rolls back.
        let mut client = self.block_on(self.conn())?;
        let tx = self.block_on(client.transaction())?;
        let called = self.block_on(async {
            ensure_unlocked(&tx, round.id).await?;
            units_in_use(&tx, round.id).await
        })?;
        let mut sink = PgSink {
            backend: self,
            tx: &tx,
            round_id: round.id,
            called,
            units_ok: HashSet::new(),
            now: now_ms(),
            stored: 0,
            replaced: Vec::new(),
        };
        if !feed(&mut sink)? {
            drop(sink);
            self.block_on(tx.rollback())?;
            return Ok(None);
        }
        let (stored, mut replaced) = (sink.stored, sink.replaced);
        replaced.sort_unstable();
        self.block_on(async {
            append_audit(
                &tx,
                &AuditEvent {
                    actor,
                    action: "roster.import",
                    round_key: Some(&round.key),
                    detail: serde_json::json!({ "members": stored, "replaced_units": replaced }),
                },
            )
            .await?;
            tx.commit().await?;
            self.caches.generations.rounds.bump();
            Ok::<_, StorageError>(())
        })?;
        Ok(Some(stored))
    }

    fn members(&self, round_id: i64, unit_id: Option<i64>) -> Result<Vec<MemberRecord>> {
        self.read(async |c| {
            let rows = c
                .query(
                    "SELECT m.id, m.unit_id, u.name, m.name, m.phone, m.phone_alt, m.category, m.organization, m.note
                     FROM members m JOIN units u ON u.id = m.unit_id
                     WHERE u.round_id = $1 AND ($2::BIGINT IS NULL OR u.id = $2) ORDER BY u.id, m.id",
                    &[&round_id, &unit_id],
                )
                .await?;
            rows.iter()
                .map(|r| {
                    let id: i64 = r.get(0);
                    let label: String = r.get(6);
                    Ok(MemberRecord {
                        id,
                        unit_id: r.get(1),
                        unit: r.get(2),
                        name: r.get(3),
                        phone: r.get(4),
                        phone_alt: r.get(5),
                        category: category(&label, id)?,
                        organization: r.get(7),
                        note: r.get(8),
                    })
                })
                .collect()
        })
    }
}

/// A stored category, or the error naming the row (as SQLite's strict reader).
fn category(label: &str, member_id: i64) -> Result<MemberCategory> {
    MemberCategory::from_stored_label(label).ok_or_else(|| {
        StorageError::from(BadStoredValue {
            table: "members",
            row_id: member_id,
            column: "category",
            value: label.to_owned(),
        })
    })
}
