//! `flowc nexmark-gen`: writes the Nexmark event sequence of a nexmark
//! source (the same events for the same `--events`, `--rate`, `--seed` and
//! `--base-time`) as JSON lines, one stream per kind: to files
//! `<out>/person/part-0.jsonl`, `<out>/auction/…`, `<out>/bid/…` (with
//! `--files N`, `part-0` to `part-<N-1>`, taking the blocks of 50 events in
//! turn, as N source subtasks would: each file is in time order and holds
//! its share of every kind), or to the
//! Kafka topics `<prefix>person`, `<prefix>auction`, `<prefix>bid`.
//! With `--out`, also `<out>/side_input.txt`, the bounded side input of
//! query 13: `--side-input-rows` lines `key,value`, each a number from 0 and
//! its text (`7,7`), as nexmark-flink's `SideInputGenerator` makes them.
//! Timestamps are written as Flink SQL's JSON format reads a
//! `TIMESTAMP(3)`, `yyyy-MM-dd HH:mm:ss.SSS` in UTC, so that both an
//! ordinary flowc source (with `timestamp("yyyy-MM-dd HH:mm:ss.SSS")`) and
//! Flink's `filesystem` or `kafka` connector with `'format' = 'json'` read
//! them.

use anyhow::{bail, Context};
use flowc_compiler::ir::{
    Delivery, ErrorPolicy, Format, KafkaSink, NexmarkKind, TimestampFormat, NEXMARK_BASE_TIME, NEXMARK_RATE,
};
use flowc_runtime::codec::json::JsonEncoder;
use flowc_runtime::connectors::kafka::KafkaSinkWriter;
use flowc_runtime::connectors::nexmark::{generate, generator::EventGenerator, Share};
use flowc_runtime::connectors::SinkWriter;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// How the JSON lines write a timestamp: Flink SQL's default for `TIMESTAMP(3)`.
pub const TIMESTAMP_PATTERN: &str = "yyyy-MM-dd HH:mm:ss.SSS";

#[derive(clap::Args, Debug)]
pub struct NexmarkGenArgs {
    /// Events of all kinds (people, auctions and bids, 1:3:46).
    #[arg(long)]
    pub events: u64,
    /// Events per second of event time.
    #[arg(long, default_value_t = NEXMARK_RATE)]
    pub rate: u64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The event time of event 0, epoch milliseconds.
    #[arg(long = "base-time", default_value_t = NEXMARK_BASE_TIME)]
    pub base_time: i64,
    /// A directory: writes `person/part-0.jsonl`, `auction/part-0.jsonl` and `bid/part-0.jsonl` in it.
    #[arg(long, value_name = "DIR", required_unless_present = "kafka")]
    pub out: Option<PathBuf>,
    /// Files per kind, for parallel readers.
    #[arg(long, default_value_t = 1)]
    pub files: u64,
    /// Kafka bootstrap servers: writes the topics `<prefix>person`, `<prefix>auction`, `<prefix>bid`.
    #[arg(long, value_name = "SERVERS")]
    pub kafka: Option<String>,
    #[arg(long = "topic-prefix", default_value = "nexmark-")]
    pub topic_prefix: String,
    /// Rows of `<out>/side_input.txt` (query 13's side input).
    #[arg(long = "side-input-rows", default_value_t = 10_000)]
    pub side_input_rows: u64,
}

/// Writes query 13's side input: `rows` lines `i,i` from 0.
fn write_side_input(dir: &std::path::Path, rows: u64) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("side_input.txt");
    let f = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = std::io::BufWriter::new(f);
    for i in 0..rows {
        writeln!(w, "{i},{i}").with_context(|| format!("writing {}", path.display()))?;
    }
    w.flush().with_context(|| format!("writing {}", path.display()))?;
    eprintln!("side_input.txt: {rows} rows");
    Ok(())
}

pub fn run(a: NexmarkGenArgs) -> anyhow::Result<ExitCode> {
    if a.rate == 0 || a.files == 0 {
        bail!("--rate and --files must be positive");
    }
    let generator = EventGenerator::new(a.rate, a.seed, a.base_time);
    if let Some(dir) = &a.out {
        write_side_input(dir, a.side_input_rows)?;
    }
    for kind in NexmarkKind::ALL {
        let mut schema = kind.schema();
        for f in &mut schema.fields {
            if f.timestamp_format.is_some() {
                f.timestamp_format = Some(TimestampFormat::Pattern(TIMESTAMP_PATTERN.to_string()));
            }
        }
        let mut files = Vec::new();
        if let Some(dir) = &a.out {
            let dir = dir.join(kind.word());
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for i in 0..a.files {
                let path = dir.join(format!("part-{i}.jsonl"));
                let f = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
                files.push((std::io::BufWriter::new(f), path));
            }
        }
        let mut kafka = match &a.kafka {
            Some(servers) => Some(KafkaSinkWriter::new(
                &KafkaSink {
                    servers: servers.clone(),
                    topic: format!("{}{}", a.topic_prefix, kind.word()),
                    delivery: Delivery::AtLeastOnce,
                    transactional_id_prefix: String::new(),
                    format: Format::Json,
                    key: Vec::new(),
                    timestamp: None,
                    headers: Vec::new(),
                    on_error: ErrorPolicy::Fail,
                    header_names: Vec::new(),
                },
                &schema,
                flowc_runtime::connectors::sink_errors::SinkErrors::fail("nexmark-gen"),
            )?),
            None => None,
        };
        let encoder = JsonEncoder::new(&schema);
        let mut line = Vec::with_capacity(512);
        let mut written = 0u64;
        // One pass per file, each in time order.
        let parts = if files.is_empty() { 1 } else { a.files };
        for part in 0..parts {
            let share = Share { part, parts };
            let mut next = 0;
            while next < a.events {
                let (batch, n) = generate(&generator, kind, share, next, a.events, 4096, None);
                next = n;
                if let Some((w, path)) = files.get_mut(part as usize) {
                    for r in 0..batch.len() {
                        line.clear();
                        encoder.encode_row(&batch, r, &mut line);
                        line.push(b'\n');
                        w.write_all(&line).with_context(|| format!("writing {}", path.display()))?;
                    }
                }
                if let Some(k) = &mut kafka {
                    k.write(&batch)?;
                }
                written += batch.len() as u64;
            }
        }
        for (mut w, path) in files {
            w.flush().with_context(|| format!("writing {}", path.display()))?;
        }
        if let Some(mut k) = kafka {
            k.flush()?;
        }
        eprintln!("{}: {written} events", kind.word());
    }
    Ok(ExitCode::SUCCESS)
}
