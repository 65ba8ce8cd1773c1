//! Who can become whom, and who can do a high-risk action alone.
//!
//! The nodes are the users and roles of one or more accounts'
//! authorization details; an edge says one principal can act as another
//! (or give another any permission), with the statements that allow it:
//!
//! - `sts:AssumeRole`: the role's trust policy AND (cross account, or a
//!   trust naming only the account) the caller's identity policy;
//! - `iam:PassRole` of a role to a compute service that role trusts,
//!   with the service's launch actions ("can run as");
//! - `iam:CreateAccessKey`, `iam:CreateLoginProfile`,
//!   `iam:UpdateLoginProfile` on another user;
//! - `iam:UpdateAssumeRolePolicy` on a role;
//! - `iam:Put/AttachRolePolicy`, `iam:Put/AttachUserPolicy` on a principal
//!   one can become, and `iam:CreatePolicyVersion` /
//!   `iam:SetDefaultPolicyVersion` on a managed policy attached to one:
//!   an edge to that principal *empowered* (any identity policy added,
//!   still within its boundary, the SCPs and every deny).
//!
//! Every decision is the evaluator's ([`crate::evaluate`]), with the SCPs
//! of the caller's account and its permissions boundary. Request context
//! that a graph cannot know (MFA, source IP, tags on the request, ...) is
//! unknown, so an edge that depends on it is *conditional* and carries the
//! formula, never a silent yes or no. Standing means without twokey's grant
//! policies ([`crate::auth_details::is_grant_policy`]): what a principal can
//! do when no twokey grant is active.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;

use chrono::{DateTime, Utc};

use crate::auth_details::{AuthDetails, AuthDetailsError, EntityKind};
use crate::context::{aws_time, Context, Request};
use crate::decision::{Decision, Formula, StatementRef};
use crate::eval::{evaluate_request, NamedPolicy, OrgLevel, Policies};
use crate::pattern::{arn_like, glob};
use crate::policy::{Effect, Matcher, Policy, PrincipalType, Principals};

/// One account's authorization details and the SCPs in force for it.
#[derive(Debug)]
pub struct AccountInput {
    /// The account id.
    pub account: String,
    /// `GetAccountAuthorizationDetails`.
    pub details: AuthDetails,
    /// The SCP chain of the account (root first); empty outside an organisation.
    pub scps: Vec<OrgLevel>,
}

/// The principals twokey itself is and guards.
#[derive(Debug, Clone, Default)]
pub struct Twokey {
    /// Roles twokey grants (`aws_iam_assume` targets): reaching them is
    /// meant to take a twokey grant.
    pub targets: Vec<String>,
    /// Principals twokey runs as (its gateway role, the revoker roles).
    pub gateway: Vec<String>,
}

/// Compute services a passed role runs as, with the calls that start it.
pub const COMPUTE: &[(&str, &[&str])] = &[
    ("ec2.amazonaws.com", &["ec2:RunInstances"]),
    (
        "lambda.amazonaws.com",
        &["lambda:CreateFunction", "lambda:InvokeFunction"],
    ),
    (
        "ecs-tasks.amazonaws.com",
        &["ecs:RegisterTaskDefinition", "ecs:RunTask"],
    ),
    ("glue.amazonaws.com", &["glue:CreateDevEndpoint"]),
    (
        "cloudformation.amazonaws.com",
        &["cloudformation:CreateStack"],
    ),
    (
        "codebuild.amazonaws.com",
        &["codebuild:CreateProject", "codebuild:StartBuild"],
    ),
    (
        "sagemaker.amazonaws.com",
        &["sagemaker:CreateNotebookInstance"],
    ),
];

/// A compute service, its launch calls, and the roles (with the trust
/// decision) it may run as.
type RunsAs = (
    &'static str,
    &'static [&'static str],
    Vec<(usize, Decision)>,
);

/// How one principal acts as (or empowers) another.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum EdgeKind {
    /// `sts:AssumeRole`.
    AssumeRole,
    /// `iam:PassRole` to a compute service, with its launch actions.
    PassRole {
        /// The service principal (`ec2.amazonaws.com`).
        service: String,
    },
    /// `iam:CreateAccessKey` on another user.
    CreateAccessKey,
    /// `iam:CreateLoginProfile` on another user.
    CreateLoginProfile,
    /// `iam:UpdateLoginProfile` on another user.
    UpdateLoginProfile,
    /// `iam:UpdateAssumeRolePolicy` on a role.
    UpdateAssumeRolePolicy,
    /// `iam:PutRolePolicy` / `AttachRolePolicy` / `PutUserPolicy` /
    /// `AttachUserPolicy` on a principal one can become.
    WritePolicy {
        /// The action.
        action: String,
    },
    /// `iam:CreatePolicyVersion` / `SetDefaultPolicyVersion` on a managed
    /// policy attached to a principal one can become.
    PolicyVersion {
        /// The action.
        action: String,
        /// The managed policy.
        policy: String,
    },
}

impl fmt::Display for EdgeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EdgeKind::AssumeRole => f.write_str("sts:AssumeRole"),
            EdgeKind::PassRole { service } => write!(f, "iam:PassRole to {service}"),
            EdgeKind::CreateAccessKey => f.write_str("iam:CreateAccessKey"),
            EdgeKind::CreateLoginProfile => f.write_str("iam:CreateLoginProfile"),
            EdgeKind::UpdateLoginProfile => f.write_str("iam:UpdateLoginProfile"),
            EdgeKind::UpdateAssumeRolePolicy => f.write_str("iam:UpdateAssumeRolePolicy"),
            EdgeKind::WritePolicy { action } => f.write_str(action),
            EdgeKind::PolicyVersion { action, policy } => write!(f, "{action} on {policy}"),
        }
    }
}

/// A principal of the graph.
#[derive(Debug)]
pub struct Node {
    /// Its ARN.
    pub arn: String,
    /// User or role.
    pub kind: EntityKind,
    /// Its account.
    pub account: String,
    /// Managed policies attached to it (or its groups).
    pub managed: Vec<String>,
    trust: Option<NamedPolicy>,
    /// Identity, boundary and SCPs (no resource policy).
    policies: Policies,
    /// The request context it calls with (what the graph knows about it;
    /// everything else unknown).
    context: Context,
    /// An administrator without limits: an unconditional `Allow * on *`,
    /// no deny statement, no boundary, SCPs that deny nothing.
    admin: bool,
}

/// One step of the graph: `from` can act as `to` (or, `empowered`, as `to`
/// with any identity policy added).
#[derive(Debug, Clone)]
pub struct Edge {
    /// The node acting.
    pub from: usize,
    /// The node it becomes.
    pub to: usize,
    /// It can give `to` any identity permission.
    pub empowered: bool,
    /// How.
    pub kind: EdgeKind,
    /// The statements that allow it.
    pub by: Vec<StatementRef>,
    /// When it holds (`True`: always; else the requirements on unknown context).
    pub when: Formula,
}

/// The graph of who can become whom.
#[derive(Debug)]
pub struct Graph {
    /// The principals.
    pub nodes: Vec<Node>,
    /// The edges.
    pub edges: Vec<Edge>,
    /// Resource policies by resource ARN (bucket, key, ...).
    resource_policies: HashMap<String, NamedPolicy>,
    twokey: Twokey,
    now: DateTime<Utc>,
    index: HashMap<String, usize>,
}

/// A high-risk action to answer: who can do `action` on `resource`
/// standing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HighRisk {
    /// `service:Action`.
    pub action: String,
    /// The resource ARN; `*` for "any resource".
    pub resource: String,
    /// Why it is high-risk (the group it is from).
    pub why: String,
}

/// How a holder stands with respect to twokey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Standing {
    /// It can act alone: no twokey grant is involved.
    Standing,
    /// A role twokey grants: reaching it takes a grant (unless another
    /// holder's path shows a standing way in).
    TwokeyTarget,
    /// twokey's own principal (its gateway).
    TwokeyGateway,
}

impl fmt::Display for Standing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Standing::Standing => "standing",
            Standing::TwokeyTarget => "twokey target (only through a twokey grant)",
            Standing::TwokeyGateway => "twokey gateway",
        })
    }
}

/// One principal that can do the action, and how.
#[derive(Debug, Clone)]
pub struct Holder {
    /// The principal (where the path starts).
    pub principal: String,
    /// Standing, a twokey target, or twokey's gateway.
    pub standing: Standing,
    /// The edges from it to the principal that acts (empty: itself).
    pub path: Vec<Edge>,
    /// The node that finally acts, and whether empowered.
    pub acts_as: (usize, bool),
    /// The resource the final decision was asked for.
    pub resource: String,
    /// The statements that allow the action itself.
    pub by: Vec<StatementRef>,
    /// When the action is allowed (conjunction of the path's conditions and
    /// the final decision's); `True`: always.
    pub when: Formula,
}

impl Holder {
    /// Whether the path or the action depends on unknown context.
    pub fn conditional(&self) -> bool {
        self.when != Formula::True
    }
}

/// The answer for one high-risk action.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The question.
    pub risk: HighRisk,
    /// Every principal that can do it (standing ones first).
    pub holders: Vec<Holder>,
}

impl Answer {
    /// The holders that can act alone.
    pub fn standing(&self) -> impl Iterator<Item = &Holder> {
        self.holders
            .iter()
            .filter(|h| h.standing == Standing::Standing)
    }

    /// TPI-clean: nobody but twokey's target roles (reached only through a
    /// grant) and twokey itself can do it.
    pub fn tpi_clean(&self) -> bool {
        self.standing().next().is_none()
    }
}

/// Which resources an identity policy's allow statements name for an action.
enum Filter {
    None,
    Any,
    Patterns(Vec<String>),
}

fn action_matches(m: &Matcher<Vec<String>>, action: &str) -> bool {
    match m {
        Matcher::Is(p) => p.iter().any(|p| glob(p, action, true)),
        Matcher::Not(p) => !p.iter().any(|p| glob(p, action, true)),
    }
}

fn filter(policies: &[NamedPolicy], action: &str) -> Filter {
    let mut pats = Vec::new();
    for p in policies {
        for s in &p.policy.statements {
            if s.effect != Effect::Allow || !action_matches(&s.action, action) {
                continue;
            }
            match &s.resource {
                Some(Matcher::Is(r)) if !r.iter().any(|r| r.contains("${")) => {
                    pats.extend(r.iter().cloned())
                }
                _ => return Filter::Any,
            }
        }
    }
    if pats.is_empty() {
        Filter::None
    } else if pats.iter().any(|p| p == "*") {
        Filter::Any
    } else {
        Filter::Patterns(pats)
    }
}

impl Filter {
    fn admits(&self, arn: &str) -> bool {
        match self {
            Filter::None => false,
            Filter::Any => true,
            Filter::Patterns(p) => p.iter().any(|p| arn_like(p, arn)),
        }
    }
}

/// An identity policy allowing everything: what a principal can get when
/// someone can write its policies.
fn anything(who: &str) -> NamedPolicy {
    let id = format!("any policy written to {who}");
    let doc =
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#;
    NamedPolicy {
        policy: Policy::parse(&id, doc).unwrap_or(Policy {
            version: None,
            id: None,
            statements: vec![],
        }),
        id,
    }
}

/// How a trust policy's allow statements name principals.
#[derive(Default)]
struct TrustIndex {
    /// Exact AWS principal ARN → roles.
    exact: HashMap<String, Vec<usize>>,
    /// Account id → roles trusting the account.
    account: HashMap<String, Vec<usize>>,
    /// Roles trusting `*` or using `NotPrincipal`.
    anyone: Vec<usize>,
    /// Service principal → roles.
    service: HashMap<String, Vec<usize>>,
}

fn account_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

impl Graph {
    /// Builds the graph over `accounts` at time `now`.
    pub fn build(
        accounts: Vec<AccountInput>,
        resource_policies: Vec<(String, NamedPolicy)>,
        twokey: Twokey,
        now: DateTime<Utc>,
    ) -> Result<Graph, AuthDetailsError> {
        let mut nodes = Vec::new();
        for a in &accounts {
            for e in a.details.entities()? {
                let (mut policies, _) = a.details.identity_of(&e.arn, true)?;
                policies.scps = a.scps.clone();
                let account = account_of(&e.arn).unwrap_or(&a.account).to_string();
                let context = context(&e.arn, &account, e.kind, &e.tags, now);
                nodes.push(Node {
                    admin: unlimited(&policies),
                    account,
                    arn: e.arn,
                    kind: e.kind,
                    managed: e.managed,
                    trust: e.trust,
                    policies,
                    context,
                });
            }
        }
        let index = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.arn.clone(), i))
            .collect();
        let mut g = Graph {
            nodes,
            edges: vec![],
            resource_policies: resource_policies.into_iter().collect(),
            twokey,
            now,
            index,
        };
        g.edges = g.find_edges();
        Ok(g)
    }

    /// The node with this ARN.
    pub fn node(&self, arn: &str) -> Option<usize> {
        self.index.get(arn).copied()
    }

    /// Decides `who` (empowered or not) calling `action` on `resource`,
    /// with the resource's policy if the graph has one (`trust` for roles).
    fn decide(
        &self,
        who: usize,
        empowered: bool,
        action: &str,
        resource: &str,
        extra: &[(&str, &str)],
    ) -> Decision {
        let n = &self.nodes[who];
        let mut ctx = n.context.clone();
        for (k, v) in extra {
            ctx.set(k, *v);
        }
        if let Some(acct) = account_of(resource) {
            ctx.set("aws:ResourceAccount", acct);
        }
        let resource_policy = if action.to_ascii_lowercase().starts_with("sts:") {
            self.node(resource)
                .and_then(|t| self.nodes[t].trust.as_ref())
        } else {
            self.resource_policies.get(resource)
        };
        let req = Request::new(&n.arn, action, resource, self.now, ctx);
        if !empowered && resource_policy.is_none() {
            return evaluate_request(&req, &n.policies);
        }
        let mut policies = n.policies.clone();
        if empowered {
            policies.identity.push(anything(&n.arn));
        }
        policies.resource = resource_policy.cloned();
        evaluate_request(&req, &policies)
    }

    fn trust_index(&self) -> TrustIndex {
        let mut t = TrustIndex::default();
        for (i, n) in self.nodes.iter().enumerate() {
            let Some(trust) = &n.trust else { continue };
            for s in &trust.policy.statements {
                if s.effect != Effect::Allow {
                    continue;
                }
                match &s.principal {
                    Some(Matcher::Is(Principals::Listed(list))) => {
                        for (ty, p) in list {
                            match ty {
                                PrincipalType::Aws if p == "*" => t.anyone.push(i),
                                PrincipalType::Aws => {
                                    let parts: Vec<&str> = p.splitn(6, ':').collect();
                                    if p.len() == 12 && p.bytes().all(|b| b.is_ascii_digit()) {
                                        t.account.entry(p.clone()).or_default().push(i);
                                    } else if parts.len() == 6 && parts[5] == "root" {
                                        t.account.entry(parts[4].into()).or_default().push(i);
                                    } else {
                                        t.exact.entry(p.clone()).or_default().push(i);
                                    }
                                }
                                PrincipalType::Service => {
                                    t.service.entry(p.clone()).or_default().push(i)
                                }
                                _ => {}
                            }
                        }
                    }
                    Some(_) => t.anyone.push(i),
                    None => {}
                }
            }
        }
        for v in t
            .exact
            .values_mut()
            .chain(t.account.values_mut())
            .chain(t.service.values_mut())
            .chain(std::iter::once(&mut t.anyone))
        {
            v.sort_unstable();
            v.dedup();
        }
        t
    }

    fn edge(
        &self,
        from: usize,
        to: usize,
        empowered: bool,
        kind: EdgeKind,
        d: &Decision,
    ) -> Option<Edge> {
        let (by, when) = allowed(d)?;
        Some(Edge {
            from,
            to,
            empowered,
            kind,
            by,
            when,
        })
    }

    fn find_edges(&self) -> Vec<Edge> {
        let trust = self.trust_index();
        let mut edges = Vec::new();
        // Which roles each compute service may run as.
        let mut runs_as: Vec<RunsAs> = Vec::new();
        for (svc, launch) in COMPUTE {
            let roles = trust.service.get(*svc).cloned().unwrap_or_default();
            let ok: Vec<(usize, Decision)> = roles
                .into_iter()
                .filter_map(|r| {
                    let policies = Policies {
                        resource: self.nodes[r].trust.clone(),
                        ..Policies::default()
                    };
                    let mut ctx = Context::new();
                    ctx.mark_unknown("*");
                    let req =
                        Request::new(svc, "sts:AssumeRole", &self.nodes[r].arn, self.now, ctx);
                    let d = evaluate_request(&req, &policies);
                    allowed(&d).map(|_| (r, d))
                })
                .collect();
            runs_as.push((svc, launch, ok));
        }
        for (s, src) in self.nodes.iter().enumerate() {
            let identity = &src.policies.identity;
            // sts:AssumeRole: candidates by what the trust policies name.
            let assume = filter(identity, "sts:AssumeRole");
            // A trust naming the caller itself (or anyone) may grant without
            // the identity policy; one naming its account only with it.
            let mut cands: Vec<usize> = trust.anyone.clone();
            if let Some(v) = trust.exact.get(&src.arn) {
                cands.extend(v);
            }
            if let Some(v) = trust.account.get(&src.account) {
                cands.extend(v.iter().filter(|t| assume.admits(&self.nodes[**t].arn)));
            }
            for (acct, v) in &trust.account {
                if *acct != src.account {
                    cands.extend(v.iter().filter(|t| assume.admits(&self.nodes[**t].arn)));
                }
            }
            cands.sort_unstable();
            cands.dedup();
            let mut scratch = src.policies.clone();
            for t in cands {
                if t == s {
                    continue;
                }
                let dst = &self.nodes[t];
                let mut ctx = src.context.clone();
                if let Some(acct) = account_of(&dst.arn) {
                    ctx.set("aws:ResourceAccount", acct);
                }
                scratch.resource = dst.trust.clone();
                let req = Request::new(&src.arn, "sts:AssumeRole", &dst.arn, self.now, ctx);
                let d = evaluate_request(&req, &scratch);
                edges.extend(self.edge(s, t, false, EdgeKind::AssumeRole, &d));
            }
            if src.admin {
                // It can already do what the others can (see `unlimited`).
                continue;
            }
            // iam:PassRole to a compute service.
            let pass = filter(identity, "iam:PassRole");
            if !matches!(pass, Filter::None) {
                for (svc, launch, roles) in &runs_as {
                    if roles.is_empty() {
                        continue;
                    }
                    let mut launch_by = Vec::new();
                    let mut launch_when = Formula::True;
                    let mut can_launch = true;
                    for a in launch.iter() {
                        match self.on_some_resource(s, false, a) {
                            Some((_, by, when)) => {
                                launch_by.extend(by);
                                launch_when = launch_when.and(when);
                            }
                            None => {
                                can_launch = false;
                                break;
                            }
                        }
                    }
                    if !can_launch {
                        continue;
                    }
                    for (t, trust_d) in roles {
                        if *t == s || !pass.admits(&self.nodes[*t].arn) {
                            continue;
                        }
                        let d = self.decide(
                            s,
                            false,
                            "iam:PassRole",
                            &self.nodes[*t].arn,
                            &[("iam:PassedToService", svc)],
                        );
                        if let (Some(mut e), Some((tb, tw))) = (
                            self.edge(
                                s,
                                *t,
                                false,
                                EdgeKind::PassRole {
                                    service: svc.to_string(),
                                },
                                &d,
                            ),
                            allowed(trust_d),
                        ) {
                            e.by.extend(launch_by.iter().cloned());
                            e.by.extend(tb);
                            e.when = e.when.and(launch_when.clone()).and(tw);
                            edges.push(e);
                        }
                    }
                }
            }
            // Credentials of another user; the trust policy of a role.
            for (action, kind, want) in [
                (
                    "iam:CreateAccessKey",
                    EdgeKind::CreateAccessKey,
                    EntityKind::User,
                ),
                (
                    "iam:CreateLoginProfile",
                    EdgeKind::CreateLoginProfile,
                    EntityKind::User,
                ),
                (
                    "iam:UpdateLoginProfile",
                    EdgeKind::UpdateLoginProfile,
                    EntityKind::User,
                ),
                (
                    "iam:UpdateAssumeRolePolicy",
                    EdgeKind::UpdateAssumeRolePolicy,
                    EntityKind::Role,
                ),
            ] {
                let f = filter(identity, action);
                if matches!(f, Filter::None) {
                    continue;
                }
                for (t, dst) in self.nodes.iter().enumerate() {
                    if t == s
                        || dst.kind != want
                        || dst.account != src.account
                        || !f.admits(&dst.arn)
                    {
                        continue;
                    }
                    let d = self.decide(s, false, action, &dst.arn, &[]);
                    edges.extend(self.edge(s, t, false, kind.clone(), &d));
                }
            }
        }
        // Writing the policies of a principal one can become (itself included).
        let plain = edges.clone();
        let adjacency = adjacency(self.nodes.len(), &plain);
        for (s, src) in self.nodes.iter().enumerate() {
            if src.admin {
                continue;
            }
            let identity = &src.policies.identity;
            let writes: Vec<(&str, Filter)> = [
                "iam:PutRolePolicy",
                "iam:AttachRolePolicy",
                "iam:PutUserPolicy",
                "iam:AttachUserPolicy",
                "iam:CreatePolicyVersion",
                "iam:SetDefaultPolicyVersion",
            ]
            .into_iter()
            .map(|a| (a, filter(identity, a)))
            .filter(|(_, f)| !matches!(f, Filter::None))
            .collect();
            if writes.is_empty() {
                continue;
            }
            for t in reach(s, &adjacency) {
                let dst = &self.nodes[t];
                for (action, f) in &writes {
                    let on_role = action.ends_with("RolePolicy");
                    let on_user = action.ends_with("UserPolicy");
                    if on_role || on_user {
                        let fits = (on_role && dst.kind == EntityKind::Role)
                            || (on_user && dst.kind == EntityKind::User);
                        if !fits || !f.admits(&dst.arn) {
                            continue;
                        }
                        let d = self.decide(s, false, action, &dst.arn, &[]);
                        let kind = EdgeKind::WritePolicy {
                            action: action.to_string(),
                        };
                        edges.extend(self.edge(s, t, true, kind, &d));
                    } else {
                        for p in dst.managed.iter().filter(|p| {
                            // AWS managed policies cannot be changed.
                            !p.starts_with("arn:aws:iam::aws:") && f.admits(p)
                        }) {
                            let d = self.decide(s, false, action, p, &[]);
                            let kind = EdgeKind::PolicyVersion {
                                action: action.to_string(),
                                policy: p.clone(),
                            };
                            edges.extend(self.edge(s, t, true, kind, &d));
                        }
                    }
                }
            }
        }
        edges
    }

    /// Whether `who` can do `action` on some resource: `*`, then each
    /// resource pattern its identity policy names for it.
    fn on_some_resource(
        &self,
        who: usize,
        empowered: bool,
        action: &str,
    ) -> Option<(String, Vec<StatementRef>, Formula)> {
        let mut resources = vec!["*".to_string()];
        if let Filter::Patterns(p) = filter(&self.nodes[who].policies.identity, action) {
            resources.extend(p);
        }
        let mut conditional = None;
        for r in resources {
            let d = self.decide(who, empowered, action, &r, &[]);
            if let Some((by, when)) = allowed(&d) {
                if when == Formula::True {
                    return Some((r, by, when));
                }
                conditional.get_or_insert((r, by, when));
            }
        }
        conditional
    }

    fn holds(
        &self,
        who: usize,
        empowered: bool,
        risk: &HighRisk,
    ) -> Option<(String, Vec<StatementRef>, Formula)> {
        let by_identity = !matches!(
            filter(&self.nodes[who].policies.identity, &risk.action),
            Filter::None
        );
        let by_resource = self.resource_policies.contains_key(&risk.resource)
            || (risk.action.to_ascii_lowercase().starts_with("sts:")
                && self.node(&risk.resource).is_some());
        if !(empowered || by_identity || by_resource) {
            return None;
        }
        if risk.resource == "*" {
            self.on_some_resource(who, empowered, &risk.action)
        } else {
            let d = self.decide(who, empowered, &risk.action, &risk.resource, &[]);
            allowed(&d).map(|(by, when)| (risk.resource.clone(), by, when))
        }
    }

    fn standing_of(&self, arn: &str) -> Standing {
        if self.twokey.gateway.iter().any(|g| g == arn) {
            Standing::TwokeyGateway
        } else if self.twokey.targets.iter().any(|t| t == arn) {
            Standing::TwokeyTarget
        } else {
            Standing::Standing
        }
    }

    /// Every principal that can do `risk` standing, each with its shortest
    /// path (unconditional paths preferred).
    pub fn answer(&self, risk: &HighRisk) -> Answer {
        let n = self.nodes.len();
        // The final actors: plain nodes 0..n, empowered nodes n..2n.
        let mut acts: BTreeMap<usize, (String, Vec<StatementRef>, Formula)> = BTreeMap::new();
        for i in 0..n {
            if let Some(h) = self.holds(i, false, risk) {
                acts.insert(i, h);
            }
        }
        let mut empowered_targets: Vec<usize> = self
            .edges
            .iter()
            .filter(|e| e.empowered)
            .map(|e| e.to)
            .collect();
        empowered_targets.sort_unstable();
        empowered_targets.dedup();
        for t in empowered_targets {
            if acts.get(&t).is_some_and(|(_, _, w)| *w == Formula::True) {
                continue;
            }
            if let Some(h) = self.holds(t, true, risk) {
                acts.insert(n + t, h);
            }
        }
        // Backwards breadth-first search from the actors: first over
        // unconditional edges and actors, then over all.
        let mut into: Vec<Vec<usize>> = vec![vec![]; 2 * n];
        for (k, e) in self.edges.iter().enumerate() {
            into[e.to + if e.empowered { n } else { 0 }].push(k);
        }
        let mut next: Vec<Option<Option<usize>>> = vec![None; 2 * n];
        for pass in [true, false] {
            let mut queue = VecDeque::new();
            for (a, (_, _, w)) in &acts {
                if next[*a].is_none() && (!pass || *w == Formula::True) {
                    next[*a] = Some(None);
                    queue.push_back(*a);
                }
            }
            if !pass {
                // Re-seed from everything reached in the first pass too.
                let seeded: Vec<usize> = queue.iter().copied().collect();
                for (v, nx) in next.iter().enumerate() {
                    if nx.is_some() && !seeded.contains(&v) {
                        queue.push_back(v);
                    }
                }
            }
            while let Some(v) = queue.pop_front() {
                for &k in &into[v] {
                    let e = &self.edges[k];
                    if pass && e.when != Formula::True {
                        continue;
                    }
                    if next[e.from].is_none() {
                        next[e.from] = Some(Some(k));
                        queue.push_back(e.from);
                    }
                }
            }
        }
        let mut holders = Vec::new();
        for (start, first) in next.iter().enumerate().take(n) {
            let Some(mut step) = *first else {
                continue;
            };
            let mut path = Vec::new();
            let mut at = start;
            while let Some(k) = step {
                let e = self.edges[k].clone();
                at = e.to + if e.empowered { n } else { 0 };
                path.push(e);
                step = next[at].flatten();
                if path.len() > 2 * n {
                    break;
                }
            }
            let Some((resource, by, when)) = acts.get(&at).cloned() else {
                continue;
            };
            let when = path
                .iter()
                .fold(Formula::True, |f, e| f.and(e.when.clone()))
                .and(when);
            let arn = &self.nodes[start].arn;
            // A twokey target holds the power by design; reaching it is
            // what counts, and the principals that reach it are listed.
            let standing = self.standing_of(arn);
            holders.push(Holder {
                principal: arn.clone(),
                standing,
                path,
                acts_as: (at % n.max(1), at >= n),
                resource,
                by,
                when,
            });
        }
        holders.sort_by(|a, b| {
            (a.standing, a.conditional(), a.path.len(), &a.principal).cmp(&(
                b.standing,
                b.conditional(),
                b.path.len(),
                &b.principal,
            ))
        });
        Answer {
            risk: risk.clone(),
            holders,
        }
    }

    /// Answers every risk of `list`.
    pub fn answer_all(&self, list: &[HighRisk]) -> Vec<Answer> {
        list.iter().map(|r| self.answer(r)).collect()
    }

    /// A holder's path as lines a person reads.
    pub fn describe(&self, h: &Holder, action: &str) -> Vec<String> {
        let name = |i: usize, emp: bool| {
            let a = &self.nodes[i].arn;
            if emp {
                format!("{a} (with any policy)")
            } else {
                a.clone()
            }
        };
        let refs = |by: &[StatementRef]| {
            by.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        };
        let mut out = Vec::new();
        for e in &h.path {
            let mut l = format!(
                "{} --{}--> {}  [{}]",
                self.nodes[e.from].arn,
                e.kind,
                name(e.to, e.empowered),
                refs(&e.by)
            );
            if e.when != Formula::True {
                l.push_str(&format!(" if {}", e.when));
            }
            out.push(l);
        }
        out.push(format!(
            "{} can {action} on {}  [{}]",
            name(h.acts_as.0, h.acts_as.1),
            h.resource,
            refs(&h.by)
        ));
        out
    }
}

/// The context a principal calls with: what the graph knows (time, who it
/// is, its tags); every other key unknown.
fn context(
    arn: &str,
    account: &str,
    kind: EntityKind,
    tags: &[(String, String)],
    now: DateTime<Utc>,
) -> Context {
    let mut ctx = Context::new();
    ctx.mark_unknown("*");
    ctx.set("aws:CurrentTime", aws_time(now));
    ctx.set("aws:EpochTime", now.timestamp().to_string());
    ctx.set("aws:PrincipalArn", arn);
    ctx.set("aws:PrincipalAccount", account);
    ctx.set("aws:PrincipalIsAWSService", "false");
    match kind {
        EntityKind::User => {
            ctx.set("aws:PrincipalType", "User");
            if let Some(name) = arn.rsplit('/').next() {
                ctx.set("aws:username", name);
            }
        }
        EntityKind::Role => {
            ctx.set("aws:PrincipalType", "AssumedRole");
        }
    }
    for (k, v) in tags {
        ctx.set(&format!("aws:PrincipalTag/{k}"), v.clone());
    }
    ctx
}

/// Whether the policies make an administrator without limits: an
/// unconditional `Allow` of `*` on `*`, no deny statement in any of them,
/// no boundary, and SCP levels that each allow `*` and deny nothing. Such a
/// principal can already do whatever a principal it could rewrite or take
/// the credentials of can (short of a resource policy naming that other
/// principal), so those edges are not computed from it.
fn unlimited(p: &Policies) -> bool {
    let star = |s: &crate::policy::Statement| {
        s.effect == Effect::Allow
            && s.conditions.is_empty()
            && matches!(&s.action, Matcher::Is(a) if a.iter().any(|a| a == "*"))
            && matches!(&s.resource, Some(Matcher::Is(r)) if r.iter().any(|r| r == "*"))
    };
    let no_deny = |list: &[NamedPolicy]| {
        list.iter().all(|p| {
            p.policy
                .statements
                .iter()
                .all(|s| s.effect == Effect::Allow)
        })
    };
    p.boundary.is_none()
        && p.session.is_none()
        && no_deny(&p.identity)
        && p.identity
            .iter()
            .any(|n| n.policy.statements.iter().any(star))
        && p.scps.iter().all(|l| {
            no_deny(&l.policies)
                && l.policies
                    .iter()
                    .any(|n| n.policy.statements.iter().any(star))
        })
}

/// The allow statements and the formula of an allowing decision.
fn allowed(d: &Decision) -> Option<(Vec<StatementRef>, Formula)> {
    match d {
        Decision::Allowed { by } => Some((by.clone(), Formula::True)),
        Decision::AllowedIf { when, by } => Some((by.clone(), when.clone())),
        _ => None,
    }
}

fn adjacency(n: usize, edges: &[Edge]) -> Vec<Vec<usize>> {
    let mut a = vec![vec![]; n];
    for e in edges {
        a[e.from].push(e.to);
    }
    a
}

/// `s` and every node reachable from it.
fn reach(s: usize, adjacency: &[Vec<usize>]) -> Vec<usize> {
    let mut seen = vec![false; adjacency.len()];
    let mut out = vec![s];
    seen[s] = true;
    let mut i = 0;
    while i < out.len() {
        for &t in &adjacency[out[i]] {
            if !seen[t] {
                seen[t] = true;
                out.push(t);
            }
        }
        i += 1;
    }
    out
}
