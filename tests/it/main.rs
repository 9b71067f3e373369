//! The integration tests: one binary, one module per area (`cargo test --test it`, or
//! `cargo test --test it web_call::` for one area). The Chromium tests are the `browser` binary
//! (`tests/browser/`); both share the helpers in `tests/common/`.
//!
//! All modules share one process and run on the test threads together: a test must not change
//! process-wide state (environment, rlimits, signal handlers, the working directory); limits and
//! signals go to the child processes it starts.

#[path = "../common/mod.rs"]
mod common;

mod api_results;
mod call_engine;
mod calls_cli;
mod charts_render;
mod compare_rounds;
mod crash;
mod demo_http;
mod disk_full;
mod edge_security;
mod edge_text;
mod evidence_import;
mod exports_files;
mod exports_golden;
mod fuzz_evidence;
mod fuzz_importers;
mod fuzz_web_forms;
mod import_scale;
mod maintenance;
mod no_sql_from_strings;
mod onsite_export;
mod onsite_import;
mod operators_cli;
mod path_traversal;
mod pg_caches;
mod pg_contract_accounts;
mod pg_contract_calls;
mod pg_contract_results;
mod pg_contract_roster;
mod pg_contract_rounds;
mod pg_migrate;
mod pg_schema;
mod pg_serve;
mod pg_snapshot;
mod plan_reference;
mod report_files;
mod results_demo;
mod results_store;
mod roster_import;
mod rounds_and_storage;
mod serve_edges;
mod web_admin;
mod web_auth;
mod web_call;
mod web_evaluators;
mod web_evidence;
mod web_roles;
mod web_round_ops;
mod web_round_tasks;
