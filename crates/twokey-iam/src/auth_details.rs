//! The output of `aws iam get-account-authorization-details` (or the API's
//! `GetAccountAuthorizationDetails`, URL-encoded documents and all), read
//! into the [`Policies`] that apply to one principal's request.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::context::Context;
use crate::eval::{NamedPolicy, Policies};
use crate::policy::{Policy, PolicyError};
use crate::principal::{Caller, CallerKind};

/// Why authorization details could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthDetailsError {
    /// The file is not the JSON `GetAccountAuthorizationDetails` returns.
    #[error("authorization details: {at}: {message}")]
    Format {
        /// Where in the file.
        at: String,
        /// What is wrong.
        message: String,
    },
    /// A policy document in it is malformed.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The principal is not in the file.
    #[error("{0} is not a user or role in the authorization details")]
    UnknownPrincipal(String),
    /// An attached managed policy is not in the file.
    #[error("{owner} has managed policy {policy} attached, but the file does not hold it")]
    MissingPolicy {
        /// The user, group or role.
        owner: String,
        /// The policy ARN.
        policy: String,
    },
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Raw {
    user_detail_list: Vec<Principal>,
    group_detail_list: Vec<Group>,
    role_detail_list: Vec<Principal>,
    policies: Vec<Managed>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Principal {
    arn: String,
    user_name: Option<String>,
    role_name: Option<String>,
    user_policy_list: Vec<Inline>,
    role_policy_list: Vec<Inline>,
    attached_managed_policies: Vec<Attached>,
    group_list: Vec<String>,
    permissions_boundary: Option<Boundary>,
    assume_role_policy_document: Option<Value>,
    tags: Vec<Tag>,
    role_last_used: Option<LastUsed>,
    create_date: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct LastUsed {
    last_used_date: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Group {
    group_name: String,
    group_policy_list: Vec<Inline>,
    attached_managed_policies: Vec<Attached>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Inline {
    policy_name: String,
    policy_document: Value,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Attached {
    policy_arn: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Boundary {
    permissions_boundary_arn: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Tag {
    key: String,
    value: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Managed {
    arn: String,
    default_version_id: String,
    policy_version_list: Vec<Version>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Version {
    document: Value,
    version_id: String,
    is_default_version: bool,
}

/// Whether a principal is a user or a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntityKind {
    /// An IAM user.
    User,
    /// An IAM role.
    Role,
}

/// One user or role of the file, as the graph needs it.
#[derive(Debug, Clone)]
pub struct Entity {
    /// Its ARN.
    pub arn: String,
    /// User or role.
    pub kind: EntityKind,
    /// Its name.
    pub name: String,
    /// The managed policies attached to it or to its groups.
    pub managed: Vec<String>,
    /// The role's trust policy (roles only).
    pub trust: Option<NamedPolicy>,
    /// `RoleLastUsed.LastUsedDate` (roles; RFC 3339 as AWS writes it).
    pub last_used: Option<String>,
    /// `CreateDate`, as written.
    pub created: Option<String>,
    /// Its tags (`aws:PrincipalTag/...`).
    pub tags: Vec<(String, String)>,
}

/// Inline policies twokey itself writes while a grant is active
/// (`aws_iam_assume`'s `twokey-<request id>`): left out of a standing
/// evaluation. Its deny (`twokey-revoked-sessions`) always stays.
pub fn is_grant_policy(name: &str) -> bool {
    name.starts_with("twokey-") && name != "twokey-revoked-sessions"
}

/// An account's authorization details, indexed.
#[derive(Debug)]
pub struct AuthDetails {
    raw: Raw,
    managed: BTreeMap<String, Value>,
}

impl AuthDetails {
    /// Reads the JSON text of `get-account-authorization-details`.
    pub fn parse(text: &str) -> Result<AuthDetails, AuthDetailsError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let raw: Raw =
            serde_path_to_error::deserialize(de).map_err(|e| AuthDetailsError::Format {
                at: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        let managed = raw
            .policies
            .iter()
            .filter_map(|m| {
                let v = m
                    .policy_version_list
                    .iter()
                    .find(|v| v.is_default_version || v.version_id == m.default_version_id)?;
                Some((m.arn.clone(), v.document.clone()))
            })
            .collect();
        Ok(AuthDetails { raw, managed })
    }

    fn principal(&self, caller: &Caller) -> Option<&Principal> {
        match &caller.kind {
            CallerKind::User { .. } => self
                .raw
                .user_detail_list
                .iter()
                .find(|u| u.arn == caller.arn),
            CallerKind::Role => self
                .raw
                .role_detail_list
                .iter()
                .find(|r| r.arn == caller.arn),
            CallerKind::RoleSession { role } => self.raw.role_detail_list.iter().find(|r| {
                r.role_name.as_deref() == Some(role.as_str())
                    && r.arn.split(':').nth(4) == caller.account.as_deref()
            }),
            _ => None,
        }
    }

    fn managed(&self, owner: &str, arn: &str) -> Result<NamedPolicy, AuthDetailsError> {
        let doc = self
            .managed
            .get(arn)
            .ok_or_else(|| AuthDetailsError::MissingPolicy {
                owner: owner.into(),
                policy: arn.into(),
            })?;
        Ok(NamedPolicy {
            id: arn.into(),
            policy: Policy::from_value(arn, doc)?,
        })
    }

    /// Every user and role in the file, users first.
    pub fn entities(&self) -> Result<Vec<Entity>, AuthDetailsError> {
        let mut out = Vec::new();
        for (kind, list) in [
            (EntityKind::User, &self.raw.user_detail_list),
            (EntityKind::Role, &self.raw.role_detail_list),
        ] {
            for p in list {
                let name = p
                    .user_name
                    .clone()
                    .or(p.role_name.clone())
                    .unwrap_or_default();
                let mut managed: Vec<String> = p
                    .attached_managed_policies
                    .iter()
                    .map(|a| a.policy_arn.clone())
                    .collect();
                for g in self
                    .raw
                    .group_detail_list
                    .iter()
                    .filter(|g| p.group_list.contains(&g.group_name))
                {
                    managed.extend(
                        g.attached_managed_policies
                            .iter()
                            .map(|a| a.policy_arn.clone()),
                    );
                }
                let trust = match (&kind, &p.assume_role_policy_document) {
                    (EntityKind::Role, Some(d)) => {
                        let id = format!("{} trust policy", p.arn);
                        Some(NamedPolicy {
                            policy: Policy::from_value(&id, d)?,
                            id,
                        })
                    }
                    _ => None,
                };
                out.push(Entity {
                    arn: p.arn.clone(),
                    kind,
                    name,
                    managed,
                    trust,
                    last_used: p
                        .role_last_used
                        .as_ref()
                        .and_then(|l| l.last_used_date.clone()),
                    created: p.create_date.clone(),
                    tags: p
                        .tags
                        .iter()
                        .map(|t| (t.key.clone(), t.value.clone()))
                        .collect(),
                });
            }
        }
        Ok(out)
    }

    /// The ARNs of the managed policies the file holds.
    pub fn managed_policies(&self) -> impl Iterator<Item = &str> {
        self.managed.keys().map(String::as_str)
    }

    /// The identity policies and permissions boundary of `principal`, and
    /// the context its tags give; with `standing`, without the grant
    /// policies twokey writes ([`is_grant_policy`]).
    pub fn identity_of(
        &self,
        principal: &str,
        standing: bool,
    ) -> Result<(Policies, Context), AuthDetailsError> {
        let (mut policies, ctx) = self.policies_for(principal, "iam:GetUser", "*")?;
        if standing {
            policies.identity.retain(|p| {
                let inline = p.id.rsplit_once('/').map(|(_, n)| n);
                !inline.is_some_and(is_grant_policy) || p.id.starts_with("arn:")
            });
        }
        Ok((policies, ctx))
    }

    /// The policies that apply to `principal` calling `action` on
    /// `resource`, and the context its tags give (`aws:PrincipalTag/...`).
    /// A role in the file that is the resource of an `sts:` action brings
    /// its trust policy as the resource policy.
    pub fn policies_for(
        &self,
        principal: &str,
        action: &str,
        resource: &str,
    ) -> Result<(Policies, Context), AuthDetailsError> {
        let caller = Caller::parse(principal);
        let p = self
            .principal(&caller)
            .ok_or_else(|| AuthDetailsError::UnknownPrincipal(principal.into()))?;
        let name = p
            .user_name
            .clone()
            .or(p.role_name.clone())
            .unwrap_or_default();
        let mut identity = Vec::new();
        for i in p.user_policy_list.iter().chain(&p.role_policy_list) {
            let id = format!("{name}/{}", i.policy_name);
            identity.push(NamedPolicy {
                policy: Policy::from_value(&id, &i.policy_document)?,
                id,
            });
        }
        for a in &p.attached_managed_policies {
            identity.push(self.managed(&name, &a.policy_arn)?);
        }
        for g in self
            .raw
            .group_detail_list
            .iter()
            .filter(|g| p.group_list.contains(&g.group_name))
        {
            for i in &g.group_policy_list {
                let id = format!("group {}/{}", g.group_name, i.policy_name);
                identity.push(NamedPolicy {
                    policy: Policy::from_value(&id, &i.policy_document)?,
                    id,
                });
            }
            for a in &g.attached_managed_policies {
                identity.push(self.managed(&g.group_name, &a.policy_arn)?);
            }
        }
        let boundary = p
            .permissions_boundary
            .as_ref()
            .map(|b| self.managed(&name, &b.permissions_boundary_arn))
            .transpose()?;
        let resource_policy = if action.to_ascii_lowercase().starts_with("sts:") {
            self.raw
                .role_detail_list
                .iter()
                .find(|r| r.arn == resource)
                .and_then(|r| r.assume_role_policy_document.as_ref().map(|d| (r, d)))
                .map(|(r, d)| {
                    let id = format!("{} trust policy", r.arn);
                    Policy::from_value(&id, d).map(|policy| NamedPolicy { id, policy })
                })
                .transpose()?
        } else {
            None
        };
        let mut ctx = Context::new();
        for t in &p.tags {
            ctx.set(&format!("aws:PrincipalTag/{}", t.key), t.value.clone());
        }
        let policies = Policies {
            identity,
            resource: resource_policy,
            boundary,
            ..Policies::default()
        };
        Ok((policies, ctx))
    }
}
