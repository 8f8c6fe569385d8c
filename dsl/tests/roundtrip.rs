//! The formatter's round trip: for every job file that parses, formatting
//! is stable (`format(format(x)) == format(x)`) and the formatted text parses
//! back to the same syntax tree, spans aside.
//!
//! The files are the compiler's golden cases (`compiler/tests/golden/`), the
//! jobs in `jobs/`, and random job files built by a proptest generator.

use flowc_dsl::ast::JobFile;
use flowc_dsl::{format, parse};
use proptest::prelude::*;
use std::path::{Path, PathBuf};

// ------------------------------------------------------------------ helpers

/// The `Debug` form of a tree with every span (`12..34`) replaced by `_`,
/// so that two trees can be compared as text without their positions.
fn strip_spans(file: &JobFile) -> String {
    let text = format!("{file:#?}");
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) {
            let start = i;
            let mut j = i;
            while j < bytes.len() && bytes[j].is_ascii_digit() {
                j += 1;
            }
            if text[j..].starts_with("..") {
                let mut k = j + 2;
                while k < bytes.len() && bytes[k].is_ascii_digit() {
                    k += 1;
                }
                if k > j + 2 {
                    out.push('_');
                    i = k;
                    continue;
                }
            }
            out.push_str(&text[start..j]);
            i = j;
            continue;
        }
        let c = text[i..].chars().next().expect("in bounds");
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// Checks the round trip of one source text; `Err` says what broke.
fn roundtrip(name: &str, text: &str) -> Result<(), String> {
    let first = parse(text);
    if first.has_errors() {
        return Err(format!("{name}: does not parse: {:#?}", first.diagnostics));
    }
    let formatted = format(&first.file, text);
    let second = parse(&formatted);
    if second.has_errors() {
        return Err(format!("{name}: the formatted text does not parse:\n{formatted}\n{:#?}", second.diagnostics));
    }
    if second.file != first.file || strip_spans(&second.file) != strip_spans(&first.file) {
        return Err(format!(
            "{name}: formatting changed the tree.\n--- formatted ---\n{formatted}\n--- before ---\n{}\n--- after ---\n{}",
            strip_spans(&first.file),
            strip_spans(&second.file)
        ));
    }
    let again = format(&second.file, &formatted);
    if again != formatted {
        return Err(format!("{name}: formatting is not stable.\n--- once ---\n{formatted}\n--- twice ---\n{again}"));
    }
    Ok(())
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn flow_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "flow"))
        .collect();
    out.sort();
    out
}

// ------------------------------------------------------------------ files

#[test]
fn spans_do_not_take_part_in_equality() {
    let a = parse("job \"x\"\nflag f\n");
    let b = parse("\n\n   job    \"x\"   flag f");
    assert!(!a.has_errors() && !b.has_errors());
    assert_eq!(a.file, b.file);
    assert_eq!(strip_spans(&a.file), strip_spans(&b.file));
    assert_ne!(format!("{:?}", a.file), format!("{:?}", b.file), "the spans differ");
    assert_ne!(a.file, parse("job \"y\"\nflag f\n").file);
}

#[test]
fn golden_and_job_files_round_trip() {
    let mut files = flow_files(&repo_root().join("compiler/tests/golden/ok"));
    files.extend(flow_files(&repo_root().join("compiler/tests/golden/err")));
    files.extend(flow_files(&repo_root().join("jobs")));
    let mut checked = 0;
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("UTF-8 job file");
        if parse(&text).has_errors() {
            continue; // syntax-error cases have nothing to format
        }
        checked += 1;
        if let Err(e) = roundtrip(&path.display().to_string(), &text) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(checked >= 40, "only {checked} of {} files parsed", files.len());
}

#[test]
fn click_count_is_formatted() {
    let text = std::fs::read_to_string(repo_root().join("jobs/click_count.flow")).expect("click_count.flow");
    let parsed = parse(&text);
    assert!(!parsed.has_errors());
    assert_eq!(format(&parsed.file, &text), text, "jobs/click_count.flow is not in the canonical layout");
}

#[test]
fn formats_a_messy_file_canonically() {
    let text = "job  \"x\"   // the name\nflag  a\nparam b:int=1+2*3\nschema S{t:timestamp(epoch_millis) , n:long}\n\
                source datagen{schema:S}|filter(n>1)and not(n<5)|map{m:(n+1)*2,n}|sink print name \"P\" uid \"p\"\n";
    roundtrip("messy", text).expect("round trip");
    let parsed = parse(text);
    assert_eq!(
        format(&parsed.file, text),
        "job \"x\" // the name\n\nflag a\nparam b: int = 1 + 2 * 3\n\nschema S {\n    t: timestamp(epoch_millis)\n    n: long\n}\n\n\
         source datagen { schema: S }\n    | filter n > 1 and not n < 5\n    | map { m: (n + 1) * 2, n }\n    | sink print name \"P\" uid \"p\"\n"
    );
}

// ------------------------------------------------------------------ generator

const RESERVED: &[&str] = &["if", "then", "else", "and", "or", "not", "true", "false", "none"];
const AVOID: &[&str] = &[
    "job",
    "param",
    "flag",
    "set",
    "schema",
    "let",
    "source",
    "from",
    "name",
    "uid",
    "parallelism",
    "watermark",
    "filter",
    "map",
    "select",
    "key_by",
    "window",
    "aggregate",
    "sink",
    "epoch_millis",
    "timestamp",
    "string",
    "int",
    "long",
    "double",
    "bool",
    "duration",
];

fn ident() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["page", "ts", "count", "user_id", "x", "_hidden", "a1", "kafka", "tumbling"])
            .prop_map(str::to_string),
        "[a-z_][a-z0-9_]{0,7}",
    ]
    .prop_filter("not a keyword", |s| !RESERVED.contains(&s.as_str()) && !AVOID.contains(&s.as_str()))
}

fn param_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["bootstrap.servers", "event-time", "checkpointing", "a.b-c.d", "p"])
            .prop_map(str::to_string),
        ident(),
    ]
}

fn setting_key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "execution.checkpointing.interval",
            "pipeline.operator-chaining",
            "pipeline.max-parallelism",
            "parallelism.default",
            "state.backend",
            "if.then",
        ])
        .prop_map(str::to_string),
        "[a-z][a-z0-9_-]{0,5}(\\.[a-z][a-z0-9_-]{0,5}){0,2}",
    ]
}

/// A string literal as a user might write it, escapes and all.
fn string_lit() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            6 => "[ -~]".prop_map(|s| s.to_string()),
            1 => prop::sample::select(vec!['é', '漢', '😀', '\t', '\u{7f}', '\u{1}']).prop_map(|c| c.to_string()),
        ],
        0..12,
    )
    .prop_flat_map(|chars| {
        let n = chars.len();
        (Just(chars), prop::collection::vec(any::<bool>(), n))
    })
    .prop_map(|(chars, use_u)| {
        let mut out = String::from("\"");
        for (s, u) in chars.iter().zip(use_u) {
            let c = s.chars().next().expect("one char");
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str(if u { "\\t" } else { "\\u{9}" }),
                c if c.is_control() || u => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    })
}

fn leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        (0i64..=i64::MAX).prop_map(|i| i.to_string()),
        (0u32..1000).prop_map(|i| i.to_string()),
        (0u32..100_000, 0u32..1000, prop::option::of(-20i32..20))
            .prop_map(|(a, b, e)| e.map_or(format!("{a}.{b}"), |e| format!("{a}.{b}e{e}"))),
        (0u64..100_000, prop::sample::select(vec!["ms", "s", "m", "h", "d"])).prop_map(|(v, u)| format!("{v}{u}")),
        Just("true".to_string()),
        Just("false".to_string()),
        Just("none".to_string()),
        string_lit(),
        ident(),
        param_name().prop_map(|p| format!("${p}")),
        ident().prop_map(|f| format!("{f}()")),
    ]
}

/// An expression, fully parenthesised where it nests, so that it is valid
/// whatever the operators; the formatter then removes what is not needed.
fn expr() -> impl Strategy<Value = String> {
    leaf().prop_recursive(4, 24, 3, |inner| {
        let op = prop::sample::select(vec!["or", "and", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%"]);
        prop_oneof![
            (inner.clone(), op, inner.clone()).prop_map(|(a, op, b)| format!("(({a}) {op} ({b}))")),
            inner.clone().prop_map(|a| format!("not ({a})")),
            inner.clone().prop_map(|a| format!("-({a})")),
            inner.clone().prop_map(|a| format!("((({a})))")),
            (inner.clone(), inner.clone(), inner.clone()).prop_map(|(c, t, e)| format!("(if {c} then {t} else {e})")),
            (ident(), prop::collection::vec(inner, 1..4)).prop_map(|(f, args)| format!("{f}({})", args.join(", "))),
        ]
    })
}

/// Space between tokens: plain, new lines, or comments.
fn gap() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![" ", " ", " ", "\n", "\n    ", "  ", " /* note */ ", " // note\n", "\n// own line\n"])
}

fn attrs() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            string_lit().prop_map(|s| format!("name {s}")),
            string_lit().prop_map(|s| format!("uid {s}")),
            expr().prop_map(|e| format!("parallelism {e}")),
        ],
        0..3,
    )
    .prop_map(|a| a.iter().map(|x| format!(" {x}")).collect())
}

fn props() -> impl Strategy<Value = String> {
    (prop::collection::vec((ident(), expr(), gap(), any::<bool>()), 0..4), gap()).prop_map(|(entries, end)| {
        let mut s = String::from("{");
        for (k, v, g, comma) in entries {
            s.push_str(&format!("{g}{k}: {v}{}", if comma { "," } else { "" }));
        }
        s.push_str(end);
        s.push('}');
        s
    })
}

fn record() -> impl Strategy<Value = String> {
    prop::collection::vec((ident(), prop::option::of(expr()), gap()), 0..4).prop_map(|fields| {
        let parts: Vec<String> = fields
            .into_iter()
            .map(|(n, v, g)| match v {
                Some(v) => format!("{g}{n}: {v}"),
                None => format!("{g}{n}"),
            })
            .collect();
        format!("{{{} }}", parts.join(","))
    })
}

fn stage() -> impl Strategy<Value = String> {
    prop_oneof![
        (ident(), prop::option::of(props()), attrs())
            .prop_map(|(f, p, a)| { format!("watermark {f}{}{a}", p.map_or(String::new(), |p| format!(" {p}"))) }),
        (expr(), attrs()).prop_map(|(e, a)| format!("filter {e}{a}")),
        (record(), attrs()).prop_map(|(r, a)| format!("map {r}{a}")),
        (record(), attrs()).prop_map(|(r, a)| format!("select {r}{a}")),
        prop::collection::vec(ident(), 1..3).prop_map(|k| format!("key_by {}", k.join(", "))),
        (prop::sample::select(vec!["tumbling", "sliding"]), prop::option::of(props()), attrs())
            .prop_map(|(k, p, a)| format!("window {k}{}{a}", p.map_or(String::new(), |p| format!(" {p}")))),
        (record(), attrs()).prop_map(|(r, a)| format!("aggregate {r}{a}")),
        (prop::sample::select(vec!["kafka", "print", "file", "discard"]), prop::option::of(props()), attrs())
            .prop_map(|(k, p, a)| format!("sink {k}{}{a}", p.map_or(String::new(), |p| format!(" {p}")))),
        (any::<bool>(), ident(), ident(), attrs())
            .prop_map(|(left, f, x, a)| format!("{}unnest {f} as {x}{a}", if left { "left " } else { "" })),
    ]
}

fn pipeline() -> impl Strategy<Value = String> {
    let head = prop_oneof![
        (prop::sample::select(vec!["kafka", "datagen"]), prop::option::of(props()), attrs())
            .prop_map(|(k, p, a)| format!("source {k}{}{a}", p.map_or(String::new(), |p| format!(" {p}")))),
        ident().prop_map(|n| format!("from {n}")),
    ];
    (head, prop::collection::vec((gap(), stage()), 0..5)).prop_map(|(h, stages)| {
        let mut s = h;
        for (g, st) in stages {
            s.push_str(&format!("{g}| {st}"));
        }
        s
    })
}

fn field_type() -> impl Strategy<Value = String> {
    let scalar = prop_oneof![
        prop::sample::select(vec!["string", "int", "long", "double", "bool", "timestamp", "timestamp(epoch_millis)"])
            .prop_map(str::to_string),
        string_lit().prop_map(|s| format!("timestamp({s})")),
    ];
    (scalar, 0..4u8).prop_map(|(t, shape)| match shape {
        0 => format!("array<{t}>"),
        1 => format!("array<{t}>?"),
        _ => t,
    })
}

fn statement() -> impl Strategy<Value = String> {
    prop_oneof![
        string_lit().prop_map(|s| format!("job {s}")),
        (
            param_name(),
            prop::sample::select(vec!["string", "int", "long", "double", "bool", "duration"]),
            prop::option::of(expr())
        )
            .prop_map(|(n, t, d)| format!("param {n}: {t}{}", d.map_or(String::new(), |d| format!(" = {d}")))),
        param_name().prop_map(|n| format!("flag {n}")),
        (setting_key(), expr()).prop_map(|(k, v)| format!("set {k} = {v}")),
        (ident(), prop::collection::vec((ident(), field_type(), gap(), any::<bool>()), 0..5), gap()).prop_map(
            |(n, fields, end)| {
                let mut s = format!("schema {n} {{");
                for (f, t, g, comma) in fields {
                    s.push_str(&format!("{g}{f}: {t}{}", if comma { "," } else { "" }));
                }
                s.push_str(end);
                s.push('}');
                s
            }
        ),
        (ident(), pipeline()).prop_map(|(n, p)| format!("let {n} = {p}")),
        pipeline(),
    ]
}

fn job_file() -> impl Strategy<Value = String> {
    (prop::collection::vec((statement(), gap()), 1..7), prop::option::of(Just("// the end"))).prop_map(
        |(stmts, tail)| {
            let mut s = String::new();
            for (st, g) in stmts {
                s.push_str(&st);
                s.push_str(g);
                s.push('\n');
            }
            if let Some(t) = tail {
                s.push_str(t);
            }
            s
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn generated_job_files_round_trip(text in job_file()) {
        let parsed = parse(&text);
        prop_assert!(!parsed.has_errors(), "the generator made an invalid file:\n{text}\n{:#?}", parsed.diagnostics);
        if let Err(e) = roundtrip("generated", &text) {
            prop_assert!(false, "{}\n--- source ---\n{}", e, text);
        }
    }

    #[test]
    fn generated_expressions_round_trip(e in expr()) {
        let text = format!("set x = {e}\n");
        if let Err(msg) = roundtrip("expression", &text) {
            prop_assert!(false, "{}", msg);
        }
    }
}

// ------------------------------------------------------------------ regressions

/// A comment at the end of a stage's line used to move to the next stage
/// (or onto a line of its own), so `fmt` changed it twice.
#[test]
fn regression_trailing_comment_stays_on_its_stage() {
    let text = "job \"x\"\n\nsource kafka {} // source\n    | watermark ts // wm\n    | key_by page // key\n    | window tumbling { size: 15s } /* w */\n    | aggregate {\n        page, // the key\n        // the count\n        n: count()\n    }\n    | sink print // the end\n";
    let parsed = parse(text);
    assert_eq!(
        format(&parsed.file, text),
        "job \"x\"\n\nsource kafka {} // source\n    | watermark ts // wm\n    | key_by page // key\n    | window tumbling { size: 15s } /* w */\n    | aggregate {\n        page // the key\n        // the count\n        n: count()\n    }\n    | sink print // the end\n"
    );
    roundtrip("trailing comments", text).expect("round trip");
}

/// A stage without attributes on a line longer than 100 columns used to
/// get an empty, indented line after it.
#[test]
fn regression_no_blank_line_for_missing_attributes() {
    let long = "x".repeat(100);
    let text = format!("source kafka\n    | filter page == \"{long}\"\n    | sink print\n");
    let parsed = parse(&text);
    assert_eq!(format(&parsed.file, &text), text);
}

/// A comment inside a record, before its first field, used to make the
/// record one line the second time, moving the comment out of it.
#[test]
fn regression_comment_at_the_start_of_a_record() {
    roundtrip("record comment", "source kafka\n| select {  page, /* note */ page } \n").expect("round trip");
    roundtrip("record comment", "source kafka | map { /* a */ page } | sink print\n").expect("round trip");
    roundtrip("record comment", "source kafka | map { page /* z */ } | sink print\n").expect("round trip");
}
