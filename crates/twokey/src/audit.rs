//! `twokey audit`: the ledger for auditors (public key, verify, prove, show)
//! and the wiring of the server's checkpointer.
//!
//! `verify` exits 0 only when everything verified; otherwise it prints the
//! first bad entry and why on stderr and exits 1. For `--database` every
//! entry is rebuilt from its row's columns and re-hashed: the stored
//! `leaf_hash` column and `ledger_head` are only compared, never trusted.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use reqwest::Method;
use twokey_ledger::checkpoint::load_key_file;
use twokey_ledger::merkle::hash_leaf;
use twokey_ledger::{
    bundle, Hash, InclusionProof, LedgerEntry, LogVerifier, NoteVerifier, Summary,
};
use twokey_server::checkpoints::{
    load_key, parse_interval, BundleSink, CheckpointOptions, Checkpointer, DirBundleSink,
    LedgerConfig, LedgerSinkConfig,
};
use twokey_store::Store;

use crate::client::Client;

/// `twokey audit ...`.
#[derive(Subcommand, Debug)]
pub(crate) enum AuditCmd {
    /// Print the ledger's public key (what auditors verify with).
    PublicKey(PublicKeyArgs),
    /// Verify a ledger: the live database, a bundle directory or an S3 prefix.
    Verify(VerifyArgs),
    /// Print an inclusion proof of one entry against the latest checkpoint.
    Prove {
        /// Entry index.
        index: u64,
        /// Database URL.
        #[arg(long)]
        database: String,
        /// Also write `proof`, `entry.json` and `checkpoint` into this directory
        /// (inputs of `twokey audit verify-proof`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Verify an inclusion proof offline.
    VerifyProof {
        /// Proof file (`twokey audit prove` output).
        #[arg(long)]
        proof: PathBuf,
        /// The entry's canonical bytes (one NDJSON line).
        #[arg(long)]
        entry: PathBuf,
        /// Signed checkpoint note of the proof's size.
        #[arg(long)]
        checkpoint: PathBuf,
        /// Public key string, or a file holding it.
        #[arg(long)]
        public_key: String,
    },
    /// Print ledger entries.
    Show {
        /// First index.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// How many.
        #[arg(long, default_value_t = 100)]
        limit: u64,
        /// Read the database directly instead of the server API.
        #[arg(long)]
        database: Option<String>,
    },
    /// Print the latest ledger entries.
    Tail {
        /// How many.
        #[arg(long, short = 'n', default_value_t = 20)]
        limit: u64,
        /// Read the database directly instead of the server API.
        #[arg(long)]
        database: Option<String>,
    },
}

/// `twokey audit public-key` options.
#[derive(Args, Debug)]
pub(crate) struct PublicKeyArgs {
    /// The signing key file.
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Server config (its `[ledger] key_file`, default `ledger.key` beside it).
    #[arg(long, conflicts_with = "key_file")]
    config: Option<PathBuf>,
    /// Dev data dir (`DATA_DIR/ledger.key`).
    #[arg(long, conflicts_with_all = ["key_file", "config"])]
    data_dir: Option<PathBuf>,
}

/// `twokey audit verify` options.
#[derive(Args, Debug)]
pub(crate) struct VerifyArgs {
    /// Verify the live database (`sqlite://PATH`, `postgres://...`).
    #[arg(long, group = "source")]
    database: Option<String>,
    /// Verify a bundle directory.
    #[arg(long, group = "source")]
    bundle: Option<PathBuf>,
    /// Verify bundles under `s3://bucket/prefix`.
    #[arg(long, group = "source")]
    s3: Option<String>,
    /// S3 endpoint (S3-compatible stores, moto in tests).
    #[arg(long, requires = "s3")]
    endpoint_url: Option<String>,
    /// S3 region.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// The log's public key string, or a file holding it.
    #[arg(long)]
    public_key: String,
    /// A checkpoint held elsewhere: the log must extend it.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
}

/// The S3 Object Lock sink as the server's async bundle sink.
struct S3BundleSink(twokey_ledger_s3::S3Sink);

impl BundleSink for S3BundleSink {
    fn name(&self) -> String {
        self.0.name()
    }
    fn publish<'a>(
        &'a self,
        bundle: &'a twokey_ledger::Bundle,
    ) -> twokey_server::checkpoints::BoxFuture<'a, Result<(), twokey_ledger::bundle::SinkError>>
    {
        Box::pin(self.0.publish(bundle))
    }
}

/// Builds the server's checkpointer from `[ledger]`.
pub(crate) async fn checkpointer(
    cfg: &LedgerConfig,
    key_default: &Path,
    store: Store,
    clock: Arc<dyn twokey_server::Clock>,
) -> anyhow::Result<Checkpointer> {
    let origin = cfg.origin.clone().unwrap_or_else(|| "twokey/ledger".into());
    let key_path = cfg
        .key_file
        .as_ref()
        .map(PathBuf::from)
        .unwrap_or_else(|| key_default.to_path_buf());
    let signer = load_key(&key_path, &origin)
        .with_context(|| format!("ledger key {}", key_path.display()))?;
    let mut sinks: Vec<Arc<dyn BundleSink>> = Vec::new();
    for s in &cfg.sink {
        match s {
            LedgerSinkConfig::Dir { path } => sinks.push(Arc::new(DirBundleSink::new(path))),
            LedgerSinkConfig::S3 {
                bucket,
                prefix,
                region,
                endpoint_url,
                retention_days,
            } => {
                let loc = twokey_ledger_s3::S3Location {
                    bucket: bucket.clone(),
                    prefix: prefix.clone(),
                    region: region.clone(),
                    endpoint_url: endpoint_url.clone(),
                };
                sinks.push(Arc::new(S3BundleSink(
                    twokey_ledger_s3::S3Sink::new(loc, *retention_days).await,
                )))
            }
        }
    }
    let opts = CheckpointOptions {
        origin,
        every: cfg.checkpoint_every.max(1),
        interval: parse_interval(&cfg.checkpoint_interval)?,
        ..Default::default()
    };
    let c = Checkpointer::new(store, signer, sinks, clock, opts);
    tracing::info!(public_key = %c.public_key(), "ledger checkpoints signed by");
    Ok(c)
}

/// Runs one `twokey audit` command; returns the exit code.
pub(crate) async fn run(cmd: AuditCmd, server: &str, token: Option<&str>) -> anyhow::Result<i32> {
    match cmd {
        AuditCmd::PublicKey(a) => public_key(&a),
        AuditCmd::Verify(a) => verify(&a).await,
        AuditCmd::Prove {
            index,
            database,
            out,
        } => prove(index, &database, out.as_deref()).await,
        AuditCmd::VerifyProof {
            proof,
            entry,
            checkpoint,
            public_key,
        } => verify_proof(&proof, &entry, &checkpoint, &public_key),
        AuditCmd::Show {
            from,
            limit,
            database,
        } => show(server, token, database.as_deref(), Some(from), limit).await,
        AuditCmd::Tail { limit, database } => {
            show(server, token, database.as_deref(), None, limit).await
        }
    }
}

fn public_key(a: &PublicKeyArgs) -> anyhow::Result<i32> {
    let path = if let Some(p) = &a.key_file {
        p.clone()
    } else if let Some(cfg) = &a.config {
        let text = std::fs::read_to_string(cfg)
            .with_context(|| format!("cannot read {}", cfg.display()))?;
        let c = twokey_server::config::Config::parse(&text, &cfg.display().to_string())
            .map_err(anyhow::Error::msg)?;
        match c.ledger.key_file {
            Some(k) => PathBuf::from(k),
            None => cfg
                .parent()
                .map(|d| d.join("ledger.key"))
                .unwrap_or_else(|| PathBuf::from("ledger.key")),
        }
    } else if let Some(d) = &a.data_dir {
        d.join("ledger.key")
    } else {
        PathBuf::from(".twokey-dev/ledger.key")
    };
    let signer = load_key_file(&path)?;
    println!("{}", signer.verifier());
    Ok(0)
}

pub(crate) fn read_key(s: &str) -> anyhow::Result<NoteVerifier> {
    let text = if Path::new(s).is_file() {
        std::fs::read_to_string(s).with_context(|| format!("cannot read {s}"))?
    } else {
        s.to_string()
    };
    NoteVerifier::parse(text.trim()).map_err(|e| anyhow::anyhow!("public key: {e}"))
}

async fn verify(a: &VerifyArgs) -> anyhow::Result<i32> {
    let key = read_key(&a.public_key)?;
    let trusted = match &a.checkpoint {
        Some(p) => Some(
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        ),
        None => None,
    };
    let result = if let Some(url) = &a.database {
        verify_database(url, &key, trusted.as_deref()).await
    } else if let Some(dir) = &a.bundle {
        bundle::verify_bundle_dir(dir, &key, trusted.as_deref()).map_err(|e| e.to_string())
    } else if let Some(url) = &a.s3 {
        let mut loc = twokey_ledger_s3::S3Location::parse_url(url).map_err(anyhow::Error::msg)?;
        loc.endpoint_url = a.endpoint_url.clone();
        loc.region = Some(a.region.clone());
        twokey_ledger_s3::verify_s3(&loc, &key, trusted.as_deref())
            .await
            .map_err(|e| e.to_string())
    } else {
        bail!("give one of --database URL, --bundle DIR, --s3 s3://bucket/prefix")
    };
    match result {
        Ok(s) => {
            println!("{}", describe(&s, &key));
            Ok(0)
        }
        Err(e) => {
            eprintln!("VERIFICATION FAILED: {e}");
            Ok(1)
        }
    }
}

fn describe(s: &Summary, key: &NoteVerifier) -> String {
    let mut out = format!(
        "ok: {} entries; {} signed checkpoint(s) by {} verified (latest size {})",
        s.entries,
        s.checkpoints_verified,
        key.name(),
        s.latest_checkpoint_size
    );
    if s.trusted_verified {
        out.push_str("; the log extends the trusted checkpoint");
    }
    if s.entries > s.latest_checkpoint_size {
        out.push_str(&format!(
            "; {} entries after the latest checkpoint are checked for order only (not signed yet)",
            s.entries - s.latest_checkpoint_size
        ));
    }
    out
}

/// Rows read per query when verifying a database.
const PAGE: i64 = 20_000;

async fn verify_database(
    url: &str,
    key: &NoteVerifier,
    trusted: Option<&str>,
) -> Result<Summary, String> {
    let store = Store::open(url)
        .await
        .map_err(|e| format!("cannot open {url}: {e}"))?;
    let cps = store.checkpoints().await.map_err(|e| e.to_string())?;
    let notes: Vec<(String, String)> = cps
        .iter()
        .map(|c| (format!("checkpoint row size {}", c.size), c.note.clone()))
        .collect();
    for c in &cps {
        // The size column is only an index; the signed note is what counts.
        if let Ok(cp) = key.verify_checkpoint(&c.note) {
            if cp.size != c.size {
                return Err(format!(
                    "checkpoint row size {}: its signed note is for size {}",
                    c.size, cp.size
                ));
            }
        }
    }
    let mut v = LogVerifier::new(key, &notes, trusted).map_err(|e| e.to_string())?;
    let mut first_stale: Option<i64> = None;
    let hint = |e: String, stale: Option<i64>| {
        match stale {
        Some(i) => format!(
            "{e}\n  hint: entry {i} is the first row whose content no longer matches the leaf_hash stored when it was written"
        ),
        None => e,
    }
    };
    let mut from = 0i64;
    loop {
        let rows = store
            .ledger_raw(from, PAGE)
            .await
            .map_err(|e| format!("reading entries from {from}: {e}"))?;
        let Some(last) = rows.last() else { break };
        from = last.idx.saturating_add(1);
        for r in &rows {
            let entry = r
                .to_entry()
                .map_err(|m| hint(format!("entry {}: {m}", r.idx), first_stale.or(Some(r.idx))))?;
            let bytes = entry.encode();
            let leaf = hash_leaf(&bytes);
            if first_stale.is_none() && hex::encode(leaf) != r.leaf_hash {
                first_stale = Some(r.idx);
            }
            v.push_leaf(entry.index, leaf, bytes.len() as u64)
                .map_err(|e| hint(e.to_string(), first_stale))?;
        }
    }
    let s = v.finish().map_err(|e| hint(e.to_string(), first_stale))?;
    if let Some(i) = first_stale {
        return Err(format!(
            "entry {i}: its stored leaf_hash does not match its content (the row was edited after it was written)"
        ));
    }
    let head = store
        .ledger_root()
        .await
        .map_err(|e| format!("ledger_head: {e}"))?;
    if head.size != s.entries || head.root != s.root {
        return Err(format!(
            "ledger_head says {} entries with root {}, but the entries give {} with root {}: entries were deleted, added or changed after the last checkpoint",
            head.size,
            b64(&head.root),
            s.entries,
            b64(&s.root)
        ));
    }
    Ok(s)
}

fn b64(h: &Hash) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(h)
}

async fn prove(index: u64, url: &str, out: Option<&Path>) -> anyhow::Result<i32> {
    let store = Store::open(url).await?;
    let cps = store.checkpoints().await?;
    let Some(cp) = cps.iter().rev().find(|c| c.size > index) else {
        bail!(
            "no checkpoint covers entry {index} yet (latest: {}); wait for the next one",
            cps.last().map_or(0, |c| c.size)
        )
    };
    let mut leaves: Vec<Hash> = Vec::with_capacity(cp.size as usize);
    let mut entry: Option<LedgerEntry> = None;
    let mut from = 0i64;
    while (leaves.len() as u64) < cp.size {
        let rows = store.ledger_raw(from, PAGE).await?;
        let Some(last) = rows.last() else { break };
        from = last.idx.saturating_add(1);
        for r in rows {
            if leaves.len() as u64 >= cp.size {
                break;
            }
            let e = r
                .to_entry()
                .map_err(|m| anyhow::anyhow!("entry {}: {m}", r.idx))?;
            if e.index != leaves.len() as u64 {
                bail!(
                    "entry {}: missing (run `twokey audit verify`)",
                    leaves.len()
                );
            }
            leaves.push(e.leaf_hash());
            if e.index == index {
                entry = Some(e);
            }
        }
    }
    let Some(entry) = entry else {
        bail!("entry {index} not found")
    };
    let proof = InclusionProof::new(&leaves, index, cp.size)
        .map_err(|e| anyhow::anyhow!("cannot build the proof: {e}"))?;
    let bytes = entry.encode();
    let parsed = twokey_ledger::checkpoint::SignedNote::parse(&cp.note)
        .map_err(|e| anyhow::anyhow!("stored checkpoint {}: {e}", cp.size))?;
    let body = twokey_ledger::Checkpoint::parse_body(&parsed.body)
        .map_err(|e| anyhow::anyhow!("stored checkpoint {}: {e}", cp.size))?;
    proof
        .verify(&bytes, &body)
        .map_err(|e| anyhow::anyhow!("the database does not match its own checkpoint: {e}"))?;
    print!("{}", proof.to_text());
    if let Some(dir) = out {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("proof"), proof.to_text())?;
        let mut line = bytes.clone();
        line.push(b'\n');
        std::fs::write(dir.join("entry.json"), line)?;
        std::fs::write(dir.join("checkpoint"), &cp.note)?;
        eprintln!(
            "wrote {0}/proof, {0}/entry.json, {0}/checkpoint; check with: twokey audit verify-proof --proof {0}/proof --entry {0}/entry.json --checkpoint {0}/checkpoint --public-key KEY",
            dir.display()
        );
    }
    Ok(0)
}

fn verify_proof(proof: &Path, entry: &Path, checkpoint: &Path, key: &str) -> anyhow::Result<i32> {
    let key = read_key(key)?;
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
    let proof_text = String::from_utf8(read(proof)?).context("proof is not UTF-8")?;
    let proof = InclusionProof::parse(&proof_text).map_err(|e| anyhow::anyhow!("proof: {e}"))?;
    let mut bytes = read(entry)?;
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    let note = String::from_utf8(read(checkpoint)?).context("checkpoint is not UTF-8")?;
    let cp = match key.verify_checkpoint(&note) {
        Ok(cp) => cp,
        Err(e) => {
            eprintln!("VERIFICATION FAILED: checkpoint: {e}");
            return Ok(1);
        }
    };
    match proof.verify(&bytes, &cp) {
        Ok(()) => {
            println!(
                "ok: entry {} is in the log {} of size {} signed by {}",
                proof.index,
                cp.origin,
                cp.size,
                key.name()
            );
            Ok(0)
        }
        Err(e) => {
            eprintln!("VERIFICATION FAILED: entry {}: {e}", proof.index);
            Ok(1)
        }
    }
}

fn print_entry(e: &LedgerEntry) {
    println!(
        "#{:<6} {}  {:<24} {:<28} {}  {}",
        e.index,
        e.time_ms,
        e.kind,
        e.actor,
        e.subject,
        serde_json::to_string(&e.data).unwrap_or_default()
    );
}

async fn show(
    server: &str,
    token: Option<&str>,
    database: Option<&str>,
    from: Option<u64>,
    limit: u64,
) -> anyhow::Result<i32> {
    let entries: Vec<LedgerEntry> = if let Some(url) = database {
        let store = Store::open(url).await?;
        let from = match from {
            Some(f) => f,
            None => store.ledger_head().await?.size.saturating_sub(limit),
        };
        store
            .ledger(from, limit.min(i64::MAX as u64) as i64)
            .await?
    } else {
        let client = Client::new(server, token.map(String::from));
        let fetch = |from: u64, n: u64| {
            let client = &client;
            async move {
                let v = client
                    .call(
                        Method::GET,
                        &format!("/v1/ledger?from={from}&limit={n}"),
                        None,
                    )
                    .await?;
                serde_json::from_value::<Vec<LedgerEntry>>(v)
                    .map_err(|e| anyhow::anyhow!("unexpected /v1/ledger answer: {e}"))
            }
        };
        match from {
            Some(f) => {
                let mut out = Vec::new();
                let mut next = f;
                while (out.len() as u64) < limit {
                    let page = fetch(next, (limit - out.len() as u64).min(1000)).await?;
                    let Some(last) = page.last() else { break };
                    next = last.index + 1;
                    out.extend(page);
                }
                out
            }
            None => {
                // Walk to the end, keeping the last `limit`.
                let mut out: std::collections::VecDeque<LedgerEntry> = Default::default();
                let mut next = 0;
                loop {
                    let page = fetch(next, 1000).await?;
                    let Some(last) = page.last() else { break };
                    next = last.index + 1;
                    let n = page.len();
                    out.extend(page);
                    while out.len() as u64 > limit {
                        out.pop_front();
                    }
                    if n < 1000 {
                        break;
                    }
                }
                out.into()
            }
        }
    };
    for e in &entries {
        print_entry(e);
    }
    Ok(0)
}
