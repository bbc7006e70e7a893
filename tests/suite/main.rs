//! Every black-box test in one binary: each module is one scenario file, `common` the
//! World harness they share. One binary links the crate once instead of once per file,
//! which is most of the suite's build time on two cores.

mod common;

mod actor_identity_and_shutdown;
mod alerts;
mod audit_damage;
mod audit_export;
mod audit_export_daemon;
mod audit_fail_closed;
mod audit_quarantine;
mod audit_retention;
mod audit_tamper;
mod backup;
mod bad_input;
mod catalogue;
mod claim_order;
mod cli_flow;
mod client;
mod console_tmux;
mod console_windows;
mod crash_safety;
mod daemon_process;
mod daemon_scheduler;
mod demo_tmux;
mod demo_world;
mod doctor;
mod faults;
mod forecast;
mod hardening_files;
mod hardening_limits;
mod hardening_storage;
mod hardening_text;
mod health;
mod import_large;
mod incidents;
mod intuit_client;
mod intuit_oauth_client;
mod keys_rotate;
mod layers;
mod lease_interleavings;
mod links;
mod links_chromium;
mod list_where;
mod public_fuzz;
mod refresh_rotation;
mod reports;
mod revoke;
mod scale_out;
mod scale_out_kills;
mod sim_binary;
mod sim_protocol;
mod token_api;
mod upgrades;
mod webhooks;
