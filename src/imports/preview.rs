//! What an upload will store, shown before anything is stored: counts per unit, the first rows
//! as the importer read them, and notes. The digest names the validated batch exactly, so that
//! a later confirmation stores what was previewed or nothing.

use sha2::{Digest, Sha256};

/// Rows shown in a preview.
pub const PREVIEW_ROWS: usize = 20;

#[derive(Debug, Clone, Default)]
pub struct ImportPreview {
    /// (unit name, what the file gives it, e.g. "12 张选票"), by unit name.
    pub per_unit: Vec<(String, String)>,
    /// Headings of `rows` (after the line number).
    pub columns: Vec<String>,
    /// The first rows that will be stored: (physical line, cells as read).
    pub rows: Vec<(usize, Vec<String>)>,
    /// Rows that will be stored in all.
    pub total: usize,
    /// What storing would leave behind (e.g. units still without data).
    pub notes: Vec<String>,
    /// SHA-256 (hex) of the validated batch.
    pub digest: String,
}

/// SHA-256 (hex) of a batch's debug form: every field of every row, in order.
pub fn batch_digest(batch: &impl std::fmt::Debug) -> String {
    hex::encode(Sha256::digest(format!("{batch:?}").as_bytes()))
}
