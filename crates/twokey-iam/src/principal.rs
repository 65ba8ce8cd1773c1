//! Who is calling, and how a `Principal` element names them.

use crate::policy::{PrincipalType, Principals};

/// The caller, read from its ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The principal as given.
    pub arn: String,
    /// Its account, for ARNs.
    pub account: Option<String>,
    /// The kind of caller.
    pub kind: CallerKind,
}

/// The kinds of callers the evaluator tells apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerKind {
    /// `arn:aws:iam::A:user/path/name`.
    User {
        /// The user name (last path segment).
        name: String,
    },
    /// `arn:aws:sts::A:assumed-role/Role/Session`.
    RoleSession {
        /// The role's name.
        role: String,
    },
    /// `arn:aws:iam::A:role/path/name` (as a caller: rare, but allowed).
    Role,
    /// `arn:aws:iam::A:root`.
    Root,
    /// A service principal or anything else that is not an IAM ARN.
    Other,
}

impl Caller {
    /// Reads a caller ARN.
    pub fn parse(arn: &str) -> Caller {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        if parts.len() != 6 || parts[0] != "arn" {
            return Caller {
                arn: arn.into(),
                account: None,
                kind: CallerKind::Other,
            };
        }
        let account = Some(parts[4].to_string()).filter(|a| !a.is_empty());
        let res = parts[5];
        let kind = match (parts[2], res.split('/').collect::<Vec<_>>().as_slice()) {
            ("iam", ["root"]) => CallerKind::Root,
            ("iam", ["user", .., name]) => CallerKind::User {
                name: (*name).to_string(),
            },
            ("iam", ["role", ..]) => CallerKind::Role,
            ("sts", ["assumed-role", role, ..]) => CallerKind::RoleSession {
                role: (*role).to_string(),
            },
            _ => CallerKind::Other,
        };
        Caller {
            arn: arn.into(),
            account,
            kind,
        }
    }

    /// `aws:PrincipalArn`: the role's ARN for a session (without its path,
    /// which a session ARN does not carry), else the caller's ARN.
    pub fn principal_arn(&self) -> Option<String> {
        let acct = self.account.as_deref()?;
        let partition = self.arn.split(':').nth(1).unwrap_or("aws");
        Some(match &self.kind {
            CallerKind::RoleSession { role } => format!("arn:{partition}:iam::{acct}:role/{role}"),
            _ => self.arn.clone(),
        })
    }

    /// The IAM user's name (`aws:username`).
    pub fn user_name(&self) -> Option<String> {
        match &self.kind {
            CallerKind::User { name } => Some(name.clone()),
            _ => None,
        }
    }
}

/// How a `Principal` element names the caller; the strongest wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Named {
    /// Through its account (`arn:aws:iam::A:root` or `A`): the account
    /// delegates, so the caller's own identity policy must allow too.
    Account,
    /// A role session through its role's ARN.
    Role,
    /// `*`: everyone.
    Everyone,
    /// Exactly: the user's, the session's, the service's own name.
    Exactly,
}

/// How `principals` names `caller`, if at all.
pub fn names(principals: &Principals, caller: &Caller) -> Option<Named> {
    let list = match principals {
        Principals::Everyone => return Some(Named::Everyone),
        Principals::Listed(l) => l,
    };
    list.iter()
        .filter_map(|(ty, p)| entry(*ty, p, caller))
        .max()
}

fn entry(ty: PrincipalType, p: &str, caller: &Caller) -> Option<Named> {
    if ty != PrincipalType::Aws {
        return (p == caller.arn).then_some(Named::Exactly);
    }
    if p == caller.arn {
        return Some(if caller.kind == CallerKind::Root {
            Named::Account
        } else {
            Named::Exactly
        });
    }
    let acct = caller.account.as_deref()?;
    let parts: Vec<&str> = p.splitn(6, ':').collect();
    if p == acct
        || (parts.len() == 6 && parts[2] == "iam" && parts[4] == acct && parts[5] == "root")
    {
        return Some(Named::Account);
    }
    if let CallerKind::RoleSession { role } = &caller.kind {
        let is_role = parts.len() == 6
            && parts[2] == "iam"
            && parts[4] == acct
            && parts[5].starts_with("role/")
            && parts[5].rsplit('/').next() == Some(role.as_str());
        if is_role {
            return Some(Named::Role);
        }
    }
    None
}
