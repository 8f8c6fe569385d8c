//! Keyed state as operators snapshot and restore it: per key group, so that
//! a checkpoint taken at one parallelism restores at another. Operators make
//! it (`operators/`), checkpoints store and redistribute it (`checkpoint/`);
//! both depend on this leaf, not on each other.
//!
//! At a checkpoint an operator hands its key groups one at a time to a
//! [`KeyGroupWriter`] the task gives it, which writes each into the state
//! file as it comes: the state is never held a second time as bytes. A
//! [`KeyedSnapshot`] is the same key groups collected in memory, as a
//! restore receives them (after the Restorer picked this subtask's).

/// Keyed state of one operator, per key group: what a checkpoint stores and
/// what rescaling redistributes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyedSnapshot {
    /// (key group, serialized entries of that key group), sorted by key group.
    pub key_groups: Vec<(u32, Vec<u8>)>,
}

impl KeyedSnapshot {
    /// The key groups one writer function hands out, collected.
    pub fn collect(write: impl FnOnce(&mut dyn KeyGroupWriter) -> std::io::Result<()>) -> KeyedSnapshot {
        let mut out = KeyedSnapshot::default();
        // Collecting into memory cannot fail; a writer's own failure leaves
        // what it wrote so far, as a partial snapshot (never used as one:
        // only a state file's writer fails, and that fails the checkpoint).
        let _ = write(&mut out);
        out
    }
}

/// Where an operator's keyed state goes at a checkpoint, one key group at
/// a time, in ascending key-group order, each key group once.
pub trait KeyGroupWriter {
    /// One key group's serialized entries. An error (the state file could
    /// not be written) is passed back up unchanged: the checkpoint fails.
    fn key_group(&mut self, key_group: u32, bytes: &[u8]) -> std::io::Result<()>;
}

impl KeyGroupWriter for KeyedSnapshot {
    fn key_group(&mut self, key_group: u32, bytes: &[u8]) -> std::io::Result<()> {
        self.key_groups.push((key_group, bytes.to_vec()));
        Ok(())
    }
}
