//! The language's vocabulary as tables: the stages, the sources, sinks,
//! windows and the watermark stage with their options and the values each
//! takes, the scalar functions, the aggregates. One line of documentation
//! per entry.
//!
//! The checker reads its lists of allowed options and option values from
//! here, and editors (the language server's completion and hover) read the
//! same tables: a new option is offered in the editor as soon as the
//! checker accepts it. Scalar functions and aggregates are documented by
//! [`Function::doc`] and [`AggFunc::doc`], exhaustive matches, so a new
//! function does not compile without its documentation.

use crate::ir::{AggFunc, Function};

/// A stage of a pipeline, after `|`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageDoc {
    pub name: &'static str,
    /// How it is written, as a snippet of the language.
    pub syntax: &'static str,
    pub doc: &'static str,
}

/// Every stage, in the order of [`flowc_dsl::parser::STAGES`].
pub const STAGES: &[StageDoc] = &[
    StageDoc {
        name: "watermark",
        syntax: "watermark <timestamp field> { out_of_orderness: 200ms, idleness: 5s }",
        doc: "Assigns event time from a timestamp field and emits watermarks that trail the highest timestamp seen by `out_of_orderness`.",
    },
    StageDoc {
        name: "filter",
        syntax: "filter <condition>",
        doc: "Keeps the records for which the condition, a bool expression over the record's fields, is true.",
    },
    StageDoc {
        name: "map",
        syntax: "map { field: expr, … }",
        doc: "Keeps every field of the input, replacing those it names and adding new ones at the end.",
    },
    StageDoc {
        name: "select",
        syntax: "select { field, name: expr, … }",
        doc: "Outputs exactly the listed fields, in order.",
    },
    StageDoc {
        name: "key_by",
        syntax: "key_by <field>, …",
        doc: "Partitions the stream by the key fields (a HASH edge); followed by a `window`, or by `aggregate` for a running aggregate.",
    },
    StageDoc {
        name: "window",
        syntax: "window tumbling { size: 15s } | window sliding { size: 1m, slide: 10s } | window session { gap: 30m }",
        doc: "Groups each key's records into windows (all records, at parallelism 1, without `key_by`); must be followed by `aggregate`.",
    },
    StageDoc {
        name: "aggregate",
        syntax: "aggregate { key, n: count(), … }",
        doc: "After a window: one record per key and window when the window closes (keys, aggregates and window bounds). After `key_by` without a window: a running aggregate, an upsert stream keyed by the key that emits `+I`, then `-U`/`+U` for each change (Flink SQL's `GROUP BY`); over an upsert stream its `count`, `sum`, `avg`, `min` and `max` retract each update's old row; `ttl 1d` forgets keys not updated for that long.",
    },
    StageDoc {
        name: "dedup",
        syntax: "dedup <field>, … within 1h",
        doc: "Keeps the first record per key and forgets the key `within` after it was first seen (event time with watermarks, else processing time); append-only. `ttl 1d` also forgets keys not seen for that long.",
    },
    StageDoc {
        name: "top",
        syntax: "top 3 by views desc as rank",
        doc: "After a windowed `aggregate`: the first N rows of each window by a field (`desc`, the default, or `asc`; ties by arrival), with their rank (`rank: long`, 1-based) at the end.",
    },
    StageDoc {
        name: "sink",
        syntax: "sink kafka { … } | sink print | sink file { path: … } | sink discard",
        doc: "Writes the records out; nothing can follow a sink.",
    },
    StageDoc {
        name: "union",
        syntax: "union <stream>, …",
        doc: "Merges the stream with `let` streams of the same fields and types, in arrival order; the watermark is the least of the inputs'.",
    },
    StageDoc {
        name: "join",
        syntax: "join <stream> on <field> == <stream>.<field> within -10m, 0s | window tumbling { size: 1m } | ttl 1d",
        doc: "Pairs each record with the `let` stream's records of equal key in an event-time interval (relative to the left record's time) or in the same window, or (`as of ts`) with the version of a `versioned` stream valid at the record's time, or (`ttl 1d`, no time bound: Flink SQL's regular join) with every record of equal key that arrived less than the ttl ago; emits the left's fields then the right's. `left join` keeps unmatched records, the right's fields null. `{ late: name }` after the bound sends the left's late records to a stream.",
    },
    StageDoc {
        name: "versioned",
        syntax: "versioned by <field>, …",
        doc: "Reads the stream as a changelog keyed by these fields (a compacted topic): each record is its key's version from its event time on; a `deleted: bool` field that is true ends the key's versions, and so does a Kafka tombstone (a message with a key and no value) right after a Kafka source. The right side of a temporal join (`join <stream> as of ts on …`).",
    },
    StageDoc {
        name: "unnest",
        syntax: "unnest <array field> as <name> | left unnest <array field> as <name>",
        doc: "One record per element of an array field: the other fields, then the element as `<name>` (Flink SQL's `CROSS JOIN UNNEST`). An empty or null array emits nothing; `left unnest` emits the record once with a null element (`LEFT JOIN UNNEST … ON TRUE`).",
    },
];

/// The stage of this name.
pub fn stage(name: &str) -> Option<&'static StageDoc> {
    STAGES.iter().find(|s| s.name == name)
}

/// What a `{ key: value }` block belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Source,
    Sink,
    Window,
    Watermark,
}

impl Role {
    pub fn keyword(self) -> &'static str {
        match self {
            Role::Source => "source",
            Role::Sink => "sink",
            Role::Window => "window",
            Role::Watermark => "watermark",
        }
    }
}

/// One option of a settings block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionDoc {
    pub key: &'static str,
    /// What it takes, for messages and hovers: "a duration".
    pub takes: &'static str,
    /// The words it takes, when it takes one of a few (`earliest`, …).
    pub values: &'static [&'static str],
    /// Its default, if it has one.
    pub default: Option<&'static str>,
    pub doc: &'static str,
}

/// A source, sink or window kind, or the watermark stage, with its options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindDoc {
    pub role: Role,
    /// `kafka`, `tumbling`; `watermark` for the watermark stage.
    pub name: &'static str,
    pub doc: &'static str,
    pub options: &'static [OptionDoc],
}

impl KindDoc {
    /// The option keys, in order: what the checker accepts.
    pub fn keys(&self) -> Vec<&'static str> {
        self.options.iter().map(|o| o.key).collect()
    }

    pub fn option(&self, key: &str) -> Option<&'static OptionDoc> {
        self.options.iter().find(|o| o.key == key)
    }

    /// The words option `key` takes; empty when it takes something else.
    pub fn values(&self, key: &str) -> &'static [&'static str] {
        self.option(key).map_or(&[], |o| o.values)
    }

    /// What one writes: `source kafka`, `window tumbling`, `watermark`.
    pub fn title(&self) -> String {
        match self.role {
            Role::Watermark => "watermark".to_string(),
            r => format!("{} {}", r.keyword(), self.name),
        }
    }
}

const fn opt(
    key: &'static str,
    takes: &'static str,
    values: &'static [&'static str],
    default: Option<&'static str>,
    doc: &'static str,
) -> OptionDoc {
    OptionDoc { key, takes, values, default, doc }
}

const JSON: &[&str] = &["json"];
const ON_ERROR: &[&str] = &["fail", "skip", "dead_letter"];
const FORMATS: &[&str] = &["json", "csv", "raw"];
const FORMAT_DOC: &str =
    "The records' encoding: JSON objects, a line of delimited text (CSV), or the one string field as it is (raw).";
const DELIMITER: OptionDoc =
    opt("delimiter", "a one-character string", &[], Some("\",\""), "With `format: csv`: the field separator.");
const QUOTE: OptionDoc = opt(
    "quote",
    "a one-character string",
    &[],
    Some("\"\\\"\""),
    "With `format: csv`: encloses a field holding the delimiter, the quote (doubled) or a line break.",
);
const NULL_LITERAL: OptionDoc = opt(
    "null_literal",
    "a string",
    &[],
    Some("none"),
    "With `format: csv`: an unquoted field of this text is a null, and nulls are written as it (Flink's `'csv.null-literal'`); an empty field of a nullable non-string type is a null too.",
);
const HEADER: OptionDoc = opt(
    "header",
    "`true` or `false`",
    &[],
    Some("false"),
    "With `format: csv`: the first line of each file names the columns (read by name, written first); else columns are the schema's fields in order.",
);
const TIME: &[&str] = &["event", "processing"];
const TIME_OPTION: OptionDoc = opt(
    "time",
    "`event` or `processing`",
    TIME,
    Some("event"),
    "`event`: the watermark's event time (needs a `watermark` stage upstream); `processing`: the wall clock.",
);
const LATENESS_OPTION: OptionDoc = opt(
    "lateness",
    "a duration",
    &[],
    Some("0ms"),
    "Event time: keep a window's state until the watermark passes its end − 1 + lateness; a late record in that time updates the window and fires it again.",
);
const LATE_OPTION: OptionDoc = opt(
    "late",
    "a new stream's name",
    &[],
    None,
    "Event time: the records too late for any window go to this stream (`from name | …`) instead of being dropped.",
);

/// Every source, sink and window kind, and the watermark stage.
pub const KINDS: &[KindDoc] = &[
    KindDoc {
        role: Role::Source,
        name: "kafka",
        doc: "Reads JSON records of a schema from a Kafka topic; offsets are checkpointed.",
        options: &[
            opt("servers", "a string", &[], None, "Required: the bootstrap servers, `host:port,…`."),
            opt("topic", "a string", &[], None, "Required (or `topics`, or `topic_pattern`): the topic to read."),
            opt(
                "topics",
                "a list of strings",
                &[],
                None,
                "Several topics to read, `[\"a\", \"b\"]`, instead of `topic` (Flink's `'topic' = 'a;b'`).",
            ),
            opt(
                "topic_pattern",
                "a string",
                &[],
                None,
                "A regular expression: read every topic whose whole name matches (Flink's `'topic-pattern'`).",
            ),
            opt(
                "discovery_interval",
                "a positive duration or `none`",
                &[],
                Some("5m"),
                "With `topics` or `topic_pattern`: look for new partitions and matching topics this often (Flink's `'scan.topic-partition-discovery.interval'`).",
            ),
            opt("group", "a string", &[], Some("\"flowc\""), "The consumer group the offsets are committed to."),
            opt(
                "offsets",
                "`earliest`, `latest` or `committed`",
                &["earliest", "latest", "committed"],
                Some("committed"),
                "Where to start: the group's committed offsets (else the earliest), the earliest or the latest.",
            ),
            opt(
                "bounded",
                "`none` or `latest`",
                &["none", "latest"],
                Some("none"),
                "`latest`: stop at the offsets that are the latest when the source starts; the job then finishes.",
            ),
            opt("format", "`json`, `csv` or `raw`", FORMATS, Some("json"), FORMAT_DOC),
            DELIMITER,
            QUOTE,
            NULL_LITERAL,
            opt("schema", "a schema name", &[], None, "Required: the records' schema, declared with `schema Name { … }`."),
            opt(
                "on_error",
                "`fail`, `skip` or `dead_letter`",
                ON_ERROR,
                Some("skip"),
                "A record that cannot be decoded: fail the task, skip it (counted), or write it to `dead_letter_topic`.",
            ),
            opt(
                "dead_letter_topic",
                "a string",
                &[],
                None,
                "With `on_error: dead_letter`: the topic bad records go to, as JSON with the error and their offset.",
            ),
            opt(
                "dead_letter_servers",
                "a string",
                &[],
                Some("the source's `servers`"),
                "With `on_error: dead_letter`: the brokers of the dead-letter topic.",
            ),
        ],
    },
    KindDoc {
        role: Role::Source,
        name: "datagen",
        doc: "Generates records of a schema, for tests and benchmarks; other keys name fields and their generators: `sequence(start, step)`, `ticks(start, step, per_tick)`, `random(min, max)`, `cycle(v, …)` or a constant.",
        options: &[
            opt("schema", "a schema name", &[], None, "Required: the records' schema."),
            opt("count", "a non-negative integer or `none`", &[], Some("none"), "Records in all; `none`: forever."),
            opt(
                "rate",
                "records per second, or `none`",
                &[],
                Some("none"),
                "Records per second in all; `none` or 0: as fast as possible.",
            ),
            opt("format", "`json`", JSON, None, "Encode and decode each record as JSON, as Kafka would."),
        ],
    },
    KindDoc {
        role: Role::Source,
        name: "nexmark",
        doc: "The Nexmark benchmark's event stream (people, auctions and bids in the proportions 1:3:46), deterministic from the seed; one kind per source, with the fixed schema `Person`, `Auction` or `Bid`. Sources with the same settings see the same sequence.",
        options: &[
            opt(
                "kind",
                "`person`, `auction` or `bid`",
                &["person", "auction", "bid"],
                None,
                "Required: which events of the sequence this source emits.",
            ),
            opt(
                "events",
                "a non-negative integer or `none`",
                &[],
                Some("none"),
                "Events of all kinds in the sequence (Nexmark's `events.num`); `none`: forever.",
            ),
            opt(
                "rate",
                "a positive integer",
                &[],
                Some("10000"),
                "Events per second of event time (Nexmark's `first-event.rate`): event `n` is at `base_time + n / rate`.",
            ),
            opt("seed", "a non-negative integer", &[], Some("0"), "Seeds every event's pseudo-random values."),
            opt(
                "base_time",
                "epoch milliseconds",
                &[],
                Some("1735689600000"),
                "The event time of event 0 (default 2025-01-01T00:00:00Z).",
            ),
            opt(
                "paced",
                "`true` or `false`",
                &[],
                Some("false"),
                "`true`: emit at `rate` events per second of wall-clock time too; `false`: as fast as possible.",
            ),
        ],
    },
    KindDoc {
        role: Role::Source,
        name: "file",
        doc: "Reads every file under a directory (by name; each file by one subtask), one record a line; bounded, or watching for new files. Positions are checkpointed.",
        options: &[
            opt("path", "a string", &[], None, "Required: a directory (its files, sorted by name) or one file."),
            opt("format", "`json`, `csv` or `raw`", FORMATS, Some("json"), FORMAT_DOC),
            HEADER,
            DELIMITER,
            QUOTE,
            NULL_LITERAL,
            opt("schema", "a schema name", &[], None, "Required: the records' schema, declared with `schema Name { … }`."),
            opt(
                "watch",
                "a positive duration or `none`",
                &[],
                Some("none"),
                "Look for new files this often and never end; `none`: read the files there are and end.",
            ),
            opt(
                "on_error",
                "`fail`, `skip` or `dead_letter`",
                ON_ERROR,
                Some("skip"),
                "A line that cannot be decoded: fail the task, skip it (counted), or write it to `dead_letter_topic`.",
            ),
            opt(
                "dead_letter_topic",
                "a string",
                &[],
                None,
                "With `on_error: dead_letter`: the Kafka topic bad lines go to, as JSON with the error, the file and the line.",
            ),
            opt(
                "dead_letter_servers",
                "a string",
                &[],
                None,
                "With `on_error: dead_letter`: required, the brokers of the dead-letter topic.",
            ),
            opt(
                "dead_letter_path",
                "a string",
                &[],
                None,
                "With `on_error: dead_letter`, instead of a topic: a directory bad lines go to, as JSON lines (`dead-letters-<subtask>.jsonl`).",
            ),
        ],
    },
    KindDoc {
        role: Role::Sink,
        name: "kafka",
        doc: "Writes each record as a JSON object to a Kafka topic.",
        options: &[
            opt("servers", "a string", &[], None, "Required: the bootstrap servers, `host:port,…`."),
            opt("topic", "a string", &[], None, "Required: the topic to write."),
            opt("format", "`json`, `csv` or `raw`", FORMATS, Some("json"), FORMAT_DOC),
            DELIMITER,
            QUOTE,
            NULL_LITERAL,
            opt(
                "delivery",
                "`at_least_once` or `exactly_once`",
                &["at_least_once", "exactly_once"],
                Some("at_least_once"),
                "`at_least_once` may repeat records after a failure; `exactly_once` writes in transactions committed on checkpoints.",
            ),
            opt(
                "transactional_id_prefix",
                "a string",
                &[],
                Some("\"flowc-<topic>\""),
                "The prefix of the Kafka transactional ids of an exactly-once sink.",
            ),
            opt(
                "key",
                "a field, or a list of fields `[a, b]`",
                &[],
                Some("no key"),
                "The message key: one string field as its text, else the JSON of the fields (Flink's `'key.fields'`). An upsert stream's key is its own.",
            ),
            opt(
                "timestamp",
                "a timestamp field",
                &[],
                Some("the time of writing"),
                "The record timestamp (Flink SQL's `timestamp` metadata); a null leaves it to the producer.",
            ),
            opt(
                "headers",
                "a string field, or a list of them `[a, b]`; `[\"trace-id\", trace]` in the list names a header otherwise",
                &[],
                Some("no headers"),
                "Message headers: each field a header named as the field (or as a `[\"name\", field]` pair says, each name once), its text the value; a null writes no header (Flink SQL's `headers` metadata).",
            ),
            opt(
                "on_error",
                "`fail`, `skip` or `dead_letter`",
                ON_ERROR,
                Some("`pipeline.on-error`, else `fail`"),
                "A record the sink cannot write (a message over Kafka's limit): fail the task, skip it (counted in `numRecordsEncodeErrors`), or write it to `dead_letter_topic`.",
            ),
            opt(
                "dead_letter_topic",
                "a string",
                &[],
                Some("`pipeline.dead-letter.topic`"),
                "With `on_error: dead_letter`: the topic records the sink cannot write go to, as JSON with the error and the encoded message.",
            ),
            opt(
                "dead_letter_servers",
                "a string",
                &[],
                Some("the sink's `servers`"),
                "With `on_error: dead_letter`: the brokers of the dead-letter topic.",
            ),
        ],
    },
    KindDoc { role: Role::Sink, name: "print", doc: "Writes each record to standard output.", options: &[] },
    KindDoc {
        role: Role::Sink,
        name: "file",
        doc: "Writes one record a line, `part-<subtask>.jsonl` (`.csv`, `.txt`), into a directory under the cluster's allowed directories.",
        options: &[
            opt("path", "a string", &[], None, "Required: the directory each subtask writes its file in."),
            opt("format", "`json`, `csv` or `raw`", FORMATS, Some("json"), FORMAT_DOC),
            HEADER,
            DELIMITER,
            QUOTE,
            NULL_LITERAL,
        ],
    },
    KindDoc { role: Role::Sink, name: "discard", doc: "Drops every record (for benchmarks).", options: &[] },
    KindDoc {
        role: Role::Window,
        name: "tumbling",
        doc: "Consecutive windows of one length.",
        options: &[
            opt("size", "a positive duration", &[], None, "Required: the length of a window."),
            TIME_OPTION,
            LATENESS_OPTION,
            LATE_OPTION,
        ],
    },
    KindDoc {
        role: Role::Window,
        name: "sliding",
        doc: "Windows of one length starting every `slide`; each record belongs to size/slide windows.",
        options: &[
            opt("size", "a positive duration", &[], None, "Required: the length of a window."),
            opt("slide", "a positive duration", &[], None, "Required: how often a window starts; must divide `size`."),
            TIME_OPTION,
            LATENESS_OPTION,
            LATE_OPTION,
        ],
    },
    KindDoc {
        role: Role::Window,
        name: "session",
        doc: "Per key, records less than `gap` apart form one window, `[first, last + gap)`; windows that overlap or touch merge (Flink's session windows).",
        options: &[
            opt("gap", "a positive duration", &[], None, "Required: the inactivity that ends a session."),
            TIME_OPTION,
            LATENESS_OPTION,
            LATE_OPTION,
        ],
    },
    KindDoc {
        role: Role::Watermark,
        name: "watermark",
        doc: "Event time from a timestamp field, and watermarks.",
        options: &[
            opt(
                "out_of_orderness",
                "a duration",
                &[],
                Some("0ms"),
                "How far the watermark trails the highest timestamp seen.",
            ),
            opt(
                "idleness",
                "a positive duration or `none`",
                &[],
                Some("none"),
                "An input without records for this long stops holding the watermark back.",
            ),
            opt(
                "max_future",
                "a positive duration or `none`",
                &[],
                Some("none"),
                "A record whose event time is further than this ahead of the clock does not move the watermark: it follows the stage's `on_error` and is counted in `numRecordsFromTheFuture`.",
            ),
        ],
    },
];

/// The kind `name` of `role` (the watermark stage is `(Watermark, "watermark")`).
pub fn kind(role: Role, name: &str) -> Option<&'static KindDoc> {
    KINDS.iter().find(|k| k.role == role && k.name == name)
}

/// Every kind of `role`.
pub fn kinds(role: Role) -> impl Iterator<Item = &'static KindDoc> {
    KINDS.iter().filter(move |k| k.role == role)
}

/// The option keys of a kind, or none if the kind is unknown.
pub fn keys(role: Role, name: &str) -> Vec<&'static str> {
    kind(role, name).map_or_else(Vec::new, KindDoc::keys)
}

/// The words option `key` of a kind takes.
pub fn values(role: Role, name: &str, key: &str) -> &'static [&'static str] {
    kind(role, name).map_or(&[], |k| k.values(key))
}

/// Where a function may be called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionKind {
    /// In any record expression.
    Scalar,
    /// Only in an `aggregate` after a window, over the window's records.
    Aggregate,
    /// Only in an `aggregate` after a window: the window's bounds.
    WindowBound,
}

/// A function: its name, signature and documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionDoc {
    pub name: &'static str,
    /// `substring(s: string, start: int|long, length: int|long) -> string`
    pub signature: &'static str,
    pub doc: &'static str,
    pub kind: FunctionKind,
}

/// Every function: scalar functions, aggregates, window bounds.
pub fn functions() -> Vec<FunctionDoc> {
    let mut out: Vec<FunctionDoc> = Function::ALL
        .iter()
        .map(|f| {
            let (signature, doc) = f.doc();
            FunctionDoc { name: f.name(), signature, doc, kind: FunctionKind::Scalar }
        })
        .collect();
    out.extend(AggFunc::ALL.iter().map(|a| {
        let (signature, doc) = a.doc();
        FunctionDoc { name: a.name(), signature, doc, kind: FunctionKind::Aggregate }
    }));
    out.extend([
        FunctionDoc {
            name: "cast",
            signature: "cast(x as string|int|long|double|bool|timestamp) -> that type",
            doc: "`x` converted; parsing a string, or a number that does not fit, fails on bad values (a runtime expression error naming the place).",
            kind: FunctionKind::Scalar,
        },
        FunctionDoc {
            name: "window_start",
            signature: "window_start() -> timestamp",
            doc: "The window's start (inclusive); only in `aggregate`.",
            kind: FunctionKind::WindowBound,
        },
        FunctionDoc {
            name: "window_end",
            signature: "window_end() -> timestamp",
            doc: "The window's end (exclusive); only in `aggregate`.",
            kind: FunctionKind::WindowBound,
        },
    ]);
    out
}

/// The function of this name.
pub fn function(name: &str) -> Option<FunctionDoc> {
    functions().into_iter().find(|f| f.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{compile, CheckOptions};
    use flowc_dsl::SourceFile;

    #[test]
    fn every_stage_of_the_grammar_is_documented_in_order() {
        let names: Vec<&str> = STAGES.iter().map(|s| s.name).collect();
        assert_eq!(names, flowc_dsl::parser::STAGES);
    }

    fn diagnostics(text: &str) -> Vec<flowc_dsl::Diagnostic> {
        let src = SourceFile::new("t.flow", text);
        match compile(&src, &CheckOptions::default()) {
            Ok(c) => c.warnings,
            Err(d) => d,
        }
    }

    /// The checker's answer to an unknown key lists what the kind takes:
    /// exactly the table's keys.
    #[test]
    fn the_checker_accepts_exactly_the_documented_options() {
        let head = "job \"t\"\nschema S { ts: timestamp, page: string }\n";
        let cases = [
            (Role::Source, "kafka", format!("{head}source kafka {{ zzz: 1 }} | sink print\n"), "a kafka source takes: "),
            (Role::Sink, "kafka", format!("{head}source datagen {{ schema: S }} | sink kafka {{ zzz: 1 }}\n"), "a kafka sink takes: "),
            (Role::Sink, "file", format!("{head}source datagen {{ schema: S }} | sink file {{ zzz: 1 }}\n"), "a file sink takes: "),
            (Role::Source, "file", format!("{head}source file {{ zzz: 1 }} | sink print\n"), "a file source takes: "),
            (Role::Source, "nexmark", format!("{head}source nexmark {{ zzz: 1 }} | sink print\n"), "a nexmark source takes: "),
            (
                Role::Window,
                "tumbling",
                format!("{head}source datagen {{ schema: S }} | watermark ts | key_by page | window tumbling {{ zzz: 1 }} | aggregate {{ page }} | sink print\n"),
                "window takes: ",
            ),
            (
                Role::Window,
                "sliding",
                format!("{head}source datagen {{ schema: S }} | watermark ts | key_by page | window sliding {{ zzz: 1 }} | aggregate {{ page }} | sink print\n"),
                "window takes: ",
            ),
            (
                Role::Window,
                "session",
                format!("{head}source datagen {{ schema: S }} | watermark ts | key_by page | window session {{ zzz: 1 }} | aggregate {{ page }} | sink print\n"),
                "window takes: ",
            ),
            (
                Role::Watermark,
                "watermark",
                format!("{head}source datagen {{ schema: S }} | watermark ts {{ zzz: 1 }} | sink print\n"),
                "watermark takes: ",
            ),
        ];
        for (role, name, text, prefix) in cases {
            let diags = diagnostics(&text);
            let help = diags
                .iter()
                .find(|d| d.code == "flow::check::unknown-setting")
                .and_then(|d| d.help.clone())
                .unwrap_or_else(|| panic!("no unknown-setting diagnostic for {role:?} {name}: {diags:#?}"));
            let listed = help.strip_prefix(prefix).unwrap_or_else(|| panic!("{help}"));
            assert_eq!(listed, keys(role, name).join(", "), "{role:?} {name}");
        }
        // Every documented kind is one the checker knows, and every option
        // with values takes each of them.
        for k in KINDS {
            for o in k.options {
                for v in o.values {
                    if *v == "raw" {
                        // `raw` needs a schema of one string field (goldens `format_raw*`).
                        continue;
                    }
                    let text = match k.role {
                        Role::Source if k.name == "file" && *v == "dead_letter" => format!("{head}source file {{ path: \"in\", schema: S, {}: {v}, dead_letter_topic: \"d\", dead_letter_servers: \"s\" }} | sink print\n", o.key),
                        Role::Source if k.name == "file" => format!("{head}source file {{ path: \"in\", schema: S, {}: {v} }} | sink print\n", o.key),
                        // `dead_letter` needs its topic.
                        Role::Source if k.name == "kafka" && *v == "dead_letter" => format!("{head}source kafka {{ servers: \"s\", topic: \"t\", schema: S, {}: {v}, dead_letter_topic: \"d\" }} | sink print\n", o.key),
                        Role::Source if k.name == "kafka" => format!("{head}source kafka {{ servers: \"s\", topic: \"t\", schema: S, {}: {v} }} | sink print\n", o.key),
                        Role::Source if k.name == "nexmark" && o.key == "kind" => format!("{head}source nexmark {{ kind: {v} }} | sink print\n"),
                        Role::Source if k.name == "nexmark" => format!("{head}source nexmark {{ kind: bid, {}: {v} }} | sink print\n", o.key),
                        Role::Source => format!("{head}source datagen {{ schema: S, {}: {v} }} | sink print\n", o.key),
                        Role::Sink if k.name == "kafka" && *v == "dead_letter" => format!("{head}source datagen {{ schema: S }} | sink kafka {{ servers: \"s\", topic: \"t\", {}: {v}, dead_letter_topic: \"d\" }}\n", o.key),
                        Role::Sink if k.name == "kafka" => format!("{head}source datagen {{ schema: S }} | sink kafka {{ servers: \"s\", topic: \"t\", {}: {v} }}\n", o.key),
                        Role::Sink => format!("{head}source datagen {{ schema: S }} | sink {} {{ path: \"/tmp/x\", {}: {v} }}\n", k.name, o.key),
                        Role::Window if k.name == "session" => format!("{head}source datagen {{ schema: S }} | watermark ts | key_by page | window session {{ gap: 10s, {}: {v} }} | aggregate {{ page }} | sink print\n", o.key),
                        Role::Window => format!("{head}source datagen {{ schema: S }} | watermark ts | key_by page | window {} {{ size: 10s, slide: 5s, {}: {v} }} | aggregate {{ page }} | sink print\n", k.name, o.key),
                        Role::Watermark => format!("{head}source datagen {{ schema: S }} | watermark ts {{ {}: {v} }} | sink print\n", o.key),
                    };
                    let errors: Vec<_> = diagnostics(&text)
                        .into_iter()
                        .filter(|d| {
                            d.is_error() && d.code != "flow::check::unknown-setting" || d.message.contains(o.key)
                        })
                        .filter(|d| d.is_error())
                        .collect();
                    assert!(errors.is_empty(), "{} {}: {v}: {errors:#?}", k.title(), o.key);
                }
            }
        }
    }

    #[test]
    fn functions_are_documented_once_each() {
        let all = functions();
        let mut names: Vec<&str> = all.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        for f in &all {
            assert!(f.signature.starts_with(&format!("{}(", f.name)), "{}", f.signature);
            assert!(!f.doc.is_empty());
        }
        assert_eq!(function("count").map(|f| f.kind), Some(FunctionKind::Aggregate));
    }
}
