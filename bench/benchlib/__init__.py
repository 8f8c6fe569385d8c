"""The flowc ↔ Apache Flink benchmark harness (bench/run.sh)."""
