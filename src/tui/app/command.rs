//! The `:` line: the same actions by name.

use super::prompt::{apply_filter, report_filter_error};
use super::{perform, sort_by, App, Screen, Tone};
use crate::tui::event::Cmd;
use crate::tui::keymap::Action;
use crate::tui::urgency::SortKey;

/// `:refresh`, `:verify`, `:filter TEXT`, `:sort COLUMN [desc]`, `:audit`, `:forecast`,
/// `:help`, `:q`.
pub(super) fn command(app: &mut App, line: &str) -> Vec<Cmd> {
    let line = line.trim();
    let (name, rest) = line.split_once(' ').unwrap_or((line, ""));
    let rest = rest.trim();
    let action = match name {
        "" => return Vec::new(),
        "q" | "quit" => Action::Quit,
        "r" | "refresh" => Action::Refresh,
        "v" | "verify" => Action::Verify,
        "audit" => Action::Audit,
        "forecast" => Action::Forecast,
        "help" => Action::Help,
        "mark-all" | "markall" => Action::MarkAll,
        "f" | "filter" => {
            app.screen = match app.screen {
                Screen::Detail(_) => Screen::Connections,
                s => s,
            };
            apply_filter(app, rest);
            report_filter_error(app);
            return super::reload_audit(app);
        }
        "sort" => {
            let mut words = rest.split_whitespace();
            let key = words.next().map_or(Ok(SortKey::Urgency), SortKey::parse);
            let descending = match words.next() {
                None | Some("asc") => false,
                Some("desc") => true,
                Some(other) => {
                    app.say(
                        Tone::Error,
                        format!(":sort {rest}: {other:?} is not a direction; use asc or desc"),
                    );
                    return Vec::new();
                }
            };
            match key {
                Ok(k) => sort_by(app, k, descending),
                Err(e) => app.say(Tone::Error, format!(":sort: {e}")),
            }
            return Vec::new();
        }
        other => {
            app.say(
                Tone::Error,
                format!(
                    "unknown command {other:?}: expected refresh, verify, filter TEXT, \
                     sort COLUMN [desc], audit, forecast, help or q"
                ),
            );
            return Vec::new();
        }
    };
    perform(app, action)
}
