//! `regex_match` and `regex_extract`: the pattern is a constant (the
//! checker proves it, and that it compiles), compiled once when the
//! expression is, and run in linear time (the `regex` crate: no
//! backtracking, so no pattern can stall a task).

use super::functions::{Arg, ColumnFunction, FnError};
use crate::data::{Column, Data, StrColumn, Validity};
use flowc_compiler::ir::DataType;
use regex::Regex;

#[derive(Debug)]
pub struct RegexFn {
    re: Regex,
    /// `regex_extract`'s group; `None` for `regex_match`.
    group: Option<usize>,
}

impl RegexFn {
    /// `regex_match(s, pattern)`; an error if the pattern does not compile
    /// (the checker rules it out).
    pub fn matcher(pattern: &str) -> Result<RegexFn, String> {
        Ok(RegexFn { re: Regex::new(pattern).map_err(|e| e.to_string())?, group: None })
    }

    /// `regex_extract(s, pattern, group)`.
    pub fn extractor(pattern: &str, group: i64) -> Result<RegexFn, String> {
        let re = Regex::new(pattern).map_err(|e| e.to_string())?;
        let group = usize::try_from(group).ok().filter(|g| *g < re.captures_len());
        let Some(group) = group else { return Err(format!("no group {group:?} in `{pattern}`")) };
        Ok(RegexFn { re, group: Some(group) })
    }
}

impl ColumnFunction for RegexFn {
    fn name(&self) -> &str {
        if self.group.is_some() {
            "regex_extract"
        } else {
            "regex_match"
        }
    }

    fn return_type(&self) -> DataType {
        if self.group.is_some() {
            DataType::String
        } else {
            DataType::Bool
        }
    }

    fn fallible(&self) -> bool {
        false
    }

    fn invoke(&self, args: &[Arg<'_>], n: usize) -> Result<Column, FnError> {
        let Some(Arg::Str(s)) = args.first() else {
            return Err(FnError { k: 0, message: "internal error: a regex of a non-string (a bug in flowc)".into() });
        };
        match self.group {
            None => Ok(Column::new(DataType::Bool, Data::Bool((0..n).map(|k| self.re.is_match(s.get(k))).collect()))),
            Some(g) => {
                // Null where the pattern does not match (or the group took no part), as Flink's REGEXP_EXTRACT.
                let mut out = StrColumn::with_capacity(n, n * 8);
                let mut valid = Validity::default();
                for k in 0..n {
                    match self.re.captures(s.get(k)).and_then(|c| c.get(g)) {
                        Some(m) => {
                            out.push(m.as_str());
                            valid.push(true);
                        }
                        None => {
                            out.push("");
                            valid.push(false);
                        }
                    }
                }
                Ok(Column::with_validity(DataType::String, Data::Str(out), Some(valid)))
            }
        }
    }
}
