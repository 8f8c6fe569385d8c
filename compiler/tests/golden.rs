//! Golden tests of the whole compiler: every job file under `golden/ok/` and
//! `golden/err/` is compiled, and what flowc shows for it is compared with
//! the `.expected` file next to it.
//!
//! - `ok/NAME.flow` must compile. `ok/NAME.expected` holds the readable
//!   explain text (`flowc explain`), the warnings if any (rendered as the CLI
//!   renders them), and Flink's plan JSON (`flowc explain --format json`).
//!   The compiled plan must also survive `plan_file::to_bytes`/`from_bytes`.
//! - `err/NAME.flow` must fail. `err/NAME.expected` holds the rendered
//!   diagnostics exactly as `flowc check` prints them (file:line:col, the
//!   underlined span, the help). Known-poor messages are kept as they are
//!   until fixed, so that a change to them shows up here.
//!
//! Program arguments for a case go in a first-line comment, as on the
//! command line after the job file: `// args: -p 2 --checkpointing`. The
//! Rust files of `use rust` cases live in `ok/udfs/` and `err/udfs/`.
//!
//! To regenerate the expectations after an intended change, run
//!
//! ```text
//! FLOWC_BLESS=1 cargo test -p flowc-compiler --test golden
//! ```
//!
//! and review the diff of `compiler/tests/golden/` before committing.

use flowc_compiler::{compile, explain, plan_file, CheckOptions, ProgramArgs};
use flowc_dsl::SourceFile;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn bless() -> bool {
    std::env::var_os("FLOWC_BLESS").is_some_and(|v| v != "0" && !v.is_empty())
}

/// The `.flow` files of `golden/<sub>`, sorted.
fn cases(sub: &str) -> Vec<PathBuf> {
    let dir = golden_dir().join(sub);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "flow"))
        .collect();
    out.sort();
    out
}

/// The options a case asks for in its `// args:` first line.
fn options_of(text: &str) -> Result<CheckOptions, String> {
    let Some(args) = text.lines().next().and_then(|l| l.trim().strip_prefix("// args:")) else {
        return Ok(CheckOptions::default());
    };
    let mut words = args.split_whitespace();
    let mut rest = Vec::new();
    let mut parallelism = None;
    while let Some(w) = words.next() {
        if w == "-p" {
            let n = words.next().ok_or("`-p` needs a number")?;
            parallelism = Some(n.parse::<u32>().map_err(|e| format!("bad -p `{n}`: {e}"))?);
        } else {
            rest.push(w.to_string());
        }
    }
    let args = ProgramArgs::parse(&rest).map_err(|e| e.to_string())?;
    Ok(CheckOptions { args, parallelism, ..CheckOptions::default() })
}

/// What flowc shows for one case, and whether it compiled.
fn run_case(path: &Path) -> (bool, String) {
    let text = std::fs::read_to_string(path).expect("golden files are UTF-8");
    let name = path.strip_prefix(golden_dir()).expect("under golden/").display().to_string();
    let src = SourceFile::new(name, text);
    let mut options = match options_of(&src.text) {
        Ok(o) => o,
        Err(e) => return (false, format!("error: {e}\n")),
    };
    // `use rust` files are read as the CLI reads them, relative to the case,
    // and named relative to golden/ (as the case is).
    let parsed = flowc_dsl::parse(&src.text);
    options.rust_files = flowc_dsl::load::rust_imports(&golden_dir().join(&src.name), &parsed.file)
        .into_iter()
        .map(|(k, v)| {
            let v = v.map(|f| {
                let name =
                    Path::new(&f.name).strip_prefix(golden_dir()).map_or(f.name.clone(), |p| p.display().to_string());
                std::sync::Arc::new(SourceFile::new(name, f.text.clone()))
            });
            (k, v)
        })
        .collect();
    match compile(&src, &options) {
        Ok(c) => {
            let mut out = String::new();
            out.push_str("# explain\n");
            out.push_str(&explain::text(&c.graph));
            if !c.warnings.is_empty() {
                out.push_str("\n# warnings\n");
                out.push_str(&src.render_all(&c.warnings));
            }
            out.push_str("\n# plan.json\n");
            let json = serde_json::to_string_pretty(&explain::flink_plan(&c.graph, None)).expect("plan serialises");
            let _ = writeln!(out, "{json}");
            // The binary plan must read back to the same graph.
            let back = plan_file::from_bytes(&plan_file::to_bytes(&c.graph))
                .unwrap_or_else(|e| panic!("{}: the plan does not read back: {e}", src.name));
            assert_eq!(
                explain::text(&back),
                explain::text(&c.graph),
                "{}: the plan changed on the way through bytes",
                src.name
            );
            let back = plan_file::from_json(&plan_file::to_json(&c.graph))
                .unwrap_or_else(|e| panic!("{}: the JSON plan does not read back: {e}", src.name));
            assert_eq!(
                explain::text(&back),
                explain::text(&c.graph),
                "{}: the plan changed on the way through JSON",
                src.name
            );
            (true, out)
        }
        Err(diags) => (false, src.render_all(&diags)),
    }
}

/// The first line where two texts differ, for a readable failure.
fn first_difference(expected: &str, actual: &str) -> String {
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    for i in 0..e.len().max(a.len()) {
        if e.get(i) != a.get(i) {
            return format!(
                "line {}:\n  expected: {}\n  actual:   {}",
                i + 1,
                e.get(i).map_or("<end of file>".to_string(), |l| format!("{l:?}")),
                a.get(i).map_or("<end of file>".to_string(), |l| format!("{l:?}")),
            );
        }
    }
    "only in line endings".to_string()
}

fn check_dir(sub: &str, should_compile: bool) -> usize {
    let mut failures = Vec::new();
    let files = cases(sub);
    for path in &files {
        let (compiled, actual) = run_case(path);
        let shown = path.strip_prefix(golden_dir()).expect("under golden/").display().to_string();
        if compiled != should_compile {
            let what = if should_compile { "should compile but failed" } else { "should fail but compiled" };
            failures.push(format!("{shown}: {what}:\n{actual}"));
            continue;
        }
        let expected_path = path.with_extension("expected");
        if bless() {
            std::fs::write(&expected_path, &actual).expect("write expectation");
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!(
                "{shown}: output differs from {}; {}\n--- actual output ---\n{actual}",
                expected_path.file_name().and_then(|n| n.to_str()).unwrap_or("?"),
                first_difference(&expected, &actual)
            )),
            Err(_) => failures.push(format!("{shown}: no .expected file (run with FLOWC_BLESS=1)\n{actual}")),
        }
    }
    // An expectation without its job file is left over from a renamed case.
    let dir = golden_dir().join(sub);
    for e in std::fs::read_dir(&dir).expect("golden dir").flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "expected") && !p.with_extension("flow").exists() {
            failures.push(format!("{}: stale expectation without a .flow file", p.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} golden cases in {sub}/ failed:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
    files.len()
}

#[test]
fn ok_cases_compile_to_the_expected_plans() {
    let n = check_dir("ok", true);
    assert!(n >= 18, "only {n} ok cases");
}

#[test]
fn err_cases_give_the_expected_diagnostics() {
    let n = check_dir("err", false);
    assert!(n >= 12, "only {n} error cases");
}

/// The golden click_count case is the real job: the file in `jobs/`, with
/// the program arguments the playground's client passes.
#[test]
fn click_count_case_is_the_real_job() {
    let golden = std::fs::read_to_string(golden_dir().join("ok/click_count.flow")).expect("golden click_count");
    let real = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../jobs/click_count.flow"))
        .expect("jobs/click_count.flow");
    let (first, rest) = golden.split_once('\n').expect("an args line");
    assert_eq!(first, "// args: -p 2 --bootstrap.servers localhost:9092 --checkpointing --event-time");
    assert_eq!(
        rest, real,
        "compiler/tests/golden/ok/click_count.flow must be jobs/click_count.flow plus its args line"
    );
}

/// The four vertices of the playground's web UI, each at parallelism 2.
#[test]
fn click_count_has_the_playground_vertices() {
    let path = golden_dir().join("ok/click_count.flow");
    let text = std::fs::read_to_string(&path).expect("golden click_count");
    let src = SourceFile::new("click_count.flow", text);
    let c = compile(&src, &options_of(&src.text).expect("args")).expect("compiles");
    let plan = explain::flink_plan(&c.graph, None);
    let shown: Vec<(String, u32, Vec<String>)> = plan
        .nodes
        .iter()
        .map(|n| (n.description.clone(), n.parallelism, n.inputs.iter().map(|i| i.ship_strategy.clone()).collect()))
        .collect();
    let v = |d: &str, s: &[&str]| (d.to_string(), 2, s.iter().map(|x| x.to_string()).collect::<Vec<_>>());
    assert_eq!(
        shown,
        vec![
            v("ClickEventStatistics Sink", &["FORWARD"]),
            v("ClickEvent Counter", &["HASH"]),
            v("Timestamps/Watermarks", &["FORWARD"]),
            v("ClickEvent Source", &[]),
        ]
    );
    assert_eq!(c.graph.settings.checkpoint_interval_ms, Some(1000));
}
