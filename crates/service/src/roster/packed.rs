//! Sort keys packed into 128 bits without changing their order, so that sorting a million
//! rows moves 24-byte entries instead of 48-byte ones: half the scratch of a sort change,
//! which was what lifted the daemon's peak above its 300 MB at a million connections.
//!
//! A sort key is five numbers compared in turn. Over the rows being sorted, each number
//! spans a range, usually far narrower than 64 bits (a tier takes 3, an environment 1, a
//! constant none); packing each as its offset in that range, in as many bits as the range
//! needs, one after another, keeps the order of the keys. What does not fit in 128 bits is
//! cut from the last number that does: two rows whose packed keys are equal may still
//! differ, and are compared in full (rare: the first 128 bits of a tenant name, or a
//! deadline to the nanosecond and more).

/// The smallest and largest value of each of a key's numbers, over some rows.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ranges {
    lo: [i64; 5],
    hi: [i64; 5],
}

impl Default for Ranges {
    fn default() -> Ranges {
        Ranges {
            lo: [i64::MAX; 5],
            hi: [i64::MIN; 5],
        }
    }
}

impl Ranges {
    pub fn add(&mut self, key: &[i64; 5]) {
        for (i, v) in key.iter().enumerate() {
            self.lo[i] = self.lo[i].min(*v);
            self.hi[i] = self.hi[i].max(*v);
        }
    }

    pub fn join(mut self, other: Ranges) -> Ranges {
        for i in 0..5 {
            self.lo[i] = self.lo[i].min(other.lo[i]);
            self.hi[i] = self.hi[i].max(other.hi[i]);
        }
        self
    }
}

/// How keys within some [`Ranges`] are packed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Packing {
    lo: [i64; 5],
    bits: [u32; 5],
}

impl From<Ranges> for Packing {
    fn from(r: Ranges) -> Packing {
        // No rows: every width 0, and every key packs to 0 (compared in full).
        let bits = std::array::from_fn(|i| {
            let span = i128::from(r.hi[i]) - i128::from(r.lo[i]);
            if span > 0 {
                128 - (span as u128).leading_zeros()
            } else {
                0
            }
        });
        Packing { lo: r.lo, bits }
    }
}

impl Packing {
    /// The key's numbers, each as its offset in its range, one after another; keys outside
    /// the ranges this packing was made for are not expected (they saturate).
    pub fn pack(&self, key: &[i64; 5]) -> [u64; 2] {
        let mut acc: u128 = 0;
        let mut room: u32 = 128;
        for ((&width, &lo), &value) in self.bits.iter().zip(&self.lo).zip(key) {
            if width == 0 {
                continue;
            }
            let offset = (i128::from(value) - i128::from(lo)).max(0) as u128;
            if width <= room {
                // A width is at most 64 bits, so the shift never overflows.
                acc = (acc << width) | offset;
                room -= width;
            } else {
                // What fits of the first number that does not: its top bits.
                if room > 0 {
                    acc = (acc << room) | (offset >> (width - room));
                }
                break;
            }
        }
        [(acc >> 64) as u64, acc as u64]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packing(keys: &[[i64; 5]]) -> Packing {
        let mut r = Ranges::default();
        for k in keys {
            r.add(k);
        }
        Packing::from(r)
    }

    /// Packed keys never order two keys the other way round; equal packed keys are the
    /// only ones left to compare in full.
    fn assert_keeps_order(keys: &[[i64; 5]]) {
        let p = packing(keys);
        for a in keys {
            for b in keys {
                let (pa, pb) = (p.pack(a), p.pack(b));
                if a < b {
                    assert!(pa <= pb, "{a:?} < {b:?} but {pa:?} > {pb:?}");
                }
                if pa < pb {
                    assert!(a < b, "{pa:?} < {pb:?} but {a:?} >= {b:?}");
                }
            }
        }
    }

    #[test]
    fn narrow_numbers_pack_whole_and_keep_their_order() {
        // A tier, a deadline in nanoseconds and an access expiry, as urgency's key has them.
        let keys: Vec<[i64; 5]> = (0..60i64)
            .map(|i| {
                [
                    0,
                    0,
                    i % 3,
                    1_796_000_000_000_000_000 + (i * 7_919 % 50) * 1_000_000_007,
                    if i % 11 == 0 {
                        i64::MAX
                    } else {
                        1_796_000_000_000_000_000 + i
                    },
                ]
            })
            .collect();
        assert_keeps_order(&keys);
        let p = packing(&keys);
        let distinct: std::collections::HashSet<_> = keys.iter().collect();
        let packed: std::collections::HashSet<_> = keys.iter().map(|k| p.pack(k)).collect();
        // Everything fits in 128 bits here: no two different keys pack alike.
        assert_eq!(packed.len(), distinct.len());
    }

    #[test]
    fn wide_numbers_are_cut_but_never_reordered() {
        // Text keys: three full-width words (a tenant's first 24 bytes), and extremes.
        let mut keys: Vec<[i64; 5]> = (0..40i64)
            .map(|i| {
                [
                    i64::MIN / 3 + i * 1_234_567_891_011,
                    (i % 7) * (i64::MAX / 7),
                    -i * 99_999_999_977,
                    0,
                    0,
                ]
            })
            .collect();
        keys.push([i64::MIN, i64::MIN, i64::MIN, 0, 0]);
        keys.push([i64::MAX, i64::MAX, i64::MAX, 0, 0]);
        keys.push([i64::MAX, i64::MAX, i64::MAX - 1, 0, 0]);
        assert_keeps_order(&keys);
    }

    #[test]
    fn one_key_or_none_packs_without_overflowing() {
        assert_keeps_order(&[[5, 5, 5, 5, 5]]);
        let p = Packing::from(Ranges::default());
        assert_eq!(p.pack(&[1, 2, 3, 4, 5]), [0, 0]);
    }
}
