//! The syntax tree of a job file, every node carrying its source [`Span`].
//!
//! The tree says what the file says and nothing more: names are not
//! resolved and types are not checked here (that is `flowc-compiler`'s job).
//! Spans never take part in equality, so two trees are equal when they say
//! the same thing, wherever it was written.

use crate::span::Span;

/// A whole job file: its statements in source order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobFile {
    pub items: Vec<Item>,
}

/// One top-level statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// `job "Click Event Count"`
    Job(StrLit),
    /// `param bootstrap.servers: string = "localhost:9092"`
    Param(ParamDecl),
    /// `flag checkpointing`
    Flag(Name),
    /// `set execution.checkpointing.interval = 1s`
    Set(SetStmt),
    /// `schema ClickEvent { … }`
    Schema(SchemaDecl),
    /// `use rust "udfs/geo.rs"`: imports the `pub fn`s of a Rust file.
    UseRust(UseRust),
    /// `let clicks = source kafka { … }`
    Let(LetStmt),
    /// A pipeline that is not bound to a name; it ends in a sink.
    Pipeline(Pipeline),
}

impl Item {
    pub fn span(&self) -> Span {
        match self {
            Item::Job(s) => s.span,
            Item::Param(p) => p.span,
            Item::Flag(n) => n.span,
            Item::Set(s) => s.span,
            Item::Schema(s) => s.span,
            Item::UseRust(u) => u.span,
            Item::Let(l) => l.span,
            Item::Pipeline(p) => p.span,
        }
    }
}

/// An identifier or parameter name with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Name {
    pub text: String,
    pub span: Span,
}

/// A string literal, already unescaped.
#[derive(Debug, Clone, PartialEq)]
pub struct StrLit {
    pub value: String,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    String,
    Int,
    Long,
    Double,
    Bool,
    Duration,
}

impl ParamType {
    pub fn keyword(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Int => "int",
            ParamType::Long => "long",
            ParamType::Double => "double",
            ParamType::Bool => "bool",
            ParamType::Duration => "duration",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParamDecl {
    pub name: Name,
    pub ty: ParamType,
    pub ty_span: Span,
    pub default: Option<Expr>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SetStmt {
    pub key: Name,
    pub value: Expr,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SchemaDecl {
    pub name: Name,
    pub fields: Vec<SchemaField>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SchemaField {
    pub name: Name,
    pub ty: FieldType,
    /// `string?`: the field may be null.
    pub nullable: bool,
    pub ty_span: Span,
    /// `from key`, `from header("trace-id")`: Kafka metadata, not payload.
    pub metadata: Option<FieldMetadata>,
    pub span: Span,
}

/// `from key | timestamp | partition | offset | header("name")` after a
/// schema field's type; the checker resolves the name.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldMetadata {
    /// `key`, `timestamp`, …; `header` for `header("…")`.
    pub name: Name,
    /// The header's name in `header("…")`.
    pub header: Option<StrLit>,
    /// From `from` to the end.
    pub span: Span,
}

/// The type of a record field.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldType {
    String,
    Int,
    Long,
    Double,
    Bool,
    /// A point in time; in JSON either text in the given pattern or epoch
    /// milliseconds. `None` means the default ISO-8601 pattern.
    Timestamp(Option<TimestampFormat>),
    /// A nested JSON object, `{ id: long, name: string? }`: its fields are
    /// read as `payload.user.id`.
    Record(Vec<SchemaField>),
    /// `array<string>`: a JSON array of the element type.
    Array(Box<ArrayElement>),
}

/// The element type of `array<…>` as written; the checker takes scalar
/// elements without `?` only.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayElement {
    pub ty: FieldType,
    pub nullable: bool,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TimestampFormat {
    /// A Java-style pattern such as `yyyy-MM-dd'T'HH:mm:ss.SSSX`.
    Pattern(StrLit),
    /// A JSON number of milliseconds since the Unix epoch.
    EpochMillis,
}

/// `use rust "udfs/geo.rs"`; the path is relative to the job file.
#[derive(Debug, Clone, PartialEq)]
pub struct UseRust {
    pub path: StrLit,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LetStmt {
    pub name: Name,
    pub pipeline: Pipeline,
    pub span: Span,
}

/// `head | stage | stage …`
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub head: PipeHead,
    pub stages: Vec<Stage>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PipeHead {
    /// `source kafka { … }`
    Source(Connector),
    /// `from clicks`: continue a stream bound with `let`.
    From(Name),
}

/// A connector or window: a kind, its settings, and operator attributes.
/// `source kafka { topic: "input" } name "ClickEvent Source"`
#[derive(Debug, Clone, PartialEq)]
pub struct Connector {
    pub kind: Name,
    pub props: Option<Props>,
    pub attrs: Attrs,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub kind: StageKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StageKind {
    /// `watermark timestamp { out_of_orderness: 200ms, idleness: 5s }`
    Watermark { field: Name, props: Option<Props>, attrs: Attrs },
    /// `filter page != "/help"`
    Filter { predicate: Expr, attrs: Attrs },
    /// `map { page: upper(page) }`: keeps every field, adds or replaces these.
    Map { fields: Vec<RecordField>, attrs: Attrs },
    /// `select { page, n: 1 }`: exactly these fields.
    Select { fields: Vec<RecordField>, attrs: Attrs },
    /// `key_by page`
    KeyBy { fields: Vec<Name> },
    /// `window tumbling { size: 15s }`
    Window(Connector),
    /// `aggregate { page, count: count() }`
    Aggregate { fields: Vec<RecordField>, attrs: Attrs },
    /// `sink kafka { topic: "output" }`
    Sink(Connector),
    /// `dedup id within 1h`: the first record per key; `dedup id keep
    /// last`: the latest. `keep` is what follows `keep`, if written (the
    /// checker judges it).
    Dedup { fields: Vec<Name>, within: Option<Expr>, keep: Option<Name>, attrs: Attrs },
    /// `union clicks2, clicks3`: the current stream and these, merged.
    Union { streams: Vec<Name>, attrs: Attrs },
    /// `join impressions on imp_id == impressions.imp_id within -10m, 0s`
    Join(Box<JoinStage>),
    /// `top 3 by views desc as rnk`
    Top(TopStage),
    /// `versioned by id`: the stream is a changelog keyed by these fields
    /// (the right side of a temporal join).
    Versioned { fields: Vec<Name> },
    /// `unnest tags as tag`: one record per element of an array field.
    Unnest(UnnestStage),
}

/// `[left] unnest <array field> as <element field> <attrs>`
#[derive(Debug, Clone, PartialEq)]
pub struct UnnestStage {
    /// `left unnest`: a record whose array is empty or null is kept once,
    /// its element null (Flink SQL's `LEFT JOIN UNNEST … ON TRUE`).
    pub left_outer: bool,
    /// The array field.
    pub field: Name,
    /// The name of the element field.
    pub alias: Name,
    /// `with ordinality [as pos]`: the name of the field of each element's
    /// 1-based position (`ordinality` when not given, at the keyword).
    pub ordinality: Option<Name>,
    pub attrs: Attrs,
}

/// `[left] join <stream> [as of <time>] on <condition> [<bound>] <attrs>`
#[derive(Debug, Clone, PartialEq)]
pub struct JoinStage {
    /// `left join`: every left row is emitted, matched or not.
    pub left_outer: bool,
    /// The right input: a stream bound with `let`.
    pub right: Name,
    /// `as of ts`: a temporal join, at the left row's time.
    pub as_of: Option<Expr>,
    /// `imp_id == impressions.imp_id [and …]`
    pub on: Expr,
    pub bound: Option<JoinBound>,
    /// `{ late: late_clicks }` after the bound: the join's settings.
    pub props: Option<Props>,
    pub attrs: Attrs,
}

/// What bounds a join's state.
#[derive(Debug, Clone, PartialEq)]
pub enum JoinBound {
    /// `within lower, upper`: the right row's time in `[left + lower, left + upper]`.
    Within { lower: Expr, upper: Expr, span: Span },
    /// `window tumbling { size: 10s }`: both rows in the same window.
    Window(Connector),
}

/// `top N by field [desc|asc][, field [desc|asc]…] [as rank]`: the first
/// N rows of each window (or, after `key_by`, of each key) by `field`
/// (descending unless `asc`), with their rank.
#[derive(Debug, Clone, PartialEq)]
pub struct TopStage {
    /// How many rows: a constant expression.
    pub count: Expr,
    pub field: Name,
    /// `desc` (the default) or `asc`, where written.
    pub order: Option<Name>,
    /// Further sort fields, each with its order where written: ties of
    /// the first are ranked by these.
    pub then_by: Vec<(Name, Option<Name>)>,
    /// `per category, region`: the fields the rows of a window are ranked
    /// within (Flink SQL's `PARTITION BY window_start, window_end, …`).
    pub per: Vec<Name>,
    /// The rank field's name, if not `rank`.
    pub rank: Option<Name>,
    pub attrs: Attrs,
}

impl TopStage {
    pub fn descending(&self) -> bool {
        self.order.as_ref().is_none_or(|o| o.text == "desc")
    }
}

/// `{ key: value, … }` settings of a connector, watermark or window.
#[derive(Debug, Clone, PartialEq)]
pub struct Props {
    pub entries: Vec<Prop>,
    pub span: Span,
}

impl Props {
    pub fn get(&self, key: &str) -> Option<&Prop> {
        self.entries.iter().find(|p| p.key.text == key)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Prop {
    pub key: Name,
    pub value: Expr,
    pub span: Span,
}

/// `name: expr`, or just `name` for `name: name`.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordField {
    pub name: Name,
    pub value: Option<Expr>,
    pub span: Span,
}

/// `name "…" uid "…" parallelism N`, in the order written.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Attrs {
    pub items: Vec<Attr>,
}

impl Attrs {
    pub fn name(&self) -> Option<&StrLit> {
        self.items.iter().find_map(|a| match a {
            Attr::Name(s) => Some(s),
            _ => None,
        })
    }
    pub fn uid(&self) -> Option<&StrLit> {
        self.items.iter().find_map(|a| match a {
            Attr::Uid(s) => Some(s),
            _ => None,
        })
    }
    pub fn parallelism(&self) -> Option<&Expr> {
        self.items.iter().find_map(|a| match a {
            Attr::Parallelism(e) => Some(e),
            _ => None,
        })
    }
    pub fn ttl(&self) -> Option<&Expr> {
        self.items.iter().find_map(|a| match a {
            Attr::Ttl(e) => Some(e),
            _ => None,
        })
    }
    pub fn on_error(&self) -> Option<&Name> {
        self.items.iter().find_map(|a| match a {
            Attr::OnError(n) => Some(n),
            _ => None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    Name(StrLit),
    Uid(StrLit),
    Parallelism(Expr),
    /// `ttl 1d`: keyed state not updated for that long is removed.
    Ttl(Expr),
    /// `on_error skip`: what the stage does with a record its expressions
    /// fail on (`fail`, `skip`, `dead_letter`).
    OnError(Name),
}

impl Attr {
    pub fn keyword(&self) -> &'static str {
        match self {
            Attr::Name(_) => "name",
            Attr::Uid(_) => "uid",
            Attr::Parallelism(_) => "parallelism",
            Attr::Ttl(_) => "ttl",
            Attr::OnError(_) => "on_error",
        }
    }
    pub fn span(&self) -> Span {
        match self {
            Attr::Name(s) | Attr::Uid(s) => s.span,
            Attr::Parallelism(e) | Attr::Ttl(e) => e.span,
            Attr::OnError(n) => n.span,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Duration(Duration),
    /// `none`: a setting that is switched off.
    None,
    /// `null`: SQL's `NULL`, typed by where it stands (the checker).
    Null,
    /// A field of the record (or, in settings, a symbol such as `earliest`).
    Ident(String),
    /// `$bootstrap.servers`
    Param(String),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    Call(Name, Vec<Expr>),
    /// `x is null`, or with `true`, `x is not null`.
    IsNull(Box<Expr>, bool),
    /// `cast(x as long)`: the value and the type's name.
    Cast(Box<Expr>, Name),
    /// `["a", "b"]`: a list, a setting's value only.
    List(Vec<Expr>),
    /// `count() where price < 10000`: an aggregate call (the first) over
    /// the rows where the condition (the second) holds.
    Where(Box<Expr>, Box<Expr>),
}

/// A duration literal as written: `200ms`, `15s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration {
    pub value: u64,
    pub unit: DurationUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationUnit {
    Millis,
    Seconds,
    Minutes,
    Hours,
    Days,
}

impl DurationUnit {
    pub fn suffix(self) -> &'static str {
        match self {
            DurationUnit::Millis => "ms",
            DurationUnit::Seconds => "s",
            DurationUnit::Minutes => "m",
            DurationUnit::Hours => "h",
            DurationUnit::Days => "d",
        }
    }
    pub fn millis(self) -> u64 {
        match self {
            DurationUnit::Millis => 1,
            DurationUnit::Seconds => 1_000,
            DurationUnit::Minutes => 60_000,
            DurationUnit::Hours => 3_600_000,
            DurationUnit::Days => 86_400_000,
        }
    }
}

impl Duration {
    /// The duration in milliseconds, or `None` if it overflows.
    pub fn as_millis(self) -> Option<u64> {
        self.value.checked_mul(self.unit.millis())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Not,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "or",
            BinaryOp::And => "and",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
        }
    }

    /// Binding strength: higher binds tighter. `if` is 0, unary ops 6.
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And => 2,
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => 3,
            BinaryOp::Add | BinaryOp::Sub => 4,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => 5,
        }
    }

    pub fn is_comparison(self) -> bool {
        self.precedence() == 3
    }
}
