//! Where the fields of a schema sit in a JSON object: at the top, or in
//! nested objects for the fields of a nested record (`payload: { user: {
//! id: long } }`, which the checker flattens into the field
//! `payload.user.id`, marked `nested`).
//!
//! The decoder walks a tree of keys ([`tree`]); the encoder follows a flat
//! plan of steps that open and close the nested objects around the fields
//! ([`encode_plan`]). A schema without nested records is a tree of leaves
//! and a plan of fields, so it is read and written as before.

use flowc_compiler::ir::Schema;

/// A key of a JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// The field at this index of the schema.
    Leaf(usize),
    /// A nested object, with its keys.
    Group(Vec<(String, Node)>),
}

/// One step of writing a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeStep {
    /// Opens a nested object under this key (already written as `"key":`).
    Open(String),
    /// Closes the innermost nested object.
    Close,
    /// The field at this index, under this key (`"key":`).
    Field(usize, String),
}

/// The path of field `name`: its segments if nested, else itself.
fn path(name: &str, nested: bool) -> Vec<&str> {
    if nested {
        name.split('.').collect()
    } else {
        vec![name]
    }
}

/// The keys of the top-level object of `schema`'s records.
pub fn tree(schema: &Schema) -> Vec<(String, Node)> {
    let mut root: Vec<(String, Node)> = Vec::new();
    for (i, f) in schema.fields.iter().enumerate() {
        let segments = path(&f.name, f.nested);
        let Some((last, groups)) = segments.split_last() else { continue };
        let mut level = &mut root;
        for g in groups {
            let at = match level.iter().position(|(k, n)| k.as_str() == *g && matches!(n, Node::Group(_))) {
                Some(at) => at,
                None => {
                    level.push((g.to_string(), Node::Group(Vec::new())));
                    level.len() - 1
                }
            };
            level = match &mut level[at].1 {
                Node::Group(children) => children,
                // Found or made as a group just above.
                Node::Leaf(_) => return root_of_leaves(schema),
            };
        }
        level.push((last.to_string(), Node::Leaf(i)));
    }
    root
}

/// Every field at the top under its own name: what a schema whose
/// nested names clash (which the checker does not let through) reads as.
fn root_of_leaves(schema: &Schema) -> Vec<(String, Node)> {
    schema.fields.iter().enumerate().map(|(i, f)| (f.name.clone(), Node::Leaf(i))).collect()
}

/// The steps that write `schema`'s records, each key made by `key` (the
/// escaped `"name":`). Fields of one nested record are written in one
/// object when they are next to each other, as the checker lays them out.
pub fn encode_plan(schema: &Schema, key: impl Fn(&str) -> String) -> Vec<EncodeStep> {
    let mut plan = Vec::with_capacity(schema.fields.len());
    let mut open: Vec<&str> = Vec::new();
    for (i, f) in schema.fields.iter().enumerate() {
        let segments = path(&f.name, f.nested);
        let Some((last, groups)) = segments.split_last() else { continue };
        let common = open.iter().zip(groups.iter()).take_while(|(a, b)| a == b).count();
        for _ in common..open.len() {
            plan.push(EncodeStep::Close);
        }
        open.truncate(common);
        for g in &groups[common..] {
            plan.push(EncodeStep::Open(key(g)));
            open.push(g);
        }
        plan.push(EncodeStep::Field(i, key(last)));
    }
    for _ in 0..open.len() {
        plan.push(EncodeStep::Close);
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowc_compiler::ir::{DataType, Field};

    fn nested(name: &str) -> Field {
        Field { nested: true, ..Field::new(name, DataType::Long) }
    }

    #[test]
    fn nested_fields_sit_in_nested_objects_and_flat_ones_at_the_top() {
        let s = Schema {
            name: None,
            fields: vec![
                Field::new("id", DataType::Long),
                nested("payload.user.id"),
                nested("payload.user.name"),
                nested("payload.kind"),
                // A join's qualified name is not nested.
                Field::new("clicks.ts", DataType::Long),
            ],
        };
        let leaf = |k: &str, i| (k.to_string(), Node::Leaf(i));
        assert_eq!(
            tree(&s),
            vec![
                leaf("id", 0),
                (
                    "payload".into(),
                    Node::Group(vec![
                        ("user".into(), Node::Group(vec![leaf("id", 1), leaf("name", 2)])),
                        leaf("kind", 3)
                    ])
                ),
                leaf("clicks.ts", 4),
            ]
        );
        use EncodeStep as S;
        let k = |s: &str| s.to_string();
        assert_eq!(
            encode_plan(&s, k),
            vec![
                S::Field(0, k("id")),
                S::Open(k("payload")),
                S::Open(k("user")),
                S::Field(1, k("id")),
                S::Field(2, k("name")),
                S::Close,
                S::Field(3, k("kind")),
                S::Close,
                S::Field(4, k("clicks.ts")),
            ]
        );
    }
}
