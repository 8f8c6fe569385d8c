//! Which values of a column are present: a bitmap with one bit per row,
//! set for a value and clear for a null, as Arrow's validity buffer.
//!
//! A column of a non-nullable type has none (`Column::validity` is
//! `None`: every value is present) and pays nothing for it; a column that
//! meets its first null materialises one. Every operation on a column
//! (gather, append, truncate, the wire encoding) carries it along, so
//! operators built on the column's operations carry nulls without knowing.

/// One bit per row, least significant bit first in each word.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Validity {
    words: Vec<u64>,
    len: usize,
}

impl Validity {
    /// `len` rows, all present.
    pub fn all_valid(len: usize) -> Validity {
        let mut words = vec![u64::MAX; len.div_ceil(64)];
        if !len.is_multiple_of(64) {
            if let Some(last) = words.last_mut() {
                *last = (1u64 << (len % 64)) - 1;
            }
        }
        Validity { words, len }
    }

    pub fn from_bools(valid: impl IntoIterator<Item = bool>) -> Validity {
        let mut v = Validity::default();
        for b in valid {
            v.push(b);
        }
        v
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether row `i` holds a value (rows past the end do not).
    #[inline]
    pub fn get(&self, i: usize) -> bool {
        i < self.len && self.words[i / 64] & (1 << (i % 64)) != 0
    }

    #[inline]
    pub fn push(&mut self, valid: bool) {
        if self.len.is_multiple_of(64) {
            self.words.push(0);
        }
        if valid {
            self.words[self.len / 64] |= 1 << (self.len % 64);
        }
        self.len += 1;
    }

    /// The number of nulls.
    pub fn null_count(&self) -> usize {
        self.len - self.words.iter().map(|w| w.count_ones() as usize).sum::<usize>()
    }

    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        self.len = len;
        self.words.truncate(len.div_ceil(64));
        if !len.is_multiple_of(64) {
            if let Some(last) = self.words.last_mut() {
                *last &= (1u64 << (len % 64)) - 1;
            }
        }
    }

    pub fn pop(&mut self) {
        if self.len > 0 {
            self.truncate(self.len - 1);
        }
    }

    /// Set where both are (of the same length; extra rows of either are null).
    pub fn and(&self, other: &Validity) -> Validity {
        let len = self.len.min(other.len);
        let mut words: Vec<u64> = self.words.iter().zip(&other.words).map(|(a, b)| a & b).collect();
        words.truncate(len.div_ceil(64));
        let mut v = Validity { words, len };
        v.truncate(len);
        v
    }

    /// The bits of `rows`, in that order.
    pub fn gather(&self, rows: &[u32]) -> Validity {
        Validity::from_bools(rows.iter().map(|&r| self.get(r as usize)))
    }

    pub fn extend(&mut self, other: &Validity) {
        for i in 0..other.len {
            self.push(other.get(i));
        }
    }

    /// The bitmap as bytes, `len.div_ceil(8)` of them (the wire encoding).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out: Vec<u8> = self.words.iter().flat_map(|w| w.to_le_bytes()).collect();
        out.truncate(self.len.div_ceil(8));
        out
    }

    /// The bitmap of `len` rows from [`Validity::to_bytes`]; `None` when
    /// the bytes are not exactly that long.
    pub fn from_bytes(bytes: &[u8], len: usize) -> Option<Validity> {
        if bytes.len() != len.div_ceil(8) {
            return None;
        }
        Some(Validity::from_bools((0..len).map(|i| bytes[i / 8] & (1 << (i % 8)) != 0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn behaves_as_a_vector_of_bools(bits in proptest::collection::vec(any::<bool>(), 0..200), cut in 0usize..220, rows in proptest::collection::vec(0u32..200, 0..50)) {
            let v = Validity::from_bools(bits.iter().copied());
            prop_assert_eq!(v.len(), bits.len());
            prop_assert_eq!(v.null_count(), bits.iter().filter(|b| !**b).count());
            for (i, b) in bits.iter().enumerate() {
                prop_assert_eq!(v.get(i), *b);
            }
            let back = Validity::from_bytes(&v.to_bytes(), bits.len()).expect("round trip");
            prop_assert_eq!(&back, &v);
            let rows: Vec<u32> = rows.into_iter().filter(|r| (*r as usize) < bits.len()).collect();
            let g = v.gather(&rows);
            prop_assert_eq!(g.len(), rows.len());
            for (k, r) in rows.iter().enumerate() {
                prop_assert_eq!(g.get(k), bits[*r as usize]);
            }
            let mut t = v.clone();
            t.truncate(cut);
            let kept = cut.min(bits.len());
            prop_assert_eq!(&t, &Validity::from_bools(bits[..kept].iter().copied()));
            t.extend(&g);
            prop_assert_eq!(t.len(), kept + g.len());
            let other = Validity::from_bools(bits.iter().rev().copied());
            let both = v.and(&other);
            for i in 0..bits.len() {
                prop_assert_eq!(both.get(i), bits[i] && bits[bits.len() - 1 - i]);
            }
        }
    }

    #[test]
    fn all_valid_has_no_nulls() {
        for n in [0, 1, 63, 64, 65, 130] {
            let v = Validity::all_valid(n);
            assert_eq!(v, Validity::from_bools(std::iter::repeat_n(true, n)));
            assert_eq!(v.null_count(), 0);
        }
    }
}
