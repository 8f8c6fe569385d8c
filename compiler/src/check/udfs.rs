//! `use rust "…"`: the Rust files a job imports, read by the caller (the
//! compiler does no I/O) and handed over in [`CheckOptions::rust_files`].
//!
//! Each file's top-level `pub fn`s become names the job can call; a name
//! that clashes with a built-in function or another import is an error at
//! the `use`. A `pub fn` flowc cannot call is a warning in the Rust file,
//! unless it is called: then the call is an error (see `typing`).

use super::{CheckOptions, Checker};
use crate::ir::{AggFunc, Function, UdfLibrary};
use crate::udf::{self, Imported, ImportedFn, Manifest};
use flowc_dsl::ast::{Item, JobFile};
use flowc_dsl::Diagnostic;

/// The names of functions flowc has itself.
fn builtin(name: &str) -> bool {
    Function::by_name(name).is_some()
        || AggFunc::by_name(name).is_some()
        || matches!(name, "window_start" | "window_end")
}

impl Checker {
    /// Reads the imports of `file`; the libraries of the plan, in order.
    pub(super) fn imports(&mut self, file: &JobFile, options: &CheckOptions) -> Vec<UdfLibrary> {
        let mut libraries = Vec::new();
        let mut seen: Vec<(String, flowc_dsl::Span)> = Vec::new();
        for item in &file.items {
            let Item::UseRust(u) = item else { continue };
            let path = &u.path.value;
            if let Some((_, first)) = seen.iter().find(|(p, _)| p == path) {
                self.err(
                    Diagnostic::error("flow::udf::duplicate-use", format!("`{path}` is imported twice"), u.path.span)
                        .with_label("imported again here")
                        .with_secondary(*first, "first imported here"),
                );
                continue;
            }
            seen.push((path.clone(), u.path.span));
            if !path.ends_with(".rs") {
                self.err(
                    Diagnostic::error("flow::udf::not-rust", format!("`{path}` is not a Rust file"), u.path.span)
                        .with_label("expected a path ending in `.rs`"),
                );
                continue;
            }
            let rust = match options.rust_files.get(path) {
                Some(Ok(f)) => f.clone(),
                Some(Err(reason)) => {
                    self.err(
                        Diagnostic::error("flow::udf::read", format!("cannot read `{path}`: {reason}"), u.path.span)
                            .with_label("imported here")
                            .with_help("the path is relative to the job file"),
                    );
                    continue;
                }
                None => {
                    self.err(
                        Diagnostic::error("flow::udf::read", format!("`{path}` was not read"), u.path.span)
                            .with_label("imported here")
                            .with_help(
                                "flowc reads a `use rust` file next to the job file when it compiles it; \
                                 a job sent alone (a `.flow` upload) cannot bring it: compile it with \
                                 `flowc compile` or `flowc run` instead",
                            ),
                    );
                    continue;
                }
            };
            if let Err(e) = Manifest::read(&rust.text) {
                let mut d = Diagnostic::error("flow::udf::manifest", e.message, e.span).in_file(rust.clone());
                if let Some(h) = e.help {
                    d = d.with_help(h);
                }
                self.err(d);
                continue;
            }
            let fns = match udf::pub_fns(&rust.text) {
                Ok(fns) => fns,
                Err(e) => {
                    self.err(
                        Diagnostic::error(
                            "flow::udf::syntax",
                            format!("`{path}` is not valid Rust: {}", e.message),
                            e.span,
                        )
                        .in_file(rust.clone())
                        .with_label("here"),
                    );
                    continue;
                }
            };
            let library = libraries.len() as u32;
            let mut functions = Vec::new();
            for f in fns {
                if builtin(&f.name) {
                    self.err(
                        Diagnostic::error(
                            "flow::udf::name-clash",
                            format!("`{}` of `{path}` has the name of a built-in function", f.name),
                            u.path.span,
                        )
                        .with_label(format!("imports `{}`", f.name))
                        .with_elsewhere(rust.clone(), f.name_span, "defined here")
                        .with_help(format!("rename the Rust function; `{}` stays the built-in one", f.name)),
                    );
                    continue;
                }
                if let Some(first) = self.udfs.get(&f.name) {
                    let d = Diagnostic::error(
                        "flow::udf::name-clash",
                        format!("`{}` is imported twice", f.name),
                        u.path.span,
                    )
                    .with_label(format!("imports `{}` again", f.name))
                    .with_secondary(first.use_span, "first imported here")
                    .with_elsewhere(first.file.clone(), first.name_span, "first defined here")
                    .with_elsewhere(rust.clone(), f.name_span, "defined again here")
                    .with_help("rename one of the Rust functions");
                    self.err(d);
                    continue;
                }
                let what = match f.signature {
                    Ok(signature) => {
                        let at = signature.at(library, functions.len() as u32);
                        functions.push(signature.clone());
                        Imported::Callable { at, signature }
                    }
                    Err(r) => Imported::Refused(r),
                };
                self.udfs.insert(
                    f.name,
                    ImportedFn {
                        what,
                        file: rust.clone(),
                        name_span: f.name_span,
                        signature_span: f.signature_span,
                        doc: f.doc,
                        use_span: u.path.span,
                    },
                );
            }
            libraries.push(UdfLibrary { path: path.clone(), functions, artifact: None });
        }
        libraries
    }

    /// Warnings for the `pub fn`s that cannot be called and are not.
    pub(super) fn uncalled_refusals(&mut self) {
        let mut refused: Vec<(&str, &ImportedFn)> = self
            .udfs
            .names()
            .filter_map(|n| self.udfs.get(n).map(|f| (n, f)))
            .filter(|(n, f)| matches!(f.what, Imported::Refused(_)) && !self.udfs.is_called(n))
            .collect();
        refused.sort_by_key(|(_, f)| (f.use_span.start, f.name_span.start));
        let warnings: Vec<Diagnostic> = refused
            .into_iter()
            .filter_map(|(name, f)| {
                let Imported::Refused(r) = &f.what else { return None };
                let mut d = Diagnostic::warning(
                    "flow::udf::signature",
                    format!("`{name}` cannot be called from flowc, and is not imported"),
                    r.span,
                )
                .in_file(f.file.clone())
                .with_label(r.reason.clone());
                if let Some(h) = &r.help {
                    d = d.with_help(h.clone());
                }
                Some(d)
            })
            .collect();
        self.diags.extend(warnings);
    }
}
