//! `twokey.toml`: how a production server runs.
//!
//! ```toml
//! listen = "0.0.0.0:8080"
//! database = "postgres://twokey@db/twokey"   # or "sqlite:///var/lib/twokey/twokey.db"
//! policy = "/etc/twokey/policy.toml"
//! public_url = "https://twokey.example.com"
//!
//! [[alerts.sink]]
//! kind = "webhook"
//! url = "https://hooks.example.com/twokey"
//! secret = "..."
//! ```

use serde::Deserialize;

/// Server configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Database URL (`sqlite://PATH` or `postgres://...`).
    pub database: String,
    /// Path of the policy file (bootstraps an empty database; afterwards
    /// changes go through proposals).
    pub policy: String,
    /// Base URL for links.
    #[serde(default = "default_public_url")]
    pub public_url: String,
    /// Alert sinks.
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// Ledger checkpoints and bundle sinks (`[ledger]`).
    #[serde(default)]
    pub ledger: crate::checkpoints::LedgerConfig,
    /// `[sso]`: the OpenID Connect provider of the web UI (read by `twokey-web`).
    #[serde(default)]
    pub sso: Option<toml::Table>,
    /// `[notifications]`: Slack and email to approvers and requesters.
    #[serde(default)]
    pub notifications: twokey_notify::notifications::NotificationsConfig,
}

/// `[alerts]`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AlertsConfig {
    /// `[[alerts.sink]]` entries.
    #[serde(default)]
    pub sink: Vec<twokey_notify::SinkConfig>,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

fn default_public_url() -> String {
    "http://127.0.0.1:8080".into()
}

impl Config {
    /// Parses a config file's text.
    pub fn parse(text: &str, file: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| format!("{file}: {}", e.message()))
    }
}
