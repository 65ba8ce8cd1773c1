//! AWS's policy evaluation logic
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html>)
//! over three-valued statements: each statement applies, does not, or
//! applies only if conditions on unknown context hold ([`Formula`]).

use crate::condition::{evaluate, Truth};
use crate::context::Request;
use crate::decision::{Decision, Formula, Gap, PolicyKind, Requirement, StatementRef};
use crate::pattern::{arn_like, glob, substitute, Substituted};
use crate::policy::{Effect, Matcher, Policy, Statement};
use crate::principal::{names, Caller, CallerKind, Named};

/// A policy with the id the answer names it by.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedPolicy {
    /// Its name or ARN.
    pub id: String,
    /// The document.
    pub policy: Policy,
}

/// The policies attached at one level of an organization (root, an OU, the
/// account).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OrgLevel {
    /// The level's id (`r-abcd`, `ou-...`, the account id).
    pub id: String,
    /// Its policies.
    pub policies: Vec<NamedPolicy>,
}

/// Every policy that applies to one request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Policies {
    /// SCPs of the principal's account, root first; empty outside an
    /// organization. Every level must allow.
    pub scps: Vec<OrgLevel>,
    /// RCPs of the resource's account, root first. AWS keeps
    /// `RCPFullAWSAccess` attached at every level, so only their denies
    /// decide.
    pub rcps: Vec<OrgLevel>,
    /// The principal's identity policies.
    pub identity: Vec<NamedPolicy>,
    /// The resource's policy (role trust policy, key policy, bucket policy).
    pub resource: Option<NamedPolicy>,
    /// The principal's permissions boundary.
    pub boundary: Option<NamedPolicy>,
    /// The session policy.
    pub session: Option<NamedPolicy>,
}

/// What one policy says about the request.
#[derive(Debug, Default)]
struct Verdict {
    allows: Vec<(StatementRef, Formula, Option<Named>)>,
    denies: Vec<(StatementRef, Formula)>,
}

impl Verdict {
    fn allow(&self) -> Formula {
        Formula::any(self.allows.iter().map(|(_, f, _)| f.clone()))
    }

    fn allow_where(&self, keep: impl Fn(Option<Named>) -> bool) -> Formula {
        Formula::any(
            self.allows
                .iter()
                .filter(|(_, _, n)| keep(*n))
                .map(|(_, f, _)| f.clone()),
        )
    }

    fn deny(&self) -> Formula {
        Formula::any(self.denies.iter().map(|(_, f)| f.clone()))
    }
}

/// Evaluates `request` against `policies`.
pub fn evaluate_request(request: &Request, policies: &Policies) -> Decision {
    let caller = Caller::parse(&request.principal);
    let judge = |kind, p: &NamedPolicy| judge(kind, p, request, &caller);
    let scp: Vec<(String, Verdict)> = policies
        .scps
        .iter()
        .map(|lvl| {
            (
                lvl.id.clone(),
                merge(lvl.policies.iter().map(|p| judge(PolicyKind::Scp, p))),
            )
        })
        .collect();
    let rcp: Vec<Verdict> = policies
        .rcps
        .iter()
        .map(|lvl| merge(lvl.policies.iter().map(|p| judge(PolicyKind::Rcp, p))))
        .collect();
    let identity = merge(
        policies
            .identity
            .iter()
            .map(|p| judge(PolicyKind::Identity, p)),
    );
    let resource = policies
        .resource
        .as_ref()
        .map(|p| judge(PolicyKind::Resource, p))
        .unwrap_or_default();
    let boundary = policies
        .boundary
        .as_ref()
        .map(|p| judge(PolicyKind::Boundary, p));
    let session = policies
        .session
        .as_ref()
        .map(|p| judge(PolicyKind::Session, p));

    let all: Vec<&Verdict> = scp
        .iter()
        .map(|(_, v)| v)
        .chain(&rcp)
        .chain([&identity, &resource])
        .chain(boundary.iter())
        .chain(session.iter())
        .collect();
    let deny = Formula::any(all.iter().map(|v| v.deny()));
    if deny == Formula::True {
        let by = all
            .iter()
            .flat_map(|v| &v.denies)
            .filter(|(_, f)| *f == Formula::True)
            .map(|(s, _)| s.clone())
            .collect();
        return Decision::ExplicitDeny { by };
    }

    let scp_ok: Vec<(String, Formula)> =
        scp.iter().map(|(id, v)| (id.clone(), v.allow())).collect();
    let parts = Parts {
        identity: identity.allow(),
        boundary: boundary.as_ref().map_or(Formula::True, Verdict::allow),
        session: session.as_ref().map_or(Formula::True, Verdict::allow),
        resource: &resource,
        required: resource_policy_required(request),
        same_account: same_account(request, &caller),
    };
    let granted = parts.granted(&caller);
    let when = Formula::all(scp_ok.iter().map(|(_, f)| f.clone()))
        .and(granted)
        .and(deny.negate());
    let by: Vec<StatementRef> = all
        .iter()
        .flat_map(|v| &v.allows)
        .filter(|(_, f, _)| *f != Formula::False)
        .map(|(s, _, _)| s.clone())
        .collect();
    match when {
        Formula::True => Decision::Allowed {
            by: by
                .into_iter()
                .filter(|s| s.kind != PolicyKind::Scp)
                .collect(),
        },
        Formula::False => Decision::ImplicitDeny {
            gaps: parts.gaps(&scp_ok),
        },
        when => Decision::AllowedIf { when, by },
    }
}

/// The allow formulas of the layers that must agree.
struct Parts<'a> {
    identity: Formula,
    boundary: Formula,
    session: Formula,
    resource: &'a Verdict,
    required: bool,
    same_account: bool,
}

impl Parts<'_> {
    /// Whether identity, resource, boundary and session policies together
    /// grant the request (SCPs and denies aside).
    fn granted(&self, caller: &Caller) -> Formula {
        let limits = self.boundary.clone().and(self.session.clone());
        let via_identity = self.identity.clone().and(limits.clone());
        let any_resource = self.resource.allow();
        if !self.same_account {
            return via_identity.and(any_resource);
        }
        // Same account: a resource policy naming the user or the session
        // itself grants on its own; naming the role (for a session) is still
        // limited by the boundary and the session policy; naming the account
        // delegates to the identity policy.
        // `*` names nobody in particular: like the role's ARN for a session,
        // it is still limited by the session policy (not the boundary).
        let is_session = matches!(caller.kind, CallerKind::RoleSession { .. });
        let exact = self.resource.allow_where(|n| n == Some(Named::Exactly));
        let everyone = self.resource.allow_where(|n| n == Some(Named::Everyone));
        let direct = if is_session {
            exact.or(everyone.and(self.session.clone()))
        } else {
            exact.or(everyone).and(self.session.clone())
        };
        let by_role = self
            .resource
            .allow_where(|n| n == Some(Named::Role))
            .and(limits);
        let by_account = self
            .resource
            .allow_where(|n| n == Some(Named::Account))
            .and(via_identity.clone());
        let from_resource = direct.or(by_role).or(by_account);
        if self.required {
            from_resource
        } else {
            via_identity.or(from_resource)
        }
    }

    fn gaps(&self, scp_ok: &[(String, Formula)]) -> Vec<Gap> {
        let mut gaps: Vec<Gap> = scp_ok
            .iter()
            .filter(|(_, f)| *f == Formula::False)
            .map(|(id, _)| Gap::Scp(id.clone()))
            .collect();
        if self.identity == Formula::False && !self.required {
            gaps.push(Gap::Identity);
        }
        if self.resource.allow() == Formula::False && (self.required || !self.same_account) {
            gaps.push(Gap::Resource);
        }
        if self.boundary == Formula::False {
            gaps.push(Gap::Boundary);
        }
        if self.session == Formula::False {
            gaps.push(Gap::Session);
        }
        if gaps.is_empty() {
            // Each layer allows something, but not together (the identity
            // policy needed with an account-principal resource grant).
            gaps.push(Gap::Identity);
        }
        gaps
    }
}

fn merge(vs: impl Iterator<Item = Verdict>) -> Verdict {
    vs.fold(Verdict::default(), |mut acc, v| {
        acc.allows.extend(v.allows);
        acc.denies.extend(v.denies);
        acc
    })
}

/// Role trust policies and KMS key policies must allow, even in the same
/// account: an identity policy alone never lets anyone assume a role or use
/// a key.
fn resource_policy_required(req: &Request) -> bool {
    let parts: Vec<&str> = req.resource.splitn(6, ':').collect();
    if parts.len() != 6 {
        return false;
    }
    let trust = parts[2] == "iam"
        && parts[5].starts_with("role/")
        && req.action.to_ascii_lowercase().starts_with("sts:");
    trust || parts[2] == "kms"
}

fn same_account(req: &Request, caller: &Caller) -> bool {
    match (req.resource_account(), &caller.account) {
        (Some(r), Some(c)) => r == *c,
        _ => true,
    }
}

fn judge(kind: PolicyKind, p: &NamedPolicy, req: &Request, caller: &Caller) -> Verdict {
    let mut v = Verdict::default();
    for (index, s) in p.policy.statements.iter().enumerate() {
        let at = StatementRef {
            kind,
            policy: p.id.clone(),
            index,
            sid: s.sid.clone(),
        };
        let Some((f, named)) = applies(s, &at, req, caller) else {
            continue;
        };
        match s.effect {
            Effect::Allow => v.allows.push((at, f, named)),
            Effect::Deny => v.denies.push((at, f)),
        }
    }
    v
}

/// Whether a statement applies: `None` when its principal or action does
/// not match; otherwise the formula its resource and conditions give, and
/// how its principal names the caller.
fn applies(
    s: &Statement,
    at: &StatementRef,
    req: &Request,
    caller: &Caller,
) -> Option<(Formula, Option<Named>)> {
    let named = match &s.principal {
        None => None,
        Some(Matcher::Is(p)) => Some(names(p, caller)?),
        Some(Matcher::Not(p)) => match names(p, caller) {
            Some(_) => return None,
            None => Some(Named::Exactly),
        },
    };
    let action_hit = |pats: &Vec<String>| pats.iter().any(|p| glob(p, &req.action, true));
    let action = match &s.action {
        Matcher::Is(p) => action_hit(p),
        Matcher::Not(p) => !action_hit(p),
    };
    if !action {
        return None;
    }
    let resource = match &s.resource {
        None => Formula::True,
        Some(Matcher::Is(p)) => resources(p, at, req),
        Some(Matcher::Not(p)) => resources(p, at, req).negate(),
    };
    if resource == Formula::False {
        return None;
    }
    let mut f = resource;
    for c in &s.conditions {
        let t = match evaluate(c.operator, &c.key, &c.values, &req.context) {
            Truth::Yes => Formula::True,
            Truth::No => Formula::False,
            Truth::Unknown => Formula::Leaf(Requirement::Condition {
                operator: c.operator,
                key: c.key.clone(),
                values: c.values.clone(),
                statement: at.clone(),
            }),
        };
        f = f.and(t);
        if f == Formula::False {
            return None;
        }
    }
    Some((f, named))
}

fn resources(patterns: &[String], at: &StatementRef, req: &Request) -> Formula {
    Formula::any(patterns.iter().map(|p| match substitute(p, &req.context) {
        Substituted::Text(t) => {
            if arn_like(&t, &req.resource) {
                Formula::True
            } else {
                Formula::False
            }
        }
        Substituted::Missing => Formula::False,
        Substituted::Unknown(_) => Formula::Leaf(Requirement::Resource {
            pattern: p.clone(),
            statement: at.clone(),
        }),
    }))
}
