//! sheping (社评): the telephone satisfaction survey behind the social evaluation (社会评价)
//! of government units.
//!
//! The domain (`domain`) is plain Rust; `storage`, `web` and `cli` are thin layers over it.

pub mod charts;
pub mod cli;
pub mod compare;
pub mod demo;
pub mod domain;
pub mod engine;
pub mod exports;
pub mod imports;
pub mod logging;
pub mod report;
pub mod results;
pub mod storage;
pub mod tabular;
pub mod web;
