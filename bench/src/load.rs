//! The scenarios: sequential latency and concurrent throughput, per curve.

use crate::client::Connection;
use crate::BenchError;
use bytes::Bytes;
use clap::Args;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tezos_crypto::{PublicKey, Signature, SigningVersion};
use tokio::sync::Barrier;

/// Mainnet chain id: the watermark is per chain, any fixed one will do.
const CHAIN_ID: [u8; 4] = [0x7a, 0x06, 0xa7, 0x70];

#[derive(Debug, Args, Clone)]
pub struct Target {
    /// The signer's API address.
    #[arg(long, default_value = "127.0.0.1:6732")]
    addr: SocketAddr,
    /// First level to sign at. Levels only go up per key, so a second run against the same
    /// watermark store needs a start above the first run's last level.
    #[arg(long, default_value_t = 1)]
    start_level: i32,
    /// The signer's process id: report its CPU time per signature (from /proc).
    #[arg(long)]
    server_pid: Option<u32>,
}

#[derive(Debug, Args)]
pub struct LatencyArgs {
    #[command(flatten)]
    target: Target,
    /// tz1, tz2, tz3 or tz4.
    #[arg(long, default_value = "tz1")]
    curve: String,
    #[arg(short = 'n', long, default_value_t = 5000)]
    requests: usize,
    /// Load-generator threads (1: a single-threaded runtime, leaving the rest to the signer).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

#[derive(Debug, Args)]
pub struct ThroughputArgs {
    #[command(flatten)]
    target: Target,
    #[arg(long, default_value = "tz1")]
    curve: String,
    /// Concurrent clients, each with its own connection.
    #[arg(short = 'c', long, default_value_t = 32)]
    clients: usize,
    /// Keys of the curve to spread the load over (each owned by one client).
    #[arg(short = 'k', long, default_value_t = 100)]
    keys: usize,
    /// Seconds to run.
    #[arg(short = 'd', long, default_value_t = 10)]
    duration: u64,
    /// Load-generator threads (1: a single-threaded runtime, leaving the rest to the signer).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    target: Target,
    /// Curves to measure.
    #[arg(long, value_delimiter = ',', default_value = "tz1,tz2,tz3,tz4")]
    curves: Vec<String>,
    #[arg(short = 'n', long, default_value_t = 5000)]
    requests: usize,
    #[arg(short = 'c', long, default_value_t = 32)]
    clients: usize,
    #[arg(short = 'k', long, default_value_t = 100)]
    keys: usize,
    #[arg(short = 'd', long, default_value_t = 10)]
    duration: u64,
    /// Load-generator threads (1: a single-threaded runtime, leaving the rest to the signer).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    #[arg(long, default_value = "127.0.0.1:6732")]
    addr: SocketAddr,
    #[arg(long, default_value_t = 60)]
    seconds: u64,
}

pub fn block_on<F: Future<Output = Result<(), BenchError>>>(
    threads: usize,
    fut: F,
) -> Result<(), BenchError> {
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
    .map_err(|source| BenchError::Io {
        context: "starting the tokio runtime".into(),
        source,
    })?;
    runtime.block_on(fut)
}

/// An attestation (0x13, tag 21) at `level`, round 0, as the JSON body the API takes.
fn attestation_body(level: i32, key_index: usize) -> Bytes {
    let mut b = Vec::with_capacity(80);
    b.push(0x13);
    b.extend_from_slice(&CHAIN_ID);
    let mut branch = [0u8; 32];
    branch[..4].copy_from_slice(&level.to_be_bytes());
    b.extend_from_slice(&branch);
    b.push(21);
    b.extend_from_slice(&((key_index % 7000) as u16).to_be_bytes());
    b.extend_from_slice(&level.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    let mut payload = [0x5au8; 32];
    payload[..4].copy_from_slice(&level.to_be_bytes());
    b.extend_from_slice(&payload);
    let mut body = String::with_capacity(2 + 2 * b.len());
    body.push('"');
    body.push_str(&hex::encode(&b));
    body.push('"');
    Bytes::from(body)
}

fn attestation_bytes(body: &Bytes) -> Vec<u8> {
    let hex_part = body
        .get(1..body.len().saturating_sub(1))
        .unwrap_or_default();
    hex::decode(hex_part).unwrap_or_default()
}

/// CPU time (user + system) a process has used so far, from `/proc/<pid>/stat`; `None`
/// when it cannot be read. Linux reports it in USER_HZ ticks, 100 per second on every
/// architecture it runs on.
fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// CPU used by the signer and by this load generator during a scenario.
#[derive(Debug, Clone, Copy)]
struct CpuMeter {
    server_pid: Option<u32>,
    server: Option<Duration>,
    bench: Option<Duration>,
}

impl CpuMeter {
    fn start(server_pid: Option<u32>) -> Self {
        CpuMeter {
            server_pid,
            server: server_pid.and_then(|p| cpu_time(&p.to_string())),
            bench: cpu_time("self"),
        }
    }

    /// (signer, load generator) CPU since `start`.
    fn stop(&self) -> (Option<Duration>, Option<Duration>) {
        let server = match (self.server_pid, self.server) {
            (Some(p), Some(before)) => {
                cpu_time(&p.to_string()).map(|now| now.saturating_sub(before))
            }
            _ => None,
        };
        let bench = match (self.bench, cpu_time("self")) {
            (Some(before), Some(now)) => Some(now.saturating_sub(before)),
            _ => None,
        };
        (server, bench)
    }
}

/// The enabled keys of the signer, by curve prefix (`tz1` …).
async fn known_keys(addr: SocketAddr) -> Result<BTreeMap<String, Vec<String>>, BenchError> {
    let mut conn = Connection::connect(addr).await?;
    let (status, body) = conn.send("GET", "/known_keys", Bytes::new()).await?;
    if status != 200 {
        return Err(BenchError::Refused {
            what: "GET /known_keys".into(),
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    }
    let json: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| BenchError::Http(format!("GET /known_keys: not JSON: {e}")))?;
    let mut by_curve: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pkh in json
        .get("known_keys")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
    {
        let curve = pkh.get(..3).unwrap_or_default().to_string();
        by_curve.entry(curve).or_default().push(pkh.to_string());
    }
    for keys in by_curve.values_mut() {
        keys.sort();
    }
    Ok(by_curve)
}

/// Next level to sign at, per key: levels only go up across scenarios of one run.
#[derive(Debug)]
struct Levels {
    next: BTreeMap<String, i32>,
    start: i32,
}

impl Levels {
    fn take(&mut self, pkh: &str, count: i32) -> i32 {
        let next = self.next.entry(pkh.to_string()).or_insert(self.start);
        let first = *next;
        *next = next.saturating_add(count);
        first
    }
}

/// Check once per key group that the signer really signs: the signature verifies.
async fn sanity_check(
    conn: &mut Connection,
    pkh: &str,
    levels: &mut Levels,
) -> Result<(), BenchError> {
    let (status, body) = conn
        .send("GET", &format!("/keys/{pkh}"), Bytes::new())
        .await?;
    let pk = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("public_key")?.as_str().map(str::to_owned))
        .and_then(|s| PublicKey::from_b58check(&s).ok())
        .ok_or_else(|| BenchError::Refused {
            what: format!("GET /keys/{pkh}"),
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        })?;
    let request = attestation_body(levels.take(pkh, 1), 0);
    let (status, body) = conn
        .send("POST", &format!("/keys/{pkh}"), request.clone())
        .await?;
    let sig = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("signature")?.as_str().map(str::to_owned))
        .and_then(|s| Signature::from_b58check(&s).ok());
    match sig {
        Some(sig)
            if status == 200
                && pk
                    .verify(&attestation_bytes(&request), &sig, SigningVersion::V3)
                    .is_ok() =>
        {
            Ok(())
        }
        _ => Err(BenchError::Refused {
            what: format!("a verified signature from {pkh}"),
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        }),
    }
}

/// One scenario's outcome.
#[derive(Debug)]
struct Report {
    curve: String,
    scenario: &'static str,
    clients: usize,
    keys: usize,
    signed: usize,
    errors: usize,
    first_error: Option<String>,
    elapsed: Duration,
    latencies: Vec<Duration>,
    server_cpu: Option<Duration>,
    bench_cpu: Option<Duration>,
}

impl Report {
    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        let i = rank.clamp(1, self.latencies.len()) - 1;
        self.latencies.get(i).copied().unwrap_or_default()
    }

    fn rate(&self) -> f64 {
        self.signed as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn row(&self) -> String {
        let ms = |d: Duration| format!("{:.3}", d.as_secs_f64() * 1e3);
        let per_sig = |cpu: Option<Duration>| match cpu {
            Some(cpu) if self.signed > 0 => {
                format!("{:.0}", cpu.as_secs_f64() * 1e6 / self.signed as f64)
            }
            _ => "–".to_string(),
        };
        format!(
            "| {} | {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} |",
            self.curve,
            self.scenario,
            self.clients,
            self.keys,
            self.signed,
            self.rate(),
            ms(self.percentile(50.0)),
            ms(self.percentile(90.0)),
            ms(self.percentile(99.0)),
            ms(self.latencies.last().copied().unwrap_or_default()),
            self.errors,
            per_sig(self.server_cpu),
            per_sig(self.bench_cpu),
        )
    }
}

pub const TABLE_HEADER: &str = "| curve | scenario | clients | keys | signatures | signatures/s | p50 ms | p90 ms | p99 ms | max ms | errors | signer CPU µs/sig | load generator CPU µs/sig |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|";

async fn run_latency(
    addr: SocketAddr,
    server_pid: Option<u32>,
    curve: &str,
    pkh: &str,
    requests: usize,
    levels: &mut Levels,
) -> Result<Report, BenchError> {
    let mut conn = Connection::connect(addr).await?;
    sanity_check(&mut conn, pkh, levels).await?;
    let path = format!("/keys/{pkh}");
    // Warm up: connection, caches, the store's writer.
    let warmup = (requests / 10).clamp(10, 500);
    let first = levels.take(pkh, (warmup + requests) as i32);
    for i in 0..warmup {
        conn.send("POST", &path, attestation_body(first + i as i32, 0))
            .await?;
    }
    let mut report = Report {
        curve: curve.to_string(),
        scenario: "latency",
        clients: 1,
        keys: 1,
        signed: 0,
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        latencies: Vec::with_capacity(requests),
        server_cpu: None,
        bench_cpu: None,
    };
    let meter = CpuMeter::start(server_pid);
    let start = Instant::now();
    for i in 0..requests {
        let body = attestation_body(first + (warmup + i) as i32, 0);
        let t = Instant::now();
        let (status, resp) = conn.send("POST", &path, body).await?;
        report.latencies.push(t.elapsed());
        count(&mut report, status, &resp);
    }
    report.elapsed = start.elapsed();
    (report.server_cpu, report.bench_cpu) = meter.stop();
    report.latencies.sort_unstable();
    Ok(report)
}

fn count(report: &mut Report, status: u16, body: &Bytes) {
    if status == 200 {
        report.signed += 1;
    } else {
        report.errors += 1;
        if report.first_error.is_none() {
            report.first_error = Some(format!("{status} {}", String::from_utf8_lossy(body)));
        }
    }
}

async fn run_throughput(
    addr: SocketAddr,
    server_pid: Option<u32>,
    curve: &str,
    pkhs: &[String],
    clients: usize,
    duration: Duration,
    levels: &mut Levels,
) -> Result<Report, BenchError> {
    if pkhs.len() < clients {
        return Err(BenchError::Setup(format!(
            "{curve}: {} keys for {clients} clients; each client needs keys of its own so that \
             no request is refused (generate more keys or use fewer clients)",
            pkhs.len()
        )));
    }
    {
        let mut conn = Connection::connect(addr).await?;
        if let Some(first) = pkhs.first() {
            sanity_check(&mut conn, first, levels).await?;
        }
    }
    // Each client owns the keys i, i + clients, …: per key, levels strictly increase.
    // Reserve a generous block of levels per key for this scenario.
    const MAX_PER_KEY: i32 = 10_000_000;
    let starts: Vec<i32> = pkhs.iter().map(|p| levels.take(p, MAX_PER_KEY)).collect();
    let barrier = Arc::new(Barrier::new(clients + 1));
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        let owned: Vec<(usize, String, i32)> = (c..pkhs.len())
            .step_by(clients)
            .filter_map(|k| Some((k, format!("/keys/{}", pkhs.get(k)?), *starts.get(k)?)))
            .collect();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Connection::connect(addr).await?;
            let mut latencies = Vec::with_capacity(1 << 16);
            let (mut signed, mut errors, mut first_error) = (0usize, 0usize, None);
            let mut next: Vec<i32> = owned.iter().map(|(_, _, s)| *s).collect();
            barrier.wait().await;
            let deadline = Instant::now() + duration;
            let mut turn = 0usize;
            while Instant::now() < deadline {
                let slot = turn % owned.len();
                turn += 1;
                let (Some((key_index, path, _)), Some(level)) =
                    (owned.get(slot), next.get_mut(slot))
                else {
                    break;
                };
                let body = attestation_body(*level, *key_index);
                *level += 1;
                let t = Instant::now();
                let (status, resp) = conn.send("POST", path, body).await?;
                latencies.push(t.elapsed());
                if status == 200 {
                    signed += 1;
                } else {
                    errors += 1;
                    if first_error.is_none() {
                        first_error = Some(format!("{status} {}", String::from_utf8_lossy(&resp)));
                    }
                }
            }
            Ok::<_, BenchError>((latencies, signed, errors, first_error))
        }));
    }
    let meter = CpuMeter::start(server_pid);
    barrier.wait().await;
    let start = Instant::now();
    let mut report = Report {
        curve: curve.to_string(),
        scenario: "throughput",
        clients,
        keys: pkhs.len(),
        signed: 0,
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
        server_cpu: None,
        bench_cpu: None,
    };
    for t in tasks {
        let (latencies, signed, errors, first_error) = t
            .await
            .map_err(|e| BenchError::Setup(format!("client task failed: {e}")))??;
        report.latencies.extend(latencies);
        report.signed += signed;
        report.errors += errors;
        if report.first_error.is_none() {
            report.first_error = first_error;
        }
    }
    report.elapsed = start.elapsed();
    (report.server_cpu, report.bench_cpu) = meter.stop();
    report.latencies.sort_unstable();
    Ok(report)
}

fn keys_of<'a>(
    by_curve: &'a BTreeMap<String, Vec<String>>,
    curve: &str,
    wanted: usize,
) -> Result<&'a [String], BenchError> {
    let keys = by_curve.get(curve).map(Vec::as_slice).unwrap_or_default();
    if keys.is_empty() {
        return Err(BenchError::Setup(format!(
            "the signer has no enabled {curve} key (GET /known_keys)"
        )));
    }
    Ok(keys.get(..wanted.min(keys.len())).unwrap_or(keys))
}

fn print(report: &Report) {
    println!("{}", report.row());
    if let Some(e) = &report.first_error {
        eprintln!(
            "{} {}: {} requests failed; first: {e}",
            report.curve, report.scenario, report.errors
        );
    }
}

pub async fn latency(args: LatencyArgs) -> Result<(), BenchError> {
    let by_curve = known_keys(args.target.addr).await?;
    let mut levels = Levels {
        next: BTreeMap::new(),
        start: args.target.start_level,
    };
    let pkh = keys_of(&by_curve, &args.curve, 1)?
        .first()
        .cloned()
        .unwrap_or_default();
    let report = run_latency(
        args.target.addr,
        args.target.server_pid,
        &args.curve,
        &pkh,
        args.requests,
        &mut levels,
    )
    .await?;
    println!("{TABLE_HEADER}");
    print(&report);
    Ok(())
}

pub async fn throughput(args: ThroughputArgs) -> Result<(), BenchError> {
    let by_curve = known_keys(args.target.addr).await?;
    let mut levels = Levels {
        next: BTreeMap::new(),
        start: args.target.start_level,
    };
    let keys = keys_of(&by_curve, &args.curve, args.keys)?;
    let report = run_throughput(
        args.target.addr,
        args.target.server_pid,
        &args.curve,
        keys,
        args.clients,
        Duration::from_secs(args.duration),
        &mut levels,
    )
    .await?;
    println!("{TABLE_HEADER}");
    print(&report);
    Ok(())
}

pub async fn run(args: RunArgs) -> Result<(), BenchError> {
    let by_curve = known_keys(args.target.addr).await?;
    let mut levels = Levels {
        next: BTreeMap::new(),
        start: args.target.start_level,
    };
    println!("{TABLE_HEADER}");
    for curve in &args.curves {
        let one = keys_of(&by_curve, curve, 1)?
            .first()
            .cloned()
            .unwrap_or_default();
        let report = run_latency(
            args.target.addr,
            args.target.server_pid,
            curve,
            &one,
            args.requests,
            &mut levels,
        )
        .await?;
        print(&report);
        let keys = keys_of(&by_curve, curve, args.keys)?;
        let report = run_throughput(
            args.target.addr,
            args.target.server_pid,
            curve,
            keys,
            args.clients,
            Duration::from_secs(args.duration),
            &mut levels,
        )
        .await?;
        print(&report);
    }
    Ok(())
}

pub async fn wait(args: WaitArgs) -> Result<(), BenchError> {
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    loop {
        if let Ok(mut conn) = Connection::connect(args.addr).await {
            if let Ok((200, _)) = conn.send("GET", "/authorized_keys", Bytes::new()).await {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(BenchError::Setup(format!(
                "no signer answered at {} within {} s",
                args.addr, args.seconds
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
