//! `twokey report access`: the auditor's evidence report of a period,
//! through the API (`GET /v1/reports/access`) or, with `--database`,
//! straight from the database for an auditor without the server (then
//! `--public-key` also checks the checkpoints' signatures). Exits 1 when
//! the report finds the stored entries do not match the signed checkpoints
//! (the report is still written, with those rows marked).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::Value;
use twokey_server::report::{self, Period, ReportFormat};
use twokey_store::Store;

use crate::client::Client;

/// `twokey report ...`.
#[derive(Subcommand, Debug)]
pub(crate) enum ReportCmd {
    /// Every request and grant, policy change and posture change of a period,
    /// each row with its ledger indexes and checkpoint.
    Access(AccessArgs),
}

/// `twokey report access` options.
#[derive(Args, Debug)]
pub(crate) struct AccessArgs {
    /// Start of the period, RFC 3339 (`2026-01-01T00:00:00Z`), inclusive.
    #[arg(long)]
    from: String,
    /// End of the period, RFC 3339, inclusive.
    #[arg(long)]
    to: String,
    /// `json`, `csv` or `html`.
    #[arg(long, default_value = "json")]
    format: String,
    /// Write the report here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Build it from this database (`sqlite://PATH`, `postgres://...`)
    /// instead of asking the server.
    #[arg(long)]
    database: Option<String>,
    /// With `--database`: the ledger's public key (string or file), to check
    /// the checkpoints' signatures too.
    #[arg(long, requires = "database")]
    public_key: Option<String>,
}

/// Runs one `twokey report` command; returns the exit code.
pub(crate) async fn run(cmd: ReportCmd, client: &Client) -> anyhow::Result<i32> {
    let ReportCmd::Access(a) = cmd;
    let format = ReportFormat::parse(Some(&a.format)).map_err(anyhow::Error::msg)?;
    let period = Period::parse(&a.from, &a.to).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (text, integrity): (String, Option<report::Integrity>) = if let Some(url) = &a.database {
        let store = Store::open(url)
            .await
            .with_context(|| format!("cannot open {url}"))?;
        let key = a
            .public_key
            .as_deref()
            .map(crate::audit::read_key)
            .transpose()?;
        let r = report::load(&store, period, key.as_ref()).await?;
        let (_, text) = format.render(&r).map_err(anyhow::Error::msg)?;
        (text, Some(r.integrity))
    } else {
        let mut u = reqwest::Url::parse("http://twokey/v1/reports/access")?;
        u.query_pairs_mut()
            .append_pair("from", &a.from)
            .append_pair("to", &a.to)
            .append_pair("format", format.extension());
        let path = format!("{}?{}", u.path(), u.query().unwrap_or_default());
        match client.call(Method::GET, &path, None).await? {
            Value::String(s) => (s, None),
            v => {
                let integrity = serde_json::from_value(v["integrity"].clone()).ok();
                (serde_json::to_string_pretty(&v)?, integrity)
            }
        }
    };
    match &a.out {
        Some(p) => {
            std::fs::write(p, &text).with_context(|| format!("cannot write {}", p.display()))?
        }
        None => print!("{text}"),
    }
    // CSV and HTML from the server carry the check in their rows only.
    if let Some(i) = integrity.filter(|i| !i.ok) {
        eprintln!(
            "WARNING: the stored ledger does not match its signed checkpoints; rows from index {} on cannot be relied on:",
            i.unconfirmed_from.unwrap_or(0)
        );
        for p in &i.problems {
            eprintln!("  {p}");
        }
        return Ok(1);
    }
    Ok(0)
}
