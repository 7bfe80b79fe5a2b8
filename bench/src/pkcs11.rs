//! `pkcs11-overhead`: what the `pkcs11` vault adds to a raw `C_Sign` on the same token, in
//! one process, the two measured in alternating rounds so both see the same machine.

use crate::BenchError;
use clap::Args;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tezos_crypto::{blake2b_256, Curve, SigningVersion};

#[derive(Debug, Args)]
pub struct OverheadArgs {
    #[arg(long)]
    library: PathBuf,
    #[arg(long)]
    slot: u64,
    #[arg(long)]
    pin: String,
    /// Signatures per side and curve.
    #[arg(short = 'n', long, default_value_t = 5000)]
    requests: usize,
}

fn setup(e: impl std::fmt::Display) -> BenchError {
    BenchError::Setup(e.to_string())
}

fn quantiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    (at(0.5), at(0.99))
}

pub async fn overhead(args: OverheadArgs) -> Result<(), BenchError> {
    let settings: serde_yaml_ng::Value = serde_yaml_ng::from_str(&format!(
        "library_path: {}\nslot: {}\npin: {}\nmax_sessions: 1\n",
        serde_json::Value::String(args.library.display().to_string()),
        args.slot,
        serde_json::Value::String(args.pin.clone()),
    ))
    .map_err(setup)?;
    let vault = signatory_vaults::open("bench", "pkcs11", &settings)
        .await
        .map_err(setup)?;
    // The same library in this process: already initialised by the vault.
    let ctx = Pkcs11::new(&args.library).map_err(setup)?;
    let _ = ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
    let slot = ctx
        .get_all_slots()
        .map_err(setup)?
        .into_iter()
        .find(|s| s.id() == args.slot)
        .ok_or_else(|| setup("no such slot"))?;
    let session = ctx.open_ro_session(slot).map_err(setup)?;
    let _ = session.login(UserType::User, Some(&AuthPin::from(args.pin.as_str())));
    let mut ceilings = Vec::new();
    println!("| curve | path | signatures | p50 ms | p99 ms |");
    println!("|---|---|---:|---:|---:|");
    for curve in [Curve::Ed25519, Curve::P256] {
        let key = vault.generate(curve).await.map_err(setup)?;
        let label = key.pkh.to_b58check().into_bytes();
        let handle = *session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(label),
            ])
            .map_err(setup)?
            .first()
            .ok_or_else(|| setup("the generated key is not in the token"))?;
        let mechanism = match curve {
            Curve::Ed25519 => Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
            _ => Mechanism::Ecdsa,
        };
        let message = b"\x13 an attestation's bytes, as long as one".repeat(3);
        let (mut raw, mut driver) = (Vec::new(), Vec::new());
        // Rounds of 100 each way, alternating, after a warm-up of both.
        for round in 0..=(args.requests / 100) {
            for _ in 0..100 {
                let started = Instant::now();
                // What the driver does before C_Sign too: the digest.
                let digest = blake2b_256(&message);
                session.sign(&mechanism, handle, &digest).map_err(setup)?;
                if round > 0 {
                    raw.push(started.elapsed());
                }
            }
            for _ in 0..100 {
                let started = Instant::now();
                vault
                    .sign(&key.pkh, &message, SigningVersion::V1)
                    .await
                    .map_err(setup)?;
                if round > 0 {
                    driver.push(started.elapsed());
                }
            }
        }
        let (raw_n, driver_n) = (raw.len(), driver.len());
        let (raw_50, raw_99) = quantiles(raw);
        let (driver_50, driver_99) = quantiles(driver);
        println!(
            "| {curve} | raw C_Sign (digest included) | {raw_n} | {raw_50:.3} | {raw_99:.3} |"
        );
        println!(
            "| {curve} | pkcs11 vault `sign` | {driver_n} | {driver_50:.3} | {driver_99:.3} |"
        );
        println!(
            "| {curve} | the driver adds (p50) | | {:.3} | |",
            driver_50 - raw_50
        );
        ceilings.push((curve, handle));
    }
    // The token's own ceiling: raw C_Sign from T threads, each on its own session, for
    // 3 s: no signer can sign faster than this on this machine.
    println!();
    println!("| curve | raw C_Sign threads | signatures/s |");
    println!("|---|---:|---:|");
    for (curve, handle) in &ceilings {
        for threads in [1usize, 2, 4] {
            let deadline = Instant::now() + Duration::from_secs(3);
            let total: usize = std::thread::scope(|scope| {
                let workers: Vec<_> = (0..threads)
                    .map(|_| {
                        scope.spawn(|| {
                            let Ok(session) = ctx.open_ro_session(slot) else {
                                return 0;
                            };
                            let mechanism = match curve {
                                Curve::Ed25519 => {
                                    Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure))
                                }
                                _ => Mechanism::Ecdsa,
                            };
                            let digest = blake2b_256(b"\x13 ceiling");
                            let mut n = 0;
                            while Instant::now() < deadline {
                                if session.sign(&mechanism, *handle, &digest).is_err() {
                                    break;
                                }
                                n += 1;
                            }
                            n
                        })
                    })
                    .collect();
                workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
            });
            println!("| {curve} | {threads} | {:.0} |", total as f64 / 3.0);
        }
    }
    std::mem::forget(ctx);
    Ok(())
}
