//! `twokey who-can ACTION [RESOURCE]`: every principal that can do the
//! action without a twokey grant, with the path of who-becomes-whom and the
//! statement allowing each step, over saved authorization details (one file
//! per account), recorded posture facts, or the calling account (`--live`).
//! The graph and the evaluation are `twokey_iam::graph`'s.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use twokey_iam::graph::{AccountInput, Graph, HighRisk, Standing, Twokey};
use twokey_iam::AuthDetails;

/// Arguments of `twokey who-can`.
#[derive(clap::Args, Debug)]
pub(crate) struct WhoCanArgs {
    /// `service:Action`.
    action: String,
    /// The resource ARN; default `*`: any resource.
    #[arg(default_value = "*")]
    resource: String,
    /// The output of `aws iam get-account-authorization-details`, one per
    /// account (repeatable).
    #[arg(long = "auth-details", value_name = "FILE")]
    auth_details: Vec<PathBuf>,
    /// Posture facts (`twokey posture aws --save-facts`): every account's
    /// details, SCPs, log-bucket policies and twokey's targets.
    #[arg(long, conflicts_with_all = ["auth_details", "live"])]
    facts: Option<PathBuf>,
    /// Read the calling account's details now (default credentials).
    #[arg(long, conflicts_with = "auth_details")]
    live: bool,
    /// Endpoint override for `--live` (moto, a VPC endpoint).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    endpoint_url: Option<String>,
    /// Region for `--live`.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    region: String,
    /// The twokey policy: its `aws_iam_assume` targets are reached through
    /// a grant, its `assume_role_arn`s are twokey's own.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// A role twokey grants (repeatable).
    #[arg(long = "twokey-target", value_name = "ARN")]
    twokey_target: Vec<String>,
    /// A principal twokey runs as (repeatable).
    #[arg(long = "twokey-gateway", value_name = "ARN")]
    twokey_gateway: Vec<String>,
}

/// Prints the answer; exit code 0 when TPI-clean, 1 when someone can do it
/// alone.
pub(crate) async fn run(args: &WhoCanArgs, json: bool) -> anyhow::Result<i32> {
    let mut twokey = Twokey {
        targets: args.twokey_target.clone(),
        gateway: args.twokey_gateway.clone(),
    };
    if let Some(p) = &args.policy {
        for t in twokey_posture::cli::policy_targets(p)? {
            twokey.targets.push(t.role_arn.clone());
            twokey.gateway.extend(t.connection.assume_role_arn.clone());
        }
    }
    let now = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now());
    let graph = if let Some(f) = &args.facts {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        let mut facts: twokey_posture::facts::Facts = serde_json::from_str(&text)
            .with_context(|| format!("{}: not posture facts", f.display()))?;
        facts.twokey_gateway.extend(twokey.gateway.clone());
        for t in &twokey.targets {
            facts
                .twokey_targets
                .push(twokey_posture::facts::AssumeTarget {
                    entitlement: "--twokey-target".into(),
                    role_arn: t.clone(),
                    principals: vec![],
                    trust: twokey_posture::facts::Collected::Ok(String::new()),
                });
        }
        let (g, errors) = twokey_posture::checks::iam_standing_access::graph(&facts);
        for (account, e) in &errors {
            eprintln!("warning: account {account} left out: {e}");
        }
        g.context("no account of the facts has authorization details")?
    } else {
        let mut inputs = Vec::new();
        if args.live {
            let conn = twokey_aws::client::Connection {
                region: Some(args.region.clone()),
                endpoint_url: args.endpoint_url.clone(),
                ..Default::default()
            };
            let (account, v) = twokey_posture::collect::authorization_details(&conn).await?;
            inputs.push(AccountInput {
                details: AuthDetails::parse(&v.to_string())?,
                account,
                scps: vec![],
            });
        }
        for f in &args.auth_details {
            let text =
                std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            let details = AuthDetails::parse(&text).with_context(|| f.display().to_string())?;
            inputs.push(AccountInput {
                account: String::new(),
                details,
                scps: vec![],
            });
        }
        if inputs.is_empty() {
            bail!("who-can needs --auth-details FILE, --facts FILE or --live");
        }
        Graph::build(inputs, vec![], twokey, now)?
    };
    let risk = HighRisk {
        action: args.action.clone(),
        resource: args.resource.clone(),
        why: "asked".into(),
    };
    if !risk.action.contains(':') {
        bail!("{:?} is not service:Action", risk.action);
    }
    let answer = graph.answer(&risk);
    if json {
        let v = serde_json::json!({
            "action": risk.action,
            "resource": risk.resource,
            "tpi_clean": answer.tpi_clean(),
            "holders": answer.holders.iter()
                .map(|h| twokey_posture::checks::iam_standing_access::holder_json(&graph, &answer, h))
                .collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let standing = answer.standing().count();
        println!(
            "who can {} on {}: {}",
            risk.action,
            risk.resource,
            if answer.tpi_clean() {
                "TPI-clean (only through a twokey grant)".to_string()
            } else {
                format!("{standing} principal(s) without a twokey grant")
            }
        );
        for h in &answer.holders {
            let cond = if h.conditional() { ", conditional" } else { "" };
            println!("\n{} — {}{cond}", h.principal, h.standing);
            for line in graph.describe(h, &risk.action) {
                println!("    {line}");
            }
            if h.conditional() {
                println!("    only if {}", h.when);
            }
        }
        if answer.holders.is_empty() {
            println!("nobody in the graph can");
        }
    }
    Ok(
        if answer
            .holders
            .iter()
            .any(|h| h.standing == Standing::Standing)
        {
            1
        } else {
            0
        },
    )
}
