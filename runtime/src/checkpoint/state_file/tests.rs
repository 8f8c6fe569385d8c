//! Format 2 against a model, against format 1, and against the bytes the
//! old code wrote (`../testdata/`); refusal of corrupt and truncated files;
//! the file storage's streamed write.

use super::*;
use crate::checkpoint::format::{encode, StateError, FORMAT_VERSION};
use crate::checkpoint::storage::{read_state, CheckpointStorage, FileStorage};
use flowc_compiler::ids::operator_id_from_uid;
use proptest::prelude::*;
use std::path::{Path, PathBuf};

fn testdata(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/checkpoint/testdata").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The state `testdata/format1-task.state` holds (written by the encoder
/// of commit b8b1bdf, before format 2).
fn fixture() -> TaskState {
    TaskState {
        vertex: Id16([0x5a; 16]),
        subtask: 3,
        operators: vec![
            OperatorState {
                operator: operator_id_from_uid("fixture-window"),
                keyed: vec![(0, b"zero".to_vec()), (5, Vec::new()), (127, (0..=255u8).collect())],
                raw: Vec::new(),
            },
            OperatorState {
                operator: operator_id_from_uid("fixture-running"),
                keyed: vec![(64, vec![7u8; 1000])],
                raw: Vec::new(),
            },
            OperatorState {
                operator: operator_id_from_uid("fixture-sink"),
                keyed: Vec::new(),
                raw: b"uncommitted sink output".to_vec(),
            },
        ],
    }
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("flowc-state-file-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn format_1_files_written_by_the_old_code_are_still_read() {
    let bytes = testdata("format1-task.state");
    assert_eq!(u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]), 1);
    assert_eq!(decode_task_state("f", &bytes).unwrap(), fixture());
    // Byte for byte what the format-1 encoder (kept for `_metadata`) makes.
    assert_eq!(encode(STATE_MAGIC, &fixture()), bytes);
    let empty = testdata("format1-empty.state");
    let back = decode_task_state("f", &empty).unwrap();
    assert_eq!((back.subtask, back.operators.len()), (0, 0));
    // Through a storage, as the Restorer reads them.
    let dir = scratch("format1");
    std::fs::write(dir.join("v-3.state"), &bytes).unwrap();
    assert_eq!(read_state(&FileStorage, &dir.join("v-3.state")).unwrap(), fixture());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_format_2_layout_is_header_records_end_checksum() {
    let op = Id16([0xab; 16]);
    let state = TaskState {
        vertex: Id16([1; 16]),
        subtask: 7,
        operators: vec![OperatorState { operator: op, keyed: vec![(9, vec![0xee, 0xff])], raw: b"r".to_vec() }],
    };
    let mut body = vec![1u8; 16];
    body.extend_from_slice(&7u32.to_le_bytes());
    body.push(TAG_OPERATOR);
    body.extend_from_slice(&[0xab; 16]);
    body.push(TAG_KEY_GROUP);
    body.extend_from_slice(&9u32.to_le_bytes());
    body.extend_from_slice(&2u64.to_le_bytes());
    body.extend_from_slice(&[0xee, 0xff]);
    body.push(TAG_RAW);
    body.extend_from_slice(&1u64.to_le_bytes());
    body.push(b'r');
    body.push(TAG_END);
    let mut want = STATE_MAGIC.to_vec();
    want.extend_from_slice(&2u32.to_le_bytes());
    want.extend_from_slice(&(body.len() as u64).to_le_bytes());
    want.extend_from_slice(&body);
    want.extend_from_slice(&checksum_more(CHECKSUM_SEED, &body).to_le_bytes());
    assert_eq!(encode_task_state(&state), want);
    assert_eq!(decode_task_state("f", &want).unwrap(), state);
    assert_eq!(FORMAT_VERSION, 1, "`_metadata` stays in format 1");
}

#[test]
fn corrupt_truncated_and_misordered_format_2_files_are_refused() {
    let bytes = encode_task_state(&fixture());
    assert_eq!(decode_task_state("f", &bytes).unwrap(), fixture());
    for cut in 0..bytes.len() {
        let e = decode_task_state("f", &bytes[..cut]).expect_err("truncated");
        assert!(e.is_corruption(), "cut {cut}: {e}");
    }
    for at in 0..bytes.len() {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0x10;
        let e = decode_task_state("f", &flipped).expect_err("flipped");
        assert!(e.is_corruption(), "byte {at}: {e}");
    }
    let mut v3 = bytes.clone();
    v3[8] = 3;
    let e = decode_task_state("f", &v3).unwrap_err();
    assert!(matches!(e, StateError::Version { found: 3, supported: 2, .. }), "{e}");
    // Well framed, but records a writer never makes: each refused with its reason.
    let reframe = |body: &[u8]| {
        let mut b = STATE_MAGIC.to_vec();
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&(body.len() as u64).to_le_bytes());
        b.extend_from_slice(body);
        b.extend_from_slice(&checksum_more(CHECKSUM_SEED, body).to_le_bytes());
        b
    };
    let head = |extra: &[u8]| {
        let mut body = vec![0u8; 20];
        body.extend_from_slice(extra);
        body
    };
    let kg = |g: u32| {
        let mut r = vec![TAG_KEY_GROUP];
        r.extend_from_slice(&g.to_le_bytes());
        r.extend_from_slice(&0u64.to_le_bytes());
        r
    };
    let op = [&[TAG_OPERATOR][..], &[4u8; 16]].concat();
    for (body, reason) in [
        (head(&[&op[..], &kg(5), &kg(5), &[TAG_END]].concat()), "out of order"),
        (head(&[&kg(1)[..], &[TAG_END]].concat()), "before any operator"),
        (head(&[&op[..], &[9]].concat()), "unknown record 9"),
        (head(&op), "where 0 are left"),
        (head(&[&op[..], &[TAG_END, 0]].concat()), "unexpected bytes"),
        (head(&[&op[..], &[TAG_RAW], &u64::MAX.to_le_bytes()].concat()), "where 0 are left"),
    ] {
        let e = decode_task_state("f", &reframe(&body)).expect_err(reason);
        assert!(e.is_corruption() && e.to_string().contains(reason), "{reason}: {e}");
    }
}

#[test]
fn the_writer_refuses_key_groups_out_of_order_and_state_without_an_operator() {
    let mut w = StateFileWriter::new(Vec::new(), Id16::default(), 0);
    assert!(w.key_group(1, b"x").is_err(), "no operator named");
    w.operator(Id16([1; 16]));
    w.key_group(3, b"x").unwrap();
    assert!(w.key_group(3, b"y").is_err());
    assert!(w.key_group(2, b"y").is_err());
    w.operator(Id16([2; 16]));
    w.key_group(0, b"z").unwrap();
    assert_eq!(w.key_groups_written(), 2);
}

#[test]
fn the_file_storage_streams_into_its_file_and_leaves_nothing_on_failure() {
    let dir = scratch("storage");
    let s = FileStorage;
    let (vertex, state) = (fixture().vertex, fixture());
    let size = s.write_task_state(&dir, "v-3.state", &state).unwrap();
    let bytes = std::fs::read(dir.join("v-3.state")).unwrap();
    assert_eq!((bytes.len() as u64, &bytes), (size, &encode_task_state(&state)));
    assert_eq!(read_state(&s, &dir.join("v-3.state")).unwrap(), state);
    // Nothing written: no file.
    let none = s.write_task_state_with(&dir, "v-4.state", vertex, 4, &mut |sink| {
        sink.operator(Id16([1; 16]));
        sink.raw(&[])
    });
    assert_eq!(none.unwrap(), None);
    assert!(!dir.join("v-4.state").exists() && !dir.join("v-4.state.inprogress").exists());
    // An operator fails half way (the disk is full, say): nothing is left.
    let e = s
        .write_task_state_with(&dir, "v-5.state", vertex, 5, &mut |sink| {
            sink.operator(Id16([1; 16]));
            sink.key_group(0, &[1; 5000])?;
            Err(std::io::Error::other("disk full"))
        })
        .unwrap_err();
    assert!(e.to_string().contains("disk full"), "{e}");
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("v-3.state")]);
    // A file planted at the temporary name is neither written through nor removed.
    std::fs::write(dir.join("v-6.state.inprogress"), b"planted").unwrap();
    assert!(s.write_task_state(&dir, "v-6.state", &state).is_err());
    assert_eq!(std::fs::read(dir.join("v-6.state.inprogress")).unwrap(), b"planted");
    // An abandoned (removed) checkpoint is not made again.
    let gone = dir.join("chk-9");
    assert!(s.write_task_state(&gone, "v-3.state", &state).is_err());
    assert!(!gone.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Random subtask states: operators with ascending key groups of random
/// bytes (empty ones too), raw state, or both.
fn task_states() -> impl Strategy<Value = TaskState> {
    let operator = (
        any::<[u8; 16]>(),
        proptest::collection::btree_map(0u32..4096, proptest::collection::vec(any::<u8>(), 0..64), 0..12),
        proptest::collection::vec(any::<u8>(), 0..40),
    )
        .prop_filter("an operator with state", |(_, keyed, raw)| !keyed.is_empty() || !raw.is_empty())
        .prop_map(|(id, keyed, raw)| OperatorState { operator: Id16(id), keyed: keyed.into_iter().collect(), raw });
    (any::<[u8; 16]>(), any::<u32>(), proptest::collection::vec(operator, 0..5))
        .prop_map(|(v, subtask, operators)| TaskState { vertex: Id16(v), subtask, operators })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Written part by part through the file storage's stream, a state file
    /// reads back as the model, and as format 1 gives the same state.
    #[test]
    fn streamed_state_files_read_back_as_the_model_and_as_format_1(model in task_states()) {
        let dir = scratch("prop");
        let written = FileStorage.write_task_state_with(&dir, "v-0.state", model.vertex, model.subtask, &mut |sink| {
            for o in &model.operators {
                sink.operator(o.operator);
                for (kg, bytes) in &o.keyed {
                    sink.key_group(*kg, bytes)?;
                }
                sink.raw(&o.raw)?;
            }
            Ok(())
        }).unwrap();
        if model.operators.is_empty() {
            prop_assert_eq!(written, None);
            prop_assert!(!dir.join("v-0.state").exists());
        } else {
            let bytes = std::fs::read(dir.join("v-0.state")).unwrap();
            prop_assert_eq!(written, Some(bytes.len() as u64));
            prop_assert_eq!(&bytes, &encode_task_state(&model));
            prop_assert_eq!(&read_state(&FileStorage, &dir.join("v-0.state")).unwrap(), &model);
        }
        let format1 = decode_task_state("f", &encode(STATE_MAGIC, &model)).unwrap();
        prop_assert_eq!(&format1, &model);
        prop_assert_eq!(decode_task_state("f", &encode_task_state(&model)).unwrap(), format1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
