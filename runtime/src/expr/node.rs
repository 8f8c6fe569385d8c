//! The compiled form of an expression: a tree of typed nodes, and their
//! evaluation over the selected rows of a batch — every node produces the
//! values of all selected rows at once. `and`, `or` and `if` evaluate their
//! right side (or branches) only on the rows that need it, through a
//! narrower selection, whenever it can fail; a function of one dictionary
//! column runs once per distinct string.
//!
//! Nulls are SQL's: a node of null inputs is null (its value computed on
//! the type's default and marked absent in the result's validity), `and`
//! and `or` follow three-valued logic, `if` takes `else` on a null
//! condition, and a node that can fail (a division, a fallible function)
//! is never evaluated on a row whose input is null.

use super::error::{ErrorKind, EvalError, Location};
use super::functions::{Arg, ColumnFunction};
use super::kernels::{self, IntError};
use super::vals::{and_validity, Bools, F64s, I64s, Sel, Strs, Vals};
use crate::data::{Batch, Column, Data, ListColumn, StrColumn, Validity};
use crate::record::Value;
use flowc_compiler::ir::{BinOp, DataType, Elem};
use std::sync::Arc;

#[derive(Debug)]
pub(super) enum Node {
    Const(Value),
    Field(usize),
    /// The same `i64` values under another type (casts between int, long
    /// and timestamp, `millis`, `to_timestamp`).
    Relabel(Box<Node>),
    IntToDouble(Box<Node>),
    /// `-x` of an integer, and where it is written (for its overflow);
    /// `int`: the result is an `int`, so it must fit 32 bits.
    NegI {
        x: Box<Node>,
        at: Option<Arc<Location>>,
        int: bool,
    },
    NegF(Box<Node>),
    Not(Box<Node>),
    /// Integer `+ - * / %`; `int`: the result is an `int` (both operands
    /// are), so it must fit 32 bits.
    ArithI {
        op: BinOp,
        a: Box<Node>,
        b: Box<Node>,
        at: Option<Arc<Location>>,
        int: bool,
    },
    ArithF {
        op: BinOp,
        a: Box<Node>,
        b: Box<Node>,
    },
    Cmp {
        op: BinOp,
        kind: Kind,
        a: Box<Node>,
        b: Box<Node>,
    },
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    If {
        c: Box<Node>,
        t: Box<Node>,
        f: Box<Node>,
        ty: DataType,
    },
    Call {
        f: Box<dyn ColumnFunction>,
        args: Vec<(Node, DataType)>,
        at: Option<Arc<Location>>,
    },
    /// `x is null` (or, `negated`, `x is not null`): never null itself.
    IsNull {
        x: Box<Node>,
        negated: bool,
    },
    /// The first of its arguments that is not null, each evaluated only on
    /// the rows the ones before left null.
    Coalesce {
        args: Vec<Node>,
        ty: DataType,
    },
    /// `array(x, …)`: an array of its arguments, a null one a null element
    /// (Flink SQL's `ARRAY[x, NULL]`), of the scalar type `element`.
    MakeArray {
        args: Vec<Node>,
        element: DataType,
    },
}

/// How values of a type are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    I64,
    F64,
    Bool,
    Str,
    List,
}

pub(super) fn kind(t: DataType) -> Kind {
    match t {
        DataType::Int | DataType::Long | DataType::Timestamp => Kind::I64,
        DataType::Double => Kind::F64,
        DataType::Bool => Kind::Bool,
        DataType::String => Kind::Str,
        DataType::Array(_) => Kind::List,
    }
}

fn dense(ty: DataType, data: Data) -> Vals<'static> {
    Vals::Dense(Column::new(ty, data))
}

/// Computed values with these nulls.
fn dense_null(ty: DataType, data: Data, validity: Option<Validity>) -> Vals<'static> {
    Vals::Dense(Column::with_validity(ty, data, validity))
}

/// The k-th selected rows where `b` holds a value equal to `want` and
/// where it does not (a null is never `want`), as batch rows and as
/// positions in the selection.
fn split(b: &Bools<'_>, valid: Option<&Validity>, sel: Sel<'_>, want: bool) -> (Vec<u32>, Vec<u32>) {
    let n = sel.len();
    let (mut rows, mut pos) = (Vec::new(), Vec::new());
    for k in 0..n {
        if b.get(k) == want && valid.is_none_or(|v| v.get(k)) {
            rows.push(sel.row(k) as u32);
            pos.push(k as u32);
        }
    }
    (rows, pos)
}

/// Values of several parts, picked per row: the k-th value is
/// `parts[choice[k].0]`'s `choice[k].1`-th (a null where it is `None`).
fn pick_values(parts: &[(&Vals<'_>, Sel<'_>)], choice: &[Option<(usize, usize)>], ty: DataType) -> Column {
    let mut out = Column::empty(ty, choice.len());
    for c in choice {
        let v = match c {
            Some((p, j)) => parts.get(*p).map_or(crate::data::ValueRef::Null, |(v, s)| v.value_ref(*s, *j)),
            None => crate::data::ValueRef::Null,
        };
        if !out.push_value(v) {
            out.push_null();
        }
    }
    out
}

/// An `int` result (of `int` operands) must fit 32 bits: the first
/// value that does not, in a row that is not null, is an overflow (a null
/// row holds any value). The check is one flag per loop, as the long
/// overflow's.
fn fits_int(v: &[i64], valid: Option<&Validity>, sel: Sel<'_>, at: &Option<Arc<Location>>) -> Result<(), EvalError> {
    if !kernels::beyond_int(v) {
        return Ok(());
    }
    match (0..v.len()).find(|k| i32::try_from(v[*k]).is_err() && valid.is_none_or(|o| o.get(*k))) {
        Some(k) => Err(EvalError::at(ErrorKind::IntOverflow, sel.row(k), at.clone())),
        None => Ok(()),
    }
}

impl Node {
    /// `a and b` (`and`) or `a or b` where `a`'s values `ba` are all
    /// present and `b` cannot fail, on every selected row: most rows need
    /// `b` anyway, so it runs on the whole selection and the two combine
    /// without selections or a validity where `b` has no nulls either.
    fn and_or_whole<'a>(
        and: bool,
        ba: &Bools<'_>,
        b: &'a Node,
        batch: &'a Batch,
        sel: Sel<'_>,
    ) -> Result<Vals<'a>, EvalError> {
        let n = sel.len();
        let vb = b.eval(batch, sel)?;
        let bb = vb.bools(sel)?;
        let Some(lb) = vb.validity(sel) else {
            let out: Vec<bool> = match (ba, &bb, and) {
                (Bools::Slice(x), Bools::Slice(y), true) => x[..n].iter().zip(&y[..n]).map(|(x, y)| *x & *y).collect(),
                (Bools::Slice(x), Bools::Slice(y), false) => x[..n].iter().zip(&y[..n]).map(|(x, y)| *x | *y).collect(),
                (_, _, true) => (0..n).map(|k| ba.get(k) & bb.get(k)).collect(),
                (_, _, false) => (0..n).map(|k| ba.get(k) | bb.get(k)).collect(),
            };
            return Ok(dense(DataType::Bool, Data::Bool(out)));
        };
        // Three-valued: the left decides where it is `false` (and) or
        // `true` (or); elsewhere the right's value, or null.
        let decisive = !and;
        let mut out = Vec::with_capacity(n);
        let mut valid = Vec::with_capacity(n);
        for k in 0..n {
            let (l, r, present) = (ba.get(k), bb.get(k), lb.get(k));
            if l == decisive || (present && r == decisive) {
                out.push(decisive);
                valid.push(true);
            } else {
                out.push(present && r);
                valid.push(present);
            }
        }
        Ok(dense_null(DataType::Bool, Data::Bool(out), Some(Validity::from_bools(valid))))
    }

    pub(super) fn fallible(&self) -> bool {
        match self {
            Node::Const(_) | Node::Field(_) => false,
            Node::Relabel(x) | Node::IntToDouble(x) | Node::NegF(x) | Node::Not(x) => x.fallible(),
            // `-x` overflows on `i64::MIN`, and so can `+`, `-` and `*`.
            Node::NegI { .. } => true,
            Node::ArithI { op, a, b, .. } => {
                let divides = matches!(op, BinOp::Div | BinOp::Rem);
                // Neither 0 nor -1 (`i64::MIN / -1` overflows).
                let safe_divisor = matches!(**b, Node::Const(Value::Int(d) | Value::Timestamp(d)) if d != 0 && d != -1);
                !divides || !safe_divisor || a.fallible() || b.fallible()
            }
            Node::ArithF { a, b, .. } | Node::Cmp { a, b, .. } | Node::And(a, b) | Node::Or(a, b) => {
                a.fallible() || b.fallible()
            }
            Node::If { c, t, f, .. } => c.fallible() || t.fallible() || f.fallible(),
            Node::Call { f, args, .. } => f.fallible() || args.iter().any(|(a, _)| a.fallible()),
            Node::IsNull { x, .. } => x.fallible(),
            Node::Coalesce { args, .. } | Node::MakeArray { args, .. } => args.iter().any(Node::fallible),
        }
    }

    pub(super) fn eval<'a>(&'a self, batch: &'a Batch, sel: Sel<'_>) -> Result<Vals<'a>, EvalError> {
        let n = sel.len();
        Ok(match self {
            Node::Const(v) => Vals::Scalar(v),
            Node::Field(i) => Vals::Column(
                batch.columns.get(*i).ok_or_else(|| EvalError::internal(format!("no field #{i} in the batch")))?,
            ),
            Node::Relabel(x) => x.eval(batch, sel)?,
            Node::IntToDouble(x) => {
                let v = x.eval(batch, sel)?;
                let valid = v.validity(sel);
                let v = v.i64s(sel)?;
                dense_null(DataType::Double, Data::F64(kernels::map1!(I64s, v, n, |x| x as f64)), valid)
            }
            Node::NegI { x, at, int } => {
                let v = x.eval(batch, sel)?;
                let valid = v.validity(sel);
                let v = v.i64s(sel)?;
                let negated = match kernels::neg_i64(v, n) {
                    Ok(negated) => negated,
                    // The least long in a null row is no overflow.
                    Err(_) => {
                        match (0..n).find(|k| v.get(*k) == i64::MIN && valid.as_ref().is_none_or(|o| o.get(*k))) {
                            Some(k) => return Err(EvalError::at(ErrorKind::Overflow, sel.row(k), at.clone())),
                            None => kernels::map1!(I64s, v, n, |x| x.wrapping_neg()),
                        }
                    }
                };
                if *int {
                    fits_int(&negated, valid.as_ref(), sel, at)?;
                }
                dense_null(DataType::Long, Data::I64(negated), valid)
            }
            Node::NegF(x) => {
                let v = x.eval(batch, sel)?;
                let valid = v.validity(sel);
                let v = v.f64s(sel)?;
                dense_null(DataType::Double, Data::F64(kernels::map1!(F64s, v, n, |x| -x)), valid)
            }
            Node::Not(x) => {
                let v = x.eval(batch, sel)?;
                let valid = v.validity(sel);
                let v = v.bools(sel)?;
                dense_null(DataType::Bool, Data::Bool(kernels::map1!(Bools, v, n, |x| !x)), valid)
            }
            Node::ArithI { op, a, b, at, int } => {
                let (va, vb) = (a.eval(batch, sel)?, b.eval(batch, sel)?);
                let valid = and_validity(va.validity(sel), vb.validity(sel));
                let (mut ia, mut ib) = (va.i64s(sel)?, vb.i64s(sel)?);
                // A null divisor is no division by zero: it divides by 1, and the row stays null.
                let patched: Vec<i64>;
                if let (Some(v), BinOp::Div | BinOp::Rem) = (&valid, op) {
                    patched = (0..n).map(|k| if v.get(k) { ib.get(k) } else { 1 }).collect();
                    ib = I64s::Slice(&patched);
                }
                let mut result = kernels::arith_i64(*op, ia, ib, n);
                // A null row holds any value: it overflows nothing. Only when
                // one seems to, the null rows are made 0 (a divisor 1) and
                // the batch computed again.
                let zero_a: Vec<i64>;
                let zero_b: Vec<i64>;
                let in_a_null = match (&result, &valid) {
                    (Err(IntError::Overflow(k)), Some(v)) => !v.get(*k),
                    _ => false,
                };
                if let (true, Some(v)) = (in_a_null, &valid) {
                    zero_a = (0..n).map(|k| if v.get(k) { ia.get(k) } else { 0 }).collect();
                    ia = I64s::Slice(&zero_a);
                    if !matches!(op, BinOp::Div | BinOp::Rem) {
                        zero_b = (0..n).map(|k| if v.get(k) { ib.get(k) } else { 0 }).collect();
                        ib = I64s::Slice(&zero_b);
                    }
                    result = kernels::arith_i64(*op, ia, ib, n);
                }
                match result {
                    Ok(v) => {
                        if *int {
                            fits_int(&v, valid.as_ref(), sel, at)?;
                        }
                        dense_null(DataType::Long, Data::I64(v), valid)
                    }
                    Err(IntError::DivByZero(k)) => {
                        return Err(EvalError::at(ErrorKind::DivisionByZero, sel.row(k), at.clone()))
                    }
                    Err(IntError::Overflow(k)) => {
                        return Err(EvalError::at(ErrorKind::Overflow, sel.row(k), at.clone()))
                    }
                }
            }
            Node::ArithF { op, a, b } => {
                let (va, vb) = (a.eval(batch, sel)?, b.eval(batch, sel)?);
                let valid = and_validity(va.validity(sel), vb.validity(sel));
                dense_null(DataType::Double, Data::F64(kernels::arith_f64(*op, va.f64s(sel)?, vb.f64s(sel)?, n)), valid)
            }
            Node::Cmp { op, kind, a, b } => {
                let (va, vb) = (a.eval(batch, sel)?, b.eval(batch, sel)?);
                let valid = and_validity(va.validity(sel), vb.validity(sel));
                let out = match kind {
                    Kind::I64 => kernels::cmp_i64(*op, va.i64s(sel)?, vb.i64s(sel)?, n),
                    Kind::F64 => kernels::cmp_f64(*op, va.f64s(sel)?, vb.f64s(sel)?, n),
                    Kind::Bool => kernels::cmp_bool(*op, va.bools(sel)?, vb.bools(sel)?, n),
                    Kind::Str => kernels::cmp_str(*op, va.strs(sel)?, vb.strs(sel)?, n),
                    Kind::List => return Err(EvalError::internal("a comparison of arrays")),
                };
                dense_null(DataType::Bool, Data::Bool(out), valid)
            }
            Node::IsNull { x, negated } => {
                let v = x.eval(batch, sel)?;
                let out = match v.validity(sel) {
                    None => vec![*negated; n],
                    Some(valid) => (0..n).map(|k| valid.get(k) == *negated).collect(),
                };
                dense(DataType::Bool, Data::Bool(out))
            }
            Node::MakeArray { args, element } => {
                let vals = args.iter().map(|a| a.eval(batch, sel)).collect::<Result<Vec<_>, _>>()?;
                // The elements straight into the list's element column, a null
                // one as its bit: no value is allocated per element.
                let mut list = ListColumn::new(*element, n);
                for k in 0..n {
                    for v in &vals {
                        if !list.values_mut().push_value(v.value_ref(sel, k)) {
                            return Err(EvalError::internal(format!("an array element that is no {element}")));
                        }
                    }
                    list.close_row();
                }
                let ty = Elem::of(*element)
                    .map(|e| DataType::Array(e.with_nulls(true)))
                    .ok_or_else(|| EvalError::internal("an array of arrays"))?;
                dense(ty, Data::List(Box::new(list)))
            }
            Node::Coalesce { args, ty } => {
                let Some((first, rest)) = args.split_first() else {
                    return Err(EvalError::internal("coalesce() without arguments"));
                };
                let v0 = first.eval(batch, sel)?;
                let Some(valid0) = v0.validity(sel) else { return Ok(v0) };
                // choice[k]: (argument, position in its selection); filled left to right.
                let mut choice: Vec<Option<(usize, usize)>> = (0..n).map(|k| valid0.get(k).then_some((0, k))).collect();
                let mut evaluated: Vec<(Vals<'_>, Vec<u32>)> = Vec::new();
                for (i, a) in rest.iter().enumerate() {
                    let missing: Vec<usize> = (0..n).filter(|k| choice[*k].is_none()).collect();
                    if missing.is_empty() {
                        break;
                    }
                    let rows: Vec<u32> = missing.iter().map(|k| sel.row(*k) as u32).collect();
                    let v = a.eval(batch, Sel::Rows(&rows))?;
                    let valid = v.validity(Sel::Rows(&rows));
                    for (j, k) in missing.iter().enumerate() {
                        if valid.as_ref().is_none_or(|v| v.get(j)) {
                            choice[*k] = Some((i + 1, j));
                        }
                    }
                    evaluated.push((v, rows));
                }
                let mut parts: Vec<(&Vals<'_>, Sel<'_>)> = vec![(&v0, sel)];
                parts.extend(evaluated.iter().map(|(v, rows)| (v, Sel::Rows(rows))));
                Vals::Dense(pick_values(&parts, &choice, *ty))
            }
            Node::And(a, b) | Node::Or(a, b) => {
                // Three-valued: `false and _` is false, `true or _` true; a
                // null on one side with no decisive value on the other is null.
                let and = matches!(self, Node::And(..));
                let decisive = !and;
                let va = a.eval(batch, sel)?;
                let ba = va.bools(sel)?;
                let la = va.validity(sel);
                if la.is_none() && !b.fallible() {
                    let needed = match ba {
                        Bools::Slice(x) => x[..n].iter().filter(|v| **v != decisive).count(),
                        _ => (0..n).filter(|k| ba.get(*k) != decisive).count(),
                    };
                    if needed * 2 >= n {
                        return Node::and_or_whole(and, &ba, b, batch, sel);
                    }
                }
                let left = |k: usize| la.as_ref().is_none_or(|v| v.get(k)).then(|| ba.get(k));
                // The right side is needed where the left does not decide.
                let needed: Vec<u32> = (0..n).filter(|k| left(*k) != Some(decisive)).map(|k| k as u32).collect();
                if needed.is_empty() {
                    return Ok(dense(DataType::Bool, Data::Bool(vec![decisive; n])));
                }
                if la.is_none() && needed.len() == n {
                    return b.eval(batch, sel);
                }
                // Nothing to guard: where most rows need the right side,
                // evaluating it on all of them beats narrowing the selection.
                let whole = !b.fallible() && needed.len() * 2 >= n;
                let rows: Vec<u32> =
                    if whole { Vec::new() } else { needed.iter().map(|k| sel.row(*k as usize) as u32).collect() };
                let sub = if whole { sel } else { Sel::Rows(&rows) };
                let vb = b.eval(batch, sub)?;
                let bb = vb.bools(sub)?;
                let lb = vb.validity(sub);
                let right = |j: usize| lb.as_ref().is_none_or(|v| v.get(j)).then(|| bb.get(j));
                let mut out = Vec::with_capacity(n);
                let mut valid = Vec::with_capacity(n);
                let mut j = 0;
                for k in 0..n {
                    let l = left(k);
                    if l == Some(decisive) {
                        out.push(decisive);
                        valid.push(true);
                        continue;
                    }
                    let r = if whole { right(k) } else { right(j) };
                    j += 1;
                    match (l, r) {
                        (_, Some(x)) if x == decisive => {
                            out.push(decisive);
                            valid.push(true);
                        }
                        (Some(_), Some(x)) => {
                            out.push(x);
                            valid.push(true);
                        }
                        _ => {
                            out.push(false);
                            valid.push(false);
                        }
                    }
                }
                dense_null(DataType::Bool, Data::Bool(out), Some(Validity::from_bools(valid)))
            }
            Node::If { c, t, f, ty } => {
                let vc = c.eval(batch, sel)?;
                let bc = vc.bools(sel)?;
                // A null condition takes `else`, as SQL's CASE WHEN does.
                return match vc.validity(sel) {
                    None => Node::eval_if(batch, sel, &bc, (t, f), *ty),
                    Some(v) => {
                        let taken: Vec<bool> = (0..n).map(|k| bc.get(k) && v.get(k)).collect();
                        Node::eval_if(batch, sel, &Bools::Slice(&taken), (t, f), *ty)
                    }
                };
            }
            Node::Call { f, args, at } => {
                let vals = args.iter().map(|(a, _)| a.eval(batch, sel)).collect::<Result<Vec<_>, _>>()?;
                let mut readers = Vec::with_capacity(vals.len());
                for (v, (_, t)) in vals.iter().zip(args) {
                    readers.push(match kind(*t) {
                        Kind::I64 => Arg::I64(v.i64s(sel)?),
                        Kind::F64 => Arg::F64(v.f64s(sel)?),
                        Kind::Bool => Arg::Bool(v.bools(sel)?),
                        Kind::Str => Arg::Str(v.strs(sel)?),
                        Kind::List => Arg::List(v.lists(sel)?),
                    });
                }
                // Nulls of arguments the function does not take make the
                // result null; the others are passed to it.
                let valid = vals
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !f.takes_nulls(*i))
                    .fold(None, |acc, (_, v)| and_validity(acc, v.validity(sel)));
                if let Some(valid) = valid {
                    drop(readers);
                    return Node::call_with_nulls(f.as_ref(), args, at, batch, sel, valid, vals);
                }
                if let Some(v) = call_on_dictionary(f.as_ref(), &readers, n)? {
                    return Ok(v);
                }
                match invoke(f.as_ref(), &readers, &vals, sel, n) {
                    Ok(c) if c.len() == n => Vals::Dense(c),
                    Ok(_) => {
                        return Err(EvalError::internal(format!("{}() returned the wrong number of values", f.name())))
                    }
                    Err(e) => {
                        let row = sel.row(e.k.min(n.saturating_sub(1)));
                        return Err(EvalError::at(ErrorKind::Function(e.message), row, at.clone()));
                    }
                }
            }
        })
    }
}

impl Node {
    /// `if`: the true branch on the rows where `cond` holds, the false one
    /// on the others, each evaluated only on its rows.
    fn eval_if<'a>(
        batch: &'a Batch,
        sel: Sel<'_>,
        cond: &Bools<'_>,
        (t, f): (&'a Node, &'a Node),
        ty: DataType,
    ) -> Result<Vals<'a>, EvalError> {
        let n = sel.len();
        let (t_rows, t_pos) = split(cond, None, sel, true);
        if t_pos.len() == n {
            return t.eval(batch, sel);
        }
        if t_pos.is_empty() {
            return f.eval(batch, sel);
        }
        let (f_rows, _) = split(cond, None, sel, false);
        let (ts, fs) = (Sel::Rows(&t_rows), Sel::Rows(&f_rows));
        let (vt, vf) = (t.eval(batch, ts)?, f.eval(batch, fs)?);
        let (lt, lf) = (vt.validity(ts), vf.validity(fs));
        let data = merge(cond, n, (&vt, ts), (&vf, fs), ty)?;
        let valid = if lt.is_none() && lf.is_none() {
            None
        } else {
            let (mut i, mut j) = (0, 0);
            let at = |v: &Option<Validity>, x: usize| v.as_ref().is_none_or(|v| v.get(x));
            Some(Validity::from_bools((0..n).map(|k| {
                if cond.get(k) {
                    i += 1;
                    at(&lt, i - 1)
                } else {
                    j += 1;
                    at(&lf, j - 1)
                }
            })))
        };
        Ok(dense_null(ty, data, valid))
    }

    /// A call some of whose arguments are null on some rows, where the
    /// function takes no null (`valid`: the rows where none is): null
    /// there, and the function is called only on the other rows (it may
    /// fail on a null's placeholder value).
    #[allow(clippy::too_many_arguments)]
    fn call_with_nulls<'a>(
        f: &dyn ColumnFunction,
        args: &'a [(Node, DataType)],
        at: &Option<Arc<Location>>,
        batch: &'a Batch,
        sel: Sel<'_>,
        valid: Validity,
        vals: Vec<Vals<'a>>,
    ) -> Result<Vals<'a>, EvalError> {
        let n = sel.len();
        let ty = f.return_type();
        let present: Vec<usize> = (0..n).filter(|k| valid.get(*k)).collect();
        if present.is_empty() {
            return Ok(Vals::Dense(Column::nulls(ty, n)));
        }
        drop(vals);
        let rows: Vec<u32> = present.iter().map(|k| sel.row(*k) as u32).collect();
        let sub = Sel::Rows(&rows);
        let vals = args.iter().map(|(a, _)| a.eval(batch, sub)).collect::<Result<Vec<_>, _>>()?;
        let mut readers = Vec::with_capacity(vals.len());
        for (v, (_, t)) in vals.iter().zip(args) {
            readers.push(match kind(*t) {
                Kind::I64 => Arg::I64(v.i64s(sub)?),
                Kind::F64 => Arg::F64(v.f64s(sub)?),
                Kind::Bool => Arg::Bool(v.bools(sub)?),
                Kind::Str => Arg::Str(v.strs(sub)?),
                Kind::List => Arg::List(v.lists(sub)?),
            });
        }
        let m = rows.len();
        let result = match invoke(f, &readers, &vals, sub, m) {
            Ok(c) if c.len() == m => c,
            Ok(_) => return Err(EvalError::internal(format!("{}() returned the wrong number of values", f.name()))),
            Err(e) => {
                let row = rows.get(e.k.min(m - 1)).map_or(0, |r| *r as usize);
                return Err(EvalError::at(ErrorKind::Function(e.message), row, at.clone()));
            }
        };
        // Back to one value per selected row: the k-th present row takes the
        // next result; null rows a placeholder, marked absent.
        let mut next = 0u32;
        let idx: Vec<u32> = (0..n)
            .map(|k| {
                if valid.get(k) {
                    next += 1;
                    next - 1
                } else {
                    0
                }
            })
            .collect();
        let mut out = result.gather(&idx);
        let own = out.validity.take();
        out.validity = and_validity(Some(valid), own).filter(|v| v.null_count() > 0);
        Ok(Vals::Dense(out))
    }
}

/// Calls `f` on the readers of `vals` over `sel`, telling it the nulls of
/// the arguments it takes nulls of.
fn invoke(
    f: &dyn ColumnFunction,
    readers: &[Arg<'_>],
    vals: &[Vals<'_>],
    sel: Sel<'_>,
    n: usize,
) -> Result<Column, super::functions::FnError> {
    if !(0..vals.len()).any(|i| f.takes_nulls(i)) {
        return f.invoke(readers, n);
    }
    let nulls: Vec<Option<Validity>> =
        vals.iter().enumerate().map(|(i, v)| if f.takes_nulls(i) { v.validity(sel) } else { None }).collect();
    f.invoke_nullable(readers, &nulls, n)
}

/// A function that cannot fail, of one dictionary column and constants,
/// called once per distinct string of the dictionary instead of once per
/// row; a string result is a dictionary again. `None` when the call is
/// not of that shape.
fn call_on_dictionary(f: &dyn ColumnFunction, args: &[Arg<'_>], n: usize) -> Result<Option<Vals<'static>>, EvalError> {
    if f.fallible() {
        return Ok(None);
    }
    let mut found = None;
    for (i, a) in args.iter().enumerate() {
        match a {
            Arg::Str(s) => match s.dictionary() {
                Some(d) if found.is_none() => found = Some((i, d)),
                Some(_) => return Ok(None),
                None if matches!(s, Strs::Scalar(_)) => {}
                None => return Ok(None),
            },
            Arg::I64(I64s::Scalar(_)) | Arg::F64(F64s::Scalar(_)) | Arg::Bool(Bools::Scalar(_)) => {}
            _ => return Ok(None),
        }
    }
    let Some((i, (column, rows))) = found else { return Ok(None) };
    let Some((strings, ids)) = column.dictionary() else { return Ok(None) };
    if strings.len() > n {
        // Rows are fewer than distinct strings: once per row is less work.
        return Ok(None);
    }
    let mut per_string_args = args.to_vec();
    per_string_args[i] = Arg::Str(Strs::Column(strings));
    let per_string = f
        .invoke(&per_string_args, strings.len())
        .map_err(|e| EvalError::internal(format!("{}() failed on a dictionary: {}", f.name(), e.message)))?;
    if per_string.len() != strings.len() {
        return Err(EvalError::internal(format!("{}() returned the wrong number of values", f.name())));
    }
    let picked: Vec<u32> = match rows {
        Some(r) => r[..n].iter().map(|&r| ids.get(r as usize).copied().unwrap_or(0)).collect(),
        None => ids[..n].to_vec(),
    };
    Ok(Some(Vals::Dense(match per_string.data {
        Data::Str(result) if per_string.validity.is_none() => Column::new(
            per_string.ty,
            Data::Str(
                StrColumn::from_ids(std::sync::Arc::new(result), picked)
                    .ok_or_else(|| EvalError::internal("a dictionary id out of range"))?,
            ),
        ),
        _ => per_string.gather(&picked),
    })))
}

/// The values of `if`: the k-th from the true branch where the condition
/// holds, else from the false branch, each read in order.
fn merge(
    cond: &Bools<'_>,
    n: usize,
    (vt, ts): (&Vals<'_>, Sel<'_>),
    (vf, fs): (&Vals<'_>, Sel<'_>),
    ty: DataType,
) -> Result<Data, EvalError> {
    macro_rules! pick {
        ($get:ident) => {{
            let (a, b) = (vt.$get(ts)?, vf.$get(fs)?);
            let (mut i, mut j) = (0, 0);
            (0..n)
                .map(|k| {
                    if cond.get(k) {
                        i += 1;
                        a.get(i - 1)
                    } else {
                        j += 1;
                        b.get(j - 1)
                    }
                })
                .collect()
        }};
    }
    Ok(match kind(ty) {
        Kind::I64 => Data::I64(pick!(i64s)),
        Kind::F64 => Data::F64(pick!(f64s)),
        Kind::Bool => Data::Bool(pick!(bools)),
        Kind::Str => {
            let (a, b) = (vt.strs(ts)?, vf.strs(fs)?);
            let (mut i, mut j) = (0, 0);
            let mut out = StrColumn::with_capacity(n, n * 8);
            for k in 0..n {
                if cond.get(k) {
                    out.push(a.get(i));
                    i += 1;
                } else {
                    out.push(b.get(j));
                    j += 1;
                }
            }
            Data::Str(out)
        }
        Kind::List => {
            let (a, b) = (vt.lists(ts)?, vf.lists(fs)?);
            let (mut i, mut j) = (0, 0);
            let mut out = Column::empty(ty, n);
            for k in 0..n {
                let items = if cond.get(k) {
                    i += 1;
                    a.get(i - 1)
                } else {
                    j += 1;
                    b.get(j - 1)
                };
                if !super::arrays::push_items(&mut out, items) {
                    return Err(EvalError::internal("an array of another element type in `if`"));
                }
            }
            out.data
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::functions::FnError;
    use super::*;

    /// `f(a, b)`: `a` (taken as null) counts as 0 where null, and the
    /// result is null where `a + b` is negative; `b` takes no null.
    #[derive(Debug)]
    struct NullTaking;

    impl ColumnFunction for NullTaking {
        fn name(&self) -> &str {
            "f"
        }
        fn return_type(&self) -> DataType {
            DataType::Long
        }
        fn takes_nulls(&self, i: usize) -> bool {
            i == 0
        }
        fn invoke(&self, _: &[Arg<'_>], _: usize) -> Result<Column, FnError> {
            Err(FnError { k: 0, message: "called without its nulls".into() })
        }
        fn invoke_nullable(&self, args: &[Arg<'_>], nulls: &[Option<Validity>], n: usize) -> Result<Column, FnError> {
            let (Arg::I64(a), Arg::I64(b)) = (args[0], args[1]) else { panic!("longs") };
            assert!(nulls[1].is_none(), "told of nulls it does not take");
            let a_at = |k: usize| if nulls[0].as_ref().is_none_or(|v| v.get(k)) { a.get(k) } else { 0 };
            let sums: Vec<i64> = (0..n).map(|k| a_at(k) + b.get(k)).collect();
            let valid = Validity::from_bools(sums.iter().map(|s| *s >= 0));
            Ok(Column::with_validity(DataType::Long, Data::I64(sums), Some(valid)))
        }
    }

    #[test]
    fn a_function_is_called_on_the_nulls_it_takes_and_not_on_the_others() {
        let v = |x: Option<i64>| x.map_or(Value::Null, Value::Int);
        let rows = [(Some(1), Some(2)), (None, Some(3)), (Some(4), None), (None, None), (Some(-9), Some(1))];
        let values: Vec<(i64, Vec<Value>)> = rows.iter().map(|(a, b)| (0, vec![v(*a), v(*b)])).collect();
        let batch = Batch::from_rows(&[DataType::Long, DataType::Long], &values).expect("fits");
        let call = Node::Call {
            f: Box::new(NullTaking),
            args: vec![(Node::Field(0), DataType::Long), (Node::Field(1), DataType::Long)],
            at: None,
        };
        for sel_rows in [None, Some(vec![4u32, 1, 2])] {
            let sel = sel_rows.as_deref().map_or(Sel::All(rows.len()), Sel::Rows);
            let got = call.eval(&batch, sel).expect("evaluates").into_column(sel, DataType::Long).expect("a column");
            let got: Vec<Value> = (0..sel.len()).map(|k| got.value(k).expect("a row")).collect();
            // A null `a` is 0; a null `b` is a null result; a negative sum is the function's null.
            let all = [Value::Int(3), Value::Int(3), Value::Null, Value::Null, Value::Null];
            let want: Vec<Value> = (0..sel.len()).map(|k| all[sel.row(k)].clone()).collect();
            assert_eq!(got, want, "{sel_rows:?}");
        }
    }
}
