//! The connections on screen: a window of what the filter selects, in the chosen order,
//! as the daemon answered it (`Client::window`), with the table's counts. The console holds
//! a few screens of rows whatever the table's size, so it opens as fast on a million
//! connections as on ten; scrolling past the rows in hand, typing a filter, sorting or a
//! live change asks for the window again (`ask`).
//!
//! The cursor is a place among the matching rows; the selection is an id, so it stays on
//! the same connection while rows move (the daemon says where the selected one now is).
//! Marks are ids of rows seen on screen, or "everything the filter selects", kept as the
//! filter and the count the operator saw, for a bulk action the daemon checks again.

use crate::filter::Filter;
use qbo_service::sort::Sort;
use qbo_service::{Condition, ConnectionView, WindowPage, WindowQuery, MAX_WINDOW_ROWS};
use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct Table {
    /// The rows in hand, from `page_offset` among the matching ones.
    page: Vec<ConnectionView>,
    page_offset: usize,
    /// The filter and order the rows in hand were selected by.
    page_for: Option<(String, Sort)>,
    total: usize,
    matching: usize,
    counts: [usize; 7],
    sort: Sort,
    filter: Filter,
    filter_text: String,
    cursor: usize,
    selected: Option<i64>,
    /// First matching row on screen; kept by `scroll` so the cursor stays in view.
    pub offset: usize,
    /// Marked connections, with their rows when they were in hand (a group marked from the
    /// forecast brings ids and tenant names only: `marked_names`).
    marks: HashMap<i64, Option<ConnectionView>>,
    marked_names: HashMap<i64, String>,
    marked_filter: Option<MarkedFilter>,
    /// The last window asked for and not yet answered.
    asked: Option<WindowQuery>,
    /// Something changed that the rows in hand may not show: ask again.
    stale: bool,
    /// A window has been answered since the console opened.
    loaded: bool,
}

/// "Everything the filter selects", as the operator saw it when marking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkedFilter {
    pub filter: String,
    pub count: usize,
}

/// What a bulk action is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    /// These connections (marked, or the one selected).
    Ids(Vec<i64>),
    /// What the filter selects, which the operator saw as `count` connections: the daemon
    /// refuses if the filter selects another number when the action arrives.
    Filter(MarkedFilter),
}

impl Targets {
    pub fn len(&self) -> usize {
        match self {
            Targets::Ids(ids) => ids.len(),
            Targets::Filter(f) => f.count,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Table {
    /// The window to ask for, if the rows in hand do not cover `height` rows from the
    /// offset for the current filter and order, or something changed since. Asks for a
    /// screen above and one below too, so scrolling a little asks nothing.
    pub fn ask(&mut self, height: usize) -> Option<WindowQuery> {
        let h = height.max(1);
        let current = (self.filter_text.clone(), self.sort);
        let end = (self.offset + h).min(self.matching);
        let covered = self.page_for.as_ref() == Some(&current)
            && self.page_offset <= self.offset
            && self.page_offset + self.page.len() >= end;
        if covered && !self.stale && self.loaded {
            return None;
        }
        let q = WindowQuery {
            filter: self.filter_text.clone(),
            sort: self.sort,
            offset: self.offset.saturating_sub(h) as u64,
            rows: u32::try_from(3 * h)
                .unwrap_or(MAX_WINDOW_ROWS)
                .min(MAX_WINDOW_ROWS),
            selected: self.selected,
        };
        if !self.stale && self.asked.as_ref() == Some(&q) {
            return None;
        }
        self.stale = false;
        self.asked = Some(q.clone());
        Some(q)
    }

    /// The daemon's answer to `q`. Counts are the table's whatever the query; the rows are
    /// taken only if the filter and order are still those on screen.
    pub fn answer(&mut self, q: &WindowQuery, page: WindowPage) {
        if self.asked.as_ref() == Some(q) {
            self.asked = None;
        }
        self.total = page.total as usize;
        self.counts = [0; 7];
        for (c, n) in &page.counts {
            self.counts[c.index()] = *n as usize;
        }
        if q.filter != self.filter_text || q.sort != self.sort {
            return;
        }
        self.loaded = true;
        self.matching = page.matching as usize;
        self.page_offset = page.offset as usize;
        self.page = page.rows;
        self.page_for = Some((q.filter.clone(), q.sort));
        if let Some(m) = &self.marked_filter {
            if m.filter != self.filter_text {
                self.marked_filter = None;
            }
        }
        // Follow the selected connection if the operator did not move since asking.
        match (q.selected, page.selected_at) {
            (Some(id), Some(at)) if self.selected == Some(id) => self.cursor = at as usize,
            _ => {}
        }
        self.cursor = self.cursor.min(self.matching.saturating_sub(1));
        if let Some(c) = self.row(self.cursor) {
            self.selected = Some(c.id);
        }
    }

    /// Asks for the window again at the next chance (a live change, a missed feed, the
    /// minute that time-dependent filter terms move with).
    pub fn invalidate(&mut self) {
        self.stale = true;
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded
    }

    /// A connection as the daemon committed it: shown at once if it is in hand (and kept
    /// fresh if marked), and the window asked for again, since it may have moved.
    pub fn changed(&mut self, c: ConnectionView) {
        if let Some(m) = self.marks.get_mut(&c.id) {
            *m = Some(c.clone());
        }
        if let Some(row) = self.page.iter_mut().find(|r| r.id == c.id) {
            *row = c;
        }
        self.stale = true;
    }

    /// A connection read afresh (its detail): shown at once, without asking again.
    pub fn seen(&mut self, c: ConnectionView) {
        let stale = self.stale;
        self.changed(c);
        self.stale = stale;
    }

    /// The asked window will not be answered (the daemon went away, or refused).
    pub fn forget_asked(&mut self) {
        self.asked = None;
    }

    pub fn remove(&mut self, id: i64) {
        self.marks.remove(&id);
        self.marked_names.remove(&id);
        self.page.retain(|r| r.id != id);
        self.stale = true;
    }

    /// Filters as typed; the rows for it follow from the daemon.
    pub fn set_filter(&mut self, text: &str, filter: Filter) {
        self.filter_text = text.to_string();
        self.filter = filter;
    }

    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    pub fn set_sort(&mut self, sort: Sort) {
        self.sort = sort;
    }

    pub fn sort(&self) -> Sort {
        self.sort
    }

    /// Every connection.
    pub fn len(&self) -> usize {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Connections the filter selects.
    pub fn visible_len(&self) -> usize {
        self.matching
    }

    /// Connections per condition, in `Condition::ALL` order.
    pub fn counts(&self) -> [(Condition, usize); 7] {
        let mut out = [(Condition::Pending, 0); 7];
        for (i, c) in Condition::ALL.into_iter().enumerate() {
            out[i] = (c, self.counts[i]);
        }
        out
    }

    fn row(&self, i: usize) -> Option<&ConnectionView> {
        i.checked_sub(self.page_offset)
            .and_then(|k| self.page.get(k))
    }

    /// The matching rows in hand from `start`, at most `n`, with their places.
    pub fn window(&self, start: usize, n: usize) -> impl Iterator<Item = (usize, &ConnectionView)> {
        let from = start.max(self.page_offset);
        let to = start
            .saturating_add(n)
            .min(self.page_offset + self.page.len());
        (from..to.max(from)).filter_map(move |i| self.row(i).map(|c| (i, c)))
    }

    /// A connection in hand: on screen, or marked.
    pub fn get(&self, id: i64) -> Option<&ConnectionView> {
        self.page
            .iter()
            .find(|c| c.id == id)
            .or_else(|| self.marks.get(&id).and_then(Option::as_ref))
    }

    /// The tenant of a connection in hand, or marked from the forecast.
    pub fn tenant_of(&self, id: i64) -> Option<String> {
        self.get(id)
            .map(|c| c.tenant.clone())
            .or_else(|| self.marked_names.get(&id).cloned())
    }

    pub fn cursor(&self) -> usize {
        self.cursor
    }

    pub fn selected(&self) -> Option<&ConnectionView> {
        self.row(self.cursor)
    }

    pub fn select_index(&mut self, i: usize) {
        self.cursor = i.min(self.matching.saturating_sub(1));
        self.selected = self.selected().map(|c| c.id);
    }

    pub fn move_by(&mut self, delta: isize) {
        let i = self.cursor.saturating_add_signed(delta);
        self.select_index(i);
    }

    /// Moves `offset` the least needed for the cursor to show in `height` rows.
    pub fn scroll(&mut self, height: usize) {
        self.offset = visible_offset(self.offset, self.cursor, height, self.matching);
    }

    pub fn is_marked(&self, id: i64) -> bool {
        self.marked_filter.is_some() || self.marks.contains_key(&id)
    }

    /// How many connections are marked.
    pub fn marked(&self) -> usize {
        self.marked_filter
            .as_ref()
            .map_or(self.marks.len(), |m| m.count)
    }

    pub fn marked_filter(&self) -> Option<&MarkedFilter> {
        self.marked_filter.as_ref()
    }

    pub fn toggle_mark(&mut self) {
        if self.marked_filter.take().is_some() {
            return;
        }
        if let Some(c) = self.selected().cloned() {
            if self.marks.remove(&c.id).is_none() {
                self.marks.insert(c.id, Some(c));
            }
        }
    }

    /// Marks everything the filter selects (the daemon acts on the filter, not on a list of
    /// ids); if it is marked already, unmarks it.
    pub fn mark_all_visible(&mut self) {
        if self.marked_filter.take().is_some() {
            return;
        }
        self.marks.clear();
        self.marked_names.clear();
        if self.matching > 0 {
            self.marked_filter = Some(MarkedFilter {
                filter: self.filter_text.clone(),
                count: self.matching,
            });
        }
    }

    /// Marks these connections (a group of the forecast: ids and tenants), beside those
    /// marked already; a marked filter gives way to them. Returns how many are marked now.
    pub fn mark_ids(&mut self, rows: impl IntoIterator<Item = (i64, String)>) -> usize {
        self.marked_filter = None;
        for (id, tenant) in rows {
            self.marks.entry(id).or_insert(None);
            self.marked_names.insert(id, tenant);
        }
        self.marks.len()
    }

    pub fn clear_marks(&mut self) {
        self.marks.clear();
        self.marked_names.clear();
        self.marked_filter = None;
    }

    /// What a bulk action is about: the marked filter, the marked ids (by id), or the
    /// selected connection.
    pub fn targets(&self) -> Targets {
        if let Some(m) = &self.marked_filter {
            return Targets::Filter(m.clone());
        }
        if self.marks.is_empty() {
            return Targets::Ids(self.selected.into_iter().collect());
        }
        let mut ids: Vec<i64> = self.marks.keys().copied().collect();
        ids.sort_unstable();
        Targets::Ids(ids)
    }
}

/// The first row to draw so that `cursor` shows within `height` rows.
pub fn visible_offset(offset: usize, cursor: usize, height: usize, len: usize) -> usize {
    let height = height.max(1);
    let mut o = offset.min(len.saturating_sub(height));
    if cursor < o {
        o = cursor;
    } else if cursor >= o + height {
        o = cursor + 1 - height;
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use qbo_service::fixtures::{conn, every_state};

    fn thirty() -> Vec<ConnectionView> {
        (1..=30)
            .map(|i| conn(i, &format!("t{i:02}"), qbo_service::Status::Active))
            .collect()
    }

    fn page(q: &WindowQuery, rows: Vec<ConnectionView>, matching: u64) -> WindowPage {
        let selected_at = q
            .selected
            .and_then(|id| rows.iter().position(|c| c.id == id))
            .map(|p| p as u64 + q.offset);
        WindowPage {
            total: 20,
            counts: vec![(Condition::Active, 19), (Condition::Failing, 1)],
            matching,
            offset: q.offset,
            rows,
            selected_at,
            filter_error: None,
        }
    }

    fn answered(t: &mut Table, height: usize) -> WindowQuery {
        let q = t.ask(height).expect("a window is asked for");
        let rows: Vec<ConnectionView> = every_state()
            .into_iter()
            .skip(q.offset as usize)
            .take(q.rows as usize)
            .collect();
        t.answer(&q, page(&q, rows, every_state().len() as u64));
        q
    }

    #[test]
    fn a_window_is_asked_for_only_when_the_rows_in_hand_do_not_cover_the_screen() {
        let mut t = Table::default();
        let q = t.ask(3).expect("nothing in hand yet");
        assert_eq!((q.offset, q.rows), (0, 9));
        let all = thirty();
        let rows = |q: &WindowQuery| {
            all.iter()
                .skip(q.offset as usize)
                .take(q.rows as usize)
                .cloned()
                .collect()
        };
        t.answer(&q, page(&q, rows(&q), 30));
        assert_eq!(t.ask(3), None, "the screen is covered");
        assert_eq!(t.window(0, 3).count(), 3);
        t.move_by(4);
        t.scroll(3);
        assert_eq!(t.ask(3), None, "still within the rows in hand");
        t.move_by(10);
        t.scroll(3);
        assert_eq!(
            t.window(t.offset, 3).count(),
            0,
            "the rows there are not in hand"
        );
        let q = t.ask(3).expect("past the rows in hand");
        assert_eq!(q.offset, t.offset as u64 - 3);
        assert_eq!(t.ask(3), None, "asked once, not per frame");
        t.invalidate();
        assert!(t.ask(3).is_some(), "a change asks again");
    }

    #[test]
    fn an_answer_for_an_older_filter_updates_the_counts_only() {
        let mut t = Table::default();
        answered(&mut t, 3);
        let before: Vec<i64> = t.window(0, 3).map(|(_, c)| c.id).collect();
        let q = t.ask(3);
        assert!(q.is_none());
        t.set_filter("acme", Filter::parse("acme").unwrap());
        let old = WindowQuery {
            filter: String::new(),
            ..t.ask(3).unwrap()
        };
        t.answer(&old, page(&old, vec![every_state()[5].clone()], 1));
        assert_eq!(
            t.window(0, 3).map(|(_, c)| c.id).collect::<Vec<_>>(),
            before
        );
        assert_eq!(t.len(), 20);
    }

    #[test]
    fn marking_everything_the_filter_selects_is_kept_as_the_filter_and_its_count() {
        let mut t = Table::default();
        answered(&mut t, 3);
        t.select_index(0);
        assert_eq!(t.targets(), Targets::Ids(vec![every_state()[0].id]));
        t.mark_all_visible();
        assert_eq!(
            t.targets(),
            Targets::Filter(MarkedFilter {
                filter: String::new(),
                count: every_state().len()
            })
        );
        assert!(
            t.is_marked(12345),
            "every row the filter selects shows marked"
        );
        t.mark_all_visible();
        assert_eq!(t.marked(), 0);
        t.toggle_mark();
        t.move_by(1);
        t.toggle_mark();
        assert_eq!(t.marked(), 2);
        // A marked row stays known after it scrolls out of hand.
        let first = every_state()[0].id;
        t.remove(every_state()[3].id);
        assert!(t.get(first).is_some());
    }

    #[test]
    fn the_selection_follows_its_connection_to_where_the_daemon_says_it_is() {
        let mut t = Table::default();
        answered(&mut t, 3);
        t.select_index(1);
        let id = t.selected().unwrap().id;
        t.invalidate();
        let q = t.ask(3).unwrap();
        assert_eq!(q.selected, Some(id));
        // The daemon says it moved to the fifth place.
        let mut rows = every_state();
        let moved = rows.remove(1);
        rows.insert(4, moved);
        t.answer(&q, page(&q, rows, 9));
        assert_eq!(t.cursor(), 4);
        assert_eq!(t.selected().unwrap().id, id);
    }

    #[test]
    fn the_offset_moves_only_as_far_as_the_cursor_needs() {
        assert_eq!(visible_offset(0, 5, 10, 100), 0);
        assert_eq!(visible_offset(0, 12, 10, 100), 3);
        assert_eq!(visible_offset(20, 12, 10, 100), 12);
        assert_eq!(visible_offset(95, 99, 10, 100), 90);
    }
}
