//! The campaigns view (`C`): each reconnect campaign (`link --where FILTER --csv FILE`)
//! with how its links stand: made, opened, completed, expired, still open. The counts are
//! asked for again every few seconds while the view is open: customers complete links on
//! their own time.

use crate::app::App;
use crate::safe;
use crate::theme::{Meaning, Theme};
use chrono::{DateTime, Utc};
use qbo_service::CampaignView;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// Below this width the author column gives way and the date loses its year.
const WIDE: usize = 100;

/// The columns as (heading, width), right-aligned numbers after the first two (three with
/// the author).
fn columns(width: usize) -> Vec<(&'static str, usize)> {
    let mut c = vec![("#", 4), ("MADE", if width >= WIDE { 16 } else { 11 })];
    if width >= WIDE {
        c.push(("BY", 12));
    }
    c.extend([
        ("LINKS", 5),
        ("OPENED", 6),
        ("COMPLETED", 9),
        ("EXPIRED", 7),
        ("OPEN", 5),
        ("ENDS", 6),
    ]);
    c
}

/// Narrower than this, the filter takes a line of its own under its campaign rather than
/// being cut.
const FILTER_ROOM: usize = 24;

/// Time until the campaign's links expire, in whole days or hours; `ended` once past.
fn ends(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let left = at - now;
    if left <= chrono::Duration::zero() {
        "ended".into()
    } else if left.num_days() >= 1 {
        format!("in {}d", left.num_days())
    } else {
        format!("in {}h", left.num_hours().max(1))
    }
}

/// One campaign's cells, as the columns lay them out.
fn cells(c: &CampaignView, now: DateTime<Utc>, width: usize) -> Vec<(String, Meaning)> {
    let made = if width >= WIDE {
        c.created_at.format("%Y-%m-%d %H:%M").to_string()
    } else {
        c.created_at.format("%m-%d %H:%M").to_string()
    };
    let mut v = vec![
        (format!("{}", c.id), Meaning::Title),
        (made, Meaning::Muted),
    ];
    if width >= WIDE {
        v.push((
            qbo_core::present::clip(&safe(&c.created_by), 11),
            Meaning::Muted,
        ));
    }
    let done = if c.completed == c.links && c.links > 0 {
        Meaning::Ok
    } else {
        Meaning::Normal
    };
    let expired = if c.expired > 0 {
        Meaning::Warn
    } else {
        Meaning::Normal
    };
    v.extend([
        (c.links.to_string(), Meaning::Normal),
        (c.opened.to_string(), Meaning::Normal),
        (c.completed.to_string(), done),
        (c.expired.to_string(), expired),
        (c.open.to_string(), Meaning::Normal),
        (ends(c.expires_at, now), Meaning::Muted),
    ]);
    v
}

/// A campaign's line (or the headings), then its filter: at the end of the line when
/// there is room for it, else on lines of its own under it, whole.
fn rows<'a>(
    parts: Vec<(String, Meaning)>,
    cols: &[(&str, usize)],
    filter: (String, Meaning),
    width: usize,
    theme: &Theme,
) -> Vec<Line<'a>> {
    let mut spans = Vec::new();
    let mut used = 0;
    let left = if cols.iter().any(|(h, _)| *h == "BY") {
        3
    } else {
        2
    };
    for (i, ((text, m), (_, w))) in parts.into_iter().zip(cols).enumerate() {
        let cell = if i < left {
            format!("{text:<w$} ")
        } else {
            format!("{text:>w$} ")
        };
        used += w + 1;
        spans.push(Span::styled(cell, theme.style(m)));
    }
    let room = width.saturating_sub(used + 1);
    if room >= FILTER_ROOM || filter.0.chars().count() <= room {
        spans.push(Span::styled(
            format!(" {}", qbo_core::present::clip(&filter.0, room)),
            theme.style(filter.1),
        ));
        return vec![Line::from(spans)];
    }
    let mut out = vec![Line::from(spans)];
    let indent = cols[0].1 + 1;
    for l in super::wrap_words(&filter.0, width.saturating_sub(indent).max(10)) {
        out.push(Line::styled(
            format!("{}{l}", " ".repeat(indent)),
            theme.style(filter.1),
        ));
    }
    out
}

pub fn draw(app: &App, theme: &Theme, now: DateTime<Utc>, frame: &mut Frame, area: Rect) {
    let width = usize::from(area.width);
    let mut lines = Vec::new();
    match &app.campaigns {
        None => lines.push(Line::styled(
            if app.campaigns_loading {
                "reading the campaigns…"
            } else {
                "no campaigns read yet"
            },
            theme.style(Meaning::Muted),
        )),
        Some(all) if all.is_empty() => {
            lines.push(Line::styled(
                "reconnect campaigns: none yet · Esc back",
                theme.style(Meaning::Title),
            ));
            lines.push(Line::raw(""));
            for l in super::wrap_words(
                "A campaign makes a reconnect link for every connection a filter selects, \
                 for the customer-success team's mail merge: qbo-console link --where \
                 'status:needs_reconnect' --csv FILE. Its links' progress shows here.",
                width.max(20),
            ) {
                lines.push(Line::styled(l, theme.style(Meaning::Muted)));
            }
        }
        Some(all) => {
            let title = format!(
                "reconnect campaigns: {} · counts as customers act · Esc back",
                all.len()
            );
            lines.push(Line::styled(
                qbo_core::present::clip(&title, width),
                theme.style(Meaning::Title),
            ));
            let cols = columns(width);
            let heads = cols
                .iter()
                .map(|(h, _)| (h.to_string(), Meaning::Header))
                .collect();
            lines.extend(rows(
                heads,
                &cols,
                ("FILTER".into(), Meaning::Header),
                width,
                theme,
            ));
            for c in all.iter().skip(app.campaigns_scroll) {
                lines.extend(rows(
                    cells(c, now, width),
                    &cols,
                    (safe(&c.filter), Meaning::Normal),
                    width,
                    theme,
                ));
            }
        }
    }
    frame.render_widget(Paragraph::new(lines), area);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_campaigns_end_reads_in_days_then_hours_then_ended() {
        let now = Utc::now();
        assert_eq!(ends(now + chrono::Duration::days(6), now), "in 6d");
        assert_eq!(ends(now + chrono::Duration::minutes(90), now), "in 1h");
        assert_eq!(ends(now + chrono::Duration::minutes(5), now), "in 1h");
        assert_eq!(ends(now, now), "ended");
    }

    #[test]
    fn the_columns_fit_eighty() {
        let used: usize = columns(80).iter().map(|(_, w)| w + 1).sum();
        assert!(used + 10 <= 80, "{used}");
        assert!(columns(120).iter().any(|(h, _)| *h == "BY"));
    }
}
