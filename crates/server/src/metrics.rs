//! Prometheus metrics. Names, types and labels follow ECAD Signatory so existing dashboards
//! and alerts keep working; `signatory_*` histograms add the fine-grained latencies a local
//! key or file store needs (ECAD's buckets start at 10 ms).

use prometheus::{
    exponential_buckets, CounterVec, Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, Opts,
    Registry, TextEncoder,
};
use signatory_signer::policy::PolicyDenial;
use signatory_signer::service::{RequestSummary, SignError, SignReport};
use signatory_signer::store::{StoreIo, StoreIoObserver};
use signatory_signer::watermark::{Refusal, RefusalReason};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;
use tezos_crypto::PublicKeyHash;

/// Every metric the signer exports, in its own registry (no global state).
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    signing_ops: CounterVec,
    vault_sign_ms: HistogramVec,
    vault_errors: CounterVec,
    handler_ms: HistogramVec,
    handler_requests: CounterVec,
    consensus_rounds: CounterVec,
    policy_violations: CounterVec,
    watermark_rejections: CounterVec,
    auth_failures: CounterVec,
    watermark_ops: CounterVec,
    watermark_seconds: HistogramVec,
    store_errors: CounterVec,
    store_io: StoreIoMetrics,
    fine_vault_seconds: HistogramVec,
    fine_watermark_seconds: HistogramVec,
    vault_sessions: GaugeVec,
    vault_retries: CounterVec,
    vault_call_failures: CounterVec,
}

/// Metric construction only fails on invalid names or label sets, which are constants here;
/// a failure is reported at start rather than hidden.
#[derive(Debug, thiserror::Error)]
#[error("metrics registry: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

fn counter(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<CounterVec, MetricsError> {
    let c = CounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn histogram(
    r: &Registry,
    name: &str,
    help: &str,
    buckets: Vec<f64>,
    labels: &[&str],
) -> Result<HistogramVec, MetricsError> {
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)?;
    r.register(Box::new(h.clone()))?;
    Ok(h)
}

impl Metrics {
    pub fn new() -> Result<Self, MetricsError> {
        let r = Registry::new();
        let ms = exponential_buckets(10.0, 10.0, 5)?;
        Ok(Metrics {
            signing_ops: counter(
                &r,
                "signing_ops_total",
                "Total number of signing operations completed.",
                &["address", "vault", "op", "kind", "chain_id"],
            )?,
            vault_sign_ms: histogram(
                &r,
                "vault_sign_request_duration_milliseconds",
                "Vaults signing requests latencies in milliseconds",
                ms.clone(),
                &["vault", "address", "op", "chain_id"],
            )?,
            vault_errors: counter(
                &r,
                "vault_sign_request_error_total",
                "Vaults signing requests error count",
                &["vault", "code", "chain_id"],
            )?,
            handler_ms: histogram(
                &r,
                "sign_handler_request_duration_milliseconds",
                "Total processing time for sign handler requests in milliseconds",
                ms,
                &["address", "status"],
            )?,
            handler_requests: counter(
                &r,
                "sign_handler_requests_total",
                "Total number of sign handler requests",
                &["address", "status"],
            )?,
            consensus_rounds: counter(
                &r,
                "consensus_round_total",
                "Total consensus signing operations by round",
                &["address", "operation_type", "chain_id", "round"],
            )?,
            policy_violations: counter(
                &r,
                "policy_violation_total",
                "Total count of policy violations",
                &["violation_type", "address", "operation_type"],
            )?,
            watermark_rejections: counter(
                &r,
                "watermark_rejection_total",
                "Total count of operations rejected due to watermark protection",
                &["address", "operation_type", "chain_id", "reason"],
            )?,
            auth_failures: counter(
                &r,
                "authentication_failure_total",
                "Total count of authentication failures",
                &["status", "auth_method", "client_ip"],
            )?,
            watermark_ops: counter(
                &r,
                "watermark_operations_total",
                "Total number of watermark operations",
                &["result", "backend", "request_type"],
            )?,
            watermark_seconds: histogram(
                &r,
                "watermark_operation_duration_seconds",
                "Watermark operation duration in seconds",
                exponential_buckets(0.001, 2.0, 10)?,
                &["backend"],
            )?,
            store_errors: counter(
                &r,
                "signatory_watermark_store_errors_total",
                "Requests refused because the watermark store failed",
                &["backend"],
            )?,
            store_io: StoreIoMetrics {
                operations: counter(
                    &r,
                    "watermark_io_operations_total",
                    "Total number of watermark backend I/O operations",
                    &["backend", "operation", "table_name", "result"],
                )?,
                latency: histogram(
                    &r,
                    "watermark_io_latency_seconds",
                    "Watermark backend I/O latency in seconds",
                    exponential_buckets(0.0001, 2.0, 14)?,
                    &["backend", "operation", "table_name"],
                )?,
                errors: counter(
                    &r,
                    "watermark_io_errors_total",
                    "Total number of watermark backend I/O errors",
                    &["backend", "error_type", "table_name", "operation"],
                )?,
            },
            fine_vault_seconds: histogram(
                &r,
                "signatory_vault_sign_duration_seconds",
                "Time the vault took to sign, in seconds (fine buckets from 10 µs)",
                exponential_buckets(0.000_01, 2.0, 18)?,
                &["vault"],
            )?,
            fine_watermark_seconds: histogram(
                &r,
                "signatory_watermark_duration_seconds",
                "Time spent in the watermark store per request, in seconds (fine buckets from 10 µs)",
                exponential_buckets(0.000_01, 2.0, 18)?,
                &["backend"],
            )?,
            vault_sessions: {
                let g = GaugeVec::new(
                    Opts::new(
                        "signatory_vault_sessions",
                        "Backend sessions of vaults that pool them (PKCS#11), by state: in_use, idle, max",
                    ),
                    &["vault", "state"],
                )?;
                r.register(Box::new(g.clone()))?;
                g
            },
            vault_retries: counter(
                &r,
                "signatory_vault_retries_total",
                "Backend calls of network vaults tried again after a transient failure",
                &["vault"],
            )?,
            vault_call_failures: counter(
                &r,
                "signatory_vault_call_failures_total",
                "Failed backend calls of network vaults, retried or not, by class: throttled, \
                 server, timeout, connection, refused",
                &["vault", "class"],
            )?,
            registry: r,
        })
        .and_then(|m| {
            m.register_build_info()?;
            // `process_*`: memory, CPU, file descriptors and threads, as ECAD's Go
            // registry exports them, so dashboards that watch the signer's resources work.
            m.registry.register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))?;
            Ok(m)
        })
    }

    /// `signatory_build_info`, with ECAD Signatory's labels.
    fn register_build_info(&self) -> Result<(), MetricsError> {
        let opts = Opts::new(
            "signatory_build_info",
            "Build information about the signer.",
        )
        .const_label("path", "signatory")
        .const_label("version", env!("CARGO_PKG_VERSION"))
        .const_label("checksum", "(unknown)")
        .const_label("revision", "(unknown)")
        .const_label("branch", "(unknown)");
        let gauge = Gauge::with_opts(opts)?;
        gauge.set(1.0);
        self.registry.register(Box::new(gauge))?;
        Ok(())
    }

    /// The session pool of vault `vault`, read when metrics are scraped.
    pub fn vault_sessions(&self, vault: &str, sessions: signatory_signer::vault::SessionUse) {
        for (state, value) in [
            ("in_use", sessions.in_use),
            ("idle", sessions.idle),
            ("max", sessions.max),
        ] {
            self.vault_sessions
                .with_label_values(&[vault, state])
                .set(value as f64);
        }
    }

    /// The backend call counts of vault `vault`, read when metrics are scraped: the
    /// counters are moved up to the vault's own totals.
    pub fn vault_calls(&self, vault: &str, stats: signatory_signer::vault::CallStats) {
        let catch_up = |counter: prometheus::Counter, total: u64| {
            let behind = total as f64 - counter.get();
            if behind > 0.0 {
                counter.inc_by(behind);
            }
        };
        catch_up(
            self.vault_retries.with_label_values(&[vault]),
            stats.retries,
        );
        for (class, total) in stats.failures() {
            catch_up(
                self.vault_call_failures.with_label_values(&[vault, class]),
                total,
            );
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Result<String, MetricsError> {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// An authentication failure, labelled as ECAD Signatory does.
    pub fn authentication_failure(&self, status: u16, client_ip: &str) {
        self.auth_failures
            .with_label_values(&[status_label(status), "authentication", client_ip])
            .inc();
    }

    /// Every signing request, whatever its outcome: `address` is the key hash as the client
    /// sent it, or `unknown` when it did not parse or names no configured key.
    pub fn sign_handler_request(&self, address: &str, status: u16, elapsed: Duration) {
        let labels = [address, status_label(status)];
        self.handler_requests.with_label_values(&labels).inc();
        self.handler_ms
            .with_label_values(&labels)
            .observe(elapsed.as_secs_f64() * 1000.0);
    }

    /// What the signing service reported for a request that reached it.
    /// `chain` is the request's chain id in base58, empty when it names none.
    pub fn sign_report(
        &self,
        address: &str,
        report: &SignReport,
        chain: &str,
        store_backend: &str,
    ) {
        let Some(summary) = &report.summary else {
            return;
        };
        let vault = report.vault.as_deref().unwrap_or("");
        // Whether the request reached the watermark store (only watermarked kinds do, and
        // only after decoding and policy let them through).
        let reached_store = summary.level.is_some() && !report.timings.watermark.is_zero();
        if reached_store {
            let seconds = report.timings.watermark.as_secs_f64();
            self.watermark_seconds
                .with_label_values(&[store_backend])
                .observe(seconds);
            self.fine_watermark_seconds
                .with_label_values(&[store_backend])
                .observe(seconds);
            // ECAD's results: `success` when the watermark let the request through (a
            // replay of identical bytes, or a vault failing afterwards, included), else
            // `rejected` (a refusal or a failing store).
            let result = match &report.result {
                Err(SignError::Watermark(_) | SignError::Store(_)) => "rejected",
                _ => "success",
            };
            self.watermark_ops
                .with_label_values(&[result, store_backend, summary.kind])
                .inc();
        }
        match &report.result {
            Ok(signed) => {
                if signed.replayed {
                    return;
                }
                self.vault_sign_ms
                    .with_label_values(&[vault, address, summary.kind, chain])
                    .observe(report.timings.vault.as_secs_f64() * 1000.0);
                self.fine_vault_seconds
                    .with_label_values(&[vault])
                    .observe(report.timings.vault.as_secs_f64());
                record_op_kinds(&self.signing_ops, address, vault, summary, chain);
                if let Some(round) = summary.round {
                    self.consensus_rounds
                        .with_label_values(&[address, summary.kind, chain, &round_label(round)])
                        .inc();
                }
            }
            Err(SignError::Policy(denial)) => {
                self.policy_violations
                    .with_label_values(&[violation_type(denial, summary), address, "request"])
                    .inc();
            }
            Err(SignError::Watermark(refusal)) => {
                self.watermark_rejections
                    .with_label_values(&[address, summary.kind, chain, refusal_label(refusal)])
                    .inc();
            }
            // A chain beyond the store's limit is the request's fault, not the store's.
            Err(SignError::Store(e)) if !e.is_request_refused() => {
                self.store_errors.with_label_values(&[store_backend]).inc();
            }
            Err(e @ (SignError::Vault(_) | SignError::BadSignature { .. })) => {
                let code = crate::error::status_of(e.class()).as_u16();
                self.vault_errors
                    .with_label_values(&[vault, status_label(code), chain])
                    .inc();
            }
            Err(_) => {}
        }
    }

    /// What reports a store's I/O (`backend` is its driver name) into these metrics:
    /// ECAD's `watermark_io_*`, one operation per commit group and per compaction.
    pub fn store_io_observer(&self, backend: &'static str) -> Arc<dyn StoreIoObserver> {
        Arc::new(StoreIoReporter {
            metrics: self.store_io.clone(),
            backend,
        })
    }

    /// Pre-create the label sets of the busiest series for a key, so the first requests
    /// after start do not pay for series creation.
    pub fn warm_up(&self, pkh: &PublicKeyHash) {
        let pkh = pkh.to_b58check();
        for status in ["200", "409"] {
            let _ = self.handler_requests.with_label_values(&[&pkh, status]);
            let _ = self.handler_ms.with_label_values(&[&pkh, status]);
        }
    }
}

/// ECAD's `watermark_io_*` metrics, shared by every store. The file store has no tables, so
/// `table_name` is empty, as in ECAD's file backend.
#[derive(Debug, Clone)]
struct StoreIoMetrics {
    operations: CounterVec,
    latency: HistogramVec,
    errors: CounterVec,
}

/// One store's reports into [`StoreIoMetrics`], labelled with its driver name.
#[derive(Debug)]
struct StoreIoReporter {
    metrics: StoreIoMetrics,
    backend: &'static str,
}

impl StoreIoObserver for StoreIoReporter {
    fn observe(&self, io: StoreIo) {
        let StoreIoMetrics {
            operations,
            latency,
            errors,
        } = &self.metrics;
        let result = if io.error.is_some() {
            "error"
        } else {
            "success"
        };
        operations
            .with_label_values(&[self.backend, io.operation, "", result])
            .inc();
        latency
            .with_label_values(&[self.backend, io.operation, ""])
            .observe(io.elapsed.as_secs_f64());
        if let Some(error) = io.error {
            errors
                .with_label_values(&[self.backend, error, "", io.operation])
                .inc();
        }
    }
}

fn record_op_kinds(
    ops: &CounterVec,
    pkh: &str,
    vault: &str,
    summary: &RequestSummary,
    chain: &str,
) {
    if summary.operations.is_empty() {
        ops.with_label_values(&[pkh, vault, summary.kind, summary.kind, chain])
            .inc();
        return;
    }
    for kind in &summary.operations {
        ops.with_label_values(&[pkh, vault, summary.kind, kind, chain])
            .inc();
    }
}

/// ECAD's `violation_type`: `authentication` for who asked, else the refused request or
/// operation kind.
fn violation_type<'a>(denial: &'a PolicyDenial, summary: &RequestSummary) -> &'a str {
    match denial {
        PolicyDenial::AuthenticationRequired | PolicyDenial::ClientNotAuthorized(_) => {
            "authentication"
        }
        PolicyDenial::OperationNotAllowed(op) => op,
        PolicyDenial::ChainNotAllowed(_) => "chain",
        PolicyDenial::ProofOfPossessionNotAllowed => "proof_of_possession",
        _ => summary.kind,
    }
}

/// A bounded set of reasons (ECAD puts the error text there, which grows without bound).
fn refusal_label(refusal: &Refusal) -> &'static str {
    match refusal.reason {
        RefusalReason::LevelBelow => "level_below_watermark",
        RefusalReason::RoundBelow => "round_below_watermark",
        RefusalReason::DifferentPayload => "different_payload",
        _ => "other",
    }
}

fn round_label(round: i32) -> Cow<'static, str> {
    const SMALL: [&str; 8] = ["0", "1", "2", "3", "4", "5", "6", "7"];
    match usize::try_from(round).ok().and_then(|i| SMALL.get(i)) {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(round.to_string()),
    }
}

/// Status codes as label values without an allocation for the common ones.
fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        408 => "408",
        409 => "409",
        413 => "413",
        500 => "500",
        502 => "502",
        503 => "503",
        _ => "other",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use signatory_signer::vault::CallStats;

    #[test]
    fn vault_call_counts_follow_the_vaults_own_totals() {
        let metrics = Metrics::new().unwrap();
        metrics.vault_calls(
            "kms",
            CallStats {
                retries: 2,
                throttled: 1,
                ..CallStats::default()
            },
        );
        metrics.vault_calls(
            "kms",
            CallStats {
                retries: 5,
                throttled: 1,
                refused: 3,
                ..CallStats::default()
            },
        );
        let text = metrics.render().unwrap();
        for line in [
            "signatory_vault_retries_total{vault=\"kms\"} 5",
            "signatory_vault_call_failures_total{class=\"throttled\",vault=\"kms\"} 1",
            "signatory_vault_call_failures_total{class=\"refused\",vault=\"kms\"} 3",
            "signatory_vault_call_failures_total{class=\"timeout\",vault=\"kms\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
    }
}
