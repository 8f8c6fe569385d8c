//! Reading a Rust file's `pub fn`s with `syn`, and mapping their
//! signatures to flowc's types.
//!
//! Only top-level `pub fn`s are looked at; other items (private
//! functions, structs, `mod`s, `impl`s) are the file's own business. A
//! `pub fn` whose signature flowc cannot call is kept with the reason and
//! where it is written, so that the checker can warn about it (or refuse a
//! call of it).

use super::types::{ListOf, RustType, UdfParam, UdfSignature, UdfType};
use flowc_dsl::Span;
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, GenericParam, Pat, PathArguments, ReturnType, Type};

/// A `pub fn` of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct PubFn {
    pub name: String,
    /// The function's name in the Rust file.
    pub name_span: Span,
    /// Its signature as written, `pub fn name(…) -> …` (for editors).
    pub signature_span: Span,
    /// Its doc comment (`///` lines, `#[doc = "…"]`), one line each,
    /// without the slashes and the one space after them.
    pub doc: String,
    pub signature: Result<UdfSignature, Refusal>,
}

/// Why a signature cannot be called from flowc, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub reason: String,
    pub span: Span,
    pub help: Option<String>,
}

/// A Rust file that does not parse.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub message: String,
    pub span: Span,
}

/// The top-level `pub fn`s of `text`, in source order.
pub fn pub_fns(text: &str) -> Result<Vec<PubFn>, ParseError> {
    let parsed = syn::parse_file(text);
    let result = match parsed {
        Ok(file) => Ok(file
            .items
            .iter()
            .filter_map(|item| match item {
                syn::Item::Fn(f) if matches!(f.vis, syn::Visibility::Public(_)) => Some(pub_fn(f)),
                _ => None,
            })
            .collect()),
        Err(e) => Err(ParseError { message: e.to_string(), span: span(e.span()) }),
    };
    // Spans are kept per thread for every text parsed; none is needed
    // past this point (a long-running process would otherwise grow).
    proc_macro2::extra::invalidate_current_thread_spans();
    result
}

fn span(s: proc_macro2::Span) -> Span {
    let r = s.byte_range();
    Span::new(r.start, r.end)
}

fn refuse(at: impl Spanned, reason: impl Into<String>) -> Refusal {
    Refusal { reason: reason.into(), span: span(at.span()), help: None }
}

impl Refusal {
    fn help(mut self, h: impl Into<String>) -> Refusal {
        self.help = Some(h.into());
        self
    }
}

const SUPPORTED: &str = "the types flowc passes are i32, i64, f64, bool, String, &str (parameters), \
                         chrono::DateTime<Utc>, chrono::NaiveDateTime, Option<T>, and Vec<T> and \
                         Vec<Option<T>> of these (arrays)";

fn pub_fn(f: &syn::ItemFn) -> PubFn {
    let name = f.sig.ident.to_string();
    let signature_span = Span::new(span(f.vis.span()).start, span(f.sig.span()).end);
    PubFn {
        name,
        name_span: span(f.sig.ident.span()),
        signature_span,
        doc: doc(&f.attrs),
        signature: signature(&f.sig),
    }
}

/// The doc comment of an item: its `#[doc = "…"]` attributes, which is
/// what `///` lines are.
fn doc(attrs: &[syn::Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .map(|line| line.strip_prefix(' ').unwrap_or(&line).trim_end().to_string())
        .collect();
    lines.join("\n").trim().to_string()
}

fn signature(sig: &syn::Signature) -> Result<UdfSignature, Refusal> {
    if let Some(a) = &sig.asyncness {
        return Err(refuse(a, "an `async fn` cannot be called from flowc")
            .help("flowc calls a function once per batch, synchronously: make it a plain `fn`"));
    }
    if let Some(u) = &sig.unsafety {
        return Err(refuse(u, "an `unsafe fn` cannot be called from flowc")
            .help("flowc cannot uphold its safety conditions: make it safe, checking what it needs inside"));
    }
    if let Some(abi) = &sig.abi {
        return Err(refuse(abi, "an `extern` function cannot be called from flowc")
            .help("remove the ABI: flowc generates the wrapper that crosses the boundary"));
    }
    if let Some(v) = &sig.variadic {
        return Err(refuse(v, "a variadic function cannot be called from flowc"));
    }
    if let Some(g) = sig.generics.params.iter().find(|g| !matches!(g, GenericParam::Lifetime(_))) {
        return Err(refuse(g, "a generic function cannot be called from flowc")
            .help("flowc needs concrete types: write one function per type"));
    }
    let mut params = Vec::with_capacity(sig.inputs.len());
    for input in &sig.inputs {
        let FnArg::Typed(pt) = input else {
            return Err(refuse(input, "a method cannot be called from flowc"));
        };
        let name = match &*pt.pat {
            Pat::Ident(i) if i.by_ref.is_none() && i.subpat.is_none() => i.ident.to_string(),
            Pat::Wild(_) => "_".to_string(),
            other => {
                return Err(refuse(other, "a parameter must be a plain name, not a pattern")
                    .help("take the value whole and destructure it inside the function"))
            }
        };
        let ty = udf_type(&pt.ty, true)?;
        params.push(UdfParam { name, ty });
    }
    let ret = match &sig.output {
        ReturnType::Default => {
            return Err(refuse(&sig.ident, "a function without a result cannot be called in an expression")
                .help("return the value the expression should have"))
        }
        ReturnType::Type(_, ty) => udf_type(ty, false)?,
    };
    Ok(UdfSignature { name: sig.ident.to_string(), params, ret })
}

/// The flowc type of a parameter's (`param`) or the result's Rust type.
fn udf_type(ty: &Type, param: bool) -> Result<UdfType, Refusal> {
    if let Some(inner) = option_inner(ty)? {
        let t = udf_type(inner, param)?;
        if t.optional {
            return Err(refuse(ty, "`Option<Option<…>>` has no flowc type").help("use one `Option`"));
        }
        return Ok(UdfType { optional: true, ..t });
    }
    if let Some(elem) = generic_inner(ty, "Vec")? {
        // `Vec<T>` is `array<T>`, `Vec<Option<T>>` `array<T?>`.
        let (elem, nulls) = match option_inner(elem)? {
            Some(inner) => (inner, true),
            None => (elem, false),
        };
        if generic_inner(elem, "Vec")?.is_some() || matches!(peel(elem), Type::Array(_) | Type::Slice(_)) {
            return Err(refuse(ty, "nested arrays have no flowc type")
                .help("flowc's arrays hold scalars: pass the inner values as an array of their own"));
        }
        if option_inner(elem)?.is_some() {
            return Err(refuse(ty, "`Option<Option<…>>` has no flowc type").help("use one `Option`"));
        }
        if last_segment(elem).is_some_and(|s| s.ident == "u8" && s.arguments.is_empty()) {
            return Err(refuse(ty, "`Vec<u8>` has no flowc type")
                .help("flowc has no bytes type: take a `String`, or a `Vec<i32>` of `array<int>`"));
        }
        let rust = rust_type(elem, param)?;
        return Ok(UdfType { rust, optional: false, list: Some(ListOf { nulls }) });
    }
    Ok(UdfType::scalar(rust_type(ty, param)?))
}

/// `ty` without parentheses or invisible groups.
fn peel(ty: &Type) -> &Type {
    match ty {
        Type::Paren(p) => peel(&p.elem),
        Type::Group(g) => peel(&g.elem),
        _ => ty,
    }
}

/// `T` of `<name><T>` (`Vec<T>`); `None` when `ty` is not a `name`.
fn generic_inner<'t>(ty: &'t Type, name: &str) -> Result<Option<&'t Type>, Refusal> {
    let Some(last) = last_segment(ty) else { return Ok(None) };
    if last.ident != name {
        return Ok(None);
    }
    match &last.arguments {
        PathArguments::AngleBracketed(a) if a.args.len() == 1 => match a.args.first() {
            Some(GenericArgument::Type(t)) => Ok(Some(t)),
            _ => Err(refuse(ty, format!("`{name}` needs one type argument"))),
        },
        _ => Err(refuse(ty, format!("`{name}` needs one type argument"))),
    }
}

/// `T` of `Option<T>`; `None` when `ty` is not an `Option`.
fn option_inner(ty: &Type) -> Result<Option<&Type>, Refusal> {
    let Type::Path(p) = ty else { return Ok(None) };
    let Some(last) = p.path.segments.last() else { return Ok(None) };
    if last.ident != "Option" || p.qself.is_some() {
        return Ok(None);
    }
    match &last.arguments {
        PathArguments::AngleBracketed(a) if a.args.len() == 1 => match a.args.first() {
            Some(GenericArgument::Type(t)) => Ok(Some(t)),
            _ => Err(refuse(ty, "`Option` needs one type argument")),
        },
        _ => Err(refuse(ty, "`Option` needs one type argument")),
    }
}

/// The last segment of a plain path type (`chrono::Utc` → `Utc`), with its arguments.
fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        Type::Paren(p) => last_segment(&p.elem),
        Type::Group(g) => last_segment(&g.elem),
        _ => None,
    }
}

fn rust_type(ty: &Type, param: bool) -> Result<RustType, Refusal> {
    match ty {
        Type::Reference(r) => {
            if r.mutability.is_some() {
                return Err(refuse(ty, "a `&mut` parameter cannot be passed from flowc")
                    .help("flowc passes values, not places to write to: return the result instead"));
            }
            if matches!(peel(&r.elem), Type::Slice(_)) {
                return Err(refuse(ty, "a slice cannot be borrowed from flowc's arrays")
                    .help("take `Vec<T>` (or `Vec<Option<T>>` for an array whose elements may be null)"));
            }
            if generic_inner(&r.elem, "Vec")?.is_some() {
                return Err(
                    refuse(ty, "only `&str` can be borrowed").help("take the `Vec` itself (`Vec<T>`, not `&Vec<T>`)")
                );
            }
            let is_str = matches!(last_segment(&r.elem), Some(s) if s.ident == "str" && s.arguments.is_empty());
            if !is_str {
                return Err(refuse(ty, "only `&str` can be borrowed").help("take the value itself (`T`, not `&T`)"));
            }
            if !param {
                return Err(
                    refuse(ty, "a function cannot return a borrowed `&str` to flowc").help("return an owned `String`")
                );
            }
            return Ok(RustType::Str);
        }
        Type::Tuple(t) if t.elems.is_empty() => {
            return Err(refuse(ty, "`()` has no flowc type").help("return the value the expression should have"))
        }
        Type::Tuple(_) => {
            return Err(refuse(ty, "tuples have no flowc type")
                .help("pass each value as its own parameter; return one value (call several functions for several)"))
        }
        Type::ImplTrait(_) => {
            return Err(refuse(ty, "`impl Trait` is generic and cannot be called from flowc")
                .help("flowc needs concrete types: write one function per type"))
        }
        Type::Ptr(_) => return Err(refuse(ty, "raw pointers cannot be passed from flowc")),
        Type::Array(_) | Type::Slice(_) => {
            return Err(refuse(ty, "fixed-size arrays and slices have no flowc type")
                .help("take `Vec<T>` (or `Vec<Option<T>>` for an array whose elements may be null)"))
        }
        _ => {}
    }
    let unknown = || {
        let shown =
            quote::ToTokens::to_token_stream(ty).to_string().replace(" < ", "<").replace(" >", ">").replace(" ,", ",");
        refuse(ty, format!("`{shown}` has no flowc type")).help(SUPPORTED)
    };
    let Some(seg) = last_segment(ty) else { return Err(unknown()) };
    let plain = seg.arguments.is_empty();
    let name = seg.ident.to_string();
    Ok(match name.as_str() {
        "i32" if plain => RustType::I32,
        "i64" if plain => RustType::I64,
        "f64" if plain => RustType::F64,
        "bool" if plain => RustType::Bool,
        "String" if plain => RustType::String,
        "NaiveDateTime" if plain => RustType::NaiveDateTime,
        "DateTime" => match &seg.arguments {
            PathArguments::AngleBracketed(a) if a.args.len() == 1 => match a.args.first() {
                Some(GenericArgument::Type(t)) if last_segment(t).is_some_and(|s| s.ident == "Utc") => {
                    RustType::DateTimeUtc
                }
                _ => {
                    return Err(refuse(ty, "only `DateTime<Utc>` is a flowc timestamp")
                        .help("flowc timestamps are UTC: take `DateTime<Utc>` and convert inside"))
                }
            },
            _ => return Err(unknown()),
        },
        "str" => {
            return Err(refuse(ty, "`str` is unsized: take `&str`"));
        }
        "u8" | "u16" | "u32" | "u64" | "usize" | "i8" | "i16" | "i128" | "u128" | "isize" => {
            return Err(refuse(ty, format!("`{name}` has no flowc type"))
                .help("flowc's integers are `i32` (int) and `i64` (long)"))
        }
        "f32" => {
            return Err(refuse(ty, "`f32` has no flowc type").help("flowc's floating-point type is `f64` (double)"))
        }
        _ => return Err(unknown()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The signature of the only `pub fn` in `src`, or its refusal (with the refused text).
    fn check(src: &str) -> Result<String, (String, String)> {
        let fns = pub_fns(src).expect("parses");
        assert_eq!(fns.len(), 1, "{fns:?}");
        match &fns[0].signature {
            Ok(s) => Ok(s.to_string()),
            Err(r) => Err((r.reason.clone(), src[r.span.start..r.span.end].to_string())),
        }
    }

    #[test]
    fn keeps_the_doc_comment_and_where_the_signature_is() {
        let src = "//! The file's doc.\n\n/// Adds one.\n///\n///   Indented.\n#[doc = \"More.\"]\n#[inline]\npub fn inc(x: i64)\n    -> i64 { x + 1 }\n\npub fn bare() -> i64 { 0 }\n";
        let fns = pub_fns(src).expect("parses");
        assert_eq!(fns[0].doc, "Adds one.\n\n  Indented.\nMore.");
        let s = fns[0].signature_span;
        assert_eq!(&src[s.start..s.end], "pub fn inc(x: i64)\n    -> i64");
        assert_eq!(&src[fns[0].name_span.start..fns[0].name_span.end], "inc");
        assert_eq!(fns[1].doc, "");
        let s = fns[1].signature_span;
        assert_eq!(&src[s.start..s.end], "pub fn bare() -> i64");
    }

    #[test]
    fn maps_the_supported_types() {
        assert_eq!(
            check("pub fn f(a: i32, b: i64, c: f64, d: bool) -> i64 { 0 }"),
            Ok("fn f(a: i32, b: i64, c: f64, d: bool) -> i64".into())
        );
        assert_eq!(
            check("pub fn f(s: &str, t: String) -> String { t }"),
            Ok("fn f(s: &str, t: String) -> String".into())
        );
        assert_eq!(check("pub fn f<'a>(s: &'a str) -> bool { true }"), Ok("fn f(s: &str) -> bool".into()));
        assert_eq!(
            check("pub fn f(x: Option<i64>) -> Option<String> { None }"),
            Ok("fn f(x: Option<i64>) -> Option<String>".into())
        );
        assert_eq!(
            check("pub fn f(t: chrono::DateTime<chrono::Utc>, n: NaiveDateTime) -> DateTime<Utc> { t }"),
            Ok("fn f(t: chrono::DateTime<chrono::Utc>, n: chrono::NaiveDateTime) -> chrono::DateTime<chrono::Utc>"
                .into())
        );
        assert_eq!(check("pub fn f(x: std::string::String) -> (i64) { 0 }"), Ok("fn f(x: String) -> i64".into()));
        let t = |s: &str| pub_fns(s).expect("parses")[0].signature.clone().expect("accepted");
        let s = t("pub fn f(a: i32, b: Option<f64>, c: &str) -> chrono::NaiveDateTime { todo!() }");
        use crate::ir::DataType as D;
        let types: Vec<D> = s.params.iter().map(|p| p.ty.data_type()).collect();
        assert_eq!(types, [D::Int, D::Double, D::String]);
        assert_eq!(s.ret.data_type(), D::Timestamp);
    }

    #[test]
    fn option_parameters_take_nulls_and_an_option_result_is_nullable() {
        let s = |src: &str| pub_fns(src).expect("parses")[0].signature.clone().expect("accepted");
        let f = s("pub fn f(a: Option<i64>, b: &str, c: Option<&str>, d: Option<String>) -> Option<f64> { None }");
        assert_eq!(f.to_string(), "fn f(a: Option<i64>, b: &str, c: Option<&str>, d: Option<String>) -> Option<f64>");
        let at = f.at(2, 5);
        assert_eq!((at.library, at.function, at.null_result), (2, 5, true));
        let takes: Vec<bool> = (0..5).map(|i| at.takes_null(i)).collect();
        assert_eq!(takes, [true, false, true, true, false]);
        let plain = s("pub fn g(x: i64) -> bool { true }").at(0, 0);
        assert!(!plain.null_result && !plain.takes_null(0));
    }

    #[test]
    fn refuses_what_flowc_cannot_call_and_says_where() {
        let r = |src: &str| check(src).expect_err("refused");
        assert_eq!(r("pub async fn f() -> i64 { 0 }").1, "async");
        assert_eq!(r("pub unsafe fn f() -> i64 { 0 }").1, "unsafe");
        assert_eq!(r("pub fn f<T: Copy>(x: T) -> T { x }").1, "T: Copy");
        assert_eq!(r("pub fn f(x: &mut i64) -> i64 { 0 }").1, "&mut i64");
        assert_eq!(r("pub fn f(x: &i64) -> i64 { 0 }").1, "&i64");
        assert_eq!(r("pub fn f(x: (i64, i64)) -> i64 { 0 }").1, "(i64, i64)");
        assert_eq!(r("pub fn f(x: i64) -> (i64, bool) { (0, true) }").1, "(i64, bool)");
        assert_eq!(r("pub fn f(x: u32) -> i64 { 0 }").1, "u32");
        assert_eq!(r("pub fn f(x: HashMap<i64, i64>) -> i64 { 0 }").0, "`HashMap<i64, i64>` has no flowc type");
        assert_eq!(r("pub fn f(x: i64) { }").1, "f");
        assert_eq!(r("pub fn f(x: i64) -> &str { \"\" }").1, "&str");
        assert_eq!(r("pub fn f((a, b): (i64, i64)) -> i64 { a }").1, "(a, b)");
        assert_eq!(r("pub fn f(x: impl Into<i64>) -> i64 { 0 }").1, "impl Into<i64>");
        assert_eq!(r("pub fn f(x: DateTime<Local>) -> i64 { 0 }").1, "DateTime<Local>");
        assert_eq!(r("pub fn f(x: Option<Option<i64>>) -> i64 { 0 }").1, "Option<Option<i64>>");
        assert_eq!(r("pub extern \"C\" fn f(x: i64) -> i64 { 0 }").1, "extern \"C\"");
    }

    #[test]
    fn vecs_are_arrays_of_scalars_their_elements_and_themselves_perhaps_null() {
        let s = |src: &str| pub_fns(src).expect("parses")[0].signature.clone().expect("accepted");
        let f = s("pub fn f(a: Vec<i64>, b: Vec<Option<String>>, c: Option<Vec<f64>>, d: Option<Vec<Option<bool>>>, \
                   e: Vec<&str>, g: std::vec::Vec<i32>, h: Vec<chrono::DateTime<chrono::Utc>>) -> Option<Vec<Option<String>>> { None }");
        assert_eq!(
            f.to_string(),
            "fn f(a: Vec<i64>, b: Vec<Option<String>>, c: Option<Vec<f64>>, d: Option<Vec<Option<bool>>>, \
             e: Vec<&str>, g: Vec<i32>, h: Vec<chrono::DateTime<chrono::Utc>>) -> Option<Vec<Option<String>>>"
        );
        use crate::ir::{DataType as D, Elem};
        let types: Vec<D> = f.params.iter().map(|p| p.ty.data_type()).collect();
        let (plain, nulls) = (|e: Elem| D::Array(e), |e: Elem| D::Array(e.with_nulls(true)));
        assert_eq!(
            types,
            [
                plain(Elem::LONG),
                nulls(Elem::STRING),
                plain(Elem::DOUBLE),
                nulls(Elem::BOOL),
                plain(Elem::STRING),
                plain(Elem::INT),
                plain(Elem::TIMESTAMP)
            ]
        );
        assert_eq!(f.ret.data_type(), nulls(Elem::STRING));
        // An `Option<Vec<…>>` takes a null array; the elements' `Option` is not the array's.
        let at = f.at(0, 0);
        let takes: Vec<bool> = (0..7).map(|i| at.takes_null(i)).collect();
        assert_eq!(takes, [false, false, true, true, false, false, false]);
        assert!(at.null_result);
        assert!(!s("pub fn g() -> Vec<Option<i64>> { vec![] }").at(0, 0).null_result);
    }

    #[test]
    fn refuses_what_does_not_map_to_an_array_and_says_how() {
        let r = |src: &str| {
            let fns = pub_fns(src).expect("parses");
            let e = fns[0].signature.clone().expect_err("refused");
            (e.reason, src[e.span.start..e.span.end].to_string(), e.help.unwrap_or_default())
        };
        let (reason, at, help) = r("pub fn f(x: &[i64]) -> i64 { 0 }");
        assert_eq!((reason.as_str(), at.as_str()), ("a slice cannot be borrowed from flowc's arrays", "&[i64]"));
        assert!(help.contains("take `Vec<T>`"), "{help}");
        let (reason, at, _) = r("pub fn f(x: Vec<Vec<i64>>) -> i64 { 0 }");
        assert_eq!((reason.as_str(), at.as_str()), ("nested arrays have no flowc type", "Vec<Vec<i64>>"));
        assert_eq!(r("pub fn f(x: Vec<Option<Vec<i64>>>) -> i64 { 0 }").0, "nested arrays have no flowc type");
        assert_eq!(r("pub fn f(x: i64) -> Vec<[i64; 2]> { vec![] }").0, "nested arrays have no flowc type");
        let (reason, _, help) = r("pub fn f(x: Vec<u8>) -> i64 { 0 }");
        assert_eq!(reason, "`Vec<u8>` has no flowc type");
        assert!(help.contains("no bytes type"), "{help}");
        assert_eq!(r("pub fn f(x: Vec<u32>) -> i64 { 0 }").1, "u32");
        assert_eq!(r("pub fn f(x: Vec<Option<Option<i64>>>) -> i64 { 0 }").0, "`Option<Option<…>>` has no flowc type");
        assert_eq!(r("pub fn f(x: Option<Option<Vec<i64>>>) -> i64 { 0 }").0, "`Option<Option<…>>` has no flowc type");
        assert_eq!(r("pub fn f(x: i64) -> Vec<&str> { vec![] }").1, "&str");
        assert_eq!(r("pub fn f(x: [i64; 3]) -> i64 { 0 }").0, "fixed-size arrays and slices have no flowc type");
        assert_eq!(r("pub fn f(x: &Vec<i64>) -> i64 { 0 }").2, "take the `Vec` itself (`Vec<T>`, not `&Vec<T>`)");
        assert_eq!(r("pub fn f(x: Vec) -> i64 { 0 }").0, "`Vec` needs one type argument");
    }

    #[test]
    fn private_functions_and_other_items_are_ignored() {
        let fns = pub_fns(
            "fn private(x: u32) {}\npub(crate) fn krate() {}\npub struct S;\nimpl S { pub fn m(&self) -> i64 { 0 } }\n\
             mod m { pub fn inner() -> i64 { 0 } }\npub fn one(x: i64) -> i64 { x }\n",
        )
        .expect("parses");
        let names: Vec<&str> = fns.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["one"]);
    }

    #[test]
    fn a_file_that_does_not_parse_says_where() {
        let src = "pub fn f(x: i64) -> i64 {\n    x +\n}\n";
        let e = pub_fns(src).expect_err("does not parse");
        assert_eq!(&src[e.span.start..e.span.end], "}");
    }
}
