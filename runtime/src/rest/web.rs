//! The web UI's files, embedded in the binary and served at the root: the
//! page (`/`), its scripts, stylesheet and icon (`runtime/src/web/`). No
//! build step, nothing fetched from elsewhere at run time.
//!
//! The files hold no data, so they are served without the REST token
//! ([`is_asset`]); the page asks for the token when the API answers 401.
//! The page's Content-Security-Policy allows only this origin's scripts and
//! requests: no inline script runs.

use super::RestState;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// One embedded file of the web UI.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// Every file, in the order the page loads its scripts.
const ASSETS: &[Asset] = &[
    Asset { path: "/", content_type: HTML, body: include_str!("../web/index.html") },
    Asset { path: "/index.html", content_type: HTML, body: include_str!("../web/index.html") },
    Asset { path: "/style.css", content_type: "text/css; charset=utf-8", body: include_str!("../web/style.css") },
    Asset { path: "/core.js", content_type: JS, body: include_str!("../web/core.js") },
    Asset { path: "/chart.js", content_type: JS, body: include_str!("../web/chart.js") },
    Asset { path: "/cluster.js", content_type: JS, body: include_str!("../web/cluster.js") },
    Asset { path: "/job.js", content_type: JS, body: include_str!("../web/job.js") },
    Asset { path: "/submit.js", content_type: JS, body: include_str!("../web/submit.js") },
    Asset { path: "/app.js", content_type: JS, body: include_str!("../web/app.js") },
    Asset { path: "/favicon.svg", content_type: SVG, body: include_str!("../web/favicon.svg") },
    // Where browsers look without a <link rel="icon">; they read SVG there too.
    Asset { path: "/favicon.ico", content_type: SVG, body: include_str!("../web/favicon.svg") },
];

/// What the page may load and call: this origin only, no inline script.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                   connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Whether `path` is one of the web UI's files (served without the token).
pub fn is_asset(path: &str) -> bool {
    ASSETS.iter().any(|a| a.path == path)
}

fn serve(a: &'static Asset) -> Response {
    let mut r = (
        [
            (header::CONTENT_TYPE, a.content_type),
            // A new binary serves new files: the browser asks again each time.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        a.body,
    )
        .into_response();
    if a.content_type == HTML {
        r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, header::HeaderValue::from_static(CSP));
    }
    r
}

/// The routes of every file.
pub(super) fn routes() -> Router<RestState> {
    ASSETS.iter().fold(Router::new(), |router, a| router.route(a.path, get(move || async move { serve(a) })))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `src` and `href` values of the page that name files of this origin.
    fn referenced(html: &str) -> Vec<String> {
        let mut out = Vec::new();
        for attr in ["src=\"", "href=\""] {
            let mut rest = html;
            while let Some(i) = rest.find(attr) {
                rest = &rest[i + attr.len()..];
                let end = rest.find('"').unwrap_or(rest.len());
                let value = &rest[..end];
                if !value.starts_with('#') && !value.contains(':') {
                    out.push(format!("/{}", value.trim_start_matches('/')));
                }
            }
        }
        out
    }

    #[test]
    fn every_file_the_page_loads_is_served_without_the_token() {
        let files = referenced(include_str!("../web/index.html"));
        assert!(files.len() >= 8, "{files:?}");
        for f in &files {
            assert!(is_asset(f), "{f} is referenced by index.html but not served");
        }
        assert!(is_asset("/") && is_asset("/favicon.ico"));
        assert!(!is_asset("/jobs") && !is_asset("/overview") && !is_asset("/app.js/x"));
    }

    #[test]
    fn every_script_opens_with_what_it_holds_and_is_strict() {
        for a in ASSETS.iter().filter(|a| a.content_type == JS) {
            assert!(a.body.starts_with("// flowc's web UI"), "{} opens without its summary", a.path);
            assert!(a.body.contains("'use strict';"), "{} is not strict", a.path);
        }
    }
}
