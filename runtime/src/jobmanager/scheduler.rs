//! Scheduling, without I/O: slot sharing as Flink does it — slot `i` of a
//! job holds subtask `i` of every vertex, so a job needs as many slots as
//! its largest parallelism — filled from the free slots on offer, one
//! TaskManager after another; and the Kafka partitions of each source,
//! spread over its subtasks.

use crate::ids::SubtaskId;
use flowc_compiler::graph::JobGraph;
use flowc_compiler::ir::OperatorKind;
use std::collections::BTreeMap;

/// Free slots on one TaskManager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotOffer {
    pub tm: String,
    /// Where other TaskManagers send its tasks records.
    pub data_addr: String,
    pub free: u32,
}

/// What one TaskManager runs of a placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub tm: String,
    /// The job's slots there.
    pub slots: Vec<u32>,
    /// The subtasks to run there.
    pub local: Vec<SubtaskId>,
}

/// A job placed into slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// `addresses[vertex][subtask]`: the data address of its TaskManager.
    pub addresses: Vec<Vec<String>>,
    /// `tms[vertex][subtask]`: its TaskManager.
    pub tms: Vec<Vec<String>>,
    /// Per TaskManager, in the order of the offer.
    pub shares: Vec<Share>,
}

/// Places `graph` into the free slots of `offer`, filling TaskManagers in
/// order; `None` when there are too few.
pub fn place(graph: &JobGraph, offer: &[SlotOffer]) -> Option<Placement> {
    let needed = graph.total_parallelism() as usize;
    let slots: Vec<&SlotOffer> =
        offer.iter().flat_map(|o| std::iter::repeat_n(o, o.free as usize)).take(needed).collect();
    if slots.len() < needed {
        return None;
    }
    let mut shares: BTreeMap<usize, Share> = BTreeMap::new();
    let position = |tm: &str| offer.iter().position(|o| o.tm == tm).unwrap_or(usize::MAX);
    for (i, o) in slots.iter().enumerate() {
        let share = shares.entry(position(&o.tm)).or_insert_with(|| Share {
            tm: o.tm.clone(),
            slots: Vec::new(),
            local: Vec::new(),
        });
        share.slots.push(i as u32);
    }
    let mut addresses = Vec::new();
    let mut tms = Vec::new();
    for (vi, v) in graph.graph.node_weights().enumerate() {
        let mut va = Vec::new();
        let mut vt = Vec::new();
        for s in 0..v.parallelism {
            let o = slots[s as usize];
            va.push(o.data_addr.clone());
            vt.push(o.tm.clone());
            if let Some(share) = shares.get_mut(&position(&o.tm)) {
                share.local.push(SubtaskId { vertex: vi as u32, subtask: s });
            }
        }
        addresses.push(va);
        tms.push(vt);
    }
    Some(Placement { addresses, tms, shares: shares.into_values().collect() })
}

/// The Kafka sources of `graph` that read one topic: (vertex, bootstrap
/// servers, topic). Those of several topics split them between their
/// subtasks themselves (`connectors::kafka_topics`).
pub fn kafka_sources(graph: &JobGraph) -> Vec<(u32, String, String)> {
    graph
        .graph
        .node_indices()
        .filter_map(|n| match graph.graph[n].operators.first().map(|o| &o.kind) {
            Some(OperatorKind::KafkaSource(k)) if k.topics.is_none() => {
                Some((n.index() as u32, k.servers.clone(), k.topic.clone()))
            }
            _ => None,
        })
        .collect()
}

/// The topics Kafka sources list by name (`topics: [..]`), which must
/// exist when the job starts: (bootstrap servers, topic).
pub fn listed_topics(graph: &JobGraph) -> Vec<(String, String)> {
    graph
        .graph
        .node_weights()
        .filter_map(|v| match v.operators.first().map(|o| &o.kind) {
            Some(OperatorKind::KafkaSource(k)) => match &k.topics {
                Some(flowc_compiler::ir::TopicSet::List(t)) => {
                    Some(t.iter().map(|t| (k.servers.clone(), t.clone())).collect::<Vec<_>>())
                }
                _ => None,
            },
            _ => None,
        })
        .flatten()
        .collect()
}

/// The `count` partitions of vertex `vertex`'s topic, over its subtasks:
/// partition `p` to subtask `p mod parallelism`.
pub fn spread_partitions(graph: &JobGraph, vertex: u32, count: i32) -> Vec<(SubtaskId, Vec<i32>)> {
    let parallelism = graph.graph.node_weights().nth(vertex as usize).map_or(1, |v| v.parallelism.max(1));
    (0..parallelism)
        .map(|s| {
            let parts = (0..count).filter(|p| (*p as u32) % parallelism == s).collect();
            (SubtaskId { vertex, subtask: s }, parts)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn graph(parallelism: u32) -> JobGraph {
        let src = flowc_dsl::SourceFile::new(
            "t.flow",
            r#"
            job "T"
            set pipeline.operator-chaining = false
            schema N { n: long }
            source datagen { schema: N } | filter n % 2 == 0 | sink discard
            "#,
        );
        let options = flowc_compiler::CheckOptions { parallelism: Some(parallelism), ..Default::default() };
        flowc_compiler::compile(&src, &options).expect("compiles").graph
    }

    fn offer(tms: &[(&str, u32)]) -> Vec<SlotOffer> {
        tms.iter()
            .map(|(tm, free)| SlotOffer { tm: tm.to_string(), data_addr: format!("{tm}:1"), free: *free })
            .collect()
    }

    #[test]
    fn slot_i_holds_subtask_i_of_every_vertex_filling_taskmanagers_in_order() {
        let g = graph(3);
        assert_eq!(place(&g, &offer(&[("a", 2)])), None, "three slots needed");
        let p = place(&g, &offer(&[("a", 2), ("b", 2)])).expect("placed");
        assert_eq!(p.tms[0], vec!["a", "a", "b"]);
        assert!(p.tms.iter().all(|v| *v == p.tms[0]), "slot sharing: {:?}", p.tms);
        assert_eq!(p.addresses[1], vec!["a:1", "a:1", "b:1"]);
        assert_eq!(
            p.shares.iter().map(|s| (s.tm.as_str(), s.slots.clone())).collect::<Vec<_>>(),
            vec![("a", vec![0, 1]), ("b", vec![2])]
        );
        let vertices = g.graph.node_count();
        assert_eq!(p.shares[0].local.len(), 2 * vertices);
        assert_eq!(
            p.shares[1].local,
            (0..vertices as u32).map(|v| SubtaskId { vertex: v, subtask: 2 }).collect::<Vec<_>>()
        );
    }

    #[test]
    fn partitions_go_round_robin_over_the_subtasks() {
        let g = graph(2);
        assert_eq!(
            spread_partitions(&g, 0, 3),
            vec![(SubtaskId { vertex: 0, subtask: 0 }, vec![0, 2]), (SubtaskId { vertex: 0, subtask: 1 }, vec![1]),]
        );
        assert!(kafka_sources(&g).is_empty());
    }
}
