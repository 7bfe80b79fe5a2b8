//! A minimal HTTP/1.1 client: one keep-alive connection per [`Connection`], as a baker
//! keeps one to its signer. It reconnects once if the server closed the connection (after
//! an error reply, for instance).

use crate::HarnessError;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use tokio::net::TcpStream;

/// A reply: status and body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Bytes,
}

impl Response {
    /// The body as text (lossy), for assertions and messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, or `None` when it is not JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// `field` of a JSON object body as a string.
    pub fn json_str(&self, field: &str) -> Option<String> {
        self.json()?.get(field)?.as_str().map(str::to_owned)
    }
}

/// One HTTP/1.1 connection to a server.
#[derive(Debug)]
pub struct Connection {
    addr: SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    pub async fn connect(addr: SocketAddr) -> Result<Self, HarnessError> {
        let mut conn = Connection { addr, sender: None };
        conn.open().await?;
        Ok(conn)
    }

    async fn open(&mut self) -> Result<(), HarnessError> {
        let stream = TcpStream::connect(self.addr)
            .await
            .map_err(|e| self.err(format!("connect: {e}")))?;
        // Requests are small and latency matters: do not wait to coalesce segments.
        stream
            .set_nodelay(true)
            .map_err(|e| self.err(format!("set_nodelay: {e}")))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.err(format!("handshake: {e}")))?;
        tokio::spawn(async move {
            // Ends when the server or the sender closes the connection; nothing to report.
            let _ = connection.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    fn err(&self, detail: String) -> HarnessError {
        HarnessError::Http {
            addr: self.addr.to_string(),
            detail,
        }
    }

    pub async fn get(&mut self, path: &str) -> Result<Response, HarnessError> {
        self.request("GET", path, Bytes::new()).await
    }

    /// POST a raw body (tests of malformed bodies use this directly).
    pub async fn post(
        &mut self,
        path: &str,
        body: impl Into<Bytes>,
    ) -> Result<Response, HarnessError> {
        self.request("POST", path, body.into()).await
    }

    /// POST the bytes to sign as the Octez client does: a JSON string of hex.
    pub async fn sign(&mut self, path: &str, bytes: &[u8]) -> Result<Response, HarnessError> {
        self.post(path, format!("\"{}\"", hex::encode(bytes))).await
    }

    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Bytes,
    ) -> Result<Response, HarnessError> {
        let usable = match self.sender.as_mut() {
            Some(sender) => sender.ready().await.is_ok(),
            None => false,
        };
        if !usable {
            self.open().await?;
        }
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string())
            .header("content-type", "application/json")
            .body(Full::new(body))
            .map_err(|e| self.err(format!("building request: {e}")))?;
        let sender = self.sender.as_mut().ok_or(HarnessError::NotRunning)?;
        let resp = match sender.send_request(req).await {
            Ok(resp) => resp,
            Err(e) => {
                self.sender = None;
                return Err(self.err(format!("{method} {path}: {e}")));
            }
        };
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = match resp.into_body().collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => {
                self.sender = None;
                return Err(self.err(format!("{method} {path}: reading body: {e}")));
            }
        };
        Ok(Response {
            status,
            content_type,
            body,
        })
    }
}
