//! Keys as data: one table per view says which key does what. The same table dispatches
//! input, writes the footer and writes the help screen, so neither can drift from what the
//! keys really do. Each action names the permission it needs; the footer leaves out what
//! the operator's role may not do, and pressing it anyway says which role would.

pub use crate::key::Key;
use crate::ConsoleError;
use crossterm::event::KeyCode;
use qbo_service::{Permission, Role};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Quit,
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    /// Open the filter line (`/`).
    Filter,
    /// Back out of whatever is open: an overlay, a pane, the filter, the marks.
    Back,
    Open,
    Mark,
    MarkAll,
    Refresh,
    Verify,
    /// Send a reconnect link; arrives with the reconnect-link issue.
    Link,
    /// Revoke at Intuit behind a typed confirmation (the realm id, or the count).
    Revoke,
    Audit,
    Help,
    Command,
    /// Sort by the next column.
    Sort,
    /// Reverse the sort direction.
    Reverse,
    Confirm,
    /// Move the demo's clocks an hour forward.
    AdvanceClock,
    /// Open the forecast: who dies within N days, when, why, and the last alerts.
    Forecast,
    /// Write a support bundle for the connection in the detail pane.
    SupportBundle,
    /// Export the audit view's filter to a file with its signed manifest.
    Export,
    /// Open the reconnect campaigns: each one's links made, opened, completed, expired.
    Campaigns,
    /// The demo only: start an Intuit outage in production, or end it.
    DemoIncident,
}

impl Action {
    pub const ALL: [Action; 28] = [
        Action::Quit,
        Action::Up,
        Action::Down,
        Action::PageUp,
        Action::PageDown,
        Action::Home,
        Action::End,
        Action::Filter,
        Action::Back,
        Action::Open,
        Action::Mark,
        Action::MarkAll,
        Action::Refresh,
        Action::Verify,
        Action::Link,
        Action::Revoke,
        Action::Audit,
        Action::Help,
        Action::Command,
        Action::Sort,
        Action::Reverse,
        Action::Confirm,
        Action::AdvanceClock,
        Action::Forecast,
        Action::SupportBundle,
        Action::Export,
        Action::Campaigns,
        Action::DemoIncident,
    ];

    /// The name used in `[tui.keys]`, on the `:` line and in refusals.
    pub fn name(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::Up => "up",
            Action::Down => "down",
            Action::PageUp => "pageup",
            Action::PageDown => "pagedown",
            Action::Home => "home",
            Action::End => "end",
            Action::Filter => "filter",
            Action::Back => "back",
            Action::Open => "open",
            Action::Mark => "mark",
            Action::MarkAll => "markall",
            Action::Refresh => "refresh",
            Action::Verify => "verify",
            Action::Link => "link",
            Action::Revoke => "revoke",
            Action::Audit => "audit",
            Action::Help => "help",
            Action::Command => "command",
            Action::Sort => "sort",
            Action::Reverse => "reverse",
            Action::Confirm => "confirm",
            Action::AdvanceClock => "advance",
            Action::Forecast => "forecast",
            Action::SupportBundle => "bundle",
            Action::Export => "export",
            Action::Campaigns => "campaigns",
            Action::DemoIncident => "incident",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Action::Quit => "quit the console",
            Action::Up => "move up",
            Action::Down => "move down",
            Action::PageUp => "page up",
            Action::PageDown => "page down",
            Action::Home => "first row",
            Action::End => "last row",
            Action::Filter => "filter as you type",
            Action::Back => "back out (close, clear the filter, drop the marks)",
            Action::Open => "open the detail",
            Action::Mark => "mark or unmark the row",
            Action::MarkAll => "mark every row the filter shows",
            Action::Refresh => "refresh the marked rows, or the selected one",
            Action::Verify => "verify the marked rows, or the selected one",
            Action::Link => "make a reconnect link and copy it to the clipboard",
            Action::Revoke => "revoke at Intuit, after typing the realm id or the count",
            Action::Audit => "open the audit log",
            Action::Help => "show or hide this help",
            Action::Command => "command line (:refresh, :verify, :filter, :sort, :q)",
            Action::Sort => "sort by the next column",
            Action::Reverse => "reverse the sort",
            Action::Confirm => "confirm",
            Action::AdvanceClock => "move the demo's clocks an hour forward",
            Action::Forecast => "open the forecast (who dies when, and why) and the last alerts",
            Action::SupportBundle => {
                "write a support bundle for an Intuit ticket (Markdown, in the current directory)"
            }
            Action::Export => {
                "export the filtered audit log to a file in the current directory, with its signed manifest"
            }
            Action::Campaigns => {
                "open the reconnect campaigns (link --where): links made, opened, completed, expired"
            }
            Action::DemoIncident => {
                "start an Intuit outage in the demo's production environment (503s from the token endpoint), or end it"
            }
        }
    }

    /// A short word for the footer.
    pub fn short(self) -> &'static str {
        match self {
            Action::Filter => "filter",
            Action::Open => "detail",
            Action::Mark => "mark",
            Action::MarkAll => "mark all",
            Action::Back => "back",
            Action::Command => "cmd",
            Action::AdvanceClock => "hour later",
            Action::DemoIncident => "outage",
            other => other.name(),
        }
    }

    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }

    pub fn permission(self) -> Option<Permission> {
        match self {
            Action::Refresh => Some(Permission::Refresh),
            Action::Verify => Some(Permission::Verify),
            Action::Link | Action::Campaigns => Some(Permission::ReconnectLink),
            Action::Revoke => Some(Permission::Revoke),
            Action::Audit | Action::Export => Some(Permission::ReadAudit),
            Action::SupportBundle => Some(Permission::SupportBundle),
            _ => None,
        }
    }

    /// Which footer entries give way first on a narrow terminal (higher goes first).
    pub fn footer_rank(self) -> u8 {
        match self {
            Action::Help | Action::Quit => 0,
            Action::Refresh | Action::Verify | Action::Filter | Action::Confirm => 1,
            Action::Back | Action::Open | Action::AdvanceClock | Action::DemoIncident => 2,
            Action::Mark
            | Action::MarkAll
            | Action::Audit
            | Action::Forecast
            | Action::SupportBundle
            | Action::Export => 3,
            _ => 4,
        }
    }

    /// Keys that only the demo has (its clocks, its emulator's outage).
    pub fn demo_only(self) -> bool {
        matches!(self, Action::AdvanceClock | Action::DemoIncident)
    }

    /// Movement keys are known to everyone: the footer leaves them to the help.
    fn in_footer(self) -> bool {
        !matches!(
            self,
            Action::Up
                | Action::Down
                | Action::PageUp
                | Action::PageDown
                | Action::Home
                | Action::End
                | Action::Reverse
        )
    }
}

/// Why `role` may not take `action`, naming the roles that may; `None` when it may.
pub fn refusal(action: Action, role: Role) -> Option<String> {
    let p = action.permission()?;
    if role.allows(p) {
        return None;
    }
    let may: Vec<&str> = [Role::Viewer, Role::Auditor, Role::Support, Role::Admin]
        .into_iter()
        .filter(|r| r.allows(p))
        .map(Role::as_str)
        .collect();
    Some(format!(
        "{} needs role {} (you are {role})",
        action.name(),
        may.join(" or ")
    ))
}

/// Which table applies: the screen, or what is open on top of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum View {
    Connections,
    Detail,
    Audit,
    Help,
    Confirm,
    /// The filter or command line: everything not bound here is typed.
    Input,
    /// The forecast and the last alerts.
    Forecast,
    /// The reconnect campaigns.
    Campaigns,
}

impl View {
    pub const ALL: [View; 8] = [
        View::Connections,
        View::Detail,
        View::Audit,
        View::Help,
        View::Confirm,
        View::Input,
        View::Forecast,
        View::Campaigns,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Connections => "connections",
            View::Detail => "detail",
            View::Audit => "audit log",
            View::Help => "help",
            View::Confirm => "confirmation",
            View::Input => "filter and command line",
            View::Forecast => "forecast",
            View::Campaigns => "reconnect campaigns",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    pub key: Key,
    pub action: Action,
}

#[derive(Debug, Clone)]
pub struct Keymap {
    tables: BTreeMap<View, Vec<Binding>>,
}

fn defaults(view: View) -> Vec<Binding> {
    use Action::*;
    let nav = [
        (Key::named(KeyCode::Up), Up),
        (Key::plain('k'), Up),
        (Key::named(KeyCode::Down), Down),
        (Key::plain('j'), Down),
        (Key::named(KeyCode::PageUp), PageUp),
        (Key::ctrl('b'), PageUp),
        (Key::named(KeyCode::PageDown), PageDown),
        (Key::ctrl('f'), PageDown),
        (Key::named(KeyCode::Home), Home),
        (Key::plain('g'), Home),
        (Key::named(KeyCode::End), End),
        (Key::plain('G'), End),
    ];
    let quit = [(Key::plain('q'), Quit), (Key::ctrl('c'), Quit)];
    let acts = [
        (Key::plain('r'), Refresh),
        (Key::plain('v'), Verify),
        (Key::plain('l'), Link),
        (Key::plain('R'), Revoke),
    ];
    let mut v: Vec<(Key, Action)> = Vec::new();
    match view {
        View::Connections => {
            v.extend([
                (Key::named(KeyCode::Enter), Open),
                (Key::plain('/'), Filter),
                (Key::named(KeyCode::Esc), Back),
                (Key::plain(' '), Mark),
                (Key::plain('*'), MarkAll),
            ]);
            v.extend(acts);
            v.extend([
                (Key::plain('a'), Audit),
                (Key::plain('F'), Forecast),
                (Key::plain('C'), Campaigns),
                (Key::plain('s'), Sort),
                (Key::plain('S'), Reverse),
                (Key::plain(':'), Command),
                (Key::plain('?'), Help),
                (Key::plain('+'), AdvanceClock),
                (Key::plain('!'), DemoIncident),
            ]);
            v.extend(quit);
            v.extend(nav);
        }
        View::Detail => {
            v.push((Key::named(KeyCode::Esc), Back));
            v.extend(acts);
            v.push((Key::plain('b'), SupportBundle));
            v.extend([
                (Key::plain('a'), Audit),
                (Key::plain('F'), Forecast),
                (Key::plain('C'), Campaigns),
                (Key::plain(':'), Command),
                (Key::plain('?'), Help),
                (Key::plain('+'), AdvanceClock),
                (Key::plain('!'), DemoIncident),
            ]);
            v.extend(quit);
            v.extend(nav);
        }
        View::Audit => {
            v.extend([
                (Key::named(KeyCode::Enter), Open),
                (Key::plain('/'), Filter),
                (Key::plain('e'), Export),
                (Key::named(KeyCode::Esc), Back),
                (Key::plain(':'), Command),
                (Key::plain('?'), Help),
            ]);
            v.extend(quit);
            v.extend(nav);
        }
        View::Forecast => {
            v.extend([
                // Marks every connection of the group pointed at (`›`), for the table's
                // bulk actions.
                (Key::plain(' '), Mark),
                (Key::named(KeyCode::Esc), Back),
                (Key::plain('F'), Back),
                (Key::plain('a'), Audit),
                (Key::plain(':'), Command),
                (Key::plain('?'), Help),
            ]);
            v.extend(quit);
            v.extend(nav);
        }
        View::Campaigns => {
            v.extend([
                (Key::named(KeyCode::Esc), Back),
                (Key::plain('C'), Back),
                (Key::plain('F'), Forecast),
                (Key::plain('a'), Audit),
                (Key::plain(':'), Command),
                (Key::plain('?'), Help),
            ]);
            v.extend(quit);
            v.extend(nav);
        }
        View::Help => {
            v.extend([
                (Key::named(KeyCode::Esc), Back),
                (Key::plain('?'), Back),
                (Key::plain('q'), Back),
                (Key::ctrl('c'), Quit),
            ]);
            v.extend(nav);
        }
        View::Confirm => v.extend([
            (Key::plain('y'), Confirm),
            (Key::named(KeyCode::Enter), Confirm),
            (Key::plain('n'), Back),
            (Key::named(KeyCode::Esc), Back),
            (Key::ctrl('c'), Quit),
        ]),
        View::Input => v.extend([
            (Key::named(KeyCode::Enter), Confirm),
            (Key::named(KeyCode::Esc), Back),
            (Key::ctrl('c'), Quit),
        ]),
    }
    v.into_iter()
        .map(|(key, action)| Binding { key, action })
        .collect()
}

impl Default for Keymap {
    fn default() -> Self {
        Keymap {
            tables: View::ALL.into_iter().map(|v| (v, defaults(v))).collect(),
        }
    }
}

/// One line of the help screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelpLine {
    pub keys: String,
    pub action: Action,
    /// Why the operator may not use it, when they may not.
    pub refused: Option<String>,
}

impl Keymap {
    /// The defaults with `[tui.keys]` applied: each key is bound to its action in every view
    /// that has the action ("none" unbinds it). The text field of the filter and command
    /// lines is left alone, so an override never stops a letter from being typed.
    pub fn with_overrides(overrides: &BTreeMap<String, String>) -> Result<Keymap, ConsoleError> {
        let mut map = Keymap::default();
        for (key_text, action_name) in overrides {
            let key = Key::parse(key_text).ok_or_else(|| {
                format!(
                    "[tui.keys] {key_text:?}: not a key; write one character (\"x\", \"R\", \"?\") \
                     or a name (enter, esc, tab, space, backspace, up, down, left, right, pgup, \
                     pgdn, home, end, f1..f12), with ctrl-, alt- or shift- before it"
                )
            })?;
            let action = match action_name.trim().to_ascii_lowercase().as_str() {
                "none" => None,
                name => Some(Action::parse(name).ok_or_else(|| {
                    format!(
                        "[tui.keys] {key_text:?} = {action_name:?}: unknown action; expected one \
                         of {}, or \"none\" to unbind the key",
                        Action::ALL.map(Action::name).join(", ")
                    )
                })?),
            };
            for view in View::ALL.into_iter().filter(|v| *v != View::Input) {
                let has = action.is_some_and(|a| defaults(view).iter().any(|b| b.action == a));
                let table = map.tables.entry(view).or_default();
                table.retain(|b| b.key != key);
                if let (true, Some(action)) = (has, action) {
                    // Overrides go first so they also win the footer's one key per action.
                    table.insert(0, Binding { key, action });
                }
            }
        }
        Ok(map)
    }

    pub fn action(&self, view: View, key: Key) -> Option<Action> {
        self.tables
            .get(&view)?
            .iter()
            .find(|b| b.key == key)
            .map(|b| b.action)
    }

    /// The keys bound to `action` in `view`, first the one the footer shows.
    pub fn keys_for(&self, view: View, action: Action) -> Vec<Key> {
        self.tables
            .get(&view)
            .map(|t| {
                t.iter()
                    .filter(|b| b.action == action)
                    .map(|b| b.key)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The footer: one key per action that applies in `view` and that `role` may take.
    pub fn footer(&self, view: View, role: Role, demo: bool) -> Vec<(String, Action)> {
        let mut seen = Vec::new();
        let mut out = Vec::new();
        for b in self.tables.get(&view).into_iter().flatten() {
            let a = b.action;
            if !a.in_footer()
                || seen.contains(&a)
                || (a.demo_only() && !demo)
                || refusal(a, role).is_some()
            {
                continue;
            }
            seen.push(a);
            out.push((b.key.to_string(), a));
        }
        out
    }

    /// Every action of `view` with all its keys, refused ones marked with the reason.
    pub fn help(&self, view: View, role: Role, demo: bool) -> Vec<HelpLine> {
        let mut out: Vec<HelpLine> = Vec::new();
        for b in self.tables.get(&view).into_iter().flatten() {
            if b.action.demo_only() && !demo {
                continue;
            }
            if let Some(line) = out.iter_mut().find(|l| l.action == b.action) {
                line.keys.push_str(&format!(" {}", b.key));
                continue;
            }
            out.push(HelpLine {
                keys: b.key.to_string(),
                action: b.action,
                refused: refusal(b.action, role),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Key {
        Key::parse(s).unwrap_or_else(|| panic!("{s} parses"))
    }

    #[test]
    fn the_table_dispatches_keys_per_view() {
        let m = Keymap::default();
        assert_eq!(m.action(View::Connections, key("r")), Some(Action::Refresh));
        assert_eq!(m.action(View::Connections, key("R")), Some(Action::Revoke));
        assert_eq!(m.action(View::Connections, key("j")), Some(Action::Down));
        assert_eq!(
            m.action(View::Connections, key("ctrl-c")),
            Some(Action::Quit)
        );
        assert_eq!(m.action(View::Confirm, key("y")), Some(Action::Confirm));
        assert_eq!(m.action(View::Confirm, key("r")), None);
        assert_eq!(m.action(View::Help, key("q")), Some(Action::Back));
        // crossterm reports an upper-case letter with SHIFT held; the table does not care.
        let shifted = Key::of(&crossterm::event::KeyEvent::new(
            KeyCode::Char('R'),
            crossterm::event::KeyModifiers::SHIFT,
        ));
        assert_eq!(m.action(View::Connections, shifted), Some(Action::Revoke));
    }

    #[test]
    fn the_footer_hides_what_the_role_may_not_do() {
        let m = Keymap::default();
        let shown = |role| {
            m.footer(View::Connections, role, false)
                .into_iter()
                .map(|(_, a)| a.short())
                .collect::<Vec<_>>()
        };
        let viewer = shown(Role::Viewer);
        assert!(!viewer.contains(&"refresh") && !viewer.contains(&"verify"));
        assert!(!viewer.contains(&"audit") && viewer.contains(&"filter"));
        let support = shown(Role::Support);
        assert!(support.contains(&"refresh") && !support.contains(&"revoke"));
        assert!(shown(Role::Admin).contains(&"verify"));
        // Reconnect links are built: offered to support and admins, not to viewers.
        assert!(shown(Role::Admin).contains(&"link"));
        assert!(support.contains(&"link") && !viewer.contains(&"link"));
        let help = m.help(View::Connections, Role::Admin, false);
        assert!(help.iter().any(|h| h.action == Action::Link));
        assert!(Action::Link.describe().contains("clipboard"));
        // Revocation is built: offered to admins, not to support.
        assert!(shown(Role::Admin).contains(&"revoke"));
        assert!(!shown(Role::Admin).contains(&"hour later"));
        assert!(m
            .footer(View::Connections, Role::Admin, true)
            .iter()
            .any(|(k, a)| k == "+" && *a == Action::AdvanceClock));
    }

    #[test]
    fn a_refusal_names_the_roles_that_may() {
        assert_eq!(
            refusal(Action::Refresh, Role::Viewer).as_deref(),
            Some("refresh needs role support or admin (you are viewer)")
        );
        assert_eq!(
            refusal(Action::Audit, Role::Support).as_deref(),
            Some("audit needs role auditor or admin (you are support)")
        );
        assert_eq!(refusal(Action::Refresh, Role::Support), None);
        assert_eq!(refusal(Action::Down, Role::Unmapped), None);
    }

    #[test]
    fn help_lists_every_key_of_an_action_and_marks_refused_ones() {
        let help = Keymap::default().help(View::Connections, Role::Viewer, false);
        let down = help.iter().find(|l| l.action == Action::Down).unwrap();
        assert_eq!(down.keys, "↓ j");
        let refresh = help.iter().find(|l| l.action == Action::Refresh).unwrap();
        assert!(refresh
            .refused
            .as_deref()
            .unwrap()
            .contains("support or admin"));
        assert!(!help.iter().any(|l| l.action == Action::AdvanceClock));
    }

    #[test]
    fn overrides_rebind_in_every_view_that_has_the_action() {
        let o = BTreeMap::from([
            ("ctrl-r".to_string(), "refresh".to_string()),
            ("x".to_string(), "quit".to_string()),
            ("r".to_string(), "none".to_string()),
        ]);
        let m = Keymap::with_overrides(&o).unwrap();
        for view in [View::Connections, View::Detail] {
            assert_eq!(m.action(view, key("ctrl-r")), Some(Action::Refresh));
            assert_eq!(m.action(view, key("r")), None);
        }
        assert_eq!(m.action(View::Audit, key("ctrl-r")), None);
        assert_eq!(m.action(View::Audit, key("x")), Some(Action::Quit));
        // Typing an x into the filter still types an x.
        assert_eq!(m.action(View::Input, key("x")), None);
        let footer = m.footer(View::Connections, Role::Admin, false);
        assert!(footer.contains(&("ctrl-r".to_string(), Action::Refresh)));
    }

    #[test]
    fn bad_overrides_are_explained() {
        let bad_key = BTreeMap::from([("ctl-r".to_string(), "refresh".to_string())]);
        let e = Keymap::with_overrides(&bad_key).unwrap_err().0;
        assert!(e.starts_with("[tui.keys] \"ctl-r\": not a key"), "{e}");
        let bad_action = BTreeMap::from([("x".to_string(), "refreshh".to_string())]);
        let e = Keymap::with_overrides(&bad_action).unwrap_err().0;
        assert!(e.contains("\"refreshh\": unknown action"), "{e}");
        assert!(e.contains("refresh, verify"), "{e}");
    }
}
