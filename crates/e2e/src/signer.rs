//! A real `signatory` process for a test: its own temporary base directory, a key file
//! (mode 0600) in ECAD Signatory's file-vault format, a configuration in ECAD Signatory's
//! YAML schema, free ports, and an initialised file watermark store.

use crate::binary::signatory_bin;
use crate::client::Connection;
use crate::HarnessError;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tezos_crypto::{PublicKey, PublicKeyHash, SecretKey};

/// How long a starting signer may take to answer (a debug build decrypting nothing).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A key's policy, rendered as ECAD Signatory's `tezos.<pkh>` entry.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// `allow:` request kind → operation kinds (only `generic` has any).
    pub allow: Vec<(String, Vec<String>)>,
    pub allowed_chains: Option<Vec<String>>,
    /// Client public keys (`edpk…`) allowed to ask for this key.
    pub authorized_keys: Option<Vec<String>>,
    pub allow_proof_of_possession: bool,
    pub log_payloads: bool,
}

impl Policy {
    /// Allow these request kinds (no operation list).
    pub fn allow(kinds: &[&str]) -> Self {
        Policy {
            allow: kinds.iter().map(|k| (k.to_string(), Vec::new())).collect(),
            ..Policy::default()
        }
    }

    /// Also allow generic operations of these kinds.
    pub fn generic(mut self, kinds: &[&str]) -> Self {
        self.allow.push((
            "generic".to_string(),
            kinds.iter().map(|k| k.to_string()).collect(),
        ));
        self
    }

    pub fn chains(mut self, chains: &[&str]) -> Self {
        self.allowed_chains = Some(chains.iter().map(|c| c.to_string()).collect());
        self
    }

    pub fn clients(mut self, keys: &[PublicKey]) -> Self {
        self.authorized_keys = Some(keys.iter().map(PublicKey::to_b58check).collect());
        self
    }

    pub fn proof_of_possession(mut self) -> Self {
        self.allow_proof_of_possession = true;
        self
    }

    fn render(&self, out: &mut String) {
        if !self.allow.is_empty() {
            out.push_str("    allow:\n");
            for (kind, ops) in &self.allow {
                if ops.is_empty() {
                    // ECAD's documented form: the kind with no value.
                    let _ = writeln!(out, "      {kind}:");
                } else {
                    let _ = writeln!(out, "      {kind}:");
                    for op in ops {
                        let _ = writeln!(out, "        - {}", quote(op));
                    }
                }
            }
        }
        if let Some(chains) = &self.allowed_chains {
            out.push_str("    allowed_chains:\n");
            for c in chains {
                let _ = writeln!(out, "      - {}", quote(c));
            }
        }
        if let Some(keys) = &self.authorized_keys {
            out.push_str("    authorized_keys:\n");
            for k in keys {
                let _ = writeln!(out, "      - {}", quote(k));
            }
        }
        if self.allow_proof_of_possession {
            out.push_str("    allow_proof_of_possession: true\n");
        }
        if self.log_payloads {
            out.push_str("    log_payloads: true\n");
        }
    }
}

/// A key in the signer's file vault.
#[derive(Debug)]
pub struct KeySpec {
    pub secret: SecretKey,
    /// `None`: listed under `tezos:` with no value (the default policy).
    pub policy: Option<Policy>,
    /// `false`: in the vault only, not listed under `tezos:` (served, never signs).
    pub enabled: bool,
}

impl KeySpec {
    pub fn new(secret: SecretKey, policy: Option<Policy>) -> Self {
        KeySpec {
            secret,
            policy,
            enabled: true,
        }
    }

    pub fn vault_only(secret: SecretKey) -> Self {
        KeySpec {
            secret,
            policy: None,
            enabled: false,
        }
    }

    pub fn pkh(&self) -> PublicKeyHash {
        self.secret.public_key().hash()
    }
}

/// What to run: keys, global authorized client keys, base path, watermark driver.
#[derive(Debug, Default)]
pub struct SignerConfig {
    pub keys: Vec<KeySpec>,
    /// `server.authorized_keys`: client public keys.
    pub authorized_keys: Vec<PublicKey>,
    /// `server.base_path`: the URL prefix of the API routes (`/signer` → `/signer/keys/…`).
    pub base_path: Option<String>,
    /// `watermark.driver`; `None` is the durable `file` store (initialised before start).
    pub watermark_driver: Option<String>,
    /// `server.allow_list_known_keys`.
    pub allow_list_known_keys: bool,
    /// `server.limits`, as (key, YAML value) pairs.
    pub limits: Vec<(String, String)>,
    /// `server.unix_socket` at [`TestSigner::unix_socket`]: Octez's socket protocol.
    pub unix_socket: bool,
    /// More vaults: name, and the YAML under `vaults.<name>:` (indented four spaces).
    pub vaults: Vec<(String, String)>,
    /// Keys of those vaults enabled under `tezos:`.
    pub enabled: Vec<(PublicKeyHash, Option<Policy>)>,
    /// Environment of every `signatory` process the harness starts.
    pub env: Vec<(String, String)>,
}

/// A signer under test. Dropping it kills the process (if any) and removes its files.
#[derive(Debug)]
pub struct TestSigner {
    dir: tempfile::TempDir,
    pub base_dir: PathBuf,
    pub config_path: PathBuf,
    pub secret_path: PathBuf,
    pub log_path: PathBuf,
    pub api: SocketAddr,
    pub utility: SocketAddr,
    /// URL prefix of the API routes ("" when none).
    pub prefix: String,
    bin: PathBuf,
    child: Option<Child>,
    config: SignerConfig,
}

/// A port nobody listens on right now (the OS picks it; it stays free in practice).
pub fn free_port() -> Result<u16, HarnessError> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(HarnessError::io("binding a free port"))?;
    let port = listener
        .local_addr()
        .map_err(HarnessError::io("reading a bound port"))?
        .port();
    Ok(port)
}

fn quote(s: &str) -> String {
    // A JSON string is a valid YAML double-quoted scalar.
    serde_json::Value::String(s.to_string()).to_string()
}

fn write_private(path: &Path, contents: &str) -> Result<(), HarnessError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(HarnessError::io(format!("creating {}", path.display())))?;
    f.write_all(contents.as_bytes())
        .map_err(HarnessError::io(format!("writing {}", path.display())))
}

impl TestSigner {
    /// Write the key file and configuration and initialise the watermark store; the
    /// process is started by [`TestSigner::start`].
    pub fn new(config: SignerConfig) -> Result<Self, HarnessError> {
        let bin = signatory_bin()?;
        let dir = tempfile::Builder::new()
            .prefix("signatory-e2e-")
            .tempdir()
            .map_err(HarnessError::io("creating a temporary directory"))?;
        let base_dir = dir.path().join("base");
        std::fs::create_dir(&base_dir).map_err(HarnessError::io("creating base_dir"))?;
        let secret_path = dir.path().join("secret.json");
        let secrets: Vec<serde_json::Value> = config
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                serde_json::json!({
                    "name": format!("key{i}"),
                    "value": format!("unencrypted:{}", k.secret.to_b58check().as_str()),
                })
            })
            .collect();
        write_private(&secret_path, &serde_json::Value::Array(secrets).to_string())?;
        let api = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let utility = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let prefix = config
            .base_path
            .as_deref()
            .map(|p| p.trim_end_matches('/').to_string())
            .unwrap_or_default();
        let signer = TestSigner {
            config_path: dir.path().join("signatory.yaml"),
            log_path: dir.path().join("signer.log"),
            dir,
            base_dir,
            secret_path,
            api,
            utility,
            prefix,
            bin,
            child: None,
            config,
        };
        let yaml = signer.render_config(api, utility);
        write_private(&signer.config_path, &yaml)?;
        if signer.config.watermark_driver.is_none() {
            signer.init_watermarks()?;
        }
        Ok(signer)
    }

    /// The configuration for this signer's files, listening on the given addresses.
    pub fn render_config(&self, api: SocketAddr, utility: SocketAddr) -> String {
        let mut y = String::new();
        let _ = writeln!(y, "base_dir: {}", quote(&self.base_dir.to_string_lossy()));
        y.push_str("server:\n");
        let _ = writeln!(y, "  address: {}", quote(&api.to_string()));
        let _ = writeln!(y, "  utility_address: {}", quote(&utility.to_string()));
        if !self.config.authorized_keys.is_empty() {
            y.push_str("  authorized_keys:\n");
            for k in &self.config.authorized_keys {
                let _ = writeln!(y, "    - {}", quote(&k.to_b58check()));
            }
        }
        if let Some(p) = &self.config.base_path {
            let _ = writeln!(y, "  base_path: {}", quote(p));
        }
        if self.config.allow_list_known_keys {
            y.push_str("  allow_list_known_keys: true\n");
        }
        if self.config.unix_socket {
            let path = self.unix_socket();
            let _ = writeln!(y, "  unix_socket: {}", quote(&path.to_string_lossy()));
        }
        if !self.config.limits.is_empty() {
            y.push_str("  limits:\n");
            for (key, value) in &self.config.limits {
                let _ = writeln!(y, "    {key}: {value}");
            }
        }
        y.push_str("vaults:\n  local:\n    driver: file\n    config:\n");
        let _ = writeln!(
            y,
            "      file: {}",
            quote(&self.secret_path.to_string_lossy())
        );
        for (name, block) in &self.config.vaults {
            let _ = writeln!(y, "  {name}:");
            y.push_str(block);
            if !block.ends_with('\n') {
                y.push('\n');
            }
        }
        let driver = self.config.watermark_driver.as_deref().unwrap_or("file");
        let _ = writeln!(y, "watermark:\n  driver: {driver}");
        y.push_str("tezos:\n");
        let enabled = self.config.keys.iter().filter(|k| k.enabled);
        let listed = enabled.map(|k| (k.pkh(), k.policy.as_ref())).chain(
            self.config
                .enabled
                .iter()
                .map(|(pkh, p)| (*pkh, p.as_ref())),
        );
        for (pkh, policy) in listed {
            let _ = writeln!(y, "  {pkh}:");
            if let Some(p) = policy {
                p.render(&mut y);
            }
        }
        y
    }

    /// Enable `pkh` (a key of one of [`SignerConfig::vaults`]) and rewrite the
    /// configuration; takes effect at the next start.
    pub fn enable(
        &mut self,
        pkh: PublicKeyHash,
        policy: Option<Policy>,
    ) -> Result<(), HarnessError> {
        self.config.enabled.push((pkh, policy));
        let yaml = self.render_config(self.api, self.utility);
        std::fs::write(&self.config_path, yaml).map_err(HarnessError::io(format!(
            "rewriting {}",
            self.config_path.display()
        )))
    }

    /// Where the signer listens for Octez's socket protocol when configured to.
    pub fn unix_socket(&self) -> PathBuf {
        self.dir.path().join("signer.sock")
    }

    /// Write another configuration for the same base directory and key file (a second
    /// signer process sharing this one's store).
    pub fn write_config_copy(
        &self,
        name: &str,
        api: SocketAddr,
        utility: SocketAddr,
    ) -> Result<PathBuf, HarnessError> {
        let path = self.dir.path().join(name);
        write_private(&path, &self.render_config(api, utility))?;
        Ok(path)
    }

    fn init_watermarks(&self) -> Result<(), HarnessError> {
        let out = self.cli(&["watermark", "init"])?;
        if !out.status.success() {
            return Err(HarnessError::Exited {
                status: format!("`watermark init` {}", out.status),
                log: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        Ok(())
    }

    /// Run `signatory <args> -c <config>` to completion.
    pub fn cli(&self, args: &[&str]) -> Result<Output, HarnessError> {
        Command::new(&self.bin)
            .args(args)
            .arg("-c")
            .arg(&self.config_path)
            .envs(self.config.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .output()
            .map_err(HarnessError::io(format!(
                "running signatory {}",
                args.join(" ")
            )))
    }

    /// Start `signatory serve -c <config_path>` with its output appended to `log_path`.
    pub fn spawn_serve(&self, config_path: &Path, log_path: &Path) -> Result<Child, HarnessError> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .map_err(HarnessError::io(format!("opening {}", log_path.display())))?;
        let log2 = log
            .try_clone()
            .map_err(HarnessError::io("duplicating the log file"))?;
        Command::new(&self.bin)
            .arg("serve")
            .arg("-c")
            .arg(config_path)
            .envs(self.config.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(HarnessError::io("starting signatory serve"))
    }

    /// Start the signer and wait until its API answers.
    pub async fn start(&mut self) -> Result<(), HarnessError> {
        let child = self.spawn_serve(&self.config_path, &self.log_path)?;
        self.child = Some(child);
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> Result<(), HarnessError> {
        let started = Instant::now();
        let path = self.path("/authorized_keys");
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(HarnessError::Exited {
                        status: status.to_string(),
                        log: self.log(),
                    });
                }
            } else {
                return Err(HarnessError::NotRunning);
            }
            if let Ok(mut conn) = Connection::connect(self.api).await {
                if let Ok(resp) = conn.get(&path).await {
                    if resp.status == 200 {
                        return Ok(());
                    }
                }
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(HarnessError::NotReady {
                    seconds: READY_TIMEOUT.as_secs(),
                    log: self.log(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The API path for `route` ("/keys/tz1…"), under the base path if any.
    pub fn path(&self, route: &str) -> String {
        format!("{}{}", self.prefix, route)
    }

    /// `POST` path for a key.
    pub fn key_path(&self, pkh: &PublicKeyHash) -> String {
        self.path(&format!("/keys/{pkh}"))
    }

    /// A new keep-alive connection to the API.
    pub async fn connect(&self) -> Result<Connection, HarnessError> {
        Connection::connect(self.api).await
    }

    /// What the signer wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// SIGKILL: no shutdown code runs, as in a crash or an OOM kill.
    pub fn kill9(&mut self) -> Result<(), HarnessError> {
        let mut child = self.child.take().ok_or(HarnessError::NotRunning)?;
        child
            .kill()
            .map_err(HarnessError::io("sending SIGKILL to the signer"))?;
        child
            .wait()
            .map_err(HarnessError::io("waiting for the killed signer"))?;
        Ok(())
    }

    /// SIGTERM, then wait for the process to exit; returns its exit status.
    pub fn terminate(&mut self) -> Result<std::process::ExitStatus, HarnessError> {
        let mut child = self.child.take().ok_or(HarnessError::NotRunning)?;
        send_sigterm(child.id())?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(HarnessError::NotReady {
                        seconds: 20,
                        log: format!("did not exit after SIGTERM\n{}", self.log()),
                    });
                }
                Err(e) => return Err(HarnessError::io("waiting for the signer")(e)),
            }
        }
    }

    /// Create an empty file in the temporary directory (a log for a second process).
    pub fn new_file(&self, name: &str) -> Result<PathBuf, HarnessError> {
        let path = self.dir.path().join(name);
        File::create(&path).map_err(HarnessError::io(format!("creating {}", path.display())))?;
        Ok(path)
    }
}

/// Ask a process to stop as an init system would (SIGTERM), without `unsafe` FFI.
pub fn send_sigterm(pid: u32) -> Result<(), HarnessError> {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .map_err(HarnessError::io("running kill -TERM"))?;
    if status.success() {
        Ok(())
    } else {
        Err(HarnessError::Exited {
            status: format!("kill -TERM {pid}: {status}"),
            log: String::new(),
        })
    }
}

impl Drop for TestSigner {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
