//! Functions of arrays (`array<T>`), Flink SQL's collection functions:
//! `cardinality(a)`, `element_at(a, i)` (1-based, null out of range),
//! `array_contains(a, x)` and `split(s, sep)` (`SPLIT`); the constructor
//! `array(x, …)` (Flink SQL's `ARRAY[x, …]`) is a node of its own
//! ([`Node::MakeArray`](super::node)), as a null argument is a null
//! element rather than a null array.
//!
//! Each reads its array argument through [`Lists`]: a row's elements are
//! a slice of the list column's element column (or of a constant), so no
//! `Value` is built per record; results are list columns built the same
//! way. A null array is a null argument, which the caller
//! ([`Node::Call`](super::node)) turns into a null result. An element may
//! be null where the type says so (`array<long?>`): it is the element
//! column's validity, and reads as [`ValueRef::Null`]; `element_at` of
//! one is null, `cardinality` counts it, and `array_contains(a, x)` finds
//! it only for a null `x` ([`ArrayHasNullFn`], as Flink SQL).

use super::functions::{Arg, ColumnFunction, FnError};
use crate::data::{ArrayRef, Column, Data, ListColumn, ValueRef};
use flowc_compiler::ir::DataType;

fn bug(what: &str) -> FnError {
    FnError { k: 0, message: format!("internal error: {what} (this is a bug in flowc)") }
}

/// The k-th value of a scalar argument of type `t`, borrowed.
fn scalar<'a>(a: &'a Arg<'_>, t: DataType, k: usize) -> ValueRef<'a> {
    match a {
        Arg::I64(v) if t == DataType::Timestamp => ValueRef::Timestamp(v.get(k)),
        Arg::I64(v) => ValueRef::Int(v.get(k)),
        Arg::F64(v) => ValueRef::Double(v.get(k)),
        Arg::Bool(v) => ValueRef::Bool(v.get(k)),
        Arg::Str(v) => ValueRef::Str(v.get(k)),
        Arg::List(_) => ValueRef::Null,
    }
}

/// Appends an array of `items` to `out`, a column of arrays of their
/// element type; `false` (appending nothing) if it is not one.
pub(super) fn push_items(out: &mut Column, items: ArrayRef<'_>) -> bool {
    out.push_value(ValueRef::Array(items))
}

/// `cardinality(a)`: the number of elements, an int (Flink SQL's
/// `CARDINALITY`).
#[derive(Debug)]
pub struct CardinalityFn;

impl ColumnFunction for CardinalityFn {
    fn name(&self) -> &str {
        "cardinality"
    }
    fn return_type(&self) -> DataType {
        DataType::Int
    }
    fn fallible(&self) -> bool {
        false
    }
    fn invoke(&self, args: &[Arg<'_>], n: usize) -> Result<Column, FnError> {
        let Some(Arg::List(a)) = args.first() else { return Err(bug("cardinality() of a non-array")) };
        let counts = (0..n).map(|k| a.get(k).len() as i64).collect();
        Ok(Column::new(DataType::Int, Data::I64(counts)))
    }
}

/// `element_at(a, i)`: the `i`-th element, 1-based; null where `i` is 0,
/// negative or past the end (Flink SQL's `ELEMENT_AT`, and `a[i]`).
#[derive(Debug)]
pub struct ElementAtFn {
    pub element: DataType,
}

impl ColumnFunction for ElementAtFn {
    fn name(&self) -> &str {
        "element_at"
    }
    fn return_type(&self) -> DataType {
        self.element
    }
    fn fallible(&self) -> bool {
        false
    }
    fn invoke(&self, args: &[Arg<'_>], n: usize) -> Result<Column, FnError> {
        let (Some(Arg::List(a)), Some(Arg::I64(i))) = (args.first(), args.get(1)) else {
            return Err(bug("element_at() of the wrong arguments"));
        };
        let mut out = Column::empty(self.element, n);
        for k in 0..n {
            let items = a.get(k);
            let at = i.get(k);
            let v = match usize::try_from(at) {
                Ok(j) if j >= 1 && j <= items.len() => items.get(j - 1),
                _ => ValueRef::Null,
            };
            if !out.push_value(v) {
                return Err(bug("an element of another type"));
            }
        }
        Ok(out)
    }
}

/// `array_contains(a, x)`: whether an element equals `x` (Flink SQL's
/// `ARRAY_CONTAINS`; doubles compare as numbers, so NaN is in no array).
#[derive(Debug)]
pub struct ArrayContainsFn {
    pub element: DataType,
}

impl ColumnFunction for ArrayContainsFn {
    fn name(&self) -> &str {
        "array_contains"
    }
    fn return_type(&self) -> DataType {
        DataType::Bool
    }
    fn fallible(&self) -> bool {
        false
    }
    fn invoke(&self, args: &[Arg<'_>], n: usize) -> Result<Column, FnError> {
        let (Some(Arg::List(a)), Some(x)) = (args.first(), args.get(1)) else {
            return Err(bug("array_contains() of the wrong arguments"));
        };
        let found = match (a, x) {
            // Strings, the common case: bytes against bytes, no ValueRef per element.
            (super::vals::Lists::Column(c), Arg::Str(s)) => match &c.values().data {
                Data::Str(values) => {
                    let elements = c.values();
                    (0..n)
                        .map(|k| {
                            let (start, end) = c.range(k);
                            let needle = s.bytes(k);
                            (start..end).any(|j| values.bytes(j) == needle && elements.is_valid(j))
                        })
                        .collect()
                }
                _ => return Err(bug("array_contains() of a string and an array of something else")),
            },
            _ => (0..n)
                .map(|k| {
                    let items = a.get(k);
                    let needle = scalar(x, self.element, k);
                    (0..items.len()).any(|j| items.get(j) == needle)
                })
                .collect(),
        };
        Ok(Column::new(DataType::Bool, Data::Bool(found)))
    }
}

/// `array_contains(a, x)` where `x` is null: whether an element is null.
/// Flink SQL's `ARRAY_CONTAINS` finds a null needle among null elements
/// (and nowhere else): true or false, never null for a non-null array.
#[derive(Debug)]
pub struct ArrayHasNullFn;

impl ColumnFunction for ArrayHasNullFn {
    fn name(&self) -> &str {
        "array_contains"
    }
    fn return_type(&self) -> DataType {
        DataType::Bool
    }
    fn fallible(&self) -> bool {
        false
    }
    fn invoke(&self, args: &[Arg<'_>], n: usize) -> Result<Column, FnError> {
        let Some(Arg::List(a)) = args.first() else { return Err(bug("array_contains() of a non-array")) };
        let found = match a {
            // The element column's bitmap, read row by row: no ValueRef per element.
            super::vals::Lists::Column(c) if !c.has_null_elements() => vec![false; n],
            super::vals::Lists::Column(c) => (0..n)
                .map(|k| {
                    let (start, end) = c.range(k);
                    (start..end).any(|j| !c.values().is_valid(j))
                })
                .collect(),
            _ => (0..n)
                .map(|k| {
                    let items = a.get(k);
                    (0..items.len()).any(|j| items.get(j) == ValueRef::Null)
                })
                .collect(),
        };
        Ok(Column::new(DataType::Bool, Data::Bool(found)))
    }
}

/// `split(s, sep)`: the parts of `s` between occurrences of `sep`, an
/// `array<string>` (Flink SQL's `SPLIT`): `s` itself where `sep` does not
/// occur, an empty part where `sep` starts or ends `s` or occurs twice in
/// a row, and every character where `sep` is empty.
#[derive(Debug)]
pub struct SplitFn;

impl ColumnFunction for SplitFn {
    fn name(&self) -> &str {
        "split"
    }
    fn return_type(&self) -> DataType {
        DataType::Array(flowc_compiler::ir::Elem::STRING)
    }
    fn fallible(&self) -> bool {
        false
    }
    fn invoke(&self, args: &[Arg<'_>], n: usize) -> Result<Column, FnError> {
        let (Some(Arg::Str(s)), Some(Arg::Str(sep))) = (args.first(), args.get(1)) else {
            return Err(bug("split() of the wrong arguments"));
        };
        let mut list = ListColumn::new(DataType::String, n);
        for k in 0..n {
            let (text, sep) = (s.get(k), sep.get(k));
            let Data::Str(values) = &mut list.values_mut().data else { return Err(bug("split() into non-strings")) };
            if sep.is_empty() {
                let mut buf = [0u8; 4];
                text.chars().for_each(|c| values.push(c.encode_utf8(&mut buf)));
            } else {
                text.split(sep).for_each(|part| values.push(part));
            }
            list.close_row();
        }
        Ok(Column::new(self.return_type(), Data::List(Box::new(list))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::vals::{I64s, Lists, Strs};
    use crate::record::Value;

    fn tags() -> ListColumn {
        let mut c = ListColumn::new(DataType::String, 3);
        for row in [&["a", "b"][..], &[], &["c"]] {
            assert!(c.push_values(&row.iter().map(|s| Value::Str(s.to_string())).collect::<Vec<_>>(), false));
        }
        c
    }

    fn strs(c: &Column, k: usize) -> Value {
        c.value(k).expect("a row")
    }

    #[test]
    fn cardinality_element_at_and_contains_read_the_element_column() {
        let t = tags();
        let a = Arg::List(Lists::Column(&t));
        let c = CardinalityFn.invoke(&[a], 3).expect("counts");
        assert_eq!((0..3).map(|k| strs(&c, k)).collect::<Vec<_>>(), [2, 0, 1].map(Value::Int));
        let at = ElementAtFn { element: DataType::String };
        let s = |x: &str| Value::Str(x.into());
        let none = [Value::Null, Value::Null, Value::Null];
        for (i, want) in
            [(1, [s("a"), Value::Null, s("c")]), (2, [s("b"), Value::Null, Value::Null]), (0, none.clone()), (-1, none)]
        {
            let c = at.invoke(&[a, Arg::I64(I64s::Scalar(i))], 3).expect("elements");
            assert_eq!((0..3).map(|k| strs(&c, k)).collect::<Vec<_>>(), want, "element_at(_, {i})");
        }
        let has = ArrayContainsFn { element: DataType::String };
        let c = has.invoke(&[a, Arg::Str(Strs::Scalar("c"))], 3).expect("contains");
        assert_eq!((0..3).map(|k| strs(&c, k)).collect::<Vec<_>>(), [false, false, true].map(Value::Bool));
        let constant = [Value::Int(3), Value::Int(5)];
        let has = ArrayContainsFn { element: DataType::Long };
        let c =
            has.invoke(&[Arg::List(Lists::Scalar(&constant)), Arg::I64(I64s::Slice(&[5, 4]))], 2).expect("contains");
        assert_eq!((0..2).map(|k| strs(&c, k)).collect::<Vec<_>>(), [true, false].map(Value::Bool));
    }

    #[test]
    fn null_elements_as_flink_sql() {
        // ["a", null], [null, ""], [] of array<string?>
        let mut t = ListColumn::new(DataType::String, 3);
        let s = |x: &str| Value::Str(x.into());
        for row in [vec![s("a"), Value::Null], vec![Value::Null, s("")], vec![]] {
            assert!(t.push_values(&row, true));
        }
        let a = Arg::List(Lists::Column(&t));
        let c = CardinalityFn.invoke(&[a], 3).expect("counts");
        assert_eq!((0..3).map(|k| strs(&c, k)).collect::<Vec<_>>(), [2, 2, 0].map(Value::Int), "nulls count");
        let at = ElementAtFn { element: DataType::String };
        let c = at.invoke(&[a, Arg::I64(I64s::Scalar(2))], 3).expect("elements");
        assert_eq!((0..3).map(|k| strs(&c, k)).collect::<Vec<_>>(), [Value::Null, s(""), Value::Null]);
        // A null element holds "" in the data: it is no "" (the string fast path).
        let has = ArrayContainsFn { element: DataType::String };
        let c = has.invoke(&[a, Arg::Str(Strs::Scalar(""))], 3).expect("contains");
        assert_eq!((0..3).map(|k| strs(&c, k)).collect::<Vec<_>>(), [false, true, false].map(Value::Bool));
        let c = ArrayHasNullFn.invoke(&[a], 3).expect("contains null");
        assert_eq!((0..3).map(|k| strs(&c, k)).collect::<Vec<_>>(), [true, true, false].map(Value::Bool));
        let constant = [Value::Int(3), Value::Null];
        let c = ArrayHasNullFn.invoke(&[Arg::List(Lists::Scalar(&constant))], 1).expect("contains null");
        assert_eq!(c.value(0), Some(Value::Bool(true)));
        let has = ArrayContainsFn { element: DataType::Long };
        let c =
            has.invoke(&[Arg::List(Lists::Scalar(&constant)), Arg::I64(I64s::Slice(&[0, 3]))], 2).expect("contains");
        assert_eq!((0..2).map(|k| strs(&c, k)).collect::<Vec<_>>(), [false, true].map(Value::Bool), "a null is no 0");
    }

    #[test]
    fn split_follows_flink_sql() {
        let cases: [(&str, &str, &[&str]); 6] = [
            ("a,b,c", ",", &["a", "b", "c"]),
            ("abc", ",", &["abc"]),
            (",a,,b,", ",", &["", "a", "", "b", ""]),
            ("", ",", &[""]),
            ("héé", "", &["h", "é", "é"]),
            ("a::b", "::", &["a", "b"]),
        ];
        for (s, sep, want) in cases {
            let c = SplitFn.invoke(&[Arg::Str(Strs::Scalar(s)), Arg::Str(Strs::Scalar(sep))], 1).expect("splits");
            let want = Value::Array(want.iter().map(|p| Value::Str(p.to_string())).collect());
            assert_eq!(c.value(0), Some(want), "split({s:?}, {sep:?})");
        }
    }
}
