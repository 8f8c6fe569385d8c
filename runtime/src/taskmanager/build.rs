//! Building one subtask from the plan: its head (a source or input
//! channels), its chained operators, its sink and its output edges, with
//! the restored state and the checkpoint plumbing.

use super::lock;

use crate::checkpoint::format::StateError;
use crate::checkpoint::restore::Restorer;
use crate::checkpoint::storage::CheckpointStorage;
use crate::checkpoint::{Barrier, SourceState};
use crate::connectors::datagen::DatagenReader;
use crate::connectors::files::{DiscardSink, FileSink, PrintSink};
use crate::connectors::kafka::{KafkaSinkWriter, KafkaSourceReader};
use crate::connectors::kafka_exactly_once::ExactlyOnceKafkaSink;
use crate::connectors::sink_errors::SinkErrors;
use crate::connectors::{SinkWriter, SourceReader};
use crate::expr::SourceMap;
use crate::ids::{Attempt, JobId, SubtaskId};
use crate::keygroup::key_group_range;
use crate::metrics::TaskCounters;
use crate::network::{ChannelKey, ChannelTx, Exchange};
use crate::operators::build::{build_run, runs, BuildContext};
use crate::operators::{Operator, OperatorError};
use crate::security::paths::AllowedRoots;
use crate::task::{CheckpointCtx, CheckpointReport, Head, InputChannel, OperatorInfo, OutputEdge, Task, TaskError};
use flowc_compiler::graph::{ChainedOperator, JobGraph};
use flowc_compiler::ir::{Delivery, ErrorPolicy, OperatorKind, WatermarkSpec};
use flowc_compiler::ShipStrategy;
use petgraph::graph::NodeIndex;
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

/// The watermark spec a Kafka source vertex generates per partition: the
/// watermark stage right after it, chained or over a FORWARD edge.
fn source_watermark(graph: &JobGraph, v: NodeIndex, op_index: usize) -> Option<WatermarkSpec> {
    let ops = &graph.graph[v].operators;
    if let Some(next) = ops.get(op_index + 1) {
        return match &next.kind {
            OperatorKind::Watermark(w) => Some(w.clone()),
            _ => None,
        };
    }
    let outs = graph.outputs(v);
    let [(dst, e)] = outs.as_slice() else { return None };
    if e.ship != ShipStrategy::Forward || graph.inputs(*dst).len() != 1 {
        return None;
    }
    match &graph.graph[*dst].operators.first()?.kind {
        OperatorKind::Watermark(w) => Some(w.clone()),
        _ => None,
    }
}

/// Whether the watermark operator at `op_index` of `v` gets its watermarks
/// from a Kafka source (see [`source_watermark`]).
fn watermarks_from_source(graph: &JobGraph, v: NodeIndex, op_index: usize) -> bool {
    let ops = &graph.graph[v].operators;
    if op_index > 0 {
        return op_index == 1 && matches!(ops[0].kind, OperatorKind::KafkaSource(_));
    }
    let ins = graph.inputs(v);
    let [(src, e)] = ins.as_slice() else { return false };
    e.ship == ShipStrategy::Forward
        && graph.outputs(*src).len() == 1
        && matches!(graph.graph[*src].operators.last().map(|o| &o.kind), Some(OperatorKind::KafkaSource(_)))
}

/// Whether an operator after the source at `op_index` of `v` — later in
/// its chain, or in any vertex downstream — dead-letters the records its
/// expressions fail on, or a Kafka sink the records it cannot write: then
/// the source keeps each record's origin (its position and bytes) for the
/// dead letter. Read from the plan as it is.
fn dead_letters_after(graph: &JobGraph, v: NodeIndex, op_index: usize) -> bool {
    let dead_letters = |ops: &[ChainedOperator]| {
        ops.iter().any(|o| {
            let sink = match &o.kind {
                OperatorKind::KafkaSink(k) => Some(&k.on_error),
                OperatorKind::UpsertKafkaSink(u) => Some(&u.sink.on_error),
                _ => None,
            };
            [o.on_error.as_ref(), sink].into_iter().flatten().any(|p| matches!(p, ErrorPolicy::DeadLetter(_)))
        })
    };
    if dead_letters(graph.graph[v].operators.get(op_index + 1..).unwrap_or(&[])) {
        return true;
    }
    let mut seen = vec![v];
    let mut next: Vec<NodeIndex> = graph.outputs(v).into_iter().map(|(d, _)| d).collect();
    while let Some(d) = next.pop() {
        if seen.contains(&d) {
            continue;
        }
        seen.push(d);
        if dead_letters(&graph.graph[d].operators) {
            return true;
        }
        next.extend(graph.outputs(d).into_iter().map(|(o, _)| o));
    }
    false
}

/// How a subtask is connected: its input channels and where its outputs go.
pub(super) struct Wiring<'a> {
    pub(super) inputs: Vec<InputChannel>,
    pub(super) placement: &'a [Vec<String>],
    pub(super) local: &'a [SubtaskId],
    pub(super) local_senders: &'a Mutex<HashMap<ChannelKey, ChannelTx>>,
    /// Where channels to other TaskManagers are opened.
    pub(super) exchange: &'a Exchange,
}

/// Where a subtask starts: its partitions, restored positions and state,
/// and its checkpoint plumbing.
pub(super) struct StartState {
    pub(super) splits: Vec<i32>,
    pub(super) position: SourceState,
    pub(super) restorer: Option<Arc<Mutex<Restorer>>>,
    pub(super) triggers: Option<crossbeam_channel::Receiver<Barrier>>,
    pub(super) completions: Option<crossbeam_channel::Receiver<u64>>,
    pub(super) report: Box<dyn Fn(CheckpointReport) + Send>,
    pub(super) allowed: AllowedRoots,
    /// The plan's UDF libraries, prepared, and how this task runs them.
    pub(super) udfs: (Vec<Arc<crate::udf::Prepared>>, crate::udf::Isolation),
    /// Where the task writes its state files.
    pub(super) storage: Arc<dyn CheckpointStorage>,
}

fn info(op: &ChainedOperator) -> OperatorInfo {
    OperatorInfo { id: op.id, uid: op.uid.clone(), name: op.name.clone() }
}

pub(super) fn build_task(
    key: (JobId, Attempt),
    id: SubtaskId,
    graph: &JobGraph,
    wiring: Wiring<'_>,
    start: StartState,
    cancel: Arc<AtomicBool>,
    counters: Arc<TaskCounters>,
) -> Result<Task, TaskError> {
    let Wiring { inputs, placement, local, local_senders, exchange } = wiring;
    let StartState { splits, position, restorer, triggers, completions, report, allowed, udfs, storage } = start;
    let v = NodeIndex::new(id.vertex as usize);
    let vertex = &graph.graph[v];
    let setup = |m: String| TaskError::Setup(m);
    let mut head: Option<Head> = None;
    let mut chain: Vec<Box<dyn Operator>> = Vec::new();
    let mut sink: Option<Box<dyn SinkWriter>> = None;
    let (mut source_info, mut chain_info, mut sink_info) = (None, Vec::new(), None);
    let range = key_group_range(id.subtask, vertex.parallelism, vertex.max_parallelism);
    for (i, op) in vertex.operators.iter().enumerate() {
        if op.kind.is_source() {
            source_info = Some(info(op));
        } else if op.kind.is_sink() {
            sink_info = Some(info(op));
        }
        match &op.kind {
            OperatorKind::KafkaSource(k) => {
                let wm = source_watermark(graph, v, i);
                let restored = position.kafka_offsets();
                let checkpointing = graph.settings.checkpoint_interval_ms.is_some();
                let assignment = crate::connectors::kafka_topics::Assignment {
                    splits: splits.clone(),
                    subtask: id.subtask,
                    parallelism: vertex.parallelism,
                };
                let mut reader =
                    KafkaSourceReader::new(k, &op.name, &assignment, &restored, wm, counters.clone(), checkpointing)?;
                if dead_letters_after(graph, v, i) {
                    reader = reader.with_origins();
                }
                head = Some(Head::Source(Box::new(reader) as Box<dyn SourceReader>));
            }
            OperatorKind::FileSource(f) => {
                let restored = match &position {
                    SourceState::Files { files } => files.clone(),
                    _ => Vec::new(),
                };
                let mut reader = crate::connectors::file_source::FileSourceReader::new(
                    f,
                    &op.name,
                    id.subtask,
                    vertex.parallelism,
                    restored,
                    &allowed,
                    counters.clone(),
                )?;
                if dead_letters_after(graph, v, i) {
                    reader = reader.with_origins();
                }
                head = Some(Head::Source(Box::new(reader)));
            }
            OperatorKind::DatagenSource(g) => {
                let resume = match position {
                    SourceState::Datagen { next } => Some(next),
                    _ => None,
                };
                let reader = DatagenReader::new(g.clone(), id.subtask, vertex.parallelism, resume)?;
                head = Some(Head::Source(Box::new(reader)));
            }
            OperatorKind::NexmarkSource(n) => {
                let resume = match position {
                    SourceState::Datagen { next } => Some(next),
                    _ => None,
                };
                let reader =
                    crate::connectors::nexmark::NexmarkReader::new(n.clone(), id.subtask, vertex.parallelism, resume);
                head = Some(Head::Source(Box::new(reader)));
            }
            OperatorKind::KafkaSink(k) if k.delivery == Delivery::ExactlyOnce => {
                let txid = format!("{}-{}-{}", k.transactional_id_prefix, &op.id.to_hex()[..8], id.subtask);
                let bad = SinkErrors::new(&k.on_error, &op.name, counters.clone())?;
                let mut s = ExactlyOnceKafkaSink::new(k, &op.output, txid, bad)?;
                if let Some(r) = &restorer {
                    let states = lock(r)
                        .raw_states(op.id, id.subtask, vertex.parallelism)
                        .map_err(|source| TaskError::Restore { operator: op.name.clone(), source })?;
                    s.restore(states)?;
                }
                sink = Some(Box::new(s));
            }
            OperatorKind::KafkaSink(k) => {
                let bad = SinkErrors::new(&k.on_error, &op.name, counters.clone())?;
                sink = Some(Box::new(KafkaSinkWriter::new(k, &op.output, bad)?))
            }
            OperatorKind::PrintSink => {
                sink = Some(Box::new(PrintSink::new(&op.output, id.subtask, vertex.parallelism)))
            }
            OperatorKind::FileSink(f) => {
                sink = Some(Box::new(FileSink::with_format(&f.path, &allowed, &op.output, &f.format, id.subtask)?))
            }
            OperatorKind::DiscardSink => sink = Some(Box::new(DiscardSink)),
            OperatorKind::UpsertKafkaSink(u) => {
                let bad = SinkErrors::new(&u.sink.on_error, &op.name, counters.clone())?;
                sink = Some(Box::new(crate::connectors::upsert_kafka::UpsertKafkaSinkWriter::new(u, &op.output, bad)?))
            }
            _ => {}
        }
    }
    // The operators between source and sink, consecutive filters and
    // projections fused into one.
    // This task's way to each UDF library: the shared loaded library, or a
    // sidecar process of its own.
    let backends = udfs
        .0
        .iter()
        .map(|p| crate::udf::Backend::for_task(p, udfs.1).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()
        .map_err(setup)?;
    let sources = Arc::new(SourceMap::new(graph.source.as_ref()).with_udfs(&graph.udfs, backends));
    let first = usize::from(vertex.operators.first().is_some_and(|o| o.kind.is_source()));
    let last = vertex.operators.len() - usize::from(vertex.operators.last().is_some_and(|o| o.kind.is_sink()));
    let middle = &vertex.operators[first..last.max(first)];
    for run in runs(middle) {
        let ctx = BuildContext {
            subtask: id.subtask,
            parallelism: vertex.parallelism,
            max_parallelism: vertex.max_parallelism,
            watermarks_from_source: watermarks_from_source(graph, v, first + run.start),
            counters: counters.clone(),
            sources: sources.clone(),
            allowed: allowed.clone(),
        };
        let mut built = build_run(&middle[run.clone()], &ctx)?;
        if let Some(r) = &restorer {
            for op in &middle[run.clone()] {
                let state = lock(r)
                    .keyed_state(op.id, &range)
                    .map_err(|source| TaskError::Restore { operator: op.name.clone(), source })?;
                if !state.key_groups.is_empty() {
                    // State an operator cannot take — corrupt key groups, or
                    // rows of another layout than the job's — is bad state,
                    // as a file that fails its checksum is: the JobManager
                    // falls back to an older checkpoint or fails the job,
                    // never restarts onto the same state forever.
                    built.restore(state).map_err(|e| match e {
                        OperatorError::Restore { operator, message } => {
                            TaskError::Restore { operator, source: StateError::Incompatible(message) }
                        }
                        other => other.into(),
                    })?;
                }
            }
        }
        for op in &middle[run] {
            chain_info.push((info(op), chain.len()));
        }
        chain.push(built);
    }
    let head = match head {
        Some(h) => h,
        None => {
            // Batches from other processes are checked against the schema the vertex reads.
            let mut inputs = inputs;
            let types: Option<Vec<_>> = vertex
                .operators
                .first()
                .and_then(|o| o.input.as_ref())
                .map(|s| s.fields.iter().map(|f| f.ty).collect());
            // A join's right side (input 1) carries the right's records.
            let right: Option<Vec<_>> = match vertex.operators.first().map(|o| &o.kind) {
                Some(OperatorKind::Join(j)) => Some(j.right.fields.iter().map(|f| f.ty).collect()),
                _ => None,
            };
            for c in inputs.iter_mut() {
                match (c.input(), &types, &right) {
                    (0, Some(t), _) => c.expect(t.clone()),
                    (1, _, Some(t)) => c.expect(t.clone()),
                    _ => {}
                }
            }
            Head::Inputs(inputs)
        }
    };
    let out_types: Vec<_> =
        vertex.operators.last().map(|o| o.output.fields.iter().map(|f| f.ty).collect()).unwrap_or_default();
    // Outputs: one edge per downstream vertex, one channel per receiving subtask.
    let mut outputs = Vec::new();
    for (dst, edge) in graph.outputs(v) {
        let dst_in = graph.inputs(dst);
        // By the edge itself: one vertex may feed both inputs of a join.
        let input_idx = dst_in
            .iter()
            .position(|(s, e)| *s == v && std::ptr::eq(*e, edge))
            .ok_or_else(|| setup("edge not found at its target".into()))?;
        let dst_p = graph.graph[dst].parallelism;
        let targets: Vec<u32> = match edge.ship {
            ShipStrategy::Forward => vec![id.subtask],
            _ => (0..dst_p).collect(),
        };
        let mut channels = Vec::new();
        let mut names = Vec::new();
        for t in targets {
            let target = SubtaskId { vertex: dst.index() as u32, subtask: t };
            let ck = ChannelKey {
                job_id: key.0,
                attempt: key.1,
                target,
                input: input_idx as u32,
                source_subtask: id.subtask,
            };
            let tx = if local.contains(&target) {
                lock(local_senders).remove(&ck).ok_or_else(|| setup(format!("no local channel to {target}")))?
            } else {
                let addr = placement
                    .get(dst.index())
                    .and_then(|p| p.get(t as usize))
                    .ok_or_else(|| setup(format!("no placement for {target}")))?;
                exchange.connect(addr, ck).map_err(|e| setup(format!("cannot connect to {addr} for {target}: {e}")))?
            };
            channels.push(tx);
            names.push(format!("{}#{}", graph.graph[dst].name, t));
        }
        // A late edge carries the window's input records.
        let types = match (edge.late, vertex.operators.last().and_then(|o| o.input.as_ref())) {
            (true, Some(input)) => input.fields.iter().map(|f| f.ty).collect(),
            _ => out_types.clone(),
        };
        let mut output = OutputEdge::new(edge.ship.clone(), channels, names, types, vertex.max_parallelism, id.subtask);
        output.late = edge.late;
        outputs.push(output);
    }
    Ok(Task {
        job_id: key.0,
        attempt: key.1,
        id,
        name: vertex.name.clone(),
        head,
        chain,
        sink,
        outputs,
        cancel,
        counters,
        checkpoints: CheckpointCtx {
            vertex: vertex.id,
            vertex_name: vertex.name.clone(),
            parallelism: vertex.parallelism,
            source: source_info,
            chain: chain_info,
            sink: sink_info,
            triggers,
            completions,
            report,
            storage,
        },
        stopped: false,
        stop_checkpoint: None,
        completed_checkpoint: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(body: &str) -> JobGraph {
        let text = format!(
            "job \"T\"\nschema E {{ id: long, n: long, k: string }}\nsource kafka {{ servers: \"k:9092\", topic: \"in\", schema: E }}\n{body}\n"
        );
        let src = flowc_dsl::SourceFile::new("t.flow", &text);
        let options = flowc_compiler::CheckOptions { parallelism: Some(2), ..Default::default() };
        flowc_compiler::compile(&src, &options).expect("compiles").graph
    }

    /// Whether the job's source keeps its records' origins.
    fn keeps_origins(g: &JobGraph) -> bool {
        let v = g.graph.node_indices().find(|v| g.graph[*v].operators[0].kind.is_source()).expect("a source");
        dead_letters_after(g, v, 0)
    }

    #[test]
    fn a_source_keeps_origins_only_when_a_stage_after_it_dead_letters() {
        let dlq = "set pipeline.dead-letter.topic = \"dlq\"\nset pipeline.dead-letter.servers = \"k:9092\"";
        let chained = graph(&format!("    | map {{ id, r: 100 / n }} on_error dead_letter\n    | sink discard\n{dlq}"));
        assert!(keeps_origins(&chained));
        // After a HASH edge: the aggregate's vertex.
        let keyed = graph(&format!(
            "    | key_by k\n    | aggregate {{ k, t: sum(100 / n) }} on_error dead_letter\n    | sink discard\n{dlq}"
        ));
        assert!(keyed.graph.node_count() > 1, "an aggregate after a HASH edge");
        assert!(keeps_origins(&keyed));
        // A Kafka sink that dead-letters what it cannot write, after a HASH edge.
        let sink = graph(&format!(
            "    | key_by k\n    | aggregate {{ k, t: count() }}\n    | sink kafka {{ servers: \"k:9092\", topic: \"out\", on_error: dead_letter }}\n{dlq}"
        ));
        assert!(keeps_origins(&sink));
        let skipping = graph("    | sink kafka { servers: \"k:9092\", topic: \"out\", on_error: skip }");
        assert!(!keeps_origins(&skipping));
        for other in ["on_error skip", ""] {
            let g = graph(&format!("    | map {{ id, r: 100 / n }} {other}\n    | sink discard"));
            assert!(!keeps_origins(&g), "`{other}` costs nothing");
        }
    }
}
