//! A column of strings, in one of two forms:
//!
//! - **plain**: the UTF-8 bytes of all strings back to back, and where
//!   each starts (Arrow's `Utf8`); what decoding and computing make;
//! - **dictionary**: a shared, immutable set of distinct strings and one
//!   id per row; what a source with few distinct values makes (datagen's
//!   `cycle`) and what a constant becomes. Copying a row copies an id,
//!   and a kernel can work once per distinct string instead of once per
//!   row ([`StrColumn::dictionary`]).
//!
//! Both read the same: [`StrColumn::get`], [`StrColumn::bytes`]. Appending
//! keeps the dictionary form while the rows come from the same dictionary
//! (or one with the same strings), and turns the column plain otherwise.

use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct StrColumn {
    /// Plain form: one more offset than there are strings, the first 0,
    /// each a char boundary of `data` (so slicing never fails). In the
    /// dictionary form they are `[0]` and empty.
    offsets: Vec<usize>,
    data: String,
    dict: Option<Dict>,
}

/// The dictionary form: every id is an index into `strings` (plain).
#[derive(Debug, Clone)]
struct Dict {
    strings: Arc<StrColumn>,
    ids: Vec<u32>,
}

/// Two columns are equal when they hold the same strings, in whatever form.
impl PartialEq for StrColumn {
    fn eq(&self, other: &StrColumn) -> bool {
        self.len() == other.len() && (0..self.len()).all(|i| self.bytes(i) == other.bytes(i))
    }
}

impl Eq for StrColumn {}

impl Default for StrColumn {
    fn default() -> StrColumn {
        StrColumn::new()
    }
}

impl StrColumn {
    pub fn new() -> StrColumn {
        StrColumn::with_capacity(0, 0)
    }

    pub fn with_capacity(rows: usize, bytes: usize) -> StrColumn {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        StrColumn { offsets, data: String::with_capacity(bytes), dict: None }
    }

    fn of_dict(strings: Arc<StrColumn>, ids: Vec<u32>) -> StrColumn {
        StrColumn { offsets: vec![0], data: String::new(), dict: Some(Dict { strings, ids }) }
    }

    /// A column of ids into `strings`; `None` if an id is out of range.
    pub fn from_ids(strings: Arc<StrColumn>, ids: Vec<u32>) -> Option<StrColumn> {
        if ids.iter().any(|i| *i as usize >= strings.len()) {
            return None;
        }
        // A dictionary is plain: ids of ids would be a needless detour.
        let strings = if strings.dict.is_some() { Arc::new(strings.to_plain()) } else { strings };
        Some(StrColumn::of_dict(strings, ids))
    }

    /// `rows` times the string `s`, as a dictionary of one.
    pub fn repeat(s: &str, rows: usize) -> StrColumn {
        let mut strings = StrColumn::with_capacity(1, s.len());
        strings.push(s);
        StrColumn::of_dict(Arc::new(strings), vec![0; rows])
    }

    /// Builds a plain column from its parts, checking every invariant:
    /// what the wire decoder uses on bytes from a peer.
    pub fn from_parts(offsets: Vec<usize>, data: String) -> Result<StrColumn, String> {
        if offsets.first() != Some(&0) {
            return Err("string offsets do not start at 0".into());
        }
        if offsets.last().copied() != Some(data.len()) {
            return Err("string offsets do not end at the end of the bytes".into());
        }
        if offsets.windows(2).any(|w| w[0] > w[1]) {
            return Err("string offsets go backwards".into());
        }
        if offsets.iter().any(|o| !data.is_char_boundary(*o)) {
            return Err("a string offset splits a character".into());
        }
        Ok(StrColumn { offsets, data, dict: None })
    }

    pub fn len(&self) -> usize {
        match &self.dict {
            None => self.offsets.len() - 1,
            Some(d) => d.ids.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The string of row `i`; empty past the end (callers check lengths).
    #[inline]
    pub fn get(&self, i: usize) -> &str {
        match &self.dict {
            None => match (self.offsets.get(i), self.offsets.get(i + 1)) {
                (Some(&a), Some(&b)) => self.data.get(a..b).unwrap_or(""),
                _ => "",
            },
            Some(d) => d.ids.get(i).map_or("", |id| d.strings.get(*id as usize)),
        }
    }

    /// The bytes of row `i` (for hashing and comparing: no char boundary
    /// checks); empty past the end.
    #[inline]
    pub fn bytes(&self, i: usize) -> &[u8] {
        match &self.dict {
            None => match (self.offsets.get(i), self.offsets.get(i + 1)) {
                (Some(&a), Some(&b)) => self.data.as_bytes().get(a..b).unwrap_or(&[]),
                _ => &[],
            },
            Some(d) => d.ids.get(i).map_or(&[], |id| d.strings.bytes(*id as usize)),
        }
    }

    /// The bytes of every row, in order.
    pub fn iter_bytes(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        (0..self.len()).map(move |i| self.bytes(i))
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }

    /// The dictionary and the rows' ids, if the column is in that form.
    pub fn dictionary(&self) -> Option<(&Arc<StrColumn>, &[u32])> {
        self.dict.as_ref().map(|d| (&d.strings, d.ids.as_slice()))
    }

    /// The offsets and bytes, if the column is plain.
    pub fn plain(&self) -> Option<(&[usize], &str)> {
        self.dict.is_none().then_some((self.offsets.as_slice(), self.data.as_str()))
    }

    /// The same strings as a dictionary of the distinct ones and an id
    /// per row.
    pub fn to_dictionary(&self) -> StrColumn {
        let mut strings = StrColumn::new();
        let mut index: std::collections::HashMap<&[u8], u32> = std::collections::HashMap::new();
        let mut ids = Vec::with_capacity(self.len());
        for i in 0..self.len() {
            let next = index.len() as u32;
            let id = *index.entry(self.bytes(i)).or_insert_with(|| {
                strings.push(self.get(i));
                next
            });
            ids.push(id);
        }
        StrColumn::of_dict(Arc::new(strings), ids)
    }

    /// The same strings, plain.
    pub fn to_plain(&self) -> StrColumn {
        if self.dict.is_none() {
            return self.clone();
        }
        let mut out = StrColumn::with_capacity(self.len(), self.len() * 8);
        for i in 0..self.len() {
            out.push(self.get(i));
        }
        out
    }

    /// Turns a dictionary column plain (before appending other strings).
    fn make_plain(&mut self) {
        if self.dict.is_some() {
            *self = self.to_plain();
        }
    }

    pub fn push(&mut self, s: &str) {
        self.make_plain();
        self.data.push_str(s);
        self.offsets.push(self.data.len());
    }

    /// Appends a string written by `f` straight into the buffer.
    pub fn push_with(&mut self, f: impl FnOnce(&mut String)) {
        self.make_plain();
        f(&mut self.data);
        self.offsets.push(self.data.len());
    }

    /// Removes the last string.
    pub fn pop(&mut self) {
        match &mut self.dict {
            Some(d) => {
                d.ids.pop();
            }
            None if self.offsets.len() > 1 => {
                self.offsets.pop();
                let end = self.offsets.last().copied().unwrap_or(0);
                self.data.truncate(end);
            }
            None => {}
        }
    }

    pub fn truncate(&mut self, rows: usize) {
        match &mut self.dict {
            Some(d) => d.ids.truncate(rows),
            None if rows + 1 < self.offsets.len() => {
                self.offsets.truncate(rows + 1);
                let end = self.offsets.last().copied().unwrap_or(0);
                self.data.truncate(end);
            }
            None => {}
        }
    }

    /// The rows at `rows`, in that order (a dictionary column stays one).
    pub fn gather(&self, rows: &[u32]) -> StrColumn {
        match &self.dict {
            Some(d) => StrColumn::of_dict(
                d.strings.clone(),
                rows.iter().map(|&r| d.ids.get(r as usize).copied().unwrap_or(0)).collect(),
            ),
            None => {
                let mut out = StrColumn::with_capacity(rows.len(), 0);
                out.extend_rows(self, rows);
                out
            }
        }
    }

    /// Whether `src`'s ids can be appended as they are: this column is
    /// empty (it takes `src`'s dictionary), or has the same dictionary (the
    /// same one, or one with the same strings).
    fn takes_ids_of(&mut self, src: &StrColumn) -> bool {
        let Some(theirs) = &src.dict else { return false };
        match &self.dict {
            Some(ours) => {
                Arc::ptr_eq(&ours.strings, &theirs.strings)
                    || (ours.strings.len() == theirs.strings.len()
                        && ours.strings.len() <= 64
                        && *ours.strings == *theirs.strings)
            }
            None if self.offsets.len() == 1 => {
                *self = StrColumn::of_dict(theirs.strings.clone(), Vec::new());
                true
            }
            None => false,
        }
    }

    /// Appends the rows at `rows` of `src`.
    pub fn extend_rows(&mut self, src: &StrColumn, rows: &[u32]) {
        if self.takes_ids_of(src) {
            if let (Some(ours), Some(theirs)) = (&mut self.dict, &src.dict) {
                ours.ids.extend(rows.iter().map(|&r| theirs.ids.get(r as usize).copied().unwrap_or(0)));
                return;
            }
        }
        self.make_plain();
        let avg = if src.dict.is_none() { src.data.len() / src.len().max(1) + 1 } else { 8 };
        // Room for strings of the source's average length; more grows as needed.
        self.data.reserve(avg * rows.len());
        self.offsets.reserve(rows.len());
        match &src.dict {
            None => {
                for &r in rows {
                    let r = r as usize;
                    if let (Some(&a), Some(&b)) = (src.offsets.get(r), src.offsets.get(r + 1)) {
                        self.data.push_str(src.data.get(a..b).unwrap_or(""));
                    }
                    self.offsets.push(self.data.len());
                }
            }
            Some(_) => {
                for &r in rows {
                    self.data.push_str(src.get(r as usize));
                    self.offsets.push(self.data.len());
                }
            }
        }
    }

    /// Appends every row of `src`.
    pub fn extend(&mut self, src: &StrColumn) {
        if self.takes_ids_of(src) {
            if let (Some(ours), Some(theirs)) = (&mut self.dict, &src.dict) {
                ours.ids.extend_from_slice(&theirs.ids);
                return;
            }
        }
        self.make_plain();
        match &src.dict {
            None => {
                let base = self.data.len();
                self.data.push_str(&src.data);
                self.offsets.extend(src.offsets[1..].iter().map(|o| o + base));
            }
            Some(_) => {
                for s in src.iter() {
                    self.data.push_str(s);
                    self.offsets.push(self.data.len());
                }
            }
        }
    }

    /// The bytes of its encoding in `data::wire`, from the lengths alone.
    pub fn encoded_len(&self) -> usize {
        match &self.dict {
            None => 4 + 4 * self.offsets.len() + 4 + self.data.len(),
            Some(d) => d.strings.encoded_len() + 4 + 4 * d.ids.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict(values: &[&str]) -> Arc<StrColumn> {
        let mut d = StrColumn::new();
        values.iter().for_each(|v| d.push(v));
        Arc::new(d)
    }

    #[test]
    fn plain_strings_push_gather_and_roll_back() {
        let mut c = StrColumn::new();
        for s in ["/help", "", "héllo", "/shop"] {
            c.push(s);
        }
        assert_eq!(c.iter().collect::<Vec<_>>(), vec!["/help", "", "héllo", "/shop"]);
        assert_eq!(c.gather(&[3, 2, 2]).iter().collect::<Vec<_>>(), vec!["/shop", "héllo", "héllo"]);
        c.truncate(2);
        c.push("x");
        assert_eq!(c.iter().collect::<Vec<_>>(), vec!["/help", "", "x"]);
        c.pop();
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(7), "");
        let mut d = StrColumn::new();
        d.push("a");
        d.extend(&c);
        assert_eq!(d.iter().collect::<Vec<_>>(), vec!["a", "/help", ""]);
    }

    #[test]
    fn parts_are_checked() {
        let ok = StrColumn::from_parts(vec![0, 1, 3], "aé".to_string()).expect("valid");
        assert_eq!(ok.get(1), "é");
        assert!(StrColumn::from_parts(vec![0, 2, 3], "aé".to_string()).is_err());
        assert!(StrColumn::from_parts(vec![0, 3, 1], "aé".to_string()).is_err());
        assert!(StrColumn::from_parts(vec![1, 3], "aé".to_string()).is_err());
        assert!(StrColumn::from_parts(vec![0, 1], "aé".to_string()).is_err());
        assert!(StrColumn::from_parts(vec![], String::new()).is_err());
    }

    #[test]
    fn dictionary_columns_read_like_plain_ones_and_stay_dictionaries_while_they_can() {
        let d = dict(&["/help", "/index", "héllo"]);
        let c = StrColumn::from_ids(d.clone(), vec![2, 0, 0, 1]).expect("ids in range");
        assert!(StrColumn::from_ids(d.clone(), vec![3]).is_none());
        assert_eq!(c.iter().collect::<Vec<_>>(), vec!["héllo", "/help", "/help", "/index"]);
        assert_eq!(c, c.to_plain());
        assert_eq!(c.bytes(0), "héllo".as_bytes());
        // Rows of the same dictionary stay ids, into an empty column too.
        let mut e = StrColumn::new();
        e.extend_rows(&c, &[3, 0]);
        e.extend(&StrColumn::from_ids(d.clone(), vec![1]).expect("ids"));
        assert!(e.dictionary().is_some());
        assert_eq!(e.iter().collect::<Vec<_>>(), vec!["/index", "héllo", "/index"]);
        // A dictionary with the same strings counts as the same.
        e.extend(&StrColumn::from_ids(dict(&["/help", "/index", "héllo"]), vec![0]).expect("ids"));
        assert!(e.dictionary().is_some());
        // Anything else makes it plain, keeping every string.
        e.extend(&StrColumn::from_ids(dict(&["x"]), vec![0]).expect("ids"));
        assert!(e.dictionary().is_none());
        e.push("y");
        assert_eq!(e.iter().collect::<Vec<_>>(), vec!["/index", "héllo", "/index", "/help", "x", "y"]);
        let g = c.gather(&[1, 0]);
        assert!(g.dictionary().is_some());
        assert_eq!(g.iter().collect::<Vec<_>>(), vec!["/help", "héllo"]);
        let mut t = c.clone();
        t.truncate(1);
        t.pop();
        assert!(t.is_empty());
        assert_eq!(StrColumn::repeat("k", 3).iter().collect::<Vec<_>>(), vec!["k", "k", "k"]);
    }
}
