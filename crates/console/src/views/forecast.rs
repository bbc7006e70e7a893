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

/// Where a risk's reason and remedy start: under the tenant, clear of the date.
const INDENT: usize = 4;

/// `text` wrapped to `width` columns, each line after `INDENT` spaces: the reason and the
/// remedy stay in their column instead of wrapping to the screen's edge.
fn indented(text: &str, width: usize) -> Vec<String> {
    super::wrap_words(text, width.saturating_sub(INDENT).max(20))
        .into_iter()
        .map(|l| format!("{}{l}", " ".repeat(INDENT)))
        .collect()
}

fn item_lines<'a>(
    i: &ForecastItem,
    theme: &Theme,
    now: DateTime<Utc>,
    tenant_width: usize,
    width: usize,
) -> Vec<Line<'a>> {
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
    let mut lines = vec![Line::from(vec![
        Span::styled(format!("{glyph} "), theme.style(m)),
        Span::styled(format!("{} ", i.date.format("%Y-%m-%d")), theme.style(m)),
        Span::styled(format!("{when:>7}  "), theme.style(Meaning::Muted)),
        Span::styled(
            format!("{:<tenant_width$}  ", safe(&i.tenant)),
            theme.style(Meaning::Title),
        ),
        Span::styled(i.risk.as_str().to_string(), theme.style(m)),
    ])];
    lines.extend(indented(&safe(&i.reason), width).into_iter().map(Line::raw));
    lines.extend(
        indented(&format!("→ {}", safe(&i.action)), width)
            .into_iter()
            .map(|l| Line::styled(l, theme.style(Meaning::Muted))),
    );
    lines
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
                    "forecast: {} risks within {} days, the {} soonest shown · Esc back",
                    qbo_core::text::thousands(n),
                    f.days,
                    qbo_core::text::thousands(shown),
                ),
                n => format!(
                    "forecast: {n} risk{} within {} days, soonest first · Esc back",
                    if n == 1 { "" } else { "s" },
                    f.days
                ),
            };
            lines.push(Line::styled(title, theme.style(Meaning::Title)));
            // As wide as the longest tenant: a long name no longer pushes its risk aside.
            let tenant_width = f
                .items
                .iter()
                .map(|i| safe(&i.tenant).chars().count())
                .max()
                .unwrap_or(0);
            for i in &f.items {
                lines.extend(item_lines(
                    i,
                    theme,
                    now,
                    tenant_width,
                    usize::from(area.width),
                ));
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
