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
//! token_file = "/etc/twokey/github-token"     # or app_id + app_private_key_file
//! max_body_bytes = 1048576
//! drift_interval = "6h"                         # scheduled plan of the default branch
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
    /// Include in the scheduled drift check (when `gate.drift_interval` is set).
    #[serde(default = "yes")]
    pub drift: bool,
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
    /// Environment variable holding the webhook secret.
    #[serde(default)]
    pub webhook_secret_env: Option<String>,
    /// GitHub token (prefer `token_file`).
    #[serde(default)]
    pub token: Option<String>,
    /// File holding the GitHub token.
    #[serde(default)]
    pub token_file: Option<String>,
    /// Environment variable holding the GitHub token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// GitHub App id (with `app_private_key_file`): the gate signs an RS256
    /// JWT and exchanges it for installation tokens.
    #[serde(default)]
    pub app_id: Option<u64>,
    /// The App's private key (PEM) file.
    #[serde(default)]
    pub app_private_key_file: Option<String>,
    /// The App installation to use; looked up per repository when absent.
    #[serde(default)]
    pub app_installation_id: Option<u64>,
    /// REST API base URL.
    #[serde(default = "default_api")]
    pub api_url: String,
    /// Largest webhook body accepted, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// How often the default branch of each project is planned to detect
    /// drift (`"6h"`); no drift check when absent.
    #[serde(default)]
    pub drift_interval: Option<String>,
    /// How long one replica may hold a project's drift check before another
    /// may take it over.
    #[serde(default = "default_drift_lease")]
    pub drift_lease: String,
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
fn default_max_body() -> usize {
    crate::webhook::MAX_BODY_BYTES
}
fn default_drift_lease() -> String {
    "30m".into()
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

    /// Parses the `[gate]` table of the config file `file` (whose whole text
    /// is `text`); `Ok(None)` when there is none. Errors name the file and,
    /// for syntax and type errors, the line.
    pub fn parse_file(text: &str, file: &str) -> Result<Option<GateConfig>, String> {
        #[derive(Deserialize)]
        struct Doc {
            gate: Option<GateConfig>,
        }
        let doc: Doc = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    let before = &text[..s.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
                    format!(":{line}:{col}")
                })
                .unwrap_or_default();
            format!("{file}{at}: {}", e.message().trim_end())
        })?;
        match doc.gate {
            None => Ok(None),
            Some(g) => {
                g.validate().map_err(|e| format!("{file}: [gate]: {e}"))?;
                Ok(Some(g))
            }
        }
    }

    /// The drift interval in milliseconds, if drift checks are on.
    pub fn drift_interval_ms(&self) -> Option<i64> {
        self.drift_interval
            .as_deref()
            .and_then(|d| twokey_core::time::parse_duration(d).ok())
    }

    /// The drift lease in milliseconds.
    pub fn drift_lease_ms(&self) -> i64 {
        twokey_core::time::parse_duration(&self.drift_lease).unwrap_or(30 * 60_000)
    }

    /// Checks names, directories and uniqueness.
    pub fn validate(&self) -> Result<(), String> {
        if self.approvals == 0 {
            return Err("gate.approvals must be at least 1".into());
        }
        if self.max_body_bytes < 1024 {
            return Err(format!(
                "gate.max_body_bytes = {} is too small for any GitHub event (at least 1024)",
                self.max_body_bytes
            ));
        }
        if let Some(d) = &self.drift_interval {
            let ms = twokey_core::time::parse_duration(d)
                .map_err(|e| format!("gate.drift_interval = {d:?}: {e}"))?;
            if ms < 1000 {
                return Err(format!(
                    "gate.drift_interval = {d:?} is shorter than one second"
                ));
            }
        }
        twokey_core::time::parse_duration(&self.drift_lease)
            .map_err(|e| format!("gate.drift_lease = {:?}: {e}", self.drift_lease))?;
        let given = |v: [bool; 3]| v.iter().filter(|x| **x).count();
        let tokens = given([
            self.token.is_some(),
            self.token_file.is_some(),
            self.token_env.is_some(),
        ]);
        let token = tokens > 0;
        if tokens > 1 {
            return Err(
                "give one of gate.token, gate.token_file or gate.token_env, not both".into(),
            );
        }
        if given([
            self.webhook_secret.is_some(),
            self.webhook_secret_file.is_some(),
            self.webhook_secret_env.is_some(),
        ]) > 1
        {
            return Err("give one of gate.webhook_secret, gate.webhook_secret_file or gate.webhook_secret_env, not both".into());
        }
        match (self.app_id, &self.app_private_key_file) {
            (Some(_), Some(_)) if token => {
                return Err(
                    "give either a token (gate.token / gate.token_file) or a GitHub App (gate.app_id + gate.app_private_key_file), not both"
                        .into(),
                )
            }
            (Some(_), None) => {
                return Err("gate.app_id needs gate.app_private_key_file (the App's PEM private key)".into())
            }
            (None, Some(_)) => {
                return Err("gate.app_private_key_file needs gate.app_id".into())
            }
            _ => {}
        }
        if self.app_installation_id.is_some() && self.app_id.is_none() {
            return Err("gate.app_installation_id needs gate.app_id".into());
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

fn read_secret(key: &str, path: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("gate.{key} = {path:?}: cannot read: {e}"))?;
    let t = text.trim();
    if t.is_empty() {
        return Err(format!("gate.{key} = {path:?}: the file is empty"));
    }
    Ok(t.to_string())
}

/// A secret from the environment variable `name` (`gate.<key>`).
fn read_env(key: &str, name: &str) -> Result<String, String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
        Ok(_) => Err(format!("gate.{key} = {name:?}: the variable is empty")),
        Err(_) => Err(format!("gate.{key} = {name:?}: the variable is not set")),
    }
}

impl GateConfig {
    /// The webhook secret, from `webhook_secret` or `webhook_secret_file`
    /// (one is required: unsigned webhooks are never accepted).
    pub fn load_webhook_secret(&self) -> Result<Vec<u8>, String> {
        let s = match (&self.webhook_secret, &self.webhook_secret_file, &self.webhook_secret_env) {
            (Some(s), _, _) => s.clone(),
            (None, Some(f), _) => read_secret("webhook_secret_file", f)?,
            (None, None, Some(v)) => read_env("webhook_secret_env", v)?,
            (None, None, None) => {
                return Err(
                    "gate.webhook_secret_file (or gate.webhook_secret) is required: the secret configured on the GitHub webhook"
                        .into(),
                )
            }
        };
        if s.len() < 16 {
            return Err("the gate webhook secret must be at least 16 characters".into());
        }
        Ok(s.into_bytes())
    }

    /// How the gate authenticates to GitHub.
    pub fn load_auth(&self) -> Result<crate::github::Auth, String> {
        if let (Some(app_id), Some(key)) = (self.app_id, &self.app_private_key_file) {
            let pem = std::fs::read(key)
                .map_err(|e| format!("gate.app_private_key_file = {key:?}: cannot read: {e}"))?;
            return crate::github::Auth::app(app_id, &pem, self.app_installation_id)
                .map_err(|e| format!("gate.app_private_key_file = {key:?}: {e}"));
        }
        let token = match (&self.token, &self.token_file, &self.token_env) {
            (Some(t), _, _) => t.clone(),
            (None, Some(f), _) => read_secret("token_file", f)?,
            (None, None, Some(v)) => read_env("token_env", v)?,
            (None, None, None) => {
                return Err(
                    "the gate needs GitHub credentials: gate.token_file (or gate.token), or gate.app_id + gate.app_private_key_file"
                        .into(),
                )
            }
        };
        Ok(crate::github::Auth::Token(token))
    }
}
