//! One field's values over the rows of a batch, typed as the compiler's
//! schema says: `i64` for int, long and timestamp, `f64`, `bool`,
//! strings ([`StrColumn`]: one UTF-8 buffer with offsets, as Arrow's
//! `Utf8`, or ids into a shared dictionary), and arrays ([`ListColumn`]:
//! offsets into one column of elements, as Arrow's `List`).
//!
//! Columns never allocate per value: appending a string copies its bytes
//! into the column's buffer (or its id). A column of a nullable type may
//! carry a validity bitmap ([`Validity`]) next to [`Column::data`]; a null
//! row holds the type's default value (0, 0.0, false, "") in `data`, and
//! every operation here carries the bitmap along. A column without one
//! has no nulls.

pub use super::list::ListColumn;
pub use super::strings::StrColumn;
pub use super::validity::Validity;
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
    /// arrays (boxed: a list holds a column of its own)
    List(Box<ListColumn>),
}

/// One field of a batch: its type, its values, and which are null.
#[derive(Debug, Clone)]
pub struct Column {
    pub ty: DataType,
    pub data: Data,
    /// `None`: no row is null. Else one bit per row, clear for a null.
    pub validity: Option<Validity>,
}

/// Two columns are equal when they hold the same values (and the same
/// nulls), whatever a null row holds in `data`.
impl PartialEq for Column {
    fn eq(&self, other: &Column) -> bool {
        if self.ty != other.ty || self.len() != other.len() {
            return false;
        }
        if self.validity.is_none() && other.validity.is_none() {
            return self.data == other.data;
        }
        (0..self.len()).all(|i| self.value_ref(i) == other.value_ref(i))
    }
}

/// The storage a type uses.
pub fn empty_data(ty: DataType, rows: usize) -> Data {
    match ty {
        DataType::Int | DataType::Long | DataType::Timestamp => Data::I64(Vec::with_capacity(rows)),
        DataType::Double => Data::F64(Vec::with_capacity(rows)),
        DataType::Bool => Data::Bool(Vec::with_capacity(rows)),
        DataType::String => Data::Str(StrColumn::with_capacity(rows, rows * 8)),
        DataType::Array(e) => Data::List(Box::new(ListColumn::new(e.ty(), rows))),
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
    ) || matches!((ty, data), (DataType::Array(e), Data::List(l))
        if l.values().ty == e.ty() && (e.nullable() || !l.has_null_elements()))
}

impl Column {
    /// A column of `data` without nulls.
    pub fn new(ty: DataType, data: Data) -> Column {
        Column { ty, data, validity: None }
    }

    /// A column of `data` with these nulls (`None`: none); a bitmap without
    /// a null is dropped.
    pub fn with_validity(ty: DataType, data: Data, validity: Option<Validity>) -> Column {
        Column { ty, data, validity: validity.filter(|v| v.null_count() > 0) }
    }

    pub fn empty(ty: DataType, rows: usize) -> Column {
        Column::new(ty, empty_data(ty, rows))
    }

    /// `rows` nulls of `ty`.
    pub fn nulls(ty: DataType, rows: usize) -> Column {
        let mut c = Column::empty(ty, rows);
        for _ in 0..rows {
            c.push_null();
        }
        c
    }

    /// Whether row `i` holds a value (not null).
    #[inline]
    pub fn is_valid(&self, i: usize) -> bool {
        self.validity.as_ref().is_none_or(|v| v.get(i))
    }

    /// Whether any row is null.
    pub fn has_nulls(&self) -> bool {
        self.validity.as_ref().is_some_and(|v| v.null_count() > 0)
    }

    /// The bitmap, materialised (all valid) if the column had none.
    fn validity_mut(&mut self) -> &mut Validity {
        let len = self.len();
        self.validity.get_or_insert_with(|| Validity::all_valid(len))
    }

    /// Marks values appended straight to [`Column::data`] (by a decoder)
    /// as present in the bitmap, if the column has one.
    pub fn mark_appended_valid(&mut self) {
        let len = self.len();
        if let Some(v) = &mut self.validity {
            while v.len() < len {
                v.push(true);
            }
        }
    }

    /// Appends a null: the type's default value, marked absent.
    pub fn push_null(&mut self) {
        self.validity_mut();
        match &mut self.data {
            Data::I64(v) => v.push(0),
            Data::F64(v) => v.push(0.0),
            Data::Bool(v) => v.push(false),
            Data::Str(s) => s.push(""),
            Data::List(l) => l.push_empty(),
        }
        if let Some(v) = &mut self.validity {
            v.push(false);
        }
    }

    pub fn len(&self) -> usize {
        match &self.data {
            Data::I64(v) => v.len(),
            Data::F64(v) => v.len(),
            Data::Bool(v) => v.len(),
            Data::Str(s) => s.len(),
            Data::List(l) => l.len(),
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
        if !self.is_valid(i) {
            return (i < self.len()).then_some(ValueRef::Null);
        }
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
            (Data::List(l), _) => {
                if i >= l.len() {
                    return None;
                }
                ValueRef::Array(l.get(i))
            }
        })
    }

    /// Appends a value; `false` if it is not of the column's storage.
    pub fn push_value(&mut self, v: ValueRef<'_>) -> bool {
        if v == ValueRef::Null {
            self.push_null();
            return true;
        }
        match (&mut self.data, v) {
            (Data::I64(c), ValueRef::Int(x) | ValueRef::Timestamp(x)) => c.push(x),
            (Data::F64(c), ValueRef::Double(x)) => c.push(x),
            (Data::Bool(c), ValueRef::Bool(x)) => c.push(x),
            (Data::Str(c), ValueRef::Str(x)) => c.push(x),
            (Data::List(c), ValueRef::Array(a)) => {
                if !c.push_ref(a, self.ty.element_nullable()) {
                    return false;
                }
            }
            _ => return false,
        }
        if let Some(valid) = &mut self.validity {
            valid.push(true);
        }
        true
    }

    /// Appends an owned value; `false` if it is not of the column's storage.
    pub fn push_owned(&mut self, v: &Value) -> bool {
        self.push_value(ValueRef::from(v))
    }

    /// The rows at `rows`, in that order.
    pub fn gather(&self, rows: &[u32]) -> Column {
        let data = match &self.data {
            Data::I64(v) => Data::I64(rows.iter().map(|&r| v[r as usize]).collect()),
            Data::F64(v) => Data::F64(rows.iter().map(|&r| v[r as usize]).collect()),
            Data::Bool(v) => Data::Bool(rows.iter().map(|&r| v[r as usize]).collect()),
            Data::Str(s) => Data::Str(s.gather(rows)),
            Data::List(l) => Data::List(Box::new(l.gather(rows))),
        };
        Column::with_validity(self.ty, data, self.validity.as_ref().map(|v| v.gather(rows)))
    }

    /// Appends the rows at `rows` of `src` (of the same storage; others are
    /// a bug, reported by the caller's layout check, and append nothing).
    pub fn extend_rows(&mut self, src: &Column, rows: &[u32]) {
        match (&mut self.data, &src.data) {
            (Data::I64(d), Data::I64(s)) => d.extend(rows.iter().map(|&r| s[r as usize])),
            (Data::F64(d), Data::F64(s)) => d.extend(rows.iter().map(|&r| s[r as usize])),
            (Data::Bool(d), Data::Bool(s)) => d.extend(rows.iter().map(|&r| s[r as usize])),
            (Data::Str(d), Data::Str(s)) => d.extend_rows(s, rows),
            (Data::List(d), Data::List(s)) => d.extend_rows(s, rows),
            _ => return,
        }
        match &src.validity {
            Some(sv) => {
                let picked = sv.gather(rows);
                let before = self.len() - rows.len();
                let mine = self.validity.get_or_insert_with(|| Validity::all_valid(before));
                mine.extend(&picked);
            }
            None => {
                if let Some(v) = &mut self.validity {
                    v.extend(&Validity::all_valid(rows.len()));
                }
            }
        }
    }

    /// Appends every row of `src` (of the same storage).
    pub fn extend(&mut self, src: &Column) {
        match (&mut self.data, &src.data) {
            (Data::I64(d), Data::I64(s)) => d.extend_from_slice(s),
            (Data::F64(d), Data::F64(s)) => d.extend_from_slice(s),
            (Data::Bool(d), Data::Bool(s)) => d.extend_from_slice(s),
            (Data::Str(d), Data::Str(s)) => d.extend(s),
            (Data::List(d), Data::List(s)) => d.extend(s),
            _ => return,
        }
        match &src.validity {
            Some(sv) => {
                let before = self.len() - src.len();
                self.validity.get_or_insert_with(|| Validity::all_valid(before)).extend(sv);
            }
            None => {
                if let Some(v) = &mut self.validity {
                    v.extend(&Validity::all_valid(src.len()));
                }
            }
        }
    }

    pub fn truncate(&mut self, rows: usize) {
        match &mut self.data {
            Data::I64(v) => v.truncate(rows),
            Data::F64(v) => v.truncate(rows),
            Data::Bool(v) => v.truncate(rows),
            Data::Str(s) => s.truncate(rows),
            Data::List(l) => l.truncate(rows),
        }
        if let Some(v) = &mut self.validity {
            v.truncate(rows);
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
            Data::List(l) => l.pop(),
        }
        if let Some(v) = &mut self.validity {
            v.pop();
        }
    }

    /// The bytes the data plane's encoding of this column takes
    /// (`data::wire`), without looking at the values.
    pub fn encoded_len(&self) -> usize {
        let validity = self.validity.as_ref().map_or(0, |v| 4 + v.len().div_ceil(8));
        1 + validity
            + match &self.data {
                Data::I64(v) => 4 + 8 * v.len(),
                Data::F64(v) => 4 + 8 * v.len(),
                Data::Bool(v) => 4 + v.len(),
                Data::Str(s) => s.encoded_len(),
                Data::List(l) => l.encoded_len(),
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

    #[test]
    fn nulls_follow_every_operation() {
        let mut c = Column::empty(DataType::Long, 4);
        assert!(c.push_value(ValueRef::Int(1)));
        assert!(c.validity.is_none(), "no bitmap until the first null");
        assert!(c.push_value(ValueRef::Null));
        assert!(c.push_value(ValueRef::Int(3)));
        assert_eq!(c.len(), 3);
        assert_eq!(c.value(1), Some(Value::Null));
        assert!(c.is_valid(0) && !c.is_valid(1) && c.is_valid(2));
        let g = c.gather(&[2, 1, 1]);
        assert_eq!(g.value(0), Some(Value::Int(3)));
        assert_eq!(g.value(2), Some(Value::Null));
        assert!(c.gather(&[0, 2]).validity.is_none(), "a gather without nulls drops the bitmap");
        let mut plain = Column::empty(DataType::Long, 4);
        plain.push_value(ValueRef::Int(9));
        plain.extend(&c);
        assert_eq!(plain.value(0), Some(Value::Int(9)));
        assert_eq!(plain.value(2), Some(Value::Null));
        plain.extend_rows(&Column::new(DataType::Long, Data::I64(vec![7])), &[0]);
        assert_eq!(plain.value(4), Some(Value::Int(7)));
        let mut e = Column::empty(DataType::Long, 1);
        e.extend_rows(&c, &[1]);
        assert_eq!(e.value(0), Some(Value::Null));
        plain.truncate(2);
        plain.pop();
        assert_eq!(plain.len(), 1);
        assert_eq!(plain.value(0), Some(Value::Int(9)));
        assert_eq!(Column::nulls(DataType::String, 2).value(1), Some(Value::Null));
    }
}
