//! The tests that drive headless Chromium (and PSPP for the exports' syntax files): one binary,
//! one module per area (`cargo test --test browser`, or `cargo test --test browser
//! browser_operator::`). The other integration tests are the `it` binary (`tests/it/`); both
//! share the helpers in `tests/common/`. One Chromium at a time: `chromium::BROWSER`.

// The browser tests use a few of the shared helpers; the `it` binary uses them all and so
// reports the dead ones.
#[allow(dead_code)]
#[path = "../common/mod.rs"]
mod common;

mod chromium;

mod browser_call_screen;
mod browser_evidence;
mod browser_operator;
mod browser_round_path;
mod browser_round_walk;
mod exports_clients;
mod report_browser;
mod report_print;
mod web_charts;
