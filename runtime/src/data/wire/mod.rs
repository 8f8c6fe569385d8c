//! The data plane's encoding of what travels between subtasks of different
//! TaskManagers: batches column by column, signals and barriers.
//!
//! ```text
//!  element  = tag u8 (0 records, 1 signal, 2 barrier, 3 end of input,
//!                     4 changelog records, 5 origins records), body
//!  records  = rows u32, columns u32, run(timestamps: rows × i64), column…
//!  changelog records = run(kinds: rows × u8: 0 +I, 1 -U, 2 +U, 3 -D), records
//!  column   = type u8 [| 0x40 nulls: run(validity: ⌈rows / 8⌉ bytes, bit set = value)],
//!             then the values:
//!             run(values)                                int, long, timestamp, double: rows × 8 bytes
//!                                                          bool: rows × 1 byte (0 or 1)
//!           | type u8 (string), run(offsets: (rows + 1) × u32), run(UTF-8 bytes)
//!           | type u8 (0x10 | element type: array, | 0x20 if its elements are nullable),
//!             run(offsets: (rows + 1) × u32),
//!             column (the elements, as many as the last offset; with a
//!             validity of its own where an element is null, which only
//!             an array of nullable elements may be)
//!  origins records: see [`origins`] (where each record was read, and its
//!             bytes as read, then changelog records or records)
//!  run      = byte length u32, bytes
//!  signal, barrier = bincode
//! ```
//!
//! Every integer is little-endian. Decoding checks every length against
//! what is left of the frame before it allocates, and every string offset
//! and byte, so a malformed frame is an error, never a panic or a large
//! allocation.

mod origins;

pub use origins::origins_len;

use super::batch::{Batch, RowKind};
use super::column::{Column, Data, ListColumn, StrColumn, Validity};
use crate::record::{Element, Signal};
use flowc_compiler::ir::{DataType, Elem};

/// The bytes of a batch's encoding before its columns, apart from the
/// timestamps' values: tag, rows, columns, the timestamps' run length.
pub const BATCH_HEADER_LEN: usize = 1 + 4 + 4 + 4;

const TAG_RECORDS: u8 = 0;
const TAG_SIGNAL: u8 = 1;
const TAG_BARRIER: u8 = 2;
const TAG_END: u8 = 3;
/// Records of a changelog stream: their kinds, then the records. Batches
/// without kinds (append-only) are written as before.
const TAG_CHANGELOG: u8 = 4;

/// The bytes a batch's kinds add to its encoding besides one per record:
/// the tag and the run's length.
pub const KINDS_HEADER_LEN: usize = 1 + 4;
/// Set in a string column's type code: the column is a dictionary and ids.
const DICTIONARY: u8 = 0x80;
/// Set in a column's type code: a validity bitmap follows (the column has nulls).
const NULLS: u8 = 0x40;
/// Set in a column's type code: an array of the element type in the low bits.
const ARRAY: u8 = 0x10;
/// Set in an array's type code: its elements may be null (`array<long?>`).
/// Frames of arrays without it are as they were before nullable elements.
const ELEMENT_NULLS: u8 = 0x20;
/// Signals and barriers are small; anything bigger is malformed.
const MAX_CONTROL: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed data frame: {0}")]
pub struct WireError(pub String);

fn bad<T>(m: impl Into<String>) -> Result<T, WireError> {
    Err(WireError(m.into()))
}

fn type_code(t: DataType) -> u8 {
    match t {
        DataType::String => 1,
        DataType::Int => 2,
        DataType::Long => 3,
        DataType::Double => 4,
        DataType::Bool => 5,
        DataType::Timestamp => 6,
        DataType::Array(e) if e.nullable() => ARRAY | ELEMENT_NULLS | type_code(e.ty()),
        DataType::Array(e) => ARRAY | type_code(e.ty()),
    }
}

fn code_type(c: u8) -> Option<DataType> {
    Some(match c {
        1 => DataType::String,
        2 => DataType::Int,
        3 => DataType::Long,
        4 => DataType::Double,
        5 => DataType::Bool,
        6 => DataType::Timestamp,
        c if c & ARRAY != 0 => {
            DataType::Array(Elem::of(code_type(c & !(ARRAY | ELEMENT_NULLS))?)?.with_nulls(c & ELEMENT_NULLS != 0))
        }
        _ => return None,
    })
}

fn put_u32(out: &mut Vec<u8>, n: usize) -> Result<(), WireError> {
    let n = u32::try_from(n).map_err(|_| WireError(format!("a run of {n} bytes does not fit a frame")))?;
    out.extend_from_slice(&n.to_le_bytes());
    Ok(())
}

/// Appends the encoding of `e` to `out`. Fails only for a batch too large
/// for the format (a run of 4 GiB or more).
pub fn encode_element(e: &Element, out: &mut Vec<u8>) -> Result<(), WireError> {
    let control = |out: &mut Vec<u8>, tag: u8, body: Result<Vec<u8>, bincode::error::EncodeError>| {
        out.push(tag);
        out.extend_from_slice(&body.map_err(|e| WireError(e.to_string()))?);
        Ok(())
    };
    match e {
        Element::Records(b) => encode_batch(b, out),
        Element::Signal(s) => control(out, TAG_SIGNAL, bincode::serde::encode_to_vec(s, bincode::config::standard())),
        Element::Barrier(b) => control(out, TAG_BARRIER, bincode::serde::encode_to_vec(b, bincode::config::standard())),
        Element::EndOfInput => {
            out.push(TAG_END);
            Ok(())
        }
    }
}

/// Appends the encoding of a batch (as [`Element::Records`]); it takes
/// exactly [`Batch::encoded_len`] bytes.
pub fn encode_batch(b: &Batch, out: &mut Vec<u8>) -> Result<(), WireError> {
    out.reserve(b.encoded_len());
    if let Some(o) = &b.origins {
        origins::put_origins(out, o)?;
    }
    if let Some(kinds) = &b.kinds {
        out.push(TAG_CHANGELOG);
        put_u32(out, kinds.len())?;
        out.extend(kinds.iter().map(|k| k.code()));
    }
    out.push(TAG_RECORDS);
    put_u32(out, b.len())?;
    put_u32(out, b.columns.len())?;
    put_u32(out, 8 * b.len())?;
    for t in &b.timestamps {
        out.extend_from_slice(&t.to_le_bytes());
    }
    for c in &b.columns {
        put_column(out, c)?;
    }
    Ok(())
}

/// Appends the encoding of one column: type code, validity, values.
fn put_column(out: &mut Vec<u8>, c: &Column) -> Result<(), WireError> {
    match &c.validity {
        Some(v) => {
            out.push(type_code(c.ty) | NULLS);
            let bytes = v.to_bytes();
            put_u32(out, bytes.len())?;
            out.extend_from_slice(&bytes);
        }
        None => out.push(type_code(c.ty)),
    }
    match &c.data {
        Data::I64(v) => {
            put_u32(out, 8 * v.len())?;
            v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
        }
        Data::F64(v) => {
            put_u32(out, 8 * v.len())?;
            v.iter().for_each(|x| out.extend_from_slice(&x.to_bits().to_le_bytes()));
        }
        Data::Bool(v) => {
            put_u32(out, v.len())?;
            out.extend(v.iter().map(|b| u8::from(*b)));
        }
        Data::Str(s) => {
            if let Some((dict, ids)) = s.dictionary() {
                // The dictionary form: its strings, then one id per row.
                let code_at = out.len() - 1 - c.validity.as_ref().map_or(0, |v| 4 + v.len().div_ceil(8));
                if let Some(code) = out.get_mut(code_at) {
                    *code |= DICTIONARY;
                }
                put_plain(out, dict)?;
                put_u32(out, 4 * ids.len())?;
                ids.iter().for_each(|i| out.extend_from_slice(&i.to_le_bytes()));
            } else {
                put_plain(out, s)?;
            }
        }
        Data::List(l) => {
            put_u32(out, 4 * l.offsets().len())?;
            l.offsets().iter().for_each(|o| out.extend_from_slice(&o.to_le_bytes()));
            put_column(out, l.values())?;
        }
    }
    Ok(())
}

/// The offsets and bytes of a plain string column (a dictionary's strings
/// are plain; anything else is written plain too).
fn put_plain(out: &mut Vec<u8>, s: &StrColumn) -> Result<(), WireError> {
    let plain;
    let (offsets, data) = match s.plain() {
        Some(p) => p,
        None => {
            plain = s.to_plain();
            plain.plain().unwrap_or((&[0], ""))
        }
    };
    put_u32(out, 4 * offsets.len())?;
    for o in offsets {
        put_u32(out, *o)?;
    }
    put_u32(out, data.len())?;
    out.extend_from_slice(data.as_bytes());
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.bytes.len() {
            return bad(format!("{n} bytes announced, {} left", self.bytes.len()));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<usize, WireError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    /// A run that must hold `expect` bytes.
    fn run(&mut self, expect: usize, what: &str) -> Result<&'a [u8], WireError> {
        let n = self.u32()?;
        if n != expect {
            return bad(format!("{what}: {n} bytes, expected {expect}"));
        }
        self.take(n)
    }
}

fn words(bytes: &[u8]) -> impl Iterator<Item = [u8; 8]> + '_ {
    bytes.chunks_exact(8).map(|c| [c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
}

/// A plain string column of `rows` strings (any number if `None`).
fn read_plain(r: &mut Reader<'_>, rows: Option<usize>, i: usize) -> Result<StrColumn, WireError> {
    let n = r.u32()?;
    let expect = match rows {
        Some(rows) => {
            rows.checked_add(1).and_then(|n| n.checked_mul(4)).ok_or_else(|| WireError("too many rows".into()))?
        }
        None if n % 4 == 0 && n > 0 => n,
        None => return bad(format!("column {i}: {n} bytes of offsets")),
    };
    if n != expect {
        return bad(format!("string offsets: {n} bytes, expected {expect}"));
    }
    let offsets: Vec<usize> =
        r.take(n)?.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize).collect();
    let len = r.u32()?;
    let bytes = r.take(len)?;
    let text = std::str::from_utf8(bytes).map_err(|e| WireError(format!("column {i} is not UTF-8: {e}")))?.to_string();
    StrColumn::from_parts(offsets, text).map_err(|e| WireError(format!("column {i}: {e}")))
}

/// Decodes one element; the whole of `bytes` must be it.
pub fn decode_element(bytes: &[u8]) -> Result<Element, WireError> {
    let Some((&tag, body)) = bytes.split_first() else { return bad("an empty frame") };
    let control = |what: &str| -> Result<(), WireError> {
        if body.len() > MAX_CONTROL {
            return bad(format!("a {what} of {} bytes", body.len()));
        }
        Ok(())
    };
    let cfg = bincode::config::standard().with_limit::<MAX_CONTROL>();
    match tag {
        TAG_RECORDS | TAG_CHANGELOG => decode_records(tag, body).map(Element::Records),
        origins::TAG_ORIGINS => {
            let mut r = Reader { bytes: body };
            let o = origins::read_origins(&mut r)?;
            let mut b = match r.bytes.split_first() {
                Some((&t @ (TAG_RECORDS | TAG_CHANGELOG), rest)) => decode_records(t, rest)?,
                _ => return bad("origins without records"),
            };
            if o.len() != b.len() {
                return bad(format!("{} origins for {} records", o.len(), b.len()));
            }
            b.origins = Some(o);
            Ok(Element::Records(b))
        }
        TAG_SIGNAL => {
            control("signal")?;
            let (s, used): (Signal, usize) =
                bincode::serde::decode_from_slice(body, cfg).map_err(|e| WireError(e.to_string()))?;
            if used != body.len() {
                return bad("trailing bytes after a signal");
            }
            Ok(Element::Signal(s))
        }
        TAG_BARRIER => {
            control("barrier")?;
            let (b, used) = bincode::serde::decode_from_slice(body, cfg).map_err(|e| WireError(e.to_string()))?;
            if used != body.len() {
                return bad("trailing bytes after a barrier");
            }
            Ok(Element::Barrier(b))
        }
        TAG_END if body.is_empty() => Ok(Element::EndOfInput),
        TAG_END => bad("trailing bytes after the end of input"),
        t => bad(format!("unknown element tag {t}")),
    }
}

/// Records (`TAG_RECORDS`) or changelog records (`TAG_CHANGELOG`).
fn decode_records(tag: u8, body: &[u8]) -> Result<Batch, WireError> {
    if tag == TAG_RECORDS {
        return decode_batch(body);
    }
    let mut r = Reader { bytes: body };
    let n = r.u32()?;
    let codes = r.take(n)?;
    let kinds = codes
        .iter()
        .map(|c| RowKind::from_code(*c).ok_or_else(|| WireError(format!("unknown row kind {c}"))))
        .collect::<Result<Vec<_>, _>>()?;
    match r.bytes.split_first() {
        Some((&TAG_RECORDS, rest)) => {
            let mut b = decode_batch(rest)?;
            if kinds.len() != b.len() {
                return bad(format!("{} row kinds for {} records", kinds.len(), b.len()));
            }
            b.kinds = Some(kinds);
            Ok(b)
        }
        _ => bad("row kinds without records"),
    }
}

fn decode_batch(body: &[u8]) -> Result<Batch, WireError> {
    let mut r = Reader { bytes: body };
    let rows = r.u32()?;
    let ncols = r.u32()?;
    // Every column takes at least 5 bytes: bounds what `ncols` may claim.
    if ncols > r.bytes.len() / 5 + 1 {
        return bad(format!("{ncols} columns in {} bytes", r.bytes.len()));
    }
    let expect = rows.checked_mul(8).ok_or_else(|| WireError("too many rows".into()))?;
    let ts = r.run(expect, "timestamps")?;
    let timestamps: Vec<i64> = words(ts).map(i64::from_le_bytes).collect();
    let mut columns = Vec::with_capacity(ncols);
    for i in 0..ncols {
        columns.push(read_column(&mut r, rows, i, true)?);
    }
    if !r.bytes.is_empty() {
        return bad(format!("{} bytes after the last column", r.bytes.len()));
    }
    Ok(Batch::new(timestamps, columns))
}

/// Column `i` of `rows` values; an array's elements (`arrays: false`) are
/// no arrays themselves.
fn read_column(r: &mut Reader<'_>, rows: usize, i: usize, arrays: bool) -> Result<Column, WireError> {
    let expect = rows.checked_mul(8).ok_or_else(|| WireError("too many rows".into()))?;
    let code = r.u8()?;
    let dictionary = code & DICTIONARY != 0;
    let validity = if code & NULLS != 0 {
        let bytes = r.run(rows.div_ceil(8), "a validity bitmap")?;
        Some(Validity::from_bytes(bytes, rows).ok_or_else(|| WireError(format!("column {i}: a bad bitmap")))?)
    } else {
        None
    };
    let Some(ty) = code_type(code & !(DICTIONARY | NULLS)) else {
        return bad(format!("column {i} has unknown type {code}"));
    };
    if dictionary && ty != DataType::String {
        return bad(format!("column {i} is a dictionary of {ty}"));
    }
    let data = match ty {
        DataType::Int | DataType::Long | DataType::Timestamp => {
            Data::I64(words(r.run(expect, "a column")?).map(i64::from_le_bytes).collect())
        }
        DataType::Double => {
            Data::F64(words(r.run(expect, "a column")?).map(|w| f64::from_bits(u64::from_le_bytes(w))).collect())
        }
        DataType::Bool => {
            let bytes = r.run(rows, "a bool column")?;
            if bytes.iter().any(|b| *b > 1) {
                return bad(format!("column {i} has a bool that is neither 0 nor 1"));
            }
            Data::Bool(bytes.iter().map(|b| *b == 1).collect())
        }
        DataType::String if dictionary => {
            let strings = read_plain(r, None, i)?;
            let expect = rows.checked_mul(4).ok_or_else(|| WireError("too many rows".into()))?;
            let ids: Vec<u32> = r
                .run(expect, "dictionary ids")?
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            let column = StrColumn::from_ids(std::sync::Arc::new(strings), ids)
                .ok_or_else(|| WireError(format!("column {i} has an id outside its dictionary")))?;
            Data::Str(column)
        }
        DataType::String => Data::Str(read_plain(r, Some(rows), i)?),
        DataType::Array(_) if !arrays => return bad(format!("column {i} is an array of arrays")),
        DataType::Array(e) => {
            let expect =
                rows.checked_add(1).and_then(|n| n.checked_mul(4)).ok_or_else(|| WireError("too many rows".into()))?;
            let offsets: Vec<u32> = r
                .run(expect, "array offsets")?
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            let elements = offsets.last().copied().unwrap_or(0) as usize;
            let values = read_column(r, elements, i, false)?;
            Data::List(Box::new(
                ListColumn::from_parts(offsets, values, e.nullable())
                    .map_err(|e| WireError(format!("column {i}: {e}")))?,
            ))
        }
    };
    Ok(Column::with_validity(ty, data, validity))
}

#[cfg(test)]
mod tests;
