//! Parser fuzzing with proptest: random bytes, random UTF-8, random token
//! soup and mutated golden job files (byte flips, truncations, duplicated
//! and deleted lines). Whatever the input, loading, parsing, checking,
//! compiling, rendering the diagnostics and formatting must not panic and
//! must finish promptly.
//!
//! Bounded to about 2000 cases in all, so that it runs in seconds in a
//! debug build. Failing inputs are saved by proptest in
//! `fuzz.proptest-regressions` next to this file; commit them.

use flowc_compiler::{check, compile, CheckOptions, ProgramArgs};
use flowc_dsl::{format, load, parse, SourceFile};
use proptest::prelude::*;
use std::path::Path;
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

/// How much CPU time one input may use before we call it a hang: CPU time
/// of the thread that works on it, not wall time, so that a machine busy
/// with other work (a load average of 30 gives a thread a twentieth of a
/// core) does not look like a hang. Real inputs take a few milliseconds.
const LIMIT: Duration = Duration::from_secs(20);
/// A thread that uses no CPU and does not finish is deadlocked: wall time.
const WALL_LIMIT: Duration = Duration::from_secs(600);

/// Everything a user's file goes through, on one input.
fn pipeline(bytes: Vec<u8>) {
    // `flowc` reads files through `load`; it refuses binary and bad UTF-8.
    let text = match load::from_bytes("fuzz.flow".into(), bytes.clone()) {
        Ok(src) => src.text,
        Err(e) => {
            let _ = e.to_string();
            String::from_utf8_lossy(&bytes).into_owned()
        }
    };
    let src = SourceFile::new("fuzz.flow", text);
    let parsed = parse(&src.text);
    let _ = src.render_all(&parsed.diagnostics);
    // The checker must cope with a partial tree too.
    let (_, diags) = check(&parsed.file, &CheckOptions::default());
    let _ = src.render_all(&diags);
    if !parsed.has_errors() {
        let formatted = format(&parsed.file, &src.text);
        let again = parse(&formatted);
        assert!(!again.has_errors(), "formatted text does not parse:\n{formatted}\n{:#?}", again.diagnostics);
    }
    for options in options() {
        match compile(&src, options) {
            Ok(c) => {
                let _ = flowc_compiler::explain::text(&c.graph);
                let _ = flowc_compiler::explain::dot(&c.graph);
                let bytes = flowc_compiler::plan_file::to_bytes(&c.graph);
                flowc_compiler::plan_file::from_bytes(&bytes).expect("a compiled plan reads back");
                let _ = src.render_all(&c.warnings);
            }
            Err(diags) => {
                assert!(diags.iter().any(|d| d.is_error()), "compile failed without an error");
                let _ = src.render_all(&diags);
            }
        }
    }
}

/// No arguments, and the playground's arguments for click_count.
fn options() -> &'static [CheckOptions] {
    static OPTIONS: OnceLock<Vec<CheckOptions>> = OnceLock::new();
    OPTIONS.get_or_init(|| {
        let args = ProgramArgs::parse(&["--bootstrap.servers", "localhost:9092", "--checkpointing", "--event-time"])
            .expect("valid arguments");
        vec![CheckOptions::default(), CheckOptions { args, parallelism: Some(2), ..CheckOptions::default() }]
    })
}

/// Runs `pipeline` on another thread and fails if it panics or hangs.
fn run(bytes: Vec<u8>) -> Result<(), TestCaseError> {
    let shown = String::from_utf8_lossy(&bytes).into_owned();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(Progress::Started(thread_cpu_clock()));
        let result = std::panic::catch_unwind(|| pipeline(bytes));
        let _ = tx.send(Progress::Done(result.is_ok()));
    });
    let started = std::time::Instant::now();
    let mut clock = None;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Progress::Started(c)) => clock = c,
            Ok(Progress::Done(true)) => return Ok(()),
            Ok(Progress::Done(false)) => return Err(TestCaseError::fail(format!("panicked on:\n{shown:?}"))),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(TestCaseError::fail(format!("the worker thread vanished on:\n{shown:?}")))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let cpu = clock.as_deref().and_then(cpu_time);
                if cpu.is_some_and(|c| c > LIMIT) {
                    return Err(TestCaseError::fail(format!("used more than {LIMIT:?} of CPU on:\n{shown:?}")));
                }
                // Without a readable clock, wall time is all there is.
                if started.elapsed() > WALL_LIMIT || (cpu.is_none() && started.elapsed() > LIMIT) {
                    return Err(TestCaseError::fail(format!(
                        "did not finish within {:?} on:\n{shown:?}",
                        started.elapsed()
                    )));
                }
            }
        }
    }
}

enum Progress {
    /// The worker's CPU clock: its `/proc/self/task/<tid>/schedstat`.
    Started(Option<String>),
    Done(bool),
}

/// The calling thread's schedstat file (Linux), for [`cpu_time`].
fn thread_cpu_clock() -> Option<String> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    let tid = link.file_name()?.to_str()?.to_string();
    Some(format!("/proc/self/task/{tid}/schedstat"))
}

/// The CPU time a thread has used: the first field of its schedstat, in
/// nanoseconds.
fn cpu_time(schedstat: &str) -> Option<Duration> {
    let text = std::fs::read_to_string(schedstat).ok()?;
    Some(Duration::from_nanos(text.split_whitespace().next()?.parse().ok()?))
}

fn corpus() -> &'static [Vec<u8>] {
    static CORPUS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        for dir in ["compiler/tests/golden/ok", "compiler/tests/golden/err", "jobs"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir)) else { continue };
            for e in entries.flatten() {
                if e.path().extension().is_some_and(|x| x == "flow") {
                    files.push(e.path());
                }
            }
        }
        files.sort();
        let out: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).expect("readable")).collect();
        assert!(out.len() >= 10, "the fuzz corpus is too small: {}", out.len());
        out
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipByte { at: usize, to: u8 },
    Truncate { at: usize },
    DuplicateLine { line: usize },
    DeleteLine { line: usize },
    InsertBytes { at: usize, bytes: Vec<u8> },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, to)| Mutation::FlipByte { at, to }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        any::<usize>().prop_map(|line| Mutation::DuplicateLine { line }),
        any::<usize>().prop_map(|line| Mutation::DeleteLine { line }),
        (
            any::<usize>(),
            prop_oneof![
                prop::collection::vec(any::<u8>(), 1..4),
                prop::sample::select(vec!["\"", "{", "}", "|", "(", "/*", "//", "$", "\\u{", ":", "=", "\n"])
                    .prop_map(|s| s.as_bytes().to_vec()),
            ]
        )
            .prop_map(|(at, bytes)| Mutation::InsertBytes { at, bytes }),
    ]
}

fn apply(mut text: Vec<u8>, m: &Mutation) -> Vec<u8> {
    let n = text.len().max(1);
    match m {
        Mutation::FlipByte { at, to } => {
            if !text.is_empty() {
                text[at % n] = *to;
            }
            text
        }
        Mutation::Truncate { at } => {
            text.truncate(at % n);
            text
        }
        Mutation::DuplicateLine { line } | Mutation::DeleteLine { line } => {
            let mut lines: Vec<Vec<u8>> = text.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
            let i = line % lines.len();
            if matches!(m, Mutation::DuplicateLine { .. }) {
                let dup = lines[i].clone();
                lines.insert(i, dup);
            } else {
                lines.remove(i);
            }
            lines.join(&b'\n')
        }
        Mutation::InsertBytes { at, bytes } => {
            let at = at % (text.len() + 1);
            text.splice(at..at, bytes.iter().copied());
            text
        }
    }
}

/// Words of the language, so that random text gets past the first token.
fn token_soup() -> impl Strategy<Value = String> {
    let tokens = vec![
        "job",
        "param",
        "flag",
        "set",
        "schema",
        "let",
        "source",
        "from",
        "kafka",
        "datagen",
        "watermark",
        "filter",
        "map",
        "select",
        "key_by",
        "window",
        "tumbling",
        "sliding",
        "aggregate",
        "sink",
        "print",
        "file",
        "discard",
        "name",
        "uid",
        "parallelism",
        "if",
        "then",
        "else",
        "and",
        "or",
        "not",
        "true",
        "false",
        "none",
        "string",
        "int",
        "long",
        "double",
        "bool",
        "duration",
        "timestamp",
        "epoch_millis",
        "E",
        "page",
        "ts",
        "count()",
        "window_start()",
        "sum(n)",
        "schema: E",
        "size: 15s",
        "{",
        "}",
        "(",
        ")",
        "|",
        ":",
        ",",
        "=",
        "==",
        "<",
        "+",
        "-",
        "*",
        "/",
        "%",
        "$p",
        "$bootstrap.servers",
        "15s",
        "200ms",
        "1",
        "2.5",
        "99999999999999999999",
        "\"x\"",
        "\"yyyy-MM-dd\"",
        "\"",
        "\n",
        "//",
        "/*",
        "*/",
        "\\u{",
        "é",
        "\t",
    ];
    prop::collection::vec(prop::sample::select(tokens), 0..60).prop_map(|t| t.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, max_shrink_iters: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        run(bytes)?;
    }

    #[test]
    fn random_utf8(text in any::<String>()) {
        run(text.into_bytes())?;
    }

    #[test]
    fn random_tokens(text in token_soup()) {
        run(text.into_bytes())?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 900, max_shrink_iters: 256, ..ProptestConfig::default() })]

    #[test]
    fn mutated_golden_files(file in any::<prop::sample::Index>(), mutations in prop::collection::vec(mutation(), 1..4)) {
        let corpus = corpus();
        let mut text = corpus[file.index(corpus.len())].clone();
        for m in &mutations {
            text = apply(text, m);
        }
        run(text)?;
    }
}

/// Inputs that once went wrong, or could: each must be handled.
#[test]
fn known_hard_inputs() {
    let cases: &[&[u8]] = &[
        b"",
        b"\0",
        b"\xff\xfe",
        b"/*",
        b"\"",
        b"job \"\\u{",
        b"job \"\\u{110000}\"",
        b"job \"\\u{D800}\"",
        b"set a = ((((((((((((((((((((((((((((((1))))))))))))))))))))))))))))))",
        b"set a = -------------------------------------------------------1",
        b"set a = not not not not not not not not not not not not not not true",
        b"source kafka { } |",
        b"let = source",
        b"job \"x\"\nschema E { t: timestamp }\nsource datagen { schema: E, t: ticks(0, 1, 1) } | watermark t | key_by t | window sliding { size: 9223372036854775807ms, slide: 1ms } | aggregate { t } | sink print",
        b"job \"x\"\nschema E { n: long }\nsource datagen { schema: E, n: sequence(9223372036854775807, 9223372036854775807) } | sink print",
        b"job \"x\"\nset execution.checkpointing.interval = 9223372036854775807ms * 9223372036854775807",
        b"job \"x\"\nschema E { n: long }\nsource datagen { schema: E } | filter n / 0 == 1 and n % 0 == 0 | sink print",
        "job \"é\"\nschema É { n: long }\n".as_bytes(),
        "\u{feff}job \"bom\"".as_bytes(),
        b"job \"x\"\r\nschema E { n: long }\r\nsource datagen { schema: E } | sink print\r\n",
    ];
    for c in cases {
        run(c.to_vec()).unwrap_or_else(|e| panic!("{e}"));
    }
    // Deep nesting must not overflow the stack (these run on threads with
    // the default 2 MiB stack): refused past MAX_EXPR_DEPTH, fine below it.
    for deep in [
        format!("job \"x\"\nset a = {}1{}", "(".repeat(5000), ")".repeat(5000)),
        format!("job \"x\"\nset a = {}1", "-".repeat(20000)),
        format!("job \"x\"\nset a = 1{}", " + 1".repeat(20000)),
        format!("job \"x\"\nset a = {}true", "not ".repeat(20000)),
        format!("job \"x\"\nset a = {}1{}", "(1 + ".repeat(200), ")".repeat(200)),
    ] {
        run(deep.into_bytes()).unwrap_or_else(|e| panic!("{e}"));
    }
    let nested = |n: usize| {
        format!(
            "job \"x\"\nschema E {{ n: long }}\nsource datagen {{ schema: E }} | filter {}n{} > 0 | sink print\n",
            "(n + ".repeat(n),
            ")".repeat(n)
        )
    };
    let ok = nested(flowc_dsl::parser::MAX_EXPR_DEPTH - 5);
    run(ok.clone().into_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let src = SourceFile::new("deep.flow", ok);
    std::thread::spawn(move || compile(&src, &CheckOptions::default()).map(|_| ()).map_err(|d| format!("{d:?}")))
        .join()
        .expect("no panic")
        .expect("an expression just under the limit compiles");
    let too_deep = parse(&nested(flowc_dsl::parser::MAX_EXPR_DEPTH + 5));
    assert_eq!(too_deep.diagnostics.first().map(|d| d.code), Some("flow::parse::too-deep"));
}
