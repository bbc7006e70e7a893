//! The connections the console holds, in their sorted and filtered order, with the
//! selection and the marks. Built for 100,000 rows: rows are kept once and referred to by
//! index; `order` holds every row in sort order and `visible` the filtered subset of it, so
//! a filter keystroke is one pass over the rows and never a sort, and one live change moves
//! one index. The selection is an id, so it stays on the same connection while rows move.

use crate::filter::Filter;
use chrono::{DateTime, Utc};
use qbo_service::sort::Sort;
use qbo_service::{ConnectionView, Status};
use std::collections::{HashMap, HashSet};

#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<ConnectionView>,
    /// Per row, the lower-cased text free words search (`Filter::haystack`).
    hay: Vec<String>,
    slot_of: HashMap<i64, usize>,
    order: Vec<usize>,
    visible: Vec<usize>,
    sort: Sort,
    filter: Filter,
    counts: [usize; 6],
    /// Live connections whose refreshes keep failing.
    failing: usize,
    cursor: usize,
    selected: Option<i64>,
    /// First visible row on screen; kept by `scroll` so the cursor stays in view.
    pub offset: usize,
    marks: HashSet<i64>,
}

fn status_index(s: Status) -> usize {
    Status::ALL.iter().position(|x| *x == s).unwrap_or(0)
}

fn is_failing(c: &ConnectionView) -> bool {
    c.status.is_live() && c.consecutive_failures > 0
}

impl Table {
    pub fn replace(&mut self, rows: Vec<ConnectionView>, now: DateTime<Utc>) {
        self.hay = rows.iter().map(Filter::haystack).collect();
        self.slot_of = rows.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
        self.counts = [0; 6];
        for c in &rows {
            self.counts[status_index(c.status)] += 1;
        }
        self.failing = rows.iter().filter(|c| is_failing(c)).count();
        self.rows = rows;
        self.marks.retain(|id| self.slot_of.contains_key(id));
        self.resort(now);
    }

    fn resort(&mut self, now: DateTime<Utc>) {
        let sort = self.sort;
        let rows = &self.rows;
        self.order = (0..rows.len()).collect();
        self.order
            .sort_unstable_by(|&a, &b| sort.compare(&rows[a], &rows[b]));
        self.refilter(now);
    }

    /// One pass over the rows in order.
    pub fn refilter(&mut self, now: DateTime<Utc>) {
        let (rows, hay, filter) = (&self.rows, &self.hay, &self.filter);
        self.visible.clear();
        self.visible.extend(
            self.order
                .iter()
                .copied()
                .filter(|&s| filter.matches_with(&rows[s], &hay[s], now)),
        );
        self.follow_selection();
    }

    /// A connection as the daemon committed it: new, or replacing the one with its id.
    pub fn upsert(&mut self, c: ConnectionView, now: DateTime<Utc>) {
        let slot = match self.slot_of.get(&c.id) {
            Some(&slot) => {
                self.counts[status_index(self.rows[slot].status)] -= 1;
                self.failing -= usize::from(is_failing(&self.rows[slot]));
                self.order.retain(|&s| s != slot);
                self.visible.retain(|&s| s != slot);
                self.hay[slot] = Filter::haystack(&c);
                self.rows[slot] = c;
                slot
            }
            None => {
                self.slot_of.insert(c.id, self.rows.len());
                self.hay.push(Filter::haystack(&c));
                self.rows.push(c);
                self.rows.len() - 1
            }
        };
        self.counts[status_index(self.rows[slot].status)] += 1;
        self.failing += usize::from(is_failing(&self.rows[slot]));
        let (rows, sort) = (&self.rows, self.sort);
        let place = |list: &Vec<usize>| {
            list.partition_point(|&s| sort.compare(&rows[s], &rows[slot]).is_lt())
        };
        let at = place(&self.order);
        self.order.insert(at, slot);
        if self
            .filter
            .matches_with(&self.rows[slot], &self.hay[slot], now)
        {
            let at = place(&self.visible);
            self.visible.insert(at, slot);
        }
        self.follow_selection();
    }

    pub fn remove(&mut self, id: i64) {
        let Some(slot) = self.slot_of.remove(&id) else {
            return;
        };
        self.counts[status_index(self.rows[slot].status)] -= 1;
        self.failing -= usize::from(is_failing(&self.rows[slot]));
        self.order.retain(|&s| s != slot);
        self.visible.retain(|&s| s != slot);
        self.marks.remove(&id);
        let last = self.rows.len() - 1;
        self.rows.swap_remove(slot);
        self.hay.swap_remove(slot);
        if slot != last {
            // The last row moved into the freed slot.
            self.slot_of.insert(self.rows[slot].id, slot);
            for s in self.order.iter_mut().chain(self.visible.iter_mut()) {
                if *s == last {
                    *s = slot;
                }
            }
        }
        self.follow_selection();
    }

    pub fn set_filter(&mut self, filter: Filter, now: DateTime<Utc>) {
        self.filter = filter;
        self.refilter(now);
    }

    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    pub fn set_sort(&mut self, sort: Sort, now: DateTime<Utc>) {
        self.sort = sort;
        self.resort(now);
    }

    pub fn sort(&self) -> Sort {
        self.sort
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn visible_len(&self) -> usize {
        self.visible.len()
    }

    /// Connections per status, in `Status::ALL` order.
    pub fn counts(&self) -> [(Status, usize); 6] {
        let mut out = [(Status::Pending, 0); 6];
        for (i, s) in Status::ALL.into_iter().enumerate() {
            out[i] = (s, self.counts[i]);
        }
        out
    }

    /// Live connections whose refreshes keep failing.
    pub fn failing(&self) -> usize {
        self.failing
    }

    /// The visible rows from `start`, at most `n` of them.
    pub fn window(&self, start: usize, n: usize) -> impl Iterator<Item = &ConnectionView> {
        self.visible
            .iter()
            .skip(start)
            .take(n)
            .map(|&s| &self.rows[s])
    }

    pub fn get(&self, id: i64) -> Option<&ConnectionView> {
        self.slot_of.get(&id).map(|&s| &self.rows[s])
    }

    pub fn cursor(&self) -> usize {
        self.cursor
    }

    pub fn selected(&self) -> Option<&ConnectionView> {
        self.visible.get(self.cursor).map(|&s| &self.rows[s])
    }

    /// Keeps the cursor on the selected connection wherever it moved; if the filter hid
    /// it, the cursor stays at the same height.
    fn follow_selection(&mut self) {
        if let Some(id) = self.selected {
            if let Some(slot) = self.slot_of.get(&id) {
                if let Some(i) = self.visible.iter().position(|s| s == slot) {
                    self.cursor = i;
                    return;
                }
            }
        }
        self.cursor = self.cursor.min(self.visible.len().saturating_sub(1));
        self.selected = self.selected().map(|c| c.id);
    }

    pub fn select_index(&mut self, i: usize) {
        self.cursor = i.min(self.visible.len().saturating_sub(1));
        self.selected = self.selected().map(|c| c.id);
    }

    pub fn move_by(&mut self, delta: isize) {
        let i = self.cursor.saturating_add_signed(delta);
        self.select_index(i);
    }

    /// Moves `offset` the least needed for the cursor to show in `height` rows.
    pub fn scroll(&mut self, height: usize) {
        self.offset = visible_offset(self.offset, self.cursor, height, self.visible.len());
    }

    pub fn is_marked(&self, id: i64) -> bool {
        self.marks.contains(&id)
    }

    pub fn marked(&self) -> usize {
        self.marks.len()
    }

    pub fn toggle_mark(&mut self) {
        if let Some(id) = self.selected {
            if !self.marks.remove(&id) {
                self.marks.insert(id);
            }
        }
    }

    /// Marks every row the filter shows; if all are marked already, unmarks them.
    pub fn mark_all_visible(&mut self) {
        let ids: Vec<i64> = self.visible.iter().map(|&s| self.rows[s].id).collect();
        if ids.iter().all(|id| self.marks.contains(id)) {
            for id in ids {
                self.marks.remove(&id);
            }
        } else {
            self.marks.extend(ids);
        }
    }

    pub fn clear_marks(&mut self) {
        self.marks.clear();
    }

    /// The marked ids in table order, or the selected one when nothing is marked.
    pub fn targets(&self) -> Vec<i64> {
        if self.marks.is_empty() {
            return self.selected.into_iter().collect();
        }
        self.order
            .iter()
            .map(|&s| self.rows[s].id)
            .filter(|id| self.marks.contains(id))
            .collect()
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
    use qbo_service::fixtures::{at, conn, every_state, NOW};
    use qbo_service::sort::SortKey;

    fn now() -> DateTime<Utc> {
        at(NOW)
    }

    fn table() -> Table {
        let mut t = Table::default();
        t.replace(every_state(), now());
        t
    }

    fn names(t: &Table) -> Vec<String> {
        t.window(0, usize::MAX).map(|c| c.tenant.clone()).collect()
    }

    #[test]
    fn the_selection_follows_its_row_through_a_resort_and_a_live_change() {
        let mut t = table();
        t.select_index(3);
        let chosen = t.selected().unwrap().tenant.clone();
        t.set_sort(
            Sort {
                key: SortKey::Tenant,
                descending: true,
            },
            now(),
        );
        assert_eq!(t.selected().unwrap().tenant, chosen);
        // A change elsewhere moves rows around it; it stays selected.
        let mut acme = t.get(1).unwrap().clone();
        acme.tenant = "zzz-acme".into();
        t.upsert(acme, now());
        assert_eq!(t.selected().unwrap().tenant, chosen);
        assert_eq!(names(&t)[0], "zzz-acme");
    }

    #[test]
    fn a_changed_row_moves_to_its_place_in_the_order() {
        let mut t = table();
        let mut umbrella = t.get(2).unwrap().clone();
        umbrella.status = Status::NeedsReconnect;
        t.upsert(umbrella, now());
        assert_eq!(&names(&t)[..2], ["globex", "umbrella"]);
        let counts = t.counts();
        assert!(counts.contains(&(Status::NeedsReconnect, 2)));
        assert_eq!(t.failing(), 1);
        let mut initech = t.get(4).unwrap().clone();
        initech.consecutive_failures = 0;
        t.upsert(initech, now());
        assert_eq!(t.failing(), 0);
        t.remove(3);
        assert!(counts.contains(&(Status::NeedsReconnect, 2)));
        assert!(t.counts().contains(&(Status::NeedsReconnect, 1)));
    }

    #[test]
    fn a_new_row_is_shown_only_if_the_filter_matches() {
        let mut t = table();
        t.set_filter(Filter::parse("env:sandbox").unwrap(), now());
        t.upsert(conn(50, "new-prod", Status::Pending), now());
        let mut sandbox = conn(51, "new-sandbox", Status::Pending);
        sandbox.environment = qbo_service::Environment::Sandbox;
        t.upsert(sandbox, now());
        assert_eq!(names(&t), ["umbrella", "new-sandbox", "hooli"]);
        assert_eq!(t.len(), 11);
    }

    #[test]
    fn removing_a_row_keeps_the_others_addressable() {
        let mut t = table();
        t.remove(1);
        t.remove(9);
        assert!(t.get(1).is_none());
        assert_eq!(t.len(), 7);
        for c in every_state().into_iter().filter(|c| c.id != 1 && c.id != 9) {
            assert_eq!(
                t.get(c.id).map(|x| x.tenant.as_str()),
                Some(c.tenant.as_str())
            );
        }
        assert_eq!(names(&t).len(), 7);
    }

    #[test]
    fn marks_target_the_marked_rows_else_the_selected_one() {
        let mut t = table();
        t.select_index(0);
        assert_eq!(t.targets(), [3]);
        t.set_filter(Filter::parse("env:sandbox").unwrap(), now());
        t.mark_all_visible();
        assert_eq!(t.targets(), [2, 7]);
        t.mark_all_visible();
        assert_eq!(t.marked(), 0);
    }

    #[test]
    fn live_changes_leave_the_same_order_as_listing_afresh() {
        let mut live = table();
        let filter = "env:production e";
        live.set_filter(Filter::parse(filter).unwrap(), now());
        live.set_sort(
            Sort {
                key: SortKey::Left,
                descending: true,
            },
            now(),
        );
        let mut rows = every_state();
        for step in 0..40i64 {
            let i = (step * 7 % rows.len() as i64) as usize;
            let c = &mut rows[i];
            match step % 4 {
                0 => c.status = Status::ALL[(step as usize) % 6],
                1 => {
                    c.refresh_expires_at = c
                        .refresh_expires_at
                        .map(|t| t - chrono::Duration::days(step))
                }
                2 => c.tenant = format!("{}-{step}", c.tenant.trim_end_matches(char::is_numeric)),
                _ => c.environment = qbo_service::Environment::ALL[(step as usize) % 2],
            }
            live.upsert(c.clone(), now());
        }
        live.remove(rows[2].id);
        rows.remove(2);
        let mut fresh = Table::default();
        fresh.set_filter(Filter::parse(filter).unwrap(), now());
        fresh.set_sort(live.sort(), now());
        fresh.replace(rows, now());
        assert!(names(&live).len() >= 3, "{:?}", names(&live));
        assert_eq!(names(&live), names(&fresh));
        assert_eq!(live.counts(), fresh.counts());
        assert_eq!(live.failing(), fresh.failing());
    }

    #[test]
    fn the_offset_moves_only_as_far_as_the_cursor_needs() {
        assert_eq!(visible_offset(0, 5, 10, 100), 0);
        assert_eq!(visible_offset(0, 12, 10, 100), 3);
        assert_eq!(visible_offset(20, 12, 10, 100), 12);
        assert_eq!(visible_offset(95, 99, 10, 100), 90);
    }
}
