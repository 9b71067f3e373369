//! The tamper-evident audit chain: each entry's hash covers the previous entry's hash, so an
//! entry changed or removed behind sheping's back breaks the chain at that point.

use sha2::{Digest, Sha256};

/// Hash of the (empty) chain before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub id: i64,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub round_key: Option<String>,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The entry hash: SHA-256 over the previous hash and each field, length-prefixed so that no
/// two different entries serialise to the same bytes.
pub fn entry_hash(
    prev: &str,
    id: i64,
    at_ms: i64,
    actor: &str,
    action: &str,
    round_key: Option<&str>,
    detail: &str,
) -> String {
    let mut h = Sha256::new();
    for part in [
        prev,
        &id.to_string(),
        &at_ms.to_string(),
        actor,
        action,
        round_key.unwrap_or("\u{0}"),
        detail,
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChainBreak {
    #[error(
        "audit entry {id} was changed after it was written (its hash does not match its content)"
    )]
    Altered { id: i64 },
    #[error("the audit entry before {id} was removed or replaced (the chain does not link)")]
    Unlinked { id: i64 },
    #[error("audit entries after {last_id} were removed (the chain head does not match)")]
    Truncated { last_id: i64 },
}

/// Verifies a chain given oldest first; `head` is the hash recorded as the chain's head
/// outside the log table, which catches removal of the newest entries.
pub fn verify_chain(entries: &[AuditEntry], head: Option<&str>) -> Result<usize, ChainBreak> {
    let mut prev = GENESIS.to_string();
    for e in entries {
        if e.prev_hash != prev {
            return Err(ChainBreak::Unlinked { id: e.id });
        }
        let expect = entry_hash(
            &e.prev_hash,
            e.id,
            e.at_ms,
            &e.actor,
            &e.action,
            e.round_key.as_deref(),
            &e.detail,
        );
        if expect != e.hash {
            return Err(ChainBreak::Altered { id: e.id });
        }
        prev = e.hash.clone();
    }
    if let Some(head) = head
        && head != prev
    {
        return Err(ChainBreak::Truncated {
            last_id: entries.last().map_or(0, |e| e.id),
        });
    }
    Ok(entries.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|id| {
                let hash = entry_hash(
                    &prev,
                    id,
                    id * 1000,
                    "admin",
                    "roster.import",
                    Some("2022"),
                    "{}",
                );
                let e = AuditEntry {
                    id,
                    at_ms: id * 1000,
                    actor: "admin".into(),
                    action: "roster.import".into(),
                    round_key: Some("2022".into()),
                    detail: "{}".into(),
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                e
            })
            .collect()
    }

    #[test]
    fn detects_edit_removal_and_truncation() {
        let c = chain(5);
        let head = c.last().unwrap().hash.clone();
        assert_eq!(verify_chain(&c, Some(&head)), Ok(5));
        let mut edited = c.clone();
        edited[2].detail = "{\"x\":1}".into();
        assert_eq!(
            verify_chain(&edited, Some(&head)),
            Err(ChainBreak::Altered { id: 3 })
        );
        let mut removed = c.clone();
        removed.remove(1);
        assert_eq!(
            verify_chain(&removed, Some(&head)),
            Err(ChainBreak::Unlinked { id: 3 })
        );
        assert_eq!(
            verify_chain(&c[..4], Some(&head)),
            Err(ChainBreak::Truncated { last_id: 4 })
        );
    }
}
