//! The playground tutorial, run as written: for each page
//! (`playground/README.md` and its Chinese version `README.zh.md`) the
//! test reads the fenced command blocks in order, runs each against a live
//! playground, and checks what the page promises. A page that drifts from
//! the product fails.
//!
//! Run by `.ci/run` after `cargo build -p flowc -p flowc-playground`:
//! `cargo test --test tutorial -- --ignored` (it needs the playground's
//! binaries, which `cargo test` does not build). Without `--ignored`, the
//! tests here check the pages alone: that the Chinese page has the English
//! page's commands, marks and expected outputs, in order, and the
//! matching of expected blocks.
//!
//! How a page marks its blocks, with HTML comments a reader does not see:
//!
//! - before a command block: nothing (run it once; it must exit 0),
//!   `<!-- test: skip: why -->`, `<!-- test: run for 60s -->` (a command that
//!   runs until Ctrl-C: stopped after that long, or as soon as its output
//!   matches the expected block below; its output so far is checked), `<!-- test: until expected, 90s -->` (run again until the
//!   expected block below matches);
//! - before an output block: `<!-- expect -->` (each line of the block, in
//!   order, among the output's lines; `…` lines stand for anything) or
//!   `<!-- expect: numbers vary -->` (the same with every number free:
//!   times, counts, pids). Runs of spaces count as one. A placeholder such
//!   as `<job-id>` matches one word and binds it: later commands use the
//!   value. Output blocks without a mark illustrate and are not checked.
//! - before a command block: `<!-- test: variant --ha --s3 -->` (the flags
//!   of `play.sh`): the playground so far is taken down and a fresh one
//!   made for this variant; the block (`bash playground/play.sh --ha`)
//!   starts it, and the blocks after it run against it, up to the next
//!   variant mark or the page's end. The variables bound so far (`<job-id>`)
//!   are forgotten with the playground they came from.
//!
//! Each page gets a fresh playground on free ports, with its own Kafka
//! (the shared broker would mix the fixed topics `input` and `output` of
//! concurrent runs) and its own directories, in a scratch copy of the
//! repository's job, config and scripts (`kafka.sh`, `play.sh`,
//! `zookeeper.sh`, `s3.sh`; so that paths show as on the page). The
//! commands are rewritten before they run, the page is not: `9092`, `9093`,
//! `8081`, `6123` become the test's ports (and a variant's `8082`, `6124`
//! of the standby JobManager, `2181` of ZooKeeper, `9000` of the S3 server),
//! `/tmp/flowc-…` its directories, `target/release/` the binaries under
//! test (`target/debug/`), and `bash playground/play.sh` (build, then
//! `playground up -d`) is `playground up -d`, the build being done. A
//! variant runs `play.sh` itself, told by its environment
//! (`FLOWC_PLAYGROUND_BIN`, `FLOWC_PLAYGROUND_*_PORT`) not to build and
//! which ports to take, and to stop ZooKeeper and the S3 server should the
//! test process die (`FLOWC_PLAYGROUND_WATCH_PID`). A playground is taken
//! down at its end (`play.sh --ha --s3 down -v` for a variant), and what of
//! a variant is still alive after that (the standby JobManager, ZooKeeper,
//! the S3 server) is killed by pid.
//!
//! `FLOWC_TUTORIAL_PAGES=en` walks one page only, and
//! `FLOWC_TUTORIAL_VARIANTS_ONLY=1` only the variants of each (for working
//! on a page; `.ci/run` sets neither).
//!
//! ZooKeeper's jars (`zookeeper.sh fetch`, by `play.sh --ha`, from Maven
//! Central once) and the S3 server (`s3.sh install`, which `.ci/run` runs)
//! come into `~/.cache/flowc`.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A fenced block of a page, with the mark before it.
#[derive(Debug, Clone)]
struct Block {
    line: usize,
    info: String,
    text: String,
    mark: Option<String>,
}

fn blocks(page: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut mark: Option<String> = None;
    let mut lines = page.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let t = line.trim();
        if let Some(m) = t.strip_prefix("<!--").and_then(|m| m.strip_suffix("-->")) {
            mark = Some(m.trim().to_string());
            continue;
        }
        if let Some(info) = t.strip_prefix("```") {
            let indent = line.len() - line.trim_start().len();
            let mut text = String::new();
            for (_, l) in lines.by_ref() {
                if l.trim() == "```" {
                    break;
                }
                text.push_str(l.get(indent..).unwrap_or(l.trim_start()));
                text.push('\n');
            }
            out.push(Block { line: n + 1, info: info.trim().to_string(), text, mark: mark.take() });
            continue;
        }
        if !t.is_empty() {
            mark = None;
        }
    }
    out
}

fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n).map(|_| TcpListener::bind("127.0.0.1:0").expect("bind")).collect();
    held.iter().map(|l| l.local_addr().expect("addr").port()).collect()
}

/// Two free consecutive ports (Kafka's client and controller ports) of
/// four digits, as the page's 9092 and 9093: `playground ps` cuts its
/// command column at a fixed width, so a longer port would cut it elsewhere.
fn free_pair() -> u16 {
    let mut seed = u64::from(std::process::id())
        ^ std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    for _ in 0..500 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let p = 2000 + (seed >> 33) as u16 % 7998;
        if TcpListener::bind(("127.0.0.1", p)).is_ok() && TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no two free consecutive ports");
}

struct Playground {
    /// `play.sh`'s flags of a variant (`--ha`, `--s3`); empty for the
    /// playground of the page's start.
    variant: Vec<String>,
    scratch: PathBuf,
    /// A copy of the parts of the repository the commands read (the job,
    /// the config with the test's ports, `kafka.sh`): the commands run
    /// there, and the launcher takes it for the repository (`FLOWC_ROOT`),
    /// so that it shows the same relative paths as on the page.
    root: PathBuf,
    /// Rewrites from the page's world to the test's.
    rewrites: Vec<(String, String)>,
    env: Vec<(String, String)>,
}

impl Playground {
    fn new(name: &str, variant: &[String]) -> Playground {
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_flowc")).parent().expect("bin dir").to_path_buf();
        for b in ["flowc", "playground", "clickevent-check", "clickevent-generator"] {
            assert!(
                bin.join(b).is_file(),
                "{} is missing: build it first with `cargo build -p flowc -p flowc-playground`",
                bin.join(b).display()
            );
        }
        let scratch = std::env::temp_dir().join(format!("flowc-tutorial-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        let root_copy = scratch.join("repo");
        for d in ["jobs", "playground/conf", "playground/kafka", "playground/zookeeper", "playground/s3"] {
            std::fs::create_dir_all(root_copy.join(d)).expect("scratch");
        }
        for f in [
            "jobs/click_count.flow",
            "playground/play.sh",
            "playground/kafka/kafka.sh",
            "playground/zookeeper/zookeeper.sh",
            "playground/s3/s3.sh",
        ] {
            std::fs::copy(root().join(f), root_copy.join(f)).expect("copying into the scratch repository");
        }
        let kafka = free_pair();
        let ports = free_ports(6);
        let (rest, rpc, standby_rest, standby_rpc, zookeeper, s3) =
            (ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]);
        let dir = |name: &str| scratch.join(name).display().to_string();
        // In order, each on what the ones before left: Kafka's last, since
        // its four-digit ports may be one of the page's others (never the
        // other way round: free ports are above 32767).
        let mut rewrites: Vec<(String, String)> = vec![
            ("/tmp/flowc-checkpoints-directory".into(), dir("checkpoints")),
            ("/tmp/flowc-savepoints-directory".into(), dir("savepoints")),
            ("/tmp/flowc-web-upload-directory".into(), dir("uploads")),
            // Also the variants' `/tmp/flowc-playground-extras`.
            ("/tmp/flowc-playground".into(), dir("state")),
            (":8081".into(), format!(":{rest}")),
            (":6123".into(), format!(":{rpc}")),
            (":8082".into(), format!(":{standby_rest}")),
            (":6124".into(), format!(":{standby_rpc}")),
            (":2181".into(), format!(":{zookeeper}")),
            (":9000".into(), format!(":{s3}")),
            (":9092".into(), format!(":{kafka}")),
            (":9093".into(), format!(":{}", kafka + 1)),
            ("--port 9092".into(), format!("--port {kafka}")),
            ("rest.port: 8081".into(), format!("rest.port: {rest}")),
            ("jobmanager.rpc.port: 6123".into(), format!("jobmanager.rpc.port: {rpc}")),
        ];
        let mut conf = std::fs::read_to_string(root().join("playground/conf/flowc.yaml")).expect("config");
        for (from, to) in &rewrites {
            conf = conf.replace(from, to);
        }
        std::fs::write(root_copy.join("playground/conf/flowc.yaml"), conf).expect("writing the config");
        let pg = format!("{} --kafka-port {kafka}", bin.join("playground").display());
        if variant.is_empty() {
            rewrites.push(("bash playground/play.sh".to_string(), format!("{pg} up -d")));
        }
        rewrites.extend([
            ("target/release/playground".to_string(), pg),
            ("target/release/".to_string(), format!("{}/", bin.display())),
        ]);
        let env = [
            ("FLOWC_ROOT", root_copy.display().to_string()),
            ("FLOWC_PLAYGROUND_DIR", dir("state")),
            ("FLOWC_CONF_DIR", root_copy.join("playground/conf").display().to_string()),
            ("FLOWC_BIN", bin.join("flowc").display().to_string()),
            // For `play.sh` (a variant's): no build, the test's ports, and
            // its extras stopped should this process die.
            ("FLOWC_PLAYGROUND_BIN", bin.display().to_string()),
            ("FLOWC_PLAYGROUND_KAFKA_PORT", kafka.to_string()),
            ("FLOWC_PLAYGROUND_STANDBY_REST_PORT", standby_rest.to_string()),
            ("FLOWC_PLAYGROUND_STANDBY_RPC_PORT", standby_rpc.to_string()),
            ("FLOWC_PLAYGROUND_ZK_PORT", zookeeper.to_string()),
            ("FLOWC_PLAYGROUND_S3_PORT", s3.to_string()),
            ("FLOWC_PLAYGROUND_WATCH_PID", std::process::id().to_string()),
        ]
        .map(|(k, v)| (k.to_string(), v))
        .to_vec();
        Playground { variant: variant.to_vec(), scratch, root: root_copy, rewrites, env }
    }

    fn rewrite(&self, text: &str) -> String {
        let mut t = text.to_string();
        for (from, to) in &self.rewrites {
            t = t.replace(from, to);
        }
        t
    }

    /// Runs a command block: its output (stdout and stderr) and whether it
    /// exited 0. With `limit`, it is stopped after that long.
    fn run(&self, script: &str, limit: Option<Duration>) -> (String, bool) {
        self.run_until(script, limit, &|_| false)
    }

    /// As `run`; a command with a `limit` is also stopped as soon as its
    /// output so far satisfies `done`.
    fn run_until(&self, script: &str, limit: Option<Duration>, done: &dyn Fn(&str) -> bool) -> (String, bool) {
        let out_path = self.scratch.join("out.txt");
        let out = std::fs::File::create(&out_path).expect("output file");
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(format!("set -e\n{script}"))
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("out"))
            .stderr(out)
            .process_group(0);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("bash");
        let deadline = Instant::now() + limit.unwrap_or(Duration::from_secs(300));
        let ok = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status.success();
            }
            let enough = limit.is_some() && {
                let mut so_far = String::new();
                let _ = std::fs::File::open(&out_path).and_then(|mut f| f.read_to_string(&mut so_far));
                done(&so_far)
            };
            if enough || Instant::now() >= deadline {
                // The whole group: `logs -f`, a console consumer and its JVM.
                let _ = Command::new("kill").args(["-TERM", "--", &format!("-{}", child.id())]).status();
                std::thread::sleep(Duration::from_millis(500));
                let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
                let _ = child.wait();
                assert!(limit.is_some(), "the command did not end in 300 s:\n{script}");
                break true;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut text = String::new();
        let _ = std::fs::File::open(&out_path).and_then(|mut f| f.read_to_string(&mut text));
        (text, ok)
    }
}

use std::os::unix::process::CommandExt as _;

impl Drop for Playground {
    fn drop(&mut self) {
        // A variant's own processes, as `play.sh` recorded them, with what
        // their command lines must hold to still be them.
        let extras = self.scratch.join("state-extras");
        let s3_port = self.env.iter().find(|(k, _)| k == "FLOWC_PLAYGROUND_S3_PORT").map(|(_, v)| v.clone());
        let leftovers: Vec<(String, String)> = [
            ("jobmanager-standby.pid", self.scratch.display().to_string()),
            ("zookeeper/zookeeper.pid", self.scratch.display().to_string()),
            ("s3/s3.pid", s3_port.unwrap_or_default()),
        ]
        .into_iter()
        .filter_map(|(f, needle)| Some((std::fs::read_to_string(extras.join(f)).ok()?.trim().to_string(), needle)))
        .collect();
        let down = if self.variant.is_empty() {
            "target/release/playground down -v".to_string()
        } else {
            format!("bash playground/play.sh {} down -v", self.variant.join(" "))
        };
        let _ = self.run(&self.rewrite(&down), Some(Duration::from_secs(120)));
        // `down` sends them SIGTERM; the standby JobManager first leaves the
        // election, the S3 server takes a moment.
        let ours = |pid: &str, needle: &str| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            !needle.is_empty() && String::from_utf8_lossy(&cmdline).contains(needle)
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while leftovers.iter().any(|(pid, needle)| ours(pid, needle)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        for (pid, needle) in leftovers {
            if ours(&pid, &needle) {
                eprintln!("tutorial: pid {pid} outlived `{down}` by 15 s; killing it");
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// Runs of spaces count as one, and a ruler (`-----`) of any length as one
/// of three: both depend on the width of the columns.
fn squash(s: &str) -> String {
    s.split_whitespace()
        .map(|w| if w.len() >= 3 && w.bytes().all(|b| b == b'-') { "---" } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

fn numbers_free(s: &str) -> String {
    let mut out = String::new();
    let mut in_num = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !in_num {
                out.push('#');
            }
            in_num = true;
        } else {
            in_num = false;
            out.push(c);
        }
    }
    out
}

/// Where the first placeholder (`<name>`: lower-case letters and `-`) of
/// `e` opens and closes; other `<…>` (XML's `<Key>`) are text.
fn placeholder(e: &str) -> Option<(usize, usize)> {
    let mut from = 0;
    while let Some(i) = e[from..].find('<').map(|i| from + i) {
        if let Some(j) = e[i..].find('>').map(|j| i + j) {
            let name = &e[i + 1..j];
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
                return Some((i, j));
            }
        }
        from = i + 1;
    }
    None
}

/// Matches one expected line against one output line: placeholders
/// (`<name>`) match a word and are returned bound.
fn match_line(expected: &str, actual: &str) -> Option<BTreeMap<String, String>> {
    let mut binds = BTreeMap::new();
    let (mut e, mut a) = (expected, actual);
    loop {
        match placeholder(e) {
            Some((i, j)) => {
                if !a.starts_with(&e[..i]) {
                    return None;
                }
                let name = e[i + 1..j].to_string();
                a = &a[i..];
                let rest = &e[j + 1..];
                // The value runs to what follows the placeholder.
                let stop = rest.chars().next();
                let end = match stop {
                    Some(c) => a.find(|x: char| x == c || x.is_whitespace()).unwrap_or(a.len()),
                    None => a.find(char::is_whitespace).unwrap_or(a.len()),
                };
                if end == 0 {
                    return None;
                }
                binds.insert(name, a[..end].to_string());
                a = &a[end..];
                e = rest;
            }
            _ => return (e == a).then_some(binds),
        }
    }
}

/// Checks an expected block against the output: each expected line, in
/// order, matches some output line.
fn expect(expected: &str, output: &str, numbers_vary: bool) -> Result<BTreeMap<String, String>, String> {
    let norm = |s: &str| if numbers_vary { numbers_free(&squash(s)) } else { squash(s) };
    // With numbers free, a placeholder's value is mangled: nothing is bound.
    let actual: Vec<String> = output.lines().map(norm).collect();
    let mut binds = BTreeMap::new();
    let mut from = 0;
    for line in expected.lines().map(norm).filter(|l| !l.is_empty() && l != "…") {
        let found = actual[from..].iter().enumerate().find_map(|(i, a)| match_line(&line, a).map(|b| (i, b)));
        match found {
            Some((i, b)) => {
                if !numbers_vary {
                    binds.extend(b);
                }
                from += i + 1;
            }
            None => return Err(format!("expected the line\n    {line}\nin the output (after line {from}):\n{output}")),
        }
    }
    Ok(binds)
}

/// Runs one page against a playground of its own (`name` tells the
/// scratch directories apart), and each of its variants against another.
fn walk(page_path: &str, name: &str) {
    let page = std::fs::read_to_string(root().join(page_path)).expect("reading the page");
    let blocks = blocks(&page);
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    // Made at the first command that runs (a variant's own at its mark).
    let mut playground: Option<Playground> = None;
    let mut section = (String::from("the playground"), Instant::now(), 0);
    let variants_only = std::env::var_os("FLOWC_TUTORIAL_VARIANTS_ONLY").is_some_and(|v| v == "1");
    let mut i = 0;
    let mut ran = 0;
    while i < blocks.len() {
        let b = &blocks[i];
        i += 1;
        if !matches!(b.info.as_str(), "bash" | "sh") {
            continue;
        }
        let mark = b.mark.clone().unwrap_or_default();
        if mark.starts_with("test: skip") {
            continue;
        }
        if let Some(flags) = variant(&mark) {
            assert!(
                !flags.is_empty() && flags.iter().all(|f| f.starts_with("--")),
                "{page_path}:{}: a variant is play.sh's flags, like `test: variant --ha`",
                b.line
            );
            if playground.is_some() {
                let took = section.1.elapsed().as_secs_f64();
                eprintln!("{page_path}: {}: {} commands in {took:.0} s", section.0, ran - section.2);
            }
            // One playground at a time: the one before goes down first.
            drop(playground.take());
            vars.clear();
            playground = Some(Playground::new(&format!("{name}{}", flags.concat()), &flags));
            section = (format!("the variant {}", flags.join(" ")), Instant::now(), ran);
        } else if playground.is_none() {
            if variants_only {
                continue;
            }
            playground = Some(Playground::new(name, &[]));
            section.1 = Instant::now();
        }
        let pg = playground.as_ref().expect("a playground");
        let expected = blocks.get(i).filter(|n| n.mark.as_deref().is_some_and(|m| m.starts_with("expect")));
        let mut script = pg.rewrite(&b.text);
        for (k, v) in vars.iter() {
            script = script.replace(&format!("<{k}>"), v);
        }
        assert!(!script.contains("<job-id>"), "{page_path}:{}: no <job-id> known yet:\n{script}", b.line);
        let limit = mark.strip_prefix("test: run for ").and_then(|s| s.strip_suffix('s')).and_then(|s| s.parse().ok());
        let until = mark
            .strip_prefix("test: until expected, ")
            .and_then(|s| s.strip_suffix('s'))
            .and_then(|s| s.parse().ok())
            .map(Duration::from_secs);
        let started = Instant::now();
        loop {
            let check = |output: &str| match expected {
                Some(e) => {
                    let numbers_vary = e.mark.as_deref().is_some_and(|m| m.contains("numbers vary"));
                    expect(&pg.rewrite(&e.text), output, numbers_vary)
                }
                None => Ok(BTreeMap::new()),
            };
            // A command that runs until stopped ends early once its output
            // says what the page says (a console consumer's JVM may take
            // long to start on a loaded machine).
            let done = |output: &str| expected.is_some() && check(output).is_ok();
            let (output, ok) = pg.run_until(&script, limit.map(Duration::from_secs), &done);
            let checked = check(&output);
            let failed = match (ok || limit.is_some(), checked) {
                (true, Ok(binds)) => {
                    vars.extend(binds);
                    // `expect; set name = template`: a value the page
                    // derives from what it printed (a savepoint's path).
                    if let Some((name, template)) = expected
                        .and_then(|e| e.mark.as_deref())
                        .and_then(|m| m.split_once("; set "))
                        .and_then(|(_, s)| s.split_once(" = "))
                    {
                        let mut value = pg.rewrite(template);
                        for (k, v) in vars.iter() {
                            value = value.replace(&format!("<{k}>"), v);
                        }
                        vars.insert(name.trim().to_string(), value);
                    }
                    None
                }
                (false, _) => Some(format!("the command failed:\n{output}")),
                (true, Err(e)) => Some(e),
            };
            match (failed, until) {
                (None, _) => break,
                (Some(_), Some(u)) if started.elapsed() < u => std::thread::sleep(Duration::from_secs(3)),
                (Some(why), _) => panic!("{page_path}:{}: `{}`: {why}", b.line, b.text.trim()),
            }
        }
        if expected.is_some() {
            i += 1;
        }
        ran += 1;
    }
    assert!(ran > 0, "{page_path}: no command ran");
    let took = section.1.elapsed().as_secs_f64();
    eprintln!("{page_path}: {}: {} commands in {took:.0} s", section.0, ran - section.2);
    eprintln!("{page_path}: {ran} commands ran, their outcomes as the page says");
}

/// The flags of a `test: variant --ha --s3` mark.
fn variant(mark: &str) -> Option<Vec<String>> {
    mark.strip_prefix("test: variant").map(|flags| flags.split_whitespace().map(str::to_string).collect())
}

#[test]
#[ignore = "run by .ci/run after `cargo build -p flowc -p flowc-playground`: cargo test --test tutorial -- --ignored"]
fn the_tutorials_do_what_they_say() {
    // A fresh playground for each page: each starts one, as a reader does.
    let only = std::env::var("FLOWC_TUTORIAL_PAGES").unwrap_or_default();
    for (name, page) in PAGES {
        if only.is_empty() || only.split(',').any(|p| p == name) {
            walk(page, name);
        }
    }
}

const PAGES: [(&str, &str); 2] = [("en", "playground/README.md"), ("zh", "playground/README.zh.md")];

/// Each variant mark is followed by the `play.sh` of its flags, and the
/// pages have the same variants in the same order.
#[test]
fn variants_start_their_playground() {
    let mut seen = Vec::new();
    for (_, page_path) in PAGES {
        let page = std::fs::read_to_string(root().join(page_path)).expect("reading the page");
        let mut flags_of_page = Vec::new();
        for b in blocks(&page) {
            let Some(flags) = b.mark.as_deref().and_then(variant) else { continue };
            let start = format!("bash playground/play.sh {}", flags.join(" "));
            assert_eq!(b.text.trim(), start, "{page_path}:{}: a variant mark starts its playground", b.line);
            flags_of_page.push(flags);
        }
        seen.push(flags_of_page);
    }
    assert!(!seen[0].is_empty(), "the English page has its variants");
    assert_eq!(seen[0], seen[1], "both pages, the same variants");
}

/// The Chinese page keeps the English page's commands and promised
/// outputs: the same command blocks (`bash`/`sh`) with the same marks, and
/// the same `<!-- expect … -->` blocks, in the same order. Only prose
/// differs (nothing is marked as one page's own).
#[test]
fn both_pages_have_the_same_commands_and_outputs() {
    let steps = |page_path: &str| -> Vec<(usize, String, String)> {
        let page = std::fs::read_to_string(root().join(page_path)).expect("reading the page");
        blocks(&page)
            .into_iter()
            .filter(|b| {
                matches!(b.info.as_str(), "bash" | "sh") || b.mark.as_deref().is_some_and(|m| m.starts_with("expect"))
            })
            .map(|b| (b.line, b.mark.unwrap_or_default(), b.text))
            .collect()
    };
    let [(_, en_path), (_, zh_path)] = PAGES;
    let (en, zh) = (steps(en_path), steps(zh_path));
    assert!(en.len() > 50, "{} steps on the English page", en.len());
    for (i, (e, z)) in en.iter().zip(&zh).enumerate() {
        assert_eq!(
            (&e.1, &e.2),
            (&z.1, &z.2),
            "step {} differs: {en_path}:{} and {zh_path}:{} (a mark, then the block)",
            i + 1,
            e.0,
            z.0
        );
    }
    assert_eq!(en.len(), zh.len(), "both pages have as many commands and expected outputs");
}

#[test]
fn expected_blocks_match_with_placeholders() {
    let b = expect(
        "Starting execution of program\nJob has been submitted with JobID <job-id>\n",
        "noise\nStarting execution of program\nJob has been submitted with JobID 4f2a\n",
        false,
    )
    .expect("matches");
    assert_eq!(b.get("job-id").map(String::as_str), Some("4f2a"));
    assert!(expect("OK: 7 windows", "OK: 9 windows", false).is_err());
    assert!(expect("OK: 7 windows\n…\n", "OK: 9   windows", true).is_ok());
    let b =
        expect("Path: file:/tmp/x/savepoint-<short-job-id>-<random>", "Path: file:/tmp/x/savepoint-4f2a-0011", false)
            .expect("matches");
    assert_eq!(b.get("random").map(String::as_str), Some("0011"));
    // XML's tags are text, before and after a placeholder.
    let b = expect(
        "<Key>checkpoints/<job-id>/chk-<n>/_metadata</Key>",
        "<Key>checkpoints/4f2a/chk-7/0a-0.state</Key>\n<Key>checkpoints/4f2a/chk-7/_metadata</Key>",
        false,
    )
    .expect("matches");
    assert_eq!((b["job-id"].as_str(), b["n"].as_str()), ("4f2a", "7"));
    assert!(expect("<Key>checkpoints/<job-id>/_metadata</Key>", "<Key>checkpoints/4f2a/chk-7</Key>", false).is_err());
}
