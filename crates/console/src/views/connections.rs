//! The connections table. Only the rows on screen are built, whatever the table holds.
//! Columns are dropped by priority when the terminal is narrow; tenant and status stay.

use super::cells;
use crate::app::App;
use crate::safe;
use crate::theme::{condition_mark, Meaning, Theme};
use chrono::{DateTime, Utc};
use qbo_service::sort::SortKey;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Cell, Paragraph, Row, Table};
use ratatui::Frame;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Mark,
    Tenant,
    Status,
    Access,
    Window,
    Refresh,
    Env,
    Hard,
    Realm,
    Sync,
    Actor,
}

/// Display order, with width and priority (lower stays longer). The tenant is what a
/// support engineer reads first, so at 120 columns it keeps its room and the realm id
/// (searchable with `/`, shown in the detail) gives way first.
const COLUMNS: [(Col, &str, u16, u8); 11] = [
    (Col::Mark, "", 2, 0),
    (Col::Tenant, "TENANT", 12, 0),
    (Col::Realm, "REALM", 16, 6),
    (Col::Env, "ENV", 4, 3),
    (Col::Status, "STATUS", 17, 0),
    (Col::Access, "ACCESS", 15, 1),
    (Col::Window, "USED/LEFT", 11, 1),
    (Col::Hard, "5Y", 4, 4),
    (Col::Refresh, "LAST REFRESH", 18, 2),
    (Col::Sync, "LAST SYNC", 11, 3),
    (Col::Actor, "LAST ACTOR", 17, 5),
];

/// The room a tenant name gets when the terminal has it: most names whole (at 120 columns
/// the name matters more than the last actor or the realm id, which give way first).
const TENANT_WANTED: u16 = 24;
/// The most a tenant column grows to with room to spare.
const TENANT_MAX: u16 = 40;
/// The tenant's room on a narrow terminal (80 columns): two names that share their first
/// twelve characters still read apart.
const TENANT_NARROW: u16 = 16;
/// The status column: `✗ needs reconnect`, or in short words `↯ failing ×12`.
const STATUS_WIDTH: u16 = 17;
const STATUS_SHORT: u16 = 13;

/// The columns that fit in `width`, in display order, the tenant taking what is left.
fn fit(width: u16) -> Vec<(Col, &'static str, u16)> {
    let mut by_priority: Vec<usize> = (0..COLUMNS.len()).collect();
    by_priority.sort_by_key(|&i| COLUMNS[i].3);
    let choose = |tenant: u16, status: u16| {
        let mut chosen = vec![false; COLUMNS.len()];
        let mut used: u16 = 0;
        for &i in &by_priority {
            let w = match COLUMNS[i].0 {
                Col::Tenant => tenant,
                Col::Status => status,
                _ => COLUMNS[i].2,
            } + u16::from(used > 0);
            if used + w <= width {
                used += w;
                chosen[i] = true;
            }
        }
        (chosen, used)
    };
    // The tenant's wanted room, unless that would cost a column the narrowest terminals
    // keep (status, access, window, last refresh): then the status in its short words
    // (`✗ reconnect`) and the tenant in what that leaves, at least 12.
    let (wide, wide_used) = choose(TENANT_WANTED, STATUS_WIDTH);
    let (narrow, narrow_used) = choose(TENANT_NARROW, STATUS_SHORT);
    let essential_lost = (0..COLUMNS.len()).any(|i| COLUMNS[i].3 <= 2 && narrow[i] && !wide[i]);
    let (chosen, used, tenant, status) = if essential_lost {
        (narrow, narrow_used, TENANT_NARROW, STATUS_SHORT)
    } else {
        (wide, wide_used, TENANT_WANTED, STATUS_WIDTH)
    };
    let spare = width.saturating_sub(used);
    COLUMNS
        .iter()
        .zip(chosen)
        .filter(|(_, c)| *c)
        .map(|((col, title, w, _), _)| {
            let w = match col {
                // Past its wanted room the spare goes to the tenant, up to a limit; beyond
                // that it stays to the right.
                Col::Tenant => (tenant + spare).min(TENANT_MAX.max(tenant)),
                Col::Status => status,
                _ => *w,
            };
            (*col, *title, w)
        })
        .collect()
}

/// The sort a column stands for, to mark the column the table is sorted by.
fn sort_key(col: Col) -> Option<SortKey> {
    Some(match col {
        Col::Mark => return None,
        Col::Tenant => SortKey::Tenant,
        Col::Realm => SortKey::Realm,
        Col::Env => SortKey::Env,
        Col::Status => SortKey::Status,
        Col::Access => SortKey::Access,
        Col::Window => SortKey::Age,
        Col::Hard => SortKey::Hard,
        Col::Refresh => SortKey::LastRefresh,
        Col::Sync => SortKey::LastSync,
        Col::Actor => SortKey::Actor,
    })
}

pub fn draw(app: &App, theme: &Theme, now: DateTime<Utc>, frame: &mut Frame, area: Rect) {
    let cols = fit(area.width);
    let height = area.height.saturating_sub(1) as usize;
    if app.table.visible_len() == 0 {
        let text = if app.table.is_empty() {
            "no connections yet".to_string()
        } else {
            format!(
                "no connection matches the filter ({} hidden); esc clears it",
                app.table.len()
            )
        };
        frame.render_widget(
            Paragraph::new(text).style(theme.style(Meaning::Muted)),
            area,
        );
        return;
    }
    let offset = crate::table::visible_offset(
        app.table.offset,
        app.table.cursor(),
        height,
        app.table.visible_len(),
    );
    let sort = app.table.sort();
    let header = Row::new(cols.iter().map(|(col, title, _)| {
        let arrow = match sort_key(*col) {
            Some(k) if k == sort.key && sort.descending => " ↓",
            Some(k) if k == sort.key => " ↑",
            _ => "",
        };
        Cell::from(format!("{title}{arrow}"))
    }))
    .style(theme.style(Meaning::Header));
    let in_hand: std::collections::HashMap<usize, &qbo_service::ConnectionView> =
        app.table.window(offset, height).collect();
    let end = (offset + height).min(app.table.visible_len());
    let rows = (offset..end).map(|i| {
        let is_cursor = i == app.table.cursor();
        // A row not in hand yet (scrolled past the window, its answer on its way) keeps
        // its place, so the rows around it do not jump when it arrives.
        let Some(&c) = in_hand.get(&i) else {
            let cur = if is_cursor { "›" } else { " " };
            let row =
                Row::new([Cell::from(cur), Cell::from("…")]).style(theme.style(Meaning::Muted));
            return if is_cursor {
                row.style(theme.style(Meaning::Selected))
            } else {
                row
            };
        };
        let cells = cols.iter().map(|(col, _, width)| {
            // Every cell fits its column whole or says it was cut (`…`): ratatui would cut
            // `invalid_grant` to `invalid_` and a tenant mid-name without a sign.
            let fit = |text: String| qbo_core::present::clip(&text, usize::from(*width));
            let styled =
                |(text, m): (String, Meaning)| Cell::from(Span::styled(fit(text), theme.style(m)));
            let plain = |text: String| Cell::from(fit(text));
            match col {
                Col::Mark => {
                    let mark = if app.table.is_marked(c.id) {
                        "●"
                    } else {
                        " "
                    };
                    let cur = if is_cursor { "›" } else { " " };
                    Cell::from(Span::styled(
                        format!("{cur}{mark}"),
                        theme.style(Meaning::Marked),
                    ))
                }
                Col::Tenant => plain(safe(&c.tenant)),
                Col::Realm => plain(safe(&c.realm_id)),
                Col::Env => Cell::from(cells::env(c)),
                Col::Status => {
                    let m = condition_mark(c.condition());
                    let label = if *width < STATUS_WIDTH {
                        qbo_core::present::condition_label_short(c.status, c.consecutive_failures)
                    } else {
                        qbo_core::present::condition_label(c.status, c.consecutive_failures)
                    };
                    styled((label, m.meaning))
                }
                Col::Access => styled(cells::access(c, now)),
                Col::Window => styled(cells::window(c, now)),
                Col::Hard => styled(cells::hard(c, now)),
                Col::Refresh => styled(cells::last_refresh(c, now)),
                Col::Sync => styled(cells::last_sync(c, now)),
                Col::Actor => plain(safe(&cells::actor(c))),
            }
        });
        let row = Row::new(cells);
        if is_cursor {
            row.style(theme.style(Meaning::Selected))
        } else {
            row
        }
    });
    let widths: Vec<Constraint> = cols
        .iter()
        .map(|(_, _, w)| Constraint::Length(*w))
        .collect();
    frame.render_widget(
        Table::new(rows, widths).header(header).column_spacing(1),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrow_terminals_keep_tenant_status_and_the_clocks() {
        let at80: Vec<Col> = fit(80).into_iter().map(|c| c.0).collect();
        assert_eq!(
            at80,
            [
                Col::Mark,
                Col::Tenant,
                Col::Status,
                Col::Access,
                Col::Window,
                Col::Refresh
            ]
        );
        assert_eq!(fit(80).iter().map(|c| c.2).sum::<u16>() + 5, 80);
        let at200: Vec<Col> = fit(200).into_iter().map(|c| c.0).collect();
        assert_eq!(at200.len(), COLUMNS.len());
        let at60: Vec<Col> = fit(60).into_iter().map(|c| c.0).collect();
        assert!(at60.contains(&Col::Tenant) && at60.contains(&Col::Status));
    }

    #[test]
    fn at_120_columns_the_tenant_gets_room_before_the_last_actor_and_the_realm() {
        let at120 = fit(120);
        let tenant = at120.iter().find(|c| c.0 == Col::Tenant).unwrap().2;
        assert!(tenant >= 24, "{at120:?}");
        let cols: Vec<Col> = at120.iter().map(|c| c.0).collect();
        for kept in [
            Col::Status,
            Col::Access,
            Col::Window,
            Col::Refresh,
            Col::Sync,
        ] {
            assert!(cols.contains(&kept), "{kept:?} in {cols:?}");
        }
        assert_eq!(
            at120.iter().map(|c| c.2).sum::<u16>() + cols.len() as u16 - 1,
            120
        );
    }
}
