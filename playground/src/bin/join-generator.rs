//! `join-generator`: writes impressions and clicks with a known set of
//! matches (see `flowc_playground::joins`) to two Kafka topics, out of
//! order within half a second, each topic in one transaction; prints how
//! many joined rows the interval join `within -10s, 0s` must emit.

use anyhow::Context;
use clap::Parser;
use flowc_playground::joins::{events, expected, write_all, write_order};
use flowc_playground::kafka::{KafkaSink, ProducerSettings};
use std::time::Duration;

/// Writes impressions `--from..--to` and their clicks.
#[derive(Debug, Parser)]
#[command(name = "join-generator", version)]
struct Args {
    /// Kafka bootstrap servers.
    #[arg(long = "bootstrap.servers", value_name = "HOST:PORT", default_value = "localhost:9092")]
    bootstrap_servers: String,
    #[arg(long, default_value = "impressions")]
    impressions_topic: String,
    #[arg(long, default_value = "clicks")]
    clicks_topic: String,
    /// Event time of impression 0, epoch milliseconds.
    #[arg(long, default_value_t = 1_795_558_500_000)]
    start: i64,
    /// The first impression id.
    #[arg(long, default_value_t = 0)]
    from: i64,
    /// One past the last impression id.
    #[arg(long, default_value_t = 3000)]
    to: i64,
}

fn sink(bootstrap: &str, topic: &str) -> anyhow::Result<KafkaSink> {
    let settings = ProducerSettings {
        bootstrap: bootstrap.to_string(),
        topic: topic.to_string(),
        transactional_id: format!("join-generator-{topic}"),
        transaction_timeout: Duration::from_secs(30),
        startup_timeout: Duration::from_secs(30),
    };
    KafkaSink::connect(&settings).with_context(|| format!("connecting to {bootstrap} for {topic}"))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (imps, clicks) = events(args.start, args.from, args.to);
    let mut s = sink(&args.bootstrap_servers, &args.impressions_topic)?;
    write_all(&mut s, write_order(&imps, |m| m.ts, |m| m.imp_id).iter().map(|m| m.to_json()))?;
    let mut s = sink(&args.bootstrap_servers, &args.clicks_topic)?;
    write_all(&mut s, write_order(&clicks, |c| c.ts, |c| c.click_id).iter().map(|c| c.to_json()))?;
    println!(
        "Wrote {} impressions and {} clicks; the join emits {} rows.",
        imps.len(),
        clicks.len(),
        expected(&imps, &clicks).len()
    );
    Ok(())
}
