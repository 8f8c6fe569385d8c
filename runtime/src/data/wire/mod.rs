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
mod tests {
    use super::*;
    use crate::checkpoint::Barrier;
    use crate::record::Value;
    use proptest::prelude::*;

    fn sample() -> Batch {
        let types =
            [DataType::Timestamp, DataType::String, DataType::Int, DataType::Long, DataType::Double, DataType::Bool];
        let rows: Vec<(i64, Vec<Value>)> = (0..5)
            .map(|i| {
                (
                    i * 10,
                    vec![
                        Value::Timestamp(1_795_558_500_000 + i),
                        Value::Str(["/help", "", "héllo", "/shop", "x"][i as usize].into()),
                        Value::Int(i - 2),
                        Value::Int(i64::MIN + i),
                        Value::Double(i as f64 / 3.0),
                        Value::Bool(i % 2 == 0),
                    ],
                )
            })
            .collect();
        Batch::from_rows(&types, &rows).expect("fits")
    }

    fn encode(e: &Element) -> Vec<u8> {
        let mut out = Vec::new();
        encode_element(e, &mut out).expect("encodes");
        out
    }

    #[test]
    fn round_trips_every_element_and_the_batch_size_is_known_in_advance() {
        let mut b = sample();
        // A dictionary column besides the plain ones.
        let dict = std::sync::Arc::new(StrColumn::from_parts(vec![0, 2, 6], "/aéé".into()).expect("plain"));
        let ids = StrColumn::from_ids(dict, vec![1, 0, 0, 1, 1]).expect("ids");
        b.columns.push(Column::new(DataType::String, Data::Str(ids)));
        let bytes = encode(&Element::Records(b.clone()));
        assert_eq!(bytes.len(), b.encoded_len());
        assert_eq!(decode_element(&bytes), Ok(Element::Records(b)));
        let empty = Batch::empty(&[DataType::String], 0);
        assert_eq!(encode(&Element::Records(empty.clone())).len(), empty.encoded_len());
        for e in [
            Element::Signal(Signal::Watermark(-7)),
            Element::Signal(Signal::Idle),
            Element::Barrier(Barrier { id: 3, dir: "/tmp/x".into(), savepoint: true, stop: None }),
            Element::EndOfInput,
            Element::Records(empty),
        ] {
            assert_eq!(decode_element(&encode(&e)), Ok(e));
        }
    }

    #[test]
    fn arrays_round_trip_and_malformed_ones_are_errors() {
        use flowc_compiler::ir::Elem;
        let tags = |t: &[&str]| Value::Array(t.iter().map(|s| Value::Str(s.to_string())).collect());
        let types = [DataType::Array(Elem::STRING), DataType::Array(Elem::LONG)];
        let rows: Vec<(i64, Vec<Value>)> = vec![
            (1, vec![tags(&["a", "bé"]), Value::Array(vec![Value::Int(7)])]),
            (2, vec![tags(&[]), Value::Null]),
            (3, vec![tags(&["c"]), Value::Array(vec![Value::Int(-1), Value::Int(2)])]),
        ];
        let b = Batch::from_rows(&types, &rows).expect("fits");
        let bytes = encode(&Element::Records(b.clone()));
        assert_eq!(bytes.len(), b.encoded_len());
        assert_eq!(decode_element(&bytes), Ok(Element::Records(b.clone())));
        // Every truncation is an error, never a panic.
        for cut in 1..bytes.len() {
            assert!(decode_element(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        // Offsets that point past the elements, or go backwards.
        let offsets_at = 1 + 4 + 4 + 4 + 3 * 8 + 1 + 4;
        let mut bad = bytes.clone();
        bad[offsets_at + 4] = 9;
        assert!(decode_element(&bad).is_err());
        // An array of arrays.
        let mut nested = bytes.clone();
        let elements_code = offsets_at + 4 * 4;
        nested[elements_code] |= ARRAY;
        assert!(decode_element(&nested).is_err());
    }

    #[test]
    fn changelog_batches_carry_their_row_kinds() {
        let mut b = sample();
        b.kinds =
            Some(vec![RowKind::Insert, RowKind::UpdateBefore, RowKind::UpdateAfter, RowKind::Delete, RowKind::Insert]);
        let bytes = encode(&Element::Records(b.clone()));
        assert_eq!(bytes.len(), b.encoded_len());
        assert_eq!(decode_element(&bytes), Ok(Element::Records(b.clone())));
        for n in 0..bytes.len() {
            assert!(decode_element(&bytes[..n]).is_err(), "truncated to {n}");
        }
        // An unknown kind, and kinds that do not match the records.
        let mut bad_kind = bytes.clone();
        bad_kind[1 + 4 + 1] = 9;
        assert!(decode_element(&bad_kind).is_err());
        let mut fewer = b;
        fewer.kinds = Some(vec![RowKind::Insert; 4]);
        assert!(decode_element(&encode(&Element::Records(fewer))).is_err());
    }

    #[test]
    fn nulls_travel_in_every_column_kind() {
        let types = [DataType::String, DataType::Long, DataType::Double, DataType::Bool, DataType::Timestamp];
        let rows: Vec<(i64, Vec<Value>)> = (0..70)
            .map(|i| {
                let v = |x: Value| if i % 3 == 1 { Value::Null } else { x };
                (
                    i,
                    vec![
                        v(Value::Str(format!("s{i}"))),
                        v(Value::Int(i)),
                        v(Value::Double(i as f64)),
                        v(Value::Bool(i % 2 == 0)),
                        v(Value::Timestamp(i)),
                    ],
                )
            })
            .collect();
        let mut b = Batch::from_rows(&types, &rows).expect("fits");
        // A dictionary column with nulls too.
        let dict = std::sync::Arc::new(StrColumn::from_parts(vec![0, 1, 2], "ab".into()).expect("plain"));
        let ids = StrColumn::from_ids(dict, (0..70).map(|i| i % 2).collect()).expect("ids");
        let valid = Validity::from_bools((0..70).map(|i| i % 5 != 0));
        b.columns.push(Column::with_validity(DataType::String, Data::Str(ids), Some(valid)));
        let bytes = encode(&Element::Records(b.clone()));
        assert_eq!(bytes.len(), b.encoded_len());
        let Ok(Element::Records(back)) = decode_element(&bytes) else { panic!("decodes") };
        assert_eq!(back, b);
        assert_eq!(back.row(1)[0], Value::Null);
        assert_eq!(back.row(5)[5], Value::Null);
        assert_eq!(back.row(6)[5], Value::Str("a".into()));
        for cut in 0..bytes.len() {
            assert!(decode_element(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn every_truncation_and_corruption_is_an_error_not_a_panic() {
        let bytes = encode(&Element::Records(sample()));
        for n in 0..bytes.len() {
            assert!(decode_element(&bytes[..n]).is_err(), "truncated to {n}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_element(&longer).is_err());
        // A string offset inside a character, and bytes that are not UTF-8.
        let b = Batch::from_values(&[DataType::String], &[vec![Value::Str("é".into())]]).expect("fits");
        // A dictionary column with an id outside its dictionary.
        let dict = std::sync::Arc::new(StrColumn::from_parts(vec![0, 1], "a".into()).expect("plain"));
        let ids = StrColumn::from_ids(dict, vec![0, 0]).expect("ids");
        let d = Batch::new(vec![0, 0], vec![Column::new(DataType::String, Data::Str(ids))]);
        let mut bytes = encode(&Element::Records(d.clone()));
        assert_eq!(decode_element(&bytes), Ok(Element::Records(d)));
        let n = bytes.len();
        bytes[n - 4] = 1;
        assert!(decode_element(&bytes).is_err());
        let good = encode(&Element::Records(b));
        let offsets_at = BATCH_HEADER_LEN + 1 + 4;
        let mut split = good.clone();
        split[offsets_at + 4] = 1;
        assert!(decode_element(&split).is_err());
        let mut latin = good;
        let n = latin.len();
        latin[n - 2] = 0xff;
        assert!(decode_element(&latin).is_err());
    }

    #[test]
    fn huge_claims_do_not_allocate() {
        let mut frame = vec![TAG_RECORDS];
        frame.extend_from_slice(&u32::MAX.to_le_bytes());
        frame.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_element(&frame).is_err());
        let mut frame = vec![TAG_RECORDS, 0, 0, 0, 0];
        frame.extend_from_slice(&1_000_000u32.to_le_bytes());
        frame.extend_from_slice(&[0; 4]);
        assert!(decode_element(&frame).is_err());
    }

    /// Rows of `array<long?>` and `array<string?>?` from their models:
    /// `None` an absent array, `Some(vec)` its elements, each maybe null.
    type NullableArrays = Vec<(Vec<Option<i64>>, Option<Vec<Option<String>>>)>;

    fn nullable_arrays(rows: &NullableArrays) -> (Batch, Vec<Vec<Value>>) {
        let types = [DataType::Array(Elem::LONG.with_nulls(true)), DataType::Array(Elem::STRING.with_nulls(true))];
        let values: Vec<Vec<Value>> = rows
            .iter()
            .map(|(longs, strs)| {
                vec![
                    Value::Array(longs.iter().map(|x| x.map_or(Value::Null, Value::Int)).collect()),
                    strs.as_ref().map_or(Value::Null, |v| {
                        Value::Array(v.iter().map(|s| s.clone().map_or(Value::Null, Value::Str)).collect())
                    }),
                ]
            })
            .collect();
        let b = Batch::from_values(&types, &values).expect("fits");
        (b, values)
    }

    #[test]
    fn null_elements_need_the_nullable_element_type() {
        let (b, _) = nullable_arrays(&vec![(vec![Some(1), None], Some(vec![None]))]);
        let bytes = encode(&Element::Records(b.clone()));
        assert_eq!(decode_element(&bytes), Ok(Element::Records(b)));
        // The same frame with the element type's nullability taken away: refused.
        let first_code = BATCH_HEADER_LEN + 8;
        assert_eq!(bytes[first_code], ARRAY | ELEMENT_NULLS | 3);
        let mut strict = bytes.clone();
        strict[first_code] &= !ELEMENT_NULLS;
        assert!(decode_element(&strict).is_err());
        // A frame of non-null elements written before nullable elements
        // existed (no 0x20) reads as it did.
        let old = Batch::from_values(&[DataType::Array(Elem::LONG)], &[vec![Value::Array(vec![Value::Int(7)])]])
            .expect("fits");
        let bytes = encode(&Element::Records(old.clone()));
        assert_eq!(bytes[first_code], ARRAY | 3);
        assert_eq!(decode_element(&bytes), Ok(Element::Records(old)));
    }

    proptest! {
        #[test]
        fn nullable_elements_round_trip_the_wire_and_state_as_their_model(
            rows in proptest::collection::vec(
                (
                    proptest::collection::vec(proptest::option::of(any::<i64>()), 0..5),
                    proptest::option::of(proptest::collection::vec(proptest::option::of("[a-zé]{0,3}"), 0..5)),
                ),
                0..40,
            ),
            picks in proptest::collection::vec(0u32..40, 0..20),
        ) {
            let (b, model) = nullable_arrays(&rows);
            // The data plane: a frame between TaskManagers.
            let bytes = encode(&Element::Records(b.clone()));
            prop_assert_eq!(bytes.len(), b.encoded_len());
            let Ok(Element::Records(back)) = decode_element(&bytes) else { panic!("decodes") };
            prop_assert_eq!(&back, &b);
            for (i, want) in model.iter().enumerate() {
                prop_assert_eq!(&back.row(i), want);
            }
            // A gather (a keyed exchange's split) keeps each row's nulls.
            let picks: Vec<u32> = picks.into_iter().filter(|p| (*p as usize) < model.len()).collect();
            let g = back.gather(&picks);
            for (k, p) in picks.iter().enumerate() {
                prop_assert_eq!(&g.row(k), &model[*p as usize]);
            }
            // State: rows held as values (window, join, dedup state) in bincode.
            let cfg = bincode::config::standard();
            let held = bincode::serde::encode_to_vec(&model, cfg).expect("encodes");
            let (again, _): (Vec<Vec<Value>>, usize) = bincode::serde::decode_from_slice(&held, cfg).expect("decodes");
            prop_assert_eq!(&again, &model);
        }

        #[test]
        fn random_frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_element(&bytes);
        }

        #[test]
        fn random_corruptions_never_panic(at in 0usize..400, byte in any::<u8>()) {
            let mut bytes = encode(&Element::Records(sample()));
            let i = at % bytes.len();
            bytes[i] = byte;
            if let Ok(Element::Records(b)) = decode_element(&bytes) {
                prop_assert!(b.check_layout(&b.types()).is_ok());
            }
        }
    }
}
