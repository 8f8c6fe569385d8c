//! The keyed-state examples of `jobs/examples/` run with `flowc run` (the
//! mini cluster) and print exactly what is written here: a running total
//! (an upsert stream, each row with its kind), a dedup and a distinct count.

mod support;

use support::cluster::Scratch;
use support::local::{flowc_run_ok, printed_records};

/// The records `flowc run` prints for an example (its other lines, the
/// client's messages, left out).
fn run_example(name: &str) -> String {
    let scratch = Scratch::new(&format!("example-{name}"));
    let job = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs/examples").join(format!("{name}.flow"));
    let stdout = flowc_run_ok(&scratch, &scratch.0, &job, &[]);
    printed_records(&stdout).into_iter().map(|l| l + "\n").collect()
}

#[test]
fn running_total_prints_its_changelog() {
    assert_eq!(
        run_example("running_total"),
        r#"+I {"user":"alice","purchases":1,"total":10,"largest":10}
+I {"user":"bob","purchases":1,"total":15,"largest":15}
-U {"user":"alice","purchases":1,"total":10,"largest":10}
+U {"user":"alice","purchases":2,"total":30,"largest":20}
+I {"user":"carol","purchases":1,"total":25,"largest":25}
-U {"user":"alice","purchases":2,"total":30,"largest":20}
+U {"user":"alice","purchases":3,"total":60,"largest":30}
-U {"user":"bob","purchases":1,"total":15,"largest":15}
+U {"user":"bob","purchases":2,"total":50,"largest":35}
-U {"user":"alice","purchases":3,"total":60,"largest":30}
+U {"user":"alice","purchases":4,"total":100,"largest":40}
-U {"user":"carol","purchases":1,"total":25,"largest":25}
+U {"user":"carol","purchases":2,"total":70,"largest":45}
"#
    );
}

#[test]
fn dedup_prints_the_first_order_per_id() {
    assert_eq!(
        run_example("dedup"),
        r#"{"id":1,"at":1795558500000,"amount":100}
{"id":2,"at":1795558560000,"amount":110}
{"id":3,"at":1795558680000,"amount":130}
{"id":1,"at":1795558800000,"amount":150}
{"id":4,"at":1795558860000,"amount":160}
{"id":5,"at":1795558980000,"amount":180}
{"id":6,"at":1795559160000,"amount":210}
"#
    );
}

#[test]
fn distinct_count_prints_exact_and_estimated_counts_per_window() {
    assert_eq!(
        run_example("distinct_count"),
        r#"{"start":"2026-11-24T22:15:00.000Z","page":"/home","visits":3,"visitors":2,"about":2,"first_visitor":"ann","last_visitor":"bob","median_ms":159.19327143164895}
{"start":"2026-11-24T22:15:00.000Z","page":"/shop","visits":2,"visitors":2,"about":2,"first_visitor":"bob","last_visitor":"cy","median_ms":130.33555804542672}
{"start":"2026-11-24T22:15:05.000Z","page":"/home","visits":2,"visitors":2,"about":2,"first_visitor":"ann","last_visitor":"bob","median_ms":278.70048520022215}
{"start":"2026-11-24T22:15:05.000Z","page":"/shop","visits":3,"visitors":2,"about":2,"first_visitor":"dee","last_visitor":"ann","median_ms":308.0126978657462}
{"start":"2026-11-24T22:15:10.000Z","page":"/home","visits":1,"visitors":1,"about":1,"first_visitor":"cy","last_visitor":"cy","median_ms":399.4743972413596}
{"start":"2026-11-24T22:15:10.000Z","page":"/shop","visits":1,"visitors":1,"about":1,"first_visitor":"bob","last_visitor":"bob","median_ms":432.7466024574592}
"#
    );
}
