//! Signing and verification per curve: our implementation beside the alternatives we did
//! not pick, in the same run, so the choice of backend is shown by measurement.
//!
//! `cargo bench -p tezos-crypto --bench sign -- --warm-up-time 1 --measurement-time 3`
//!
//! Every benchmark signs the same 200-byte request; "ours" includes the Blake2b-256
//! prehash of tz1–tz3, the alternatives hash too so the work is the same.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use sha2::{Digest, Sha256};
use tezos_crypto::{blake2b_256, bls_dst, BatchItem, Curve, SecretKey, SigningVersion};

fn request() -> Vec<u8> {
    let mut r = vec![0x11];
    r.extend((0..199u32).map(|i| (i * 37 % 251) as u8));
    r
}

fn secret_payload(sk: &SecretKey, prefix: tezos_crypto::Prefix) -> Vec<u8> {
    tezos_crypto::base58::decode(&sk.to_b58check(), prefix).unwrap()
}

fn sign(c: &mut Criterion) {
    let msg = request();
    let v = SigningVersion::V3;
    let mut g = c.benchmark_group("sign");

    // tz1
    let ed = SecretKey::generate(Curve::Ed25519);
    g.bench_function("tz1 ours (ed25519-dalek)", |b| {
        b.iter(|| ed.sign(black_box(&msg), v).unwrap())
    });
    let seed = secret_payload(&ed, tezos_crypto::Prefix::EdskSeed);
    let ossl_ed =
        openssl::pkey::PKey::private_key_from_raw_bytes(&seed, openssl::pkey::Id::ED25519).unwrap();
    g.bench_function("tz1 alt openssl", |b| {
        b.iter(|| {
            let digest = blake2b_256(black_box(&msg));
            let mut s = openssl::sign::Signer::new_without_digest(&ossl_ed).unwrap();
            s.sign_oneshot_to_vec(&digest).unwrap()
        })
    });

    // tz2
    let sp = SecretKey::generate(Curve::Secp256k1);
    g.bench_function("tz2 ours (libsecp256k1)", |b| {
        b.iter(|| sp.sign(black_box(&msg), v).unwrap())
    });
    let k256_key =
        k256::ecdsa::SigningKey::from_slice(&secret_payload(&sp, tezos_crypto::Prefix::Spsk))
            .unwrap();
    g.bench_function("tz2 alt k256", |b| {
        b.iter(|| {
            use k256::ecdsa::signature::hazmat::PrehashSigner;
            let digest = blake2b_256(black_box(&msg));
            let sig: k256::ecdsa::Signature = k256_key.sign_prehash(&digest).unwrap();
            sig
        })
    });
    let ossl_k1 = EcKey::generate(&EcGroup::from_curve_name(Nid::SECP256K1).unwrap()).unwrap();
    g.bench_function("tz2 alt openssl (random nonce)", |b| {
        b.iter(|| EcdsaSig::sign(&blake2b_256(black_box(&msg)), &ossl_k1).unwrap())
    });

    // tz3
    let p2 = SecretKey::generate(Curve::P256);
    g.bench_function("tz3 ours (openssl)", |b| {
        b.iter(|| p2.sign(black_box(&msg), v).unwrap())
    });
    let p256_key =
        p256::ecdsa::SigningKey::from_slice(&secret_payload(&p2, tezos_crypto::Prefix::P2sk))
            .unwrap();
    g.bench_function("tz3 alt p256", |b| {
        b.iter(|| {
            use p256::ecdsa::signature::hazmat::PrehashSigner;
            let digest = blake2b_256(black_box(&msg));
            let sig: p256::ecdsa::Signature = p256_key.sign_prehash(&digest).unwrap();
            sig.normalize_s().unwrap_or(sig)
        })
    });

    // tz4: blst is the only BLS12-381 library considered; "raw" shows our wrapper's cost.
    let bl = SecretKey::generate(Curve::Bls12_381);
    g.bench_function("tz4 ours (blst)", |b| {
        b.iter(|| bl.sign(black_box(&msg), v).unwrap())
    });
    let mut be = secret_payload(&bl, tezos_crypto::Prefix::BLsk);
    be.reverse();
    let raw_bls = blst::min_pk::SecretKey::from_bytes(&be).unwrap();
    g.bench_function("tz4 raw blst", |b| {
        b.iter(|| {
            raw_bls
                .sign(black_box(&msg), bls_dst::SIG_POP, &[])
                .compress()
        })
    });
    g.finish();
}

fn verify(c: &mut Criterion) {
    let msg = request();
    let v = SigningVersion::V3;
    let mut g = c.benchmark_group("verify");
    for curve in Curve::ALL {
        let sk = SecretKey::generate(curve);
        let pk = sk.public_key();
        let sig = sk.sign(&msg, v).unwrap();
        g.bench_function(format!("{} ours", curve.address_kind()), |b| {
            b.iter(|| pk.verify(black_box(&msg), &sig, v).unwrap())
        });
        match curve {
            Curve::Secp256k1 => {
                use k256::ecdsa::signature::hazmat::PrehashVerifier;
                let vk = k256::ecdsa::VerifyingKey::from_sec1_bytes(pk.as_bytes()).unwrap();
                let s = k256::ecdsa::Signature::from_slice(sig.as_bytes()).unwrap();
                g.bench_function("tz2 alt k256", |b| {
                    b.iter(|| {
                        vk.verify_prehash(&blake2b_256(black_box(&msg)), &s)
                            .unwrap()
                    })
                });
            }
            Curve::P256 => {
                use p256::ecdsa::signature::hazmat::PrehashVerifier;
                let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(pk.as_bytes()).unwrap();
                let s = p256::ecdsa::Signature::from_slice(sig.as_bytes()).unwrap();
                g.bench_function("tz3 alt p256", |b| {
                    b.iter(|| {
                        vk.verify_prehash(&blake2b_256(black_box(&msg)), &s)
                            .unwrap()
                    })
                });
            }
            _ => {}
        }
    }
    g.finish();
}

/// Ed25519 and BLS verification in batches of n, per signature (the signer batches the
/// checks of concurrent requests).
fn verify_batch(c: &mut Criterion) {
    let v = SigningVersion::V3;
    for (curve, sizes) in [
        (Curve::Ed25519, &[1usize, 4, 8, 16, 32][..]),
        (Curve::Bls12_381, &[1usize, 4, 16][..]),
    ] {
        let mut g = c.benchmark_group(format!("verify {} batch", curve.address_kind()));
        for &n in sizes {
            let signed: Vec<_> = (0..n)
                .map(|i| {
                    let sk = SecretKey::generate(curve);
                    let mut msg = request();
                    msg.push(i as u8);
                    let sig = sk.sign(&msg, v).unwrap();
                    (sk.public_key(), msg, sig)
                })
                .collect();
            let items: Vec<BatchItem<'_>> = signed
                .iter()
                .map(|(key, msg, signature)| BatchItem {
                    key,
                    msg,
                    signature,
                    version: v,
                })
                .collect();
            g.throughput(Throughput::Elements(n as u64));
            g.bench_function(format!("{n}"), |b| {
                b.iter(|| tezos_crypto::verify_batch(black_box(&items)).unwrap())
            });
        }
        g.finish();
    }
}

/// Base58check of a tz1 signature and of a tz1 address, ours beside `bs58`.
fn base58(c: &mut Criterion) {
    use tezos_crypto::base58::{decode, encode, Prefix};
    let mut g = c.benchmark_group("base58");
    let sig = [0xa7u8; 64];
    g.bench_function("encode edsig ours", |b| {
        b.iter(|| encode(Prefix::Edsig, black_box(&sig)))
    });
    let raw = tezos_crypto::base58::decode_raw(&encode(Prefix::Edsig, &sig)).unwrap();
    g.bench_function("encode edsig alt bs58", |b| {
        b.iter(|| {
            let mut data = black_box(&raw).clone();
            let sum: [u8; 32] = Sha256::digest(Sha256::digest(&data)).into();
            data.extend_from_slice(&sum[..4]);
            bs58::encode(data).into_string()
        })
    });
    let tz1 = SecretKey::generate(Curve::Ed25519)
        .public_key()
        .hash()
        .to_b58check();
    g.bench_function("decode tz1 ours", |b| {
        b.iter(|| decode(black_box(&tz1), Prefix::Tz1).unwrap())
    });
    g.bench_function("decode tz1 alt bs58", |b| {
        b.iter(|| {
            let data = bs58::decode(black_box(&tz1)).into_vec().unwrap();
            let (body, sum) = data.split_at(data.len() - 4);
            let check: [u8; 32] = Sha256::digest(Sha256::digest(body)).into();
            assert_eq!(&check[..4], sum);
            body.to_vec()
        })
    });
    g.finish();
}

fn hashing(c: &mut Criterion) {
    let msg = request();
    c.bench_function("blake2b_256 of a 200-byte request", |b| {
        b.iter(|| blake2b_256(black_box(&msg)))
    });
}

criterion_group!(benches, sign, verify, verify_batch, base58, hashing);
criterion_main!(benches);
