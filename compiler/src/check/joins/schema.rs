//! The output of a join: the left's fields then the right's, names on
//! both sides qualified by their side, a left outer join's right fields
//! nullable.

use crate::ir::*;

/// The left's fields then the right's; a name on both sides qualified by
/// its side's stream name. A left outer join's right fields are nullable:
/// an unmatched left row comes out with them null. Every field keeps the
/// qualifiers it had and gets its side's name (the left's: `left`, and the
/// left stream's name unless an earlier join qualified it), so that a later
/// stage may write `auctions.expires` for a field only one side has, as a
/// Flink SQL user writes `A.expires`.
pub(crate) fn joined_schema(
    left: &Schema,
    left_name: &str,
    right: &Schema,
    right_name: &str,
    left_outer: bool,
) -> Schema {
    let both = |n: &str, other: &Schema| other.fields.iter().any(|x| x.name == n);
    let mut fields = Vec::with_capacity(left.fields.len() + right.fields.len());
    for f in &left.fields {
        let mut f = f.clone();
        if both(&f.name, right) {
            f.name = format!("{left_name}.{}", f.name);
        }
        // After an earlier join, the left's stream name is no longer the
        // name of all its fields: `left` is.
        if f.qualifiers.0.is_empty() {
            f.qualifiers.add(left_name);
        }
        f.qualifiers.add("left");
        fields.push(f);
    }
    for f in &right.fields {
        let mut f = f.clone();
        if both(&f.name, left) {
            f.name = format!("{right_name}.{}", f.name);
        }
        f.qualifiers.add(right_name);
        f.nullable |= left_outer;
        fields.push(f);
    }
    Schema { name: None, fields }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(fields: &[(&str, DataType)]) -> Schema {
        Schema { name: None, fields: fields.iter().map(|(n, t)| Field::new(*n, *t)).collect() }
    }

    #[test]
    fn shared_names_are_qualified_by_side() {
        let l = schema(&[("id", DataType::Long), ("ts", DataType::Timestamp), ("page", DataType::String)]);
        let r = schema(&[("id", DataType::Long), ("ts", DataType::Timestamp), ("ad", DataType::String)]);
        let j = joined_schema(&l, "clicks", &r, "imps", false);
        let names: Vec<&str> = j.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["clicks.id", "clicks.ts", "page", "imps.id", "imps.ts", "ad"]);
        assert!(j.fields.iter().all(|f| !f.nullable));
        let outer = joined_schema(&l, "clicks", &r, "imps", true);
        let nullable: Vec<bool> = outer.fields.iter().map(|f| f.nullable).collect();
        assert_eq!(nullable, [false, false, false, true, true, true], "a left join's right fields may be null");
    }

    #[test]
    fn a_side_qualifies_its_fields_also_those_only_it_has() {
        let l = schema(&[("ts", DataType::Timestamp), ("page", DataType::String)]);
        let r = schema(&[("ts", DataType::Timestamp), ("campaign", DataType::String)]);
        let j = joined_schema(&l, "clicks", &r, "imps", false);
        assert_eq!(j.index_of("imps.campaign"), Some(3), "a field only the right has");
        assert_eq!(j.index_of("clicks.page"), Some(1));
        assert_eq!(j.index_of("left.page"), Some(1));
        assert_eq!(j.index_of("left.ts"), Some(0), "`left.ts` is `clicks.ts`");
        assert_eq!(j.index_of("imps.ts"), Some(2));
        assert_eq!(j.index_of("clicks.campaign"), None, "the left has no `campaign`");
        assert_eq!(j.index_of("ads.page"), None);
        assert_eq!(j.qualifiers(), ["clicks", "left", "imps"]);
        assert_eq!(j.fields_of("imps"), ["ts", "campaign"]);
        // Joined again: `clicks` no longer names the fields the first join's right gave.
        let u = schema(&[("user", DataType::String)]);
        let k = joined_schema(&j, "clicks", &u, "users", false);
        assert_eq!(k.index_of("imps.campaign"), Some(3));
        assert_eq!(k.index_of("clicks.campaign"), None);
        assert_eq!(k.index_of("left.campaign"), Some(3));
        assert_eq!(k.index_of("users.user"), Some(4));
        // Qualifiers are no part of a field's identity, nor of the plan.
        assert_eq!(j.fields[3], Field::new("campaign", DataType::String));
    }
}
