//! The functions a job imports, as the checker resolves calls: by name,
//! to a callable function of a library or to the reason it cannot be
//! called. Calls are recorded, so that a `pub fn` that cannot be called is
//! an error where it is called and a warning where it is not.

use super::signature::Refusal;
use super::types::UdfSignature;
use crate::ir::UdfRef;
use flowc_dsl::{SourceFile, Span};
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// What a name imported from a Rust file is.
#[derive(Debug, Clone)]
pub enum Imported {
    Callable { at: UdfRef, signature: UdfSignature },
    Refused(Refusal),
}

#[derive(Debug, Clone)]
pub struct ImportedFn {
    pub what: Imported,
    /// The Rust file and where the function's name is in it.
    pub file: Arc<SourceFile>,
    pub name_span: Span,
    /// Its signature as written there, and its doc comment (for editors).
    pub signature_span: Span,
    pub doc: String,
    /// The `use rust` statement that imported it.
    pub use_span: Span,
}

/// The imported functions of a job.
#[derive(Debug, Default)]
pub struct Udfs {
    by_name: HashMap<String, ImportedFn>,
    /// Names called so far.
    called: RefCell<BTreeSet<String>>,
}

impl Udfs {
    pub fn insert(&mut self, name: String, f: ImportedFn) {
        self.by_name.insert(name, f);
    }

    pub fn get(&self, name: &str) -> Option<&ImportedFn> {
        self.by_name.get(name)
    }

    /// Looks a name up for a call, and remembers that it is called.
    pub fn call(&self, name: &str) -> Option<&ImportedFn> {
        let f = self.by_name.get(name)?;
        self.called.borrow_mut().insert(name.to_string());
        Some(f)
    }

    pub fn is_called(&self, name: &str) -> bool {
        self.called.borrow().contains(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// Every imported function, in the order of the imports and of the
    /// functions in each file.
    pub fn in_order(&self) -> Vec<(&str, &ImportedFn)> {
        let mut all: Vec<(&str, &ImportedFn)> = self.by_name.iter().map(|(n, f)| (n.as_str(), f)).collect();
        all.sort_by_key(|(_, f)| (f.use_span.start, f.name_span.start));
        all
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}
