//! The console: one more client of the service, drawn in the terminal.
//!
//! This is its pure core: the state and its one `update` (`app`), what comes in and goes
//! out (`event`), the keys (`keymap`), the filter language (`filter`), the order
//! (`urgency`), the colours (`theme`) and the drawing (`views`). None of it does I/O: it is
//! tested by feeding messages and by drawing into a test backend.
//!
//! Around it, the only parts that touch the outside: `terminal` (the guard that leaves the
//! terminal as it found it) and `runtime` (the one event loop that turns keys, ticks, the
//! daemon's feed and finished commands into messages, and draws). [`run`] opens it.

pub mod app;
pub mod audit_log;
pub mod clipboard;
pub mod error;
pub mod event;
#[cfg(test)]
mod fake_daemon;
/// The filter language lives with the service (`revoke --where` selects with it too).
pub use qbo_service::filter;
pub mod key;
pub mod keymap;
mod runtime;
pub mod table;
mod terminal;
pub mod theme;
pub mod views;

pub use error::ConsoleError;
pub use terminal::is_interactive;

use futures_util::future::BoxFuture;
use qbo_core::config::{Config, ThemeName};
use qbo_service::Client;
use std::collections::BTreeMap;
use std::sync::Arc;

/// How the console looks and which keys it takes, and whether it runs inside the demo.
#[derive(Clone, Default)]
pub struct ConsoleOptions {
    pub theme: ThemeName,
    /// `[tui.keys]`: key as written ("x", "ctrl-r") to action name, or "none" to unbind.
    pub keys: BTreeMap<String, String>,
    /// `[tui.colors]`: meaning name to colour, on top of the theme.
    pub colors: BTreeMap<String, String>,
    /// The demo's clocks: its key (`+`) is offered only when this is set.
    pub demo: Option<Arc<dyn DemoControl>>,
    /// In process (`--embedded`, the demo): the header says so instead of the daemon's state.
    pub embedded: bool,
}

impl ConsoleOptions {
    /// The `[tui]` section of the configuration; not the demo, not embedded.
    pub fn from_config(config: &Config) -> ConsoleOptions {
        ConsoleOptions {
            theme: config.tui.theme,
            keys: config.tui.keys.clone(),
            colors: config.tui.colors.clone(),
            demo: None,
            embedded: false,
        }
    }
}

/// What the demo lets the operator do to its world from the console.
pub trait DemoControl: Send + Sync {
    /// Moves the emulator's and the daemon's clocks an hour forward and lets the scheduler
    /// catch up; the text says where the clock is now ("clock moved forward 1h: now 14:03").
    fn advance_clock(&self) -> BoxFuture<'_, anyhow::Result<String>>;

    /// Starts an outage of Intuit's production token endpoint at the emulator (503 for
    /// every healthy production company) and moves the clocks until the daemon sees it as one
    /// incident; or, when one is under way, ends it and moves the clocks until the probes
    /// close it and the backlog is caught up. The text says what happened.
    fn toggle_incident(&self) -> BoxFuture<'_, anyhow::Result<String>>;

    /// The demo's time, which the countdowns are drawn against (it runs ahead of the wall
    /// clock once moved).
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }

    /// The first message the console shows: what the demo's world offers that the screen
    /// does not (where its public listener is).
    fn greeting(&self) -> Option<String> {
        None
    }
}

/// Opens the console on this terminal until the operator quits (or SIGTERM, SIGHUP), and
/// leaves the terminal as it was, whatever happens. A mistake in `[tui.keys]` is reported
/// before the screen is touched.
pub async fn run(client: Arc<dyn Client>, opts: ConsoleOptions) -> anyhow::Result<()> {
    let keymap = keymap::Keymap::with_overrides(&opts.keys).map_err(anyhow::Error::msg)?;
    let no_color = std::env::var("NO_COLOR").ok();
    let theme = match no_color.as_deref() {
        Some(v) if !v.is_empty() => theme::Theme::no_color(),
        _ => theme::Theme::pick(opts.theme, None)
            .with_colors(&opts.colors)
            .map_err(anyhow::Error::msg)?,
    };
    runtime::run(client, opts, keymap, theme).await
}

/// Text from the outside world (tenant and company names, error details) made harmless for
/// a terminal, the same way the CLI shows it (`qbo_core::text`): control characters would
/// move the cursor or start an escape sequence, and bidirectional overrides would make a
/// name read as another.
fn safe(s: &str) -> String {
    qbo_core::text::terminal_safe(s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::safe;

    #[test]
    fn control_and_bidi_characters_are_shown_escaped() {
        assert_eq!(safe("acme"), "acme");
        for hostile in [
            "a\u{1b}[2Jb",
            "x\u{9b}31m",
            "evil\u{202e}gnp.exe",
            "tab\there\n",
        ] {
            let shown = safe(hostile);
            assert!(
                !shown.chars().any(qbo_core::text::is_unsafe),
                "{hostile:?} shown as {shown:?}"
            );
        }
        assert_eq!(safe("Zoë Ltd"), "Zoë Ltd");
    }
}
