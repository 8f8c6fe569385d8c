//! Who may do what over REST: the optional bearer token
//! (`flowc.security.rest.token`, beyond Flink) and Flink's switches
//! `web.submit.enable` and `web.cancel.enable`.
//!
//! With a token set, every request needs `Authorization: Bearer <token>`,
//! compared in constant time (of SHA-256 digests, so not even the length
//! leaks); else 401 with `WWW-Authenticate: Bearer`. The web UI's files
//! (`/`, its scripts, stylesheet and icon: `web::is_asset`) are served
//! without it: they hold no data, and the page asks for the token when the
//! API answers 401.

use super::error;
use crate::config::{Config, ConfigError};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The REST access rules, from the configuration.
#[derive(Debug, Clone)]
pub struct Access {
    /// The SHA-256 of the token, when one is required.
    pub token: Option<[u8; 32]>,
    pub submit: bool,
    pub cancel: bool,
}

impl Access {
    pub fn from_config(config: &Config) -> Result<Access, ConfigError> {
        let token = config.get("flowc.security.rest.token");
        let token = token.trim();
        if !token.is_empty() && (token.len() < 16 || token.chars().any(|c| !c.is_ascii_graphic())) {
            return Err(ConfigError::BadValue {
                key: "flowc.security.rest.token".into(),
                value: "******".into(),
                expected: "at least 16 printable ASCII characters without spaces",
            });
        }
        Ok(Access {
            token: (!token.is_empty()).then(|| digest(token.as_bytes())),
            submit: config.get_bool("web.submit.enable")?,
            cancel: config.get_bool("web.cancel.enable")?,
        })
    }

    /// 403 unless `web.submit.enable` allows job submission.
    pub fn check_submit(&self) -> Result<(), Response> {
        if self.submit {
            Ok(())
        } else {
            Err(error(StatusCode::FORBIDDEN, "Job submission is disabled on this cluster (web.submit.enable: false)"))
        }
    }

    /// 403 unless `web.cancel.enable` allows cancelling jobs.
    pub fn check_cancel(&self) -> Result<(), Response> {
        if self.cancel {
            Ok(())
        } else {
            Err(error(StatusCode::FORBIDDEN, "Cancelling jobs is disabled on this cluster (web.cancel.enable: false)"))
        }
    }
}

fn digest(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// Whether the request carries the token.
fn authorized(headers: &HeaderMap, token: &[u8; 32]) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION).map(HeaderValue::as_bytes) else {
        return false;
    };
    let Some(given) = value.get(..7).filter(|s| s.eq_ignore_ascii_case(b"bearer ")).map(|_| &value[7..]) else {
        return false;
    };
    digest(given.trim_ascii()).ct_eq(token).into()
}

/// Middleware: 401 for a request without the token, where one is required.
pub async fn require_token(State(access): State<Arc<Access>>, req: Request, next: Next) -> Response {
    if let Some(token) = &access.token {
        if !super::web::is_asset(req.uri().path()) && !authorized(req.headers(), token) {
            let mut r = error(
                StatusCode::UNAUTHORIZED,
                "This REST API needs a token: send `Authorization: Bearer <flowc.security.rest.token>` (flowc reads FLOWC_REST_TOKEN)",
            );
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"flowc\""));
            return r;
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(auth).expect("header"));
        h
    }

    #[test]
    fn only_the_exact_token_passes() {
        let t = digest(b"0123456789abcdef-secret");
        assert!(authorized(&headers("Bearer 0123456789abcdef-secret"), &t));
        assert!(authorized(&headers("bearer 0123456789abcdef-secret"), &t));
        assert!(!authorized(&headers("Bearer 0123456789abcdef-secreT"), &t));
        assert!(!authorized(&headers("Bearer 0123456789abcdef-secret2"), &t));
        assert!(!authorized(&headers("Basic 0123456789abcdef-secret"), &t));
        assert!(!authorized(&headers("Bearer"), &t));
        assert!(!authorized(&HeaderMap::new(), &t));
    }

    #[test]
    fn short_tokens_and_bad_switches_are_refused_by_key() {
        let mut c = Config::default();
        c.set("flowc.security.rest.token", "short");
        assert!(Access::from_config(&c).unwrap_err().to_string().contains("flowc.security.rest.token"));
        c.set("flowc.security.rest.token", "a-long-enough-token-1234");
        c.set("web.submit.enable", "nope");
        assert!(Access::from_config(&c).unwrap_err().to_string().contains("web.submit.enable"));
        c.set("web.submit.enable", "false");
        let a = Access::from_config(&c).expect("valid");
        assert!(a.token.is_some() && !a.submit && a.cancel);
    }
}
