//! Rows an operator keeps per key (`dedup … keep last`, keyed `top`), in
//! the typed row encoding the rest of the runtime uses: one columnar
//! [`Batch`] the operator addresses by row number, and the form those rows
//! take in a checkpoint.
//!
//! A kept row is appended once, column by column, from the record it came
//! from; a row that leaves (replaced, pushed out of a top, expired) is
//! only counted as dead. Once the dead rows outnumber the live ones (and a
//! few thousand), the operator compacts: the live rows are copied to a
//! fresh batch in their owners' order and each owner gets its new row
//! number, so memory stays within about twice the live rows and a row is
//! copied a constant number of times, amortised. Changes go out by one
//! gather of the rows they name ([`KeptRows::emit`]): comparing, replacing
//! and retracting a row never builds an owned [`Value`](crate::record::Value).
//!
//! In a checkpoint the rows of a key group are columns too
//! ([`SavedColumn`]): integers and lengths as bincode's varints (an
//! integer column as the differences between its values where that is
//! smaller: times, sequential ids), a column's strings in one buffer, a
//! validity bitmap where a column has nulls. No key is written apart from
//! its rows: it is their key fields.

use crate::data::{Batch, Column, Data, ListColumn, RowKind, StrColumn, Validity};
use flowc_compiler::ir::DataType;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// Fewer dead rows than this are never compacted away: a small state is
/// not worth copying. (Tests compact early, so that every test of an
/// operator keeping rows goes through compactions.)
const COMPACT_AT: usize = if cfg!(test) { 4 } else { 4096 };

/// An operator's kept rows; each row's event time is its timestamp.
#[derive(Debug)]
pub struct KeptRows {
    rows: Batch,
    dead: usize,
}

impl KeptRows {
    /// No rows yet, of these field types.
    pub fn new(types: &[DataType]) -> KeptRows {
        KeptRows { rows: Batch::empty(types, 0), dead: 0 }
    }

    /// The rows some key still holds.
    pub fn live(&self) -> usize {
        self.rows.len() - self.dead
    }

    /// Keeps row `r` of `src` (of the same layout); its number.
    pub fn push(&mut self, src: &Batch, r: usize) -> u32 {
        let at = self.rows.len() as u32;
        for (d, s) in self.rows.columns.iter_mut().zip(&src.columns) {
            push_cell(d, s, r);
        }
        self.rows.timestamps.push(src.timestamps[r]);
        at
    }

    /// Keeps every row of `src` (a restore); the number of its first.
    pub fn extend(&mut self, src: &Batch) -> u32 {
        let at = self.rows.len() as u32;
        for (d, s) in self.rows.columns.iter_mut().zip(&src.columns) {
            d.extend(s);
        }
        self.rows.timestamps.extend_from_slice(&src.timestamps);
        at
    }

    /// Row `row` is held by no key any more: gone at the next compaction.
    pub fn release(&mut self, row: u32) {
        debug_assert!((row as usize) < self.rows.len());
        self.dead += 1;
    }

    /// The event time of row `row`.
    pub fn time(&self, row: u32) -> i64 {
        self.rows.timestamps[row as usize]
    }

    pub fn set_time(&mut self, row: u32, time: i64) {
        self.rows.timestamps[row as usize] = time;
    }

    /// Whether kept row `row` equals row `r` of `src` in every field (as
    /// SQL's `=` compares values, with null equal to null).
    pub fn same_row(&self, row: u32, src: &Batch, r: usize) -> bool {
        let k = row as usize;
        self.rows.columns.iter().zip(&src.columns).all(|(a, b)| cells_equal(a, k, b, r))
    }

    /// How field `f` of row `r` of `src` orders against the kept row
    /// `row`'s: SQL's order, nulls first.
    pub fn cmp_field(&self, f: usize, src: &Batch, r: usize, row: u32) -> Ordering {
        match (src.columns.get(f), self.rows.columns.get(f)) {
            (Some(a), Some(b)) => cell_cmp(a, r, b, row as usize),
            _ => Ordering::Equal,
        }
    }

    /// The rows at `rows`, in that order, with these times and kinds: the
    /// changes an operator emits.
    pub fn emit(&self, rows: &[u32], times: Vec<i64>, kinds: Vec<RowKind>) -> Batch {
        let mut out = self.rows.gather(rows);
        out.timestamps = times;
        out.kinds = Some(kinds);
        out
    }

    /// The rows at `rows`, in that order (a snapshot).
    pub fn gather(&self, rows: &[u32]) -> Batch {
        self.rows.gather(rows)
    }

    /// Whether enough rows are dead to be worth a [`KeptRows::compact`].
    pub fn wants_compaction(&self) -> bool {
        self.dead >= COMPACT_AT && self.dead > self.live()
    }

    /// Keeps only the rows `owners` name, in that order, and renumbers
    /// them; every live row must be named exactly once.
    pub fn compact<'a>(&mut self, owners: impl IntoIterator<Item = &'a mut u32>) {
        let mut owners: Vec<&mut u32> = owners.into_iter().collect();
        let order: Vec<u32> = owners.iter().map(|r| **r).collect();
        self.rows = self.rows.gather(&order);
        for (i, r) in owners.iter_mut().enumerate() {
            **r = i as u32;
        }
        self.dead = 0;
    }
}

/// Appends row `r` of `s` to `d` (of the same storage).
fn push_cell(d: &mut Column, s: &Column, r: usize) {
    let before = d.len();
    let valid = s.is_valid(r);
    match (&mut d.data, &s.data) {
        (Data::I64(d), Data::I64(s)) => d.push(s[r]),
        (Data::F64(d), Data::F64(s)) => d.push(s[r]),
        (Data::Bool(d), Data::Bool(s)) => d.push(s[r]),
        (Data::Str(d), Data::Str(s)) => d.extend_rows(s, &[r as u32]),
        (Data::List(d), Data::List(s)) => d.extend_rows(s, &[r as u32]),
        // Another storage: a bug the layout check on arrival rules out.
        _ => return,
    }
    match &mut d.validity {
        Some(v) => v.push(valid),
        None if !valid => {
            let mut v = Validity::all_valid(before);
            v.push(false);
            d.validity = Some(v);
        }
        None => {}
    }
}

/// Whether row `i` of `a` and row `j` of `b` hold equal values (doubles
/// as `==` compares them; null equals null).
fn cells_equal(a: &Column, i: usize, b: &Column, j: usize) -> bool {
    match (a.is_valid(i), b.is_valid(j)) {
        (true, true) => {}
        (x, y) => return x == y,
    }
    match (&a.data, &b.data) {
        (Data::I64(x), Data::I64(y)) => x[i] == y[j],
        (Data::F64(x), Data::F64(y)) => x[i] == y[j],
        (Data::Bool(x), Data::Bool(y)) => x[i] == y[j],
        (Data::Str(x), Data::Str(y)) => x.bytes(i) == y.bytes(j),
        _ => a.value_ref(i) == b.value_ref(j),
    }
}

/// SQL's order of row `i` of `a` against row `j` of `b`, nulls first
/// (smallest), as Flink orders them by default; doubles by total order.
fn cell_cmp(a: &Column, i: usize, b: &Column, j: usize) -> Ordering {
    match (a.is_valid(i), b.is_valid(j)) {
        (true, true) => {}
        (x, y) => return x.cmp(&y),
    }
    match (&a.data, &b.data) {
        (Data::I64(x), Data::I64(y)) => x[i].cmp(&y[j]),
        (Data::F64(x), Data::F64(y)) => x[i].total_cmp(&y[j]),
        (Data::Bool(x), Data::Bool(y)) => x[i].cmp(&y[j]),
        (Data::Str(x), Data::Str(y)) => x.bytes(i).cmp(y.bytes(j)),
        // The checker refuses to order by an array.
        _ => Ordering::Equal,
    }
}

/// One column of kept rows in a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedColumn {
    /// The validity bitmap ([`Validity::to_bytes`]) if a row is null.
    nulls: Option<Vec<u8>>,
    data: SavedData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum SavedData {
    I64(Vec<i64>),
    /// Integers as differences from the one before ([`deltas`]): what
    /// times and ids written close together take fewer bytes as.
    I64Deltas(Vec<i64>),
    F64(Vec<f64>),
    Bool(Vec<bool>),
    /// Each string's length in bytes, and their UTF-8 back to back.
    Str {
        lengths: Vec<u32>,
        bytes: String,
    },
    /// Each array's length, and their elements as one column.
    List {
        lengths: Vec<u32>,
        elements: Box<SavedColumn>,
    },
}

/// The columns of `batch` as a checkpoint holds them.
pub fn save_columns(batch: &Batch) -> Vec<SavedColumn> {
    batch.columns.iter().map(save).collect()
}

fn save(c: &Column) -> SavedColumn {
    let nulls = c.validity.as_ref().filter(|v| v.null_count() > 0).map(Validity::to_bytes);
    let data = match &c.data {
        Data::I64(v) => {
            let d = deltas(v);
            if varint_bytes(&d) < varint_bytes(v) {
                SavedData::I64Deltas(d)
            } else {
                SavedData::I64(v.clone())
            }
        }
        Data::F64(v) => SavedData::F64(v.clone()),
        Data::Bool(v) => SavedData::Bool(v.clone()),
        Data::Str(s) => {
            let mut bytes = String::new();
            let lengths = s
                .iter()
                .map(|x| {
                    bytes.push_str(x);
                    x.len() as u32
                })
                .collect();
            SavedData::Str { lengths, bytes }
        }
        Data::List(l) => {
            let offsets = l.offsets();
            let lengths = offsets.windows(2).map(|w| w[1].saturating_sub(w[0])).collect();
            let (first, last) = (offsets.first().copied().unwrap_or(0), offsets.last().copied().unwrap_or(0));
            let elements = if first == 0 && last as usize == l.values().len() {
                save(l.values())
            } else {
                save(&l.values().gather(&(first..last).collect::<Vec<u32>>()))
            };
            SavedData::List { lengths, elements: Box::new(elements) }
        }
    };
    SavedColumn { nulls, data }
}

/// Columns of `types`, `rows` long, from a checkpoint's; the reason if
/// they are not that.
pub fn restore_columns(saved: Vec<SavedColumn>, types: &[DataType], rows: usize) -> Result<Vec<Column>, String> {
    if saved.len() != types.len() {
        return Err(format!("the state has rows of {} fields, the job's have {}", saved.len(), types.len()));
    }
    saved.into_iter().zip(types).map(|(s, t)| restore(s, *t, rows)).collect()
}

fn restore(saved: SavedColumn, ty: DataType, rows: usize) -> Result<Column, String> {
    let data = match (saved.data, ty) {
        (SavedData::I64(v), DataType::Int | DataType::Long | DataType::Timestamp) if v.len() == rows => Data::I64(v),
        (SavedData::I64Deltas(v), DataType::Int | DataType::Long | DataType::Timestamp) if v.len() == rows => {
            Data::I64(undo_deltas(v))
        }
        (SavedData::F64(v), DataType::Double) if v.len() == rows => Data::F64(v),
        (SavedData::Bool(v), DataType::Bool) if v.len() == rows => Data::Bool(v),
        (SavedData::Str { lengths, bytes }, DataType::String) if lengths.len() == rows => {
            Data::Str(StrColumn::from_parts(offsets(&lengths)?.into_iter().map(|o| o as usize).collect(), bytes)?)
        }
        (SavedData::List { lengths, elements }, DataType::Array(e)) if lengths.len() == rows => {
            let offsets = offsets(&lengths)?;
            let count = offsets.last().copied().unwrap_or(0) as usize;
            Data::List(Box::new(ListColumn::from_parts(offsets, restore(*elements, e.ty(), count)?, e.nullable())?))
        }
        _ => return Err(format!("a column of the state is not {rows} values of type {ty}")),
    };
    let validity = match saved.nulls {
        Some(bytes) => Some(Validity::from_bytes(&bytes, rows).ok_or("a validity bitmap of another length")?),
        None => None,
    };
    Ok(Column::with_validity(ty, data, validity))
}

/// Each value less the one before (the first less 0), wrapping: times and
/// ids close together become small numbers, which bincode's varints write
/// in 1 to 5 bytes rather than 9.
pub fn deltas(values: &[i64]) -> Vec<i64> {
    let mut before = 0i64;
    values
        .iter()
        .map(|&v| {
            let d = v.wrapping_sub(before);
            before = v;
            d
        })
        .collect()
}

/// The values of [`deltas`].
pub fn undo_deltas(mut deltas: Vec<i64>) -> Vec<i64> {
    let mut at = 0i64;
    for d in &mut deltas {
        at = at.wrapping_add(*d);
        *d = at;
    }
    deltas
}

/// The bytes bincode's standard (varint, zigzag) encoding takes for `values`.
fn varint_bytes(values: &[i64]) -> usize {
    values
        .iter()
        .map(|&v| match (v << 1 ^ v >> 63) as u64 {
            0..=250 => 1,
            251..=0xffff => 3,
            0x1_0000..=0xffff_ffff => 5,
            _ => 9,
        })
        .sum()
}

/// One key group's bytes: a format version byte, then bincode of `group`.
pub fn encode_group<T: Serialize>(version: u8, group: &T) -> Vec<u8> {
    let mut bytes = vec![version];
    // Our own types always encode.
    bytes.extend(bincode::serde::encode_to_vec(group, bincode::config::standard()).unwrap_or_default());
    bytes
}

/// A key group's body (after its version byte), all of it.
pub fn decode_group<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let (group, used): (T, usize) =
        bincode::serde::decode_from_slice(body, bincode::config::standard()).map_err(|e| e.to_string())?;
    if used != body.len() {
        return Err("trailing bytes".into());
    }
    Ok(group)
}

/// Offsets from lengths: `[0, l0, l0 + l1, …]`.
fn offsets(lengths: &[u32]) -> Result<Vec<u32>, String> {
    let mut out = Vec::with_capacity(lengths.len() + 1);
    let mut at = 0u32;
    out.push(at);
    for l in lengths {
        at = at.checked_add(*l).ok_or("lengths past 4 GiB")?;
        out.push(at);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Value;
    use flowc_compiler::ir::Elem;

    fn types() -> Vec<DataType> {
        vec![
            DataType::String,
            DataType::Long,
            DataType::Double,
            DataType::Bool,
            DataType::Timestamp,
            DataType::Array(Elem::STRING),
            DataType::Array(Elem::LONG.with_nulls(true)),
        ]
    }

    fn batch() -> Batch {
        let rows = vec![
            (1, vec![Value::Str("h\u{e9}llo".into()), Value::Int(1), Value::Double(0.5), Value::Bool(true)]),
            (2, vec![Value::Null, Value::Int(-7), Value::Null, Value::Bool(false)]),
            (3, vec![Value::Str(String::new()), Value::Null, Value::Double(f64::NAN), Value::Null]),
        ];
        let rows: Vec<(i64, Vec<Value>)> = rows
            .into_iter()
            .enumerate()
            .map(|(i, (t, mut r))| {
                r.push(Value::Timestamp(1_764_550_000_000 + t * 1000));
                r.push(Value::Array((0..i).map(|j| Value::Str(format!("e{j}"))).collect()));
                // array<long?>: a null element among others.
                r.push(Value::Array(
                    (0..=i as i64).map(|j| if j == 1 { Value::Null } else { Value::Int(j) }).collect(),
                ));
                (t, r)
            })
            .collect();
        Batch::from_rows(&types(), &rows).expect("fits")
    }

    #[test]
    fn rows_are_kept_compared_emitted_and_compacted_without_losing_a_value() {
        let b = batch();
        let mut kept = KeptRows::new(&types());
        let rows: Vec<u32> = (0..3).map(|r| kept.push(&b, r)).collect();
        assert_eq!(rows, vec![0, 1, 2]);
        assert!(kept.same_row(1, &b, 1) && !kept.same_row(1, &b, 0));
        assert!(!kept.same_row(2, &b, 2), "NaN equals nothing, as SQL's `=`");
        assert_eq!(kept.cmp_field(0, &b, 0, 1), Ordering::Greater, "a null orders first");
        assert_eq!(kept.cmp_field(1, &b, 1, 0), Ordering::Less);
        assert_eq!(kept.cmp_field(2, &b, 2, 0), Ordering::Greater, "NaN orders last among doubles");
        let out = kept.emit(&[2, 0], vec![9, 8], vec![RowKind::UpdateBefore, RowKind::UpdateAfter]);
        // (By their debug form: NaN is not equal to itself.)
        assert_eq!(format!("{:?}", out.rows()), format!("{:?}", vec![(9, b.row(2)), (8, b.row(0))]));
        assert_eq!(out.kinds, Some(vec![RowKind::UpdateBefore, RowKind::UpdateAfter]));
        kept.release(0);
        kept.release(1);
        assert_eq!(kept.live(), 1);
        let mut owner = 2;
        kept.compact([&mut owner]);
        assert_eq!((owner, kept.live()), (0, 1));
        assert_eq!(format!("{:?}", kept.gather(&[0]).rows()), format!("{:?}", vec![(3, b.row(2))]));
    }

    #[test]
    fn deltas_undo_and_take_fewer_bytes_for_close_values() {
        let times = vec![1_764_550_000_000, 1_764_550_000_250, 1_764_549_999_900, i64::MIN, i64::MAX, 0];
        assert_eq!(undo_deltas(deltas(&times)), times);
        let close = &times[..3];
        assert!(varint_bytes(&deltas(close)) < varint_bytes(close));
        for v in [0i64, -1, 1, 125, -126, 126, 40_000, -40_000, 1 << 40, i64::MIN, i64::MAX] {
            let bytes = bincode::serde::encode_to_vec(v, bincode::config::standard()).expect("encodes");
            assert_eq!(varint_bytes(&[v]), bytes.len(), "{v}");
        }
    }

    #[test]
    fn saved_columns_restore_to_the_same_rows_and_refuse_another_layout() {
        let b = batch();
        let saved = save_columns(&b);
        let bytes = bincode::serde::encode_to_vec(&saved, bincode::config::standard()).expect("encodes");
        let (back, _): (Vec<SavedColumn>, usize) =
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).expect("decodes");
        let columns = restore_columns(back, &types(), 3).expect("restores");
        let restored = Batch::new(b.timestamps.clone(), columns);
        assert_eq!(restored.rows().len(), 3);
        assert!((0..3).all(|r| (0..7).all(|c| cells_equal(&restored.columns[c], r, &b.columns[c], r) || c == 2)));
        assert_eq!(format!("{:?}", restored.rows()), format!("{:?}", b.rows()));
        assert!(restore_columns(saved.clone(), &types(), 4).is_err(), "another row count");
        assert!(restore_columns(saved.clone(), &types()[..6], 3).is_err(), "another field count");
        let mut strict = types();
        strict[6] = DataType::Array(Elem::LONG);
        assert!(restore_columns(saved.clone(), &strict, 3).is_err(), "a null element where none may be");
        let mut swapped = types();
        swapped.swap(1, 2);
        assert!(restore_columns(saved, &swapped, 3).is_err(), "another type");
    }
}
