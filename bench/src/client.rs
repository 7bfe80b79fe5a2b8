//! One keep-alive HTTP/1.1 connection, as a baker holds to its signer.

use crate::BenchError;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use tokio::net::TcpStream;

#[derive(Debug)]
pub struct Connection {
    host: String,
    sender: SendRequest<Full<Bytes>>,
}

impl Connection {
    pub async fn connect(addr: SocketAddr) -> Result<Self, BenchError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| BenchError::Http(format!("connect {addr}: {e}")))?;
        stream
            .set_nodelay(true)
            .map_err(|e| BenchError::Http(format!("set_nodelay: {e}")))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| BenchError::Http(format!("handshake with {addr}: {e}")))?;
        tokio::spawn(async move {
            // Ends when either side closes the connection.
            let _ = connection.await;
        });
        Ok(Connection {
            host: addr.to_string(),
            sender,
        })
    }

    /// Send one request; return the status and body.
    pub async fn send(
        &mut self,
        method: &'static str,
        path: &str,
        body: Bytes,
    ) -> Result<(u16, Bytes), BenchError> {
        self.sender
            .ready()
            .await
            .map_err(|e| BenchError::Http(format!("connection closed: {e}")))?;
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host)
            .header("content-type", "application/json")
            .body(Full::new(body))
            .map_err(|e| BenchError::Http(format!("building request: {e}")))?;
        let resp = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| BenchError::Http(format!("{method} {path}: {e}")))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| BenchError::Http(format!("{method} {path}: reading body: {e}")))?
            .to_bytes();
        Ok((status, body))
    }
}
