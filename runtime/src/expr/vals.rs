//! What evaluating an expression on a selection of a batch gives: one value
//! per selected row, borrowed from the batch where it can be.

use crate::data::{ArrayRef, ValueRef};
use crate::data::{Column, Data, ListColumn, StrColumn, Validity};
use crate::record::Value;
use flowc_compiler::ir::DataType;

use super::error::EvalError;

/// The rows of a batch an expression is evaluated on: all of them, or
/// these (ascending) indices. The k-th value of a result belongs to the
/// k-th selected row.
#[derive(Debug, Clone, Copy)]
pub enum Sel<'a> {
    All(usize),
    Rows(&'a [u32]),
}

impl Sel<'_> {
    pub fn len(&self) -> usize {
        match self {
            Sel::All(n) => *n,
            Sel::Rows(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The batch row of the k-th selected row.
    pub fn row(&self, k: usize) -> usize {
        match self {
            Sel::All(_) => k,
            Sel::Rows(r) => r[k] as usize,
        }
    }
}

/// The values of an expression over a selection.
#[derive(Debug)]
pub enum Vals<'a> {
    /// One value for every row (a constant).
    Scalar(&'a Value),
    /// An input column, read at the selection's rows.
    Column(&'a Column),
    /// Computed: the k-th value for the k-th selected row.
    Dense(Column),
}

fn mismatch(what: &str) -> EvalError {
    EvalError::internal(format!("a value of the wrong type where {what} was proven"))
}

/// Reads the k-th value of an `i64`-stored result.
#[derive(Debug, Clone, Copy)]
pub enum I64s<'a> {
    Slice(&'a [i64]),
    Gather(&'a [i64], &'a [u32]),
    Scalar(i64),
}

#[derive(Debug, Clone, Copy)]
pub enum F64s<'a> {
    Slice(&'a [f64]),
    Gather(&'a [f64], &'a [u32]),
    Scalar(f64),
}

#[derive(Debug, Clone, Copy)]
pub enum Bools<'a> {
    Slice(&'a [bool]),
    Gather(&'a [bool], &'a [u32]),
    Scalar(bool),
}

#[derive(Debug, Clone, Copy)]
pub enum Strs<'a> {
    Column(&'a StrColumn),
    Gather(&'a StrColumn, &'a [u32]),
    Scalar(&'a str),
}

impl Strs<'_> {
    #[inline]
    pub fn get(&self, k: usize) -> &str {
        match self {
            Strs::Column(c) => c.get(k),
            Strs::Gather(c, r) => c.get(r[k] as usize),
            Strs::Scalar(s) => s,
        }
    }

    /// The bytes of the k-th string: for comparing and searching, where
    /// bytes and characters agree (UTF-8) and char boundaries need no check.
    #[inline]
    pub fn bytes(&self, k: usize) -> &[u8] {
        match self {
            Strs::Column(c) => c.bytes(k),
            Strs::Gather(c, r) => c.bytes(r[k] as usize),
            Strs::Scalar(s) => s.as_bytes(),
        }
    }

    /// `f(bytes of the k-th string)` for k in 0..n, with a loop per shape
    /// of the input; over a dictionary column, once per distinct string.
    #[inline]
    pub fn map_bytes<T: Copy>(&self, n: usize, mut f: impl FnMut(&[u8]) -> T) -> Vec<T> {
        let dictionary = match self {
            Strs::Column(c) | Strs::Gather(c, _) => c.dictionary(),
            Strs::Scalar(_) => None,
        };
        if let Some((strings, ids)) = dictionary.filter(|(strings, _)| strings.len() <= n) {
            let per_string: Vec<T> = strings.iter_bytes().map(&mut f).collect();
            let at = |id: u32| per_string.get(id as usize).copied();
            // Reserved first: a filtering iterator would grow the vector step by step.
            let mut out = Vec::with_capacity(n);
            match self {
                Strs::Gather(_, rows) => {
                    out.extend(rows[..n].iter().filter_map(|&r| ids.get(r as usize).and_then(|i| at(*i))))
                }
                _ => out.extend(ids[..n].iter().filter_map(|i| at(*i))),
            }
            return out;
        }
        match self {
            Strs::Column(c) => match c.plain() {
                Some((offsets, data)) => {
                    let bytes = data.as_bytes();
                    offsets.windows(2).take(n).map(|w| f(bytes.get(w[0]..w[1]).unwrap_or(&[]))).collect()
                }
                None => c.iter_bytes().take(n).map(f).collect(),
            },
            Strs::Gather(c, r) => r[..n].iter().map(|&i| f(c.bytes(i as usize))).collect(),
            Strs::Scalar(s) => {
                let v = s.as_bytes();
                (0..n).map(|_| f(v)).collect()
            }
        }
    }

    /// The dictionary column this reads, if it reads one, with the rows
    /// it reads (all, or these).
    pub fn dictionary(&self) -> Option<(&StrColumn, Option<&[u32]>)> {
        match self {
            Strs::Column(c) if c.dictionary().is_some() => Some((c, None)),
            Strs::Gather(c, r) if c.dictionary().is_some() => Some((c, Some(r))),
            _ => None,
        }
    }
}

/// Reads the k-th array of an array-typed result.
#[derive(Debug, Clone, Copy)]
pub enum Lists<'a> {
    Column(&'a ListColumn),
    Gather(&'a ListColumn, &'a [u32]),
    /// A constant array (`array("a", "b")` folded), the same for every row.
    Scalar(&'a [Value]),
}

impl<'a> Lists<'a> {
    /// The k-th selected array.
    #[inline]
    pub fn get(&self, k: usize) -> ArrayRef<'a> {
        match *self {
            Lists::Column(c) => c.get(k),
            Lists::Gather(c, r) => c.get(r[k] as usize),
            Lists::Scalar(v) => ArrayRef::Values(v),
        }
    }
}

macro_rules! getter {
    ($name:ident, $ty:ty, $variant:ident, $value:pat => $v:expr, $what:literal) => {
        impl<'a> Vals<'a> {
            pub fn $name<'s>(&'s self, sel: Sel<'s>) -> Result<$ty, EvalError>
            where
                'a: 's,
            {
                match self {
                    Vals::Scalar($value) => Ok(<$ty>::Scalar($v)),
                    // A null reads as the type's default; its validity says it is absent.
                    Vals::Scalar(Value::Null) => Ok(<$ty>::Scalar(Default::default())),
                    Vals::Column(Column { data: Data::$variant(v), .. }) => Ok(match sel {
                        Sel::All(_) => <$ty>::Slice(v),
                        Sel::Rows(r) => <$ty>::Gather(v, r),
                    }),
                    Vals::Dense(Column { data: Data::$variant(v), .. }) => Ok(<$ty>::Slice(v)),
                    _ => Err(mismatch($what)),
                }
            }
        }
    };
}

getter!(i64s, I64s<'s>, I64, Value::Int(x) | Value::Timestamp(x) => *x, "an integer");
getter!(f64s, F64s<'s>, F64, Value::Double(x) => *x, "a double");
getter!(bools, Bools<'s>, Bool, Value::Bool(x) => *x, "a bool");

impl<'a> Vals<'a> {
    pub fn strs<'s>(&'s self, sel: Sel<'s>) -> Result<Strs<'s>, EvalError>
    where
        'a: 's,
    {
        match self {
            Vals::Scalar(Value::Str(s)) => Ok(Strs::Scalar(s)),
            Vals::Scalar(Value::Null) => Ok(Strs::Scalar("")),
            Vals::Column(Column { data: Data::Str(c), .. }) => Ok(match sel {
                Sel::All(_) => Strs::Column(c),
                Sel::Rows(r) => Strs::Gather(c, r),
            }),
            Vals::Dense(Column { data: Data::Str(c), .. }) => Ok(Strs::Column(c)),
            _ => Err(mismatch("a string")),
        }
    }

    pub fn lists<'s>(&'s self, sel: Sel<'s>) -> Result<Lists<'s>, EvalError>
    where
        'a: 's,
    {
        match self {
            Vals::Scalar(Value::Array(v)) => Ok(Lists::Scalar(v)),
            Vals::Scalar(Value::Null) => Ok(Lists::Scalar(&[])),
            Vals::Column(Column { data: Data::List(c), .. }) => Ok(match sel {
                Sel::All(_) => Lists::Column(c),
                Sel::Rows(r) => Lists::Gather(c, r),
            }),
            Vals::Dense(Column { data: Data::List(c), .. }) => Ok(Lists::Column(c)),
            _ => Err(mismatch("an array")),
        }
    }

    /// The values as a column of `ty` with one value per selected row:
    /// computed values are moved, read ones copied.
    pub fn into_column(self, sel: Sel<'_>, ty: DataType) -> Result<Column, EvalError> {
        let n = sel.len();
        let (data, validity) = match self {
            Vals::Dense(c) => (c.data, c.validity),
            Vals::Column(c) => match sel {
                Sel::All(_) => (c.data.clone(), c.validity.clone()),
                Sel::Rows(r) => {
                    let g = c.gather(r);
                    (g.data, g.validity)
                }
            },
            Vals::Scalar(Value::Null) => {
                let c = Column::nulls(ty, n);
                (c.data, c.validity)
            }
            Vals::Scalar(v) if matches!(v, Value::Array(_)) => {
                let mut c = Column::empty(ty, n);
                for _ in 0..n {
                    if !c.push_owned(v) {
                        return Err(mismatch(&format!("{ty}")));
                    }
                }
                (c.data, c.validity)
            }
            Vals::Scalar(v) => (
                match v {
                    Value::Int(x) | Value::Timestamp(x) => Data::I64(vec![*x; n]),
                    Value::Double(x) => Data::F64(vec![*x; n]),
                    Value::Bool(x) => Data::Bool(vec![*x; n]),
                    // A constant string is a dictionary of one.
                    Value::Str(s) => Data::Str(StrColumn::repeat(s, n)),
                    Value::Null | Value::Array(_) => Data::I64(Vec::new()),
                },
                None,
            ),
        };
        let column = Column::with_validity(ty, data, validity);
        if !crate::data::column::stores(ty, &column.data) || column.len() != n {
            return Err(mismatch(&format!("{ty}")));
        }
        Ok(column)
    }
}

impl<'a> Vals<'a> {
    /// Which selected values are present: `None` when all are.
    pub fn validity(&self, sel: Sel<'_>) -> Option<Validity> {
        match self {
            Vals::Scalar(Value::Null) => Some(Validity::from_bools(std::iter::repeat_n(false, sel.len()))),
            Vals::Scalar(_) => None,
            Vals::Column(c) if !c.has_nulls() => None,
            Vals::Column(c) => c.validity.as_ref().map(|v| match sel {
                Sel::All(n) => {
                    let mut v = v.clone();
                    v.truncate(n);
                    v
                }
                Sel::Rows(r) => v.gather(r),
            }),
            Vals::Dense(c) if !c.has_nulls() => None,
            Vals::Dense(c) => c.validity.clone(),
        }
    }

    /// The k-th selected value, borrowed (row by row: for the rare paths).
    pub fn value_ref(&self, sel: Sel<'_>, k: usize) -> ValueRef<'_> {
        match self {
            Vals::Scalar(v) => ValueRef::from(*v),
            Vals::Column(c) => c.value_ref(sel.row(k)).unwrap_or(ValueRef::Null),
            Vals::Dense(c) => c.value_ref(k).unwrap_or(ValueRef::Null),
        }
    }
}

/// Both present: the rows where each of `a` and `b` holds a value.
pub fn and_validity(a: Option<Validity>, b: Option<Validity>) -> Option<Validity> {
    match (a, b) {
        (None, x) | (x, None) => x,
        (Some(a), Some(b)) => Some(a.and(&b)),
    }
}

macro_rules! getter_impl {
    ($t:ident, $elem:ty) => {
        impl $t<'_> {
            #[inline]
            pub fn get(&self, k: usize) -> $elem {
                match self {
                    $t::Slice(v) => v[k],
                    $t::Gather(v, r) => v[r[k] as usize],
                    $t::Scalar(x) => *x,
                }
            }
        }
    };
}

getter_impl!(I64s, i64);
getter_impl!(F64s, f64);
getter_impl!(Bools, bool);
