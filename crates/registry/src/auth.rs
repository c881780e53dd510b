//! Authentication: Docker's `AuthConfig` (what `berth login` stores and what the API's
//! `X-Registry-Auth` header carries, base64url JSON), `WWW-Authenticate` challenges (RFC 7235:
//! `Basic realm=…`, `Bearer realm=…,service=…,scope=…`), and the bearer-token exchange with its
//! response shape (`token`/`access_token`, `expires_in`).

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

use crate::error::{RegistryError, Result};

/// Credentials for one registry, in Docker's JSON shape (`types/registry.AuthConfig`).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// base64 of `username:password` (what `config.json` keeps).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    #[serde(
        rename = "serveraddress",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub server_address: String,
    /// An OAuth2 refresh token a login returned, used instead of the password.
    #[serde(
        rename = "identitytoken",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub identity_token: String,
    /// A bearer token to send as is.
    #[serde(
        rename = "registrytoken",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub registry_token: String,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |s: &str| if s.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("AuthConfig")
            .field("username", &self.username)
            .field("password", &redact(&self.password))
            .field("auth", &redact(&self.auth))
            .field("server_address", &self.server_address)
            .field("identity_token", &redact(&self.identity_token))
            .field("registry_token", &redact(&self.registry_token))
            .finish()
    }
}

impl AuthConfig {
    /// Username and password credentials.
    pub fn basic(server: &str, username: &str, password: &str) -> AuthConfig {
        AuthConfig {
            username: username.to_string(),
            password: password.to_string(),
            server_address: server.to_string(),
            ..Default::default()
        }
    }

    /// Parses the API's `X-Registry-Auth` header: base64url (padded or not; standard base64
    /// is accepted too) of the JSON. An empty header or `{}` is no credentials (`None`).
    pub fn from_header(value: &str) -> Result<Option<AuthConfig>> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(None);
        }
        let raw = decode_base64(value)
            .ok_or_else(|| RegistryError::AuthHeader("not base64".to_string()))?;
        let mut a: AuthConfig = serde_json::from_slice(&raw)
            .map_err(|e| RegistryError::AuthHeader(format!("not an AuthConfig JSON: {e}")))?;
        a.normalize();
        Ok(if a.is_empty() { None } else { Some(a) })
    }

    /// Parses `X-Registry-Config` (what `POST /build` gets): base64 of a JSON map from
    /// registry (`https://index.docker.io/v1/`, `localhost:5000`) to credentials, keyed here
    /// by host as [`registry_key`] makes it.
    pub fn map_from_header(value: &str) -> Result<std::collections::HashMap<String, AuthConfig>> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(Default::default());
        }
        let raw = decode_base64(value)
            .ok_or_else(|| RegistryError::AuthHeader("not base64".to_string()))?;
        let m: std::collections::HashMap<String, AuthConfig> = serde_json::from_slice(&raw)
            .map_err(|e| RegistryError::AuthHeader(format!("not a map of AuthConfig JSON: {e}")))?;
        Ok(m.into_iter()
            .map(|(k, mut a)| {
                a.normalize();
                (registry_key(&k), a)
            })
            .filter(|(_, a)| !a.is_empty())
            .collect())
    }

    /// The `X-Registry-Auth` header value for these credentials (base64url of the JSON).
    pub fn to_header(&self) -> String {
        // Serialising a struct of strings cannot fail.
        URL_SAFE.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// True when nothing is set but perhaps the server address.
    pub fn is_empty(&self) -> bool {
        self.username.is_empty()
            && self.password.is_empty()
            && self.auth.is_empty()
            && self.identity_token.is_empty()
            && self.registry_token.is_empty()
    }

    /// Fills `username`/`password` from `auth` when only the latter is set.
    pub fn normalize(&mut self) {
        if self.username.is_empty()
            && !self.auth.is_empty()
            && let Some((u, p)) = decode_auth_field(&self.auth)
        {
            self.username = u;
            self.password = p;
        }
    }

    /// `(username, password)` when both are known (after [`AuthConfig::normalize`]).
    pub fn user_password(&self) -> Option<(&str, &str)> {
        if self.username.is_empty() {
            None
        } else {
            Some((&self.username, &self.password))
        }
    }

    /// The `Authorization: Basic …` value.
    pub fn basic_header(&self) -> Option<String> {
        let (u, p) = self.user_password()?;
        Some(format!("Basic {}", STANDARD.encode(format!("{u}:{p}"))))
    }
}

/// base64 in any of the four usual spellings.
/// A registry named in a credentials map as the host it is: scheme and path dropped, Docker
/// Hub's names (`https://index.docker.io/v1/`, `index.docker.io`, `registry-1.docker.io`) as
/// `docker.io`.
pub fn registry_key(name: &str) -> String {
    let s = name.trim();
    let s = s.split_once("://").map(|p| p.1).unwrap_or(s);
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".into()
        }
        h => h.to_string(),
    }
}

pub(crate) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    for engine in [&URL_SAFE, &URL_SAFE_NO_PAD, &STANDARD, &STANDARD_NO_PAD] {
        if let Ok(v) = engine.decode(s) {
            return Some(v);
        }
    }
    None
}

/// Decodes a `config.json` `auth` field (`base64(user:password)`).
pub fn decode_auth_field(auth: &str) -> Option<(String, String)> {
    let raw = decode_base64(auth.trim())?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.trim_end_matches('\0').to_string()))
}

/// Encodes a `config.json` `auth` field.
pub fn encode_auth_field(username: &str, password: &str) -> String {
    STANDARD.encode(format!("{username}:{password}"))
}

/// One `WWW-Authenticate` challenge: its scheme (lowercase) and parameters (keys lowercase).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }
    pub fn is_bearer(&self) -> bool {
        self.scheme == "bearer"
    }
    pub fn is_basic(&self) -> bool {
        self.scheme == "basic"
    }
}

/// Parses a `WWW-Authenticate` header value into its challenges (several may share a header:
/// `Basic realm="x", Bearer realm="y",service="z"`). Unparseable parts are skipped.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let b = header.as_bytes();
    let mut i = 0;
    let mut out: Vec<Challenge> = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t') {
            *i += 1;
        }
    };
    let is_tchar = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c);
    let token = |i: &mut usize| -> String {
        let start = *i;
        while *i < b.len() && is_tchar(b[*i]) {
            *i += 1;
        }
        header[start..*i].to_string()
    };
    loop {
        // separators between challenges
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t' || b[i] == b',') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let scheme = token(&mut i);
        if scheme.is_empty() {
            // Garbage: skip a character (not a byte: the next token would start inside a
            // multibyte one, and slicing there panics) and try again.
            i += header[i..].chars().next().map_or(1, char::len_utf8);
            continue;
        }
        let mut ch = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: BTreeMap::new(),
        };
        loop {
            skip_ws(&mut i);
            while i < b.len() && b[i] == b',' {
                i += 1;
                skip_ws(&mut i);
            }
            let mark = i;
            let key = token(&mut i);
            if key.is_empty() {
                break;
            }
            skip_ws(&mut i);
            if i >= b.len() || b[i] != b'=' {
                // the next challenge's scheme (or a token68): rewind
                i = mark;
                break;
            }
            i += 1; // '='
            // token68 padding (`abc==`) is not a parameter
            if i < b.len() && b[i] == b'=' {
                while i < b.len() && b[i] == b'=' {
                    i += 1;
                }
                continue;
            }
            skip_ws(&mut i);
            let value = if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut v = Vec::new();
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    v.push(b[i]);
                    i += 1;
                }
                // The closing quote; at the end of an unterminated value, stay at the end
                // (one past it, the next token's slice would panic).
                i = (i + 1).min(b.len());
                String::from_utf8_lossy(&v).into_owned()
            } else {
                // unquoted: lenient, up to the next separator (URLs have ':' and '/')
                let start = i;
                while i < b.len() && b[i] != b',' && b[i] != b' ' && b[i] != b'\t' {
                    i += 1;
                }
                header[start..i].to_string()
            };
            ch.params.insert(key.to_ascii_lowercase(), value);
        }
        out.push(ch);
    }
    out
}

/// The preferred challenge of a response: bearer over basic, others ignored.
pub fn pick_challenge(headers: &[&str]) -> Option<Challenge> {
    let all: Vec<Challenge> = headers.iter().flat_map(|h| parse_challenges(h)).collect();
    all.iter()
        .find(|c| c.is_bearer() && c.param("realm").is_some())
        .or_else(|| all.iter().find(|c| c.is_basic()))
        .cloned()
}

/// The pull scope of a repository.
pub fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// The push scope of a repository (pull is needed too: HEAD and mounts read).
pub fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// A token server's answer.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub refresh_token: String,
}

impl TokenResponse {
    /// Parses a token server's JSON answer; one without a token is refused.
    pub fn parse(bytes: &[u8]) -> std::result::Result<TokenResponse, String> {
        let t: TokenResponse =
            serde_json::from_slice(bytes).map_err(|e| format!("invalid answer: {e}"))?;
        if t.bearer().is_empty() {
            return Err("answer has no token".into());
        }
        Ok(t)
    }

    pub fn bearer(&self) -> &str {
        if self.token.is_empty() {
            &self.access_token
        } else {
            &self.token
        }
    }

    /// How long to reuse the token: the server's `expires_in` (60 s when it gives none, a
    /// day at most, whatever it says), less a little so it is renewed before the deadline.
    pub fn reuse_for(&self) -> Duration {
        let life = self
            .expires_in
            .filter(|s| *s > 0)
            .unwrap_or(DEFAULT_TOKEN_LIFETIME)
            .min(MAX_TOKEN_LIFETIME);
        Duration::from_secs(life).saturating_sub(Duration::from_secs(life.min(60) / 6))
    }

    /// When a token fetched at `now` is renewed.
    pub fn expires_at(&self, now: Instant) -> Instant {
        now + self.reuse_for()
    }
}

/// The longest a token is reused, whatever its server says (a larger `expires_in`, up to
/// `u64::MAX`, would overflow the clock).
pub const MAX_TOKEN_LIFETIME: u64 = 24 * 3600;

/// Token lifetime when the server gives none (the spec's default).
pub(crate) const DEFAULT_TOKEN_LIFETIME: u64 = 60;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenge() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(c.len(), 1);
        assert!(c[0].is_bearer());
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(c[0].param("scope"), Some("repository:library/busybox:pull"));
    }

    #[test]
    fn several_challenges_escapes_and_case() {
        let c = parse_challenges(
            r#"Basic realm="Registry \"Realm\"", BEARER Realm=https://t.example/token , Service="svc", error="insufficient_scope""#,
        );
        assert_eq!(c.len(), 2, "{c:?}");
        assert!(c[0].is_basic());
        assert_eq!(c[0].param("realm"), Some(r#"Registry "Realm""#));
        assert!(c[1].is_bearer());
        assert_eq!(c[1].param("realm"), Some("https://t.example/token"));
        assert_eq!(c[1].param("service"), Some("svc"));
        assert_eq!(c[1].param("error"), Some("insufficient_scope"));
        let p = pick_challenge(&[r#"Basic realm="x""#, r#"Bearer realm="y""#]).unwrap();
        assert!(p.is_bearer());
        assert!(parse_challenges("").is_empty());
        let c = parse_challenges("Basic");
        assert_eq!(c.len(), 1);
        assert!(c[0].params.is_empty());
        // token68 form is tolerated
        let c = parse_challenges("Negotiate abc==, Basic realm=r");
        assert_eq!(c.last().unwrap().param("realm"), Some("r"));
    }

    #[test]
    fn scopes() {
        assert_eq!(pull_scope("library/x"), "repository:library/x:pull");
        assert_eq!(push_scope("me/x"), "repository:me/x:pull,push");
    }

    #[test]
    fn x_registry_auth_round_trip() {
        let a = AuthConfig::basic("127.0.0.1:5000", "user", "pa:ss/+?");
        let h = a.to_header();
        assert!(!h.contains('+') && !h.contains('/'), "url-safe: {h}");
        assert_eq!(AuthConfig::from_header(&h).unwrap(), Some(a.clone()));
        // unpadded and standard base64 are accepted
        let json = serde_json::to_vec(&a).unwrap();
        assert_eq!(
            AuthConfig::from_header(&URL_SAFE_NO_PAD.encode(&json)).unwrap(),
            Some(a.clone())
        );
        assert_eq!(
            AuthConfig::from_header(&STANDARD.encode(&json)).unwrap(),
            Some(a)
        );
        // what the docker CLI sends when it has no credentials
        assert_eq!(
            AuthConfig::from_header(&URL_SAFE.encode("{}")).unwrap(),
            None
        );
        assert_eq!(AuthConfig::from_header("").unwrap(), None);
        assert!(AuthConfig::from_header("%%%").is_err());
        assert!(AuthConfig::from_header(&URL_SAFE.encode("[1]")).is_err());
    }

    #[test]
    fn docker_cli_header_shape() {
        // The docker CLI's field names, with `auth` only.
        let json = r#"{"auth":"dXNlcjpwYXNz","serveraddress":"https://index.docker.io/v1/"}"#;
        let a = AuthConfig::from_header(&URL_SAFE.encode(json))
            .unwrap()
            .unwrap();
        assert_eq!(a.user_password(), Some(("user", "pass")));
        assert_eq!(a.server_address, "https://index.docker.io/v1/");
        assert_eq!(a.basic_header().unwrap(), "Basic dXNlcjpwYXNz");
        let json = r#"{"identitytoken":"tok","serveraddress":"r.example"}"#;
        let a = AuthConfig::from_header(&URL_SAFE.encode(json))
            .unwrap()
            .unwrap();
        assert_eq!(a.identity_token, "tok");
        assert!(a.user_password().is_none());
        assert!(!format!("{a:?}").contains("tok\""));
    }

    #[test]
    fn auth_field() {
        let e = encode_auth_field("u", "p:w");
        assert_eq!(decode_auth_field(&e), Some(("u".into(), "p:w".into())));
        assert_eq!(decode_auth_field("bm9jb2xvbg=="), None); // "nocolon"
    }

    /// Found by fuzzing (`registry_auth`): a character that is not a token,
    /// made of several bytes, was skipped one byte at a time, and the next token was sliced
    /// inside it.
    #[test]
    fn a_challenge_with_a_multibyte_character_is_no_panic() {
        let header = std::str::from_utf8(b"\xc3\xa9 Bearer realm=\"r\"").unwrap();
        let c = parse_challenges(header);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].param("realm"), Some("r"));
        assert!(parse_challenges("\u{1f600}").is_empty());
    }

    /// Found writing the fuzz target `registry_auth`: after an unterminated quoted value
    /// the position was one past the end, and the next token sliced out of range.
    #[test]
    fn an_unterminated_quoted_value_is_no_panic() {
        let c = parse_challenges(r#"Bearer realm="https://t.example/token"#);
        assert_eq!(c[0].param("realm"), Some("https://t.example/token"));
        let c = parse_challenges(r#"Bearer realm="a\"#);
        assert_eq!(c[0].param("realm"), Some("a\\"));
    }

    /// Found writing the fuzz target `registry_auth`: a token server's `expires_in` near `u64::MAX` overflowed the
    /// clock (`Instant + Duration` panics).
    #[test]
    fn a_token_that_never_expires_is_reused_for_a_day_at_most() {
        let t =
            TokenResponse::parse(br#"{"token":"t","expires_in":18446744073709551615}"#).unwrap();
        assert!(t.reuse_for() <= Duration::from_secs(MAX_TOKEN_LIFETIME));
        let now = Instant::now();
        assert!(t.expires_at(now) > now);
        let t = TokenResponse::parse(br#"{"access_token":"a"}"#).unwrap();
        assert_eq!(t.reuse_for(), Duration::from_secs(50));
        assert!(TokenResponse::parse(br#"{"expires_in":3}"#).is_err());
    }
}
