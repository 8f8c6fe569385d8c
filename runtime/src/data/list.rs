//! A column of arrays (`array<string>`), in Arrow's `ListArray` layout:
//! the elements of every row back to back in one child column, and where
//! each row's elements start.
//!
//! ```text
//!  rows      ["a", "b"]   []   ["c"]
//!  offsets   0            2    2      3
//!  values    "a" "b" "c"              (a StrColumn: one buffer)
//! ```
//!
//! So a batch of arrays is two or three allocations whatever its size,
//! decoding appends elements straight to the child column, and reading
//! row `i` is a slice `offsets[i]..offsets[i + 1]` of it: no per-record
//! `Value` tree and no `Vec` per row. Elements are never null (the
//! checker refuses `array<string?>`); a null array is the column's
//! validity, as for any type, and holds no elements.

use super::column::Column;
use super::value::{ArrayRef, ValueRef};
use crate::record::Value;
use flowc_compiler::ir::DataType;

#[derive(Debug, Clone, PartialEq)]
pub struct ListColumn {
    /// One more than there are rows; the first 0, never decreasing, the
    /// last `values.len()`.
    offsets: Vec<u32>,
    /// The elements of all rows, in row order; never null.
    values: Column,
}

/// An offset as stored: a batch never holds 4 Gi elements (frames are
/// smaller), and saturating keeps a bug from panicking.
fn offset(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl ListColumn {
    /// No rows, of arrays of `element`.
    pub fn new(element: DataType, rows: usize) -> ListColumn {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        ListColumn { offsets, values: Column::empty(element, rows * 2) }
    }

    /// Builds a column from its parts, checking every invariant: what the
    /// wire decoder uses on bytes from a peer.
    pub fn from_parts(offsets: Vec<u32>, values: Column) -> Result<ListColumn, String> {
        if offsets.first() != Some(&0) {
            return Err("array offsets do not start at 0".into());
        }
        if offsets.last().map(|o| *o as usize) != Some(values.len()) {
            return Err("array offsets do not end at the last element".into());
        }
        if offsets.windows(2).any(|w| w[0] > w[1]) {
            return Err("array offsets go backwards".into());
        }
        if values.has_nulls() {
            return Err("an array element is null".into());
        }
        Ok(ListColumn { offsets, values })
    }

    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn offsets(&self) -> &[u32] {
        &self.offsets
    }

    /// The elements of every row.
    pub fn values(&self) -> &Column {
        &self.values
    }

    /// The elements of row `i` are `values()[start..end]`; empty past the end.
    #[inline]
    pub fn range(&self, i: usize) -> (usize, usize) {
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&a), Some(&b)) => (a as usize, b as usize),
            _ => (0, 0),
        }
    }

    /// The number of elements of row `i`.
    #[inline]
    pub fn count(&self, i: usize) -> usize {
        let (a, b) = self.range(i);
        b - a
    }

    /// Row `i`, borrowed.
    pub fn get(&self, i: usize) -> ArrayRef<'_> {
        let (start, end) = self.range(i);
        ArrayRef::Slice { values: &self.values, start, end }
    }

    /// The element column, taken apart from the rows.
    pub fn into_values(self) -> Column {
        self.values
    }

    /// Where a decoder appends the elements of the row it reads; it ends
    /// the row with [`ListColumn::close_row`] (or drops them with
    /// [`ListColumn::discard_open`]).
    pub fn values_mut(&mut self) -> &mut Column {
        &mut self.values
    }

    /// Ends a row: the elements appended since the last row are its own.
    pub fn close_row(&mut self) {
        self.offsets.push(offset(self.values.len()));
    }

    /// Drops elements appended after the last row (a decode that failed
    /// half-way).
    pub fn discard_open(&mut self) {
        let end = self.offsets.last().copied().unwrap_or(0) as usize;
        self.values.truncate(end);
    }

    /// Appends a row of no elements (also what a null row holds).
    pub fn push_empty(&mut self) {
        self.close_row();
    }

    /// Appends a row holding the elements `items` (of the element type);
    /// `false`, appending nothing, if one is not.
    pub fn push_values(&mut self, items: &[Value]) -> bool {
        let before = self.values.len();
        for v in items {
            if *v == Value::Null || !self.values.push_value(ValueRef::from(v)) {
                self.values.truncate(before);
                return false;
            }
        }
        self.close_row();
        true
    }

    /// Appends a row holding the elements of `a`; `false`, appending
    /// nothing, if they are not of the element type.
    pub fn push_ref(&mut self, a: ArrayRef<'_>) -> bool {
        match a {
            ArrayRef::Slice { values, start, end } => {
                if values.ty != self.values.ty || values.has_nulls() {
                    return false;
                }
                let rows: Vec<u32> = (start..end).map(offset).collect();
                self.values.extend_rows(values, &rows);
                self.close_row();
                true
            }
            ArrayRef::Values(items) => self.push_values(items),
        }
    }

    /// The elements of row `i`, owned (for state, messages and tests).
    pub fn row_values(&self, i: usize) -> Vec<Value> {
        let (a, b) = self.range(i);
        (a..b).filter_map(|j| self.values.value(j)).collect()
    }

    /// The element rows of `rows`, in that order.
    fn element_rows(&self, rows: &[u32]) -> Vec<u32> {
        let mut out = Vec::new();
        for &r in rows {
            let (a, b) = self.range(r as usize);
            out.extend((a..b).map(offset));
        }
        out
    }

    /// The rows at `rows`, in that order.
    pub fn gather(&self, rows: &[u32]) -> ListColumn {
        let mut out = ListColumn { offsets: Vec::with_capacity(rows.len() + 1), values: self.values.gather(&[]) };
        out.offsets.push(0);
        out.extend_rows(self, rows);
        out
    }

    /// Appends the rows at `rows` of `src`.
    pub fn extend_rows(&mut self, src: &ListColumn, rows: &[u32]) {
        let base = self.values.len();
        let mut end = base;
        for &r in rows {
            end += src.count(r as usize);
            self.offsets.push(offset(end));
        }
        self.values.extend_rows(&src.values, &src.element_rows(rows));
    }

    /// Appends every row of `src`.
    pub fn extend(&mut self, src: &ListColumn) {
        let base = offset(self.values.len());
        self.offsets.extend(src.offsets.iter().skip(1).map(|o| o.saturating_add(base)));
        self.values.extend(&src.values);
    }

    /// Keeps the first `rows` rows, and drops any element appended after
    /// them (of a row a decoder did not close).
    pub fn truncate(&mut self, rows: usize) {
        self.offsets.truncate(rows + 1);
        let end = self.offsets.last().copied().unwrap_or(0) as usize;
        self.values.truncate(end);
    }

    /// Removes the last row.
    pub fn pop(&mut self) {
        if !self.is_empty() {
            self.truncate(self.len() - 1);
        }
    }

    /// The bytes of its wire encoding after the type code: the offsets'
    /// run, then the element column.
    pub fn encoded_len(&self) -> usize {
        4 + 4 * self.offsets.len() + self.values.encoded_len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(items: &[&str]) -> Vec<Value> {
        items.iter().map(|s| Value::Str(s.to_string())).collect()
    }

    #[test]
    fn rows_are_slices_of_one_element_column() {
        let mut c = ListColumn::new(DataType::String, 3);
        assert!(c.push_values(&strs(&["a", "b"])));
        c.push_empty();
        assert!(c.push_values(&strs(&["c"])));
        assert!(!c.push_values(&[Value::Str("d".into()), Value::Int(1)]), "a wrong element appends nothing");
        assert!(!c.push_values(&[Value::Null]), "elements are never null");
        assert_eq!(c.len(), 3);
        assert_eq!(c.offsets(), &[0, 2, 2, 3]);
        assert_eq!(c.row_values(0), strs(&["a", "b"]));
        assert_eq!(c.row_values(1), strs(&[]));
        assert_eq!(c.get(2).to_values(), strs(&["c"]));
        let g = c.gather(&[2, 0, 0]);
        assert_eq!(g.offsets(), &[0, 1, 3, 5]);
        assert_eq!(g.row_values(2), strs(&["a", "b"]));
        let mut e = ListColumn::new(DataType::String, 0);
        e.extend(&c);
        e.extend_rows(&c, &[1, 2]);
        assert_eq!(e.len(), 5);
        assert_eq!(e.row_values(4), strs(&["c"]));
        e.truncate(2);
        assert_eq!(e.values().len(), 2);
        e.pop();
        assert_eq!(e.row_values(0), strs(&["a", "b"]));
        let mut p = ListColumn::new(DataType::String, 1);
        assert!(p.push_ref(c.get(0)));
        let mut longs = ListColumn::new(DataType::Long, 1);
        assert!(longs.push_values(&[Value::Int(1)]));
        assert!(!p.push_ref(longs.get(0)), "elements of another type");
        assert_eq!(p.len(), 1);
        assert_eq!(p.row_values(0), strs(&["a", "b"]));
        p.values_mut().push_value(ValueRef::Str("half"));
        p.discard_open();
        assert_eq!(p.values().len(), 2);
    }

    #[test]
    fn from_parts_checks_every_invariant() {
        let values = Column::new(DataType::Long, super::super::Data::I64(vec![1, 2]));
        assert!(ListColumn::from_parts(vec![0, 1, 2], values.clone()).is_ok());
        for bad in [vec![1, 2], vec![0, 1], vec![0, 2, 1, 2], vec![]] {
            assert!(ListColumn::from_parts(bad.clone(), values.clone()).is_err(), "{bad:?}");
        }
    }
}
