//! The forecast view (`F`): every risk that ends a connection within `[forecast] days`,
//! soonest first, with why and what saves it, then the last alerts and how their
//! delivery went.

use crate::app::App;
use crate::safe;
use crate::theme::{Meaning, Theme};
use chrono::{DateTime, Utc};
use qbo_service::{Forecast, ForecastItem};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

/// How soon counts as urgent: within a week the line is a warning, past its date an error.
const URGENT_DAYS: i64 = 7;

/// Where a group's remedy starts: under its heading's words.
const INDENT: usize = 4;

/// One line of the view as text pieces with their meanings, and the group it belongs to
/// (`None`: the title, the alerts), so the app can tell which group is on top.
pub struct Laid {
    pub parts: Vec<(String, Meaning)>,
    pub group: Option<usize>,
}

fn line(parts: Vec<(String, Meaning)>, group: Option<usize>) -> Laid {
    Laid { parts, group }
}

/// The groups, one heading each (the cause, its count and its one remedy), then one line
/// per connection: the date, how soon, the tenant and why, cut to the width with `…`.
pub fn layout(f: &Forecast, now: DateTime<Utc>, width: usize) -> Vec<Laid> {
    let mut out = Vec::new();
    let groups = f.groups();
    // As wide as the longest tenant, within reason: the reasons stay in one column.
    let tenant_width = f
        .items
        .iter()
        .map(|i| safe(&i.tenant).chars().count())
        .max()
        .unwrap_or(0)
        .clamp(6, 28);
    for (g, group) in groups.iter().enumerate() {
        out.push(line(Vec::new(), Some(g)));
        let shown = if (group.items.len() as u64) < group.count {
            format!(", the {} soonest shown", group.items.len())
        } else {
            String::new()
        };
        out.push(line(
            vec![
                (group.cause.title().to_string(), Meaning::Header),
                (
                    format!(" · {}{shown}", qbo_core::text::thousands(group.count)),
                    Meaning::Title,
                ),
            ],
            Some(g),
        ));
        for l in super::wrap_words(
            &format!("→ {}", group.cause.remedy()),
            width.saturating_sub(INDENT).max(20),
        ) {
            out.push(line(
                vec![(format!("{}{l}", " ".repeat(INDENT)), Meaning::Muted)],
                Some(g),
            ));
        }
        for i in &group.items {
            out.push(line(item_parts(i, now, tenant_width, width), Some(g)));
        }
    }
    out
}

fn item_parts(
    i: &ForecastItem,
    now: DateTime<Utc>,
    tenant_width: usize,
    width: usize,
) -> Vec<(String, Meaning)> {
    let days = (i.date - now).num_days();
    let (glyph, m) = if i.date <= now {
        ("✗", Meaning::Error)
    } else if days < URGENT_DAYS {
        ("!", Meaning::Warn)
    } else {
        ("·", Meaning::Normal)
    };
    let when = if i.date <= now {
        "now".to_string()
    } else {
        format!("in {days}d")
    };
    let lead = format!("  {glyph} {} {when:>7}  ", i.date.format("%Y-%m-%d"));
    let tenant = format!(
        "{:<tenant_width$}  ",
        qbo_core::present::clip(&safe(&i.tenant), tenant_width)
    );
    let room = width.saturating_sub(lead.chars().count() + tenant.chars().count());
    vec![
        (lead, m),
        (tenant, Meaning::Title),
        (
            qbo_core::present::clip(&safe(&i.reason), room),
            Meaning::Normal,
        ),
    ]
}

/// The group whose lines are at the top of the view when it is scrolled to `scroll` (the
/// first group while the title shows): the one `space` marks.
pub fn group_at(f: &Forecast, now: DateTime<Utc>, width: usize, scroll: usize) -> Option<usize> {
    group_on_top(&layout(f, now, width), scroll)
}

/// [`group_at`] of lines already laid out.
fn group_on_top(laid: &[Laid], scroll: usize) -> Option<usize> {
    // Line 0 is the title; the view's lines are the title then the layout.
    let top = scroll.saturating_sub(1);
    laid.iter()
        .skip(top)
        .find_map(|l| l.group)
        .or_else(|| laid.iter().rev().find_map(|l| l.group))
}

fn alert_lines<'a>(f: &Forecast, theme: &Theme) -> Vec<Line<'a>> {
    let mut v = vec![
        Line::raw(""),
        Line::styled("last alerts", theme.style(Meaning::Header)),
    ];
    if f.alerts.is_empty() {
        v.push(Line::styled(
            "  none sent (alerts go to each [[alerts.webhook]])",
            theme.style(Meaning::Muted),
        ));
    }
    for a in &f.alerts {
        let (glyph, m) = match a.state.as_str() {
            "delivered" => ("✓", Meaning::Ok),
            "failed" => ("✗", Meaning::Error),
            _ => ("…", Meaning::Warn),
        };
        let first_line = a.text.lines().next().unwrap_or_default();
        v.push(Line::from(vec![
            Span::styled(format!("{glyph} {:<9} ", a.state), theme.style(m)),
            Span::styled(
                format!("{} ", a.created_at.format("%Y-%m-%d %H:%M")),
                theme.style(Meaning::Muted),
            ),
            Span::styled(
                format!("{} ", safe(&a.webhook)),
                theme.style(Meaning::Muted),
            ),
            Span::raw(safe(first_line)),
        ]));
    }
    v
}

pub fn draw(app: &App, theme: &Theme, now: DateTime<Utc>, frame: &mut Frame, area: Rect) {
    let mut lines = Vec::new();
    match &app.forecast {
        None => lines.push(Line::styled(
            if app.forecast_loading {
                "reading the forecast…"
            } else {
                "no forecast read yet"
            },
            theme.style(Meaning::Muted),
        )),
        Some(f) => {
            let shown = f.items.len() as u64;
            let found = f.count.max(shown);
            let title = match found {
                0 => format!("forecast: nothing dies within {} days", f.days),
                n if shown < n => format!(
                    "forecast: {} risks within {} days ({} soonest shown) · space marks the group › · Esc back",
                    qbo_core::text::thousands(n),
                    f.days,
                    qbo_core::text::thousands(shown),
                ),
                n => format!(
                    "forecast: {n} risk{} within {} days by cause · space marks the group › · Esc back",
                    if n == 1 { "" } else { "s" },
                    f.days
                ),
            };
            let width = usize::from(area.width);
            // One line whatever the width: the groups' lines are counted from it.
            lines.push(Line::styled(
                qbo_core::present::clip(&title, width),
                theme.style(Meaning::Title),
            ));
            let laid = layout(f, now, width);
            let on_top = group_on_top(&laid, app.forecast_scroll);
            for l in laid {
                // The group `space` would mark is pointed at on its heading.
                let heading = l.parts.first().is_some_and(|(_, m)| *m == Meaning::Header);
                let mut spans = Vec::new();
                if heading {
                    let pointer = if l.group == on_top { "› " } else { "  " };
                    spans.push(Span::styled(pointer, theme.style(Meaning::Marked)));
                }
                spans.extend(
                    l.parts
                        .into_iter()
                        .map(|(t, m)| Span::styled(t, theme.style(m))),
                );
                lines.push(Line::from(spans));
            }
            lines.extend(alert_lines(f, theme));
        }
    }
    let scroll = app.forecast_scroll.min(lines.len().saturating_sub(1));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((u16::try_from(scroll).unwrap_or(u16::MAX), 0)),
        area,
    );
}
