//! A fake Ledger for the `ledger` driver: a [`Model`] of the Tezos Baking app answering
//! from real secret keys, and [`Speculos`], a TCP server on 127.0.0.1 that speaks the
//! Speculos emulator's APDU framing (a command is a 4-byte big-endian length then the
//! APDU; an answer is a 4-byte big-endian length of the data without the status word,
//! then the data and the status word) and passes every command to the model.
//!
//! The model knows what the driver sends: VERSION, GET_PUBLIC_KEY and SIGN (a first
//! packet with the path, then one last packet with the message, as the app parses one
//! message packet only when baking). Anything else is recorded as unexpected and, over
//! TCP, closes the connection.

use crate::conformance::Outage;
use crate::HarnessError;
use std::collections::HashMap;
use std::future::Future;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;
use tezos_crypto::{Curve, SecretKey, SigningVersion};

/// The Baking app's class byte.
pub const CLA: u8 = 0x80;
pub const INS_VERSION: u8 = 0x00;
pub const INS_GET_PUBLIC_KEY: u8 = 0x02;
pub const INS_SIGN: u8 = 0x04;
pub const P1_FIRST: u8 = 0x00;
pub const P1_NEXT: u8 = 0x01;
pub const P1_LAST: u8 = 0x80;
/// A hardened path component.
pub const HARDENED: u32 = 0x8000_0000;

const SECP256K1_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
];
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// The Tezos Baking app, answering from real keys.
#[derive(Debug)]
pub struct Model {
    /// (P2, encoded path) → key.
    pub keys: HashMap<(u8, Vec<u8>), SecretKey>,
    /// (P2, encoded path) → status word GET_PUBLIC_KEY answers instead.
    pub refuse: HashMap<(u8, Vec<u8>), u16>,
    /// What VERSION answers: kind, major, minor, patch.
    pub version: [u8; 4],
    /// Give ECDSA signatures with a high `s`, as a device may.
    pub high_s: bool,
    signing: Option<(u8, Vec<u8>)>,
    packets: usize,
}

impl Model {
    /// The app of `version` (`[1, 2, 5, 1]`: Baking 2.5.1) with no keys yet.
    pub fn new(version: [u8; 4]) -> Model {
        Model {
            keys: HashMap::new(),
            refuse: HashMap::new(),
            version,
            high_s: false,
            signing: None,
            packets: 0,
        }
    }

    /// Hold `key` at the derivation `p2` (0 ed25519, 1 secp256k1, 2 P-256, 3
    /// bip32-ed25519) and the path of `components`, each hardened (`44'/1729'` included).
    pub fn with_key(mut self, p2: u8, components: &[u32], key: SecretKey) -> Model {
        let count = u8::try_from(components.len()).unwrap_or(u8::MAX);
        let path = std::iter::once(count)
            .chain(components.iter().flat_map(|c| (c | HARDENED).to_be_bytes()))
            .collect();
        self.keys.insert((p2, path), key);
        self
    }

    /// The answer (`data ‖ SW1 SW2`) to one command, or why the model cannot answer it.
    pub fn answer(&mut self, request: &[u8]) -> Result<Vec<u8>, String> {
        let [cla, ins, p1, p2, lc, data @ ..] = request else {
            return Err("a command shorter than its header".to_owned());
        };
        if *cla != CLA || usize::from(*lc) != data.len() {
            return Err("a malformed command".to_owned());
        }
        match (*ins, *p1) {
            (INS_VERSION, 0) if data.is_empty() => Ok(with_sw(self.version.to_vec(), 0x9000)),
            (INS_GET_PUBLIC_KEY, 0) => {
                let at = (*p2, data.to_vec());
                if let Some(sw) = self.refuse.get(&at) {
                    return Ok(with_sw(vec![], *sw));
                }
                let key = self.keys.get(&at).ok_or("a public key the model has not")?;
                Ok(with_sw(public_key_answer(key)?, 0x9000))
            }
            (INS_SIGN, P1_FIRST) => {
                self.signing = Some((*p2, data.to_vec()));
                self.packets = 0;
                Ok(with_sw(vec![], 0x9000))
            }
            (INS_SIGN, p1) if p1 & !P1_LAST == P1_NEXT => {
                let Some(at) = self.signing.clone() else {
                    return Ok(with_sw(vec![], 0x917e));
                };
                self.packets += 1;
                // src/apdu_sign.c: only one packet is parsed when baking.
                if self.packets != 1 {
                    return Ok(with_sw(vec![], 0x9405));
                }
                if p1 & P1_LAST == 0 {
                    return Ok(with_sw(vec![], 0x9000));
                }
                self.signing = None;
                let key = self
                    .keys
                    .get(&at)
                    .ok_or("a signing key the model has not")?;
                Ok(with_sw(signature_answer(key, data, self.high_s)?, 0x9000))
            }
            _ => Err("a command the model does not know".to_owned()),
        }
    }
}

fn with_sw(mut data: Vec<u8>, sw: u16) -> Vec<u8> {
    data.extend_from_slice(&sw.to_be_bytes());
    data
}

/// The answer of GET_PUBLIC_KEY as `src/apdu.c` writes it: a length, then `0x02 ‖ key`
/// for Ed25519 or the uncompressed point for ECDSA.
fn public_key_answer(key: &SecretKey) -> Result<Vec<u8>, String> {
    let pk = key.public_key();
    let raw = match key.curve() {
        Curve::Ed25519 => [&[0x02][..], pk.as_bytes()].concat(),
        Curve::Secp256k1 | Curve::P256 => {
            pk.to_uncompressed_point().ok_or("no uncompressed point")?
        }
        Curve::Bls12_381 => return Err("the model has no BLS".to_owned()),
    };
    Ok([vec![raw.len() as u8], raw].concat())
}

/// SIGN's answer: 64 bytes for Ed25519, DER for ECDSA (the parity flag or-ed into the
/// first byte, `src/keys.c`).
fn signature_answer(key: &SecretKey, message: &[u8], high_s: bool) -> Result<Vec<u8>, String> {
    let sig = key
        .sign(message, SigningVersion::V3)
        .map_err(|e| e.to_string())?;
    let order = match key.curve() {
        Curve::Ed25519 => return Ok(sig.to_bytes()),
        Curve::Secp256k1 => &SECP256K1_N,
        Curve::P256 => &P256_N,
        Curve::Bls12_381 => return Err("the model has no BLS".to_owned()),
    };
    let (r, s) = sig.as_bytes().split_at(32);
    let s = if high_s {
        negate_mod(order, s)
    } else {
        s.to_vec()
    };
    let body = [der_integer(r), der_integer(&s)].concat();
    Ok([vec![0x31, body.len() as u8], body].concat())
}

fn der_integer(v: &[u8]) -> Vec<u8> {
    let v: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
    let pad = v.first().is_some_and(|b| b & 0x80 != 0);
    let mut out = vec![0x02, v.len() as u8 + u8::from(pad)];
    if pad {
        out.push(0);
    }
    out.extend(v);
    out
}

/// `order - s`, big-endian.
fn negate_mod(order: &[u8; 32], s: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 32];
    let mut borrow = 0i16;
    for ((o, x), d) in order.iter().zip(s).zip(out.iter_mut()).rev() {
        let mut v = i16::from(*o) - i16::from(*x) - borrow;
        borrow = i16::from(v < 0);
        if v < 0 {
            v += 256;
        }
        *d = v as u8;
    }
    out
}

// ---------------------------------------------------------------------------------------
// The emulator's TCP port

#[derive(Debug)]
struct Shared {
    model: Mutex<Model>,
    listener: Mutex<Option<TcpListener>>,
    /// Open connections, to close on [`Speculos::take_down`].
    streams: Mutex<HashMap<usize, TcpStream>>,
    connections: AtomicUsize,
    unexpected: Mutex<Vec<String>>,
    stop: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A fake Speculos APDU port on 127.0.0.1, answering with a [`Model`]. It accepts any
/// number of connections over time, one thread each; dropping it stops it.
#[derive(Debug)]
pub struct Speculos {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Speculos {
    /// Listen on a free port of 127.0.0.1.
    pub fn start(model: Model) -> Result<Speculos, HarnessError> {
        let listener = listen("127.0.0.1:0".parse().map_err(|_| {
            HarnessError::io("127.0.0.1")(std::io::Error::other("not an address"))
        })?)?;
        let addr = listener
            .local_addr()
            .map_err(HarnessError::io("the fake Speculos' address"))?;
        let shared = Arc::new(Shared {
            model: Mutex::new(model),
            listener: Mutex::new(Some(listener)),
            streams: Mutex::new(HashMap::new()),
            connections: AtomicUsize::new(0),
            unexpected: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let accept = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("fake-speculos".to_owned())
                .spawn(move || accept_loop(&shared))
                .map_err(HarnessError::io("starting the fake Speculos"))?
        };
        Ok(Speculos {
            addr,
            shared,
            accept: Some(accept),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The driver's `transport` setting for this port.
    pub fn transport(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    /// How many connections were accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Commands the model could not answer (each closed its connection).
    pub fn unexpected(&self) -> Vec<String> {
        lock(&self.shared.unexpected).clone()
    }

    /// The emulator goes away: the port is closed (connecting is refused) and every
    /// open connection is shut.
    pub fn take_down(&self) {
        lock(&self.shared.listener).take();
        for (_, stream) in lock(&self.shared.streams).drain() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// The emulator is back, on the same port.
    pub fn bring_back(&self) -> Result<(), HarnessError> {
        let mut slot = lock(&self.shared.listener);
        if slot.is_none() {
            *slot = Some(listen(self.addr)?);
        }
        Ok(())
    }
}

impl Drop for Speculos {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.take_down();
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// The test takes the emulator down and brings it back.
impl Outage for Arc<Speculos> {
    fn take_down(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move { Speculos::take_down(self) })
    }
    fn bring_back(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            if let Err(e) = Speculos::bring_back(self) {
                // The suite's next signature fails and says so.
                eprintln!("the fake Speculos could not listen again: {e}");
            }
        })
    }
}

/// A non-blocking listener (the accept loop polls it, so it can be closed at any time).
fn listen(addr: SocketAddr) -> Result<TcpListener, HarnessError> {
    let listener = TcpListener::bind(addr).map_err(HarnessError::io(format!(
        "the fake Speculos listening on {addr}"
    )))?;
    listener
        .set_nonblocking(true)
        .map_err(HarnessError::io("the fake Speculos' listener"))?;
    Ok(listener)
}

fn accept_loop(shared: &Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        let accepted = lock(&shared.listener).as_ref().map(TcpListener::accept);
        match accepted {
            Some(Ok((stream, _))) => {
                let id = shared.connections.fetch_add(1, Ordering::SeqCst);
                let registered = stream.set_nonblocking(false).and_then(|()| {
                    let copy = stream.try_clone()?;
                    lock(&shared.streams).insert(id, copy);
                    Ok(())
                });
                if registered.is_err() {
                    continue;
                }
                let shared = Arc::clone(shared);
                let _ = std::thread::Builder::new()
                    .name(format!("fake-speculos-{id}"))
                    .spawn(move || {
                        serve(&shared, stream);
                        lock(&shared.streams).remove(&id);
                    });
            }
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Answer one connection's commands until it closes or a command is not understood.
fn serve(shared: &Shared, mut stream: TcpStream) {
    loop {
        let mut header = [0u8; 4];
        if stream.read_exact(&mut header).is_err() {
            return;
        }
        let len = u32::from_be_bytes(header) as usize;
        if len > 64 * 1024 {
            lock(&shared.unexpected).push(format!("a command of {len} bytes"));
            return;
        }
        let mut request = vec![0u8; len];
        if stream.read_exact(&mut request).is_err() {
            return;
        }
        let answer = lock(&shared.model).answer(&request);
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) => {
                lock(&shared.unexpected).push(format!("{e}: {}", hex::encode(&request)));
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
        };
        let data_len = u32::try_from(answer.len().saturating_sub(2)).unwrap_or(u32::MAX);
        let mut frame = data_len.to_be_bytes().to_vec();
        frame.extend_from_slice(&answer);
        if stream.write_all(&frame).is_err() {
            return;
        }
    }
}
