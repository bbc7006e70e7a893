//! qbo-console: keeps QuickBooks Online OAuth connections alive and records who touched them.
//!
//! The modules follow the path a credential takes: `config` and `vault` at the bottom,
//! `store` for rows, `intuit` for the wire, `lifecycle` for what happens to a connection,
//! `audit` for the record of it, `service` for the operations every interface calls, and
//! `cli` on top; `text` makes outside text safe for any interface to print. `sim` is the
//! Intuit emulator and shares nothing with `intuit`/`lifecycle`.

pub mod alerts;
pub mod api;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod domain;
pub mod file_modes;
pub mod forecast;
pub mod identity;
#[cfg(test)]
mod interfaces_agree;
pub mod intuit;
pub mod lifecycle;
pub mod metrics;
pub mod present;
pub mod public;
pub mod service;
pub mod sim;
pub mod store;
#[doc(hidden)]
pub mod test_log;
pub mod text;
pub mod tui;
pub mod vault;
pub mod webhooks;
