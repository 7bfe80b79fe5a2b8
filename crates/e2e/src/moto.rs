//! moto's server (an AWS emulator, in Python) on a free loopback port, behind a
//! [`TcpGate`] so a test can take it down and back without losing its in-memory keys.
//!
//! [`Moto::start`] runs `tests/services/moto_digest.py` (moto with KMS Sign honouring
//! `MessageType=DIGEST`, as KMS does); [`Moto::start_unpatched`] runs moto as released. The
//! tools come from `$SIGNATORY_TEST_VENV` (made by `scripts/test.sh`), else from `PATH`.

use crate::tcp_gate::TcpGate;
use crate::HarnessError;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The region moto's keys live in when a request names none.
pub const REGION: &str = "us-east-1";

/// A running moto server. Dropping it kills the process.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    /// moto's own port (the gate forwards to it).
    direct: SocketAddr,
    gate: TcpGate,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tool(name: &str) -> Result<PathBuf, HarnessError> {
    if let Some(venv) = std::env::var_os("SIGNATORY_TEST_VENV") {
        let path = PathBuf::from(venv).join("bin").join(name);
        if path.exists() {
            return Ok(path);
        }
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.exists())
    });
    on_path.ok_or_else(|| HarnessError::BinaryMissing {
        path: PathBuf::from(name),
        hint: "moto is not installed: run scripts/test.sh (it makes the Python venv with \
               tests/services/requirements.txt and exports SIGNATORY_TEST_VENV)",
    })
}

/// `tests/services/moto_digest.py` in this checkout.
fn digest_wrapper() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/services/moto_digest.py")
}

fn http_error(addr: SocketAddr, detail: String) -> HarnessError {
    HarnessError::Http {
        addr: addr.to_string(),
        detail,
    }
}

impl Moto {
    /// moto with the DIGEST patch: Sign signs the 32 bytes it is given as the hash.
    pub async fn start() -> Result<Moto, HarnessError> {
        let python = tool("python3").or_else(|_| tool("python"))?;
        // The venv's python is the one with moto; PATH's may not have it.
        let python = match std::env::var_os("SIGNATORY_TEST_VENV") {
            Some(venv) if PathBuf::from(&venv).join("bin/python").exists() => {
                PathBuf::from(venv).join("bin/python")
            }
            _ => python,
        };
        Moto::spawn(Command::new(python).arg(digest_wrapper())).await
    }

    /// moto as released: Sign hashes a DIGEST again with SHA-256 (not what KMS does).
    pub async fn start_unpatched() -> Result<Moto, HarnessError> {
        Moto::spawn(&mut Command::new(tool("moto_server")?)).await
    }

    async fn spawn(command: &mut Command) -> Result<Moto, HarnessError> {
        let dir = tempfile::tempdir().map_err(HarnessError::io("making moto's directory"))?;
        let log = dir.path().join("moto.log");
        let out = std::fs::File::create(&log).map_err(HarnessError::io("creating moto's log"))?;
        let err = out
            .try_clone()
            .map_err(HarnessError::io("creating moto's log"))?;
        let port = crate::signer::free_port()?;
        let child = command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(HarnessError::io("starting moto"))?;
        let direct = SocketAddr::from(([127, 0, 0, 1], port));
        let gate = TcpGate::open(direct).await?;
        let mut moto = Moto {
            child,
            direct,
            gate,
            log,
            _dir: dir,
        };
        moto.wait_ready().await?;
        Ok(moto)
    }

    async fn wait_ready(&mut self) -> Result<(), HarnessError> {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(HarnessError::Exited {
                    status: status.to_string(),
                    log: self.log(),
                });
            }
            if self.call("ListKeys", serde_json::json!({})).await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(HarnessError::NotReady {
            seconds: 30,
            log: self.log(),
        })
    }

    /// What moto printed.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The driver's `endpoint`: the gate's address.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.gate.addr())
    }

    /// Refuse connections (moto keeps running, with its keys).
    pub async fn take_down(&self) {
        self.gate.close().await;
    }

    pub async fn bring_back(&self) -> Result<(), HarnessError> {
        self.gate.reopen().await
    }

    /// A KMS call straight to moto (not through the gate): `action` is `CreateKey`,
    /// `DisableKey`, …; the answer's JSON, or the error's.
    pub async fn call(&self, action: &str, request: Value) -> Result<Value, HarnessError> {
        let addr = self.direct;
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| http_error(addr, format!("connect: {e}")))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| http_error(addr, format!("handshake: {e}")))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let req = hyper::Request::builder()
            .method("POST")
            .uri("/")
            .header("host", addr.to_string())
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", format!("TrentService.{action}"))
            // moto reads the region from the credential scope.
            .header(
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/{REGION}/kms/aws4_request, \
                     SignedHeaders=host, Signature=00"
                ),
            )
            .body(Full::new(Bytes::from(request.to_string())))
            .map_err(|e| http_error(addr, e.to_string()))?;
        let response = sender
            .send_request(req)
            .await
            .map_err(|e| http_error(addr, format!("{action}: {e}")))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| http_error(addr, format!("{action}: {e}")))?
            .to_bytes();
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(http_error(
                addr,
                format!("{action}: {status} {}", String::from_utf8_lossy(&body)),
            ));
        }
        Ok(json)
    }

    /// CreateKey of `spec` and `usage`: the new key's id.
    pub async fn create_key(&self, spec: &str, usage: &str) -> Result<String, HarnessError> {
        let created = self
            .call(
                "CreateKey",
                serde_json::json!({"KeySpec": spec, "KeyUsage": usage}),
            )
            .await?;
        created
            .pointer("/KeyMetadata/KeyId")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| http_error(self.direct, format!("CreateKey answered {created}")))
    }
}

impl Moto {
    /// The Tezos public key of KMS key `id` (GetPublicKey's SPKI DER).
    pub async fn public_key(&self, id: &str) -> Result<tezos_crypto::PublicKey, HarnessError> {
        let answer = self
            .call("GetPublicKey", serde_json::json!({ "KeyId": id }))
            .await?;
        let der = answer
            .get("PublicKey")
            .and_then(Value::as_str)
            .map(decode_blob)
            .ok_or_else(|| http_error(self.direct, format!("GetPublicKey answered {answer}")))?;
        tezos_crypto::PublicKey::from_spki_der(&der)
            .map_err(|e| http_error(self.direct, format!("GetPublicKey of {id}: {e}")))
    }
}

/// A KMS JSON blob (base64) as bytes; empty if it is not base64.
pub fn decode_blob(text: &str) -> Vec<u8> {
    openssl::base64::decode_block(text).unwrap_or_default()
}

/// Environment for a signer process whose AWS credential chain must see only what the test
/// gives it: no profile files of the user running the tests, no instance metadata. (The
/// tests assume no `AWS_*` credential variables in their own environment.)
pub fn hermetic_aws_env() -> Vec<(String, String)> {
    [
        ("AWS_CONFIG_FILE", "/nonexistent/aws-config"),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        ),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}
