//! The main loop: documents, their analyses, and the requests.
//!
//! The loop owns the documents. A change edits the text and marks the
//! document stale; once no more messages are waiting (a burst of
//! keystrokes is one re-check), or before a request about it, the document
//! is analysed again and its diagnostics published. Requests are answered
//! on a worker thread from an `Arc<Analysis>` snapshot, never from state
//! the loop may change meanwhile.

use crate::analysis::Analysis;
use crate::{complete, hover, navigate, LspError};
use crossbeam_channel::Sender;
use flowc_dsl::{Diagnostic, Severity, Span};
use lsp_server::{Connection, ErrorCode, Message, Notification, Request, RequestId, Response};
use lsp_types::*;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Instant;

/// What the server offers.
pub fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        position_encoding: Some(PositionEncodingKind::UTF16),
        text_document_sync: Some(TextDocumentSyncCapability::Options(TextDocumentSyncOptions {
            open_close: Some(true),
            change: Some(TextDocumentSyncKind::INCREMENTAL),
            ..TextDocumentSyncOptions::default()
        })),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(["|", "$", "{", ":", ","].map(String::from).to_vec()),
            ..CompletionOptions::default()
        }),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        document_formatting_provider: Some(OneOf::Left(true)),
        document_symbol_provider: Some(OneOf::Left(true)),
        ..ServerCapabilities::default()
    }
}

struct Document {
    text: String,
    version: i32,
    analysis: Arc<Analysis>,
    stale: bool,
}

type Job = Box<dyn FnOnce() -> Response + Send>;

pub fn main_loop(connection: &Connection) -> Result<(), LspError> {
    let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
    let sender = connection.sender.clone();
    let worker = std::thread::Builder::new()
        .name("flowc-lsp-requests".into())
        .spawn(move || {
            for job in queue {
                if sender.send(job().into()).is_err() {
                    break;
                }
            }
        })
        .map_err(LspError::Io)?;
    let mut docs: HashMap<String, Document> = HashMap::new();
    loop {
        if connection.receiver.is_empty() {
            refresh_all(&mut docs, &connection.sender)?;
        }
        let Ok(msg) = connection.receiver.recv() else { break };
        match msg {
            Message::Request(req) => {
                if connection.handle_shutdown(&req).map_err(|e| LspError::Protocol(e.to_string()))? {
                    break;
                }
                handle_request(req, &mut docs, &connection.sender, &jobs)?;
            }
            Message::Notification(n) => handle_notification(n, &mut docs, &connection.sender)?,
            Message::Response(_) => {}
        }
    }
    drop(jobs);
    let _ = worker.join();
    Ok(())
}

fn params<P: DeserializeOwned>(value: Value) -> Result<P, String> {
    serde_json::from_value(value).map_err(|e| format!("invalid parameters: {e}"))
}

fn handle_notification(
    n: Notification,
    docs: &mut HashMap<String, Document>,
    out: &Sender<Message>,
) -> Result<(), LspError> {
    match n.method.as_str() {
        "textDocument/didOpen" => {
            let Ok(p) = params::<DidOpenTextDocumentParams>(n.params) else { return Ok(()) };
            let d = p.text_document;
            let analysis = Arc::new(Analysis::at(file_path(d.uri.as_str()).as_deref(), d.text.clone()));
            docs.insert(d.uri.to_string(), Document { text: d.text, version: d.version, analysis, stale: false });
            publish(out, &d.uri.to_string(), docs)?;
        }
        "textDocument/didChange" => {
            let Ok(p) = params::<DidChangeTextDocumentParams>(n.params) else { return Ok(()) };
            let Some(doc) = docs.get_mut(p.text_document.uri.as_str()) else { return Ok(()) };
            for change in p.content_changes {
                match change.range {
                    Some(range) => {
                        let lines = crate::lines::Lines::new(&doc.text);
                        let start = lines.offset(&doc.text, range.start);
                        let end = lines.offset(&doc.text, range.end).max(start);
                        doc.text.replace_range(start..end, &change.text);
                    }
                    None => doc.text = change.text,
                }
            }
            doc.version = p.text_document.version;
            doc.stale = true;
        }
        "textDocument/didClose" => {
            let Ok(p) = params::<DidCloseTextDocumentParams>(n.params) else { return Ok(()) };
            let uri = p.text_document.uri;
            docs.remove(uri.as_str());
            let clear = PublishDiagnosticsParams { uri, diagnostics: Vec::new(), version: None };
            send_notification(out, "textDocument/publishDiagnostics", clear)?;
        }
        _ => {}
    }
    Ok(())
}

/// Analyses the stale documents again and publishes their diagnostics.
fn refresh_all(docs: &mut HashMap<String, Document>, out: &Sender<Message>) -> Result<(), LspError> {
    let stale: Vec<String> = docs.iter().filter(|(_, d)| d.stale).map(|(u, _)| u.clone()).collect();
    for uri in stale {
        refresh(docs, &uri);
        publish(out, &uri, docs)?;
    }
    Ok(())
}

fn refresh(docs: &mut HashMap<String, Document>, uri: &str) {
    if let Some(doc) = docs.get_mut(uri) {
        if doc.stale {
            let started = Instant::now();
            doc.analysis = Arc::new(Analysis::at(file_path(uri).as_deref(), doc.text.clone()));
            doc.stale = false;
            tracing::debug!(
                uri,
                version = doc.version,
                micros = started.elapsed().as_micros() as u64,
                "Analysed the document."
            );
        }
    }
}

fn publish(out: &Sender<Message>, uri: &str, docs: &HashMap<String, Document>) -> Result<(), LspError> {
    let Some(doc) = docs.get(uri) else { return Ok(()) };
    let Ok(parsed) = Uri::from_str(uri) else { return Ok(()) };
    let a = &doc.analysis;
    let diagnostics = a.diagnostics.iter().map(|d| to_lsp(a, &parsed, d)).collect();
    let p = PublishDiagnosticsParams { uri: parsed, diagnostics, version: Some(doc.version) };
    send_notification(out, "textDocument/publishDiagnostics", p)
}

fn send_notification(out: &Sender<Message>, method: &str, params: impl serde::Serialize) -> Result<(), LspError> {
    let n = Notification::new(method.to_string(), params);
    out.send(n.into()).map_err(|_| LspError::Disconnected)
}

/// A flowc diagnostic as LSP shows it: the message, the help on a line of
/// its own; the underline's label and the secondary spans as related
/// information.
pub fn to_lsp(a: &Analysis, uri: &Uri, d: &Diagnostic) -> lsp_types::Diagnostic {
    if let Some(other) = d.file() {
        return elsewhere(a, other, d);
    }
    let span = d.span.unwrap_or_default();
    let range = a.lines.range(&a.text, span);
    let mut message = d.message.clone();
    if let Some(help) = &d.help {
        message.push_str(&format!("\nhelp: {help}"));
    }
    let mut related = Vec::new();
    if !d.label.is_empty() {
        related.push(DiagnosticRelatedInformation {
            location: Location { uri: uri.clone(), range },
            message: d.label.clone(),
        });
    }
    for (s, label) in d.secondary() {
        related.push(DiagnosticRelatedInformation {
            location: Location { uri: uri.clone(), range: a.lines.range(&a.text, *s) },
            message: label.clone(),
        });
    }
    lsp_types::Diagnostic {
        range,
        severity: Some(match d.severity {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
        }),
        code: Some(NumberOrString::String(d.code.to_string())),
        source: Some("flowc".to_string()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        ..lsp_types::Diagnostic::default()
    }
}

fn handle_request(
    req: Request,
    docs: &mut HashMap<String, Document>,
    out: &Sender<Message>,
    jobs: &Sender<Job>,
) -> Result<(), LspError> {
    let id = req.id.clone();
    let uri = req.params.pointer("/textDocument/uri").and_then(Value::as_str).map(str::to_string);
    let Some(uri) = uri else {
        let r =
            Response::new_err(id, ErrorCode::MethodNotFound as i32, format!("unsupported request `{}`", req.method));
        return out.send(r.into()).map_err(|_| LspError::Disconnected);
    };
    refresh(docs, &uri);
    let Some(doc) = docs.get(&uri) else {
        let r = Response::new_err(id, ErrorCode::InvalidParams as i32, format!("`{uri}` is not open"));
        return out.send(r.into()).map_err(|_| LspError::Disconnected);
    };
    let snapshot = Arc::clone(&doc.analysis);
    let method = req.method.clone();
    let job: Job = Box::new(move || answer(id, &method, req.params, &snapshot));
    jobs.send(job).map_err(|_| LspError::Disconnected)
}

/// Answers one request from a snapshot.
fn answer(id: RequestId, method: &str, raw: Value, a: &Analysis) -> Response {
    let result: Result<Value, String> = match method {
        "textDocument/hover" => params::<HoverParams>(raw).map(|p| {
            let offset = a.lines.offset(&a.text, p.text_document_position_params.position);
            let h = hover::hover(a, offset).map(|(span, text)| Hover {
                contents: HoverContents::Markup(MarkupContent { kind: MarkupKind::Markdown, value: text }),
                range: Some(a.lines.range(&a.text, span)),
            });
            serde_json::to_value(h).unwrap_or(Value::Null)
        }),
        "textDocument/completion" => params::<CompletionParams>(raw).map(|p| {
            let pos = p.text_document_position.position;
            let offset = a.lines.offset(&a.text, pos);
            let (start, mut items) = complete::complete(a, offset);
            let range = Range { start: a.lines.position(&a.text, start), end: pos };
            for i in &mut items {
                let new_text = i.insert_text.take().unwrap_or_else(|| i.label.clone());
                i.text_edit = Some(CompletionTextEdit::Edit(TextEdit { range, new_text }));
            }
            serde_json::to_value(CompletionResponse::Array(items)).unwrap_or(Value::Null)
        }),
        "textDocument/definition" => params::<GotoDefinitionParams>(raw).map(|p| {
            let tp = p.text_document_position_params;
            let offset = a.lines.offset(&a.text, tp.position);
            let loc = navigate::definition(a, offset).and_then(|p| location(a, &tp.text_document.uri, p));
            serde_json::to_value(loc.map(GotoDefinitionResponse::Scalar)).unwrap_or(Value::Null)
        }),
        "textDocument/references" => params::<ReferenceParams>(raw).map(|p| {
            let tp = p.text_document_position;
            let offset = a.lines.offset(&a.text, tp.position);
            let locs: Vec<Location> = navigate::references(a, offset, p.context.include_declaration)
                .into_iter()
                .filter_map(|p| location(a, &tp.text_document.uri, p))
                .collect();
            serde_json::to_value(locs).unwrap_or(Value::Null)
        }),
        "textDocument/formatting" => params::<DocumentFormattingParams>(raw).map(|_| {
            if !a.parses {
                return Value::Null;
            }
            let formatted = flowc_dsl::format(&a.file, &a.text);
            let edits = if formatted == a.text {
                Vec::new()
            } else {
                let whole = Range { start: Position::new(0, 0), end: a.lines.position(&a.text, a.text.len()) };
                vec![TextEdit { range: whole, new_text: formatted }]
            };
            serde_json::to_value(edits).unwrap_or(Value::Null)
        }),
        "textDocument/documentSymbol" => params::<DocumentSymbolParams>(raw).map(|_| {
            serde_json::to_value(DocumentSymbolResponse::Nested(navigate::document_symbols(a))).unwrap_or(Value::Null)
        }),
        other => {
            return Response::new_err(id, ErrorCode::MethodNotFound as i32, format!("unsupported request `{other}`"))
        }
    };
    match result {
        Ok(v) => Response::new_ok(id, v),
        Err(e) => Response::new_err(id, ErrorCode::InvalidParams as i32, e),
    }
}

/// A place as the editor finds it: in the document `uri`, or in a Rust file.
fn location(a: &Analysis, uri: &Uri, place: navigate::Place) -> Option<Location> {
    match place {
        navigate::Place::Here(span) => Some(Location { uri: uri.clone(), range: a.lines.range(&a.text, span) }),
        navigate::Place::Rust(file, span) => {
            let lines = crate::lines::Lines::new(&file.text);
            Some(Location { uri: crate::udfs::file_uri(&file)?, range: lines.range(&file.text, span) })
        }
    }
}

/// The local path of a `file:` URI (percent-escapes decoded), where a job's
/// `use rust` files are read from.
fn file_path(uri: &str) -> Option<std::path::PathBuf> {
    let rest = uri.strip_prefix("file://")?;
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(std::path::PathBuf::from(String::from_utf8(out).ok()?))
}

/// A diagnostic whose span lies in another file (a Rust UDF file): shown on
/// the `use rust` statement that imports it, with the place in the Rust
/// file as related information.
fn elsewhere(a: &Analysis, other: &flowc_dsl::SourceFile, d: &Diagnostic) -> lsp_types::Diagnostic {
    let import = a.file.items.iter().find_map(|item| match item {
        flowc_dsl::ast::Item::UseRust(u) if other.name.ends_with(u.path.value.trim_start_matches("./")) => Some(u.span),
        _ => None,
    });
    let range = a.lines.range(&a.text, import.unwrap_or_default());
    let mut message = format!("{}: {}", other.name, d.message);
    if let Some(help) = &d.help {
        message.push_str(&format!("\nhelp: {help}"));
    }
    let related = crate::udfs::file_uri(other).map(|uri| {
        let lines = crate::lines::Lines::new(&other.text);
        let here = |s: Span| Location { uri: uri.clone(), range: lines.range(&other.text, s) };
        let mut r = vec![DiagnosticRelatedInformation {
            location: here(d.span.unwrap_or_default()),
            message: if d.label.is_empty() { d.message.clone() } else { d.label.clone() },
        }];
        for (s, label) in d.secondary() {
            r.push(DiagnosticRelatedInformation { location: here(*s), message: label.clone() });
        }
        r
    });
    lsp_types::Diagnostic {
        range,
        severity: Some(match d.severity {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
        }),
        code: Some(NumberOrString::String(d.code.to_string())),
        source: Some("flowc".to_string()),
        message,
        related_information: related,
        ..Default::default()
    }
}
