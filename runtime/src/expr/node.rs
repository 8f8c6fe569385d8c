//! The compiled form of an expression: a tree of typed nodes, and their
//! evaluation over the selected rows of a batch — every node produces the
//! values of all selected rows at once. `and`, `or` and `if` evaluate their
//! right side (or branches) only on the rows that need it, through a
//! narrower selection, whenever it can fail; a function of one dictionary
//! column runs once per distinct string.

use super::error::{ErrorKind, EvalError, Location};
use super::functions::{Arg, ColumnFunction};
use super::kernels;
use super::vals::{Bools, F64s, I64s, Sel, Strs, Vals};
use crate::data::{Batch, Column, Data, StrColumn};
use crate::record::Value;
use flowc_compiler::ir::{BinOp, DataType};
use std::sync::Arc;

#[derive(Debug)]
pub(super) enum Node {
    Const(Value),
    Field(usize),
    /// The same `i64` values under another type (casts between int, long
    /// and timestamp, `millis`, `to_timestamp`).
    Relabel(Box<Node>),
    IntToDouble(Box<Node>),
    NegI(Box<Node>),
    NegF(Box<Node>),
    Not(Box<Node>),
    ArithI {
        op: BinOp,
        a: Box<Node>,
        b: Box<Node>,
        at: Option<Arc<Location>>,
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
}

/// How values of a type are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    I64,
    F64,
    Bool,
    Str,
}

pub(super) fn kind(t: DataType) -> Kind {
    match t {
        DataType::Int | DataType::Long | DataType::Timestamp => Kind::I64,
        DataType::Double => Kind::F64,
        DataType::Bool => Kind::Bool,
        DataType::String => Kind::Str,
    }
}

fn dense(ty: DataType, data: Data) -> Vals<'static> {
    Vals::Dense(Column { ty, data })
}

/// The k-th selected rows where `b` holds (`want`) and where it does not,
/// as batch rows and as positions in the selection.
fn split(b: &Bools<'_>, sel: Sel<'_>, want: bool) -> (Vec<u32>, Vec<u32>) {
    let n = sel.len();
    let (mut rows, mut pos) = (Vec::new(), Vec::new());
    for k in 0..n {
        if b.get(k) == want {
            rows.push(sel.row(k) as u32);
            pos.push(k as u32);
        }
    }
    (rows, pos)
}

impl Node {
    pub(super) fn fallible(&self) -> bool {
        match self {
            Node::Const(_) | Node::Field(_) => false,
            Node::Relabel(x) | Node::IntToDouble(x) | Node::NegI(x) | Node::NegF(x) | Node::Not(x) => x.fallible(),
            Node::ArithI { op, a, b, .. } => {
                let divides = matches!(op, BinOp::Div | BinOp::Rem);
                let safe_divisor = matches!(**b, Node::Const(Value::Int(d) | Value::Timestamp(d)) if d != 0);
                (divides && !safe_divisor) || a.fallible() || b.fallible()
            }
            Node::ArithF { a, b, .. } | Node::Cmp { a, b, .. } | Node::And(a, b) | Node::Or(a, b) => {
                a.fallible() || b.fallible()
            }
            Node::If { c, t, f, .. } => c.fallible() || t.fallible() || f.fallible(),
            Node::Call { f, args, .. } => f.fallible() || args.iter().any(|(a, _)| a.fallible()),
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
                let v = v.i64s(sel)?;
                dense(DataType::Double, Data::F64(kernels::map1!(I64s, v, n, |x| x as f64)))
            }
            Node::NegI(x) => {
                let v = x.eval(batch, sel)?;
                let v = v.i64s(sel)?;
                dense(DataType::Long, Data::I64(kernels::map1!(I64s, v, n, |x| x.wrapping_neg())))
            }
            Node::NegF(x) => {
                let v = x.eval(batch, sel)?;
                let v = v.f64s(sel)?;
                dense(DataType::Double, Data::F64(kernels::map1!(F64s, v, n, |x| -x)))
            }
            Node::Not(x) => {
                let v = x.eval(batch, sel)?;
                let v = v.bools(sel)?;
                dense(DataType::Bool, Data::Bool(kernels::map1!(Bools, v, n, |x| !x)))
            }
            Node::ArithI { op, a, b, at } => {
                let (va, vb) = (a.eval(batch, sel)?, b.eval(batch, sel)?);
                match kernels::arith_i64(*op, va.i64s(sel)?, vb.i64s(sel)?, n) {
                    Ok(v) => dense(DataType::Long, Data::I64(v)),
                    Err(kernels::DivByZero(k)) => {
                        return Err(EvalError::at(ErrorKind::DivisionByZero, sel.row(k), at.clone()))
                    }
                }
            }
            Node::ArithF { op, a, b } => {
                let (va, vb) = (a.eval(batch, sel)?, b.eval(batch, sel)?);
                dense(DataType::Double, Data::F64(kernels::arith_f64(*op, va.f64s(sel)?, vb.f64s(sel)?, n)))
            }
            Node::Cmp { op, kind, a, b } => {
                let (va, vb) = (a.eval(batch, sel)?, b.eval(batch, sel)?);
                let out = match kind {
                    Kind::I64 => kernels::cmp_i64(*op, va.i64s(sel)?, vb.i64s(sel)?, n),
                    Kind::F64 => kernels::cmp_f64(*op, va.f64s(sel)?, vb.f64s(sel)?, n),
                    Kind::Bool => kernels::cmp_bool(*op, va.bools(sel)?, vb.bools(sel)?, n),
                    Kind::Str => kernels::cmp_str(*op, va.strs(sel)?, vb.strs(sel)?, n),
                };
                dense(DataType::Bool, Data::Bool(out))
            }
            Node::And(a, b) | Node::Or(a, b) => {
                // `and` needs the right side where the left holds, `or` where it does not.
                let and = matches!(self, Node::And(..));
                let va = a.eval(batch, sel)?;
                let ba = va.bools(sel)?;
                if !b.fallible() {
                    // Nothing to guard: where most rows need the right side,
                    // evaluating it on all of them beats narrowing the selection.
                    let needed = (0..n).filter(|k| ba.get(*k) == and).count();
                    if needed == 0 {
                        return Ok(dense(DataType::Bool, Data::Bool((0..n).map(|k| ba.get(k)).collect())));
                    }
                    if needed * 2 >= n {
                        let vb = b.eval(batch, sel)?;
                        let bb = vb.bools(sel)?;
                        let out = if and {
                            (0..n).map(|k| ba.get(k) && bb.get(k)).collect()
                        } else {
                            (0..n).map(|k| ba.get(k) || bb.get(k)).collect()
                        };
                        return Ok(dense(DataType::Bool, Data::Bool(out)));
                    }
                }
                let (rows, pos) = split(&ba, sel, and);
                if pos.len() == n {
                    return b.eval(batch, sel);
                }
                let mut out: Vec<bool> = (0..n).map(|k| ba.get(k)).collect();
                if !rows.is_empty() {
                    let sub = Sel::Rows(&rows);
                    let vb = b.eval(batch, sub)?;
                    let bb = vb.bools(sub)?;
                    for (j, k) in pos.iter().enumerate() {
                        out[*k as usize] = bb.get(j);
                    }
                }
                dense(DataType::Bool, Data::Bool(out))
            }
            Node::If { c, t, f, ty } => {
                let vc = c.eval(batch, sel)?;
                let bc = vc.bools(sel)?;
                let (t_rows, t_pos) = split(&bc, sel, true);
                if t_pos.len() == n {
                    return t.eval(batch, sel);
                }
                if t_pos.is_empty() {
                    return f.eval(batch, sel);
                }
                let (f_rows, _) = split(&bc, sel, false);
                let (ts, fs) = (Sel::Rows(&t_rows), Sel::Rows(&f_rows));
                let (vt, vf) = (t.eval(batch, ts)?, f.eval(batch, fs)?);
                let data = merge(&bc, n, (&vt, ts), (&vf, fs), *ty)?;
                dense(*ty, data)
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
                    });
                }
                if let Some(v) = call_on_dictionary(f.as_ref(), &readers, n)? {
                    return Ok(v);
                }
                match f.invoke(&readers, n) {
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
        Data::Str(result) => Column {
            ty: per_string.ty,
            data: Data::Str(
                StrColumn::from_ids(std::sync::Arc::new(result), picked)
                    .ok_or_else(|| EvalError::internal("a dictionary id out of range"))?,
            ),
        },
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
    })
}
