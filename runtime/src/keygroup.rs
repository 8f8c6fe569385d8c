//! Keys to key groups to subtasks, as in Flink: state is organised by key
//! group so that rescaling moves whole key groups between subtasks.
//!
//! `key group = hash(key) mod maxParallelism` and
//! `subtask = keyGroup × parallelism / maxParallelism`.
//!
//! NEVER CHANGE the hash: existing checkpoints and savepoints hold state
//! sorted by key group, and the sender and the receiver of a HASH edge,
//! possibly in different processes and flowc versions, must agree on it.

use crate::data::{Column, Data, ValueRef};
use crate::record::Value;
use flowc_compiler::ir::DataType;
use serde::{Deserialize, Serialize};
use std::hash::{Hash, Hasher};
use std::ops::RangeInclusive;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// A stable 64-bit hash of a key: FNV-1a over a tagged encoding of each
/// value, finished with the splitmix64 mixer so that the low bits spread.
pub fn key_hash<'a>(key: impl IntoIterator<Item = &'a Value>) -> u64 {
    let mut h = FNV_OFFSET;
    for v in key {
        h = match v {
            Value::Str(s) => fnv(fnv(h, &[1]), s.as_bytes()),
            Value::Int(i) => fnv(fnv(h, &[2]), &i.to_le_bytes()),
            Value::Double(d) => fnv(fnv(h, &[3]), &d.to_bits().to_le_bytes()),
            Value::Bool(b) => fnv(fnv(h, &[4]), &[u8::from(*b)]),
            Value::Timestamp(t) => fnv(fnv(h, &[5]), &t.to_le_bytes()),
            Value::Null => fnv(h, &[0]),
            Value::Array(items) => hash_array(h, items.len(), items.iter().map(ValueRef::from)),
        };
    }
    let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// An array's part of a key hash: its tag, its length and its elements
/// (arrays are no keys in the language; hashed all the same, so that
/// hashing is total).
fn hash_array<'a>(h: u64, len: usize, items: impl Iterator<Item = ValueRef<'a>>) -> u64 {
    let mut h = fnv(fnv(h, &[6]), &(len as u64).to_le_bytes());
    for v in items {
        h = hash_ref(h, v);
    }
    h
}

/// One value's part of a key hash.
fn hash_ref(h: u64, v: ValueRef<'_>) -> u64 {
    match v {
        ValueRef::Str(s) => fnv(fnv(h, &[1]), s.as_bytes()),
        ValueRef::Int(i) => fnv(fnv(h, &[2]), &i.to_le_bytes()),
        ValueRef::Double(d) => fnv(fnv(h, &[3]), &d.to_bits().to_le_bytes()),
        ValueRef::Bool(b) => fnv(fnv(h, &[4]), &[u8::from(b)]),
        ValueRef::Timestamp(t) => fnv(fnv(h, &[5]), &t.to_le_bytes()),
        ValueRef::Null => fnv(h, &[0]),
        ValueRef::Array(a) => hash_array(h, a.len(), a.iter()),
    }
}

/// The mixer that finishes [`key_hash`].
fn finish(h: u64) -> u64 {
    let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// [`key_hash`] of every record's key fields, read straight from the
/// columns, without building a [`Value`]: `out[r]` is exactly
/// `key_hash` of record `r`'s values of `key` (the columns of `key` must
/// exist; a missing one hashes as no value, which the caller's layout check
/// rules out).
pub fn key_hashes(columns: &[Column], key: &[usize], rows: usize, out: &mut Vec<u64>) {
    out.clear();
    out.resize(rows, FNV_OFFSET);
    for (n, k) in key.iter().enumerate() {
        let Some(c) = columns.get(*k) else { continue };
        if c.has_nulls() || c.ty.is_array() {
            // A column with nulls (a nullable key the checker let through,
            // or a join's padding), or of arrays: row by row, a null
            // hashed as its tag.
            for (r, h) in out.iter_mut().enumerate() {
                *h = hash_ref(*h, c.value_ref(r).unwrap_or(ValueRef::Null));
            }
            continue;
        }
        match (&c.data, c.ty) {
            (Data::Str(s), _) => match s.dictionary() {
                // The only key field, a dictionary column: hashed once per distinct string.
                Some((strings, ids)) if key.len() == 1 && strings.len() <= rows => {
                    let per_string: Vec<u64> =
                        strings.iter_bytes().map(|v| finish(fnv(fnv(FNV_OFFSET, &[1]), v))).collect();
                    for (h, id) in out.iter_mut().zip(ids) {
                        *h = per_string.get(*id as usize).copied().unwrap_or(0);
                    }
                    return;
                }
                // The first key field of a dictionary column: its part hashed once per distinct string.
                Some((strings, ids)) if n == 0 && strings.len() <= rows => {
                    let per_string: Vec<u64> = strings.iter_bytes().map(|v| fnv(fnv(FNV_OFFSET, &[1]), v)).collect();
                    for (h, id) in out.iter_mut().zip(ids) {
                        *h = per_string.get(*id as usize).copied().unwrap_or(FNV_OFFSET);
                    }
                }
                _ => {
                    for (h, v) in out.iter_mut().zip(s.iter_bytes()) {
                        *h = fnv(fnv(*h, &[1]), v);
                    }
                }
            },
            (Data::I64(v), ty) => {
                let tag = if ty == DataType::Timestamp { 5 } else { 2 };
                for (h, x) in out.iter_mut().zip(v) {
                    *h = fnv(fnv(*h, &[tag]), &x.to_le_bytes());
                }
            }
            (Data::F64(v), _) => {
                for (h, x) in out.iter_mut().zip(v) {
                    *h = fnv(fnv(*h, &[3]), &x.to_bits().to_le_bytes());
                }
            }
            (Data::Bool(v), _) => {
                for (h, x) in out.iter_mut().zip(v) {
                    *h = fnv(fnv(*h, &[4]), &[u8::from(*x)]);
                }
            }
            // Hashed row by row above.
            (Data::List(_), _) => {}
        }
    }
    for h in out.iter_mut() {
        *h = finish(*h);
    }
}

/// [`key_hash`] of borrowed values.
pub fn key_hash_refs<'a>(key: impl IntoIterator<Item = ValueRef<'a>>) -> u64 {
    let mut h = FNV_OFFSET;
    for v in key {
        h = hash_ref(h, v);
    }
    finish(h)
}

/// The values of a record's key fields: hashable and comparable, with
/// doubles compared by their bits (so that NaN keys group together).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Key(pub Vec<Value>);

impl Key {
    /// The key's group under `max_parallelism`.
    pub fn key_group(&self, max_parallelism: u32) -> u32 {
        key_group(key_hash(&self.0), max_parallelism)
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.0.len() == other.0.len()
            && self.0.iter().zip(&other.0).all(|(a, b)| match (a, b) {
                (Value::Double(x), Value::Double(y)) => x.to_bits() == y.to_bits(),
                _ => a == b,
            })
    }
}

impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(key_hash(&self.0));
    }
}

/// A hasher for maps keyed by [`Key`]: the key's hash is already mixed
/// (FNV-1a and splitmix), so it is used as it is.
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `Key`; anything else still hashes.
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(FNV_PRIME);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

/// A `HashMap` keyed by [`Key`].
pub type KeyMap<V> = std::collections::HashMap<Key, V, std::hash::BuildHasherDefault<KeyHasher>>;

/// The key group of a key hash.
pub fn key_group(hash: u64, max_parallelism: u32) -> u32 {
    (hash % u64::from(max_parallelism.max(1))) as u32
}

/// The subtask that owns a key group.
pub fn subtask_for_key_group(key_group: u32, parallelism: u32, max_parallelism: u32) -> u32 {
    (u64::from(key_group) * u64::from(parallelism) / u64::from(max_parallelism.max(1))) as u32
}

/// The key groups a subtask owns: the inverse of [`subtask_for_key_group`].
pub fn key_group_range(subtask: u32, parallelism: u32, max_parallelism: u32) -> RangeInclusive<u32> {
    let (i, p, m) = (u64::from(subtask), u64::from(parallelism.max(1)), u64::from(max_parallelism));
    let start = (i * m).div_ceil(p);
    let end = ((i + 1) * m).div_ceil(p) - 1;
    (start as u32)..=(end as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hash_is_stable() {
        // A compatibility promise: these values must never change.
        let page = Value::Str("/index".into());
        assert_eq!(key_hash([&page]), key_hash([&Value::Str("/index".into())]));
        assert_ne!(key_hash([&page]), key_hash([&Value::Str("/help".into())]));
        assert_ne!(key_hash([&Value::Int(1)]), key_hash([&Value::Timestamp(1)]));
        // The values themselves are the compatibility promise: state on disk
        // and the two ends of a HASH edge depend on them.
        assert_eq!(Key(vec![Value::Str("/index".into())]).key_group(128), 24);
        assert_eq!(Key(vec![Value::Str("/help".into())]).key_group(128), 100);
        assert_eq!(Key(vec![Value::Int(42)]).key_group(128), Key(vec![Value::Int(42)]).key_group(128));
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            ".{0,12}".prop_map(Value::Str),
            any::<i64>().prop_map(Value::Int),
            any::<f64>().prop_map(Value::Double),
            Just(Value::Double(f64::NAN)),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Timestamp),
            Just(Value::Null),
        ]
    }

    fn type_of(v: &Value) -> DataType {
        match v {
            Value::Str(_) => DataType::String,
            Value::Int(_) => DataType::Long,
            Value::Double(_) => DataType::Double,
            Value::Bool(_) => DataType::Bool,
            Value::Timestamp(_) | Value::Null | Value::Array(_) => DataType::Timestamp,
        }
    }

    proptest! {
        /// Hashing from columns agrees with `key_hash` for keys of every
        /// type, in any column order and with other columns around them.
        #[test]
        fn column_hashes_are_the_value_hashes(
            first in proptest::collection::vec(value(), 1..5),
            rows in 1usize..6,
            seed in any::<u64>(),
        ) {
            // Columns of the first row's types; later rows vary the values.
            let types: Vec<DataType> = first.iter().map(type_of).collect();
            let mut data = vec![first.clone()];
            for r in 1..rows {
                let row: Vec<Value> = first
                    .iter()
                    .enumerate()
                    .map(|(i, v)| match v {
                        Value::Str(s) => Value::Str(format!("{s}{}", (seed >> i) as usize % (r + 1))),
                        Value::Int(x) => Value::Int(x.wrapping_add(r as i64)),
                        Value::Double(x) => Value::Double(x * r as f64),
                        Value::Bool(b) => Value::Bool(*b ^ (r % 2 == 1)),
                        Value::Timestamp(x) => Value::Timestamp(x.wrapping_sub(r as i64)),
                        // Nulls and values alternate in a nullable column.
                        Value::Null if r % 2 == 1 => Value::Timestamp(r as i64),
                        Value::Null => Value::Null,
                        Value::Array(a) => Value::Array(a.clone()),
                    })
                    .collect();
                data.push(row);
            }
            let mut batch = crate::data::Batch::from_values(&types, &data).expect("fits");
            if seed % 3 == 0 {
                // String columns as dictionaries hash the same.
                for c in &mut batch.columns {
                    if let Data::Str(s) = &c.data {
                        c.data = Data::Str(s.to_dictionary());
                    }
                }
            }
            let n = types.len();
            let key: Vec<usize> = (0..n).map(|i| (i + seed as usize) % n).take(1 + seed as usize % n).collect();
            let mut hashes = Vec::new();
            key_hashes(&batch.columns, &key, batch.len(), &mut hashes);
            for (r, row) in data.iter().enumerate() {
                let values: Vec<&Value> = key.iter().map(|k| &row[*k]).collect();
                prop_assert_eq!(hashes[r], key_hash(values.iter().copied()));
                prop_assert_eq!(hashes[r], key_hash_refs(values.iter().map(|v| ValueRef::from(*v))));
            }
        }

        #[test]
        fn ranges_partition_the_key_groups(p in 1u32..=128, maxp_extra in 0u32..200) {
            let maxp = p + maxp_extra;
            let mut next = 0u32;
            for s in 0..p {
                let r = key_group_range(s, p, maxp);
                prop_assert_eq!(*r.start(), next);
                for kg in r.clone() {
                    prop_assert_eq!(subtask_for_key_group(kg, p, maxp), s);
                }
                next = r.end() + 1;
            }
            prop_assert_eq!(next, maxp);
        }
    }
}
