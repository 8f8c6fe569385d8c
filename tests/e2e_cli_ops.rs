//! End to end: flowc's operating commands against a live cluster, with
//! Flink's spellings where Flink has them — `flowc info` (the plan as
//! `flink info` prints it), `flowc checkpoint`, `flowc savepoint -type
//! native` (recorded as the savepoint's format), `savepoint -d` (dispose), `savepoint -detached`, `stop
//! -detached`, and `flowc logs jobmanager|taskmanager TMID`.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;
use support::cluster::{Cluster, Scratch};

fn ok(out: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    text
}

#[test]
fn flowc_info_checkpoint_savepoint_dispose_stop_and_logs() {
    let job = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jobs/steady_clicks.flow");

    // `flowc info`: the plan as JSON between Flink's rules, no cluster needed.
    let info = std::process::Command::new(support::cluster::flowc_bin())
        .arg("info")
        .arg(&job)
        .args(["-p", "3"])
        .output()
        .expect("flowc info");
    let text = ok(&info);
    let json: String = text
        .lines()
        .skip_while(|l| !l.contains("Execution Plan"))
        .skip(1)
        .take_while(|l| !l.starts_with("----"))
        .collect::<Vec<_>>()
        .join("\n");
    let plan: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(plan["name"], "Steady Clicks", "{plan}");
    assert!(
        plan["nodes"].as_array().is_some_and(|n| n.len() == 4 && n.iter().all(|v| v["parallelism"] == 3)),
        "{plan}"
    );

    let logs = Scratch::new("cliops-logs");
    let cluster = Cluster::start_with("cliops", 1, 2, &format!("env.log.dir: {}", logs.0.display()));
    let id = cluster.submit(&job, &["-p", "2"]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));

    let cp = ok(&cluster.flowc(&["checkpoint", &id]));
    assert!(cp.contains(&format!("for job {id} completed")), "{cp}");
    let cp = ok(&cluster.flowc(&["checkpoint", "-full", &id]));
    assert!(cp.contains("Checkpoint(FULL)"), "{cp}");

    let sp = ok(&cluster.flowc(&["savepoint", "-type", "native", &id]));
    let path = sp
        .lines()
        .find_map(|l| l.strip_prefix("Savepoint completed. Path: "))
        .unwrap_or_else(|| panic!("{sp}"))
        .trim()
        .to_string();
    let dir = PathBuf::from(path.trim_start_matches("file:"));
    assert!(dir.join("_metadata").is_file(), "{}", dir.display());
    // The format asked for is recorded; an unknown one is refused.
    let cps = cluster.rest().get(&format!("/jobs/{id}/checkpoints")).expect("checkpoints");
    assert_eq!(cps["latest"]["savepoint"]["savepointFormat"], "NATIVE", "{}", cps["latest"]);
    let bad = cluster.rest().post_json(&format!("/jobs/{id}/savepoints"), &serde_json::json!({ "formatType": "ZIP" }));
    assert!(bad.is_err_and(|e| e.to_string().contains("formatType")), "an unknown formatType is refused");
    let disposed = ok(&cluster.flowc(&["savepoint", "-d", &path]));
    assert!(disposed.contains(&format!("Savepoint '{path}' disposed.")), "{disposed}");
    assert!(!dir.exists(), "{} is still there", dir.display());
    // Disposing of what is not a savepoint fails, and removes nothing.
    let bad = cluster.flowc(&["savepoint", "-d", &logs.0.display().to_string()]);
    assert!(!bad.status.success() && logs.0.exists(), "{}", String::from_utf8_lossy(&bad.stdout));

    let detached = ok(&cluster.flowc(&["savepoint", "-detached", &id]));
    let trigger = detached.rsplit("trigger id: ").next().unwrap_or_default().trim().to_string();
    cluster
        .rest()
        .wait_for_savepoint(&id, &trigger, Duration::from_secs(30))
        .expect("the detached savepoint completes");

    let jm = ok(&cluster.flowc(&["logs", "jobmanager"]));
    assert!(jm.contains("Logging to"), "{}", jm.chars().take(500).collect::<String>());
    let tm = cluster.rest().get("/taskmanagers").expect("taskmanagers")["taskmanagers"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let tml = ok(&cluster.flowc(&["logs", "taskmanager", &tm]));
    assert!(tml.contains(&format!("job_id={id}")), "{}", tml.chars().take(500).collect::<String>());
    let missing = cluster.flowc(&["logs", "taskmanager"]);
    assert!(!missing.status.success(), "a TaskManager's log needs its id");

    let stop = ok(&cluster.flowc(&["stop", "--type", "canonical", "-detached", &id]));
    assert!(stop.contains("trigger id:"), "{stop}");
    cluster.wait_job_state(&id, "FINISHED", Duration::from_secs(30));
}
