//! Customer versions and orders with a known result, for the temporal
//! join's end-to-end test (`tests/e2e_temporal_kafka.rs`).
//!
//! Customer `c` (of [`CUSTOMERS`]) gets a new version in every second `s`,
//! at `start + 1000 · s + 13 · c`, with tier `t<c>-<s>`; a customer with
//! `c % 9 == 8` is deleted (`deleted: true`) in the seconds `s % 10 == 5`
//! and back with the next version. Orders come every 20 ms, order `n` for
//! customer `7 · n mod (CUSTOMERS + 3)` — ids from [`CUSTOMERS`] on never
//! exist. Records are written out of order within half a second
//! ([`crate::joins::write_order`]). The inner temporal join `as of` the
//! order's time emits exactly [`expected`].

use std::collections::BTreeMap;

pub const CUSTOMERS: i64 = 40;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub ts: i64,
    pub id: i64,
    pub tier: String,
    pub deleted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub ts: i64,
    pub order_id: i64,
    pub customer_id: i64,
}

/// The versions of seconds `from_s..to_s`, in time order.
pub fn versions(start: i64, from_s: i64, to_s: i64) -> Vec<Version> {
    let mut v: Vec<Version> = (from_s..to_s)
        .flat_map(|s| {
            (0..CUSTOMERS).map(move |c| Version {
                ts: start + 1000 * s + 13 * c,
                id: c,
                tier: format!("t{c}-{s}"),
                deleted: c % 9 == 8 && s % 10 == 5,
            })
        })
        .collect();
    v.sort_by_key(|x| (x.ts, x.id));
    v
}

/// The orders of seconds `from_s..to_s`, in time order.
pub fn orders(start: i64, from_s: i64, to_s: i64) -> Vec<Order> {
    (from_s * 50..to_s * 50)
        .map(|n| Order { ts: start + 20 * n + 3, order_id: n, customer_id: (7 * n).rem_euclid(CUSTOMERS + 3) })
        .collect()
}

/// A joined row as the test job writes it: (order id, customer id, tier).
pub type Enriched = (i64, i64, String);

/// What the inner temporal join emits: each order with the latest version
/// of its customer at or before its time, unless that is a deletion.
pub fn expected(versions: &[Version], orders: &[Order]) -> BTreeMap<Enriched, usize> {
    let mut by_id: BTreeMap<i64, Vec<&Version>> = BTreeMap::new();
    for v in versions {
        by_id.entry(v.id).or_default().push(v);
    }
    let mut out = BTreeMap::new();
    for o in orders {
        let latest = by_id.get(&o.customer_id).and_then(|vs| vs.iter().filter(|v| v.ts <= o.ts).max_by_key(|v| v.ts));
        if let Some(v) = latest.filter(|v| !v.deleted) {
            *out.entry((o.order_id, o.customer_id, v.tier.clone())).or_insert(0) += 1;
        }
    }
    out
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or_else(|| ms.to_string(), |d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

impl Version {
    pub fn to_json(&self) -> String {
        format!(r#"{{"ts":"{}","id":{},"tier":"{}","deleted":{}}}"#, iso(self.ts), self.id, self.tier, self.deleted)
    }
}

impl Order {
    pub fn to_json(&self) -> String {
        format!(r#"{{"ts":"{}","order_id":{},"customer_id":{}}}"#, iso(self.ts), self.order_id, self.customer_id)
    }
}

/// Parses a joined row `{"order_id":…,"customer_id":…,"tier":…}`.
pub fn parse_enriched(text: &str) -> Option<Enriched> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    Some((v["order_id"].as_i64()?, v["customer_id"].as_i64()?, v["tier"].as_str()?.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_meet_the_version_of_their_time_some_none_and_some_a_deletion() {
        let (vs, os) = (versions(1_000_000, 0, 20), orders(1_000_000, 0, 20));
        let want = expected(&vs, &os);
        // Unknown customers (3 of 43) and deleted ones are dropped.
        assert!(want.len() > os.len() * 8 / 10 && want.len() < os.len() * 95 / 100, "{} of {}", want.len(), os.len());
        // Order 0 at +3 ms meets customer 0's first version (at +0 ms).
        assert_eq!(want.get(&(0, 0, "t0-0".into())), Some(&1));
        // Customer 8 is deleted in second 5: no row for its orders then.
        assert!(want.keys().all(|(_, c, tier)| !(*c == 8 && tier == "t8-5")));
        assert!(want.keys().any(|(_, c, tier)| *c == 8 && tier == "t8-4"), "before the deletion second's version");
        assert_eq!(parse_enriched(r#"{"order_id":3,"customer_id":9,"tier":"t9-0"}"#), Some((3, 9, "t9-0".into())));
    }
}
