//! `[posture.github]` in `twokey.toml` (and the same settings from
//! `twokey posture github`'s flags).
//!
//! ```toml
//! [posture.github]
//! org = "acme"
//! repos = ["*"]                 # name patterns; default every repository
//! topics = []                   # ...or repositories with one of these topics
//! iac_repos = ["acme/infra"]    # besides the gate's [gate] repositories (always IaC)
//! approvals = 1                 # default class
//! iac_approvals = 2
//! break_glass = ["Team/42"]     # bypass actors twokey gates (actor_type/actor_id)
//! production_environments = ["prod*", "production"]
//! environment_reviewers = ["Team/42"]   # what a restore gives a production environment without reviewers
//! gate_webhook_url = "https://twokey.example.com/v1/gate/github"
//! interval = "15m"              # scheduled full scan in `twokey serve`
//! action = "propose"            # or "alert"
//! token_file = "/etc/twokey/github-posture-token"   # default: [gate]'s credentials
//!
//! [[posture.github.class]]
//! name = "payments"
//! repos = ["pay-*"]
//! topics = ["pci"]
//! approvals = 2
//! ```

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// What a regression found in real time or by the scheduled scan leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A ledger entry that alerts.
    Alert,
    /// The alert and a restore proposal that a second person approves.
    Propose,
}

/// A repository class: its own approval count.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Class {
    /// Name (in findings' evidence).
    pub name: String,
    /// Name patterns.
    #[serde(default)]
    pub repos: Vec<String>,
    /// Topics.
    #[serde(default)]
    pub topics: Vec<String>,
    /// Required approving reviews.
    pub approvals: u32,
}

/// `[posture.github]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubPostureConfig {
    /// The organisation.
    pub org: String,
    /// REST API base.
    #[serde(default = "default_api")]
    pub api_url: String,
    /// Repository name patterns in scope (none and no topics: every one).
    #[serde(default)]
    pub repos: Vec<String>,
    /// Topics in scope.
    #[serde(default)]
    pub topics: Vec<String>,
    /// Repository name patterns that are infrastructure as code (the gate's
    /// repositories are always).
    #[serde(default)]
    pub iac_repos: Vec<String>,
    /// Approvals of the default class.
    #[serde(default = "one")]
    pub approvals: u32,
    /// Approvals of IaC repositories.
    #[serde(default = "two")]
    pub iac_approvals: u32,
    /// Further classes (the first that matches wins; IaC repositories take
    /// the larger of their class's count and `iac_approvals`).
    #[serde(default)]
    pub class: Vec<Class>,
    /// Bypass actors allowed (`Team/42`, `Integration/7`).
    #[serde(default)]
    pub break_glass: Vec<String>,
    /// Environment name patterns that are production.
    #[serde(default = "default_prod")]
    pub production_environments: Vec<String>,
    /// Reviewers (`Team/42`, `User/7`) a restore gives a production
    /// environment that has none; without them such an environment is only
    /// alerted (twokey cannot guess who should review).
    #[serde(default)]
    pub environment_reviewers: Vec<String>,
    /// The gate's commit status context.
    #[serde(default = "default_gate_check")]
    pub gate_check: String,
    /// The gate's webhook URL, to find it among a repository's hooks.
    #[serde(default)]
    pub gate_webhook_url: Option<String>,
    /// Time between scheduled full scans (`15m`); none: no schedule.
    #[serde(default, deserialize_with = "duration_opt")]
    pub interval: Option<Duration>,
    /// How long one replica holds the scan lease.
    #[serde(default = "default_lease", deserialize_with = "duration")]
    pub lease: Duration,
    /// `alert` or `propose`.
    #[serde(default = "default_action")]
    pub action: Action,
    /// Repositories read at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// A token (prefer `token_file` / `token_env`); redacted in `Debug`.
    #[serde(default)]
    pub token: Option<twokey_core::Secret>,
    /// A file holding the token.
    #[serde(default)]
    pub token_file: Option<String>,
    /// An environment variable holding the token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// GitHub App id (with `app_private_key_file`).
    #[serde(default)]
    pub app_id: Option<u64>,
    /// The App's private key (PEM).
    #[serde(default)]
    pub app_private_key_file: Option<String>,
    /// The App's installation in the organisation.
    #[serde(default)]
    pub app_installation_id: Option<u64>,
}

fn one() -> u32 {
    1
}
fn two() -> u32 {
    2
}
fn default_api() -> String {
    "https://api.github.com".into()
}
fn default_prod() -> Vec<String> {
    vec![
        "prod".into(),
        "prod-*".into(),
        "production".into(),
        "production-*".into(),
    ]
}
fn default_gate_check() -> String {
    "twokey/plan".into()
}
fn default_lease() -> Duration {
    Duration::from_secs(30 * 60)
}
fn default_action() -> Action {
    Action::Alert
}
fn default_concurrency() -> usize {
    8
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let ms = twokey_core::time::parse_duration(s)?;
    if ms <= 0 {
        return Err(format!("duration {s:?} must be positive"));
    }
    Ok(Duration::from_millis(ms as u64))
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

fn duration_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn read_secret(key: &str, path: &str) -> Result<String, String> {
    let t = std::fs::read_to_string(path)
        .map_err(|e| format!("posture.github.{key} = {path:?}: cannot read: {e}"))?;
    let t = t.trim().to_string();
    if t.is_empty() {
        return Err(format!(
            "posture.github.{key} = {path:?}: the file is empty"
        ));
    }
    Ok(t)
}

impl GithubPostureConfig {
    /// The `[posture.github]` table of the config file `file` (whose text
    /// is `text`); `Ok(None)` when there is none. Errors name the file and
    /// line.
    pub fn parse_file(text: &str, file: &str) -> Result<Option<GithubPostureConfig>, String> {
        #[derive(Deserialize)]
        struct Posture {
            github: Option<GithubPostureConfig>,
        }
        #[derive(Deserialize)]
        struct Doc {
            posture: Option<Posture>,
        }
        let doc: Doc = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    let before = &text[..s.start.min(text.len())];
                    format!(":{}", before.matches('\n').count() + 1)
                })
                .unwrap_or_default();
            format!("{file}{at}: {}", e.message().trim_end())
        })?;
        let Some(c) = doc.posture.and_then(|p| p.github) else {
            return Ok(None);
        };
        c.validate()
            .map_err(|e| format!("{file}: [posture.github]: {e}"))?;
        Ok(Some(c))
    }

    /// Checks values the types cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.org.is_empty()
            || !self
                .org
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(format!(
                "org = {:?} is not a GitHub organisation login",
                self.org
            ));
        }
        if self.approvals == 0 || self.iac_approvals == 0 {
            return Err("approvals and iac_approvals must be at least 1".into());
        }
        if let Some(c) = self.class.iter().find(|c| c.approvals == 0) {
            return Err(format!("class {:?}: approvals must be at least 1", c.name));
        }
        for b in &self.break_glass {
            if !b.contains('/') && b != "OrganizationAdmin" {
                return Err(format!(
                    "break_glass {b:?}: name a bypass actor as ACTOR_TYPE/ACTOR_ID (Team/42)"
                ));
            }
        }
        for r in &self.environment_reviewers {
            if crate::restore::reviewer_ref(r).is_none() {
                return Err(format!(
                    "environment_reviewers {r:?}: name a reviewer as User/ID or Team/ID (Team/42)"
                ));
            }
        }
        if self.environment_reviewers.len() > 6 {
            return Err("environment_reviewers: GitHub takes at most six reviewers".into());
        }
        if self.concurrency == 0 {
            return Err("concurrency must be at least 1".into());
        }
        Ok(())
    }

    /// How to authenticate: these credentials, else `fallback` (the gate's).
    pub fn auth(
        &self,
        fallback: Option<Result<twokey_gate::github::Auth, String>>,
    ) -> Result<twokey_gate::github::Auth, String> {
        use twokey_gate::github::Auth;
        if let (Some(id), Some(key)) = (self.app_id, &self.app_private_key_file) {
            let pem = std::fs::read(key).map_err(|e| {
                format!("posture.github.app_private_key_file = {key:?}: cannot read: {e}")
            })?;
            return Auth::app(id, &pem, self.app_installation_id)
                .map_err(|e| format!("posture.github.app_private_key_file = {key:?}: {e}"));
        }
        let token = match (&self.token, &self.token_file, &self.token_env) {
            (Some(t), _, _) => t.expose().to_string(),
            (None, Some(f), _) => read_secret("token_file", f)?,
            (None, None, Some(v)) => std::env::var(v)
                .ok()
                .filter(|t| !t.is_empty())
                .ok_or_else(|| format!("posture.github.token_env = {v:?}: not set or empty"))?,
            (None, None, None) => {
                return fallback.unwrap_or_else(|| {
                    Err("posture.github needs GitHub credentials: token_file, token_env, or app_id + app_private_key_file (or a [gate] with them)".into())
                })
            }
        };
        Ok(Auth::Token(token))
    }

    /// The baseline the checks read.
    pub fn baseline(&self, app: bool) -> crate::Baseline {
        crate::Baseline {
            break_glass: self.break_glass.clone(),
            gate_check: self.gate_check.clone(),
            gate_webhook_url: self.gate_webhook_url.clone(),
            gate_app: app,
            production_environments: self.production_environments.clone(),
            environment_reviewers: self.environment_reviewers.clone(),
        }
    }
}
