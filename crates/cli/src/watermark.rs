//! `signatory watermark …`: create, inspect, override, export and import the high
//! watermarks of the file store.

use crate::error::CliError;
use crate::options::GlobalOptions;
use crate::watermark_store::{import_command, list_paths, open_file_store, StoreChoice};
use signatory_signer::store::{StoreError, WatermarkStore};
use signatory_signer::watermark::{Watermark, WatermarkKey};
use signatory_stores::interchange::{self, ImportReport, ECAD_DIRS, OCTEZ_READ_FILES};
use signatory_stores::FileStore;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use tezos_crypto::{ChainId, PublicKeyHash};
use tezos_encoding::WatermarkKind;

#[derive(Debug, clap::Subcommand)]
pub enum WatermarkCommand {
    /// Create an empty watermark store under the base directory.
    #[command(
        long_about = "Create an empty watermark store in <base_dir>/watermarks.\n\n\
        `serve` refuses to start without one, so a lost or moved store is never silently \
        replaced by an empty one. Refuses if a store already exists. If the keys have signed \
        before (with Octez or ECAD Signatory), import their watermarks right after.\n\n\
        Refuses, too, when the base directory holds another signer's watermarks (Octez \
        `*_high_watermarks` files or ECAD Signatory's `watermark_v2/`, `watermark_v1/` or \
        `watermark/`): starting from an \
        empty store there could sign again below them. Import them instead (`signatory \
        watermark import --from <base_dir>` creates the store), or pass --empty.\n\n\
        Example:\n  signatory watermark init -c /etc/signatory.yaml"
    )]
    Init(InitArgs),
    /// Print the current watermarks.
    #[command(
        long_about = "Print the current watermark of every chain, key and kind: the \
        highest level and round reserved for signing, and whether its signature is recorded.\n\n\
        Works beside a running signer: it then shows what the signer has committed.\n\n\
        Example:\n  signatory watermark show -c /etc/signatory.yaml --chain NetXdQprcVkpaWU"
    )]
    Show(ShowArgs),
    /// Set one watermark by hand (raise it; lowering needs --force).
    #[command(
        long_about = "Set the watermark of one chain, key and kind to a level and \
        round, e.g. after moving a baker from another signer. Requests at or below it are \
        then refused. Without --force the watermark can only be raised: lowering it can let \
        the key sign twice at a height and be slashed.\n\n\
        Example:\n  signatory watermark set -c /etc/signatory.yaml --chain NetXdQprcVkpaWU \\\n    \
        --key tz1… --kind block --level 8000000 --round 0"
    )]
    Set(SetArgs),
    /// Export the watermarks (this signer's JSON, or Octez files).
    #[command(
        long_about = "Export every watermark, in this signer's interchange JSON \
        (default; to standard output or -o FILE) or as Octez signer files \
        (`--format octez -o DIR` writes DIR/{block,preattestation,attestation}_high_watermarks, \
        the names current Octez reads, keeping any higher watermark already in that \
        directory). Works beside a running signer, as `show` does.\n\n\
        Example:\n  signatory watermark export -c /etc/signatory.yaml -o watermarks.json"
    )]
    Export(ExportArgs),
    /// Import watermarks from Octez, ECAD Signatory or an export; never lowers any.
    #[command(
        long_about = "Import watermarks into the store. --from takes a file exported by \
        `signatory watermark export`, an Octez signer base directory (its \
        `{block,preattestation,attestation}_high_watermarks` files, or the pre-v23 \
        `preendorsement_high_watermarks` and `endorsement_high_watermarks`), or an ECAD \
        Signatory base directory (its `watermark_v2/<chain>.json` files, and those of older \
        releases in `watermark_v1/` and `watermark/`); the format is detected. Per chain, key \
        and kind \
        the higher watermark wins: an import never lowers one. Creates the store if there is \
        none yet.\n\n\
        Example:\n  signatory watermark import -c /etc/signatory.yaml --from ~/.tezos-signer"
    )]
    Import(ImportArgs),
}

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Create the empty store even though the base directory holds another signer's
    /// watermarks; they are not imported. Only for keys that never signed with that
    /// signer: otherwise they may sign twice at a height and be slashed.
    #[arg(long)]
    pub empty: bool,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// Only this chain (`Net…`); repeat for several.
    #[arg(long = "chain", value_name = "CHAIN_ID", value_parser = parse_chain)]
    pub chains: Vec<ChainId>,
    /// Only this key (`tz…`); repeat for several.
    #[arg(long = "key", value_name = "PKH", value_parser = parse_pkh)]
    pub keys: Vec<PublicKeyHash>,
}

#[derive(Debug, clap::Args)]
pub struct SetArgs {
    /// The chain (`Net…`).
    #[arg(long, value_name = "CHAIN_ID", value_parser = parse_chain)]
    pub chain: ChainId,
    /// The key (`tz…`).
    #[arg(long, value_name = "PKH", value_parser = parse_pkh)]
    pub key: PublicKeyHash,
    /// `block`, `preattestation` or `attestation`.
    #[arg(long, value_name = "KIND", value_parser = parse_kind)]
    pub kind: WatermarkKind,
    /// The level signed up to.
    #[arg(long)]
    pub level: i32,
    /// The round at that level signed up to (0 for the first round).
    #[arg(long)]
    pub round: i32,
    /// Hex of the Blake2b-256 of the request signed at that height, if known. Without it
    /// no request matches, so every request at that exact height is refused.
    #[arg(long, value_name = "HEX", value_parser = parse_hash)]
    pub hash: Option<[u8; 32]>,
    /// Allow lowering or replacing the current watermark (risks double signing).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// This signer's versioned interchange JSON.
    Signatory,
    /// Octez signer `*_high_watermarks` files in a directory.
    Octez,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    #[arg(long, value_enum, default_value = "signatory")]
    pub format: ExportFormat,
    /// Output file (signatory format; default: standard output) or directory (octez).
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// An exported file, an Octez signer base directory, or an ECAD Signatory base
    /// directory (or one of its `watermark_v2`, `watermark_v1`, `watermark` directories).
    #[arg(long, value_name = "PATH")]
    pub from: PathBuf,
}

fn parse_chain(s: &str) -> Result<ChainId, String> {
    ChainId::from_b58check(s).map_err(|e| format!("not a chain id (Net…): {e}"))
}

fn parse_pkh(s: &str) -> Result<PublicKeyHash, String> {
    PublicKeyHash::from_b58check(s).map_err(|e| format!("not a key hash (tz1…tz4…): {e}"))
}

fn parse_kind(s: &str) -> Result<WatermarkKind, String> {
    WatermarkKind::parse(s)
        .ok_or_else(|| format!("`{s}` is not a watermark kind: block, preattestation, attestation"))
}

fn parse_hash(s: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(s).map_err(|e| format!("not hex: {e}"))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("must be 32 bytes (64 hex digits), found {}", b.len()))
}

/// Where the file store is: the configuration's base directory (or `--base-dir`).
fn store_base_dir(opts: &GlobalOptions) -> Result<PathBuf, CliError> {
    match opts.load_config_if_needed()? {
        Some(config) => match StoreChoice::from_config(&config)? {
            StoreChoice::File { base_dir } => Ok(base_dir),
            other => Err(CliError::NotAFileStore {
                driver: other.driver().to_owned(),
            }),
        },
        None => Ok(opts.base_dir.clone().unwrap_or_default()),
    }
}

/// Open the file store under `base_dir` (from [`store_base_dir`]) for a watermark command.
fn open_store(opts: &GlobalOptions, base_dir: &Path) -> Result<FileStore, CliError> {
    open_file_store(base_dir, &opts.store_flags()).map_err(|e| match e {
        CliError::StoreAtStart {
            source: source @ StoreError::Locked { .. },
            ..
        } => CliError::StoreAtStart {
            source,
            hint: "\n  a running signer holds it: stop the signer first, then run this command \
                   again"
                .to_owned(),
        },
        other => other,
    })
}

/// Every watermark of the store. When a running signer holds the store, what it has
/// committed, read beside it: reading needs no lock.
fn read_records(opts: &GlobalOptions) -> Result<Vec<(WatermarkKey, Watermark)>, CliError> {
    let base_dir = store_base_dir(opts)?;
    match open_store(opts, &base_dir) {
        Ok(store) => Ok(block_on(store.export())??),
        Err(CliError::StoreAtStart {
            source: StoreError::Locked { path },
            ..
        }) => {
            eprintln!(
                "a running signer holds {}: these are the watermarks it has committed so far",
                path.display()
            );
            Ok(FileStore::read_committed(&base_dir)?)
        }
        Err(e) => Err(e),
    }
}

/// Run a watermark command; what it prints goes to standard output.
pub fn run(command: &WatermarkCommand, opts: &GlobalOptions) -> Result<(), CliError> {
    match command {
        WatermarkCommand::Init(args) => init(args, opts),
        WatermarkCommand::Show(args) => {
            let records = read_records(opts)?;
            print!("{}", render_table(&filter(records, args)));
            Ok(())
        }
        WatermarkCommand::Set(args) => {
            let store = open_store(opts, &store_base_dir(opts)?)?;
            set(&store, args)
        }
        WatermarkCommand::Export(args) => {
            let records = read_records(opts)?;
            export(&records, args)
        }
        WatermarkCommand::Import(args) => {
            let (records, format) = read_import(&args.from)?;
            // Importing into a new store is how a signer replaced in place starts.
            let base_dir = store_base_dir(opts)?;
            match FileStore::init(&base_dir) {
                Ok(()) => println!(
                    "created the watermark store in {}",
                    FileStore::store_dir(&base_dir).display()
                ),
                Err(StoreError::AlreadyInitialised { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            let store = open_store(opts, &base_dir)?;
            let count = records.len();
            let report = block_on(interchange::import_into(&store, records))??;
            println!("{}", import_summary(&args.from, format, count, report));
            Ok(())
        }
    }
}

fn init(args: &InitArgs, opts: &GlobalOptions) -> Result<(), CliError> {
    let base_dir = store_base_dir(opts)?;
    let foreign = interchange::find_foreign_watermarks(&base_dir);
    // With a store already there, init's own refusal is the accurate one.
    if !args.empty && !foreign.is_empty() && !FileStore::store_dir(&base_dir).exists() {
        return Err(CliError::ForeignWatermarks {
            base_dir: base_dir.clone(),
            found: list_paths(&foreign),
            import: import_command(&opts.store_flags(), &base_dir),
            init_empty: format!("signatory watermark init{} --empty", opts.store_flags()),
        });
    }
    FileStore::init(&base_dir)?;
    println!(
        "created an empty watermark store in {}",
        FileStore::store_dir(&base_dir).display()
    );
    println!(
        "if these keys have signed before, import their watermarks now: {}",
        import_command(&opts.store_flags(), Path::new("<dir>"))
    );
    Ok(())
}

/// Run one future to completion on a small runtime (the store's calls are async).
fn block_on<F: std::future::Future>(future: F) -> Result<F::Output, CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    Ok(runtime.block_on(future))
}

fn filter(
    records: Vec<(WatermarkKey, Watermark)>,
    args: &ShowArgs,
) -> Vec<(WatermarkKey, Watermark)> {
    let chains: BTreeSet<ChainId> = args.chains.iter().copied().collect();
    let keys: BTreeSet<PublicKeyHash> = args.keys.iter().copied().collect();
    records
        .into_iter()
        .filter(|(k, _)| chains.is_empty() || chains.contains(&k.chain_id))
        .filter(|(k, _)| keys.is_empty() || keys.contains(&k.pkh))
        .collect()
}

/// One line per watermark, aligned; `(none)` when there is nothing to show.
pub fn render_table(records: &[(WatermarkKey, Watermark)]) -> String {
    if records.is_empty() {
        return "(no watermarks)\n".to_owned();
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<15}  {:<36}  {:<14}  {:>10}  {:>5}  SIGNATURE",
        "CHAIN", "KEY", "KIND", "LEVEL", "ROUND"
    );
    for (key, mark) in records {
        let round = if mark.round == i32::MAX {
            // Imported without a round: the whole level is taken.
            "any".to_owned()
        } else {
            mark.round.to_string()
        };
        let _ = writeln!(
            out,
            "{:<15}  {:<36}  {:<14}  {:>10}  {:>5}  {}",
            key.chain_id.to_b58check(),
            key.pkh.to_b58check(),
            key.kind.as_str(),
            mark.level,
            round,
            if mark.signature.is_some() {
                "recorded"
            } else {
                "none (reserved)"
            }
        );
    }
    out
}

fn set(store: &FileStore, args: &SetArgs) -> Result<(), CliError> {
    let key = WatermarkKey::new(args.chain, args.key, args.kind);
    let mark = Watermark {
        level: args.level,
        round: args.round,
        request_hash: args.hash.unwrap_or([0; 32]),
        signature: None,
    };
    block_on(async {
        let before = store.get(key).await?;
        store.set(key, mark.clone(), args.force).await?;
        let lowered = before.as_ref().is_some_and(|b| b.height() > mark.height());
        match before {
            Some(before) => println!(
                "{key}: {} -> {}{}",
                before.height(),
                mark.height(),
                if lowered {
                    " (LOWERED with --force)"
                } else {
                    ""
                }
            ),
            None => println!("{key}: set to {}", mark.height()),
        }
        Ok(())
    })?
}

fn export(records: &[(WatermarkKey, Watermark)], args: &ExportArgs) -> Result<(), CliError> {
    match (args.format, &args.output) {
        (ExportFormat::Signatory, None) => {
            println!("{}", interchange::to_interchange_json(records)?);
            Ok(())
        }
        (ExportFormat::Signatory, Some(path)) => {
            let json = interchange::to_interchange_json(records)?;
            std::fs::write(path, format!("{json}\n")).map_err(CliError::io("write", path))?;
            eprintln!(
                "exported {} watermarks to {}",
                records.len(),
                path.display()
            );
            Ok(())
        }
        (ExportFormat::Octez, Some(dir)) => {
            let written = interchange::write_octez_dir(dir, records)?;
            for path in &written {
                eprintln!("wrote {}", path.display());
            }
            if written.is_empty() {
                eprintln!("no watermarks to export");
            }
            Ok(())
        }
        (ExportFormat::Octez, None) => Err(CliError::Usage(
            "--format octez writes one file per kind: give the directory with -o DIR".into(),
        )),
    }
}

/// Formats an import can come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    Signatory,
    Octez,
    Ecad,
    OctezAndEcad,
}

impl ImportFormat {
    fn describe(self) -> &'static str {
        match self {
            ImportFormat::Signatory => "Signatory export",
            ImportFormat::Octez => "Octez signer files",
            ImportFormat::Ecad => "ECAD Signatory watermark files",
            ImportFormat::OctezAndEcad => "Octez signer and ECAD Signatory files",
        }
    }
}

/// Read the records at `from`, detecting the format.
pub fn read_import(
    from: &Path,
) -> Result<(Vec<(WatermarkKey, Watermark)>, ImportFormat), CliError> {
    let meta = std::fs::metadata(from).map_err(CliError::io("read", from))?;
    if !meta.is_dir() {
        let json = std::fs::read_to_string(from).map_err(CliError::io("read", from))?;
        let records = interchange::from_interchange_json(&json, &from.display().to_string())?;
        return Ok((records, ImportFormat::Signatory));
    }
    let has_octez = OCTEZ_READ_FILES
        .iter()
        .any(|(_, name)| from.join(name).is_file());
    let has_ecad = ECAD_DIRS
        .iter()
        .any(|dir| from.join(dir).is_dir() || from.file_name().is_some_and(|n| n == *dir));
    let mut records = Vec::new();
    if has_octez {
        records.extend(interchange::read_octez_dir(from)?);
    }
    if has_ecad {
        records.extend(interchange::read_ecad_dir(from)?);
    }
    let format = match (has_octez, has_ecad) {
        (true, true) => ImportFormat::OctezAndEcad,
        (true, false) => ImportFormat::Octez,
        (false, true) => ImportFormat::Ecad,
        (false, false) => {
            return Err(CliError::Usage(format!(
                "no watermarks found in {}: expected Octez files ({}) or ECAD Signatory's \
                 {}",
                from.display(),
                interchange::octez_expected_names(),
                interchange::ecad_expected_names()
            )))
        }
    };
    Ok((interchange::merge_max(records), format))
}

fn import_summary(from: &Path, format: ImportFormat, count: usize, report: ImportReport) -> String {
    format!(
        "imported {count} watermarks from {} ({}): {} added, {} raised, {} kept (the store was \
         already at or above them)",
        from.display(),
        format.describe(),
        report.added,
        report.raised,
        report.kept
    )
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;
    use tezos_crypto::Curve;

    fn key(n: u8, kind: WatermarkKind) -> WatermarkKey {
        WatermarkKey::new(
            ChainId([0x7a, 0x06, 0xa7, 0x70]),
            PublicKeyHash::new(Curve::Ed25519, [n; 20]),
            kind,
        )
    }

    fn mark(level: i32, round: i32) -> Watermark {
        Watermark {
            level,
            round,
            request_hash: [1; 32],
            signature: None,
        }
    }

    #[test]
    fn the_table_has_one_line_per_watermark_and_says_when_empty() {
        assert_eq!(render_table(&[]), "(no watermarks)\n");
        let table = render_table(&[
            (key(1, WatermarkKind::Block), mark(100, 2)),
            (key(2, WatermarkKind::Attestation), mark(7, i32::MAX)),
        ]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[1].contains("NetXdQprcVkpaWU"), "{table}");
        assert!(lines[1].contains(" block "), "{table}");
        assert!(lines[1].contains("100"), "{table}");
        assert!(lines[2].contains("any"), "{table}");
    }

    #[test]
    fn show_filters_by_chain_and_key() {
        let records = vec![
            (key(1, WatermarkKind::Block), mark(1, 0)),
            (key(2, WatermarkKind::Block), mark(2, 0)),
        ];
        let args = ShowArgs {
            chains: vec![],
            keys: vec![key(2, WatermarkKind::Block).pkh],
        };
        let shown = filter(records.clone(), &args);
        assert_eq!(shown.len(), 1);
        assert_eq!(shown[0].1.level, 2);
        let other_chain = ShowArgs {
            chains: vec![ChainId([0; 4])],
            keys: vec![],
        };
        assert!(filter(records, &other_chain).is_empty());
    }

    #[test]
    fn an_empty_directory_is_no_known_format() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_import(dir.path()).unwrap_err().to_string();
        assert!(e.contains("no watermarks found"), "{e}");
        assert!(e.contains("block_high_watermarks"), "{e}");
        assert!(e.contains("endorsement_high_watermarks"), "{e}");
    }
}
