//! The physical job graph: vertices that run chains of operators at a
//! parallelism, connected by FORWARD, HASH or REBALANCE edges.
//!
//! Chaining follows Flink's rule: an operator joins its input's task when
//! chaining is on, the edge is FORWARD, both have the same parallelism, and
//! neither side fans out or in. Where a FORWARD edge joins different
//! parallelisms it becomes REBALANCE, as in Flink.

use crate::ids::{operator_id_from_name, operator_id_from_uid, OperatorId, VertexId};
use crate::ir::{OperatorKind, Schema};
use crate::logical::{JobSettings, LogicalPlan, Partitioning};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobGraph {
    pub name: String,
    pub settings: JobSettings,
    pub graph: DiGraph<JobVertex, JobEdge>,
    /// The Rust files the job's expressions call ([`Expr::Udf`](crate::ir::Expr::Udf)).
    pub udfs: Vec<crate::ir::UdfLibrary>,
    /// The job file it was compiled from, for run-time errors that name a
    /// place in it ([`Expr::At`](crate::ir::Expr::At)); the runtime quotes
    /// it and never parses it.
    pub source: Option<JobSource>,
}

/// The name and text of the job file a plan was compiled from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSource {
    pub name: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobVertex {
    pub id: VertexId,
    /// The chain's names joined by " -> ", as Flink shows them.
    pub name: String,
    pub parallelism: u32,
    pub max_parallelism: u32,
    /// The operators of the chain, first to last.
    pub operators: Vec<ChainedOperator>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainedOperator {
    pub id: OperatorId,
    pub uid: Option<String>,
    pub name: String,
    pub kind: OperatorKind,
    pub input: Option<Schema>,
    pub output: Schema,
    /// What a `filter`, `map` or `select` does with a record its
    /// expressions fail on (`on_error`); `None` fails the task.
    #[serde(default)]
    pub on_error: Option<crate::ir::ErrorPolicy>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEdge {
    pub ship: ShipStrategy,
    /// Which logical input of the target it feeds: 0, or 1 for a join's
    /// right side. A union's edges are all input 0.
    pub input: u32,
    /// The edge carries the sender's late records (a window's `late:`
    /// side output), not its output.
    #[serde(default)]
    pub late: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShipStrategy {
    /// Subtask i sends to subtask i.
    Forward,
    /// By key group of the hash of these fields of the sender's output.
    Hash { key: Vec<usize> },
    /// Round robin over the receivers.
    Rebalance,
    /// By key group of the hash of each record's timestamp (the rows of a
    /// window: `top`); shown as HASH, as Flink shows its hash on a window.
    Window,
    /// By key group of the hash of each record's timestamp and these
    /// fields (the rows of a window and partition: `top … per k`). Last,
    /// so that plans of format 12 decode unchanged.
    WindowKey { key: Vec<usize> },
}

impl fmt::Display for ShipStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ShipStrategy::Forward => "FORWARD",
            ShipStrategy::Hash { .. } | ShipStrategy::Window | ShipStrategy::WindowKey { .. } => "HASH",
            ShipStrategy::Rebalance => "REBALANCE",
        })
    }
}

impl JobGraph {
    pub fn vertex_count(&self) -> usize {
        self.graph.node_count()
    }

    /// Vertices in topological order (sources first).
    pub fn topological(&self) -> Vec<NodeIndex> {
        petgraph::algo::toposort(&self.graph, None).unwrap_or_else(|_| self.graph.node_indices().collect())
    }

    /// The inputs of a vertex, with their edges: by logical input, then by
    /// sender, then by edge (one sender may feed both sides of a join).
    /// The position in this list is the input's stable index on the wire.
    pub fn inputs(&self, v: NodeIndex) -> Vec<(NodeIndex, &JobEdge)> {
        let mut ins: Vec<_> = self
            .graph
            .edges_directed(v, Direction::Incoming)
            .map(|e| (e.source(), e.weight(), e.id().index()))
            .collect();
        ins.sort_by_key(|(n, e, id)| (e.input, n.index(), *id));
        ins.into_iter().map(|(n, e, _)| (n, e)).collect()
    }

    pub fn outputs(&self, v: NodeIndex) -> Vec<(NodeIndex, &JobEdge)> {
        let mut outs: Vec<_> =
            self.graph.edges_directed(v, Direction::Outgoing).map(|e| (e.target(), e.weight())).collect();
        outs.sort_by_key(|(n, _)| n.index());
        outs
    }

    pub fn vertex_by_id(&self, id: VertexId) -> Option<NodeIndex> {
        self.graph.node_indices().find(|n| self.graph[*n].id == id)
    }

    /// The same graph, knowing the job file it was compiled from.
    pub fn with_source(mut self, src: &flowc_dsl::SourceFile) -> JobGraph {
        self.source = Some(JobSource { name: src.name.clone(), text: src.text.clone() });
        self
    }

    /// The largest parallelism of any vertex: the slots the job needs.
    pub fn total_parallelism(&self) -> u32 {
        self.graph.node_weights().map(|v| v.parallelism).max().unwrap_or(0)
    }
}

/// Builds the job graph of a checked plan.
pub fn build(plan: &LogicalPlan) -> JobGraph {
    let settings = &plan.settings;
    let n = plan.operators.len();
    let parallelism: Vec<u32> = plan.operators.iter().map(|o| o.parallelism.unwrap_or(settings.parallelism)).collect();
    let mut outs = vec![0usize; n];
    let mut ins = vec![0usize; n];
    for e in &plan.edges {
        outs[e.from] += 1;
        ins[e.to] += 1;
    }
    // Operator ids: by uid, or by name and occurrence.
    let mut seen_names: HashMap<&str, u32> = HashMap::new();
    let ids: Vec<OperatorId> = plan
        .operators
        .iter()
        .map(|o| match &o.uid {
            Some(u) => operator_id_from_uid(u),
            None => {
                let nth = seen_names.entry(o.name.as_str()).or_insert(0);
                let id = operator_id_from_name(&o.name, *nth);
                *nth += 1;
                id
            }
        })
        .collect();

    // A window's late records (`OperatorKind::LateOutput`) are no vertex:
    // edges from one leave its window's vertex as a late edge.
    let late_of = |op: usize| -> Option<usize> {
        matches!(plan.operators[op].kind, OperatorKind::LateOutput)
            .then(|| plan.edges.iter().find(|e| e.to == op).map(|e| e.from))
            .flatten()
    };
    // Operators were added after their inputs, so index order is topological.
    let mut vertex_of: Vec<usize> = vec![usize::MAX; n];
    let mut chains: Vec<Vec<usize>> = Vec::new();
    for op in 0..n {
        if matches!(plan.operators[op].kind, OperatorKind::LateOutput) {
            continue;
        }
        let input = plan.edges.iter().find(|e| e.to == op);
        let chained_to = input.filter(|e| {
            settings.chaining
                && late_of(e.from).is_none()
                && matches!(e.partitioning, Partitioning::Forward | Partitioning::KeyedForward { .. })
                && parallelism[e.from] == parallelism[op]
                && outs[e.from] == 1
                && ins[op] == 1
        });
        match chained_to {
            Some(e) => {
                let v = vertex_of[e.from];
                chains[v].push(op);
                vertex_of[op] = v;
            }
            None => {
                chains.push(vec![op]);
                vertex_of[op] = chains.len() - 1;
            }
        }
    }
    let mut graph = DiGraph::new();
    let nodes: Vec<NodeIndex> = chains
        .iter()
        .map(|chain| {
            let head = chain[0];
            let operators: Vec<ChainedOperator> = chain
                .iter()
                .map(|&i| {
                    let o = &plan.operators[i];
                    ChainedOperator {
                        id: ids[i],
                        uid: o.uid.clone(),
                        name: o.name.clone(),
                        kind: o.kind.clone(),
                        input: o.input.clone(),
                        output: o.output.clone(),
                        on_error: o.on_error.clone(),
                    }
                })
                .collect();
            let name = operators.iter().map(|o| o.name.as_str()).collect::<Vec<_>>().join(" -> ");
            graph.add_node(JobVertex {
                id: ids[head],
                name,
                parallelism: parallelism[head],
                max_parallelism: settings.max_parallelism,
                operators,
            })
        })
        .collect();
    for e in &plan.edges {
        if matches!(plan.operators[e.to].kind, OperatorKind::LateOutput) {
            continue;
        }
        let (from, late) = match late_of(e.from) {
            Some(window) => (window, true),
            None => (e.from, false),
        };
        let (a, b) = (vertex_of[from], vertex_of[e.to]);
        if a == b || a == usize::MAX {
            continue;
        }
        let ship = match &e.partitioning {
            Partitioning::Hash { key } => ShipStrategy::Hash { key: key.clone() },
            Partitioning::Window { key } if key.is_empty() => ShipStrategy::Window,
            Partitioning::Window { key } => ShipStrategy::WindowKey { key: key.clone() },
            Partitioning::Forward if parallelism[from] == parallelism[e.to] => ShipStrategy::Forward,
            Partitioning::Forward => ShipStrategy::Rebalance,
            Partitioning::KeyedForward { .. } if parallelism[e.from] == parallelism[e.to] => ShipStrategy::Forward,
            Partitioning::KeyedForward { key } => ShipStrategy::Hash { key: key.clone() },
        };
        graph.add_edge(nodes[a], nodes[b], JobEdge { ship, input: e.input, late });
    }
    JobGraph { name: plan.name.clone(), settings: settings.clone(), graph, source: None, udfs: plan.udfs.clone() }
}
