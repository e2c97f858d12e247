//! The credential of `--credential-file`: one secret token, read from a file (never from the command
//! line, where `ps` shows it). A client presents it as a bearer token (`Authorization: Bearer TOKEN`,
//! RFC 6750) or as the password of HTTP Basic authentication with any username (RFC 7617), so that a
//! browser asks for it with its own dialog. Compared in constant time. A request without it gets 401
//! with a `WWW-Authenticate` challenge; nothing else is said.
//!
//! The file holds the token on its first line (surrounding whitespace ignored), at least
//! [`MIN_TOKEN_LEN`] bytes; it must not be readable by others (mode `o-rwx`, as ssh asks of keys).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use subtle::ConstantTimeEq;

/// The shortest token accepted.
pub const MIN_TOKEN_LEN: usize = 16;

/// The token clients must present.
pub struct Credential {
    token: Vec<u8>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential(..)")
    }
}

impl Credential {
    /// Reads the token from `path`. The error names the file and what is wrong (never the token).
    pub fn load(path: &str) -> Result<Credential, String> {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path)
            .map_err(|e| format!("cannot read the credential file {path:?}: {e}"))?;
        if meta.permissions().mode() & 0o007 != 0 {
            return Err(format!(
                "the credential file {path:?} is accessible by others (mode {:o}): chmod o-rwx it",
                meta.permissions().mode() & 0o777
            ));
        }
        let text = std::fs::read(path)
            .map_err(|e| format!("cannot read the credential file {path:?}: {e}"))?;
        let first = text.split(|&b| b == b'\n').next().unwrap_or_default();
        let token = first.trim_ascii();
        if token.len() < MIN_TOKEN_LEN {
            return Err(format!(
                "the credential file {path:?}: expected a token of at least {MIN_TOKEN_LEN} bytes on \
                 its first line (e.g. `head -c 32 /dev/urandom | base64 > FILE`)"
            ));
        }
        Credential::from_token(token).ok_or_else(|| {
            format!("the credential file {path:?}: the token must be printable ASCII")
        })
    }

    /// A credential from the token itself (printable ASCII without spaces).
    pub fn from_token(token: &[u8]) -> Option<Credential> {
        token.iter().all(u8::is_ascii_graphic).then(|| Credential {
            token: token.to_vec(),
        })
    }

    /// Whether `headers` carry the token (bearer, or the password of Basic).
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return self.matches(rest.as_bytes());
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest) else {
                return false;
            };
            let Some(colon) = decoded.iter().position(|&b| b == b':') else {
                return false;
            };
            return self.matches(&decoded[colon + 1..]);
        }
        false
    }

    fn matches(&self, given: &[u8]) -> bool {
        // `ct_eq` on slices of different lengths answers at once: the length is not the secret.
        bool::from(self.token.as_slice().ct_eq(given))
    }
}

/// Middleware: passes requests that carry the credential, answers 401 to the others.
pub async fn require(
    State(credential): State<Arc<Credential>>,
    request: Request,
    next: Next,
) -> Response {
    if credential.admits(request.headers()) {
        return next.run(request).await;
    }
    let mut response = (StatusCode::UNAUTHORIZED, "a credential is required\n").into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"mqtt-policy\", charset=\"UTF-8\""),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn admits_the_token_as_bearer_or_basic_password_only() {
        let c = Credential::from_token(b"0123456789abcdef").unwrap();
        assert!(c.admits(&headers("Bearer 0123456789abcdef")));
        assert!(c.admits(&headers("bearer  0123456789abcdef ")));
        let basic = base64::engine::general_purpose::STANDARD.encode("anyone:0123456789abcdef");
        assert!(c.admits(&headers(&format!("Basic {basic}"))));
        assert!(!c.admits(&headers("Bearer 0123456789abcdeX")));
        assert!(!c.admits(&headers("Bearer 0123456789abcde")));
        let basic = base64::engine::general_purpose::STANDARD.encode("0123456789abcdef:x");
        assert!(!c.admits(&headers(&format!("Basic {basic}"))));
        assert!(!c.admits(&HeaderMap::new()));
    }

    #[test]
    fn a_short_or_exposed_file_is_refused_naming_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let p = path.to_str().unwrap();
        std::fs::write(&path, "short\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = Credential::load(p).unwrap_err();
        assert!(e.contains(p) && e.contains("at least"), "{e}");
        std::fs::write(&path, "0123456789abcdef0123\n").unwrap();
        assert!(Credential::load(p).is_ok());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Credential::load(p).unwrap_err();
        assert!(e.contains(p) && e.contains("others"), "{e}");
        let e = Credential::load("/nonexistent/token").unwrap_err();
        assert!(e.contains("/nonexistent/token"), "{e}");
    }
}
