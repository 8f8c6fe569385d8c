//! The connector examples of `jobs/examples/` that need no broker run with
//! `flowc run` (the mini cluster) and print exactly what is written here.
//! (`kafka_metadata.flow` runs on the shared Kafka in `e2e_kafka_metadata`.)

mod support;

use std::process::Command;
use support::cluster::{flowc_bin, Scratch};

/// The records `flowc run` prints for an example (its other lines, the
/// client's messages, left out).
fn run_example(name: &str) -> String {
    let scratch = Scratch::new(&format!("example-{name}"));
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = Command::new(flowc_bin())
        .current_dir(root)
        .env("FLOWC_CONF_DIR", scratch.0.join("no-conf"))
        .arg("run")
        .arg(root.join("jobs/examples").join(format!("{name}.flow")))
        .output()
        .expect("flowc run");
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{stdout}{}", String::from_utf8_lossy(&o.stderr));
    stdout.lines().filter(|l| l.starts_with('{')).map(|l| format!("{l}\n")).collect()
}

#[test]
fn csv_quoted_fields_and_nulls_read_as_written() {
    assert_eq!(
        run_example("csv_quoted_nulls"),
        r#"{"id":1,"name":"Smith, Jane","note":"likes \"quotes\"","score":9.5}
{"id":2,"name":"Bob","note":null,"score":null}
{"id":3,"name":"Ana","note":"two\nlines","score":7.0}
{"id":4,"name":"(unknown)","note":"\\N","score":null}
"#
    );
}
