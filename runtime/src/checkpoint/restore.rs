//! Restoring a subtask from a checkpoint or savepoint, at any parallelism.
//!
//! Keyed state is matched by operator id (derived from the uid) and
//! redistributed by key group: the new subtask `i` of `p` takes exactly the
//! key groups `key_group_range(i, p, maxParallelism)` from whichever old
//! subtasks held them. Source positions are redistributed by the
//! JobManager, which assigns partitions with their offsets.

use super::format::{CheckpointMetadata, OperatorState, StateError, TaskEntry, TaskState};
use super::storage::{read_state, CheckpointStorage};
use super::SourceState;
use crate::ids::SubtaskId;
use crate::state::KeyedSnapshot;
use flowc_compiler::graph::JobGraph;
use flowc_compiler::ids::OperatorId;
use flowc_compiler::ir::OperatorKind;
use std::collections::{HashMap, HashSet};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The key groups in `range` of one operator, from the old subtasks' states.
pub fn select_key_groups<'a>(
    states: impl IntoIterator<Item = &'a OperatorState>,
    range: &RangeInclusive<u32>,
) -> KeyedSnapshot {
    let mut key_groups: Vec<(u32, Vec<u8>)> =
        states.into_iter().flat_map(|s| s.keyed.iter()).filter(|(kg, _)| range.contains(kg)).cloned().collect();
    key_groups.sort_by_key(|(kg, _)| *kg);
    KeyedSnapshot { key_groups }
}

/// A checkpoint opened for restoring the subtasks of one deployment: reads
/// each state file at most once, and hands each part of it out once.
///
/// A key group goes to exactly one new subtask, and an old subtask's raw
/// state to one: so each request *moves* its parts out of the files read,
/// and a file is forgotten once nothing is left in it. The deployment holds
/// the checkpoint's state about once, not the files plus every subtask's
/// copy of its share.
pub struct Restorer {
    storage: Arc<dyn CheckpointStorage>,
    dir: PathBuf,
    pub metadata: CheckpointMetadata,
    files: HashMap<String, TaskState>,
    /// Files read and emptied: not read again.
    emptied: HashSet<String>,
}

impl Restorer {
    /// Opens the checkpoint at `dir` (a path or an `s3://` location) in `storage`.
    pub fn open(storage: Arc<dyn CheckpointStorage>, dir: &Path) -> Result<Restorer, StateError> {
        let metadata = storage.read_metadata(dir)?;
        Ok(Restorer { storage, dir: dir.to_path_buf(), metadata, files: HashMap::new(), emptied: HashSet::new() })
    }

    fn load(&mut self, files: &[String]) -> Result<(), StateError> {
        for f in files {
            if !self.files.contains_key(f) && !self.emptied.contains(f) {
                let state = read_state(&*self.storage, &self.dir.join(f))?;
                self.files.insert(f.clone(), state);
            }
        }
        Ok(())
    }

    /// Forgets the files of `names` that have nothing left to hand out.
    fn forget_emptied(&mut self, names: &[String]) {
        for f in names {
            let empty =
                self.files.get(f).is_some_and(|t| t.operators.iter().all(|o| o.keyed.is_empty() && o.raw.is_empty()));
            if empty {
                self.files.remove(f);
                self.emptied.insert(f.clone());
            }
        }
    }

    /// The state files read and not yet emptied.
    pub fn files_held(&self) -> usize {
        self.files.len()
    }

    /// The subtask states of `operator` that go to new subtask `subtask` of
    /// `parallelism`: those of the old subtasks `j` with `j % parallelism == subtask`.
    pub fn raw_states(
        &mut self,
        operator: OperatorId,
        subtask: u32,
        parallelism: u32,
    ) -> Result<Vec<Vec<u8>>, StateError> {
        let files: Vec<(u32, String)> = self
            .metadata
            .tasks
            .iter()
            .filter(|t| t.subtask % parallelism.max(1) == subtask)
            .filter(|t| t.operators.iter().any(|o| o.operator == operator && o.raw))
            .filter_map(|t| t.file.clone().map(|f| (t.subtask, f)))
            .collect();
        let names: Vec<String> = files.iter().map(|(_, f)| f.clone()).collect();
        self.load(&names)?;
        let mut raw = Vec::new();
        for f in &names {
            let Some(t) = self.files.get_mut(f) else { continue };
            for o in t.operators.iter_mut().filter(|o| o.operator == operator) {
                raw.push(std::mem::take(&mut o.raw));
            }
        }
        self.forget_emptied(&names);
        raw.retain(|r| !r.is_empty());
        Ok(raw)
    }

    /// The keyed state of `operator` in the key groups of `range`.
    pub fn keyed_state(
        &mut self,
        operator: OperatorId,
        range: &RangeInclusive<u32>,
    ) -> Result<KeyedSnapshot, StateError> {
        let files: Vec<String> = self
            .metadata
            .tasks
            .iter()
            .filter(|t| t.operators.iter().any(|o| o.operator == operator && o.keyed))
            .filter_map(|t| t.file.clone())
            .collect();
        self.load(&files)?;
        let mut key_groups = Vec::new();
        for f in &files {
            let Some(t) = self.files.get_mut(f) else { continue };
            for o in t.operators.iter_mut().filter(|o| o.operator == operator) {
                let (mine, rest): (Vec<_>, Vec<_>) =
                    std::mem::take(&mut o.keyed).into_iter().partition(|(kg, _)| range.contains(kg));
                o.keyed = rest;
                key_groups.extend(mine);
            }
        }
        self.forget_emptied(&files);
        key_groups.sort_by_key(|(kg, _)| *kg);
        Ok(KeyedSnapshot { key_groups })
    }
}

/// Checks, before a job starts, that it can restore from `dir`: the
/// metadata and every state file are intact, the key groups match, and
/// every operator with state finds its operator in the job (by uid) unless
/// `allow_non_restored` says to drop the state of those that do not.
pub fn check_restore(
    storage: &dyn CheckpointStorage,
    graph: &JobGraph,
    dir: &Path,
    allow_non_restored: bool,
) -> Result<CheckpointMetadata, StateError> {
    let metadata = storage.read_metadata(dir)?;
    for t in &metadata.tasks {
        if let Some(f) = &t.file {
            read_state(storage, &dir.join(f))?;
        }
    }
    let ops: Vec<&flowc_compiler::graph::ChainedOperator> =
        graph.graph.node_weights().flat_map(|v| v.operators.iter()).collect();
    let mut missing = Vec::new();
    for (id, uid, name) in metadata.stateful_operators() {
        if !ops.iter().any(|o| o.id == id) {
            missing.push(match uid {
                Some(u) => format!("`{name}` (uid `{u}`)"),
                None => format!("`{name}` (no uid)"),
            });
        }
    }
    if !missing.is_empty() && !allow_non_restored {
        return Err(StateError::Incompatible(format!(
            "the savepoint has state for operators the job does not have: {}; give them the same uid in the job, or pass --allow-non-restored-state (REST: allowNonRestoredState) to drop that state",
            missing.join(", ")
        )));
    }
    let keyed_here =
        metadata.tasks.iter().any(|t| t.operators.iter().any(|o| o.keyed && ops.iter().any(|j| j.id == o.operator)));
    let maxp = graph.graph.node_weights().map(|v| v.max_parallelism).max().unwrap_or(metadata.max_parallelism);
    if keyed_here && maxp != metadata.max_parallelism {
        return Err(StateError::Incompatible(format!(
            "the savepoint's keyed state is in {} key groups (max parallelism), the job has {maxp}: keep pipeline.max-parallelism at {}",
            metadata.max_parallelism, metadata.max_parallelism
        )));
    }
    Ok(metadata)
}

/// Where each source subtask of `graph` continues: Kafka partitions take
/// the offsets the checkpoint recorded for them, whichever old subtask read
/// them; file source subtasks get every file's position (each reads its own
/// files); datagen and nexmark subtasks resume only at the same parallelism.
pub fn source_positions(
    graph: &JobGraph,
    splits: &[(SubtaskId, Vec<i32>)],
    metadata: &CheckpointMetadata,
) -> Vec<(SubtaskId, SourceState)> {
    let mut out = Vec::new();
    for n in graph.graph.node_indices() {
        let v = &graph.graph[n];
        let Some(op) = v.operators.first().filter(|o| o.kind.is_source()) else { continue };
        let entries: Vec<(&TaskEntry, &SourceState)> = metadata
            .tasks
            .iter()
            .flat_map(|t| t.operators.iter().filter(|o| o.operator == op.id).map(move |o| (t, &o.source)))
            .collect();
        for s in 0..v.parallelism {
            let id = SubtaskId { vertex: n.index() as u32, subtask: s };
            let state = match &op.kind {
                // Every subtask gets every (topic, partition)'s offset and keeps its own,
                // from states of one topic too (the job read one before).
                OperatorKind::KafkaSource(k) if k.topics.is_some() => {
                    let mut offsets: Vec<(String, i32, i64)> =
                        entries.iter().flat_map(|(_, st)| st.kafka_offsets()).collect();
                    offsets.sort_unstable();
                    offsets.dedup();
                    SourceState::KafkaTopics { offsets }
                }
                OperatorKind::KafkaSource(k) => {
                    let parts = splits.iter().find(|(x, _)| *x == id).map(|(_, p)| p.as_slice()).unwrap_or(&[]);
                    // Of a state of one topic, or of several (the job read more before).
                    let mut offsets: Vec<(i32, i64)> = entries
                        .iter()
                        .flat_map(|(_, st)| st.kafka_offsets())
                        .filter(|(t, p, _)| *t == k.topic && parts.contains(p))
                        .map(|(_, p, o)| (p, o))
                        .collect();
                    offsets.sort_unstable();
                    offsets.dedup();
                    SourceState::Kafka { topic: k.topic.clone(), offsets }
                }
                // Every subtask gets every file's position and keeps its own files'.
                OperatorKind::FileSource(_) => SourceState::Files {
                    files: entries
                        .iter()
                        .filter_map(|(_, st)| match st {
                            SourceState::Files { files } => Some(files.iter().cloned()),
                            _ => None,
                        })
                        .flatten()
                        .collect(),
                },
                OperatorKind::DatagenSource(_) | OperatorKind::NexmarkSource(_) => entries
                    .iter()
                    .find(|(t, _)| t.subtask == s && t.parallelism == v.parallelism)
                    .map_or(SourceState::None, |(_, st)| (*st).clone()),
                _ => SourceState::None,
            };
            out.push((id, state));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Batch;
    use crate::keygroup::{key_group_range, Key};
    use crate::metrics::TaskCounters;
    use crate::operators::window::WindowOperator;
    use crate::operators::Operator;
    use crate::record::{Signal, Value};
    use flowc_compiler::ir::{
        AggCall, AggFunc, DataType, Expr, Field, Schema, TimeDomain, WindowAggregate, WindowKind, WindowSpec,
    };
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    fn window_op() -> WindowOperator {
        let spec = WindowAggregate {
            key: vec![1],
            window: WindowSpec { kind: WindowKind::Tumbling { size_ms: 1000 }, time: TimeDomain::EventTime },
            aggregates: vec![AggCall {
                func: AggFunc::Sum,
                arg: Some(Expr::Field(2)),
                arg_type: DataType::Long,
                result_type: DataType::Long,
            }],
            output: vec![Expr::WindowStart, Expr::Key(0), Expr::Aggregate(0)],
            lateness_ms: 0,
            late_output: false,
        };
        let schema =
            |f: &[(&str, DataType)]| Schema { name: None, fields: f.iter().map(|(n, t)| Field::new(*n, *t)).collect() };
        let input = schema(&[("t", DataType::Timestamp), ("k", DataType::Long), ("v", DataType::Long)]);
        let output = schema(&[("w", DataType::Timestamp), ("k", DataType::Long), ("sum", DataType::Long)]);
        let counters = Arc::new(TaskCounters::new());
        WindowOperator::new("w".into(), spec, &input, &output, 128, counters, &Default::default()).expect("builds")
    }

    /// Runs `events` (time, key, value) through `p` subtasks routed by key
    /// group, snapshots each, restores into `p2` subtasks, and fires all
    /// windows: the results are a model of the state.
    fn rescale(events: &[(i64, u32, i64)], p: u32, p2: u32) -> (BTreeMap<String, i64>, BTreeMap<String, i64>) {
        let maxp = 128;
        let mut ops: Vec<WindowOperator> = (0..p).map(|_| window_op()).collect();
        let mut model: BTreeMap<String, i64> = BTreeMap::new();
        for &(t, k, v) in events {
            let key = Key(vec![Value::Int(i64::from(k))]);
            let kg = key.key_group(maxp);
            let sub = crate::keygroup::subtask_for_key_group(kg, p, maxp) as usize;
            let rec = (t, vec![Value::Timestamp(t), Value::Int(i64::from(k)), Value::Int(v)]);
            let types = [DataType::Timestamp, DataType::Long, DataType::Long];
            ops[sub].process(Batch::from_rows(&types, &[rec]).expect("fits"), &mut Vec::new()).unwrap();
            *model.entry(format!("{}/{k}", t - t.rem_euclid(1000))).or_default() += v;
        }
        let states: Vec<OperatorState> = ops
            .iter()
            .map(|o| OperatorState { operator: Default::default(), keyed: o.snapshot().key_groups, raw: Vec::new() })
            .collect();
        let mut restored = BTreeMap::new();
        for i in 0..p2 {
            let mut op = window_op();
            op.restore(select_key_groups(&states, &key_group_range(i, p2, maxp))).unwrap();
            let mut out = Vec::new();
            op.on_signal(Signal::Watermark(i64::MAX), &mut out).unwrap();
            for (_, r) in out.iter().flat_map(|b| b.rows()) {
                let (Value::Timestamp(w), Value::Int(k), Value::Int(sum)) = (&r[0], &r[1], &r[2]) else {
                    panic!("unexpected output {r:?}")
                };
                // Every key lands in the subtask that owns its key group.
                let kg = Key(vec![Value::Int(*k)]).key_group(maxp);
                assert!(key_group_range(i, p2, maxp).contains(&kg));
                assert!(restored.insert(format!("{w}/{k}"), *sum).is_none(), "a window fired twice");
            }
        }
        (model, restored)
    }

    proptest! {
        #[test]
        fn state_restored_at_another_parallelism_equals_the_snapshot(
            events in proptest::collection::vec((0i64..10_000, 0u32..50, -100i64..100), 0..300),
            p in 1u32..=8,
            p2 in 1u32..=8,
        ) {
            let (model, restored) = rescale(&events, p, p2);
            prop_assert_eq!(model, restored);
        }
    }

    #[test]
    fn rescale_to_max_parallelism_and_back() {
        let events: Vec<(i64, u32, i64)> = (0..1000).map(|i| (i * 7, (i % 97) as u32, i)).collect();
        let (model, restored) = rescale(&events, 3, 128);
        assert_eq!(model, restored);
        let (model, restored) = rescale(&events, 128, 1);
        assert_eq!(model, restored);
    }

    /// A Kafka source's position as a checkpoint held it before sources of
    /// several topics: `SourceState::Kafka { topic: "clicks-eu", offsets:
    /// [(0, 5), (1, 7)] }` in bincode (variant 1, the topic, zigzag varints).
    const KAFKA_STATE_V1: &[u8] = b"\x01\x09clicks-eu\x02\x00\x0a\x02\x0e";

    #[test]
    fn an_old_kafka_position_restores_a_source_of_several_topics() {
        let (old, _): (SourceState, usize) =
            bincode::serde::decode_from_slice(KAFKA_STATE_V1, bincode::config::standard()).unwrap();
        assert_eq!(old, SourceState::Kafka { topic: "clicks-eu".into(), offsets: vec![(0, 5), (1, 7)] });
        // The format of the old variant has not changed.
        assert_eq!(bincode::serde::encode_to_vec(&old, bincode::config::standard()).unwrap(), KAFKA_STATE_V1);
        let src = flowc_dsl::SourceFile::new(
            "t.flow",
            r#"
            job "T"
            schema E { n: long }
            source kafka { servers: "k:9092", topics: ["clicks-eu", "clicks-us"], schema: E } | sink discard
            "#,
        );
        let options = flowc_compiler::CheckOptions { parallelism: Some(2), ..Default::default() };
        let graph = flowc_compiler::compile(&src, &options).expect("compiles").graph;
        let source = graph.graph.node_weights().next().unwrap();
        let entry = |subtask: u32, source_state: SourceState| TaskEntry {
            vertex: source.id,
            vertex_name: source.name.clone(),
            subtask,
            parallelism: 1,
            operators: vec![crate::checkpoint::format::OperatorEntry {
                operator: source.operators[0].id,
                uid: None,
                name: source.operators[0].name.clone(),
                keyed: false,
                raw: false,
                source: source_state,
            }],
            file: None,
            size: 0,
        };
        let metadata = CheckpointMetadata {
            job_id: "j".into(),
            job_name: "T".into(),
            checkpoint_id: 1,
            savepoint: true,
            timestamp: 0,
            max_parallelism: 128,
            tasks: vec![entry(0, old)],
        };
        let positions = source_positions(&graph, &[], &metadata);
        let want = SourceState::KafkaTopics { offsets: vec![("clicks-eu".into(), 0, 5), ("clicks-eu".into(), 1, 7)] };
        assert_eq!(positions.len(), 2);
        for (_, p) in &positions {
            assert_eq!(*p, want, "every subtask gets every offset and keeps its own partitions'");
        }
        // A state of the new kind restores too, and a mix of both is merged.
        let mut newer = metadata.clone();
        newer.tasks.push(entry(1, SourceState::KafkaTopics { offsets: vec![("clicks-us".into(), 0, 3)] }));
        let positions = source_positions(&graph, &[], &newer);
        assert_eq!(positions[0].1.kafka_offsets().len(), 3);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// A checkpoint of `old` subtasks read back at `new` subtasks
        /// through one Restorer: every key group reaches exactly the new
        /// subtask whose range holds it, bytes unchanged; each old
        /// subtask's raw state reaches one new subtask; and once every new
        /// subtask took its part the Restorer holds no file.
        #[test]
        fn a_restorer_hands_each_part_out_once_and_then_holds_nothing(
            old in 1u32..5,
            new in 1u32..6,
            groups in proptest::collection::btree_map(0u32..128, proptest::collection::vec(any::<u8>(), 0..24), 0..40),
        ) {
            use crate::checkpoint::format::OperatorEntry;
            use crate::checkpoint::storage::FileStorage;
            let path = std::env::temp_dir()
                .join(format!("flowc-restorer-{}-{:x}", std::process::id(), rand::random::<u64>()));
            std::fs::create_dir_all(&path).unwrap();
            struct Gone(PathBuf);
            impl Drop for Gone {
                fn drop(&mut self) {
                    let _ = std::fs::remove_dir_all(&self.0);
                }
            }
            let dir = Gone(path);
            let storage: Arc<dyn CheckpointStorage> = Arc::new(FileStorage);
            let (op, other) = (flowc_compiler::ids::operator_id_from_uid("op"), flowc_compiler::ids::operator_id_from_uid("other"));
            let vertex = flowc_compiler::ids::VertexId::default();
            let mut tasks = Vec::new();
            for j in 0..old {
                let range = key_group_range(j, old, 128);
                let keyed: Vec<(u32, Vec<u8>)> =
                    groups.iter().filter(|(kg, _)| range.contains(*kg)).map(|(k, v)| (*k, v.clone())).collect();
                // Two operators per file: `other`'s parts are taken as well.
                let state = TaskState {
                    vertex,
                    subtask: j,
                    operators: vec![
                        OperatorState { operator: op, keyed: keyed.clone(), raw: vec![j as u8 + 1] },
                        OperatorState { operator: other, keyed, raw: Vec::new() },
                    ],
                };
                let name = format!("task-{j}.state");
                let size = storage.write_task_state(&dir.0, &name, &state).unwrap();
                let entry = |operator, raw| OperatorEntry { operator, uid: None, name: String::new(), keyed: true, raw, source: SourceState::None };
                tasks.push(TaskEntry {
                    vertex,
                    vertex_name: "v".into(),
                    subtask: j,
                    parallelism: old,
                    operators: vec![entry(op, true), entry(other, false)],
                    file: Some(name),
                    size,
                });
            }
            let metadata = CheckpointMetadata {
                job_id: "j".into(), job_name: "J".into(), checkpoint_id: 1, savepoint: false,
                timestamp: 0, max_parallelism: 128, tasks,
            };
            storage.write_metadata(&dir.0, &metadata).unwrap();
            let mut r = Restorer::open(storage, &dir.0).unwrap();
            let (mut got, mut got_other, mut raws) = (BTreeMap::new(), BTreeMap::new(), Vec::new());
            for i in 0..new {
                let range = key_group_range(i, new, 128);
                for (into, id) in [(&mut got, op), (&mut got_other, other)] {
                    for (kg, bytes) in r.keyed_state(id, &range).unwrap().key_groups {
                        prop_assert!(range.contains(&kg), "key group {} went to subtask {}", kg, i);
                        prop_assert!(into.insert(kg, bytes).is_none(), "key group {} handed out twice", kg);
                    }
                }
                raws.extend(r.raw_states(op, i, new).unwrap());
            }
            prop_assert_eq!(&got, &groups);
            prop_assert_eq!(&got_other, &groups);
            raws.sort();
            prop_assert_eq!(raws, (0..old).map(|j| vec![j as u8 + 1]).collect::<Vec<_>>());
            prop_assert_eq!(r.files_held(), 0);
        }
    }
}
