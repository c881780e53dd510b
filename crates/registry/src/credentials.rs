//! Credentials as `docker login` keeps them: `~/.docker/config.json` (or `$DOCKER_CONFIG/
//! config.json`), `{"auths": {"<server>": {"auth": "base64(user:password)"}}}`, with Docker
//! Hub under `https://index.docker.io/v1/`. Other keys of the file are kept as they are; the
//! file is replaced atomically and is mode 0600. Credential helpers (`credsStore`,
//! `credHelpers`: `docker-credential-<name> get|store|erase`) are used when configured.
//!
//! The CLI reads these and sends them to the daemon in `X-Registry-Auth`; the daemon itself
//! does not read this file.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Map, Value};

use crate::auth::{AuthConfig, decode_auth_field, encode_auth_field};
use crate::error::{RegistryError, Result};

/// The key Docker keeps Docker Hub credentials under.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
pub fn default_config_path() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// The key a server's credentials are stored under: Docker Hub's URL for any spelling of
/// Docker Hub, else `host[:port]` without scheme or path (`https://r.example:5000/v2/` →
/// `r.example:5000`).
pub fn normalize_server(server: &str) -> String {
    let s = server.trim();
    let host = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = host.split('/').next().unwrap_or(host);
    match host {
        ""
        | "docker.io"
        | "index.docker.io"
        | "registry-1.docker.io"
        | "registry.hub.docker.com" => DOCKER_HUB_AUTH_KEY.to_string(),
        h => h.to_ascii_lowercase(),
    }
}

/// `~/.docker/config.json`-style credential storage.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    path: PathBuf,
}

impl CredentialStore {
    pub fn new(path: impl Into<PathBuf>) -> CredentialStore {
        CredentialStore { path: path.into() }
    }

    /// The store at [`default_config_path`].
    pub fn default_location() -> Option<CredentialStore> {
        default_config_path().map(CredentialStore::new)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<Map<String, Value>> {
        let raw = match fs::read(&self.path) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Map::new()),
            Err(source) => {
                return Err(RegistryError::Credentials {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        if raw.iter().all(u8::is_ascii_whitespace) {
            return Ok(Map::new());
        }
        match serde_json::from_slice::<Value>(&raw) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(RegistryError::CredentialsJson {
                path: self.path.clone(),
                source: serde::de::Error::custom("not a JSON object"),
            }),
            Err(source) => Err(RegistryError::CredentialsJson {
                path: self.path.clone(),
                source,
            }),
        }
    }

    fn write(&self, doc: &Map<String, Value>) -> Result<()> {
        let err = |source| RegistryError::Credentials {
            path: self.path.clone(),
            source,
        };
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(err)?;
        let mut bytes = serde_json::to_vec_pretty(&Value::Object(doc.clone()))
            .map_err(io::Error::other)
            .map_err(err)?;
        bytes.push(b'\n');
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            self.path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "config.json".into()),
            std::process::id()
        ));
        let res = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            // The mode of a file that existed before (umask) is not that of create's.
            fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
            fs::rename(&tmp, &self.path)
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res.map_err(err)
    }

    /// The credential helper configured for `key`, if any.
    fn helper_for(doc: &Map<String, Value>, key: &str) -> Option<String> {
        let host = key
            .strip_prefix("https://")
            .unwrap_or(key)
            .trim_end_matches('/');
        if let Some(Value::Object(h)) = doc.get("credHelpers") {
            for (k, v) in h {
                if normalize_server(k) == key || k == host {
                    return v.as_str().map(str::to_string);
                }
            }
        }
        doc.get("credsStore")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// The credentials stored for `server` (any spelling: `docker.io`, `https://host:5000`…).
    pub fn get(&self, server: &str) -> Result<Option<AuthConfig>> {
        let key = normalize_server(server);
        let doc = self.read()?;
        if let Some(helper) = Self::helper_for(&doc, &key)
            && let Some(a) = helper_get(&helper, &key)?
        {
            return Ok(Some(a));
        }
        let Some(Value::Object(auths)) = doc.get("auths") else {
            return Ok(None);
        };
        for (k, v) in auths {
            if normalize_server(k) != key {
                continue;
            }
            let mut a: AuthConfig = serde_json::from_value(v.clone()).unwrap_or_default();
            if let Some(auth) = v.get("auth").and_then(Value::as_str)
                && let Some((u, p)) = decode_auth_field(auth)
            {
                a.username = u;
                a.password = p;
            }
            a.normalize();
            a.server_address = key.clone();
            if a.is_empty() {
                continue;
            }
            return Ok(Some(a));
        }
        Ok(None)
    }

    /// Stores credentials for `server` (as `docker login` does: `auth`, and `identitytoken`
    /// instead of the password when the login returned one).
    pub fn store(&self, server: &str, auth: &AuthConfig) -> Result<()> {
        let key = normalize_server(server);
        let mut doc = self.read()?;
        if let Some(helper) = Self::helper_for(&doc, &key) {
            let (user, secret) = if !auth.identity_token.is_empty() {
                ("<token>", auth.identity_token.as_str())
            } else {
                (auth.username.as_str(), auth.password.as_str())
            };
            helper_run(
                &helper,
                "store",
                &serde_json::json!({"ServerURL": key, "Username": user, "Secret": secret})
                    .to_string(),
            )?;
            // The file only records that the helper has it.
            let auths = doc
                .entry("auths")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = auths {
                m.insert(key, Value::Object(Map::new()));
            }
            return self.write(&doc);
        }
        let mut entry = Map::new();
        if !auth.identity_token.is_empty() {
            entry.insert(
                "auth".into(),
                Value::String(encode_auth_field(&auth.username, "")),
            );
            entry.insert(
                "identitytoken".into(),
                Value::String(auth.identity_token.clone()),
            );
        } else {
            entry.insert(
                "auth".into(),
                Value::String(encode_auth_field(&auth.username, &auth.password)),
            );
        }
        let auths = doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        if let Value::Object(m) = auths {
            // Replace any other spelling of the same server.
            let same: Vec<String> = m
                .keys()
                .filter(|k| normalize_server(k) == key)
                .cloned()
                .collect();
            for k in same {
                m.remove(&k);
            }
            m.insert(key, Value::Object(entry));
        }
        self.write(&doc)
    }

    /// Removes the credentials of `server` (`docker logout`); false when there were none.
    pub fn erase(&self, server: &str) -> Result<bool> {
        let key = normalize_server(server);
        let mut doc = self.read()?;
        let mut found = false;
        if let Some(helper) = Self::helper_for(&doc, &key) {
            found = helper_run(&helper, "erase", &key).is_ok();
        }
        if let Some(Value::Object(m)) = doc.get_mut("auths") {
            let same: Vec<String> = m
                .keys()
                .filter(|k| normalize_server(k) == key)
                .cloned()
                .collect();
            found |= !same.is_empty();
            for k in same {
                m.remove(&k);
            }
        }
        if found {
            self.write(&doc)?;
        }
        Ok(found)
    }
}

fn helper_run(helper: &str, verb: &str, input: &str) -> Result<Vec<u8>> {
    let prog = format!("docker-credential-{helper}");
    let fail = |reason: String| RegistryError::CredentialHelper {
        helper: helper.to_string(),
        reason,
    };
    let mut child = Command::new(&prog)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("{verb}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("{verb}: {e}")))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let msg = if msg.is_empty() {
            String::from_utf8_lossy(&out.stderr).trim().to_string()
        } else {
            msg
        };
        return Err(fail(format!("{verb}: {msg}")));
    }
    Ok(out.stdout)
}

fn helper_get(helper: &str, key: &str) -> Result<Option<AuthConfig>> {
    let out = match helper_run(helper, "get", key) {
        Ok(o) => o,
        // "credentials not found in native keychain" and the like
        Err(RegistryError::CredentialHelper { reason, .. }) if reason.contains("not found") => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let v: Value = serde_json::from_slice(&out).map_err(|e| RegistryError::CredentialHelper {
        helper: helper.to_string(),
        reason: format!("get: invalid answer: {e}"),
    })?;
    let user = v.get("Username").and_then(Value::as_str).unwrap_or("");
    let secret = v.get("Secret").and_then(Value::as_str).unwrap_or("");
    let mut a = AuthConfig {
        server_address: key.to_string(),
        ..Default::default()
    };
    if user == "<token>" {
        a.identity_token = secret.to_string();
    } else {
        a.username = user.to_string();
        a.password = secret.to_string();
    }
    Ok(if a.is_empty() { None } else { Some(a) })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn server_keys() {
        for s in [
            "docker.io",
            "index.docker.io",
            "https://index.docker.io/v1/",
            "registry-1.docker.io",
            "",
        ] {
            assert_eq!(normalize_server(s), DOCKER_HUB_AUTH_KEY, "{s}");
        }
        assert_eq!(
            normalize_server("https://R.example:5000/v2/"),
            "r.example:5000"
        );
        assert_eq!(normalize_server("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(normalize_server("http://[::1]:5000"), "[::1]:5000");
    }

    #[test]
    fn round_trip_keeps_other_keys_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config.json");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(
            &path,
            r#"{"auths":{"https://other.example":{"auth":"b3RoZXI6cHc="}},"psFormat":"table {{.ID}}","proxies":{"default":{"httpProxy":"x"}}}"#,
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let cs = CredentialStore::new(&path);
        cs.store(
            "https://127.0.0.1:5000/",
            &AuthConfig::basic("", "me", "s3:cret"),
        )
        .unwrap();
        cs.store("docker.io", &AuthConfig::basic("", "hub", "pw"))
            .unwrap();
        let v: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["psFormat"], "table {{.ID}}");
        assert_eq!(v["proxies"]["default"]["httpProxy"], "x");
        assert_eq!(v["auths"]["127.0.0.1:5000"]["auth"], "bWU6czM6Y3JldA==");
        assert!(v["auths"][DOCKER_HUB_AUTH_KEY]["auth"].is_string());
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let a = cs.get("127.0.0.1:5000").unwrap().unwrap();
        assert_eq!(a.user_password(), Some(("me", "s3:cret")));
        let a = cs.get("index.docker.io").unwrap().unwrap();
        assert_eq!(a.user_password(), Some(("hub", "pw")));
        let a = cs.get("other.example").unwrap().unwrap();
        assert_eq!(a.user_password(), Some(("other", "pw")));
        assert!(cs.get("nothere.example").unwrap().is_none());
        assert!(cs.erase("http://127.0.0.1:5000").unwrap());
        assert!(!cs.erase("127.0.0.1:5000").unwrap());
        assert!(cs.get("127.0.0.1:5000").unwrap().is_none());
        let v: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["psFormat"], "table {{.ID}}");
        // no temp files left behind
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn missing_empty_and_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let cs = CredentialStore::new(dir.path().join("none/config.json"));
        assert!(cs.get("x.example").unwrap().is_none());
        assert!(!cs.erase("x.example").unwrap());
        cs.store("x.example", &AuthConfig::basic("", "u", "p"))
            .unwrap();
        assert!(cs.get("x.example").unwrap().is_some());
        let p = dir.path().join("bad.json");
        fs::write(&p, "{not json").unwrap();
        let e = CredentialStore::new(&p).get("x").unwrap_err();
        assert!(e.to_string().contains("bad.json"), "{e}");
        fs::write(&p, "").unwrap();
        assert!(CredentialStore::new(&p).get("x").unwrap().is_none());
    }

    #[test]
    fn identity_token() {
        let dir = tempfile::tempdir().unwrap();
        let cs = CredentialStore::new(dir.path().join("config.json"));
        let a = AuthConfig {
            username: "me".into(),
            identity_token: "refresh".into(),
            ..Default::default()
        };
        cs.store("r.example", &a).unwrap();
        let got = cs.get("r.example").unwrap().unwrap();
        assert_eq!(got.identity_token, "refresh");
        assert_eq!(got.username, "me");
    }
}
