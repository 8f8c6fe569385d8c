//! Where each record of a batch came from: its source position (a Kafka
//! topic, partition and offset, or a file and line) and its bytes as the
//! source read them. A side column of [`Batch`](super::Batch), as its row
//! kinds are, kept in step by every operation that selects, reorders,
//! appends or cuts its records.
//!
//! Sources fill it only when a stage of the job after them dead-letters
//! (issue 11 §6): such a stage's dead letter then names the record's source
//! and carries its original bytes, as a source's own dead letter does.
//! Everywhere else it is `None`, which costs nothing. When on, a record
//! costs 24 bytes besides its own bytes (its position and its bytes' end).
//! A record made by an operator (a window's or a join's output, datagen)
//! has no origin. Origins are never checkpointed: they travel with the
//! records in flight, also across the data plane (`data::wire`).
//!
//! ```text
//!  Origins { places: [Topic("clicks"), File("in/a.csv"), …],
//!            positions: [(place, partition, offset | line); rows],
//!            ends: [end of row r's bytes in `bytes`; rows], bytes }
//! ```

use crate::metrics::RecordPosition;
use std::sync::Arc;

/// A source a record was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A Kafka topic.
    Topic(Arc<str>),
    /// A file of a file source.
    File(Arc<str>),
}

/// Where in its place a record was read: a Kafka partition and offset, or
/// (a file's) the 1-based line and partition 0. `place` is an index into
/// [`Origins::places`], or [`NO_PLACE`] for a record without an origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub place: u32,
    pub partition: i32,
    pub offset: i64,
}

/// The place of a record without an origin.
pub const NO_PLACE: u32 = u32::MAX;

const NONE: Position = Position { place: NO_PLACE, partition: 0, offset: 0 };

/// The origins of a batch's records, one per record.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Origins {
    places: Vec<Place>,
    positions: Vec<Position>,
    /// Where each record's bytes end in `bytes` (they start where the
    /// previous record's end).
    ends: Vec<usize>,
    bytes: Vec<u8>,
}

/// One record's origin, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin<'a> {
    pub place: &'a Place,
    pub partition: i32,
    pub offset: i64,
    pub bytes: &'a [u8],
}

impl Origin<'_> {
    /// As the sources name a position (samples, dead letters, messages).
    pub fn position(&self) -> RecordPosition {
        match self.place {
            Place::Topic(t) => {
                RecordPosition::Kafka { topic: t.to_string(), partition: self.partition, offset: self.offset }
            }
            Place::File(f) => RecordPosition::File { file: f.to_string(), line: self.offset.max(0) as u64 },
        }
    }
}

impl Origins {
    /// Origins for `rows` records, none of which has one.
    pub fn none(rows: usize) -> Origins {
        Origins { places: Vec::new(), positions: vec![NONE; rows], ends: vec![0; rows], bytes: Vec::new() }
    }

    /// From their parts (as `data::wire` reads them), checked: one end per
    /// position, ends that never go back and stop at the bytes' length,
    /// places that exist.
    pub fn from_parts(
        places: Vec<Place>,
        positions: Vec<Position>,
        ends: Vec<usize>,
        bytes: Vec<u8>,
    ) -> Result<Origins, String> {
        if ends.len() != positions.len() {
            return Err(format!("{} ends of bytes for {} positions", ends.len(), positions.len()));
        }
        if ends.windows(2).any(|w| w[0] > w[1]) || ends.last().copied().unwrap_or(0) != bytes.len() {
            return Err(format!("ends of bytes out of order or not ending at {}", bytes.len()));
        }
        if let Some(p) = positions.iter().find(|p| p.place != NO_PLACE && p.place as usize >= places.len()) {
            return Err(format!("place {} of {}", p.place, places.len()));
        }
        Ok(Origins { places, positions, ends, bytes })
    }

    pub fn len(&self) -> usize {
        self.positions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    pub fn places(&self) -> &[Place] {
        &self.places
    }

    pub fn positions(&self) -> &[Position] {
        &self.positions
    }

    pub fn ends(&self) -> &[usize] {
        &self.ends
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Record `row`'s origin, if it has one.
    pub fn get(&self, row: usize) -> Option<Origin<'_>> {
        let p = self.positions.get(row)?;
        let place = self.places.get(p.place as usize)?;
        let start = if row == 0 { 0 } else { self.ends[row - 1] };
        let bytes = self.bytes.get(start..self.ends[row])?;
        Some(Origin { place, partition: p.partition, offset: p.offset, bytes })
    }

    /// The index of `place` among `self.places`, added if new (a batch
    /// holds few: the last one is tried first).
    fn place_index(&mut self, place: &Place) -> u32 {
        let found = match self.places.last() {
            Some(last) if last == place => Some(self.places.len() - 1),
            _ => self.places.iter().position(|p| p == place),
        };
        let i = found.unwrap_or_else(|| {
            self.places.push(place.clone());
            self.places.len() - 1
        });
        u32::try_from(i).unwrap_or(NO_PLACE)
    }

    fn push_at(&mut self, place: u32, partition: i32, offset: i64, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
        self.positions.push(Position { place, partition, offset });
        self.ends.push(self.bytes.len());
    }

    /// Appends a record read from Kafka.
    pub fn push_kafka(&mut self, topic: &str, partition: i32, offset: i64, bytes: &[u8]) {
        let place = match self.places.last() {
            Some(Place::Topic(t)) if &**t == topic => (self.places.len() - 1) as u32,
            _ => self.place_index(&Place::Topic(topic.into())),
        };
        self.push_at(place, partition, offset, bytes);
    }

    /// Appends a record read from line `line` (1-based) of a file.
    pub fn push_file(&mut self, file: &str, line: u64, bytes: &[u8]) {
        let place = match self.places.last() {
            Some(Place::File(f)) if &**f == file => (self.places.len() - 1) as u32,
            _ => self.place_index(&Place::File(file.into())),
        };
        self.push_at(place, 0, i64::try_from(line).unwrap_or(i64::MAX), bytes);
    }

    /// Appends `n` records without an origin.
    pub fn push_none(&mut self, n: usize) {
        self.positions.extend(std::iter::repeat_n(NONE, n));
        self.ends.extend(std::iter::repeat_n(self.bytes.len(), n));
    }

    /// The origins of the records at `rows`, in that order (a row out of
    /// range has none).
    pub fn gather(&self, rows: &[u32]) -> Origins {
        let mut out = Origins { places: self.places.clone(), ..Origins::default() };
        out.positions.reserve(rows.len());
        out.ends.reserve(rows.len());
        for &r in rows {
            let r = r as usize;
            match self.positions.get(r) {
                Some(p) => {
                    let start = if r == 0 { 0 } else { self.ends[r - 1] };
                    out.push_at(p.place, p.partition, p.offset, &self.bytes[start..self.ends[r]]);
                }
                None => out.push_none(1),
            }
        }
        out
    }

    /// Appends the origins of the records at `rows` of `src` (all of them
    /// if `None`).
    pub fn extend(&mut self, src: &Origins, rows: Option<&[u32]>) {
        // The places of `src` as indices of `self`'s.
        let map: Vec<u32> = if self.places == src.places {
            (0..src.places.len() as u32).collect()
        } else {
            src.places.iter().map(|p| self.place_index(p)).collect()
        };
        let remap = |p: &Position| Position { place: map.get(p.place as usize).copied().unwrap_or(NO_PLACE), ..*p };
        match rows {
            None => {
                let base = self.bytes.len();
                self.positions.extend(src.positions.iter().map(remap));
                self.ends.extend(src.ends.iter().map(|e| base + e));
                self.bytes.extend_from_slice(&src.bytes);
            }
            Some(rows) => {
                for &r in rows {
                    let r = r as usize;
                    match src.positions.get(r) {
                        Some(p) => {
                            let start = if r == 0 { 0 } else { src.ends[r - 1] };
                            let p = remap(p);
                            self.push_at(p.place, p.partition, p.offset, &src.bytes[start..src.ends[r]]);
                        }
                        None => self.push_none(1),
                    }
                }
            }
        }
    }

    /// Keeps the first `rows` records' origins.
    pub fn truncate(&mut self, rows: usize) {
        if rows >= self.len() {
            return;
        }
        self.positions.truncate(rows);
        self.ends.truncate(rows);
        self.bytes.truncate(self.ends.last().copied().unwrap_or(0));
    }

    /// Takes the origins gathered so far, leaving none.
    pub fn take(&mut self) -> Origins {
        std::mem::take(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Origins {
        let mut o = Origins::default();
        o.push_kafka("clicks", 0, 17, b"{\"a\":1}");
        o.push_kafka("clicks", 1, 3, b"");
        o.push_none(1);
        o.push_file("in/a.csv", 4, b"x,y");
        o
    }

    #[test]
    fn each_record_has_its_position_and_bytes_or_none() {
        let o = sample();
        assert_eq!(o.len(), 4);
        let first = o.get(0).expect("an origin");
        assert_eq!(first.position(), RecordPosition::Kafka { topic: "clicks".into(), partition: 0, offset: 17 });
        assert_eq!(first.bytes, b"{\"a\":1}");
        assert_eq!(o.get(1).map(|g| g.bytes), Some(&b""[..]));
        assert_eq!(o.get(2), None);
        let last = o.get(3).expect("an origin");
        assert_eq!(
            (last.position(), last.bytes),
            (RecordPosition::File { file: "in/a.csv".into(), line: 4 }, &b"x,y"[..])
        );
        assert_eq!(o.get(4), None);
        assert_eq!(o.places().len(), 2, "one place per topic or file");
    }

    #[test]
    fn gather_extend_and_truncate_keep_each_record_its_origin() {
        let o = sample();
        let g = o.gather(&[3, 0, 2, 9]);
        assert_eq!(g.get(0).map(|x| x.bytes), Some(&b"x,y"[..]));
        assert_eq!(g.get(1).map(|x| x.offset), Some(17));
        assert_eq!((g.get(2), g.get(3)), (None, None));
        // Another batch's places are mapped onto this one's.
        let mut other = Origins::default();
        other.push_file("in/b.csv", 1, b"b");
        other.push_kafka("clicks", 0, 18, b"c");
        let mut e = o.clone();
        e.extend(&other, None);
        e.extend(&other, Some(&[1, 0]));
        assert_eq!(e.len(), 8);
        assert_eq!(e.get(4).map(|x| x.position()), Some(RecordPosition::File { file: "in/b.csv".into(), line: 1 }));
        assert_eq!(e.get(6).map(|x| (x.position(), x.bytes)), other.get(1).map(|x| (x.position(), x.bytes)));
        assert_eq!(e.places().len(), 3);
        e.truncate(2);
        assert_eq!(e.len(), 2);
        assert_eq!((e.get(0), e.get(1)), (o.get(0), o.get(1)));
        assert_eq!(e.bytes(), o.get(0).map_or(&[][..], |x| x.bytes), "the bytes of the records cut are gone");
        assert_eq!(Origins::none(2).get(1), None);
    }

    #[test]
    fn parts_that_do_not_fit_together_are_refused() {
        let o = sample();
        let parts = |o: &Origins| (o.places.clone(), o.positions.clone(), o.ends.clone(), o.bytes.clone());
        let (pl, po, en, by) = parts(&o);
        assert_eq!(Origins::from_parts(pl.clone(), po.clone(), en.clone(), by.clone()), Ok(o));
        assert!(Origins::from_parts(pl.clone(), po.clone(), en[..3].to_vec(), by.clone()).is_err());
        assert!(Origins::from_parts(pl.clone(), po.clone(), en.clone(), by[1..].to_vec()).is_err());
        assert!(Origins::from_parts(pl.clone(), po.clone(), vec![7, 0, 7, 10], by.clone()).is_err());
        assert!(Origins::from_parts(pl[..1].to_vec(), po, en, by).is_err(), "a place that is not there");
    }
}
