//! The domain: plain Rust with no HTTP and no SQL. Storage, web and CLI are thin layers over it.

pub mod appointment;
pub mod audit;
pub mod compare;
pub mod disposition;
pub mod evidence;
pub mod exclusion;
pub mod import;
pub mod personal;
pub mod phone;
pub mod plan;
pub mod progress;
pub mod queue;
pub mod roster;
pub mod round;
pub mod round_path;
pub mod schedule;
pub mod scoring;
pub mod stats;
pub mod survey;
pub mod text;
pub mod unit;
pub mod user;
