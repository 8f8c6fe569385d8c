//! End to end: paths a REST caller or a job names stay under the allowed
//! roots (`state.savepoints.dir`, `state.checkpoints.dir`,
//! `flowc.security.allowed-directories`; here the test's scratch directory).
//! Savepoint and stop targets, restore paths, and every path a job reads or
//! writes (file sinks and sources, a file source's `dead_letter_path`, a
//! lookup join's file side) that resolve anywhere else — by `..`, by an absolute path, through a symbolic link,
//! or by a name that only starts like a root — are refused with 400 naming
//! the roots, and nothing is written there.

mod support;

use flowc_runtime::client::http;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::cluster::{flowc_bin, Cluster, Scratch};

fn steady_job() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jobs/steady_clicks.flow")
}

fn post_json(cluster: &Cluster, path: &str, body: &Value) -> (u16, String) {
    let body = body.to_string();
    let r = http::request(
        "POST",
        &cluster.rest_addr,
        path,
        Some(("application/json", body.as_bytes())),
        Duration::from_secs(10),
    )
    .expect("POST");
    (r.status, r.text())
}

/// A directory next to the scratch directory, outside every root, removed
/// when dropped: `<scratch>-<suffix>`.
fn outside(cluster: &Cluster, suffix: &str) -> Scratch {
    Scratch(PathBuf::from(format!("{}-{suffix}", cluster.scratch.0.display())))
}

/// Everything under `dir`, or nothing if it does not exist.
fn contents(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            out.push(e.path());
            out.extend(contents(&e.path()));
        }
    }
    out
}

fn assert_refused(status: u16, body: &str, cluster: &Cluster, what: &str) {
    assert_eq!(status, 400, "{what}: {body}");
    assert!(body.contains("outside the allowed directories"), "{what}: {body}");
    assert!(body.contains(&cluster.scratch.0.display().to_string()), "{what}: the roots are named: {body}");
}

#[test]
fn savepoint_and_stop_targets_outside_the_roots_are_refused_and_nothing_is_written_there() {
    let cluster = Cluster::start("paths-sp", 1, 2);
    let id = cluster.submit(&steady_job(), &["-p", "2"]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    let out = outside(&cluster, "outside");
    std::fs::create_dir_all(&out.0).expect("outside dir");
    let climbing = outside(&cluster, "climbed");
    let alike = outside(&cluster, "evil");
    let link = cluster.scratch.0.join("link-out");
    std::os::unix::fs::symlink(&out.0, &link).expect("a link inside the root that points out");
    let name = |p: &Path| p.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();

    let targets = [
        (
            "`..` out of the savepoint directory",
            format!("{}/savepoints/../../{}", cluster.scratch.0.display(), name(&climbing.0)),
        ),
        ("an absolute directory elsewhere", out.0.display().to_string()),
        ("the same with Flink's file: prefix", format!("file:{}", out.0.display())),
        ("a link inside a root pointing out", link.display().to_string()),
        ("a name that only starts like the root", alike.0.display().to_string()),
    ];
    for (what, target) in &targets {
        let (status, body) =
            post_json(&cluster, &format!("/jobs/{id}/savepoints"), &json!({ "target-directory": target }));
        assert_refused(status, &body, &cluster, what);
        let (status, body) = post_json(&cluster, &format!("/jobs/{id}/stop"), &json!({ "targetDirectory": target }));
        assert_refused(status, &body, &cluster, what);
    }
    assert_eq!(contents(&out.0), Vec::<PathBuf>::new(), "nothing written outside");
    assert!(!climbing.0.exists() && !alike.0.exists());
    assert_eq!(cluster.job(&id)["state"], "RUNNING", "a refused stop leaves the job running");
    // `flowc savepoint` says why.
    let o = cluster.flowc(&["savepoint", &id, &out.0.display().to_string()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("outside the allowed directories"), "{o:?}");

    // Inside: the default directory and another under an allowed root.
    let mine = cluster.scratch.0.join("mine");
    for target in [Value::Null, json!(mine.display().to_string())] {
        let (status, body) =
            post_json(&cluster, &format!("/jobs/{id}/savepoints"), &json!({ "target-directory": target }));
        assert_eq!(status, 202, "{body}");
        let trigger: Value = serde_json::from_str(&body).expect("json");
        let trigger = trigger["request-id"].as_str().expect("request-id").to_string();
        let location = cluster.rest().wait_for_savepoint(&id, &trigger, Duration::from_secs(30)).expect("savepoint");
        let dir = PathBuf::from(location.strip_prefix("file:").unwrap_or(&location));
        assert!(dir.join("_metadata").is_file(), "{location}");
        assert!(dir.starts_with(&cluster.scratch.0), "{location}");
    }
    assert!(mine.read_dir().expect("mine").count() == 1);
}

#[test]
fn restore_paths_outside_the_roots_are_refused() {
    let cluster = Cluster::start("paths-restore", 1, 2);
    let id = cluster.submit(&steady_job(), &["-p", "2"]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    let o = cluster.flowc(&["savepoint", &id]);
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let good = text.lines().find_map(|l| l.strip_prefix("Savepoint completed. Path: file:")).expect("a savepoint");
    // A valid savepoint, copied outside the roots.
    let out = outside(&cluster, "outside");
    std::fs::create_dir_all(&out.0).expect("dir");
    for e in std::fs::read_dir(good).expect("savepoint").flatten() {
        std::fs::copy(e.path(), out.0.join(e.file_name())).expect("copy");
    }
    let jobs = || cluster.rest().get("/jobs").expect("jobs")["jobs"].as_array().map_or(0, Vec::len);
    let before = jobs();
    let sp = out.0.display().to_string();
    let o = cluster.flowc(&["run", "-d", "-s", &sp, &steady_job().display().to_string(), "-p", "2"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("cannot restore from") && err.contains("outside the allowed directories"), "{err}");
    assert!(err.contains(&cluster.scratch.0.display().to_string()), "{err}");
    // The same through REST, with `..` from inside a root.
    let climbing = format!(
        "{}/savepoints/../../{}",
        cluster.scratch.0.display(),
        out.0.file_name().and_then(|n| n.to_str()).unwrap_or("")
    );
    let plan = cluster.scratch.0.join("steady.plan");
    let c = Command::new(flowc_bin())
        .args(["compile", &steady_job().display().to_string(), "-p", "2", "-o", &plan.display().to_string()])
        .output()
        .expect("flowc compile");
    assert!(c.status.success(), "{c:?}");
    let bytes = std::fs::read(&plan).expect("plan");
    let r = http::request(
        "POST",
        &cluster.rest_addr,
        &format!("/jobs?savepointPath={climbing}"),
        Some(("application/octet-stream", &bytes)),
        Duration::from_secs(10),
    )
    .expect("POST /jobs");
    assert_refused(r.status, &r.text(), &cluster, "savepointPath with `..`");
    assert_eq!(jobs(), before, "a refused restore creates no job");
}

fn file_sink_job(dir: &Path, path: &Path) -> PathBuf {
    let job = dir.join(format!("file-sink-{}.flow", path.file_name().and_then(|n| n.to_str()).unwrap_or("x")));
    let text = format!(
        r#"job "File Sink"
schema Click {{
    page: string
}}
source datagen {{ schema: Click, rate: 100, page: cycle("/a", "/b") }} name "Clicks"
    | sink file {{ path: "{}" }} name "Click Files"
"#,
        path.display()
    );
    std::fs::write(&job, text).expect("job file");
    job
}

#[test]
fn a_file_sink_outside_the_roots_is_refused_at_submission() {
    let cluster = Cluster::start("paths-sink", 1, 2);
    let out = outside(&cluster, "outside");
    let target = out.0.join("clicks");
    let job = file_sink_job(&cluster.scratch.0, &target);
    let o = cluster.flowc(&["run", "-d", &job.display().to_string()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("Click Files") && err.contains("outside the allowed directories"), "{err}");
    assert!(err.contains(&cluster.scratch.0.display().to_string()), "{err}");

    // A hand-made plan through POST /jobs: an allowed job's plan with its path changed.
    let allowed = cluster.scratch.0.join("clicks");
    let plan = cluster.scratch.0.join("sink.json");
    let c = Command::new(flowc_bin())
        .args(["compile", &file_sink_job(&cluster.scratch.0, &allowed).display().to_string(), "-o"])
        .arg(&plan)
        .output()
        .expect("flowc compile");
    assert!(c.status.success(), "{c:?}");
    let json = std::fs::read_to_string(&plan).expect("plan");
    let inside = allowed.display().to_string();
    assert!(json.contains(&inside), "{json}");
    let forged = json.replace(&inside, &target.display().to_string());
    let r = http::request(
        "POST",
        &cluster.rest_addr,
        "/jobs",
        Some(("application/json", forged.as_bytes())),
        Duration::from_secs(10),
    )
    .expect("POST /jobs");
    assert_refused(r.status, &r.text(), &cluster, "a forged plan");
    assert!(r.text().contains("Click Files"), "the operator is named: {}", r.text());
    assert!(!out.0.exists(), "nothing written outside");
    assert_eq!(cluster.rest().get("/jobs").expect("jobs")["jobs"].as_array().map_or(0, Vec::len), 0);

    // Inside a root, the same job runs and writes.
    let r = http::request(
        "POST",
        &cluster.rest_addr,
        "/jobs",
        Some(("application/json", json.as_bytes())),
        Duration::from_secs(10),
    )
    .expect("POST /jobs");
    assert_eq!(r.status, 202, "{}", r.text());
    cluster.wait_for("the file sink's output", Duration::from_secs(30), |_| {
        std::fs::metadata(allowed.join("part-0.jsonl")).ok().filter(|m| m.len() > 0)
    });
}

/// Submits `text` as a job with `flowc run -d`: it must be refused naming
/// `operator` and `what`, and no job is created.
fn assert_job_refused(cluster: &Cluster, name: &str, text: &str, operator: &str, what: &str) {
    let job = cluster.scratch.0.join(format!("{name}.flow"));
    std::fs::write(&job, text).expect("job file");
    let o = cluster.flowc(&["run", "-d", &job.display().to_string()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{name} was accepted: {}", String::from_utf8_lossy(&o.stdout));
    assert!(err.contains(&format!("{operator}: {what} is refused")), "{name}: {err}");
    assert!(err.contains("outside the allowed directories"), "{name}: {err}");
    assert!(err.contains(&cluster.scratch.0.display().to_string()), "{name}: the roots are named: {err}");
    assert_eq!(cluster.rest().get("/jobs").expect("jobs")["jobs"].as_array().map_or(0, Vec::len), 0, "{name}");
}

#[test]
fn every_path_a_job_reads_or_writes_is_confined_at_submission() {
    let cluster = Cluster::start("paths-every", 1, 2);
    let out = outside(&cluster, "outside");
    let inside = cluster.scratch.0.join("in");
    std::fs::create_dir_all(&inside).expect("dir");
    std::fs::write(inside.join("clicks.jsonl"), "{\"user\": \"a\", \"page\": \"/a\"}\n").expect("input");
    std::fs::write(inside.join("pages.csv"), "/a,docs\n").expect("side");
    let schemas = "schema Click { user: string, page: string }\nschema Page { page: string, category: string }\n";
    let sink = format!("    | sink file {{ path: \"{}\" }}\n", cluster.scratch.0.join("out").display());

    // A file source reading outside.
    let text = format!(
        "job \"Source\"\n{schemas}source file {{ path: \"{}\", schema: Click }} name \"Clicks\"\n{sink}",
        out.0.display()
    );
    assert_job_refused(&cluster, "source", &text, "Clicks", "the file source's path");
    // A file source inside, its dead letters outside.
    let text = format!(
        "job \"Dead Letters\"\n{schemas}source file {{ path: \"{}\", schema: Click, on_error: dead_letter, dead_letter_path: \"{}\" }} name \"Clicks\"\n{sink}",
        inside.join("clicks.jsonl").display(),
        out.0.join("bad").display()
    );
    assert_job_refused(&cluster, "dead-letters", &text, "Clicks", "the file source's `dead_letter_path`");
    // A lookup join whose side is read from outside, by `..`.
    let climbing = cluster.scratch.0.join("..").join(out.0.file_name().expect("name")).join("pages.csv");
    let text = format!(
        "job \"Lookup\"\n{schemas}let pages = source file {{ path: \"{}\", format: csv, schema: Page }}\n\
         source file {{ path: \"{}\", schema: Click }} name \"Clicks\"\n    \
         | left join pages as of proctime() on page == pages.page name \"Enrich\"\n    \
         | select {{ user, page: left.page, category }}\n{sink}",
        climbing.display(),
        inside.join("clicks.jsonl").display()
    );
    assert_job_refused(&cluster, "lookup", &text, "Enrich", "the lookup join's side path");
    assert!(!out.0.exists(), "nothing written outside");

    // The same jobs with every path inside run.
    let text = format!(
        "job \"Inside\"\n{schemas}let pages = source file {{ path: \"{}\", format: csv, schema: Page }}\n\
         source file {{ path: \"{}\", schema: Click, on_error: dead_letter, dead_letter_path: \"{}\" }} name \"Clicks\"\n    \
         | left join pages as of proctime() on page == pages.page name \"Enrich\"\n    \
         | select {{ user, page: left.page, category }}\n{sink}",
        inside.join("pages.csv").display(),
        inside.join("clicks.jsonl").display(),
        cluster.scratch.0.join("bad").display()
    );
    let job = cluster.scratch.0.join("inside.flow");
    std::fs::write(&job, text).expect("job file");
    let id = cluster.submit(&job, &["-p", "1"]);
    cluster.wait_job_state(&id, "FINISHED", Duration::from_secs(60));
    let written = std::fs::read_to_string(cluster.scratch.0.join("out/part-0.jsonl")).expect("the sink's file");
    assert!(written.contains("docs"), "{written}");
}

#[test]
fn a_local_run_may_write_next_to_its_job_file() {
    // The mini cluster (no JobManager) allows the job file's directory and
    // the working directory besides the configured roots.
    let scratch = Scratch::new("paths-mini");
    let out = scratch.0.join("out");
    let job = scratch.0.join("bounded.flow");
    std::fs::write(
        &job,
        "job \"Bounded\"\nschema Click {\n    page: string\n}\nsource datagen { schema: Click, count: 10, page: cycle(\"/a\") }\n    | sink file { path: \"out\" }\n",
    )
    .expect("job");
    let o = Command::new(flowc_bin())
        .current_dir(&scratch.0)
        .env("FLOWC_CONF_DIR", scratch.0.join("no-conf"))
        .args(["run", "bounded.flow"])
        .output()
        .expect("flowc run");
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let written = std::fs::read_to_string(out.join("part-0.jsonl")).expect("the sink's file");
    assert_eq!(written.lines().count(), 10, "{written}");
    // Elsewhere it may not.
    let elsewhere = PathBuf::from(format!("{}-elsewhere", scratch.0.display()));
    let text = std::fs::read_to_string(&job).expect("job").replace("\"out\"", &format!("\"{}\"", elsewhere.display()));
    std::fs::write(&job, text).expect("job");
    let o = Command::new(flowc_bin())
        .current_dir(&scratch.0)
        .env("FLOWC_CONF_DIR", scratch.0.join("no-conf"))
        .args(["run", "bounded.flow"])
        .output()
        .expect("flowc run");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("outside the allowed directories"), "{o:?}");
    assert!(!elsewhere.exists());
}
