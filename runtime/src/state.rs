//! Keyed state as operators snapshot and restore it: per key group, so that
//! a checkpoint taken at one parallelism restores at another. Operators make
//! it (`operators/`), checkpoints store and redistribute it (`checkpoint/`);
//! both depend on this leaf, not on each other.

/// Keyed state of one operator, per key group: what a checkpoint stores and
/// what rescaling redistributes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyedSnapshot {
    /// (key group, serialized entries of that key group), sorted by key group.
    pub key_groups: Vec<(u32, Vec<u8>)>,
}
