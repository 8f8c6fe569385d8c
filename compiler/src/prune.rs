//! Projection push-down (`table.optimizer.projection-pushdown-enabled`):
//! the operators that keep whole rows in state — joins (both inputs),
//! `dedup … keep last`, `top` per key and per window — get only the
//! columns read after them, as Flink's planner prunes each input of a
//! `Join` with a `Calc(select=[…])` before it.
//!
//! The pass runs on the checked [`LogicalPlan`], before the job graph is
//! built. It first computes, from the sinks back, which columns of each
//! operator's output are read downstream: a sink, a `union`, a stage that
//! dead-letters a failed record (the row as it read it) and a stage with a
//! `late:` output read every column; a `select`, `map` or an aggregate
//! reads those its expressions name, and defines a new schema. Then, where
//! a row-keeping operator's input carries a column that neither it (keys,
//! ordering, `deleted` field) nor anything after it reads, it inserts a
//! projection of the read columns on that input, FORWARD from the operator
//! before (so chained with it, upstream of the shuffle: fewer bytes cross
//! the network and reach the state), and re-indexes every field the
//! operators after it name, up to the next schema-defining stage. Fields
//! keep their names, qualifiers and nullability. Event time travels with
//! each record outside its fields, so it is never a reason to keep one.
//!
//! An input whose operator feeds several streams is left whole: its
//! projection could not be chained. Should the plan hold anything the pass
//! does not know how to re-index, the plan is returned as it was.
//!
//! State saved without the pass (rows of every column) does not restore
//! into an operator with it: each row-keeping operator checks the layout
//! of the rows it restores and fails the restore, naming the operator.

use crate::ir::{ErrorPolicy, Expr, Field, JoinBound, OperatorKind, Schema, WindowTopPer};
use crate::logical::{LogicalEdge, LogicalOperator, LogicalPlan, Partitioning};

mod well_formed;

pub use well_formed::well_formed;

/// The plan with projections pushed down, if the job has the setting on
/// (the default); else, or where the pass cannot apply, the plan as it is.
pub fn push_down_projections(plan: LogicalPlan) -> LogicalPlan {
    if !plan.settings.projection_pushdown {
        return plan;
    }
    match prune(&plan) {
        Some(pruned) if well_formed(&pruned).is_ok() => pruned,
        _ => plan,
    }
}

/// Where an output column of a pass-through operator comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// `Input(k, c)`: column `c` of input `k`.
    Input(u32, usize),
    /// Computed by the operator (a rank, an unnested element).
    New,
}

/// Whether the operator keeps whole input rows in state.
fn keeps_rows(kind: &OperatorKind) -> bool {
    match kind {
        OperatorKind::Join(_)
        | OperatorKind::KeyedTop(_)
        | OperatorKind::WindowTop(_)
        | OperatorKind::WindowTopPer(_) => true,
        OperatorKind::Dedup(d) => d.keep_last,
        _ => false,
    }
}

/// The schema of input `input` of `op`.
fn input_schema(op: &LogicalOperator, input: u32) -> Option<&Schema> {
    match (input, &op.kind) {
        (0, _) => op.input.as_ref(),
        (1, OperatorKind::Join(j)) => Some(&j.right),
        _ => None,
    }
}

/// How many inputs (logical) the operator reads.
fn input_count(op: &LogicalOperator) -> u32 {
    match (&op.kind, &op.input) {
        (OperatorKind::Join(_), _) => 2,
        (_, Some(_)) => 1,
        (_, None) => 0,
    }
}

/// Every `Expr::Field` of `e`.
fn expr_fields(e: &mut Expr, f: &mut dyn FnMut(&mut usize)) {
    match e {
        Expr::Field(i) => f(i),
        Expr::Cast(_, x) | Expr::Neg(x) | Expr::Not(x) | Expr::IsNull(x, _) | Expr::At(_, x) => expr_fields(x, f),
        Expr::Binary(_, a, b) => {
            expr_fields(a, f);
            expr_fields(b, f);
        }
        Expr::If(c, a, b) => {
            expr_fields(c, f);
            expr_fields(a, f);
            expr_fields(b, f);
        }
        Expr::Call(_, args) | Expr::Udf(_, args) => args.iter_mut().for_each(|a| expr_fields(a, f)),
        Expr::Literal(_) | Expr::Key(_) | Expr::Aggregate(_) | Expr::WindowStart | Expr::WindowEnd => {}
    }
}

/// Every index into an input's fields that the operator's settings hold,
/// with the input it indexes: what it reads itself, and what re-indexing
/// must rewrite. `false` for an operator the pass does not know.
fn input_indices(kind: &mut OperatorKind, f: &mut dyn FnMut(u32, &mut usize)) -> bool {
    let mut on0 = |i: &mut usize| f(0, i);
    match kind {
        OperatorKind::KafkaSource(_)
        | OperatorKind::FileSource(_)
        | OperatorKind::DatagenSource(_)
        | OperatorKind::NexmarkSource(_)
        | OperatorKind::Union
        | OperatorKind::LateOutput
        | OperatorKind::PrintSink
        | OperatorKind::FileSink(_)
        | OperatorKind::DiscardSink => {}
        OperatorKind::Watermark(w) => on0(&mut w.field),
        OperatorKind::Filter(e) => expr_fields(e, &mut on0),
        OperatorKind::Project(es) => es.iter_mut().for_each(|e| expr_fields(e, &mut on0)),
        OperatorKind::WindowAggregate(w) => {
            w.key.iter_mut().for_each(&mut on0);
            w.aggregates.iter_mut().filter_map(|a| a.arg.as_mut()).for_each(|e| expr_fields(e, &mut on0));
            w.output.iter_mut().for_each(|e| expr_fields(e, &mut on0));
        }
        OperatorKind::RunningAggregate(r) => {
            r.key.iter_mut().for_each(&mut on0);
            r.aggregates.iter_mut().filter_map(|a| a.arg.as_mut()).for_each(|e| expr_fields(e, &mut on0));
            r.output.iter_mut().for_each(|e| expr_fields(e, &mut on0));
        }
        OperatorKind::Join(j) => {
            j.left_key.iter_mut().for_each(|i| f(0, i));
            j.right_key.iter_mut().for_each(|i| f(1, i));
            if let JoinBound::Temporal { deleted: Some(d) } = &mut j.bound {
                f(1, d);
            }
        }
        OperatorKind::WindowTop(t) => on0(&mut t.field),
        OperatorKind::WindowTopPer(WindowTopPer { top, per }) => {
            on0(&mut top.field);
            per.iter_mut().for_each(&mut on0);
        }
        OperatorKind::KafkaSink(k) => {
            k.key.iter_mut().for_each(&mut on0);
            k.timestamp.iter_mut().for_each(&mut on0);
        }
        OperatorKind::UpsertKafkaSink(u) => {
            u.key.iter_mut().for_each(&mut on0);
            u.sink.key.iter_mut().for_each(&mut on0);
            u.sink.timestamp.iter_mut().for_each(&mut on0);
        }
        OperatorKind::Dedup(d) => d.key.iter_mut().for_each(on0),
        OperatorKind::KeyedTop(t) => {
            t.key.iter_mut().for_each(&mut on0);
            t.order.iter_mut().for_each(|(i, _)| on0(i));
        }
        OperatorKind::Unnest(u) => on0(&mut u.field),
        OperatorKind::LookupJoin(l) => l.left_key.iter_mut().for_each(|e| expr_fields(e, &mut on0)),
    }
    true
}

/// Whether the operator reads every column of input `input`: sinks write
/// whole rows, a union's inputs must stay alike, a dead letter holds the
/// row the stage read, a late output the rows the operator received.
fn reads_all(op: &LogicalOperator, input: u32) -> bool {
    let dead_letters = matches!(op.on_error, Some(ErrorPolicy::DeadLetter(_) | ErrorPolicy::DeadLetterFiles(_)));
    dead_letters
        || op.kind.is_sink()
        || match &op.kind {
            OperatorKind::Union | OperatorKind::LateOutput => true,
            OperatorKind::WindowAggregate(w) => w.late_output,
            OperatorKind::Join(j) => j.late_output && input == 0,
            _ => false,
        }
}

/// Where each output column of a pass-through operator comes from; `None`
/// for an operator whose output is a schema of its own (a `select`, an
/// aggregate, a source) or that must not change (a union, late records).
fn origins(op: &LogicalOperator) -> Option<Vec<Origin>> {
    let width = |s: Option<&Schema>| s.map_or(0, |s| s.fields.len());
    let n_in = width(op.input.as_ref());
    let n_out = op.output.fields.len();
    let passed = |n: usize| (0..n).map(|c| Origin::Input(0, c));
    Some(match &op.kind {
        OperatorKind::Filter(_) | OperatorKind::Watermark(_) | OperatorKind::Dedup(_) => passed(n_in).collect(),
        OperatorKind::Join(j) => {
            passed(n_in).chain((0..j.right.fields.len()).map(|c| Origin::Input(1, c))).collect::<Vec<_>>()
        }
        // The side's columns are the lookup join's own: it reads them whole.
        OperatorKind::KeyedTop(_)
        | OperatorKind::WindowTop(_)
        | OperatorKind::WindowTopPer(_)
        | OperatorKind::LookupJoin(_) => passed(n_in).chain(std::iter::repeat(Origin::New)).take(n_out).collect(),
        OperatorKind::Unnest(u) => (0..n_in)
            .filter(|c| *c != u.field)
            .map(|c| Origin::Input(0, c))
            .chain(std::iter::repeat(Origin::New))
            .take(n_out)
            .collect(),
        _ => return None,
    })
    .filter(|o: &Vec<Origin>| o.len() == n_out)
}

/// The columns of input `input` of `op` that it reads or passes on to a
/// reader, given which of its output columns are read (`live`).
fn needed(op: &LogicalOperator, input: u32, live: &[bool]) -> Option<Vec<bool>> {
    let width = input_schema(op, input)?.fields.len();
    if reads_all(op, input) {
        return Some(vec![true; width]);
    }
    let mut need = vec![false; width];
    let mut fits = true;
    let mut kind = op.kind.clone();
    input_indices(&mut kind, &mut |k, i| {
        if k == input {
            match need.get_mut(*i) {
                Some(n) => *n = true,
                None => fits = false,
            }
        }
    });
    if let Some(origins) = origins(op) {
        for (o, &l) in origins.iter().zip(live) {
            if let (Origin::Input(k, c), true) = (o, l) {
                if *k == input {
                    *need.get_mut(*c)? = true;
                }
            }
        }
    }
    fits.then_some(need)
}

/// The key fields an edge partitions by, indices into its sender's output.
fn edge_key(p: &mut Partitioning) -> Option<&mut Vec<usize>> {
    match p {
        Partitioning::Hash { key } | Partitioning::KeyedForward { key } | Partitioning::Window { key } => Some(key),
        Partitioning::Forward => None,
    }
}

/// The fields of `schema` that `map` keeps, in order; the name of a
/// declared schema only while every field is there.
fn kept(schema: &Schema, map: &[Option<usize>]) -> Schema {
    let fields: Vec<Field> =
        schema.fields.iter().zip(map).filter(|(_, m)| m.is_some()).map(|(f, _)| f.clone()).collect();
    let name = if fields.len() == schema.fields.len() { schema.name.clone() } else { None };
    Schema { name, fields }
}

/// A map from old columns to new ones that keeps those `keep` says.
fn map_of(keep: &[bool]) -> Vec<Option<usize>> {
    let mut next = 0;
    keep.iter()
        .map(|&k| {
            k.then(|| {
                next += 1;
                next - 1
            })
        })
        .collect()
}

fn identity(n: usize) -> Vec<Option<usize>> {
    (0..n).map(Some).collect()
}

fn is_identity(map: &[Option<usize>]) -> bool {
    map.iter().enumerate().all(|(i, m)| *m == Some(i))
}

/// The pruned plan, or `None` where the plan holds something the pass does
/// not re-index (then the caller keeps the plan as it is).
fn prune(plan: &LogicalPlan) -> Option<LogicalPlan> {
    let ops = &plan.operators;
    let n = ops.len();
    // Operators come after their inputs; the walk below relies on it.
    if plan.edges.iter().any(|e| e.from >= e.to || e.to >= n) {
        return None;
    }
    // Which output columns of each operator are read downstream.
    let mut live: Vec<Vec<bool>> = ops.iter().map(|o| vec![false; o.output.fields.len()]).collect();
    for op in (0..n).rev() {
        for e in plan.edges.iter().filter(|e| e.from == op) {
            let to = &ops[e.to];
            if matches!(to.kind, OperatorKind::LateOutput) {
                // Late records are the sender's input, which it then reads whole.
                continue;
            }
            let need = needed(to, e.input, &live[e.to])?;
            let mut out = std::mem::take(&mut live[op]);
            if need.len() != out.len() {
                return None;
            }
            out.iter_mut().zip(&need).for_each(|(o, n)| *o |= n);
            let mut p = e.partitioning.clone();
            for k in edge_key(&mut p).map(|k| k.as_slice()).unwrap_or_default() {
                *out.get_mut(*k)? = true;
            }
            live[op] = out;
        }
    }
    // The inputs that get a projection: (edge, the sender's columns kept).
    let mut cuts: Vec<Option<Vec<bool>>> = vec![None; plan.edges.len()];
    for (s, op) in ops.iter().enumerate().filter(|(_, o)| keeps_rows(&o.kind)) {
        for input in 0..input_count(op) {
            let need = needed(op, input, &live[s])?;
            if need.iter().all(|n| *n) {
                continue;
            }
            let mut into = plan.edges.iter().enumerate().filter(|(_, e)| e.to == s && e.input == input);
            let (Some((ei, e)), None) = (into.next(), into.next()) else { continue };
            let fans_out = plan.edges.iter().filter(|x| x.from == e.from).count() > 1;
            if fans_out || matches!(ops[e.from].kind, OperatorKind::LateOutput) {
                continue;
            }
            cuts[ei] = Some(need);
        }
    }
    if cuts.iter().all(Option::is_none) {
        return None;
    }

    // Rewrite, in order: each operator re-indexed by its inputs' maps.
    let mut new_ops: Vec<LogicalOperator> = Vec::with_capacity(n + 2);
    let mut new_edges: Vec<LogicalEdge> = Vec::with_capacity(plan.edges.len() + 2);
    let mut index: Vec<usize> = vec![usize::MAX; n];
    // Old output column → new, per operator.
    let mut out_map: Vec<Vec<Option<usize>>> = vec![Vec::new(); n];
    for (i, op) in ops.iter().enumerate() {
        // Each input's map, from its sender (or the projection put before it).
        let mut in_maps: Vec<Option<Vec<Option<usize>>>> = vec![None; input_count(op) as usize];
        let mut edges_in: Vec<(usize, LogicalEdge)> = Vec::new();
        for (ei, e) in plan.edges.iter().enumerate().filter(|(_, e)| e.to == i) {
            let from_map = &out_map[e.from];
            let mut partitioning = e.partitioning.clone();
            let (from, map) = match &cuts[ei] {
                Some(need) => {
                    let sender = &new_ops[index[e.from]];
                    let keep: Vec<bool> = need.iter().zip(from_map).map(|(n, m)| *n && m.is_some()).collect();
                    let exprs: Vec<Expr> = need
                        .iter()
                        .zip(from_map)
                        .filter(|(n, _)| **n)
                        .map(|(_, m)| m.map(Expr::Field))
                        .collect::<Option<Vec<_>>>()?;
                    if exprs.len() == sender.output.fields.len() {
                        // The sender's output is pruned to that already.
                        (index[e.from], from_map.clone())
                    } else {
                        let old_out = &ops[e.from].output;
                        let output = kept(old_out, &map_of(&keep));
                        let names: Vec<&str> = output.fields.iter().map(|f| f.name.as_str()).collect();
                        new_ops.push(LogicalOperator {
                            uid: None,
                            name: format!("Calc(select=[{}])", names.join(", ")),
                            parallelism: ops[e.from].parallelism,
                            kind: OperatorKind::Project(exprs),
                            input: Some(sender.output.clone()),
                            output,
                            span: op.span,
                            on_error: None,
                        });
                        let p = new_ops.len() - 1;
                        new_edges.push(LogicalEdge {
                            from: index[e.from],
                            to: p,
                            partitioning: Partitioning::Forward,
                            input: 0,
                        });
                        (p, map_of(&keep))
                    }
                }
                None => (index[e.from], from_map.clone()),
            };
            if let Some(key) = edge_key(&mut partitioning) {
                for k in key.iter_mut() {
                    *k = (*map.get(*k)?)?;
                }
            }
            edges_in.push((from, LogicalEdge { from, to: usize::MAX, partitioning, input: e.input }));
            let slot = in_maps.get_mut(e.input as usize)?;
            match slot {
                Some(m) if *m != map => return None,
                _ => *slot = Some(map),
            }
        }
        if matches!(op.kind, OperatorKind::LateOutput) {
            // The sender's input records, which it keeps whole (`reads_all`).
            in_maps = vec![op.input.as_ref().map(|s| identity(s.fields.len()))];
        }
        let mut new = op.clone();
        let in_maps: Vec<Vec<Option<usize>>> = in_maps
            .into_iter()
            .enumerate()
            .map(|(k, m)| m.or_else(|| input_schema(op, k as u32).map(|s| identity(s.fields.len()))))
            .collect::<Option<_>>()?;
        if in_maps.iter().enumerate().any(|(k, m)| input_schema(op, k as u32).map(|s| s.fields.len()) != Some(m.len()))
        {
            return None;
        }
        // Inputs that must stay whole did.
        for (k, m) in in_maps.iter().enumerate() {
            if (reads_all(op, k as u32) || (origins(op).is_none() && !op_indexes_only(op))) && !is_identity(m) {
                return None;
            }
        }
        let mut fits = true;
        input_indices(&mut new.kind, &mut |k, idx| match in_maps
            .get(k as usize)
            .and_then(|m| m.get(*idx))
            .copied()
            .flatten()
        {
            Some(j) => *idx = j,
            None => fits = false,
        });
        if !fits {
            return None;
        }
        if let Some(m) = in_maps.first() {
            new.input = op.input.as_ref().map(|s| kept(s, m));
        }
        if let (OperatorKind::Join(j), Some(m)) = (&mut new.kind, in_maps.get(1)) {
            j.right = kept(&j.right, m);
        }
        out_map[i] = match origins(op) {
            Some(origins) => {
                let keep: Vec<bool> = origins
                    .iter()
                    .map(|o| match o {
                        Origin::New => true,
                        Origin::Input(k, c) => in_maps[*k as usize][*c].is_some(),
                    })
                    .collect();
                let map = map_of(&keep);
                new.output = kept(&op.output, &map);
                let width = new.output.fields.len();
                match &mut new.kind {
                    OperatorKind::KeyedTop(t) => t.rank_field = t.rank_field.map(|_| width - 1),
                    OperatorKind::WindowTop(t) | OperatorKind::WindowTopPer(WindowTopPer { top: t, .. }) => {
                        t.rank_field = width - 1
                    }
                    _ => {}
                }
                map
            }
            None => identity(op.output.fields.len()),
        };
        new_ops.push(new);
        index[i] = new_ops.len() - 1;
        for (_, mut e) in edges_in {
            e.to = index[i];
            new_edges.push(e);
        }
    }
    Some(LogicalPlan {
        name: plan.name.clone(),
        settings: plan.settings.clone(),
        operators: new_ops,
        edges: new_edges,
        udfs: plan.udfs.clone(),
    })
}

/// A schema-defining operator that reads its input by index only (its own
/// expressions and keys, re-indexed): a `select`, `map` or aggregate.
fn op_indexes_only(op: &LogicalOperator) -> bool {
    matches!(op.kind, OperatorKind::Project(_) | OperatorKind::WindowAggregate(_) | OperatorKind::RunningAggregate(_))
}

#[cfg(test)]
mod tests;
