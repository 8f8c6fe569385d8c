//! `flowc lsp` as an editor sees it: the test starts the real `flowc lsp`
//! process and speaks JSON-RPC to it over its stdin and stdout, framed with
//! `Content-Length` headers, as VS Code would — initialize, open
//! `jobs/click_count.flow`, hover, complete, go to definition, find
//! references, outline, format, change the text and get diagnostics, shut
//! down. Positions and results are asserted.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(30);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// An editor's side of the connection.
struct Editor {
    child: Child,
    stdin: ChildStdin,
    incoming: Receiver<Value>,
    next_id: i64,
    /// Notifications that arrived while waiting for something else.
    notifications: Vec<Value>,
}

impl Editor {
    fn start() -> Editor {
        let mut child = Command::new(env!("CARGO_BIN_EXE_flowc"))
            .arg("lsp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting flowc lsp");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, incoming) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut length = None;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("Content-Length: ") {
                        length = v.parse::<usize>().ok();
                    }
                }
                let mut body = vec![0; length.expect("a Content-Length header")];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                let value: Value = serde_json::from_slice(&body).expect("a JSON message");
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        Editor { child, stdin, incoming, next_id: 1, notifications: Vec::new() }
    }

    fn send(&mut self, message: Value) {
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).expect("writing to the server");
        self.stdin.flush().expect("flushing");
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    fn next(&mut self, deadline: Instant) -> Value {
        match self.incoming.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(v) => v,
            Err(RecvTimeoutError::Timeout) => panic!("no message from the server in {TIMEOUT:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("the server closed its output"),
        }
    }

    /// Sends a request and waits for its response: the result.
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let m = self.next(deadline);
            if m["id"] == json!(id) && m.get("method").is_none() {
                assert!(m.get("error").is_none(), "{method} failed: {m}");
                return m["result"].clone();
            }
            self.notifications.push(m);
        }
    }

    /// The next `publishDiagnostics` for `uri` at `version`.
    fn diagnostics(&mut self, uri: &str, version: i64) -> Vec<Value> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(i) = self.notifications.iter().position(|n| {
                n["method"] == "textDocument/publishDiagnostics"
                    && n["params"]["uri"] == uri
                    && n["params"]["version"] == version
            }) {
                let n = self.notifications.remove(i);
                return n["params"]["diagnostics"].as_array().cloned().unwrap_or_default();
            }
            let m = self.next(deadline);
            self.notifications.push(m);
        }
    }

    fn open(&mut self, uri: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "flow", "version": 1, "text": text}}),
        );
    }

    fn at(&mut self, method: &str, uri: &str, pos: (u32, u32)) -> Value {
        let mut params = json!({"textDocument": {"uri": uri}, "position": {"line": pos.0, "character": pos.1}});
        match method {
            "textDocument/references" => params["context"] = json!({"includeDeclaration": true}),
            "textDocument/completion" => params["context"] = json!({"triggerKind": 1}),
            _ => {}
        }
        self.request(method, params)
    }

    fn hover(&mut self, uri: &str, pos: (u32, u32)) -> String {
        let h = self.at("textDocument/hover", uri, pos);
        h["contents"]["value"].as_str().unwrap_or_else(|| panic!("no hover at {pos:?}: {h}")).to_string()
    }

    fn completion_labels(&mut self, uri: &str, pos: (u32, u32)) -> Vec<String> {
        let c = self.at("textDocument/completion", uri, pos);
        c.as_array()
            .unwrap_or_else(|| panic!("completion at {pos:?}: {c}"))
            .iter()
            .map(|i| i["label"].as_str().unwrap_or("").to_string())
            .collect()
    }
}

impl Drop for Editor {
    fn drop(&mut self) {
        // A test that failed half way leaves no server behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The (line, UTF-16 column) of the `nth` occurrence of `needle` in
/// `text`, moved `delta` characters into it.
fn pos(text: &str, needle: &str, nth: usize, delta: usize) -> (u32, u32) {
    let offset = text.match_indices(needle).nth(nth).unwrap_or_else(|| panic!("no {needle:?} #{nth}")).0 + delta;
    let line = text[..offset].matches('\n').count();
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    (line as u32, text[line_start..offset].encode_utf16().count() as u32)
}

fn range(start: (u32, u32), end: (u32, u32)) -> Value {
    json!({"start": {"line": start.0, "character": start.1}, "end": {"line": end.0, "character": end.1}})
}

fn file_uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// What `flowc fmt --stdout` makes of `text`.
fn flowc_fmt(text: &str, name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("flowc-lsp-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, text).expect("writing the scratch job");
    let out =
        Command::new(env!("CARGO_BIN_EXE_flowc")).args(["fmt", "--stdout"]).arg(&path).output().expect("flowc fmt");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "flowc fmt failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn an_editor_session_on_click_count() {
    let path = root().join("jobs/click_count.flow");
    let text = std::fs::read_to_string(&path).expect("reading jobs/click_count.flow");
    let uri = file_uri(&path);
    let mut ed = Editor::start();

    let init = ed.request("initialize", json!({"processId": null, "rootUri": null, "capabilities": {}}));
    assert_eq!(init["serverInfo"]["name"], "flowc");
    let caps = &init["capabilities"];
    assert_eq!(caps["textDocumentSync"]["change"], 2, "incremental sync: {caps}");
    for c in [
        "hoverProvider",
        "definitionProvider",
        "referencesProvider",
        "documentFormattingProvider",
        "documentSymbolProvider",
    ] {
        assert_eq!(caps[c], true, "{c}: {caps}");
    }
    ed.notify("initialized", json!({}));

    // The job checks: no diagnostics (the same as `flowc check`).
    ed.open(&uri, &text);
    assert_eq!(ed.diagnostics(&uri, 1), Vec::<Value>::new());

    // Hovers: a field, a stage, a function, a parameter, a flag, an option, a setting.
    let h = ed.hover(&uri, pos(&text, "key_by page", 0, 8));
    assert!(h.contains("page: string") && h.contains("field of `ClickEvent`"), "{h}");
    let h = ed.hover(&uri, pos(&text, "| aggregate", 0, 3));
    assert!(h.contains("receives:\n```flow\nClickEvent {\n    timestamp: timestamp\n    page: string\n}"), "{h}");
    assert!(h.contains("emits:\n```flow\n{\n    windowStart: timestamp\n    windowEnd: timestamp\n    page: string\n    count: long\n}"), "{h}");
    let h = ed.hover(&uri, pos(&text, "count()", 0, 1));
    assert!(h.contains("count() -> long") && h.contains("number of records"), "{h}");
    let h = ed.hover(&uri, pos(&text, "$bootstrap.servers", 0, 3));
    assert!(h.contains("param bootstrap.servers: string = \"localhost:9092\""), "{h}");
    let h = ed.hover(&uri, pos(&text, "$event-time", 0, 2));
    assert!(h.contains("flag event-time") && h.contains("windows in event time"), "{h}");
    let h = ed.hover(&uri, pos(&text, "offsets: committed", 0, 2));
    assert!(h.contains("takes `earliest`, `latest` or `committed`; default `committed`"), "{h}");
    let h = ed.hover(&uri, pos(&text, "delivery: at_least_once", 0, 12));
    assert!(h.contains("may repeat records after a failure"), "{h}");
    let h = ed.hover(&uri, pos(&text, "pipeline.operator-chaining", 0, 3));
    assert!(h.contains("takes `true` or `false`"), "{h}");
    let h = ed.hover(&uri, pos(&text, "window tumbling", 0, 9));
    assert!(h.contains("window tumbling") && h.contains("`size`, `time`"), "{h}");
    let h = ed.hover(&uri, pos(&text, "page, count", 0, 1));
    assert!(h.contains("page: string"), "{h}");

    // Definition and references.
    let schema_use = pos(&text, "schema: ClickEvent", 0, 10);
    let def = ed.at("textDocument/definition", &uri, schema_use);
    let decl = pos(&text, "schema ClickEvent", 0, 7);
    assert_eq!(def["range"], range(decl, (decl.0, decl.1 + 10)), "{def}");
    assert_eq!(def["uri"], uri.as_str());
    let refs = ed.at("textDocument/references", &uri, pos(&text, "$bootstrap.servers", 1, 1));
    let ranges: Vec<&Value> = refs.as_array().expect("locations").iter().map(|l| &l["range"]).collect();
    let decl = pos(&text, "bootstrap.servers: string", 0, 0);
    let use1 = pos(&text, "$bootstrap.servers", 0, 0);
    let use2 = pos(&text, "$bootstrap.servers", 1, 0);
    assert_eq!(
        ranges,
        [&range(decl, (decl.0, decl.1 + 17)), &range(use1, (use1.0, use1.1 + 18)), &range(use2, (use2.0, use2.1 + 18))]
    );

    // The outline.
    let symbols = ed.request("textDocument/documentSymbol", json!({"textDocument": {"uri": uri}}));
    let names: Vec<&str> = symbols.as_array().expect("symbols").iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "job \"Click Event Count\"",
            "$bootstrap.servers",
            "$checkpointing",
            "$event-time",
            "execution.checkpointing.interval",
            "pipeline.operator-chaining",
            "pipeline.max-parallelism",
            "ClickEvent",
            "kafka → kafka"
        ]
    );
    let pipeline = &symbols[8];
    let stages: Vec<&str> =
        pipeline["children"].as_array().expect("stages").iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(
        stages,
        ["source kafka", "watermark timestamp", "key_by page", "window tumbling", "aggregate", "sink kafka"]
    );
    let fields: Vec<&str> =
        symbols[7]["children"].as_array().expect("fields").iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(fields, ["timestamp", "page"]);

    // Formatting: the file is in the canonical layout already.
    let edits = ed.request(
        "textDocument/formatting",
        json!({"textDocument": {"uri": uri}, "options": {"tabSize": 4, "insertSpaces": true}}),
    );
    assert_eq!(edits, json!([]));

    // Completion where the job is whole: options, option values, fields in a filter.
    let labels = ed.completion_labels(&uri, pos(&text, "offsets: committed", 0, 9));
    assert_eq!(labels, ["earliest", "latest", "committed"]);
    let labels = ed.completion_labels(&uri, pos(&text, "group: \"click", 0, 0));
    assert_eq!(
        labels,
        [
            "servers",
            "topic",
            "topics",
            "topic_pattern",
            "discovery_interval",
            "group",
            "offsets",
            "bounded",
            "format",
            "delimiter",
            "quote",
            "null_literal",
            "schema",
            "on_error",
            "dead_letter_topic",
            "dead_letter_servers"
        ]
    );

    // A typo, typed as an editor sends it: one incremental change.
    let at = pos(&text, "key_by page", 0, 7);
    ed.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2},
               "contentChanges": [{"range": range(at, (at.0, at.1 + 4)), "text": "pgae"}]}),
    );
    let diags = ed.diagnostics(&uri, 2);
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert_eq!(diags[0]["code"], "flow::check::unknown-field");
    assert_eq!(diags[0]["severity"], 1);
    assert_eq!(diags[0]["source"], "flowc");
    assert_eq!(diags[0]["range"], range(at, (at.0, at.1 + 4)));
    assert_eq!(diags[0]["message"], "cannot key by `pgae`: no such field\nhelp: did you mean `page`?");

    // Now a new stage, half typed: the statement does not parse. The
    // stage names after `| `, then the fields that reach the stage.
    let after_watermark = pos(&text, "uid \"timestamps-watermarks\"", 0, 27);
    ed.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 3},
               "contentChanges": [{"range": range(after_watermark, after_watermark), "text": "\n    | "}]}),
    );
    let diags = ed.diagnostics(&uri, 3);
    assert!(diags.iter().any(|d| d["code"] == "flow::parse::syntax"), "{diags:#?}");
    let typing = (after_watermark.0 + 1, 6);
    let labels = ed.completion_labels(&uri, typing);
    assert_eq!(
        labels,
        [
            "watermark",
            "filter",
            "map",
            "select",
            "key_by",
            "window",
            "aggregate",
            "dedup",
            "top",
            "sink",
            "union",
            "join",
            "versioned",
            "unnest"
        ]
    );
    ed.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 4},
               "contentChanges": [{"range": range(typing, typing), "text": "filter pa"}]}),
    );
    let labels = ed.completion_labels(&uri, (typing.0, typing.1 + 9));
    assert_eq!(labels[..2], ["timestamp", "page"], "{labels:?}");
    assert!(labels.contains(&"upper".to_string()) && !labels.contains(&"count".to_string()), "{labels:?}");
    let c = ed.at("textDocument/completion", &uri, (typing.0, typing.1 + 9));
    assert_eq!(c[1]["detail"], "string");
    assert_eq!(c[1]["textEdit"]["range"], range((typing.0, typing.1 + 7), (typing.0, typing.1 + 9)), "{}", c[1]);

    // Setting keys after `set`, parameters after `$`.
    ed.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 5},
               "contentChanges": [{"range": range((0, 0), (0, 0)), "text": "set \n"}]}),
    );
    let labels = ed.completion_labels(&uri, (0, 4));
    assert!(labels.contains(&"execution.checkpointing.interval".to_string()), "{labels:?}");
    ed.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 6},
               "contentChanges": [{"range": range((0, 4), (0, 4)), "text": "parallelism.default = $"}]}),
    );
    let labels = ed.completion_labels(&uri, (0, 27));
    assert_eq!(labels, ["$bootstrap.servers", "$checkpointing", "$event-time"]);

    // Formatting another document gives what `flowc fmt` gives.
    let messy = "job   \"m\"\nschema S {a:int,b:string}\nsource datagen {schema:S,count:10}|filter a>1 | map {c: upper(b)}|sink print\n";
    let other = file_uri(&root().join("messy.flow"));
    ed.open(&other, messy);
    let edits = ed.request(
        "textDocument/formatting",
        json!({"textDocument": {"uri": other}, "options": {"tabSize": 4, "insertSpaces": true}}),
    );
    assert_eq!(edits[0]["range"], range((0, 0), (3, 0)));
    assert_eq!(edits[0]["newText"].as_str(), Some(flowc_fmt(messy, "messy.flow").as_str()));

    // Shut down as an editor does; the server exits 0.
    assert_eq!(ed.request("shutdown", Value::Null), Value::Null);
    ed.notify("exit", Value::Null);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(status) = ed.child.try_wait().expect("waiting for the server") {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "the server did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Rust UDFs as the editor sees them, on `jobs/examples/udf/trips.flow`:
/// hover on a call shows the Rust signature, flowc's and the doc comment;
/// completion offers the job's functions; go to definition jumps to the
/// `fn` in `udfs/geo.rs`; references list its calls.
#[test]
fn an_editor_session_with_rust_udfs() {
    let path = root().join("jobs/examples/udf/trips.flow");
    let text = std::fs::read_to_string(&path).expect("reading trips.flow");
    let rust_path = root().join("jobs/examples/udf/udfs/geo.rs");
    let rust = std::fs::read_to_string(&rust_path).expect("reading geo.rs");
    let uri = file_uri(&path);
    let mut ed = Editor::start();
    ed.request("initialize", json!({"processId": null, "rootUri": null, "capabilities": {}}));
    ed.notify("initialized", json!({}));
    ed.open(&uri, &text);
    // The Rust file is read beside the job: it checks, but for the warning
    // about `unsigned`, which flowc cannot call (shown on the `use rust`).
    let diags = ed.diagnostics(&uri, 1);
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert_eq!(diags[0]["code"], "flow::udf::signature");
    assert_eq!(diags[0]["severity"], 2);

    let call = pos(&text, "geo_distance(", 0, 3);
    let h = ed.at("textDocument/hover", &uri, call);
    assert_eq!(
        h["contents"]["value"],
        "```rust\npub fn geo_distance(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64\n```\n\n\
         ```flow\ngeo_distance(lat1: double, lon1: double, lat2: double, lon2: double) -> double\n```\n\n\
         Great-circle distance in kilometres between two points given in degrees.\n\n\
         Rust function, `use rust \"udfs/geo.rs\"`"
    );
    let start = pos(&text, "geo_distance(", 0, 0);
    assert_eq!(h["range"], range(start, (start.0, start.1 + 12)));
    let h = ed.hover(&uri, pos(&text, "hour_of(at)", 0, 1));
    assert!(h.contains("pub fn hour_of(t: DateTime<Utc>) -> i32") && h.contains("hour_of(t: timestamp) -> int"), "{h}");
    assert!(h.contains("The hour of the day (UTC) of a timestamp."), "{h}");

    // Completion in the second `map`: the fields (`map` keeps its input's,
    // `id` replaced in place), the built-in functions and the job's.
    let at = pos(&text, "or_top(sub)", 0, 0);
    let c = ed.at("textDocument/completion", &uri, at);
    let items = c.as_array().expect("items");
    let labels: Vec<&str> = items.iter().filter_map(|i| i["label"].as_str()).collect();
    assert_eq!(labels[..9], ["id", "page", "lat", "lon", "at", "km", "tag", "hour", "sub"], "{labels:?}");
    for f in ["geo_distance", "label", "hour_of", "subpage", "or_top", "segments", "longest", "checked_id", "upper"] {
        assert!(labels.contains(&f), "{f}: {labels:?}");
    }
    assert!(!labels.contains(&"unsigned"), "{labels:?}");
    let seg = items.iter().find(|i| i["label"] == "segments").expect("segments");
    assert_eq!(seg["kind"], 3, "a function: {seg}");
    assert_eq!(seg["detail"], "segments(page: string) -> array<string>");
    let doc = seg["documentation"]["value"].as_str().unwrap_or("");
    assert!(doc.starts_with("```rust\npub fn segments(page: &str) -> Vec<String>\n```"), "{doc}");

    // Go to definition: the `fn`'s name in the Rust file.
    let def = ed.at("textDocument/definition", &uri, pos(&text, "label(page", 0, 2));
    assert_eq!(def["uri"], file_uri(&rust_path));
    let name = pos(&rust, "label(page: &str", 0, 0);
    assert_eq!(def["range"], range(name, (name.0, name.1 + 5)), "{def}");

    // References: the definition, then every call (`longest` is called once).
    let refs = ed.at("textDocument/references", &uri, pos(&text, "longest(parts)", 0, 0));
    let refs = refs.as_array().expect("locations");
    assert_eq!(refs.len(), 2, "{refs:?}");
    let name = pos(&rust, "longest(segments", 0, 0);
    assert_eq!(refs[0]["uri"], file_uri(&rust_path));
    assert_eq!(refs[0]["range"], range(name, (name.0, name.1 + 7)));
    let call = pos(&text, "longest(parts)", 0, 0);
    assert_eq!(refs[1]["uri"], uri.as_str());
    assert_eq!(refs[1]["range"], range(call, (call.0, call.1 + 7)));

    // A second call of `label`, typed: both calls are references.
    let end = pos(&text, "longest: longest(parts)", 0, 23);
    ed.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2},
               "contentChanges": [{"range": range(end, end), "text": ", again: label(\"p\", 2)"}]}),
    );
    let diags = ed.diagnostics(&uri, 2);
    assert_eq!(diags.len(), 1, "only the warning: {diags:#?}");
    let first = pos(&text, "label(page", 0, 0);
    let refs = ed.at("textDocument/references", &uri, first);
    let starts: Vec<&Value> = refs.as_array().expect("locations").iter().map(|l| &l["range"]["start"]).collect();
    let def = pos(&rust, "label(page: &str", 0, 0);
    let second = (end.0, end.1 + 9);
    let at = |p: (u32, u32)| json!({"line": p.0, "character": p.1});
    assert_eq!(starts, [&at(def), &at(first), &at(second)]);

    assert_eq!(ed.request("shutdown", Value::Null), Value::Null);
    ed.notify("exit", Value::Null);
}
