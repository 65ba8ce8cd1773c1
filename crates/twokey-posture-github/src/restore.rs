//! Restoring the baseline, with two people (pure: no IO, no clock).
//!
//! [`plan`] turns the failing findings of one repository into the exact API
//! calls that bring it back: classic protection at the baseline (which
//! binds everyone: `enforce_admins` on, so a ruleset's bypass list no longer
//! opens a way around the review), rulesets back to `active`, workflow
//! permissions read-only with Actions unable to approve. Environments'
//! reviewers and the gate's webhook need people or secrets twokey does not
//! hold: they are alerted, not planned.
//!
//! A [`Proposal`] holds the calls. twokey opens it; a first person takes it
//! up ([`propose`]); a *different* person approves it ([`approve`]); only
//! then does twokey apply the calls and re-check. Every step is a ledger
//! event the caller records before the step takes effect.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use twokey_core::event::{RestoreApproved, RestoreOpened, RestoreRef, RestoreResult};
use twokey_core::request::DomainError;
use twokey_core::{Actor, Event, IdentityKey, LedgerEvent, Millis};
use twokey_posture::{Finding, Status};

use crate::effective::effective;
use crate::facts::{Environment, Facts, RepoFacts};
use crate::Baseline;

/// One REST call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiCall {
    /// `PUT`, `PATCH`, ...
    pub method: String,
    /// Path under the API base (`/repos/acme/infra/branches/main/protection`).
    pub path: String,
    /// JSON body.
    pub body: Value,
}

/// The checks whose failure the classic protection call restores.
const BRANCH_CHECKS: &[&str] = &[
    "github.pull_request_required",
    "github.required_approvals",
    "github.dismiss_stale_reviews",
    "github.last_push_approval",
    "github.code_owner_review",
    "github.no_bypass",
    "github.force_push_blocked",
    "github.deletion_blocked",
    "github.gate_status_check",
];

/// The calls that restore what `failing` (findings of one scan) reports
/// about `repo`, and about the organisation when `org` findings fail.
pub fn plan(facts: &Facts, base: &Baseline, failing: &[&Finding]) -> Vec<ApiCall> {
    let mut calls = Vec::new();
    let fails = |check: &str, resource: &str| {
        failing
            .iter()
            .any(|f| f.status == Status::Fail && f.check == check && f.resource == resource)
    };
    let workflow_body = json!({
        "default_workflow_permissions": "read",
        "can_approve_pull_request_reviews": false,
    });
    let org = &facts.org;
    if fails("github.actions_cannot_approve", org) || fails("github.workflow_token_read_only", org)
    {
        calls.push(ApiCall {
            method: "PUT".into(),
            path: format!("/orgs/{org}/actions/permissions/workflow"),
            body: workflow_body.clone(),
        });
    }
    for r in &facts.repos {
        let branch_res = format!("{}@{}", r.full_name, r.default_branch);
        if BRANCH_CHECKS.iter().any(|c| fails(c, &branch_res)) {
            calls.push(protection_call(r, base));
        }
        if fails("github.rulesets_enforced", &branch_res) {
            for rs in r.rulesets.as_result().map(|v| &v[..]).unwrap_or(&[]) {
                let e = effective(r, &base.break_glass);
                let name = format!(
                    "ruleset {} {:?} ({} {})",
                    rs.id, rs.name, rs.source_type, rs.source
                );
                if !e.not_enforced.iter().any(|(n, _)| *n == name) {
                    continue;
                }
                let path = if rs.source_type == "Organization" {
                    format!("/orgs/{}/rulesets/{}", rs.source, rs.id)
                } else {
                    format!("/repos/{}/rulesets/{}", r.full_name, rs.id)
                };
                calls.push(ApiCall {
                    method: "PUT".into(),
                    path,
                    body: json!({ "enforcement": "active" }),
                });
            }
        }
        for env in r.environments.as_result().map(|v| &v[..]).unwrap_or(&[]) {
            let res = format!("{}/environments/{}", r.full_name, env.name);
            if fails("github.environment_reviewers", &res) {
                calls.extend(environment_call(r, env, base));
            }
        }
        if fails("github.actions_cannot_approve", &r.full_name)
            || fails("github.workflow_token_read_only", &r.full_name)
        {
            calls.push(ApiCall {
                method: "PUT".into(),
                path: format!("/repos/{}/actions/permissions/workflow", r.full_name),
                body: workflow_body.clone(),
            });
        }
    }
    calls
}

/// `PUT .../environments/{name}` with required reviewers and
/// `prevent_self_review`: the environment's own reviewers when it has some,
/// else the baseline's `environment_reviewers`; none at all: no call (the
/// regression stays an alert; twokey cannot guess who should review).
pub fn environment_call(r: &RepoFacts, env: &Environment, base: &Baseline) -> Option<ApiCall> {
    let from = if env.reviewer_ids.is_empty() {
        &base.environment_reviewers
    } else {
        &env.reviewer_ids
    };
    let reviewers: Vec<Value> = from
        .iter()
        .filter_map(|r| reviewer_ref(r))
        .map(|(t, id)| json!({ "type": t, "id": id }))
        .collect();
    if reviewers.is_empty() {
        return None;
    }
    Some(ApiCall {
        method: "PUT".into(),
        path: format!("/repos/{}/environments/{}", r.full_name, env.name),
        body: json!({ "reviewers": reviewers, "prevent_self_review": true }),
    })
}

/// `User/7` or `Team/42` as (type, id); `None` for anything else.
pub fn reviewer_ref(s: &str) -> Option<(&str, u64)> {
    let (t, id) = s.split_once('/')?;
    let id = id.parse().ok()?;
    matches!(t, "User" | "Team").then_some((t, id))
}

/// `PUT .../branches/{b}/protection` at the baseline, keeping the status
/// checks already required (and adding the gate's on IaC repositories).
pub fn protection_call(r: &RepoFacts, base: &Baseline) -> ApiCall {
    let mut contexts: Vec<String> = match r.classic.as_result() {
        Ok(Some(c)) => c.required_status_checks.clone().unwrap_or_default(),
        _ => vec![],
    };
    if r.iac && !contexts.contains(&base.gate_check) {
        contexts.push(base.gate_check.clone());
    }
    let checks = if contexts.is_empty() {
        Value::Null
    } else {
        json!({ "strict": true, "contexts": contexts })
    };
    ApiCall {
        method: "PUT".into(),
        path: format!(
            "/repos/{}/branches/{}/protection",
            r.full_name, r.default_branch
        ),
        body: json!({
            "required_status_checks": checks,
            "enforce_admins": true,
            "required_pull_request_reviews": {
                "dismiss_stale_reviews": true,
                "require_code_owner_reviews": matches!(r.codeowners.as_result(), Ok(true)),
                "required_approving_review_count": r.required_approvals,
                "require_last_push_approval": true,
            },
            "restrictions": null,
            "allow_force_pushes": false,
            "allow_deletions": false,
        }),
    }
}

/// Where a restore proposal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestoreState {
    /// Opened by twokey on a regression; nobody has taken it up.
    Open,
    /// A first person proposed it; waiting for a second.
    Proposed,
    /// A second person approved it; twokey is applying it.
    Approved,
    /// Applied, and the re-check passed.
    Applied,
    /// Applying it failed, or the re-check still fails (the text says which).
    Failed,
    /// Rejected by a person.
    Rejected,
}

impl RestoreState {
    /// `open`, `proposed`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Proposed => "proposed",
            Self::Approved => "approved",
            Self::Applied => "applied",
            Self::Failed => "failed",
            Self::Rejected => "rejected",
        }
    }
}

/// A restore proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// Id.
    pub id: String,
    /// The repository (or organisation) it restores.
    pub resource: String,
    /// The failing checks it answers (`check resource`).
    pub regressions: Vec<String>,
    /// The calls it makes.
    pub calls: Vec<ApiCall>,
    /// When twokey opened it.
    pub opened_at: Millis,
    /// What led to it (delivery id and event, or `scheduled scan`).
    pub cause: String,
    /// Who took it up.
    pub proposed_by: Option<IdentityKey>,
    /// Who approved it.
    pub approved_by: Option<IdentityKey>,
    /// State.
    pub state: RestoreState,
    /// The outcome of applying it.
    #[serde(default)]
    pub result: Option<String>,
    /// When a writer took it up to apply it (an approved proposal whose
    /// claim is older than the scan lease was interrupted and is resumed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applying_since: Option<Millis>,
    /// Optimistic-concurrency version.
    pub version: i64,
}

/// The ledger subject of a proposal.
pub fn subject(id: &str) -> String {
    format!("posture:github:restore:{id}")
}

/// Opens a proposal (by twokey) for `calls`.
pub fn open(
    id: &str,
    resource: &str,
    regressions: Vec<String>,
    calls: Vec<ApiCall>,
    cause: &str,
    now: Millis,
) -> (Proposal, Event) {
    let p = Proposal {
        id: id.into(),
        resource: resource.into(),
        regressions,
        calls,
        opened_at: now,
        cause: cause.into(),
        proposed_by: None,
        approved_by: None,
        state: RestoreState::Open,
        result: None,
        applying_since: None,
        version: 0,
    };
    let e = LedgerEvent::PostureGithubRestoreOpened(RestoreOpened {
        id: id.into(),
        resource: resource.into(),
        regressions: p.regressions.clone(),
        calls: json!(p.calls),
        cause: cause.into(),
    })
    .by(crate::watch::ACTOR);
    (p, e)
}

fn bump(p: &Proposal) -> Proposal {
    Proposal {
        version: p.version + 1,
        ..p.clone()
    }
}

fn same_person(a: &Actor, key: &IdentityKey) -> bool {
    a.is(key) || a.links.contains(key)
}

/// A first admin takes the proposal up.
pub fn propose(p: &Proposal, who: &Actor, admin: bool) -> Result<(Proposal, Event), DomainError> {
    if !admin {
        return Err(DomainError::Forbidden(
            "only a policy admin may propose a restore".into(),
        ));
    }
    if p.state != RestoreState::Open {
        return Err(DomainError::WrongState(format!(
            "restore {} is {}, not open",
            p.id,
            p.state.as_str()
        )));
    }
    let mut n = bump(p);
    n.state = RestoreState::Proposed;
    n.proposed_by = Some(who.key.clone());
    let e = LedgerEvent::PostureGithubRestoreProposed(RestoreRef {
        id: p.id.clone(),
        resource: p.resource.clone(),
    })
    .by(who.key.to_string());
    Ok((n, e))
}

/// A second admin approves it: never the one who proposed it.
pub fn approve(p: &Proposal, who: &Actor, admin: bool) -> Result<(Proposal, Event), DomainError> {
    if !admin {
        return Err(DomainError::Forbidden(
            "only a policy admin may approve a restore".into(),
        ));
    }
    match (&p.state, &p.proposed_by) {
        (RestoreState::Proposed, Some(by)) if same_person(who, by) => {
            return Err(DomainError::SelfApproval)
        }
        (RestoreState::Proposed, Some(_)) => {}
        _ => {
            return Err(DomainError::WrongState(format!(
                "restore {} is {}; it needs a proposal by one admin before another approves it",
                p.id,
                p.state.as_str()
            )))
        }
    }
    let mut n = bump(p);
    n.state = RestoreState::Approved;
    n.approved_by = Some(who.key.clone());
    let e = LedgerEvent::PostureGithubRestoreApproved(RestoreApproved {
        id: p.id.clone(),
        resource: p.resource.clone(),
        proposed_by: p.proposed_by.clone(),
    })
    .by(who.key.to_string());
    Ok((n, e))
}

/// A person rejects it (open or proposed).
pub fn reject(p: &Proposal, who: &Actor, admin: bool) -> Result<(Proposal, Event), DomainError> {
    if !admin {
        return Err(DomainError::Forbidden(
            "only a policy admin may reject a restore".into(),
        ));
    }
    if !matches!(p.state, RestoreState::Open | RestoreState::Proposed) {
        return Err(DomainError::WrongState(format!(
            "restore {} is {}",
            p.id,
            p.state.as_str()
        )));
    }
    let mut n = bump(p);
    n.state = RestoreState::Rejected;
    let e = LedgerEvent::PostureGithubRestoreRejected(RestoreRef {
        id: p.id.clone(),
        resource: p.resource.clone(),
    })
    .by(who.key.to_string());
    Ok((n, e))
}

/// The outcome of applying an approved proposal.
pub fn finish(p: &Proposal, ok: bool, result: &str) -> (Proposal, Event) {
    let mut n = bump(p);
    n.state = if ok {
        RestoreState::Applied
    } else {
        RestoreState::Failed
    };
    n.result = Some(result.into());
    let data = RestoreResult {
        id: p.id.clone(),
        resource: p.resource.clone(),
        result: result.into(),
    };
    let e = if ok {
        LedgerEvent::PostureGithubRestoreApplied(data)
    } else {
        LedgerEvent::PostureGithubRestoreFailed(data)
    }
    .by(crate::watch::ACTOR);
    (n, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reviewer_refs_are_user_or_team_with_a_number() {
        assert_eq!(reviewer_ref("Team/42"), Some(("Team", 42)));
        assert_eq!(reviewer_ref("User/7"), Some(("User", 7)));
        for bad in ["Team", "Team/", "Team/x", "Org/1", "team/1", "User/-1"] {
            assert_eq!(reviewer_ref(bad), None, "{bad}");
        }
        let cfg = |r: &str| {
            crate::GithubPostureConfig::parse_file(
                &format!("[posture.github]\norg = \"acme\"\nenvironment_reviewers = [{r:?}]\n"),
                "t.toml",
            )
        };
        assert!(cfg("Team/42").is_ok());
        let err = cfg("approvers").expect_err("a name is not an id");
        assert!(err.contains("environment_reviewers \"approvers\""), "{err}");
    }

    fn actor(name: &str) -> Actor {
        Actor {
            key: IdentityKey {
                issuer: "twokey".into(),
                subject: name.into(),
            },
            name: name.into(),
            groups: Default::default(),
            links: Default::default(),
        }
    }

    #[test]
    fn two_different_admins_are_needed_and_linked_identities_count_as_one() {
        let (p, e) = open("r1", "acme/infra", vec![], vec![], "test", 1);
        assert!(e.alert && p.state == RestoreState::Open);
        assert!(matches!(
            approve(&p, &actor("bob"), true),
            Err(DomainError::WrongState(_))
        ));
        assert!(matches!(
            propose(&p, &actor("erin"), false),
            Err(DomainError::Forbidden(_))
        ));
        let (p, _) = propose(&p, &actor("bob"), true).expect("propose");
        assert!(matches!(
            approve(&p, &actor("bob"), true),
            Err(DomainError::SelfApproval)
        ));
        let mut alias = actor("bob-sso");
        alias.links.insert(actor("bob").key);
        assert!(matches!(
            approve(&p, &alias, true),
            Err(DomainError::SelfApproval)
        ));
        assert!(matches!(
            approve(&p, &actor("carol"), false),
            Err(DomainError::Forbidden(_))
        ));
        let (p, _) = approve(&p, &actor("carol"), true).expect("approve");
        assert_eq!((p.state, p.version), (RestoreState::Approved, 2));
        assert!(matches!(
            reject(&p, &actor("dave"), true),
            Err(DomainError::WrongState(_))
        ));
        let (p, e) = finish(&p, false, "PUT failed");
        assert!(e.alert && p.state == RestoreState::Failed);
    }
}
