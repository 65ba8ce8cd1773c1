//! `aws_identity_center`: an IAM Identity Center account assignment of a
//! permission set to the requester's user, for the grant (what AWS TEAM does).
//!
//! ```toml
//! [entitlement.target]
//! instance_arn = "arn:aws:sso:::instance/ssoins-1234567890abcdef"
//! permission_set_arn = "arn:aws:sso:::permissionSet/ssoins-1234567890abcdef/ps-0123456789abcdef"
//! account_id = "222233334444"
//! users = { alice = "9067b0d8a1-1234-5678-9abc-def012345678" }   # identity store user ids
//! # optional: region = "eu-west-1", endpoint_url = "...",
//! #           assume_role_arn = "arn:aws:iam::999988887777:role/twokey-sso" (the management
//! #           or delegated administrator account)
//! ```
//!
//! **grant** creates the assignment (principal type `USER`) unless it exists
//! and waits for AWS's asynchronous status to reach `SUCCEEDED` (a `FAILED`
//! status is a permanent error with AWS's reason). **revoke** deletes it, and
//! waits likewise, unless [`GrantSpec::overlapping_active`] is non-empty: the
//! assignment is one per user, permission set and account, so it is shared by
//! all the person's grants of it (AWS TEAM issue #279: one grant's expiry
//! removed an overlapping grant's access). **check** lists the assignments.
//!
//! twokey considers the assignments of this permission set in this account to
//! the users in `users` its own: the reconciler removes one no active grant of
//! that person covers. Keep standing assignments in another permission set.
//!
//! The gateway needs `sso:CreateAccountAssignment`,
//! `sso:DeleteAccountAssignment`, `sso:ListAccountAssignments`,
//! `sso:DescribeAccountAssignmentCreationStatus` and
//! `sso:DescribeAccountAssignmentDeletionStatus` (plus the IAM permissions
//! Identity Center needs to provision the role in the account).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_ssoadmin::types::{
    AccountAssignmentOperationStatus, PrincipalType, StatusValues, TargetType,
};
use serde::Deserialize;
use twokey_providers::{
    GrantOutcome, GrantSpec, Presence, Provider, ProviderContext, ProviderError,
};

use crate::client::{aws_error, error_code, parse_target, Connection, Lazy};
use crate::reconcile::{Found, Reconcile};

const KIND: &str = "aws_identity_center";
/// How long grant and revoke wait for an assignment operation to finish.
pub const OPERATION_WAIT: Duration = Duration::from_secs(120);
/// Pause between status polls.
const POLL: Duration = Duration::from_millis(1000);

#[derive(Debug, Deserialize)]
struct Raw {
    instance_arn: String,
    permission_set_arn: String,
    account_id: String,
    users: BTreeMap<String, String>,
    #[serde(flatten)]
    connection: Connection,
}

/// A validated `aws_identity_center` target.
#[derive(Debug, Clone)]
pub struct CenterConfig {
    /// The Identity Center instance.
    pub instance_arn: String,
    /// The permission set granted.
    pub permission_set_arn: String,
    /// The AWS account the permission set is assigned in.
    pub account_id: String,
    /// Identity name → identity store user id.
    pub users: BTreeMap<String, String>,
    /// Where and as whom to call AWS.
    pub connection: Connection,
}

impl CenterConfig {
    /// Reads and validates a target table.
    pub fn from_target(target: &toml::Table) -> Result<Self, ProviderError> {
        let raw: Raw = parse_target(
            KIND,
            target,
            &["instance_arn", "permission_set_arn", "account_id", "users"],
        )?;
        raw.connection.validate(KIND)?;
        if !raw.instance_arn.starts_with("arn:") || !raw.instance_arn.contains(":instance/") {
            return Err(ProviderError::permanent(format!(
                "{KIND} target: `instance_arn` = {:?} is not an Identity Center instance ARN",
                raw.instance_arn
            )));
        }
        if !raw.permission_set_arn.starts_with("arn:") || !raw.permission_set_arn.contains("/ps-") {
            return Err(ProviderError::permanent(format!(
                "{KIND} target: `permission_set_arn` = {:?} is not a permission set ARN",
                raw.permission_set_arn
            )));
        }
        if raw.account_id.len() != 12 || !raw.account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ProviderError::permanent(format!(
                "{KIND} target: `account_id` = {:?} is not a 12-digit AWS account id",
                raw.account_id
            )));
        }
        if raw.users.is_empty() || raw.users.values().any(|u| u.trim().is_empty()) {
            return Err(ProviderError::permanent(format!(
                "{KIND} target: `users` must map each identity name to a non-empty identity store user id"
            )));
        }
        Ok(Self {
            instance_arn: raw.instance_arn,
            permission_set_arn: raw.permission_set_arn,
            account_id: raw.account_id,
            users: raw.users,
            connection: raw.connection,
        })
    }
}

/// Assigns and unassigns the permission set; see the [module docs](self).
#[derive(Debug)]
pub struct IdentityCenterProvider {
    config: CenterConfig,
    client: Lazy<aws_sdk_ssoadmin::Client>,
}

/// Builds an [`IdentityCenterProvider`] from a target table.
pub fn factory(
    target: &toml::Table,
    _ctx: &ProviderContext,
) -> Result<Arc<dyn Provider>, ProviderError> {
    Ok(Arc::new(IdentityCenterProvider::from_target(target)?))
}

enum Op {
    Create,
    Delete,
}

impl IdentityCenterProvider {
    /// A provider for one validated target.
    pub fn new(config: CenterConfig) -> Self {
        Self {
            config,
            client: Lazy::default(),
        }
    }

    /// Builds from a target table, for callers that also want [`Reconcile`].
    pub fn from_target(target: &toml::Table) -> Result<Self, ProviderError> {
        Ok(Self::new(CenterConfig::from_target(target)?))
    }

    async fn client(&self) -> &aws_sdk_ssoadmin::Client {
        self.client
            .get(|| async { aws_sdk_ssoadmin::Client::new(&self.config.connection.load().await) })
            .await
    }

    fn what(&self, user: &str) -> String {
        format!(
            "assignment of permission set {} in account {} to user {user}",
            self.config.permission_set_arn, self.config.account_id
        )
    }

    fn user_of(&self, who: &str) -> Result<&str, ProviderError> {
        self.config
            .users
            .get(who)
            .map(String::as_str)
            .ok_or_else(|| {
                ProviderError::permanent(format!(
                    "{KIND}: no Identity Center user for {who:?} in the target's `users`"
                ))
            })
    }

    /// User ids with an assignment of the permission set in the account.
    async fn assigned_users(&self) -> Result<Vec<String>, ProviderError> {
        let mut users = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let o = self
                .client()
                .await
                .list_account_assignments()
                .instance_arn(&self.config.instance_arn)
                .account_id(&self.config.account_id)
                .permission_set_arn(&self.config.permission_set_arn)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| {
                    aws_error(
                        "ListAccountAssignments",
                        &format!(
                            "permission set {} in account {}",
                            self.config.permission_set_arn, self.config.account_id
                        ),
                        e,
                    )
                })?;
            for a in o.account_assignments() {
                if a.principal_type() == Some(&PrincipalType::User) {
                    if let Some(id) = a.principal_id() {
                        users.push(id.to_string());
                    }
                }
            }
            match o.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(users),
            }
        }
    }

    async fn is_assigned(&self, user: &str) -> Result<bool, ProviderError> {
        Ok(self.assigned_users().await?.iter().any(|u| u == user))
    }

    /// Waits for an asynchronous assignment operation to finish.
    async fn wait(
        &self,
        op: Op,
        user: &str,
        mut status: Option<AccountAssignmentOperationStatus>,
    ) -> Result<(), ProviderError> {
        let deadline = Instant::now() + OPERATION_WAIT;
        loop {
            let Some(s) = status else {
                // No status at all (some emulators): nothing to wait for.
                return Ok(());
            };
            match s.status() {
                Some(StatusValues::Succeeded) | None => return Ok(()),
                Some(StatusValues::Failed) => {
                    return Err(ProviderError::permanent(format!(
                        "AWS failed the {}: {}",
                        self.what(user),
                        s.failure_reason().unwrap_or("no reason given")
                    )))
                }
                Some(_) => {}
            }
            let Some(req) = s.request_id() else {
                return Ok(());
            };
            if Instant::now() > deadline {
                return Err(ProviderError::retryable(format!(
                    "AWS is still working on the {} after {}s; will retry",
                    self.what(user),
                    OPERATION_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(POLL).await;
            let c = self.client().await;
            status = match op {
                Op::Create => c
                    .describe_account_assignment_creation_status()
                    .instance_arn(&self.config.instance_arn)
                    .account_assignment_creation_request_id(req)
                    .send()
                    .await
                    .map_err(|e| {
                        aws_error(
                            "DescribeAccountAssignmentCreationStatus",
                            &self.what(user),
                            e,
                        )
                    })?
                    .account_assignment_creation_status()
                    .cloned(),
                Op::Delete => c
                    .describe_account_assignment_deletion_status()
                    .instance_arn(&self.config.instance_arn)
                    .account_assignment_deletion_request_id(req)
                    .send()
                    .await
                    .map_err(|e| {
                        aws_error(
                            "DescribeAccountAssignmentDeletionStatus",
                            &self.what(user),
                            e,
                        )
                    })?
                    .account_assignment_deletion_status()
                    .cloned(),
            };
        }
    }

    async fn unassign(&self, user: &str) -> Result<(), ProviderError> {
        if !self.is_assigned(user).await? {
            return Ok(());
        }
        let res = self
            .client()
            .await
            .delete_account_assignment()
            .instance_arn(&self.config.instance_arn)
            .target_id(&self.config.account_id)
            .target_type(TargetType::AwsAccount)
            .permission_set_arn(&self.config.permission_set_arn)
            .principal_type(PrincipalType::User)
            .principal_id(user)
            .send()
            .await;
        match res {
            Ok(o) => {
                self.wait(
                    Op::Delete,
                    user,
                    o.account_assignment_deletion_status().cloned(),
                )
                .await
            }
            Err(e)
                if error_code(&e) == Some("ResourceNotFoundException")
                    && !self.is_assigned(user).await? =>
            {
                Ok(())
            }
            Err(e) => Err(aws_error("DeleteAccountAssignment", &self.what(user), e)),
        }
    }
}

#[async_trait]
impl Provider for IdentityCenterProvider {
    async fn grant(&self, spec: &GrantSpec) -> Result<GrantOutcome, ProviderError> {
        let user = self.user_of(&spec.requester_name)?;
        let detail = format!(
            "permission set {} assigned in account {} to {}",
            self.config.permission_set_arn, self.config.account_id, spec.requester_name
        );
        if self.is_assigned(user).await? {
            return Ok(GrantOutcome {
                secret: None,
                detail,
            });
        }
        let o = self
            .client()
            .await
            .create_account_assignment()
            .instance_arn(&self.config.instance_arn)
            .target_id(&self.config.account_id)
            .target_type(TargetType::AwsAccount)
            .permission_set_arn(&self.config.permission_set_arn)
            .principal_type(PrincipalType::User)
            .principal_id(user)
            .send()
            .await
            .map_err(|e| aws_error("CreateAccountAssignment", &self.what(user), e))?;
        self.wait(
            Op::Create,
            user,
            o.account_assignment_creation_status().cloned(),
        )
        .await?;
        Ok(GrantOutcome {
            secret: None,
            detail,
        })
    }

    async fn revoke(&self, spec: &GrantSpec) -> Result<(), ProviderError> {
        if !spec.overlapping_active.is_empty() {
            // Shared with the person's other active grants of this entitlement.
            return Ok(());
        }
        let user = self.user_of(&spec.requester_name)?;
        self.unassign(user).await
    }

    async fn check(&self, spec: &GrantSpec) -> Result<Presence, ProviderError> {
        let user = self.user_of(&spec.requester_name)?;
        Ok(Presence::of(self.is_assigned(user).await?))
    }

    fn reconciler(&self) -> Option<&dyn Reconcile> {
        Some(self)
    }
}

#[async_trait]
impl Reconcile for IdentityCenterProvider {
    /// Assignments of the permission set in the account to mapped users.
    /// Identity Center records no request id, so each [`Found`] names the
    /// person instead.
    async fn list_present(&self) -> Result<Vec<Found>, ProviderError> {
        let assigned = self.assigned_users().await?;
        Ok(self
            .config
            .users
            .iter()
            .filter(|(_, id)| assigned.contains(id))
            .map(|(who, id)| Found {
                request_ids: vec![],
                requester: Some(who.clone()),
                resource: id.clone(),
            })
            .collect())
    }

    /// Deletes the found user's assignment.
    async fn remove(&self, found: &Found) -> Result<(), ProviderError> {
        if self.config.users.values().any(|u| *u == found.resource) {
            self.unassign(&found.resource).await
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_checks() {
        let t: toml::Table = toml::from_str(
            r#"instance_arn = "arn:aws:sso:::instance/ssoins-1"
permission_set_arn = "arn:aws:sso:::permissionSet/ssoins-1/ps-1"
account_id = "2222"
users = { alice = "u-1" }"#,
        )
        .expect("toml");
        let e = CenterConfig::from_target(&t).expect_err("account");
        assert!(e.message.contains("account_id"), "{}", e.message);
    }
}
