//! Job files through `/jars`, as the seed does with Flink's jars: `GET
//! /jars`, `POST /jars/upload` (multipart field `jarfile`, a job file or a
//! compiled plan), `POST /jars/:id/run`, `GET|POST /jars/:id/plan` and
//! `DELETE /jars/:id`.
//!
//! An upload streams to disk chunk by chunk (`spool`: memory stays flat
//! whatever its size), into a hidden `.part` file that becomes `<random id>_<name>` only
//! once complete and valid; a body over `rest.server.max-content-length`
//! gets 413 and its partial file is removed, as is that of any upload cut
//! off (a dropped connection, a timeout).

use super::checkpoints::json_body;
use super::jobs::submit_id;
use super::{body, error, spool, Jm, RestState};
use crate::ids::JobId;
use crate::jobmanager::{JobManager, RestoreRequest};
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use flowc_compiler::{CheckOptions, ProgramArgs};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;

/// The longest original file name kept in a stored upload's name (bytes,
/// after sanitising); the stored name stays far below the file system's 255.
const MAX_NAME: usize = 100;

fn upload_dir(jm: &JobManager) -> PathBuf {
    PathBuf::from(jm.config.get("web.upload.dir"))
}

pub(super) async fn list_jars(State(jm): Jm) -> Json<Value> {
    let dir = upload_dir(&jm);
    let mut files = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue; // an upload still streaming in
            }
            let uploaded = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis() as i64);
            let original = name.split_once('_').map_or(name.clone(), |(_, n)| n.to_string());
            files.push(json!({ "id": name, "name": original, "uploaded": uploaded, "entry": [] }));
        }
    }
    let scheme = if crate::security::rest_tls::enabled(&jm.config).unwrap_or(false) { "https" } else { "http" };
    Json(json!({
        "address": format!("{scheme}://{}:{}", jm.config.get("rest.address"), jm.config.get("rest.port")),
        "files": files
    }))
}

/// A file name as the client gave it, made safe to store: ASCII letters,
/// digits, `.`, `-` and `_` kept, anything else `_`, no leading dot, at
/// most [`MAX_NAME`] bytes.
fn stored_name(original: Option<&str>) -> String {
    let clean: String = original
        .unwrap_or("")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .collect();
    let clean = clean.trim_start_matches('.');
    let clean = if clean.is_empty() { "job.flow" } else { clean };
    if clean.len() <= MAX_NAME {
        return clean.to_string();
    }
    // Keep the extension: `<head>…<ext>` within MAX_NAME bytes (all ASCII).
    let ext = clean.rfind('.').map_or("", |i| &clean[i..]);
    let ext = if ext.len() > 16 { "" } else { ext };
    format!("{}{ext}", &clean[..MAX_NAME - ext.len()])
}

fn multipart_error(e: axum::extract::multipart::MultipartError, max: u64) -> Response {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE || body::is_too_large(&e) {
        body::too_large(max, "The upload (rest.server.max-content-length)")
    } else {
        error(StatusCode::BAD_REQUEST, format!("malformed multipart body: {}", e.body_text()))
    }
}

/// `POST /jars/upload`: multipart field `jarfile` holding a job file or a compiled plan.
pub(super) async fn upload_jar(State(s): State<RestState>, request: Request) -> Response {
    if let Err(r) = s.access.check_submit() {
        return r;
    }
    let max = s.limits.max_content_length;
    let mut multipart = match Multipart::from_request(request, &()).await {
        Ok(m) => m,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("an upload is a multipart/form-data body: {}", e.body_text()),
            )
        }
    };
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => return error(StatusCode::BAD_REQUEST, "no `jarfile` field in the upload"),
            Err(e) => return multipart_error(e, max),
        };
        if field.name() != Some("jarfile") {
            continue;
        }
        let id = format!("{}_{}", JobId::random(), stored_name(field.file_name()));
        let dir = upload_dir(&s.jm);
        if let Err(e) = tokio::fs::create_dir_all(&dir).await {
            return error(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot create {}: {e}", dir.display()));
        }
        let what = "The upload (rest.server.max-content-length)";
        let part = dir.join(format!(".{id}.part"));
        let spooled = match spool::to_file(field, part, max, what, |e| multipart_error(e, max)).await {
            Ok(s) => s,
            Err(r) => return r,
        };
        let size = spooled.size;
        if !spooled.head.starts_with(flowc_compiler::plan_file::MAGIC) {
            // A job file: small by definition, so checking it reads little.
            if size > flowc_dsl::load::MAX_FILE_BYTES {
                return body::too_large(flowc_dsl::load::MAX_FILE_BYTES, "A job file");
            }
            let text = match tokio::fs::read(spooled.part.path()).await {
                Ok(t) => t,
                Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot read the upload back: {e}")),
            };
            if let Err(e) = flowc_dsl::load::from_bytes(id.clone(), text) {
                return error(StatusCode::BAD_REQUEST, format!("not a job file or a compiled plan: {e}"));
            }
        }
        let path = dir.join(&id);
        if let Err(e) = spooled.part.keep_as(&path).await {
            return error(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot store the upload: {e}"));
        }
        tracing::info!(jar_id = %id, bytes = size, "A job file was uploaded.");
        return Json(json!({ "filename": path.display().to_string(), "status": "success" })).into_response();
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RunRequest {
    program_args: Option<String>,
    program_args_list: Option<Vec<String>>,
    /// A number or a numeric string; checked by [`parallelism`].
    parallelism: Option<Value>,
    savepoint_path: Option<String>,
    allow_non_restored_state: Option<bool>,
}

/// A requested parallelism: a positive integer, or 400 naming the parameter.
fn parallelism(v: &Value, source: &str) -> Result<Option<u32>, Response> {
    let n = match v {
        Value::Null => return Ok(None),
        Value::Number(n) => n.as_u64(),
        Value::String(s) if s.trim().is_empty() => return Ok(None),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match n.and_then(|n| u32::try_from(n).ok()).filter(|n| *n >= 1) {
        Some(n) => Ok(Some(n)),
        None => Err(error(
            StatusCode::BAD_REQUEST,
            format!(
                "`parallelism` ({source}) must be a positive integer, not `{}`",
                v.as_str().map_or_else(|| v.to_string(), str::to_string)
            ),
        )),
    }
}

/// `POST /jars/:id/run`: compiles an uploaded job file with the given
/// program arguments and parallelism, and submits it.
pub(super) async fn run_jar(
    State(s): State<RestState>,
    Path(jarid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    request: Body,
) -> Response {
    if let Err(r) = s.access.check_submit() {
        return r;
    }
    // As Flink: 200 with the job's id (and its application's, the same).
    match compile_upload(&s, &jarid, &q, request).await.and_then(|(bytes, restore)| submit_id(&s.jm, bytes, restore)) {
        Ok(id) => Json(json!({ "jobid": id.to_string(), "applicationId": id.to_string() })).into_response(),
        Err(r) => r,
    }
}

/// `GET|POST /jars/:id/plan`: the plan the job file compiles to with the
/// given program arguments and parallelism (query or body, as for `run`),
/// in Flink's plan shape; nothing is submitted.
pub(super) async fn jar_plan(
    State(s): State<RestState>,
    Path(jarid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    request: Body,
) -> Response {
    if let Err(r) = s.access.check_submit() {
        return r;
    }
    let (bytes, _) = match compile_upload(&s, &jarid, &q, request).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match flowc_compiler::plan_file::from_bytes(&bytes) {
        Ok(g) => {
            let plan = flowc_compiler::explain::flink_plan(&g, Some(crate::ids::JobId::random().to_string()));
            Json(json!({ "plan": plan })).into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, format!("the plan is not valid: {e}")),
    }
}

/// `DELETE /jars/:id`: removes an uploaded job file.
pub(super) async fn delete_jar(State(s): State<RestState>, Path(jarid): Path<String>) -> Response {
    if let Err(r) = s.access.check_submit() {
        return r;
    }
    if !safe_jar_id(&jarid) {
        return error(StatusCode::BAD_REQUEST, "bad jar id");
    }
    match std::fs::remove_file(upload_dir(&s.jm).join(&jarid)) {
        Ok(()) => Json(json!({})).into_response(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            error(StatusCode::BAD_REQUEST, format!("File {jarid} does not exist in the upload directory."))
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot delete {jarid}: {e}")),
    }
}

/// A compiled plan was compiled with its arguments and parallelism: a run
/// request that asks for others is refused (400 with the reason), never
/// silently run as compiled. A parallelism equal to every vertex's is fine.
fn plan_takes(data: &[u8], requested: Option<u32>, req: &RunRequest) -> Result<(), Response> {
    let has_args = req.program_args_list.as_ref().is_some_and(|l| !l.is_empty())
        || req.program_args.as_ref().is_some_and(|a| !a.trim().is_empty());
    if has_args {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "This upload is a compiled plan: its program arguments were applied when it was compiled. \
             Compile it again with them (`flowc compile JOB.flow ARGS… -o JOB.plan`) or upload the .flow file.",
        ));
    }
    let Some(p) = requested else { return Ok(()) };
    let graph = flowc_compiler::plan_file::from_bytes(data)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("the plan is not valid: {e}")))?;
    match graph.graph.node_weights().find(|v| v.parallelism != p) {
        None => Ok(()),
        Some(v) => Err(error(
            StatusCode::BAD_REQUEST,
            format!(
                "This upload is a compiled plan and its parallelism is fixed (\"{}\" runs with {}), \
                 not {p}. Compile it again with `flowc compile -p {p}` or upload the .flow file.",
                v.name, v.parallelism
            ),
        )),
    }
}

fn safe_jar_id(jarid: &str) -> bool {
    !(jarid.is_empty() || jarid.contains('/') || jarid.contains("..") || jarid.starts_with('.'))
}

/// An uploaded job file compiled with the request's program arguments and
/// parallelism (body first, then the query), and how it restores.
async fn compile_upload(
    s: &RestState,
    jarid: &str,
    q: &HashMap<String, String>,
    request: Body,
) -> Result<(Vec<u8>, RestoreRequest), Response> {
    let mut req: RunRequest = json_body(s, request).await?;
    let jm = &s.jm;
    let mut requested = req.parallelism.as_ref().map(|v| parallelism(v, "in the request body")).transpose()?.flatten();
    if requested.is_none() {
        if let Some(p) = q.get("parallelism") {
            requested = parallelism(&Value::String(p.clone()), "in the query")?;
        }
    }
    if req.program_args.is_none() {
        req.program_args = q.get("programArgs").or_else(|| q.get("program-args")).cloned();
    }
    let restore = RestoreRequest {
        savepoint_path: req
            .savepoint_path
            .clone()
            .filter(|p| !p.is_empty())
            .or_else(|| q.get("savepointPath").cloned()),
        allow_non_restored_state: req.allow_non_restored_state.unwrap_or(false)
            || q.get("allowNonRestoredState").is_some_and(|v| v == "true"),
    };
    if !safe_jar_id(jarid) {
        return Err(error(StatusCode::BAD_REQUEST, "bad jar id"));
    }
    let path = upload_dir(jm).join(jarid);
    let Ok(data) = std::fs::read(&path) else {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("Jar file {jarid} not found; upload it with POST /jars/upload"),
        ));
    };
    if data.starts_with(flowc_compiler::plan_file::MAGIC) {
        plan_takes(&data, requested, &req)?;
        return Ok((data, restore));
    }
    let name = jarid.split_once('_').map_or(jarid.to_string(), |(_, n)| n.to_string());
    let src = flowc_dsl::load::from_bytes(name, data).map_err(|e| error(StatusCode::BAD_REQUEST, e.to_string()))?;
    let args = match (&req.program_args_list, &req.program_args) {
        (Some(list), _) => ProgramArgs::parse(list),
        (None, Some(line)) => ProgramArgs::parse_line(line),
        (None, None) => Ok(ProgramArgs::default()),
    };
    let args = args.map_err(|e| error(StatusCode::BAD_REQUEST, e.to_string()))?;
    // Without a parallelism in the request or the job, the cluster's default applies.
    let sets_own = flowc_dsl::parse(&src.text)
        .file
        .items
        .iter()
        .any(|i| matches!(i, flowc_dsl::ast::Item::Set(s) if s.key.text == "parallelism.default"));
    let parallelism =
        requested.or_else(|| if sets_own { None } else { jm.config.get("parallelism.default").trim().parse().ok() });
    match flowc_compiler::compile(&src, &CheckOptions { args, parallelism, ..CheckOptions::default() }) {
        Ok(c) => Ok((flowc_compiler::plan_file::to_bytes(&c.graph), restore)),
        Err(diags) => {
            let msgs: Vec<String> = diags.iter().filter(|d| d.is_error()).map(|d| src.render(d)).collect();
            Err((StatusCode::BAD_REQUEST, Json(json!({ "errors": msgs }))).into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_are_safe_and_short() {
        assert_eq!(stored_name(Some("steady_clicks.flow")), "steady_clicks.flow");
        assert_eq!(stored_name(Some("../../etc/passwd")), "_.._etc_passwd");
        assert_eq!(stored_name(Some("..")), "job.flow");
        assert_eq!(stored_name(None), "job.flow");
        assert_eq!(stored_name(Some("é t.flow")), "__t.flow");
        let long = stored_name(Some(&format!("{}.flow", "a".repeat(300))));
        assert_eq!(long.len(), MAX_NAME);
        assert!(long.ends_with(".flow"), "{long}");
    }

    #[test]
    fn parallelism_must_be_a_positive_integer() {
        assert_eq!(parallelism(&json!(3), "q").ok(), Some(Some(3)));
        assert_eq!(parallelism(&json!("4"), "q").ok(), Some(Some(4)));
        assert_eq!(parallelism(&Value::Null, "q").ok(), Some(None));
        for bad in [json!(-5), json!(0), json!("abc"), json!(1.5), json!("-5"), json!(5_000_000_000u64)] {
            assert!(parallelism(&bad, "q").is_err(), "{bad}");
        }
    }
}
