//! `twokey can PRINCIPAL ACTION RESOURCE --auth-details FILE`: whether a
//! principal can do an action, from an account's authorization details,
//! with the deciding statements. The evaluation is `twokey-iam`'s.

use std::path::PathBuf;

use anyhow::Context as _;
use twokey_iam::{evaluate, AuthDetails, Decision, Request};

/// Arguments of `twokey can`.
#[derive(clap::Args, Debug)]
pub(crate) struct CanArgs {
    /// The caller: a user, role or assumed-role session ARN.
    principal: String,
    /// `service:Action`.
    action: String,
    /// The resource ARN (`*` for actions without one).
    resource: String,
    /// The output of `aws iam get-account-authorization-details`.
    #[arg(long)]
    auth_details: PathBuf,
    /// A context key and its value (`aws:SourceIp=203.0.113.7`); repeatable.
    #[arg(long = "context", value_name = "KEY=VALUE")]
    context: Vec<String>,
    /// A context key that is not known (`aws:MultiFactorAuthPresent`,
    /// `aws:RequestTag/*`): the answer is "allowed if ..."; repeatable.
    #[arg(long = "unknown", value_name = "KEY")]
    unknown: Vec<String>,
}

/// Prints the decision; exit code 0 when allowed, 1 when denied, 2 when
/// it depends on unknown context.
pub(crate) fn run(args: &CanArgs, json: bool) -> anyhow::Result<i32> {
    let text = std::fs::read_to_string(&args.auth_details)
        .with_context(|| format!("reading {}", args.auth_details.display()))?;
    let details =
        AuthDetails::parse(&text).with_context(|| format!("{}", args.auth_details.display()))?;
    let (policies, mut ctx) =
        details.policies_for(&args.principal, &args.action, &args.resource)?;
    for kv in &args.context {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--context {kv:?}: expected KEY=VALUE"))?;
        ctx.set(k, v);
    }
    for k in &args.unknown {
        ctx.mark_unknown(k);
    }
    let now = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now());
    let req = Request::new(&args.principal, &args.action, &args.resource, now, ctx);
    let decision = evaluate(&req, &policies);
    if json {
        let v = serde_json::json!({
            "decision": decision.name(),
            "detail": decision.to_string(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{decision}");
    }
    Ok(match decision {
        Decision::Allowed { .. } => 0,
        Decision::AllowedIf { .. } => 2,
        Decision::ExplicitDeny { .. } | Decision::ImplicitDeny { .. } => 1,
    })
}
