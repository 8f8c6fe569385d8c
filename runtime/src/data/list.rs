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
//! `Value` tree and no `Vec` per row. A null array is the column's
//! validity, as for any type, and holds no elements; a null element
//! (`array<string?>`) is the element column's validity, so a null
//! element costs a bit, and a column whose elements have none pays
//! nothing. The list itself allows null elements; the column's type says
//! whether they may occur (`array<string>` refuses them: see
//! [`stores`](super::column::stores) and the `nulls` arguments below).
//!
//! ```text
//!  rows      ["a", null]  [null]
//!  offsets   0            2       3
//!  values    "a" "" ""
//!  validity  1   0  0             (the element column's bitmap)
//! ```

use super::column::Column;
use super::value::{ArrayRef, ValueRef};
use crate::record::Value;
use flowc_compiler::ir::DataType;

#[derive(Debug, Clone, PartialEq)]
pub struct ListColumn {
    /// One more than there are rows; the first 0, never decreasing, the
    /// last `values.len()`.
    offsets: Vec<u32>,
    /// The elements of all rows, in row order (null where the type allows).
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
    /// wire decoder uses on bytes from a peer. `nulls`: whether an element
    /// may be null (`array<long?>`).
    pub fn from_parts(offsets: Vec<u32>, values: Column, nulls: bool) -> Result<ListColumn, String> {
        if offsets.first() != Some(&0) {
            return Err("array offsets do not start at 0".into());
        }
        if offsets.last().map(|o| *o as usize) != Some(values.len()) {
            return Err("array offsets do not end at the last element".into());
        }
        if offsets.windows(2).any(|w| w[0] > w[1]) {
            return Err("array offsets go backwards".into());
        }
        if !nulls && values.has_nulls() {
            return Err("an element of an array whose elements are not nullable is null".into());
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

    /// Appends a row holding the elements `items` (of the element type,
    /// or null where `nulls`); `false`, appending nothing, if one is not.
    pub fn push_values(&mut self, items: &[Value], nulls: bool) -> bool {
        let before = self.values.len();
        for v in items {
            if (*v == Value::Null && !nulls) || !self.values.push_value(ValueRef::from(v)) {
                self.values.truncate(before);
                return false;
            }
        }
        self.close_row();
        true
    }

    /// Appends a row holding the elements of `a`; `false`, appending
    /// nothing, if they are not of the element type, or one is null and
    /// not `nulls`.
    pub fn push_ref(&mut self, a: ArrayRef<'_>, nulls: bool) -> bool {
        match a {
            ArrayRef::Slice { values, start, end } => {
                if values.ty != self.values.ty || (!nulls && (start..end).any(|j| !values.is_valid(j))) {
                    return false;
                }
                let rows: Vec<u32> = (start..end).map(offset).collect();
                self.values.extend_rows(values, &rows);
                self.close_row();
                true
            }
            ArrayRef::Values(items) => self.push_values(items, nulls),
        }
    }

    /// Whether an element of any row is null.
    pub fn has_null_elements(&self) -> bool {
        self.values.has_nulls()
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
        assert!(c.push_values(&strs(&["a", "b"]), false));
        c.push_empty();
        assert!(c.push_values(&strs(&["c"]), false));
        assert!(!c.push_values(&[Value::Str("d".into()), Value::Int(1)], false), "a wrong element appends nothing");
        assert!(!c.push_values(&[Value::Null], false), "not where elements are not nullable");
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
        assert!(p.push_ref(c.get(0), false));
        let mut longs = ListColumn::new(DataType::Long, 1);
        assert!(longs.push_values(&[Value::Int(1)], false));
        assert!(!p.push_ref(longs.get(0), false), "elements of another type");
        assert_eq!(p.len(), 1);
        assert_eq!(p.row_values(0), strs(&["a", "b"]));
        p.values_mut().push_value(ValueRef::Str("half"));
        p.discard_open();
        assert_eq!(p.values().len(), 2);
    }

    #[test]
    fn from_parts_checks_every_invariant() {
        let values = Column::new(DataType::Long, super::super::Data::I64(vec![1, 2]));
        assert!(ListColumn::from_parts(vec![0, 1, 2], values.clone(), false).is_ok());
        for bad in [vec![1, 2], vec![0, 1], vec![0, 2, 1, 2], vec![]] {
            assert!(ListColumn::from_parts(bad.clone(), values.clone(), true).is_err(), "{bad:?}");
        }
        // A null element: only where the elements are nullable.
        let with_null = Column::with_validity(
            DataType::Long,
            super::super::Data::I64(vec![1, 0]),
            Some(super::super::Validity::from_bools([true, false])),
        );
        assert!(ListColumn::from_parts(vec![0, 2], with_null.clone(), true).is_ok());
        assert!(ListColumn::from_parts(vec![0, 2], with_null, false).is_err());
    }

    #[test]
    fn null_elements_are_the_element_columns_bits_and_follow_every_operation() {
        let longs = |v: &[Option<i64>]| v.iter().map(|x| x.map_or(Value::Null, Value::Int)).collect::<Vec<_>>();
        let mut c = ListColumn::new(DataType::Long, 3);
        assert!(c.push_values(&longs(&[Some(1), None, Some(3)]), true));
        assert!(c.push_values(&longs(&[None]), true));
        c.push_empty();
        assert!(c.push_values(&longs(&[Some(5)]), true));
        assert!(c.has_null_elements());
        assert_eq!(c.offsets(), &[0, 3, 4, 4, 5]);
        assert_eq!(c.row_values(0), longs(&[Some(1), None, Some(3)]));
        assert_eq!(c.get(1).get(0), ValueRef::Null);
        assert_eq!(c.count(1), 1, "a null element is an element");
        let g = c.gather(&[3, 1, 0]);
        assert_eq!(g.row_values(1), longs(&[None]));
        assert_eq!(g.row_values(2), longs(&[Some(1), None, Some(3)]));
        let mut e = ListColumn::new(DataType::Long, 0);
        assert!(e.push_values(&longs(&[Some(9)]), false));
        e.extend(&c);
        e.extend_rows(&c, &[1]);
        assert_eq!(e.row_values(1), longs(&[Some(1), None, Some(3)]));
        assert_eq!(e.row_values(5), longs(&[None]));
        e.truncate(2);
        assert_eq!(e.row_values(1), longs(&[Some(1), None, Some(3)]));
        // Where the elements are not nullable, a row with a null is refused whole.
        let mut strict = ListColumn::new(DataType::Long, 1);
        assert!(!strict.push_ref(c.get(0), false));
        assert!(!strict.push_values(&longs(&[Some(1), None]), false));
        assert!(strict.push_ref(c.get(3), false));
        assert!(strict.push_ref(c.get(1), true));
        assert_eq!(strict.len(), 2);
        assert_eq!(strict.values().len(), 2);
    }
}
