//! The audit log: one hash-chained list of who did what, appended inside the transaction of
//! the write it records. Entries are in one linear order (each names the hash of the one
//! before), so appends are serialised however many writers there are.

use super::Result;
use crate::domain::audit::{AuditEntry, ChainBreak};

/// What an audit entry records; the storage adds the time and the hash chain.
#[derive(Debug, Clone)]
pub struct AuditEvent<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub round_key: Option<&'a str>,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Exact action, or a prefix ending in '.' ("auth." finds every sign-in event).
    pub action: Option<String>,
    pub actor: Option<String>,
    pub round_key: Option<String>,
    /// Newest first; this many entries from `offset`.
    pub limit: usize,
    pub offset: usize,
}

#[derive(Debug, Clone, Default)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Entries matching the filter in all.
    pub total: usize,
}

pub trait AuditStore: Send + Sync {
    /// Appends an entry on its own (most entries are appended by the write they record).
    fn audit(&self, event: &AuditEvent) -> Result<()>;
    /// The entries in chain order, all or one round's.
    fn audit_entries(&self, round_key: Option<&str>) -> Result<Vec<AuditEntry>>;
    /// Checks the whole chain against its stored head: the entries, or where it breaks.
    fn verify_audit(&self) -> Result<Result<usize, ChainBreak>>;
    fn search_audit(&self, filter: &AuditFilter) -> Result<AuditPage>;
    /// Distinct actions and actors in the audit log, for the filter's choices.
    fn audit_facets(&self) -> Result<(Vec<String>, Vec<String>)>;
}
