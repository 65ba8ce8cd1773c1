//! Server-side gate configuration. Projects, their tools and arguments live in
//! twokey's own config, reviewed like any other policy; a file in the pull
//! request ([`Selection`]) may only choose among them and can never add a step.
//!
//! ```toml
//! [gate]
//! approvals = 1
//! require_mergeable = true
//! require_up_to_date = true
//! apply_on_merge = false
//! allow = ["acme/infra"]
//! webhook_secret_file = "/etc/twokey/github-webhook-secret"
//! token_file = "/etc/twokey/github-token"
//!
//! [[gate.project]]
//! repo = "acme/infra"
//! name = "prod"
//! dir = "envs/prod"
//! workspace = "default"
//! tool = "terraform"
//! plan_args = ["-lock-timeout=60s"]
//! apply_args = []
//! ```

use serde::{Deserialize, Serialize};

use crate::requirements::Requirements;

/// The name of the file a pull request may use to select projects.
pub const SELECTION_FILE: &str = "twokey-gate.toml";

/// Which infrastructure tool runs a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tool {
    /// HashiCorp Terraform.
    Terraform,
    /// OpenTofu.
    Tofu,
}

/// One `[[gate.project]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    /// Repository, `owner/name`.
    pub repo: String,
    /// Project name, unique within the repository.
    pub name: String,
    /// Directory inside the repository (relative, no `..`).
    pub dir: String,
    /// Terraform workspace.
    #[serde(default = "default_workspace")]
    pub workspace: String,
    /// Tool.
    #[serde(default = "default_tool")]
    pub tool: Tool,
    /// Extra arguments to `plan`.
    #[serde(default)]
    pub plan_args: Vec<String>,
    /// Extra arguments to `apply` (the saved plan file is always the last one).
    #[serde(default)]
    pub apply_args: Vec<String>,
    /// Plan automatically when files under `dir` change.
    #[serde(default = "yes")]
    pub autoplan: bool,
}

/// `[gate]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateConfig {
    /// Approvals needed (distinct eligible reviewers on the head commit).
    #[serde(default = "one")]
    pub approvals: u32,
    /// Refuse to apply unless GitHub reports the pull request mergeable.
    #[serde(default = "yes")]
    pub require_mergeable: bool,
    /// Refuse to apply when the branch is behind its base.
    #[serde(default = "yes")]
    pub require_up_to_date: bool,
    /// Apply automatically when an approved pull request is merged.
    #[serde(default)]
    pub apply_on_merge: bool,
    /// Repositories (`owner/name`) whose webhooks are acted on; others are ignored.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Webhook secret (prefer `webhook_secret_file`).
    #[serde(default)]
    pub webhook_secret: Option<String>,
    /// File holding the webhook secret.
    #[serde(default)]
    pub webhook_secret_file: Option<String>,
    /// GitHub token (prefer `token_file`).
    #[serde(default)]
    pub token: Option<String>,
    /// File holding the GitHub token.
    #[serde(default)]
    pub token_file: Option<String>,
    /// REST API base URL.
    #[serde(default = "default_api")]
    pub api_url: String,
    /// Where checkouts and saved plans live.
    #[serde(default = "default_workdir")]
    pub workdir: String,
    /// `terraform` executable.
    #[serde(default = "default_terraform")]
    pub terraform_bin: String,
    /// `tofu` executable.
    #[serde(default = "default_tofu")]
    pub tofu_bin: String,
    /// Literal secret values that must never appear in comments.
    #[serde(default)]
    pub redact_values: Vec<String>,
    /// Projects.
    #[serde(default)]
    pub project: Vec<Project>,
}

fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}
fn default_workspace() -> String {
    "default".into()
}
fn default_tool() -> Tool {
    Tool::Terraform
}
fn default_api() -> String {
    "https://api.github.com".into()
}
fn default_workdir() -> String {
    "/var/lib/twokey/gate".into()
}
fn default_terraform() -> String {
    "terraform".into()
}
fn default_tofu() -> String {
    "tofu".into()
}

fn safe_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s != "."
        && s != ".."
}

impl GateConfig {
    /// Parses a TOML document whose `[gate]` table is this config (the
    /// shape of `twokey.toml`), then validates it.
    pub fn parse(text: &str) -> Result<GateConfig, String> {
        #[derive(Deserialize)]
        struct Doc {
            gate: GateConfig,
        }
        let doc: Doc = toml::from_str(text).map_err(|e| e.message().to_string())?;
        doc.gate.validate()?;
        Ok(doc.gate)
    }

    /// Checks names, directories and uniqueness.
    pub fn validate(&self) -> Result<(), String> {
        if self.approvals == 0 {
            return Err("gate.approvals must be at least 1".into());
        }
        for p in &self.project {
            if !self.allow.iter().any(|a| a.eq_ignore_ascii_case(&p.repo)) {
                return Err(format!(
                    "project {}: repo {} is not in gate.allow",
                    p.name, p.repo
                ));
            }
            if !safe_name(&p.name) || !safe_name(&p.workspace) {
                return Err(format!("project {}: invalid name or workspace", p.name));
            }
            if p.dir.starts_with('/') || p.dir.split('/').any(|c| c == "..") || p.dir.contains('\\')
            {
                return Err(format!(
                    "project {}: dir must be relative without ..",
                    p.name
                ));
            }
            let dup = self
                .project
                .iter()
                .filter(|q| q.repo.eq_ignore_ascii_case(&p.repo) && q.name == p.name)
                .count();
            if dup > 1 {
                return Err(format!("project {} defined twice for {}", p.name, p.repo));
            }
        }
        Ok(())
    }

    /// The apply requirements.
    pub fn requirements(&self) -> Requirements {
        Requirements {
            approvals: self.approvals,
            require_mergeable: self.require_mergeable,
            require_up_to_date: self.require_up_to_date,
        }
    }

    /// Whether webhooks for `repo` are acted on.
    pub fn allows(&self, repo: &str) -> bool {
        self.allow.iter().any(|a| a.eq_ignore_ascii_case(repo))
    }

    /// Projects of one repository.
    pub fn projects(&self, repo: &str) -> Vec<&Project> {
        self.project
            .iter()
            .filter(|p| p.repo.eq_ignore_ascii_case(repo))
            .collect()
    }

    /// The projects affected by `changed` files (under the project's dir),
    /// restricted to autoplan projects.
    pub fn affected(&self, repo: &str, changed: &[String]) -> Vec<&Project> {
        self.projects(repo)
            .into_iter()
            .filter(|p| p.autoplan)
            .filter(|p| {
                let dir = p.dir.trim_end_matches('/');
                dir.is_empty()
                    || dir == "."
                    || changed.iter().any(|f| f.starts_with(&format!("{dir}/")))
            })
            .collect()
    }
}

/// The pull request's own file ([`SELECTION_FILE`]): a list of configured
/// project names and nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    /// Names of configured projects to plan and apply.
    pub projects: Vec<String>,
}

/// Why a selection file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    /// Not TOML, or has keys other than `projects` (for instance steps or
    /// workflows, which only the server config may define).
    #[error("{file} may only list configured project names (`projects = [...]`): {0}", file = SELECTION_FILE)]
    Invalid(String),
    /// Names a project not configured for this repository.
    #[error("{file} names project {0:?}, which is not configured on the server for this repository", file = SELECTION_FILE)]
    Unknown(String),
}

/// Resolves a pull request's selection file against the server's projects.
pub fn select<'a>(
    config: &'a GateConfig,
    repo: &str,
    text: &str,
) -> Result<Vec<&'a Project>, SelectionError> {
    let sel: Selection =
        toml::from_str(text).map_err(|e| SelectionError::Invalid(e.message().to_string()))?;
    let mut out = Vec::new();
    for name in &sel.projects {
        let p = config
            .projects(repo)
            .into_iter()
            .find(|p| &p.name == name)
            .ok_or_else(|| SelectionError::Unknown(name.clone()))?;
        if !out.iter().any(|q: &&Project| q.name == p.name) {
            out.push(p);
        }
    }
    Ok(out)
}
