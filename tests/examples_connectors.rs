//! The connector examples of `jobs/examples/` that need no broker run with
//! `flowc run` (the mini cluster) and print exactly what is written here.
//! (`kafka_metadata.flow` runs on the shared Kafka in `e2e_kafka_metadata`.)

mod support;

use support::cluster::Scratch;
use support::local::{flowc_run_ok, printed_records};

/// The records `flowc run` prints for an example (its other lines, the
/// client's messages, left out), run from the repository's root.
fn run_example(name: &str) -> String {
    let scratch = Scratch::new(&format!("example-{name}"));
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let stdout = flowc_run_ok(&scratch, root, &root.join("jobs/examples").join(format!("{name}.flow")), &[]);
    printed_records(&stdout).into_iter().map(|l| l + "\n").collect()
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
