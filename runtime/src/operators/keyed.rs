//! What the operators with keyed state but no windows share (`running`,
//! `dedup`): finding each record's key in a [`KeyTable`] from the batch's
//! columns, processing-time timers per key, and per-key-group snapshot
//! framing.

use super::window_state::{KeyColumn, KeyTable};
use super::{KeyGroupWriter, KeyedSnapshot, OperatorError};
use crate::data::Batch;
use crate::keygroup::key_hashes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;

/// The slot of each record's key in `keys` (added when new), in `slots`.
/// The key hashes are the batch's when a HASH edge computed them, else
/// computed into `own`. A key of one dictionary column is looked up once
/// per distinct string. `false` if a key column is missing (a bug).
pub fn find_slots(keys: &mut KeyTable, input: &Batch, key: &[usize], own: &mut Vec<u64>, slots: &mut Vec<u32>) -> bool {
    let n = input.len();
    slots.clear();
    let hashes = match input.hashes_of(key) {
        Some(h) => h,
        None => {
            key_hashes(&input.columns, key, n, own);
            own.as_slice()
        }
    };
    let Some(key_columns) = KeyColumn::of(&input.columns, key) else { return false };
    let dictionary = match key_columns.as_slice() {
        [KeyColumn::Str(c)] => c.dictionary().filter(|(strings, _)| strings.len() <= n),
        _ => None,
    };
    let mut slot_of_id: Vec<u32> = vec![u32::MAX; dictionary.map_or(0, |(strings, _)| strings.len())];
    for (r, &hash) in hashes.iter().enumerate().take(n) {
        let slot = match dictionary {
            Some((_, ids)) => {
                let id = ids.get(r).map_or(0, |id| *id as usize);
                match slot_of_id.get(id) {
                    Some(&known) if known != u32::MAX => known,
                    _ => {
                        let found = keys.find_or_insert(hash, &key_columns, r);
                        if let Some(cached) = slot_of_id.get_mut(id) {
                            *cached = found;
                        }
                        found
                    }
                }
            }
            None => keys.find_or_insert(hash, &key_columns, r),
        };
        slots.push(slot);
    }
    true
}

/// Timers per key slot: `time → slots`. A timer is a hint: whoever fires
/// it checks the key's state (a key updated since is re-armed instead).
#[derive(Debug, Default)]
pub struct SlotTimers {
    timers: BTreeMap<i64, Vec<u32>>,
}

impl SlotTimers {
    pub fn add(&mut self, time: i64, slot: u32) {
        self.timers.entry(time).or_default().push(slot);
    }

    /// Removes and returns the slots of every timer at or before `time`.
    pub fn due(&mut self, time: i64) -> Vec<(i64, u32)> {
        let mut out = Vec::new();
        while let Some((&t, _)) = self.timers.first_key_value() {
            if t > time {
                break;
            }
            if let Some((t, slots)) = self.timers.pop_first() {
                out.extend(slots.into_iter().map(|s| (t, s)));
            }
        }
        out
    }
}

/// Encodes one key group's entries: a format version byte, then bincode.
pub fn encode_group<T: Serialize>(version: u8, entries: &[T]) -> Vec<u8> {
    let mut bytes = vec![version];
    bytes.extend(bincode::serde::encode_to_vec(entries, bincode::config::standard()).unwrap_or_default());
    bytes
}

/// A keyed snapshot of `entries`, each given with its key group and its
/// key's bytes in key order: per key group, sorted by key (so the bytes do
/// not depend on the key map's layout), each group by [`encode_group`].
/// (Operators write theirs with [`write_groups`]; tests compare formats.)
#[cfg(test)]
pub fn encode_groups<'a, T: Serialize>(
    version: u8,
    entries: impl IntoIterator<Item = (u32, &'a [u8], T)>,
) -> KeyedSnapshot {
    KeyedSnapshot::collect(|out| write_groups(version, entries, |e| e, out))
}

/// Writes the key groups, as `encode_groups` makes them, into `out`, one at a
/// time: `entries` are cheap references into the live state (a slot, a
/// borrowed entry), grouped and sorted first; `make` turns one into the
/// entry saved, only while its key group is being written. So beside the
/// live state there are the references and one key group, never a second
/// copy of the whole state.
pub fn write_groups<'a, R, T: Serialize>(
    version: u8,
    entries: impl IntoIterator<Item = (u32, &'a [u8], R)>,
    make: impl Fn(R) -> T,
    out: &mut dyn KeyGroupWriter,
) -> std::io::Result<()> {
    let mut groups: BTreeMap<u32, Vec<(&'a [u8], R)>> = BTreeMap::new();
    for (kg, order, entry) in entries {
        groups.entry(kg).or_default().push((order, entry));
    }
    while let Some((kg, mut entries)) = groups.pop_first() {
        entries.sort_by(|a, b| a.0.cmp(b.0));
        let entries: Vec<T> = entries.into_iter().map(|(_, e)| make(e)).collect();
        out.key_group(kg, &encode_group(version, &entries))?;
    }
    Ok(())
}

/// Decodes every key group of `state` written by [`encode_group`] in
/// format `version`, refusing anything else with the reason.
pub fn decode_groups<T: DeserializeOwned>(
    operator: &str,
    version: u8,
    state: &KeyedSnapshot,
) -> Result<Vec<T>, OperatorError> {
    let fail = |m: String| OperatorError::Restore { operator: operator.to_string(), message: m };
    let mut out = Vec::new();
    for (kg, bytes) in &state.key_groups {
        match bytes.split_first() {
            Some((&v, body)) if v == version => {
                let (entries, used): (Vec<T>, usize) =
                    bincode::serde::decode_from_slice(body, bincode::config::standard())
                        .map_err(|e| fail(format!("key group {kg} is corrupt: {e}")))?;
                if used != body.len() {
                    return Err(fail(format!("key group {kg} has trailing bytes")));
                }
                out.extend(entries);
            }
            Some((v, _)) => {
                return Err(fail(format!(
                    "key group {kg} is in state format {v}, which this flowc does not read (it reads {version})"
                )))
            }
            None => return Err(fail(format!("key group {kg} is empty"))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// Checks, as each key group arrives, that only the entries of the key
    /// groups so far were made: one key group at a time, never the whole.
    struct Watch<'a> {
        made: &'a Cell<usize>,
        per_group: BTreeMap<u32, usize>,
        seen: Vec<u32>,
    }

    impl KeyGroupWriter for Watch<'_> {
        fn key_group(&mut self, key_group: u32, _bytes: &[u8]) -> std::io::Result<()> {
            self.seen.push(key_group);
            let upto: usize = self.per_group.range(..=key_group).map(|(_, n)| n).sum();
            assert_eq!(self.made.get(), upto, "entries made by key group {key_group}");
            Ok(())
        }
    }

    #[test]
    fn write_groups_makes_one_key_groups_entries_at_a_time_in_key_group_order() {
        let keys: Vec<(u32, Vec<u8>)> = (0..200u32).map(|i| ((i * 37) % 11, i.to_be_bytes().to_vec())).collect();
        let made = Cell::new(0);
        let mut per_group = BTreeMap::new();
        for (kg, _) in &keys {
            *per_group.entry(*kg).or_insert(0) += 1;
        }
        let mut w = Watch { made: &made, per_group, seen: Vec::new() };
        let entries = keys.iter().map(|(kg, k)| (*kg, &k[..], k));
        let make = |k: &Vec<u8>| {
            made.set(made.get() + 1);
            k.clone()
        };
        write_groups(1, entries, make, &mut w).unwrap();
        assert_eq!(w.seen, (0..11).collect::<Vec<u32>>());
        // The bytes are those of the collected snapshot.
        let collected = encode_groups(1, keys.iter().map(|(kg, k)| (*kg, &k[..], k.clone())));
        let mut again = KeyedSnapshot::default();
        write_groups(1, keys.iter().map(|(kg, k)| (*kg, &k[..], k)), |k| k.clone(), &mut again).unwrap();
        assert_eq!(again, collected);
    }
}
