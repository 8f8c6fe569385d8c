//! Click events: the six pages, the 15 ms tick grid, and the JSON record format.
//!
//! Event time advances in ticks of [`TICK_MS`]; every tick carries exactly one
//! event per page, all with the tick's timestamp. A tumbling window of
//! [`WINDOW_MS`] therefore holds [`TICKS_PER_WINDOW`] ticks, i.e. exactly 1000
//! events per page, whatever the offset of the tick grid.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};

/// Event time between two consecutive ticks, in milliseconds.
pub const TICK_MS: i64 = 15;
/// Length of the Click Event Count tumbling window, in milliseconds.
pub const WINDOW_MS: i64 = 15_000;
/// Ticks (and so events per page) in one window.
pub const TICKS_PER_WINDOW: i64 = WINDOW_MS / TICK_MS;
/// Events per page per window: the number every complete window must show.
pub const EVENTS_PER_PAGE_PER_WINDOW: u64 = TICKS_PER_WINDOW as u64;
/// Events per tick: one per page.
pub const EVENTS_PER_TICK: u64 = Page::ALL.len() as u64;
/// Default pace: one tick per 15 ms of wall time, i.e. 400 events per second.
pub const DEFAULT_RATE: u64 = EVENTS_PER_TICK * 1000 / TICK_MS as u64;

/// One of the six pages of the playground's web site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Page {
    Help,
    Index,
    Shop,
    Jobs,
    About,
    News,
}

impl Page {
    /// All pages, in the order a tick emits them.
    pub const ALL: [Page; 6] = [Page::Help, Page::Index, Page::Shop, Page::Jobs, Page::About, Page::News];

    /// The page's path, e.g. `/index`; also the Kafka message key.
    pub fn as_str(self) -> &'static str {
        match self {
            Page::Help => "/help",
            Page::Index => "/index",
            Page::Shop => "/shop",
            Page::Jobs => "/jobs",
            Page::About => "/about",
            Page::News => "/news",
        }
    }

    /// Position of the page in [`Page::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Page {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Page {
    type Err = ClickEventError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Page::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| ClickEventError::UnknownPage(s.to_owned()))
    }
}

/// Why a click event or timestamp could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClickEventError {
    #[error("not a click event: {0}")]
    Json(String),
    #[error("unknown page {0:?} (expected one of /help, /index, /shop, /jobs, /about, /news)")]
    UnknownPage(String),
    #[error("bad timestamp {0:?}: expected RFC 3339 like 2026-11-24T22:15:00.015Z or epoch milliseconds")]
    Timestamp(String),
    #[error("timestamp {0} ms is out of range")]
    OutOfRange(i64),
}

/// One click: a page visited at an event time (epoch milliseconds, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClickEvent {
    pub timestamp_ms: i64,
    pub page: Page,
}

#[derive(serde::Deserialize)]
struct ClickEventJson<'a> {
    #[serde(borrow)]
    timestamp: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    page: std::borrow::Cow<'a, str>,
}

impl ClickEvent {
    /// The record as written to Kafka:
    /// `{"timestamp":"2026-11-24T22:15:00.015Z","page":"/index"}`.
    ///
    /// ```
    /// use flowc_playground::clickevent::{ClickEvent, Page};
    /// let ev = ClickEvent { timestamp_ms: 1_795_558_500_015, page: Page::Index };
    /// assert_eq!(ev.to_json(), r#"{"timestamp":"2026-11-24T22:15:00.015Z","page":"/index"}"#);
    /// assert_eq!(ClickEvent::from_json(&ev.to_json()), Ok(ev));
    /// ```
    pub fn to_json(&self) -> String {
        format!(r#"{{"timestamp":"{}","page":"{}"}}"#, format_timestamp(self.timestamp_ms), self.page)
    }

    /// Reads a record written by [`ClickEvent::to_json`] (any RFC 3339
    /// timestamp is accepted).
    pub fn from_json(text: &str) -> Result<ClickEvent, ClickEventError> {
        let raw: ClickEventJson<'_> = serde_json::from_str(text).map_err(|e| ClickEventError::Json(e.to_string()))?;
        Ok(ClickEvent { timestamp_ms: parse_timestamp(&raw.timestamp)?, page: raw.page.parse()? })
    }

    /// Start of the 15 s window holding this event.
    pub fn window_start(&self) -> i64 {
        window_start(self.timestamp_ms)
    }
}

/// Start of the tumbling 15 s window (aligned to the epoch) that holds `ms`.
pub fn window_start(ms: i64) -> i64 {
    ms - ms.rem_euclid(WINDOW_MS)
}

/// Formats epoch milliseconds as `yyyy-MM-dd'T'HH:mm:ss.SSSX` in UTC, e.g.
/// `2026-11-24T22:15:00.015Z`. Out-of-range values (beyond chrono's years
/// ±262143) print as the bare number.
pub fn format_timestamp(ms: i64) -> String {
    match DateTime::<Utc>::from_timestamp_millis(ms) {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => ms.to_string(),
    }
}

/// Reads an RFC 3339 timestamp (any offset, any fraction digits; truncated
/// to milliseconds) or a plain integer of epoch milliseconds.
pub fn parse_timestamp(text: &str) -> Result<i64, ClickEventError> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().enumerate().all(|(i, b)| b.is_ascii_digit() || (i == 0 && b == b'-')) {
        return text.parse::<i64>().map_err(|_| ClickEventError::Timestamp(text.to_owned()));
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|_| ClickEventError::Timestamp(text.to_owned()))
}

/// Event time of tick number `tick` of a run that starts at `start_ms`.
pub fn tick_time(start_ms: i64, tick: u64) -> i64 {
    start_ms + tick as i64 * TICK_MS
}

/// The six events of the tick at `tick_ms`, in page order.
pub fn tick_events(tick_ms: i64) -> impl Iterator<Item = ClickEvent> {
    Page::ALL.into_iter().map(move |page| ClickEvent { timestamp_ms: tick_ms, page })
}

/// The first `n` events of the stream whose first tick is at `start_ms`:
/// event `i` is page `i % 6` at `start_ms + (i / 6) * 15`.
///
/// ```
/// use flowc_playground::clickevent::{events, Page};
/// let evs: Vec<_> = events(0, 8).collect();
/// assert_eq!(evs[5].page, Page::News);
/// assert_eq!((evs[6].timestamp_ms, evs[6].page), (15, Page::Help));
/// ```
pub fn events(start_ms: i64, n: u64) -> impl Iterator<Item = ClickEvent> {
    (0..n).map(move |i| ClickEvent {
        timestamp_ms: tick_time(start_ms, i / EVENTS_PER_TICK),
        page: Page::ALL[(i % EVENTS_PER_TICK) as usize],
    })
}

/// Number of whole ticks needed for at least `events` events.
pub fn ticks_for_events(events: u64) -> u64 {
    events.div_ceil(EVENTS_PER_TICK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    const NOV_24_2026_22_15: i64 = 1_795_558_500_000;

    #[test]
    fn timestamp_format_has_three_fraction_digits_and_z() {
        assert_eq!(format_timestamp(NOV_24_2026_22_15 + 15), "2026-11-24T22:15:00.015Z");
        assert_eq!(format_timestamp(NOV_24_2026_22_15), "2026-11-24T22:15:00.000Z");
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn parse_timestamp_accepts_rfc3339_and_epoch_millis() {
        let check = |text: &str, expect: i64| assert_eq!(parse_timestamp(text), Ok(expect), "{text}");
        check("2026-11-24T22:15:00.015Z", NOV_24_2026_22_15 + 15);
        check("2026-11-24T22:15:00Z", NOV_24_2026_22_15);
        check("2026-11-24T23:15:00.015+01:00", NOV_24_2026_22_15 + 15);
        check("2026-11-24T22:15:00.0159Z", NOV_24_2026_22_15 + 15);
        check("1795558500015", NOV_24_2026_22_15 + 15);
        assert!(parse_timestamp("yesterday").is_err());
        assert!(parse_timestamp("").is_err());
    }

    #[test]
    fn json_is_exactly_the_flink_format() {
        let ev = ClickEvent { timestamp_ms: NOV_24_2026_22_15 + 15, page: Page::Index };
        assert_eq!(ev.to_json(), r#"{"timestamp":"2026-11-24T22:15:00.015Z","page":"/index"}"#);
    }

    #[test]
    fn from_json_rejects_unknown_pages_and_bad_json() {
        assert_eq!(
            ClickEvent::from_json(r#"{"timestamp":"2026-11-24T22:15:00.015Z","page":"/nope"}"#),
            Err(ClickEventError::UnknownPage("/nope".into()))
        );
        assert!(matches!(ClickEvent::from_json(r#"{"page":"/help"}"#), Err(ClickEventError::Json(_))));
    }

    #[test]
    fn tick_arithmetic() {
        assert_eq!(TICKS_PER_WINDOW, 1000);
        assert_eq!(DEFAULT_RATE, 400);
        assert_eq!(tick_time(1000, 0), 1000);
        assert_eq!(tick_time(1000, 3), 1045);
        assert_eq!(ticks_for_events(0), 0);
        assert_eq!(ticks_for_events(1), 1);
        assert_eq!(ticks_for_events(6), 1);
        assert_eq!(ticks_for_events(12_000), 2000);
        assert_eq!(window_start(14_999), 0);
        assert_eq!(window_start(15_000), 15_000);
        assert_eq!(window_start(-1), -15_000);
        let evs: Vec<_> = events(30_000, 13).collect();
        assert_eq!(evs[0], ClickEvent { timestamp_ms: 30_000, page: Page::Help });
        assert_eq!(evs[11], ClickEvent { timestamp_ms: 30_015, page: Page::News });
        assert_eq!(evs[12], ClickEvent { timestamp_ms: 30_030, page: Page::Help });
        assert_eq!(tick_events(7).map(|e| e.page).collect::<Vec<_>>(), Page::ALL);
    }

    #[test]
    fn window_boundary_ticks() {
        // Window [15000, 30000) holds ticks 15000, 15015, …, 29985.
        let ticks: Vec<i64> =
            events(15_000, 6 * 1001).filter(|e| e.page == Page::Shop).map(|e| e.timestamp_ms).collect();
        assert_eq!(ticks[999], 29_985);
        assert_eq!(window_start(ticks[999]), 15_000);
        assert_eq!(window_start(ticks[1000]), 30_000);
    }

    proptest! {
        /// Whatever the start offset, every window the stream covers fully
        /// holds exactly 1000 events per page.
        #[test]
        fn exactly_1000_per_page_per_full_window(
            start in -40_000_000i64..40_000_000_000_000,
            windows in 2u64..5,
        ) {
            let n = (windows * 1000 + 30) * EVENTS_PER_TICK;
            let mut counts: BTreeMap<(i64, Page), u64> = BTreeMap::new();
            for ev in events(start, n) {
                *counts.entry((ev.window_start(), ev.page)).or_default() += 1;
            }
            let first = window_start(start);
            let last = window_start(tick_time(start, n / EVENTS_PER_TICK - 1));
            let full: Vec<_> = counts
                .iter()
                .filter(|((w, _), _)| {
                    (*w > first || start == first) && *w < last
                })
                .collect();
            prop_assert!(full.len() >= 6);
            for ((w, page), c) in full {
                prop_assert_eq!(*c, 1000, "window {} page {}", w, page);
            }
        }

        #[test]
        fn json_round_trip(ms in -62_000_000_000_000i64..250_000_000_000_000, p in 0usize..6) {
            let ev = ClickEvent { timestamp_ms: ms, page: Page::ALL[p] };
            let json = ev.to_json();
            prop_assert_eq!(ClickEvent::from_json(&json), Ok(ev));
            // yyyy-MM-dd'T'HH:mm:ss.SSS'Z' for four-digit years.
            if (0..253_402_300_800_000).contains(&ms) {
                let ts = &json[14..38];
                prop_assert_eq!(ts.len(), 24);
                prop_assert_eq!(&ts[19..20], ".");
                prop_assert!(ts.ends_with('Z'));
            }
        }
    }
}
