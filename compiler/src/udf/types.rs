//! The types a UDF's parameters and result may have, as Rust spells them
//! and as flowc sees them. These travel in the plan: the runtime converts
//! columns to exactly these Rust types at the call.

use crate::ir::{DataType, Elem, UdfRef};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A Rust type flowc can pass to or take from a UDF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RustType {
    I32,
    I64,
    F64,
    Bool,
    /// `String`, owned.
    String,
    /// `&str`, borrowed from the argument column (parameters only).
    Str,
    /// `chrono::DateTime<chrono::Utc>`.
    DateTimeUtc,
    /// `chrono::NaiveDateTime`, read as UTC.
    NaiveDateTime,
}

impl RustType {
    /// The flowc type of values of this Rust type.
    pub fn data_type(self) -> DataType {
        match self {
            RustType::I32 => DataType::Int,
            RustType::I64 => DataType::Long,
            RustType::F64 => DataType::Double,
            RustType::Bool => DataType::Bool,
            RustType::String | RustType::Str => DataType::String,
            RustType::DateTimeUtc | RustType::NaiveDateTime => DataType::Timestamp,
        }
    }

    /// How the type is written in Rust.
    pub fn rust(self) -> &'static str {
        match self {
            RustType::I32 => "i32",
            RustType::I64 => "i64",
            RustType::F64 => "f64",
            RustType::Bool => "bool",
            RustType::String => "String",
            RustType::Str => "&str",
            RustType::DateTimeUtc => "chrono::DateTime<chrono::Utc>",
            RustType::NaiveDateTime => "chrono::NaiveDateTime",
        }
    }

    pub fn is_chrono(self) -> bool {
        matches!(self, RustType::DateTimeUtc | RustType::NaiveDateTime)
    }
}

/// A parameter's or result's type: a Rust type or a `Vec` of them
/// (`list`), perhaps in an `Option`.
///
/// An `Option` parameter gets `None` for a null argument (the function is
/// called on that row); a plain one is never called with a null: the
/// result is null there (Flink's `ScalarFunction` with `long` vs `Long`).
/// An `Option` result is a nullable value, `None` a null.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UdfType {
    /// The value's type; an element's, for a `Vec`.
    pub rust: RustType,
    pub optional: bool,
    /// A `Vec` of `rust` (`array<T>`), and whether its elements are
    /// `Option`s (`Vec<Option<T>>`, `array<T?>`); `None` for a scalar.
    #[serde(default)]
    pub list: Option<ListOf>,
}

/// The elements of a `Vec` parameter or result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ListOf {
    /// `Vec<Option<T>>`: an element may be null.
    pub nulls: bool,
}

impl UdfType {
    /// A plain scalar `rust`.
    pub fn scalar(rust: RustType) -> UdfType {
        UdfType { rust, optional: false, list: None }
    }

    pub fn data_type(self) -> DataType {
        let ty = self.rust.data_type();
        match (self.list, Elem::of(ty)) {
            (Some(l), Some(e)) => DataType::Array(e.with_nulls(l.nulls)),
            _ => ty,
        }
    }
}

impl fmt::Display for UdfType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = match self.list {
            None => self.rust.rust().to_string(),
            Some(ListOf { nulls: false }) => format!("Vec<{}>", self.rust.rust()),
            Some(ListOf { nulls: true }) => format!("Vec<Option<{}>>", self.rust.rust()),
        };
        if self.optional {
            write!(f, "Option<{inner}>")
        } else {
            f.write_str(&inner)
        }
    }
}

/// A function of a Rust file that flowc can call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UdfSignature {
    pub name: String,
    pub params: Vec<UdfParam>,
    pub ret: UdfType,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UdfParam {
    pub name: String,
    pub ty: UdfType,
}

impl UdfSignature {
    /// How an expression refers to this function, function `function` of
    /// library `library`, with the nulls it takes and returns.
    pub fn at(&self, library: u32, function: u32) -> UdfRef {
        let takes_nulls =
            self.params.iter().take(64).enumerate().filter(|(_, p)| p.ty.optional).fold(0u64, |m, (i, _)| m | 1 << i);
        UdfRef { library, function, null_result: self.ret.optional, takes_nulls }
    }
}

impl fmt::Display for UdfSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fn {}(", self.name)?;
        for (i, p) in self.params.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}: {}", p.name, p.ty)?;
        }
        write!(f, ") -> {}", self.ret)
    }
}
