//! The typed intermediate form shared by the logical plan, the job graph and
//! the runtime: data types, schemas, values, resolved expressions and the
//! operators with their settings.
//!
//! Everything here is resolved: fields are indices into the input schema,
//! parameters are bound, settings are checked. The runtime executes these
//! types as they are and never sees the source language.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DataType {
    String,
    /// A 32-bit integer in the data; computed on in 64 bits.
    Int,
    Long,
    Double,
    Bool,
    /// Milliseconds since the Unix epoch, UTC.
    Timestamp,
    /// `array<string>`: a list of scalars, non-null (Flink SQL's
    /// `ARRAY<STRING NOT NULL>`) or, `array<string?>`, nullable (Flink
    /// SQL's `ARRAY<STRING>`). Last, so that the other types' encodings
    /// stay as they were.
    Array(Elem),
}

/// The type of an array's elements: a scalar, and whether an element may
/// be null (`array<long?>`).
///
/// Serialized as one name, `Long` or `NullableLong`: plans and states
/// written before nullable elements existed (which hold the six plain
/// names, in this order) read as they were.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "ElemRepr", into = "ElemRepr")]
pub struct Elem {
    scalar: Scalar,
    nulls: bool,
}

/// The scalar types an array holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Scalar {
    String,
    Int,
    Long,
    Double,
    Bool,
    Timestamp,
}

/// [`Elem`] as serialized: the six non-null element types first, as they
/// always were, then their nullable forms.
#[derive(Serialize, Deserialize)]
enum ElemRepr {
    String,
    Int,
    Long,
    Double,
    Bool,
    Timestamp,
    NullableString,
    NullableInt,
    NullableLong,
    NullableDouble,
    NullableBool,
    NullableTimestamp,
}

impl From<ElemRepr> for Elem {
    fn from(r: ElemRepr) -> Elem {
        use ElemRepr as R;
        let (scalar, nulls) = match r {
            R::String => (Scalar::String, false),
            R::Int => (Scalar::Int, false),
            R::Long => (Scalar::Long, false),
            R::Double => (Scalar::Double, false),
            R::Bool => (Scalar::Bool, false),
            R::Timestamp => (Scalar::Timestamp, false),
            R::NullableString => (Scalar::String, true),
            R::NullableInt => (Scalar::Int, true),
            R::NullableLong => (Scalar::Long, true),
            R::NullableDouble => (Scalar::Double, true),
            R::NullableBool => (Scalar::Bool, true),
            R::NullableTimestamp => (Scalar::Timestamp, true),
        };
        Elem { scalar, nulls }
    }
}

impl From<Elem> for ElemRepr {
    fn from(e: Elem) -> ElemRepr {
        use ElemRepr as R;
        match (e.scalar, e.nulls) {
            (Scalar::String, false) => R::String,
            (Scalar::Int, false) => R::Int,
            (Scalar::Long, false) => R::Long,
            (Scalar::Double, false) => R::Double,
            (Scalar::Bool, false) => R::Bool,
            (Scalar::Timestamp, false) => R::Timestamp,
            (Scalar::String, true) => R::NullableString,
            (Scalar::Int, true) => R::NullableInt,
            (Scalar::Long, true) => R::NullableLong,
            (Scalar::Double, true) => R::NullableDouble,
            (Scalar::Bool, true) => R::NullableBool,
            (Scalar::Timestamp, true) => R::NullableTimestamp,
        }
    }
}

impl Elem {
    pub const STRING: Elem = Elem { scalar: Scalar::String, nulls: false };
    pub const INT: Elem = Elem { scalar: Scalar::Int, nulls: false };
    pub const LONG: Elem = Elem { scalar: Scalar::Long, nulls: false };
    pub const DOUBLE: Elem = Elem { scalar: Scalar::Double, nulls: false };
    pub const BOOL: Elem = Elem { scalar: Scalar::Bool, nulls: false };
    pub const TIMESTAMP: Elem = Elem { scalar: Scalar::Timestamp, nulls: false };

    /// The element's own type.
    pub fn ty(self) -> DataType {
        match self.scalar {
            Scalar::String => DataType::String,
            Scalar::Int => DataType::Int,
            Scalar::Long => DataType::Long,
            Scalar::Double => DataType::Double,
            Scalar::Bool => DataType::Bool,
            Scalar::Timestamp => DataType::Timestamp,
        }
    }

    /// Whether an element may be null (`array<long?>`).
    pub fn nullable(self) -> bool {
        self.nulls
    }

    /// The same element type, its elements nullable or not.
    pub fn with_nulls(self, nulls: bool) -> Elem {
        Elem { nulls, ..self }
    }

    /// The non-null element type of values of `ty`; `None` for an array.
    pub fn of(ty: DataType) -> Option<Elem> {
        let scalar = match ty {
            DataType::String => Scalar::String,
            DataType::Int => Scalar::Int,
            DataType::Long => Scalar::Long,
            DataType::Double => Scalar::Double,
            DataType::Bool => Scalar::Bool,
            DataType::Timestamp => Scalar::Timestamp,
            DataType::Array(_) => return None,
        };
        Some(Elem { scalar, nulls: false })
    }
}

impl DataType {
    /// The element type, for an array.
    pub fn element(self) -> Option<DataType> {
        match self {
            DataType::Array(e) => Some(e.ty()),
            _ => None,
        }
    }

    /// Whether an array's elements may be null (`array<long?>`); `false`
    /// for anything else.
    pub fn element_nullable(self) -> bool {
        matches!(self, DataType::Array(e) if e.nullable())
    }

    /// Whether a value of this type may stand where `want` is expected:
    /// the same type, or an array whose elements are never null where
    /// they may be (`array<long>` for `array<long?>`; Flink SQL's
    /// `ARRAY<BIGINT NOT NULL>` for `ARRAY<BIGINT>`).
    pub fn fits(self, want: DataType) -> bool {
        match (self, want) {
            (DataType::Array(a), DataType::Array(w)) => a.ty() == w.ty() && (w.nullable() || !a.nullable()),
            _ => self == want,
        }
    }

    /// The type both `self` and `other` fit, if they differ only in
    /// whether an array's elements may be null.
    pub fn join_nulls(self, other: DataType) -> Option<DataType> {
        match (self, other) {
            (DataType::Array(a), DataType::Array(b)) if a.ty() == b.ty() => {
                Some(DataType::Array(a.with_nulls(a.nullable() || b.nullable())))
            }
            _ => (self == other).then_some(self),
        }
    }

    pub fn is_array(self) -> bool {
        matches!(self, DataType::Array(_))
    }

    pub fn is_numeric(self) -> bool {
        matches!(self, DataType::Int | DataType::Long | DataType::Double)
    }
    pub fn is_integral(self) -> bool {
        matches!(self, DataType::Int | DataType::Long)
    }

    /// The type a keyword names (`long`), as in a schema or `cast(x as long)`.
    pub fn by_name(name: &str) -> Option<DataType> {
        Some(match name {
            "string" => DataType::String,
            "int" => DataType::Int,
            "long" => DataType::Long,
            "double" => DataType::Double,
            "bool" => DataType::Bool,
            "timestamp" => DataType::Timestamp,
            _ => return None,
        })
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DataType::String => "string",
            DataType::Int => "int",
            DataType::Long => "long",
            DataType::Double => "double",
            DataType::Bool => "bool",
            DataType::Timestamp => "timestamp",
            DataType::Array(e) => return write!(f, "array<{}{}>", e.ty(), if e.nullable() { "?" } else { "" }),
        })
    }
}

/// How a timestamp is written in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimestampFormat {
    /// Text in a Java-style pattern such as `yyyy-MM-dd'T'HH:mm:ss.SSSX`.
    Pattern(String),
    /// A number of milliseconds since the epoch.
    EpochMillis,
}

/// The pattern used when a schema gives none, and for computed timestamps
/// such as window bounds: ISO-8601, UTC, milliseconds.
pub const DEFAULT_TIMESTAMP_PATTERN: &str = "yyyy-MM-dd'T'HH:mm:ss.SSSX";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    pub name: String,
    pub ty: DataType,
    /// For timestamps: how they are read and written as JSON.
    pub timestamp_format: Option<TimestampFormat>,
    /// Whether the field may be null (`string?`).
    #[serde(default)]
    pub nullable: bool,
    /// A field of a nested record (`payload: { user: { id: long } }`),
    /// flattened: its name is the path (`payload.user.id`), and JSON reads
    /// and writes it nested.
    #[serde(default)]
    pub nested: bool,
    /// In a Kafka source's schema: read from the message's metadata, not
    /// its value (`user: string from key`). Downstream schemas have none.
    #[serde(default)]
    pub metadata: Option<Metadata>,
    /// After a join: the names of the inputs it came from, by which a
    /// later stage may qualify it (`auctions.expires`). Not in the plan.
    #[serde(skip)]
    pub qualifiers: Qualifiers,
}

/// The stream names that qualify a field after joins: the side's stream
/// name (and `left` for the left side's fields). `auctions.expires` names
/// the field `expires` (or `auctions.expires`, the name it has when both
/// sides have an `expires`) of the side `auctions`. Only the checker's name
/// resolution reads them: they are no part of a field's identity (fields
/// that differ in them alone are equal) nor of the plan.
#[derive(Debug, Clone, Default)]
pub struct Qualifiers(pub Vec<String>);

impl PartialEq for Qualifiers {
    fn eq(&self, _: &Qualifiers) -> bool {
        true
    }
}

impl Eq for Qualifiers {}

impl Qualifiers {
    pub fn contains(&self, q: &str) -> bool {
        self.0.iter().any(|p| p == q)
    }

    /// Adds `q` if it is not there yet.
    pub fn add(&mut self, q: &str) {
        if !self.contains(q) {
            self.0.push(q.to_string());
        }
    }
}

/// Kafka metadata a source's schema field reads (Flink SQL's `METADATA
/// FROM`): the message key as text, the record timestamp, the partition,
/// the offset, or a header's value as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Metadata {
    Key,
    Timestamp,
    Partition,
    Offset,
    Topic,
    Header(String),
}

impl fmt::Display for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Metadata::Key => f.write_str("key"),
            Metadata::Timestamp => f.write_str("timestamp"),
            Metadata::Partition => f.write_str("partition"),
            Metadata::Offset => f.write_str("offset"),
            Metadata::Topic => f.write_str("topic"),
            Metadata::Header(h) => write!(f, "header({h:?})"),
        }
    }
}

impl Field {
    pub fn new(name: impl Into<String>, ty: DataType) -> Field {
        let timestamp_format = (ty.element().unwrap_or(ty) == DataType::Timestamp)
            .then(|| TimestampFormat::Pattern(DEFAULT_TIMESTAMP_PATTERN.to_string()));
        Field {
            name: name.into(),
            ty,
            timestamp_format,
            nullable: false,
            nested: false,
            metadata: None,
            qualifiers: Qualifiers::default(),
        }
    }

    /// The same field, nullable or not.
    pub fn with_nullable(mut self, nullable: bool) -> Field {
        self.nullable = nullable;
        self
    }
}

/// The fields of the records on a stream, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Schema {
    /// The declared schema's name, for messages; computed records have none.
    pub name: Option<String>,
    pub fields: Vec<Field>,
}

impl Schema {
    /// The field of that name; after a join also `side.f`, the field `f`
    /// of the side `side` (see [`Qualifiers`]).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name).or_else(|| self.qualified_index(name))
    }

    /// `q.f`: the one field qualified by `q` whose name is `f`, or `p.f`
    /// for another of its qualifiers `p` (a name both sides of a join had).
    fn qualified_index(&self, name: &str) -> Option<usize> {
        let (q, f) = name.split_once('.')?;
        let mut found = self.fields.iter().enumerate().filter(|(_, x)| {
            x.qualifiers.contains(q)
                && (x.name == f
                    || x.name.split_once('.').is_some_and(|(p, rest)| rest == f && x.qualifiers.contains(p)))
        });
        let (i, _) = found.next()?;
        found.next().is_none().then_some(i)
    }

    /// The names that qualify fields after joins, in field order.
    pub fn qualifiers(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for q in self.fields.iter().flat_map(|f| &f.qualifiers.0) {
            if !out.contains(&q.as_str()) {
                out.push(q);
            }
        }
        out
    }

    /// The plain names of the fields qualified by `q`.
    pub fn fields_of(&self, q: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|f| f.qualifiers.contains(q))
            .map(|f| match f.name.split_once('.') {
                Some((p, rest)) if f.qualifiers.contains(p) => rest,
                _ => f.name.as_str(),
            })
            .collect()
    }

    /// The fields a record's value holds: those not read from Kafka metadata.
    pub fn payload(&self) -> Schema {
        Schema {
            name: self.name.clone(),
            fields: self.fields.iter().filter(|f| f.metadata.is_none()).cloned().collect(),
        }
    }

    /// The same fields, with no metadata: what the stream after a source carries.
    pub fn without_metadata(&self) -> Schema {
        let mut s = self.clone();
        s.fields.iter_mut().for_each(|f| f.metadata = None);
        s
    }

    pub fn has_metadata(&self) -> bool {
        self.fields.iter().any(|f| f.metadata.is_some())
    }
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(n) = &self.name {
            write!(f, "{n} ")?;
        }
        f.write_str("{")?;
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}: {}{}", field.name, field.ty, if field.nullable { "?" } else { "" })?;
        }
        f.write_str("}")
    }
}

/// A value in a record or a constant in an expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Str(String),
    Int(i64),
    Double(f64),
    Bool(bool),
    Timestamp(i64),
    /// No value: a null of a nullable type. Last, so that the encoding of
    /// the others (in checkpoints) stays as it was.
    Null,
    /// An array's elements (of one scalar type, none null). After `Null`
    /// for the same reason.
    Array(Vec<Value>),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => write!(f, "{}", flowc_dsl::format::string(s)),
            Value::Int(i) => write!(f, "{i}"),
            Value::Double(d) => write!(f, "{d:?}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Timestamp(t) => write!(f, "timestamp({t})"),
            Value::Null => f.write_str("null"),
            Value::Array(items) => {
                f.write_str("array(")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str(")")
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::And => "and",
            BinOp::Or => "or",
        }
    }
}

/// Scalar functions of record expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Function {
    Upper,
    Lower,
    Trim,
    Length,
    Concat,
    Substring,
    Contains,
    StartsWith,
    EndsWith,
    Replace,
    ToString,
    Abs,
    /// Epoch milliseconds of a timestamp.
    Millis,
    /// A timestamp from epoch milliseconds.
    ToTimestamp,
    /// The first argument that is not null.
    Coalesce,
    Round,
    Floor,
    Ceil,
    RegexMatch,
    RegexExtract,
    SplitPart,
    DateFormat,
    DateTrunc,
    Hash,
    /// `extract(hour from ts)`: a part of a timestamp, as a long.
    Extract,
    /// The MD5 digest of a string, in hex.
    Md5,
    /// The number of elements of an array.
    Cardinality,
    /// An array's element at a 1-based index; null out of range.
    ElementAt,
    ArrayContains,
    /// `array(x, …)`: an array of the arguments.
    Array,
    /// A string split at a delimiter, an `array<string>`.
    Split,
}

impl Function {
    pub const ALL: &'static [Function] = &[
        Function::Upper,
        Function::Lower,
        Function::Trim,
        Function::Length,
        Function::Concat,
        Function::Substring,
        Function::Contains,
        Function::StartsWith,
        Function::EndsWith,
        Function::Replace,
        Function::ToString,
        Function::Abs,
        Function::Millis,
        Function::ToTimestamp,
        Function::Coalesce,
        Function::Round,
        Function::Floor,
        Function::Ceil,
        Function::RegexMatch,
        Function::RegexExtract,
        Function::SplitPart,
        Function::DateFormat,
        Function::DateTrunc,
        Function::Hash,
        Function::Extract,
        Function::Md5,
        Function::Cardinality,
        Function::ElementAt,
        Function::ArrayContains,
        Function::Array,
        Function::Split,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Function::Upper => "upper",
            Function::Lower => "lower",
            Function::Trim => "trim",
            Function::Length => "length",
            Function::Concat => "concat",
            Function::Substring => "substring",
            Function::Contains => "contains",
            Function::StartsWith => "starts_with",
            Function::EndsWith => "ends_with",
            Function::Replace => "replace",
            Function::ToString => "to_string",
            Function::Abs => "abs",
            Function::Millis => "millis",
            Function::ToTimestamp => "to_timestamp",
            Function::Coalesce => "coalesce",
            Function::Round => "round",
            Function::Floor => "floor",
            Function::Ceil => "ceil",
            Function::RegexMatch => "regex_match",
            Function::RegexExtract => "regex_extract",
            Function::SplitPart => "split_part",
            Function::DateFormat => "date_format",
            Function::DateTrunc => "date_trunc",
            Function::Hash => "hash",
            Function::Extract => "extract",
            Function::Md5 => "md5",
            Function::Cardinality => "cardinality",
            Function::ElementAt => "element_at",
            Function::ArrayContains => "array_contains",
            Function::Array => "array",
            Function::Split => "split",
        }
    }

    pub fn by_name(name: &str) -> Option<Function> {
        Function::ALL.iter().copied().find(|f| f.name() == name)
    }

    /// Its signature and one line of documentation, for editors and docs
    /// (see `catalog`).
    pub fn doc(self) -> (&'static str, &'static str) {
        match self {
            Function::Upper => ("upper(s: string) -> string", "The string in upper case."),
            Function::Lower => ("lower(s: string) -> string", "The string in lower case."),
            Function::Trim => ("trim(s: string) -> string", "The string without leading and trailing whitespace."),
            Function::Length => ("length(s: string) -> int", "The number of characters."),
            Function::Concat => {
                ("concat(s: string, …) -> string", "The strings joined, one or more; `a + b` is the same.")
            }
            Function::Substring => (
                "substring(s: string, start: int|long, length: int|long) -> string",
                "`length` characters from `start` (0-based), clamped to the string.",
            ),
            Function::Contains => ("contains(s: string, t: string) -> bool", "Whether `t` occurs in `s`."),
            Function::StartsWith => ("starts_with(s: string, t: string) -> bool", "Whether `s` starts with `t`."),
            Function::EndsWith => ("ends_with(s: string, t: string) -> bool", "Whether `s` ends with `t`."),
            Function::Replace => {
                ("replace(s: string, from: string, to: string) -> string", "`s` with every `from` replaced by `to`.")
            }
            Function::ToString => ("to_string(x: any) -> string", "The value as text; timestamps in ISO-8601."),
            Function::Abs => ("abs(x: int|long|double) -> the same type", "The absolute value."),
            Function::Millis => ("millis(t: timestamp) -> long", "The timestamp as epoch milliseconds."),
            Function::ToTimestamp => ("to_timestamp(n: int|long) -> timestamp", "A timestamp from epoch milliseconds."),
            Function::Coalesce => (
                "coalesce(x: T?, …, y: T) -> T",
                "The first argument that is not null; null only if all are (then the result is nullable).",
            ),
            Function::Round => (
                "round(x: int|long|double, digits?: int) -> the same type",
                "`x` rounded half away from zero to `digits` decimals (default 0); negative `digits` round to tens, hundreds, ….",
            ),
            Function::Floor => ("floor(x: int|long|double) -> the same type", "The largest whole number not above `x`."),
            Function::Ceil => ("ceil(x: int|long|double) -> the same type", "The smallest whole number not below `x`."),
            Function::RegexMatch => (
                "regex_match(s: string, pattern: string) -> bool",
                "Whether the constant regular expression `pattern` matches somewhere in `s` (anchor it with `^…$` for all of `s`).",
            ),
            Function::RegexExtract => (
                "regex_extract(s: string, pattern: string, group?: int) -> string?",
                "The text of capture group `group` (default 0, the whole match) of the first match of the constant `pattern`; null without a match.",
            ),
            Function::SplitPart => (
                "split_part(s: string, delimiter: string, n: int) -> string?",
                "The `n`-th part (1-based) of `s` split at `delimiter`; null when there is no such part.",
            ),
            Function::DateFormat => (
                "date_format(t: timestamp, pattern: string) -> string",
                "The timestamp as text in the constant Java-style `pattern` (as in schemas), in UTC.",
            ),
            Function::DateTrunc => (
                "date_trunc(unit: string, t: timestamp) -> timestamp",
                "`t` truncated to the start of its `unit` (a constant: year, month, day, hour, minute, second), in UTC.",
            ),
            Function::Hash => (
                "hash(x: any, …) -> long",
                "A stable 64-bit hash of the values: the key-group hash, the same in every process and flowc version.",
            ),
            Function::Extract => (
                "extract(unit from t: timestamp) -> long",
                "A part of `t` in UTC: `year`, `month` (1-12), `day` (1-31), `hour`, `minute`, `second`, `millisecond` (0-999), `dayofweek` (1 = Sunday to 7 = Saturday, as Flink SQL's DOW).",
            ),
            Function::Md5 => {
                ("md5(s: string) -> string", "The MD5 digest of the string's UTF-8 bytes, as 32 lowercase hex digits.")
            }
            Function::Cardinality => ("cardinality(a: array<T>) -> int", "The number of elements of the array."),
            Function::ElementAt => (
                "element_at(a: array<T>, i: int|long) -> T?",
                "The `i`-th element, 1-based; null when `i` is below 1 or past the last element, or that element is null.",
            ),
            Function::ArrayContains => {
                ("array_contains(a: array<T>, x: T) -> bool", "Whether an element of the array equals `x`; for a null `x`, whether an element is null.")
            }
            Function::Array => (
                "array(x: T, …) -> array<T>",
                "An array of the arguments, one or more of one type (numbers widen); a null argument is a null element (`array<T?>`).",
            ),
            Function::Split => (
                "split(s: string, delimiter: string) -> array<string>",
                "The parts of `s` between occurrences of `delimiter` (empty parts kept); every character when `delimiter` is empty.",
            ),
        }
    }
}

/// A resolved, typed expression over one record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Expr {
    Literal(Value),
    /// The input field at this index.
    Field(usize),
    /// Converts an `int`/`long` to `double`, or between timestamps and longs
    /// (implicit conversions); or, written `cast(x as T)`, between any two
    /// types, where parsing a string may fail (then it is wrapped in `At`).
    Cast(DataType, Box<Expr>),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    /// Both operands have the same type, except timestamp ± long.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    Call(Function, Vec<Expr>),
    /// In an aggregate's output: the key field at this index of the key.
    Key(usize),
    /// In an aggregate's output: the result of the aggregate at this index.
    Aggregate(usize),
    /// In an aggregate's output: the window's start (inclusive).
    WindowStart,
    /// In an aggregate's output: the window's end (exclusive).
    WindowEnd,
    /// A call of a Rust function a job imports with `use rust`.
    Udf(UdfRef, Vec<Expr>),
    /// `x is null`, or (`true`) `x is not null`: never null itself.
    IsNull(Box<Expr>, bool),
    /// The expression inside can fail at run time on some data (an integer
    /// division by zero): where it is written in the job file, so that the
    /// error names the place. Only such expressions are wrapped.
    At(SourceSpan, Box<Expr>),
}

/// Function `function` of the plan's UDF library `library`
/// ([`JobGraph::udfs`](crate::graph::JobGraph::udfs)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UdfRef {
    pub library: u32,
    pub function: u32,
    /// The function returns an `Option`: its result may be null.
    #[serde(default)]
    pub null_result: bool,
    /// Bit `i`: parameter `i` is an `Option`, so a null argument there is
    /// passed as `None` (the function is called) instead of making the
    /// result null. Parameters past the 64th are taken as plain ones here
    /// (the result's nullability is then over-estimated, never missed).
    #[serde(default)]
    pub takes_nulls: u64,
}

impl UdfRef {
    /// Whether parameter `i` takes a null argument (as `None`).
    pub fn takes_null(&self, i: usize) -> bool {
        i < 64 && self.takes_nulls & (1 << i) != 0
    }
}

/// A Rust file a job imports (`use rust "udfs/geo.rs"`): the functions
/// flowc can call, in file order, and once built, the artifact that runs
/// them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UdfLibrary {
    /// The path as the job writes it, relative to the job file.
    pub path: String,
    pub functions: Vec<crate::udf::UdfSignature>,
    /// Set by `flowc compile`/`flowc run` when they build it; the runtime
    /// refuses a plan that calls a library without one.
    pub artifact: Option<UdfArtifact>,
}

/// A built UDF library, kept in the JobManager's blob store by its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UdfArtifact {
    /// `sha256:<64 hex>` of the artifact file.
    pub digest: String,
    /// The column format and C ABI it was generated for.
    pub abi_version: u32,
    /// The target triple it was built for (`x86_64-unknown-linux-gnu`).
    pub target: String,
}

/// A byte range of the job file (`JobGraph::source`): where an expression
/// is written, for run-time errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SourceSpan {
    pub start: u32,
    pub end: u32,
}

impl SourceSpan {
    pub fn new(start: usize, end: usize) -> SourceSpan {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        SourceSpan { start: clamp(start), end: clamp(end) }
    }
}

impl Expr {
    /// The expression without its location.
    pub fn unlocated(&self) -> &Expr {
        match self {
            Expr::At(_, inner) => inner.unlocated(),
            other => other,
        }
    }
}

/// The operators of a job, with their checked settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OperatorKind {
    KafkaSource(KafkaSource),
    FileSource(FileSource),
    DatagenSource(DatagenSource),
    /// `source nexmark { kind: bid, … }`: one kind of the Nexmark event stream.
    NexmarkSource(NexmarkSource),
    Watermark(WatermarkSpec),
    Filter(Expr),
    /// `map` and `select`: one expression per output field.
    Project(Vec<Expr>),
    WindowAggregate(WindowAggregate),
    /// `union a, b`: the records of every input, as they come. Its vertex
    /// has one input edge per stream, all of logical input 0.
    Union,
    /// `join`: two inputs, the left (logical input 0) and the right (1).
    Join(Join),
    /// The late records of the window aggregate before it (`late: name`):
    /// no operator of its own; the job graph makes its outputs a second
    /// (late) output edge of the window's vertex.
    LateOutput,
    /// `top N by f`: ranks the rows of each window (across keys).
    WindowTop(WindowTop),
    KafkaSink(KafkaSink),
    PrintSink,
    FileSink(FileSink),
    DiscardSink,
    /// `key_by k | aggregate { … }` without a window: an upsert stream.
    RunningAggregate(RunningAggregate),
    /// `dedup k within D`: the first record per key.
    Dedup(Dedup),
    /// `key_by k | top N by f`: the N best rows per key, an updating stream.
    KeyedTop(KeyedTop),
    /// A Kafka sink of an upsert stream, as Flink's `upsert-kafka`.
    UpsertKafkaSink(UpsertKafkaSink),
    /// `unnest tags as tag`: one record per element of an array field.
    Unnest(Unnest),
    /// `join side as of proctime() on …`: a lookup join of the stream
    /// against a bounded side input, loaded whole by each subtask.
    LookupJoin(LookupJoin),
    /// `top N by f per k, …`: ranks the rows of each window within each
    /// partition. Last, so that plans of format 12 decode unchanged.
    WindowTopPer(WindowTopPer),
}

impl OperatorKind {
    pub fn is_source(&self) -> bool {
        matches!(
            self,
            OperatorKind::KafkaSource(_)
                | OperatorKind::DatagenSource(_)
                | OperatorKind::FileSource(_)
                | OperatorKind::NexmarkSource(_)
        )
    }
    pub fn is_sink(&self) -> bool {
        matches!(
            self,
            OperatorKind::KafkaSink(_)
                | OperatorKind::PrintSink
                | OperatorKind::FileSink(_)
                | OperatorKind::DiscardSink
                | OperatorKind::UpsertKafkaSink(_)
        )
    }
    /// A short description for explain output.
    pub fn describe(&self) -> String {
        match self {
            OperatorKind::KafkaSource(k) => format!(
                "KafkaSource({}, servers={}, group={}, offsets={}{}, format={}{})",
                match &k.topics {
                    None => format!("topic={}", k.topic),
                    Some(TopicSet::List(t)) => format!("topics=[{}]", t.join(", ")),
                    Some(TopicSet::Pattern(p)) => format!("topic_pattern={p}"),
                },
                k.servers,
                k.group,
                k.offsets,
                if k.bounded { ", bounded=latest" } else { "" },
                k.format,
                if k.on_error == ErrorPolicy::Skip { String::new() } else { format!(", on_error={}", k.on_error) }
            ),
            OperatorKind::FileSource(f) => format!(
                "FileSource(path={}, format={}{}{})",
                f.path,
                f.format,
                f.watch_ms.map_or(String::new(), |w| format!(", watch={w}ms")),
                if f.on_error == ErrorPolicy::Skip { String::new() } else { format!(", on_error={}", f.on_error) }
            ),
            OperatorKind::DatagenSource(d) => format!(
                "DatagenSource(count={}, rate={}{})",
                d.count.map_or("unbounded".to_string(), |c| c.to_string()),
                d.rate.map_or("unpaced".to_string(), |r| format!("{r}/s")),
                if d.json { ", format=json" } else { "" }
            ),
            OperatorKind::NexmarkSource(n) => format!(
                "NexmarkSource(kind={}, events={}, rate={}/s, seed={}{})",
                n.kind,
                n.events.map_or("unbounded".to_string(), |c| c.to_string()),
                n.rate,
                n.seed,
                if n.paced { ", paced" } else { "" }
            ),
            OperatorKind::Watermark(w) => format!(
                "Watermark(field=#{}, out_of_orderness={}ms, idleness={}{})",
                w.field,
                w.out_of_orderness_ms,
                w.idleness_ms.map_or("none".to_string(), |i| format!("{i}ms")),
                w.max_future_ms.map_or(String::new(), |m| format!(", max_future={m}ms"))
            ),
            OperatorKind::Filter(_) => "Filter".to_string(),
            OperatorKind::Project(e) => format!("Project({} fields)", e.len()),
            OperatorKind::WindowAggregate(w) if w.is_window_all() => format!("{} windowAll (parallelism 1)", w.window),
            OperatorKind::WindowAggregate(w) => format!("{}", w.window),
            OperatorKind::Union => "Union".to_string(),
            OperatorKind::Join(j) => format!("{j}"),
            OperatorKind::LateOutput => "LateRecords".to_string(),
            OperatorKind::WindowTop(t) => format!(
                "WindowTop(n={}, by=#{} {}, rank=#{})",
                t.n,
                t.field,
                if t.descending { "desc" } else { "asc" },
                t.rank_field
            ),
            OperatorKind::WindowTopPer(WindowTopPer { top: t, per }) => format!(
                "WindowTop(n={}, by=#{} {}, per={per:?}, rank=#{})",
                t.n,
                t.field,
                if t.descending { "desc" } else { "asc" },
                t.rank_field
            ),
            OperatorKind::KafkaSink(k) => {
                format!(
                    "KafkaSink(topic={}, servers={}, delivery={}, format={}{}{}{}{})",
                    k.topic,
                    k.servers,
                    k.delivery,
                    k.format,
                    if k.key.is_empty() { String::new() } else { format!(", key={}", fields_text(&k.key)) },
                    k.timestamp.map_or(String::new(), |t| format!(", timestamp=#{t}")),
                    if k.headers.is_empty() { String::new() } else { format!(", headers={}", headers_text(k)) },
                    if k.on_error == ErrorPolicy::Fail { String::new() } else { format!(", on_error={}", k.on_error) }
                )
            }
            OperatorKind::PrintSink => "PrintSink".to_string(),
            OperatorKind::FileSink(f) if f.format == Format::Json => format!("FileSink(path={})", f.path),
            OperatorKind::FileSink(f) => format!("FileSink(path={}, format={})", f.path, f.format),
            OperatorKind::DiscardSink => "DiscardSink".to_string(),
            OperatorKind::RunningAggregate(r) => format!(
                "GroupAggregate(key={}, aggs=[{}], changelog=upsert{}{})",
                fields_text(&r.key),
                r.aggregates.iter().map(|a| a.func.name()).collect::<Vec<_>>().join(", "),
                if r.retract { ", input=updating" } else { "" },
                ttl_text(r.ttl_ms)
            ),
            OperatorKind::Dedup(d) if d.keep_last => format!(
                "Deduplicate(keep=LastRow, key={}, order={}, changelog=upsert{})",
                fields_text(&d.key),
                match d.time {
                    TimeDomain::EventTime => "event time",
                    TimeDomain::ProcessingTime => "arrival",
                },
                ttl_text(d.ttl_ms)
            ),
            OperatorKind::Dedup(d) => format!(
                "Deduplicate(keep=FirstRow, key={}, within={}ms, time={}{})",
                fields_text(&d.key),
                d.within_ms,
                match d.time {
                    TimeDomain::EventTime => "event",
                    TimeDomain::ProcessingTime => "processing",
                },
                ttl_text(d.ttl_ms)
            ),
            OperatorKind::KeyedTop(t) => format!(
                "Rank(key={}, n={}, order=[{}]{}, changelog={}{})",
                fields_text(&t.key),
                t.n,
                t.order
                    .iter()
                    .map(|(f, desc)| format!("#{f} {}", if *desc { "desc" } else { "asc" }))
                    .collect::<Vec<_>>()
                    .join(", "),
                t.rank_field.map_or(String::new(), |r| format!(", rank=#{r}")),
                if t.rank_field.is_some() { "upsert" } else { "retract" },
                ttl_text(t.ttl_ms)
            ),
            OperatorKind::UpsertKafkaSink(u) => format!(
                "UpsertKafkaSink(topic={}, servers={}, key={}, format=json{}{})",
                u.sink.topic,
                u.sink.servers,
                fields_text(&u.key),
                if u.sink.headers.is_empty() { String::new() } else { format!(", headers={}", headers_text(&u.sink)) },
                if u.sink.on_error == ErrorPolicy::Fail {
                    String::new()
                } else {
                    format!(", on_error={}", u.sink.on_error)
                }
            ),
            OperatorKind::LookupJoin(l) => format!("{l}"),
            OperatorKind::Unnest(u) => {
                format!(
                    "Unnest(field=#{}, join={}{})",
                    u.field,
                    if u.left_outer { "left" } else { "cross" },
                    if u.ordinality { ", with ordinality" } else { "" }
                )
            }
        }
    }
}

/// `[#0, #2]`: fields by index, for [`OperatorKind::describe`].
/// A Kafka sink's headers: `[#2, #3]`, or with names where the checker
/// gave them (some header is not named as its field): `[#2 as "trace-id", #3 as "region"]`.
fn headers_text(k: &KafkaSink) -> String {
    if k.header_names.is_empty() {
        return fields_text(&k.headers);
    }
    let each = k.headers.iter().zip(&k.header_names).map(|(i, n)| format!("#{i} as {n:?}"));
    format!("[{}]", each.collect::<Vec<_>>().join(", "))
}

fn fields_text(fields: &[usize]) -> String {
    format!("[{}]", fields.iter().map(|k| format!("#{k}")).collect::<Vec<_>>().join(", "))
}

fn ttl_text(ttl_ms: Option<u64>) -> String {
    ttl_ms.map_or(String::new(), |t| format!(", ttl={t}ms"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StartingOffsets {
    Earliest,
    Latest,
    /// The group's committed offsets, or earliest where it has none.
    Committed,
}

impl fmt::Display for StartingOffsets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StartingOffsets::Earliest => "earliest",
            StartingOffsets::Latest => "latest",
            StartingOffsets::Committed => "committed",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaSource {
    pub servers: String,
    /// The one topic of `topic:`; empty with `topics` / `topic_pattern`.
    pub topic: String,
    /// `topics: [..]` or `topic_pattern: ".."` instead of one topic: the
    /// subtasks find the partitions and split them between themselves.
    #[serde(default)]
    pub topics: Option<TopicSet>,
    /// With `topics` / `topic_pattern`: how often to look for new
    /// partitions and matching topics (Flink's
    /// `scan.topic-partition-discovery.interval`); `None`: never.
    #[serde(default)]
    pub discovery_ms: Option<u64>,
    pub group: String,
    pub offsets: StartingOffsets,
    /// Stop at the offsets that are the latest when the source starts
    /// (`bounded: latest`), as Flink's `KafkaSource.setBounded(latest())`.
    pub bounded: bool,
    /// The records' schema.
    pub schema: Schema,
    /// What happens to a record that cannot be decoded (`on_error`).
    pub on_error: ErrorPolicy,
    /// How a message's value is encoded.
    pub format: Format,
    /// The source's stream is `versioned by` a key (through `watermark`
    /// stages only): a message with a key and no value, a tombstone, is the
    /// deletion of that key's version at the message's time, as Flink's
    /// `upsert-kafka` reads it. `None`: such a message is a bad record,
    /// like any value the format cannot read.
    #[serde(default)]
    pub tombstones: Option<Tombstones>,
}

/// How a versioned Kafka source reads a tombstone (a message without a
/// value): a `-D` record whose key fields come from the message key (one
/// field: the key's text; several: a JSON object of them, as a Kafka sink
/// writes keys), whose event-time field is the message's timestamp, and
/// whose other fields are null (a non-nullable one holds its type's zero,
/// a `deleted: bool` true).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstones {
    /// The versioned key's fields, indices into the source's schema.
    pub key: Vec<usize>,
    /// The event-time field (the `watermark` stage's), an index into the
    /// source's schema.
    pub time: usize,
}

/// The topics of a Kafka source that reads more than one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TopicSet {
    /// `topics: ["a", "b"]`
    List(Vec<String>),
    /// `topic_pattern: "clicks-.*"`: every topic whose whole name matches.
    Pattern(String),
}

impl fmt::Display for TopicSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopicSet::List(t) => f.write_str(&t.join(", ")),
            TopicSet::Pattern(p) => write!(f, "matching {p:?}"),
        }
    }
}

/// How records are encoded outside the job (`format: json | csv | raw`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Format {
    /// One JSON object per record, fields named as in the schema.
    #[default]
    Json,
    /// One line of delimited text per record (RFC 4180 quoting).
    Csv(CsvFormat),
    /// The record is its one string field, as it is.
    Raw,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Format::Json => f.write_str("json"),
            Format::Raw => f.write_str("raw"),
            Format::Csv(c) => {
                write!(f, "csv(")?;
                if c.header {
                    f.write_str("header, ")?;
                }
                write!(f, "delimiter={:?}, quote={:?}", c.delimiter as char, c.quote as char)?;
                if let Some(n) = &c.null_literal {
                    write!(f, ", null_literal={n:?}")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// `format: csv` and its settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsvFormat {
    /// Files: the first line names the columns (read by name, written
    /// first); without it, columns are the schema's fields in order.
    pub header: bool,
    /// One ASCII byte.
    pub delimiter: u8,
    /// One ASCII byte; doubled inside a quoted field.
    pub quote: u8,
    /// `null_literal: "\\N"`: an unquoted field of this text is a null
    /// (Flink's `'csv.null-literal'`); nulls are written as it (without
    /// it, empty). An empty unquoted field of a nullable type other than
    /// `string` is a null too.
    #[serde(default)]
    pub null_literal: Option<String>,
}

impl Default for CsvFormat {
    fn default() -> CsvFormat {
        CsvFormat { header: false, delimiter: b',', quote: b'"', null_literal: None }
    }
}

/// `source file { path, format, schema, watch }`: every file under `path`,
/// by name; each file belongs to one subtask, by a hash of its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSource {
    /// A directory (every file in it, sorted by name) or one file.
    pub path: String,
    pub format: Format,
    pub schema: Schema,
    /// Look for new files this often; `None`: read what is there and end.
    pub watch_ms: Option<u64>,
    pub on_error: ErrorPolicy,
}

/// What a source does with a record it cannot decode (`on_error: fail |
/// skip | dead_letter`, issue 11 §6). Every bad record is counted
/// (`numRecordsDecodeErrors`) and sampled for `/errors` whatever the policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorPolicy {
    /// The task fails (and the job restarts, which meets the record again).
    Fail,
    /// The record is dropped: the default of sources.
    #[default]
    Skip,
    /// The record is written, with the error and where it came from, to a
    /// dead-letter topic, then dropped.
    DeadLetter(DeadLetterTarget),
    /// As `DeadLetter`, to JSON-lines files in this directory (a file
    /// source's `dead_letter_path`), one per subtask.
    DeadLetterFiles(String),
}

impl ErrorPolicy {
    /// `fail`: the default of stages and sinks.
    pub fn fail() -> ErrorPolicy {
        ErrorPolicy::Fail
    }
}

impl fmt::Display for ErrorPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorPolicy::Fail => f.write_str("fail"),
            ErrorPolicy::Skip => f.write_str("skip"),
            ErrorPolicy::DeadLetter(t) => write!(f, "dead_letter({})", t.topic),
            ErrorPolicy::DeadLetterFiles(p) => write!(f, "dead_letter(path {p})"),
        }
    }
}

/// Where dead-lettered records go: a Kafka topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterTarget {
    pub servers: String,
    pub topic: String,
}

/// How the datagen source makes one field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Generator {
    /// `start + i * step`
    Sequence {
        start: i64,
        step: i64,
    },
    /// The i-th record takes `values[i % len]`.
    Cycle(Vec<Value>),
    /// `start + (i / per_tick) * step`: timestamps that advance by `step`
    /// every `per_tick` records, as the click-event generator's do.
    Ticks {
        start: i64,
        step: i64,
        per_tick: i64,
    },
    /// A pseudo-random integer in `min..=max`, the same for the same i.
    Random {
        min: i64,
        max: i64,
    },
    Constant(Value),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatagenSource {
    pub schema: Schema,
    /// One generator per schema field.
    pub generators: Vec<Generator>,
    /// Records in total over all subtasks; `None` runs forever.
    pub count: Option<u64>,
    /// Records per second over all subtasks; `None` is as fast as possible.
    pub rate: Option<u64>,
    /// Encode each record to JSON and decode it again, as a Kafka source would.
    pub json: bool,
}

/// The three kinds of Nexmark events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NexmarkKind {
    Person,
    Auction,
    Bid,
}

impl NexmarkKind {
    pub const ALL: [NexmarkKind; 3] = [NexmarkKind::Person, NexmarkKind::Auction, NexmarkKind::Bid];

    /// `person`, `auction`, `bid`: as written in `kind:`.
    pub fn word(self) -> &'static str {
        match self {
            NexmarkKind::Person => "person",
            NexmarkKind::Auction => "auction",
            NexmarkKind::Bid => "bid",
        }
    }

    pub fn by_word(word: &str) -> Option<NexmarkKind> {
        NexmarkKind::ALL.into_iter().find(|k| k.word() == word)
    }

    /// The fixed schema of this kind's records: the columns of the views
    /// `person`, `auction` and `bid` of Nexmark's Flink SQL DDL, by the same
    /// names and in the same order.
    pub fn schema(self) -> Schema {
        use DataType::{Long, String as Str, Timestamp};
        let fields: &[(&str, DataType)] = match self {
            NexmarkKind::Person => &[
                ("id", Long),
                ("name", Str),
                ("emailAddress", Str),
                ("creditCard", Str),
                ("city", Str),
                ("state", Str),
                ("dateTime", Timestamp),
                ("extra", Str),
            ],
            NexmarkKind::Auction => &[
                ("id", Long),
                ("itemName", Str),
                ("description", Str),
                ("initialBid", Long),
                ("reserve", Long),
                ("dateTime", Timestamp),
                ("expires", Timestamp),
                ("seller", Long),
                ("category", Long),
                ("extra", Str),
            ],
            NexmarkKind::Bid => &[
                ("auction", Long),
                ("bidder", Long),
                ("price", Long),
                ("channel", Str),
                ("url", Str),
                ("dateTime", Timestamp),
                ("extra", Str),
            ],
        };
        let name = match self {
            NexmarkKind::Person => "Person",
            NexmarkKind::Auction => "Auction",
            NexmarkKind::Bid => "Bid",
        };
        Schema { name: Some(name.to_string()), fields: fields.iter().map(|(n, t)| Field::new(*n, *t)).collect() }
    }
}

impl fmt::Display for NexmarkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// The event time of a nexmark source's first event unless `base_time`
/// says otherwise: 2025-01-01T00:00:00Z, so that runs are reproducible.
pub const NEXMARK_BASE_TIME: i64 = 1_735_689_600_000;

/// Events per second of event time unless `rate` says otherwise, as
/// Nexmark's `first-event.rate` default.
pub const NEXMARK_RATE: u64 = 10_000;

/// `source nexmark { … }`: the events of one kind out of the Nexmark
/// generator's sequence (see the runtime's `connectors::nexmark`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NexmarkSource {
    pub kind: NexmarkKind,
    /// Events of every kind in the whole sequence; `None` runs forever.
    pub events: Option<u64>,
    /// Events per second of event time (Nexmark's `first-event.rate`).
    pub rate: u64,
    /// Seeds every event's pseudo-random choices.
    pub seed: u64,
    /// The event time of event 0, epoch milliseconds.
    pub base_time: i64,
    /// Emit at `rate` in wall-clock time too; else as fast as possible.
    pub paced: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatermarkSpec {
    /// The timestamp field that gives each record its event time.
    pub field: usize,
    pub out_of_orderness_ms: u64,
    /// An input with no records for this long stops holding back the watermark.
    pub idleness_ms: Option<u64>,
    /// `max_future`: a record whose event time is further than this ahead
    /// of the clock is not given to the watermark: it follows the stage's
    /// `on_error` (`numRecordsFromTheFuture`).
    #[serde(default)]
    pub max_future_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeDomain {
    EventTime,
    ProcessingTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WindowKind {
    Tumbling {
        size_ms: u64,
    },
    Sliding {
        size_ms: u64,
        slide_ms: u64,
    },
    /// Per key, records closer than `gap_ms` to each other form one
    /// window, `[first, last + gap)`; windows that overlap or touch merge.
    Session {
        gap_ms: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSpec {
    pub kind: WindowKind,
    pub time: TimeDomain,
}

impl fmt::Display for WindowSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = match self.time {
            TimeDomain::EventTime => "EventTime",
            TimeDomain::ProcessingTime => "ProcessingTime",
        };
        match self.kind {
            WindowKind::Tumbling { size_ms } => write!(f, "Window(Tumbling{time}Windows({size_ms}))"),
            WindowKind::Sliding { size_ms, slide_ms } => {
                write!(f, "Window(Sliding{time}Windows({size_ms}, {slide_ms}))")
            }
            WindowKind::Session { gap_ms } => write!(f, "Window({time}SessionWindows({gap_ms}))"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AggFunc {
    Count,
    Sum,
    Min,
    Max,
    Avg,
    /// The exact number of distinct values (a set in state).
    CountDistinct,
    /// The estimated number of distinct values (a HyperLogLog sketch).
    ApproxCountDistinct,
    /// The value of the first record, by arrival.
    First,
    /// The value of the last record, by arrival.
    Last,
    /// The estimated `q`-quantile (a DDSketch), `q` in millionths.
    ApproxPercentile {
        q_millionths: u32,
    },
    /// The values, in arrival order, as an array (Flink SQL's `ARRAY_AGG`).
    ArrayAgg,
}

impl AggFunc {
    pub const ALL: &'static [AggFunc] = &[
        AggFunc::Count,
        AggFunc::Sum,
        AggFunc::Min,
        AggFunc::Max,
        AggFunc::Avg,
        AggFunc::CountDistinct,
        AggFunc::ApproxCountDistinct,
        AggFunc::First,
        AggFunc::Last,
        AggFunc::ApproxPercentile { q_millionths: 500_000 },
        AggFunc::ArrayAgg,
    ];

    /// Its signature and one line of documentation (see `catalog`).
    pub fn doc(self) -> (&'static str, &'static str) {
        match self {
            AggFunc::Count => (
                "count() -> long, count(x: any) -> long",
                "The number of records in the window; with an argument, of those where it is not null.",
            ),
            AggFunc::Sum => (
                "sum(x: int|long|double) -> long|double",
                "The sum over the window: long for integers, double for doubles.",
            ),
            AggFunc::Min => ("min(x: any but bool) -> the same type", "The smallest value in the window."),
            AggFunc::Max => ("max(x: any but bool) -> the same type", "The largest value in the window."),
            AggFunc::Avg => ("avg(x: int|long|double) -> double", "The mean over the window."),
            AggFunc::CountDistinct => (
                "count_distinct(x: any but bool) -> long",
                "The exact number of distinct values (every value is kept in state); Flink SQL's `COUNT(DISTINCT x)`.",
            ),
            AggFunc::ApproxCountDistinct => (
                "approx_count_distinct(x: any but bool) -> long",
                "The estimated number of distinct values: a HyperLogLog of 4096 registers (4 KiB per key), standard error 1.6 %.",
            ),
            AggFunc::First => (
                "first(x: any but bool) -> the same type",
                "The value of the first record by arrival; Flink SQL's `FIRST_VALUE`.",
            ),
            AggFunc::Last => (
                "last(x: any but bool) -> the same type",
                "The value of the last record by arrival; Flink SQL's `LAST_VALUE`.",
            ),
            AggFunc::ApproxPercentile { .. } => (
                "approx_percentile(x: int|long|double, q: constant in [0, 1]) -> double",
                "The estimated q-quantile: a DDSketch whose answer is within 1 % of the exact quantile's value.",
            ),
            AggFunc::ArrayAgg => (
                "array_agg(x: any scalar but bool) -> array<the same type>",
                "The values of the records in arrival order, nulls left out (every value is kept in state); Flink SQL's `ARRAY_AGG(x IGNORE NULLS)`.",
            ),
        }
    }

    pub fn by_name(name: &str) -> Option<AggFunc> {
        Some(match name {
            "count" => AggFunc::Count,
            "sum" => AggFunc::Sum,
            "min" => AggFunc::Min,
            "max" => AggFunc::Max,
            "avg" => AggFunc::Avg,
            "count_distinct" => AggFunc::CountDistinct,
            "approx_count_distinct" => AggFunc::ApproxCountDistinct,
            "first" => AggFunc::First,
            "last" => AggFunc::Last,
            "approx_percentile" => AggFunc::ApproxPercentile { q_millionths: 500_000 },
            "array_agg" => AggFunc::ArrayAgg,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            AggFunc::Count => "count",
            AggFunc::Sum => "sum",
            AggFunc::Min => "min",
            AggFunc::Max => "max",
            AggFunc::Avg => "avg",
            AggFunc::CountDistinct => "count_distinct",
            AggFunc::ApproxCountDistinct => "approx_count_distinct",
            AggFunc::First => "first",
            AggFunc::Last => "last",
            AggFunc::ApproxPercentile { .. } => "approx_percentile",
            AggFunc::ArrayAgg => "array_agg",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggCall {
    pub func: AggFunc,
    /// The argument over the input record; `None` for `count()`.
    pub arg: Option<Expr>,
    /// The type of the argument (for `count()`, `long`).
    pub arg_type: DataType,
    pub result_type: DataType,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowAggregate {
    /// Indices of the key fields in the input.
    pub key: Vec<usize>,
    pub window: WindowSpec,
    pub aggregates: Vec<AggCall>,
    /// One expression per output field, over keys, aggregates and bounds.
    pub output: Vec<Expr>,
    /// Allowed lateness (event time): a window's state is kept until the
    /// watermark passes `end - 1 + lateness`, and a record arriving in
    /// that time updates it and fires it again.
    #[serde(default)]
    pub lateness_ms: u64,
    /// Records too late for any window go to the operator's late output
    /// (`late: name`) instead of being dropped.
    #[serde(default)]
    pub late_output: bool,
}

impl WindowAggregate {
    /// Whether the operator runs at parallelism 1 over all records
    /// (Flink's `windowAll`): a window without `key_by`.
    pub fn is_window_all(&self) -> bool {
        self.key.is_empty()
    }
}

/// `| top N by f desc [as rank]` after a windowed aggregate: the rows of
/// one window (one timestamp, `end - 1`) ranked by `field`, the first `n`
/// emitted with their rank (1-based) appended; ties keep arrival order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowTop {
    pub n: u64,
    /// The field ranked by, an index into the input.
    pub field: usize,
    pub descending: bool,
    /// The index of the rank field in the output (the last one).
    pub rank_field: usize,
}

/// `| top N by f per k, …` after a windowed aggregate: as [`WindowTop`],
/// the rows of one window ranked within each partition, the rows whose
/// `per` fields are equal (Flink SQL's `PARTITION BY window_start,
/// window_end, k`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowTopPer {
    pub top: WindowTop,
    /// The partition fields, indices into the input; never empty.
    pub per: Vec<usize>,
}

impl OperatorKind {
    /// The Top-N of a window and its partition fields (none: the whole
    /// window), if this is one.
    pub fn window_top(&self) -> Option<(&WindowTop, &[usize])> {
        match self {
            OperatorKind::WindowTop(t) => Some((t, &[])),
            OperatorKind::WindowTopPer(WindowTopPer { top, per }) => Some((top, per)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Delivery {
    AtLeastOnce,
    ExactlyOnce,
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Delivery::AtLeastOnce => "at_least_once",
            Delivery::ExactlyOnce => "exactly_once",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaSink {
    pub servers: String,
    pub topic: String,
    pub delivery: Delivery,
    /// Prefix of the transactional ids for exactly-once delivery.
    pub transactional_id_prefix: String,
    /// How a message's value is encoded.
    pub format: Format,
    /// `key: user` or `key: [user, region]`: the fields (of the input) the
    /// message key is made of; empty: no key.
    #[serde(default)]
    pub key: Vec<usize>,
    /// `timestamp: ts`: the field (a timestamp) the record timestamp is
    /// set from; `None`: the producer's time.
    #[serde(default)]
    pub timestamp: Option<usize>,
    /// `headers: [trace, region]`: string fields (of the input) each
    /// written as a message header; empty: none.
    #[serde(default)]
    pub headers: Vec<usize>,
    /// What happens to a record the sink cannot write (a message over
    /// Kafka's limit): its `on_error`, else `pipeline.on-error`, else
    /// `fail`.
    #[serde(default = "ErrorPolicy::fail")]
    pub on_error: ErrorPolicy,
    /// The name of each header of `headers`, in order, where one is not
    /// named as its field (`["trace-id", trace]`); empty: each is named as
    /// its field. Plan format 14; a plan of an older format has none.
    #[serde(default, deserialize_with = "crate::plan_file::since_14")]
    pub header_names: Vec<String>,
}

impl KafkaSink {
    /// The name of header `k` (of `headers`), whose field is named `field`.
    pub fn header_name<'a>(&'a self, k: usize, field: &'a str) -> &'a str {
        self.header_names.get(k).map_or(field, String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSink {
    /// A directory; each subtask writes `part-<subtask>.<jsonl|csv|txt>` in it.
    pub path: String,
    pub format: Format,
}

/// A running aggregate (Flink SQL's `GROUP BY` without a window, its
/// `GroupAggFunction`): per key, one typed accumulator per aggregate; each
/// record emits the key's new row as `+I` (its first) or `-U` (the old
/// row) and `+U` (the new), nothing when the row did not change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunningAggregate {
    /// Indices of the key fields in the input.
    pub key: Vec<usize>,
    pub aggregates: Vec<AggCall>,
    /// One expression per output field, over keys and aggregates.
    pub output: Vec<Expr>,
    /// Keys whose state was not updated for this long (processing time)
    /// are forgotten; the next record of such a key starts again at `+I`.
    pub ttl_ms: Option<u64>,
    /// The input is an updating stream (another running aggregate's, or
    /// any upsert stream): its `-U` and `-D` records retract from the
    /// aggregates (`count`, `sum` and `avg` exactly, `min` and `max` from
    /// each key's values kept in state), and a key whose every record was
    /// retracted is deleted (`-D`).
    #[serde(default)]
    pub retract: bool,
}

/// `[left] unnest tags as tag` (Flink SQL's `CROSS JOIN UNNEST(tags) AS
/// t(tag)`, or `LEFT JOIN … ON TRUE`): a record per element of array field
/// `field`, holding the input's other fields in order and then the element.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unnest {
    pub field: usize,
    /// A record whose array is empty or null is kept once, its element null.
    pub left_outer: bool,
    /// `with ordinality`: a last field, `long`, the element's 1-based
    /// position in its array (null for a `left` record of no element).
    #[serde(default)]
    pub ordinality: bool,
}

/// `dedup k within D` (Flink SQL's deduplication keeping the first row):
/// the first record per key passes, the key is remembered for `within_ms`
/// after it was first seen. `dedup k keep last` (keeping the last row):
/// the latest record per key, by event time when the stream has
/// watermarks, as an upsert stream keyed by `k`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dedup {
    /// Indices of the key fields in the input.
    pub key: Vec<usize>,
    /// Keep first: how long a key is remembered; keep last: 0 (unused).
    pub within_ms: u64,
    /// Keep the last record per key (an upsert stream), not the first.
    #[serde(default)]
    pub keep_last: bool,
    /// Event time when the stream has watermarks, else processing time.
    pub time: TimeDomain,
    /// Keys not seen for this long (processing time) are forgotten too.
    pub ttl_ms: Option<u64>,
}

/// `key_by k | top N by f desc[, g asc…] [as rank]` without a window: the
/// N best rows per key (Flink SQL's Top-N of an append-only input, its
/// `AppendOnlyTopNFunction`), ties in arrival order. A row entering the
/// top is `+I`, one leaving it `-D`; with a rank field, the rows are keyed
/// by key and rank, and a rank whose row changes is updated (`-U`/`+U`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyedTop {
    /// Indices of the key fields in the input.
    pub key: Vec<usize>,
    pub n: u64,
    /// The sort fields, indices into the input, each `true` if descending:
    /// ties of the first are ordered by the second, and so on.
    pub order: Vec<(usize, bool)>,
    /// The index of the rank field in the output (the last one), if any.
    pub rank_field: Option<usize>,
    /// Keys not updated for this long (processing time) are forgotten.
    pub ttl_ms: Option<u64>,
}

/// A Kafka sink of an upsert stream: the message key is the JSON of the
/// key fields, the value the row's JSON for `+I`/`+U`, nothing for `-U`,
/// and a tombstone (no value) for `-D`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpsertKafkaSink {
    pub sink: KafkaSink,
    /// Indices of the upsert key's fields in the sink's input.
    pub key: Vec<usize>,
}

/// Inner or left outer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JoinType {
    Inner,
    /// Every left row is emitted; one without a match with the right
    /// fields null, once the watermark passes its bound — in a regular
    /// join (no time bound) at once, retracted (`-D`) at its first match.
    LeftOuter,
}

/// What bounds a join's state (and so which rows meet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JoinBound {
    /// `right.ts ∈ [left.ts + lower_ms, left.ts + upper_ms]`, in event time
    /// (Flink's `IntervalJoinOperator`).
    Interval { lower_ms: i64, upper_ms: i64 },
    /// Rows of both sides in the same window (event time), emitted when it
    /// ends (Flink's window join).
    Window(WindowKind),
    /// `as of`: each left row with the right's version (a changelog keyed
    /// by `right_key`, its primary key) valid at the left row's event time,
    /// emitted when the watermark passes it (Flink's
    /// `TemporalRowTimeJoinOperator`). `deleted`: the right's `deleted:
    /// bool` field, true on a row that ends its key's versions.
    Temporal { deleted: Option<usize> },
    /// No time bound (Flink SQL's regular join, `StreamingJoinOperator`):
    /// each row of either side is kept under its key and meets every kept
    /// row of the other side. `ttl_ms`: a kept row is forgotten that long
    /// after it arrived, in processing time (Flink's `table.exec.state.ttl`).
    /// A left outer one's output is a retract stream (`+I`, `-D`).
    Regular { ttl_ms: u64 },
}

/// A two-input equi-join. Its output is the left's fields, then the
/// right's (renamed `right.f` where a name is on both sides).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Join {
    pub join_type: JoinType,
    /// Key fields of the left input (logical input 0), pairwise equal to…
    pub left_key: Vec<usize>,
    /// …these fields of the right input (logical input 1), of equal types.
    pub right_key: Vec<usize>,
    pub bound: JoinBound,
    /// The right input's records (the operator's `input` is the left's).
    pub right: Schema,
    /// Late left records go to the join's late output (`{ late: name }`)
    /// instead of being dropped; late right records are dropped all the
    /// same.
    #[serde(default)]
    pub late_output: bool,
}

/// `[left] join side as of proctime() on e == side.k`: a lookup join
/// (Flink SQL's `JOIN side FOR SYSTEM_TIME AS OF proc_time`). Each subtask
/// reads the whole bounded side input when it opens, keys it by
/// `right_key`, and meets each left row with every side row whose key
/// equals `left_key` evaluated on the left row. The output is the left's
/// fields, then the side's; a left outer one emits an unmatched left row
/// once with the side's fields null. No state: the side is read again on
/// a restore.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LookupJoin {
    pub join_type: JoinType,
    /// Expressions over the left row (logical input 0), pairwise equal to…
    pub left_key: Vec<Expr>,
    /// …these fields of the side, of the same types.
    pub right_key: Vec<usize>,
    /// The side input, read whole.
    pub side: LookupSide,
}

/// What a lookup join reads whole: a bounded source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LookupSide {
    /// A `source file` without `watch`: every file under its path.
    File(FileSource),
    /// A `source kafka` with `bounded: latest`: every partition up to the
    /// offsets that were the latest when the subtask opened.
    Kafka(KafkaSource),
}

impl LookupSide {
    /// The side's records.
    pub fn schema(&self) -> &Schema {
        match self {
            LookupSide::File(f) => &f.schema,
            LookupSide::Kafka(k) => &k.schema,
        }
    }
}

impl fmt::Display for LookupSide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupSide::File(s) => write!(f, "file({}, format={})", s.path, s.format),
            LookupSide::Kafka(k) => match &k.topics {
                None => write!(f, "kafka({}, bounded=latest, format={})", k.topic, k.format),
                Some(TopicSet::List(t)) => write!(f, "kafka([{}], bounded=latest, format={})", t.join(", "), k.format),
                Some(TopicSet::Pattern(p)) => write!(f, "kafka(pattern {p}, bounded=latest, format={})", k.format),
            },
        }
    }
}

impl fmt::Display for LookupJoin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.join_type {
            JoinType::Inner => "InnerJoin",
            JoinType::LeftOuter => "LeftOuterJoin",
        };
        let keys: Vec<String> = self.right_key.iter().map(|r| format!("side.#{r}")).collect();
        write!(
            f,
            "LookupJoin(joinType=[{kind}], lookup=[{}], side={}, loaded by each subtask)",
            keys.join(", "),
            self.side
        )
    }
}

impl fmt::Display for Join {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.join_type {
            JoinType::Inner => "Inner",
            JoinType::LeftOuter => "LeftOuter",
        };
        let keys = |k: &[usize]| k.iter().map(|i| format!("#{i}")).collect::<Vec<_>>().join(", ");
        match self.bound {
            JoinBound::Interval { lower_ms, upper_ms } => write!(
                f,
                "IntervalJoin({kind}, left=[{}], right=[{}], between={lower_ms}ms..{upper_ms}ms)",
                keys(&self.left_key),
                keys(&self.right_key)
            ),
            JoinBound::Temporal { deleted } => {
                write!(
                    f,
                    "TemporalJoin({kind}, left=[{}], right=[{}], as of event time",
                    keys(&self.left_key),
                    keys(&self.right_key)
                )?;
                match deleted {
                    Some(d) => write!(f, ", deleted=#{d})"),
                    None => write!(f, ")"),
                }
            }
            JoinBound::Regular { ttl_ms } => {
                let kind = match self.join_type {
                    JoinType::Inner => "InnerJoin",
                    JoinType::LeftOuter => "LeftOuterJoin",
                };
                let on: Vec<String> =
                    self.left_key.iter().zip(&self.right_key).map(|(l, r)| format!("=(#{l}, right.#{r})")).collect();
                let on = if on.len() == 1 { on.join("") } else { format!("AND({})", on.join(", ")) };
                write!(f, "Join(joinType=[{kind}], where=[{on}], ttl={ttl_ms}ms)")
            }
            JoinBound::Window(w) => {
                let spec = WindowSpec { kind: w, time: TimeDomain::EventTime };
                write!(
                    f,
                    "WindowJoin({kind}, left=[{}], right=[{}], {spec})",
                    keys(&self.left_key),
                    keys(&self.right_key)
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_types_print_and_fit_by_their_elements_nullability() {
        let strict = DataType::Array(Elem::LONG);
        let loose = DataType::Array(Elem::LONG.with_nulls(true));
        assert_eq!(strict.to_string(), "array<long>");
        assert_eq!(loose.to_string(), "array<long?>");
        assert!(strict.fits(loose) && loose.fits(loose) && strict.fits(strict));
        assert!(!loose.fits(strict), "a null element where none may be");
        assert!(!DataType::Array(Elem::INT).fits(loose));
        assert_eq!(strict.join_nulls(loose), Some(loose));
        assert_eq!(strict.join_nulls(strict), Some(strict));
        assert_eq!(strict.join_nulls(DataType::Long), None);
        assert!(loose.element_nullable() && !strict.element_nullable() && !DataType::Long.element_nullable());
        assert_eq!(loose.element(), Some(DataType::Long));
    }

    #[test]
    fn element_types_serialize_as_before_and_nullable_ones_after() {
        // A plan written before nullable elements: the same names and, in
        // bincode (state), the same variant indices.
        let old: DataType = serde_json::from_str(r#"{"Array":"Timestamp"}"#).expect("an old plan loads");
        assert_eq!(old, DataType::Array(Elem::TIMESTAMP));
        let loose = DataType::Array(Elem::STRING.with_nulls(true));
        assert_eq!(serde_json::to_string(&loose).expect("json"), r#"{"Array":"NullableString"}"#);
        assert_eq!(serde_json::to_string(&DataType::Array(Elem::STRING)).expect("json"), r#"{"Array":"String"}"#);
        let cfg = bincode::config::standard();
        for e in [Elem::STRING, Elem::INT, Elem::LONG, Elem::DOUBLE, Elem::BOOL, Elem::TIMESTAMP] {
            for nulls in [false, true] {
                let t = DataType::Array(e.with_nulls(nulls));
                let bytes = bincode::serde::encode_to_vec(t, cfg).expect("encodes");
                let (back, _): (DataType, usize) = bincode::serde::decode_from_slice(&bytes, cfg).expect("decodes");
                assert_eq!(back, t);
                let json = serde_json::to_string(&t).expect("json");
                assert_eq!(serde_json::from_str::<DataType>(&json).expect("json"), t);
            }
        }
        // `Array` is variant 6, `Long` element variant 2: as before.
        assert_eq!(bincode::serde::encode_to_vec(DataType::Array(Elem::LONG), cfg).expect("encodes"), vec![6, 2]);
    }
}
