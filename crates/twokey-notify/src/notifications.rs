//! Notifications to people: approvers of a new request, the requester of each
//! decision, the other approvers once someone decided. Delivered from the
//! broker's outbox (the same one alerts use), at least once.
//!
//! ```toml
//! [notifications]
//! slack_webhook_url = "https://hooks.slack.com/services/T000/B000/XXXX"  # optional
//!
//! [notifications.email]                  # optional
//! host = "smtp.example.com"
//! port = 587                             # default: 587 (starttls), 465 (tls), 25 (none)
//! from = "twokey <twokey@example.com>"
//! security = "starttls"                  # starttls (default) | tls | none (loopback relays only)
//! username = "twokey"                    # optional, with password
//! password = "..."
//! ```
//!
//! Slack gets one message per notification (naming the people it is for);
//! email goes to each recipient with a known address, one message each.

use std::sync::Arc;

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use crate::{clip, escape, http_client, post_json, NotifyError};

/// Someone a notification is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// Display name.
    pub name: String,
    /// Email address, when known.
    pub email: Option<String>,
}

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// `approval_needed`, `decision` or `decided_by_other`.
    pub kind: String,
    /// The request it is about.
    pub request_id: String,
    /// One line (email subject).
    pub title: String,
    /// The message, including the link.
    pub text: String,
    /// The request page in the web UI.
    pub link: String,
    /// Who it is for.
    pub to: Vec<Recipient>,
}

/// Somewhere notifications go.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// A name for logs, without secrets.
    fn name(&self) -> String;
    /// Delivers one notification to everyone it is for, once.
    async fn notify(&self, n: &Notification) -> Result<(), NotifyError>;
}

/// `[notifications]` in `twokey.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationsConfig {
    /// A Slack incoming webhook for notifications.
    #[serde(default)]
    pub slack_webhook_url: Option<String>,
    /// Email over SMTP.
    #[serde(default)]
    pub email: Option<EmailConfig>,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which is required.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
    /// No encryption: only for a relay on loopback or a trusted local network.
    None,
}

/// `[notifications.email]`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// SMTP server.
    pub host: String,
    /// Port; the security mode's usual port when absent.
    #[serde(default)]
    pub port: Option<u16>,
    /// Sender, `Name <address>` or an address.
    pub from: String,
    /// Connection security.
    #[serde(default)]
    pub security: SmtpSecurity,
    /// SMTP user.
    #[serde(default)]
    pub username: Option<String>,
    /// SMTP password (or `password_env`, `password_file`: resolved when the
    /// config is read).
    #[serde(default)]
    pub password: Option<crate::Secret>,
}

impl std::fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("from", &self.from)
            .field("security", &self.security)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Builds the configured notifiers; errors say which setting is wrong.
pub fn build_notifiers(cfg: &NotificationsConfig) -> Result<Vec<Arc<dyn Notifier>>, String> {
    let mut out: Vec<Arc<dyn Notifier>> = Vec::new();
    if let Some(url) = &cfg.slack_webhook_url {
        if reqwest::Url::parse(url).is_err() {
            return Err("[notifications] slack_webhook_url is not a URL".into());
        }
        out.push(Arc::new(SlackNotifier::new(url.clone())));
    }
    if let Some(email) = &cfg.email {
        out.push(Arc::new(EmailNotifier::new(email)?));
    }
    Ok(out)
}

/// Posts notifications to a Slack incoming webhook.
pub struct SlackNotifier {
    webhook_url: String,
    client: reqwest::Client,
}

impl SlackNotifier {
    /// A notifier posting to `webhook_url`.
    pub fn new(webhook_url: String) -> Self {
        Self {
            webhook_url,
            client: http_client(),
        }
    }

    /// The Slack message for a notification.
    pub fn message(n: &Notification) -> serde_json::Value {
        let names: Vec<String> = n.to.iter().map(|r| escape(&r.name)).collect();
        let for_line = format!("For: {}", names.join(", "));
        let text = format!(
            "{}\n{}\n<{}|Open request {}>",
            escape(&n.title),
            for_line,
            escape(&n.link),
            escape(&n.request_id)
        );
        serde_json::json!({
            "text": clip(&text, 3000),
            "blocks": [
                { "type": "header", "text": { "type": "plain_text", "text": clip(&n.title, 150) } },
                { "type": "section", "text": { "type": "mrkdwn", "text": clip(&escape(&n.text), 3000) } },
                { "type": "actions", "elements": [{
                    "type": "button",
                    "text": { "type": "plain_text", "text": "Open in twokey" },
                    "url": n.link,
                }] },
                { "type": "context", "elements": [{ "type": "mrkdwn", "text": clip(&for_line, 300) }] },
            ],
        })
    }
}

#[async_trait]
impl Notifier for SlackNotifier {
    fn name(&self) -> String {
        "slack notifications".into()
    }

    async fn notify(&self, n: &Notification) -> Result<(), NotifyError> {
        let body = serde_json::to_vec(&Self::message(n)).map_err(|e| NotifyError::Encode {
            sink: self.name(),
            message: e.to_string(),
        })?;
        post_json(&self.client, &self.name(), &self.webhook_url, &[], body).await
    }
}

/// Sends each recipient with an address one plain-text email over SMTP
/// (lettre, tokio, rustls).
pub struct EmailNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    host: String,
}

impl EmailNotifier {
    /// A notifier for `cfg`.
    pub fn new(cfg: &EmailConfig) -> Result<Self, String> {
        let from: Mailbox = cfg.from.parse().map_err(|e| {
            format!(
                "[notifications.email] from {:?} is not an email address: {e}",
                cfg.from
            )
        })?;
        let bad = |e: lettre::transport::smtp::Error| {
            format!("[notifications.email] host {:?}: {e}", cfg.host)
        };
        let mut b = match cfg.security {
            SmtpSecurity::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&cfg.host).map_err(bad)?
            }
            SmtpSecurity::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(&cfg.host).map_err(bad)?
            }
            SmtpSecurity::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host)
            }
        };
        let port = cfg.port.unwrap_or(match cfg.security {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        });
        b = b.port(port).timeout(Some(crate::SEND_TIMEOUT));
        match (&cfg.username, &cfg.password) {
            (Some(u), Some(p)) => {
                b = b.credentials(Credentials::new(u.clone(), p.expose().to_string()))
            }
            (None, None) => {}
            _ => {
                return Err(
                    "[notifications.email] give both username and password, or neither".into(),
                )
            }
        }
        Ok(Self {
            transport: b.build(),
            from,
            host: cfg.host.clone(),
        })
    }
}

#[async_trait]
impl Notifier for EmailNotifier {
    fn name(&self) -> String {
        format!("email via {}", self.host)
    }

    async fn notify(&self, n: &Notification) -> Result<(), NotifyError> {
        for r in &n.to {
            let Some(addr) = &r.email else { continue };
            let to: Mailbox = match format!("{} <{addr}>", r.name.replace(['<', '>', '"'], ""))
                .parse()
                .or_else(|_| addr.parse())
            {
                Ok(m) => m,
                Err(e) => {
                    // A bad address will not get better by retrying.
                    tracing::warn!(recipient = %r.name, error = %e, "bad email address; skipped");
                    continue;
                }
            };
            let msg = Message::builder()
                .from(self.from.clone())
                .to(to)
                .subject(clip(&n.title, 200))
                .header(ContentType::TEXT_PLAIN)
                .body(n.text.clone())
                .map_err(|e| NotifyError::Encode {
                    sink: self.name(),
                    message: e.to_string(),
                })?;
            self.transport
                .send(msg)
                .await
                .map_err(|e| NotifyError::Transport {
                    sink: self.name(),
                    message: e.to_string(),
                })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<NotificationsConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn config_mistakes_are_named() {
        let ok = parse(
            "slack_webhook_url = \"https://hooks.slack.com/services/T/B/X\"\n[email]\nhost = \"smtp.example.com\"\nfrom = \"twokey <twokey@example.com>\"\n",
        )
        .expect("valid");
        assert_eq!(
            ok.email.as_ref().map(|e| e.security),
            Some(SmtpSecurity::Starttls)
        );
        assert_eq!(build_notifiers(&ok).expect("build").len(), 2);

        let bad_from = parse("[email]\nhost = \"h\"\nfrom = \"not an address\"\n").expect("parses");
        let err = build_notifiers(&bad_from).err().expect("refused");
        assert!(err.contains("from"), "{err}");

        let half =
            parse("[email]\nhost = \"h\"\nfrom = \"a@b.c\"\nusername = \"u\"\n").expect("parses");
        let err = build_notifiers(&half).err().expect("refused");
        assert!(err.contains("username and password"), "{err}");

        assert!(parse("[email]\nhost = \"h\"\nfrom = \"a@b.c\"\nsecurity = \"ssl\"\n").is_err());
        assert!(
            parse("slack = \"x\"\n").is_err(),
            "unknown keys are refused"
        );
        let bad_url = parse("slack_webhook_url = \"not a url\"\n").expect("parses");
        assert!(build_notifiers(&bad_url).is_err());
    }

    #[test]
    fn slack_message_names_the_people_and_links_the_request() {
        let n = Notification {
            kind: "approval_needed".into(),
            request_id: "req-1".into(),
            title: "Approval needed: req-1".into(),
            text: "alice asks <b>".into(),
            link: "https://twokey.example.com/ui/requests/req-1".into(),
            to: vec![
                Recipient {
                    name: "bob".into(),
                    email: None,
                },
                Recipient {
                    name: "carol".into(),
                    email: Some("c@example.com".into()),
                },
            ],
        };
        let m = SlackNotifier::message(&n);
        let text = m["text"].as_str().unwrap_or("");
        assert!(text.contains("For: bob, carol"), "{text}");
        assert!(
            text.contains("<https://twokey.example.com/ui/requests/req-1|Open request req-1>"),
            "{text}"
        );
        assert!(m.to_string().contains("&lt;b&gt;"), "mrkdwn is escaped");
    }
}
