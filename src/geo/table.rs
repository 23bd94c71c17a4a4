//! A sorted range table over an address space: every address maps to a value, adjacent ranges
//! with equal values are merged, and a lookup returns the value together with the widest
//! CIDR block around the address that lies entirely inside one range.
//!
//! That block is exactly what RFC 7871 wants as the SCOPE PREFIX-LENGTH: the largest enclosing
//! network for which the answer cannot differ. Merging equal neighbours before lookup is what
//! lets the scope widen past the database's own network boundaries (gdnsd does the same).

/// An address as an unsigned integer of `BITS` bits (u32 for IPv4, u128 for IPv6).
pub trait Addr: Copy + Ord + std::fmt::Debug + Send + Sync + 'static {
    /// The width of an address in bits (32 or 128).
    const BITS: u8;
    /// The lowest address, 0.
    const ZERO: Self;
    /// The highest address, all bits set.
    const MAX: Self;
    /// The first address of the `/prefix` block containing `self`.
    fn block_start(self, prefix: u8) -> Self;
    /// The last address of the `/prefix` block containing `self`.
    fn block_end(self, prefix: u8) -> Self;
    /// The next address; `None` past the highest.
    fn checked_inc(self) -> Option<Self>;
    /// The previous address (zero stays zero).
    fn dec(self) -> Self;
}

macro_rules! impl_addr {
    ($t:ty, $bits:expr) => {
        impl Addr for $t {
            const BITS: u8 = $bits;
            const ZERO: Self = 0;
            const MAX: Self = <$t>::MAX;
            #[inline]
            fn block_start(self, prefix: u8) -> Self {
                if prefix == 0 {
                    0
                } else {
                    self & (<$t>::MAX << ($bits - prefix as u32))
                }
            }
            #[inline]
            fn block_end(self, prefix: u8) -> Self {
                if prefix == 0 {
                    <$t>::MAX
                } else {
                    self | !(<$t>::MAX << ($bits - prefix as u32))
                }
            }
            #[inline]
            fn checked_inc(self) -> Option<Self> {
                self.checked_add(1)
            }
            #[inline]
            fn dec(self) -> Self {
                self.saturating_sub(1)
            }
        }
    };
}
impl_addr!(u32, 32);
impl_addr!(u128, 128);

/// Total map from addresses to `u32` values, as sorted range starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeTable<K: Addr> {
    /// `starts[0]` is always zero; range `i` is `starts[i] ..= starts[i+1]-1`.
    starts: Vec<K>,
    values: Vec<u32>,
}

impl<K: Addr> RangeTable<K> {
    /// Every address maps to `value`.
    pub fn uniform(value: u32) -> Self {
        Self {
            starts: vec![K::ZERO],
            values: vec![value],
        }
    }

    /// Builds from disjoint `(first, last, value)` ranges in ascending order; gaps get `fill`.
    /// Out-of-order or overlapping input is tolerated by painting, slower.
    pub fn from_sorted(ranges: impl IntoIterator<Item = (K, K, u32)>, fill: u32) -> Self {
        let mut t = Self {
            starts: Vec::new(),
            values: Vec::new(),
        };
        let mut next = Some(K::ZERO); // first address not yet covered
        let mut overlaps = Vec::new();
        for (first, last, value) in ranges {
            match next {
                Some(n) if first >= n => {
                    if first > n {
                        t.push(n, fill);
                    }
                    t.push(first, value);
                    next = last.checked_inc();
                }
                _ => overlaps.push((first, last, value)),
            }
        }
        if let Some(n) = next {
            t.push(n, fill);
        }
        if t.starts.is_empty() {
            t.push(K::ZERO, fill);
        }
        for (first, last, value) in overlaps {
            t.paint(first, last, value);
        }
        t
    }

    /// A table with no ranges yet, to be filled with [`push`](Self::push) from address zero up.
    pub(crate) fn empty() -> Self {
        Self {
            starts: Vec::new(),
            values: Vec::new(),
        }
    }

    /// Appends the range starting at `start` (above every start so far), merging it into the
    /// last range when the values are equal.
    pub(crate) fn push(&mut self, start: K, value: u32) {
        if self.values.last() == Some(&value) {
            return;
        }
        self.starts.push(start);
        self.values.push(value);
    }

    /// Sets every address in `first..=last` to `value`, keeping the table merged.
    pub fn paint(&mut self, first: K, last: K, value: u32) {
        let value_after = last.checked_inc().map(|n| (n, self.get(n)));
        let lo = self.starts.partition_point(|&s| s < first);
        let hi = self.starts.partition_point(|&s| s <= last);
        let mut starts: Vec<K> = self.starts[..lo].to_vec();
        let mut values: Vec<u32> = self.values[..lo].to_vec();
        let mut tail_starts = Vec::new();
        let mut tail_values = Vec::new();
        if let Some((n, v)) = value_after {
            tail_starts.push(n);
            tail_values.push(v);
            for i in hi..self.starts.len() {
                if self.starts[i] > n {
                    tail_starts.push(self.starts[i]);
                    tail_values.push(self.values[i]);
                }
            }
        }
        let mut out = Self {
            starts: Vec::with_capacity(starts.len() + tail_starts.len() + 1),
            values: Vec::with_capacity(values.len() + tail_values.len() + 1),
        };
        for (s, v) in starts.drain(..).zip(values.drain(..)) {
            out.push(s, v);
        }
        out.push(first, value);
        for (s, v) in tail_starts.into_iter().zip(tail_values) {
            out.push(s, v);
        }
        *self = out;
    }

    /// `top` laid over `self` in one merge of the two sorted lists: every address takes `top`'s
    /// value unless `see_through(value)` says that value is transparent, then `self`'s. Equal
    /// neighbours merge, so ECS scopes stay as wide as the result allows.
    pub fn overlay(&self, top: &RangeTable<K>, see_through: impl Fn(u32) -> bool) -> Self {
        let mut out = Self {
            starts: Vec::with_capacity(self.starts.len() + top.starts.len()),
            values: Vec::with_capacity(self.starts.len() + top.starts.len()),
        };
        // Both tables start at address zero; walk the union of their range starts in order,
        // with the value of the range of each that holds the current start.
        let (mut i, mut j) = (0usize, 0usize);
        let (mut under, mut over) = (u32::MAX, u32::MAX);
        loop {
            let next_under = self.starts.get(i).copied();
            let next_over = top.starts.get(j).copied();
            let at = match (next_under, next_over) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => break,
            };
            if next_under == Some(at) {
                under = self.values[i];
                i += 1;
            }
            if next_over == Some(at) {
                over = top.values[j];
                j += 1;
            }
            out.push(at, if see_through(over) { under } else { over });
        }
        out
    }

    /// The value at `addr`.
    #[inline]
    pub fn get(&self, addr: K) -> u32 {
        self.values[self.index(addr)]
    }

    #[inline]
    fn index(&self, addr: K) -> usize {
        // starts[0] == 0, so partition_point is at least 1.
        self.starts
            .partition_point(|&s| s <= addr)
            .saturating_sub(1)
    }

    /// The value at `addr` and the shortest prefix length whose block around `addr` lies inside
    /// one range (0 = the answer is the same for the whole address space).
    #[inline]
    pub fn lookup(&self, addr: K) -> (u32, u8) {
        let i = self.index(addr);
        let first = self.starts[i];
        let last = self.starts.get(i + 1).map_or(K::MAX, |s| s.dec());
        let mut prefix = 0;
        while prefix < K::BITS
            && (addr.block_start(prefix) < first || addr.block_end(prefix) > last)
        {
            prefix += 1;
        }
        (self.values[i], prefix)
    }

    /// Every range with its value, `(first, last, value)`.
    pub fn ranges(&self) -> impl Iterator<Item = (K, K, u32)> + '_ {
        (0..self.starts.len()).map(move |i| {
            let last = self.starts.get(i + 1).map_or(K::MAX, |s| s.dec());
            (self.starts[i], last, self.values[i])
        })
    }

    /// The number of ranges, after merging equal neighbours.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// True when the table has no range at all, which only a table still being filled can be (a
    /// built one covers every address).
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.starts.capacity() * std::mem::size_of::<K>() + self.values.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> u32 {
        u32::from(s.parse::<std::net::Ipv4Addr>().unwrap())
    }

    #[test]
    fn gaps_are_filled_and_equal_neighbours_merge() {
        let t = RangeTable::<u32>::from_sorted(
            [
                (v4("10.0.0.0"), v4("10.0.0.255"), 1),
                (v4("10.0.1.0"), v4("10.0.1.255"), 1),
                (v4("10.0.2.0"), v4("10.0.3.255"), 2),
            ],
            0,
        );
        assert_eq!(t.get(v4("9.255.255.255")), 0);
        assert_eq!(t.get(v4("10.0.1.7")), 1);
        assert_eq!(t.get(v4("10.0.3.1")), 2);
        assert_eq!(t.get(v4("10.0.4.0")), 0);
        assert_eq!(t.len(), 4, "10.0.0/24 and 10.0.1/24 merged: {t:?}");
    }

    #[test]
    fn scope_widens_over_merged_neighbours_and_no_further() {
        // Two adjacent /24s with the same value form a /23; the /23 next to them differs.
        let t = RangeTable::<u32>::from_sorted(
            [
                (v4("10.0.0.0"), v4("10.0.0.255"), 1),
                (v4("10.0.1.0"), v4("10.0.1.255"), 1),
                (v4("10.0.2.0"), v4("10.0.3.255"), 2),
            ],
            0,
        );
        assert_eq!(t.lookup(v4("10.0.0.9")), (1, 23));
        assert_eq!(t.lookup(v4("10.0.1.9")), (1, 23));
        assert_eq!(t.lookup(v4("10.0.3.9")), (2, 23));
        // Different neighbours: the scope stays at the network's own length.
        let t = RangeTable::<u32>::from_sorted(
            [
                (v4("10.0.0.0"), v4("10.0.0.255"), 1),
                (v4("10.0.1.0"), v4("10.0.1.255"), 2),
            ],
            0,
        );
        assert_eq!(t.lookup(v4("10.0.0.9")), (1, 24));
        assert_eq!(t.lookup(v4("10.0.1.9")), (2, 24));
    }

    #[test]
    fn an_unaligned_range_gives_the_block_around_the_address() {
        // 10.0.0.0 - 10.0.2.255 is not a CIDR block: addresses in 10.0.0/23 get /23, in 10.0.2/24 get /24.
        let t = RangeTable::<u32>::from_sorted([(v4("10.0.0.0"), v4("10.0.2.255"), 1)], 0);
        assert_eq!(t.lookup(v4("10.0.1.1")), (1, 23));
        assert_eq!(t.lookup(v4("10.0.2.1")), (1, 24));
    }

    #[test]
    fn uniform_table_has_scope_zero() {
        let t = RangeTable::<u128>::uniform(7);
        assert_eq!(t.lookup(12345), (7, 0));
    }

    #[test]
    fn overlay_takes_the_top_except_where_it_is_transparent() {
        const T: u32 = 99;
        let base = RangeTable::from_sorted([(v4("10.0.0.0"), v4("10.255.255.255"), 1)], 0);
        let top = RangeTable::from_sorted(
            [
                (v4("10.1.0.0"), v4("10.1.255.255"), 7),
                (v4("10.2.0.0"), v4("10.2.255.255"), 1),
                (v4("11.0.0.0"), v4("11.0.0.255"), 8),
            ],
            T,
        );
        let t = base.overlay(&top, |v| v == T);
        assert_eq!(t.get(v4("9.255.255.255")), 0);
        assert_eq!(t.get(v4("10.0.0.1")), 1);
        assert_eq!(t.get(v4("10.1.2.3")), 7);
        assert_eq!(t.get(v4("10.2.0.0")), 1);
        assert_eq!(t.get(v4("10.3.0.0")), 1);
        assert_eq!(t.get(v4("11.0.0.9")), 8);
        assert_eq!(t.get(v4("11.0.1.0")), 0);
        // 10.2/16 has the base's value on the top too: it merged with its neighbours.
        assert_eq!(t.lookup(v4("10.2.0.0")), (1, 15));
        // Painting gives the same table.
        let mut painted = base.clone();
        for (first, last, v) in top.ranges().filter(|r| r.2 != T) {
            painted.paint(first, last, v);
        }
        assert_eq!(t, painted);
    }

    #[test]
    fn paint_overrides_and_keeps_the_rest() {
        let mut t = RangeTable::<u32>::from_sorted([(v4("10.0.0.0"), v4("10.255.255.255"), 1)], 0);
        t.paint(v4("10.1.0.0"), v4("10.1.255.255"), 5);
        assert_eq!(t.lookup(v4("10.1.2.3")), (5, 16));
        assert_eq!(t.get(v4("10.0.0.1")), 1);
        assert_eq!(t.get(v4("10.2.0.1")), 1);
        assert_eq!(t.get(v4("11.0.0.0")), 0);
        // Painting the same value back merges again.
        t.paint(v4("10.1.0.0"), v4("10.1.255.255"), 1);
        assert_eq!(t.lookup(v4("10.1.2.3")), (1, 8));
        // Painting up to the end of the space.
        t.paint(v4("255.0.0.0"), u32::MAX, 9);
        assert_eq!(t.lookup(u32::MAX), (9, 8));
    }

    #[test]
    fn overlapping_input_is_painted_in_order() {
        let t = RangeTable::<u32>::from_sorted(
            [
                (v4("10.0.0.0"), v4("10.255.255.255"), 1),
                (v4("10.1.0.0"), v4("10.1.0.255"), 2),
            ],
            0,
        );
        assert_eq!(t.lookup(v4("10.1.0.1")), (2, 24));
        assert_eq!(t.get(v4("10.1.1.1")), 1);
    }
}
