//! Clicks and impressions with a known set of matches, for the join's
//! end-to-end tests and the `join-generator` binary.
//!
//! Impression `i` (id `i`, campaign `c<i % 7>`) happens at `start + 10 ms ·
//! i`. Every third impression is clicked, after a delay of `(i · 37) mod
//! 15 000` ms, so that some clicks fall within 10 s of their impression and
//! some do not; every 50th click names an impression that does not exist.
//! Records are written out of order, each up to 500 ms behind a later one.
//! The interval join `within -10s, 0s` must emit exactly [`expected`].

use crate::generator::{SinkError, TickSink};
use crate::kafka::KafkaSink;
use std::collections::BTreeMap;

/// How far a click may follow its impression and still match.
pub const WINDOW_MS: i64 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Impression {
    pub ts: i64,
    pub imp_id: i64,
    pub campaign: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Click {
    pub ts: i64,
    pub click_id: i64,
    pub imp_id: i64,
}

/// Impressions `from..to` and their clicks, in time order.
pub fn events(start: i64, from: i64, to: i64) -> (Vec<Impression>, Vec<Click>) {
    let imps: Vec<Impression> =
        (from..to).map(|i| Impression { ts: start + 10 * i, imp_id: i, campaign: format!("c{}", i % 7) }).collect();
    let mut clicks: Vec<Click> = imps
        .iter()
        .filter(|m| m.imp_id % 3 == 0)
        .map(|m| {
            let n = m.imp_id / 3;
            let imp_id = if n % 50 == 49 { -m.imp_id - 1 } else { m.imp_id };
            Click { ts: m.ts + (m.imp_id * 37) % 15_000, click_id: n, imp_id }
        })
        .collect();
    clicks.sort_by_key(|c| (c.ts, c.click_id));
    (imps, clicks)
}

/// A deterministic lag in `0..500` ms for record `n`: the order written.
fn lag(n: i64) -> i64 {
    (n.wrapping_mul(2_654_435_761) >> 7).rem_euclid(500)
}

/// The records in the order they are written: by time plus a lag.
pub fn write_order<T: Clone>(items: &[T], ts: impl Fn(&T) -> i64, id: impl Fn(&T) -> i64) -> Vec<T> {
    let mut v: Vec<(i64, i64, T)> = items.iter().map(|x| (ts(x) + lag(id(x)), id(x), x.clone())).collect();
    v.sort_by_key(|(t, i, _)| (*t, *i));
    v.into_iter().map(|(_, _, x)| x).collect()
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or_else(|| ms.to_string(), |d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

impl Impression {
    pub fn to_json(&self) -> String {
        format!(r#"{{"ts":"{}","imp_id":{},"campaign":"{}"}}"#, iso(self.ts), self.imp_id, self.campaign)
    }
}

impl Click {
    pub fn to_json(&self) -> String {
        format!(r#"{{"ts":"{}","click_id":{},"imp_id":{}}}"#, iso(self.ts), self.click_id, self.imp_id)
    }
}

/// A joined row as the test job writes it: (click id, impression id, campaign).
pub type Joined = (i64, i64, String);

/// What the interval join `within -10s, 0s` of clicks with impressions emits.
pub fn expected(imps: &[Impression], clicks: &[Click]) -> BTreeMap<Joined, usize> {
    let by_id: BTreeMap<i64, &Impression> = imps.iter().map(|m| (m.imp_id, m)).collect();
    let mut out = BTreeMap::new();
    for c in clicks {
        if let Some(m) = by_id.get(&c.imp_id) {
            if m.ts >= c.ts - WINDOW_MS && m.ts <= c.ts {
                *out.entry((c.click_id, m.imp_id, m.campaign.clone())).or_insert(0) += 1;
            }
        }
    }
    out
}

/// Parses a joined row `{"click_id":…,"imp_id":…,"campaign":…}`.
pub fn parse_joined(text: &str) -> Option<Joined> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    Some((v["click_id"].as_i64()?, v["imp_id"].as_i64()?, v["campaign"].as_str()?.to_string()))
}

/// Writes JSON records to the sink's topic in one transaction.
pub fn write_all(sink: &mut KafkaSink, records: impl IntoIterator<Item = String>) -> Result<(), SinkError> {
    sink.begin()?;
    for r in records {
        if let Err(e) = sink.send_payload(None, &r) {
            let _ = sink.abort();
            return Err(e);
        }
    }
    sink.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn some_clicks_match_some_do_not_and_the_order_is_shuffled_within_half_a_second() {
        let (imps, clicks) = events(1_000_000, 0, 3000);
        let want = expected(&imps, &clicks);
        assert!(want.len() > 300 && want.len() < clicks.len(), "{} of {}", want.len(), clicks.len());
        assert!(want.values().all(|n| *n == 1));
        let order = write_order(&clicks, |c| c.ts, |c| c.click_id);
        assert_ne!(order, clicks, "some records are out of order");
        let mut max = i64::MIN;
        for c in &order {
            assert!(c.ts > max.saturating_sub(500), "{c:?} is more than 500 ms late");
            max = max.max(c.ts);
        }
        assert_eq!(parse_joined(r#"{"click_id":3,"imp_id":9,"campaign":"c2","x":1}"#), Some((3, 9, "c2".into())));
    }
}
