//! What can go wrong evaluating an expression, and where: the place in the
//! job file (from the plan's [`JobSource`]) and the record.

use crate::codec::json::JsonEncoder;
use crate::data::Batch;
use flowc_compiler::graph::JobSource;
use flowc_compiler::ir::{Schema, SourceSpan};
use flowc_dsl::span::LineIndex;
use std::fmt;
use std::sync::Arc;

/// Where an expression is written: file, 1-based line and column, and
/// its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub text: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` at {}:{}:{}", self.text, self.file, self.line, self.column)
    }
}

/// Turns the plan's source spans into locations, and knows the UDFs a
/// task calls: what an expression of the plan refers to besides its input.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    source: Option<(JobSource, LineIndex)>,
    /// Per UDF library of the plan: its functions and how this task calls them.
    udfs: Vec<(Vec<flowc_compiler::udf::UdfSignature>, Arc<crate::udf::Backend>)>,
}

impl SourceMap {
    pub fn new(source: Option<&JobSource>) -> SourceMap {
        SourceMap { source: source.map(|s| (s.clone(), LineIndex::new(&s.text))), udfs: Vec::new() }
    }

    /// The same, calling the plan's UDF libraries through `backends` (one per library).
    pub fn with_udfs(
        mut self,
        libraries: &[flowc_compiler::ir::UdfLibrary],
        backends: Vec<Arc<crate::udf::Backend>>,
    ) -> SourceMap {
        self.udfs = libraries.iter().map(|l| l.functions.clone()).zip(backends).collect();
        self
    }

    /// The function a UDF call names, ready to call.
    pub fn udf(&self, r: flowc_compiler::ir::UdfRef) -> Option<super::udf::UdfFunction> {
        let (functions, backend) = self.udfs.get(r.library as usize)?;
        let signature = functions.get(r.function as usize)?.clone();
        Some(super::udf::UdfFunction { signature, index: r.function, backend: backend.clone() })
    }

    /// The location of `span`; `None` when the plan has no source.
    pub fn locate(&self, span: SourceSpan) -> Option<Arc<Location>> {
        let (src, index) = self.source.as_ref()?;
        let lc = index.line_col(&src.text, span.start as usize);
        let text = src.text.get(span.start as usize..span.end as usize).unwrap_or("").to_string();
        // Multi-line expressions are shown on one line.
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        Some(Arc::new(Location { file: src.name.clone(), line: lc.line, column: lc.col, text }))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    DivisionByZero,
    /// An integer result out of the range of a long.
    Overflow,
    /// An `int` result (of `int` operands) out of the range of an int.
    IntOverflow,
    /// A failure of a function (the function's own message).
    Function(String),
    /// Something the checker rules out happened: a bug in flowc.
    Internal(String),
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::DivisionByZero => f.write_str("division by zero"),
            ErrorKind::Overflow => f.write_str("integer overflow (the result is out of the range of a long)"),
            ErrorKind::IntOverflow => f.write_str("integer overflow (the result is out of the range of an int)"),
            ErrorKind::Function(m) => f.write_str(m),
            ErrorKind::Internal(m) => write!(f, "internal error: {m} (this is a bug in flowc)"),
        }
    }
}

/// An evaluation failed on record `row` of the batch it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError {
    pub kind: ErrorKind,
    pub row: Option<usize>,
    pub location: Option<Arc<Location>>,
}

impl EvalError {
    pub fn at(kind: ErrorKind, row: usize, location: Option<Arc<Location>>) -> EvalError {
        EvalError { kind, row: Some(row), location }
    }

    pub fn internal(m: impl Into<String>) -> EvalError {
        EvalError { kind: ErrorKind::Internal(m.into()), row: None, location: None }
    }

    /// The message for the task's failure: what, where in the job file,
    /// and the record (as JSON by `schema`), e.g. ``division by zero in
    /// `10 / x` at job.flow:4:27, record {"x":0}``.
    pub fn describe(&self, batch: &Batch, schema: &Schema) -> String {
        let mut m = self.kind.to_string();
        if let Some(l) = &self.location {
            m.push_str(&format!(" in {l}"));
        }
        if let Some(r) = self.row.filter(|r| *r < batch.len()) {
            let mut json = Vec::new();
            JsonEncoder::new(schema).encode_row(batch, r, &mut json);
            m.push_str(", record ");
            m.push_str(&String::from_utf8_lossy(&json));
        }
        m
    }
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(l) = &self.location {
            write!(f, " in {l}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_spans_in_the_job_file() {
        let text = "job \"x\"\nsource datagen { schema: N }\n    | filter  10 /\n  n > 1\n";
        let src = JobSource { name: "x.flow".into(), text: text.into() };
        let map = SourceMap::new(Some(&src));
        let start = text.find("10").expect("in text");
        let end = text.find("n >").expect("in text") + 1;
        let l = map.locate(SourceSpan::new(start, end)).expect("located");
        assert_eq!(
            *l,
            Location { file: "x.flow".into(), line: 3, column: 15, text: "10 / n".into() },
            "multi-line text shown on one line"
        );
        assert_eq!(l.to_string(), "`10 / n` at x.flow:3:15");
        assert!(SourceMap::new(None).locate(SourceSpan::new(0, 1)).is_none());
        // Spans past the end do not panic.
        assert!(map.locate(SourceSpan::new(1000, 2000)).is_some());
    }
}
