//! `hash(x, …)`: the key-group hash of the values as a `long`
//! ([`key_hash_refs`](crate::keygroup::key_hash_refs)): stable across
//! processes and flowc versions, as the key groups of state depend on it.

use super::functions::{Arg, ColumnFunction, FnError};
use crate::data::{Column, Data, ValueRef};
use flowc_compiler::ir::DataType;

#[derive(Debug)]
pub struct HashFn {
    /// The types of the arguments: an int and a timestamp of the same
    /// value hash differently, as keys do.
    pub args: Vec<DataType>,
}

impl ColumnFunction for HashFn {
    fn name(&self) -> &str {
        "hash"
    }
    fn return_type(&self) -> DataType {
        DataType::Long
    }
    fn fallible(&self) -> bool {
        false
    }
    fn invoke(&self, args: &[Arg<'_>], n: usize) -> Result<Column, FnError> {
        fn value<'a>(a: &'a Arg<'_>, t: DataType, k: usize) -> ValueRef<'a> {
            match a {
                Arg::I64(v) if t == DataType::Timestamp => ValueRef::Timestamp(v.get(k)),
                Arg::I64(v) => ValueRef::Int(v.get(k)),
                Arg::F64(v) => ValueRef::Double(v.get(k)),
                Arg::Bool(v) => ValueRef::Bool(v.get(k)),
                Arg::Str(v) => ValueRef::Str(v.get(k)),
                // The checker refuses to hash arrays.
                Arg::List(_) => ValueRef::Null,
            }
        }
        let out = (0..n)
            .map(|k| {
                let h = crate::keygroup::key_hash_refs(args.iter().zip(&self.args).map(|(a, t)| value(a, *t, k)));
                h as i64
            })
            .collect();
        Ok(Column::new(DataType::Long, Data::I64(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::vals::{I64s, Strs};
    use crate::record::Value;

    #[test]
    fn is_the_key_hash() {
        let f = HashFn { args: vec![DataType::String, DataType::Long] };
        let c = f.invoke(&[Arg::Str(Strs::Scalar("/index")), Arg::I64(I64s::Scalar(7))], 1).expect("hashes");
        let want = crate::keygroup::key_hash([&Value::Str("/index".into()), &Value::Int(7)]) as i64;
        assert_eq!(c.value(0), Some(Value::Int(want)));
    }
}
