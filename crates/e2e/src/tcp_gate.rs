//! A TCP forwarder on a fixed loopback port that a test can close and reopen: a backend
//! that keeps its state (moto's in-memory keys, a fake's keys) goes "down" for its clients,
//! with connections refused and open ones cut, and comes back on the same address.

use crate::HarnessError;
use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::{JoinHandle, JoinSet};

/// The forwarder. Dropping it closes the port.
#[derive(Debug)]
pub struct TcpGate {
    addr: SocketAddr,
    target: SocketAddr,
    running: Mutex<Option<JoinHandle<()>>>,
}

impl TcpGate {
    /// Forward a new loopback port to `target`.
    pub async fn open(target: SocketAddr) -> Result<TcpGate, HarnessError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(HarnessError::io("binding the gate's port"))?;
        let addr = listener
            .local_addr()
            .map_err(HarnessError::io("reading the gate's port"))?;
        Ok(TcpGate {
            addr,
            target,
            running: Mutex::new(Some(tokio::spawn(forward(listener, target)))),
        })
    }

    /// The address clients use.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop listening and cut every open connection.
    pub async fn close(&self) {
        if let Some(task) = self.running.lock().await.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listen again on the same port (a no-op when open).
    pub async fn reopen(&self) -> Result<(), HarnessError> {
        let mut running = self.running.lock().await;
        if running.is_some() {
            return Ok(());
        }
        let listener = TcpListener::bind(self.addr)
            .await
            .map_err(HarnessError::io(format!("binding {} again", self.addr)))?;
        *running = Some(tokio::spawn(forward(listener, self.target)));
        Ok(())
    }
}

impl Drop for TcpGate {
    fn drop(&mut self) {
        if let Some(task) = self.running.get_mut().take() {
            task.abort();
        }
    }
}

/// Accept and forward until aborted; the connections live in the task's `JoinSet`, so
/// aborting it cuts them too.
async fn forward(listener: TcpListener, target: SocketAddr) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((mut client, _)) = accepted else { continue };
                connections.spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}
