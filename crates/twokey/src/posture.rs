//! `twokey posture`: the two-person baseline of an AWS organisation
//! (the checks, collection and output live in `twokey-posture`) and of a
//! GitHub organisation (`twokey-posture-github`).

use clap::Subcommand;

/// `twokey posture ...`.
#[derive(Subcommand, Debug)]
pub(crate) enum PostureCmd {
    /// Check an AWS organisation (or one account): CloudTrail, Object Lock,
    /// Backup Vault Lock, root, IAM users and escalation, twokey's target
    /// roles, Config, GuardDuty, Security Hub.
    Aws(twokey_posture::cli::AwsArgs),
    /// The IAM part alone: who can do a high-risk action without a twokey
    /// grant (the graph of who can become whom), unused roles, credentials
    /// and services, escalation policies, twokey's target roles.
    Iam(twokey_posture::cli::AwsArgs),
    /// Check a GitHub organisation: the effective protection of default
    /// branches (classic protection and rulesets), reviews, bypass, Actions
    /// approval, workflow token, production environments, the gate on IaC
    /// repositories.
    Github(twokey_posture_github::cli::GithubArgs),
}

/// Runs the subcommand; its exit status.
pub(crate) async fn run(cmd: PostureCmd) -> anyhow::Result<i32> {
    match cmd {
        PostureCmd::Aws(args) => {
            twokey_posture::cli::run(&args, &mut std::io::stdout().lock()).await
        }
        PostureCmd::Iam(mut args) => {
            if args.checks.is_empty() {
                args.checks = twokey_posture::cli::IAM_CHECKS
                    .iter()
                    .map(|c| c.to_string())
                    .collect();
            }
            twokey_posture::cli::run(&args, &mut std::io::stdout().lock()).await
        }
        PostureCmd::Github(args) => {
            twokey_posture_github::cli::run(&args, &mut std::io::stdout().lock()).await
        }
    }
}

/// `twokey scp ...`.
#[derive(Subcommand, Debug)]
pub(crate) enum ScpCmd {
    /// Write the guard-rail SCPs (JSON and Terraform) that deny switching
    /// monitoring off, for a log bucket, trail, Backup vaults and a
    /// break-glass role; split to AWS's limits.
    Generate(twokey_posture::cli::ScpGenerateArgs),
}

/// Runs `twokey scp`; its exit status.
pub(crate) fn run_scp(cmd: ScpCmd) -> anyhow::Result<i32> {
    match cmd {
        ScpCmd::Generate(args) => {
            twokey_posture::cli::run_scp_generate(&args, &mut std::io::stdout().lock())
        }
    }
}
