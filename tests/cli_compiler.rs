//! The compiler's command line, end to end: `flowc check|explain|fmt|compile`
//! run as a real process on `jobs/click_count.flow` and on bad input.
//!
//! Every bad input must give a clear error that names the problem, exit with
//! code 1, and never panic or hang.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const FLOWC: &str = env!("CARGO_BIN_EXE_flowc");
const PLAYGROUND_ARGS: &[&str] = &["--bootstrap.servers", "localhost:9092", "--checkpointing", "--event-time"];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn click_count() -> String {
    repo().join("jobs/click_count.flow").display().to_string()
}

/// Runs flowc with a deadline; a hang fails the test instead of blocking it.
fn flowc(args: &[&str]) -> Output {
    let mut child = Command::new(FLOWC)
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start flowc");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait for flowc").is_some() {
            return child.wait_with_output().expect("flowc output");
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("flowc {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A failure the way a user should see it: exit code 1, a message that
/// contains `needle`, and no panic.
fn assert_fails_with(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "exit code; stderr:\n{err}\nstdout:\n{}", stdout(o));
    assert!(err.contains(needle), "stderr does not mention {needle:?}:\n{err}");
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "flowc panicked:\n{err}");
}

/// A fresh path under the system temp dir, unique to this process and call.
fn temp_path(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("flowc-cli-test-{}-{n}-{name}", std::process::id()))
}

/// A temp file that is removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, bytes: &[u8]) -> TempFile {
        let path = temp_path(name);
        std::fs::write(&path, bytes).expect("write temp file");
        TempFile(path)
    }
    fn path(&self) -> &str {
        self.0.to_str().expect("UTF-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

// ------------------------------------------------------------------ click_count

#[test]
fn check_accepts_click_count() {
    let job = click_count();
    let mut args = vec!["check", job.as_str()];
    args.extend(PLAYGROUND_ARGS);
    let o = flowc(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("{job}: job \"Click Event Count\" is valid: 4 vertices, 4 operators\n"));
    assert_eq!(stderr(&o), "", "no warnings expected");
}

// ------------------------------------------------------------------ check --format json

/// What `flowc check --format json` printed: one JSON object per line.
fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    stdout(o).lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line: {e}: {l}"))).collect()
}

/// The span object of `needle`'s first occurrence in a one-line-per-line text.
fn span_of(text: &str, needle: &str) -> serde_json::Value {
    let start = text.find(needle).expect("needle in text");
    let line = text[..start].matches('\n').count() + 1;
    let column = start - text[..start].rfind('\n').map_or(0, |i| i + 1) + 1;
    serde_json::json!({
        "start": start,
        "end": start + needle.len(),
        "line_start": line,
        "column_start": column,
        "line_end": line,
        "column_end": column + needle.len(),
    })
}

#[test]
fn check_json_prints_each_error_and_warning_as_one_object() {
    let text = "job \"J\"\nschema E { page: string }\nlet spare = source datagen { schema: E }\n\
                source datagen { schema: E }\n    | filter pgae != \"/help\"\n    | sink print\n";
    let f = TempFile::new("json.flow", text.as_bytes());
    let o = flowc(&["check", "--format", "json", f.path()]);
    assert_eq!(o.status.code(), Some(1), "an error: exit 1; stderr:\n{}", stderr(&o));
    assert_eq!(stderr(&o), "", "JSON goes to stdout, nothing else is printed");
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let (warning, error) = (&lines[0], &lines[1]);

    assert_eq!(error["code"], "flow::check::unknown-field");
    assert_eq!(error["severity"], "error");
    assert_eq!(error["file"], f.path());
    assert_eq!(error["message"], "unknown field `pgae`");
    assert_eq!(error["span"], span_of(text, "pgae"));
    assert_eq!(error["span"]["line_start"], 5);
    assert_eq!(error["span"]["column_start"], 14);
    assert_eq!(
        error["labels"],
        serde_json::json!([{ "primary": true, "span": span_of(text, "pgae"), "text": "no field `pgae` in E" }])
    );
    assert_eq!(error["help"], "did you mean `page`?");

    assert_eq!(warning["code"], "flow::check::unused-stream");
    assert_eq!(warning["severity"], "warning");
    assert_eq!(warning["message"], "stream `spare` is never used");
    assert_eq!(warning["span"], span_of(text, "spare"));
    assert_eq!(warning["labels"][0]["text"], "defined here");
    assert_eq!(warning["help"], "continue it with `from spare | …`, or remove it");

    // `rendered` is what the text format shows, word for word.
    let human = flowc(&["check", f.path()]);
    assert_eq!(human.status.code(), Some(1));
    let shown = stderr(&human);
    for d in &lines {
        let rendered = d["rendered"].as_str().expect("rendered is a string");
        assert!(rendered.starts_with(&format!(
            "{}[{}]: ",
            d["severity"].as_str().expect("severity"),
            d["code"].as_str().expect("code")
        )));
        assert!(shown.contains(rendered), "{rendered}\nnot in\n{shown}");
    }
}

#[test]
fn check_json_labels_warnings_only_and_options_after_the_file() {
    // A secondary label ("keyed here") next to the primary one.
    let text = "job \"J\"\nschema E { page: string }\nsource datagen { schema: E } | key_by page | sink print\n";
    let f = TempFile::new("labels.flow", text.as_bytes());
    let o = flowc(&["check", f.path(), "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let labels = lines[0]["labels"].as_array().expect("labels");
    assert_eq!(labels.len(), 2);
    assert_eq!((&labels[0]["primary"], &labels[0]["span"]), (&serde_json::json!(true), &span_of(text, "sink print")));
    assert_eq!(
        labels[1],
        serde_json::json!({ "primary": false, "span": span_of(text, "key_by page"), "text": "keyed here" })
    );

    // Warnings only: exit 0, the warning on stdout, nothing else.
    let text = "job \"J\"\nschema E { n: long }\nlet spare = source datagen { schema: E }\n\
                source datagen { schema: E } | sink print\n";
    let f = TempFile::new("warning.flow", text.as_bytes());
    let o = flowc(&["check", "--format", "json", f.path()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["severity"], "warning");
    assert_eq!(stderr(&o), "");

    // A valid job prints nothing at all.
    let job = click_count();
    let mut args = vec!["check", job.as_str(), "--format", "json"];
    args.extend(PLAYGROUND_ARGS);
    let o = flowc(&args);
    assert_eq!((o.status.code(), stdout(&o), stderr(&o)), (Some(0), String::new(), String::new()));

    // A problem outside the file: no span.
    let o = flowc(&["check", "--format", "json", &job, "--bootstrap.servers", "x:1", "--event-tme"]);
    assert_eq!(o.status.code(), Some(1));
    let lines = json_lines(&o);
    assert_eq!(
        (&lines[0]["code"], &lines[0]["span"]),
        (&serde_json::json!("flow::args::unknown"), &serde_json::Value::Null)
    );
}

/// A reader that stops reading (`flowc check --format json … | head -1`)
/// ends the output quietly; flowc panicked on the broken pipe.
#[test]
fn check_json_into_a_closed_pipe_does_not_panic() {
    let mut child = Command::new(FLOWC)
        .args(["check", "--format", "json", "compiler/tests/golden/err/unknown_field_did_you_mean.flow"])
        .current_dir(repo())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start flowc");
    // Close the reading end before flowc writes anything.
    drop(child.stdout.take());
    let o = child.wait_with_output().expect("flowc output");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
}

#[test]
fn check_json_for_a_file_that_cannot_be_read_and_an_unknown_format() {
    let missing = temp_path("missing.flow");
    let m = missing.to_str().expect("UTF-8");
    let o = flowc(&["check", "--format", "json", m]);
    assert_eq!(o.status.code(), Some(1));
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(lines[0]["code"], "flow::load::file");
    assert_eq!(lines[0]["severity"], "error");
    assert_eq!(lines[0]["span"], serde_json::Value::Null);
    assert_eq!(lines[0]["message"], format!("cannot read `{m}`: No such file or directory (os error 2)"));
    let o = flowc(&["check", &click_count(), "--format", "yaml"]);
    assert_fails_with(&o, "error: unknown format `yaml`: use text or json");
}

#[test]
fn explain_shows_the_four_playground_vertices() {
    let job = click_count();
    let mut args = vec!["explain", job.as_str(), "-p", "2"];
    args.extend(PLAYGROUND_ARGS);
    let o = flowc(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let vertices: Vec<&str> = out.lines().filter(|l| l.starts_with("Vertex ")).collect();
    let names: Vec<String> = vertices
        .iter()
        .map(|l| {
            let (_, rest) = l.split_once(" \"").expect("a quoted name");
            rest.to_string()
        })
        .collect();
    assert_eq!(
        names,
        [
            "ClickEvent Source\"  parallelism 2",
            "Timestamps/Watermarks\"  parallelism 2",
            "ClickEvent Counter\"  parallelism 2",
            "ClickEventStatistics Sink\"  parallelism 2",
        ]
    );
    let edges: Vec<&str> = out.lines().filter(|l| l.trim_start().starts_with("<- ")).map(str::trim).collect();
    assert_eq!(
        edges,
        [
            "<- FORWARD from \"ClickEvent Source\"",
            "<- HASH from \"Timestamps/Watermarks\" by page",
            "<- FORWARD from \"ClickEvent Counter\"",
        ]
    );
    assert!(
        out.starts_with("Job \"Click Event Count\"\n  max parallelism 128, chaining off, checkpoints every 1s\n"),
        "{out}"
    );
    assert!(
        out.contains("Window(TumblingEventTimeWindows(15000)) \"ClickEvent Counter\" uid \"click-event-counter\""),
        "{out}"
    );
}

#[test]
fn explain_without_flags_uses_processing_time_and_no_checkpoints() {
    let job = click_count();
    let o = flowc(&["explain", &job, "--bootstrap.servers", "localhost:9092"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("chaining off, checkpoints off"), "{out}");
    assert!(out.contains("Window(TumblingProcessingTimeWindows(15000))"), "{out}");
    assert!(out.contains("\"ClickEvent Source\"  parallelism 1"), "{out}");
}

#[test]
fn explain_json_is_flinks_plan_shape() {
    let job = click_count();
    let mut args = vec!["explain", job.as_str(), "--format", "json", "-p", "2"];
    args.extend(PLAYGROUND_ARGS);
    let o = flowc(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(v["name"], "Click Event Count");
    assert_eq!(v["type"], "STREAMING");
    let nodes = v["nodes"].as_array().expect("nodes");
    let described: Vec<(&str, u64, Vec<&str>)> = nodes
        .iter()
        .map(|n| {
            let inputs = n["inputs"].as_array().map_or(Vec::new(), |i| {
                i.iter().map(|x| x["ship_strategy"].as_str().expect("ship_strategy")).collect()
            });
            (n["description"].as_str().expect("description"), n["parallelism"].as_u64().expect("parallelism"), inputs)
        })
        .collect();
    assert_eq!(
        described,
        vec![
            ("ClickEventStatistics Sink", 2, vec!["FORWARD"]),
            ("ClickEvent Counter", 2, vec!["HASH"]),
            ("Timestamps/Watermarks", 2, vec!["FORWARD"]),
            ("ClickEvent Source", 2, vec![]),
        ]
    );
    for n in nodes {
        assert_eq!(n["id"].as_str().expect("id").len(), 32, "Flink's 32-hex-digit ids");
        assert_eq!(n["operator"], "");
        assert_eq!(n["operator_strategy"], "");
        assert!(n["optimizer_properties"].is_object());
        for i in n["inputs"].as_array().into_iter().flatten() {
            assert_eq!(i["exchange"], "pipelined_bounded");
        }
    }
}

#[test]
fn explain_dot_draws_the_graph() {
    let job = click_count();
    let mut args = vec!["explain", job.as_str(), "-p", "2", "--format", "dot"];
    args.extend(PLAYGROUND_ARGS);
    let o = flowc(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("digraph \"Click Event Count\" {\n  rankdir=LR;\n"), "{out}");
    assert!(out.ends_with("}\n"), "{out}");
    assert_eq!(out.lines().filter(|l| l.contains("parallelism 2\"]")).count(), 4, "{out}");
    let edges: Vec<&str> = out.lines().filter(|l| l.contains(" -> ")).collect();
    assert_eq!(edges.len(), 3, "{out}");
    assert!(edges[0].ends_with("[label=\"FORWARD\"];") && edges[1].ends_with("[label=\"HASH\"];"), "{out}");
    assert!(out.contains("label=\"ClickEvent Source\\nparallelism 2\""), "{out}");
}

#[test]
fn explain_refuses_an_unknown_format() {
    let job = click_count();
    let o = flowc(&["explain", &job, "--format", "yaml", "--bootstrap.servers", "x:1"]);
    assert_fails_with(&o, "unknown format `yaml`: use text, json or dot");
}

#[test]
fn fmt_check_accepts_click_count() {
    let job = click_count();
    let o = flowc(&["fmt", "--check", &job]);
    assert_eq!(o.status.code(), Some(0), "stdout:\n{}\nstderr:\n{}", stdout(&o), stderr(&o));
    assert_eq!(stdout(&o), "");
}

#[test]
fn fmt_check_reports_and_fmt_rewrites_a_messy_file() {
    let f = TempFile::new("messy.flow", b"job   \"x\"\nschema S{n:long}\nsource datagen{schema:S}|sink print\n");
    let o = flowc(&["fmt", "--check", f.path()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), format!("{}: not formatted\n", f.path()));
    let o = flowc(&["fmt", "--stdout", f.path()]);
    assert_eq!(o.status.code(), Some(0));
    let formatted = "job \"x\"\n\nschema S {\n    n: long\n}\n\nsource datagen { schema: S }\n    | sink print\n";
    assert_eq!(stdout(&o), formatted);
    let o = flowc(&["fmt", f.path()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("{}: formatted\n", f.path()));
    assert_eq!(std::fs::read_to_string(&f.0).expect("read back"), formatted);
    let o = flowc(&["fmt", "--check", f.path()]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn compile_writes_a_plan_that_reads_back() {
    let job = click_count();
    let out = temp_path("plan.bin");
    let out_s = out.to_str().expect("UTF-8");
    let mut args = vec!["compile", job.as_str(), "-p", "2", "-o", out_s];
    args.extend(PLAYGROUND_ARGS);
    let o = flowc(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let bytes = std::fs::read(&out).expect("plan written");
    let _ = std::fs::remove_file(&out);
    assert_eq!(
        stdout(&o),
        format!(
            "{job}: wrote {out_s} ({} bytes, plan format {})\n",
            bytes.len(),
            flowc_compiler::plan_file::FORMAT_VERSION
        )
    );
    let graph = flowc_compiler::plan_file::from_bytes(&bytes).expect("the plan reads back");
    assert_eq!(graph.name, "Click Event Count");
    assert_eq!(graph.vertex_count(), 4);
    assert!(graph.graph.node_weights().all(|v| v.parallelism == 2));
    assert_eq!(graph.settings.checkpoint_interval_ms, Some(1000));
    // The same plan as explain shows.
    let mut args = vec!["explain", job.as_str(), "-p", "2"];
    args.extend(PLAYGROUND_ARGS);
    assert_eq!(flowc_compiler::explain::text(&graph), stdout(&flowc(&args)));
}

#[test]
fn compile_to_json() {
    let job = click_count();
    let out = temp_path("plan.json");
    let out_s = out.to_str().expect("UTF-8");
    let o = flowc(&["compile", &job, "-o", out_s, "--bootstrap.servers", "localhost:9092"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).expect("plan written");
    let _ = std::fs::remove_file(&out);
    let graph = flowc_compiler::plan_file::from_json(&text).expect("the JSON plan reads back");
    assert_eq!(graph.vertex_count(), 4);
}

// ------------------------------------------------------------------ bad input

#[test]
fn missing_file() {
    let missing = temp_path("does-not-exist.flow");
    let m = missing.to_str().expect("UTF-8");
    for cmd in ["check", "explain", "compile"] {
        let o = flowc(&[cmd, m]);
        // The reason once, not twice.
        assert_fails_with(&o, &format!("error: cannot read `{m}`: No such file or directory (os error 2)\n"));
        assert_eq!(stderr(&o).matches("No such file").count(), 1, "{}", stderr(&o));
    }
    let o = flowc(&["fmt", m]);
    assert_fails_with(&o, &format!("error: cannot read `{m}`"));
}

#[test]
fn a_directory() {
    let dir = repo().join("jobs");
    let o = flowc(&["check", dir.to_str().expect("UTF-8")]);
    assert_fails_with(&o, "it is a directory");
}

#[test]
fn empty_file() {
    for content in [&b""[..], b"  \n\t\n"] {
        let f = TempFile::new("empty.flow", content);
        let o = flowc(&["check", f.path()]);
        assert_fails_with(
            &o,
            &format!("error: `{}` is empty: a job file needs at least a source and a sink", f.path()),
        );
    }
}

#[test]
fn file_with_only_comments() {
    let f = TempFile::new("comments.flow", b"// nothing here\n/* at all */\n");
    let o = flowc(&["check", f.path()]);
    assert_fails_with(&o, "error[flow::check::no-job-name]: the job has no name");
}

#[test]
fn non_utf8_file() {
    let f = TempFile::new("latin1.flow", b"job \"Caf\xe9\"\nflag x\n");
    let o = flowc(&["check", f.path()]);
    assert_fails_with(&o, &format!("error: `{}` is not valid UTF-8 (invalid byte at line 1, column 9)", f.path()));
    let o = flowc(&["fmt", "--check", f.path()]);
    assert_fails_with(&o, "is not valid UTF-8");
}

#[test]
fn binary_file() {
    let f = TempFile::new("binary.flow", &[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0xff]);
    let o = flowc(&["check", f.path()]);
    assert_fails_with(&o, &format!("error: `{}` is not a text file (it contains a NUL byte at offset 7)", f.path()));
    // A compiled plan is not a job file either.
    let plan = TempFile::new("plan.flow", b"FLOWCPLN\x01\x00\x00\x00");
    let o = flowc(&["explain", plan.path()]);
    assert_fails_with(&o, "is not a text file");
}

#[test]
fn ten_megabyte_file() {
    let mut big = b"job \"big\"\n".to_vec();
    big.resize(10 * 1024 * 1024, b'/');
    let f = TempFile::new("big.flow", &big);
    let start = Instant::now();
    let o = flowc(&["check", f.path()]);
    assert_fails_with(
        &o,
        &format!(
            "error: `{}` is 10485760 bytes; job files are at most 1048576 bytes (is this the right file?)",
            f.path()
        ),
    );
    assert!(start.elapsed() < Duration::from_secs(20), "took {:?}", start.elapsed());
}

#[test]
fn a_file_just_under_the_limit_is_read_and_checked() {
    // A long comment: about 1 MB that the parser must skip quickly.
    let mut text = b"job \"long\"\nschema E { n: long }\nsource datagen { schema: E } | sink print\n// ".to_vec();
    text.resize(1024 * 1024 - 1, b'x');
    text.push(b'\n');
    let f = TempFile::new("long.flow", &text);
    let o = flowc(&["check", f.path()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn unknown_program_argument() {
    let job = click_count();
    let o = flowc(&["check", &job, "--bootstrap.servers", "localhost:9092", "--event-tme"]);
    assert_fails_with(
        &o,
        "error[flow::args::unknown]: unknown program argument `--event-tme`\n  = help: did you mean `--event-time`?",
    );
    let o = flowc(&["check", &job, "--bootstrap.servers", "localhost:9092", "stray"]);
    assert_fails_with(&o, "error: program argument `stray` does not start with `--`");
    let o = flowc(&["check", &job, "-x"]);
    assert_fails_with(&o, "error: unknown option `-x` (program arguments are written `--name value`)");
    let o = flowc(&["explain", &job, "-p", "0", "--bootstrap.servers", "x:1"]);
    assert_fails_with(
        &o,
        "error[flow::args::parallelism]: `-p 0`: parallelism 0 is not possible: it must be from 1 to 128",
    );
    let o = flowc(&["check", &job, "--checkpointing", "--checkpointing"]);
    assert_fails_with(&o, "error: program argument `--checkpointing` is given twice");
}

#[test]
fn missing_parameter_value() {
    let job = click_count();
    let o = flowc(&["check", &job, "--bootstrap.servers"]);
    assert_fails_with(&o, "error[flow::args::missing-value]: `--bootstrap.servers` needs a value");
}

#[test]
fn malformed_file() {
    let f = TempFile::new(
        "malformed.flow",
        b"job \"Broken\"\nschema E { ts: timestamp, page: }\nsource kafka { servers: \"x:1\", topic: \"in\", schema: E }\n    | key_by pgae\n    | sink print\n",
    );
    let o = flowc(&["check", f.path()]);
    let err = stderr(&o);
    assert_fails_with(&o, "error[flow::parse::syntax]: expected a field type");
    let p = f.path();
    assert_eq!(
        err,
        format!(
            "error[flow::parse::syntax]: expected a field type (`string`, `int`, `long`, `double`, `bool`, `timestamp`, `array<…>`), found `}}`\n \
             --> {p}:2:33\n  |\n2 | schema E {{ ts: timestamp, page: }}\n  |                                 ^ unexpected here\n\n\
             error: could not compile `{p}` due to 1 previous error\n"
        )
    );
    // The same file with the schema fixed gets to the checker.
    let fixed = TempFile::new(
        "malformed2.flow",
        b"job \"Broken\"\nschema E { ts: timestamp, page: string }\nsource kafka { servers: \"x:1\", topic: \"in\", schema: E }\n    | key_by pgae\n    | sink print\n",
    );
    let o = flowc(&["explain", fixed.path()]);
    assert_fails_with(&o, "error[flow::check::unknown-field]: cannot key by `pgae`: no such field");
    assert!(stderr(&o).contains(&format!("--> {}:4:14", fixed.path())), "{}", stderr(&o));
    assert!(stderr(&o).contains("= help: did you mean `page`?"), "{}", stderr(&o));
    assert_eq!(stdout(&o), "", "nothing is explained");
    // fmt refuses to rewrite a file that does not parse, and leaves it alone.
    let before = std::fs::read(&f.0).expect("read");
    let o = flowc(&["fmt", f.path()]);
    assert_fails_with(&o, "expected a field type");
    assert_eq!(std::fs::read(&f.0).expect("read"), before);
}

#[test]
fn deeply_nested_expression() {
    let text = format!("job \"deep\"\nset a = {}1{}\n", "(".repeat(3000), ")".repeat(3000));
    let f = TempFile::new("deep.flow", text.as_bytes());
    let o = flowc(&["check", f.path()]);
    assert_fails_with(&o, "error[flow::parse::");
    let text = format!("job \"deep\"\nset a = 1{}\n", " + 1".repeat(5000));
    let f = TempFile::new("chain.flow", text.as_bytes());
    let o = flowc(&["check", f.path()]);
    assert_fails_with(&o, "error[flow::parse::too-deep]: this expression nests too deeply");
}

#[test]
fn compile_to_an_unwritable_path() {
    let job = click_count();
    let out = temp_path("no-such-dir").join("plan.bin");
    let o = flowc(&["compile", &job, "-o", out.to_str().expect("UTF-8"), "--bootstrap.servers", "x:1"]);
    assert_fails_with(&o, &format!("error: cannot write `{}`", out.display()));
}
