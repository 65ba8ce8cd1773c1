//! `aws_root_task`: a root session in a member account for one of the five
//! AWS task policies, opened with `sts:AssumeRoot` only after the request was
//! approved (centralized root access for AWS Organizations).
//!
//! ```toml
//! [[entitlement]]
//! name = "unlock-payments-logs"
//! provider = "aws_root_task"
//! max_duration = "15m"                 # AssumeRoot sessions last at most 900 s
//! [entitlement.target]
//! accounts = ["222233334444"]          # member accounts
//! task = "S3UnlockBucketPolicy"        # one of the five task policies
//! action = "perform"                   # or "hand_out" (the default)
//! bucket = "payments-logs"             # perform S3UnlockBucketPolicy: the locked bucket
//! region = "eu-west-1"                 # AssumeRoot needs a regional STS endpoint
//! # optional: sts_endpoint_url = "...", endpoint_url = "...", assume_role_arn = "..."
//! ```
//!
//! twokey runs with the management account's (or the IAM delegated
//! administrator's) credentials, or reaches them through `assume_role_arn`.
//!
//! **grant** calls `sts:AssumeRoot` for each account with the task policy
//! `arn:aws:iam::aws:policy/root-task/<task>` and a `DurationSeconds` that
//! ends the session no later than the grant (never more than
//! [`MAX_SESSION`]). Every answer is checked before use: it must carry
//! credentials whose expiry matches the session asked for (an answer to some
//! other call expires at another time), whose access key was not issued to
//! another grant (a replayed answer), and which STS itself says belong to the
//! target account (`GetCallerIdentity` with them: a forged answer fails).
//! Then, by `action`:
//!
//! - `hand_out`: the credentials become the grant's one-time secret (shown to
//!   the requester once, like the PostgreSQL password), as JSON keyed by
//!   account, each value in the AWS CLI `credential_process` shape;
//! - `perform`: twokey does the task itself with the session and drops the
//!   credentials: `S3UnlockBucketPolicy` deletes the policy of `bucket`;
//!   `IAMDeleteRootUserCredentials` deletes the root user's login profile,
//!   access keys and signing certificates and deactivates its MFA devices.
//!   What it did is the grant's detail, which the ledger records with the
//!   activation.
//!
//! **revoke** has nothing to remove: AWS offers no way to end a root session
//! early. **check** therefore reports a handed-out session present until the
//! grant's end (its expiry is never later), so an early revoke is confirmed
//! only when the session has expired; a performed task's session is held by
//! nobody (twokey dropped it) and is absent.
//!
//! A grant can never outlast [`MAX_SESSION`]: an entitlement whose
//! `max_duration` is longer is refused when the policy loads
//! ([`Provider::max_grant`]), and a longer grant is refused here too.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_credential_types::provider::SharedCredentialsProvider;
use serde::Deserialize;
use serde_json::json;
use twokey_providers::{
    GrantOutcome, GrantSpec, Presence, Provider, ProviderContext, ProviderError,
};

use crate::client::{aws_error, iso8601, parse_target, Connection, Lazy};

const KIND: &str = "aws_root_task";
/// The longest root session `sts:AssumeRoot` issues, and so the longest grant.
pub const MAX_SESSION: Duration = Duration::from_secs(900);
/// How far an answer's expiry may be from the one asked for (slow answers,
/// clock skew between twokey and STS).
pub const EXPIRY_TOLERANCE: Duration = Duration::from_secs(60);

/// The five AWS managed task policies a root session can be scoped to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Task {
    /// Review root user credentials (read only).
    #[serde(rename = "IAMAuditRootUserCredentials")]
    IamAuditRootUserCredentials,
    /// Allow password recovery: create a root login profile.
    #[serde(rename = "IAMCreateRootUserPassword")]
    IamCreateRootUserPassword,
    /// Delete root credentials (password, access keys, certificates, MFA).
    #[serde(rename = "IAMDeleteRootUserCredentials")]
    IamDeleteRootUserCredentials,
    /// Delete a bucket policy that denies every principal.
    #[serde(rename = "S3UnlockBucketPolicy")]
    S3UnlockBucketPolicy,
    /// Delete a queue policy that denies every principal.
    #[serde(rename = "SQSUnlockQueuePolicy")]
    SqsUnlockQueuePolicy,
}

impl Task {
    /// Every task, in AWS's order.
    pub const ALL: [Task; 5] = [
        Task::IamAuditRootUserCredentials,
        Task::IamCreateRootUserPassword,
        Task::IamDeleteRootUserCredentials,
        Task::S3UnlockBucketPolicy,
        Task::SqsUnlockQueuePolicy,
    ];

    /// The policy's name as AWS spells it.
    pub fn name(self) -> &'static str {
        match self {
            Task::IamAuditRootUserCredentials => "IAMAuditRootUserCredentials",
            Task::IamCreateRootUserPassword => "IAMCreateRootUserPassword",
            Task::IamDeleteRootUserCredentials => "IAMDeleteRootUserCredentials",
            Task::S3UnlockBucketPolicy => "S3UnlockBucketPolicy",
            Task::SqsUnlockQueuePolicy => "SQSUnlockQueuePolicy",
        }
    }

    /// The managed policy's ARN, `arn:aws:iam::aws:policy/root-task/<name>`.
    pub fn policy_arn(self) -> String {
        format!("arn:aws:iam::aws:policy/root-task/{}", self.name())
    }

    /// The task whose policy ARN (or name) this is.
    pub fn from_policy_arn(arn: &str) -> Option<Task> {
        let name = arn.rsplit('/').next().unwrap_or(arn);
        Task::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What twokey does with the root session once it is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Show the session's credentials to the requester, once.
    #[default]
    HandOut,
    /// Do the task itself and drop the credentials.
    Perform,
}

#[derive(Debug, Deserialize)]
struct Raw {
    accounts: Vec<String>,
    task: Task,
    #[serde(default)]
    action: Action,
    #[serde(default)]
    bucket: Option<String>,
    #[serde(default)]
    sts_endpoint_url: Option<String>,
    #[serde(flatten)]
    connection: Connection,
}

/// A validated `aws_root_task` target.
#[derive(Debug, Clone)]
pub struct RootTaskConfig {
    /// Member accounts a grant opens a root session in.
    pub accounts: Vec<String>,
    /// The task policy every session is scoped to.
    pub task: Task,
    /// Hand the credentials out or perform the task.
    pub action: Action,
    /// The bucket to unlock (`perform` of `S3UnlockBucketPolicy`).
    pub bucket: Option<String>,
    /// STS endpoint override (default: `endpoint_url`, else AWS's regional one).
    pub sts_endpoint_url: Option<String>,
    /// Where and as whom to call AWS (the management account or delegated admin).
    pub connection: Connection,
}

impl RootTaskConfig {
    /// Reads and checks a target table.
    pub fn from_target(target: &toml::Table) -> Result<Self, ProviderError> {
        let raw: Raw = parse_target(
            KIND,
            target,
            &["accounts", "task", "action", "bucket", "sts_endpoint_url"],
        )?;
        let bad = |m: String| Err(ProviderError::permanent(format!("{KIND} target: {m}")));
        raw.connection.validate(KIND)?;
        if raw.connection.account.is_some() {
            return bad("`account` does not apply; name the member accounts in `accounts`".into());
        }
        if raw.accounts.is_empty() {
            return bad("`accounts` is empty; name at least one member account".into());
        }
        for (i, a) in raw.accounts.iter().enumerate() {
            if a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()) {
                return bad(format!(
                    "`accounts[{i}]` = {a:?} is not a 12-digit AWS account id"
                ));
            }
            if raw.accounts[..i].contains(a) {
                return bad(format!("`accounts` names {a} twice"));
            }
        }
        if let Some(u) = &raw.sts_endpoint_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return bad(format!(
                    "`sts_endpoint_url` = {u:?} must start with http:// or https://"
                ));
            }
        }
        match (raw.action, raw.task, &raw.bucket) {
            (Action::Perform, Task::S3UnlockBucketPolicy, Some(b)) => {
                if b.is_empty() || b.contains('/') {
                    return bad(format!("`bucket` = {b:?} is not a bucket name"));
                }
                if raw.accounts.len() != 1 {
                    return bad(
                        "a bucket belongs to one account: `accounts` must name exactly one to unlock `bucket`"
                            .into(),
                    );
                }
            }
            (Action::Perform, Task::S3UnlockBucketPolicy, None) => {
                return bad("`action = \"perform\"` of S3UnlockBucketPolicy needs `bucket`".into())
            }
            (_, _, Some(_)) => {
                return bad(
                    "`bucket` applies only to `action = \"perform\"` of S3UnlockBucketPolicy"
                        .into(),
                )
            }
            (Action::Perform, Task::IamDeleteRootUserCredentials, None) => {}
            (Action::Perform, t, None) => {
                return bad(format!(
                    "twokey performs S3UnlockBucketPolicy and IAMDeleteRootUserCredentials; use `action = \"hand_out\"` for {t}"
                ))
            }
            (Action::HandOut, _, None) => {}
        }
        Ok(Self {
            accounts: raw.accounts,
            task: raw.task,
            action: raw.action,
            bucket: raw.bucket,
            sts_endpoint_url: raw.sts_endpoint_url,
            connection: raw.connection,
        })
    }
}

/// The `aws_root_task` provider.
#[derive(Debug)]
pub struct RootTaskProvider {
    config: RootTaskConfig,
    sdk: Lazy<aws_config::SdkConfig>,
    /// Access keys of the sessions this process opened, with the request they
    /// were opened for and when they expire: an answer carrying one of them
    /// for another request is a replay.
    issued: Mutex<BTreeMap<String, (String, i64)>>,
}

/// Builds the provider from an entitlement's target table.
pub fn factory(
    target: &toml::Table,
    _ctx: &ProviderContext,
) -> Result<Arc<dyn Provider>, ProviderError> {
    Ok(Arc::new(RootTaskProvider::new(
        RootTaskConfig::from_target(target)?,
    )))
}

/// One opened root session (its secret key stays out of `Debug`).
struct Session {
    account: String,
    credentials: aws_credential_types::Credentials,
    expires_ms: i64,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl RootTaskProvider {
    /// A provider for one validated target.
    pub fn new(config: RootTaskConfig) -> Self {
        Self {
            config,
            sdk: Lazy::default(),
            issued: Mutex::new(BTreeMap::new()),
        }
    }

    async fn sdk(&self) -> &aws_config::SdkConfig {
        self.sdk.get(|| self.config.connection.load()).await
    }

    fn sts_config(&self, sdk: &aws_config::SdkConfig) -> aws_sdk_sts::config::Builder {
        let mut b = aws_sdk_sts::config::Builder::from(sdk);
        if let Some(u) = &self.config.sts_endpoint_url {
            b = b.endpoint_url(u);
        }
        b
    }

    /// The config of a root session: the gateway's settings with the
    /// session's credentials.
    fn session_sdk(&self, sdk: &aws_config::SdkConfig, s: &Session) -> aws_config::SdkConfig {
        sdk.to_builder()
            .credentials_provider(SharedCredentialsProvider::new(s.credentials.clone()))
            .build()
    }

    /// Opens and checks one root session.
    async fn open(&self, spec: &GrantSpec, account: &str) -> Result<Session, ProviderError> {
        let now = now_ms();
        let seconds = (spec.ends_at_ms - now) / 1000;
        if seconds <= 0 {
            return Err(ProviderError::permanent(format!(
                "{KIND}: the grant has already ended; no root session opened in {account}"
            )));
        }
        let seconds = seconds.min(MAX_SESSION.as_secs() as i64);
        let sdk = self.sdk().await;
        let sts = aws_sdk_sts::Client::from_conf(self.sts_config(sdk).build());
        let what = format!("member account {account} ({})", self.config.task);
        let out = sts
            .assume_root()
            .target_principal(account)
            .task_policy_arn(
                aws_sdk_sts::types::PolicyDescriptorType::builder()
                    .arn(self.config.task.policy_arn())
                    .build(),
            )
            .duration_seconds(seconds as i32)
            .send()
            .await
            .map_err(|e| aws_error("sts:AssumeRoot", &what, e))?;
        let c = out.credentials().ok_or_else(|| {
            ProviderError::permanent(format!(
                "STS answered AssumeRoot for {what} without credentials"
            ))
        })?;
        let expires_ms = c.expiration().to_millis().map_err(|_| {
            ProviderError::permanent(format!(
                "STS answered AssumeRoot for {what} with an unreadable expiry"
            ))
        })?;
        let after = now_ms();
        let tol = EXPIRY_TOLERANCE.as_millis() as i64;
        let asked = seconds * 1000;
        if expires_ms < now + asked - tol || expires_ms > after + asked + tol {
            return Err(ProviderError::permanent(format!(
                "STS answered AssumeRoot for {what} with a session expiring at {} instead of about {}: not an answer to this request; refused",
                iso8601(expires_ms)?,
                iso8601(now + asked)?
            )));
        }
        let session = Session {
            account: account.to_string(),
            credentials: aws_credential_types::Credentials::new(
                c.access_key_id(),
                c.secret_access_key(),
                Some(c.session_token().to_string()),
                std::time::UNIX_EPOCH.checked_add(Duration::from_millis(expires_ms as u64)),
                "twokey-assume-root",
            ),
            expires_ms,
        };
        self.confirm_account(sdk, &session, &what).await?;
        self.claim_key(spec, &session)?;
        Ok(session)
    }

    /// Records the session's access key for this request; refuses one already
    /// opened for another request (a replayed answer).
    fn claim_key(&self, spec: &GrantSpec, s: &Session) -> Result<(), ProviderError> {
        let key = s.credentials.access_key_id().to_string();
        let now = now_ms();
        let mut issued = self
            .issued
            .lock()
            .map_err(|_| ProviderError::permanent(format!("{KIND}: internal state poisoned")))?;
        issued.retain(|_, (_, exp)| *exp > now);
        if let Some((other, _)) = issued.get(&key) {
            if other != &spec.request_id {
                return Err(ProviderError::permanent(format!(
                    "STS answered AssumeRoot in {} with access key {key}, already issued for request {other}: a replayed answer; refused",
                    s.account
                )));
            }
        }
        issued.insert(key, (spec.request_id.clone(), s.expires_ms));
        Ok(())
    }

    /// Asks STS, with the session's own credentials, whose they are.
    async fn confirm_account(
        &self,
        sdk: &aws_config::SdkConfig,
        s: &Session,
        what: &str,
    ) -> Result<(), ProviderError> {
        let conf = aws_sdk_sts::config::Builder::from(&self.session_sdk(sdk, s));
        let conf = match &self.config.sts_endpoint_url {
            Some(u) => conf.endpoint_url(u),
            None => conf,
        };
        let me = aws_sdk_sts::Client::from_conf(conf.build())
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| {
                let mut err = aws_error("sts:GetCallerIdentity with the root session", what, e);
                err.retryable = false;
                err.message
                    .push_str("; the AssumeRoot answer's credentials are not accepted, refused");
                err
            })?;
        if me.account() != Some(s.account.as_str()) {
            return Err(ProviderError::permanent(format!(
                "the root session opened for {what} belongs to account {}: refused",
                me.account().unwrap_or("(none)")
            )));
        }
        Ok(())
    }

    /// Does the task with the session; returns what was done.
    async fn perform(&self, s: &Session) -> Result<String, ProviderError> {
        let sdk = self.session_sdk(self.sdk().await, s);
        match self.config.task {
            Task::S3UnlockBucketPolicy => {
                let bucket = self.config.bucket.as_deref().unwrap_or_default();
                let s3 = aws_sdk_s3::Client::from_conf(
                    aws_sdk_s3::config::Builder::from(&sdk)
                        .force_path_style(self.config.connection.endpoint_url.is_some())
                        .build(),
                );
                s3.delete_bucket_policy()
                    .bucket(bucket)
                    .expected_bucket_owner(&s.account)
                    .send()
                    .await
                    .map_err(|e| {
                        aws_error("s3:DeleteBucketPolicy", &format!("bucket {bucket}"), e)
                    })?;
                Ok(format!("deleted the bucket policy of s3://{bucket}"))
            }
            Task::IamDeleteRootUserCredentials => self.delete_root_credentials(&sdk).await,
            t => Err(ProviderError::permanent(format!(
                "{KIND}: twokey does not perform {t}"
            ))),
        }
    }

    /// Deletes the root user's credentials (no `UserName`: a root session's
    /// calls act on the root user).
    async fn delete_root_credentials(
        &self,
        sdk: &aws_config::SdkConfig,
    ) -> Result<String, ProviderError> {
        let iam = aws_sdk_iam::Client::new(sdk);
        let who = "the root user";
        let mut done = Vec::new();
        match iam.delete_login_profile().send().await {
            Ok(_) => done.push("the console password".to_string()),
            Err(e) if crate::client::error_code(&e) == Some("NoSuchEntity") => {}
            Err(e) => return Err(aws_error("iam:DeleteLoginProfile", who, e)),
        }
        let keys = iam
            .list_access_keys()
            .send()
            .await
            .map_err(|e| aws_error("iam:ListAccessKeys", who, e))?;
        for k in keys.access_key_metadata() {
            let Some(id) = k.access_key_id() else {
                continue;
            };
            iam.delete_access_key()
                .access_key_id(id)
                .send()
                .await
                .map_err(|e| aws_error("iam:DeleteAccessKey", who, e))?;
            done.push(format!("access key {id}"));
        }
        let certs = iam
            .list_signing_certificates()
            .send()
            .await
            .map_err(|e| aws_error("iam:ListSigningCertificates", who, e))?;
        for c in certs.certificates() {
            iam.delete_signing_certificate()
                .certificate_id(c.certificate_id())
                .send()
                .await
                .map_err(|e| aws_error("iam:DeleteSigningCertificate", who, e))?;
            done.push(format!("signing certificate {}", c.certificate_id()));
        }
        let mfa = iam
            .list_mfa_devices()
            .send()
            .await
            .map_err(|e| aws_error("iam:ListMFADevices", who, e))?;
        for d in mfa.mfa_devices() {
            iam.deactivate_mfa_device()
                .serial_number(d.serial_number())
                .send()
                .await
                .map_err(|e| aws_error("iam:DeactivateMFADevice", who, e))?;
            done.push(format!("MFA device {}", d.serial_number()));
        }
        Ok(if done.is_empty() {
            "the root user had no credentials left".into()
        } else {
            format!("deleted the root user's {}", done.join(", "))
        })
    }
}

/// The `credential_process` document of one session (AWS CLI v2 shape).
fn credential_process(s: &Session) -> Result<serde_json::Value, ProviderError> {
    Ok(json!({
        "Version": 1,
        "AccessKeyId": s.credentials.access_key_id(),
        "SecretAccessKey": s.credentials.secret_access_key(),
        "SessionToken": s.credentials.session_token(),
        "Expiration": iso8601(s.expires_ms)?,
    }))
}

#[async_trait]
impl Provider for RootTaskProvider {
    async fn grant(&self, spec: &GrantSpec) -> Result<GrantOutcome, ProviderError> {
        let longest = MAX_SESSION.as_millis() as i64;
        if spec.ends_at_ms - spec.starts_at_ms > longest {
            return Err(ProviderError::permanent(format!(
                "{KIND}: a grant of {} s is longer than the {} s a root session lasts; refused",
                (spec.ends_at_ms - spec.starts_at_ms) / 1000,
                MAX_SESSION.as_secs()
            )));
        }
        let task = self.config.task;
        let mut secret = serde_json::Map::new();
        let mut details = Vec::new();
        for account in &self.config.accounts {
            let s = self.open(spec, account).await?;
            let head = format!(
                "root session in {account} for {task} (access key {}, until {})",
                s.credentials.access_key_id(),
                iso8601(s.expires_ms)?
            );
            match self.config.action {
                Action::HandOut => {
                    secret.insert(account.clone(), credential_process(&s)?);
                    details.push(format!("{head}: handed to {}", spec.requester_name));
                }
                Action::Perform => {
                    let did = self.perform(&s).await?;
                    details.push(format!("{head}: {did}"));
                }
            }
        }
        Ok(GrantOutcome {
            secret: match self.config.action {
                Action::HandOut => Some(serde_json::Value::Object(secret).to_string()),
                Action::Perform => None,
            },
            detail: details.join("; "),
        })
    }

    async fn revoke(&self, _spec: &GrantSpec) -> Result<(), ProviderError> {
        // AWS cannot end a root session early; it expires by the grant's end.
        Ok(())
    }

    async fn check(&self, spec: &GrantSpec) -> Result<Presence, ProviderError> {
        Ok(Presence::of(
            self.config.action == Action::HandOut && now_ms() < spec.ends_at_ms,
        ))
    }

    fn max_grant(&self) -> Option<Duration> {
        Some(MAX_SESSION)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(s: &str) -> toml::Table {
        toml::from_str(s).expect("toml")
    }

    #[test]
    fn task_policy_arns() {
        assert_eq!(
            Task::S3UnlockBucketPolicy.policy_arn(),
            "arn:aws:iam::aws:policy/root-task/S3UnlockBucketPolicy"
        );
        for t in Task::ALL {
            assert_eq!(Task::from_policy_arn(&t.policy_arn()), Some(t));
        }
        assert_eq!(
            Task::from_policy_arn("arn:aws:iam::aws:policy/AdministratorAccess"),
            None
        );
    }

    #[test]
    fn targets_are_checked() {
        let ok = RootTaskConfig::from_target(&target(
            "accounts = [\"222233334444\"]\ntask = \"S3UnlockBucketPolicy\"\naction = \"perform\"\nbucket = \"b\"",
        ))
        .expect("valid");
        assert_eq!(ok.action, Action::Perform);
        let cases = [
            ("accounts = []\ntask = \"S3UnlockBucketPolicy\"", "is empty"),
            ("accounts = [\"12\"]\ntask = \"S3UnlockBucketPolicy\"", "12-digit"),
            ("accounts = [\"222233334444\"]\ntask = \"RootAll\"", "unknown variant"),
            ("accounts = [\"222233334444\"]\ntask = \"S3UnlockBucketPolicy\"\naction = \"perform\"", "needs `bucket`"),
            ("accounts = [\"222233334444\", \"333344445555\"]\ntask = \"S3UnlockBucketPolicy\"\naction = \"perform\"\nbucket = \"b\"", "exactly one"),
            ("accounts = [\"222233334444\"]\ntask = \"SQSUnlockQueuePolicy\"\naction = \"perform\"", "hand_out"),
            ("accounts = [\"222233334444\"]\ntask = \"IAMAuditRootUserCredentials\"\nbucket = \"b\"", "applies only"),
            ("accounts = [\"222233334444\", \"222233334444\"]\ntask = \"S3UnlockBucketPolicy\"", "twice"),
            ("accounts = [\"222233334444\"]\ntask = \"S3UnlockBucketPolicy\"\naccount = \"222233334444\"", "does not apply"),
            ("accounts = [\"222233334444\"]\ntask = \"S3UnlockBucketPolicy\"\nduration = 900", "unknown setting"),
        ];
        for (t, want) in cases {
            let e = RootTaskConfig::from_target(&target(t)).expect_err(t);
            assert!(e.message.contains(want), "{t}: {}", e.message);
        }
    }

    #[tokio::test]
    async fn a_grant_longer_than_a_root_session_is_refused_before_any_call() {
        // The endpoint is closed: reaching it would be a retryable error.
        let p = RootTaskProvider::new(
            RootTaskConfig::from_target(&target(
                "accounts = [\"222233334444\"]\ntask = \"IAMAuditRootUserCredentials\"\nendpoint_url = \"http://127.0.0.1:9\"",
            ))
            .expect("valid"),
        );
        let spec = GrantSpec {
            request_id: "r1".into(),
            entitlement: "e".into(),
            requester: "i|alice".into(),
            requester_name: "alice".into(),
            starts_at_ms: 0,
            ends_at_ms: 901_000,
            overlapping_active: vec![],
        };
        let e = p.grant(&spec).await.expect_err("too long");
        assert!(
            !e.retryable && e.message.contains("longer than the 900 s"),
            "{}",
            e.message
        );
        assert_eq!(p.max_grant(), Some(Duration::from_secs(900)));
    }
}
