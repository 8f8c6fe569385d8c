//! Field paths where a stage names a field rather than computes one: the
//! key of `key_by` and `dedup`, the event time of `watermark`, the order
//! of `top … by`. A nested record's fields are flattened into fields named
//! by their path (`payload.user.id`, see `schemas`), so a path that names
//! a field is found as it is, already a column of the record: nothing is
//! walked per record. This module says why a path names no field — the
//! segment that is no field of its record (with a did-you-mean among that
//! record's fields), a path through a value that is no record, or a path
//! that stops at a record — in the words of the stage that named it.

use crate::ir::Schema;
use flowc_dsl::ast::Name;
use flowc_dsl::diagnostic::suggest;
use flowc_dsl::{Diagnostic, Span};

/// Why `name`, which is no field of `schema`, names none, when it is a path
/// (`payload.usr.id`) or names a nested record (`payload`); `None` for a
/// plain name that is no field, which each stage reports in its own words.
/// `doing` is what the stage would do with the field: "key by", "rank by",
/// "take the event time from".
pub(super) fn why_not_a_field(schema: &Schema, name: &Name, doing: &str) -> Option<Diagnostic> {
    let text = name.text.as_str();
    if !text.contains('.') {
        return is_record(schema, text).then(|| record_not_value(schema, name, doing));
    }
    // Walk the path: `prefix` is the record reached so far ("" at the top).
    let mut prefix = String::new();
    let mut offset = 0;
    let segments: Vec<&str> = text.split('.').collect();
    for (i, segment) in segments.iter().enumerate() {
        let path = format!("{prefix}{segment}");
        let at = Span::new(name.span.start + offset, name.span.start + offset + segment.len());
        let last = i + 1 == segments.len();
        if let Some(f) = schema.fields.iter().find(|f| f.name == path) {
            // Only a value's path can end here, and this one goes on.
            let rest = Span::new(at.end, name.span.end);
            return (!last).then(|| {
                Diagnostic::error(
                    "flow::check::type",
                    format!("cannot {doing} `{text}`: `{path}` is {}, not a record", f.ty),
                    rest,
                )
                .with_label(format!("`{path}` has no fields"))
                .with_secondary(Span::new(name.span.start, at.end), format!("this is {}", f.ty))
                .with_help(format!("{doing} `{path}` itself"))
            });
        }
        if !is_record(schema, &path) {
            let fields = fields_of(schema, &prefix);
            let (message, label) = match prefix.strip_suffix('.') {
                Some(record) => (
                    format!("cannot {doing} `{text}`: `{record}` has no field `{segment}`"),
                    format!("not a field of `{record}`"),
                ),
                None => (format!("cannot {doing} `{text}`: no such field"), "not a field of the input".to_string()),
            };
            let d = Diagnostic::error("flow::check::unknown-field", message, at).with_label(label);
            return Some(match suggest(segment, fields.iter().copied()) {
                Some(s) => d.with_help(format!("did you mean `{prefix}{s}`?")),
                None => d.with_help(format!("the fields are: {}", fields.join(", "))),
            });
        }
        if last {
            return Some(record_not_value(schema, name, doing));
        }
        prefix = format!("{path}.");
        offset += segment.len() + 1;
    }
    None
}

/// Whether `path` is a nested record of `schema`: some field's path goes
/// on from it.
fn is_record(schema: &Schema, path: &str) -> bool {
    let below = format!("{path}.");
    schema.fields.iter().any(|f| f.name.starts_with(&below))
}

/// The names of the fields right inside the record `prefix` (`payload.`;
/// "" for the top), records among them, in the schema's order.
fn fields_of<'s>(schema: &'s Schema, prefix: &str) -> Vec<&'s str> {
    let mut out: Vec<&str> = Vec::new();
    for f in &schema.fields {
        let Some(rest) = f.name.strip_prefix(prefix) else { continue };
        let first = rest.split('.').next().unwrap_or(rest);
        if !out.contains(&first) {
            out.push(first);
        }
    }
    out
}

/// `key_by payload`: a record is no value to key, order or time by.
fn record_not_value(schema: &Schema, name: &Name, doing: &str) -> Diagnostic {
    let prefix = format!("{}.", name.text);
    let inside: Vec<String> = fields_of(schema, &prefix).iter().map(|f| format!("`{prefix}{f}`")).collect();
    Diagnostic::error(
        "flow::check::type",
        format!("cannot {doing} `{}`: it is a nested record, not a value", name.text),
        name.span,
    )
    .with_label("a record")
    .with_help(format!("name one of its fields: {}", inside.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{DataType, Field};

    fn schema() -> Schema {
        let nested = |name: &str, ty| {
            let mut f = Field::new(name, ty);
            f.nested = true;
            f
        };
        Schema {
            name: Some("Event".into()),
            fields: vec![
                Field::new("id", DataType::Long),
                nested("payload.user.id", DataType::String),
                nested("payload.user.name", DataType::String),
                nested("payload.price", DataType::Long),
            ],
        }
    }

    fn why(text: &str) -> Option<Diagnostic> {
        why_not_a_field(&schema(), &Name { text: text.into(), span: Span::new(10, 10 + text.len()) }, "key by")
    }

    #[test]
    fn an_unknown_segment_is_pointed_at_with_a_did_you_mean() {
        let d = why("payload.usr.id").expect("a diagnostic");
        assert_eq!(d.code, "flow::check::unknown-field");
        assert_eq!(d.message, "cannot key by `payload.usr.id`: `payload` has no field `usr`");
        assert_eq!(d.span, Some(Span::new(18, 21)));
        assert_eq!(d.help.as_deref(), Some("did you mean `payload.user`?"));
        let d = why("paylod.price").expect("a diagnostic");
        assert_eq!(d.message, "cannot key by `paylod.price`: no such field");
        assert_eq!(d.help.as_deref(), Some("did you mean `payload`?"));
        let d = why("payload.user.xyz").expect("a diagnostic");
        assert_eq!(d.help.as_deref(), Some("the fields are: id, name"));
    }

    #[test]
    fn a_path_through_a_value_or_to_a_record_is_a_type_error() {
        let d = why("id.x").expect("a diagnostic");
        assert_eq!(
            (d.code, d.message.as_str()),
            ("flow::check::type", "cannot key by `id.x`: `id` is long, not a record")
        );
        let d = why("payload.user").expect("a diagnostic");
        assert_eq!(d.message, "cannot key by `payload.user`: it is a nested record, not a value");
        assert_eq!(d.help.as_deref(), Some("name one of its fields: `payload.user.id`, `payload.user.name`"));
        assert!(why("payload").is_some());
    }

    #[test]
    fn a_plain_unknown_name_is_left_to_the_stage() {
        assert!(why("ids").is_none());
    }
}
