//! `twokey posture`: the two-person baseline of an AWS organisation
//! (the checks, collection and output live in `twokey-posture`) and of a
//! GitHub organisation (`twokey-posture-github`).

use clap::Subcommand;

/// `twokey posture ...`.
#[derive(Subcommand, Debug)]
pub enum PostureCmd {
    /// Check an AWS organisation (or one account): CloudTrail, Object Lock,
    /// Backup Vault Lock, root, IAM users and escalation, twokey's target
    /// roles, Config, GuardDuty, Security Hub.
    Aws(twokey_posture::cli::AwsArgs),
    /// Check a GitHub organisation: the effective protection of default
    /// branches (classic protection and rulesets), reviews, bypass, Actions
    /// approval, workflow token, production environments, the gate on IaC
    /// repositories.
    Github(twokey_posture_github::cli::GithubArgs),
}

/// Runs the subcommand; its exit status.
pub async fn run(cmd: PostureCmd) -> anyhow::Result<i32> {
    match cmd {
        PostureCmd::Aws(args) => {
            twokey_posture::cli::run(&args, &mut std::io::stdout().lock()).await
        }
        PostureCmd::Github(args) => {
            twokey_posture_github::cli::run(&args, &mut std::io::stdout().lock()).await
        }
    }
}
