//! A call of a Rust UDF in a compiled expression: a [`ColumnFunction`]
//! that encodes its argument columns in the UDF column format
//! (`flowc_compiler::udf::codegen`), calls the library once per batch, and
//! decodes the result column, or the row the function failed on and why
//! (a panic's message and place). An `Option` parameter's column carries
//! its nulls; an `Option` result's column its nulls. An array (`Vec<T>`)
//! is its offsets and its elements' column, read from and built into a
//! list column directly (no `Value` per element).

use super::functions::{Arg, ColumnFunction, FnError};
use crate::data::{ArrayRef, Column, Data, ListColumn, StrColumn, Validity, ValueRef};
use crate::udf::Backend;
use flowc_compiler::ir::DataType;
use flowc_compiler::udf::codegen::{self, TAG_BOOL, TAG_F64, TAG_I64, TAG_LIST, TAG_STR};
use flowc_compiler::udf::UdfSignature;
use std::sync::Arc;

/// Function `index` of a library, as one task calls it.
#[derive(Debug)]
pub struct UdfFunction {
    pub signature: UdfSignature,
    pub index: u32,
    pub backend: Arc<Backend>,
}

impl ColumnFunction for UdfFunction {
    fn name(&self) -> &str {
        &self.signature.name
    }

    fn return_type(&self) -> DataType {
        self.signature.ret.data_type()
    }

    fn takes_nulls(&self, i: usize) -> bool {
        self.signature.params.get(i).is_some_and(|p| p.ty.optional)
    }

    fn invoke(&self, args: &[Arg<'_>], n: usize) -> Result<Column, FnError> {
        self.invoke_nullable(args, &[], n)
    }

    fn invoke_nullable(&self, args: &[Arg<'_>], nulls: &[Option<Validity>], n: usize) -> Result<Column, FnError> {
        let input = encode(&self.signature, args, nulls, n);
        let out = self
            .backend
            .call(self.index, &input)
            .map_err(|m| FnError { k: 0, message: format!("`{}`: {m}", self.signature.name) })?;
        decode(&out, &self.signature, n)
    }
}

fn put_u32(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&(v as u32).to_le_bytes());
}

/// A column's tag and nulls: a byte per row where `valid` has a null.
fn head(out: &mut Vec<u8>, tag: u8, valid: Option<&Validity>, n: usize) {
    out.push(tag);
    match valid.filter(|v| v.null_count() > 0) {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            out.extend((0..n).map(|k| u8::from(v.get(k))));
        }
    }
}

/// The argument columns of a call of `sig` in the UDF column format;
/// `nulls[i]` (if any) is argument `i`'s validity.
pub fn encode(sig: &UdfSignature, args: &[Arg<'_>], nulls: &[Option<Validity>], n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + args.len() * (2 + n * 8));
    put_u32(&mut out, n);
    put_u32(&mut out, args.len());
    for (i, a) in args.iter().enumerate() {
        let valid = nulls.get(i).and_then(Option::as_ref);
        match a {
            Arg::I64(v) => {
                head(&mut out, TAG_I64, valid, n);
                (0..n).for_each(|k| out.extend_from_slice(&v.get(k).to_le_bytes()));
            }
            Arg::F64(v) => {
                head(&mut out, TAG_F64, valid, n);
                (0..n).for_each(|k| out.extend_from_slice(&v.get(k).to_bits().to_le_bytes()));
            }
            Arg::Bool(v) => {
                head(&mut out, TAG_BOOL, valid, n);
                (0..n).for_each(|k| out.push(u8::from(v.get(k))));
            }
            Arg::Str(v) => {
                head(&mut out, TAG_STR, valid, n);
                let mut end = 0usize;
                put_u32(&mut out, 0);
                for k in 0..n {
                    end += v.get(k).len();
                    put_u32(&mut out, end);
                }
                (0..n).for_each(|k| out.extend_from_slice(v.get(k).as_bytes()));
            }
            Arg::List(v) => {
                // The checker passes arrays to `Vec` parameters only.
                let tag = sig.params.get(i).map_or(TAG_I64, |p| codegen::tag(p.ty.rust));
                head(&mut out, TAG_LIST, valid, n);
                let mut elements = Elements::new(tag);
                put_u32(&mut out, 0);
                for k in 0..n {
                    elements.push_array(v.get(k));
                    put_u32(&mut out, elements.len);
                }
                elements.write(&mut out);
            }
        }
    }
    out
}

/// An argument's array elements, as one column of the format.
struct Elements {
    tag: u8,
    len: usize,
    valid: Vec<u8>,
    nulls: bool,
    /// Fixed-size values, or a string's bytes.
    values: Vec<u8>,
    /// A string's ends.
    ends: Vec<u8>,
}

impl Elements {
    fn new(tag: u8) -> Elements {
        Elements { tag, len: 0, valid: Vec::new(), nulls: false, values: Vec::new(), ends: Vec::new() }
    }

    /// The elements of one array: straight from a list column's element
    /// column (no value per element), or those of a constant.
    fn push_array(&mut self, a: ArrayRef<'_>) {
        let ArrayRef::Slice { values, start, end } = a else {
            a.iter().for_each(|x| self.push(x));
            return;
        };
        let end = end.min(values.len());
        let start = start.min(end);
        match (self.tag, &values.data) {
            (TAG_I64, Data::I64(v)) => {
                v[start..end].iter().for_each(|x| self.values.extend_from_slice(&x.to_le_bytes()))
            }
            (TAG_F64, Data::F64(v)) => {
                v[start..end].iter().for_each(|x| self.values.extend_from_slice(&x.to_bits().to_le_bytes()))
            }
            (TAG_BOOL, Data::Bool(v)) => self.values.extend(v[start..end].iter().map(|b| u8::from(*b))),
            (TAG_STR, Data::Str(v)) => (start..end).for_each(|j| {
                self.values.extend_from_slice(v.get(j).as_bytes());
                put_u32(&mut self.ends, self.values.len());
            }),
            // Another storage than the parameter's (a bug): as values.
            _ => {
                a.iter().for_each(|x| self.push(x));
                return;
            }
        }
        self.len += end - start;
        for j in start..end {
            let present = values.is_valid(j);
            self.valid.push(u8::from(present));
            self.nulls |= !present;
        }
    }

    fn push(&mut self, x: ValueRef<'_>) {
        self.len += 1;
        self.valid.push(u8::from(!matches!(x, ValueRef::Null)));
        self.nulls |= matches!(x, ValueRef::Null);
        match (self.tag, x) {
            (TAG_I64, ValueRef::Int(v) | ValueRef::Timestamp(v)) => self.values.extend_from_slice(&v.to_le_bytes()),
            (TAG_F64, ValueRef::Double(v)) => self.values.extend_from_slice(&v.to_bits().to_le_bytes()),
            (TAG_BOOL, ValueRef::Bool(v)) => self.values.push(u8::from(v)),
            (TAG_STR, ValueRef::Str(v)) => self.values.extend_from_slice(v.as_bytes()),
            // A null (or, a bug, another type): the type's default.
            (TAG_I64 | TAG_F64, _) => self.values.extend_from_slice(&[0; 8]),
            (TAG_BOOL, _) => self.values.push(0),
            _ => {}
        }
        if self.tag == TAG_STR {
            put_u32(&mut self.ends, self.values.len());
        }
    }

    fn write(self, out: &mut Vec<u8>) {
        out.push(self.tag);
        if self.nulls {
            out.push(1);
            out.extend_from_slice(&self.valid);
        } else {
            out.push(0);
        }
        if self.tag == TAG_STR {
            put_u32(out, 0);
            out.extend_from_slice(&self.ends);
        }
        out.extend_from_slice(&self.values);
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(len).filter(|e| *e <= self.buf.len())?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Some(s)
    }
    fn u32(&mut self) -> Option<usize> {
        let b = self.take(4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
    fn u64s(&mut self, n: usize) -> Option<impl Iterator<Item = u64> + 'a> {
        let b = self.take(n.checked_mul(8)?)?;
        Some(b.chunks_exact(8).map(|c| {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            u64::from_le_bytes(a)
        }))
    }
}

/// The result of a call: `n` values of the function's type, or the row it
/// failed on.
pub fn decode(out: &[u8], sig: &UdfSignature, n: usize) -> Result<Column, FnError> {
    let bug = |what: &str| FnError {
        k: 0,
        message: format!("internal error: `{}` answered {what} (this is a bug in flowc)", sig.name),
    };
    let mut r = Reader { buf: out, pos: 0 };
    let status = r.take(1).ok_or_else(|| bug("nothing"))?[0];
    match status {
        0 => {}
        1 | 2 => {
            let row = r.u32().ok_or_else(|| bug("a truncated failure"))?;
            let len = r.u32().ok_or_else(|| bug("a truncated failure"))?;
            let message = String::from_utf8_lossy(r.take(len).ok_or_else(|| bug("a truncated failure"))?).into_owned();
            if status == 2 {
                return Err(bug(&format!("that it could not read its arguments: {message}")));
            }
            return Err(FnError { k: row.min(n.saturating_sub(1)), message });
        }
        s => return Err(bug(&format!("status {s}"))),
    }
    let rows = r.u32().ok_or_else(|| bug("a truncated result"))?;
    if rows != n {
        return Err(bug(&format!("{rows} values for {n} rows")));
    }
    let ret = sig.ret;
    let truncated = || bug("a truncated result");
    let tag = r.take(1).ok_or_else(truncated)?[0];
    let want = if ret.list.is_some() { TAG_LIST } else { codegen::tag(ret.rust) };
    if tag != want {
        return Err(bug(&format!("a column of tag {tag}")));
    }
    let validity = r.validity(n, ret.optional).map_err(|e| bug(&e))?;
    let data = match ret.list {
        None => r.values(tag, n).map_err(|e| bug(&e))?,
        Some(list) => {
            let offsets: Vec<u32> =
                (0..=n).map(|_| r.u32().map(|o| o as u32)).collect::<Option<_>>().ok_or_else(truncated)?;
            let count = offsets.last().copied().unwrap_or(0) as usize;
            let elem = codegen::tag(ret.rust);
            let got = r.take(1).ok_or_else(truncated)?[0];
            if got != elem {
                return Err(bug(&format!("elements of tag {got}")));
            }
            let elem_valid = r.validity(count, list.nulls).map_err(|e| bug(&e))?;
            let values = r.values(elem, count).map_err(|e| bug(&e))?;
            let values = Column::with_validity(ret.rust.data_type(), values, elem_valid);
            Data::List(Box::new(ListColumn::from_parts(offsets, values, list.nulls).map_err(|e| bug(&e))?))
        }
    };
    if r.pos != out.len() {
        return Err(bug("more than its result"));
    }
    Ok(Column::with_validity(ret.data_type(), data, validity))
}

impl Reader<'_> {
    /// A column's null flag and validity over `n` rows; nulls only where `nullable`.
    fn validity(&mut self, n: usize, nullable: bool) -> Result<Option<Validity>, String> {
        match self.take(1).ok_or("a truncated result")?[0] {
            0 => Ok(None),
            1 if nullable => {
                let bytes = self.take(n).ok_or("a truncated result")?;
                Ok(Some(Validity::from_bools(bytes.iter().map(|b| *b != 0))).filter(|v| v.null_count() > 0))
            }
            f => Err(format!("a null flag of {f}")),
        }
    }

    /// `n` values of a scalar column of `tag`.
    fn values(&mut self, tag: u8, n: usize) -> Result<Data, String> {
        let truncated = || "a truncated result".to_string();
        Ok(match tag {
            TAG_I64 => Data::I64(self.u64s(n).ok_or_else(truncated)?.map(|v| v as i64).collect()),
            TAG_F64 => Data::F64(self.u64s(n).ok_or_else(truncated)?.map(f64::from_bits).collect()),
            TAG_BOOL => Data::Bool(self.take(n).ok_or_else(truncated)?.iter().map(|b| *b != 0).collect()),
            _ => {
                let offsets: Vec<usize> = (0..=n).map(|_| self.u32()).collect::<Option<_>>().ok_or_else(truncated)?;
                let len = offsets.last().copied().unwrap_or(0);
                let bytes = self.take(len).ok_or_else(truncated)?;
                let text = String::from_utf8(bytes.to_vec()).map_err(|_| "a string that is not UTF-8".to_string())?;
                Data::Str(StrColumn::from_parts(offsets, text)?)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::vals::{I64s, Strs};
    use flowc_compiler::udf::{ListOf, RustType, UdfParam, UdfType};

    fn sig(ret: RustType) -> UdfSignature {
        UdfSignature {
            name: "f".into(),
            params: vec![UdfParam { name: "x".into(), ty: UdfType::scalar(RustType::I64) }],
            ret: UdfType::scalar(ret),
        }
    }

    #[test]
    fn encodes_arguments_in_the_column_format() {
        let mut s = StrColumn::new();
        s.push("ab");
        s.push("é");
        let nulls = [None, Some(Validity::from_bools([false, true]))];
        let out =
            encode(&sig(RustType::I64), &[Arg::I64(I64s::Slice(&[7, -1])), Arg::Str(Strs::Column(&s))], &nulls, 2);
        let mut want = vec![2, 0, 0, 0, 2, 0, 0, 0, TAG_I64, 0];
        want.extend_from_slice(&7i64.to_le_bytes());
        want.extend_from_slice(&(-1i64).to_le_bytes());
        // The string column has a null in row 0: a validity byte per row.
        want.extend_from_slice(&[TAG_STR, 1, 0, 1]);
        for o in [0u32, 2, 4] {
            want.extend_from_slice(&o.to_le_bytes());
        }
        want.extend_from_slice("abé".as_bytes());
        assert_eq!(out, want);
    }

    #[test]
    fn decodes_results_and_failures_and_refuses_what_does_not_fit() {
        let mut ok = vec![0, 2, 0, 0, 0, TAG_I64, 0];
        ok.extend_from_slice(&5i64.to_le_bytes());
        ok.extend_from_slice(&6i64.to_le_bytes());
        let c = decode(&ok, &sig(RustType::I64), 2).expect("decodes");
        assert_eq!(c.data, Data::I64(vec![5, 6]));
        // One value short, the wrong type, the wrong row count: bugs, said so.
        for bad in [&ok[..ok.len() - 1], &ok[..]] {
            let e = decode(bad, &sig(RustType::F64), 2).expect_err("refused");
            assert!(e.message.contains("this is a bug in flowc"), "{e:?}");
        }
        assert!(decode(&ok, &sig(RustType::I64), 3).is_err());
        let mut failed = vec![1, 1, 0, 0, 0, 4, 0, 0, 0];
        failed.extend_from_slice(b"boom");
        assert_eq!(decode(&failed, &sig(RustType::I64), 2), Err(FnError { k: 1, message: "boom".into() }));
    }

    fn list_sig(param: UdfType, ret: UdfType) -> UdfSignature {
        UdfSignature { name: "f".into(), params: vec![UdfParam { name: "xs".into(), ty: param }], ret }
    }

    fn longs(nulls: bool, optional: bool) -> UdfType {
        UdfType { rust: RustType::I64, optional, list: Some(ListOf { nulls }) }
    }

    #[test]
    fn encodes_arrays_as_offsets_and_an_element_column() {
        use crate::expr::vals::Lists;
        use flowc_compiler::ir::{DataType, Value};
        // [1, null], null, [] of a `Option<Vec<Option<i64>>>` parameter.
        let mut c = ListColumn::new(DataType::Long, 3);
        assert!(c.push_values(&[Value::Int(1), Value::Null], true));
        c.push_empty();
        c.push_empty();
        let nulls = [Some(Validity::from_bools([true, false, true]))];
        let sig = list_sig(longs(true, true), UdfType::scalar(RustType::I64));
        let out = encode(&sig, &[Arg::List(Lists::Column(&c))], &nulls, 3);
        let mut want = vec![3, 0, 0, 0, 1, 0, 0, 0, TAG_LIST, 1, 1, 0, 1];
        for o in [0u32, 2, 2, 2] {
            want.extend_from_slice(&o.to_le_bytes());
        }
        // The elements: a long column of 2 with a null.
        want.extend_from_slice(&[TAG_I64, 1, 1, 0]);
        want.extend_from_slice(&1i64.to_le_bytes());
        want.extend_from_slice(&0i64.to_le_bytes());
        assert_eq!(out, want);
        // No null element: no element validity; the element tag is the parameter's.
        let mut s = ListColumn::new(DataType::String, 1);
        assert!(s.push_values(&[Value::Str("é".into())], false));
        let sig = list_sig(
            UdfType { rust: RustType::String, optional: false, list: Some(ListOf { nulls: false }) },
            UdfType::scalar(RustType::I64),
        );
        let out = encode(&sig, &[Arg::List(Lists::Column(&s))], &[None], 1);
        let mut want = vec![1, 0, 0, 0, 1, 0, 0, 0, TAG_LIST, 0, 0, 0, 0, 0, 1, 0, 0, 0, TAG_STR, 0];
        for o in [0u32, 2] {
            want.extend_from_slice(&o.to_le_bytes());
        }
        want.extend_from_slice("é".as_bytes());
        assert_eq!(out, want);
    }

    #[test]
    fn decodes_an_array_result_into_a_list_column_and_refuses_nulls_it_may_not_have() {
        use flowc_compiler::ir::Value;
        // [7, null], null of an `Option<Vec<Option<i64>>>` result.
        let mut out = vec![0, 2, 0, 0, 0, TAG_LIST, 1, 1, 0];
        for o in [0u32, 2, 2] {
            out.extend_from_slice(&o.to_le_bytes());
        }
        out.extend_from_slice(&[TAG_I64, 1, 1, 0]);
        out.extend_from_slice(&7i64.to_le_bytes());
        out.extend_from_slice(&0i64.to_le_bytes());
        let c = decode(&out, &list_sig(longs(false, false), longs(true, true)), 2).expect("decodes");
        assert_eq!(c.value(0), Some(Value::Array(vec![Value::Int(7), Value::Null])));
        assert_eq!(c.value(1), Some(Value::Null));
        assert_eq!(c.ty, longs(true, true).data_type());
        // A `Vec<i64>` result has neither null arrays nor null elements.
        for ret in [longs(false, true), longs(true, false), longs(false, false)] {
            let e = decode(&out, &list_sig(longs(false, false), ret), 2).expect_err("refused");
            assert!(e.message.contains("this is a bug in flowc"), "{ret}: {e:?}");
        }
        // Offsets past the elements.
        let mut bad = out.clone();
        bad[13] = 3;
        assert!(decode(&bad, &list_sig(longs(false, false), longs(true, true)), 2).is_err());
    }

    proptest::proptest! {
        /// What a library answers is checked, never trusted: any damage to
        /// an array result (a byte changed, the answer cut short) is refused
        /// or decodes into a well-formed column; it never panics.
        #[test]
        fn a_damaged_array_result_is_refused_or_well_formed_and_never_panics(
            at in 0usize..64,
            byte in proptest::prelude::any::<u8>(),
            cut in 0usize..64,
        ) {
            let mut out = vec![0, 2, 0, 0, 0, TAG_LIST, 1, 1, 0];
            for o in [0u32, 2, 2] {
                out.extend_from_slice(&o.to_le_bytes());
            }
            out.extend_from_slice(&[TAG_STR, 1, 1, 0]);
            for o in [0u32, 2, 2] {
                out.extend_from_slice(&o.to_le_bytes());
            }
            out.extend_from_slice(b"ab");
            let sig = list_sig(
                longs(false, false),
                UdfType { rust: RustType::String, optional: true, list: Some(ListOf { nulls: true }) },
            );
            decode(&out, &sig, 2).expect("the undamaged answer decodes");
            let mut damaged = out.clone();
            let i = at % damaged.len();
            damaged[i] = byte;
            damaged.truncate(damaged.len() - cut % damaged.len());
            if let Ok(c) = decode(&damaged, &sig, 2) {
                proptest::prop_assert_eq!(c.len(), 2);
                let Data::List(l) = &c.data else { panic!("a list column") };
                proptest::prop_assert_eq!(l.offsets().last().map(|o| *o as usize), Some(l.values().len()));
            }
        }
    }

    #[test]
    fn an_option_result_decodes_its_nulls_and_a_plain_one_refuses_them() {
        let mut out = vec![0, 3, 0, 0, 0, TAG_I64, 1, 1, 0, 1];
        for v in [5i64, 0, 6] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let mut optional = sig(RustType::I64);
        optional.ret.optional = true;
        let c = decode(&out, &optional, 3).expect("decodes");
        assert_eq!(c.data, Data::I64(vec![5, 0, 6]));
        assert_eq!(c.validity, Some(Validity::from_bools([true, false, true])));
        let e = decode(&out, &sig(RustType::I64), 3).expect_err("a plain result has no nulls");
        assert!(e.message.contains("this is a bug in flowc"), "{e:?}");
    }
}
