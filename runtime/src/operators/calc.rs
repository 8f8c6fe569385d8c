//! `filter`, `map` and `select`, fused: consecutive ones of a chain run as
//! one operator over each batch, in the spirit of Materialize's
//! `MapFilterProject`.
//!
//! A filter narrows a selection of rows instead of copying the batch; a
//! projection computes its fields on the selected rows only, and moves a
//! field it passes through (read on all rows) instead of copying it. The
//! batch is compacted at most once, at the end, when a filter came last.
//! Records keep their event time.
//!
//! A record an expression fails on follows its stage's `on_error`
//! ([`StageErrors`]). A batch is evaluated whole, as if nothing could
//! fail; only when it fails are its rows evaluated one by one, to split
//! the good from the bad: the error-free path costs nothing more.

use super::stage_errors::StageErrors;
use super::{Operator, OperatorError};
use crate::data::{Batch, Column};
use crate::expr::{CompiledExpr, EvalError, Sel, SourceMap};
use crate::metrics::TaskCounters;
use flowc_compiler::ir::{DataType, ErrorPolicy, Expr, Schema};
use std::sync::Arc;

/// One fused operator: what it does and what it reads, for messages.
struct Step {
    name: String,
    input: Schema,
    kind: StepKind,
    /// What it does with a record its expressions fail on.
    policy: ErrorPolicy,
}

enum StepKind {
    Filter(CompiledExpr),
    Project(Projection),
}

/// A run of `filter`/`map`/`select` operators of a chain.
pub struct Calc {
    steps: Vec<Step>,
    errors: StageErrors,
}

/// One operator for [`Calc`]: a filter's condition or a projection's
/// expressions, over records of `input`, emitting `output`.
pub enum CalcOp<'a> {
    Filter(&'a flowc_compiler::ir::Expr),
    Project(&'a [flowc_compiler::ir::Expr]),
}

/// `e` with each field `i` replaced by `inner[i]`.
fn substitute(e: &Expr, inner: &[Expr]) -> Expr {
    let s = |x: &Expr| Box::new(substitute(x, inner));
    match e {
        Expr::Field(i) => inner.get(*i).cloned().unwrap_or_else(|| e.clone()),
        Expr::Cast(t, x) => Expr::Cast(*t, s(x)),
        Expr::Neg(x) => Expr::Neg(s(x)),
        Expr::Not(x) => Expr::Not(s(x)),
        Expr::IsNull(x, negated) => Expr::IsNull(s(x), *negated),
        Expr::At(span, x) => Expr::At(*span, s(x)),
        Expr::Binary(op, a, b) => Expr::Binary(*op, s(a), s(b)),
        Expr::If(c, t, f) => Expr::If(s(c), s(t), s(f)),
        Expr::Call(f, args) => Expr::Call(*f, args.iter().map(|a| substitute(a, inner)).collect()),
        Expr::Udf(r, args) => Expr::Udf(*r, args.iter().map(|a| substitute(a, inner)).collect()),
        Expr::Literal(_) | Expr::Key(_) | Expr::Aggregate(_) | Expr::WindowStart | Expr::WindowEnd => e.clone(),
    }
}

/// How often each field is read by `e`.
fn count_fields(e: &Expr, counts: &mut [usize]) {
    match e {
        Expr::Field(i) => {
            if let Some(c) = counts.get_mut(*i) {
                *c += 1;
            }
        }
        Expr::Cast(_, x) | Expr::Neg(x) | Expr::Not(x) | Expr::IsNull(x, _) | Expr::At(_, x) => count_fields(x, counts),
        Expr::Binary(_, a, b) => {
            count_fields(a, counts);
            count_fields(b, counts);
        }
        Expr::If(c, t, f) => {
            count_fields(c, counts);
            count_fields(t, counts);
            count_fields(f, counts);
        }
        Expr::Call(_, args) | Expr::Udf(_, args) => args.iter().for_each(|a| count_fields(a, counts)),
        Expr::Literal(_) | Expr::Key(_) | Expr::Aggregate(_) | Expr::WindowStart | Expr::WindowEnd => {}
    }
}

/// The projection `second ∘ first` as one, when that changes nothing one
/// can observe:
/// - `second` cannot fail, so every error of the merged projection is one
///   of `first`'s, reported under `first`'s name and policy with the record
///   `first` read (as if unmerged);
/// - a field of `first` that can fail is passed on by `second` as it is,
///   once: it is computed exactly on the records it was computed on before
///   (dropped, it would no longer fail; read inside an `if`, only on some);
/// - no computed field of `first` is read twice by `second` (it would be
///   computed twice).
///
/// Then a field that `first` computes and `second` drops is never
/// computed, and `first`'s pass-through fields are not copied.
fn merge_projections(
    first: &[Expr],
    second: &[Expr],
    input: &[DataType],
    mid: &[DataType],
    sources: &SourceMap,
) -> Option<Vec<Expr>> {
    let fallible = |e: &Expr, types: &[DataType]| CompiledExpr::compile(e, types, sources).map(|c| c.fallible()).ok();
    if second.iter().any(|e| fallible(e, mid) != Some(false)) {
        return None;
    }
    let first_fallible: Vec<bool> = first.iter().map(|e| fallible(e, input)).collect::<Option<_>>()?;
    let mut counts = vec![0; first.len()];
    second.iter().for_each(|e| count_fields(e, &mut counts));
    let passed_once =
        |i: usize| counts[i] == 1 && second.iter().any(|e| matches!(e.unlocated(), Expr::Field(f) if *f == i));
    if (0..first.len()).any(|i| first_fallible[i] && !passed_once(i)) {
        return None;
    }
    let recomputed =
        first.iter().zip(&counts).any(|(e, n)| *n > 1 && !matches!(e.unlocated(), Expr::Field(_) | Expr::Literal(_)));
    (!recomputed).then(|| second.iter().map(|e| substitute(e, first)).collect())
}

/// An operator to compile: a filter's condition, or a projection.
struct Planned {
    name: String,
    policy: ErrorPolicy,
    filter: Option<Expr>,
    projection: Vec<Expr>,
    input: Schema,
    output: Schema,
}

/// The operators to compile: adjacent projections merged where
/// [`merge_projections`] allows.
fn plan(ops: &[(String, CalcOp<'_>, Schema, Schema)], policies: &[ErrorPolicy], sources: &SourceMap) -> Vec<Planned> {
    let types = |s: &Schema| s.fields.iter().map(|f| f.ty).collect::<Vec<_>>();
    let mut out: Vec<Planned> = Vec::new();
    for (i, (name, op, input, output)) in ops.iter().enumerate() {
        let policy = policies.get(i).cloned().unwrap_or(ErrorPolicy::Fail);
        let (filter, projection) = match op {
            CalcOp::Filter(e) => (Some((*e).clone()), Vec::new()),
            CalcOp::Project(es) => {
                if let Some(last) = out.last_mut().filter(|l| l.filter.is_none()) {
                    let merged = merge_projections(&last.projection, es, &types(&last.input), &types(input), sources);
                    if let Some(merged) = merged {
                        // Only `last` can fail: its name and policy stay,
                        // for its errors.
                        last.projection = merged;
                        last.output = output.clone();
                        continue;
                    }
                }
                (None, es.to_vec())
            }
        };
        out.push(Planned {
            name: name.clone(),
            policy,
            filter,
            projection,
            input: input.clone(),
            output: output.clone(),
        });
    }
    out
}

impl Calc {
    /// Compiles the operators `ops` (name, kind, input schema, output
    /// schema), in chain order; each fails the task on a record its
    /// expressions fail on.
    pub fn new(ops: &[(String, CalcOp<'_>, Schema, Schema)], sources: &SourceMap) -> Result<Calc, OperatorError> {
        Calc::with_policies(ops, &[], sources, Arc::new(TaskCounters::new()))
    }

    /// The same, each operator with its `on_error` policy (`policies[i]`
    /// for `ops[i]`; `fail` where none is given), counting in `counters`.
    pub fn with_policies(
        ops: &[(String, CalcOp<'_>, Schema, Schema)],
        policies: &[ErrorPolicy],
        sources: &SourceMap,
        counters: Arc<TaskCounters>,
    ) -> Result<Calc, OperatorError> {
        let name = ops.iter().map(|o| o.0.as_str()).collect::<Vec<_>>().join(" -> ");
        let errors = StageErrors::new(&policies.iter().collect::<Vec<_>>(), &name, counters)?;
        let mut steps = Vec::new();
        for planned in plan(ops, policies, sources) {
            let op = match &planned.filter {
                Some(e) => CalcOp::Filter(e),
                None => CalcOp::Project(&planned.projection),
            };
            let (name, input, output) = (&planned.name, &planned.input, &planned.output);
            let types: Vec<DataType> = input.fields.iter().map(|f| f.ty).collect();
            let setup = |m: String| OperatorError::Setup {
                operator: name.clone(),
                message: format!("{m} (this is a bug in flowc)"),
            };
            let kind = match op {
                CalcOp::Filter(e) => {
                    let c = CompiledExpr::compile(e, &types, sources).map_err(setup)?;
                    if c.ty != DataType::Bool {
                        return Err(setup(format!("a condition of type {}", c.ty)));
                    }
                    StepKind::Filter(c)
                }
                CalcOp::Project(es) => {
                    let out: Vec<DataType> = output.fields.iter().map(|f| f.ty).collect();
                    if es.len() != out.len() {
                        return Err(setup("one expression per output field expected".into()));
                    }
                    let compiled =
                        es.iter().map(|e| CompiledExpr::compile(e, &types, sources)).collect::<Result<Vec<_>, _>>();
                    StepKind::Project(Projection::new(compiled.map_err(setup)?, out))
                }
            };
            steps.push(Step { name: name.clone(), input: input.clone(), kind, policy: planned.policy.clone() });
        }
        Ok(Calc { steps, errors })
    }
}

fn eval_error(step: &Step, batch: &Batch, e: EvalError) -> OperatorError {
    super::stage_errors::eval_error(&step.name, batch, &step.input, e)
}

/// `step` failed with `first` on the rows `candidates` of `batch`: see
/// [`StageErrors::split`].
fn split_failed(
    errors: &mut StageErrors,
    step: &Step,
    batch: &Batch,
    first: EvalError,
    candidates: impl Iterator<Item = u32>,
    eval_one: impl FnMut(u32) -> Result<bool, EvalError>,
) -> Result<Vec<u32>, OperatorError> {
    errors.split(&step.policy, &step.name, batch, &step.input, first, candidates, eval_one)
}

/// Expressions that compute the fields of new records, with the fields'
/// types: a projection, also the output of a window.
pub struct Projection {
    exprs: Vec<CompiledExpr>,
    types: Vec<DataType>,
}

impl Projection {
    pub fn new(exprs: Vec<CompiledExpr>, types: Vec<DataType>) -> Projection {
        Projection { exprs, types }
    }

    /// Whether an expression can fail on a record.
    pub fn fallible(&self) -> bool {
        self.exprs.iter().any(CompiledExpr::fallible)
    }

    /// Whether every expression evaluates on row `row` of `batch` alone.
    pub fn eval_row(&self, batch: &Batch, row: u32) -> Result<(), EvalError> {
        let rows = [row];
        for e in &self.exprs {
            if e.as_field().is_none() {
                e.eval(batch, Sel::Rows(&rows))?;
            }
        }
        Ok(())
    }

    /// The projection of the selected rows (`rows`, else all) of `batch`.
    /// Computed fields are evaluated on those rows only; a field passed
    /// through is moved when all rows are selected. On error, the error
    /// and the batch it refers to.
    pub fn run(&self, mut batch: Batch, rows: Option<&[u32]>) -> Result<Batch, Box<(EvalError, Batch)>> {
        let sel = rows.map_or(Sel::All(batch.len()), Sel::Rows);
        let mut out: Vec<Option<Column>> = Vec::with_capacity(self.exprs.len());
        // Computed fields first, while the input is whole; passed-through
        // fields are moved after.
        for (e, ty) in self.exprs.iter().zip(&self.types) {
            if rows.is_none() && e.as_field().is_some() {
                out.push(None);
                continue;
            }
            match e.eval(&batch, sel).and_then(|v| v.into_column(sel, *ty)) {
                Ok(c) => out.push(Some(c)),
                Err(err) => return Err(Box::new((err, batch))),
            }
        }
        let mut taken: Vec<Option<usize>> = vec![None; batch.columns.len()];
        for (j, e) in self.exprs.iter().enumerate() {
            if out[j].is_some() {
                continue;
            }
            let Some(i) = e.as_field() else { continue };
            let column = match taken.get(i).copied().flatten() {
                // The same field twice: the second is a copy of the first.
                Some(first) => out[first].clone(),
                None => {
                    let empty = Column::empty(self.types[j], 0);
                    let c = batch.columns.get_mut(i).map(|c| std::mem::replace(c, empty));
                    if let Some(t) = taken.get_mut(i) {
                        *t = Some(j);
                    }
                    c.map(|mut c| {
                        c.ty = self.types[j];
                        c
                    })
                }
            };
            out[j] = column;
        }
        let Some(columns) = out.into_iter().collect::<Option<Vec<_>>>() else {
            return Err(Box::new((EvalError::internal("a field to pass through is missing"), Batch::default())));
        };
        let timestamps = match rows {
            None => batch.timestamps,
            Some(r) => r.iter().map(|&i| batch.timestamps[i as usize]).collect(),
        };
        // A changelog stream's row kinds pass through a projection, and so
        // do the records' origins.
        let kinds = match (batch.kinds, rows) {
            (Some(k), Some(r)) => Some(r.iter().filter_map(|&i| k.get(i as usize).copied()).collect()),
            (k, _) => k,
        };
        let origins = match (batch.origins, rows) {
            (Some(o), Some(r)) => Some(o.gather(r)),
            (o, _) => o,
        };
        let mut out = Batch::new(timestamps, columns);
        out.kinds = kinds;
        out.origins = origins;
        Ok(out)
    }
}

impl Operator for Calc {
    fn process(&mut self, input: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        let mut batch = input;
        // The rows still selected; `None` is all of them.
        let mut rows: Option<Vec<u32>> = None;
        for step in &self.steps {
            let candidates = |rows: &Option<Vec<u32>>, n: usize| match rows {
                Some(r) => r.clone(),
                None => (0..n as u32).collect(),
            };
            match &step.kind {
                StepKind::Filter(c) => {
                    let sel = rows.as_deref().map_or(Sel::All(batch.len()), Sel::Rows);
                    let kept = match c.select(&batch, sel) {
                        Ok(kept) => kept,
                        Err(e) => {
                            let all = candidates(&rows, batch.len());
                            split_failed(&mut self.errors, step, &batch, e, all.into_iter(), |r| {
                                c.select(&batch, Sel::Rows(&[r])).map(|k| !k.is_empty())
                            })?
                        }
                    };
                    if kept.is_empty() {
                        return Ok(());
                    }
                    if kept.len() < batch.len() {
                        rows = Some(kept);
                    }
                }
                StepKind::Project(p) => {
                    batch = match p.run(batch, rows.as_deref()) {
                        Ok(b) => b,
                        Err(failed) => {
                            let (e, whole) = *failed;
                            let all = candidates(&rows, whole.len());
                            let good = split_failed(&mut self.errors, step, &whole, e, all.into_iter(), |r| {
                                p.eval_row(&whole, r).map(|()| true)
                            })?;
                            if good.is_empty() {
                                return Ok(());
                            }
                            p.run(whole, Some(&good)).map_err(|e| eval_error(step, &e.1, e.0))?
                        }
                    };
                    rows = None;
                }
            }
        }
        if let Some(r) = rows {
            batch = batch.gather(&r);
        }
        if !batch.is_empty() {
            out.push(batch);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), OperatorError> {
        self.errors.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Value;
    use flowc_compiler::graph::JobSource;
    use flowc_compiler::ir::{BinOp, Expr, Field, Function, SourceSpan};

    fn schema(fields: &[(&str, DataType)]) -> Schema {
        Schema { name: None, fields: fields.iter().map(|(n, t)| Field::new(*n, *t)).collect() }
    }

    fn input() -> (Schema, Batch) {
        let s = schema(&[("page", DataType::String), ("n", DataType::Long)]);
        let rows: Vec<(i64, Vec<Value>)> = [("/a", 0), ("/shop", 5), ("/b", 2), ("/shop", 0)]
            .iter()
            .enumerate()
            .map(|(i, (p, n))| (i as i64 * 10, vec![Value::Str(p.to_string()), Value::Int(*n)]))
            .collect();
        (s, Batch::from_rows(&[DataType::String, DataType::Long], &rows).expect("fits"))
    }

    fn run(calc: &mut Calc, b: Batch) -> Result<Vec<(i64, Vec<Value>)>, OperatorError> {
        let mut out = Vec::new();
        calc.process(b, &mut out)?;
        Ok(out.iter().flat_map(|b| b.rows()).collect())
    }

    fn lit(v: Value) -> Box<Expr> {
        Box::new(Expr::Literal(v))
    }

    #[test]
    fn filter_then_map_then_select_computes_only_the_selected_rows() {
        let (s, b) = input();
        // filter n != 0 | map { page, q: 10 / n, up: upper(page) } | filter q > 2 | select { up, q }
        let cond = Expr::Binary(BinOp::Ne, Box::new(Expr::Field(1)), lit(Value::Int(0)));
        let q = Expr::At(
            SourceSpan::new(0, 0),
            Box::new(Expr::Binary(BinOp::Div, lit(Value::Int(10)), Box::new(Expr::Field(1)))),
        );
        let map = vec![Expr::Field(0), q, Expr::Call(Function::Upper, vec![Expr::Field(0)])];
        let mapped = schema(&[("page", DataType::String), ("q", DataType::Long), ("up", DataType::String)]);
        let cond2 = Expr::Binary(BinOp::Gt, Box::new(Expr::Field(1)), lit(Value::Int(2)));
        let select = vec![Expr::Field(2), Expr::Field(1)];
        let selected = schema(&[("up", DataType::String), ("q", DataType::Long)]);
        let ops = vec![
            ("Filter".to_string(), CalcOp::Filter(&cond), s.clone(), s.clone()),
            ("Map".to_string(), CalcOp::Project(&map), s.clone(), mapped.clone()),
            ("Filter2".to_string(), CalcOp::Filter(&cond2), mapped.clone(), mapped.clone()),
            ("Select".to_string(), CalcOp::Project(&select), mapped, selected),
        ];
        let mut calc = Calc::new(&ops, &SourceMap::default()).expect("compiles");
        assert_eq!(
            run(&mut calc, b).expect("runs"),
            vec![(20, vec![Value::Str("/B".into()), Value::Int(5)])],
            "the zero rows never reach the division"
        );
    }

    #[test]
    fn a_projection_moves_what_it_passes_through() {
        let (s, b) = input();
        let map = vec![Expr::Field(1), Expr::Field(0), Expr::Field(1)];
        let out = schema(&[("n", DataType::Long), ("page", DataType::String), ("n2", DataType::Long)]);
        let mut calc =
            Calc::new(&[("Map".into(), CalcOp::Project(&map), s, out)], &SourceMap::default()).expect("compiles");
        let rows = run(&mut calc, b).expect("runs");
        assert_eq!(rows[1], (10, vec![Value::Int(5), Value::Str("/shop".into()), Value::Int(5)]));
        assert_eq!(rows.len(), 4);
    }

    #[test]
    fn adjacent_projections_that_cannot_fail_run_as_one() {
        let (s, b) = input();
        // map { n2: n * 2.0, up: upper(page), half: n / 2 } | select { up, n2, n2b: n2 + 1.0 }
        // (double arithmetic: `n * 2` on longs can overflow, so it fails and keeps its step)
        let map = vec![
            Expr::Field(0),
            Expr::Field(1),
            Expr::Binary(
                BinOp::Mul,
                Box::new(Expr::Cast(DataType::Double, Box::new(Expr::Field(1)))),
                lit(Value::Double(2.0)),
            ),
            Expr::Call(Function::Upper, vec![Expr::Field(0)]),
            Expr::At(
                SourceSpan::new(0, 0),
                Box::new(Expr::Binary(BinOp::Div, Box::new(Expr::Field(1)), lit(Value::Int(2)))),
            ),
        ];
        let mapped = schema(&[
            ("page", DataType::String),
            ("n", DataType::Long),
            ("n2", DataType::Double),
            ("up", DataType::String),
            ("half", DataType::Long),
        ]);
        let select = vec![
            Expr::Field(3),
            Expr::Field(2),
            Expr::Binary(BinOp::Add, Box::new(Expr::Field(2)), lit(Value::Double(1.0))),
        ];
        let out = schema(&[("up", DataType::String), ("n2", DataType::Double), ("n2b", DataType::Double)]);
        let ops = vec![
            ("Map".to_string(), CalcOp::Project(&map), s.clone(), mapped.clone()),
            ("Select".to_string(), CalcOp::Project(&select), mapped.clone(), out.clone()),
        ];
        let mut calc = Calc::new(&ops, &SourceMap::default()).expect("compiles");
        // `n2` is read twice by the select: computed twice if merged, so they stay apart.
        assert_eq!(calc.steps.len(), 2);
        let rows = run(&mut calc, b.clone()).expect("runs");
        assert_eq!(rows[1], (10, vec![Value::Str("/SHOP".into()), Value::Double(10.0), Value::Double(11.0)]));
        // Read once each, they merge; a constant divisor cannot fail.
        let select = vec![Expr::Field(3), Expr::Field(2), Expr::Field(4)];
        let out = schema(&[("up", DataType::String), ("n2", DataType::Double), ("half", DataType::Long)]);
        let ops = vec![
            ("Map".to_string(), CalcOp::Project(&map), s.clone(), mapped.clone()),
            ("Select".to_string(), CalcOp::Project(&select), mapped.clone(), out),
        ];
        let mut calc = Calc::new(&ops, &SourceMap::default()).expect("compiles");
        assert_eq!(calc.steps.len(), 1);
        assert_eq!(
            run(&mut calc, b.clone()).expect("runs")[1],
            (10, vec![Value::Str("/SHOP".into()), Value::Double(10.0), Value::Int(2)])
        );
        // A division that can fail keeps its own step: it must fail where it is written, on its own records.
        let mut fallible = map.clone();
        fallible[4] = Expr::At(
            SourceSpan::new(0, 0),
            Box::new(Expr::Binary(BinOp::Div, lit(Value::Int(2)), Box::new(Expr::Field(1)))),
        );
        let select = vec![Expr::Field(3)];
        let ops = vec![
            ("Map".to_string(), CalcOp::Project(&fallible), s.clone(), mapped.clone()),
            ("Select".to_string(), CalcOp::Project(&select), mapped.clone(), schema(&[("up", DataType::String)])),
        ];
        let mut calc = Calc::new(&ops, &SourceMap::default()).expect("compiles");
        assert_eq!(calc.steps.len(), 2);
        let err = run(&mut calc, b.clone()).expect_err("the dropped field still divides by zero").to_string();
        assert!(err.starts_with("Map: division by zero"), "{err}");
        // Passed on as it is, once, by a select that cannot fail, it merges:
        // its errors are still the map's, on the map's records.
        let select = vec![Expr::Field(3), Expr::Field(4)];
        let two = schema(&[("up", DataType::String), ("half", DataType::Long)]);
        let ops = vec![
            ("Map".to_string(), CalcOp::Project(&fallible), s.clone(), mapped.clone()),
            ("Select".to_string(), CalcOp::Project(&select), mapped.clone(), two.clone()),
        ];
        let mut calc = Calc::new(&ops, &SourceMap::default()).expect("compiles");
        assert_eq!(calc.steps.len(), 1);
        let err = run(&mut calc, b.clone()).expect_err("divides by zero").to_string();
        assert!(err.starts_with("Map: division by zero"), "{err}");
        // Read inside an expression it would fail on fewer records: not merged.
        let guarded = vec![
            Expr::Field(3),
            Expr::If(
                Box::new(Expr::Binary(BinOp::Eq, Box::new(Expr::Field(3)), lit(Value::Str("/SHOP".into())))),
                Box::new(Expr::Field(4)),
                lit(Value::Int(0)),
            ),
        ];
        let ops = vec![
            ("Map".to_string(), CalcOp::Project(&fallible), s, mapped.clone()),
            ("Select".to_string(), CalcOp::Project(&guarded), mapped, two),
        ];
        assert_eq!(Calc::new(&ops, &SourceMap::default()).expect("compiles").steps.len(), 2);
    }

    mod model {
        use super::*;
        use crate::expr::reference;
        use crate::expr::tests::{gen_over, row, same, TYPES};
        use proptest::prelude::*;
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};

        /// A random chain of 1 to 4 filters and projections from `TYPES`.
        fn chain(rng: &mut StdRng) -> Vec<(CalcKind, Schema, Schema)> {
            let mut types = TYPES.to_vec();
            let mut out = Vec::new();
            for _ in 0..rng.random_range(1..5) {
                let input = schema_of(&types);
                if rng.random() {
                    let e = gen_over(&types, DataType::Bool, rng.random_range(0..4), rng);
                    out.push((CalcKind::Filter(e), input.clone(), input));
                } else {
                    let n = rng.random_range(1..5);
                    let mut exprs = Vec::new();
                    let mut next = Vec::new();
                    for _ in 0..n {
                        let t = TYPES[rng.random_range(0..TYPES.len())];
                        // Mostly fields passed through, some computed.
                        let e = if rng.random_range(0..3) == 0 {
                            gen_over(&types, t, rng.random_range(0..4), rng)
                        } else {
                            let i = rng.random_range(0..types.len());
                            exprs.push(Expr::Field(i));
                            next.push(types[i]);
                            continue;
                        };
                        exprs.push(e);
                        next.push(t);
                    }
                    out.push((CalcKind::Project(exprs), input, schema_of(&next)));
                    types = next;
                }
            }
            out
        }

        #[derive(Debug)]
        enum CalcKind {
            Filter(Expr),
            Project(Vec<Expr>),
        }

        fn schema_of(types: &[DataType]) -> Schema {
            schema(
                &types
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (["a", "b", "c", "d", "e", "f", "g", "h"][i % 8], *t))
                    .collect::<Vec<_>>(),
            )
        }

        /// The chain, a record at a time: the records out, or `None` if some record fails.
        fn reference(
            chain: &[(CalcKind, Schema, Schema)],
            rows: &[(i64, Vec<Value>)],
        ) -> Option<Vec<(i64, Vec<Value>)>> {
            let mut out = Vec::new();
            let mut failed = false;
            'rows: for (t, r) in rows {
                let mut r = r.clone();
                for (kind, input, _) in chain {
                    let types: Vec<DataType> = input.fields.iter().map(|f| f.ty).collect();
                    let scope = reference::Scope { fields: &types, ..reference::Scope::default() };
                    match kind {
                        CalcKind::Filter(e) => match reference::eval(e, &r, &scope) {
                            Ok(Value::Bool(true)) => {}
                            Ok(_) => continue 'rows,
                            Err(_) => {
                                failed = true;
                                continue 'rows;
                            }
                        },
                        CalcKind::Project(es) => match es.iter().map(|e| reference::eval(e, &r, &scope)).collect() {
                            Ok(next) => r = next,
                            Err(_) => {
                                failed = true;
                                continue 'rows;
                            }
                        },
                    }
                }
                out.push((*t, r));
            }
            (!failed).then_some(out)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1000))]

            /// A fused chain gives what its operators give a record at a
            /// time, and fails exactly when one of them fails on a record.
            #[test]
            fn fused_chains_agree_with_their_operators_record_by_record(seed in any::<u64>(), rows in 1usize..12) {
                let mut rng = StdRng::seed_from_u64(seed);
                let chain = chain(&mut rng);
                let data: Vec<(i64, Vec<Value>)> = (0..rows).map(|i| (i as i64, row(&mut rng))).collect();
                let mut batch = Batch::from_rows(&TYPES, &data).expect("fits");
                if rng.random() {
                    crate::expr::tests::dictionary_encode(&mut batch);
                }
                let ops: Vec<(String, CalcOp<'_>, Schema, Schema)> = chain
                    .iter()
                    .enumerate()
                    .map(|(i, (k, input, output))| {
                        let op = match k {
                            CalcKind::Filter(e) => CalcOp::Filter(e),
                            CalcKind::Project(es) => CalcOp::Project(es),
                        };
                        (format!("op{i}"), op, input.clone(), output.clone())
                    })
                    .collect();
                let mut calc = Calc::new(&ops, &SourceMap::default()).expect("compiles");
                let got = run(&mut calc, batch);
                match (got, reference(&chain, &data)) {
                    (Ok(got), Some(want)) => {
                        prop_assert_eq!(got.len(), want.len(), "{:?}", chain);
                        for (g, w) in got.iter().zip(&want) {
                            prop_assert_eq!(g.0, w.0);
                            prop_assert!(g.1.len() == w.1.len() && g.1.iter().zip(&w.1).all(|(a, b)| same(a, b)), "{:?}: {:?} vs {:?}", chain, g, w);
                        }
                    }
                    (Err(_), None) => {}
                    (got, want) => prop_assert!(false, "{:?}: fused {:?}, record by record {:?}", chain, got, want),
                }
            }
        }
    }

    #[test]
    fn a_filter_that_keeps_nothing_emits_nothing() {
        let (s, b) = input();
        let cond = Expr::Binary(BinOp::Eq, Box::new(Expr::Field(0)), lit(Value::Str("/none".into())));
        let mut calc =
            Calc::new(&[("F".into(), CalcOp::Filter(&cond), s.clone(), s)], &SourceMap::default()).expect("compiles");
        let mut out = Vec::new();
        calc.process(b, &mut out).expect("runs");
        assert!(out.is_empty());
    }

    /// `filter n != 5 | map { page, r: 10 / n } on_error POLICY`.
    fn ratio(policy: ErrorPolicy, counters: Arc<TaskCounters>) -> Calc {
        let (s, _) = input();
        let cond = Expr::Binary(BinOp::Ne, Box::new(Expr::Field(1)), lit(Value::Int(5)));
        let q = Expr::At(
            SourceSpan::new(0, 0),
            Box::new(Expr::Binary(BinOp::Div, lit(Value::Int(10)), Box::new(Expr::Field(1)))),
        );
        let map = vec![Expr::Field(0), q];
        let out = schema(&[("page", DataType::String), ("r", DataType::Long)]);
        let ops = vec![
            ("Filter".to_string(), CalcOp::Filter(&cond), s.clone(), s.clone()),
            ("Ratio".to_string(), CalcOp::Project(&map), s, out),
        ];
        Calc::with_policies(&ops, &[ErrorPolicy::Fail, policy], &SourceMap::default(), counters).expect("compiles")
    }

    #[test]
    fn on_error_skip_drops_and_counts_the_records_an_expression_fails_on() {
        let (_, b) = input();
        let counters = Arc::new(TaskCounters::new());
        let mut calc = ratio(ErrorPolicy::Skip, counters.clone());
        // Rows: /a n=0 (fails), /shop n=5 (filtered out first), /b n=2, /shop n=0 (fails).
        assert_eq!(run(&mut calc, b).expect("skips"), vec![(20, vec![Value::Str("/b".into()), Value::Int(5)])]);
        assert_eq!(TaskCounters::get(&counters.expression_errors), 2);
        assert_eq!(TaskCounters::get(&counters.dead_lettered), 0);
        let samples = counters.error_samples();
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].class, crate::metrics::ErrorClass::Expression);
        assert_eq!((samples[0].operator.as_str(), samples[0].action.as_str()), ("Ratio", "skipped"));
        assert_eq!(samples[0].value, r#"{"page":"/a","n":0}"#);
        assert_eq!(samples[1].value, r#"{"page":"/shop","n":0}"#);
        assert!(samples[0].error.starts_with("division by zero"), "{:?}", samples[0]);
        // Under `fail` the same batch fails the task, and is counted too.
        let (_, b) = input();
        let counters = Arc::new(TaskCounters::new());
        let mut calc = ratio(ErrorPolicy::Fail, counters.clone());
        let err = run(&mut calc, b).expect_err("fails").to_string();
        assert!(err.starts_with("Ratio: division by zero") && err.contains(r#"record {"page":"/a","n":0}"#), "{err}");
        assert_eq!(TaskCounters::get(&counters.expression_errors), 1);
        assert_eq!(counters.error_samples()[0].action, "failed");
    }

    #[test]
    fn a_filter_under_skip_keeps_the_rows_it_holds_for_and_drops_those_it_fails_on() {
        let (s, b) = input();
        // filter 10 / n > 1 on_error skip | map { page, n2: n * 2 }
        let cond = Expr::Binary(
            BinOp::Gt,
            Box::new(Expr::At(
                SourceSpan::new(0, 0),
                Box::new(Expr::Binary(BinOp::Div, lit(Value::Int(10)), Box::new(Expr::Field(1)))),
            )),
            lit(Value::Int(1)),
        );
        let map = vec![Expr::Field(0), Expr::Binary(BinOp::Mul, Box::new(Expr::Field(1)), lit(Value::Int(2)))];
        let out = schema(&[("page", DataType::String), ("n2", DataType::Long)]);
        let ops = vec![
            ("F".to_string(), CalcOp::Filter(&cond), s.clone(), s.clone()),
            ("M".to_string(), CalcOp::Project(&map), s, out),
        ];
        let counters = Arc::new(TaskCounters::new());
        let mut calc =
            Calc::with_policies(&ops, &[ErrorPolicy::Skip], &SourceMap::default(), counters.clone()).expect("compiles");
        assert_eq!(
            run(&mut calc, b).expect("skips"),
            vec![
                (10, vec![Value::Str("/shop".into()), Value::Int(10)]),
                (20, vec![Value::Str("/b".into()), Value::Int(4)])
            ]
        );
        assert_eq!(TaskCounters::get(&counters.expression_errors), 2);
        // A batch with nothing good emits nothing.
        let rows: Vec<(i64, Vec<Value>)> = vec![(0, vec![Value::Str("/z".into()), Value::Int(0)])];
        let only_bad = Batch::from_rows(&[DataType::String, DataType::Long], &rows).expect("fits");
        assert!(run(&mut calc, only_bad).expect("skips").is_empty());
        assert_eq!(TaskCounters::get(&counters.expression_errors), 3);
    }

    #[test]
    fn a_division_by_zero_names_the_operator_the_place_and_the_record() {
        let (s, b) = input();
        let text = "job \"t\"\n  | map { page, r: 10 / n }\n";
        let start = text.find("10").expect("in text");
        let src = JobSource { name: "t.flow".into(), text: text.into() };
        let q = Expr::At(
            SourceSpan::new(start, start + 6),
            Box::new(Expr::Binary(BinOp::Div, lit(Value::Int(10)), Box::new(Expr::Field(1)))),
        );
        let map = vec![Expr::Field(0), q];
        let out = schema(&[("page", DataType::String), ("r", DataType::Long)]);
        let mut calc = Calc::new(&[("Ratio".into(), CalcOp::Project(&map), s, out)], &SourceMap::new(Some(&src)))
            .expect("compiles");
        let err = run(&mut calc, b).expect_err("fails").to_string();
        assert_eq!(err, "Ratio: division by zero in `10 / n` at t.flow:2:20, record {\"page\":\"/a\",\"n\":0}");
    }
}
