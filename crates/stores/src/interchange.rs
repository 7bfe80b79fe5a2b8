//! Moving watermarks in and out: Octez signer files, ECAD Signatory's file store, and this
//! project's own versioned interchange document.
//!
//! Every import is merged by taking the higher (level, round) per key, and
//! [`import_into`] never lowers a watermark already in the store.
//!
//! Formats read:
//! - Octez: `<dir>/{block,preattestation,attestation}_high_watermarks` and the names used
//!   before Octez v23, `preendorsement_high_watermarks` and `endorsement_high_watermarks`
//!   (each name is also accepted without its final `s`), each
//!   `{"<chain Net…>": {"<pkh>": {"level": N, "round": N, "hash": "<hex>", "signature": "<b58>"}}}`.
//!   `round` and `signature` are optional there; a record without a round (written before
//!   Tenderbake) is imported at round `i32::MAX`, which refuses every other request at that
//!   level, as Octez does for such records.
//! - ECAD Signatory: `<dir>/watermark_v2/<chain Net…>.json`, each
//!   `{"<pkh>": {"<kind>": {"level": N, "round": N, "hash": "vh…" | null}}}` where kind is
//!   `block`, `preattestation`, `attestation`, `attestation_with_dal` (or the older
//!   `preendorsement`, `endorsement`). `attestation_with_dal` merges into the attestation
//!   watermark. A missing hash is imported as all zeros, so no request matches it. ECAD
//!   records a block's payload round, which can be below the block's own round, so block
//!   watermarks are imported at round `i32::MAX`: their whole level stays taken.
//!   Older ECAD releases wrote `<dir>/watermark/<chain>.json` (`{"<kind>": {"<pkh>": mark}}`,
//!   read the same way) and `<dir>/watermark_v1/<chain>.json` (`{"<pkh>": {"level": N,
//!   "round": N, "order": 0|1|2, "hash": …}}`, one mark for all kinds of a key: every kind is
//!   imported at that level, round `i32::MAX`). All three are read and the higher wins.
//!
//! Our own document ([`InterchangeDocument`], version 1):
//!
//! ```json
//! {"format": "signatory-watermarks", "version": 1, "watermarks": [
//!   {"chain_id": "NetXdQprcVkpaWU", "pkh": "tz1…", "kind": "block", "level": 5, "round": 0,
//!    "request_hash": "<64 hex>", "signature": "edsig…"}]}
//! ```
//! (`signature` is absent while a watermark holds only a reservation.)

use serde::{Deserialize, Serialize};
use signatory_signer::store::{StoreError, WatermarkStore};
use signatory_signer::watermark::{Watermark, WatermarkKey};
use std::collections::BTreeMap;
use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use tezos_crypto::base58::{self, Prefix};
use tezos_crypto::{ChainId, PublicKeyHash};
use tezos_encoding::WatermarkKind;

/// The `format` value of an interchange document.
pub const INTERCHANGE_FORMAT: &str = "signatory-watermarks";
pub const INTERCHANGE_VERSION: u32 = 1;

/// The Octez signer's watermark files, per kind, as Octez writes them today (the wallet
/// adds an `s` to each name). Export writes these.
pub const OCTEZ_FILES: [(WatermarkKind, &str); 3] = [
    (WatermarkKind::Block, "block_high_watermarks"),
    (
        WatermarkKind::Preattestation,
        "preattestation_high_watermarks",
    ),
    (WatermarkKind::Attestation, "attestation_high_watermarks"),
];

/// The names Octez used before v23 (MR !18481 renamed them).
pub const OCTEZ_LEGACY_FILES: [(WatermarkKind, &str); 2] = [
    (
        WatermarkKind::Preattestation,
        "preendorsement_high_watermarks",
    ),
    (WatermarkKind::Attestation, "endorsement_high_watermarks"),
];

/// Every name import reads: current, legacy, and each without its final `s`, a spelling
/// that other tools and older documents use. All are merged by the higher watermark.
pub const OCTEZ_READ_FILES: [(WatermarkKind, &str); 10] = [
    OCTEZ_FILES[0],
    OCTEZ_FILES[1],
    OCTEZ_FILES[2],
    OCTEZ_LEGACY_FILES[0],
    OCTEZ_LEGACY_FILES[1],
    (WatermarkKind::Block, "block_high_watermark"),
    (
        WatermarkKind::Preattestation,
        "preattestation_high_watermark",
    ),
    (WatermarkKind::Attestation, "attestation_high_watermark"),
    (
        WatermarkKind::Preattestation,
        "preendorsement_high_watermark",
    ),
    (WatermarkKind::Attestation, "endorsement_high_watermark"),
];

/// The Octez file names, for messages that say what was expected.
pub fn octez_expected_names() -> String {
    format!(
        "{} (or the pre-v23 {})",
        OCTEZ_FILES.map(|(_, name)| name).join(", "),
        OCTEZ_LEGACY_FILES.map(|(_, name)| name).join(", ")
    )
}

/// ECAD Signatory's watermark directory under its base directory.
pub const ECAD_DIR: &str = "watermark_v2";
/// The directories of older ECAD Signatory releases, which ECAD still migrates at start:
/// a base directory may hold only these.
pub const ECAD_V1_DIR: &str = "watermark_v1";
pub const ECAD_V0_DIR: &str = "watermark";
/// Every ECAD Signatory watermark directory, newest first.
pub const ECAD_DIRS: [&str; 3] = [ECAD_DIR, ECAD_V1_DIR, ECAD_V0_DIR];

/// Why watermarks could not be imported or exported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin} is not a valid {format} watermark file: {source}")]
    Json {
        origin: String,
        format: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{origin}: {detail}")]
    BadEntry { origin: String, detail: String },
    #[error("no watermark files in {}: expected {expected}", dir.display())]
    NothingFound { dir: PathBuf, expected: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ImportError {
    let path = path.to_path_buf();
    move |source| ImportError::Io {
        action,
        path,
        source,
    }
}

fn bad(origin: &str, detail: impl Into<String>) -> ImportError {
    ImportError::BadEntry {
        origin: origin.to_string(),
        detail: detail.into(),
    }
}

const SIGNATURE_PREFIXES: [Prefix; 5] = [
    Prefix::Edsig,
    Prefix::Spsig,
    Prefix::P2sig,
    Prefix::GenericSig,
    Prefix::BLsig,
];

fn check_signature(origin: &str, signature: &str) -> Result<(), ImportError> {
    base58::decode_any(signature, &SIGNATURE_PREFIXES)
        .map(|_| ())
        .map_err(|e| {
            bad(
                origin,
                format!("signature {signature:?} is not a signature: {e}"),
            )
        })
}

fn parse_chain(origin: &str, s: &str) -> Result<ChainId, ImportError> {
    ChainId::from_b58check(s).map_err(|e| bad(origin, format!("chain id {s:?}: {e}")))
}

fn parse_pkh(origin: &str, s: &str) -> Result<PublicKeyHash, ImportError> {
    PublicKeyHash::from_b58check(s).map_err(|e| bad(origin, format!("key {s:?}: {e}")))
}

fn parse_hex_hash(origin: &str, s: &str) -> Result<[u8; 32], ImportError> {
    let bytes = hex::decode(s).map_err(|e| bad(origin, format!("hash {s:?}: {e}")))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| bad(origin, format!("hash must be 32 bytes, found {}", b.len())))
}

/// Keep, per key, the record with the highest (level, round); on a tie the first one read.
pub fn merge_max(
    records: impl IntoIterator<Item = (WatermarkKey, Watermark)>,
) -> Vec<(WatermarkKey, Watermark)> {
    let mut merged: BTreeMap<WatermarkKey, Watermark> = BTreeMap::new();
    for (key, mark) in records {
        match merged.get(&key) {
            Some(existing) if existing.height() >= mark.height() => {}
            _ => {
                merged.insert(key, mark);
            }
        }
    }
    merged.into_iter().collect()
}

// ---------------------------------------------------------------------------------------
// Octez

#[derive(Debug, Serialize, Deserialize)]
struct OctezMark {
    level: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    round: Option<i32>,
    hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signature: Option<String>,
}

type OctezFile = BTreeMap<String, BTreeMap<String, OctezMark>>;

/// Parse the content of one Octez `<kind>_high_watermarks` file.
pub fn parse_octez_file(
    kind: WatermarkKind,
    json: &str,
    origin: &str,
) -> Result<Vec<(WatermarkKey, Watermark)>, ImportError> {
    let file: OctezFile = serde_json::from_str(json).map_err(|source| ImportError::Json {
        origin: origin.to_string(),
        format: "Octez",
        source,
    })?;
    let mut out = Vec::new();
    for (chain, marks) in &file {
        let chain_id = parse_chain(origin, chain)?;
        for (pkh, mark) in marks {
            let pkh = parse_pkh(origin, pkh)?;
            if let Some(signature) = &mark.signature {
                check_signature(origin, signature)?;
            }
            out.push((
                WatermarkKey::new(chain_id, pkh, kind),
                Watermark {
                    level: mark.level,
                    round: mark.round.unwrap_or(i32::MAX),
                    request_hash: parse_hex_hash(origin, &mark.hash)?,
                    signature: mark.signature.clone(),
                },
            ));
        }
    }
    Ok(out)
}

/// Read the Octez files of `dir` among `names`; `None` when none of them exists.
fn read_octez_files<'a>(
    dir: &Path,
    names: impl IntoIterator<Item = &'a (WatermarkKind, &'static str)>,
) -> Result<Option<Vec<(WatermarkKey, Watermark)>>, ImportError> {
    let mut out = Vec::new();
    let mut found = false;
    for (kind, name) in names {
        let path = dir.join(name);
        let json = match fs::read_to_string(&path) {
            Ok(json) => json,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error("read", &path)(e)),
        };
        found = true;
        out.extend(parse_octez_file(*kind, &json, &path.display().to_string())?);
    }
    Ok(found.then_some(out))
}

/// Read every Octez watermark file in `dir` (the Octez signer's base directory). When a
/// kind has several files (current and pre-v23 names), the higher watermark per chain and
/// key wins, so no mark is lost whichever file Octez last wrote.
pub fn read_octez_dir(dir: &Path) -> Result<Vec<(WatermarkKey, Watermark)>, ImportError> {
    match read_octez_files(dir, &OCTEZ_READ_FILES)? {
        Some(records) => Ok(merge_max(records)),
        None => Err(ImportError::NothingFound {
            dir: dir.to_path_buf(),
            expected: octez_expected_names(),
        }),
    }
}

/// The content of the Octez file for `kind`, from the records of that kind.
pub fn octez_file_json(
    kind: WatermarkKind,
    records: &[(WatermarkKey, Watermark)],
) -> Result<String, ImportError> {
    let mut file = OctezFile::new();
    for (key, mark) in merge_max(records.iter().cloned()) {
        if key.kind != kind {
            continue;
        }
        file.entry(key.chain_id.to_b58check()).or_default().insert(
            key.pkh.to_b58check(),
            OctezMark {
                level: mark.level,
                round: Some(mark.round),
                hash: hex::encode(mark.request_hash),
                signature: mark.signature,
            },
        );
    }
    serde_json::to_string_pretty(&file).map_err(|source| ImportError::Json {
        origin: "export".into(),
        format: "Octez",
        source,
    })
}

/// Write the files current Octez reads ([`OCTEZ_FILES`]) into `dir`, merged with any
/// watermarks already there under any name read by taking the higher one, each replaced
/// atomically and durably. Returns the files written.
pub fn write_octez_dir(
    dir: &Path,
    records: &[(WatermarkKey, Watermark)],
) -> Result<Vec<PathBuf>, ImportError> {
    fs::create_dir_all(dir).map_err(io_error("create", dir))?;
    let mut written = Vec::new();
    for (kind, name) in &OCTEZ_FILES {
        let path = dir.join(name);
        let mut all: Vec<(WatermarkKey, Watermark)> = records
            .iter()
            .filter(|(k, _)| k.kind == *kind)
            .cloned()
            .collect();
        // Keep what any file of this kind there holds, under whichever name.
        let same_kind = OCTEZ_READ_FILES.iter().filter(|(k, _)| k == kind);
        all.extend(read_octez_files(dir, same_kind)?.unwrap_or_default());
        if all.is_empty() {
            continue;
        }
        write_durably(&path, octez_file_json(*kind, &all)?.as_bytes())?;
        written.push(path);
    }
    Ok(written)
}

fn write_durably(path: &Path, data: &[u8]) -> Result<(), ImportError> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let mut file = fs::File::create(&tmp).map_err(io_error("create", &tmp))?;
    file.write_all(data).map_err(io_error("write", &tmp))?;
    file.sync_all().map_err(io_error("fsync", &tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(io_error("rename into place", path))?;
    if let Some(parent) = path.parent() {
        fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io_error("fsync", parent))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// ECAD Signatory

#[derive(Debug, Deserialize)]
struct EcadMark {
    level: i32,
    #[serde(default)]
    round: i32,
    #[serde(default)]
    hash: Option<String>,
}

fn ecad_kind(origin: &str, kind: &str) -> Result<WatermarkKind, ImportError> {
    match kind {
        "block" => Ok(WatermarkKind::Block),
        "preattestation" | "preendorsement" => Ok(WatermarkKind::Preattestation),
        "attestation" | "attestation_with_dal" | "endorsement" => Ok(WatermarkKind::Attestation),
        other => Err(bad(origin, format!("unknown request kind {other:?}"))),
    }
}

/// One record of an ECAD per-kind file (`watermark_v2`, `watermark`).
fn ecad_record(
    origin: &str,
    chain_id: ChainId,
    pkh: &str,
    kind: &str,
    mark: &EcadMark,
) -> Result<(WatermarkKey, Watermark), ImportError> {
    let pkh = parse_pkh(origin, pkh)?;
    let kind = ecad_kind(origin, kind)?;
    let request_hash = match &mark.hash {
        Some(vh) => ecad_hash(origin, vh)?,
        None => [0; 32],
    };
    // A block's payload round may be below the round it was signed at.
    let round = match kind {
        WatermarkKind::Block => i32::MAX,
        _ => mark.round,
    };
    Ok((
        WatermarkKey::new(chain_id, pkh, kind),
        Watermark {
            level: mark.level,
            round,
            request_hash,
            signature: None,
        },
    ))
}

fn ecad_hash(origin: &str, vh: &str) -> Result<[u8; 32], ImportError> {
    base58::decode_array::<32>(vh, Prefix::PayloadHash)
        .map_err(|e| bad(origin, format!("hash {vh:?}: {e}")))
}

fn ecad_json<T: serde::de::DeserializeOwned>(json: &str, origin: &str) -> Result<T, ImportError> {
    serde_json::from_str(json).map_err(|source| ImportError::Json {
        origin: origin.to_string(),
        format: "ECAD Signatory",
        source,
    })
}

/// Parse one ECAD Signatory `watermark_v2/<chain_id>.json` file: pkh → kind → mark.
pub fn parse_ecad_chain_file(
    chain_id: ChainId,
    json: &str,
    origin: &str,
) -> Result<Vec<(WatermarkKey, Watermark)>, ImportError> {
    parse_ecad_nested(chain_id, json, origin, NestedBy::KeyThenKind)
}

/// Parse one file of ECAD's first layout, `watermark/<chain_id>.json`: kind → pkh → mark.
pub fn parse_ecad_v0_chain_file(
    chain_id: ChainId,
    json: &str,
    origin: &str,
) -> Result<Vec<(WatermarkKey, Watermark)>, ImportError> {
    parse_ecad_nested(chain_id, json, origin, NestedBy::KindThenKey)
}

enum NestedBy {
    KeyThenKind,
    KindThenKey,
}

fn parse_ecad_nested(
    chain_id: ChainId,
    json: &str,
    origin: &str,
    nesting: NestedBy,
) -> Result<Vec<(WatermarkKey, Watermark)>, ImportError> {
    let file: BTreeMap<String, BTreeMap<String, Option<EcadMark>>> = ecad_json(json, origin)?;
    let mut out = Vec::new();
    for (outer, marks) in &file {
        for (inner, mark) in marks {
            let (pkh, kind) = match nesting {
                NestedBy::KeyThenKind => (outer, inner),
                NestedBy::KindThenKey => (inner, outer),
            };
            if let Some(mark) = mark {
                out.push(ecad_record(origin, chain_id, pkh, kind, mark)?);
            }
        }
    }
    Ok(merge_max(out))
}

/// A `watermark_v1` mark; its `round` and `order` are not needed, as the whole level is
/// taken (below).
#[derive(Debug, Deserialize)]
struct EcadV1Mark {
    level: i32,
    #[serde(default)]
    hash: Option<String>,
}

/// Parse one file of ECAD's second layout, `watermark_v1/<chain_id>.json`: pkh → one mark
/// for all request kinds, ordered by (level, round, kind). Any kind may have been signed
/// up to that level, so every kind's watermark takes the whole level (ECAD's own migration
/// keeps only the mark's kind, which would let a block be signed again at that level).
pub fn parse_ecad_v1_chain_file(
    chain_id: ChainId,
    json: &str,
    origin: &str,
) -> Result<Vec<(WatermarkKey, Watermark)>, ImportError> {
    let file: BTreeMap<String, Option<EcadV1Mark>> = ecad_json(json, origin)?;
    let mut out = Vec::new();
    for (pkh, mark) in &file {
        let Some(mark) = mark else { continue };
        let pkh = parse_pkh(origin, pkh)?;
        if let Some(vh) = &mark.hash {
            ecad_hash(origin, vh)?;
        }
        for kind in [
            WatermarkKind::Block,
            WatermarkKind::Preattestation,
            WatermarkKind::Attestation,
        ] {
            out.push((
                WatermarkKey::new(chain_id, pkh, kind),
                Watermark {
                    level: mark.level,
                    round: i32::MAX,
                    request_hash: [0; 32],
                    signature: None,
                },
            ));
        }
    }
    Ok(merge_max(out))
}

type EcadParser = fn(ChainId, &str, &str) -> Result<Vec<(WatermarkKey, Watermark)>, ImportError>;

fn ecad_parser(dir_name: &str) -> Option<EcadParser> {
    match dir_name {
        ECAD_DIR => Some(parse_ecad_chain_file),
        ECAD_V1_DIR => Some(parse_ecad_v1_chain_file),
        ECAD_V0_DIR => Some(parse_ecad_v0_chain_file),
        _ => None,
    }
}

/// Read ECAD Signatory's file store: `dir` is its base directory, whose `watermark_v2/`,
/// `watermark_v1/` and `watermark/` are all read (the higher watermark wins), or one of
/// those directories itself.
pub fn read_ecad_dir(dir: &Path) -> Result<Vec<(WatermarkKey, Watermark)>, ImportError> {
    let named = dir
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| ecad_parser(n).is_some());
    let dirs: Vec<(PathBuf, &str)> = match named {
        Some(name) => vec![(dir.to_path_buf(), name)],
        None => ECAD_DIRS
            .iter()
            .map(|name| (dir.join(name), *name))
            .collect(),
    };
    let mut out = Vec::new();
    let mut found = false;
    for (wm_dir, name) in dirs {
        let Some(parse) = ecad_parser(name) else {
            continue;
        };
        let entries = match fs::read_dir(&wm_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error("list", &wm_dir)(e)),
        };
        for entry in entries {
            let path = entry.map_err(io_error("list", &wm_dir))?.path();
            let Some(chain) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            let origin = path.display().to_string();
            let chain_id = parse_chain(&origin, chain)?;
            let json = fs::read_to_string(&path).map_err(io_error("read", &path))?;
            out.extend(parse(chain_id, &json, &origin)?);
            found = true;
        }
    }
    if !found {
        return Err(ImportError::NothingFound {
            dir: dir.to_path_buf(),
            expected: ecad_expected_names(),
        });
    }
    Ok(merge_max(out))
}

/// The ECAD layouts, for messages that say what was expected.
pub fn ecad_expected_names() -> String {
    ECAD_DIRS.map(|d| format!("{d}/<chain_id>.json")).join(", ")
}

// ---------------------------------------------------------------------------------------
// Another signer's watermarks left in a base directory

/// The Octez files and ECAD Signatory's `watermark_v2/`, `watermark_v1/` or `watermark/`
/// (when it holds a `.json` file)
/// in `base_dir`: watermarks of a signer this one may replace in place. Anything that
/// cannot be examined counts as found, since callers refuse to start from zero on it.
pub fn find_foreign_watermarks(base_dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = OCTEZ_READ_FILES
        .iter()
        .map(|(_, name)| base_dir.join(name))
        .filter(
            |path| !matches!(fs::symlink_metadata(path), Err(e) if e.kind() == ErrorKind::NotFound),
        )
        .collect();
    for name in ECAD_DIRS {
        let ecad = base_dir.join(name);
        let has_chain_file = match fs::read_dir(&ecad) {
            Ok(mut entries) => entries.any(|entry| {
                entry.map_or(true, |e| {
                    e.path().extension().is_some_and(|ext| ext == "json")
                })
            }),
            Err(e) => e.kind() != ErrorKind::NotFound,
        };
        if has_chain_file {
            found.push(ecad);
        }
    }
    found
}

// ---------------------------------------------------------------------------------------
// Our interchange document

/// One watermark in an [`InterchangeDocument`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterchangeEntry {
    pub chain_id: ChainId,
    pub pkh: PublicKeyHash,
    pub kind: WatermarkKind,
    pub level: i32,
    pub round: i32,
    /// Hex of the Blake2b-256 of the request.
    pub request_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// The versioned export format of this signer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterchangeDocument {
    pub format: String,
    pub version: u32,
    pub watermarks: Vec<InterchangeEntry>,
}

impl InterchangeDocument {
    pub fn from_records(records: &[(WatermarkKey, Watermark)]) -> Self {
        InterchangeDocument {
            format: INTERCHANGE_FORMAT.to_string(),
            version: INTERCHANGE_VERSION,
            watermarks: records
                .iter()
                .map(|(key, mark)| InterchangeEntry {
                    chain_id: key.chain_id,
                    pkh: key.pkh,
                    kind: key.kind,
                    level: mark.level,
                    round: mark.round,
                    request_hash: hex::encode(mark.request_hash),
                    signature: mark.signature.clone(),
                })
                .collect(),
        }
    }

    /// The records, checked, merged by the higher watermark per key.
    pub fn into_records(self, origin: &str) -> Result<Vec<(WatermarkKey, Watermark)>, ImportError> {
        if self.format != INTERCHANGE_FORMAT {
            return Err(bad(
                origin,
                format!(
                    "format is {:?}, expected {INTERCHANGE_FORMAT:?}",
                    self.format
                ),
            ));
        }
        if self.version != INTERCHANGE_VERSION {
            return Err(bad(
                origin,
                format!(
                    "version {} is not supported (this signer reads version {INTERCHANGE_VERSION})",
                    self.version
                ),
            ));
        }
        let mut out = Vec::with_capacity(self.watermarks.len());
        for entry in self.watermarks {
            if let Some(signature) = &entry.signature {
                check_signature(origin, signature)?;
            }
            out.push((
                WatermarkKey::new(entry.chain_id, entry.pkh, entry.kind),
                Watermark {
                    level: entry.level,
                    round: entry.round,
                    request_hash: parse_hex_hash(origin, &entry.request_hash)?,
                    signature: entry.signature,
                },
            ));
        }
        Ok(merge_max(out))
    }
}

/// Serialise records as an interchange document.
pub fn to_interchange_json(records: &[(WatermarkKey, Watermark)]) -> Result<String, ImportError> {
    serde_json::to_string_pretty(&InterchangeDocument::from_records(records)).map_err(|source| {
        ImportError::Json {
            origin: "export".into(),
            format: "interchange",
            source,
        }
    })
}

/// Parse an interchange document.
pub fn from_interchange_json(
    json: &str,
    origin: &str,
) -> Result<Vec<(WatermarkKey, Watermark)>, ImportError> {
    let doc: InterchangeDocument =
        serde_json::from_str(json).map_err(|source| ImportError::Json {
            origin: origin.to_string(),
            format: "interchange",
            source,
        })?;
    doc.into_records(origin)
}

// ---------------------------------------------------------------------------------------
// Into a store

/// What [`import_into`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Keys the store had no watermark for.
    pub added: usize,
    /// Keys whose watermark was raised (or completed with a signature).
    pub raised: usize,
    /// Keys where the store already stood at or above the imported watermark.
    pub kept: usize,
}

/// Merge `records` into `store`, taking the higher watermark per key; never lowers one.
pub async fn import_into(
    store: &dyn WatermarkStore,
    records: Vec<(WatermarkKey, Watermark)>,
) -> Result<ImportReport, ImportError> {
    let mut report = ImportReport::default();
    for (key, mark) in merge_max(records) {
        let before = store.get(key).await?;
        if before.as_ref().is_some_and(|b| b.height() > mark.height()) {
            report.kept += 1;
            continue;
        }
        match store.set(key, mark, false).await {
            Ok(()) => {
                let after = store.get(key).await?;
                match before {
                    None => report.added += 1,
                    Some(b) if Some(&b) != after.as_ref() => report.raised += 1,
                    Some(_) => report.kept += 1,
                }
            }
            Err(StoreError::NotAbove { .. }) => report.kept += 1,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(report)
}
