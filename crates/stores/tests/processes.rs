//! Tests across processes: the lock, and crashes (SIGKILL) in the middle of signing.
//!
//! The child processes are this test binary itself, run with an ignored entry test and an
//! environment variable naming the role; children report progress on stdout.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{key, req};
use signatory_signer::store::{StoreError, WatermarkStore};
use signatory_signer::watermark::{Decision, RefusalReason};
use signatory_stores::FileStore;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const ROLE: &str = "SIGNATORY_STORES_CHILD_ROLE";
const BASE: &str = "SIGNATORY_STORES_CHILD_BASE";
const MARK: &str = "CHILD:";

/// The payload every crash test reserves, and the one that must be refused afterwards.
const RESERVED_PAYLOAD: u32 = 0xAAAA;
const OTHER_PAYLOAD: u32 = 0xBBBB;

#[test]
#[ignore = "entry point of the child processes the other tests spawn"]
fn child_process_entry() {
    let (Ok(role), Ok(base)) = (std::env::var(ROLE), std::env::var(BASE)) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store = FileStore::open(&base).unwrap();
        match role.as_str() {
            "hold" => println!("{MARK}OPEN"),
            "reserve" => {
                let d = store
                    .check_and_advance(key(0), req(10, 0, RESERVED_PAYLOAD))
                    .await
                    .unwrap();
                assert_eq!(d, Decision::Advance);
                println!("{MARK}RESERVED");
            }
            "sign-loop" => {
                for level in 1.. {
                    let r = req(level, 0, RESERVED_PAYLOAD);
                    assert_eq!(
                        store.check_and_advance(key(0), r).await.unwrap(),
                        Decision::Advance
                    );
                    store
                        .record_signature(key(0), r, &format!("sig{level}"))
                        .await
                        .unwrap();
                    // Printed only once the signature is durable: the client would have it.
                    println!("{MARK}ACK {level}");
                }
            }
            other => panic!("unknown role {other}"),
        }
        // Wait to be killed.
        tokio::time::sleep(Duration::from_secs(120)).await;
    });
}

struct ChildProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl ChildProcess {
    fn spawn(role: &str, base: &Path) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["child_process_entry", "--exact", "--ignored", "--nocapture"])
            .env(ROLE, role)
            .env(BASE, base)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(msg) = line.strip_prefix(MARK) {
                    if tx.send(msg.to_string()).is_err() {
                        break;
                    }
                }
            }
        });
        ChildProcess { child, lines }
    }

    fn next_message(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(60))
            .expect("the child process did not report in time")
    }

    /// SIGKILL: no destructor, no flush, no unlock other than the kernel's.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

fn new_base() -> tempfile::TempDir {
    let base = tempfile::tempdir().unwrap();
    FileStore::init(base.path()).unwrap();
    base
}

#[test]
fn another_process_holding_the_store_locks_it_out() {
    let base = new_base();
    let child = ChildProcess::spawn("hold", base.path());
    assert_eq!(child.next_message(), "OPEN");
    match FileStore::open(base.path()) {
        Err(StoreError::Locked { path }) => assert_eq!(path, base.path().join("watermarks")),
        other => panic!("expected Locked, got {other:?}"),
    }
    child.kill();
    // The kernel released the lock with the process.
    FileStore::open(base.path()).unwrap();
}

#[tokio::test]
async fn a_crash_between_reservation_and_signature_keeps_the_reservation() {
    let base = new_base();
    let child = ChildProcess::spawn("reserve", base.path());
    assert_eq!(child.next_message(), "RESERVED");
    child.kill();

    let store = FileStore::open(base.path()).unwrap();
    let stored = store.get(key(0)).await.unwrap().unwrap();
    assert!(stored.is_for(&req(10, 0, RESERVED_PAYLOAD)));
    assert_eq!(stored.signature, None);
    match store
        .check_and_advance(key(0), req(10, 0, OTHER_PAYLOAD))
        .await
        .unwrap()
    {
        Decision::Refuse(r) => assert_eq!(r.reason, RefusalReason::DifferentPayload),
        other => panic!("a different payload at the reserved height got {other:?}"),
    }
    assert_eq!(
        store
            .check_and_advance(key(0), req(10, 0, RESERVED_PAYLOAD))
            .await
            .unwrap(),
        Decision::SignAgainSameBytes
    );
    store
        .record_signature(key(0), req(10, 0, RESERVED_PAYLOAD), "edsigAfterRestart")
        .await
        .unwrap();
    assert_eq!(
        store
            .check_and_advance(key(0), req(10, 0, RESERVED_PAYLOAD))
            .await
            .unwrap(),
        Decision::ReturnStored("edsigAfterRestart".into())
    );
}

#[tokio::test]
async fn signatures_acknowledged_before_a_crash_are_all_on_disk() {
    let base = new_base();
    let child = ChildProcess::spawn("sign-loop", base.path());
    let mut last_ack = 0;
    while last_ack < 200 {
        let msg = child.next_message();
        last_ack = msg.strip_prefix("ACK ").unwrap().parse().unwrap();
    }
    // Killed while it keeps signing: some later records may be half written.
    child.kill();

    let store = FileStore::open(base.path()).unwrap();
    let stored = store.get(key(0)).await.unwrap().unwrap();
    assert!(
        stored.level >= last_ack,
        "{stored:?} < acknowledged {last_ack}"
    );
    assert_eq!(
        store
            .check_and_advance(key(0), req(last_ack, 0, RESERVED_PAYLOAD))
            .await
            .unwrap(),
        if stored.level == last_ack {
            Decision::ReturnStored(format!("sig{last_ack}"))
        } else {
            Decision::Refuse(signatory_signer::watermark::Refusal {
                reason: RefusalReason::LevelBelow,
                current: stored.height(),
                requested: req(last_ack, 0, RESERVED_PAYLOAD).height(),
            })
        }
    );
    match store
        .check_and_advance(key(0), req(last_ack, 0, OTHER_PAYLOAD))
        .await
        .unwrap()
    {
        Decision::Refuse(_) => {}
        other => panic!("a different payload at an acknowledged height got {other:?}"),
    }
}
