//! One keep-alive HTTP/1.1 connection, as a baker holds to its signer.
//!
//! Written on the socket rather than with hyper's client: the load generator shares the two
//! cores with the signer it measures, and hyper's client hands every request to a separate
//! connection task (two task wake-ups per request), which cost the load generator about
//! 30 µs of CPU per request. Here a request is one write and its response one or two reads.
//! It speaks only what the signer answers: responses with a `content-length`.

use crate::BenchError;
use bytes::Bytes;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A response head larger than this is refused (the signer's are about 100 bytes).
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 32;

#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    host: String,
    request: Vec<u8>,
    /// Bytes read and not yet consumed: the response being parsed, and anything after it.
    inbox: Vec<u8>,
}

impl Connection {
    pub async fn connect(addr: SocketAddr) -> Result<Self, BenchError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| BenchError::Http(format!("connect {addr}: {e}")))?;
        stream
            .set_nodelay(true)
            .map_err(|e| BenchError::Http(format!("set_nodelay: {e}")))?;
        Ok(Connection {
            stream,
            host: addr.to_string(),
            request: Vec::with_capacity(512),
            inbox: Vec::with_capacity(4096),
        })
    }

    /// Send one request; return the status and body.
    pub async fn send(
        &mut self,
        method: &'static str,
        path: &str,
        body: Bytes,
    ) -> Result<(u16, Bytes), BenchError> {
        use std::io::Write;
        self.request.clear();
        // Writing into a Vec cannot fail.
        let _ = write!(
            self.request,
            "{method} {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        self.request.extend_from_slice(&body);
        self.stream
            .write_all(&self.request)
            .await
            .map_err(|e| BenchError::Http(format!("{method} {path}: sending: {e}")))?;
        self.read_response()
            .await
            .map_err(|e| BenchError::Http(format!("{method} {path}: {e}")))
    }

    async fn read_response(&mut self) -> Result<(u16, Bytes), String> {
        let (status, head_len, body_len) = loop {
            if let Some(head) = parse_head(&self.inbox)? {
                break head;
            }
            if self.inbox.len() > MAX_HEAD {
                return Err(format!("response head longer than {MAX_HEAD} bytes"));
            }
            self.fill().await?;
        };
        let end = head_len + body_len;
        while self.inbox.len() < end {
            self.fill().await?;
        }
        let body = Bytes::copy_from_slice(self.inbox.get(head_len..end).unwrap_or_default());
        self.inbox.drain(..end);
        Ok((status, body))
    }

    /// Read what the socket has into the inbox; a closed connection is an error here,
    /// since a response is always expected.
    async fn fill(&mut self) -> Result<(), String> {
        self.inbox.reserve(4096);
        match self.stream.read_buf(&mut self.inbox).await {
            Ok(0) => Err("the signer closed the connection before the response ended".into()),
            Ok(_) => Ok(()),
            Err(e) => Err(format!("reading the response: {e}")),
        }
    }
}

/// Status, head length and body length of the response at the start of `buf`, or `None`
/// if its head is not complete yet.
fn parse_head(buf: &[u8]) -> Result<Option<(u16, usize, usize)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("malformed response head: {e}")),
    };
    let status = resp.code.ok_or("response without a status")?;
    let mut length = None;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err("chunked (transfer-encoding) responses are not supported: the signer sends content-length".into());
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or("unreadable content-length")?;
            length = Some(n);
        }
    }
    let length = length.ok_or("response without content-length")?;
    Ok(Some((status, head_len, length)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server that reads one request per entry of `replies` and writes the reply in the
    /// given pieces, then closes.
    async fn server(replies: Vec<Vec<&'static [u8]>>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            for pieces in replies {
                let mut buf = [0u8; 4096];
                let mut got = Vec::new();
                // The request's end: head and a body of the announced length.
                loop {
                    let n = s.read(&mut buf).await.unwrap();
                    got.extend_from_slice(&buf[..n]);
                    let mut h = [httparse::EMPTY_HEADER; 16];
                    let mut r = httparse::Request::new(&mut h);
                    if let Ok(httparse::Status::Complete(len)) = r.parse(&got) {
                        let cl: usize = r
                            .headers
                            .iter()
                            .find(|h| h.name == "content-length")
                            .map(|h| std::str::from_utf8(h.value).unwrap().parse().unwrap())
                            .unwrap();
                        if got.len() >= len + cl {
                            break;
                        }
                    }
                }
                for p in pieces {
                    s.write_all(p).await.unwrap();
                    s.flush().await.unwrap();
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                }
            }
        });
        addr
    }

    #[tokio::test]
    async fn reads_whole_and_split_responses_on_one_connection() {
        let addr = server(vec![
            vec![b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"],
            vec![
                b"HTTP/1.1 409 Conf",
                b"lict\r\nContent-Length: 3\r\n",
                b"\r\nab",
                b"c",
            ],
            vec![b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"],
        ])
        .await;
        let mut c = Connection::connect(addr).await.unwrap();
        let r = c
            .send("POST", "/keys/x", Bytes::from_static(b"\"13\""))
            .await;
        assert_eq!(r.unwrap(), (200, Bytes::from_static(b"hello")));
        let r = c.send("GET", "/keys/x", Bytes::new()).await;
        assert_eq!(r.unwrap(), (409, Bytes::from_static(b"abc")));
        let r = c.send("GET", "/known_keys", Bytes::new()).await;
        assert_eq!(r.unwrap(), (200, Bytes::new()));
    }

    #[tokio::test]
    async fn chunked_responses_are_refused() {
        let addr = server(vec![vec![
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ]])
        .await;
        let mut c = Connection::connect(addr).await.unwrap();
        let e = c.send("GET", "/", Bytes::new()).await.unwrap_err();
        assert!(e.to_string().contains("chunked"), "{e}");
    }

    #[tokio::test]
    async fn a_connection_closed_mid_body_is_an_error() {
        let addr = server(vec![vec![
            b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhel",
        ]])
        .await;
        let mut c = Connection::connect(addr).await.unwrap();
        let e = c.send("GET", "/", Bytes::new()).await.unwrap_err();
        assert!(e.to_string().contains("closed"), "{e}");
    }

    #[tokio::test]
    async fn a_malformed_head_is_an_error() {
        let addr = server(vec![vec![b"HTTP/1.1 2x0 OK\r\n\r\n"]]).await;
        let mut c = Connection::connect(addr).await.unwrap();
        let e = c.send("GET", "/", Bytes::new()).await.unwrap_err();
        assert!(e.to_string().contains("malformed"), "{e}");
    }
}
