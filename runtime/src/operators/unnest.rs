//! `[left] unnest tags as tag`: one record per element of an array field
//! (Flink SQL's `CROSS JOIN UNNEST`, `LEFT JOIN UNNEST … ON TRUE` with
//! `left`). Stateless; the output holds the input's other fields in order,
//! then the element, and each record keeps its event time.
//!
//! A batch at a time: the array column's element column *is* the output's
//! element column when every record has at least one element (it is moved,
//! not copied); the other columns are gathered once, each input row
//! repeated once per element. Only a `left unnest` of empty or null arrays
//! builds the element column value by value, to put its nulls in. With
//! `with ordinality`, a last column holds each element's 1-based position
//! (null for such a record of no element).

use super::{Operator, OperatorError};
use crate::data::{Batch, Column, Data, ListColumn};
use flowc_compiler::ir::{DataType, Schema, Unnest};

pub struct UnnestOperator {
    name: String,
    spec: Unnest,
    /// The element type.
    element: DataType,
}

impl UnnestOperator {
    pub fn new(name: String, spec: Unnest, input: &Schema) -> Result<UnnestOperator, OperatorError> {
        let element =
            input.fields.get(spec.field).and_then(|f| f.ty.element()).ok_or_else(|| OperatorError::Setup {
                operator: name.clone(),
                message: format!("field #{} is no array (a bug in flowc)", spec.field),
            })?;
        Ok(UnnestOperator { name, spec, element })
    }

    fn bug(&self, what: &str) -> OperatorError {
        OperatorError::Setup { operator: self.name.clone(), message: format!("{what} (a bug in flowc)") }
    }
}

impl Operator for UnnestOperator {
    fn process(&mut self, mut input: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        if self.spec.field >= input.columns.len() {
            return Err(self.bug("the array field is not in the batch"));
        }
        let arrays = input.columns.remove(self.spec.field);
        let Data::List(list) = arrays.data else { return Err(self.bug("the array field is no array column")) };
        // rows[o]: the input row of output row o; element[o]: its element, or None (left unnest's null).
        let mut rows: Vec<u32> = Vec::with_capacity(list.values().len());
        let mut padded = false;
        for r in 0..list.len() {
            let count = if arrays.validity.as_ref().is_none_or(|v| v.get(r)) { list.count(r) } else { 0 };
            let times = if count == 0 && self.spec.left_outer {
                padded = true;
                1
            } else {
                count
            };
            rows.extend(std::iter::repeat_n(r as u32, times));
        }
        if rows.is_empty() {
            return Ok(());
        }
        let positions = self.spec.ordinality.then(|| ordinals(&rows, arrays.validity.as_ref(), &list));
        // Null rows may hold elements only in a batch from elsewhere; skip them too.
        let holds_all = !padded && arrays.validity.is_none();
        let elements = if holds_all {
            list.into_values()
        } else {
            let mut c = Column::empty(self.element, rows.len());
            let mut last = None;
            let mut next = 0;
            for &r in &rows {
                let r = r as usize;
                if last != Some(r) {
                    last = Some(r);
                    next = list.range(r).0;
                }
                let (_, end) = list.range(r);
                let valid = arrays.validity.as_ref().is_none_or(|v| v.get(r));
                if valid && next < end {
                    if !c.push_value(list.values().value_ref(next).unwrap_or(crate::data::ValueRef::Null)) {
                        return Err(self.bug("an element of another type"));
                    }
                    next += 1;
                } else {
                    c.push_null();
                }
            }
            c
        };
        let mut columns: Vec<Column> = input.columns.iter().map(|c| c.gather(&rows)).collect();
        columns.push(elements);
        columns.extend(positions);
        let timestamps = rows.iter().map(|&r| input.timestamps.get(r as usize).copied().unwrap_or(i64::MIN)).collect();
        // Each row comes from one input record: it keeps that record's origin.
        let mut batch = Batch::new(timestamps, columns);
        batch.origins = input.origins.as_ref().map(|o| o.gather(&rows));
        out.push(batch);
        Ok(())
    }
}

/// The 1-based position of each output row's element (`rows[o]`: its
/// input row) in its array; null for a row of no element (a `left
/// unnest` of an empty or null array).
fn ordinals(rows: &[u32], validity: Option<&crate::data::Validity>, list: &ListColumn) -> Column {
    let mut c = Column::empty(DataType::Long, rows.len());
    let mut last = None;
    let mut k = 0i64;
    for &r in rows {
        if last != Some(r) {
            last = Some(r);
            k = 0;
        }
        k += 1;
        let has = validity.is_none_or(|v| v.get(r as usize)) && list.count(r as usize) > 0;
        if has {
            c.push_value(crate::data::ValueRef::Int(k));
        } else {
            c.push_null();
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Value;
    use flowc_compiler::ir::{Elem, Field};

    fn schema() -> Schema {
        Schema {
            name: None,
            fields: vec![
                Field::new("id", DataType::Long),
                Field::new("tags", DataType::Array(Elem::STRING)).with_nullable(true),
                Field::new("page", DataType::String),
            ],
        }
    }

    fn batch() -> Batch {
        let tags = |t: &[&str]| Value::Array(t.iter().map(|s| Value::Str(s.to_string())).collect());
        let rows = vec![
            (10, vec![Value::Int(1), tags(&["a", "b"]), Value::Str("/x".into())]),
            (20, vec![Value::Int(2), tags(&[]), Value::Str("/y".into())]),
            (30, vec![Value::Int(3), Value::Null, Value::Str("/z".into())]),
            (40, vec![Value::Int(4), tags(&["c"]), Value::Str("/w".into())]),
        ];
        let types: Vec<DataType> = schema().fields.iter().map(|f| f.ty).collect();
        Batch::from_rows(&types, &rows).expect("fits")
    }

    fn run(left_outer: bool, input: Batch) -> Vec<(i64, Vec<Value>)> {
        run_with(Unnest { field: 1, left_outer, ordinality: false }, input)
    }

    fn run_with(spec: Unnest, input: Batch) -> Vec<(i64, Vec<Value>)> {
        let mut op = UnnestOperator::new("u".into(), spec, &schema()).expect("builds");
        let mut out = Vec::new();
        op.process(input, &mut out).expect("runs");
        out.iter().flat_map(Batch::rows).collect()
    }

    fn row(t: i64, id: i64, page: &str, tag: Option<&str>) -> (i64, Vec<Value>) {
        (t, vec![Value::Int(id), Value::Str(page.into()), tag.map_or(Value::Null, |s| Value::Str(s.into()))])
    }

    #[test]
    fn one_record_per_element_and_none_for_an_empty_or_null_array() {
        assert_eq!(
            run(false, batch()),
            vec![row(10, 1, "/x", Some("a")), row(10, 1, "/x", Some("b")), row(40, 4, "/w", Some("c"))]
        );
    }

    #[test]
    fn left_unnest_keeps_a_record_of_an_empty_or_null_array_with_a_null_element() {
        assert_eq!(
            run(true, batch()),
            vec![
                row(10, 1, "/x", Some("a")),
                row(10, 1, "/x", Some("b")),
                row(20, 2, "/y", None),
                row(30, 3, "/z", None),
                row(40, 4, "/w", Some("c")),
            ]
        );
    }

    #[test]
    fn with_ordinality_each_element_has_its_position_from_1() {
        let pos = |mut r: (i64, Vec<Value>), p: Option<i64>| {
            r.1.push(p.map_or(Value::Null, Value::Int));
            r
        };
        assert_eq!(
            run_with(Unnest { field: 1, left_outer: false, ordinality: true }, batch()),
            vec![
                pos(row(10, 1, "/x", Some("a")), Some(1)),
                pos(row(10, 1, "/x", Some("b")), Some(2)),
                pos(row(40, 4, "/w", Some("c")), Some(1)),
            ]
        );
        // A `left` record of no element has no position.
        assert_eq!(
            run_with(Unnest { field: 1, left_outer: true, ordinality: true }, batch()),
            vec![
                pos(row(10, 1, "/x", Some("a")), Some(1)),
                pos(row(10, 1, "/x", Some("b")), Some(2)),
                pos(row(20, 2, "/y", None), None),
                pos(row(30, 3, "/z", None), None),
                pos(row(40, 4, "/w", Some("c")), Some(1)),
            ]
        );
    }

    #[test]
    fn a_batch_of_no_element_emits_nothing() {
        let empty = batch().gather(&[1, 2]);
        assert!(run(false, empty).is_empty());
    }
}
