//! The bottom layer: values every other crate shares. Domain types (environments, statuses,
//! the audit vocabulary's plain data), the configuration file, the vault that seals tokens,
//! who a caller is, file modes, the text safety every printer uses, and the one presentation
//! vocabulary (status words, glyphs, durations) the CLI and the console both speak.

pub mod audit;
pub mod clock;
pub mod config;
pub mod domain;
pub mod file_modes;
pub mod identity;
pub mod import_text;
pub mod incident;
pub mod present;
pub mod reports;
#[doc(hidden)]
pub mod test_log;
pub mod text;
pub mod vault;
