//! `twokey.toml`: how a production server runs.
//!
//! ```toml
//! listen = "0.0.0.0:8080"
//! database = "postgres://twokey@db/twokey"   # or "sqlite:///var/lib/twokey/twokey.db"
//! policy = "/etc/twokey/policy.toml"
//! public_url = "https://twokey.example.com"
//!
//! [reconciler]
//! interval = "5m"
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
    /// `[gate]`: the deploy gate (read, with line numbers, by `twokey-gate`).
    #[serde(default)]
    pub gate: Option<toml::Table>,
    /// `[posture.aws]` (the continuous scan of the AWS organisation) and
    /// `[posture.github]` (the GitHub posture watched by `twokey serve`, read
    /// with line numbers by `twokey-posture-github`).
    #[serde(default)]
    pub posture: Option<PostureSection>,
    /// `[reconciler]`: the periodic check of targets against grants.
    #[serde(default)]
    pub reconciler: ReconcilerConfig,
    /// `[notifications]`: Slack and email to approvers and requesters.
    #[serde(default)]
    pub notifications: twokey_notify::notifications::NotificationsConfig,
    /// `[scim]`: provisioning of users and groups by the identity provider.
    #[serde(default)]
    pub scim: Option<crate::scim::ScimConfig>,
    /// `[activity]`: what each grant did (records from the guard, digests).
    #[serde(default)]
    pub activity: crate::activity::ActivityConfig,
    /// `[slack]`: Approve / Deny buttons in Slack (bot token, signing secret, links).
    #[serde(default)]
    pub slack: Option<crate::slack::SlackConfig>,
}

/// `[posture]`: what `twokey serve` watches continuously.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostureSection {
    /// `[posture.aws]`: the scan of the AWS organisation.
    #[serde(default)]
    pub aws: Option<crate::posture::PostureConfig>,
    /// `[posture.github]`: parsed by `twokey-posture-github` from the file's text.
    #[serde(default)]
    pub github: Option<toml::Table>,
}

/// `[reconciler]`.
///
/// ```toml
/// [reconciler]
/// interval = "5m"   # time between passes (default 5m)
/// grace = "1m"      # an active grant is reported missing only this long after activation
/// enabled = true    # false turns the reconciler off
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcilerConfig {
    /// Time between passes.
    #[serde(default = "default_interval")]
    pub interval: String,
    /// Grace after activation before a grant is reported missing.
    #[serde(default = "default_grace")]
    pub grace: String,
    /// Whether the reconciler runs.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

impl Default for ReconcilerConfig {
    fn default() -> Self {
        Self {
            interval: default_interval(),
            grace: default_grace(),
            enabled: true,
        }
    }
}

fn default_interval() -> String {
    "5m".into()
}

fn default_grace() -> String {
    "1m".into()
}

fn default_true() -> bool {
    true
}

impl ReconcilerConfig {
    /// `(interval_ms, grace_ms)`; interval 0 when disabled. Errors name the
    /// setting.
    pub fn millis(&self) -> Result<(i64, i64), String> {
        let interval = twokey_core::time::parse_duration(&self.interval)
            .map_err(|e| format!("[reconciler] interval: {e}"))?;
        let grace = twokey_core::time::parse_duration(&self.grace)
            .map_err(|e| format!("[reconciler] grace: {e}"))?;
        if self.enabled && interval < 1_000 {
            return Err(format!(
                "[reconciler] interval = {:?} is shorter than 1s",
                self.interval
            ));
        }
        Ok((if self.enabled { interval } else { 0 }, grace))
    }
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

/// Reads a credential given by reference: an environment variable, or a
/// file whose content (without its trailing newline) is the value.
pub fn read_reference(r: &twokey_core::secret::Reference) -> Result<String, String> {
    use twokey_core::secret::Reference;
    let value = match r {
        Reference::Env(name) => std::env::var(name)
            .map_err(|_| format!("the environment variable {name} is not set"))?,
        Reference::File(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {path:?}: {e}"))?
            .trim_end_matches(['\r', '\n'])
            .to_string(),
    };
    if value.is_empty() {
        return Err(match r {
            Reference::Env(name) => format!("the environment variable {name} is empty"),
            Reference::File(path) => format!("{path:?} is empty"),
        });
    }
    Ok(value)
}

impl Config {
    /// Parses a config file's text. Credentials may be given by reference
    /// (`database_env`, `password_file`, `client_secret_env`, ...; see
    /// `twokey_core::secret`): they are read here.
    pub fn parse(text: &str, file: &str) -> Result<Config, String> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| format!("{file}: {}", e.message()))?;
        // `[gate]` reads its own credentials (`token_file`, `webhook_secret_env`)
        // from the file's text when the gate starts.
        let gate = table.remove("gate");
        let posture = table.remove("posture");
        twokey_core::secret::resolve_references(&mut table, file, &mut read_reference)?;
        if let Some(g) = gate {
            table.insert("gate".into(), g);
        }
        if let Some(p) = posture {
            table.insert("posture".into(), p);
        }
        let cfg = Config::deserialize(table).map_err(|e| format!("{file}: {}", e.message()))?;
        cfg.reconciler
            .millis()
            .map_err(|e| format!("{file}: {e}"))?;
        if let Some(scim) = &cfg.scim {
            scim.validate().map_err(|e| format!("{file}: {e}"))?;
        }
        if let Some(slack) = &cfg.slack {
            slack.validate().map_err(|e| format!("{file}: {e}"))?;
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_config_may_be_given_by_reference() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pw = dir.path().join("smtp-password");
        std::fs::write(&pw, "smtp-pw\n").expect("write");
        let text = format!(
            "database = \"sqlite://x.db\"\npolicy = \"p.toml\"\n[notifications.email]\nhost = \"127.0.0.1\"\nfrom = \"t@example.com\"\nusername = \"tk\"\npassword_file = \"{}\"\n[[alerts.sink]]\nkind = \"webhook\"\nurl = \"https://siem.example.com/x\"\nsecret_file = \"{}\"\n",
            pw.display(),
            pw.display()
        );
        let cfg = Config::parse(&text, "twokey.toml").expect("parses");
        let email = cfg.notifications.email.expect("email");
        assert_eq!(
            email.password.map(|p| p.expose().to_string()).as_deref(),
            Some("smtp-pw")
        );
        assert!(!format!("{:?}", cfg.alerts.sink).contains("smtp-pw"));
        let err = Config::parse(
            "database_env = \"TK_CONFIG_TEST_UNSET_DB\"\npolicy = \"p.toml\"\n",
            "twokey.toml",
        )
        .expect_err("unset");
        assert!(
            err.contains("twokey.toml: database_env: the environment variable TK_CONFIG_TEST_UNSET_DB is not set"),
            "{err}"
        );
    }
}
