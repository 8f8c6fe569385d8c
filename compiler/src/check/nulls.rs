//! Where a nullable value cannot go: a key (a null key has no key group)
//! and the field a watermark reads (a record needs an event time). One
//! diagnostic for both, with the way out: `coalesce`.

use flowc_dsl::{Diagnostic, Span};

/// `field` is nullable where `role` ("a key", "a watermark") needs a value.
pub(super) fn refused(role: &str, field: &str, span: Span, example_default: &str) -> Diagnostic {
    Diagnostic::error("flow::check::nullable", format!("`{field}` may be null and cannot be {role}"), span)
        .with_label(format!("`{field}` is nullable"))
        .with_help(format!(
            "give it a value where it is null first: `| map {{ {field}: coalesce({field}, {example_default}) }}`"
        ))
}

/// A default of `ty` to show in the help.
pub(super) fn example_default(ty: crate::ir::DataType) -> &'static str {
    use crate::ir::DataType as T;
    match ty {
        T::String => "\"unknown\"",
        T::Int | T::Long => "0",
        T::Double => "0.0",
        T::Bool => "false",
        T::Timestamp => "to_timestamp(0)",
        T::Array(_) => "split(\"\", \",\")",
    }
}
