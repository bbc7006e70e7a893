//! Drawing: pure functions of the state, the theme and the clock. Nothing here changes the
//! state, so a frame can be drawn into a test backend and compared.
//!
//! Every string that came from outside (tenants, companies, error details, accounts) goes
//! through `safe` before it reaches the terminal.

mod audit;
pub(crate) mod campaigns;
pub mod cells;
mod confirm;
mod connections;
mod detail;
pub(crate) mod forecast;
mod help;

use crate::app::{App, Link, Overlay, PromptKind, Screen, Tone};
use crate::keymap::{Action, View};
use crate::safe;
use crate::theme::{condition_mark, Meaning, Theme};
use chrono::{DateTime, Utc};

use qbo_service::{Condition, Endpoint, IncidentClass};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};
use ratatui::Frame;

pub use cells::ago;

/// Below this the console shows a message instead of a cramped table.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 10;

/// Where each part of the screen goes.
struct Areas {
    header: Rect,
    /// One line per open incident (at most two), under the header.
    banner: Rect,
    body: Rect,
    line: Rect,
    footer: Rect,
}

fn areas(app: &App, area: Rect) -> Areas {
    // A filter error gets a second line: it names the term and the valid forms.
    let line_height = match (&app.prompt, current_filter_error(app)) {
        (Some(_), Some(e)) => {
            let width = area.width.max(1) as usize;
            // One line more than the characters need: wrapping at words can take it.
            1 + (e.chars().count().div_ceil(width) + 1).min(6) as u16
        }
        // A long message (a file's path, an error with its fix) wraps rather than losing
        // its end at the screen's edge.
        (None, _) => match &app.message {
            Some(m) => wrapped_lines(&message_text(app, m), area.width).min(MAX_MESSAGE_LINES),
            None => 1,
        },
        _ => 1,
    };
    let banner_height = app.scheduler.incidents.len().min(MAX_BANNER_LINES) as u16;
    let [header, banner, body, line, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(banner_height),
        Constraint::Min(1),
        Constraint::Length(line_height),
        Constraint::Length(1),
    ])
    .areas(area);
    Areas {
        header,
        banner,
        body,
        line,
        footer,
    }
}

fn current_filter_error(app: &App) -> Option<&str> {
    match app.screen {
        Screen::Audit => app.audit.filter_error.as_deref(),
        _ => app.filter_error.as_deref(),
    }
}

fn screen_rect(app: &App) -> Rect {
    Rect::new(0, 0, app.size.0, app.size.1)
}

/// Rows of the connections (or audit) table that fit on screen.
pub fn table_height(app: &App) -> usize {
    // One line of the body is the column header.
    areas(app, screen_rect(app)).body.height.saturating_sub(1) as usize
}

/// The visible row at a screen position, for a mouse click.
pub fn row_at(app: &App, x: u16, y: u16) -> Option<usize> {
    let body = areas(app, screen_rect(app)).body;
    let first = body.y + 1;
    if x < body.x || x >= body.x + body.width || y < first || y >= body.y + body.height {
        return None;
    }
    let i = app.table.offset + (y - first) as usize;
    (i < app.table.visible_len()).then_some(i)
}

pub fn draw(app: &App, theme: &Theme, now: DateTime<Utc>, frame: &mut Frame, area: Rect) {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!(
            "terminal too small: need at least {MIN_WIDTH}×{MIN_HEIGHT} (now {}×{}); q quits",
            area.width, area.height
        );
        frame.render_widget(
            Paragraph::new(text)
                .style(theme.style(Meaning::Warn))
                .wrap(Wrap { trim: true }),
            area,
        );
        return;
    }
    match &app.link {
        Link::Unreachable(why) => return unreachable_screen(why, true, theme, frame, area),
        Link::Refused(why) => return unreachable_screen(why, false, theme, frame, area),
        _ => {}
    }
    let a = areas(app, area);
    header(app, theme, frame, a.header);
    banner(app, theme, frame, a.banner);
    match app.screen {
        Screen::Connections => connections::draw(app, theme, now, frame, a.body),
        Screen::Detail(id) => detail::draw(app, theme, now, id, frame, a.body),
        Screen::Audit => audit::draw(app, theme, now, frame, a.body),
        Screen::Forecast => forecast::draw(app, theme, now, frame, a.body),
        Screen::Campaigns => campaigns::draw(app, theme, now, frame, a.body),
    }
    status_line(app, theme, frame, a.line);
    footer(app, theme, frame, a.footer);
    match &app.overlay {
        Some(Overlay::Help) => help::draw(app, theme, frame, a.body),
        Some(Overlay::Confirm { action, targets }) => {
            confirm::draw(app, theme, *action, targets, frame, a.body)
        }
        Some(Overlay::AuditEvent) => audit::draw_event(app, theme, frame, a.body),
        Some(Overlay::Revoke { targets, expected }) => {
            confirm::draw_typed(app, theme, targets, expected, frame, a.body)
        }
        None => {}
    }
}

/// The one screen shown instead of the table while no daemon answers, or when the daemon
/// refused the console: what happened and what to do (the error's own text names the fix),
/// and whether the console keeps trying.
fn unreachable_screen(why: &str, retrying: bool, theme: &Theme, frame: &mut Frame, area: Rect) {
    let next = if retrying {
        "the console connects by itself as soon as the daemon answers · q quits"
    } else {
        "q quits"
    };
    let lines = vec![
        Line::styled("qbo-console", theme.style(Meaning::Title)),
        Line::raw(""),
        Line::styled(format!("✗ {}", safe(why)), theme.style(Meaning::Error)),
        Line::raw(""),
        Line::styled(next, theme.style(Meaning::Muted)),
    ];
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}

/// A box in the middle of `area`, cleared, for an overlay.
fn popup(frame: &mut Frame, area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    let r = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    frame.render_widget(Clear, r);
    r
}

fn width_of(spans: &[Span]) -> usize {
    spans.iter().map(|s| s.width()).sum()
}

/// Title, counts per status, the daemon's state and who is at the keyboard. Counts lose
/// their words before anything else when the line is short.
fn header(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    // Worst first, the order the table sorts them in.
    let order = [
        Condition::NeedsReconnect,
        Condition::Failing,
        Condition::Expiring,
        Condition::Active,
        Condition::Revoking,
        Condition::Pending,
        Condition::Revoked,
    ];
    let all = app.table.counts();
    let counts: Vec<_> = order
        .into_iter()
        .filter_map(|s| all.iter().find(|(x, n)| *x == s && *n > 0).copied())
        .collect();
    // How much each count says: the whole word, its last word ("✗12 reconnect"), or the
    // glyph alone when the terminal is narrow (the help explains the glyphs).
    #[derive(Clone, Copy, PartialEq)]
    enum Said {
        Words,
        Short,
        Glyphs,
    }
    let count_spans = |said: Said| {
        let mut v = Vec::new();
        for (s, n) in &counts {
            let m = condition_mark(*s);
            let text = match said {
                Said::Words => format!("{} {n} {}", m.glyph, m.word),
                Said::Short => format!(
                    "{}{n} {}",
                    m.glyph,
                    m.word.rsplit(' ').next().unwrap_or(m.word)
                ),
                Said::Glyphs => format!("{}{n}", m.glyph),
            };
            v.push(Span::styled(text, theme.style(m.meaning)));
            v.push(Span::raw(" "));
        }
        v
    };
    let daemon = match (&app.link, app.session.embedded) {
        (Link::Lost(_) | Link::Unreachable(_) | Link::Refused(_), _) => Span::styled(
            "✗ daemon connection lost, retrying",
            theme.style(Meaning::Error),
        ),
        (Link::Connecting, _) => Span::styled("… connecting", theme.style(Meaning::Muted)),
        (Link::Live, true) => Span::styled("embedded", theme.style(Meaning::Muted)),
        (Link::Live, false) if app.scheduler.audit_blocked.is_some() => {
            let seq = app
                .scheduler
                .audit_blocked
                .as_ref()
                .map_or(0, |b| b.first_seq);
            Span::styled(
                format!(
                    "✗ audit log blocked at {seq}: refreshes stopped; admin: audit quarantine --from {seq}"
                ),
                theme.style(Meaning::Error),
            )
        }
        (Link::Live, false) if !app.session.scheduler_running => {
            Span::styled("⚠ scheduler stopped", theme.style(Meaning::Warn))
        }
        (Link::Live, false) if !app.session.paused.is_empty() => Span::styled(
            format!(
                "⚠ paused: {}",
                app.session
                    .paused
                    .iter()
                    .map(|e| e.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            theme.style(Meaning::Warn),
        ),
        (Link::Live, false) => Span::styled("✓ scheduler running", theme.style(Meaning::Ok)),
    };
    let who = Span::styled(
        format!(
            "{} ({})",
            safe(&app.session.account),
            app.session.role.as_str()
        ),
        theme.style(Meaning::Title),
    );
    let shown = if app.table.filter().is_empty() {
        format!("{} connections ", app.table.len())
    } else {
        format!("{} of {} shown ", app.table.visible_len(), app.table.len())
    };
    let shown_short = if app.table.filter().is_empty() {
        format!("{}: ", app.table.len())
    } else {
        format!("{}/{} shown: ", app.table.visible_len(), app.table.len())
    };
    let right = vec![daemon, Span::raw(" │ "), who];
    let total = area.width as usize;
    let title = || Span::styled("qbo-console ", theme.style(Meaning::Title));
    // From the most to the least said, the first that fits.
    let candidates = [
        (vec![title(), Span::raw(shown.clone())], Said::Words),
        (vec![title(), Span::raw(shown.clone())], Said::Short),
        (vec![Span::raw(shown.clone())], Said::Short),
        (vec![Span::raw(shown_short)], Said::Short),
        (vec![title(), Span::raw(shown.clone())], Said::Glyphs),
        (vec![Span::raw(shown)], Said::Glyphs),
        (vec![], Said::Glyphs),
    ];
    let mut left = Vec::new();
    for (mut c, said) in candidates {
        c.extend(count_spans(said));
        left = c;
        if width_of(&left) + width_of(&right) < total {
            break;
        }
    }
    let pad = total.saturating_sub(width_of(&left) + width_of(&right));
    let mut spans = left;
    spans.push(Span::raw(" ".repeat(pad)));
    spans.extend(right);
    frame.render_widget(
        Paragraph::new(Line::from(spans)).style(theme.style(Meaning::Header)),
        area,
    );
}

/// Open incidents get a line each under the header, this many at most (the rest are
/// counted on the last).
const MAX_BANNER_LINES: usize = 2;

/// The open incidents, one line each: what, where, since when, how many, and where to
/// read more. Our own credentials are an error (we must act); Intuit's are a warning (we
/// wait, the scheduler probes).
pub(crate) fn banner_lines(app: &App, width: usize) -> Vec<(String, Meaning)> {
    let open = &app.scheduler.incidents;
    let mut out = Vec::new();
    for (i, inc) in open.iter().enumerate().take(MAX_BANNER_LINES) {
        let more = if i + 1 == MAX_BANNER_LINES && open.len() > MAX_BANNER_LINES {
            format!(
                " (+{} more: qbo-console incidents)",
                open.len() - MAX_BANNER_LINES
            )
        } else {
            String::new()
        };
        let since = inc.started_at.format("%H:%M UTC");
        let (id, env, n) = (inc.id, inc.environment, inc.connections);
        let what = match inc.class {
            IncidentClass::ServerError => "answering 5xx",
            IncidentClass::RateLimited => "rate limiting (429)",
            IncidentClass::Unreachable => "timing out",
            IncidentClass::Garbled => "answering garbage",
            IncidentClass::InvalidClient => "rejecting our credentials",
        };
        // From the most to the least said, the first that fits.
        let candidates = if inc.class.is_ours() {
            vec![
                format!("✗ incident {id} · Intuit rejects OUR {env} client credentials since {since} · fix [environments.{env}] and restart{more}"),
                format!("✗ incident {id}: OUR {env} credentials rejected · fix [environments.{env}]{more}"),
            ]
        } else {
            // The token endpoint's is the common case and goes by the environment alone;
            // the others say which service, or support would read a refresh outage.
            let scope = match inc.endpoint {
                Endpoint::Token => env.to_string(),
                Endpoint::Accounting => format!("{env} accounting API"),
                Endpoint::Revoke => format!("{env} revoke"),
            };
            let held = match inc.endpoint {
                Endpoint::Accounting => "health checks held, refreshes go on",
                Endpoint::Revoke => "revoke retries held",
                Endpoint::Token => "probing",
            };
            vec![
                format!("⚠ Intuit incident {id} · {env} {} endpoint {what} since {since} · {n} connections failed · {held} · incidents show {id}{more}", inc.endpoint),
                format!("⚠ Intuit incident {id}: {scope} {what} since {since} · {n} failed · incidents show {id}{more}"),
                format!("⚠ Intuit incident {id}: {scope} {what} · {n} failed{more}"),
            ]
        };
        let text = candidates
            .iter()
            .find(|c| c.chars().count() <= width)
            .cloned()
            .unwrap_or_else(|| candidates[candidates.len() - 1].clone());
        let m = if inc.class.is_ours() {
            Meaning::Error
        } else {
            Meaning::Warn
        };
        out.push((qbo_core::present::clip(&text, width), m));
    }
    out
}

fn banner(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    if area.height == 0 {
        return;
    }
    let lines: Vec<Line> = banner_lines(app, usize::from(area.width))
        .into_iter()
        .map(|(t, m)| Line::styled(t, theme.style(m)))
        .collect();
    frame.render_widget(Paragraph::new(lines), area);
}

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/// A message wraps onto at most this many lines; the table keeps the rest of the screen.
const MAX_MESSAGE_LINES: u16 = 4;

/// The message line as drawn: the spinner while actions run, the tone's glyph, the text.
fn message_text(app: &App, m: &crate::app::Message) -> String {
    let glyph = match m.tone {
        Tone::Info => "",
        Tone::Ok => "✓ ",
        Tone::Warn => "⚠ ",
        Tone::Error => "✗ ",
    };
    let spinner = if app.running.is_empty() { "" } else { "⠋ " };
    format!("{spinner}{glyph}{}", safe(&m.text))
}

/// Lines `text` takes when wrapped at words to `width` columns, as `Wrap` does (a word
/// longer than the line is broken).
fn wrapped_lines(text: &str, width: u16) -> u16 {
    let width = width.max(1) as usize;
    let (mut lines, mut used) = (1usize, 0usize);
    for word in text.split(' ') {
        let w = word.chars().count();
        if used > 0 && used + 1 + w <= width {
            used += 1 + w;
            continue;
        }
        if used > 0 {
            lines += 1;
        }
        // A word longer than the line is broken over as many as it needs.
        lines += w.saturating_sub(1) / width;
        used = w - (w.saturating_sub(1) / width) * width;
    }
    lines.min(u16::MAX as usize) as u16
}

/// `text` wrapped at words into lines of at most `room` columns (a longer word keeps a line
/// of its own), for text drawn in a column with a hanging indent.
pub(super) fn wrap_words(text: &str, room: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > room {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push(line);
    out
}

/// The prompt while typing, else the last message (with a spinner while actions run),
/// else the filter in force.
fn status_line(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    if let Some(p) = &app.prompt {
        let sigil = match p.kind {
            PromptKind::Filter => "/",
            PromptKind::Command => ":",
            PromptKind::Revoke => ">",
        };
        let width = area.width.saturating_sub(1) as usize;
        let scroll = p.input.visual_scroll(width);
        let mut lines = vec![Line::from(vec![
            Span::styled(sigil, theme.style(Meaning::Key)),
            Span::raw(safe(p.input.value())),
        ])];
        if p.kind == PromptKind::Filter {
            if let Some(e) = current_filter_error(app) {
                lines.push(Line::styled(safe(e), theme.style(Meaning::Error)));
            }
        }
        frame.render_widget(
            Paragraph::new(lines)
                .scroll((0, scroll as u16))
                .wrap(Wrap { trim: false }),
            area,
        );
        let x = area.x + 1 + (p.input.visual_cursor().saturating_sub(scroll)) as u16;
        frame.set_cursor_position((x.min(area.x + area.width.saturating_sub(1)), area.y));
        return;
    }
    let mut spans = Vec::new();
    if !app.running.is_empty() {
        let frame_glyph = SPINNER[(app.ticks % SPINNER.len() as u64) as usize];
        spans.push(Span::styled(
            format!("{frame_glyph} "),
            theme.style(Meaning::Key),
        ));
    }
    if let Some(m) = &app.message {
        let (glyph, meaning) = match m.tone {
            Tone::Info => ("", Meaning::Normal),
            Tone::Ok => ("✓ ", Meaning::Ok),
            Tone::Warn => ("⚠ ", Meaning::Warn),
            Tone::Error => ("✗ ", Meaning::Error),
        };
        spans.push(Span::styled(
            format!("{glyph}{}", safe(&m.text)),
            theme.style(meaning),
        ));
    } else if !app.filter_text.is_empty() && app.screen != Screen::Audit {
        spans.push(Span::styled(
            format!("filter: {}", safe(&app.filter_text)),
            theme.style(Meaning::Muted),
        ));
    }
    frame.render_widget(
        Paragraph::new(Line::from(spans)).wrap(Wrap { trim: false }),
        area,
    );
}

/// The keys that apply now, from the keymap, without those the role may not use.
fn footer(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let view = app.view();
    let mut spans = Vec::new();
    let marked = app.table.marked();
    if marked > 0 && view == View::Connections {
        spans.push(Span::styled(
            format!("● {marked} marked  "),
            theme.style(Meaning::Marked),
        ));
    }
    let mut entries = app.keymap.footer(view, app.role(), app.session.demo);
    let room = (area.width as usize).saturating_sub(width_of(&spans));
    let width = |e: &[(String, Action)]| -> usize {
        e.iter()
            .map(|(k, a)| k.chars().count() + a.short().chars().count() + 3)
            .sum()
    };
    // Drop the least needed keys until the rest fit; help and quit stay.
    while width(&entries) > room {
        let Some(i) = (0..entries.len())
            .filter(|&i| entries[i].1.footer_rank() > 0)
            .max_by_key(|&i| (entries[i].1.footer_rank(), i))
        else {
            break;
        };
        entries.remove(i);
    }
    for (k, a) in entries {
        spans.push(Span::styled(k, theme.style(Meaning::Key)));
        spans.push(Span::styled(
            format!(" {}  ", a.short()),
            theme.style(Meaning::Muted),
        ));
    }
    frame.render_widget(
        Paragraph::new(Line::from(spans)).wrap(Wrap { trim: false }),
        area,
    );
}

#[cfg(test)]
mod tests;
