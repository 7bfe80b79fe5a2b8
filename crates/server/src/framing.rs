//! Refusing a chunked request body by its declared chunk sizes, before its bytes arrive.
//!
//! hyper decodes chunked bodies itself and never tells the application a chunk's declared
//! size, so a client that announces a chunk far over the body limit and then sends nothing
//! would hold its connection until the request timeout. [`ChunkLimit`] follows the
//! HTTP/1.1 framing of the bytes on their way to hyper (request heads, `Content-Length`
//! bodies, chunk-size lines, trailers). When a chunk-size line announces more than the
//! body limit allows, the line is replaced by one announcing `limit + 1` bytes followed by
//! `limit + 1` placeholder bytes, and everything the client sends after is discarded. The
//! application's own body limit then refuses the request with its ordinary 413 (same JSON
//! body, metrics and log line as any oversized body), and hyper closes the connection
//! because the body was never finished. No handler can act on the placeholder bytes: they
//! exist only in a body already over the limit.
//!
//! Where the framing is not what hyper would accept (an unparsable head, a transfer coding
//! other than chunked, conflicting lengths, an upgrade), the rest of the connection is
//! passed through untouched: hyper refuses such requests itself.

/// A request head longer than this is left to hyper. The head is parsed again each time a
/// line of it ends, and `MAX_HEADERS` bounds the lines, so this bounds the work per head.
const MAX_HEAD: usize = 64 << 10;
/// A chunk-size line (size and extensions) longer than this is left to hyper.
const MAX_SIZE_LINE: usize = 16 << 10;
/// Headers parsed in a head; more is left to hyper (which allows 100).
const MAX_HEADERS: usize = 128;

/// Follows a connection's request framing and rewrites an over-limit chunk declaration.
pub(crate) struct ChunkLimit {
    limit: u64,
    state: State,
    /// The head being read, or the chunk-size line being withheld.
    line: Vec<u8>,
    /// Bytes for hyper not yet handed out, from `sent` on.
    out: Vec<u8>,
    sent: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a request head (kept in `line`).
    Head,
    /// A `Content-Length` body with this many bytes left.
    Length(u64),
    /// A chunk-size line (withheld in `line`); `received` body bytes before it.
    ChunkSize { received: u64 },
    /// Chunk data with `left` bytes to go.
    ChunkData { left: u64, received: u64 },
    /// The CR LF after chunk data, `left` bytes of it.
    ChunkEnd { left: u8, received: u64 },
    /// Trailer lines after the last chunk, until an empty one; `line_empty` while the
    /// current line has nothing but an optional CR.
    Trailers { line_empty: bool },
    /// An over-limit chunk was declared: `left` placeholder bytes still to hand out,
    /// the client's bytes are discarded.
    Refused { left: u64 },
    /// Framing hyper will refuse or that is not followed: bytes go through untouched.
    Passthrough,
}

impl ChunkLimit {
    pub(crate) fn new(limit: usize) -> Self {
        ChunkLimit {
            limit: u64::try_from(limit).unwrap_or(u64::MAX),
            state: State::Head,
            line: Vec::new(),
            out: Vec::new(),
            sent: 0,
        }
    }

    /// Bytes read from the client.
    pub(crate) fn feed(&mut self, mut input: &[u8]) {
        while !input.is_empty() {
            let used = self.step(input);
            input = input.get(used..).unwrap_or_default();
        }
    }

    /// Fills `dst` with bytes for hyper; returns how many (0: none until more is fed).
    pub(crate) fn take(&mut self, dst: &mut [u8]) -> usize {
        let pending = self.out.get(self.sent..).unwrap_or_default();
        if !pending.is_empty() {
            let n = pending.len().min(dst.len());
            if let (Some(to), Some(from)) = (dst.get_mut(..n), pending.get(..n)) {
                to.copy_from_slice(from);
            }
            self.sent += n;
            if self.sent == self.out.len() {
                self.out.clear();
                self.sent = 0;
            }
            return n;
        }
        if let State::Refused { left } = &mut self.state {
            let n = usize::try_from(*left).unwrap_or(usize::MAX).min(dst.len());
            if let Some(to) = dst.get_mut(..n) {
                to.fill(b'0');
            }
            *left -= n as u64;
            return n;
        }
        0
    }

    /// Whether an over-limit chunk was declared on this connection.
    #[cfg(test)]
    fn refused(&self) -> bool {
        matches!(self.state, State::Refused { .. })
    }

    /// Consumes a prefix of `input` (at least one byte); returns its length.
    fn step(&mut self, input: &[u8]) -> usize {
        match self.state {
            State::Passthrough => {
                self.out.extend_from_slice(input);
                input.len()
            }
            State::Refused { .. } => input.len(),
            State::Head => self.head(input),
            State::Length(left) => {
                let n = take_up_to(left, input);
                self.pass(input, n);
                self.state = match left - n as u64 {
                    0 => State::Head,
                    left => State::Length(left),
                };
                n
            }
            State::ChunkSize { received } => self.chunk_size(input, received),
            State::ChunkData { left, received } => {
                let n = take_up_to(left, input);
                self.pass(input, n);
                let received = received.saturating_add(n as u64);
                self.state = match left - n as u64 {
                    0 => State::ChunkEnd { left: 2, received },
                    left => State::ChunkData { left, received },
                };
                n
            }
            State::ChunkEnd { left, received } => {
                let n = take_up_to(u64::from(left), input);
                self.pass(input, n);
                self.state = match left - n as u8 {
                    0 => State::ChunkSize { received },
                    left => State::ChunkEnd { left, received },
                };
                n
            }
            State::Trailers { line_empty } => {
                let (n, ended) = match input.iter().position(|&b| b == b'\n') {
                    Some(at) => (at + 1, true),
                    None => (input.len(), false),
                };
                let text = input.get(..n).unwrap_or_default();
                let content = text.iter().filter(|&&b| b != b'\r' && b != b'\n').count();
                let line_empty = line_empty && content == 0;
                self.pass(input, n);
                self.state = match (ended, line_empty) {
                    (true, true) => State::Head,
                    (true, false) => State::Trailers { line_empty: true },
                    (false, _) => State::Trailers { line_empty },
                };
                n
            }
        }
    }

    fn pass(&mut self, input: &[u8], n: usize) {
        self.out
            .extend_from_slice(input.get(..n).unwrap_or_default());
    }

    /// Hands everything withheld to hyper and stops following the framing.
    fn give_up(&mut self) {
        self.out.append(&mut self.line);
        self.state = State::Passthrough;
    }

    fn head(&mut self, input: &[u8]) -> usize {
        // Heads are passed on as they arrive (hyper parses them too); the copy is kept
        // until it parses, which is tried only when a line ends.
        let before = self.line.len();
        self.line.extend_from_slice(input);
        self.out.extend_from_slice(input);
        if !input.contains(&b'\n') {
            if self.line.len() > MAX_HEAD {
                self.line.clear();
                self.state = State::Passthrough;
            }
            return input.len();
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        let parsed = request.parse(&self.line);
        let (head_len, next) = match parsed {
            Ok(httparse::Status::Partial) if self.line.len() <= MAX_HEAD => {
                return input.len();
            }
            Ok(httparse::Status::Complete(len)) => (len, body_framing(&request)),
            Ok(httparse::Status::Partial) | Err(_) => (self.line.len(), State::Passthrough),
        };
        // The bytes of `input` past the head belong to the body: taken back, stepped again.
        let used = head_len.saturating_sub(before).min(input.len());
        self.out.truncate(self.out.len() - (input.len() - used));
        self.line.clear();
        self.state = next;
        used.max(1).min(input.len())
    }

    fn chunk_size(&mut self, input: &[u8], received: u64) -> usize {
        let (n, ended) = match input.iter().position(|&b| b == b'\n') {
            Some(at) => (at + 1, true),
            None => (input.len(), false),
        };
        self.line
            .extend_from_slice(input.get(..n).unwrap_or_default());
        // The declared size is known as soon as its digits are: refused then, without
        // waiting for the rest of the line.
        let digits = self
            .line
            .iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        let size =
            self.line
                .get(..digits)
                .unwrap_or_default()
                .iter()
                .try_fold(0u64, |size, &digit| {
                    let value = u64::from(char::from(digit).to_digit(16).unwrap_or(0));
                    size.checked_mul(16)?.checked_add(value)
                });
        // Beyond u64 hyper refuses the size as invalid; it is over any limit all the same.
        if size.is_none_or(|size| received.saturating_add(size) > self.limit) {
            self.line.clear();
            let placeholder = self.limit.saturating_add(1);
            self.out
                .extend_from_slice(format!("{placeholder:x}\r\n").as_bytes());
            self.state = State::Refused { left: placeholder };
            return n;
        }
        if !ended {
            if self.line.len() > MAX_SIZE_LINE {
                self.give_up();
            }
            return n;
        }
        let size = size.unwrap_or(0);
        if digits == 0 {
            self.give_up();
            return n;
        }
        self.out.append(&mut self.line);
        self.state = match size {
            0 => State::Trailers { line_empty: true },
            size => State::ChunkData {
                left: size,
                received,
            },
        };
        n
    }
}

/// How many of `input`'s bytes fit in `left`.
fn take_up_to(left: u64, input: &[u8]) -> usize {
    usize::try_from(left).map_or(input.len(), |left| left.min(input.len()))
}

/// The body framing hyper derives from a request head (RFC 9112 section 6.3).
fn body_framing(request: &httparse::Request<'_, '_>) -> State {
    let mut transfer_encoding = None;
    let mut content_length = None;
    for header in request.headers.iter() {
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = Some(header.value);
        } else if header.name.eq_ignore_ascii_case("content-length") {
            let Some(length) = std::str::from_utf8(header.value)
                .ok()
                .and_then(|text| text.trim().parse::<u64>().ok())
            else {
                return State::Passthrough;
            };
            if content_length.is_some_and(|seen| seen != length) {
                return State::Passthrough;
            }
            content_length = Some(length);
        } else if header.name.eq_ignore_ascii_case("upgrade") {
            return State::Passthrough;
        }
    }
    if request.method == Some("CONNECT") {
        return State::Passthrough;
    }
    if let Some(coding) = transfer_encoding {
        let chunked = coding
            .rsplit(|&b| b == b',')
            .next()
            .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        return match (chunked, request.version) {
            (true, Some(1)) => State::ChunkSize { received: 0 },
            _ => State::Passthrough,
        };
    }
    match content_length {
        Some(0) | None => State::Head,
        Some(length) => State::Length(length),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// What hyper receives when `input` arrives in pieces of `piece` bytes.
    fn through(limit: usize, input: &[u8], piece: usize) -> (Vec<u8>, ChunkLimit) {
        let mut framing = ChunkLimit::new(limit);
        let mut seen = Vec::new();
        let mut buf = [0u8; 7];
        for part in input.chunks(piece) {
            framing.feed(part);
            loop {
                let n = framing.take(&mut buf);
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
            }
        }
        (seen, framing)
    }

    const CHUNKED: &[u8] =
        b"POST /keys/tz1 HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n";

    #[test]
    fn requests_within_the_limit_pass_unchanged_in_any_pieces() {
        let mut pipeline = Vec::new();
        pipeline.extend_from_slice(b"GET /authorized_keys HTTP/1.1\r\nhost: x\r\n\r\n");
        pipeline.extend_from_slice(
            b"POST /keys/tz1 HTTP/1.1\r\ncontent-length: 12\r\n\r\n\"0300aabbcc\"",
        );
        pipeline.extend_from_slice(CHUNKED);
        pipeline
            .extend_from_slice(b"5;ext=1\r\n\"0300\r\n7\r\naabbcc\"\r\n0\r\ntrailer: t\r\n\r\n");
        pipeline.extend_from_slice(CHUNKED);
        pipeline.extend_from_slice(b"40\r\n");
        pipeline.extend_from_slice(&[b'a'; 64]);
        pipeline.extend_from_slice(b"\r\n0\r\n\r\n");
        pipeline.extend_from_slice(b"GET /healthz HTTP/1.1\r\n\r\n");
        for piece in [1, 2, 3, 5, 64, 4096] {
            let (seen, framing) = through(64, &pipeline, piece);
            assert_eq!(seen, pipeline, "in pieces of {piece}");
            assert_eq!(framing.state, State::Head, "in pieces of {piece}");
        }
    }

    #[test]
    fn an_over_limit_chunk_is_refused_on_its_declaration_alone() {
        // Two chunks of 40 and 30 bytes: 70 > 64, refused when the second is declared,
        // though none of its bytes arrived.
        let mut request = CHUNKED.to_vec();
        request.extend_from_slice(b"28\r\n");
        request.extend_from_slice(&[b'a'; 40]);
        request.extend_from_slice(b"\r\n1e\r\n");
        for piece in [1, 3, 4096] {
            let (seen, framing) = through(64, &request, piece);
            assert!(framing.refused(), "in pieces of {piece}");
            let sent_before = request.len() - b"1e\r\n".len();
            assert_eq!(seen[..sent_before], request[..sent_before]);
            // Then a chunk of limit + 1 bytes that hyper's body counts past the limit.
            let rest = &seen[sent_before..];
            assert_eq!(&rest[..4], b"41\r\n");
            assert_eq!(rest.len(), 4 + 65);
        }
    }

    #[test]
    fn a_huge_size_is_refused_before_its_line_ends_and_what_follows_is_discarded() {
        let mut request = CHUNKED.to_vec();
        request.extend_from_slice(b"ffffffffffffffffffffff");
        let (seen, framing) = through(64, &request, 1);
        assert!(framing.refused());
        assert_eq!(seen.len(), CHUNKED.len() + 4 + 65);
        let mut more = ChunkLimit::new(64);
        more.feed(&request);
        more.feed(b";x\r\nanything at all, and another request: GET / HTTP/1.1\r\n\r\n");
        let mut buf = vec![0u8; 4096];
        let n = more.take(&mut buf);
        let m = more.take(&mut buf[n..]);
        assert_eq!(n + m, CHUNKED.len() + 4 + 65);
        assert_eq!(more.take(&mut buf), 0);
    }

    #[test]
    fn a_request_exactly_at_the_limit_passes() {
        let mut request = CHUNKED.to_vec();
        request.extend_from_slice(b"40\r\n");
        request.extend_from_slice(&[b'a'; 64]);
        request.extend_from_slice(b"\r\n0\r\n\r\n");
        let (seen, framing) = through(64, &request, 1);
        assert_eq!(seen, request);
        assert!(!framing.refused());
    }

    #[test]
    fn the_limit_counts_per_request() {
        let mut two = Vec::new();
        for _ in 0..2 {
            two.extend_from_slice(CHUNKED);
            two.extend_from_slice(b"30\r\n");
            two.extend_from_slice(&[b'a'; 48]);
            two.extend_from_slice(b"\r\n0\r\n\r\n");
        }
        let (seen, framing) = through(64, &two, 5);
        assert_eq!(seen, two);
        assert!(!framing.refused());
    }

    #[test]
    fn framing_hyper_refuses_is_passed_through_untouched() {
        for head in [
            &b"POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\nffffffff\r\n"[..],
            b"POST / HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nffffffff\r\n",
            b"POST / HTTP/1.1\r\ncontent-length: x\r\n\r\nffffffff\r\n",
            b"POST / HTTP/1.1\r\nupgrade: h2c\r\ntransfer-encoding: chunked\r\n\r\nffffff\r\n",
            b"POST / HTTP/1.0\r\ntransfer-encoding: chunked\r\n\r\nffffffff\r\n",
            b"\x00\x01 not http\r\n\r\nffffffff\r\n",
            b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nffffffff\r\n",
        ] {
            let (seen, framing) = through(64, head, 3);
            assert_eq!(seen, head, "{}", String::from_utf8_lossy(head));
            assert_eq!(framing.state, State::Passthrough);
        }
    }

    #[test]
    fn a_content_length_body_is_not_mistaken_for_chunk_sizes() {
        let request =
            b"POST / HTTP/1.1\r\ncontent-length: 10\r\n\r\nffffffff\r\nGET / HTTP/1.1\r\n\r\n";
        let (seen, framing) = through(4, request, 2);
        assert_eq!(seen, request);
        assert_eq!(framing.state, State::Head);
    }
}
