//! Policy as code: identities, groups, entitlements and the admin rule, parsed
//! from TOML and checked for mistakes a person can fix.
//!
//! ```toml
//! [admins]
//! groups = ["platform"]       # who may propose and approve policy changes
//! approvals = 1               # approvals needed from admins other than the proposer
//!
//! [[identity]]
//! name = "alice"              # subject under issuer "twokey" unless given
//! groups = ["eng"]
//!
//! [[entitlement]]
//! name = "prod-db"
//! provider = "postgres"
//! requester_groups = ["eng"]
//! default_duration = "30m"
//! max_duration = "1h"
//! pending_timeout = "1h"
//! reason_required = true
//! ticket_pattern = "^INC-[0-9]+$"
//! break_glass = false
//! approver_mfa = true         # approvers confirm with a security key (WebAuthn)
//! approval = { count = 2, from = ["dba"], exclude_requester_groups = true }
//! [entitlement.target]        # provider settings
//!
//! [auditors]                  # who reads every request and the ledger (admins do too)
//! groups = ["security"]
//! identities = ["erin"]
//!
//! [limits]                    # longest reason and review comment, in characters
//! reason = 2000
//! comment = 2000
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use toml::Spanned;

use crate::identity::{Actor, IdentityKey};
use crate::time::parse_duration;

/// Longest grant any entitlement may allow unless the policy says otherwise.
pub const DEFAULT_MAX_GRANT_MS: i64 = 12 * 3600 * 1000;

/// One problem found in a policy file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyIssue {
    /// File name as given by the caller.
    pub file: String,
    /// 1-based line, 0 when the problem has no single place.
    pub line: usize,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for PolicyIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        } else {
            write!(f, "{}: {}", self.file, self.message)
        }
    }
}

/// A policy that failed validation: every issue found, not just the first.
#[derive(Debug, Clone, thiserror::Error)]
pub struct PolicyError {
    /// The problems, in file order.
    pub issues: Vec<PolicyIssue>,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

/// How many approvals an entitlement needs and from whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRule {
    /// Approvals required, each from a distinct eligible identity. At least 1.
    pub count: u32,
    /// Groups whose members may approve. The requester never counts.
    pub from: Vec<String>,
    /// When true, an approver must share no group with the requester other
    /// than the approver groups in `from` ("not from the requester's own team").
    #[serde(default)]
    pub exclude_requester_groups: bool,
}

/// The regex a ticket id must match, compiled when the policy is parsed (not
/// on every request). Compares, prints and serialises as its source text.
#[derive(Debug, Clone)]
pub struct TicketPattern(regex::Regex);

impl TicketPattern {
    /// Compiles `pattern`; the error says what is wrong with it.
    pub fn new(pattern: &str) -> Result<Self, regex::Error> {
        regex::Regex::new(pattern).map(Self)
    }

    /// The pattern as written in the policy.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Whether `ticket` matches.
    pub fn is_match(&self, ticket: &str) -> bool {
        self.0.is_match(ticket)
    }
}

impl PartialEq for TicketPattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl std::fmt::Display for TicketPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TicketPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Something that can be requested.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entitlement {
    /// Unique name (`prod-db-write`).
    pub name: String,
    /// What it grants, for people.
    pub description: String,
    /// Provider kind (`exec`, `postgres`, ...).
    pub provider: String,
    /// Provider settings.
    pub target: toml::Table,
    /// Groups whose members may request it.
    pub requester_groups: Vec<String>,
    /// Identities (by key) that may request it.
    pub requester_identities: Vec<IdentityKey>,
    /// Approval rule.
    pub approval: ApprovalRule,
    /// Duration used when the request names none, ms.
    pub default_duration_ms: i64,
    /// Longest duration that may be requested, ms.
    pub max_duration_ms: i64,
    /// How long a request may wait for approval before it times out, ms.
    pub pending_timeout_ms: i64,
    /// Whether a reason is required.
    pub reason_required: bool,
    /// Regex a ticket id must match; when set, a ticket is required.
    /// Compiled once, when the policy is parsed.
    pub ticket_pattern: Option<TicketPattern>,
    /// Whether break-glass self-activation is allowed.
    pub break_glass: bool,
    /// Whether an approval must be confirmed with the approver's security key
    /// (step-up MFA, WebAuthn) at the moment of approving. Denying needs no key.
    pub approver_mfa: bool,
    /// Line of the entitlement in the policy file, for later diagnostics.
    pub line: usize,
    /// Line of its `target` table (or the entitlement line).
    pub target_line: usize,
}

impl Entitlement {
    /// Whether `actor` may request this entitlement.
    pub fn may_request(&self, actor: &Actor) -> bool {
        self.requester_identities.contains(&actor.key) || actor.in_any(&self.requester_groups)
    }

    /// Whether `actor` is eligible to review a request by `requester` (whose
    /// groups at request time were `requester_groups`). The requester is never
    /// eligible, whatever their groups.
    pub fn may_approve(
        &self,
        actor: &Actor,
        requester: &IdentityKey,
        requester_groups: &BTreeSet<String>,
    ) -> Result<(), String> {
        if actor.is(requester) {
            return Err("you requested this; a different approver is required".into());
        }
        if !actor.in_any(&self.approval.from) {
            return Err(format!(
                "you are not an approver for {:?}: approvals must come from a member of {}",
                self.name,
                self.approval.from.join(", ")
            ));
        }
        if self.approval.exclude_requester_groups {
            let shared: Vec<&String> = actor
                .groups
                .iter()
                .filter(|g| requester_groups.contains(*g) && !self.approval.from.contains(g))
                .collect();
            if let Some(g) = shared.first() {
                return Err(format!(
                    "you share the group {g:?} with the requester; {:?} needs an approver from outside the requester's team",
                    self.name
                ));
            }
        }
        Ok(())
    }
}

/// Who may change the policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdminRule {
    /// Groups whose members may propose and approve policy changes.
    pub groups: Vec<String>,
    /// Approvals required from admins other than the proposer (at least 1).
    pub approvals: u32,
}

/// Who reads every request and the whole ledger besides the admins
/// (`[auditors]`). Everyone else sees only their own requests and those they
/// may review.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditorRule {
    /// Groups whose members are auditors.
    pub groups: Vec<String>,
    /// Identities (by key) that are auditors.
    pub identities: Vec<IdentityKey>,
}

/// Default longest reason and review comment, in characters.
pub const DEFAULT_TEXT_LIMIT: usize = 2_000;

/// The people of the demo policy (`twokey serve --dev`): alice requests
/// (group `eng`); bob and carol approve (`approvers`) and are the policy
/// admins (`admins`, one other admin approves a change). The tests build
/// their policies from it too (`twokey_testkit::policy::PEOPLE`), so the
/// demo and the tests name the same people.
pub const DEMO_PEOPLE: &str = r#"[admins]
groups = ["admins"]
approvals = 1

[[identity]]
name = "alice"
email = "alice@example.com"
groups = ["eng"]

[[identity]]
name = "bob"
email = "bob@example.com"
groups = ["approvers", "admins"]

[[identity]]
name = "carol"
email = "carol@example.com"
groups = ["approvers", "admins"]
"#;

/// Bounds on free text people type (`[limits]`), in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Longest reason of a request (and its ticket id).
    pub reason: usize,
    /// Longest review comment.
    pub comment: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            reason: DEFAULT_TEXT_LIMIT,
            comment: DEFAULT_TEXT_LIMIT,
        }
    }
}

/// An identity declared in the policy (static and dev setups).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaticIdentity {
    /// Short name.
    pub name: String,
    /// Key.
    pub key: IdentityKey,
    /// Email, informational.
    pub email: Option<String>,
    /// Groups.
    pub groups: BTreeSet<String>,
    /// Other keys of the same person (an SSO subject, a second account).
    pub links: BTreeSet<IdentityKey>,
}

impl StaticIdentity {
    /// The actor this identity authenticates as.
    pub fn actor(&self) -> Actor {
        Actor {
            key: self.key.clone(),
            name: self.name.clone(),
            groups: self.groups.clone(),
            links: self.links.clone(),
        }
    }
}

/// A validated policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    /// SHA-256 of the policy text, hex; recorded with every decision.
    pub hash: String,
    /// The policy text itself.
    pub text: String,
    /// Policy-change rule.
    pub admins: AdminRule,
    /// Who reads everything (besides the admins).
    pub auditors: AuditorRule,
    /// Bounds on reasons and comments.
    pub limits: Limits,
    /// Static identities.
    pub identities: Vec<StaticIdentity>,
    /// Every group name the policy knows (declared and used by identities).
    pub groups: BTreeSet<String>,
    /// Entitlements by name.
    pub entitlements: BTreeMap<String, Entitlement>,
    /// Secrets under split custody (`[[custody]]`), by id.
    pub custody: BTreeMap<String, crate::custody::CustodySecret>,
    /// What the posture checks judge and what they except (`[posture]`).
    pub posture: crate::posture::PostureConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    admins: Option<Spanned<RawAdmins>>,
    #[serde(default)]
    groups: Vec<Spanned<String>>,
    #[serde(default)]
    identity: Vec<Spanned<RawIdentity>>,
    #[serde(default)]
    entitlement: Vec<Spanned<RawEntitlement>>,
    #[serde(default)]
    custody: Vec<Spanned<crate::custody::RawCustody>>,
    max_grant: Option<Spanned<String>>,
    auditors: Option<Spanned<RawAuditors>>,
    limits: Option<Spanned<RawLimits>>,
    posture: Option<Spanned<crate::posture::RawPosture>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuditors {
    #[serde(default)]
    groups: Vec<Spanned<String>>,
    #[serde(default)]
    identities: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    reason: Option<Spanned<i64>>,
    comment: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmins {
    groups: Vec<Spanned<String>>,
    approvals: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    name: Spanned<String>,
    issuer: Option<String>,
    subject: Option<String>,
    email: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    links: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntitlement {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    provider: Spanned<String>,
    #[serde(default)]
    target: Option<Spanned<toml::Table>>,
    #[serde(default)]
    requester_groups: Vec<Spanned<String>>,
    #[serde(default)]
    requester_identities: Vec<Spanned<String>>,
    approval: Spanned<RawApproval>,
    default_duration: Option<Spanned<String>>,
    max_duration: Spanned<String>,
    pending_timeout: Option<Spanned<String>>,
    #[serde(default)]
    reason_required: bool,
    ticket_pattern: Option<Spanned<String>>,
    #[serde(default)]
    break_glass: bool,
    #[serde(default)]
    approver_mfa: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApproval {
    count: u32,
    from: Vec<Spanned<String>>,
    #[serde(default)]
    exclude_requester_groups: bool,
}

/// Hash of a policy text as recorded in the ledger.
pub fn policy_hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

struct Lines<'a> {
    text: &'a str,
    file: &'a str,
}

impl Lines<'_> {
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }
    fn issue<T>(&self, at: &Spanned<T>, message: String) -> PolicyIssue {
        PolicyIssue {
            file: self.file.into(),
            line: self.line(at.span().start),
            message,
        }
    }
}

impl Policy {
    /// Parses and validates a policy. `file` is used only in messages.
    pub fn parse(text: &str, file: &str) -> Result<Policy, PolicyError> {
        let lines = Lines { text, file };
        let raw: RawPolicy = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| lines.line(s.start)).unwrap_or(0);
            PolicyError {
                issues: vec![PolicyIssue {
                    file: file.into(),
                    line,
                    message: e.message().trim().to_string(),
                }],
            }
        })?;
        let mut issues = Vec::new();

        let max_grant = match &raw.max_grant {
            Some(s) => match parse_duration(s.get_ref()) {
                Ok(v) => v,
                Err(m) => {
                    issues.push(lines.issue(s, format!("max_grant: {m}")));
                    DEFAULT_MAX_GRANT_MS
                }
            },
            None => DEFAULT_MAX_GRANT_MS,
        };

        let (groups, mut identities) = parse_identities(&raw, &lines, &mut issues);
        close_links(&mut identities);
        let admins = parse_admins(&raw, &groups, &identities, &lines, &mut issues);
        let by_name: BTreeMap<&str, &StaticIdentity> =
            identities.iter().map(|i| (i.name.as_str(), i)).collect();
        let auditors = parse_auditors(
            raw.auditors.as_ref(),
            &groups,
            &by_name,
            &lines,
            &mut issues,
        );
        let limits = parse_limits(raw.limits.as_ref(), &lines, &mut issues);
        let cx = EntitlementContext {
            groups: &groups,
            by_name: &by_name,
            identities: &identities,
            max_grant,
        };
        let mut entitlements = BTreeMap::new();
        for se in &raw.entitlement {
            let (name, ent) = parse_entitlement(se, &entitlements, &cx, &lines, &mut issues);
            entitlements.insert(name, ent);
        }

        let custody = crate::custody::validate(
            &raw.custody,
            &identities,
            &|offset| lines.line(offset),
            &mut |offset, message| {
                issues.push(PolicyIssue {
                    file: file.into(),
                    line: lines.line(offset),
                    message,
                })
            },
        );
        let posture = crate::posture::validate(
            raw.posture.as_ref(),
            &|offset| lines.line(offset),
            &mut |offset, message| {
                issues.push(PolicyIssue {
                    file: file.into(),
                    line: lines.line(offset),
                    message,
                })
            },
        );
        for ent in entitlements
            .values()
            .filter(|e| e.provider == crate::custody::PROVIDER)
        {
            let named = ent.target.get("secret").and_then(|v| v.as_str());
            if !named.is_some_and(|id| custody.contains_key(id)) {
                issues.push(PolicyIssue {
                    file: file.into(),
                    line: ent.target_line,
                    message: format!(
                        "entitlement {:?}: provider \"custody\" needs target.secret naming a [[custody]] secret{}",
                        ent.name,
                        match named {
                            Some(id) => format!(" (there is no custody secret {id:?})"),
                            None => String::new(),
                        }
                    ),
                });
            }
            if ent.break_glass {
                issues.push(PolicyIssue {
                    file: file.into(),
                    line: ent.line,
                    message: format!(
                        "entitlement {:?}: a custody secret is never self-released; break_glass must be false",
                        ent.name
                    ),
                });
            }
        }

        if issues.is_empty() {
            Ok(Policy {
                hash: policy_hash(text),
                text: text.into(),
                admins,
                auditors,
                limits,
                identities,
                groups,
                entitlements,
                custody,
                posture,
            })
        } else {
            issues.sort_by_key(|i| i.line);
            Err(PolicyError { issues })
        }
    }

    /// The entitlement called `name`.
    pub fn entitlement(&self, name: &str) -> Option<&Entitlement> {
        self.entitlements.get(name)
    }

    /// The static identity called `name`.
    pub fn identity(&self, name: &str) -> Option<&StaticIdentity> {
        self.identities.iter().find(|i| i.name == name)
    }

    /// Whether `actor` is a policy admin.
    pub fn is_admin(&self, actor: &Actor) -> bool {
        actor.in_any(&self.admins.groups)
    }

    /// Whether `actor` reads every request and the whole ledger: the admins
    /// and the `[auditors]`.
    pub fn may_read_all(&self, actor: &Actor) -> bool {
        self.is_admin(actor)
            || actor.in_any(&self.auditors.groups)
            || self.auditors.identities.iter().any(|k| actor.is(k))
    }

    /// The entitlements as every view shows them: credentials in their
    /// targets redacted (see [`crate::secret`]).
    pub fn redacted_entitlements(&self) -> BTreeMap<String, Entitlement> {
        self.entitlements
            .iter()
            .map(|(k, e)| {
                let mut e = e.clone();
                e.target = crate::secret::redact_table(&e.target);
                (k.clone(), e)
            })
            .collect()
    }

    /// The policy text as every view shows it: credentials redacted.
    pub fn redacted_text(&self) -> String {
        crate::secret::redact_text(&self.text)
    }
}

fn parse_auditors(
    raw: Option<&Spanned<RawAuditors>>,
    groups: &BTreeSet<String>,
    by_name: &BTreeMap<&str, &StaticIdentity>,
    lines: &Lines<'_>,
    issues: &mut Vec<PolicyIssue>,
) -> AuditorRule {
    let Some(a) = raw else {
        return AuditorRule::default();
    };
    let a = a.get_ref();
    for g in a.groups.iter().filter(|g| !groups.contains(g.get_ref())) {
        issues.push(lines.issue(
            g,
            format!("auditors: unknown group {:?}{}", g.get_ref(), known(groups)),
        ));
    }
    let mut identities = Vec::new();
    for i in &a.identities {
        match by_name.get(i.get_ref().as_str()) {
            Some(sid) => identities.push(sid.key.clone()),
            None => match IdentityKey::parse(i.get_ref()) {
                Some(k) => identities.push(k),
                None => issues.push(lines.issue(
                    i,
                    format!(
                        "auditors: unknown identity {:?} (a policy identity's name or an \"issuer|subject\")",
                        i.get_ref()
                    ),
                )),
            },
        }
    }
    AuditorRule {
        groups: a.groups.iter().map(|g| g.get_ref().clone()).collect(),
        identities,
    }
}

fn parse_limits(
    raw: Option<&Spanned<RawLimits>>,
    lines: &Lines<'_>,
    issues: &mut Vec<PolicyIssue>,
) -> Limits {
    let mut limits = Limits::default();
    let Some(l) = raw else { return limits };
    let l = l.get_ref();
    for (key, v, slot) in [
        ("reason", &l.reason, &mut limits.reason),
        ("comment", &l.comment, &mut limits.comment),
    ] {
        if let Some(n) = v {
            match usize::try_from(*n.get_ref()) {
                Ok(n) if (1..=100_000).contains(&n) => *slot = n,
                _ => issues.push(lines.issue(
                    n,
                    format!(
                        "limits.{key} = {} must be between 1 and 100000 characters",
                        n.get_ref()
                    ),
                )),
            }
        }
    }
    limits
}

fn known(groups: &BTreeSet<String>) -> String {
    if groups.is_empty() {
        " (no groups are declared)".into()
    } else {
        format!(
            " (known: {})",
            groups.iter().cloned().collect::<Vec<_>>().join(", ")
        )
    }
}

/// The identities and the groups they bring (with the declared groups).
fn parse_identities(
    raw: &RawPolicy,
    lines: &Lines,
    issues: &mut Vec<PolicyIssue>,
) -> (BTreeSet<String>, Vec<StaticIdentity>) {
    // Identities and the groups they bring.
    let mut groups: BTreeSet<String> = raw.groups.iter().map(|g| g.get_ref().clone()).collect();
    let mut identities: Vec<StaticIdentity> = Vec::new();
    let mut names = BTreeSet::new();
    let mut keys = BTreeSet::new();
    for sid in &raw.identity {
        let r = sid.get_ref();
        let name = r.name.get_ref().clone();
        if !names.insert(name.clone()) {
            issues.push(lines.issue(&r.name, format!("identity {name:?} is declared twice")));
        }
        let key = IdentityKey {
            issuer: r
                .issuer
                .clone()
                .unwrap_or_else(|| IdentityKey::STATIC_ISSUER.into()),
            subject: r.subject.clone().unwrap_or_else(|| name.clone()),
        };
        if key == Actor::system().key {
            issues.push(lines.issue(
                &r.name,
                format!("identity {name:?} would be {key}, which is reserved for twokey's own scheduled actions; choose another name or subject"),
            ));
        }
        if !keys.insert(key.clone()) {
            issues.push(lines.issue(
                &r.name,
                format!(
                    "identity {name:?} has the same issuer and subject ({key}) as another identity"
                ),
            ));
        }
        groups.extend(r.groups.iter().cloned());
        let mut links = BTreeSet::new();
        for l in &r.links {
            match IdentityKey::parse(l.get_ref()) {
                Some(k) if k != key => {
                    links.insert(k);
                }
                _ => issues.push(lines.issue(
                    l,
                    format!(
                        "identity {name:?}: link {:?} must be another identity's \"issuer|subject\"",
                        l.get_ref()
                    ),
                )),
            }
        }
        identities.push(StaticIdentity {
            name,
            key,
            email: r.email.clone(),
            groups: r.groups.iter().cloned().collect(),
            links,
        });
    }

    (groups, identities)
}

/// Links are symmetric and transitive among the policy's identities: if
/// alice links alice-admin, alice-admin is alice too.
fn close_links(identities: &mut [StaticIdentity]) {
    loop {
        let mut changed = false;
        for i in 0..identities.len() {
            let mut person: BTreeSet<IdentityKey> = identities[i].links.clone();
            person.insert(identities[i].key.clone());
            for (j, other) in identities.iter_mut().enumerate() {
                if i != j && person.contains(&other.key) {
                    for k in person.iter() {
                        if *k != other.key && other.links.insert(k.clone()) {
                            changed = true;
                        }
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
}

/// `[admins]`, and whether the admin groups have enough members for a
/// two-person policy change.
fn parse_admins(
    raw: &RawPolicy,
    groups: &BTreeSet<String>,
    identities: &[StaticIdentity],
    lines: &Lines,
    issues: &mut Vec<PolicyIssue>,
) -> AdminRule {
    let admins = match &raw.admins {
        Some(a) => {
            let ar = a.get_ref();
            for g in &ar.groups {
                if !groups.contains(g.get_ref()) {
                    issues.push(lines.issue(
                        g,
                        format!("admins: unknown group {:?}{}", g.get_ref(), known(groups)),
                    ));
                }
            }
            let approvals = ar.approvals.unwrap_or(1);
            if approvals == 0 {
                issues.push(lines.issue(
                    a,
                    "admins.approvals must be at least 1: changing the policy is a two-person operation".into(),
                ));
            }
            AdminRule {
                groups: ar.groups.iter().map(|g| g.get_ref().clone()).collect(),
                approvals,
            }
        }
        None => AdminRule {
            groups: vec![],
            approvals: 1,
        },
    };
    if !identities.is_empty() && !admins.groups.is_empty() {
        let n = identities
            .iter()
            .filter(|i| admins.groups.iter().any(|g| i.groups.contains(g)))
            .count();
        if (n as u32) < admins.approvals + 1 {
            issues.push(PolicyIssue {
                file: lines.file.into(),
                line: raw.admins.as_ref().map(|a| lines.line(a.span().start)).unwrap_or(0),
                message: format!(
                    "admins: a policy change needs the proposer plus {} other admin(s), but the admin groups have only {n} member(s)",
                    admins.approvals
                ),
            });
        }
    }

    admins
}

/// What every entitlement is checked against.
struct EntitlementContext<'a> {
    groups: &'a BTreeSet<String>,
    by_name: &'a BTreeMap<&'a str, &'a StaticIdentity>,
    identities: &'a [StaticIdentity],
    max_grant: i64,
}

/// One `[[entitlement]]`: its fields checked and typed, then whether its
/// approval rule can be met by the static identities.
fn parse_entitlement(
    se: &Spanned<RawEntitlement>,
    taken: &BTreeMap<String, Entitlement>,
    cx: &EntitlementContext,
    lines: &Lines,
    issues: &mut Vec<PolicyIssue>,
) -> (String, Entitlement) {
    let e = se.get_ref();
    let name = e.name.get_ref().clone();
    let before = issues.len();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        issues.push(lines.issue(
            &e.name,
            format!("entitlement name {name:?} must be letters, digits, '-' or '_'"),
        ));
    }
    if taken.contains_key(&name) {
        issues.push(lines.issue(&e.name, format!("entitlement {name:?} is declared twice")));
    }
    let dur =
        |v: &Option<Spanned<String>>, key: &str, issues: &mut Vec<PolicyIssue>| -> Option<i64> {
            let s = v.as_ref()?;
            match parse_duration(s.get_ref()) {
                Ok(ms) if ms > 0 => Some(ms),
                Ok(_) => {
                    issues.push(lines.issue(
                        s,
                        format!("entitlement {name:?}: {key} must be longer than zero"),
                    ));
                    None
                }
                Err(m) => {
                    issues.push(lines.issue(s, format!("entitlement {name:?}: {key}: {m}")));
                    None
                }
            }
        };
    let max = dur(&Some(e.max_duration.clone()), "max_duration", issues).unwrap_or(cx.max_grant);
    if max > cx.max_grant {
        issues.push(lines.issue(
            &e.max_duration,
            format!(
                "entitlement {name:?}: max_duration {} is over the policy's max_grant {}",
                e.max_duration.get_ref(),
                crate::time::format_duration(cx.max_grant)
            ),
        ));
    }
    let default = dur(&e.default_duration, "default_duration", issues).unwrap_or(max);
    if let Some(d) = &e.default_duration {
        if default > max {
            issues.push(lines.issue(
                d,
                format!(
                    "entitlement {name:?}: default_duration {} is over its max_duration {}",
                    d.get_ref(),
                    e.max_duration.get_ref()
                ),
            ));
        }
    }
    let pending = dur(&e.pending_timeout, "pending_timeout", issues).unwrap_or(24 * 3600 * 1000);

    for g in e.requester_groups.iter() {
        if !cx.groups.contains(g.get_ref()) {
            issues.push(lines.issue(
                g,
                format!(
                    "entitlement {name:?}: unknown requester group {:?}{}",
                    g.get_ref(),
                    known(cx.groups)
                ),
            ));
        }
    }
    let mut requester_identities = Vec::new();
    for i in &e.requester_identities {
        match cx.by_name.get(i.get_ref().as_str()) {
            Some(sid) => requester_identities.push(sid.key.clone()),
            None => issues.push(lines.issue(
                i,
                format!("entitlement {name:?}: unknown identity {:?}", i.get_ref()),
            )),
        }
    }
    if e.requester_groups.is_empty() && e.requester_identities.is_empty() {
        issues.push(lines.issue(&e.name, format!("entitlement {name:?}: nobody may request it (set requester_groups or requester_identities)")));
    }
    let ap = e.approval.get_ref();
    if ap.count == 0 {
        issues.push(lines.issue(&e.approval, format!("entitlement {name:?}: approval.count must be at least 1 (use break_glass for self-activation)")));
    }
    if ap.from.is_empty() {
        issues.push(lines.issue(
            &e.approval,
            format!("entitlement {name:?}: approval.from names no approver group"),
        ));
    }
    for g in &ap.from {
        if !cx.groups.contains(g.get_ref()) {
            issues.push(lines.issue(
                g,
                format!(
                    "entitlement {name:?}: unknown approver group {:?}{}",
                    g.get_ref(),
                    known(cx.groups)
                ),
            ));
        }
    }
    let ticket_pattern = match &e.ticket_pattern {
        Some(p) => match TicketPattern::new(p.get_ref()) {
            Ok(pattern) => Some(pattern),
            Err(err) => {
                issues.push(lines.issue(
                    p,
                    format!("entitlement {name:?}: ticket_pattern is not a valid regex: {err}"),
                ));
                None
            }
        },
        None => None,
    };
    let ent = Entitlement {
        name: name.clone(),
        description: e.description.clone(),
        provider: e.provider.get_ref().clone(),
        target: e
            .target
            .as_ref()
            .map(|t| t.get_ref().clone())
            .unwrap_or_default(),
        requester_groups: e
            .requester_groups
            .iter()
            .map(|g| g.get_ref().clone())
            .collect(),
        requester_identities,
        approval: ApprovalRule {
            count: ap.count,
            from: ap.from.iter().map(|g| g.get_ref().clone()).collect(),
            exclude_requester_groups: ap.exclude_requester_groups,
        },
        default_duration_ms: default.min(max),
        max_duration_ms: max,
        pending_timeout_ms: pending,
        reason_required: e.reason_required,
        ticket_pattern,
        break_glass: e.break_glass,
        approver_mfa: e.approver_mfa.as_ref().is_some_and(|m| *m.get_ref()),
        line: lines.line(se.span().start),
        target_line: e
            .target
            .as_ref()
            .map(|t| lines.line(t.span().start))
            .unwrap_or_else(|| lines.line(se.span().start)),
    };
    if issues.len() == before {
        check_approvable(&ent, &e.approval, cx.identities, lines, issues);
    }
    (name, ent)
}

/// Approval rules that can never be met, checked against the static
/// identities (SSO members are unknown until they log in).
fn check_approvable(
    ent: &Entitlement,
    approval: &Spanned<RawApproval>,
    identities: &[StaticIdentity],
    lines: &Lines,
    issues: &mut Vec<PolicyIssue>,
) {
    let name = &ent.name;
    if !identities.is_empty() {
        for requester in identities.iter().filter(|i| ent.may_request(&i.actor())) {
            let eligible: Vec<&str> = identities
                .iter()
                .filter(|i| {
                    ent.may_approve(&i.actor(), &requester.key, &requester.groups)
                        .is_ok()
                })
                .map(|i| i.name.as_str())
                .collect();
            if (eligible.len() as u32) < ent.approval.count {
                issues.push(lines.issue(
                    approval,
                    format!(
                        "entitlement {name:?} requires {} approval(s) from {} but a request by {:?} has only {} eligible approver(s) besides the requester{}",
                        ent.approval.count,
                        ent.approval.from.join(", "),
                        requester.name,
                        eligible.len(),
                        if eligible.is_empty() { String::new() } else { format!(" ({})", eligible.join(", ")) }
                    ),
                ));
                break;
            }
        }
    }
}
