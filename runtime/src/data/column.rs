//! One field's values over the rows of a batch, typed as the compiler's
//! schema says: `i64` for int, long and timestamp, `f64`, `bool`, and
//! strings ([`StrColumn`]: one UTF-8 buffer with offsets, as Arrow's
//! `Utf8`, or ids into a shared dictionary).
//!
//! Columns never allocate per value: appending a string copies its bytes
//! into the column's buffer (or its id). A column has room for a validity bitmap
//! (nullable types): it would sit next to [`Column::data`] and every
//! operation here would carry it along.

pub use super::strings::StrColumn;
use super::value::ValueRef;
use crate::record::Value;
use flowc_compiler::ir::DataType;

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
            Data::Str(s) => s.encoded_len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values() {
        let mut c = Column::empty(DataType::Timestamp, 2);
        assert!(c.push_value(ValueRef::Timestamp(5)));
        assert!(!c.push_value(ValueRef::Str("x")));
        assert_eq!(c.value(0), Some(Value::Timestamp(5)));
        assert_eq!(c.value(1), None);
    }
}
