//! One field's values over the rows of a batch, typed as the compiler's
//! schema says: `i64` for int, long and timestamp, `f64`, `bool`, and
//! strings as one UTF-8 buffer with offsets (as Arrow's `Utf8`).
//!
//! Columns never allocate per value: appending a string copies its bytes
//! into the column's buffer. A column has room for a validity bitmap
//! (nullable types): it would sit next to [`Column::data`] and every
//! operation here would carry it along.

use super::value::ValueRef;
use crate::record::Value;
use flowc_compiler::ir::DataType;

/// Strings of one column: the bytes of all, back to back, and where each
/// starts. `offsets` has one more entry than there are strings, the first
/// is 0, and each is a char boundary of `data` (so slicing never fails).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrColumn {
    offsets: Vec<usize>,
    data: String,
}

impl Default for StrColumn {
    fn default() -> StrColumn {
        StrColumn::new()
    }
}

impl StrColumn {
    pub fn new() -> StrColumn {
        StrColumn { offsets: vec![0], data: String::new() }
    }

    pub fn with_capacity(rows: usize, bytes: usize) -> StrColumn {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        StrColumn { offsets, data: String::with_capacity(bytes) }
    }

    /// Builds a column from its parts, checking every invariant: what the
    /// wire decoder uses on bytes from a peer.
    pub fn from_parts(offsets: Vec<usize>, data: String) -> Result<StrColumn, String> {
        if offsets.first() != Some(&0) {
            return Err("string offsets do not start at 0".into());
        }
        if offsets.last().copied() != Some(data.len()) {
            return Err("string offsets do not end at the end of the bytes".into());
        }
        if offsets.windows(2).any(|w| w[0] > w[1]) {
            return Err("string offsets go backwards".into());
        }
        if offsets.iter().any(|o| !data.is_char_boundary(*o)) {
            return Err("a string offset splits a character".into());
        }
        Ok(StrColumn { offsets, data })
    }

    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The string of row `i`; empty past the end (callers check lengths).
    #[inline]
    pub fn get(&self, i: usize) -> &str {
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&a), Some(&b)) => self.data.get(a..b).unwrap_or(""),
            _ => "",
        }
    }

    /// The bytes of row `i` (for hashing and comparing: no char boundary
    /// checks); empty past the end.
    #[inline]
    pub fn bytes(&self, i: usize) -> &[u8] {
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&a), Some(&b)) => self.data.as_bytes().get(a..b).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// The bytes of every row, in order.
    pub fn iter_bytes(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        let bytes = self.data.as_bytes();
        self.offsets.windows(2).map(move |w| bytes.get(w[0]..w[1]).unwrap_or(&[]))
    }

    pub fn push(&mut self, s: &str) {
        self.data.push_str(s);
        self.offsets.push(self.data.len());
    }

    /// Appends the characters of `parts` as one string.
    pub fn push_concat<'a>(&mut self, parts: impl IntoIterator<Item = &'a str>) {
        for p in parts {
            self.data.push_str(p);
        }
        self.offsets.push(self.data.len());
    }

    /// Appends a string written by `f` straight into the buffer.
    pub fn push_with(&mut self, f: impl FnOnce(&mut String)) {
        f(&mut self.data);
        self.offsets.push(self.data.len());
    }

    /// Removes the last string.
    pub fn pop(&mut self) {
        if self.offsets.len() > 1 {
            self.offsets.pop();
            let end = self.offsets.last().copied().unwrap_or(0);
            self.data.truncate(end);
        }
    }

    pub fn truncate(&mut self, rows: usize) {
        if rows < self.len() {
            self.offsets.truncate(rows + 1);
            let end = self.offsets.last().copied().unwrap_or(0);
            self.data.truncate(end);
        }
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }

    /// The offsets (one more than the rows) and the bytes.
    pub fn offsets(&self) -> &[usize] {
        &self.offsets
    }

    pub fn data(&self) -> &str {
        &self.data
    }

    /// The rows at `rows`, in that order.
    pub fn gather(&self, rows: &[u32]) -> StrColumn {
        let mut out = StrColumn::with_capacity(rows.len(), 0);
        out.extend_rows(self, rows);
        out
    }

    /// Appends the rows at `rows` of `src`.
    pub fn extend_rows(&mut self, src: &StrColumn, rows: &[u32]) {
        // Room for strings of the source's average length; more grows as needed.
        self.data.reserve((src.data.len() / src.len().max(1) + 1) * rows.len());
        self.offsets.reserve(rows.len());
        for &r in rows {
            let r = r as usize;
            if let (Some(&a), Some(&b)) = (src.offsets.get(r), src.offsets.get(r + 1)) {
                self.data.push_str(src.data.get(a..b).unwrap_or(""));
            }
            self.offsets.push(self.data.len());
        }
    }

    /// Appends every row of `src`.
    pub fn extend(&mut self, src: &StrColumn) {
        let base = self.data.len();
        self.data.push_str(&src.data);
        self.offsets.extend(src.offsets[1..].iter().map(|o| o + base));
    }
}

/// The values of a column, by how they are stored.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// int, long, timestamp
    I64(Vec<i64>),
    F64(Vec<f64>),
    Bool(Vec<bool>),
    Str(StrColumn),
}

/// One field of a batch: its type and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub ty: DataType,
    pub data: Data,
}

/// The storage a type uses.
pub fn empty_data(ty: DataType, rows: usize) -> Data {
    match ty {
        DataType::Int | DataType::Long | DataType::Timestamp => Data::I64(Vec::with_capacity(rows)),
        DataType::Double => Data::F64(Vec::with_capacity(rows)),
        DataType::Bool => Data::Bool(Vec::with_capacity(rows)),
        DataType::String => Data::Str(StrColumn::with_capacity(rows, rows * 8)),
    }
}

/// Whether `data` is the storage of `ty`.
pub fn stores(ty: DataType, data: &Data) -> bool {
    matches!(
        (ty, data),
        (DataType::Int | DataType::Long | DataType::Timestamp, Data::I64(_))
            | (DataType::Double, Data::F64(_))
            | (DataType::Bool, Data::Bool(_))
            | (DataType::String, Data::Str(_))
    )
}

impl Column {
    pub fn empty(ty: DataType, rows: usize) -> Column {
        Column { ty, data: empty_data(ty, rows) }
    }

    pub fn len(&self) -> usize {
        match &self.data {
            Data::I64(v) => v.len(),
            Data::F64(v) => v.len(),
            Data::Bool(v) => v.len(),
            Data::Str(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of row `i` (for state, messages and tests: allocates).
    pub fn value(&self, i: usize) -> Option<Value> {
        self.value_ref(i).map(ValueRef::to_value)
    }

    /// The value of row `i`, borrowed.
    pub fn value_ref(&self, i: usize) -> Option<ValueRef<'_>> {
        Some(match (&self.data, self.ty) {
            (Data::I64(v), DataType::Timestamp) => ValueRef::Timestamp(*v.get(i)?),
            (Data::I64(v), _) => ValueRef::Int(*v.get(i)?),
            (Data::F64(v), _) => ValueRef::Double(*v.get(i)?),
            (Data::Bool(v), _) => ValueRef::Bool(*v.get(i)?),
            (Data::Str(s), _) => {
                if i >= s.len() {
                    return None;
                }
                ValueRef::Str(s.get(i))
            }
        })
    }

    /// Appends a value; `false` if it is not of the column's storage.
    pub fn push_value(&mut self, v: ValueRef<'_>) -> bool {
        match (&mut self.data, v) {
            (Data::I64(c), ValueRef::Int(x) | ValueRef::Timestamp(x)) => c.push(x),
            (Data::F64(c), ValueRef::Double(x)) => c.push(x),
            (Data::Bool(c), ValueRef::Bool(x)) => c.push(x),
            (Data::Str(c), ValueRef::Str(x)) => c.push(x),
            _ => return false,
        }
        true
    }

    /// The rows at `rows`, in that order.
    pub fn gather(&self, rows: &[u32]) -> Column {
        let data = match &self.data {
            Data::I64(v) => Data::I64(rows.iter().map(|&r| v[r as usize]).collect()),
            Data::F64(v) => Data::F64(rows.iter().map(|&r| v[r as usize]).collect()),
            Data::Bool(v) => Data::Bool(rows.iter().map(|&r| v[r as usize]).collect()),
            Data::Str(s) => Data::Str(s.gather(rows)),
        };
        Column { ty: self.ty, data }
    }

    /// Appends the rows at `rows` of `src` (of the same storage; others are
    /// a bug, reported by the caller's layout check, and append nothing).
    pub fn extend_rows(&mut self, src: &Column, rows: &[u32]) {
        match (&mut self.data, &src.data) {
            (Data::I64(d), Data::I64(s)) => d.extend(rows.iter().map(|&r| s[r as usize])),
            (Data::F64(d), Data::F64(s)) => d.extend(rows.iter().map(|&r| s[r as usize])),
            (Data::Bool(d), Data::Bool(s)) => d.extend(rows.iter().map(|&r| s[r as usize])),
            (Data::Str(d), Data::Str(s)) => d.extend_rows(s, rows),
            _ => {}
        }
    }

    /// Appends every row of `src` (of the same storage).
    pub fn extend(&mut self, src: &Column) {
        match (&mut self.data, &src.data) {
            (Data::I64(d), Data::I64(s)) => d.extend_from_slice(s),
            (Data::F64(d), Data::F64(s)) => d.extend_from_slice(s),
            (Data::Bool(d), Data::Bool(s)) => d.extend_from_slice(s),
            (Data::Str(d), Data::Str(s)) => d.extend(s),
            _ => {}
        }
    }

    pub fn truncate(&mut self, rows: usize) {
        match &mut self.data {
            Data::I64(v) => v.truncate(rows),
            Data::F64(v) => v.truncate(rows),
            Data::Bool(v) => v.truncate(rows),
            Data::Str(s) => s.truncate(rows),
        }
    }

    /// Removes the last value.
    pub fn pop(&mut self) {
        match &mut self.data {
            Data::I64(v) => {
                v.pop();
            }
            Data::F64(v) => {
                v.pop();
            }
            Data::Bool(v) => {
                v.pop();
            }
            Data::Str(s) => s.pop(),
        }
    }

    /// The bytes the data plane's encoding of this column takes
    /// (`data::wire`), without looking at the values.
    pub fn encoded_len(&self) -> usize {
        1 + match &self.data {
            Data::I64(v) => 4 + 8 * v.len(),
            Data::F64(v) => 4 + 8 * v.len(),
            Data::Bool(v) => 4 + v.len(),
            Data::Str(s) => 4 + 4 * (s.len() + 1) + 4 + s.data().len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_push_gather_and_roll_back() {
        let mut c = StrColumn::new();
        for s in ["/help", "", "héllo", "/shop"] {
            c.push(s);
        }
        assert_eq!(c.iter().collect::<Vec<_>>(), vec!["/help", "", "héllo", "/shop"]);
        assert_eq!(c.gather(&[3, 2, 2]).iter().collect::<Vec<_>>(), vec!["/shop", "héllo", "héllo"]);
        c.truncate(2);
        c.push("x");
        assert_eq!(c.iter().collect::<Vec<_>>(), vec!["/help", "", "x"]);
        c.pop();
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(7), "");
        let mut d = StrColumn::new();
        d.push("a");
        d.extend(&c);
        assert_eq!(d.iter().collect::<Vec<_>>(), vec!["a", "/help", ""]);
    }

    #[test]
    fn parts_are_checked() {
        let ok = StrColumn::from_parts(vec![0, 1, 3], "aé".to_string()).expect("valid");
        assert_eq!(ok.get(1), "é");
        assert!(StrColumn::from_parts(vec![0, 2, 3], "aé".to_string()).is_err());
        assert!(StrColumn::from_parts(vec![0, 3, 1], "aé".to_string()).is_err());
        assert!(StrColumn::from_parts(vec![1, 3], "aé".to_string()).is_err());
        assert!(StrColumn::from_parts(vec![0, 1], "aé".to_string()).is_err());
        assert!(StrColumn::from_parts(vec![], String::new()).is_err());
    }

    #[test]
    fn typed_values() {
        let mut c = Column::empty(DataType::Timestamp, 2);
        assert!(c.push_value(ValueRef::Timestamp(5)));
        assert!(!c.push_value(ValueRef::Str("x")));
        assert_eq!(c.value(0), Some(Value::Timestamp(5)));
        assert_eq!(c.value(1), None);
    }
}
