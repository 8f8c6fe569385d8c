//! The Rust functions a job imports (`use rust "…"`), as an editor shows
//! them: a hover with the signature as the Rust file writes it and as
//! flowc sees it, and the doc comment; completion items; the place of the
//! `fn` in the Rust file. All from the checker's record
//! ([`CheckInfo::udfs`](flowc_compiler::check::CheckInfo)), which read the
//! files the job names.

use crate::analysis::Analysis;
use flowc_compiler::udf::{Imported, ImportedFn, UdfSignature, UdfType};
use flowc_dsl::SourceFile;
use lsp_types::{CompletionItem, CompletionItemKind, Documentation, MarkupContent, MarkupKind, Uri};
use std::str::FromStr as _;

/// The imported function `name`, callable or not.
pub fn find<'a>(a: &'a Analysis, name: &str) -> Option<&'a ImportedFn> {
    a.info.udfs.iter().find(|(n, _)| n == name).map(|(_, f)| f)
}

/// `name(a: double, b: string?) -> long?`: the function as flowc calls it.
pub fn flowc_signature(s: &UdfSignature) -> String {
    let ty = |t: &UdfType| format!("{}{}", t.data_type(), if t.optional { "?" } else { "" });
    let params: Vec<String> = s.params.iter().map(|p| format!("{}: {}", p.name, ty(&p.ty))).collect();
    format!("{}({}) -> {}", s.name, params.join(", "), ty(&s.ret))
}

/// The signature as the Rust file writes it, on one line.
fn rust_signature(f: &ImportedFn) -> String {
    let text = f.file.text.get(f.signature_span.start..f.signature_span.end).unwrap_or("");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Markdown for a hover on a call of `f`.
pub fn hover(a: &Analysis, f: &ImportedFn) -> String {
    let mut text = format!("```rust\n{}\n```", rust_signature(f));
    match &f.what {
        Imported::Callable { signature, .. } => {
            text.push_str(&format!("\n\n```flow\n{}\n```", flowc_signature(signature)));
        }
        Imported::Refused(r) => {
            text.push_str(&format!("\n\nflowc cannot call it: {}", r.reason));
            if let Some(h) = &r.help {
                text.push_str(&format!(" ({h})"));
            }
        }
    }
    if !f.doc.is_empty() {
        text.push_str(&format!("\n\n{}", f.doc));
    }
    text.push_str(&format!("\n\nRust function, `use rust {}`", a.slice(f.use_span)));
    text
}

/// A completion item for each function the job can call.
pub fn completions(a: &Analysis) -> Vec<CompletionItem> {
    a.info
        .udfs
        .iter()
        .filter_map(|(name, f)| match &f.what {
            Imported::Callable { signature, .. } => Some((name, f, signature)),
            Imported::Refused(_) => None,
        })
        .map(|(name, f, signature)| {
            let mut doc = format!("```rust\n{}\n```", rust_signature(f));
            if !f.doc.is_empty() {
                doc.push_str(&format!("\n\n{}", f.doc));
            }
            CompletionItem {
                label: name.clone(),
                kind: Some(CompletionItemKind::FUNCTION),
                detail: Some(flowc_signature(signature)),
                documentation: Some(Documentation::MarkupContent(MarkupContent {
                    kind: MarkupKind::Markdown,
                    value: doc,
                })),
                sort_text: Some(format!("1{name}")),
                ..CompletionItem::default()
            }
        })
        .collect()
}

/// The `file:` URI of a file read from disk by its path.
pub fn file_uri(file: &SourceFile) -> Option<Uri> {
    let mut uri = String::from("file://");
    for b in file.name.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            uri.push(b as char);
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    Uri::from_str(&uri).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn trips() -> Analysis {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../jobs/examples/udf/trips.flow");
        let text = std::fs::read_to_string(&path).expect("trips.flow");
        Analysis::at(Some(&path), text)
    }

    #[test]
    fn the_functions_of_the_example_job() {
        let a = trips();
        assert!(a.diagnostics.iter().all(|d| !d.is_error()), "{:#?}", a.diagnostics);
        let names: Vec<&str> = a.info.udfs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["geo_distance", "label", "hour_of", "subpage", "or_top", "segments", "longest", "checked_id", "unsigned"]
        );
        let f = find(&a, "subpage").expect("subpage");
        let h = hover(&a, f);
        assert_eq!(
            h,
            "```rust\npub fn subpage(page: &str) -> Option<String>\n```\n\n```flow\nsubpage(page: string) -> string?\n```\
             \n\nThe page past its first segment (`/shop/cart` → `cart`); `None`, a\nnull, for a page without one.\
             \n\nRust function, `use rust \"udfs/geo.rs\"`"
        );
        let h = hover(&a, find(&a, "unsigned").expect("unsigned"));
        assert!(h.starts_with("```rust\npub fn unsigned(x: u32) -> u32\n```\n\nflowc cannot call it: "), "{h}");
        let labels: Vec<String> = completions(&a).into_iter().map(|i| i.label).collect();
        assert_eq!(labels.len(), 8, "`unsigned` cannot be called: {labels:?}");
        let h = hover(&a, find(&a, "longest").expect("longest"));
        assert!(h.contains("longest(segments: array<string>) -> string?"), "{h}");
    }

    #[test]
    fn uris_escape_what_a_path_may_hold() {
        let f = SourceFile::new("/tmp/my jobs/ü.rs", String::new());
        assert_eq!(file_uri(&f).map(|u| u.to_string()).as_deref(), Some("file:///tmp/my%20jobs/%C3%BC.rs"));
    }
}
