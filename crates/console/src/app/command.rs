//! The `:` line: the same actions by name.

use super::prompt::{apply_filter, report_filter_error};
use super::{perform, sort_by, App, Screen, Tone};
use crate::event::Cmd;
use crate::keymap::Action;
use qbo_service::sort::SortKey;

/// What a `:` command does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    /// The same action as its key.
    Act(Action),
    /// `:filter TEXT`: applies the filter language.
    Filter,
    /// `:sort COLUMN [desc]`.
    Sort,
}

/// One `:` command: its names (the first is the one shown), what it takes, what it does.
struct Command {
    names: &'static [&'static str],
    args: &'static str,
    run: Run,
}

/// Every `:` command. The parser, the help screen and the message for an unknown command
/// are all read from here, so none of them can list a command another does not know.
const COMMANDS: &[Command] = &[
    Command {
        names: &["refresh", "r"],
        args: "",
        run: Run::Act(Action::Refresh),
    },
    Command {
        names: &["verify", "v"],
        args: "",
        run: Run::Act(Action::Verify),
    },
    Command {
        names: &["filter", "f"],
        args: "TEXT",
        run: Run::Filter,
    },
    Command {
        names: &["sort"],
        args: "COLUMN [desc]",
        run: Run::Sort,
    },
    Command {
        names: &["mark-all", "markall"],
        args: "",
        run: Run::Act(Action::MarkAll),
    },
    Command {
        names: &["audit"],
        args: "",
        run: Run::Act(Action::Audit),
    },
    Command {
        names: &["forecast"],
        args: "",
        run: Run::Act(Action::Forecast),
    },
    Command {
        names: &["campaigns"],
        args: "",
        run: Run::Act(Action::Campaigns),
    },
    Command {
        names: &["help"],
        args: "",
        run: Run::Act(Action::Help),
    },
    Command {
        names: &["q", "quit"],
        args: "",
        run: Run::Act(Action::Quit),
    },
];

impl Command {
    fn shown(&self) -> String {
        match self.args {
            "" => self.names[0].to_string(),
            args => format!("{} {args}", self.names[0]),
        }
    }
}

/// The commands as the help screen lists them: `:refresh  :verify  :filter TEXT  …`.
pub fn synopsis() -> String {
    COMMANDS
        .iter()
        .map(|c| format!(":{}", c.shown()))
        .collect::<Vec<_>>()
        .join("  ")
}

/// The commands as a sentence: `refresh, verify, …, help or q`.
fn expected() -> String {
    let shown: Vec<String> = COMMANDS.iter().map(Command::shown).collect();
    match shown.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => shown.join(""),
    }
}

/// Runs one `:` line (see `COMMANDS`).
pub(super) fn command(app: &mut App, line: &str) -> Vec<Cmd> {
    let line = line.trim();
    let (name, rest) = line.split_once(' ').unwrap_or((line, ""));
    let rest = rest.trim();
    if name.is_empty() {
        return Vec::new();
    }
    let Some(found) = COMMANDS.iter().find(|c| c.names.contains(&name)) else {
        app.say(
            Tone::Error,
            format!("unknown command {name:?}: expected {}", expected()),
        );
        return Vec::new();
    };
    let action = match found.run {
        Run::Act(action) => action,
        Run::Filter => {
            app.screen = match app.screen {
                Screen::Detail(_) => Screen::Connections,
                s => s,
            };
            apply_filter(app, rest);
            report_filter_error(app);
            return super::reload_audit(app);
        }
        Run::Sort => {
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
    };
    perform(app, action)
}
