//! End to end: record formats and the file source. The CSV → JSON example
//! (`jobs/examples/csv_to_json.flow`, a checked-in CSV file with a header,
//! quoted fields and one bad line) writes exactly the expected JSON lines,
//! at parallelism 1 and 2; CSV from Kafka is written back to Kafka as CSV
//! with another delimiter, and as raw lines to a file.

mod support;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::path::Path;
use std::time::Duration;
use support::cluster::Scratch;
use support::kafka::{create_topic, unique_topic, Kafka};
use support::local::{flowc_run, output_text};

const EXPECTED_ORDERS: &str = r#"{"order_id":1001,"customer":"SMITH, JANE","amount":19.99,"placed_at":"2026-11-24T22:15:00.000Z","express":true}
{"order_id":1003,"customer":"THE \"BEST\" SHOP","amount":120.5,"placed_at":"2026-11-24T22:15:02.000Z","express":true}
{"order_id":1006,"customer":"LI","amount":42.0,"placed_at":"2026-11-24T22:15:05.000Z","express":true}
"#;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a job in a mini cluster in `scratch`; its output and log.
fn run_local(scratch: &Scratch, job: &Path, args: &[&str]) -> String {
    let o = flowc_run(scratch, &scratch.0, job, args);
    let text = output_text(&o);
    assert!(o.status.success(), "{text}");
    text
}

/// Every line of every file in `dir`, sorted.
fn lines_in(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("output directory").flatten() {
        out.extend(std::fs::read_to_string(e.path()).expect("read").lines().map(str::to_string));
    }
    out.sort();
    out
}

#[test]
fn the_csv_to_json_example_writes_exactly_the_expected_records() {
    let data = repo().join("jobs/examples/data");
    let job = repo().join("jobs/examples/csv_to_json.flow");
    for p in ["1", "2"] {
        let scratch = Scratch::new(&format!("csv2json-p{p}"));
        let log = run_local(&scratch, &job, &["-p", p, "--input", &data.display().to_string(), "--out", "out"]);
        assert!(log.contains("has finished"), "{log}");
        let mut want: Vec<String> = EXPECTED_ORDERS.lines().map(str::to_string).collect();
        want.sort();
        assert_eq!(lines_in(&scratch.0.join("out")), want, "at -p {p}");
    }
}

#[test]
fn csv_from_kafka_is_written_as_csv_to_kafka_and_raw_to_files() {
    let kafka = Kafka::shared();
    let (input, output) = (unique_topic("csv-in"), unique_topic("csv-out"));
    create_topic(kafka.bootstrap(), &input, 2).expect("topic");
    create_topic(kafka.bootstrap(), &output, 1).expect("topic");
    let producer: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", kafka.bootstrap()).create().expect("producer");
    let lines = ["1,/a,true", "2,\"/b;c\",false", "3,\"say \"\"hi\"\"\",true", "oops", "4,/d,TRUE"];
    for (i, l) in lines.iter().enumerate() {
        producer.send(BaseRecord::<(), str>::to(&input).payload(*l).partition((i % 2) as i32)).expect("send");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
    let scratch = Scratch::new("csv-kafka");
    let job = scratch.0.join("csv.flow");
    std::fs::write(
        &job,
        format!(
            r#"job "CSV"
param servers: string = "localhost:9092"
schema R {{ id: long, page: string, ok: bool }}
schema Line {{ line: string }}
let rows = source kafka {{ servers: $servers, topic: "{input}", offsets: earliest, bounded: latest, format: csv, schema: R }}
from rows | filter ok | sink kafka {{ servers: $servers, topic: "{output}", format: csv, delimiter: ";" }}
from rows | select {{ line: page }} | sink file {{ path: "raw", format: raw }}
"#
        ),
    )
    .expect("job");
    run_local(&scratch, &job, &["-p", "1", "--servers", kafka.bootstrap()]);
    let mut got = Vec::new();
    flowc_playground::kafka::read_topic(
        kafka.bootstrap(),
        &output,
        Duration::from_secs(30),
        |r| got.push(String::from_utf8_lossy(r.payload).into_owned()),
        || true,
    )
    .expect("reading");
    got.sort();
    // A field holding the quote is quoted, the quote doubled.
    assert_eq!(got, ["1;/a;true", "3;\"say \"\"hi\"\"\";true", "4;/d;true"]);
    let mut raw = lines_in(&scratch.0.join("raw"));
    raw.sort();
    assert_eq!(raw, ["/a", "/b;c", "/d", "say \"hi\""]);
    assert!(scratch.0.join("raw/part-0.txt").exists());
}
