//! Refusing a chunked request body by its declared chunk sizes, before its bytes arrive.
//!
//! hyper decodes chunked bodies itself and never tells the application a chunk's declared
//! size, so a client that announces a chunk far over the body limit and then sends nothing
//! would hold its connection until the request timeout. [`ChunkLimit`] follows the
//! HTTP/1.1 framing of the bytes on their way to hyper (request heads, `Content-Length`
//! bodies, chunk-size lines, trailers). As soon as the digits of a chunk size take the body
//! past the limit, the size line is ended there, `limit + 1` placeholder bytes follow it,
//! and everything the client sends after is discarded. The
//! application's own body limit then refuses the request with its ordinary 413 (same JSON
//! body, metrics and log line as any oversized body), and hyper closes the connection
//! because the body was never finished. No handler can act on the placeholder bytes: they
//! exist only in a body already over the limit.
//!
//! The tracker mirrors hyper 1.x byte for byte (`proto/h1/role.rs` for the body framing
//! of a request head, `proto/h1/decode.rs` for chunks and trailers). Where hyper refuses
//! the bytes (an unparsable head, a transfer coding other than chunked, conflicting
//! lengths, a malformed chunk line), it closes the connection, and the tracker stops
//! following and passes the rest through untouched.

/// A request head longer than this is left to hyper, whose own limit (about 408 KiB) is
/// lower: hyper refuses such a head before the tracker gives up on it.
const MAX_HEAD: usize = 512 << 10;
/// Header slots for parsing a head; hyper allows 100 and refuses more.
const MAX_HEADERS: usize = 128;

/// Follows a connection's request framing and rewrites an over-limit chunk declaration.
pub(crate) struct ChunkLimit {
    limit: u64,
    state: State,
    /// The request head being read.
    head: Vec<u8>,
    /// How far `head` was searched for its end.
    head_scanned: usize,
    /// The size of the chunk whose size line is being read.
    size: u64,
    /// Body bytes of the current request so far.
    received: u64,
    /// Bytes for hyper not yet handed out, from `sent` on.
    out: Vec<u8>,
    sent: usize,
}

/// hyper's states (its `ChunkedState` for chunked bodies), plus the head, a length body,
/// the refusal and giving up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    /// A `Content-Length` body with this many bytes left.
    Length(u64),
    /// The first hex digit of a chunk size.
    ChunkStart,
    ChunkSize,
    ChunkSizeLws,
    ChunkExtension,
    ChunkSizeLf,
    /// Chunk data, this many bytes left.
    ChunkData(u64),
    ChunkDataCr,
    ChunkDataLf,
    /// After the last chunk: a CR ends the body, anything else starts a trailer line.
    EndCr,
    EndLf,
    /// A trailer line, which only a CR (then an LF) ends.
    Trailer,
    TrailerLf,
    /// An over-limit chunk was declared: `left` placeholder bytes still to hand out,
    /// the client's bytes are discarded.
    Refused {
        left: u64,
    },
    /// Framing hyper refuses: bytes go through untouched.
    Passthrough,
}

impl ChunkLimit {
    pub(crate) fn new(limit: usize) -> Self {
        ChunkLimit {
            limit: u64::try_from(limit).unwrap_or(u64::MAX),
            state: State::Head,
            head: Vec::new(),
            head_scanned: 0,
            size: 0,
            received: 0,
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

    /// How many bytes for hyper are ready.
    pub(crate) fn ready(&self) -> usize {
        let pending = self.out.len() - self.sent;
        match self.state {
            State::Refused { left } if pending == 0 => usize::try_from(left).unwrap_or(usize::MAX),
            _ => pending,
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
            State::ChunkData(left) => {
                let n = take_up_to(left, input);
                self.pass(input, n);
                self.received = self.received.saturating_add(n as u64);
                self.state = match left - n as u64 {
                    0 => State::ChunkDataCr,
                    left => State::ChunkData(left),
                };
                n
            }
            _ => {
                let Some(&byte) = input.first() else {
                    return 0;
                };
                self.chunk_byte(byte);
                1
            }
        }
    }

    fn pass(&mut self, input: &[u8], n: usize) {
        self.out
            .extend_from_slice(input.get(..n).unwrap_or_default());
    }

    /// One byte of chunk framing, as hyper's decoder reads it.
    fn chunk_byte(&mut self, byte: u8) {
        self.out.push(byte);
        let hex = char::from(byte).to_digit(16).map(u64::from);
        self.state = match (self.state, byte, hex) {
            (State::ChunkStart | State::ChunkSize, _, Some(digit)) => {
                // Beyond u64 hyper refuses the size as invalid; over any limit all the same.
                let size = self
                    .size
                    .checked_mul(16)
                    .and_then(|size| size.checked_add(digit));
                match size {
                    Some(size) if self.received.saturating_add(size) <= self.limit => {
                        self.size = size;
                        State::ChunkSize
                    }
                    // Known as soon as this digit arrives, the rest of the line unread.
                    _ => self.refuse(),
                }
            }
            (State::ChunkSize, b'\t' | b' ', _) => State::ChunkSizeLws,
            (State::ChunkSizeLws, b'\t' | b' ', _) => State::ChunkSizeLws,
            (State::ChunkSize | State::ChunkSizeLws, b';', _) => State::ChunkExtension,
            (State::ChunkSize | State::ChunkSizeLws | State::ChunkExtension, b'\r', _) => {
                State::ChunkSizeLf
            }
            (State::ChunkExtension, b'\n', _) => State::Passthrough,
            (State::ChunkExtension, _, _) => State::ChunkExtension,
            (State::ChunkSizeLf, b'\n', _) => match std::mem::take(&mut self.size) {
                0 => State::EndCr,
                size => State::ChunkData(size),
            },
            (State::ChunkDataCr, b'\r', _) => State::ChunkDataLf,
            (State::ChunkDataLf, b'\n', _) => State::ChunkStart,
            (State::EndCr, b'\r', _) => State::EndLf,
            (State::Trailer, b'\r', _) => State::TrailerLf,
            (State::EndCr | State::Trailer, _, _) => State::Trailer,
            (State::TrailerLf, b'\n', _) => State::EndCr,
            (State::EndLf, b'\n', _) => {
                self.received = 0;
                State::Head
            }
            // hyper refuses the body and closes the connection.
            _ => State::Passthrough,
        };
    }

    /// Replace the rest of the size line by its end and `limit + 1` placeholder bytes: a
    /// chunk the body limit refuses.
    fn refuse(&mut self) -> State {
        self.out.extend_from_slice(b"\r\n");
        State::Refused {
            left: self.limit.saturating_add(1),
        }
    }

    fn head(&mut self, input: &[u8]) -> usize {
        // Heads are passed on as they arrive (hyper parses them too) and parsed here once
        // their end (an empty line) is seen; each byte is searched once.
        let before = self.head.len();
        self.head.extend_from_slice(input);
        self.out.extend_from_slice(input);
        // Ends already tried (an empty line before the request line) are not tried again.
        let mut tried = 0;
        loop {
            let from = self.head_scanned.saturating_sub(2);
            let Some(end) = find_head_end(&self.head, from, tried) else {
                self.head_scanned = self.head.len();
                if self.head.len() > MAX_HEAD {
                    self.give_up();
                }
                return input.len();
            };
            tried = end;
            self.head_scanned = end;
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut request = httparse::Request::new(&mut headers);
            match request.parse(&self.head) {
                // An empty line before the request line (hyper skips those): search on.
                Ok(httparse::Status::Partial) => continue,
                Ok(httparse::Status::Complete(len)) => {
                    let next = body_framing(&request);
                    // The bytes of `input` past the head belong to the body: taken back
                    // from `out`, and stepped again by the caller.
                    let used = len.saturating_sub(before).clamp(1, input.len());
                    self.out.truncate(self.out.len() - (input.len() - used));
                    self.head.clear();
                    self.head_scanned = 0;
                    self.received = 0;
                    self.state = next;
                    return used;
                }
                Err(_) => {
                    self.give_up();
                    return input.len();
                }
            }
        }
    }

    fn give_up(&mut self) {
        self.head = Vec::new();
        self.head_scanned = 0;
        self.state = State::Passthrough;
    }
}

/// Where a head may end in `head`, searching from `from`: just past the first empty line
/// (`\n\r\n` or `\n\n`; httparse takes a bare LF as a line end) that ends after `after`.
fn find_head_end(head: &[u8], from: usize, after: usize) -> Option<usize> {
    let rest = head.get(from..)?;
    rest.windows(2)
        .enumerate()
        .filter_map(|(at, pair)| match pair {
            [b'\n', b'\n'] => Some(from + at + 2),
            [b'\n', b'\r'] if rest.get(at + 2) == Some(&b'\n') => Some(from + at + 3),
            _ => None,
        })
        .find(|&end| end > after)
}

/// How many of `input`'s bytes fit in `left`.
fn take_up_to(left: u64, input: &[u8]) -> usize {
    usize::try_from(left).map_or(input.len(), |left| left.min(input.len()))
}

/// The body framing hyper gives a request head (`role.rs`, `Server::parse`): the last
/// `Transfer-Encoding` decides chunked, a `Content-Length` after it is ignored, one before
/// it dropped; lengths are digits only and must agree.
fn body_framing(request: &httparse::Request<'_, '_>) -> State {
    let http_11 = request.version == Some(1);
    let mut transfer_encoding = false;
    let mut chunked = false;
    let mut length: Option<u64> = None;
    for header in request.headers.iter() {
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            if !http_11 {
                return State::Passthrough;
            }
            transfer_encoding = true;
            length = None;
            chunked = last_coding_is_chunked(header.value);
        } else if header.name.eq_ignore_ascii_case("content-length") {
            if transfer_encoding {
                continue;
            }
            let Some(value) = digits(header.value) else {
                return State::Passthrough;
            };
            if length.is_some_and(|seen| seen != value) {
                return State::Passthrough;
            }
            length = Some(value);
        }
    }
    match (transfer_encoding, chunked, length) {
        (true, true, _) => State::ChunkStart,
        (true, false, _) => State::Passthrough,
        (false, _, Some(0) | None) => State::Head,
        (false, _, Some(length)) => State::Length(length),
    }
}

/// hyper's `is_chunked_`: the value is visible ASCII and its last coding is `chunked`.
fn last_coding_is_chunked(value: &[u8]) -> bool {
    let visible = value
        .iter()
        .all(|&b| b == b'\t' || (b' '..0x7f).contains(&b));
    visible
        && std::str::from_utf8(value).is_ok_and(|text| {
            text.rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
        })
}

/// hyper's `from_digits`: ASCII digits only, no sign, no overflow.
fn digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |n, &b| match b {
        b'0'..=b'9' => n.checked_mul(10)?.checked_add(u64::from(b - b'0')),
        _ => None,
    })
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
    /// A chunk declared over any small limit, and nothing of it.
    const HUGE: &[u8] = b"ffffff\r\n";

    /// `input` then a chunked request declaring [`HUGE`]: refused, wherever the pieces fall.
    fn refused_after(input: &[u8]) {
        let mut all = input.to_vec();
        all.extend_from_slice(CHUNKED);
        all.extend_from_slice(HUGE);
        for piece in [1, 3, 4096] {
            let (seen, framing) = through(64, &all, piece);
            assert!(framing.refused(), "in pieces of {piece}");
            // Everything before the huge size passed unchanged.
            let before = all.len() - HUGE.len();
            assert_eq!(seen[..before], all[..before], "in pieces of {piece}");
        }
    }

    #[test]
    fn requests_within_the_limit_pass_unchanged_in_any_pieces() {
        let mut pipeline = Vec::new();
        pipeline.extend_from_slice(b"GET /authorized_keys HTTP/1.1\r\nhost: x\r\n\r\n");
        pipeline.extend_from_slice(
            b"POST /keys/tz1 HTTP/1.1\r\ncontent-length: 12\r\n\r\n\"0300aabbcc\"",
        );
        pipeline.extend_from_slice(CHUNKED);
        pipeline
            .extend_from_slice(b"5;ext=1\r\n\"0300\r\n7 \r\naabbcc\"\r\n0\r\ntrailer: t\r\n\r\n");
        pipeline.extend_from_slice(CHUNKED);
        pipeline.extend_from_slice(b"40\r\n");
        pipeline.extend_from_slice(&[b'a'; 64]);
        pipeline.extend_from_slice(b"\r\n0\r\n\r\n");
        pipeline.extend_from_slice(b"\r\nGET /healthz HTTP/1.1\n\n");
        for piece in [1, 2, 3, 5, 64, 4096] {
            let (seen, framing) = through(64, &pipeline, piece);
            assert_eq!(seen, pipeline, "in pieces of {piece}");
            assert_eq!(framing.state, State::Head, "in pieces of {piece}");
        }
        refused_after(&pipeline);
    }

    #[test]
    fn an_over_limit_chunk_is_refused_on_its_declaration_alone() {
        // Two chunks of 40 and 30 bytes: 70 > 64, refused at the digit that says so,
        // though none of the second chunk's bytes arrived.
        let mut request = CHUNKED.to_vec();
        request.extend_from_slice(b"28\r\n");
        request.extend_from_slice(&[b'a'; 40]);
        request.extend_from_slice(b"\r\n1e\r\n");
        for piece in [1, 3, 4096] {
            let (seen, framing) = through(64, &request, piece);
            assert!(framing.refused(), "in pieces of {piece}");
            let sent_before = request.len() - b"1e\r\n".len();
            assert_eq!(seen[..sent_before], request[..sent_before]);
            // The size line ends at that digit (30 bytes declared: 70 in all), and the
            // body limit's worth of placeholder follows, which hyper's body counts past it.
            let rest = &seen[sent_before..];
            assert_eq!(&rest[..4], b"1e\r\n");
            assert_eq!(rest.len(), 4 + 65);
        }
    }

    #[test]
    fn a_huge_size_is_refused_before_its_line_ends_and_what_follows_is_discarded() {
        let mut request = CHUNKED.to_vec();
        request.extend_from_slice(b"ffffffffffffffffffffff");
        let (seen, framing) = through(64, &request, 1);
        assert!(framing.refused());
        assert_eq!(&seen[CHUNKED.len()..CHUNKED.len() + 4], b"ff\r\n");
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
    fn trailer_lines_end_only_at_cr_lf_as_in_hyper() {
        // hyper takes the bare LF as part of the trailer line, so the two "requests" after
        // it are trailer lines too, and the body ends at the empty line.
        let mut request = CHUNKED.to_vec();
        request.extend_from_slice(b"4\r\n\"00\"\r\n0\r\na: b\nPOST /x HTTP/1.1\r\n");
        request.extend_from_slice(b"content-length: 100000\r\n\r\n");
        let (seen, framing) = through(64, &request, 1);
        assert_eq!(seen, request);
        assert_eq!(framing.state, State::Head);
        refused_after(&request);
    }

    #[test]
    fn requests_hyper_serves_keep_being_followed() {
        // An upgrade request hyper answers without upgrading, CONNECT, a length after
        // `Transfer-Encoding` (ignored, as by hyper), leading zeros in a chunk size beyond
        // any line length, and a head of 200 KB (hyper allows about 408 KiB).
        refused_after(b"GET /authorized_keys HTTP/1.1\r\nhost: s\r\nupgrade: foo\r\n\r\n");
        refused_after(b"CONNECT x:1 HTTP/1.1\r\nhost: s\r\n\r\n");
        refused_after(
            b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: x\r\n\r\n0\r\n\r\n",
        );
        let mut zeros = CHUNKED.to_vec();
        zeros.extend_from_slice(&[b'0'; 40_000]);
        zeros.extend_from_slice(b"4\r\n\"00\"\r\n0\r\n\r\n");
        refused_after(&zeros);
        let mut big = b"GET / HTTP/1.1\r\nx-big: ".to_vec();
        big.extend_from_slice(&[b'a'; 200_000]);
        big.extend_from_slice(b"\r\n\r\n");
        refused_after(&big);
    }

    #[test]
    fn framing_hyper_refuses_is_passed_through_untouched() {
        for head in [
            &b"POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\nffffffff\r\n"[..],
            b"POST / HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nffffffff\r\n",
            b"POST / HTTP/1.1\r\ncontent-length: +1\r\n\r\nffffffff\r\n",
            b"POST / HTTP/1.0\r\ntransfer-encoding: chunked\r\n\r\nffffffff\r\n",
            b"\x00\x01 not http\r\n\r\nffffffff\r\n",
            b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nffffffff\r\n",
            b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n1\nffffffff\r\n",
            b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n1;a\nffffffff\r\n",
            b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n1\r\naXffffffff\r\n",
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
