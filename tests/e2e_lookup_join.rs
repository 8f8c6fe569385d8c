//! End to end on a cluster: a lookup join (`left join pages as of
//! proctime() on …`) of a watched directory of clicks with a CSV side
//! file, through a stop with a savepoint and a resume at parallelism 2.
//! The join keeps no state: the resumed job reads the side file again, so
//! clicks after the resume meet the file as it is then (Flink's lookup join
//! in processing time), while the clicks source resumes where it stopped
//! (no click read twice). The file sink's rows show at each checkpoint.

mod support;

use std::path::Path;
use std::time::Duration;
use support::cluster::Cluster;

/// Every line of the files under `dir` (none if it does not exist), sorted.
fn rows(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        out.extend(text.lines().filter(|l| !l.is_empty()).map(str::to_string));
    }
    out.sort();
    out
}

fn wait_rows(cluster: &Cluster, dir: &Path, n: usize) -> Vec<String> {
    cluster.wait_for(&format!("{n} rows in {}", dir.display()), Duration::from_secs(60), |_| {
        let r = rows(dir);
        (r.len() >= n).then_some(r)
    })
}

#[test]
fn a_resumed_lookup_join_reads_its_side_again_and_its_stream_from_the_savepoint() {
    let cluster = Cluster::start("lookup-join", 1, 4);
    let dir = &cluster.scratch.0;
    let (clicks, side) = (dir.join("clicks"), dir.join("pages"));
    std::fs::create_dir_all(&clicks).expect("clicks dir");
    std::fs::create_dir_all(&side).expect("side dir");
    std::fs::write(side.join("pages.csv"), "/a,one\n").expect("side file");
    let job = dir.join("lookup.flow");
    std::fs::write(
        &job,
        format!(
            r#"job "Clicks with their pages"
set execution.checkpointing.interval = 500ms
param out: string = "{out}"
schema Click {{ user: string, page: string }}
schema Page {{ page: string, category: string }}
let pages = source file {{ path: "{side}", format: csv, schema: Page }}
source file {{ path: "{clicks}", schema: Click, watch: 200ms }}
    | left join pages as of proctime() on page == pages.page
    | select {{ user, page: left.page, category }}
    | sink file {{ path: $out }}
"#,
            out = dir.join("out1").display(),
            side = side.display(),
            clicks = clicks.display()
        ),
    )
    .expect("job file");

    let id = cluster.submit(&job, &["-p", "1"]);
    cluster.wait_all_tasks(&id, "RUNNING", Duration::from_secs(30));
    std::fs::write(
        clicks.join("0001.jsonl"),
        "{\"user\":\"ann\",\"page\":\"/a\"}\n{\"user\":\"bob\",\"page\":\"/b\"}\n",
    )
    .expect("clicks");
    let first = wait_rows(&cluster, &dir.join("out1"), 2);
    assert_eq!(
        first,
        vec![
            r#"{"user":"ann","page":"/a","category":"one"}"#.to_string(),
            r#"{"user":"bob","page":"/b","category":null}"#.to_string(),
        ]
    );
    let savepoint = cluster.stop_with_savepoint(&id, Duration::from_secs(30));

    // The side changes while the job is stopped: the resumed join reads it anew.
    std::fs::write(side.join("pages.csv"), "/a,uno\n/b,two\n/b,deux\n").expect("side file");
    let out2 = dir.join("out2");
    let id2 = cluster.submit(&job, &["-p", "2", "-s", savepoint.as_str(), "--out", &out2.display().to_string()]);
    cluster.wait_all_tasks(&id2, "RUNNING", Duration::from_secs(30));
    std::fs::write(
        clicks.join("0002.jsonl"),
        "{\"user\":\"cy\",\"page\":\"/a\"}\n{\"user\":\"dee\",\"page\":\"/b\"}\n",
    )
    .expect("clicks");
    let second = wait_rows(&cluster, &out2, 3);
    // A little longer: a click of the first file read again would show here.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(rows(&out2), second);
    assert_eq!(
        second,
        vec![
            r#"{"user":"cy","page":"/a","category":"uno"}"#.to_string(),
            r#"{"user":"dee","page":"/b","category":"deux"}"#.to_string(),
            r#"{"user":"dee","page":"/b","category":"two"}"#.to_string(),
        ],
        "{}",
        cluster.logs()
    );
    let _ = cluster.flowc(&["cancel", &id2]);
}
