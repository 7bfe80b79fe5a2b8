//! The messages of Octez's socket signer protocol (`tcp://host:port/tz1…`,
//! `unix:/path?pkh=tz1…`), byte for byte as Octez's `data-encoding` writes them. Pure: no
//! I/O, so every layout is tested here.
//!
//! A message is `u16 length ‖ payload`. Requests are a one-byte tag then their fields;
//! replies are Octez's `result_encoding`: `00 ‖ value` or `01 ‖ trace`. Layout notes:
//! - `bytes` and `list` carry a `u32` byte length; a signature is its raw bytes (64, or 96
//!   for BLS), and an optional signature in last position is present when bytes remain;
//! - an optional fixed-size value (the BLS public key of a proof of possession) has a
//!   presence byte, `00` or `ff`;
//! - an error is JSON written as BSON, in a `u32`-prefixed string.

use tezos_crypto::{Curve, PublicKey, PublicKeyHash, Signature, SigningVersion};

/// Payloads are at most this long: their length is a `u16`.
pub const MAX_PAYLOAD: usize = u16::MAX as usize;

/// What a client asks; tags are those of Octez's `Signer_messages.Request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketRequest {
    /// Tag 0.
    Sign(SignMessage),
    /// Tag 1.
    PublicKey(PublicKeyHash),
    /// Tag 2.
    AuthorizedKeys,
    /// Tags 3 and 4: this signer holds no secret for nonces (keys may live in HSMs).
    DeterministicNonce { hash: bool, pkh: PublicKeyHash },
    /// Tag 5.
    SupportsDeterministicNonces(PublicKeyHash),
    /// Tag 6.
    KnownKeys,
    /// Tag 7.
    ProvePossession {
        pkh: PublicKeyHash,
        override_pk: Option<PublicKey>,
    },
}

/// A signing request: the key, the bytes (magic byte included) and the client's
/// authentication signature over them, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignMessage {
    pub pkh: PublicKeyHash,
    /// Sent only for tz4 keys: the signing version the client was built for.
    pub version: Option<SigningVersion>,
    pub data: Vec<u8>,
    pub authentication: Option<Signature>,
}

/// Why a payload is not a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("the message ends early: {0} expected")]
    Truncated(&'static str),
    #[error("{0} unread byte(s) after the request")]
    Trailing(usize),
    #[error("unknown request tag {0} (expected 0 to 7)")]
    UnknownRequest(u8),
    #[error("unknown result tag {0} (expected 0 or 1)")]
    UnknownResult(u8),
    #[error("unknown public key hash tag {0} (expected 0 to 3)")]
    UnknownKeyTag(u8),
    #[error("unknown signing version {0} (expected 0 to 3)")]
    UnknownVersion(i8),
    #[error("an authentication signature is 64 or 96 bytes, not {0}")]
    SignatureLength(usize),
    #[error("bad presence flag {0:#04x} (expected 0x00 or 0xff)")]
    PresenceFlag(u8),
    #[error("{0}")]
    Key(String),
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if self.rest.len() < n {
            return Err(WireError::Truncated(what));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        self.take(1, what)
            .map(|b| b.first().copied().unwrap_or_default())
    }

    fn u32(&mut self, what: &'static str) -> Result<usize, WireError> {
        let b: [u8; 4] = self
            .take(4, what)?
            .try_into()
            .map_err(|_| WireError::Truncated(what))?;
        usize::try_from(u32::from_be_bytes(b)).map_err(|_| WireError::Truncated(what))
    }

    /// Octez's `Public_key_hash.encoding`: a curve tag and the 20-byte hash.
    fn pkh(&mut self) -> Result<PublicKeyHash, WireError> {
        let bytes = self.take(21, "a public key hash (21 bytes)")?;
        let tag = bytes.first().copied().unwrap_or_default();
        if tag > 3 {
            return Err(WireError::UnknownKeyTag(tag));
        }
        PublicKeyHash::from_bytes(bytes).map_err(|e| WireError::Key(e.to_string()))
    }

    /// `Signer_messages.pkh_encoding`: tags 0–2 as above, tag 3 a whole public key hash
    /// followed by the signing version.
    fn signer_pkh(&mut self) -> Result<(PublicKeyHash, Option<SigningVersion>), WireError> {
        let tag = self
            .rest
            .first()
            .copied()
            .ok_or(WireError::Truncated("a key"))?;
        if tag != 3 {
            return Ok((self.pkh()?, None));
        }
        self.take(1, "a key")?;
        let pkh = self.pkh()?;
        let version = i8::from_be_bytes([self.u8("a signing version")?]);
        let known = u8::try_from(version).ok().and_then(SigningVersion::from_u8);
        Ok((pkh, Some(known.ok_or(WireError::UnknownVersion(version))?)))
    }

    /// `bytes`: a `u32` length and the bytes.
    fn bytes(&mut self) -> Result<Vec<u8>, WireError> {
        let len = self.u32("a length")?;
        Ok(self
            .take(len, "bytes as long as their length says")?
            .to_vec())
    }

    /// An optional signature in last position: whatever bytes remain.
    fn trailing_signature(&mut self) -> Result<Option<Signature>, WireError> {
        let bytes = std::mem::take(&mut self.rest);
        match bytes.len() {
            0 => Ok(None),
            // Octez's `Signature.of_bytes`: 64 bytes of a curve the checking key decides.
            64 => <[u8; 64]>::try_from(bytes)
                .map(|b| Some(Signature::Generic(b)))
                .map_err(|_| WireError::SignatureLength(64)),
            96 => Signature::from_bytes(Curve::Bls12_381, bytes)
                .map(Some)
                .map_err(|e| WireError::Key(e.to_string())),
            n => Err(WireError::SignatureLength(n)),
        }
    }

    fn finish<T>(self, value: T) -> Result<T, WireError> {
        if self.rest.is_empty() {
            Ok(value)
        } else {
            Err(WireError::Trailing(self.rest.len()))
        }
    }
}

/// Decode one request payload (the frame's length already removed).
pub fn decode_request(payload: &[u8]) -> Result<SocketRequest, WireError> {
    let mut r = Reader { rest: payload };
    let request = match r.u8("a request tag")? {
        0 => {
            let (pkh, version) = r.signer_pkh()?;
            let data = r.bytes()?;
            let authentication = r.trailing_signature()?;
            SocketRequest::Sign(SignMessage {
                pkh,
                version,
                data,
                authentication,
            })
        }
        1 => SocketRequest::PublicKey(r.pkh()?),
        2 => SocketRequest::AuthorizedKeys,
        tag @ (3 | 4) => {
            // The data and authentication are read only to check the layout.
            let pkh = r.pkh()?;
            r.bytes()?;
            r.trailing_signature()?;
            SocketRequest::DeterministicNonce {
                hash: tag == 4,
                pkh,
            }
        }
        5 => SocketRequest::SupportsDeterministicNonces(r.pkh()?),
        6 => SocketRequest::KnownKeys,
        7 => {
            let pkh = r.pkh()?;
            let override_pk = match r.u8("a presence flag")? {
                0x00 => None,
                0xff => {
                    let key = r.take(48, "a BLS public key (48 bytes)")?;
                    Some(
                        PublicKey::from_bytes(Curve::Bls12_381, key)
                            .map_err(|e| WireError::Key(e.to_string()))?,
                    )
                }
                flag => return Err(WireError::PresenceFlag(flag)),
            };
            SocketRequest::ProvePossession { pkh, override_pk }
        }
        tag => return Err(WireError::UnknownRequest(tag)),
    };
    r.finish(request)
}

/// A successful reply: `00` then the value's bytes.
fn ok(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + value.len());
    out.push(0x00);
    out.extend_from_slice(value);
    out
}

fn push_u32_len(out: &mut Vec<u8>, len: usize) {
    // Payloads are far below 4 GiB (a frame holds 64 KiB).
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
}

/// `list pkh`: a `u32` byte length, then 21 bytes per key.
fn pkh_list(keys: &[PublicKeyHash]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + 21 * keys.len());
    push_u32_len(&mut out, 21 * keys.len());
    for key in keys {
        out.extend_from_slice(&key.to_bytes());
    }
    out
}

/// Reply to Sign (the raw signature) and to Bls_prove_possession (the raw proof).
pub fn signature_reply(signature: &Signature) -> Vec<u8> {
    ok(signature.as_bytes())
}

/// Reply to Public_key: the curve tag and the key.
pub fn public_key_reply(key: &PublicKey) -> Vec<u8> {
    ok(&key.to_tagged_bytes())
}

/// Reply to Authorized_keys: `None` means no authentication is required.
pub fn authorized_keys_reply(keys: Option<&[PublicKeyHash]>) -> Vec<u8> {
    match keys {
        None => ok(&[0x00]),
        Some(keys) => {
            let mut value = vec![0x01];
            value.extend_from_slice(&pkh_list(keys));
            ok(&value)
        }
    }
}

/// Reply to Known_keys.
pub fn known_keys_reply(keys: &[PublicKeyHash]) -> Vec<u8> {
    ok(&pkh_list(keys))
}

/// Reply to Supports_deterministic_nonces.
pub fn bool_reply(value: bool) -> Vec<u8> {
    ok(&[if value { 0xff } else { 0x00 }])
}

/// An error reply: a trace of one error, `{"kind":"temporary","id":"failure","msg":…}` as
/// Octez's `failwith` gives, which clients print.
pub fn error_reply(message: &str) -> Vec<u8> {
    let error = bson_string_document(&[("kind", "temporary"), ("id", "failure"), ("msg", message)]);
    let mut trace = Vec::with_capacity(4 + error.len());
    push_u32_len(&mut trace, error.len());
    trace.extend_from_slice(&error);
    let mut out = Vec::with_capacity(5 + trace.len());
    out.push(0x01);
    push_u32_len(&mut out, trace.len());
    out.extend_from_slice(&trace);
    out
}

/// A BSON document of string fields: `i32le size ‖ (02 ‖ name ‖ 00 ‖ i32le len+1 ‖ text ‖
/// 00)* ‖ 00`. A NUL inside a name or text would end it early, so it becomes a space.
fn bson_string_document(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, text) in fields {
        body.push(0x02);
        body.extend(name.bytes().map(|b| if b == 0 { b' ' } else { b }));
        body.push(0x00);
        let len = i32::try_from(text.len() + 1).unwrap_or(i32::MAX);
        body.extend_from_slice(&len.to_le_bytes());
        body.extend(text.bytes().map(|b| if b == 0 { b' ' } else { b }));
        body.push(0x00);
    }
    let size = i32::try_from(4 + body.len() + 1).unwrap_or(i32::MAX);
    let mut out = Vec::with_capacity(body.len() + 5);
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&body);
    out.push(0x00);
    out
}

/// The payload with its `u16` length in front; `None` when it does not fit a frame.
pub fn frame(payload: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(payload.len()).ok()?;
    let mut out = Vec::with_capacity(2 + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Some(out)
}

/// The client's side, as Octez's `socket.ml` writes requests; for tests and tools.
pub fn encode_request(request: &SocketRequest) -> Vec<u8> {
    let mut out = Vec::new();
    match request {
        SocketRequest::Sign(m) => {
            out.push(0);
            if let Some(version) = m.version {
                out.push(3);
                out.extend_from_slice(&m.pkh.to_bytes());
                out.push(version.as_u8());
            } else {
                out.extend_from_slice(&m.pkh.to_bytes());
            }
            push_u32_len(&mut out, m.data.len());
            out.extend_from_slice(&m.data);
            if let Some(sig) = &m.authentication {
                out.extend_from_slice(sig.as_bytes());
            }
        }
        SocketRequest::PublicKey(pkh) => {
            out.push(1);
            out.extend_from_slice(&pkh.to_bytes());
        }
        SocketRequest::AuthorizedKeys => out.push(2),
        SocketRequest::DeterministicNonce { hash, pkh } => {
            out.push(if *hash { 4 } else { 3 });
            out.extend_from_slice(&pkh.to_bytes());
            push_u32_len(&mut out, 0);
        }
        SocketRequest::SupportsDeterministicNonces(pkh) => {
            out.push(5);
            out.extend_from_slice(&pkh.to_bytes());
        }
        SocketRequest::KnownKeys => out.push(6),
        SocketRequest::ProvePossession { pkh, override_pk } => {
            out.push(7);
            out.extend_from_slice(&pkh.to_bytes());
            match override_pk {
                None => out.push(0x00),
                Some(key) => {
                    out.push(0xff);
                    out.extend_from_slice(key.as_bytes());
                }
            }
        }
    }
    out
}

/// The client's side of a reply: the value's bytes, or the messages of the error trace.
pub fn decode_reply(payload: &[u8]) -> Result<Result<&[u8], Vec<String>>, WireError> {
    let mut r = Reader { rest: payload };
    match r.u8("a result tag")? {
        0x00 => Ok(Ok(r.rest)),
        0x01 => {
            let trace_len = r.u32("a trace length")?;
            let mut trace = Reader {
                rest: r.take(trace_len, "the error trace")?,
            };
            r.finish(())?;
            let mut messages = Vec::new();
            while !trace.rest.is_empty() {
                let len = trace.u32("an error length")?;
                let doc = trace.take(len, "an error")?;
                messages.push(bson_string_field(doc, "msg").unwrap_or_default());
            }
            Ok(Err(messages))
        }
        tag => Err(WireError::UnknownResult(tag)),
    }
}

/// The text of one string field of a BSON document of string fields.
fn bson_string_field(doc: &[u8], wanted: &str) -> Option<String> {
    let mut rest = doc.get(4..doc.len().checked_sub(1)?)?;
    while let Some((&kind, after)) = rest.split_first() {
        let name_end = after.iter().position(|&b| b == 0)?;
        let name = after.get(..name_end)?;
        let after = after.get(name_end + 1..)?;
        if kind != 0x02 {
            return None;
        }
        let len = i32::from_le_bytes(after.get(..4)?.try_into().ok()?);
        let len = usize::try_from(len).ok()?;
        let text = after.get(4..4 + len.checked_sub(1)?)?;
        if name == wanted.as_bytes() {
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        rest = after.get(4 + len..)?;
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use tezos_crypto::SecretKey;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    fn tz1() -> PublicKeyHash {
        SecretKey::generate(Curve::Ed25519).public_key().hash()
    }

    #[test]
    fn sign_request_layouts_follow_octez() {
        let pkh = tz1();
        // Tag 0, the key (tag 0 and 20 bytes), u32 length and data, no signature.
        let mut payload = vec![0x00];
        payload.extend_from_slice(&pkh.to_bytes());
        payload.extend_from_slice(&unhex("00000003 112233"));
        let expected = SignMessage {
            pkh,
            version: None,
            data: unhex("112233"),
            authentication: None,
        };
        assert_eq!(
            decode_request(&payload),
            Ok(SocketRequest::Sign(expected.clone()))
        );
        // A 64-byte authentication follows the data with no presence byte.
        let auth = [7u8; 64];
        payload.extend_from_slice(&auth);
        let decoded = decode_request(&payload).unwrap();
        let SocketRequest::Sign(m) = decoded else {
            panic!("not a sign request")
        };
        assert_eq!(m.authentication, Some(Signature::Generic(auth)));

        // tz4: tag 3, the whole key hash (tag 3 again), then the signing version.
        let bls = SecretKey::generate(Curve::Bls12_381);
        let tz4 = bls.public_key().hash();
        let sig = bls.sign(b"x", SigningVersion::V1).unwrap();
        let mut payload = vec![0x00, 0x03];
        payload.extend_from_slice(&tz4.to_bytes());
        payload.push(0x01);
        payload.extend_from_slice(&unhex("00000001 13"));
        payload.extend_from_slice(sig.as_bytes());
        assert_eq!(payload[2], 0x03);
        assert_eq!(
            decode_request(&payload),
            Ok(SocketRequest::Sign(SignMessage {
                pkh: tz4,
                version: Some(SigningVersion::V1),
                data: vec![0x13],
                authentication: Some(sig),
            }))
        );
    }

    #[test]
    fn malformed_requests_are_refused_with_the_reason() {
        let pkh = tz1();
        let mut public_key = vec![0x01];
        public_key.extend_from_slice(&pkh.to_bytes());
        assert!(decode_request(&public_key).is_ok());
        let mut trailing = public_key.clone();
        trailing.push(0);
        assert_eq!(decode_request(&trailing), Err(WireError::Trailing(1)));
        assert_eq!(
            decode_request(&public_key[..10]),
            Err(WireError::Truncated("a public key hash (21 bytes)"))
        );
        assert_eq!(
            decode_request(&[]),
            Err(WireError::Truncated("a request tag"))
        );
        assert_eq!(decode_request(&[9]), Err(WireError::UnknownRequest(9)));
        let mut bad_key = vec![0x05, 0x04];
        bad_key.extend_from_slice(&[0u8; 20]);
        assert_eq!(decode_request(&bad_key), Err(WireError::UnknownKeyTag(4)));

        let mut sign = vec![0x00];
        sign.extend_from_slice(&pkh.to_bytes());
        sign.extend_from_slice(&unhex("00000010 11"));
        assert!(matches!(
            decode_request(&sign),
            Err(WireError::Truncated(_))
        ));
        let mut short_sig = vec![0x00];
        short_sig.extend_from_slice(&pkh.to_bytes());
        short_sig.extend_from_slice(&unhex("00000001 11 0102"));
        assert_eq!(
            decode_request(&short_sig),
            Err(WireError::SignatureLength(2))
        );
        let mut version = vec![0x00, 0x03];
        version.extend_from_slice(&pkh.to_bytes());
        version.push(0x07);
        version.extend_from_slice(&unhex("00000001 11"));
        assert_eq!(decode_request(&version), Err(WireError::UnknownVersion(7)));
        let mut flag = vec![0x07];
        flag.extend_from_slice(&pkh.to_bytes());
        flag.push(0x01);
        assert_eq!(decode_request(&flag), Err(WireError::PresenceFlag(1)));
    }

    #[test]
    fn every_request_round_trips() {
        let bls = SecretKey::generate(Curve::Bls12_381);
        let tz4 = bls.public_key().hash();
        let pkh = tz1();
        let requests = [
            SocketRequest::Sign(SignMessage {
                pkh,
                version: None,
                data: vec![0x03; 300],
                authentication: Some(Signature::Generic([1; 64])),
            }),
            SocketRequest::Sign(SignMessage {
                pkh: tz4,
                version: Some(SigningVersion::V2),
                data: vec![0x11],
                authentication: None,
            }),
            SocketRequest::PublicKey(pkh),
            SocketRequest::AuthorizedKeys,
            SocketRequest::DeterministicNonce { hash: false, pkh },
            SocketRequest::DeterministicNonce { hash: true, pkh },
            SocketRequest::SupportsDeterministicNonces(pkh),
            SocketRequest::KnownKeys,
            SocketRequest::ProvePossession {
                pkh: tz4,
                override_pk: None,
            },
            SocketRequest::ProvePossession {
                pkh: tz4,
                override_pk: Some(bls.public_key()),
            },
        ];
        for request in requests {
            assert_eq!(
                decode_request(&encode_request(&request)),
                Ok(request.clone()),
                "{request:?}"
            );
        }
    }

    #[test]
    fn replies_follow_octez_result_encoding() {
        let pkh = tz1();
        assert_eq!(hex::encode(authorized_keys_reply(None)), "0000");
        assert_eq!(
            hex::encode(authorized_keys_reply(Some(&[pkh]))),
            format!("000100000015{}", hex::encode(pkh.to_bytes()))
        );
        assert_eq!(
            hex::encode(known_keys_reply(&[pkh, pkh])),
            format!("000000002a{0}{0}", hex::encode(pkh.to_bytes()))
        );
        assert_eq!(hex::encode(bool_reply(false)), "0000");
        assert_eq!(hex::encode(bool_reply(true)), "00ff");
        let key = SecretKey::generate(Curve::Ed25519);
        let reply = public_key_reply(&key.public_key());
        assert_eq!(reply[..2], [0x00, 0x00]);
        assert_eq!(&reply[2..], key.public_key().as_bytes());
        let sig = key.sign(b"m", SigningVersion::default()).unwrap();
        assert_eq!(signature_reply(&sig)[1..], sig.as_bytes()[..]);
        assert_eq!(decode_reply(&signature_reply(&sig)), Ok(Ok(sig.as_bytes())));
    }

    #[test]
    fn an_error_is_a_trace_of_one_bson_document() {
        // {"kind":"temporary","id":"failure","msg":"no"} in BSON is 53 bytes; the trace
        // holds it with its u32 length, and the result tag 01 and the trace's length lead.
        let expected = "01 00000039 00000035 35000000 \
            02 6b696e64 00 0a000000 74656d706f72617279 00 \
            02 6964 00 08000000 6661696c757265 00 \
            02 6d7367 00 03000000 6e6f 00 \
            00";
        assert_eq!(error_reply("no"), unhex(expected));
        assert_eq!(
            decode_reply(&error_reply("key tz1… is not known")),
            Ok(Err(vec!["key tz1… is not known".to_string()]))
        );
        // A NUL cannot end the text early.
        assert_eq!(
            decode_reply(&error_reply("a\0b")),
            Ok(Err(vec!["a b".to_string()]))
        );
    }

    #[test]
    fn frames_carry_a_u16_length() {
        assert_eq!(frame(&[0xab; 3]).unwrap(), unhex("0003 ababab"));
        assert_eq!(frame(&vec![0; MAX_PAYLOAD]).unwrap().len(), MAX_PAYLOAD + 2);
        assert_eq!(frame(&vec![0; MAX_PAYLOAD + 1]), None);
    }
}
