//! The first few of a stream in an order, kept while the stream passes: what a digest or a
//! forecast of a million risks shows, in the memory of what it shows.

use std::cmp::Ordering;

pub struct Soonest<T> {
    keep: usize,
    items: Vec<T>,
    order: fn(&T, &T) -> Ordering,
}

impl<T> Soonest<T> {
    /// Keeps the first `keep` items in `order` (every item, for `usize::MAX`).
    pub fn new(keep: usize, order: fn(&T, &T) -> Ordering) -> Soonest<T> {
        Soonest {
            keep,
            items: Vec::new(),
            order,
        }
    }

    pub fn push(&mut self, item: T) {
        if self.keep == 0 {
            return;
        }
        self.items.push(item);
        // Trimmed when twice as many as kept: each item is sorted a bounded number of
        // times, and memory stays within twice what is shown.
        if self.items.len() >= self.keep.saturating_mul(2) {
            self.trim();
        }
    }

    fn trim(&mut self) {
        self.items.sort_by(self.order);
        self.items.truncate(self.keep);
    }

    /// The kept items, first first.
    pub fn into_sorted(mut self) -> Vec<T> {
        self.trim();
        self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_few_in_order_whatever_comes() {
        let mut s = Soonest::new(3, |a: &u32, b: &u32| a.cmp(b));
        for n in [9, 4, 7, 1, 8, 2, 6, 3, 5, 0, 10] {
            s.push(n);
        }
        assert_eq!(s.into_sorted(), [0, 1, 2]);
        let mut all = Soonest::new(usize::MAX, |a: &u32, b: &u32| b.cmp(a));
        (0..5).for_each(|n| all.push(n));
        assert_eq!(all.into_sorted(), [4, 3, 2, 1, 0]);
        let mut none = Soonest::new(0, |a: &u32, b: &u32| a.cmp(b));
        none.push(1);
        assert!(none.into_sorted().is_empty());
    }
}
