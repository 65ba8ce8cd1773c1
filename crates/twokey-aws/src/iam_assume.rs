//! `aws_iam_assume`: temporary permission to assume a role, granted to the
//! requester's own IAM principal in the gateway account (the way AWS TARP-style
//! tools work).
//!
//! ```toml
//! [entitlement.target]
//! role_arn = "arn:aws:iam::222233334444:role/prod-admin"     # the target role
//! principals = { alice = "arn:aws:iam::111122223333:user/alice",
//!                bob = "arn:aws:iam::111122223333:role/bob-workstation" }
//! # cross-account: the gateway assumes this role to edit the target role
//! assume_role_arn = "arn:aws:iam::222233334444:role/twokey-revoker"
//! account = "222233334444"
//! # required when the role is in the same account as a principal:
//! # trust = "account_root"
//! # optional: region = "eu-west-1", endpoint_url = "..."
//! ```
//!
//! **Standing trust.** In the *same* account, a trust policy that names the
//! user's (or role's) own ARN lets AWS allow `sts:AssumeRole` from the trust
//! alone, with no identity policy: the person could assume the role with no
//! grant and after every grant's end. A target whose role shares an account
//! with a principal is therefore refused when the policy loads unless it says
//! `trust = "account_root"`: the role's trust names the account
//! (`arn:aws:iam::ACCOUNT:root`), which makes AWS require the identity policy
//! twokey grants, in the same and the cross-account case alike. Every grant
//! reads the role's trust (the `GetRole` it already makes) and refuses, with
//! an alert, a trust that would let the person in without the grant
//! ([`crate::trust::standing_trust`]) or that does not admit them at all.
//!
//! **grant** puts an inline policy `twokey-<request id>` on the requester's
//! principal (a user or role in the gateway account) allowing `sts:AssumeRole`
//! and `sts:SetSourceIdentity` on `role_arn`, only while `aws:CurrentTime` is
//! before the grant's end (access ends on time even if twokey is down) and only
//! with `sts:SourceIdentity` equal to the requester's twokey name (CloudTrail
//! attributes every action of the session to the person). It first checks that
//! the target role exists (STS in some emulators accepts any role name).
//!
//! **revoke** deletes that policy, then, unless [`GrantSpec::overlapping_active`]
//! says the person still holds another grant of this role, cuts off their live
//! sessions: the target role's inline policy `twokey-revoked-sessions` gets (or
//! moves forward) one statement per person denying `*` to sessions whose
//! `aws:SourceIdentity` is that person and whose `aws:TokenIssueTime` is before
//! the revoke time plus [`REVOKE_MARGIN`] (IAM propagation and clock skew).
//! Other people's sessions are untouched. Statements older than
//! [`MAX_SESSION`] plus the margin are pruned: no session issued before them
//! can still be alive.
//!
//! **check** reports whether the inline policy exists.
//!
//! The target role's trust policy must trust the gateway **account** (never a
//! person directly) and demand a source identity:
//!
//! ```json
//! {"Version": "2012-10-17", "Statement": [{
//!   "Effect": "Allow",
//!   "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
//!   "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
//!   "Condition": {"StringLike": {"sts:SourceIdentity": "*"}}
//! }]}
//! ```
//!
//! The gateway needs `iam:PutUserPolicy`/`iam:PutRolePolicy`,
//! `iam:DeleteUserPolicy`/`iam:DeleteRolePolicy`, `iam:GetUserPolicy`/
//! `iam:GetRolePolicy` and `iam:ListUserPolicies`/`iam:ListRolePolicies` on the
//! principals; and, on the target role (through `assume_role_arn` when the
//! role is in another account), `iam:GetRole`, `iam:GetRolePolicy` and
//! `iam:PutRolePolicy`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};
use twokey_providers::{
    GrantOutcome, GrantSpec, Presence, Provider, ProviderContext, ProviderError,
};

use crate::client::{aws_error, error_code, iso8601, parse_target, Arn, Connection, Lazy};
use crate::reconcile::{Found, Reconcile};

const KIND: &str = "aws_iam_assume";
/// Prefix of the grant policies' names (`twokey-<request id>`).
pub const POLICY_PREFIX: &str = "twokey-";
/// Name of the deny policy on the target role.
pub const REVOKED_POLICY: &str = "twokey-revoked-sessions";
/// Added to the revoke time in the deny: sessions issued while the deleted
/// grant policy was still propagating, or under a skewed clock, are cut too.
pub const REVOKE_MARGIN: Duration = Duration::from_secs(60);
/// Longest role session AWS issues (`MaxSessionDuration` at most 12 hours).
pub const MAX_SESSION: Duration = Duration::from_secs(12 * 3600);
/// How often revoke re-reads the deny policy to confirm its statement
/// survived a concurrent revoke of someone else.
const DENY_WRITE_ATTEMPTS: usize = 5;

#[derive(Debug, Deserialize)]
struct Raw {
    role_arn: String,
    principals: BTreeMap<String, String>,
    #[serde(default)]
    trust: Option<TrustForm>,
    #[serde(flatten)]
    connection: Connection,
}

/// How the target role's trust policy keeps out anyone without a grant
/// (`trust = "..."` in the target).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustForm {
    /// The trust names the gateway account (`arn:aws:iam::ACCOUNT:root`), so
    /// AWS requires the identity policy that twokey grants; checked at every
    /// grant.
    AccountRoot,
}

/// An IAM principal in the gateway account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An IAM user, by name.
    User(String),
    /// An IAM role, by name.
    Role(String),
}

/// A validated `aws_iam_assume` target.
#[derive(Debug, Clone)]
pub struct AssumeConfig {
    /// The role the grant lets the requester assume.
    pub role_arn: String,
    /// The target role's name.
    pub role_name: String,
    /// The target role's account.
    pub role_account: String,
    /// Identity name → (principal ARN, principal).
    pub principals: BTreeMap<String, (String, Principal)>,
    /// How standing trust is excluded, when the entitlement says so.
    pub trust: Option<TrustForm>,
    /// Where and as whom to call AWS (`assume_role_arn` applies to the target
    /// role only; principals are edited with the gateway's own credentials).
    pub connection: Connection,
}

impl AssumeConfig {
    /// Reads and validates a target table.
    pub fn from_target(target: &toml::Table) -> Result<Self, ProviderError> {
        let raw: Raw = parse_target(KIND, target, &["role_arn", "principals", "trust"])?;
        raw.connection.validate(KIND)?;
        let role = Arn::parse(&raw.role_arn)
            .filter(|a| a.kind == "role")
            .ok_or_else(|| {
                ProviderError::permanent(format!(
                    "{KIND} target: `role_arn` = {:?} is not an IAM role ARN",
                    raw.role_arn
                ))
            })?;
        if let Some(a) = &raw.connection.account {
            if *a != role.account {
                return Err(ProviderError::permanent(format!(
                    "{KIND} target: `role_arn` {:?} is not in account {a}",
                    raw.role_arn
                )));
            }
        }
        if raw.principals.is_empty() {
            return Err(ProviderError::permanent(format!(
                "{KIND} target: `principals` is empty; map each identity name to its IAM user or role ARN"
            )));
        }
        let mut principals = BTreeMap::new();
        for (who, arn) in raw.principals {
            let p = Arn::parse(&arn);
            let principal = match p.as_ref().map(|a| (a.kind.as_str(), a.name.clone())) {
                Some(("user", n)) => Principal::User(n),
                Some(("role", n)) => Principal::Role(n),
                _ => {
                    return Err(ProviderError::permanent(format!(
                    "{KIND} target: principal of {who:?} = {arn:?} is not an IAM user or role ARN"
                )))
                }
            };
            if let Some(p) = p {
                if p.account == role.account && raw.trust.is_none() {
                    return Err(ProviderError::permanent(format!(
                        "{KIND} target: `role_arn` {:?} is in account {}, the same account as \
                         {who:?}'s principal {arn:?}: there a trust policy that names the principal \
                         lets AWS allow AssumeRole with no twokey grant, and after every grant's end \
                         (standing access). Make the role's trust name the account \
                         (\"arn:aws:iam::{}:root\") and set `trust = \"account_root\"`; twokey \
                         checks the trust at every grant",
                        raw.role_arn, role.account, role.account
                    )));
                }
                if p.account != role.account && raw.connection.assume_role_arn.is_none() {
                    return Err(ProviderError::permanent(format!(
                        "{KIND} target: `role_arn` is in account {} but {who:?}'s principal is in {}: \
                         set `assume_role_arn` to a role in {} that may edit the target role",
                        role.account, p.account, role.account
                    )));
                }
            }
            principals.insert(who, (arn, principal));
        }
        Ok(Self {
            role_arn: raw.role_arn,
            role_name: role.name,
            role_account: role.account,
            principals,
            trust: raw.trust,
            connection: raw.connection,
        })
    }
}

/// The grant policy document.
pub fn grant_policy(role_arn: &str, ends_at: &str, source_identity: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "TwokeyGrant",
            "Effect": "Allow",
            "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
            "Resource": role_arn,
            "Condition": {
                "DateLessThan": {"aws:CurrentTime": ends_at},
                "StringEquals": {"sts:SourceIdentity": source_identity}
            }
        }]
    })
    .to_string()
}

/// Reads the per-person revoke times (ISO 8601) out of a deny policy.
pub fn revoked_sessions(doc: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Ok(v) = serde_json::from_str::<Value>(doc) else {
        return out;
    };
    let statements = match &v["Statement"] {
        Value::Array(a) => a.clone(),
        s @ Value::Object(_) => vec![s.clone()],
        _ => vec![],
    };
    for s in statements {
        let who = s["Condition"]["StringEquals"]["aws:SourceIdentity"].as_str();
        let before = s["Condition"]["DateLessThan"]["aws:TokenIssueTime"].as_str();
        if let (Some(w), Some(b)) = (who, before) {
            out.insert(w.to_string(), b.to_string());
        }
    }
    out
}

/// The deny policy for per-person revoke times.
pub fn revoked_policy(people: &BTreeMap<String, String>) -> String {
    let statements: Vec<Value> = people
        .iter()
        .enumerate()
        .map(|(i, (who, before))| {
            json!({
                "Sid": format!("TwokeyRevoked{i}"),
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"aws:SourceIdentity": who},
                    "DateLessThan": {"aws:TokenIssueTime": before}
                }
            })
        })
        .collect();
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

/// Whether a policy document has an `Allow` statement whose `Resource` is
/// `role_arn` or `*` (a document that does not parse counts as allowing: it
/// is under a twokey name and nobody can say what it does).
pub fn allows_on(doc: &str, role_arn: &str) -> bool {
    let Ok(v) = serde_json::from_str::<Value>(doc) else {
        return true;
    };
    let statements = match &v["Statement"] {
        Value::Array(a) => a.clone(),
        s @ Value::Object(_) => vec![s.clone()],
        _ => vec![],
    };
    statements.iter().any(|s| {
        let allow = s["Effect"].as_str() == Some("Allow");
        let hits = |r: &Value| r.as_str().is_some_and(|r| r == role_arn || r == "*");
        let res = match &s["Resource"] {
            Value::Array(a) => a.iter().any(hits),
            r => hits(r),
        };
        allow && res
    })
}

/// IAM returns policy documents URL-encoded; decodes `%XX` (and leaves plain
/// JSON alone).
pub fn decode_policy(doc: &str) -> String {
    if doc.trim_start().starts_with('{') {
        return doc.to_string();
    }
    let b = doc.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Grants and revokes the permission to assume the role; see the
/// [module docs](self).
#[derive(Debug)]
pub struct AssumeRoleProvider {
    config: AssumeConfig,
    gateway: Lazy<aws_sdk_iam::Client>,
    target: Lazy<aws_sdk_iam::Client>,
}

/// Builds an [`AssumeRoleProvider`] from a target table.
pub fn factory(
    target: &toml::Table,
    _ctx: &ProviderContext,
) -> Result<Arc<dyn Provider>, ProviderError> {
    Ok(Arc::new(AssumeRoleProvider::from_target(target)?))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl AssumeRoleProvider {
    /// A provider for one validated target.
    pub fn new(config: AssumeConfig) -> Self {
        Self {
            config,
            gateway: Lazy::default(),
            target: Lazy::default(),
        }
    }

    /// Builds from a target table, for callers that also want [`Reconcile`].
    pub fn from_target(target: &toml::Table) -> Result<Self, ProviderError> {
        Ok(Self::new(AssumeConfig::from_target(target)?))
    }

    /// The validated configuration.
    pub fn config(&self) -> &AssumeConfig {
        &self.config
    }

    async fn gateway(&self) -> &aws_sdk_iam::Client {
        self.gateway
            .get(|| async {
                aws_sdk_iam::Client::new(&self.config.connection.load_gateway().await)
            })
            .await
    }

    async fn target(&self) -> &aws_sdk_iam::Client {
        self.target
            .get(|| async { aws_sdk_iam::Client::new(&self.config.connection.load().await) })
            .await
    }

    fn principal_of(&self, who: &str) -> Result<&(String, Principal), ProviderError> {
        self.config.principals.get(who).ok_or_else(|| {
            ProviderError::permanent(format!(
                "{KIND}: no IAM principal for {who:?} in the target's `principals`"
            ))
        })
    }

    fn role_what(&self) -> String {
        format!("target role {}", self.config.role_arn)
    }

    async fn put_policy(
        &self,
        arn: &str,
        p: &Principal,
        name: &str,
        doc: &str,
    ) -> Result<(), ProviderError> {
        let c = self.gateway().await;
        let what = format!("principal {arn}");
        match p {
            Principal::User(u) => c
                .put_user_policy()
                .user_name(u)
                .policy_name(name)
                .policy_document(doc)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws_error("PutUserPolicy", &what, e)),
            Principal::Role(r) => c
                .put_role_policy()
                .role_name(r)
                .policy_name(name)
                .policy_document(doc)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws_error("PutRolePolicy", &what, e)),
        }
    }

    async fn delete_policy(
        &self,
        arn: &str,
        p: &Principal,
        name: &str,
    ) -> Result<(), ProviderError> {
        let c = self.gateway().await;
        let what = format!("principal {arn}");
        let res = match p {
            Principal::User(u) => c
                .delete_user_policy()
                .user_name(u)
                .policy_name(name)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    (
                        error_code(&e) == Some("NoSuchEntity"),
                        aws_error("DeleteUserPolicy", &what, e),
                    )
                }),
            Principal::Role(r) => c
                .delete_role_policy()
                .role_name(r)
                .policy_name(name)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    (
                        error_code(&e) == Some("NoSuchEntity"),
                        aws_error("DeleteRolePolicy", &what, e),
                    )
                }),
        };
        match res {
            Ok(()) | Err((true, _)) => Ok(()),
            Err((false, e)) => Err(e),
        }
    }

    async fn has_policy(
        &self,
        arn: &str,
        p: &Principal,
        name: &str,
    ) -> Result<bool, ProviderError> {
        Ok(self.policy_doc(arn, p, name).await?.is_some())
    }

    /// The (decoded) document of an inline policy; `None` when the policy or
    /// the principal does not exist (either way: no access through it).
    async fn policy_doc(
        &self,
        arn: &str,
        p: &Principal,
        name: &str,
    ) -> Result<Option<String>, ProviderError> {
        let c = self.gateway().await;
        let what = format!("principal {arn}");
        let res = match p {
            Principal::User(u) => c
                .get_user_policy()
                .user_name(u)
                .policy_name(name)
                .send()
                .await
                .map(|o| o.policy_document().to_string())
                .map_err(|e| {
                    (
                        error_code(&e) == Some("NoSuchEntity"),
                        aws_error("GetUserPolicy", &what, e),
                    )
                }),
            Principal::Role(r) => c
                .get_role_policy()
                .role_name(r)
                .policy_name(name)
                .send()
                .await
                .map(|o| o.policy_document().to_string())
                .map_err(|e| {
                    (
                        error_code(&e) == Some("NoSuchEntity"),
                        aws_error("GetRolePolicy", &what, e),
                    )
                }),
        };
        match res {
            Ok(doc) => Ok(Some(decode_policy(&doc))),
            Err((true, _)) => Ok(None),
            Err((false, e)) => Err(e),
        }
    }

    /// Names of the principal's inline policies.
    async fn policy_names(&self, arn: &str, p: &Principal) -> Result<Vec<String>, ProviderError> {
        let c = self.gateway().await;
        let what = format!("principal {arn}");
        let mut names = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let (page, more, next) = match p {
                Principal::User(u) => {
                    let o = c
                        .list_user_policies()
                        .user_name(u)
                        .set_marker(marker.clone())
                        .send()
                        .await
                        .map_err(|e| aws_error("ListUserPolicies", &what, e))?;
                    (
                        o.policy_names().to_vec(),
                        o.is_truncated(),
                        o.marker().map(str::to_string),
                    )
                }
                Principal::Role(r) => {
                    let o = c
                        .list_role_policies()
                        .role_name(r)
                        .set_marker(marker.clone())
                        .send()
                        .await
                        .map_err(|e| aws_error("ListRolePolicies", &what, e))?;
                    (
                        o.policy_names().to_vec(),
                        o.is_truncated(),
                        o.marker().map(str::to_string),
                    )
                }
            };
            names.extend(page);
            match (more, next) {
                (true, Some(n)) => marker = Some(n),
                _ => return Ok(names),
            }
        }
    }

    /// Fails with a clear message if the target role does not exist.
    async fn ensure_role(&self) -> Result<(), ProviderError> {
        self.role_trust().await.map(|_| ())
    }

    /// The target role's (decoded) trust policy; fails with a clear message if
    /// the role does not exist.
    async fn role_trust(&self) -> Result<String, ProviderError> {
        self.target()
            .await
            .get_role()
            .role_name(&self.config.role_name)
            .send()
            .await
            .map(|o| {
                o.role()
                    .and_then(|r| r.assume_role_policy_document())
                    .map(decode_policy)
                    .unwrap_or_default()
            })
            .map_err(|e| aws_error("GetRole", &self.role_what(), e))
    }

    /// Refuses a trust policy that would admit `arn` without the grant, or
    /// that does not admit it at all (see [`crate::trust`]).
    fn verify_trust(&self, trust: &str, who: &str, arn: &str) -> Result<(), ProviderError> {
        if let Some(why) = self.standing(trust, who, arn)? {
            return Err(ProviderError::permanent(why));
        }
        let role_account = &self.config.role_account;
        if !crate::trust::admits(trust, role_account, arn).map_err(|e| self.bad_trust(e))? {
            return Err(ProviderError::permanent(format!(
                "{KIND}: the trust policy of {} admits neither {arn} nor its account for \
                 sts:AssumeRole: {who:?} could not use the grant",
                self.role_what()
            )));
        }
        Ok(())
    }

    fn bad_trust(&self, e: crate::trust::BadTrust) -> ProviderError {
        ProviderError::permanent(format!(
            "{KIND}: cannot read the trust policy of {}: {e}",
            self.role_what()
        ))
    }

    /// Why the trust lets `who` in without any grant, if it does.
    fn standing(&self, trust: &str, who: &str, arn: &str) -> Result<Option<String>, ProviderError> {
        let role_account = &self.config.role_account;
        let found = crate::trust::standing_trust(trust, role_account, arn)
            .map_err(|e| self.bad_trust(e))?;
        Ok(found.map(|f| {
            format!(
                "{KIND}: refused: the trust policy of {} lets {who:?} ({arn}) assume it \
                 without any twokey grant: {f}, and in the same account that alone is enough \
                 (standing access). Name the account instead (\"arn:aws:iam::{role_account}:root\")",
                self.role_what()
            )
        }))
    }

    /// The current per-person revoke times on the target role.
    async fn read_revoked(&self) -> Result<BTreeMap<String, String>, ProviderError> {
        match self
            .target()
            .await
            .get_role_policy()
            .role_name(&self.config.role_name)
            .policy_name(REVOKED_POLICY)
            .send()
            .await
        {
            Ok(o) => Ok(revoked_sessions(&decode_policy(o.policy_document()))),
            Err(e) if error_code(&e) == Some("NoSuchEntity") => {
                // Either no deny yet, or no role: tell them apart.
                self.ensure_role().await?;
                Ok(BTreeMap::new())
            }
            Err(e) => Err(aws_error("GetRolePolicy", &self.role_what(), e)),
        }
    }

    /// Denies `who`'s sessions issued before `now + REVOKE_MARGIN`, keeping
    /// everyone else's statements and the newest time per person.
    pub async fn cut_sessions(&self, who: &str) -> Result<(), ProviderError> {
        let now = now_ms();
        let margin = i64::try_from(REVOKE_MARGIN.as_millis()).unwrap_or(0);
        let max_session = i64::try_from(MAX_SESSION.as_millis()).unwrap_or(0);
        let before = iso8601(now + margin)?;
        let prune_before = iso8601(now - max_session - margin)?;
        for _ in 0..DENY_WRITE_ATTEMPTS {
            let mut people = self.read_revoked().await?;
            // ISO 8601 UTC strings of one format order like the times.
            people.retain(|_, t| *t >= prune_before);
            let newest = match people.get(who) {
                Some(t) if *t >= before => t.clone(),
                _ => before.clone(),
            };
            people.insert(who.to_string(), newest.clone());
            self.target()
                .await
                .put_role_policy()
                .role_name(&self.config.role_name)
                .policy_name(REVOKED_POLICY)
                .policy_document(revoked_policy(&people))
                .send()
                .await
                .map_err(|e| {
                    aws_error(
                        "PutRolePolicy",
                        &format!("{} ({REVOKED_POLICY})", self.role_what()),
                        e,
                    )
                })?;
            // A concurrent revoke of someone else may have written over us.
            if self
                .read_revoked()
                .await?
                .get(who)
                .is_some_and(|t| *t >= newest)
            {
                return Ok(());
            }
        }
        Err(ProviderError::retryable(format!(
            "{KIND}: {REVOKED_POLICY} on {} kept changing; will retry",
            self.role_what()
        )))
    }
}

#[async_trait]
impl Provider for AssumeRoleProvider {
    async fn grant(&self, spec: &GrantSpec) -> Result<GrantOutcome, ProviderError> {
        let (arn, p) = self.principal_of(&spec.requester_name)?;
        let ends = iso8601(spec.ends_at_ms)?;
        let trust = self.role_trust().await?;
        self.verify_trust(&trust, &spec.requester_name, arn)?;
        let name = format!("{POLICY_PREFIX}{}", spec.request_id);
        self.put_policy(
            arn,
            p,
            &name,
            &grant_policy(&self.config.role_arn, &ends, &spec.requester_name),
        )
        .await?;
        Ok(GrantOutcome {
            secret: None,
            detail: format!(
                "{arn} may assume {} with source identity {:?} until {ends}",
                self.config.role_arn, spec.requester_name
            ),
        })
    }

    async fn revoke(&self, spec: &GrantSpec) -> Result<(), ProviderError> {
        let (arn, p) = self.principal_of(&spec.requester_name)?;
        self.delete_policy(arn, p, &format!("{POLICY_PREFIX}{}", spec.request_id))
            .await?;
        if spec.overlapping_active.is_empty() {
            self.cut_sessions(&spec.requester_name).await?;
        }
        Ok(())
    }

    async fn check(&self, spec: &GrantSpec) -> Result<Presence, ProviderError> {
        let (arn, p) = self.principal_of(&spec.requester_name)?;
        let present = self
            .has_policy(arn, p, &format!("{POLICY_PREFIX}{}", spec.request_id))
            .await?;
        Ok(Presence::of(present))
    }

    fn reconciler(&self) -> Option<&dyn Reconcile> {
        Some(self)
    }
}

#[async_trait]
impl Reconcile for AssumeRoleProvider {
    /// Inline policies named `twokey-*` on the mapped principals that allow
    /// something on this target's role (or on `*`). Policies for other roles
    /// belong to other entitlements that share the principals; the deny
    /// policy is not access and is not listed.
    async fn list_present(&self) -> Result<Vec<Found>, ProviderError> {
        let mut found = Vec::new();
        for (who, (arn, p)) in &self.config.principals {
            for name in self.policy_names(arn, p).await? {
                if let Some(id) = name.strip_prefix(POLICY_PREFIX) {
                    if name == REVOKED_POLICY {
                        continue;
                    }
                    match self.policy_doc(arn, p, &name).await? {
                        Some(doc) if allows_on(&doc, &self.config.role_arn) => {}
                        _ => continue,
                    }
                    found.push(Found {
                        request_ids: vec![id.to_string()],
                        requester: Some(who.clone()),
                        resource: format!("{arn}#{name}"),
                    });
                }
            }
        }
        Ok(found)
    }

    /// Principals the target role's trust admits without any grant.
    async fn standing_access(&self) -> Result<Vec<String>, ProviderError> {
        let trust = self.role_trust().await?;
        let mut out = Vec::new();
        for (who, (arn, _)) in &self.config.principals {
            out.extend(self.standing(&trust, who, arn)?);
        }
        Ok(out)
    }

    /// Deletes the inline policy; when that person has no other twokey policy
    /// left on the principal, also denies their sessions issued until now.
    async fn remove(&self, found: &Found) -> Result<(), ProviderError> {
        let Some((who, (arn, p))) = self
            .config
            .principals
            .iter()
            .find(|(_, (arn, _))| found.resource.split('#').next() == Some(arn.as_str()))
        else {
            return Ok(());
        };
        let Some(name) = found.resource.split('#').nth(1) else {
            return Ok(());
        };
        self.delete_policy(arn, p, name).await?;
        let others = self
            .policy_names(arn, p)
            .await?
            .into_iter()
            .any(|n| n.starts_with(POLICY_PREFIX) && n != REVOKED_POLICY);
        if !others {
            self.cut_sessions(who).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_policy_round_trips_per_person() {
        let mut people = BTreeMap::new();
        people.insert("alice".to_string(), "2026-11-23T13:00:00Z".to_string());
        people.insert("bob".to_string(), "2026-11-23T14:00:00Z".to_string());
        let doc = revoked_policy(&people);
        assert_eq!(revoked_sessions(&doc), people);
        let v: Value = serde_json::from_str(&doc).expect("json");
        assert_eq!(
            v["Statement"][1]["Condition"]["StringEquals"]["aws:SourceIdentity"],
            "bob"
        );
        assert_eq!(v["Statement"][1]["Effect"], "Deny");
    }

    #[test]
    fn url_encoded_documents() {
        assert_eq!(decode_policy("%7B%22a%22%3A1%7D"), "{\"a\":1}");
        assert_eq!(decode_policy("{\"a\":\"%41\"}"), "{\"a\":\"%41\"}");
        assert_eq!(decode_policy("%7"), "%7");
    }

    #[test]
    fn grant_policy_has_both_conditions() {
        let v: Value = serde_json::from_str(&grant_policy(
            "arn:aws:iam::1:role/r",
            "2026-01-01T00:00:00Z",
            "alice",
        ))
        .expect("json");
        let c = &v["Statement"][0]["Condition"];
        assert_eq!(c["DateLessThan"]["aws:CurrentTime"], "2026-01-01T00:00:00Z");
        assert_eq!(c["StringEquals"]["sts:SourceIdentity"], "alice");
    }

    #[test]
    fn policies_for_other_roles_are_not_this_targets() {
        let role = "arn:aws:iam::1:role/r";
        assert!(allows_on(
            &grant_policy(role, "2026-01-01T00:00:00Z", "a"),
            role
        ));
        assert!(!allows_on(
            &grant_policy("arn:aws:iam::1:role/other", "2026-01-01T00:00:00Z", "a"),
            role
        ));
        assert!(allows_on(
            r#"{"Statement": {"Effect": "Allow", "Action": "*", "Resource": ["x", "*"]}}"#,
            role
        ));
        assert!(!allows_on(
            r#"{"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}"#,
            role
        ));
        assert!(allows_on("not json", role));
    }

    #[test]
    fn cross_account_needs_a_role() {
        let t: toml::Table = toml::from_str(
            r#"role_arn = "arn:aws:iam::222233334444:role/admin"
principals = { alice = "arn:aws:iam::111122223333:user/alice" }"#,
        )
        .expect("toml");
        let e = AssumeConfig::from_target(&t).expect_err("cross-account");
        assert!(e.message.contains("assume_role_arn"), "{}", e.message);
    }

    #[test]
    fn same_account_needs_the_account_root_trust() {
        let same = r#"role_arn = "arn:aws:iam::111122223333:role/admin"
principals = { alice = "arn:aws:iam::111122223333:user/alice" }"#;
        let t: toml::Table = toml::from_str(same).expect("toml");
        let e = AssumeConfig::from_target(&t).expect_err("same account, no trust form");
        assert!(e.message.contains("standing access"), "{}", e.message);
        assert!(
            e.message.contains("arn:aws:iam::111122223333:root"),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("trust = \"account_root\""),
            "{}",
            e.message
        );

        let t: toml::Table =
            toml::from_str(&format!("{same}\ntrust = \"account_root\"")).expect("toml");
        let c = AssumeConfig::from_target(&t).expect("declared");
        assert_eq!(c.trust, Some(TrustForm::AccountRoot));

        let t: toml::Table = toml::from_str(&format!("{same}\ntrust = \"user\"")).expect("toml");
        let e = AssumeConfig::from_target(&t).expect_err("unknown form");
        assert!(e.message.contains("account_root"), "{}", e.message);
    }
}
