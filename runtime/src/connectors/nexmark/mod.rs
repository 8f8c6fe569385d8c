//! The nexmark source: the events of one kind (people, auctions or bids)
//! out of the Nexmark event sequence of [`generator`]. The sequence is cut
//! into blocks of 50 events (each with a person, 3 auctions and 46 bids);
//! subtask k of p takes the blocks k, k+p, k+2p, … and emits the events of
//! its kind in them, so that the subtasks together emit each event once and
//! each subtask gets its share of every kind. Its position (the next event
//! number) is checkpointed, and a restore at the same parallelism continues
//! there. Event times never decrease within a subtask: a `watermark
//! dateTime` stage after the source follows the generator's event time.

pub mod generator;

use super::{ConnectorError, SourcePoll, SourceReader};
use crate::checkpoint::SourceState;
use crate::data::column::empty_data;
use crate::data::{Batch, Column};
use flowc_compiler::ir::{NexmarkKind, NexmarkSource};
use generator::{next_of_kind, EventGenerator, BLOCK};
use std::time::{Duration, Instant};

/// Records per batch, at most.
const BATCH: usize = 1024;

/// Which events a reader takes: the blocks of [`BLOCK`] events numbered
/// `part`, `part + parts`, `part + 2 * parts`, …
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    pub part: u64,
    pub parts: u64,
}

impl Share {
    /// The whole sequence.
    pub const ALL: Share = Share { part: 0, parts: 1 };

    /// The first event numbered `n` or more in this share.
    pub fn next_from(self, n: u64) -> u64 {
        let parts = self.parts.max(1);
        let block = n / BLOCK;
        let r = block % parts;
        if r == self.part % parts {
            return n;
        }
        let ahead = (self.part % parts + parts - r) % parts;
        (block + ahead).saturating_mul(BLOCK)
    }

    /// The first event of `kind` numbered `n` or more in this share.
    pub fn next_of(self, n: u64, kind: NexmarkKind) -> u64 {
        let first = next_of_kind(self.next_from(n), kind);
        // Past its block, into one that may be another share's: the next
        // block of this share holds one.
        let again = self.next_from(first);
        if again == first {
            first
        } else {
            next_of_kind(again, kind)
        }
    }
}

/// The events of `kind` in `share` from event number `from` on, below `end`
/// (exclusive), at most `max` of them and none whose time is after `until`:
/// the batch, in the kind's schema, and the next event number to look at.
pub fn generate(
    generator: &EventGenerator,
    kind: NexmarkKind,
    share: Share,
    from: u64,
    end: u64,
    max: usize,
    until: Option<i64>,
) -> (Batch, u64) {
    let schema = kind.schema();
    let mut data: Vec<_> = schema.fields.iter().map(|f| empty_data(f.ty, max.min(BATCH))).collect();
    let (mut n, mut rows) = (share.next_of(from, kind), 0);
    while n < end && rows < max {
        if until.is_some_and(|t| generator.timestamp(n) > t) {
            break;
        }
        generator.append(n, &mut data);
        rows += 1;
        n = share.next_of(n.saturating_add(1), kind);
    }
    let columns = schema.fields.iter().zip(data).map(|(f, d)| Column::new(f.ty, d)).collect();
    (Batch::new(vec![crate::record::NO_TIMESTAMP; rows], columns), n.min(end))
}

pub struct NexmarkReader {
    spec: NexmarkSource,
    generator: EventGenerator,
    share: Share,
    /// The next event number this subtask looks at.
    next: u64,
    /// With `paced`: when the subtask started, and the event time it started at.
    origin: Option<(Instant, i64)>,
}

impl NexmarkReader {
    /// Subtask `subtask` of `parallelism`; `resume_at` is a restored position
    /// (an event number).
    pub fn new(spec: NexmarkSource, subtask: u32, parallelism: u32, resume_at: Option<u64>) -> NexmarkReader {
        let generator = EventGenerator::new(spec.rate, spec.seed, spec.base_time);
        let share = Share { part: u64::from(subtask), parts: u64::from(parallelism.max(1)) };
        let next = share.next_of(resume_at.unwrap_or(0), spec.kind);
        let origin = spec.paced.then(|| (Instant::now(), generator.timestamp(next)));
        NexmarkReader { generator, share, next, origin, spec }
    }
}

impl SourceReader for NexmarkReader {
    fn poll(&mut self, timeout: Duration) -> Result<SourcePoll, ConnectorError> {
        let end = self.spec.events.unwrap_or(u64::MAX);
        if self.next >= end {
            return Ok(SourcePoll::End);
        }
        // Paced: only events whose time has come on the wall clock.
        let until = self.origin.map(|(started, at)| at + started.elapsed().as_millis() as i64);
        if let Some(until) = until {
            let due = self.generator.timestamp(self.next);
            if due > until {
                std::thread::sleep(Duration::from_millis((due - until) as u64).min(timeout));
                return Ok(SourcePoll::Nothing);
            }
        }
        let (batch, next) = generate(&self.generator, self.spec.kind, self.share, self.next, end, BATCH, until);
        self.next = next;
        if batch.is_empty() {
            return Ok(if self.next >= end { SourcePoll::End } else { SourcePoll::Nothing });
        }
        Ok(SourcePoll::Records(batch))
    }

    fn snapshot(&mut self, _checkpoint_id: u64) -> SourceState {
        SourceState::Datagen { next: self.next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Value;

    fn spec(kind: NexmarkKind, events: u64) -> NexmarkSource {
        NexmarkSource { kind, events: Some(events), rate: 1000, seed: 42, base_time: 0, paced: false }
    }

    fn all(mut r: NexmarkReader) -> Vec<Vec<Value>> {
        let mut out = Vec::new();
        loop {
            match r.poll(Duration::from_millis(10)).expect("polls") {
                SourcePoll::Records(b) => out.extend(b.rows().into_iter().map(|(_, row)| row)),
                SourcePoll::End => return out,
                _ => {}
            }
        }
    }

    #[test]
    fn subtasks_together_emit_every_event_of_their_kind_once() {
        for kind in NexmarkKind::ALL {
            let alone = all(NexmarkReader::new(spec(kind, 3000), 0, 1, None));
            let mut split: Vec<Vec<Value>> =
                (0..3).flat_map(|s| all(NexmarkReader::new(spec(kind, 3000), s, 3, None))).collect();
            let expected = match kind {
                NexmarkKind::Person => 60,
                NexmarkKind::Auction => 180,
                NexmarkKind::Bid => 2760,
            };
            assert_eq!(alone.len(), expected, "{kind}");
            let mut alone = alone;
            let key = |r: &Vec<Value>| format!("{r:?}");
            alone.sort_by_key(key);
            split.sort_by_key(key);
            assert_eq!(alone, split, "{kind}");
        }
    }

    #[test]
    fn a_restored_subtask_continues_without_a_duplicate() {
        let whole = all(NexmarkReader::new(spec(NexmarkKind::Bid, 5000), 1, 2, None));
        let mut r = NexmarkReader::new(spec(NexmarkKind::Bid, 5000), 1, 2, None);
        let SourcePoll::Records(first) = r.poll(Duration::from_millis(10)).expect("polls") else { panic!("records") };
        let SourceState::Datagen { next } = r.snapshot(1) else { panic!("a position") };
        assert_eq!((next / BLOCK) % 2, 1, "stays in its share");
        let mut resumed: Vec<Vec<Value>> = first.rows().into_iter().map(|(_, row)| row).collect();
        resumed.extend(all(NexmarkReader::new(spec(NexmarkKind::Bid, 5000), 1, 2, Some(next))));
        assert_eq!(resumed, whole);
    }

    #[test]
    fn shares_take_whole_blocks_in_turn() {
        let s = Share { part: 1, parts: 3 };
        assert_eq!(s.next_from(0), 50);
        assert_eq!(s.next_from(60), 60);
        assert_eq!(s.next_from(100), 200);
        assert_eq!(s.next_of(0, NexmarkKind::Person), 50);
        assert_eq!(s.next_of(51, NexmarkKind::Person), 200);
        assert_eq!(s.next_of(99, NexmarkKind::Bid), 99);
        assert_eq!(s.next_of(99, NexmarkKind::Auction), 201);
        assert_eq!(Share::ALL.next_of(7, NexmarkKind::Bid), 7);
    }

    #[test]
    fn event_times_never_decrease_within_a_subtask() {
        let rows = all(NexmarkReader::new(spec(NexmarkKind::Bid, 4000), 0, 2, None));
        let times: Vec<i64> = rows
            .iter()
            .map(|r| match r[5] {
                Value::Timestamp(t) => t,
                _ => panic!("dateTime is a timestamp"),
            })
            .collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        assert!(*times.last().unwrap_or(&0) >= 3900, "4000 events at 1000/s span about 4 s");
    }

    #[test]
    fn a_paced_source_emits_no_sooner_than_its_rate() {
        let mut s = spec(NexmarkKind::Bid, 1_000_000);
        s.paced = true;
        let started = Instant::now();
        let mut r = NexmarkReader::new(s, 0, 1, None);
        let mut n = 0;
        while started.elapsed() < Duration::from_millis(300) {
            if let SourcePoll::Records(b) = r.poll(Duration::from_millis(20)).expect("polls") {
                n += b.len();
            }
        }
        // 1000 events/s, 92 % bids: about 276 bids in 300 ms; never 1000s.
        assert!(n > 0 && n < 600, "{n}");
    }
}
