//! The generated records, as flowc's datagen source makes them: record i
//! (over all subtasks; subtask k of p makes k, k + p, …) of the bench jobs.

/// `ticks(1795558500000, 15, 6)`: 2026-11-24T22:15:00Z, +15 ms every 6 events.
#[inline]
pub fn click_ts(i: u64) -> i64 {
    1_795_558_500_000 + (i as i64 / 6) * 15
}

pub const PAGES: [&str; 6] = ["/help", "/index", "/shop", "/jobs", "/about", "/news"];

pub const REFERRERS: [&str; 5] = [
    "https://www.google.com/search?q=flink",
    "https://news.ycombinator.com/",
    "direct",
    "https://duckduckgo.com/?q=streaming",
    "https://example.org/blog/flink",
];

/// `cycle(…)` over `values`.
#[inline]
pub fn cycle<T: Copy>(values: &[T], i: u64) -> T {
    values[(i % values.len() as u64) as usize]
}

fn splitmix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `random(min, max)`.
#[inline]
pub fn random(min: i64, max: i64, i: u64) -> i64 {
    let span = (max as i128 - min as i128 + 1) as u128;
    (min as i128 + (u128::from(splitmix(i)) % span) as i128) as i64
}

/// flowc's key hash of one string key (FNV-1a over a tag and the bytes,
/// splitmix finish), so that the exchange routes as flowc's does.
#[inline]
pub fn key_hash_str(s: &str) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    h = (h ^ 1).wrapping_mul(PRIME);
    for b in s.as_bytes() {
        h = (h ^ u64::from(*b)).wrapping_mul(PRIME);
    }
    splitmix_finish(h)
}

fn splitmix_finish(h: u64) -> u64 {
    let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The subtask of `p` that owns the key group of `hash` (max parallelism 128).
#[inline]
pub fn subtask_of(hash: u64, p: u32) -> usize {
    let kg = hash % 128;
    (kg * u64::from(p) / 128) as usize
}
