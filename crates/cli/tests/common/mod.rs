//! A temporary signer home for running the real `signatory` binary: a base directory, a
//! private key file, a configuration, free ports, and a tiny HTTP/1.1 client.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    dead_code
)]

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tezos_crypto::SecretKey;

pub const BIN: &str = env!("CARGO_BIN_EXE_signatory");
pub const MAINNET: &str = "NetXdQprcVkpaWU";

/// A directory holding a signer's configuration, key file and base directory.
pub struct Home {
    pub dir: tempfile::TempDir,
    pub api: SocketAddr,
    pub utility: SocketAddr,
    /// `(pkh, policy lines)` of the keys under `tezos:`.
    pub enabled: Vec<(String, Vec<String>)>,
    pub watermark_driver: &'static str,
}

impl Home {
    pub fn new() -> Home {
        Home {
            dir: tempfile::Builder::new()
                .prefix("signatory-cli-")
                .tempdir()
                .unwrap(),
            api: SocketAddr::from(([127, 0, 0, 1], free_port())),
            utility: SocketAddr::from(([127, 0, 0, 1], free_port())),
            enabled: Vec::new(),
            watermark_driver: "file",
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn base_dir(&self) -> PathBuf {
        self.path("base")
    }

    /// The command the signer suggests for importing another signer's watermarks left in
    /// this home's base directory, with this home's configuration.
    pub fn import_base_dir_command(&self) -> String {
        format!(
            "signatory watermark import -c {} --from {}",
            self.config_path().display(),
            self.base_dir().display()
        )
    }

    pub fn config_path(&self) -> PathBuf {
        self.path("signatory.yaml")
    }

    pub fn secret_path(&self) -> PathBuf {
        self.path("secret.json")
    }

    /// Write `keys` (unencrypted) to the key file, mode 0600.
    pub fn write_keys(&self, keys: &[&SecretKey]) {
        let entries: Vec<serde_json::Value> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                serde_json::json!({
                    "name": format!("key{i}"),
                    "value": format!("unencrypted:{}", k.to_b58check().as_str()),
                })
            })
            .collect();
        write_private(
            &self.secret_path(),
            &serde_json::Value::Array(entries).to_string(),
        );
    }

    /// Enable a key with the default policy (block, preattestation, attestation).
    pub fn enable(&mut self, pkh: &str) {
        self.enabled.push((pkh.to_owned(), Vec::new()));
    }

    pub fn enable_with(&mut self, pkh: &str, policy: &[&str]) {
        self.enabled.push((
            pkh.to_owned(),
            policy.iter().map(|s| (*s).to_owned()).collect(),
        ));
    }

    /// Write the configuration for the current settings.
    pub fn write_config(&self) {
        let mut y = String::new();
        let _ = writeln!(y, "base_dir: \"{}\"", self.base_dir().display());
        let _ = writeln!(y, "server:\n  address: \"{}\"", self.api);
        let _ = writeln!(y, "  utility_address: \"{}\"", self.utility);
        let _ = writeln!(
            y,
            "vaults:\n  local:\n    driver: file\n    config:\n      file: \"{}\"",
            self.secret_path().display()
        );
        let _ = writeln!(y, "watermark:\n  driver: {}", self.watermark_driver);
        y.push_str("tezos:\n");
        for (pkh, policy) in &self.enabled {
            let _ = writeln!(y, "  {pkh}:");
            for line in policy {
                let _ = writeln!(y, "    {line}");
            }
        }
        write_private(&self.config_path(), &y);
    }

    /// `signatory <args> -c <config>`, run to completion with no input.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[], None)
    }

    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .arg("-c")
            .arg(self.config_path())
            .env_remove("SIGNATORY_CONFIG")
            .env_remove("SIGNATORY_BASE_DIR")
            .env_remove("SIGNATORY_LOG")
            .envs(env.iter().copied())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_success(&out, args);
        String::from_utf8(out.stdout).unwrap()
    }

    /// Start `signatory serve`, its output captured in `serve.log`.
    pub fn spawn_serve(&self) -> Child {
        self.spawn_serve_with(&[])
    }

    /// [`Home::spawn_serve`] with these environment variables set.
    pub fn spawn_serve_with(&self, env: &[(&str, &str)]) -> Child {
        let log = std::fs::File::create(self.path("serve.log")).unwrap();
        Command::new(BIN)
            .args(["serve", "-c"])
            .arg(self.config_path())
            .env_remove("SIGNATORY_CONFIG")
            .env_remove("SIGNATORY_BASE_DIR")
            .env_remove("SIGNATORY_LOG")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    pub fn serve_log(&self) -> String {
        std::fs::read_to_string(self.path("serve.log")).unwrap_or_default()
    }

    /// Start the signer and wait until `GET /authorized_keys` answers.
    pub fn start(&self) -> Server<'_> {
        self.start_with(&[])
    }

    /// [`Home::start`] with these environment variables set.
    pub fn start_with(&self, env: &[(&str, &str)]) -> Server<'_> {
        let mut child = self.spawn_serve_with(env);
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("signer exited with {status}:\n{}", self.serve_log());
            }
            if let Ok((200, _)) = http(self.api, "GET", "/authorized_keys", None) {
                return Server { home: self, child };
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "signer not ready after 60 s:\n{}",
                self.serve_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A running `signatory serve`; killed on drop if still running.
pub struct Server<'a> {
    pub home: &'a Home,
    pub child: Child,
}

impl Server<'_> {
    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        json_reply(http(self.home.api, "GET", path, None).unwrap())
    }

    pub fn post(&self, path: &str, body: &str) -> (u16, serde_json::Value) {
        json_reply(http(self.home.api, "POST", path, Some(body)).unwrap())
    }

    /// SIGTERM, then the exit status (panics after 30 s).
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "no exit 30 s after SIGTERM:\n{}",
                self.home.serve_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server<'_> {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn json_reply((status, body): (u16, String)) -> (u16, serde_json::Value) {
    let value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("reply {status} is not JSON ({e}): {body:?}"));
    (status, value)
}

/// One HTTP/1.1 request on a fresh connection; `(status, body)`.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes())?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    let text = String::from_utf8_lossy(&reply).into_owned();
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no HTTP header end in {text:?}")))?;
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status in {head:?}")))?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        s = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// A port nothing listens on right now (bind to :0, read it, release it).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

pub fn write_private(path: &Path, contents: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    file.write_all(contents.as_bytes()).unwrap();
}

pub fn assert_success(out: &Output, args: &[&str]) {
    assert!(
        out.status.success(),
        "signatory {} failed ({}):\nstdout: {}\nstderr: {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A Tenderbake attestation (tag 21) on mainnet: magic 0x13, chain id, branch, slot,
/// level, round, payload hash. Checked to decode as the signer will decode it.
pub fn attestation(level: i32, round: i32, payload: u8) -> Vec<u8> {
    let mut bytes = vec![0x13, 0x7a, 0x06, 0xa7, 0x70];
    bytes.extend([0x11; 32]);
    bytes.push(21);
    bytes.extend(7u16.to_be_bytes());
    bytes.extend(level.to_be_bytes());
    bytes.extend(round.to_be_bytes());
    bytes.extend([payload; 32]);
    let decoded =
        tezos_encoding::SigningRequest::decode(&bytes, tezos_encoding::Protocol::DEFAULT).unwrap();
    assert_eq!(decoded.level_round(), Some((level, round)));
    bytes
}

/// The first pkh (`tz…`) at the start of each stdout line.
pub fn pkhs(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.starts_with("tz"))
        .map(str::to_owned)
        .collect()
}
