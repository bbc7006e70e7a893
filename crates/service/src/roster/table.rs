//! The roster's rows and the orders consoles asked for, kept in step with the database
//! one batch of changes at a time.
//!
//! Rows live in slots; an order is the live slots sorted by one [`Sort`]. A batch of
//! changed rows is merged into every kept order in one pass (take the changed slots out,
//! sort them, merge them back), so its cost is one walk of the order however many rows
//! changed, instead of one walk per row. A filter is matched in slot order (the rows and
//! their text lie in memory in that order) into a bitmap, then the order is walked once to
//! count the matches and pick the window's rows.

use super::brief::{haystack, sort_key, Brief, BriefRef};
use super::ids::SlotIndex;
use super::packed::{Packing, Ranges};
use crate::filter::Filter;
use crate::sort::Sort;
use crate::{Condition, ConnectionView, Environment};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// How many sort orders consoles asked for are kept at once, beside the pinned ones (each
/// is 4 bytes per connection).
const KEPT_ORDERS: usize = 3;
/// From this many rows an order is sorted, and the filter matched, on two threads.
const PARALLEL_FROM: usize = 50_000;
/// Rows sorted together before the runs are merged, when an order is sorted frugally
/// ([`Table::pin`]). A run's keys (48 bytes a row, 6 MB) are then all the sort's scratch:
/// sorting a million rows' keys at once takes 48 MB, which at start, on top of what
/// loading the roster left behind, was the daemon's peak.
#[cfg(not(test))]
const RUN: usize = 1 << 17;
/// Small runs in tests, so that tables of a test's size are merged from many.
#[cfg(test)]
const RUN: usize = 1 << 9;

#[derive(Debug, Default)]
pub(super) struct Table {
    slots: Vec<Option<Brief>>,
    free: Vec<u32>,
    slot_of: SlotIndex,
    /// Every row's lower-cased text, one after another; rows whose text changed leave
    /// their old text behind until the arena is compacted.
    hay: String,
    hay_garbage: usize,
    actors: Vec<String>,
    actor_ranks: Vec<u32>,
    actor_ids: HashMap<String, u32>,
    /// Connections per environment and condition (`Environment::ALL` × `Condition::ALL`).
    counts: [[u64; 7]; 2],
    /// Kept orders, most recently used last.
    orders: Vec<Kept>,
}

/// One sort order, and the slots changed since it was last brought up to date: an order
/// is settled only when it is read, so the orders kept but not on anyone's screen cost a
/// push per change, not a walk of a million rows.
#[derive(Debug)]
struct Kept {
    sort: Sort,
    order: Vec<u32>,
    pending: Vec<u32>,
    /// Kept whatever consoles ask for (see [`Table::pin`]).
    pinned: bool,
}

/// What a window query found: the ids on screen in order, how many matched, and where the
/// selected connection is among them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Found {
    pub ids: Vec<i64>,
    pub matching: u64,
    pub selected_at: Option<u64>,
}

fn env_index(e: Environment) -> usize {
    Environment::ALL.iter().position(|x| *x == e).unwrap_or(0)
}

impl Table {
    /// Room for `n` connections, so that reading a million does not grow (and for a while
    /// double) every vector on the way.
    pub fn reserve(&mut self, n: usize) {
        self.slots.reserve_exact(n);
        self.slot_of.reserve(n);
        // About what a tenant, a realm id and a company name take.
        self.hay.reserve_exact(n * 56);
    }

    /// After reading the table whole: gives back what the estimates over-reserved.
    pub fn trim(&mut self) {
        self.slots.shrink_to_fit();
        self.slot_of.trim();
        self.hay.shrink_to_fit();
    }

    /// Sorts `sort`'s order now and keeps it for good: the first window in it does not
    /// wait for a sort, nor does any later change to it. Worth it for the orders people
    /// come back to (urgency, tenant): sorting a million rows by text takes a third of a
    /// second on two cores, keeping the order 4 MB and a push per change.
    pub fn pin(&mut self, sort: Sort) {
        if let Some(kept) = self.orders.iter_mut().find(|k| k.sort == sort) {
            kept.pinned = true;
            return;
        }
        let mut order = self.live_slots();
        self.sort_slots_frugally(sort, &mut order);
        self.orders.push(Kept {
            sort,
            order,
            pending: Vec::new(),
            pinned: true,
        });
    }

    pub fn len(&self) -> u64 {
        self.slot_of.len() as u64
    }

    pub fn counts(&self) -> Vec<(Condition, u64)> {
        Condition::ALL
            .into_iter()
            .enumerate()
            .map(|(i, s)| (s, self.counts[0][i] + self.counts[1][i]))
            .collect()
    }

    /// Connections per environment and condition, as `/metrics` reports them.
    pub fn counts_by_environment(&self) -> Vec<(Environment, Condition, u64)> {
        Environment::ALL
            .into_iter()
            .enumerate()
            .flat_map(|(e, env)| {
                Condition::ALL
                    .into_iter()
                    .enumerate()
                    .map(move |(i, s)| (env, s, self.counts[e][i]))
            })
            .collect()
    }

    /// The live refresh token closest to its lapse: a pass over the briefs (a few
    /// milliseconds at a million), where the database would read every live row.
    pub fn nearest_lapse(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.slots
            .iter()
            .flatten()
            .filter_map(Brief::live_lapse)
            .min()
            .and_then(super::brief::time)
    }

    fn view(&self, slot: u32) -> Option<BriefRef<'_>> {
        self.slots[slot as usize].as_ref().map(|brief| BriefRef {
            brief,
            hay: &self.hay,
            actors: &self.actors,
            actor_ranks: &self.actor_ranks,
        })
    }

    fn count(&mut self, b: &Brief, sign: i64) {
        let add = |n: &mut u64| *n = n.saturating_add_signed(sign);
        add(&mut self.counts[env_index(b.environment)][b.condition().index()]);
    }

    /// A connection as the database holds it now: new, or replacing the row with its id.
    pub fn upsert(&mut self, v: &ConnectionView) {
        let (text, tenant_len, realm_len) = haystack(v);
        let mut brief = Brief::of(v, tenant_len, realm_len);
        brief.actor = match &v.last_actor {
            None => u32::MAX,
            Some(name) => match self.actor_ids.get(name) {
                Some(&i) => i,
                None => {
                    let i = self.actors.len() as u32;
                    self.actors.push(name.clone());
                    self.rank_actors();
                    self.actor_ids.insert(name.clone(), i);
                    i
                }
            },
        };
        let slot = match self.slot_of.get(v.id) {
            Some(slot) => {
                let old = self.slots[slot as usize]
                    .take()
                    .expect("a mapped slot holds a row");
                self.count(&old, -1);
                let at = old.hay_at as usize;
                if self.hay[at..at + old.hay_len as usize] == text {
                    brief.hay_at = old.hay_at;
                    brief.hay_len = old.hay_len;
                } else {
                    self.hay_garbage += old.hay_len as usize;
                }
                slot
            }
            None => {
                let slot = self.free.pop().unwrap_or_else(|| {
                    self.slots.push(None);
                    (self.slots.len() - 1) as u32
                });
                self.slot_of.insert(v.id, slot);
                slot
            }
        };
        if brief.hay_len == 0 && !text.is_empty() {
            brief.hay_at = u32::try_from(self.hay.len()).expect("under 4 GiB of tenant text");
            brief.hay_len = text.len() as u32;
            self.hay.push_str(&text);
        }
        self.count(&brief, 1);
        self.slots[slot as usize] = Some(brief);
        self.touched(slot);
    }

    /// Ranks the actor names in the order the sort compares them (a new name is rare: an
    /// account acting for the first time).
    fn rank_actors(&mut self) {
        let mut by_name: Vec<u32> = (0..self.actors.len() as u32).collect();
        let name = |i: u32| self.actors[i as usize].as_str();
        by_name.sort_by(|&a, &b| crate::sort::text(name(a), name(b)));
        let mut ranks = vec![0; self.actors.len()];
        let mut rank = 0;
        for (k, &i) in by_name.iter().enumerate() {
            if k > 0 && crate::sort::text(name(by_name[k - 1]), name(i)).is_ne() {
                rank += 1;
            }
            ranks[i as usize] = rank;
        }
        self.actor_ranks = ranks;
    }

    fn touched(&mut self, slot: u32) {
        for kept in &mut self.orders {
            kept.pending.push(slot);
        }
    }

    pub fn remove(&mut self, id: i64) {
        let Some(slot) = self.slot_of.remove(id) else {
            return;
        };
        if let Some(old) = self.slots[slot as usize].take() {
            self.count(&old, -1);
            self.hay_garbage += old.hay_len as usize;
        }
        self.free.push(slot);
        self.touched(slot);
    }

    /// Brings a kept order up to date with the rows changed since it was last read: the
    /// changed slots are taken out in one pass and each put back where a binary search says,
    /// so the cost is one walk of the order and a few comparisons per change. Past a
    /// quarter of the rows, sorting afresh is cheaper.
    fn settle(&self, kept: &mut Kept) {
        if kept.pending.is_empty() {
            return;
        }
        let sort = kept.sort;
        let mut changed = std::mem::take(&mut kept.pending);
        changed.sort_unstable();
        changed.dedup();
        if changed.len() > kept.order.len() / 4 {
            kept.order = self.live_slots();
            self.sort_slots(sort, &mut kept.order);
            return;
        }
        let mut is_changed = vec![false; self.slots.len()];
        for &s in &changed {
            is_changed[s as usize] = true;
        }
        kept.order.retain(|&s| !is_changed[s as usize]);
        changed.retain(|&s| self.slots[s as usize].is_some());
        self.sort_slots(sort, &mut changed);
        let old = std::mem::take(&mut kept.order);
        let mut merged = Vec::with_capacity(old.len() + changed.len());
        let mut from = 0;
        for m in changed {
            let at = from + old[from..].partition_point(|&o| self.keyed(sort, o, m).is_lt());
            merged.extend_from_slice(&old[from..at]);
            merged.push(m);
            from = at;
        }
        merged.extend_from_slice(&old[from..]);
        kept.order = merged;
    }

    /// `Sort::compare` of two slots, by their numeric keys first.
    fn keyed(&self, sort: Sort, a: u32, b: u32) -> std::cmp::Ordering {
        match (self.view(a), self.view(b)) {
            (Some(x), Some(y)) => sort_key(sort, &x)
                .cmp(&sort_key(sort, &y))
                .then_with(|| sort.compare(&x, &y)),
            _ => std::cmp::Ordering::Equal,
        }
    }

    fn compare(&self, sort: Sort, a: u32, b: u32) -> std::cmp::Ordering {
        match (self.view(a), self.view(b)) {
            (Some(a), Some(b)) => sort.compare(&a, &b),
            _ => std::cmp::Ordering::Equal,
        }
    }

    /// Every slot that holds a row, in slot order (a walk of one vector, not of the map).
    fn live_slots(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.slot_of.len());
        out.extend(
            self.slots
                .iter()
                .enumerate()
                .filter(|(_, b)| b.is_some())
                .map(|(i, _)| i as u32),
        );
        out
    }

    /// Sorts slots by their keys packed into 128 bits ([`Packing`]), comparing in full
    /// only where packed keys tie: 24 bytes a row of scratch (24 MB at a million).
    fn sort_slots(&self, sort: Sort, slots: &mut Vec<u32>) {
        slots.retain(|&s| self.slots[s as usize].is_some());
        let key = |s: u32| self.view(s).map(|r| sort_key(sort, &r));
        let ranges = |part: &[u32]| {
            let mut r = Ranges::default();
            for k in part.iter().filter_map(|&s| key(s)) {
                r.add(&k);
            }
            r
        };
        let keyed = |part: &[u32], p: &Packing| -> Vec<([u64; 2], u32)> {
            part.iter()
                .filter_map(|&s| key(s).map(|k| (p.pack(&k), s)))
                .collect()
        };
        let order = |(ka, a): &([u64; 2], u32), (kb, b): &([u64; 2], u32)| {
            ka.cmp(kb).then_with(|| self.keyed(sort, *a, *b))
        };
        if slots.len() < PARALLEL_FROM {
            let packing = Packing::from(ranges(slots));
            let mut all = keyed(slots, &packing);
            all.sort_unstable_by(order);
            slots.clear();
            slots.extend(all.into_iter().map(|(_, s)| s));
            return;
        }
        // Two halves on two threads, then one merge: a million keys sort in about 60% of
        // the time one thread takes, which is what keeps a sort change under a third of a
        // second on a two-core machine. The keys are read twice (their ranges, then packed):
        // a sequential pass each, cheap beside the sort.
        let (left, right) = slots.split_at(slots.len() / 2);
        let packing = Packing::from(std::thread::scope(|scope| {
            let other = scope.spawn(|| ranges(left));
            let r = ranges(right);
            r.join(other.join().expect("reading half of the roster's keys"))
        }));
        let (a, b) = std::thread::scope(|scope| {
            let other = scope.spawn(|| {
                let mut v = keyed(left, &packing);
                v.sort_unstable_by(order);
                v
            });
            let mut v = keyed(right, &packing);
            v.sort_unstable_by(order);
            (other.join().expect("sorting half of the roster"), v)
        });
        slots.clear();
        let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
        loop {
            let from_a = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) => order(x, y).is_le(),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let next = if from_a { a.next() } else { b.next() };
            slots.extend(next.map(|(_, s)| s));
        }
    }

    /// As [`Table::sort_slots`], in a sixth of the memory and about four times the time:
    /// runs of [`RUN`] rows sorted on two threads, then merged, each row's key computed
    /// again as it is merged (a read of its brief in sorted, so random, order: that is the
    /// time). For the orders sorted at start, where nobody waits and the roster's loading
    /// has just left the most behind it.
    fn sort_slots_frugally(&self, sort: Sort, slots: &mut Vec<u32>) {
        slots.retain(|&s| self.slots[s as usize].is_some());
        let sort_run = |run: &mut [u32], keys: &mut Vec<([i64; 5], u32)>| {
            keys.clear();
            keys.extend(
                run.iter()
                    .filter_map(|&s| self.view(s).map(|r| (sort_key(sort, &r), s))),
            );
            keys.sort_unstable_by(|(ka, a), (kb, b)| {
                ka.cmp(kb).then_with(|| self.compare(sort, *a, *b))
            });
            for (to, (_, s)) in run.iter_mut().zip(keys.iter()) {
                *to = *s;
            }
        };
        if slots.len() <= RUN {
            let mut keys = Vec::with_capacity(slots.len());
            sort_run(slots, &mut keys);
            return;
        }
        let mut runs: Vec<&mut [u32]> = slots.chunks_mut(RUN).collect();
        let bounds: Vec<usize> = runs.iter().map(|r| r.len()).collect();
        // The runs shared between two threads: a million keys sort in about 60% of the
        // time one thread takes, which keeps a sort change under a third of a second.
        let half = runs.len() / 2;
        let (mine, theirs) = runs.split_at_mut(half);
        std::thread::scope(|scope| {
            let other = scope.spawn(|| {
                let mut keys = Vec::with_capacity(RUN);
                for run in theirs.iter_mut() {
                    sort_run(run, &mut keys);
                }
            });
            let mut keys = Vec::with_capacity(RUN);
            for run in mine.iter_mut() {
                sort_run(run, &mut keys);
            }
            other.join().expect("sorting half of the roster");
        });
        *slots = self.merge_runs(sort, slots, &bounds);
    }

    /// One pass over sorted runs of `slots` (of the lengths in `bounds`), the head of each
    /// in a heap: one key computed per row, a few compared.
    fn merge_runs(&self, sort: Sort, slots: &[u32], bounds: &[usize]) -> Vec<u32> {
        use std::cmp::{Ordering, Reverse};
        struct Head<'t> {
            key: [i64; 5],
            slot: u32,
            at: usize,
            end: usize,
            table: &'t Table,
            sort: Sort,
        }
        impl Ord for Head<'_> {
            fn cmp(&self, other: &Self) -> Ordering {
                self.key
                    .cmp(&other.key)
                    .then_with(|| self.table.compare(self.sort, self.slot, other.slot))
                    // Equal rows leave in the order of their runs, so the merge is stable.
                    .then_with(|| self.at.cmp(&other.at))
            }
        }
        impl PartialOrd for Head<'_> {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }
        impl PartialEq for Head<'_> {
            fn eq(&self, other: &Self) -> bool {
                self.cmp(other) == Ordering::Equal
            }
        }
        impl Eq for Head<'_> {}
        let head = |at: usize, end: usize| -> Option<Reverse<Head<'_>>> {
            let slot = *slots.get(at).filter(|_| at < end)?;
            let key = self.view(slot).map(|r| sort_key(sort, &r))?;
            Some(Reverse(Head {
                key,
                slot,
                at,
                end,
                table: self,
                sort,
            }))
        };
        let mut heap = std::collections::BinaryHeap::with_capacity(bounds.len());
        let mut start = 0;
        for &len in bounds {
            heap.extend(head(start, start + len));
            start += len;
        }
        let mut out = Vec::with_capacity(slots.len());
        while let Some(Reverse(h)) = heap.pop() {
            out.push(h.slot);
            heap.extend(head(h.at + 1, h.end));
        }
        out
    }

    fn compact(&mut self) {
        let mut hay = String::with_capacity(self.hay.len() - self.hay_garbage);
        for b in self.slots.iter_mut().flatten() {
            let at = b.hay_at as usize;
            let text = &self.hay[at..at + b.hay_len as usize];
            b.hay_at = hay.len() as u32;
            hay.push_str(text);
        }
        self.hay = hay;
        self.hay_garbage = 0;
    }

    /// The live slots in `sort`'s order, sorted now if no kept order has it.
    fn order(&mut self, sort: Sort) -> &[u32] {
        if self.hay_garbage > self.hay.len() / 2 && self.hay_garbage > 1 << 20 {
            self.compact();
        }
        let mut kept = match self.orders.iter().position(|k| k.sort == sort) {
            Some(i) => self.orders.remove(i),
            None => {
                let asked = self.orders.iter().filter(|k| !k.pinned).count();
                if asked >= KEPT_ORDERS {
                    if let Some(oldest) = self.orders.iter().position(|k| !k.pinned) {
                        self.orders.remove(oldest);
                    }
                }
                let mut order = self.live_slots();
                self.sort_slots(sort, &mut order);
                Kept {
                    sort,
                    order,
                    pending: Vec::new(),
                    pinned: false,
                }
            }
        };
        self.settle(&mut kept);
        self.orders.push(kept);
        &self.orders.last().expect("just kept").order
    }

    /// The ids of the `rows` matching connections from `offset` in `sort`'s order.
    pub fn find(
        &mut self,
        filter: &Filter,
        sort: Sort,
        offset: u64,
        rows: u64,
        selected: Option<i64>,
        now: DateTime<Utc>,
    ) -> Found {
        let selected_slot = selected.and_then(|id| self.slot_of.get(id));
        let matches: Option<Vec<bool>> = (!filter.is_empty()).then(|| {
            let prepared = filter.prepared();
            let judge = |part: &[Option<Brief>]| -> Vec<bool> {
                part.iter()
                    .map(|b| {
                        b.as_ref().is_some_and(|brief| {
                            let r = BriefRef {
                                brief,
                                hay: &self.hay,
                                actors: &self.actors,
                                actor_ranks: &self.actor_ranks,
                            };
                            prepared.matches_with(&r, r.haystack(), now)
                        })
                    })
                    .collect()
            };
            if self.slots.len() < PARALLEL_FROM {
                return judge(&self.slots);
            }
            // As for sorting: each half of the rows on its own thread.
            let (left, right) = self.slots.split_at(self.slots.len() / 2);
            let (mut a, b) = std::thread::scope(|scope| {
                let other = scope.spawn(|| judge(left));
                let b = judge(right);
                (other.join().expect("filtering half of the roster"), b)
            });
            a.extend(b);
            a
        });
        self.order(sort);
        let order = &self.orders.last().expect("kept").order;
        let (start, end) = (offset, offset.saturating_add(rows));
        let mut found = Found {
            ids: Vec::new(),
            matching: 0,
            selected_at: None,
        };
        let take = |k: u64, slot: u32, found: &mut Found| {
            if k >= start && k < end {
                if let Some(b) = &self.slots[slot as usize] {
                    found.ids.push(b.id);
                }
            }
            if Some(slot) == selected_slot {
                found.selected_at = Some(k);
            }
        };
        match &matches {
            None => {
                found.matching = order.len() as u64;
                let from = (start as usize).min(order.len());
                let to = (end as usize).min(order.len());
                for (k, &slot) in order[from..to].iter().enumerate() {
                    take(from as u64 + k as u64, slot, &mut found);
                }
                if let Some(sel) = selected_slot {
                    found.selected_at = order.iter().position(|&s| s == sel).map(|p| p as u64);
                }
            }
            Some(m) => {
                for &slot in order {
                    if m[slot as usize] {
                        take(found.matching, slot, &mut found);
                        found.matching += 1;
                    }
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{at, every_state, NOW};
    use crate::sort::SortKey;

    /// What a full list, filtered and sorted in memory, shows from `offset`.
    fn naive(
        rows: &[ConnectionView],
        filter: &str,
        sort: Sort,
        offset: usize,
        n: usize,
    ) -> (Vec<i64>, u64) {
        let f = Filter::parse(filter).unwrap();
        let mut hits: Vec<&ConnectionView> =
            rows.iter().filter(|c| f.matches(c, at(NOW))).collect();
        hits.sort_by(|a, b| sort.compare(*a, *b));
        let ids = hits.iter().skip(offset).take(n).map(|c| c.id).collect();
        (ids, hits.len() as u64)
    }

    fn sorts() -> Vec<Sort> {
        SortKey::ALL
            .into_iter()
            .flat_map(|key| [false, true].map(|descending| Sort { key, descending }))
            .collect()
    }

    fn check(t: &mut Table, rows: &[ConnectionView]) {
        for filter in [
            "",
            "env:production",
            "e",
            "status:active,needs_reconnect",
            "left<50",
            "actor:sched",
        ] {
            for sort in sorts() {
                for offset in [0, 2, 7] {
                    let found = t.find(
                        &Filter::parse(filter).unwrap(),
                        sort,
                        offset,
                        3,
                        None,
                        at(NOW),
                    );
                    let (ids, matching) = naive(rows, filter, sort, offset as usize, 3);
                    assert_eq!(
                        (found.ids, found.matching),
                        (ids, matching),
                        "{filter:?} {sort:?} from {offset}"
                    );
                }
            }
        }
    }

    fn many() -> Vec<ConnectionView> {
        let mut rows = every_state();
        for c in every_state() {
            let mut c = c.clone();
            c.id += 100;
            c.tenant = format!("{}-two", c.tenant);
            // Names equal but for case rank alike, and sort by urgency among themselves.
            c.last_actor = Some(
                match c.id % 3 {
                    0 => "scheduler",
                    1 => "alice",
                    _ => "Alice",
                }
                .into(),
            );
            rows.push(c);
        }
        rows
    }

    #[test]
    fn a_window_shows_what_a_full_list_filtered_and_sorted_shows() {
        let rows = many();
        let mut t = Table::default();
        for c in &rows {
            t.upsert(c);
        }
        check(&mut t, &rows);
        assert_eq!(t.len(), rows.len() as u64);
    }

    #[test]
    fn a_window_stays_right_through_changes_that_move_rows_in_and_out_of_the_filter() {
        let mut rows = many();
        let mut t = Table::default();
        for c in &rows {
            t.upsert(c);
        }
        // Keep every order warm, so the changes are merged into them rather than sorted afresh.
        check(&mut t, &rows);
        for step in 0..60i64 {
            let i = (step * 7) as usize % rows.len();
            let c = &mut rows[i];
            match step % 5 {
                0 => c.status = crate::Status::ALL[step as usize % 6],
                1 => {
                    c.refresh_expires_at = c
                        .refresh_expires_at
                        .map(|x| x - chrono::Duration::days(step))
                }
                2 => c.tenant = format!("renamed-{step}"),
                3 => c.environment = crate::Environment::ALL[step as usize % 2],
                _ => c.consecutive_failures = step % 3,
            }
            t.upsert(c);
            if step % 10 == 9 {
                check(&mut t, &rows);
            }
        }
        let gone = rows.remove(4).id;
        t.remove(gone);
        let mut new = rows[0].clone();
        new.id = 999;
        new.tenant = "brand-new".into();
        rows.push(new.clone());
        t.upsert(&new);
        check(&mut t, &rows);
        let mut by_condition = [0u64; 7];
        for c in &rows {
            by_condition[c.condition().index()] += 1;
        }
        assert_eq!(
            t.counts().into_iter().map(|(_, n)| n).collect::<Vec<_>>(),
            by_condition
        );
        assert!(by_condition[Condition::Failing.index()] > 0);
        for (env, condition, n) in t.counts_by_environment() {
            let want = rows
                .iter()
                .filter(|c| c.environment == env && c.condition() == condition)
                .count() as u64;
            assert_eq!(n, want, "{env} {condition}");
        }
    }

    #[test]
    fn a_pinned_order_outlives_the_orders_consoles_ask_for_and_stays_right() {
        let mut rows = many();
        let mut t = Table::default();
        for c in &rows {
            t.upsert(c);
        }
        let tenant = Sort {
            key: SortKey::Tenant,
            descending: false,
        };
        t.pin(tenant);
        // More orders asked for than are kept: the oldest asked-for ones go, the pin stays.
        for key in [
            SortKey::Left,
            SortKey::Hard,
            SortKey::Access,
            SortKey::Actor,
        ] {
            t.find(
                &Filter::default(),
                Sort {
                    key,
                    descending: false,
                },
                0,
                1,
                None,
                at(NOW),
            );
        }
        let kept: Vec<Sort> = t.orders.iter().map(|k| k.sort).collect();
        assert!(kept.contains(&tenant), "{kept:?}");
        assert_eq!(kept.len(), KEPT_ORDERS + 1, "{kept:?}");
        rows[3].tenant = "aaa-first-now".into();
        t.upsert(&rows[3]);
        let found = t.find(
            &Filter::default(),
            tenant,
            0,
            rows.len() as u64,
            None,
            at(NOW),
        );
        assert_eq!(found.ids, naive(&rows, "", tenant, 0, rows.len()).0);
    }

    #[test]
    fn a_table_large_enough_to_sort_and_filter_on_two_threads_still_shows_what_a_list_shows() {
        let rows: Vec<ConnectionView> = (0..(PARALLEL_FROM as i64 + 5_000))
            .map(|i| {
                let mut c = every_state()[(i % 9) as usize].clone();
                c.id = i + 1;
                c.tenant = format!("{}-{}", c.tenant, i * 7_919 % 10_007);
                c.refresh_expires_at = c
                    .refresh_expires_at
                    .map(|t| t + chrono::Duration::seconds(i * 104_729 % 86_400));
                c
            })
            .collect();
        let mut t = Table::default();
        for c in &rows {
            t.upsert(c);
        }
        // One order sorted frugally (in runs, merged), as the daemon sorts its pinned ones.
        t.pin(Sort {
            key: SortKey::Tenant,
            descending: true,
        });
        for (filter, sort) in [
            ("", Sort::default()),
            (
                "acme",
                Sort {
                    key: SortKey::Tenant,
                    descending: true,
                },
            ),
            (
                "left<60",
                Sort {
                    key: SortKey::Left,
                    descending: false,
                },
            ),
        ] {
            for offset in [0, 30_000] {
                let found = t.find(
                    &Filter::parse(filter).unwrap(),
                    sort,
                    offset,
                    5,
                    None,
                    at(NOW),
                );
                let (ids, matching) = naive(&rows, filter, sort, offset as usize, 5);
                assert_eq!(
                    (found.ids, found.matching),
                    (ids, matching),
                    "{filter:?} {sort:?}"
                );
            }
        }
    }

    #[test]
    fn the_selected_connection_is_found_wherever_it_is() {
        let rows = many();
        let mut t = Table::default();
        for c in &rows {
            t.upsert(c);
        }
        let sort = Sort::default();
        let (all, _) = naive(&rows, "", sort, 0, usize::MAX);
        let id = all[11];
        let found = t.find(&Filter::default(), sort, 0, 3, Some(id), at(NOW));
        assert_eq!(found.selected_at, Some(11));
        let found = t.find(
            &Filter::parse("two").unwrap(),
            sort,
            0,
            3,
            Some(id),
            at(NOW),
        );
        let (two, _) = naive(&rows, "two", sort, 0, usize::MAX);
        assert_eq!(
            found.selected_at,
            two.iter().position(|x| *x == id).map(|p| p as u64)
        );
    }
}

#[cfg(test)]
mod timing {
    use super::*;
    use crate::fixtures::{at, conn, NOW};
    use crate::sort::SortKey;

    /// `cargo test --release -p qbo-service roster_timing -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn roster_timing() {
        let now = at(NOW);
        let mut t = Table::default();
        t.reserve(1_000_000);
        let start = std::time::Instant::now();
        for i in 0..1_000_000i64 {
            let mut c = conn(i, &format!("acme-{i:07}"), crate::Status::Active);
            c.realm_id = format!("{}", 9_130_000_000_000_000i64 + i);
            c.company_name = Some(format!("Company {} LLC", i % 977));
            c.refresh_expires_at = Some(now + chrono::Duration::seconds(i * 7919 % 8_640_000));
            c.access_expires_at = Some(now + chrono::Duration::seconds(i * 104_729 % 3_600));
            c.last_sync_at = Some(now - chrono::Duration::seconds(i * 31 % 86_400));
            // A few accounts acted on most rows, as in a real table: large ties by actor.
            c.last_actor = match i % 3 {
                0 => None,
                1 => Some("scheduler".into()),
                _ => Some("root".into()),
            };
            t.upsert(&c);
        }
        let rss = || {
            std::fs::read_to_string("/proc/self/status")
                .unwrap_or_default()
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .unwrap_or_default()
                .to_string()
        };
        println!(
            "loaded in {:?}; {}; hay {} MB; slot {} bytes",
            start.elapsed(),
            rss(),
            t.hay.len() >> 20,
            std::mem::size_of::<Option<Brief>>()
        );
        for key in SortKey::ALL {
            let s = std::time::Instant::now();
            t.order(Sort {
                key,
                descending: false,
            });
            println!("sort by {}: {:?}", key.name(), s.elapsed());
        }
        for f in ["a", "acme-00012", "left<30", "status:active", "actor:x"] {
            let filter = Filter::parse(f).unwrap();
            let s = std::time::Instant::now();
            let found = t.find(&filter, Sort::default(), 0, 150, None, now);
            println!("filter {f:?}: {} in {:?}", found.matching, s.elapsed());
        }
        println!("after sorts and filters: {}", rss());
    }
}
