//! A call of a Rust UDF in a compiled expression: a [`ColumnFunction`]
//! that encodes its argument columns in the UDF column format
//! (`flowc_compiler::udf::codegen`), calls the library once per batch, and
//! decodes the result column, or the row the function failed on and why
//! (a panic's message and place, a `None`).

use super::functions::{Arg, ColumnFunction, FnError};
use crate::data::{Column, Data, StrColumn};
use crate::udf::Backend;
use flowc_compiler::ir::DataType;
use flowc_compiler::udf::codegen::{self, TAG_BOOL, TAG_F64, TAG_I64, TAG_STR};
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

    fn invoke(&self, args: &[Arg<'_>], n: usize) -> Result<Column, FnError> {
        let input = encode(args, n);
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

/// The argument columns in the UDF column format.
pub fn encode(args: &[Arg<'_>], n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + args.len() * (1 + n * 8));
    put_u32(&mut out, n);
    put_u32(&mut out, args.len());
    for a in args {
        match a {
            Arg::I64(v) => {
                out.push(TAG_I64);
                (0..n).for_each(|k| out.extend_from_slice(&v.get(k).to_le_bytes()));
            }
            Arg::F64(v) => {
                out.push(TAG_F64);
                (0..n).for_each(|k| out.extend_from_slice(&v.get(k).to_bits().to_le_bytes()));
            }
            Arg::Bool(v) => {
                out.push(TAG_BOOL);
                (0..n).for_each(|k| out.push(u8::from(v.get(k))));
            }
            Arg::Str(v) => {
                out.push(TAG_STR);
                let mut end = 0usize;
                put_u32(&mut out, 0);
                for k in 0..n {
                    end += v.get(k).len();
                    put_u32(&mut out, end);
                }
                (0..n).for_each(|k| out.extend_from_slice(v.get(k).as_bytes()));
            }
            // A Rust function takes no arrays: the checker refuses the call.
            Arg::List(_) => {}
        }
    }
    out
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
    let tag = r.take(1).ok_or_else(|| bug("a truncated result"))?[0];
    if tag != codegen::tag(sig.ret.rust) {
        return Err(bug(&format!("a column of tag {tag}")));
    }
    let truncated = || bug("a truncated result");
    let data = match tag {
        TAG_I64 => Data::I64(r.u64s(n).ok_or_else(truncated)?.map(|v| v as i64).collect()),
        TAG_F64 => Data::F64(r.u64s(n).ok_or_else(truncated)?.map(f64::from_bits).collect()),
        TAG_BOOL => Data::Bool(r.take(n).ok_or_else(truncated)?.iter().map(|b| *b != 0).collect()),
        _ => {
            let offsets: Vec<usize> = (0..=n).map(|_| r.u32()).collect::<Option<_>>().ok_or_else(truncated)?;
            let len = offsets.last().copied().unwrap_or(0);
            let bytes = r.take(len).ok_or_else(truncated)?;
            let text = String::from_utf8(bytes.to_vec()).map_err(|_| bug("a string that is not UTF-8"))?;
            Data::Str(StrColumn::from_parts(offsets, text).map_err(|e| bug(&e))?)
        }
    };
    if r.pos != out.len() {
        return Err(bug("more than its result"));
    }
    Ok(Column::new(sig.ret.data_type(), data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::vals::{I64s, Strs};
    use flowc_compiler::udf::{RustType, UdfParam, UdfType};

    fn sig(ret: RustType) -> UdfSignature {
        let ty = UdfType { rust: RustType::I64, optional: false };
        UdfSignature {
            name: "f".into(),
            params: vec![UdfParam { name: "x".into(), ty }],
            ret: UdfType { rust: ret, optional: false },
        }
    }

    #[test]
    fn encodes_arguments_in_the_column_format() {
        let mut s = StrColumn::new();
        s.push("ab");
        s.push("é");
        let out = encode(&[Arg::I64(I64s::Slice(&[7, -1])), Arg::Str(Strs::Column(&s))], 2);
        let mut want = vec![2, 0, 0, 0, 2, 0, 0, 0, TAG_I64];
        want.extend_from_slice(&7i64.to_le_bytes());
        want.extend_from_slice(&(-1i64).to_le_bytes());
        want.push(TAG_STR);
        for o in [0u32, 2, 4] {
            want.extend_from_slice(&o.to_le_bytes());
        }
        want.extend_from_slice("abé".as_bytes());
        assert_eq!(out, want);
    }

    #[test]
    fn decodes_results_and_failures_and_refuses_what_does_not_fit() {
        let mut ok = vec![0, 2, 0, 0, 0, TAG_I64];
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
}
