//! The Nexmark event generator: event `n` of the sequence is a person, an
//! auction or a bid (proportions 1:3:46 of every 50 events), with the id
//! spaces, hot sellers, bidders and auctions, prices, string lengths and
//! event-time progression of Nexmark's reference generator
//! (`com.github.nexmark.flink.generator`, after Apache Beam's
//! `NexmarkGenerator`), with its default configuration.
//!
//! Unlike the reference, which draws from one unseeded `SplittableRandom`,
//! every event draws from its own generator seeded by `(seed, n)`: an event
//! is a pure function of its number, so subtasks can split the sequence
//! without overlap, a restore continues exactly where it stood, and two
//! sources with the same seed see the same events. The reference adds the
//! first person id to a bid's bidder twice; this one adds it once, as
//! Beam's does, so that bidders are people.

use crate::data::Data;
use flowc_compiler::ir::NexmarkKind;
use std::sync::OnceLock;

const PERSON_PROPORTION: u64 = 1;
const AUCTION_PROPORTION: u64 = 3;
const TOTAL_PROPORTION: u64 = 50;
/// Events per block: each block of 50 events holds a person (its first), 3
/// auctions and 46 bids.
pub const BLOCK: u64 = TOTAL_PROPORTION;
const FIRST_PERSON_ID: i64 = 1000;
const FIRST_AUCTION_ID: i64 = 1000;
const FIRST_CATEGORY_ID: i64 = 10;
const NUM_CATEGORIES: u32 = 5;
/// `numActivePeople`, `numInFlightAuctions` of the default configuration.
const NUM_ACTIVE_PEOPLE: i64 = 1000;
const NUM_IN_FLIGHT_AUCTIONS: i64 = 100;
const PERSON_ID_LEAD: i64 = 10;
const AUCTION_ID_LEAD: i64 = 10;
/// `hotAuctionRatio`, `hotSellersRatio`, `hotBiddersRatio` of the default
/// configuration: one in that many is not hot.
const HOT_AUCTION_CHANCE: u32 = 2;
const HOT_SELLER_CHANCE: u32 = 4;
const HOT_BIDDER_CHANCE: u32 = 4;
/// Hot ids are the first of each batch of this many.
const HOT_BATCH: i64 = 100;
const AVG_PERSON_BYTES: usize = 200;
const AVG_AUCTION_BYTES: usize = 500;
const AVG_BID_BYTES: usize = 100;
const MIN_STRING_LENGTH: u32 = 3;
const CHANNELS: usize = 10_000;

const US_STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];
const US_CITIES: [&str; 10] =
    ["Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"];
const FIRST_NAMES: [&str; 11] =
    ["Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"];
const LAST_NAMES: [&str; 9] = ["Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"];
const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];

/// The kind of event `n`.
pub fn kind_of(n: u64) -> NexmarkKind {
    let rem = n % TOTAL_PROPORTION;
    if rem < PERSON_PROPORTION {
        NexmarkKind::Person
    } else if rem < PERSON_PROPORTION + AUCTION_PROPORTION {
        NexmarkKind::Auction
    } else {
        NexmarkKind::Bid
    }
}

/// The first event of `kind` numbered `n` or more.
pub fn next_of_kind(n: u64, kind: NexmarkKind) -> u64 {
    let (start, offset) = (n - n % TOTAL_PROPORTION, n % TOTAL_PROPORTION);
    let (first, last) = match kind {
        NexmarkKind::Person => (0, PERSON_PROPORTION),
        NexmarkKind::Auction => (PERSON_PROPORTION, PERSON_PROPORTION + AUCTION_PROPORTION),
        NexmarkKind::Bid => (PERSON_PROPORTION + AUCTION_PROPORTION, TOTAL_PROPORTION),
    };
    if offset < first {
        start + first
    } else if offset < last {
        n
    } else {
        start.saturating_add(TOTAL_PROPORTION + first)
    }
}

/// The sequence's settings: everything an event depends on besides its number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EventGenerator {
    /// Microseconds of event time between two events.
    inter_event_us: f64,
    base_time: i64,
    seed: u64,
}

impl EventGenerator {
    /// `rate` events per second of event time (at least 1), event 0 at
    /// `base_time` (epoch milliseconds).
    pub fn new(rate: u64, seed: u64, base_time: i64) -> EventGenerator {
        EventGenerator { inter_event_us: 1_000_000.0 / rate.max(1) as f64, base_time, seed }
    }

    /// The event time of event `n`, epoch milliseconds: never decreasing in `n`.
    pub fn timestamp(&self, n: u64) -> i64 {
        self.base_time + ((n as f64 * self.inter_event_us) as i64) / 1000
    }

    /// Appends event `n` to `columns`: one per field of the schema of its
    /// kind ([`kind_of`]), in order (`I64` for longs and timestamps, `Str`
    /// for strings).
    pub fn append(&self, n: u64, columns: &mut [Data]) {
        let mut rng = Rng::for_event(self.seed, n);
        let ts = self.timestamp(n);
        match kind_of(n) {
            NexmarkKind::Person => self.person(n, ts, &mut rng, columns),
            NexmarkKind::Auction => self.auction(n, ts, &mut rng, columns),
            NexmarkKind::Bid => self.bid(n, ts, &mut rng, columns),
        }
    }

    fn person(&self, n: u64, ts: i64, rng: &mut Rng, c: &mut [Data]) {
        let id = last_base0_person_id(n) + FIRST_PERSON_ID;
        let name = format!("{} {}", FIRST_NAMES[rng.below(11) as usize], LAST_NAMES[rng.below(9) as usize]);
        let email = format!("{}@{}.com", next_string(rng, 7, ' '), next_string(rng, 5, ' '));
        let card = (0..4).map(|_| format!("{:04}", rng.below(10_000))).collect::<Vec<_>>().join(" ");
        let city = US_CITIES[rng.below(10) as usize];
        let state = US_STATES[rng.below(6) as usize];
        let size = 8 + name.len() + email.len() + card.len() + city.len() + state.len();
        let extra = next_extra(rng, size, AVG_PERSON_BYTES);
        push_i64(&mut c[0], id);
        push_str(&mut c[1], &name);
        push_str(&mut c[2], &email);
        push_str(&mut c[3], &card);
        push_str(&mut c[4], city);
        push_str(&mut c[5], state);
        push_i64(&mut c[6], ts);
        push_str(&mut c[7], extra);
    }

    fn auction(&self, n: u64, ts: i64, rng: &mut Rng, c: &mut [Data]) {
        let id = last_base0_auction_id(n) + FIRST_AUCTION_ID;
        let seller = FIRST_PERSON_ID
            + if rng.below(HOT_SELLER_CHANCE) > 0 {
                // The first person of the batch of the last HOT_BATCH people.
                (last_base0_person_id(n) / HOT_BATCH) * HOT_BATCH
            } else {
                next_base0_person_id(n, rng)
            };
        let category = FIRST_CATEGORY_ID + i64::from(rng.below(NUM_CATEGORIES));
        let initial_bid = next_price(rng);
        let expires = ts + self.auction_length_ms(n, ts, rng);
        let name = next_string(rng, 20, ' ');
        let description = next_string(rng, 100, ' ');
        let reserve = initial_bid + next_price(rng);
        let size = 8 + name.len() + description.len() + 8 + 8 + 8 + 8 + 8;
        let extra = next_extra(rng, size, AVG_AUCTION_BYTES);
        push_i64(&mut c[0], id);
        push_str(&mut c[1], &name);
        push_str(&mut c[2], &description);
        push_i64(&mut c[3], initial_bid);
        push_i64(&mut c[4], reserve);
        push_i64(&mut c[5], ts);
        push_i64(&mut c[6], expires);
        push_i64(&mut c[7], seller);
        push_i64(&mut c[8], category);
        push_str(&mut c[9], extra);
    }

    fn bid(&self, n: u64, ts: i64, rng: &mut Rng, c: &mut [Data]) {
        let auction = FIRST_AUCTION_ID
            + if rng.below(HOT_AUCTION_CHANCE) > 0 {
                // The first auction of the batch of the last HOT_BATCH auctions.
                (last_base0_auction_id(n) / HOT_BATCH) * HOT_BATCH
            } else {
                next_base0_auction_id(n, rng)
            };
        let bidder = FIRST_PERSON_ID
            + if rng.below(HOT_BIDDER_CHANCE) > 0 {
                // The second person of the batch, so that hot bidders are not hot sellers.
                (last_base0_person_id(n) / HOT_BATCH) * HOT_BATCH + 1
            } else {
                next_base0_person_id(n, rng)
            };
        let price = next_price(rng);
        let t = tables();
        let (channel, url) = if rng.below(2) > 0 {
            let i = rng.below(4) as usize;
            (HOT_CHANNELS[i], t.hot_urls[i].as_str())
        } else {
            let (channel, url) = &t.channels[rng.below(CHANNELS as u32) as usize];
            (channel.as_str(), url.as_str())
        };
        let extra = next_extra(rng, 8 + 8 + 8 + 8, AVG_BID_BYTES);
        push_i64(&mut c[0], auction);
        push_i64(&mut c[1], bidder);
        push_i64(&mut c[2], price);
        push_str(&mut c[3], channel);
        push_str(&mut c[4], url);
        push_i64(&mut c[5], ts);
        push_str(&mut c[6], extra);
    }

    /// How long an auction runs: on average until `numInFlightAuctions`
    /// more auctions have been generated.
    fn auction_length_ms(&self, n: u64, ts: i64, rng: &mut Rng) -> i64 {
        let events_for_auctions = (NUM_IN_FLIGHT_AUCTIONS as u64 * TOTAL_PROPORTION) / AUCTION_PROPORTION;
        let horizon = self.timestamp(n + events_for_auctions) - ts;
        1 + next_long(rng, (horizon * 2).max(1))
    }
}

fn push_i64(d: &mut Data, v: i64) {
    if let Data::I64(values) = d {
        values.push(v);
    }
}

fn push_str(d: &mut Data, s: &str) {
    if let Data::Str(column) = d {
        column.push(s);
    }
}

/// The last person id (from 0) generated up to event `n`.
fn last_base0_person_id(n: u64) -> i64 {
    let epoch = (n / TOTAL_PROPORTION) as i64;
    let offset = n % TOTAL_PROPORTION;
    // Past the block's people: the block's last person.
    let offset = if offset >= PERSON_PROPORTION { PERSON_PROPORTION - 1 } else { offset };
    epoch * PERSON_PROPORTION as i64 + offset as i64
}

/// The last auction id (from 0) generated up to event `n`; -1 before the first.
fn last_base0_auction_id(n: u64) -> i64 {
    let mut epoch = (n / TOTAL_PROPORTION) as i64;
    let mut offset = (n % TOTAL_PROPORTION) as i64;
    let (person, auction) = (PERSON_PROPORTION as i64, AUCTION_PROPORTION as i64);
    if offset < person {
        // Back to the last auction of the previous epoch.
        epoch -= 1;
        offset = auction - 1;
    } else if offset >= person + auction {
        offset = auction - 1;
    } else {
        offset -= person;
    }
    epoch * auction + offset
}

/// One of the active people, or a few ahead of the last one.
fn next_base0_person_id(n: u64, rng: &mut Rng) -> i64 {
    let people = last_base0_person_id(n) + 1;
    let active = people.min(NUM_ACTIVE_PEOPLE);
    people - active + next_long(rng, active + PERSON_ID_LEAD)
}

/// One of the auctions likely still in flight, or a few ahead of the last one.
fn next_base0_auction_id(n: u64, rng: &mut Rng) -> i64 {
    let max = last_base0_auction_id(n);
    let min = (max - NUM_IN_FLIGHT_AUCTIONS).max(0);
    min + next_long(rng, max - min + 1 + AUCTION_ID_LEAD)
}

/// A price in cents from 1 to 100,000,000, logarithmically distributed.
fn next_price(rng: &mut Rng) -> i64 {
    (10f64.powf(rng.unit() * 6.0) * 100.0 + 0.5).floor() as i64
}

/// `LongGenerator.nextLong`: a value in `0..n` (`n` ≥ 1).
fn next_long(rng: &mut Rng, n: i64) -> i64 {
    if n < i64::from(i32::MAX) {
        i64::from(rng.below(n.max(1) as u32))
    } else {
        (rng.next_u64() % n as u64) as i64
    }
}

/// 3 to `max_len - 1` characters `a`–`z`, one in 13 `special`, trimmed of spaces.
fn next_string(rng: &mut Rng, max_len: u32, special: char) -> String {
    let len = MIN_STRING_LENGTH + rng.below(max_len - MIN_STRING_LENGTH);
    let mut s = String::with_capacity(len as usize);
    for _ in 0..len {
        if rng.below(13) == 0 {
            s.push(special);
        } else {
            s.push(char::from(b'a' + rng.below(26) as u8));
        }
    }
    s.trim_matches(' ').to_string()
}

/// Padding that brings a record to about `average` bytes (±20 %): a slice
/// of a fixed 1 MiB string of letters.
fn next_extra(rng: &mut Rng, current: usize, average: usize) -> &'static str {
    if current > average {
        return "";
    }
    let wanted = average - current;
    let delta = (wanted as f64 * 0.2).round() as usize;
    let size = wanted - delta + if delta == 0 { 0 } else { rng.below(2 * delta as u32) as usize };
    let pool = &tables().pool;
    let offset = rng.below((pool.len() - size) as u32) as usize;
    &pool[offset..offset + size]
}

/// What every event shares, made once from a fixed seed: the padding pool,
/// the hot channels' URLs and the 10,000 other channels with their URLs
/// (nine in ten with a `channel_id`).
struct Tables {
    pool: String,
    hot_urls: Vec<String>,
    channels: Vec<(String, String)>,
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut rng = Rng(0x006e_6578_6d61_726b);
        let pool = (0..1024 * 1024).map(|_| char::from(b'a' + rng.below(26) as u8)).collect();
        let base_url = |rng: &mut Rng| {
            format!(
                "https://www.nexmark.com/{}/{}/{}/item.htm?query=1",
                next_string(rng, 5, '_'),
                next_string(rng, 5, '_'),
                next_string(rng, 5, '_')
            )
        };
        let hot_urls = (0..4).map(|_| base_url(&mut rng)).collect();
        let channels = (0..CHANNELS)
            .map(|i| {
                let mut url = base_url(&mut rng);
                if rng.below(10) > 0 {
                    // Java's Math.abs(Integer.reverse(i)), which leaves i32::MIN negative.
                    url.push_str(&format!("&channel_id={}", (i as i32).reverse_bits().wrapping_abs()));
                }
                (format!("channel-{i}"), url)
            })
            .collect();
        Tables { pool, hot_urls, channels }
    })
}

/// SplitMix64: small, fast and good enough for test data.
struct Rng(u64);

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    fn for_event(seed: u64, n: u64) -> Rng {
        Rng(mix(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ mix(n.wrapping_add(0x632b_e59b_d9b4_e019))))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// A value in `0..n` (`n` ≥ 1).
    fn below(&mut self, n: u32) -> u32 {
        (((self.next_u64() >> 32) * u64::from(n.max(1))) >> 32) as u32
    }

    /// A value in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::column::empty_data;

    fn columns(kind: NexmarkKind) -> Vec<Data> {
        kind.schema().fields.iter().map(|f| empty_data(f.ty, 16)).collect()
    }

    fn ints(d: &Data) -> &[i64] {
        match d {
            Data::I64(v) => v,
            _ => panic!("not longs"),
        }
    }

    #[test]
    fn kinds_come_in_the_standard_proportions() {
        let mut counts = [0; 3];
        for n in 0..5000 {
            counts[NexmarkKind::ALL.iter().position(|k| *k == kind_of(n)).unwrap_or(0)] += 1;
        }
        assert_eq!(counts, [100, 300, 4600]);
    }

    #[test]
    fn next_of_kind_finds_the_next_event_of_that_kind() {
        for n in 0..200 {
            for kind in NexmarkKind::ALL {
                let found = next_of_kind(n, kind);
                let expected = (n..).find(|m| kind_of(*m) == kind).unwrap_or(0);
                assert_eq!(found, expected, "{n} {kind}");
            }
        }
    }

    #[test]
    fn event_time_advances_by_the_rate() {
        let g = EventGenerator::new(10_000, 0, 1000);
        assert_eq!(g.timestamp(0), 1000);
        assert_eq!(g.timestamp(9), 1000);
        assert_eq!(g.timestamp(10), 1001);
        assert_eq!(g.timestamp(10_000), 2000);
    }

    #[test]
    fn ids_follow_the_sequence_and_bids_name_people_and_auctions_that_exist_or_soon_will() {
        let g = EventGenerator::new(1000, 7, 0);
        let (mut people, mut auctions, mut bids) =
            (columns(NexmarkKind::Person), columns(NexmarkKind::Auction), columns(NexmarkKind::Bid));
        for n in 0..20_000 {
            match kind_of(n) {
                NexmarkKind::Person => g.append(n, &mut people),
                NexmarkKind::Auction => g.append(n, &mut auctions),
                NexmarkKind::Bid => g.append(n, &mut bids),
            }
        }
        let person_ids = ints(&people[0]);
        assert_eq!(person_ids.len(), 400);
        assert!(person_ids.iter().enumerate().all(|(i, id)| *id == 1000 + i as i64));
        let auction_ids = ints(&auctions[0]);
        assert!(auction_ids.iter().enumerate().all(|(i, id)| *id == 1000 + i as i64));
        let max_person = 1000 + 400 + PERSON_ID_LEAD;
        assert!(ints(&auctions[7]).iter().all(|s| (1000..max_person).contains(s)), "sellers are people");
        assert!(ints(&auctions[8]).iter().all(|c| (10..15).contains(c)), "five categories");
        assert!(ints(&bids[1]).iter().all(|b| (1000..max_person).contains(b)), "bidders are people");
        assert!(ints(&bids[0]).iter().all(|a| (1000..1000 + 1200 + AUCTION_ID_LEAD).contains(a)));
        assert!(ints(&bids[2]).iter().all(|p| (100..=100_000_000).contains(p)));
        let (starts, ends) = (ints(&auctions[5]), ints(&auctions[6]));
        assert!(starts.iter().zip(ends).all(|(s, e)| e > s), "an auction expires after it starts");
    }

    #[test]
    fn an_event_depends_only_on_its_number_and_the_seed() {
        let g = EventGenerator::new(1000, 3, 0);
        let one = |g: &EventGenerator, n| {
            let mut c = columns(kind_of(n));
            g.append(n, &mut c);
            format!("{c:?}")
        };
        assert_eq!(one(&g, 4321), one(&g, 4321));
        assert_ne!(one(&g, 4321), one(&EventGenerator::new(1000, 4, 0), 4321));
    }

    #[test]
    fn bid_urls_have_three_directories_and_most_channels_an_id() {
        let t = tables();
        assert!(t.hot_urls.iter().all(|u| u.split('/').count() == 7 && u.ends_with("/item.htm?query=1")));
        let with_id = t.channels.iter().filter(|(_, u)| u.contains("&channel_id=")).count();
        assert!((8500..9500).contains(&with_id), "{with_id}");
        assert_eq!(t.channels[3].0, "channel-3");
    }
}
