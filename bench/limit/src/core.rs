//! The Click Event Count core, by hand: datagen → hash exchange by page →
//! 15 s tumbling event-time count per page → discard, one thread per
//! subtask on each side, bounded channels between them (as flowc's
//! in-process channels: 8 batches of up to 1024 records).

use crate::gen::{click_ts, cycle, key_hash_str, subtask_of, PAGES};
use crossbeam_channel::{bounded, Receiver, Sender};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

const BATCH: usize = 1024;
const WINDOW_MS: i64 = 15_000;
const OUT_OF_ORDERNESS_MS: i64 = 200;
/// Sources emit a watermark every this many records (flowc: every 200 ms).
const WATERMARK_EVERY: u64 = 64 * 1024;

enum Msg {
    Records(Vec<(i64, &'static str)>),
    Watermark { from: usize, at: i64 },
}

/// FNV-1a, for the window's map of pages.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

fn source(k: u32, p: u32, events: u64, out: Vec<Sender<Msg>>) {
    let n = out.len();
    let mut buffers: Vec<Vec<(i64, &'static str)>> = (0..n).map(|_| Vec::with_capacity(BATCH)).collect();
    let mut max_ts = i64::MIN;
    let mut since_watermark = 0u64;
    let mut i = u64::from(k);
    while i < events {
        let (ts, page) = (click_ts(i), cycle(&PAGES, i));
        max_ts = max_ts.max(ts);
        let t = subtask_of(key_hash_str(page), n as u32);
        buffers[t].push((ts, page));
        if buffers[t].len() == BATCH {
            let full = std::mem::replace(&mut buffers[t], Vec::with_capacity(BATCH));
            if out[t].send(Msg::Records(full)).is_err() {
                return;
            }
        }
        since_watermark += 1;
        if since_watermark == WATERMARK_EVERY {
            since_watermark = 0;
            let at = max_ts - OUT_OF_ORDERNESS_MS - 1;
            for (t, o) in out.iter().enumerate() {
                let b = std::mem::replace(&mut buffers[t], Vec::with_capacity(BATCH));
                if (!b.is_empty() && o.send(Msg::Records(b)).is_err())
                    || o.send(Msg::Watermark { from: k as usize, at }).is_err()
                {
                    return;
                }
            }
        }
        i += u64::from(p);
    }
    for (t, o) in out.iter().enumerate() {
        let b = std::mem::take(&mut buffers[t]);
        if !b.is_empty() {
            let _ = o.send(Msg::Records(b));
        }
        let _ = o.send(Msg::Watermark { from: k as usize, at: i64::MAX });
    }
}

/// Counts per page and window; returns the windows fired.
fn window(p: usize, input: Receiver<Msg>) -> u64 {
    let mut counts: HashMap<&'static str, Vec<(i64, u64)>, BuildHasherDefault<Fnv>> = HashMap::default();
    let mut watermarks = vec![i64::MIN; p];
    let mut watermark = i64::MIN;
    let mut fired = 0u64;
    while let Ok(msg) = input.recv() {
        match msg {
            Msg::Records(batch) => {
                for (ts, page) in batch {
                    let start = ts - ts.rem_euclid(WINDOW_MS);
                    if start + WINDOW_MS - 1 <= watermark {
                        continue; // late
                    }
                    let windows = counts.entry(page).or_default();
                    match windows.iter_mut().rev().find(|(s, _)| *s == start) {
                        Some((_, c)) => *c += 1,
                        None => windows.push((start, 1)),
                    }
                }
            }
            Msg::Watermark { from, at } => {
                watermarks[from] = watermarks[from].max(at);
                let w = watermarks.iter().copied().min().unwrap_or(i64::MIN);
                if w > watermark {
                    watermark = w;
                    for windows in counts.values_mut() {
                        let before = windows.len();
                        windows.retain(|(s, c)| {
                            let fire = s + WINDOW_MS - 1 <= w;
                            if fire {
                                std::hint::black_box(c);
                            }
                            !fire
                        });
                        fired += (before - windows.len()) as u64;
                    }
                }
                if watermark == i64::MAX {
                    break;
                }
            }
        }
    }
    fired
}

/// Runs the job; returns the windows fired (events / 1000 at 6 pages).
pub fn run(events: u64, p: u32) -> u64 {
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..p).map(|_| bounded::<Msg>(8)).unzip();
    let windows: Vec<_> = rxs.into_iter().map(|rx| std::thread::spawn(move || window(p as usize, rx))).collect();
    let sources: Vec<_> = (0..p)
        .map(|k| {
            let out = txs.clone();
            std::thread::spawn(move || source(k, p, events, out))
        })
        .collect();
    drop(txs);
    for s in sources {
        let _ = s.join();
    }
    windows.into_iter().map(|w| w.join().unwrap_or(0)).sum()
}
