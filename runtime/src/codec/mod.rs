//! Record formats on the wire to and from the outside world (Kafka, files).
//!
//! Only JSON for now: one object per record, fields named as in the job's
//! schema. Decoders MUST NOT panic on any input: a record they cannot read
//! is an error the source counts and skips.

pub mod json;
