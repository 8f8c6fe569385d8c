//! A batch of records: their event times and one [`Column`] per field of
//! the schema, all of one length; on a changelog stream, the kind of
//! change each record stands for ([`RowKind`]); where a dead-lettering
//! stage follows, where each record came from ([`Origins`]).

use super::column::{stores, Column};
use super::origins::Origins;
use super::value::ValueRef;
use crate::record::{Value, NO_TIMESTAMP};
use flowc_compiler::ir::DataType;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch {
    /// Each record's event time in epoch milliseconds, [`NO_TIMESTAMP`]
    /// before a watermark stage has assigned one.
    pub timestamps: Vec<i64>,
    /// One column per field of the schema, in order.
    pub columns: Vec<Column>,
    /// The key hashes of the records, when a HASH edge computed them on
    /// the way here: an operator keyed by the same fields uses them
    /// instead of hashing again. Kept in step by every operation here, or
    /// dropped.
    pub hashes: Option<KeyHashes>,
    /// On a changelog stream (a running aggregate's output), the kind of
    /// each record; `None` is all [`RowKind::Insert`], so that append-only
    /// batches carry nothing. Kept in step by every operation here.
    pub kinds: Option<Vec<RowKind>>,
    /// Where each record was read and its bytes as read, when a stage of
    /// the job after its source dead-letters; `None` otherwise (and for
    /// records an operator made). Kept in step by every operation here.
    pub origins: Option<Origins>,
}

/// The change a record stands for, as Flink's `RowKind`: a new row, the
/// old and the new version of an updated row, a deleted row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowKind {
    Insert,
    UpdateBefore,
    UpdateAfter,
    Delete,
}

impl RowKind {
    /// As Flink SQL prints it: `+I`, `-U`, `+U`, `-D`.
    pub fn short(self) -> &'static str {
        match self {
            RowKind::Insert => "+I",
            RowKind::UpdateBefore => "-U",
            RowKind::UpdateAfter => "+U",
            RowKind::Delete => "-D",
        }
    }

    /// Its byte in the data plane's encoding.
    pub fn code(self) -> u8 {
        match self {
            RowKind::Insert => 0,
            RowKind::UpdateBefore => 1,
            RowKind::UpdateAfter => 2,
            RowKind::Delete => 3,
        }
    }

    pub fn from_code(c: u8) -> Option<RowKind> {
        Some(match c {
            0 => RowKind::Insert,
            1 => RowKind::UpdateBefore,
            2 => RowKind::UpdateAfter,
            3 => RowKind::Delete,
            _ => return None,
        })
    }

    /// Whether the row is retracted (`-U`, `-D`) rather than added.
    pub fn is_retraction(self) -> bool {
        matches!(self, RowKind::UpdateBefore | RowKind::Delete)
    }
}

/// `key_hash` of each record's `key` fields, one per record.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KeyHashes {
    pub key: Vec<usize>,
    pub values: Vec<u64>,
}

impl Batch {
    pub fn new(timestamps: Vec<i64>, columns: Vec<Column>) -> Batch {
        Batch { timestamps, columns, hashes: None, kinds: None, origins: None }
    }

    /// The kind of record `row`.
    pub fn kind(&self, row: usize) -> RowKind {
        self.kinds.as_ref().and_then(|k| k.get(row).copied()).unwrap_or(RowKind::Insert)
    }

    /// The kinds of the records at `rows` of `src`, appended to `self`'s
    /// (which has `before` records): stays `None` while both are.
    fn extend_kinds(&mut self, before: usize, src: Option<&Vec<RowKind>>, rows: Option<&[u32]>, added: usize) {
        match (&mut self.kinds, src) {
            (None, None) => {}
            (mine, theirs) => {
                let k = mine.get_or_insert_with(|| vec![RowKind::Insert; before]);
                match (theirs, rows) {
                    (Some(t), Some(rows)) => {
                        k.extend(rows.iter().map(|&r| t.get(r as usize).copied().unwrap_or(RowKind::Insert)))
                    }
                    (Some(t), None) => k.extend_from_slice(t),
                    (None, _) => k.extend(std::iter::repeat_n(RowKind::Insert, added)),
                }
            }
        }
    }

    /// The origins of the records at `rows` of `src` (all if `None`),
    /// appended to `self`'s (which has `before` records): stays `None`
    /// while both are; records without one get none.
    fn extend_origins(&mut self, before: usize, src: Option<&Origins>, rows: Option<&[u32]>, added: usize) {
        match (&mut self.origins, src) {
            (None, None) => {}
            (None, Some(_)) if added == 0 => {}
            (mine, theirs) => {
                let o = mine.get_or_insert_with(|| Origins::none(before));
                match theirs {
                    Some(t) => o.extend(t, rows),
                    None => o.push_none(added),
                }
            }
        }
    }

    /// An empty batch of records of these field types.
    pub fn empty(types: &[DataType], rows: usize) -> Batch {
        Batch::new(Vec::with_capacity(rows), types.iter().map(|t| Column::empty(*t, rows)).collect())
    }

    /// A batch of the same layout as `self`, empty.
    pub fn empty_like(&self, rows: usize) -> Batch {
        Batch::new(Vec::with_capacity(rows), self.columns.iter().map(|c| Column::empty(c.ty, rows)).collect())
    }

    /// The key hashes of `key`, if the batch carries them.
    pub fn hashes_of(&self, key: &[usize]) -> Option<&[u64]> {
        self.hashes.as_ref().filter(|h| h.key == key && h.values.len() == self.len()).map(|h| h.values.as_slice())
    }

    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    pub fn types(&self) -> Vec<DataType> {
        self.columns.iter().map(|c| c.ty).collect()
    }

    /// Checks that the batch holds records of `types`: one column per
    /// field, of the field's type, every column as long as the batch.
    /// Batches from another process are checked once on arrival; operators
    /// then rely on the layout.
    pub fn check_layout(&self, types: &[DataType]) -> Result<(), String> {
        if self.columns.len() != types.len() {
            return Err(format!("{} columns, expected {}", self.columns.len(), types.len()));
        }
        if self.hashes.as_ref().is_some_and(|h| h.values.len() != self.len()) {
            return Err("key hashes out of step with the records".into());
        }
        if self.kinds.as_ref().is_some_and(|k| k.len() != self.len()) {
            return Err("row kinds out of step with the records".into());
        }
        if self.origins.as_ref().is_some_and(|o| o.len() != self.len()) {
            return Err("origins out of step with the records".into());
        }
        for (i, (c, t)) in self.columns.iter().zip(types).enumerate() {
            if c.ty != *t || !stores(*t, &c.data) {
                return Err(format!("column {i} is {}, expected {t}", c.ty));
            }
            if c.len() != self.len() {
                return Err(format!("column {i} has {} values for {} records", c.len(), self.len()));
            }
            if c.validity.as_ref().is_some_and(|v| v.len() != c.len()) {
                return Err(format!("column {i} has a validity bitmap out of step with its values"));
            }
        }
        Ok(())
    }

    /// As [`check_layout`](Self::check_layout), after naming each column
    /// by its field's type where that type only allows more nulls among an
    /// array's elements (a `union` of `array<long>` and `array<long?>`
    /// reads `array<long?>`): the storage is the same, the element
    /// validity simply absent, so nothing is converted.
    pub fn conform(&mut self, types: &[DataType]) -> Result<(), String> {
        for (c, t) in self.columns.iter_mut().zip(types) {
            if c.ty != *t && c.ty.fits(*t) && stores(*t, &c.data) {
                c.ty = *t;
            }
        }
        self.check_layout(types)
    }

    /// The records at `rows`, in that order.
    pub fn gather(&self, rows: &[u32]) -> Batch {
        Batch {
            timestamps: rows.iter().map(|&r| self.timestamps[r as usize]).collect(),
            columns: self.columns.iter().map(|c| c.gather(rows)).collect(),
            hashes: self.hashes.as_ref().map(|h| KeyHashes {
                key: h.key.clone(),
                values: rows.iter().filter_map(|&r| h.values.get(r as usize).copied()).collect(),
            }),
            kinds: self
                .kinds
                .as_ref()
                .map(|k| rows.iter().map(|&r| k.get(r as usize).copied().unwrap_or(RowKind::Insert)).collect()),
            origins: self.origins.as_ref().map(|o| o.gather(rows)),
        }
    }

    /// Appends the records at `rows` of `src` (of the same layout).
    pub fn extend_rows(&mut self, src: &Batch, rows: &[u32]) {
        let src_hashes = src.hashes.as_ref().map(|h| (h.key.as_slice(), h.values.as_slice()));
        self.extend_rows_hashed(src, rows, src_hashes);
    }

    /// Appends the records at `rows` of `src`, whose key hashes of `key`
    /// are `hashes` (one per record of `src`), if known.
    pub fn extend_rows_hashed(&mut self, src: &Batch, rows: &[u32], hashes: Option<(&[usize], &[u64])>) {
        let before = self.len();
        self.extend_kinds(before, src.kinds.as_ref(), Some(rows), rows.len());
        self.extend_origins(before, src.origins.as_ref(), Some(rows), rows.len());
        self.timestamps.extend(rows.iter().map(|&r| src.timestamps[r as usize]));
        for (d, s) in self.columns.iter_mut().zip(&src.columns) {
            d.extend_rows(s, rows);
        }
        let picked = |values: &[u64]| rows.iter().filter_map(|&r| values.get(r as usize).copied()).collect::<Vec<_>>();
        self.hashes = match (self.hashes.take(), hashes) {
            (None, Some((key, values))) if before == 0 => Some(KeyHashes { key: key.to_vec(), values: picked(values) }),
            (Some(mut h), Some((key, values))) if h.key == key => {
                h.values.extend(rows.iter().filter_map(|&r| values.get(r as usize).copied()));
                Some(h)
            }
            _ => None,
        };
    }

    /// Appends every record of `src` (of the same layout).
    pub fn extend(&mut self, src: &Batch) {
        let before = self.len();
        self.extend_kinds(before, src.kinds.as_ref(), None, src.len());
        self.extend_origins(before, src.origins.as_ref(), None, src.len());
        self.timestamps.extend_from_slice(&src.timestamps);
        for (d, s) in self.columns.iter_mut().zip(&src.columns) {
            d.extend(s);
        }
        self.hashes = match (self.hashes.take(), &src.hashes) {
            (None, Some(h)) if before == 0 => Some(h.clone()),
            (Some(mut h), Some(s)) if h.key == s.key => {
                h.values.extend_from_slice(&s.values);
                Some(h)
            }
            _ => None,
        };
    }

    /// Keeps the first `rows` records.
    pub fn truncate(&mut self, rows: usize) {
        self.timestamps.truncate(rows);
        for c in &mut self.columns {
            c.truncate(rows);
        }
        if let Some(h) = &mut self.hashes {
            h.values.truncate(rows);
        }
        if let Some(k) = &mut self.kinds {
            k.truncate(rows);
        }
        if let Some(o) = &mut self.origins {
            o.truncate(rows);
        }
    }

    /// The fields of record `row`, borrowed.
    pub fn row_refs(&self, row: usize) -> Vec<ValueRef<'_>> {
        self.columns.iter().filter_map(|c| c.value_ref(row)).collect()
    }

    /// The fields of record `row` as owned values (tests, messages).
    pub fn row(&self, row: usize) -> Vec<Value> {
        self.columns.iter().filter_map(|c| c.value(row)).collect()
    }

    /// Every record as (event time, fields) (tests, messages).
    pub fn rows(&self) -> Vec<(i64, Vec<Value>)> {
        (0..self.len()).map(|r| (self.timestamps[r], self.row(r))).collect()
    }

    /// Appends a record of owned values; `false` (and nothing appended) if
    /// they do not fit the layout.
    pub fn push_row(&mut self, timestamp: i64, row: &[Value]) -> bool {
        if row.len() != self.columns.len() {
            return false;
        }
        let before = self.len();
        for (c, v) in self.columns.iter_mut().zip(row) {
            if !c.push_value(v.into()) {
                self.truncate(before);
                return false;
            }
        }
        self.timestamps.push(timestamp);
        if let Some(o) = &mut self.origins {
            o.push_none(1);
        }
        true
    }

    /// A batch of records of `types` (tests, and state that fires records).
    pub fn from_rows(types: &[DataType], rows: &[(i64, Vec<Value>)]) -> Option<Batch> {
        let mut b = Batch::empty(types, rows.len());
        for (t, r) in rows {
            if !b.push_row(*t, r) {
                return None;
            }
        }
        Some(b)
    }

    /// Records without event times, of `types`.
    pub fn from_values(types: &[DataType], rows: &[Vec<Value>]) -> Option<Batch> {
        let rows: Vec<(i64, Vec<Value>)> = rows.iter().map(|r| (NO_TIMESTAMP, r.clone())).collect();
        Batch::from_rows(types, &rows)
    }

    /// The bytes this batch takes in the data plane's encoding
    /// (`data::wire`), from the lengths alone: what the `read-bytes` and
    /// `write-bytes` metrics report.
    pub fn encoded_len(&self) -> usize {
        let kinds = self.kinds.as_ref().map_or(0, |k| super::wire::KINDS_HEADER_LEN + k.len());
        let origins = self.origins.as_ref().map_or(0, super::wire::origins_len);
        kinds
            + origins
            + super::wire::BATCH_HEADER_LEN
            + 8 * self.len()
            + self.columns.iter().map(Column::encoded_len).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Batch {
        let rows = vec![
            (1, vec![Value::Str("/a".into()), Value::Int(1)]),
            (2, vec![Value::Str("/bb".into()), Value::Int(2)]),
            (3, vec![Value::Str("/c".into()), Value::Int(3)]),
        ];
        Batch::from_rows(&[DataType::String, DataType::Long], &rows).expect("fits")
    }

    #[test]
    fn gathers_appends_and_checks_its_layout() {
        let b = sample();
        assert_eq!(b.len(), 3);
        let g = b.gather(&[2, 0]);
        assert_eq!(g.rows(), vec![(3, vec![Value::Str("/c".into()), Value::Int(3)]), (1, b.row(0))]);
        let mut e = b.empty_like(4);
        e.extend_rows(&b, &[1]);
        e.extend(&g);
        assert_eq!(e.len(), 3);
        assert_eq!(e.row(0), vec![Value::Str("/bb".into()), Value::Int(2)]);
        assert!(e.check_layout(&[DataType::String, DataType::Long]).is_ok());
        assert!(e.check_layout(&[DataType::String, DataType::Timestamp]).is_err());
        assert!(e.check_layout(&[DataType::String]).is_err());
        let mut bad = e.clone();
        bad.columns[1].pop();
        assert!(bad.check_layout(&[DataType::String, DataType::Long]).is_err());
    }

    #[test]
    fn arrays_of_non_null_elements_conform_to_nullable_elements() {
        use flowc_compiler::ir::Elem;
        let (strict, loose) = (DataType::Array(Elem::LONG), DataType::Array(Elem::LONG.with_nulls(true)));
        let rows = [vec![Value::Array(vec![Value::Int(1), Value::Int(2)])], vec![Value::Null]];
        let mut b = Batch::from_values(&[strict], &rows).expect("fits");
        assert!(b.check_layout(&[loose]).is_err());
        // Relabelled, not converted: the same values, read as `array<long?>`.
        assert_eq!(b.conform(&[loose]), Ok(()));
        assert_eq!(b.types(), [loose]);
        assert_eq!((b.row(0), b.row(1)), (rows[0].clone(), rows[1].clone()));
        // Nulls among the elements never conform to `array<long>`, nor another element type.
        let mut nulls = Batch::from_values(&[loose], &[vec![Value::Array(vec![Value::Null])]]).expect("fits");
        assert!(nulls.conform(&[strict]).is_err());
        assert!(b.conform(&[DataType::Array(Elem::STRING)]).is_err());
    }

    #[test]
    fn key_hashes_follow_the_records_or_are_dropped() {
        let mut b = sample();
        b.hashes = Some(KeyHashes { key: vec![0], values: vec![10, 20, 30] });
        assert_eq!(b.hashes_of(&[0]), Some(&[10, 20, 30][..]));
        assert_eq!(b.hashes_of(&[1]), None);
        assert_eq!(b.gather(&[2, 0]).hashes_of(&[0]), Some(&[30, 10][..]));
        let mut e = b.empty_like(4);
        e.extend_rows(&b, &[1, 2]);
        e.extend(&b.gather(&[0]));
        assert_eq!(e.hashes_of(&[0]), Some(&[20, 30, 10][..]));
        e.truncate(2);
        assert_eq!(e.hashes_of(&[0]), Some(&[20, 30][..]));
        // Records without hashes make the batch's hashes unknown.
        e.extend(&sample());
        assert_eq!(e.hashes, None);
        let mut f = b.empty_like(2);
        f.extend_rows_hashed(&sample(), &[0], Some((&[1], &[7, 8, 9])));
        assert_eq!(f.hashes_of(&[1]), Some(&[7][..]));
    }

    #[test]
    fn row_kinds_follow_the_records() {
        let mut b = sample();
        assert_eq!(b.kind(1), RowKind::Insert);
        b.kinds = Some(vec![RowKind::Insert, RowKind::UpdateBefore, RowKind::UpdateAfter]);
        assert!(b.check_layout(&[DataType::String, DataType::Long]).is_ok());
        assert_eq!(b.gather(&[2, 1]).kinds, Some(vec![RowKind::UpdateAfter, RowKind::UpdateBefore]));
        // Appending to an append-only batch makes its records inserts.
        let mut e = sample();
        e.extend_rows(&b, &[1]);
        assert_eq!(e.kinds, Some(vec![RowKind::Insert, RowKind::Insert, RowKind::Insert, RowKind::UpdateBefore]));
        e.extend(&sample());
        assert_eq!(e.len(), 7);
        assert_eq!(e.kind(6), RowKind::Insert);
        e.truncate(4);
        assert_eq!(e.kinds.as_ref().map(Vec::len), Some(4));
        // Append-only batches stay without kinds.
        let mut plain = sample();
        plain.extend(&sample());
        assert_eq!(plain.kinds, None);
        let mut bad = b.clone();
        bad.kinds = Some(vec![RowKind::Delete]);
        assert!(bad.check_layout(&[DataType::String, DataType::Long]).is_err());
        for k in [RowKind::Insert, RowKind::UpdateBefore, RowKind::UpdateAfter, RowKind::Delete] {
            assert_eq!(RowKind::from_code(k.code()), Some(k));
        }
        assert_eq!(RowKind::from_code(4), None);
    }

    /// Op codes for the model test: gather, extend_rows, extend, truncate, push_row.
    #[derive(Debug, Clone)]
    enum Op {
        Gather(Vec<u32>),
        ExtendRows(bool, Vec<u32>),
        Extend(bool),
        Truncate(usize),
        Push,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            proptest::collection::vec(0u32..12, 0..12).prop_map(Op::Gather),
            (any::<bool>(), proptest::collection::vec(0u32..4, 0..6)).prop_map(|(o, r)| Op::ExtendRows(o, r)),
            any::<bool>().prop_map(Op::Extend),
            (0usize..12).prop_map(Op::Truncate),
            Just(Op::Push),
        ]
    }

    /// Four records `base..base + 4` (their one field, their id), with
    /// origins if `origins` (each from its own offset, its id as bytes).
    fn numbered(base: i64, origins: bool) -> Batch {
        let rows: Vec<Vec<Value>> = (base..base + 4).map(|i| vec![Value::Int(i)]).collect();
        let mut b = Batch::from_values(&[DataType::Long], &rows).expect("fits");
        if origins {
            let mut o = Origins::default();
            for i in base..base + 4 {
                let topic = if i % 2 == 0 { "even" } else { "odd" };
                o.push_kafka(topic, (i % 3) as i32, i, i.to_string().as_bytes());
            }
            b.origins = Some(o);
        }
        b
    }

    /// A record's origin in the model: (topic, partition, offset, bytes).
    type Seen = Option<(String, i32, i64, Vec<u8>)>;

    /// The origin a record of [`numbered`] has.
    fn origin_of(id: i64, origins: bool) -> Seen {
        let topic = if id % 2 == 0 { "even" } else { "odd" };
        origins.then(|| (topic.to_string(), (id % 3) as i32, id, id.to_string().into_bytes()))
    }

    fn observed(b: &Batch) -> Vec<(i64, Seen)> {
        (0..b.len())
            .map(|r| {
                let id = match b.row(r).first() {
                    Some(Value::Int(i)) => *i,
                    other => panic!("{other:?}"),
                };
                let origin = b.origins.as_ref().and_then(|o| o.get(r)).map(|o| match o.position() {
                    crate::metrics::RecordPosition::Kafka { topic, partition, offset } => {
                        (topic, partition, offset, o.bytes.to_vec())
                    }
                    p => panic!("{p:?}"),
                });
                (id, origin)
            })
            .collect()
    }

    proptest::proptest! {
        /// Every operation keeps each record with its origin, as a plain
        /// list of (record, origin) pairs does; batches without origins
        /// stay without.
        #[test]
        fn origins_follow_their_records_as_a_model_of_pairs(
            start in proptest::bool::ANY,
            ops in proptest::collection::vec(op(), 0..16),
        ) {
            let mut b = numbered(0, start);
            let mut model: Vec<(i64, Seen)> = (0..4).map(|i| (i, origin_of(i, start))).collect();
            let mut next = 100;
            let mut any = start;
            for op in ops {
                match op {
                    Op::Gather(rows) => {
                        let rows: Vec<u32> = rows.into_iter().filter(|r| (*r as usize) < b.len()).collect();
                        b = b.gather(&rows);
                        model = rows.iter().map(|r| model[*r as usize].clone()).collect();
                    }
                    Op::ExtendRows(o, rows) => {
                        b.extend_rows(&numbered(next, o), &rows);
                        model.extend(rows.iter().map(|r| (next + i64::from(*r), origin_of(next + i64::from(*r), o))));
                        any |= o && !rows.is_empty();
                        next += 4;
                    }
                    Op::Extend(o) => {
                        b.extend(&numbered(next, o));
                        model.extend((next..next + 4).map(|i| (i, origin_of(i, o))));
                        any |= o;
                        next += 4;
                    }
                    Op::Truncate(n) => {
                        b.truncate(n);
                        model.truncate(n);
                    }
                    Op::Push => {
                        proptest::prop_assert!(b.push_row(5, &[Value::Int(next)]));
                        model.push((next, None));
                        next += 1;
                    }
                }
                proptest::prop_assert!(b.check_layout(&[DataType::Long]).is_ok());
                proptest::prop_assert_eq!(observed(&b), model.clone());
                if !any {
                    proptest::prop_assert!(b.origins.is_none(), "no origins cost nothing");
                }
                // And over the data plane.
                let mut bytes = Vec::new();
                super::super::wire::encode_element(&crate::record::Element::Records(b.clone()), &mut bytes)
                    .expect("encodes");
                proptest::prop_assert_eq!(bytes.len(), b.encoded_len());
                let back = super::super::wire::decode_element(&bytes);
                proptest::prop_assert_eq!(back, Ok(crate::record::Element::Records(b.clone())));
            }
        }
    }

    #[test]
    fn a_row_that_does_not_fit_appends_nothing() {
        let mut b = sample();
        assert!(!b.push_row(9, &[Value::Str("x".into()), Value::Bool(true)]));
        assert_eq!(b.len(), 3);
        assert!(b.check_layout(&[DataType::String, DataType::Long]).is_ok());
    }
}
