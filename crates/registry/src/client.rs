//! The HTTP side: [`Client`] and its [`ClientConfig`], endpoints (HTTPS by default; plain HTTP
//! or unverified TLS for insecure registries, loopback included; mirrors for Docker Hub), and
//! [`Session`]s: one repository on one endpoint with the credentials and scopes of one
//! operation, which ping the registry once, answer its challenge (basic, or a bearer token
//! fetched and cached until it expires), retry what a retry can cure with backoff, and map
//! statuses and registry error codes to [`RegistryError`]s.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_image::Digest;
use reqwest::header::{AUTHORIZATION, HeaderMap, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};

use crate::auth::{self, AuthConfig, Challenge, TokenResponse};
use crate::error::{RegistryError, Result, network};

/// Docker Hub's reference domain and the host its API is served from.
pub const DOCKER_HUB_DOMAIN: &str = "docker.io";
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";

/// Network timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect (and TLS handshake).
    pub connect: Duration,
    /// Silence on an open connection (no byte read for this long) before it counts as broken.
    pub read: Duration,
    /// Whole small requests (ping, manifests, tokens, configs); blob transfers have none.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(15),
            read: Duration::from_secs(60),
            request: Duration::from_secs(120),
        }
    }
}

/// The client's configuration (the daemon's `insecure-registries`, `registry-mirrors`,
/// `max-concurrent-downloads`, `max-concurrent-uploads`).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host[:port]` names or CIDRs (`10.0.0.0/8`) of registries reached over plain HTTP or
    /// TLS without verification. Loopback addresses and `localhost` always are.
    pub insecure_registries: Vec<String>,
    /// Mirrors of Docker Hub (`https://mirror.example`), tried in order before Docker Hub.
    pub mirrors: Vec<String>,
    pub max_concurrent_downloads: usize,
    pub max_concurrent_uploads: usize,
    pub user_agent: String,
    pub timeouts: Timeouts,
    /// Retries of a failed request or broken transfer (with exponential backoff).
    pub retries: u32,
    /// The first backoff delay (doubled each retry, at most 8 s).
    pub retry_delay: Duration,
    /// Push blobs in chunks of this many bytes (`PATCH` each, then `PUT`); `None`: each blob
    /// in one `PUT`.
    pub chunk_size: Option<u64>,
    /// gzip level for layers compressed on push (1, the default: fastest, about 15% larger
    /// than 6; 9 smallest).
    pub gzip_level: u32,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            insecure_registries: Vec::new(),
            mirrors: Vec::new(),
            max_concurrent_downloads: 6,
            max_concurrent_uploads: 5,
            user_agent: format!("berth/{}", env!("CARGO_PKG_VERSION")),
            timeouts: Timeouts::default(),
            retries: 5,
            retry_delay: Duration::from_millis(500),
            chunk_size: None,
            gzip_level: 1,
        }
    }
}

/// Where a repository's API is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The registry as references name it (`docker.io`, `127.0.0.1:5000`): for messages and
    /// credentials.
    pub registry: String,
    /// The API host (`registry-1.docker.io`, a mirror's host, `127.0.0.1:5000`).
    pub host: String,
    /// `https` or `http`; insecure endpoints start with https and fall back to http.
    pub scheme: &'static str,
    /// TLS without verification, and plain HTTP when TLS fails.
    pub insecure: bool,
    pub mirror: bool,
}

impl Endpoint {
    /// `scheme://host`.
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme, self.host)
    }

    /// `scheme://host/v2/<repository>/<tail>`.
    pub fn url(&self, repository: &str, tail: &str) -> String {
        format!("{}/v2/{repository}/{tail}", self.origin())
    }
}

/// A bearer token and when it stops being good.
#[derive(Clone)]
struct CachedToken {
    token: String,
    expires: Instant,
}

/// What the client learnt about a registry host.
#[derive(Clone, Default)]
struct HostState {
    /// The scheme that answered (insecure hosts may need http).
    scheme: Option<&'static str>,
    /// The challenge of its `/v2/` (None: it needs no auth).
    challenge: Option<Challenge>,
    pinged: bool,
}

pub(crate) struct Inner {
    pub(crate) config: ClientConfig,
    http: reqwest::Client,
    http_insecure: reqwest::Client,
    hosts: Mutex<HashMap<String, HostState>>,
    tokens: Mutex<HashMap<String, CachedToken>>,
    /// One fetch per token key at a time (parallel layer transfers share the first's token).
    token_fetches: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    pub(crate) cache_lock: Mutex<()>,
}

/// A registry client. Cheap to clone (shared state: connection pools, token cache, what it
/// learnt of each registry); the daemon keeps one.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .finish()
    }
}

fn build_http(cfg: &ClientConfig, insecure: bool) -> Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .user_agent(cfg.user_agent.clone())
        .connect_timeout(cfg.timeouts.connect)
        .read_timeout(cfg.timeouts.read)
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(16)
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::limited(10));
    if insecure {
        b = b.danger_accept_invalid_certs(true);
    }
    b.build()
        .map_err(|e| RegistryError::Task(format!("http client: {e}")))
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Client> {
        let http = build_http(&config, false)?;
        let http_insecure = build_http(&config, true)?;
        Ok(Client {
            inner: Arc::new(Inner {
                config,
                http,
                http_insecure,
                hosts: Mutex::new(HashMap::new()),
                tokens: Mutex::new(HashMap::new()),
                token_fetches: Mutex::new(HashMap::new()),
                cache_lock: Mutex::new(()),
            }),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    pub(crate) fn http(&self, insecure: bool) -> &reqwest::Client {
        if insecure {
            &self.inner.http_insecure
        } else {
            &self.inner.http
        }
    }

    /// True when `registry` (`host[:port]`) is reached without TLS verification (and over
    /// HTTP when it has no TLS): listed in `insecure_registries` by name or CIDR, or loopback.
    pub fn is_insecure(&self, registry: &str) -> bool {
        is_insecure(&self.inner.config.insecure_registries, registry)
    }

    /// The endpoints a pull from `registry` tries, in order (mirrors first for Docker Hub).
    pub fn pull_endpoints(&self, registry: &str) -> Result<Vec<Endpoint>> {
        let mut out = Vec::new();
        if registry == DOCKER_HUB_DOMAIN {
            for m in &self.inner.config.mirrors {
                let (scheme, host) = split_url(m)?;
                let insecure = scheme == "http" || self.is_insecure(&host);
                out.push(Endpoint {
                    registry: registry.to_string(),
                    host,
                    scheme: if scheme == "http" { "http" } else { "https" },
                    insecure,
                    mirror: true,
                });
            }
        }
        out.push(self.endpoint(registry));
        Ok(out)
    }

    /// The registry's own endpoint (pushes and logins never use mirrors).
    pub fn endpoint(&self, registry: &str) -> Endpoint {
        let host = if registry == DOCKER_HUB_DOMAIN {
            DOCKER_HUB_API_HOST.to_string()
        } else {
            registry.to_string()
        };
        let insecure = self.is_insecure(registry);
        Endpoint {
            registry: registry.to_string(),
            host,
            scheme: "https",
            insecure,
            mirror: false,
        }
    }

    /// Pings `GET /v2/` once per host: learns the scheme that works and the challenge.
    async fn ping(&self, ep: &mut Endpoint) -> Result<Option<Challenge>> {
        if let Some(st) = self.host_state(&ep.host)
            && st.pinged
        {
            if let Some(s) = st.scheme {
                ep.scheme = s;
            }
            return Ok(st.challenge);
        }
        let schemes: &[&'static str] = if ep.insecure {
            &["https", "http"]
        } else {
            &[ep.scheme]
        };
        let mut last = None;
        for (i, scheme) in schemes.iter().enumerate() {
            let url = format!("{scheme}://{}/v2/", ep.host);
            let r = self
                .http(ep.insecure)
                .get(&url)
                .timeout(self.inner.config.timeouts.request)
                .send()
                .await;
            match r {
                Ok(resp) => {
                    let challenge = if resp.status() == StatusCode::UNAUTHORIZED {
                        challenge_of(resp.headers())
                    } else {
                        None
                    };
                    tracing::debug!(host = %ep.host, scheme, status = resp.status().as_u16(), ?challenge, "registry pinged");
                    ep.scheme = scheme;
                    let mut hosts = self.inner.hosts.lock().unwrap_or_else(|p| p.into_inner());
                    hosts.insert(
                        ep.host.clone(),
                        HostState {
                            scheme: Some(scheme),
                            challenge: challenge.clone(),
                            pinged: true,
                        },
                    );
                    return Ok(challenge);
                }
                Err(e) => {
                    let err = network(&ep.host, e);
                    // A timeout is the same on the next scheme: do not wait twice.
                    if matches!(err, RegistryError::Timeout { .. }) || i + 1 == schemes.len() {
                        return Err(err);
                    }
                    tracing::debug!(host = %ep.host, scheme, error = %err, "ping failed, trying the next scheme");
                    last = Some(err);
                }
            }
        }
        Err(last.unwrap_or_else(|| RegistryError::InvalidAddress(ep.host.clone())))
    }

    fn host_state(&self, host: &str) -> Option<HostState> {
        self.inner
            .hosts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(host)
            .cloned()
    }

    fn set_challenge(&self, host: &str, ch: Option<Challenge>) {
        let mut hosts = self.inner.hosts.lock().unwrap_or_else(|p| p.into_inner());
        let st = hosts.entry(host.to_string()).or_default();
        st.challenge = ch;
        st.pinged = true;
    }

    /// Opens a session on `repository` of `ep` with `scopes` and credentials `auth`.
    pub(crate) async fn session(
        &self,
        mut ep: Endpoint,
        repository: &str,
        scopes: Vec<String>,
        auth: Option<AuthConfig>,
    ) -> Result<Session> {
        let challenge = self.ping(&mut ep).await?;
        let auth = auth.map(|mut a| {
            a.normalize();
            a
        });
        Ok(Session {
            client: self.clone(),
            ep,
            repository: repository.to_string(),
            scopes,
            auth,
            challenge: Mutex::new(challenge),
        })
    }

    /// Fetches (or reuses) a bearer token for `scopes` from the challenge's realm.
    async fn token(
        &self,
        ep: &Endpoint,
        repository: &str,
        ch: &Challenge,
        scopes: &[String],
        auth: Option<&AuthConfig>,
        offline: bool,
    ) -> Result<TokenResponse> {
        let realm = ch.param("realm").unwrap_or_default().to_string();
        let service = ch.param("service").unwrap_or_default().to_string();
        let who = auth
            .map(|a| {
                if !a.identity_token.is_empty() {
                    format!("id:{}", Digest::of(a.identity_token.as_bytes()).short())
                } else {
                    format!(
                        "u:{}:{}",
                        a.username,
                        Digest::of(a.password.as_bytes()).short()
                    )
                }
            })
            .unwrap_or_default();
        let mut sorted = scopes.to_vec();
        sorted.sort();
        sorted.dedup();
        let key = format!("{realm}|{service}|{}|{who}", sorted.join(" "));
        let cached = || {
            let cache = self.inner.tokens.lock().unwrap_or_else(|p| p.into_inner());
            cache
                .get(&key)
                .filter(|t| t.expires > Instant::now())
                .map(|t| TokenResponse {
                    token: t.token.clone(),
                    ..Default::default()
                })
        };
        if !offline && let Some(t) = cached() {
            return Ok(t);
        }
        let flight = self
            .inner
            .token_fetches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        let _flight = flight.lock().await;
        if !offline && let Some(t) = cached() {
            return Ok(t);
        }
        let mut url = reqwest::Url::parse(&realm).map_err(|_| RegistryError::Token {
            realm: realm.clone(),
            reason: "invalid realm URL".into(),
        })?;
        let realm_host = url
            .host_str()
            .map(|h| match url.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
            .unwrap_or_default();
        let insecure = ep.insecure || self.is_insecure(&realm_host);
        let client_id = "berth";
        let req = match auth.filter(|a| !a.identity_token.is_empty()) {
            Some(a) => {
                // OAuth2 refresh-token grant (what a login's identity token is for).
                let mut form = vec![
                    ("grant_type".to_string(), "refresh_token".to_string()),
                    ("refresh_token".to_string(), a.identity_token.clone()),
                    ("service".to_string(), service.clone()),
                    ("client_id".to_string(), client_id.to_string()),
                ];
                if !sorted.is_empty() {
                    form.push(("scope".to_string(), sorted.join(" ")));
                }
                let body = form
                    .iter()
                    .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
                    .collect::<Vec<_>>()
                    .join("&");
                self.http(insecure)
                    .post(url.clone())
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(body)
            }
            None => {
                {
                    let mut q = url.query_pairs_mut();
                    if !service.is_empty() {
                        q.append_pair("service", &service);
                    }
                    for s in &sorted {
                        q.append_pair("scope", s);
                    }
                    if offline {
                        q.append_pair("offline_token", "true");
                        q.append_pair("client_id", client_id);
                    }
                }
                let mut r = self.http(insecure).get(url.clone());
                if let Some(h) = auth.and_then(AuthConfig::basic_header) {
                    r = r.header(AUTHORIZATION, h);
                }
                r
            }
        };
        let resp = req
            .timeout(self.inner.config.timeouts.request)
            .send()
            .await
            .map_err(|e| network(&realm_host, e))?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(if auth.is_some_and(|a| !a.is_empty()) {
                RegistryError::LoginFailed {
                    registry: ep.registry.clone(),
                }
            } else {
                RegistryError::Unauthorized {
                    registry: ep.registry.clone(),
                    repository: repository.to_string(),
                }
            });
        }
        if !status.is_success() {
            return Err(RegistryError::Token {
                realm,
                reason: format!("returned {}", status.as_u16()),
            });
        }
        let bytes = read_limited(resp, 1 << 20, &ep.registry, "token").await?;
        let t = TokenResponse::parse(&bytes).map_err(|reason| RegistryError::Token {
            realm: realm.clone(),
            reason,
        })?;
        self.inner
            .tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                key,
                CachedToken {
                    token: t.bearer().to_string(),
                    expires: t.expires_at(Instant::now()),
                },
            );
        Ok(t)
    }

    /// Checks credentials against a registry as `docker login` does. `auth.server_address`
    /// names the registry (Docker Hub when empty).
    pub async fn login(&self, auth: &AuthConfig) -> Result<LoginResult> {
        let mut auth = auth.clone();
        auth.normalize();
        let registry = login_registry(&auth.server_address)?;
        let mut ep = self.endpoint(&registry);
        let challenge = self.ping(&mut ep).await?;
        let mut identity_token = None;
        let authz = match &challenge {
            None => {
                tracing::info!(registry = %registry, "registry needs no authentication");
                return Ok(LoginResult {
                    status: "Login Succeeded".into(),
                    identity_token: None,
                });
            }
            Some(ch) if ch.is_bearer() => {
                let t = self
                    .token(
                        &ep,
                        "",
                        ch,
                        &[],
                        Some(&auth),
                        auth.identity_token.is_empty(),
                    )
                    .await?;
                if !t.refresh_token.is_empty() {
                    identity_token = Some(t.refresh_token.clone());
                }
                format!("Bearer {}", t.bearer())
            }
            Some(_) => auth
                .basic_header()
                .ok_or_else(|| RegistryError::LoginFailed {
                    registry: registry.clone(),
                })?,
        };
        let resp = self
            .http(ep.insecure)
            .get(format!("{}/v2/", ep.origin()))
            .header(AUTHORIZATION, authz)
            .timeout(self.inner.config.timeouts.request)
            .send()
            .await
            .map_err(|e| network(&ep.host, e))?;
        match resp.status() {
            s if s.is_success() => Ok(LoginResult {
                status: "Login Succeeded".into(),
                identity_token,
            }),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Err(RegistryError::LoginFailed { registry })
            }
            s => Err(RegistryError::Status {
                registry,
                what: "GET /v2/".into(),
                status: s.as_u16(),
                message: String::new(),
            }),
        }
    }

    /// [`Client::login`] with a username and password.
    pub async fn login_password(
        &self,
        server: &str,
        username: &str,
        password: &str,
    ) -> Result<LoginResult> {
        self.login(&AuthConfig::basic(server, username, password))
            .await
    }

    /// The backoff before retry `attempt` (1-based).
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let base = self.inner.config.retry_delay;
        base.saturating_mul(1 << attempt.saturating_sub(1).min(5))
            .min(Duration::from_secs(8))
    }
}

/// What a successful login returns (the API's `/auth` answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginResult {
    /// `Login Succeeded`.
    pub status: String,
    /// A refresh token to store instead of the password, when the token server gave one.
    pub identity_token: Option<String>,
}

/// The registry domain of a login's server address (Docker Hub's spellings → `docker.io`).
pub fn login_registry(server: &str) -> Result<String> {
    let key = crate::credentials::normalize_server(server);
    if key == crate::credentials::DOCKER_HUB_AUTH_KEY {
        return Ok(DOCKER_HUB_DOMAIN.to_string());
    }
    if key.is_empty() || key.contains(char::is_whitespace) {
        return Err(RegistryError::InvalidAddress(server.to_string()));
    }
    Ok(key)
}

/// `(scheme, host[:port])` of a mirror URL (`https://` when it has no scheme).
fn split_url(u: &str) -> Result<(String, String)> {
    let (scheme, rest) = match u.split_once("://") {
        Some((s, r)) => (s.to_ascii_lowercase(), r),
        None => ("https".to_string(), u),
    };
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || (scheme != "http" && scheme != "https") {
        return Err(RegistryError::InvalidAddress(u.to_string()));
    }
    Ok((scheme, host.to_string()))
}

/// The host part of `host[:port]` (`[::1]:5000` → `::1`).
fn host_part(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match registry.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => registry,
    }
}

fn in_cidr(ip: IpAddr, cidr: &str) -> bool {
    let Some((net, bits)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// See [`Client::is_insecure`].
pub fn is_insecure(list: &[String], registry: &str) -> bool {
    let host = host_part(registry);
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    let ip = host.parse::<IpAddr>().ok();
    if ip.is_some_and(|ip| ip.is_loopback()) {
        return true;
    }
    list.iter().any(|e| {
        let e = e
            .trim()
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/');
        e == registry || e == host || ip.is_some_and(|ip| in_cidr(ip, e))
    })
}

fn challenge_of(headers: &HeaderMap) -> Option<Challenge> {
    let values: Vec<&str> = headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    auth::pick_challenge(&values)
}

pub(crate) fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reads a whole (small) body, refusing more than `limit` bytes.
pub(crate) async fn read_limited(
    mut resp: Response,
    limit: u64,
    registry: &str,
    what: &str,
) -> Result<Vec<u8>> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(RegistryError::TooLarge {
            registry: registry.to_string(),
            what: what.to_string(),
            limit,
        });
    }
    let host = resp.url().host_str().unwrap_or(registry).to_string();
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| network(&host, e))? {
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(RegistryError::TooLarge {
                registry: registry.to_string(),
                what: what.to_string(),
                limit,
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// A registry's error answer (`{"errors":[{"code":…,"message":…}]}`).
#[derive(Debug, Default, serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// What a request was for, so a failure can say it.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Manifest(String),
    Blob(Digest),
    Upload,
    Other,
}

/// One repository on one endpoint, with one operation's credentials and scopes.
pub(crate) struct Session {
    pub(crate) client: Client,
    pub(crate) ep: Endpoint,
    pub(crate) repository: String,
    scopes: Vec<String>,
    auth: Option<AuthConfig>,
    challenge: Mutex<Option<Challenge>>,
}

impl Session {
    pub(crate) fn registry(&self) -> &str {
        &self.ep.registry
    }

    /// A copy for another task (same client, token cache, scopes and challenge).
    pub(crate) fn duplicate(&self) -> Session {
        Session {
            client: self.client.clone(),
            ep: self.ep.clone(),
            repository: self.repository.clone(),
            scopes: self.scopes.clone(),
            auth: self.auth.clone(),
            challenge: Mutex::new(
                self.challenge
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone(),
            ),
        }
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        self.client.http(self.ep.insecure)
    }

    /// `scheme://host/v2/<repository>/<tail>`.
    pub(crate) fn url(&self, tail: &str) -> String {
        self.ep.url(&self.repository, tail)
    }

    /// An absolute URL from a `Location` header (which may be relative to the host).
    pub(crate) fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else if location.starts_with('/') {
            format!("{}{location}", self.ep.origin())
        } else {
            format!("{}/{location}", self.ep.origin())
        }
    }

    /// The `Authorization` value for the current challenge.
    pub(crate) async fn authorization_header(&self) -> Result<Option<String>> {
        let ch = self
            .challenge
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(ch) = ch else {
            return Ok(None);
        };
        if let Some(a) = &self.auth
            && !a.registry_token.is_empty()
        {
            return Ok(Some(format!("Bearer {}", a.registry_token)));
        }
        if ch.is_bearer() {
            let mut scopes = self.scopes.clone();
            // A 401 for more scope names what it wants.
            if let Some(s) = ch.param("scope") {
                scopes.extend(s.split(' ').map(str::to_string));
            }
            let t = self
                .client
                .token(
                    &self.ep,
                    &self.repository,
                    &ch,
                    &scopes,
                    self.auth.as_ref(),
                    false,
                )
                .await?;
            return Ok(Some(format!("Bearer {}", t.bearer())));
        }
        if ch.is_basic() {
            return Ok(self.auth.as_ref().and_then(AuthConfig::basic_header));
        }
        Ok(None)
    }

    /// Sends a request once, with authorization; a 401 is answered once (new challenge,
    /// new token) before it is returned.
    pub(crate) async fn send_once(
        &self,
        make: &(dyn Fn(&reqwest::Client) -> RequestBuilder + Sync),
    ) -> Result<Response> {
        let mut answered = false;
        loop {
            let mut req = make(self.http());
            if let Some(h) = self.authorization_header().await? {
                req = req.header(AUTHORIZATION, h);
            }
            let resp = req.send().await.map_err(|e| network(&self.ep.host, e))?;
            if resp.status() == StatusCode::UNAUTHORIZED && !answered {
                answered = true;
                let ch = challenge_of(resp.headers());
                let had = self
                    .challenge
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                if ch.is_some() && (ch != had || had.as_ref().is_some_and(|c| c.is_bearer())) {
                    tracing::debug!(registry = %self.ep.registry, challenge = ?ch, "answering a new challenge");
                    if ch.as_ref().is_some_and(|c| c.is_bearer()) && ch == had {
                        // The same challenge again: the cached token is no longer good.
                        self.client
                            .inner
                            .tokens
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .clear();
                    }
                    *self.challenge.lock().unwrap_or_else(|p| p.into_inner()) = ch.clone();
                    // What the registry asks of every client; a scope is this request's.
                    let host_ch = ch.map(|mut c| {
                        c.params.remove("scope");
                        c.params.remove("error");
                        c
                    });
                    self.client.set_challenge(&self.ep.host, host_ch);
                    continue;
                }
            }
            return Ok(resp);
        }
    }

    /// Sends a request, retrying network failures, 5xx and 429 with backoff; then maps an
    /// error status to an error for `target`.
    pub(crate) async fn send(
        &self,
        target: Target,
        make: &(dyn Fn(&reqwest::Client) -> RequestBuilder + Sync),
    ) -> Result<Response> {
        let retries = self.client.inner.config.retries;
        let mut attempt = 0;
        loop {
            let r = match self.send_once(make).await {
                Ok(resp) => self.check(resp, &target).await,
                Err(e) => Err(e),
            };
            match r {
                Err(e) if e.is_transient() && attempt < retries => {
                    attempt += 1;
                    let d = self.client.backoff(attempt);
                    tracing::warn!(registry = %self.ep.registry, error = %e, attempt, delay_ms = d.as_millis() as u64, "retrying");
                    tokio::time::sleep(d).await;
                }
                r => return r,
            }
        }
    }

    /// Maps an error status of `resp` to an error naming `target`; passes successes through.
    pub(crate) async fn check(&self, resp: Response, target: &Target) -> Result<Response> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let method_url = format!("{} {}", status.as_u16(), resp.url().path());
        let body = read_limited(resp, 64 << 10, &self.ep.registry, "error body")
            .await
            .unwrap_or_default();
        let parsed: ErrorBody = serde_json::from_slice(&body).unwrap_or_default();
        let code = parsed.errors.first().map(|e| e.code.as_str()).unwrap_or("");
        let message = parsed
            .errors
            .first()
            .map(|e| e.message.clone())
            .unwrap_or_default();
        let registry = self.ep.registry.clone();
        let repository = self.repository.clone();
        tracing::debug!(%registry, %repository, status = %method_url, code, message = %message, "registry error");
        Err(match (status, code) {
            (StatusCode::UNAUTHORIZED, _) => RegistryError::Unauthorized {
                registry,
                repository,
            },
            (StatusCode::FORBIDDEN, _) | (_, "DENIED") => RegistryError::Denied {
                registry,
                repository,
                detail: if message.is_empty() {
                    String::new()
                } else {
                    format!(" ({message})")
                },
            },
            (StatusCode::TOO_MANY_REQUESTS, _) | (_, "TOOMANYREQUESTS") => {
                RegistryError::TooManyRequests { registry }
            }
            (_, "NAME_UNKNOWN") => RegistryError::NameUnknown {
                registry,
                repository,
            },
            (StatusCode::NOT_FOUND, _) | (_, "MANIFEST_UNKNOWN") | (_, "BLOB_UNKNOWN")
                if !matches!(target, Target::Upload | Target::Other) =>
            {
                match target {
                    Target::Manifest(r) => RegistryError::ManifestUnknown {
                        reference: r.clone(),
                    },
                    Target::Blob(d) => RegistryError::BlobUnknown {
                        registry,
                        repository,
                        digest: d.clone(),
                    },
                    _ => RegistryError::NameUnknown {
                        registry,
                        repository,
                    },
                }
            }
            _ => RegistryError::Status {
                registry,
                what: match target {
                    Target::Manifest(r) => format!("manifest {r}"),
                    Target::Blob(d) => format!("blob {d}"),
                    Target::Upload => format!("upload to {repository}"),
                    Target::Other => repository,
                },
                status: status.as_u16(),
                message: if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                },
            },
        })
    }

    /// A plain request builder on this session's client.
    pub(crate) fn request(&self, method: Method, url: &str) -> RequestBuilder {
        self.http().request(method, url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_registries() {
        let list = vec![
            "10.0.0.0/8".to_string(),
            "registry.lan:5000".to_string(),
            "http://plain.example/".to_string(),
            "fd00::/8".to_string(),
        ];
        for (r, want) in [
            ("127.0.0.1:5000", true),
            ("127.1.2.3", true),
            ("localhost:5000", true),
            ("[::1]:5000", true),
            ("10.1.2.3:5000", true),
            ("11.1.2.3:5000", false),
            ("registry.lan:5000", true),
            ("registry.lan:5001", false),
            ("plain.example", true),
            ("[fd12::1]:443", true),
            ("docker.io", false),
            ("quay.io", false),
        ] {
            assert_eq!(is_insecure(&list, r), want, "{r}");
        }
    }

    #[test]
    fn endpoints_and_urls() {
        let c = Client::new(ClientConfig {
            mirrors: vec![
                "https://mirror.example".into(),
                "http://127.0.0.1:5001/".into(),
            ],
            ..Default::default()
        })
        .unwrap();
        let eps = c.pull_endpoints("docker.io").unwrap();
        assert_eq!(eps.len(), 3);
        assert_eq!(eps[0].host, "mirror.example");
        assert!(eps[0].mirror && !eps[0].insecure);
        assert_eq!(eps[1].origin(), "http://127.0.0.1:5001");
        assert_eq!(eps[2].host, "registry-1.docker.io");
        assert_eq!(
            eps[2].url("library/busybox", "manifests/latest"),
            "https://registry-1.docker.io/v2/library/busybox/manifests/latest"
        );
        let eps = c.pull_endpoints("127.0.0.1:5000").unwrap();
        assert_eq!(eps.len(), 1);
        assert!(eps[0].insecure);
        assert_eq!(
            eps[0].url("a/b", "blobs/uploads/"),
            "https://127.0.0.1:5000/v2/a/b/blobs/uploads/"
        );
        assert!(
            Client::new(ClientConfig {
                mirrors: vec!["ftp://x".into()],
                ..Default::default()
            })
            .unwrap()
            .pull_endpoints("docker.io")
            .is_err()
        );
    }

    #[test]
    fn login_registries() {
        assert_eq!(login_registry("").unwrap(), "docker.io");
        assert_eq!(
            login_registry("https://index.docker.io/v1/").unwrap(),
            "docker.io"
        );
        assert_eq!(
            login_registry("http://127.0.0.1:5000").unwrap(),
            "127.0.0.1:5000"
        );
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        let c = Client::new(ClientConfig::default()).unwrap();
        assert_eq!(c.backoff(1), Duration::from_millis(500));
        assert_eq!(c.backoff(2), Duration::from_millis(1000));
        assert_eq!(c.backoff(10), Duration::from_secs(8));
    }

    #[test]
    fn url_encoding() {
        assert_eq!(
            urlencode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
