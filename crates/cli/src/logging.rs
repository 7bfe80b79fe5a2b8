//! Logs on standard error, as text or JSON lines. Nothing logged carries key material:
//! vaults, stores and the service log key hashes, vault names and paths only.
//!
//! A signer under load logs one line per request. Lines are formatted on the thread that
//! logs and appended to a shared buffer; a flusher thread writes the buffer out every
//! [`FLUSH_EVERY`], and a logging thread writes it itself once it holds [`FLUSH_AT`]
//! bytes. A line therefore costs a copy on the signing path rather than a `write` system
//! call or the wake-up of a writer thread, no line is dropped, and lines keep their order.
//! A line reaches standard error at most `FLUSH_EVERY` after it was logged; dropping the
//! [`LogGuard`] writes out the rest.

use crate::error::CliError;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

const FLUSH_EVERY: Duration = Duration::from_millis(20);
const FLUSH_AT: usize = 64 * 1024;

/// Keeps the flusher running; dropping it writes out every buffered line. Hold it until
/// the process has nothing more to log.
#[must_use = "dropping the guard stops the log flusher"]
pub struct LogGuard {
    sink: Arc<Sink>,
    flusher: Option<JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        *lock(&self.sink.stop) = true;
        self.sink.wake.notify_one();
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
        self.sink.flush();
    }
}

/// Install the global subscriber. `filter` is a level or a tracing filter directive.
pub fn init(filter: &str, json: bool) -> Result<LogGuard, CliError> {
    let filter = EnvFilter::try_new(filter).map_err(|e| {
        CliError::Usage(format!(
            "--log {filter:?} is not a log level or filter (try `info` or `debug`): {e}"
        ))
    })?;
    let sink = Arc::new(Sink::default());
    let flusher = {
        let sink = Arc::clone(&sink);
        std::thread::Builder::new()
            .name("signatory-log".into())
            .spawn(move || sink.run_flusher())
            .map_err(|e| CliError::Usage(format!("could not start the log flusher: {e}")))?
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Arc::clone(&sink))
        // Colour codes only for a person at a terminal, never into files or journals.
        .with_ansi(std::io::stderr().is_terminal());
    // A second installation (never happens in the binary) is harmless: keep the first.
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.with_target(false).try_init()
    };
    Ok(LogGuard {
        sink,
        flusher: Some(flusher),
    })
}

#[derive(Default)]
struct Sink {
    buffer: Mutex<Vec<u8>>,
    /// Held from taking the buffer to the end of writing it, so that lines leave in order.
    output: Mutex<()>,
    stop: Mutex<bool>,
    wake: Condvar,
}

/// No lock here guards an invariant a panicking holder could break.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Sink {
    fn append(&self, line: &[u8]) {
        let mut buffer = lock(&self.buffer);
        buffer.extend_from_slice(line);
        let full = buffer.len() >= FLUSH_AT;
        drop(buffer);
        if full {
            self.flush();
        }
    }

    fn flush(&self) {
        let _output = lock(&self.output);
        let lines = std::mem::take(&mut *lock(&self.buffer));
        if lines.is_empty() {
            return;
        }
        // Standard error is the last place to report a failure to write to it.
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(&lines);
        let _ = stderr.flush();
    }

    fn run_flusher(&self) {
        let mut stop = lock(&self.stop);
        while !*stop {
            stop = self
                .wake
                .wait_timeout(stop, FLUSH_EVERY)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|e| e.into_inner().0);
            drop(stop);
            self.flush();
            stop = lock(&self.stop);
        }
    }
}

/// One log event's bytes, handed over by `tracing-subscriber` in a single `write`
/// (through `Arc<Sink>`, which is a `MakeWriter` because `&Sink` writes).
impl Write for &Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.append(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_kept_in_order_across_threshold_flushes() {
        let sink = Sink::default();
        // The threshold flush writes to stderr; what matters is that nothing is lost or
        // reordered in the buffer that remains.
        let line = vec![b'x'; 1000];
        for _ in 0..(FLUSH_AT / 1000 + 5) {
            sink.append(&line);
        }
        assert!(lock(&sink.buffer).len() < FLUSH_AT);
        sink.append(b"last\n");
        assert!(lock(&sink.buffer).ends_with(b"last\n"));
        sink.flush();
        assert!(lock(&sink.buffer).is_empty());
    }
}
