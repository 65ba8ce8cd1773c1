//! What a scan collected from GitHub, as serde structs: the only input of
//! the checks. The field names follow the REST API's (so a recorded scan
//! reads like GitHub's answers); every part that can fail to be collected is
//! a [`Collected`].

use serde::{Deserialize, Serialize};

pub use twokey_posture::facts::Collected;

/// The facts of one scan of an organisation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Facts {
    /// The organisation's login.
    pub org: String,
    /// When the facts were collected (Unix ms): "now" for the checks.
    pub collected_at_ms: i64,
    /// `GET /orgs/{org}/actions/permissions/workflow`.
    pub org_workflow: Option<Collected<WorkflowPermissions>>,
    /// The repositories in scope.
    pub repos: Vec<RepoFacts>,
}

/// `default_workflow_permissions` and `can_approve_pull_request_reviews`
/// (organisation or repository).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowPermissions {
    /// `read` or `write`.
    pub default_workflow_permissions: String,
    /// "Allow GitHub Actions to create and approve pull requests".
    pub can_approve_pull_request_reviews: bool,
}

/// One repository.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RepoFacts {
    /// `owner/name`.
    pub full_name: String,
    /// The default branch.
    pub default_branch: String,
    /// Topics.
    #[serde(default)]
    pub topics: Vec<String>,
    /// One of the gate's infrastructure-as-code repositories (or named as one).
    #[serde(default)]
    pub iac: bool,
    /// Required approving reviews for this repository (from its class).
    pub required_approvals: u32,
    /// `GET /repos/{r}/branches/{b}/protection`; `None` when the branch has
    /// no classic protection (404).
    pub classic: Collected<Option<ClassicProtection>>,
    /// `GET /repos/{r}/rules/branches/{b}`: the active rules that apply.
    pub rules: Collected<Vec<BranchRule>>,
    /// The rulesets of the repository and its organisation, with their
    /// enforcement, bypass actors and conditions
    /// (`GET /repos/{r}/rulesets?includes_parents=true`, then
    /// `GET .../rulesets/{id}`).
    pub rulesets: Collected<Vec<Ruleset>>,
    /// Whether a CODEOWNERS file exists (`GET /repos/{r}/codeowners/errors`
    /// answers 404 when there is none).
    pub codeowners: Collected<bool>,
    /// `GET /repos/{r}/actions/permissions/workflow`; `None` when not read
    /// because the organisation's stricter setting binds every repository.
    pub workflow: Option<Collected<WorkflowPermissions>>,
    /// `GET /repos/{r}/environments`.
    pub environments: Collected<Vec<Environment>>,
    /// For IaC repositories: the URLs of the repository's webhooks
    /// (`GET /repos/{r}/hooks`), to find the gate's.
    #[serde(default)]
    pub hooks: Option<Collected<Vec<String>>>,
}

/// The parts of classic branch protection the checks read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassicProtection {
    /// `required_pull_request_reviews`, when pull requests are required.
    #[serde(default)]
    pub required_pull_request_reviews: Option<ClassicReviews>,
    /// `enforce_admins.enabled`.
    #[serde(default)]
    pub enforce_admins: bool,
    /// `allow_force_pushes.enabled`.
    #[serde(default)]
    pub allow_force_pushes: bool,
    /// `allow_deletions.enabled`.
    #[serde(default)]
    pub allow_deletions: bool,
    /// `required_status_checks.contexts` (and `checks[].context`).
    #[serde(default)]
    pub required_status_checks: Option<Vec<String>>,
    /// `required_pull_request_reviews.bypass_pull_request_allowances`: who
    /// may merge without the review (logins and team slugs).
    #[serde(default)]
    pub bypass_pull_request_allowances: Vec<String>,
}

/// `required_pull_request_reviews` of classic protection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassicReviews {
    /// `required_approving_review_count`.
    #[serde(default)]
    pub required_approving_review_count: u32,
    /// `dismiss_stale_reviews`.
    #[serde(default)]
    pub dismiss_stale_reviews: bool,
    /// `require_code_owner_reviews`.
    #[serde(default)]
    pub require_code_owner_reviews: bool,
    /// `require_last_push_approval`.
    #[serde(default)]
    pub require_last_push_approval: bool,
}

/// One rule of `GET /repos/{r}/rules/branches/{b}` (a rule with its
/// ruleset's details).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BranchRule {
    /// `pull_request`, `non_fast_forward`, `deletion`,
    /// `required_status_checks`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// `Repository` or `Organization`.
    #[serde(default)]
    pub ruleset_source_type: String,
    /// `owner/name` or the organisation.
    #[serde(default)]
    pub ruleset_source: String,
    /// The ruleset it comes from.
    #[serde(default)]
    pub ruleset_id: u64,
    /// The rule's parameters, as GitHub sent them.
    #[serde(default)]
    pub parameters: serde_json::Value,
}

/// A ruleset as `GET .../rulesets/{id}` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ruleset {
    /// Id.
    pub id: u64,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// `branch`, `tag`, `push`.
    #[serde(default)]
    pub target: Option<String>,
    /// `Repository` or `Organization`.
    #[serde(default)]
    pub source_type: String,
    /// `owner/name` or the organisation.
    #[serde(default)]
    pub source: String,
    /// `active`, `evaluate` or `disabled`.
    pub enforcement: String,
    /// Who may bypass it.
    #[serde(default)]
    pub bypass_actors: Vec<BypassActor>,
    /// `conditions` (ref names; repository names for organisation rulesets).
    #[serde(default)]
    pub conditions: serde_json::Value,
    /// Its rules (type and parameters).
    #[serde(default)]
    pub rules: Vec<serde_json::Value>,
}

/// A ruleset's bypass actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BypassActor {
    /// Id of the team, role, integration (the organisation admin role has
    /// none).
    #[serde(default)]
    pub actor_id: Option<u64>,
    /// `Integration`, `OrganizationAdmin`, `RepositoryRole`, `Team`,
    /// `DeployKey`.
    pub actor_type: String,
    /// `always`, `pull_request`.
    #[serde(default)]
    pub bypass_mode: String,
}

impl BypassActor {
    /// `Team/234`, `OrganizationAdmin`: how the config names one.
    pub fn key(&self) -> String {
        match self.actor_id {
            Some(id) => format!("{}/{id}", self.actor_type),
            None => self.actor_type.clone(),
        }
    }
}

/// A deployment environment and its protection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    /// Name.
    pub name: String,
    /// Required reviewers (logins and team slugs); empty when none.
    #[serde(default)]
    pub reviewers: Vec<String>,
    /// The `required_reviewers` rule's `prevent_self_review`.
    #[serde(default)]
    pub prevent_self_review: bool,
    /// The same reviewers as `TYPE/ID` (`User/7`, `Team/42`), what a
    /// restore sends back.
    #[serde(default)]
    pub reviewer_ids: Vec<String>,
}
