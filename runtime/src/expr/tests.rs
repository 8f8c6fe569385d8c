//! Tests of the compiled evaluator: the interpreter's unit tests, ported;
//! short-circuits; and a property test against the interpreter as a model.

use super::reference;
use super::*;
use crate::data::Batch;
use crate::record::Value;
use flowc_compiler::ir::{BinOp, DataType, Expr, Function, SourceSpan};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn lit(v: Value) -> Box<Expr> {
    Box::new(Expr::Literal(v))
}

/// Evaluates `e` on every row of `batch`, all of them selected.
fn eval_all(e: &Expr, batch: &Batch) -> Result<Vec<Value>, EvalError> {
    let c = CompiledExpr::compile(e, &batch.types(), &SourceMap::default()).expect("compiles");
    let sel = Sel::All(batch.len());
    let col = c.eval(batch, sel)?.into_column(sel, c.ty)?;
    Ok((0..batch.len()).filter_map(|r| col.value(r)).collect())
}

/// Evaluates a record-free expression (one row, no fields).
fn check(e: Expr, expect: Value) {
    let batch = Batch::new(vec![0], Vec::new());
    assert_eq!(eval_all(&e, &batch).expect("evaluates"), vec![expect]);
}

#[test]
fn arithmetic_and_comparison() {
    check(Expr::Binary(BinOp::Add, lit(Value::Int(2)), lit(Value::Int(3))), Value::Int(5));
    check(Expr::Binary(BinOp::Rem, lit(Value::Int(7)), lit(Value::Int(3))), Value::Int(1));
    check(Expr::Binary(BinOp::Div, lit(Value::Double(1.0)), lit(Value::Double(4.0))), Value::Double(0.25));
    check(Expr::Binary(BinOp::Lt, lit(Value::Str("a".into())), lit(Value::Str("b".into()))), Value::Bool(true));
    check(Expr::Binary(BinOp::Eq, lit(Value::Double(f64::NAN)), lit(Value::Double(f64::NAN))), Value::Bool(false));
    check(Expr::Binary(BinOp::Add, lit(Value::Timestamp(1000)), lit(Value::Int(5))), Value::Timestamp(1005));
    let batch = Batch::new(vec![0], Vec::new());
    let e = eval_all(&Expr::Binary(BinOp::Div, lit(Value::Int(1)), lit(Value::Int(0))), &batch);
    assert_eq!(e.map_err(|e| e.kind), Err(ErrorKind::DivisionByZero));
}

#[test]
fn functions() {
    let s = |x: &str| Value::Str(x.into());
    check(Expr::Call(Function::Upper, vec![Expr::Literal(s("/shop"))]), s("/SHOP"));
    check(
        Expr::Call(
            Function::Substring,
            vec![Expr::Literal(s("héllo")), Expr::Literal(Value::Int(1)), Expr::Literal(Value::Int(3))],
        ),
        s("éll"),
    );
    check(Expr::Call(Function::Concat, vec![Expr::Literal(s("a")), Expr::Literal(s("b"))]), s("ab"));
    check(Expr::Call(Function::ToString, vec![Expr::Literal(Value::Timestamp(15_000))]), s("1970-01-01T00:00:15.000Z"));
    check(Expr::If(lit(Value::Bool(false)), lit(Value::Int(1)), lit(Value::Int(2))), Value::Int(2));
    check(Expr::Call(Function::Lower, vec![Expr::Literal(s("ΟΔΟΣ"))]), s("οδος"));
    check(
        Expr::Call(Function::Replace, vec![Expr::Literal(s("a-b-c")), Expr::Literal(s("-")), Expr::Literal(s("+"))]),
        s("a+b+c"),
    );
}

#[test]
fn nullable_elements_as_flink_sql_compiled_and_interpreted_alike() {
    use flowc_compiler::ir::Elem;
    let loose = DataType::Array(Elem::LONG.with_nulls(true));
    let strict = DataType::Array(Elem::LONG);
    let l = |v: &[Option<i64>]| Value::Array(v.iter().map(|x| x.map_or(Value::Null, Value::Int)).collect());
    let rows = vec![
        vec![l(&[Some(1), None]), Value::Int(1), l(&[Some(5)])],
        vec![l(&[Some(1), None]), Value::Null, l(&[])],
        vec![l(&[Some(2)]), Value::Null, l(&[Some(2)])],
        vec![Value::Null, Value::Null, l(&[Some(3)])],
        vec![l(&[None, None]), Value::Int(0), l(&[Some(0)])],
    ];
    let batch = Batch::from_values(&[loose, DataType::Long, strict], &rows).expect("fits");
    let f = |i| Expr::Field(i);
    let cases = [
        // A null needle looks for a null element; a null array gives null.
        (
            Expr::Call(Function::ArrayContains, vec![f(0), f(1)]),
            vec![Value::Bool(true), Value::Bool(true), Value::Bool(false), Value::Null, Value::Bool(false)],
        ),
        (
            Expr::Call(Function::Cardinality, vec![f(0)]),
            vec![Value::Int(2), Value::Int(2), Value::Int(1), Value::Null, Value::Int(2)],
        ),
        (
            Expr::Call(Function::ElementAt, vec![f(0), Expr::Literal(Value::Int(2))]),
            vec![Value::Null, Value::Null, Value::Null, Value::Null, Value::Null],
        ),
        (
            Expr::Call(Function::ElementAt, vec![f(0), Expr::Literal(Value::Int(1))]),
            vec![Value::Int(1), Value::Int(1), Value::Int(2), Value::Null, Value::Null],
        ),
        // `array(x, 5)` of a null `x`: a null element (Flink SQL's `ARRAY[NULL, 5]`).
        (
            Expr::Call(Function::Array, vec![f(1), Expr::Literal(Value::Int(5))]),
            vec![
                l(&[Some(1), Some(5)]),
                l(&[None, Some(5)]),
                l(&[None, Some(5)]),
                l(&[None, Some(5)]),
                l(&[Some(0), Some(5)]),
            ],
        ),
        // An array<long> beside an array<long?>, cast or not: the same values.
        (
            Expr::Call(Function::Coalesce, vec![f(0), f(2)]),
            vec![rows[0][0].clone(), rows[1][0].clone(), rows[2][0].clone(), l(&[Some(3)]), rows[4][0].clone()],
        ),
        (
            Expr::Call(Function::Coalesce, vec![f(0), Expr::Cast(loose, Box::new(f(2)))]),
            vec![rows[0][0].clone(), rows[1][0].clone(), rows[2][0].clone(), l(&[Some(3)]), rows[4][0].clone()],
        ),
        (
            Expr::If(
                Box::new(Expr::IsNull(Box::new(f(1)), false)),
                Box::new(Expr::Cast(loose, Box::new(f(2)))),
                Box::new(f(0)),
            ),
            vec![rows[0][0].clone(), l(&[]), l(&[Some(2)]), l(&[Some(3)]), rows[4][0].clone()],
        ),
    ];
    for (e, want) in cases {
        assert_eq!(eval_all(&e, &batch).expect("evaluates"), want, "{e:?}");
        let model: Vec<Value> = (0..batch.len())
            .map(|r| reference::eval(&e, &batch.row(r), &reference::Scope::default()).expect("interprets"))
            .collect();
        assert_eq!(model, want, "the interpreter: {e:?}");
    }
}

#[test]
fn window_scope() {
    // [key, aggregate, window start, window end]
    let types = [DataType::String, DataType::Long, DataType::Timestamp, DataType::Timestamp];
    let row = vec![Value::Str("/a".into()), Value::Int(1000), Value::Timestamp(0), Value::Timestamp(15_000)];
    let batch = Batch::from_values(&types, &[row]).expect("fits");
    let scope = AggregateScope { keys: 1, aggregates: 1 };
    let map = SourceMap::default();
    for (e, want) in [
        (Expr::Key(0), Value::Str("/a".into())),
        (Expr::Aggregate(0), Value::Int(1000)),
        (Expr::WindowEnd, Value::Timestamp(15_000)),
        (Expr::WindowStart, Value::Timestamp(0)),
    ] {
        let c = CompiledExpr::compile_aggregate_output(&e, &types, scope, &map).expect("compiles");
        let sel = Sel::All(1);
        let col = c.eval(&batch, sel).and_then(|v| v.into_column(sel, c.ty)).expect("evaluates");
        assert_eq!(col.value(0), Some(want));
    }
    assert!(CompiledExpr::compile_aggregate_output(&Expr::Field(0), &types, scope, &map).is_err());
    assert!(CompiledExpr::compile_aggregate_output(&Expr::Key(1), &types, scope, &map).is_err());
}

fn ints(xs: &[i64]) -> Batch {
    let rows: Vec<Vec<Value>> = xs.iter().map(|x| vec![Value::Int(*x)]).collect();
    Batch::from_values(&[DataType::Long], &rows).expect("fits")
}

fn x() -> Box<Expr> {
    Box::new(Expr::Field(0))
}

fn div(a: Box<Expr>, b: Box<Expr>) -> Box<Expr> {
    Box::new(Expr::At(SourceSpan::new(0, 0), Box::new(Expr::Binary(BinOp::Div, a, b))))
}

#[test]
fn guards_keep_a_division_away_from_the_rows_they_exclude() {
    let batch = ints(&[0, 5, 0, 20]);
    // x != 0 and 10 / x > 1
    let guarded = Expr::Binary(
        BinOp::And,
        Box::new(Expr::Binary(BinOp::Ne, x(), lit(Value::Int(0)))),
        Box::new(Expr::Binary(BinOp::Gt, div(lit(Value::Int(10)), x()), lit(Value::Int(1)))),
    );
    assert_eq!(
        eval_all(&guarded, &batch),
        Ok(vec![Value::Bool(false), Value::Bool(true), Value::Bool(false), Value::Bool(false)])
    );
    // x == 0 or 10 / x > 1
    let or = Expr::Binary(
        BinOp::Or,
        Box::new(Expr::Binary(BinOp::Eq, x(), lit(Value::Int(0)))),
        Box::new(Expr::Binary(BinOp::Gt, div(lit(Value::Int(10)), x()), lit(Value::Int(1)))),
    );
    assert_eq!(
        eval_all(&or, &batch),
        Ok(vec![Value::Bool(true), Value::Bool(true), Value::Bool(true), Value::Bool(false)])
    );
    // if(x == 0, 0, 10 / x)
    let iff = Expr::If(
        Box::new(Expr::Binary(BinOp::Eq, x(), lit(Value::Int(0)))),
        lit(Value::Int(0)),
        div(lit(Value::Int(10)), x()),
    );
    assert_eq!(eval_all(&iff, &batch), Ok(vec![Value::Int(0), Value::Int(2), Value::Int(0), Value::Int(0)]));
    // Unguarded, the error names the first row it meets.
    let bare = *div(lit(Value::Int(10)), x());
    let e = eval_all(&bare, &batch).expect_err("fails");
    assert_eq!((e.kind, e.row), (ErrorKind::DivisionByZero, Some(0)));
    // A constant division by zero is not folded away: it fails at run time, on rows that reach it.
    let never = Expr::If(
        Box::new(Expr::Binary(BinOp::Lt, x(), lit(Value::Int(0)))),
        div(lit(Value::Int(1)), lit(Value::Int(0))),
        x(),
    );
    assert_eq!(eval_all(&never, &batch), Ok(vec![Value::Int(0), Value::Int(5), Value::Int(0), Value::Int(20)]));
}

#[test]
fn errors_name_the_place_and_the_record() {
    let text = "job \"x\"\n... | map { r: 10 / x }\n";
    let src = flowc_compiler::graph::JobSource { name: "x.flow".into(), text: text.into() };
    let start = text.find("10").expect("in text");
    let e = Expr::At(SourceSpan::new(start, start + 6), Box::new(Expr::Binary(BinOp::Div, lit(Value::Int(10)), x())));
    let batch = ints(&[3, 0]);
    let c = CompiledExpr::compile(&e, &batch.types(), &SourceMap::new(Some(&src))).expect("compiles");
    let err = c.eval(&batch, Sel::All(2)).expect_err("fails");
    let schema =
        flowc_compiler::ir::Schema { name: None, fields: vec![flowc_compiler::ir::Field::new("x", DataType::Long)] };
    assert_eq!(err.describe(&batch, &schema), "division by zero in `10 / x` at x.flow:2:16, record {\"x\":0}");
}

#[test]
fn int_results_must_fit_32_bits_and_long_ones_64() {
    let (max, min) = (i64::from(i32::MAX), i64::from(i32::MIN));
    let rows = vec![
        vec![Value::Int(1), Value::Int(2), Value::Int(max)],
        vec![Value::Int(max), Value::Null, Value::Int(max)],
        vec![Value::Int(max), Value::Int(1), Value::Int(max)],
        vec![Value::Int(min), Value::Int(-1), Value::Int(min)],
    ];
    let batch = Batch::from_values(&[DataType::Int, DataType::Int, DataType::Long], &rows).expect("fits");
    let f = |i| Box::new(Expr::Field(i));
    let text = "job \"x\"\n... | map { s: a + b }\n";
    let src = flowc_compiler::graph::JobSource { name: "x.flow".into(), text: text.into() };
    let map = SourceMap::new(Some(&src));
    let start = text.find("a + b").expect("in text");
    let at = |e: Expr| Expr::At(SourceSpan::new(start, start + 5), Box::new(e));
    let fails_on = |e: &Expr| {
        let c = CompiledExpr::compile(e, &batch.types(), &map).expect("compiles");
        c.eval(&batch, Sel::All(4)).map(|_| ()).map_err(|err| (err.kind, err.row))
    };
    use ErrorKind::IntOverflow;
    // `a + b` of two ints: the null row (its `a` at the top) is no overflow, the next one is.
    let sum = at(Expr::Binary(BinOp::Add, f(0), f(1)));
    assert_eq!(fails_on(&sum), Err((IntOverflow, Some(2))));
    let c = CompiledExpr::compile(&sum, &batch.types(), &map).expect("compiles");
    let err = c.eval(&batch, Sel::All(4)).map(|_| ()).expect_err("fails");
    let schema = flowc_compiler::ir::Schema {
        name: None,
        fields: ["a", "b", "n"].iter().map(|n| flowc_compiler::ir::Field::new(*n, DataType::Int)).collect(),
    };
    assert_eq!(
        err.describe(&batch, &schema),
        "integer overflow (the result is out of the range of an int) in `a + b` at x.flow:2:16, record {\"a\":2147483647,\"b\":1,\"n\":2147483647}"
    );
    assert_eq!(c.ty, DataType::Int);
    // Only the rows before it (a null one among them): no overflow.
    assert!(c.eval(&batch, Sel::Rows(&[0, 1])).is_ok());
    // An int and an integer literal (which the plan stores as a long) are an int.
    let plus_one = at(Expr::Binary(BinOp::Add, f(0), lit(Value::Int(1))));
    assert_eq!(fails_on(&plus_one), Err((IntOverflow, Some(1))));
    assert_eq!(fails_on(&at(Expr::Binary(BinOp::Mul, lit(Value::Int(2)), f(0)))), Err((IntOverflow, Some(1))));
    // `-x` of the least int, and the least int `/ -1`.
    assert_eq!(fails_on(&at(Expr::Neg(f(0)))), Err((IntOverflow, Some(3))));
    assert_eq!(fails_on(&at(Expr::Binary(BinOp::Div, f(0), lit(Value::Int(-1))))), Err((IntOverflow, Some(3))));
    assert_eq!(fails_on(&at(Expr::Binary(BinOp::Rem, f(0), lit(Value::Int(-1))))), Ok(()));
    // Widened to long (as the checker widens `a + n`), the same sums fit.
    let long = |e| Box::new(Expr::Cast(DataType::Long, e));
    assert_eq!(fails_on(&at(Expr::Binary(BinOp::Add, long(f(0)), f(2)))), Ok(()));
    assert_eq!(fails_on(&at(Expr::Binary(BinOp::Add, f(2), long(f(0))))), Ok(()));
    assert_eq!(fails_on(&at(Expr::Neg(f(2)))), Ok(()));
    // `if` and `coalesce` of an int and a literal are ints.
    let either = Expr::If(Box::new(Expr::Binary(BinOp::Eq, f(1), lit(Value::Int(0)))), lit(Value::Int(0)), f(0));
    assert_eq!(
        fails_on(&at(Expr::Binary(BinOp::Add, Box::new(either), lit(Value::Int(1))))),
        Err((IntOverflow, Some(1)))
    );
    let either = Expr::Call(Function::Coalesce, vec![Expr::Field(1), Expr::Literal(Value::Int(max))]);
    assert_eq!(fails_on(&at(Expr::Binary(BinOp::Add, Box::new(either), f(0)))), Err((IntOverflow, Some(1))));
}

#[test]
fn constants_fold_and_fields_are_borrowed() {
    let map = SourceMap::default();
    let e = Expr::Binary(BinOp::Mul, lit(Value::Int(6)), Box::new(Expr::Cast(DataType::Long, lit(Value::Int(7)))));
    let c = CompiledExpr::compile(&e, &[], &map).expect("compiles");
    assert_eq!(c.as_const(), Some(&Value::Int(42)));
    let ts = Expr::Call(Function::ToTimestamp, vec![Expr::Literal(Value::Int(5))]);
    assert_eq!(CompiledExpr::compile(&ts, &[], &map).expect("compiles").as_const(), Some(&Value::Timestamp(5)));
    let batch = ints(&[1, 2]);
    let f = CompiledExpr::compile(&Expr::Field(0), &batch.types(), &map).expect("compiles");
    assert_eq!(f.as_field(), Some(0));
    assert!(matches!(f.eval(&batch, Sel::All(2)), Ok(Vals::Column(_))));
    // A type the checker would have refused is a compile error, not a run-time one.
    let bad = Expr::Binary(BinOp::Add, lit(Value::Str("a".into())), lit(Value::Int(1)));
    assert!(CompiledExpr::compile(&bad, &[], &map).is_err());
}

// ---- The property test: compiled evaluator against the interpreter. ----

/// The schema of the random records.
pub(crate) const TYPES: [DataType; 6] =
    [DataType::Timestamp, DataType::String, DataType::Int, DataType::Long, DataType::Double, DataType::Bool];

/// A field of type `ty` of records of `types` (an `int` one widened, as
/// the checker does, where a `long` is wanted), or a literal if there is none.
fn field_of(ty: DataType, types: &[DataType], rng: &mut StdRng) -> Expr {
    let candidates: Vec<usize> = types
        .iter()
        .enumerate()
        .filter(|(_, t)| **t == ty || (ty == DataType::Long && **t == DataType::Int))
        .map(|(i, _)| i)
        .collect();
    if candidates.is_empty() {
        return Expr::Literal(literal(ty, rng));
    }
    let i = candidates[rng.random_range(0..candidates.len())];
    match types.get(i) {
        Some(DataType::Int) if ty == DataType::Long => Expr::Cast(DataType::Long, b(Expr::Field(i))),
        _ => Expr::Field(i),
    }
}

pub(crate) fn literal(ty: DataType, rng: &mut StdRng) -> Value {
    match ty {
        DataType::String => Value::Str(["", "a", "/shop", "héllo", "A b", "ab"][rng.random_range(0..6)].into()),
        DataType::Int => Value::Int([0, 1, -1, 2, 7, i32::MIN.into(), i32::MAX.into()][rng.random_range(0..7)]),
        DataType::Long => Value::Int([0, 1, -1, 2, 7, i64::MIN, i64::MAX][rng.random_range(0..7)]),
        DataType::Double => Value::Double([0.0, -0.0, 1.5, f64::NAN, -2.0, f64::INFINITY][rng.random_range(0..6)]),
        DataType::Bool => Value::Bool(rng.random()),
        DataType::Timestamp => Value::Timestamp([0, 1_795_558_500_000, -5][rng.random_range(0..3)]),
        DataType::Array(e) => Value::Array(
            (0..rng.random_range(0..3))
                .map(|_| if e.nullable() && rng.random_range(0..3) == 0 { Value::Null } else { literal(e.ty(), rng) })
                .collect(),
        ),
    }
}

/// A random array expression: of strings (`split`, `array`) or of longs
/// (`array`), maybe chosen by `if`.
fn gen_array(types: &[DataType], strings: bool, depth: u32, rng: &mut StdRng) -> Expr {
    use DataType as T;
    let gen = |t: DataType, rng: &mut StdRng| gen_over(types, t, depth, rng);
    let long = |rng: &mut StdRng| Expr::Cast(T::Long, b(gen(T::Long, rng)));
    match (strings, rng.random_range(0..4)) {
        (true, 0) => Expr::Call(Function::Split, vec![gen(T::String, rng), Expr::Literal(literal(T::String, rng))]),
        (true, 1) => Expr::Call(Function::Split, vec![gen(T::String, rng), gen(T::String, rng)]),
        (true, 2) => Expr::Call(Function::Array, vec![gen(T::String, rng), gen(T::String, rng)]),
        (false, 0 | 1) => Expr::Call(Function::Array, vec![long(rng), long(rng), long(rng)]),
        (false, 2) => Expr::Call(Function::Array, vec![long(rng)]),
        _ => Expr::If(
            b(gen(T::Bool, rng)),
            b(gen_array(types, strings, depth, rng)),
            b(gen_array(types, strings, depth, rng)),
        ),
    }
}

/// A random use of an array giving `ty`, if there is one of that type.
fn gen_array_use(types: &[DataType], ty: DataType, depth: u32, rng: &mut StdRng) -> Option<Expr> {
    use DataType as T;
    let strings = rng.random();
    let a = gen_array(types, strings, depth, rng);
    Some(match ty {
        T::Int => Expr::Call(Function::Cardinality, vec![a]),
        T::String if strings => Expr::Call(Function::ElementAt, vec![a, gen_over(types, T::Long, depth, rng)]),
        T::Long if !strings => Expr::Call(Function::ElementAt, vec![a, gen_over(types, T::Int, depth, rng)]),
        T::Bool if strings => Expr::Call(Function::ArrayContains, vec![a, gen_over(types, T::String, depth, rng)]),
        T::Bool => {
            Expr::Call(Function::ArrayContains, vec![a, Expr::Cast(T::Long, b(gen_over(types, T::Long, depth, rng)))])
        }
        _ => return None,
    })
}

fn b(e: Expr) -> Box<Expr> {
    Box::new(e)
}

/// A random, well-typed expression of type `ty` over records of [`TYPES`].
fn gen(ty: DataType, depth: u32, rng: &mut StdRng) -> Expr {
    gen_over(&TYPES, ty, depth, rng)
}

/// A random, well-typed expression of type `ty` over records of `types`.
pub(crate) fn gen_over(types: &[DataType], ty: DataType, depth: u32, rng: &mut StdRng) -> Expr {
    use DataType as T;
    let gen = |t: DataType, d: u32, rng: &mut StdRng| gen_over(types, t, d, rng);
    if depth == 0 || rng.random_range(0..4) == 0 {
        return if rng.random() { field_of(ty, types, rng) } else { Expr::Literal(literal(ty, rng)) };
    }
    let d = depth - 1;
    if rng.random_range(0..6) == 0 {
        return Expr::If(b(gen(T::Bool, d, rng)), b(gen(ty, d, rng)), b(gen(ty, d, rng)));
    }
    if rng.random_range(0..10) == 0 {
        if let Some(e) = gen_array_use(types, ty, d, rng) {
            return e;
        }
    }
    if rng.random_range(0..8) == 0 {
        // Nullness: `coalesce` of two of the type, or `is [not] null` of any.
        if ty == T::Bool && rng.random() {
            let t = TYPES[rng.random_range(0..TYPES.len())];
            return Expr::IsNull(b(gen(t, d, rng)), rng.random());
        }
        return Expr::Call(Function::Coalesce, vec![gen(ty, d, rng), gen(ty, d, rng)]);
    }
    match ty {
        // Arrays are made by `gen_array` where an array function needs one.
        T::Array(_) => Expr::Literal(literal(ty, rng)),
        // `int op int` is an `int` and must fit 32 bits; one operand may be
        // an integer literal (typed `int` by the checker, a long in the plan).
        T::Int | T::Long => match rng.random_range(0..7) {
            0 => Expr::At(SourceSpan::new(0, 0), b(Expr::Neg(b(gen(ty, d, rng))))),
            1 if ty == T::Int => Expr::Call(Function::Length, vec![gen(T::String, d, rng)]),
            1 => Expr::Cast(T::Long, b(Expr::Call(Function::Length, vec![gen(T::String, d, rng)]))),
            2 => Expr::Call(Function::Abs, vec![gen(ty, d, rng)]),
            3 if ty == T::Long => Expr::Call(Function::Millis, vec![gen(T::Timestamp, d, rng)]),
            4 if ty == T::Long => Expr::Cast(T::Long, b(gen(T::Timestamp, d, rng))),
            _ => {
                let op = [BinOp::Add, BinOp::Sub, BinOp::Mul, BinOp::Div, BinOp::Rem][rng.random_range(0..5)];
                let operand = |rng: &mut StdRng| match rng.random_range(0..4) {
                    0 => Expr::Literal(literal(T::Int, rng)),
                    _ => gen(ty, d, rng),
                };
                let e = Expr::Binary(op, b(operand(rng)), b(operand(rng)));
                Expr::At(SourceSpan::new(0, 0), b(e))
            }
        },
        T::Timestamp => match rng.random_range(0..3) {
            0 => Expr::Cast(T::Timestamp, b(gen(T::Long, d, rng))),
            1 => Expr::Call(Function::ToTimestamp, vec![gen(T::Long, d, rng)]),
            _ => Expr::Binary(
                [BinOp::Add, BinOp::Sub][rng.random_range(0..2)],
                b(gen(T::Timestamp, d, rng)),
                b(gen(T::Long, d, rng)),
            ),
        },
        T::Double => match rng.random_range(0..5) {
            0 => Expr::Neg(b(gen(T::Double, d, rng))),
            3 => Expr::Call([Function::Floor, Function::Ceil][rng.random_range(0..2)], vec![gen(T::Double, d, rng)]),
            1 => Expr::Cast(T::Double, b(gen(T::Long, d, rng))),
            2 => Expr::Call(Function::Abs, vec![gen(T::Double, d, rng)]),
            _ => Expr::Binary(
                [BinOp::Add, BinOp::Sub, BinOp::Mul, BinOp::Div, BinOp::Rem][rng.random_range(0..5)],
                b(gen(T::Double, d, rng)),
                b(gen(T::Double, d, rng)),
            ),
        },
        T::Bool => match rng.random_range(0..5) {
            0 => Expr::Not(b(gen(T::Bool, d, rng))),
            1 => Expr::Binary(
                [BinOp::And, BinOp::Or][rng.random_range(0..2)],
                b(gen(T::Bool, d, rng)),
                b(gen(T::Bool, d, rng)),
            ),
            2 => {
                let f = [Function::Contains, Function::StartsWith, Function::EndsWith][rng.random_range(0..3)];
                Expr::Call(f, vec![gen(T::String, d, rng), gen(T::String, d, rng)])
            }
            _ => {
                let t = TYPES[rng.random_range(0..TYPES.len())];
                let ops: &[BinOp] = if t == T::Bool {
                    &[BinOp::Eq, BinOp::Ne]
                } else {
                    &[BinOp::Eq, BinOp::Ne, BinOp::Lt, BinOp::Le, BinOp::Gt, BinOp::Ge]
                };
                Expr::Binary(ops[rng.random_range(0..ops.len())], b(gen(t, d, rng)), b(gen(t, d, rng)))
            }
        },
        T::String => match rng.random_range(0..7) {
            5 => Expr::Call(
                Function::SplitPart,
                vec![gen(T::String, d, rng), gen(T::String, d, rng), gen(T::Long, d, rng)],
            ),
            0 => Expr::Call(
                [Function::Upper, Function::Lower, Function::Trim][rng.random_range(0..3)],
                vec![gen(T::String, d, rng)],
            ),
            1 => Expr::Call(Function::Concat, (0..rng.random_range(1..4)).map(|_| gen(T::String, d, rng)).collect()),
            2 => Expr::Call(
                Function::Substring,
                vec![gen(T::String, d, rng), gen(T::Long, d, rng), gen(T::Long, d, rng)],
            ),
            3 => Expr::Call(
                Function::Replace,
                vec![gen(T::String, d, rng), gen(T::String, d, rng), gen(T::String, d, rng)],
            ),
            _ => Expr::Call(Function::ToString, vec![gen(TYPES[rng.random_range(0..TYPES.len())], d, rng)]),
        },
    }
}

/// Turns the string columns of `batch` into dictionary columns.
pub(crate) fn dictionary_encode(batch: &mut Batch) {
    for c in &mut batch.columns {
        if let crate::data::Data::Str(s) = &c.data {
            c.data = crate::data::Data::Str(s.to_dictionary());
        }
    }
}

pub(crate) fn row(rng: &mut StdRng) -> Vec<Value> {
    TYPES.iter().map(|t| literal(*t, rng)).collect()
}

/// A record whose fields are null about one time in three.
fn row_with_nulls(rng: &mut StdRng) -> Vec<Value> {
    TYPES.iter().map(|t| if rng.random_range(0..3) == 0 { Value::Null } else { literal(*t, rng) }).collect()
}

/// Equal, with every NaN equal to every NaN.
pub(crate) fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Double(x), Value::Double(y)) => x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
        _ => a == b,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// On random expressions, records and selections: where the interpreter
    /// gives a value for every selected record, the compiled evaluator gives
    /// the same values; where it fails on some record, the compiled one fails
    /// too, naming a record the interpreter fails on.
    #[test]
    fn compiled_expressions_agree_with_the_interpreter(seed in any::<u64>(), depth in 0u32..5, rows in 1usize..12, nulls in any::<bool>()) {
        let mut rng = StdRng::seed_from_u64(seed);
        let ty = TYPES[rng.random_range(0..TYPES.len())];
        let e = gen(ty, depth, &mut rng);
        // With nulls: SQL's propagation, three-valued logic, `coalesce`, `is null`.
        let data: Vec<Vec<Value>> =
            (0..rows).map(|_| if nulls { row_with_nulls(&mut rng) } else { row(&mut rng) }).collect();
        let mut batch = Batch::from_values(&TYPES, &data).expect("fits");
        if rng.random() {
            dictionary_encode(&mut batch);
        }
        let selected: Vec<u32> = (0..rows as u32).filter(|_| rng.random_range(0..3) > 0).collect();
        let sel = if rng.random() { Sel::All(rows) } else { Sel::Rows(&selected) };
        let c = CompiledExpr::compile(&e, &TYPES, &SourceMap::default());
        let c = match c {
            Ok(c) => c,
            Err(m) => return Err(TestCaseError::fail(format!("{e:?} does not compile: {m}"))),
        };
        let scope = reference::Scope { fields: &TYPES, ..reference::Scope::default() };
        let model: Vec<Result<Value, reference::EvalError>> =
            (0..sel.len()).map(|k| reference::eval(&e, &data[sel.row(k)], &scope)).collect();
        let got = c.eval(&batch, sel).and_then(|v| v.into_column(sel, c.ty));
        match got {
            Ok(col) => {
                for (k, m) in model.iter().enumerate() {
                    let Ok(m) = m else {
                        return Err(TestCaseError::fail(format!("{e:?}: the model fails on row {} ({m:?}), compiled does not", sel.row(k))));
                    };
                    let v = col.value(k);
                    prop_assert!(v.as_ref().is_some_and(|v| same(v, m)), "{:?} on {:?}: compiled {:?}, model {:?}", e, data[sel.row(k)], v, m);
                }
            }
            Err(err) => {
                prop_assert!(
                    matches!(err.kind, ErrorKind::DivisionByZero | ErrorKind::Overflow | ErrorKind::IntOverflow),
                    "{:?}: {:?}", e, err
                );
                // The record the compiled evaluator fails on fails in the
                // model too. Where one record fails twice (an overflow in one
                // argument, a division by zero in another) the two may name
                // different ones: the model evaluates a call's arguments in
                // order, a compiled function in the order it needs them.
                let r = err.row.expect("a row");
                let k = (0..sel.len()).position(|k| sel.row(k) == r).expect("a selected row");
                prop_assert!(
                    matches!(
                        model[k],
                        Err(reference::EvalError::DivisionByZero | reference::EvalError::Overflow | reference::EvalError::IntOverflow)
                    ),
                    "{:?} row {}: compiled {:?}, model {:?}", e, r, err, model[k]
                );
            }
        }
    }
}

proptest! {
    /// Arrays whose elements may be null, against the interpreter: random
    /// `array<long?>` and `array<string?>` fields (null arrays, null
    /// elements, empty ones), needles and indices that may be null, and
    /// every array function over them, through `if` and `coalesce` with an
    /// `array<long>` too, on all records and on a selection.
    #[test]
    fn nullable_elements_agree_with_the_interpreter(seed in any::<u64>(), rows in 1usize..12) {
        use flowc_compiler::ir::Elem;
        let mut rng = StdRng::seed_from_u64(seed);
        let longs = DataType::Array(Elem::LONG.with_nulls(true));
        let strs = DataType::Array(Elem::STRING.with_nulls(true));
        let strict = DataType::Array(Elem::LONG);
        let types = [longs, strs, strict, DataType::Long, DataType::String, DataType::Int];
        let maybe = |v: Value, rng: &mut StdRng| if rng.random_range(0..4) == 0 { Value::Null } else { v };
        let data: Vec<Vec<Value>> = (0..rows)
            .map(|_| {
                vec![
                    maybe(literal(longs, &mut rng), &mut rng),
                    maybe(literal(strs, &mut rng), &mut rng),
                    literal(strict, &mut rng),
                    maybe(literal(DataType::Long, &mut rng), &mut rng),
                    maybe(Value::Str(["", "a", "ab"][rng.random_range(0..3)].into()), &mut rng),
                    maybe(Value::Int(rng.random_range(-1..4)), &mut rng),
                ]
            })
            .collect();
        let batch = Batch::from_values(&types, &data).expect("fits");
        let f = Expr::Field;
        let call = |func, args| Expr::Call(func, args);
        let widened = Expr::Cast(longs, Box::new(f(2)));
        let either = if rng.random() {
            call(Function::Coalesce, vec![f(0), widened])
        } else {
            Expr::If(Box::new(Expr::IsNull(Box::new(f(3)), false)), Box::new(widened), Box::new(f(0)))
        };
        let exprs = [
            call(Function::Cardinality, vec![f(0)]),
            call(Function::Cardinality, vec![f(1)]),
            call(Function::ElementAt, vec![f(0), f(5)]),
            call(Function::ElementAt, vec![f(1), f(5)]),
            call(Function::ArrayContains, vec![f(0), f(3)]),
            call(Function::ArrayContains, vec![f(1), f(4)]),
            call(Function::ArrayContains, vec![f(1), Expr::Literal(Value::Str("a".into()))]),
            call(Function::ArrayContains, vec![either.clone(), f(3)]),
            call(Function::ElementAt, vec![either.clone(), f(5)]),
            either,
            // `array(x, …)` of nulls: null elements, never a null array.
            call(Function::Array, vec![f(3), Expr::Literal(Value::Int(9)), f(3)]),
            call(Function::ArrayContains, vec![call(Function::Array, vec![f(3), Expr::Literal(Value::Int(9))]), f(3)]),
            call(Function::Array, vec![f(4)]),
        ];
        let selected: Vec<u32> = (0..rows as u32).filter(|_| rng.random_range(0..3) > 0).collect();
        for e in exprs {
            let c = CompiledExpr::compile(&e, &types, &SourceMap::default()).expect("compiles");
            for sel in [Sel::All(rows), Sel::Rows(&selected)] {
                let col = c.eval(&batch, sel).and_then(|v| v.into_column(sel, c.ty)).expect("evaluates");
                for k in 0..sel.len() {
                    let model = reference::eval(&e, &data[sel.row(k)], &reference::Scope::default()).expect("interprets");
                    prop_assert_eq!(col.value(k), Some(model), "{:?} on {:?}", e, data[sel.row(k)]);
                }
            }
        }
    }
}
