//! The types a UDF's parameters and result may have, as Rust spells them
//! and as flowc sees them. These travel in the plan: the runtime converts
//! columns to exactly these Rust types at the call.

use crate::ir::DataType;
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

/// A parameter's or result's type: a Rust type, perhaps in an `Option`.
///
/// flowc has no nullable types yet: an `Option` parameter always gets
/// `Some`, and a `None` result fails the call with an error that names
/// the function (and the task with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UdfType {
    pub rust: RustType,
    pub optional: bool,
}

impl UdfType {
    pub fn data_type(self) -> DataType {
        self.rust.data_type()
    }
}

impl fmt::Display for UdfType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.optional {
            write!(f, "Option<{}>", self.rust.rust())
        } else {
            f.write_str(self.rust.rust())
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
