//! Names a Flink or SQL user tries that flowc does not have (yet), each with
//! what to write instead. The parser consults it for an unknown stage, the
//! checker for an unknown window kind.
//!
//! One table, so that a feature that lands removes exactly one line here
//! (and its golden case in `compiler/tests/golden/err/` changes with it).

/// `(name, what to do instead)`, the name in lower case without `_`
/// variants: [`explain`] looks names up case-insensitively.
pub const NOT_YET: &[(&str, &str)] = &[
    ("merge", "flowc merges streams with `union`: `| union other, …` (same fields and types)"),
    (
        "cogroup",
        "flowc has no `cogroup`; `| join other on k == other.k window tumbling { size: 1m }` pairs both sides' records per key and window",
    ),
    (
        "distinct",
        "flowc has no `distinct` stage; `| dedup f within 1h` keeps the first record per key",
    ),
    ("deduplicate", "flowc's deduplication is `| dedup f within 1h`: the first record per key"),
    ("session", "session windows are written `| key_by user | window session { gap: 30m }`"),
    ("limit", "flowc has no `limit` stage: a stream has no end; a windowed `aggregate` bounds what each window emits"),
    ("sort", "flowc does not sort: a stream has no end to sort to; windows group records by key and time"),
    ("order_by", "flowc does not sort: a stream has no end to sort to; windows group records by key and time"),
    ("group_by", "flowc groups with `key_by`: `| key_by f | window tumbling { size: 1m } | aggregate { … }`"),
    ("groupby", "flowc groups with `key_by`: `| key_by f | window tumbling { size: 1m } | aggregate { … }`"),
    ("where", "flowc's `where` is `filter`: `| filter page != \"/help\"`"),
    ("project", "flowc projects with `select { … }` (only the listed fields) or `map { … }` (adds or replaces fields)"),
    (
        "flat_map",
        "flowc has no `flat_map` stage; `| unnest tags as tag` emits one record per element of an array field (`map { parts: split(s, \",\") }` makes one)",
    ),
    (
        "flatmap",
        "flowc has no `flat_map` stage; `| unnest tags as tag` emits one record per element of an array field (`map { parts: split(s, \",\") }` makes one)",
    ),
    ("explode", "flowc's `explode` is `unnest`: `| unnest tags as tag`, one record per element"),
    ("reduce", "flowc reduces with a windowed `aggregate`: `| key_by f | window … | aggregate { total: sum(x) }`"),
    ("count", "`count()` is an aggregate: `| key_by f | window … | aggregate { f, n: count() }`"),
    ("print", "`print` is a sink: end the pipeline with `| sink print`"),
    ("to", "a pipeline ends in a sink: `| sink kafka { … }`, `| sink print` or `| sink file { … }`"),
    ("insert", "a pipeline ends in a sink: `| sink kafka { … }`, `| sink print` or `| sink file { … }`"),
    ("rebalance", "flowc chooses each exchange itself: HASH after `key_by`, FORWARD or REBALANCE otherwise"),
    ("shuffle", "flowc chooses each exchange itself: HASH after `key_by`, FORWARD or REBALANCE otherwise"),
    ("tumble", "windows are written `| window tumbling { size: 1m }`"),
    ("hop", "sliding windows are written `| window sliding { size: 1m, slide: 10s }`"),
    ("tumbling", "windows are written `| window tumbling { size: 1m }`"),
    ("sliding", "windows are written `| window sliding { size: 1m, slide: 10s }`"),
    (
        "assign_timestamps",
        "event time comes from a watermark stage: `| watermark ts_field { out_of_orderness: 200ms }`",
    ),
];

/// What to write instead of `name`, if flowc knows the name from elsewhere.
///
/// ```
/// assert!(flowc_dsl::not_yet::explain("MERGE").is_some_and(|h| h.contains("`union`")));
/// assert_eq!(flowc_dsl::not_yet::explain("filter"), None);
/// ```
pub fn explain(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    NOT_YET.iter().find(|(n, _)| *n == lower).map(|(_, help)| *help)
}

/// What to write instead of `name` as a window kind (`window session { … }`).
pub fn explain_window(name: &str) -> Option<&'static str> {
    const WINDOW_NAMES: &[&str] = &["session", "tumble", "hop"];
    let lower = name.to_ascii_lowercase();
    if WINDOW_NAMES.contains(&lower.as_str()) {
        explain(&lower)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lower_case_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for (name, help) in NOT_YET {
            assert_eq!(*name, name.to_ascii_lowercase(), "{name}");
            assert!(seen.insert(*name), "`{name}` is in the table twice");
            assert!(!help.is_empty());
        }
        assert!(explain_window("Session").is_some());
        assert_eq!(explain_window("join"), None);
    }
}
