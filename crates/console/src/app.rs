//! The console's state and its one `update(&mut App, Msg) -> Vec<Cmd>`: no I/O, no await.
//! Whatever takes time (a list, a refresh, a page of the audit log) is a [`Cmd`] the
//! runtime carries out; its result comes back as a [`Msg`].

mod command;
pub use command::synopsis as command_synopsis;
mod prompt;
mod report;

use prompt::{apply_filter, paste_into_prompt, report_filter_error, type_into_prompt};
use report::summarize;

use crate::audit_log::AuditLog;
use crate::event::{Cmd, Msg, RequestId, Session};
use crate::keymap::{refusal, Action, Key, Keymap, View};
use crate::table::Targets;
use crate::views;
use chrono::{DateTime, Utc};
use crossterm::event::{KeyEvent, KeyEventKind, MouseButton, MouseEventKind};
use qbo_service::sort::{Sort, SortKey};
use qbo_service::{ConnectionDetail, Role};
use tui_input::Input;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Connections,
    Detail(i64),
    Audit,
    /// Who dies within N days, and the last alerts.
    Forecast,
    /// The reconnect campaigns and how their links stand.
    Campaigns,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    Help,
    /// A bulk action waiting for a yes.
    Confirm {
        action: Action,
        targets: Targets,
    },
    /// One audit event, from the audit view.
    AuditEvent,
    /// A revoke waiting for the operator to type `expected` (the realm id of one
    /// connection, or the count of several) on the prompt line.
    Revoke {
        targets: Targets,
        expected: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    Filter,
    Command,
    /// The typed confirmation of a revoke.
    Revoke,
}

#[derive(Debug, Clone)]
pub struct Prompt {
    pub kind: PromptKind,
    pub input: Input,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Info,
    Ok,
    Warn,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub tone: Tone,
    pub text: String,
}

/// An action sent and not yet answered; the spinner turns while there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    pub request: RequestId,
    pub action: Action,
    pub count: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Waiting for the first list.
    Connecting,
    Live,
    /// The daemon answered once and went away; the console keeps trying.
    Lost(String),
    /// The daemon never answered: the whole screen says why and what to do, instead of an
    /// empty table, while the console keeps trying.
    Unreachable(String),
    /// The daemon refused the console (no role for this account): the whole screen says
    /// so and who can change it; the console does not ask again.
    Refused(String),
}

pub struct App {
    pub table: crate::table::Table,
    pub now: DateTime<Utc>,
    pub size: (u16, u16),
    pub session: Session,
    pub keymap: Keymap,
    pub screen: Screen,
    pub overlay: Option<Overlay>,
    pub prompt: Option<Prompt>,
    /// The connections filter as typed; the table holds it parsed.
    pub filter_text: String,
    pub filter_error: Option<String>,
    pub message: Option<Message>,
    pub running: Vec<Running>,
    next_request: RequestId,
    pub detail: Option<ConnectionDetail>,
    pub audit: AuditLog,
    /// The forecast view's last answer, whether one is on its way, and its scroll.
    pub forecast: Option<qbo_service::Forecast>,
    pub forecast_loading: bool,
    pub forecast_scroll: usize,
    /// The campaigns view's last answer, whether one is on its way, when it was asked
    /// (the view asks again every few seconds while open: its counts are live), and its
    /// scroll.
    pub campaigns: Option<Vec<qbo_service::CampaignView>>,
    pub campaigns_loading: bool,
    campaigns_asked: Option<DateTime<Utc>>,
    pub campaigns_scroll: usize,
    pub link: Link,
    /// Turns the spinner.
    pub ticks: u64,
    pub help_scroll: usize,
    pub detail_scroll: usize,
    /// The minute the time-dependent filter terms were last evaluated in.
    filtered_minute: i64,
    /// The daemon's last word on its scheduler: pauses end by themselves at their time,
    /// so the header re-reads it as the clock moves.
    pub(crate) scheduler: qbo_core::domain::SchedulerState,
    /// The daemon's feed is open, so windows can be asked for.
    feed_open: bool,
}

impl App {
    pub fn new(session: Session, keymap: Keymap, now: DateTime<Utc>, size: (u16, u16)) -> App {
        App {
            table: Default::default(),
            now,
            size,
            session,
            keymap,
            screen: Screen::Connections,
            overlay: None,
            prompt: None,
            filter_text: String::new(),
            filter_error: None,
            message: None,
            running: Vec::new(),
            next_request: 1,
            detail: None,
            audit: AuditLog::default(),
            forecast: None,
            forecast_loading: false,
            forecast_scroll: 0,
            campaigns: None,
            campaigns_loading: false,
            campaigns_asked: None,
            campaigns_scroll: 0,
            link: Link::Connecting,
            ticks: 0,
            help_scroll: 0,
            detail_scroll: 0,
            filtered_minute: now.timestamp() / 60,
            scheduler: Default::default(),
            feed_open: false,
        }
    }

    pub fn role(&self) -> Role {
        self.session.role
    }

    /// The keymap table that applies now.
    pub fn view(&self) -> View {
        if self.prompt.is_some() {
            return View::Input;
        }
        match (&self.overlay, self.screen) {
            (Some(Overlay::Help), _) => View::Help,
            (Some(Overlay::Confirm { .. }), _) => View::Confirm,
            (Some(Overlay::AuditEvent), _) => View::Audit,
            // Only with its prompt open, which is the Input view above.
            (Some(Overlay::Revoke { .. }), _) => View::Confirm,
            (None, Screen::Connections) => View::Connections,
            (None, Screen::Detail(_)) => View::Detail,
            (None, Screen::Audit) => View::Audit,
            (None, Screen::Forecast) => View::Forecast,
            (None, Screen::Campaigns) => View::Campaigns,
        }
    }

    fn say(&mut self, tone: Tone, text: impl Into<String>) {
        self.message = Some(Message {
            tone,
            text: text.into(),
        });
    }

    /// Rows of the table on screen now.
    fn page(&self) -> usize {
        views::table_height(self).max(1)
    }
}

/// Handles one message; then, if the rows in hand no longer cover the screen (or something
/// changed), asks for the window.
pub fn update(app: &mut App, msg: Msg) -> Vec<Cmd> {
    let mut cmds = handle(app, msg);
    if app.feed_open {
        let page = app.page();
        app.table.scroll(page);
        if let Some(q) = app.table.ask(page) {
            cmds.push(Cmd::Window(q));
        }
    }
    cmds
}

fn handle(app: &mut App, msg: Msg) -> Vec<Cmd> {
    match msg {
        Msg::Key(k) => key(app, k),
        Msg::Mouse(m) => mouse(app, m),
        Msg::Tick(now) => {
            app.now = now;
            app.ticks = app.ticks.wrapping_add(1);
            app.session.paused = app.scheduler.paused_at(now);
            // Day-granular terms cannot change within a minute; asking for the window
            // every second for them would be waste.
            let minute = now.timestamp() / 60;
            if minute != app.filtered_minute && app.table.filter().depends_on_time() {
                app.filtered_minute = minute;
                app.table.invalidate();
            }
            campaigns_again(app, now)
        }
        Msg::Paste(text) => {
            if app.prompt.is_some() {
                paste_into_prompt(app, &text);
            }
            Vec::new()
        }
        Msg::Resize(w, h) => {
            app.size = (w, h);
            let page = app.page();
            app.table.scroll(page);
            Vec::new()
        }
        Msg::Session(s) => {
            app.session = s;
            Vec::new()
        }
        Msg::Scheduler(state) => {
            app.session.scheduler_running = state.running;
            app.session.paused = state.paused_at(app.now);
            app.scheduler = state;
            Vec::new()
        }
        Msg::FeedOpen => {
            app.feed_open = true;
            app.table.invalidate();
            Vec::new()
        }
        Msg::Window { query, page } => {
            app.table.answer(&query, page);
            if app.table.is_loaded() {
                app.link = Link::Live;
            }
            Vec::new()
        }
        Msg::WindowFailed(why) => {
            app.table.forget_asked();
            app.say(Tone::Error, why);
            Vec::new()
        }
        Msg::Changed(c) => {
            app.table.changed(c);
            Vec::new()
        }
        Msg::Removed(id) => {
            app.table.remove(id);
            if app.screen == Screen::Detail(id) {
                app.screen = Screen::Connections;
                app.say(Tone::Warn, "that connection was removed");
            }
            Vec::new()
        }
        Msg::Missed(n) => {
            app.say(
                Tone::Warn,
                format!("the live feed missed {n} changes; reading the screen again"),
            );
            app.table.invalidate();
            Vec::new()
        }
        Msg::Reply { request, result } => {
            let Some(i) = app.running.iter().position(|r| r.request == request) else {
                return Vec::new();
            };
            let run = app.running.remove(i);
            let (tone, text) = match result {
                Ok(done) => summarize(&done),
                Err(e) => (Tone::Error, format!("{} failed: {e}", run.action.name())),
            };
            app.say(tone, text);
            Vec::new()
        }
        Msg::Linked { tenant, result } => match result {
            Ok(link) => {
                app.say(
                    Tone::Ok,
                    format!(
                        "link for {tenant}: {} (copied to the clipboard; valid until {})",
                        link.url,
                        link.expires_at.format("%Y-%m-%d %H:%M UTC")
                    ),
                );
                vec![Cmd::Clipboard(link.url)]
            }
            Err(e) => {
                app.say(Tone::Error, format!("link for {tenant} failed: {e}"));
                Vec::new()
            }
        },
        Msg::Detail(d) => {
            if app.screen == Screen::Detail(d.connection.id) {
                app.table.seen(d.connection.clone());
                app.detail = Some(d);
            }
            Vec::new()
        }
        Msg::AuditPage {
            query,
            events,
            next_before_seq,
        } => {
            app.audit.answer(&query, events, next_before_seq);
            // A narrowed page may come back short of a screen (its term is rare in the
            // window read): ask on at once, as scrolling to the end would.
            more_audit(app)
        }
        Msg::Disconnected(why) => {
            app.running.clear();
            app.feed_open = false;
            app.table.forget_asked();
            app.link = match app.link {
                Link::Connecting | Link::Unreachable(_) | Link::Refused(_) => {
                    Link::Unreachable(why)
                }
                Link::Live | Link::Lost(_) => {
                    app.say(Tone::Error, why.clone());
                    Link::Lost(why)
                }
            };
            Vec::new()
        }
        Msg::Refused(why) => {
            app.running.clear();
            app.link = Link::Refused(why);
            Vec::new()
        }
        Msg::Failed(why) => {
            app.audit.loading = false;
            app.forecast_loading = false;
            app.campaigns_loading = false;
            app.say(Tone::Error, why);
            Vec::new()
        }
        Msg::ClockMoved(said) | Msg::BundleWritten(said) | Msg::Exported(said) => {
            app.say(Tone::Ok, said);
            Vec::new()
        }
        Msg::Forecast(f) => {
            app.forecast = Some(f);
            app.forecast_loading = false;
            Vec::new()
        }
        Msg::Campaigns(c) => {
            app.campaigns = Some(c);
            app.campaigns_loading = false;
            Vec::new()
        }
    }
}

/// How often the open campaigns view asks for its counts again.
const CAMPAIGNS_EVERY: chrono::Duration = chrono::Duration::seconds(3);

/// Asks for the campaigns again while their view is open and the last answer is older
/// than [`CAMPAIGNS_EVERY`]: customers complete links on their own time.
fn campaigns_again(app: &mut App, now: DateTime<Utc>) -> Vec<Cmd> {
    let stale = app
        .campaigns_asked
        .is_none_or(|at| now - at >= CAMPAIGNS_EVERY || now < at);
    if app.screen != Screen::Campaigns || app.campaigns_loading || !stale {
        return Vec::new();
    }
    app.campaigns_loading = true;
    app.campaigns_asked = Some(now);
    vec![Cmd::Campaigns]
}

fn key(app: &mut App, k: KeyEvent) -> Vec<Cmd> {
    if k.kind == KeyEventKind::Release {
        return Vec::new();
    }
    let view = app.view();
    let action = app.keymap.action(view, Key::of(&k));
    if view == View::Input {
        return match action {
            Some(a) => perform(app, a),
            None => {
                type_into_prompt(app, k);
                Vec::new()
            }
        };
    }
    match action {
        Some(a) => perform(app, a),
        None => {
            explain_elsewhere(app, view, Key::of(&k));
            Vec::new()
        }
    }
}

/// A key of another view pressed here ("b" on the table, "e" outside the audit log) would
/// otherwise do nothing without a word: the message line says where it works.
fn explain_elsewhere(app: &mut App, here: View, key: Key) {
    if app.overlay.is_some() {
        return;
    }
    let there = [
        View::Connections,
        View::Detail,
        View::Audit,
        View::Forecast,
        View::Campaigns,
    ]
    .into_iter()
    .filter(|v| *v != here)
    .find_map(|v| {
        app.keymap
            .action(v, key)
            .filter(|a| !a.demo_only() || app.session.demo)
            .map(|a| (v, a))
    });
    if let Some((view, action)) = there {
        app.say(
            Tone::Info,
            format!(
                "{key} works in the {} view, not in the {} view: {}",
                view.title(),
                here.title(),
                action.describe()
            ),
        );
    }
}

fn mouse(app: &mut App, m: crossterm::event::MouseEvent) -> Vec<Cmd> {
    if app.prompt.is_some() || app.overlay.is_some() {
        return Vec::new();
    }
    match m.kind {
        MouseEventKind::ScrollUp => move_by(app, -3),
        MouseEventKind::ScrollDown => move_by(app, 3),
        MouseEventKind::Down(MouseButton::Left) if app.screen == Screen::Connections => {
            if let Some(i) = views::row_at(app, m.column, m.row) {
                app.table.select_index(i);
            }
        }
        _ => {}
    }
    Vec::new()
}

fn move_by(app: &mut App, delta: isize) {
    match (&app.overlay, app.screen) {
        (Some(Overlay::Help), _) => {
            app.help_scroll = app.help_scroll.saturating_add_signed(delta);
        }
        (Some(_), _) => {}
        (None, Screen::Connections) => {
            app.table.move_by(delta);
            let page = app.page();
            app.table.scroll(page);
        }
        (None, Screen::Detail(_)) => {
            app.detail_scroll = app.detail_scroll.saturating_add_signed(delta);
        }
        (None, Screen::Forecast) => {
            app.forecast_scroll = app.forecast_scroll.saturating_add_signed(delta);
        }
        (None, Screen::Campaigns) => {
            app.campaigns_scroll = app.campaigns_scroll.saturating_add_signed(delta);
        }
        (None, Screen::Audit) => {
            app.audit.move_by(delta);
            let page = app.page();
            app.audit.offset = crate::table::visible_offset(
                app.audit.offset,
                app.audit.cursor,
                page,
                app.audit.visible_len(),
            );
        }
    }
}

pub(super) fn perform(app: &mut App, action: Action) -> Vec<Cmd> {
    if let Some(why) = refusal(action, app.role()) {
        app.say(Tone::Error, why);
        return Vec::new();
    }
    let page = app.page() as isize;
    match action {
        Action::Quit => return vec![Cmd::Quit],
        Action::Up => move_by(app, -1),
        Action::Down => move_by(app, 1),
        Action::PageUp => move_by(app, -page),
        Action::PageDown => move_by(app, page),
        Action::Home => move_by(app, isize::MIN / 2),
        Action::End => move_by(app, isize::MAX / 2),
        Action::Filter => {
            let text = match app.screen {
                Screen::Audit => app.audit.filter_text.clone(),
                _ => app.filter_text.clone(),
            };
            app.screen = match app.screen {
                Screen::Detail(_) => Screen::Connections,
                s => s,
            };
            app.prompt = Some(Prompt {
                kind: PromptKind::Filter,
                input: Input::new(text),
            });
        }
        Action::Command => {
            app.prompt = Some(Prompt {
                kind: PromptKind::Command,
                input: Input::default(),
            })
        }
        Action::Back => {
            back(app);
            // Esc on the audit filter line clears it: the pages read for it no longer fit.
            return reload_audit(app);
        }
        Action::Confirm => return confirm(app),
        Action::Open => match app.screen {
            Screen::Connections => {
                if let Some(id) = app.table.selected().map(|c| c.id) {
                    app.screen = Screen::Detail(id);
                    app.detail = None;
                    app.detail_scroll = 0;
                    return vec![Cmd::Show(id)];
                }
            }
            Screen::Audit if app.audit.selected().is_some() => {
                app.overlay = Some(Overlay::AuditEvent)
            }
            _ => {}
        },
        Action::Mark if app.screen == Screen::Forecast => mark_forecast_group(app),
        Action::Mark => {
            app.table.toggle_mark();
            move_by(app, 1);
        }
        Action::MarkAll => app.table.mark_all_visible(),
        Action::Refresh | Action::Verify => {
            let targets = match app.screen {
                Screen::Detail(id) => Targets::Ids(vec![id]),
                _ => app.table.targets(),
            };
            return act(app, action, targets);
        }
        Action::Revoke => {
            let targets = match app.screen {
                Screen::Detail(id) => Targets::Ids(vec![id]),
                _ => app.table.targets(),
            };
            ask_revoke(app, targets);
        }
        Action::Link => {
            let id = match app.screen {
                Screen::Detail(id) => Some(id),
                _ => app.table.selected().map(|c| c.id),
            };
            match id.and_then(|id| app.table.get(id).map(|c| (id, c.tenant.clone()))) {
                Some((id, tenant)) => {
                    app.say(Tone::Info, format!("making a reconnect link for {tenant}…"));
                    return vec![Cmd::Link(id)];
                }
                None => app.say(Tone::Warn, "select a connection to make a link for"),
            }
        }
        Action::SupportBundle => match app.screen {
            Screen::Detail(id) => {
                app.say(Tone::Info, "writing a support bundle…");
                return vec![Cmd::SupportBundle(id)];
            }
            _ => app.say(
                Tone::Info,
                "open a connection (Enter) and press the key there: a bundle is about one connection",
            ),
        },
        Action::Audit => {
            app.screen = Screen::Audit;
            app.overlay = None;
            if app.audit.is_empty() && !app.audit.loading {
                app.audit.loading = true;
                return vec![Cmd::AuditPage(app.audit.query(None))];
            }
        }
        Action::Forecast => {
            // Asked afresh each time it opens: the forecast moves with the clock.
            app.screen = Screen::Forecast;
            app.overlay = None;
            app.forecast_scroll = 0;
            if !app.forecast_loading {
                app.forecast_loading = true;
                return vec![Cmd::Forecast];
            }
        }
        Action::Campaigns => {
            app.screen = Screen::Campaigns;
            app.overlay = None;
            app.campaigns_scroll = 0;
            app.campaigns_asked = None;
            let now = app.now;
            return campaigns_again(app, now);
        }
        Action::Help => {
            app.help_scroll = 0;
            app.overlay = match app.overlay {
                Some(Overlay::Help) => None,
                _ => Some(Overlay::Help),
            };
        }
        Action::Sort => {
            let s = app.table.sort();
            sort_by(app, s.key.next(), false);
        }
        Action::Reverse => {
            let s = app.table.sort();
            sort_by(app, s.key, !s.descending);
        }
        Action::AdvanceClock => {
            if app.session.demo {
                return vec![Cmd::AdvanceClock];
            }
        }
        Action::DemoIncident => {
            if app.session.demo {
                app.say(Tone::Info, "the demo's emulator is changing Intuit's answers…");
                return vec![Cmd::DemoIncident];
            }
        }
        Action::Export if app.screen == Screen::Audit => match app.audit.export_filter() {
            Ok(f) => {
                app.say(Tone::Info, "exporting the audit log as filtered…");
                return vec![Cmd::Export(f)];
            }
            Err(why) => app.say(Tone::Warn, why.0),
        },
        Action::Export => {}
    }
    // Scrolling to the end of the audit log asks for the next older page.
    more_audit(app)
}

/// The next older page of the audit log, when the cursor is at the end of what is read and
/// more remains.
fn more_audit(app: &mut App) -> Vec<Cmd> {
    if app.screen == Screen::Audit && app.overlay.is_none() && app.audit.wants_more() {
        if let Some(before) = app.audit.next_before() {
            app.audit.loading = true;
            return vec![Cmd::AuditPage(app.audit.query(Some(before)))];
        }
    }
    Vec::new()
}

pub(super) fn sort_by(app: &mut App, key: SortKey, descending: bool) {
    app.table.set_sort(Sort { key, descending });
    app.say(
        Tone::Info,
        format!(
            "sorted by {}{}",
            key.name(),
            if descending { ", descending" } else { "" }
        ),
    );
}

fn back(app: &mut App) {
    if let Some(p) = app.prompt.take() {
        // Esc on the filter line clears it: the way back to every row is one key.
        if p.kind == PromptKind::Filter {
            apply_filter(app, "");
        }
        if p.kind == PromptKind::Revoke {
            app.overlay = None;
            app.say(Tone::Info, "revoke cancelled; nothing was sent");
        }
        return;
    }
    if app.overlay.take().is_some() {
        return;
    }
    match app.screen {
        // As on the table: Esc first clears the filter, then leaves.
        Screen::Audit if !app.audit.filter_text.is_empty() => apply_filter(app, ""),
        Screen::Detail(_) | Screen::Audit | Screen::Forecast | Screen::Campaigns => {
            app.screen = Screen::Connections
        }
        Screen::Connections if !app.filter_text.is_empty() => apply_filter(app, ""),
        Screen::Connections if app.table.marked() > 0 => app.table.clear_marks(),
        Screen::Connections => app.message = None,
    }
}

fn confirm(app: &mut App) -> Vec<Cmd> {
    if let Some(prompt) = app.prompt.take() {
        return match prompt.kind {
            // The filter is already applied as typed; Enter closes the line, and a term
            // left out must not be forgotten silently.
            PromptKind::Filter => {
                report_filter_error(app);
                reload_audit(app)
            }
            PromptKind::Command => command::command(app, prompt.input.value()),
            PromptKind::Revoke => typed_revoke(app, prompt.input.value()),
        };
    }
    match app.overlay.take() {
        Some(Overlay::Confirm { action, targets }) => start(app, action, targets),
        other => {
            app.overlay = other;
            Vec::new()
        }
    }
}

/// The audit view narrows the pages already read as the filter is typed; once the line
/// closes, field terms that differ from those the pages were read with are asked of the
/// daemon, so that scrolling finds older matches without reading every page in between.
pub(super) fn reload_audit(app: &mut App) -> Vec<Cmd> {
    if app.screen != Screen::Audit || !app.audit.needs_reload() {
        return Vec::new();
    }
    app.audit.restart();
    app.audit.loading = true;
    vec![Cmd::AuditPage(app.audit.query(None))]
}

/// Refresh or verify: one connection at once, several (or a filter's) after a yes that
/// names the count.
fn act(app: &mut App, action: Action, targets: Targets) -> Vec<Cmd> {
    match &targets {
        t if t.is_empty() => {
            app.say(
                Tone::Warn,
                format!("nothing to {}: no row selected", action.name()),
            );
            Vec::new()
        }
        Targets::Ids(ids) if ids.len() == 1 => start(app, action, targets),
        _ => {
            app.overlay = Some(Overlay::Confirm { action, targets });
            Vec::new()
        }
    }
}

/// Revoke asks, whatever the count, for typed words: the realm id of one connection or the
/// count of several, so that a reflex key cannot end a customer's grant.
/// Marks every connection of the forecast's group pointed at (the one at the top of the
/// view), for a bulk action from the table.
fn mark_forecast_group(app: &mut App) {
    let Some(f) = &app.forecast else {
        app.say(Tone::Warn, "no forecast to mark from yet");
        return;
    };
    let now = app.now;
    let width = usize::from(app.size.0);
    let Some(g) = crate::views::forecast::group_at(f, now, width, app.forecast_scroll) else {
        app.say(Tone::Warn, "nothing to mark: the forecast is empty");
        return;
    };
    let groups = f.groups();
    let Some(group) = groups.get(g) else {
        return;
    };
    let rows: Vec<(i64, String)> = group
        .items
        .iter()
        .map(|i| (i.connection_id, i.tenant.clone()))
        .collect();
    let (title, in_group, count) = (group.cause.title(), rows.len(), group.count);
    let marked = app.table.mark_ids(rows);
    let beyond = if (in_group as u64) < count {
        format!(
            " (the {} shown of {}: filter the table for the rest)",
            in_group,
            qbo_core::text::thousands(count)
        )
    } else {
        String::new()
    };
    app.say(
        Tone::Ok,
        format!(
            "marked {in_group} connection{} of \"{title}\"{beyond}; {marked} marked in all: Esc, then act on them",
            if in_group == 1 { "" } else { "s" }
        ),
    );
}

fn ask_revoke(app: &mut App, targets: Targets) {
    let expected = match &targets {
        t if t.is_empty() => {
            app.say(Tone::Warn, "nothing to revoke: no row selected");
            return;
        }
        // One connection in hand: its realm id is typed. One marked from the forecast and
        // not in hand: its count, as for many.
        Targets::Ids(ids) if ids.len() == 1 => match app.table.get(ids[0]) {
            Some(c) => c.realm_id.clone(),
            None => "1".to_string(),
        },
        many => many.len().to_string(),
    };
    app.overlay = Some(Overlay::Revoke { targets, expected });
    app.prompt = Some(Prompt {
        kind: PromptKind::Revoke,
        input: Input::default(),
    });
}

fn typed_revoke(app: &mut App, typed: &str) -> Vec<Cmd> {
    let Some(Overlay::Revoke { targets, expected }) = app.overlay.take() else {
        return Vec::new();
    };
    if typed.trim() != expected {
        app.say(
            Tone::Error,
            format!(
                "typed {:?}, not {}: nothing was revoked",
                typed.trim(),
                if matches!(&targets, Targets::Ids(ids) if ids.len() == 1) {
                    "the realm id"
                } else {
                    "the count"
                }
            ),
        );
        return Vec::new();
    }
    start(app, Action::Revoke, targets)
}

fn start(app: &mut App, action: Action, targets: Targets) -> Vec<Cmd> {
    let request = app.next_request;
    app.next_request += 1;
    app.running.push(Running {
        request,
        action,
        count: targets.len(),
    });
    let what = match &targets {
        Targets::Ids(ids) if ids.len() == 1 => app
            .table
            .get(ids[0])
            .map_or_else(|| format!("connection {}", ids[0]), |c| c.tenant.clone()),
        Targets::Filter(f) if !f.filter.is_empty() => {
            format!(
                "the {} connections the filter {:?} selects",
                f.count, f.filter
            )
        }
        many => format!("{} connections", many.len()),
    };
    let verb = match action {
        Action::Refresh => "refreshing",
        Action::Revoke => "revoking",
        _ => "verifying",
    };
    app.say(Tone::Info, format!("{verb} {what}…"));
    app.table.clear_marks();
    vec![match action {
        Action::Refresh => Cmd::Refresh { request, targets },
        Action::Revoke => Cmd::Revoke { request, targets },
        _ => Cmd::Verify { request, targets },
    }]
}

#[cfg(test)]
mod tests;
