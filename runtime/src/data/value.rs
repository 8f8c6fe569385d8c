//! A value read from a column without copying it: what key hashing, key
//! comparison and messages use where an owned [`Value`] would allocate.

use super::column::Column;
use crate::record::Value;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    Str(&'a str),
    Int(i64),
    Double(f64),
    Bool(bool),
    Timestamp(i64),
    /// No value (a nullable field).
    Null,
    /// An array's elements.
    Array(ArrayRef<'a>),
}

/// The elements of one array, borrowed: a slice of a list column's
/// element column, or an owned array's (a constant, a value in state).
#[derive(Debug, Clone, Copy)]
pub enum ArrayRef<'a> {
    Slice { values: &'a Column, start: usize, end: usize },
    Values(&'a [Value]),
}

impl<'a> ArrayRef<'a> {
    #[inline]
    pub fn len(&self) -> usize {
        match self {
            ArrayRef::Slice { start, end, .. } => end.saturating_sub(*start),
            ArrayRef::Values(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The j-th element (0-based); null past the end.
    #[inline]
    pub fn get(&self, j: usize) -> ValueRef<'a> {
        match *self {
            ArrayRef::Slice { values, start, end } if start + j < end => {
                values.value_ref(start + j).unwrap_or(ValueRef::Null)
            }
            ArrayRef::Slice { .. } => ValueRef::Null,
            ArrayRef::Values(v) => v.get(j).map_or(ValueRef::Null, ValueRef::from),
        }
    }

    /// The elements, borrowed.
    pub fn iter(&self) -> impl Iterator<Item = ValueRef<'a>> + 'a {
        let a = *self;
        (0..a.len()).map(move |j| a.get(j))
    }

    pub fn to_values(&self) -> Vec<Value> {
        self.iter().map(ValueRef::to_value).collect()
    }
}

/// Two arrays are equal when their elements are.
impl PartialEq for ArrayRef<'_> {
    fn eq(&self, other: &ArrayRef<'_>) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

impl<'a> ValueRef<'a> {
    pub fn to_value(self) -> Value {
        match self {
            ValueRef::Str(s) => Value::Str(s.to_string()),
            ValueRef::Int(i) => Value::Int(i),
            ValueRef::Double(d) => Value::Double(d),
            ValueRef::Bool(b) => Value::Bool(b),
            ValueRef::Timestamp(t) => Value::Timestamp(t),
            ValueRef::Null => Value::Null,
            ValueRef::Array(a) => Value::Array(a.to_values()),
        }
    }

    /// Equal as keys are: doubles by their bits, so that NaN keys group.
    pub fn key_eq(self, v: &Value) -> bool {
        match (self, v) {
            (ValueRef::Str(a), Value::Str(b)) => a == b,
            (ValueRef::Int(a), Value::Int(b)) | (ValueRef::Timestamp(a), Value::Timestamp(b)) => a == *b,
            (ValueRef::Double(a), Value::Double(b)) => a.to_bits() == b.to_bits(),
            (ValueRef::Bool(a), Value::Bool(b)) => a == *b,
            (ValueRef::Null, Value::Null) => true,
            (ValueRef::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.key_eq(y)),
            _ => false,
        }
    }
}

impl<'a> From<&'a Value> for ValueRef<'a> {
    fn from(v: &'a Value) -> ValueRef<'a> {
        match v {
            Value::Str(s) => ValueRef::Str(s),
            Value::Int(i) => ValueRef::Int(*i),
            Value::Double(d) => ValueRef::Double(*d),
            Value::Bool(b) => ValueRef::Bool(*b),
            Value::Timestamp(t) => ValueRef::Timestamp(*t),
            Value::Null => ValueRef::Null,
            Value::Array(items) => ValueRef::Array(ArrayRef::Values(items)),
        }
    }
}

impl fmt::Display for ValueRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueRef::Str(s) => write!(f, "{}", flowc_dsl::format::string(s)),
            ValueRef::Int(i) => write!(f, "{i}"),
            ValueRef::Double(d) => write!(f, "{d:?}"),
            ValueRef::Bool(b) => write!(f, "{b}"),
            ValueRef::Timestamp(t) => write!(f, "timestamp({t})"),
            ValueRef::Null => f.write_str("null"),
            ValueRef::Array(a) => write!(f, "{}", Value::Array(a.to_values())),
        }
    }
}
