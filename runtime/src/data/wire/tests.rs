//! The data plane's encoding, round trips and malformed frames.

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
    let old =
        Batch::from_values(&[DataType::Array(Elem::LONG)], &[vec![Value::Array(vec![Value::Int(7)])]]).expect("fits");
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
