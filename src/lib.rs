//! qbo-console: keeps QuickBooks Online OAuth connections alive and records who touched them.
//!
//! This package is the `qbo-console` binary: its CLI verbs and the demo. Everything else is a
//! crate of the workspace under `crates/`, one per layer (README, "Architecture"): `qbo-core`
//! at the bottom, then `qbo-store`, `qbo-engine`, `qbo-service`, and on top the interfaces
//! (`qbo-daemon`, `qbo-tui` and this CLI). `qbo-sim` is the Intuit emulator and depends on
//! none of them.

pub mod cli;
#[cfg(test)]
mod interfaces_agree;
