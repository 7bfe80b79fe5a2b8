//! The durable watermark store for one machine (the default `file` driver).
//!
//! # Layout
//!
//! Everything lives in `<base_dir>/watermarks/` (`codec.rs` beside this module gives the
//! encodings):
//!
//! - `snapshot`: every record as of the start of one log generation, written to
//!   `snapshot.tmp`, fsynced, renamed into place, then the directory fsynced;
//! - `log-<generation>`: the append-only log that follows that snapshot. Each commit group
//!   is one checksummed frame of records, and is fdatasynced before any caller waiting on it
//!   is answered. The log's header also records how many of its bytes were acknowledged
//!   (see "Acknowledged length" below);
//! - `lock`: held with an exclusive lock (`File::try_lock`) while the store is open, so two
//!   processes never write one store.
//!
//! The directory exists only once `init` completed: `init` builds it under a temporary
//! name and renames it into place. A missing directory is [`StoreError::NotInitialised`],
//! never a silent fresh start; a directory without its snapshot or log is
//! [`StoreError::Corrupt`].
//!
//! # Writes and group commit
//!
//! All state sits in one in-memory map under one mutex: `check_and_advance` decides and
//! queues the new record inside that critical section, so two requests for one key are
//! strictly ordered and at most one reserves a given height. One writer thread takes
//! everything queued, writes it as a single frame, fdatasyncs once and then wakes every
//! caller whose record it covered: concurrent callers share fsyncs. A caller answered
//! `ReturnStored` or `SignAgainSameBytes` also waits until the record that answer rests on
//! is durable. If a write or an fsync fails, the store stops accepting anything
//! ([`StoreError::Failed`]) until it is reopened, because what reached the disk is unknown.
//!
//! # Staying where the next open reads
//!
//! The store remembers the device and inode of its directory, its lock file and its
//! current log as it opened them. Before acknowledging a commit group, the writer checks
//! that each path still names that same file (three `stat` calls next to an fdatasync), and
//! so does [`WatermarkStore::health`]. If the directory was moved or replaced, or the log
//! or lock file removed or replaced, the log being appended to is no longer what the next
//! open reads (or another process could take the lock), so the store stops as after a
//! failed write ([`StoreError::Displaced`], then [`StoreError::Failed`]).
//!
//! # Acknowledged length
//!
//! The frames alone cannot tell a torn write (never acknowledged, safe to drop) from
//! acknowledged frames that went missing (the log cut at a frame boundary): both end
//! cleanly at a frame boundary or in a damaged frame. So after a commit group's frame is
//! synced, and before anyone waiting on it is answered, the writer overwrites one of two
//! slots in the log header with the log's new length and syncs again. On open, intact
//! frames that end before that length mean acknowledged records are lost:
//! [`StoreError::AcknowledgedLost`], and the store does not open. Bytes past it are the
//! torn write of a commit nobody was answered for. The slots alternate, so a torn slot
//! write leaves the previous length (see `codec.rs`). The cost is a second fdatasync per
//! commit group, shared like the first by every request in the group.
//!
//! A log written by an earlier version (format 1, no slots) is replayed as before, with a
//! warning that its end could not be checked, and migrated at once to a new log generation
//! that has them. An older copy put back (the whole store directory, or the log file alone)
//! carries its own older length, is consistent in itself and cannot be detected; the
//! operations guide says how to fence keys then.
//!
//! # Recovery and compaction
//!
//! Opening replays the snapshot, then the log. A damaged frame followed by intact data is
//! corruption and opening fails. Bytes after the acknowledged length that do not form
//! intact frames are a torn write from a crash, truncated with a warning; intact frames
//! after it (synced, but the crash came before the slot) are kept. When the log passes a
//! size threshold, the writer creates the next log, writes a snapshot that names it, then
//! deletes the old log; a crash at any point leaves either the old pair or the new pair
//! complete, and leftovers are removed at the next open.
//!
//! # Writability and the chain limit
//!
//! Opening, and every health check, creates, syncs and removes a probe file in the
//! directory: a store whose directory takes no new files would otherwise fail only at its
//! next compaction ([`StoreError::NotWritable`]). A reservation for a chain the store holds
//! nothing for is refused once it holds [`FileStoreOptions::max_chains`] chains
//! ([`StoreError::TooManyChains`]), before anything is queued.

use crate::codec;
use crate::rules::{self, Attach};
use async_trait::async_trait;
use parking_lot::{Condvar, Mutex};
use signatory_signer::store::{
    DurabilityTicket, Recorded, Reserved, StoreError, StoreIo, StoreIoObserver, WatermarkStore,
};
use signatory_signer::watermark::{Decision, Watermark, WatermarkKey, WatermarkRequest};
use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tezos_crypto::ChainId;
use tokio::sync::watch;

/// The directory under the signer's base directory that holds the store.
pub const STORE_DIR: &str = "watermarks";
/// What to tell an operator whose store does not exist yet.
pub const INIT_HINT: &str =
    "create it with `signatory watermark init` (then import existing watermarks if this key \
     has signed before)";

const SNAPSHOT: &str = "snapshot";
const SNAPSHOT_TMP: &str = "snapshot.tmp";
const LOCK: &str = "lock";
const LOG_PREFIX: &str = "log-";
/// Files created and removed to check that the directory takes writes.
const PROBE_PREFIX: &str = "write-probe-";
/// How long a record nobody waits for may stay queued before it is written on its own.
const LAZY_FLUSH: Duration = Duration::from_millis(20);

/// Tuning of the file store.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileStoreOptions {
    /// Compact (snapshot and start a new log) once the log holds this many bytes.
    pub compact_after_bytes: u64,
    /// Distinct chains the store takes requests for; a request for one more is refused
    /// ([`StoreError::TooManyChains`]). Operator `set` and import are not limited.
    pub max_chains: usize,
    /// How long a successful writability probe answers `health` for. Each probe creates,
    /// syncs and removes a file; `/healthz` is unauthenticated, and a client polling it in
    /// a loop must not turn it into an fsync storm competing with the signing commits. A
    /// failed probe is never reused: the next check probes again.
    pub health_probe_every: Duration,
}

impl Default for FileStoreOptions {
    fn default() -> Self {
        FileStoreOptions {
            compact_after_bytes: 8 << 20,
            max_chains: rules::DEFAULT_MAX_CHAINS,
            health_probe_every: Duration::from_secs(5),
        }
    }
}

impl FileStoreOptions {
    pub fn compact_after_bytes(mut self, bytes: u64) -> Self {
        self.compact_after_bytes = bytes;
        self
    }

    pub fn max_chains(mut self, chains: usize) -> Self {
        self.max_chains = chains;
        self
    }

    pub fn health_probe_every(mut self, every: Duration) -> Self {
        self.health_probe_every = every;
        self
    }
}

/// Counters of the writer's work since the store was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileStoreStats {
    /// Every fsync and fdatasync issued (commits, compactions, directory syncs).
    pub fsyncs: u64,
    /// Commit groups written to the log.
    pub commits: u64,
    /// Records written to the log.
    pub records_written: u64,
    pub compactions: u64,
    /// Size of the current log file.
    pub log_bytes: u64,
}

/// What opening found on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenReport {
    pub keys: usize,
    pub records_replayed: u64,
    /// Bytes of a torn final commit group that were dropped.
    pub torn_tail_bytes: Option<u64>,
    /// Logs left over by a compaction interrupted by a crash, removed.
    pub stale_logs_removed: usize,
    pub log_generation: u64,
    /// The log was in this older format (without an acknowledged length, so its end could
    /// not be checked) and was migrated to the current one.
    pub migrated_from_log_version: Option<u32>,
}

#[derive(Debug, Default)]
struct Counters {
    fsyncs: AtomicU64,
    commits: AtomicU64,
    records_written: AtomicU64,
    compactions: AtomicU64,
    log_bytes: AtomicU64,
}

#[derive(Debug)]
struct Entry {
    mark: Watermark,
    /// Sequence number of the record that set `mark` (0: read at open, durable).
    seq: u64,
}

#[derive(Debug, Default)]
struct State {
    marks: HashMap<WatermarkKey, Entry>,
    /// Every chain `marks` holds a record for (records are never removed).
    chains: HashSet<ChainId>,
    pending: Vec<(WatermarkKey, Watermark)>,
    /// Some pending record has a caller waiting for it: commit now. Otherwise the pending
    /// records are reproducible signatures, which may wait for company (see `LAZY_FLUSH`).
    urgent: bool,
    last_seq: u64,
    failure: Option<String>,
    shutdown: bool,
}

impl State {
    fn enqueue(&mut self, key: WatermarkKey, mark: Watermark) -> u64 {
        self.urgent = true;
        self.enqueue_lazy(key, mark)
    }

    /// Queue a record nobody waits for; it goes out with the next commit, or after
    /// `LAZY_FLUSH` at the latest.
    fn enqueue_lazy(&mut self, key: WatermarkKey, mark: Watermark) -> u64 {
        self.last_seq += 1;
        let seq = self.last_seq;
        self.chains.insert(key.chain_id);
        self.pending.push((key, mark.clone()));
        self.marks.insert(key, Entry { mark, seq });
        seq
    }
}

#[derive(Debug, Clone, Default)]
struct CommitState {
    durable_seq: u64,
    failure: Option<String>,
}

/// Device and inode: which file or directory a path named when the store opened it. Outside
/// Unix only the path's existence is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId(u64, u64);

impl FileId {
    #[cfg(unix)]
    fn of(meta: &fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        FileId(meta.dev(), meta.ino())
    }

    #[cfg(not(unix))]
    fn of(_meta: &fs::Metadata) -> Self {
        FileId(0, 0)
    }
}

/// The files an open store writes, as it opened them (see "Staying where the next open
/// reads" in the module documentation).
#[derive(Debug)]
struct Placement {
    dir: PathBuf,
    dir_id: FileId,
    lock_id: FileId,
    /// The current log's path and identity. A compaction swaps them while holding this lock,
    /// and a check holds it throughout, so a check never compares a path with the identity
    /// of the log before or after it.
    log: Mutex<(PathBuf, FileId)>,
}

impl Placement {
    /// Whether the directory, the current log and the lock file are still the ones opened.
    fn check(&self) -> Result<(), StoreError> {
        let log = self.log.lock();
        if !self.still(&self.dir, self.dir_id)? {
            return Err(self.displaced(
                "the store directory was moved, replaced or removed, so the watermarks \
                 written since are not where the next start reads them; put it back at this \
                 path before restarting the signer, and never create a new store in its place"
                    .to_string(),
            ));
        }
        if !self.still(&log.0, log.1)? {
            return Err(self.displaced(format!(
                "the log {} was moved, replaced or removed, so the watermarks written since \
                 are not where the next start reads them; put it back before restarting the \
                 signer",
                log.0.display()
            )));
        }
        if !self.still(&self.dir.join(LOCK), self.lock_id)? {
            return Err(self.displaced(
                "the lock file was moved, replaced or removed, so another process could open \
                 this store at the same time; restart the signer"
                    .to_string(),
            ));
        }
        Ok(())
    }

    /// Whether `path` still names the file `expected`.
    fn still(&self, path: &Path, expected: FileId) -> Result<bool, StoreError> {
        match fs::metadata(path) {
            Ok(meta) => Ok(FileId::of(&meta) == expected),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            // Fail closed: a store that cannot tell where it writes must not go on.
            Err(e) => Err(self.displaced(format!("could not check {}: {e}", path.display()))),
        }
    }

    fn displaced(&self, detail: String) -> StoreError {
        StoreError::Displaced {
            path: self.dir.clone(),
            detail,
        }
    }
}

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    state: Mutex<State>,
    wake_writer: Condvar,
    commits: watch::Sender<CommitState>,
    counters: Counters,
    io_observer: OnceLock<Arc<dyn StoreIoObserver>>,
    /// Numbers the probe files, so that concurrent checks never share one.
    probes: AtomicU64,
    /// When the last writability probe that succeeded ran, and how long it is trusted.
    last_good_probe: Mutex<Option<Instant>>,
    probe_every: Duration,
    #[cfg(test)]
    fail_next_sync: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// Nothing queued, nothing committed yet, for the store directory `dir`.
    fn new(dir: PathBuf) -> Self {
        let (commits, _) = watch::channel(CommitState::default());
        Shared {
            dir,
            state: Mutex::new(State::default()),
            wake_writer: Condvar::new(),
            commits,
            counters: Counters::default(),
            io_observer: OnceLock::new(),
            probes: AtomicU64::new(0),
            last_good_probe: Mutex::new(None),
            probe_every: FileStoreOptions::default().health_probe_every,
            #[cfg(test)]
            fail_next_sync: Default::default(),
        }
    }

    /// Report one I/O operation that started at `started` to the observer, if any.
    fn observe_io(&self, operation: &'static str, started: Instant, error: Option<&StoreError>) {
        if let Some(observer) = self.io_observer.get() {
            observer.observe(StoreIo {
                operation,
                elapsed: started.elapsed(),
                error: error.map(|e| match e {
                    StoreError::Io { .. } => "io",
                    StoreError::Displaced { .. } => "displaced",
                    _ => "other",
                }),
            });
        }
    }

    /// Stop accepting anything: every waiter and every later call gets the failure.
    fn fail(&self, reason: String) {
        tracing::error!(dir = %self.dir.display(), %reason, "watermark store stopped");
        let mut state = self.state.lock();
        if state.failure.is_none() {
            state.failure = Some(reason.clone());
        }
        drop(state);
        self.commits.send_modify(|c| {
            c.failure.get_or_insert(reason);
        });
    }

    fn sync(&self, file: &File, data_only: bool, path: &Path) -> Result<(), StoreError> {
        self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        #[cfg(test)]
        if self.fail_next_sync.swap(false, Ordering::SeqCst) {
            return Err(StoreError::io(
                format!("could not fsync {}", path.display()),
                std::io::Error::other("injected fsync failure"),
            ));
        }
        let result = if data_only {
            file.sync_data()
        } else {
            file.sync_all()
        };
        result.map_err(|e| StoreError::io(format!("could not fsync {}", path.display()), e))
    }

    fn sync_dir(&self, dir: &Path) -> Result<(), StoreError> {
        let handle = File::open(dir)
            .map_err(|e| StoreError::io(format!("could not open {}", dir.display()), e))?;
        self.sync(&handle, false, dir)
    }

    /// Create, write, sync and remove a probe file in the store directory. Permissions
    /// alone would not tell: root ignores them, and a read-only mount or an immutable
    /// directory refuses root too. Not counted in the stats (it is no commit's work).
    /// [`Self::probe_writable`], unless one succeeded within `probe_every`. Concurrent
    /// callers wait for one probe rather than each running their own.
    fn probe_writable_recently(&self) -> Result<(), StoreError> {
        let mut last = self.last_good_probe.lock();
        if last.is_some_and(|at| at.elapsed() < self.probe_every) {
            return Ok(());
        }
        self.probe_writable()?;
        *last = Some(Instant::now());
        Ok(())
    }

    fn probe_writable(&self) -> Result<(), StoreError> {
        let n = self.probes.fetch_add(1, Ordering::Relaxed);
        let path = self
            .dir
            .join(format!("{PROBE_PREFIX}{}-{n}", std::process::id()));
        let probe = || -> std::io::Result<()> {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)?;
            file.write_all(b"probe")?;
            file.sync_all()?;
            fs::remove_file(&path)
        };
        probe().map_err(|e| {
            let _leftover_removed_at_next_open = fs::remove_file(&path);
            StoreError::NotWritable {
                path: self.dir.clone(),
                detail: format!(
                    "creating, syncing and removing {} failed: {e}",
                    path.display()
                ),
            }
        })
    }
}

/// The durable file store. See the module documentation for its layout and guarantees.
pub struct FileStore {
    shared: Arc<Shared>,
    placement: Arc<Placement>,
    writer: Option<JoinHandle<()>>,
    report: OpenReport,
    max_chains: usize,
    // Dropped after the writer thread is joined (see Drop), so the lock outlives every write.
    _lock: File,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("dir", &self.shared.dir)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

fn io_err(context: &str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let context = format!("{context} {}", path.display());
    move |e| StoreError::io(context, e)
}

fn corrupt(path: &Path, detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

fn log_name(generation: u64) -> String {
    format!("{LOG_PREFIX}{generation}")
}

fn parse_log_name(name: &str) -> Option<u64> {
    name.strip_prefix(LOG_PREFIX)?.parse().ok()
}

/// Offset of the first intact frame strictly after `from`, if any.
fn intact_frame_after(data: &[u8], from: usize) -> Option<usize> {
    let last = data.len().checked_sub(codec::FRAME_HEADER_LEN + 1)?;
    (from.saturating_add(1)..=last).find(|&at| codec::frame_at(data, at).is_some())
}

/// Write `data` to `path` durably: temp file, fsync, rename, directory fsync.
fn write_snapshot(shared: &Shared, dir: &Path, data: &[u8]) -> Result<(), StoreError> {
    let tmp = dir.join(SNAPSHOT_TMP);
    let target = dir.join(SNAPSHOT);
    let mut file = File::create(&tmp).map_err(io_err("could not create", &tmp))?;
    file.write_all(data)
        .map_err(io_err("could not write", &tmp))?;
    shared.sync(&file, false, &tmp)?;
    drop(file);
    fs::rename(&tmp, &target).map_err(io_err("could not rename into place", &target))?;
    shared.sync_dir(dir)
}

/// A new, synced log for `generation`: its header acknowledges the header alone.
fn create_log(shared: &Shared, dir: &Path, generation: u64) -> Result<File, StoreError> {
    let path = dir.join(log_name(generation));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(io_err("could not create", &path))?;
    file.write_all(&codec::encode_log_header(generation))
        .map_err(io_err("could not write", &path))?;
    shared.sync(&file, false, &path)?;
    shared.sync_dir(dir)?;
    Ok(file)
}

/// Create log `next` and a snapshot of `durable` that names it. Until the snapshot is in
/// place the previous pair is the store; after, the new one is (the old log is left for the
/// caller to remove).
fn start_generation(
    shared: &Shared,
    dir: &Path,
    next: u64,
    durable: &HashMap<WatermarkKey, Watermark>,
) -> Result<File, StoreError> {
    let next_path = dir.join(log_name(next));
    if fs::symlink_metadata(&next_path).is_ok() {
        fs::remove_file(&next_path).map_err(io_err("could not remove stale", &next_path))?;
    }
    let file = create_log(shared, dir, next)?;
    write_snapshot(shared, dir, &codec::encode_snapshot(next, durable.iter()))?;
    Ok(file)
}

impl FileStore {
    /// The store's directory under a signer base directory.
    pub fn store_dir(base_dir: &Path) -> PathBuf {
        base_dir.join(STORE_DIR)
    }

    /// Create an empty store under `base_dir` (creating `base_dir` if needed). Refuses if a
    /// store exists there already. Blocking: call it off the async runtime's workers.
    pub fn init(base_dir: impl AsRef<Path>) -> Result<(), StoreError> {
        let base = base_dir.as_ref();
        let dir = Self::store_dir(base);
        if fs::symlink_metadata(&dir).is_ok() {
            return Err(StoreError::AlreadyInitialised { path: dir });
        }
        fs::create_dir_all(base).map_err(io_err("could not create", base))?;
        let tmp = base.join(format!(".{STORE_DIR}.init-{}", std::process::id()));
        if fs::symlink_metadata(&tmp).is_ok() {
            fs::remove_dir_all(&tmp).map_err(io_err("could not remove leftover", &tmp))?;
        }
        fs::create_dir(&tmp).map_err(io_err("could not create", &tmp))?;
        // Counters of a throwaway Shared: init is not part of any open store's stats.
        let scratch = Shared::new(tmp.clone());
        const FIRST_GENERATION: u64 = 1;
        drop(create_log(&scratch, &tmp, FIRST_GENERATION)?);
        write_snapshot(
            &scratch,
            &tmp,
            &codec::encode_snapshot(FIRST_GENERATION, std::iter::empty()),
        )?;
        match fs::rename(&tmp, &dir) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::AlreadyExists | ErrorKind::DirectoryNotEmpty
                ) =>
            {
                let _cleanup = fs::remove_dir_all(&tmp);
                return Err(StoreError::AlreadyInitialised { path: dir });
            }
            Err(e) => return Err(io_err("could not move the new store into", &dir)(e)),
        }
        scratch.sync_dir(base)
    }

    /// Open the store under `base_dir` with default options. Blocking.
    pub fn open(base_dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(base_dir, FileStoreOptions::default())
    }

    /// Open the store under `base_dir`: take the process lock, replay snapshot and log,
    /// drop a torn final commit group, and start the writer thread. Blocking.
    pub fn open_with(
        base_dir: impl AsRef<Path>,
        options: FileStoreOptions,
    ) -> Result<Self, StoreError> {
        let dir = Self::store_dir(base_dir.as_ref());
        match fs::metadata(&dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(corrupt(&dir, "exists but is not a directory")),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(StoreError::NotInitialised {
                    path: dir,
                    hint: INIT_HINT.to_string(),
                })
            }
            Err(e) => return Err(io_err("could not read", &dir)(e)),
        }

        let shared = Shared::new(dir.clone());
        // Before the lock file (created at the first open) and before recovery, which may
        // have to truncate, migrate or clean up: say what is wrong, not which step failed.
        shared.probe_writable()?;
        let lock_path = dir.join(LOCK);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io_err("could not open", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Locked { path: dir });
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(io_err("could not lock", &lock_path)(e))
            }
        }

        let mut shared = Shared::new(dir.clone());
        shared.probe_every = options.health_probe_every;
        let Recovered {
            file,
            durable,
            report,
            next_slot,
        } = recover(&shared, &dir)?;
        let log_meta = file
            .metadata()
            .map_err(io_err("could not stat the log in", &dir))?;
        let log_bytes = log_meta.len();
        let placement = Arc::new(Placement {
            dir_id: FileId::of(&fs::metadata(&dir).map_err(io_err("could not stat", &dir))?),
            lock_id: FileId::of(
                &lock
                    .metadata()
                    .map_err(io_err("could not stat", &lock_path))?,
            ),
            log: Mutex::new((
                dir.join(log_name(report.log_generation)),
                FileId::of(&log_meta),
            )),
            dir: dir.clone(),
        });
        shared
            .counters
            .log_bytes
            .store(log_bytes, Ordering::Relaxed);
        {
            let mut state = shared.state.lock();
            state.chains = durable.keys().map(|k| k.chain_id).collect();
            state.marks = durable
                .iter()
                .map(|(k, m)| {
                    (
                        *k,
                        Entry {
                            mark: m.clone(),
                            seq: 0,
                        },
                    )
                })
                .collect();
        }
        let shared = Arc::new(shared);
        let writer = Writer {
            shared: Arc::clone(&shared),
            placement: Arc::clone(&placement),
            file,
            generation: report.log_generation,
            log_bytes,
            next_slot,
            durable,
            compact_after: options.compact_after_bytes,
            frame: Vec::new(),
            body: Vec::new(),
        };
        let handle = std::thread::Builder::new()
            .name("watermark-writer".into())
            .spawn(move || writer.run())
            .map_err(io_err("could not start the writer thread for", &dir))?;
        Ok(FileStore {
            shared,
            placement,
            writer: Some(handle),
            report,
            max_chains: options.max_chains,
            _lock: lock,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The watermarks committed to the store under `base_dir`, read without its lock and
    /// without changing anything on disk, so that a running signer's store can be looked
    /// at. A commit group being written as it is read is left out (it is not acknowledged
    /// yet); a compaction in between is retried. Blocking.
    pub fn read_committed(
        base_dir: impl AsRef<Path>,
    ) -> Result<Vec<(WatermarkKey, Watermark)>, StoreError> {
        let dir = Self::store_dir(base_dir.as_ref());
        if !dir.is_dir() {
            return Err(StoreError::NotInitialised {
                path: dir,
                hint: INIT_HINT.to_string(),
            });
        }
        const ATTEMPTS: usize = 5;
        for _ in 0..ATTEMPTS {
            let (generation, mut durable) = read_snapshot(&dir)?;
            let log_path = dir.join(log_name(generation));
            let data = match fs::read(&log_path) {
                Ok(data) => data,
                // Compacted between the two reads: the next snapshot names the next log.
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("could not read", &log_path)(e)),
            };
            replay_log(&log_path, &data, generation, &mut durable)?;
            return Ok(durable.into_iter().collect());
        }
        Err(StoreError::Failed(format!(
            "{} changed under every one of {ATTEMPTS} reads; try again",
            dir.display()
        )))
    }

    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    pub fn stats(&self) -> FileStoreStats {
        let c = &self.shared.counters;
        FileStoreStats {
            fsyncs: c.fsyncs.load(Ordering::Relaxed),
            commits: c.commits.load(Ordering::Relaxed),
            records_written: c.records_written.load(Ordering::Relaxed),
            compactions: c.compactions.load(Ordering::Relaxed),
            log_bytes: c.log_bytes.load(Ordering::Relaxed),
        }
    }

    #[cfg(test)]
    fn fail_next_sync(&self) {
        self.shared.fail_next_sync.store(true, Ordering::SeqCst);
    }

    /// Lock the state, refusing if the store stopped; run `f`; wake the writer if `f` gave
    /// it something new to do. Returns what `f` returned.
    ///
    /// A lazy record added to a non-empty queue changes nothing for the writer: it is
    /// already committing, or waiting for an urgent record or the lazy deadline. Waking
    /// it for each of those was about a third of its context switches under load.
    fn with_state<T>(
        &self,
        f: impl FnOnce(&mut State) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut state = self.shared.state.lock();
        if let Some(reason) = &state.failure {
            return Err(StoreError::Failed(reason.clone()));
        }
        let was_empty = state.pending.is_empty();
        let was_urgent = state.urgent;
        let out = f(&mut state)?;
        let wake = !state.pending.is_empty() && (was_empty || (state.urgent && !was_urgent));
        drop(state);
        if wake {
            self.shared.wake_writer.notify_one();
        }
        Ok(out)
    }

    /// Someone waits: commit what is pending now, even lazy records.
    fn hurry(&self) {
        let mut state = self.shared.state.lock();
        if !state.pending.is_empty() && !state.urgent {
            state.urgent = true;
            drop(state);
            self.shared.wake_writer.notify_one();
        }
    }

    /// Wait until every record up to `seq` is on disk.
    async fn wait_until_durable(&self, seq: u64) -> Result<(), StoreError> {
        let mut commits = self.shared.commits.subscribe();
        if commits.borrow().durable_seq < seq {
            self.hurry();
        }
        let outcome = commits
            .wait_for(|c| c.durable_seq >= seq || c.failure.is_some())
            .await
            .map(|c| (c.durable_seq >= seq, c.failure.clone()));
        match outcome {
            Ok((true, _)) => Ok(()),
            Ok((false, failure)) => Err(StoreError::Failed(
                failure.unwrap_or_else(|| "write failed".to_string()),
            )),
            Err(_) => Err(StoreError::Failed("the writer thread is gone".to_string())),
        }
    }
}

/// The snapshot's generation and records.
fn read_snapshot(dir: &Path) -> Result<(u64, HashMap<WatermarkKey, Watermark>), StoreError> {
    let snapshot_path = dir.join(SNAPSHOT);
    let snapshot = match fs::read(&snapshot_path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(corrupt(
                &snapshot_path,
                "the snapshot is missing; restore the directory from a backup or import the \
                 watermarks again into a new store",
            ))
        }
        Err(e) => return Err(io_err("could not read", &snapshot_path)(e)),
    };
    let (generation, records) =
        codec::decode_snapshot(&snapshot).map_err(|d| corrupt(&snapshot_path, d))?;
    Ok((generation, records.into_iter().collect()))
}

/// What replaying a log found.
struct Replayed {
    records: u64,
    /// Where the intact frames end.
    end: usize,
    /// Bytes after `end`: a torn final commit group, never acknowledged.
    torn: Option<u64>,
    header: codec::LogHeader,
}

/// Apply the commit groups of the log `data` (read from `log_path`, generation `generation`)
/// to `durable`. A damaged frame with intact data after it is corruption; intact frames
/// ending before the acknowledged length are lost acknowledged records; damaged bytes after
/// it are a torn write and are left out. Changes nothing on disk.
fn replay_log(
    log_path: &Path,
    data: &[u8],
    generation: u64,
    durable: &mut HashMap<WatermarkKey, Watermark>,
) -> Result<Replayed, StoreError> {
    let header = codec::decode_log_header(data).map_err(|d| corrupt(log_path, d))?;
    if header.generation != generation {
        return Err(corrupt(
            log_path,
            format!(
                "log header says generation {}, expected {generation}",
                header.generation
            ),
        ));
    }
    let mut replayed = Replayed {
        records: 0,
        end: header.len,
        torn: None,
        header,
    };
    while replayed.end < data.len() {
        let pos = replayed.end;
        match codec::frame_at(data, pos) {
            Some(body) => {
                let records = codec::decode_records(body)
                    .map_err(|d| corrupt(log_path, format!("commit group at byte {pos}: {d}")))?;
                replayed.records += records.len() as u64;
                durable.extend(records);
                replayed.end += codec::FRAME_HEADER_LEN + body.len();
            }
            None => {
                if let Some(next) = intact_frame_after(data, pos) {
                    return Err(corrupt(
                        log_path,
                        format!(
                            "damaged commit group at byte {pos} is followed by intact data at \
                             byte {next}; acknowledged watermarks may be lost, restore from a \
                             backup"
                        ),
                    ));
                }
                replayed.torn = Some((data.len() - pos) as u64);
                break;
            }
        }
    }
    if let Some(acknowledged) = header.acknowledged {
        if (replayed.end as u64) < acknowledged {
            let detail = if data.len() as u64 >= acknowledged {
                format!(
                    "{} records {acknowledged} bytes as acknowledged, but its commit groups \
                     are intact only up to byte {} (damaged after it)",
                    log_path.display(),
                    replayed.end
                )
            } else {
                format!(
                    "{} records {acknowledged} bytes as acknowledged, but it holds only {} \
                     (cut short)",
                    log_path.display(),
                    data.len()
                )
            };
            return Err(StoreError::AcknowledgedLost {
                path: log_path.parent().unwrap_or(log_path).to_path_buf(),
                detail,
            });
        }
    }
    Ok(replayed)
}

/// What opening found and set up.
struct Recovered {
    /// The current log, positioned at its end.
    file: File,
    durable: HashMap<WatermarkKey, Watermark>,
    report: OpenReport,
    /// The acknowledgement slot the next commit overwrites.
    next_slot: usize,
}

/// Read the snapshot and log, drop a torn tail, migrate an older log format.
fn recover(shared: &Shared, dir: &Path) -> Result<Recovered, StoreError> {
    let (generation, mut durable) = read_snapshot(dir)?;
    let mut report = OpenReport {
        log_generation: generation,
        ..OpenReport::default()
    };

    let tmp = dir.join(SNAPSHOT_TMP);
    if fs::symlink_metadata(&tmp).is_ok() {
        fs::remove_file(&tmp).map_err(io_err("could not remove leftover", &tmp))?;
    }
    let entries = fs::read_dir(dir).map_err(io_err("could not list", dir))?;
    for entry in entries {
        let entry = entry.map_err(io_err("could not list", dir))?;
        let name = entry.file_name();
        let path = entry.path();
        if name.to_str().is_some_and(|n| n.starts_with(PROBE_PREFIX)) {
            // A probe a crash left behind.
            fs::remove_file(&path).map_err(io_err("could not remove leftover", &path))?;
            continue;
        }
        let Some(other) = name.to_str().and_then(parse_log_name) else {
            continue;
        };
        if other > generation {
            // Created by a compaction whose snapshot never landed: nothing was ever
            // appended to it, so anything beyond its header is not ours to discard.
            let len = entry
                .metadata()
                .map_err(io_err("could not stat", &path))?
                .len();
            if len > codec::LOG_HEADER_LEN as u64 {
                return Err(corrupt(
                    &path,
                    format!(
                        "log generation {other} holds data but the snapshot names {generation}"
                    ),
                ));
            }
        }
        if other != generation {
            tracing::info!(path = %path.display(), "removing a log left over by an interrupted compaction");
            fs::remove_file(&path).map_err(io_err("could not remove", &path))?;
            report.stale_logs_removed += 1;
        }
    }

    let log_path = dir.join(log_name(generation));
    let data = match fs::read(&log_path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(StoreError::AcknowledgedLost {
                path: dir.to_path_buf(),
                detail: format!(
                    "the log {} named by the snapshot is missing, and with it every \
                     watermark recorded since the snapshot",
                    log_path.display()
                ),
            })
        }
        Err(e) => return Err(io_err("could not read", &log_path)(e)),
    };
    let replayed = replay_log(&log_path, &data, generation, &mut durable)?;
    report.records_replayed = replayed.records;
    report.torn_tail_bytes = replayed.torn;

    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&log_path)
        .map_err(io_err("could not open", &log_path))?;
    if let Some(dropped) = replayed.torn {
        if replayed.header.acknowledged.is_some() {
            tracing::warn!(
                path = %log_path.display(),
                offset = replayed.end,
                dropped_bytes = dropped,
                "dropping a torn commit group at the end of the watermark log (a crash \
                 during a write): it lies past the length the log records as acknowledged, \
                 so no caller was answered for it and no signature depends on it"
            );
        } else {
            tracing::warn!(
                path = %log_path.display(),
                offset = replayed.end,
                dropped_bytes = dropped,
                "dropping damaged bytes at the end of a watermark log written by an earlier \
                 version, which does not record what was acknowledged: a crash during a \
                 write leaves such bytes, but so would damage to acknowledged records, and \
                 the two cannot be told apart in this format"
            );
        }
        file.set_len(replayed.end as u64)
            .map_err(io_err("could not truncate", &log_path))?;
        shared.sync(&file, false, &log_path)?;
    }
    file.seek(SeekFrom::End(0))
        .map_err(io_err("could not seek", &log_path))?;
    let mut next_slot = replayed.header.next_slot;
    if replayed.header.acknowledged.is_none() {
        // Move to a log that records what it acknowledged, before anything is appended.
        let next = generation + 1;
        tracing::warn!(
            path = %log_path.display(),
            records = replayed.records,
            "migrating a watermark log written by an earlier version (format 1) to format 2, \
             which records how much of it was acknowledged; whether acknowledged records were \
             lost from it before this start cannot be checked"
        );
        file = start_generation(shared, dir, next, &durable)?;
        file.seek(SeekFrom::End(0))
            .map_err(io_err("could not seek", &dir.join(log_name(next))))?;
        if let Err(e) = fs::remove_file(&log_path) {
            tracing::warn!(path = %log_path.display(), error = %e, "could not remove the migrated watermark log; it will be removed at the next open");
        }
        report.log_generation = next;
        report.migrated_from_log_version = Some(codec::LOG_VERSION_UNCOUNTED);
        next_slot = 1;
    }
    report.keys = durable.len();
    Ok(Recovered {
        file,
        durable,
        report,
        next_slot,
    })
}

/// The single thread that writes the log: one frame and one fdatasync per commit group.
struct Writer {
    shared: Arc<Shared>,
    placement: Arc<Placement>,
    file: File,
    generation: u64,
    log_bytes: u64,
    /// The acknowledgement slot of the log header the next commit overwrites.
    next_slot: usize,
    /// Exactly what the log and snapshot hold: the content of the next snapshot.
    durable: HashMap<WatermarkKey, Watermark>,
    compact_after: u64,
    frame: Vec<u8>,
    body: Vec<u8>,
}

/// Marks the store failed if the writer leaves for any reason other than shutdown, so no
/// caller waits forever on a commit that will never come.
struct ExitGuard(Arc<Shared>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let clean = {
            let state = self.0.state.lock();
            state.shutdown || state.failure.is_some()
        };
        if !clean {
            self.0
                .fail("the watermark writer stopped unexpectedly".to_string());
        }
    }
}

impl Writer {
    fn run(mut self) {
        let _guard = ExitGuard(Arc::clone(&self.shared));
        loop {
            let (batch, upto) = {
                let mut state = self.shared.state.lock();
                let mut lazy_deadline: Option<Instant> = None;
                loop {
                    if state.failure.is_some() {
                        return;
                    }
                    if state.pending.is_empty() {
                        if state.shutdown {
                            return;
                        }
                        lazy_deadline = None;
                        self.shared.wake_writer.wait(&mut state);
                        continue;
                    }
                    if state.urgent || state.shutdown {
                        break;
                    }
                    // Only reproducible signatures are pending: let them ride along with
                    // the next reservation's fsync instead of paying for one of their own.
                    let deadline =
                        *lazy_deadline.get_or_insert_with(|| Instant::now() + LAZY_FLUSH);
                    if self
                        .shared
                        .wake_writer
                        .wait_until(&mut state, deadline)
                        .timed_out()
                    {
                        break;
                    }
                }
                state.urgent = false;
                (std::mem::take(&mut state.pending), state.last_seq)
            };
            if let Err(e) = self.commit(batch, upto) {
                self.shared.fail(e.to_string());
                return;
            }
        }
    }

    fn log_path(&self) -> PathBuf {
        self.shared.dir.join(log_name(self.generation))
    }

    fn commit(
        &mut self,
        batch: Vec<(WatermarkKey, Watermark)>,
        upto: u64,
    ) -> Result<(), StoreError> {
        self.body.clear();
        self.frame.clear();
        for (key, mark) in &batch {
            codec::encode_record(key, mark, &mut self.body);
        }
        codec::encode_frame(&self.body, &mut self.frame);
        let started = Instant::now();
        let written = self.write_frame();
        self.shared
            .observe_io("write", started, written.as_ref().err());
        written?;

        let counters = &self.shared.counters;
        counters.commits.fetch_add(1, Ordering::Relaxed);
        counters
            .records_written
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        counters.log_bytes.store(self.log_bytes, Ordering::Relaxed);
        self.durable.extend(batch);
        self.shared.commits.send_modify(|c| c.durable_seq = upto);

        if self.log_bytes >= self.compact_after {
            let started = Instant::now();
            let compacted = self.compact();
            self.shared
                .observe_io("compact", started, compacted.as_ref().err());
            compacted?;
        }
        Ok(())
    }

    /// Append the encoded frame and sync it, then record the log's new length as
    /// acknowledged and sync that: from then on, a log shorter than that is refused.
    fn write_frame(&mut self) -> Result<(), StoreError> {
        let path = self.log_path();
        self.file
            .write_all(&self.frame)
            .map_err(io_err("could not append to", &path))?;
        self.shared.sync(&self.file, true, &path)?;
        self.log_bytes += self.frame.len() as u64;
        // Only after the frame is durable: a length on disk ahead of its frames would make
        // a plain crash look like lost records.
        let slot = codec::encode_ack_slot(self.generation, self.log_bytes);
        self.file
            .seek(SeekFrom::Start(codec::ack_slot_offset(self.next_slot)))
            .map_err(io_err("could not seek in", &path))?;
        self.file
            .write_all(&slot)
            .map_err(io_err("could not write the acknowledged length to", &path))?;
        self.file
            .seek(SeekFrom::Start(self.log_bytes))
            .map_err(io_err("could not seek in", &path))?;
        self.shared.sync(&self.file, true, &path)?;
        self.next_slot = (self.next_slot + 1) % 2;
        // Durable, but acknowledged only if it is durable where the next open reads.
        self.placement.check()
    }

    /// Snapshot the durable state and start the next log generation.
    fn compact(&mut self) -> Result<(), StoreError> {
        let dir = self.shared.dir.clone();
        let next = self.generation + 1;
        let next_path = dir.join(log_name(next));
        let file = start_generation(&self.shared, &dir, next, &self.durable)?;
        // The new pair is complete on disk; the old log is now redundant. Checks follow the
        // new log before the old one goes.
        let next_id = FileId::of(
            &file
                .metadata()
                .map_err(io_err("could not stat", &next_path))?,
        );
        *self.placement.log.lock() = (next_path, next_id);
        let old_path = self.log_path();
        self.file = file;
        self.generation = next;
        self.log_bytes = codec::LOG_HEADER_LEN as u64;
        // A new log's header fills slot 0.
        self.next_slot = 1;
        if let Err(e) = fs::remove_file(&old_path) {
            tracing::warn!(path = %old_path.display(), error = %e, "could not remove the old watermark log; it will be removed at the next open");
        }
        let counters = &self.shared.counters;
        counters.compactions.fetch_add(1, Ordering::Relaxed);
        counters.log_bytes.store(self.log_bytes, Ordering::Relaxed);
        Ok(())
    }
}

impl Drop for FileStore {
    fn drop(&mut self) {
        self.shared.state.lock().shutdown = true;
        self.shared.wake_writer.notify_all();
        if let Some(writer) = self.writer.take() {
            // A panicking writer already marked the store failed (ExitGuard).
            let _joined = writer.join();
        }
    }
}

#[async_trait]
impl WatermarkStore for FileStore {
    async fn check_and_advance(
        &self,
        key: WatermarkKey,
        req: WatermarkRequest,
    ) -> Result<Decision, StoreError> {
        let reserved = self.reserve(key, req).await?;
        self.wait_durable(reserved.durability).await?;
        Ok(reserved.decision)
    }

    async fn reserve(
        &self,
        key: WatermarkKey,
        req: WatermarkRequest,
    ) -> Result<Reserved, StoreError> {
        let max_chains = self.max_chains;
        let (decision, seq) = self.with_state(|state| {
            // Before anything is queued: a refused chain leaves no trace.
            rules::admit_chain(&state.chains, &key, max_chains)?;
            let current_seq = state.marks.get(&key).map_or(0, |e| e.seq);
            let (decision, record) = rules::check(state.marks.get(&key).map(|e| &e.mark), &req);
            let seq = match record {
                Some(record) => state.enqueue(key, record),
                None => current_seq,
            };
            Ok((decision, seq))
        })?;
        // A refusal is safe whatever reaches the disk: it waits for nothing.
        let seq = if matches!(decision, Decision::Refuse(_)) {
            0
        } else {
            seq
        };
        Ok(Reserved {
            decision,
            durability: DurabilityTicket(seq),
        })
    }

    async fn wait_durable(&self, durability: DurabilityTicket) -> Result<(), StoreError> {
        self.wait_until_durable(durability.0).await
    }

    async fn record_signature(
        &self,
        key: WatermarkKey,
        req: WatermarkRequest,
        signature_b58: &str,
    ) -> Result<Recorded, StoreError> {
        let (seq, recorded) = self.with_state(|state| {
            let entry = state.marks.get(&key);
            let current_seq = entry.map_or(0, |e| e.seq);
            match rules::attach_signature(&key, entry.map(|e| &e.mark), &req, signature_b58)? {
                Attach::Record(record) => Ok((state.enqueue(key, record), Recorded::Ours)),
                Attach::Existing(stored) => Ok((current_seq, Recorded::Existing(stored))),
            }
        })?;
        // Whichever signature is released, its record is durable first.
        self.wait_until_durable(seq).await?;
        Ok(recorded)
    }

    async fn record_reproducible_signature(
        &self,
        key: WatermarkKey,
        req: WatermarkRequest,
        signature_b58: &str,
    ) -> Result<Recorded, StoreError> {
        // Queued for the writer's next group commit; not waited for (see the trait).
        self.with_state(|state| {
            let entry = state.marks.get(&key);
            match rules::attach_signature(&key, entry.map(|e| &e.mark), &req, signature_b58)? {
                Attach::Record(record) => {
                    state.enqueue_lazy(key, record);
                    Ok(Recorded::Ours)
                }
                Attach::Existing(stored) => Ok(Recorded::Existing(stored)),
            }
        })
    }

    async fn get(&self, key: WatermarkKey) -> Result<Option<Watermark>, StoreError> {
        self.with_state(|state| Ok(state.marks.get(&key).map(|e| e.mark.clone())))
    }

    async fn export(&self) -> Result<Vec<(WatermarkKey, Watermark)>, StoreError> {
        let mut all = self.with_state(|state| {
            Ok(state
                .marks
                .iter()
                .map(|(k, e)| (*k, e.mark.clone()))
                .collect::<Vec<_>>())
        })?;
        all.sort_by_key(|(key, _)| *key);
        Ok(all)
    }

    async fn set(
        &self,
        key: WatermarkKey,
        watermark: Watermark,
        force: bool,
    ) -> Result<(), StoreError> {
        let seq = self.with_state(|state| {
            let entry = state.marks.get(&key);
            let current_seq = entry.map_or(0, |e| e.seq);
            match rules::checked_set(&key, entry.map(|e| &e.mark), watermark, force)? {
                Some(record) => Ok(state.enqueue(key, record)),
                None => Ok(current_seq),
            }
        })?;
        self.wait_until_durable(seq).await
    }

    async fn health(&self) -> Result<(), StoreError> {
        self.with_state(|_| Ok(()))?;
        if self.writer.as_ref().is_none_or(JoinHandle::is_finished) {
            return Err(StoreError::Failed("the writer thread is gone".to_string()));
        }
        // Off the async workers: a hung file system must not stall them (the caller's
        // timeout then reports it).
        let placement = Arc::clone(&self.placement);
        let shared = Arc::clone(&self.shared);
        let (placed, writable) = tokio::task::spawn_blocking(move || {
            let placed = placement.check();
            let writable = match placed {
                Ok(()) => shared.probe_writable_recently(),
                Err(_) => Ok(()),
            };
            (placed, writable)
        })
        .await
        .map_err(|e| StoreError::Failed(format!("the health check task failed: {e}")))?;
        if let Err(e) = placed {
            // Found between commits: stop now rather than at the next write.
            self.shared.fail(e.to_string());
            return Err(e);
        }
        // Unhealthy, but not stopped: appends to the open log still work and are durable;
        // the next compaction would fail, and stops the store then.
        writable
    }

    fn name(&self) -> &'static str {
        "file"
    }

    /// The first observer stays: one store reports to one metrics registry.
    fn observe_io(&self, observer: Arc<dyn StoreIoObserver>) {
        let _first = self.shared.io_observer.set(observer);
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;
    use crate::test_support::key;

    fn req(level: i32, round: i32, h: u8) -> WatermarkRequest {
        WatermarkRequest::new(level, round, [h; 32])
    }

    fn new_store() -> (tempfile::TempDir, FileStore) {
        let base = tempfile::tempdir().unwrap();
        FileStore::init(base.path()).unwrap();
        let store = FileStore::open(base.path()).unwrap();
        (base, store)
    }

    #[tokio::test]
    async fn a_failed_fsync_stops_the_store_until_reopened() {
        let (base, store) = new_store();
        assert_eq!(
            store.check_and_advance(key(1), req(1, 0, 1)).await.unwrap(),
            Decision::Advance
        );
        store.fail_next_sync();
        let err = store
            .check_and_advance(key(1), req(2, 0, 1))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Failed(_)), "{err}");
        // Every later call refuses, even one that would be a plain refusal or read.
        for result in [
            store
                .check_and_advance(key(2), req(1, 0, 1))
                .await
                .map(|_| ()),
            store
                .record_signature(key(1), req(1, 0, 1), "sig")
                .await
                .map(|_| ()),
            store.health().await,
            store.get(key(1)).await.map(|_| ()),
        ] {
            assert!(matches!(result, Err(StoreError::Failed(_))), "{result:?}");
        }
        drop(store);
        // Reopening re-reads the disk; the unacknowledged reservation may or may not be
        // there, but the acknowledged one is.
        let store = FileStore::open(base.path()).unwrap();
        assert!(store.get(key(1)).await.unwrap().unwrap().level >= 1);
        store.health().await.unwrap();
    }

    #[tokio::test]
    async fn a_failed_fsync_during_a_shared_commit_fails_every_waiter() {
        let (_base, store) = new_store();
        let store = Arc::new(store);
        store.fail_next_sync();
        let mut tasks = Vec::new();
        for i in 0..16u8 {
            let s = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                s.check_and_advance(key(i), req(1, 0, 1)).await
            }));
        }
        for t in tasks {
            assert!(matches!(t.await.unwrap(), Err(StoreError::Failed(_))));
        }
    }

    /// Records what the store reports.
    #[derive(Debug, Default)]
    struct Recorder(std::sync::Mutex<Vec<StoreIo>>);

    impl StoreIoObserver for Recorder {
        fn observe(&self, io: StoreIo) {
            self.0.lock().unwrap().push(io);
        }
    }

    #[tokio::test]
    async fn every_commit_and_compaction_is_reported_with_its_outcome() {
        let base = tempfile::tempdir().unwrap();
        FileStore::init(base.path()).unwrap();
        let options = FileStoreOptions::default().compact_after_bytes(1);
        let store = FileStore::open_with(base.path(), options).unwrap();
        let recorder = Arc::new(Recorder::default());
        store.observe_io(recorder.clone());
        store.check_and_advance(key(1), req(1, 0, 1)).await.unwrap();
        // The caller is answered before the compaction that follows the commit.
        while store.stats().compactions == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        store.fail_next_sync();
        assert!(store.check_and_advance(key(1), req(2, 0, 1)).await.is_err());
        let seen: Vec<(&str, Option<&str>)> = recorder
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|io| (io.operation, io.error))
            .collect();
        assert_eq!(
            seen,
            [("write", None), ("compact", None), ("write", Some("io"))]
        );
    }

    /// Rewrite `log` as the previous version wrote it: a 24-byte header, no slots.
    fn as_version_1(log: &[u8], generation: u64) -> Vec<u8> {
        let mut head = Vec::new();
        head.extend_from_slice(codec::LOG_MAGIC);
        head.extend_from_slice(&codec::LOG_VERSION_UNCOUNTED.to_be_bytes());
        head.extend_from_slice(&generation.to_be_bytes());
        let crc = codec::crc32c(&[&head]);
        head.extend_from_slice(&crc.to_be_bytes());
        head.extend_from_slice(&log[codec::LOG_HEADER_LEN..]);
        head
    }

    #[tokio::test]
    async fn a_store_of_the_previous_version_is_migrated_and_then_checked() {
        let (base, store) = new_store();
        for level in 1..=3 {
            store
                .check_and_advance(key(1), req(level, 0, 1))
                .await
                .unwrap();
        }
        drop(store);
        let dir = FileStore::store_dir(base.path());
        let log = fs::read(dir.join(log_name(1))).unwrap();
        // A torn tail, which that format cannot tell from lost records.
        let mut old = as_version_1(&log, 1);
        old.extend_from_slice(&[0xAB; 5]);
        fs::write(dir.join(log_name(1)), &old).unwrap();
        // `watermark show` reads it as it is.
        assert_eq!(FileStore::read_committed(base.path()).unwrap().len(), 1);

        let store = FileStore::open(base.path()).unwrap();
        let report = store.open_report().clone();
        assert_eq!(report.migrated_from_log_version, Some(1));
        assert_eq!(
            (report.log_generation, report.torn_tail_bytes),
            (2, Some(5))
        );
        assert!(!dir.join(log_name(1)).exists());
        assert_eq!(store.get(key(1)).await.unwrap().unwrap().level, 3);
        store.check_and_advance(key(1), req(4, 0, 1)).await.unwrap();
        drop(store);

        // From now on a cut log is refused.
        let store = FileStore::open(base.path()).unwrap();
        assert_eq!(store.open_report().migrated_from_log_version, None);
        assert_eq!(store.get(key(1)).await.unwrap().unwrap().level, 4);
        drop(store);
        let path = dir.join(log_name(2));
        let log = fs::read(&path).unwrap();
        fs::write(&path, &log[..codec::LOG_HEADER_LEN]).unwrap();
        assert!(matches!(
            FileStore::open(base.path()),
            Err(StoreError::AcknowledgedLost { .. })
        ));
    }

    #[test]
    fn log_names_round_trip() {
        assert_eq!(parse_log_name(&log_name(17)), Some(17));
        assert_eq!(parse_log_name("log-x"), None);
        assert_eq!(parse_log_name("snapshot"), None);
    }
}
