//! Which slot holds a connection, by its id.
//!
//! Two sorted vectors rather than a hash map: 12 bytes a connection where a `HashMap<i64,
//! u32>` sized for a million takes 36 MB (its buckets round up to a power of two, with a
//! control byte each). Ids come from a sequence, so a new connection's id is nearly always
//! the largest yet and goes on the end; a lookup is a binary search of 8 MB that stays in
//! cache for the few thousand lookups a batch of changes makes.

#[derive(Debug, Default)]
pub(super) struct SlotIndex {
    ids: Vec<i64>,
    slots: Vec<u32>,
}

impl SlotIndex {
    pub fn reserve(&mut self, n: usize) {
        self.ids.reserve_exact(n);
        self.slots.reserve_exact(n);
    }

    pub fn trim(&mut self) {
        self.ids.shrink_to_fit();
        self.slots.shrink_to_fit();
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    fn at(&self, id: i64) -> Result<usize, usize> {
        // The common case first: the id is past every other one.
        match self.ids.last() {
            None => Err(0),
            Some(&last) if id > last => Err(self.ids.len()),
            Some(_) => self.ids.binary_search(&id),
        }
    }

    pub fn get(&self, id: i64) -> Option<u32> {
        self.at(id).ok().map(|i| self.slots[i])
    }

    /// Notes that `id` is in `slot`; an id already noted moves.
    pub fn insert(&mut self, id: i64, slot: u32) {
        match self.at(id) {
            Ok(i) => self.slots[i] = slot,
            Err(i) => {
                self.ids.insert(i, id);
                self.slots.insert(i, slot);
            }
        }
    }

    pub fn remove(&mut self, id: i64) -> Option<u32> {
        let i = self.at(id).ok()?;
        self.ids.remove(i);
        Some(self.slots.remove(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn answers_as_a_map_does_whatever_order_ids_come_and_go_in() {
        let mut index = SlotIndex::default();
        let mut map = HashMap::new();
        // Mostly rising ids, some out of order, some removed and some noted twice.
        for step in 0..2_000i64 {
            let id = match step % 7 {
                3 => step / 2,
                5 => 10_000 - step,
                _ => step * 3,
            };
            if step % 11 == 0 {
                assert_eq!(index.remove(id), map.remove(&id), "remove {id}");
            } else {
                index.insert(id, step as u32);
                map.insert(id, step as u32);
            }
        }
        assert_eq!(index.len(), map.len());
        for id in -5..10_005 {
            assert_eq!(index.get(id), map.get(&id).copied(), "{id}");
        }
        assert!(index.ids.windows(2).all(|w| w[0] < w[1]));
    }
}
