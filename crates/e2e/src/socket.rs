//! A client of Octez's socket signer protocol, as Octez's `socket.ml` speaks it: one
//! `u16`-framed request, one framed reply.

use tezos_encoding::signer_messages::{decode_reply, encode_request, frame, SocketRequest};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

fn invalid(what: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

/// Send one payload and read the reply's payload.
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    payload: &[u8],
) -> std::io::Result<Vec<u8>> {
    let framed = frame(payload).ok_or_else(|| invalid("the request does not fit a frame"))?;
    stream.write_all(&framed).await?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut reply).await?;
    Ok(reply)
}

/// Send `request`: the reply's value, or the messages of its error.
pub async fn call<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    request: &SocketRequest,
) -> std::io::Result<Result<Vec<u8>, Vec<String>>> {
    let reply = exchange(stream, &encode_request(request)).await?;
    let decoded = decode_reply(&reply).map_err(invalid)?;
    Ok(decoded.map(<[u8]>::to_vec))
}
