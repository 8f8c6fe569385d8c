//! `filter`, `map` and `select`, fused: consecutive ones of a chain run as
//! one operator over each batch, in the spirit of Materialize's
//! `MapFilterProject`.
//!
//! A filter narrows a selection of rows instead of copying the batch; a
//! projection computes its fields on the selected rows only, and moves a
//! field it passes through (read on all rows) instead of copying it. The
//! batch is compacted at most once, at the end, when a filter came last.
//! Records keep their event time.

use super::{Operator, OperatorError};
use crate::data::{Batch, Column};
use crate::expr::{CompiledExpr, EvalError, Sel, SourceMap};
use flowc_compiler::ir::{DataType, Schema};

/// One fused operator: what it does and what it reads, for messages.
struct Step {
    name: String,
    input: Schema,
    kind: StepKind,
}

enum StepKind {
    Filter(CompiledExpr),
    Project(Projection),
}

/// A run of `filter`/`map`/`select` operators of a chain.
pub struct Calc {
    steps: Vec<Step>,
}

/// One operator for [`Calc`]: a filter's condition or a projection's
/// expressions, over records of `input`, emitting `output`.
pub enum CalcOp<'a> {
    Filter(&'a flowc_compiler::ir::Expr),
    Project(&'a [flowc_compiler::ir::Expr]),
}

impl Calc {
    /// Compiles the operators `ops` (name, kind, input schema, output
    /// schema), in chain order.
    pub fn new(ops: &[(String, CalcOp<'_>, Schema, Schema)], sources: &SourceMap) -> Result<Calc, OperatorError> {
        let mut steps = Vec::new();
        for (name, op, input, output) in ops {
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
            steps.push(Step { name: name.clone(), input: input.clone(), kind });
        }
        Ok(Calc { steps })
    }
}

fn eval_error(step: &Step, batch: &Batch, e: EvalError) -> OperatorError {
    OperatorError::Eval { operator: step.name.clone(), message: e.describe(batch, &step.input) }
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
        Ok(Batch { timestamps, columns })
    }
}

impl Operator for Calc {
    fn process(&mut self, input: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        let mut batch = input;
        // The rows still selected; `None` is all of them.
        let mut rows: Option<Vec<u32>> = None;
        for step in &self.steps {
            match &step.kind {
                StepKind::Filter(c) => {
                    let sel = rows.as_deref().map_or(Sel::All(batch.len()), Sel::Rows);
                    let kept = c.select(&batch, sel).map_err(|e| eval_error(step, &batch, e))?;
                    if kept.is_empty() {
                        return Ok(());
                    }
                    if kept.len() < batch.len() {
                        rows = Some(kept);
                    }
                }
                StepKind::Project(p) => {
                    batch = p.run(batch, rows.as_deref()).map_err(|e| eval_error(step, &e.1, e.0))?;
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
    fn a_filter_that_keeps_nothing_emits_nothing() {
        let (s, b) = input();
        let cond = Expr::Binary(BinOp::Eq, Box::new(Expr::Field(0)), lit(Value::Str("/none".into())));
        let mut calc =
            Calc::new(&[("F".into(), CalcOp::Filter(&cond), s.clone(), s)], &SourceMap::default()).expect("compiles");
        let mut out = Vec::new();
        calc.process(b, &mut out).expect("runs");
        assert!(out.is_empty());
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
