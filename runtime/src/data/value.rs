//! A value read from a column without copying it: what key hashing, key
//! comparison and messages use where an owned [`Value`] would allocate.

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
        }
    }
}
