//! Tests of typed `null` constants on the compiled path: the checker
//! writes SQL's `NULL` as `cast(null as T)`, which compiles to a constant
//! of nulls of that type, in `if`, `coalesce`, `array` and casts, over
//! batches with and without nulls, compiled and interpreted alike.

use super::reference;
use super::*;
use crate::data::Batch;
use crate::record::Value;
use flowc_compiler::ir::{DataType, Elem, Expr, Function};

/// `cast(null as ty)`.
fn null(ty: DataType) -> Expr {
    Expr::Cast(ty, Box::new(Expr::Literal(Value::Null)))
}

fn compile(e: &Expr, batch: &Batch) -> CompiledExpr {
    CompiledExpr::compile(e, &batch.types(), &SourceMap::default()).expect("compiles")
}

/// `e` on every row of `batch`: compiled, and checked against the
/// interpreter; and its type.
fn eval(e: &Expr, batch: &Batch) -> (Vec<Value>, DataType) {
    let c = compile(e, batch);
    let sel = Sel::All(batch.len());
    let col = c.eval(batch, sel).expect("evaluates").into_column(sel, c.ty).expect("a column");
    let got: Vec<Value> = (0..batch.len()).map(|r| col.value(r).expect("a value")).collect();
    let model: Vec<Value> = (0..batch.len())
        .map(|r| reference::eval(e, &batch.row(r), &reference::Scope::default()).expect("interprets"))
        .collect();
    assert_eq!(got, model, "compiled and interpreted differ: {e:?}");
    (got, c.ty)
}

/// `[x: long?, b: bool]` with nulls in `x`, and `[x: long, b: bool]` without.
fn batches() -> [Batch; 2] {
    let types = [DataType::Long, DataType::Bool];
    let with = Batch::from_values(
        &types,
        &[
            vec![Value::Int(1), Value::Bool(true)],
            vec![Value::Null, Value::Bool(false)],
            vec![Value::Int(3), Value::Bool(false)],
        ],
    )
    .expect("fits");
    let without = Batch::from_values(
        &types,
        &[
            vec![Value::Int(1), Value::Bool(true)],
            vec![Value::Int(2), Value::Bool(false)],
            vec![Value::Int(3), Value::Bool(false)],
        ],
    )
    .expect("fits");
    [with, without]
}

#[test]
fn a_typed_null_is_a_constant_of_nulls_of_its_type() {
    for batch in batches() {
        for ty in [DataType::Long, DataType::String, DataType::Timestamp, DataType::Array(Elem::LONG)] {
            let c = compile(&null(ty), &batch);
            assert_eq!((c.as_const(), c.ty), (Some(&Value::Null), ty));
            assert_eq!(eval(&null(ty), &batch), (vec![Value::Null; 3], ty));
        }
        // A cast of a typed null is a null of the cast's type (`double(cast(null as long))`).
        let widened = Expr::Cast(DataType::Double, Box::new(null(DataType::Long)));
        assert_eq!(eval(&widened, &batch), (vec![Value::Null; 3], DataType::Double));
    }
}

#[test]
fn if_with_a_null_branch() {
    let [with, without] = batches();
    let x = || Box::new(Expr::Field(0));
    let b = || Box::new(Expr::Field(1));
    // `if b then x else null`, and `if b then null else x`.
    let else_null = Expr::If(b(), x(), Box::new(null(DataType::Long)));
    let then_null = Expr::If(b(), Box::new(null(DataType::Long)), x());
    assert_eq!(eval(&else_null, &with), (vec![Value::Int(1), Value::Null, Value::Null], DataType::Long));
    assert_eq!(eval(&else_null, &without), (vec![Value::Int(1), Value::Null, Value::Null], DataType::Long));
    assert_eq!(eval(&then_null, &with), (vec![Value::Null, Value::Null, Value::Int(3)], DataType::Long));
    assert_eq!(eval(&then_null, &without), (vec![Value::Null, Value::Int(2), Value::Int(3)], DataType::Long));
    // A constant condition folds to the chosen branch: a constant null.
    let folded = Expr::If(Box::new(Expr::Literal(Value::Bool(false))), x(), Box::new(null(DataType::Long)));
    assert_eq!(compile(&folded, &with).as_const(), Some(&Value::Null));
}

#[test]
fn coalesce_skips_null_constants() {
    let [with, without] = batches();
    let x = Expr::Field(0);
    let zero = Expr::Literal(Value::Int(0));
    // `coalesce(null, x)` is `x`: the very field, nothing computed.
    let e = Expr::Call(Function::Coalesce, vec![null(DataType::Long), x.clone()]);
    assert_eq!(compile(&e, &with).as_field(), Some(0));
    assert_eq!(eval(&e, &with).0, vec![Value::Int(1), Value::Null, Value::Int(3)]);
    assert_eq!(eval(&e, &without).0, vec![Value::Int(1), Value::Int(2), Value::Int(3)]);
    // `coalesce(x, null, 0)`: the null is skipped, the 0 fills.
    let e = Expr::Call(Function::Coalesce, vec![x.clone(), null(DataType::Long), zero.clone()]);
    assert_eq!(eval(&e, &with).0, vec![Value::Int(1), Value::Int(0), Value::Int(3)]);
    assert_eq!(eval(&e, &without).0, vec![Value::Int(1), Value::Int(2), Value::Int(3)]);
    // `coalesce(null, 0)` folds to 0; `coalesce(null, null)` to null.
    let e = Expr::Call(Function::Coalesce, vec![null(DataType::Long), zero]);
    assert_eq!(compile(&e, &with).as_const(), Some(&Value::Int(0)));
    let e = Expr::Call(Function::Coalesce, vec![null(DataType::Long), null(DataType::Long)]);
    assert_eq!(eval(&e, &without), (vec![Value::Null; 3], DataType::Long));
}

#[test]
fn array_with_a_null_element() {
    let [with, without] = batches();
    let l = |v: &[Option<i64>]| Value::Array(v.iter().map(|x| x.map_or(Value::Null, Value::Int)).collect());
    // `array(x, null)`: Flink SQL's `ARRAY[x, NULL]`, an array<long?>.
    let e = Expr::Call(Function::Array, vec![Expr::Field(0), null(DataType::Long)]);
    let loose = DataType::Array(Elem::LONG.with_nulls(true));
    assert_eq!(eval(&e, &with), (vec![l(&[Some(1), None]), l(&[None, None]), l(&[Some(3), None])], loose));
    assert_eq!(eval(&e, &without), (vec![l(&[Some(1), None]), l(&[Some(2), None]), l(&[Some(3), None])], loose));
    // Every element constant: one constant array.
    let e = Expr::Call(Function::Array, vec![null(DataType::Long), Expr::Literal(Value::Int(7))]);
    assert_eq!(compile(&e, &with).as_const(), Some(&l(&[None, Some(7)])));
}
