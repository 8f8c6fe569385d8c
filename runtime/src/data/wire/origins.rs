//! The data plane's encoding of a batch's [`Origins`]: an optional section
//! before its records, so that a stage after a network edge can dead-letter
//! a record with its source position and original bytes. A batch without
//! origins is encoded exactly as before.
//!
//! ```text
//!  origins records = tag 5, places u32, place…,
//!                    run(positions: rows × (place u32, partition i32, offset i64)),
//!                    run(ends: rows × u32), run(bytes),
//!                    then changelog records | records (as many rows)
//!  place           = kind u8 (0 a Kafka topic, 1 a file), run(UTF-8 name)
//! ```
//!
//! A record without an origin has place `u32::MAX`.

use super::{bad, put_u32, Reader, WireError};
use crate::data::origins::{Origins, Place, Position};
use std::sync::Arc;

/// The tag of a batch's origins, before its records.
pub(super) const TAG_ORIGINS: u8 = 5;
const TOPIC: u8 = 0;
const FILE: u8 = 1;
/// A position's bytes: place, partition, offset.
const POSITION_LEN: usize = 4 + 4 + 8;

/// The bytes the origins section takes.
pub fn origins_len(o: &Origins) -> usize {
    let places: usize = o.places().iter().map(|p| 1 + 4 + name(p).len()).sum();
    1 + 4 + places + 4 + POSITION_LEN * o.len() + 4 + 4 * o.len() + 4 + o.bytes().len()
}

fn name(p: &Place) -> &str {
    match p {
        Place::Topic(n) | Place::File(n) => n,
    }
}

/// Appends the origins section (its tag first).
pub(super) fn put_origins(out: &mut Vec<u8>, o: &Origins) -> Result<(), WireError> {
    out.push(TAG_ORIGINS);
    put_u32(out, o.places().len())?;
    for p in o.places() {
        out.push(match p {
            Place::Topic(_) => TOPIC,
            Place::File(_) => FILE,
        });
        put_u32(out, name(p).len())?;
        out.extend_from_slice(name(p).as_bytes());
    }
    put_u32(out, POSITION_LEN * o.len())?;
    for p in o.positions() {
        out.extend_from_slice(&p.place.to_le_bytes());
        out.extend_from_slice(&p.partition.to_le_bytes());
        out.extend_from_slice(&p.offset.to_le_bytes());
    }
    put_u32(out, 4 * o.len())?;
    for e in o.ends() {
        put_u32(out, *e)?;
    }
    put_u32(out, o.bytes().len())?;
    out.extend_from_slice(o.bytes());
    Ok(())
}

/// Reads an origins section (after its tag) from `r`, checked: what is
/// left of `r` is the records.
pub(super) fn read_origins(r: &mut Reader<'_>) -> Result<Origins, WireError> {
    let n = r.u32()?;
    // Every place takes at least 5 bytes: bounds what `n` may claim.
    if n > r.bytes.len() / 5 {
        return bad(format!("{n} origin places in {} bytes", r.bytes.len()));
    }
    let mut places = Vec::with_capacity(n);
    for _ in 0..n {
        let kind = r.u8()?;
        let len = r.u32()?;
        let text = std::str::from_utf8(r.take(len)?).map_err(|e| WireError(format!("an origin's place: {e}")))?;
        places.push(match kind {
            TOPIC => Place::Topic(Arc::from(text)),
            FILE => Place::File(Arc::from(text)),
            k => return bad(format!("an origin's place of unknown kind {k}")),
        });
    }
    let len = r.u32()?;
    if len % POSITION_LEN != 0 {
        return bad(format!("origin positions of {len} bytes"));
    }
    let rows = len / POSITION_LEN;
    let positions = r
        .take(len)?
        .chunks_exact(POSITION_LEN)
        .map(|c| Position {
            place: u32::from_le_bytes([c[0], c[1], c[2], c[3]]),
            partition: i32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            offset: i64::from_le_bytes([c[8], c[9], c[10], c[11], c[12], c[13], c[14], c[15]]),
        })
        .collect();
    let ends = r
        .run(4 * rows, "the ends of the origins' bytes")?
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let len = r.u32()?;
    let bytes = r.take(len)?.to_vec();
    Origins::from_parts(places, positions, ends, bytes).map_err(|e| WireError(format!("origins: {e}")))
}

#[cfg(test)]
mod tests {
    use super::super::{decode_element, encode_element, TAG_RECORDS};
    use super::*;
    use crate::data::{Batch, RowKind};
    use crate::record::{Element, Value};
    use flowc_compiler::ir::DataType;

    fn batch() -> Batch {
        let rows: Vec<Vec<Value>> = (0..4).map(|i| vec![Value::Int(i), Value::Str(format!("s{i}"))]).collect();
        Batch::from_values(&[DataType::Long, DataType::String], &rows).expect("fits")
    }

    fn with_origins(mut b: Batch) -> Batch {
        let mut o = Origins::default();
        o.push_kafka("clicks", 1, 17, br#"{"id": 0}"#);
        o.push_none(1);
        o.push_file("in/a.csv", 3, b"2,s2");
        o.push_kafka("clicks", 0, 9, &[0xff, 0xfe]);
        b.origins = Some(o);
        b
    }

    fn encode(b: &Batch) -> Vec<u8> {
        let mut out = Vec::new();
        encode_element(&Element::Records(b.clone()), &mut out).expect("encodes");
        out
    }

    #[test]
    fn origins_round_trip_with_and_without_row_kinds() {
        let b = with_origins(batch());
        let bytes = encode(&b);
        assert_eq!(bytes[0], TAG_ORIGINS);
        assert_eq!(bytes.len(), b.encoded_len());
        assert_eq!(decode_element(&bytes), Ok(Element::Records(b.clone())));
        let mut changes = b;
        changes.kinds = Some(vec![RowKind::Insert, RowKind::Delete, RowKind::Insert, RowKind::UpdateAfter]);
        let bytes = encode(&changes);
        assert_eq!(bytes.len(), changes.encoded_len());
        let Ok(Element::Records(back)) = decode_element(&bytes) else { panic!("decodes") };
        assert_eq!(back, changes);
        assert_eq!(back.origins.as_ref().and_then(|o| o.get(3)).map(|o| o.bytes), Some(&[0xff, 0xfe][..]));
        for cut in 0..bytes.len() {
            assert!(decode_element(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn a_batch_without_origins_is_encoded_as_before_and_still_decodes() {
        let b = batch();
        let bytes = encode(&b);
        assert_eq!(bytes[0], TAG_RECORDS, "no section");
        // As encoded before origins existed: the records alone.
        let with = encode(&with_origins(batch()));
        assert!(with.ends_with(&bytes), "the records follow the section unchanged");
        assert_eq!(decode_element(&bytes), Ok(Element::Records(b)));
    }

    #[test]
    fn origins_out_of_step_or_malformed_are_errors() {
        // Origins of fewer records than the batch has.
        let mut fewer = with_origins(batch());
        if let Some(o) = &mut fewer.origins {
            o.truncate(3);
        }
        assert!(decode_element(&encode(&fewer)).is_err());
        let good = encode(&with_origins(batch()));
        // A place of unknown kind; a position naming a place that is not there.
        let mut kind = good.clone();
        kind[1 + 4] = 7;
        assert!(decode_element(&kind).is_err());
        let positions_at = 1 + 4 + (1 + 4 + "clicks".len()) + (1 + 4 + "in/a.csv".len()) + 4;
        let mut place = good.clone();
        place[positions_at] = 5;
        assert!(decode_element(&place).is_err());
        // Origins twice.
        let mut twice = vec![TAG_ORIGINS, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        twice.extend_from_slice(&good);
        assert!(decode_element(&twice).is_err());
    }
}
