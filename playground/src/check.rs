//! Verifies window counts: every complete 15 s window MUST show exactly 1000
//! for each of the six pages, and no window between the first and the last
//! MAY be missing.
//!
//! Input is a list of `(window_start_ms, page, count)` records, as read from
//! the job's `output` topic ([`OutputRecord`]) or tallied from raw click
//! events ([`EventTally`]).
//!
//! A window is *complete* once all six pages have a record. Windows after the
//! last complete one are *pending* (their results are still being written,
//! e.g. one subtask has fired the window and the other not yet): they may lack
//! pages, but any count they do show must already be 1000.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::clickevent::{
    format_timestamp, parse_timestamp, window_start, ClickEvent, ClickEventError, Page, EVENTS_PER_PAGE_PER_WINDOW,
    WINDOW_MS,
};

/// How strict [`check_counts_with`] is. The default is the strict contract for
/// an exactly-once `output` topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOptions {
    /// Identical repeated records are allowed (an at-least-once sink may
    /// repeat a record). Repeats with different counts are always a problem.
    pub allow_repeats: bool,
    /// The first window may show counts below 1000 and miss pages (the stream
    /// or the job started in the middle of it).
    pub partial_first: bool,
    /// The last window may show counts below 1000 (it is still being
    /// written, as when tallying raw events of a running generator).
    pub partial_last: bool,
    /// At most this many pending windows may follow the last complete one.
    pub max_pending: usize,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions { allow_repeats: false, partial_first: false, partial_last: false, max_pending: 2 }
    }
}

/// What a passing check saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Start of the first complete window checked.
    pub first_window_ms: i64,
    /// Start of the last complete window checked.
    pub last_window_ms: i64,
    /// Complete windows, each with exactly 1000 per page.
    pub complete_windows: usize,
    /// Windows after the last complete one, still missing pages.
    pub pending_windows: usize,
    /// A leading window skipped under [`CheckOptions::partial_first`].
    pub partial_first: bool,
    /// Records read, repeats included.
    pub records: usize,
    /// Identical repeats (allowed only with [`CheckOptions::allow_repeats`]).
    pub repeats: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} complete windows from {} to {}, every page exactly {}",
            self.complete_windows,
            format_timestamp(self.first_window_ms),
            format_timestamp(self.last_window_ms),
            EVENTS_PER_PAGE_PER_WINDOW
        )?;
        // Notes go on lines of their own, so that the verdict's line reads
        // the same whatever the run met on the way.
        if self.pending_windows > 0 {
            write!(f, "\n  note: {} pending window(s) still being written", self.pending_windows)?;
        }
        if self.partial_first {
            write!(f, "\n  note: partial first window skipped")?;
        }
        if self.repeats > 0 {
            write!(
                f,
                "\n  note: {} repeated record(s), as an at-least-once sink may write after a failure",
                self.repeats
            )?;
        }
        Ok(())
    }
}

/// One thing wrong with the window counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Nothing to check.
    NoWindows,
    /// A window start not on the 15 s grid.
    Misaligned { window_start_ms: i64 },
    /// A page name outside the six.
    UnknownPage { window_start_ms: i64, page: String },
    /// No record at all for a window between the first and the last.
    MissingWindow { window_start_ms: i64 },
    /// A window that has other pages but not this one.
    MissingPage { window_start_ms: i64, page: Page },
    /// A count other than 1000.
    WrongCount { window_start_ms: i64, page: Page, count: u64 },
    /// The same window and page reported more than once.
    Duplicate { window_start_ms: i64, page: Page, counts: Vec<u64> },
    /// More pending windows than [`CheckOptions::max_pending`].
    TooManyPending { pending: usize, max: usize },
    /// A record that could not be read (from [`OutputRecord::parse`] or
    /// [`EventTally`]).
    BadRecord { at: String, error: String },
    /// Event time went backwards within a partition or a page.
    Backwards { at: String, previous_ms: i64, timestamp_ms: i64 },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = |ms: &i64| format_timestamp(*ms);
        match self {
            Problem::NoWindows => write!(f, "no window records at all"),
            Problem::Misaligned { window_start_ms } => {
                write!(f, "window {} does not start on a 15 s boundary", w(window_start_ms))
            }
            Problem::UnknownPage { window_start_ms, page } => {
                write!(f, "window {}: unknown page {page:?}", w(window_start_ms))
            }
            Problem::MissingWindow { window_start_ms } => {
                write!(f, "window {}: missing entirely", w(window_start_ms))
            }
            Problem::MissingPage { window_start_ms, page } => {
                write!(f, "window {}: no count for {page}", w(window_start_ms))
            }
            Problem::WrongCount { window_start_ms, page, count } => write!(
                f,
                "window {}: {page} counted {count}, expected {}",
                w(window_start_ms),
                EVENTS_PER_PAGE_PER_WINDOW
            ),
            Problem::Duplicate { window_start_ms, page, counts } => {
                write!(f, "window {}: {page} reported {} times (counts {counts:?})", w(window_start_ms), counts.len())
            }
            Problem::TooManyPending { pending, max } => write!(
                f,
                "{pending} windows after the last complete one are missing pages (at most {max} may be pending)"
            ),
            Problem::BadRecord { at, error } => write!(f, "{at}: {error}"),
            Problem::Backwards { at, previous_ms, timestamp_ms } => {
                write!(f, "{at}: event time went backwards from {} to {}", w(previous_ms), w(timestamp_ms))
            }
        }
    }
}

/// Checks with the strict default [`CheckOptions`].
///
/// ```
/// use flowc_playground::check::{check_counts, Problem};
/// let pages = ["/help", "/index", "/shop", "/jobs", "/about", "/news"];
/// let mut records: Vec<(i64, &str, u64)> = Vec::new();
/// for w in [0, 15_000, 30_000] {
///     records.extend(pages.iter().map(|p| (w, *p, 1000)));
/// }
/// assert_eq!(check_counts(&records).unwrap().complete_windows, 3);
/// records.retain(|r| r.0 != 15_000);
/// assert_eq!(
///     check_counts(&records).unwrap_err(),
///     vec![Problem::MissingWindow { window_start_ms: 15_000 }]
/// );
/// ```
pub fn check_counts<S: AsRef<str>>(records: &[(i64, S, u64)]) -> Result<Summary, Vec<Problem>> {
    check_counts_with(records, &CheckOptions::default())
}

/// Checks `(window_start_ms, page, count)` records; see the module doc.
pub fn check_counts_with<S: AsRef<str>>(
    records: &[(i64, S, u64)],
    opts: &CheckOptions,
) -> Result<Summary, Vec<Problem>> {
    let table = Table::from_records(records);
    let mut problems = table.problems.clone();
    let windows: Vec<i64> = table.rows.keys().copied().collect();
    let (Some(&first), Some(&last)) = (windows.first(), windows.last()) else {
        problems.push(Problem::NoWindows);
        return Err(problems);
    };

    // Gaps: every 15 s step between the first and the last window.
    let mut ws = first;
    while ws < last {
        if !table.rows.contains_key(&ws) {
            problems.push(Problem::MissingWindow { window_start_ms: ws });
        }
        ws += WINDOW_MS;
    }

    let full = |row: &Row| row.counts.iter().all(|c| !c.is_empty());
    let last_full = table.rows.iter().rev().find(|(_, r)| full(r)).map(|(w, _)| *w);
    let pending = table.rows.keys().filter(|w| last_full.is_none_or(|lf| **w > lf)).count();
    if pending > opts.max_pending {
        problems.push(Problem::TooManyPending { pending, max: opts.max_pending });
    }

    let mut summary = Summary {
        first_window_ms: first,
        last_window_ms: first,
        complete_windows: 0,
        pending_windows: pending,
        partial_first: false,
        records: records.len(),
        repeats: 0,
    };
    for (&w, row) in &table.rows {
        let is_first = w == first;
        let is_last = w == last;
        let is_pending = last_full.is_none_or(|lf| w > lf);
        let lenient_low = (is_first && opts.partial_first) || (is_last && opts.partial_last);
        for page in Page::ALL {
            let counts = &row.counts[page.index()];
            match counts.as_slice() {
                [] if is_pending || (is_first && opts.partial_first) => {}
                [] => problems.push(Problem::MissingPage { window_start_ms: w, page }),
                [c, rest @ ..] => {
                    if !rest.is_empty() {
                        if opts.allow_repeats && rest.iter().all(|r| r == c) {
                            summary.repeats += rest.len();
                        } else {
                            problems.push(Problem::Duplicate { window_start_ms: w, page, counts: counts.clone() });
                        }
                    }
                    let ok = *c == EVENTS_PER_PAGE_PER_WINDOW || (lenient_low && *c < EVENTS_PER_PAGE_PER_WINDOW);
                    if !ok {
                        problems.push(Problem::WrongCount { window_start_ms: w, page, count: *c });
                    }
                }
            }
        }
        let exact = row.counts.iter().all(|c| c.first() == Some(&EVENTS_PER_PAGE_PER_WINDOW));
        if is_first && opts.partial_first && !exact {
            summary.partial_first = true;
            if let Some(next) = table.rows.keys().find(|k| **k > w) {
                summary.first_window_ms = *next;
            }
        } else if !is_pending && exact {
            summary.complete_windows += 1;
            summary.last_window_ms = w;
        }
    }
    if summary.complete_windows == 0 && problems.is_empty() {
        problems.push(Problem::NoWindows);
    }
    if problems.is_empty() {
        Ok(summary)
    } else {
        Err(problems)
    }
}

/// Counts of one window: for each page, every count reported for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    pub counts: [Vec<u64>; 6],
}

/// Records grouped by window, for printing and checking.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub rows: BTreeMap<i64, Row>,
    /// Records that do not fit a row (bad page, misaligned window).
    pub problems: Vec<Problem>,
}

impl Table {
    pub fn from_records<S: AsRef<str>>(records: &[(i64, S, u64)]) -> Table {
        let mut table = Table::default();
        for (w, page, count) in records {
            if window_start(*w) != *w {
                let p = Problem::Misaligned { window_start_ms: *w };
                if !table.problems.contains(&p) {
                    table.problems.push(p);
                }
                continue;
            }
            match page.as_ref().parse::<Page>() {
                Ok(page) => table.rows.entry(*w).or_default().counts[page.index()].push(*count),
                Err(_) => {
                    table.problems.push(Problem::UnknownPage { window_start_ms: *w, page: page.as_ref().to_owned() })
                }
            }
        }
        table
    }
}

impl fmt::Display for Table {
    /// One line per window, a column per page; repeats show as `1000×2`,
    /// missing pages as `-`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<26}", "window start")?;
        for p in Page::ALL {
            write!(f, "{:>9}", p.as_str())?;
        }
        writeln!(f)?;
        let mut prev: Option<i64> = None;
        for (w, row) in &self.rows {
            if let Some(p) = prev {
                let mut gap = p + WINDOW_MS;
                while gap < *w {
                    writeln!(f, "{:<26}{:>9}", format_timestamp(gap), "(missing)")?;
                    gap += WINDOW_MS;
                }
            }
            prev = Some(*w);
            write!(f, "{:<26}", format_timestamp(*w))?;
            for counts in &row.counts {
                let cell = match counts.as_slice() {
                    [] => "-".to_owned(),
                    [c] => c.to_string(),
                    [c, rest @ ..] if rest.iter().all(|r| r == c) => {
                        format!("{c}×{}", counts.len())
                    }
                    many => many.iter().map(u64::to_string).collect::<Vec<_>>().join("/"),
                };
                write!(f, "{cell:>9}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// One record of the Click Event Count job's `output` topic:
/// `{"windowStart":…,"windowEnd":…,"page":…,"count":…}`, with windowStart and
/// windowEnd as timestamp text (RFC 3339) or epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputRecord {
    pub window_start_ms: i64,
    pub window_end_ms: i64,
    pub page: String,
    pub count: u64,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct OutputJson {
    window_start: serde_json::Value,
    window_end: serde_json::Value,
    page: String,
    count: u64,
}

fn time_value(v: &serde_json::Value) -> Result<i64, ClickEventError> {
    match v {
        serde_json::Value::Number(n) => n.as_i64().ok_or_else(|| ClickEventError::Timestamp(n.to_string())),
        serde_json::Value::String(s) => parse_timestamp(s),
        other => Err(ClickEventError::Timestamp(other.to_string())),
    }
}

impl OutputRecord {
    /// Reads one output record; a window that is not 15 s long is an error.
    ///
    /// ```
    /// use flowc_playground::check::OutputRecord;
    /// let a = OutputRecord::parse(r#"{"windowStart":"2026-11-24T22:15:00.000Z","windowEnd":"2026-11-24T22:15:15.000Z","page":"/news","count":1000}"#).unwrap();
    /// let b = OutputRecord::parse(r#"{"windowStart":1795558500000,"windowEnd":1795558515000,"page":"/news","count":1000}"#).unwrap();
    /// assert_eq!(a, b);
    /// ```
    pub fn parse(text: &str) -> Result<OutputRecord, String> {
        let raw: OutputJson = serde_json::from_str(text).map_err(|e| format!("not an output record: {e}"))?;
        let window_start_ms = time_value(&raw.window_start).map_err(|e| format!("windowStart: {e}"))?;
        let window_end_ms = time_value(&raw.window_end).map_err(|e| format!("windowEnd: {e}"))?;
        // Flink prints windowEnd either as the exclusive end or as the last
        // millisecond of the window (maxTimestamp); accept both.
        let len = window_end_ms - window_start_ms;
        if len != WINDOW_MS && len != WINDOW_MS - 1 {
            return Err(format!(
                "window {} to {} is not 15 s long",
                format_timestamp(window_start_ms),
                format_timestamp(window_end_ms)
            ));
        }
        Ok(OutputRecord { window_start_ms, window_end_ms, page: raw.page, count: raw.count })
    }

    pub fn as_tuple(&self) -> (i64, String, u64) {
        (self.window_start_ms, self.page.clone(), self.count)
    }
}

/// Tallies raw click events (as read from the `input` topic) into window
/// counts, and checks that event time never goes backwards: neither within a
/// partition nor for a page, and each page's next event is a later tick.
#[derive(Debug, Default)]
pub struct EventTally {
    counts: BTreeMap<(i64, Page), u64>,
    last_in_partition: HashMap<i32, i64>,
    last_of_page: HashMap<Page, i64>,
    pub events: u64,
    pub max_timestamp_ms: Option<i64>,
    pub problems: Vec<Problem>,
}

impl EventTally {
    pub fn new() -> EventTally {
        EventTally::default()
    }

    /// Adds one raw record from `partition` at `offset`.
    pub fn push_json(&mut self, partition: i32, offset: i64, payload: &str) {
        match ClickEvent::from_json(payload) {
            Ok(ev) => self.push(partition, offset, ev),
            Err(e) => self.problems.push(Problem::BadRecord {
                at: format!("partition {partition} offset {offset}"),
                error: e.to_string(),
            }),
        }
    }

    /// Adds one event from `partition` at `offset`.
    pub fn push(&mut self, partition: i32, offset: i64, ev: ClickEvent) {
        self.events += 1;
        self.max_timestamp_ms = Some(self.max_timestamp_ms.map_or(ev.timestamp_ms, |m| m.max(ev.timestamp_ms)));
        *self.counts.entry((ev.window_start(), ev.page)).or_default() += 1;
        if let Some(prev) = self.last_in_partition.insert(partition, ev.timestamp_ms) {
            if ev.timestamp_ms < prev {
                self.problems.push(Problem::Backwards {
                    at: format!("partition {partition} offset {offset}"),
                    previous_ms: prev,
                    timestamp_ms: ev.timestamp_ms,
                });
            }
        }
        if let Some(prev) = self.last_of_page.insert(ev.page, ev.timestamp_ms) {
            if ev.timestamp_ms <= prev {
                self.problems.push(Problem::Backwards {
                    at: format!("page {} (partition {partition} offset {offset})", ev.page),
                    previous_ms: prev,
                    timestamp_ms: ev.timestamp_ms,
                });
            }
        }
    }

    /// The tallied `(window_start_ms, page, count)` records.
    pub fn records(&self) -> Vec<(i64, &'static str, u64)> {
        self.counts.iter().map(|((w, p), c)| (*w, p.as_str(), *c)).collect()
    }

    /// Checks the tally: the ordering problems seen so far plus
    /// [`check_counts_with`] on the counts, with the last window allowed to
    /// be in progress.
    pub fn check(&self, partial_first: bool) -> Result<Summary, Vec<Problem>> {
        let opts = CheckOptions { partial_first, partial_last: true, ..CheckOptions::default() };
        let result = check_counts_with(&self.records(), &opts);
        match (result, self.problems.is_empty()) {
            (Ok(s), true) => Ok(s),
            (Ok(_), false) => Err(self.problems.clone()),
            (Err(mut p), _) => {
                let mut all = self.problems.clone();
                all.append(&mut p);
                Err(all)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clickevent::events;

    const PAGES: [&str; 6] = ["/help", "/index", "/shop", "/jobs", "/about", "/news"];

    fn windows(starts: &[i64]) -> Vec<(i64, String, u64)> {
        starts.iter().flat_map(|w| PAGES.iter().map(move |p| (*w, p.to_string(), 1000))).collect()
    }

    fn check(records: &[(i64, String, u64)], opts: CheckOptions, expect: Result<usize, Vec<Problem>>) {
        let got = check_counts_with(records, &opts).map(|s| s.complete_windows);
        assert_eq!(got, expect);
    }

    #[test]
    fn all_good() {
        check(&windows(&[0, 15_000, 30_000]), CheckOptions::default(), Ok(3));
    }

    #[test]
    fn empty_is_a_problem() {
        check(&[], CheckOptions::default(), Err(vec![Problem::NoWindows]));
    }

    #[test]
    fn finds_missing_windows() {
        check(
            &windows(&[0, 45_000, 60_000]),
            CheckOptions::default(),
            Err(vec![
                Problem::MissingWindow { window_start_ms: 15_000 },
                Problem::MissingWindow { window_start_ms: 30_000 },
            ]),
        );
    }

    #[test]
    fn finds_wrong_counts() {
        let mut r = windows(&[0, 15_000, 30_000]);
        r[7].2 = 999; // 15_000 /index
        r[0].2 = 1001; // 0 /help
        check(
            &r,
            CheckOptions::default(),
            Err(vec![
                Problem::WrongCount { window_start_ms: 0, page: Page::Help, count: 1001 },
                Problem::WrongCount { window_start_ms: 15_000, page: Page::Index, count: 999 },
            ]),
        );
    }

    #[test]
    fn finds_duplicates_unless_repeats_allowed() {
        let mut r = windows(&[0, 15_000]);
        r.push((0, "/shop".into(), 1000));
        check(
            &r,
            CheckOptions::default(),
            Err(vec![Problem::Duplicate { window_start_ms: 0, page: Page::Shop, counts: vec![1000, 1000] }]),
        );
        let at_least_once = CheckOptions { allow_repeats: true, ..CheckOptions::default() };
        check(&r, at_least_once.clone(), Ok(2));
        // A repeat with another count is never fine.
        r.push((0, "/shop".into(), 2000));
        check(
            &r,
            at_least_once,
            Err(vec![Problem::Duplicate { window_start_ms: 0, page: Page::Shop, counts: vec![1000, 1000, 2000] }]),
        );
    }

    #[test]
    fn missing_page_in_the_middle_is_a_problem_but_pending_tail_is_not() {
        let mut r = windows(&[0, 15_000, 30_000]);
        // The last window has only 3 pages so far: pending.
        r.retain(|(w, p, _)| !(*w == 30_000 && ["/help", "/shop", "/about"].contains(&p.as_str())));
        check(&r, CheckOptions::default(), Ok(2));
        // A page missing in a window followed by a complete one.
        let mut r = windows(&[0, 15_000, 30_000]);
        r.retain(|(w, p, _)| !(*w == 15_000 && p == "/jobs"));
        check(
            &r,
            CheckOptions::default(),
            Err(vec![Problem::MissingPage { window_start_ms: 15_000, page: Page::Jobs }]),
        );
    }

    #[test]
    fn pending_counts_must_still_be_1000_and_pending_is_bounded() {
        let mut r = windows(&[0]);
        r.push((15_000, "/help".into(), 500));
        check(
            &r,
            CheckOptions::default(),
            Err(vec![Problem::WrongCount { window_start_ms: 15_000, page: Page::Help, count: 500 }]),
        );
        let mut r = windows(&[0]);
        for w in [15_000, 30_000, 45_000] {
            r.push((w, "/help".into(), 1000));
        }
        check(&r, CheckOptions::default(), Err(vec![Problem::TooManyPending { pending: 3, max: 2 }]));
    }

    #[test]
    fn partial_first_and_last() {
        let mut r = windows(&[0, 15_000, 30_000]);
        for rec in r.iter_mut().filter(|r| r.0 == 0) {
            rec.2 = 400;
        }
        for rec in r.iter_mut().filter(|r| r.0 == 30_000) {
            rec.2 = 10;
        }
        let opts = CheckOptions { partial_first: true, partial_last: true, ..CheckOptions::default() };
        let s = check_counts_with(&r, &opts).expect("lenient check passes");
        assert_eq!((s.complete_windows, s.partial_first, s.first_window_ms), (1, true, 15_000));
        assert!(check_counts(&r).is_err());
    }

    #[test]
    fn misaligned_and_unknown_pages() {
        let mut r = windows(&[0]);
        r.push((7, "/help".into(), 1000));
        r.push((0, "/admin".into(), 1));
        check(
            &r,
            CheckOptions::default(),
            Err(vec![
                Problem::Misaligned { window_start_ms: 7 },
                Problem::UnknownPage { window_start_ms: 0, page: "/admin".into() },
            ]),
        );
    }

    #[test]
    fn table_prints_gaps_and_repeats() {
        let mut r = windows(&[0, 30_000]);
        r.push((0, "/news".into(), 1000));
        let text = Table::from_records(&r).to_string();
        assert!(text.contains("1970-01-01T00:00:15.000Z  (missing)"), "{text}");
        assert!(text.contains("1000×2"), "{text}");
    }

    #[test]
    fn output_records_accept_iso_and_epoch_millis() {
        let iso = OutputRecord::parse(
            r#"{"windowStart":"1970-01-01T00:00:15.000Z","windowEnd":"1970-01-01T00:00:30.000Z","page":"/help","count":1000}"#,
        );
        let ms = OutputRecord::parse(r#"{"windowStart":15000,"windowEnd":30000,"page":"/help","count":1000}"#);
        assert_eq!(iso, ms);
        assert_eq!(ms.map(|r| r.as_tuple()), Ok((15_000, "/help".to_owned(), 1000)));
        assert!(OutputRecord::parse(r#"{"windowStart":0,"windowEnd":10000,"page":"/help","count":1}"#).is_err());
        assert!(OutputRecord::parse(r#"{"windowStart":0,"page":"/help","count":1}"#).is_err());
    }

    #[test]
    fn tally_of_generated_events_passes() {
        let mut tally = EventTally::new();
        for (i, ev) in events(15_000, 6 * 3500).enumerate() {
            tally.push_json(ev.page.index() as i32 % 2, i as i64, &ev.to_json());
        }
        let s = tally.check(false).expect("generated stream is exact");
        assert_eq!(s.complete_windows, 3);
        assert_eq!(tally.max_timestamp_ms, Some(15_000 + 3499 * 15));
    }

    #[test]
    fn tally_finds_backwards_time_and_repeated_ticks() {
        let mut tally = EventTally::new();
        let evs: Vec<_> = events(0, 6 * 2000).collect();
        for (i, ev) in evs.iter().enumerate() {
            tally.push(0, i as i64, *ev);
        }
        // Replay the last tick: a page repeats a timestamp, the partition
        // goes backwards.
        tally.push(0, 99_999, evs[evs.len() - 6]);
        let problems = tally.check(false).expect_err("replay is caught");
        assert!(problems.iter().any(|p| matches!(p, Problem::Backwards { .. })), "{problems:?}");
        assert!(
            problems.contains(&Problem::WrongCount { window_start_ms: 15_000, page: Page::Help, count: 1001 }),
            "{problems:?}"
        );
    }
}
