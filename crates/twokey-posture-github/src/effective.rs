//! The effective protection of a branch: classic branch protection and the
//! active rules of repository and organisation rulesets, merged to the most
//! restrictive. A person can only merge alone if *every* source that
//! requires a review lets them through, so each requirement keeps the
//! sources that impose it and who may bypass each one.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::facts::{BranchRule, ClassicProtection, RepoFacts, Ruleset};

/// One place a requirement comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    /// `classic` or `ruleset 42 "name" (Organization acme)`.
    pub name: String,
    /// Who may get past it: `admins (enforce_admins off)`, `Team/234`,
    /// classic pull request allowances, or `unknown` when the ruleset
    /// could not be read. Break-glass actors the config names are left out.
    pub bypass: Vec<String>,
}

impl Source {
    /// Nobody (beyond the named break-glass actors) gets past it.
    pub fn unbypassable(&self) -> bool {
        self.bypass.is_empty()
    }
}

/// The pull-request requirement of one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Review {
    /// Where it comes from.
    pub source: Source,
    /// Required approving reviews.
    pub approvals: u32,
    /// Stale approvals dismissed on push.
    pub dismiss_stale: bool,
    /// Approval of the most recent push required.
    pub last_push: bool,
    /// Code-owner review required.
    pub code_owners: bool,
}

/// The merged protection of one branch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Effective {
    /// Every source that requires a pull request, with its parameters.
    pub reviews: Vec<Review>,
    /// Sources that block force pushes.
    pub force_push_blocked_by: Vec<Source>,
    /// Sources that block deletion.
    pub deletion_blocked_by: Vec<Source>,
    /// Required status check contexts, with their source.
    pub status_checks: Vec<(String, Source)>,
    /// Rulesets that target the branch but are not enforced
    /// (`evaluate` or `disabled`): (ruleset, enforcement).
    pub not_enforced: Vec<(String, String)>,
}

impl Effective {
    /// A pull request is required by some source.
    pub fn pull_request_required(&self) -> bool {
        !self.reviews.is_empty()
    }

    /// The most approvals any source requires.
    pub fn approvals(&self) -> u32 {
        self.reviews.iter().map(|r| r.approvals).max().unwrap_or(0)
    }

    /// Whether some source requires `pred` of its review.
    pub fn any(&self, pred: impl Fn(&Review) -> bool) -> bool {
        self.reviews.iter().any(pred)
    }

    /// Whether a source that nobody may bypass requires a pull request with
    /// at least `approvals` approvals.
    pub fn unbypassable_review(&self, approvals: u32) -> bool {
        self.reviews
            .iter()
            .any(|r| r.source.unbypassable() && r.approvals >= approvals)
    }

    /// Whether `context` is a required status check.
    pub fn requires_check(&self, context: &str) -> bool {
        self.status_checks.iter().any(|(c, _)| c == context)
    }
}

/// Computes the effective protection of `repo`'s default branch from what
/// was collected (the parts that could not be collected are left out; the
/// checks report them as errors). `break_glass` names the bypass actors
/// the config allows (`Team/234`, `Integration/99`).
pub fn effective(repo: &RepoFacts, break_glass: &[String]) -> Effective {
    let mut e = Effective::default();
    if let Ok(Some(c)) = repo.classic.as_result() {
        classic(&mut e, c);
    }
    let rulesets: &[Ruleset] = repo.rulesets.as_result().map(|r| &r[..]).unwrap_or(&[]);
    if let Ok(rules) = repo.rules.as_result() {
        for rule in rules {
            ruleset_rule(&mut e, rule, rulesets, break_glass);
        }
    }
    for rs in rulesets {
        if rs.enforcement != "active"
            && rs.target.as_deref().unwrap_or("branch") == "branch"
            && !rs.rules.is_empty()
            && targets(rs, repo)
        {
            e.not_enforced
                .push((ruleset_name(rs), rs.enforcement.clone()));
        }
    }
    e
}

fn classic(e: &mut Effective, c: &ClassicProtection) {
    let admins = if c.enforce_admins {
        vec![]
    } else {
        vec!["admins (enforce_admins off)".to_string()]
    };
    let src = |extra: &[String]| Source {
        name: "classic".into(),
        bypass: admins.iter().chain(extra).cloned().collect(),
    };
    if let Some(r) = &c.required_pull_request_reviews {
        e.reviews.push(Review {
            source: src(&c.bypass_pull_request_allowances),
            approvals: r.required_approving_review_count,
            dismiss_stale: r.dismiss_stale_reviews,
            last_push: r.require_last_push_approval,
            code_owners: r.require_code_owner_reviews,
        });
    }
    if !c.allow_force_pushes {
        e.force_push_blocked_by.push(src(&[]));
    }
    if !c.allow_deletions {
        e.deletion_blocked_by.push(src(&[]));
    }
    for ctx in c.required_status_checks.iter().flatten() {
        e.status_checks.push((ctx.clone(), src(&[])));
    }
}

fn ruleset_name(rs: &Ruleset) -> String {
    format!(
        "ruleset {} {:?} ({} {})",
        rs.id, rs.name, rs.source_type, rs.source
    )
}

fn ruleset_rule(
    e: &mut Effective,
    rule: &BranchRule,
    rulesets: &[Ruleset],
    break_glass: &[String],
) {
    let source = match rulesets.iter().find(|r| r.id == rule.ruleset_id) {
        Some(rs) => Source {
            name: ruleset_name(rs),
            bypass: rs
                .bypass_actors
                .iter()
                .map(|a| a.key())
                .filter(|k| !break_glass.iter().any(|b| b.eq_ignore_ascii_case(k)))
                .collect(),
        },
        // The rule applies but its ruleset's bypass list could not be read:
        // never assume it is empty.
        None => Source {
            name: format!(
                "ruleset {} ({} {})",
                rule.ruleset_id, rule.ruleset_source_type, rule.ruleset_source
            ),
            bypass: vec!["unknown (ruleset not readable)".into()],
        },
    };
    let p = &rule.parameters;
    let flag = |k: &str| p.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
    match rule.kind.as_str() {
        "pull_request" => e.reviews.push(Review {
            source,
            approvals: p
                .get("required_approving_review_count")
                .and_then(|v| v.as_u64())
                .unwrap_or(0)
                .min(u32::MAX as u64) as u32,
            dismiss_stale: flag("dismiss_stale_reviews_on_push"),
            last_push: flag("require_last_push_approval"),
            code_owners: flag("require_code_owner_review"),
        }),
        "non_fast_forward" => e.force_push_blocked_by.push(source),
        "deletion" => e.deletion_blocked_by.push(source),
        "required_status_checks" => {
            for c in p
                .get("required_status_checks")
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
            {
                if let Some(ctx) = c.get("context").and_then(|v| v.as_str()) {
                    e.status_checks.push((ctx.to_string(), source.clone()));
                }
            }
        }
        _ => {}
    }
}

/// Whether a ruleset's conditions select `repo`'s default branch. Unknown
/// condition kinds count as selecting it (a ruleset that might protect the
/// branch and is not enforced is reported rather than ignored).
pub fn targets(rs: &Ruleset, repo: &RepoFacts) -> bool {
    let c = &rs.conditions;
    let list = |v: &serde_json::Value, k: &str| -> Vec<String> {
        v.get(k)
            .and_then(|x| x.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let branch_ref = format!("refs/heads/{}", repo.default_branch);
    if let Some(r) = c.get("ref_name") {
        let m = |p: &String| match p.as_str() {
            "~ALL" => true,
            "~DEFAULT_BRANCH" => true,
            p => glob(p, &branch_ref),
        };
        let inc = list(r, "include");
        if !inc.iter().any(m) || list(r, "exclude").iter().any(m) {
            return false;
        }
    }
    if let Some(r) = c.get("repository_name") {
        let name = repo.full_name.split('/').nth(1).unwrap_or(&repo.full_name);
        let m = |p: &String| p == "~ALL" || glob(p, name);
        if !list(r, "include").iter().any(m) || list(r, "exclude").iter().any(m) {
            return false;
        }
    }
    true
}

/// fnmatch as rulesets use it: `*` within a path segment, `**` across
/// segments, `?` one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => (0..=t.len()).any(|i| go(&p[2..], &t[i..])),
            Some(b'*') => {
                let mut i = 0;
                loop {
                    if go(&p[1..], &t[i..]) {
                        return true;
                    }
                    if i == t.len() || t[i] == b'/' {
                        return false;
                    }
                    i += 1;
                }
            }
            Some(b'?') => !t.is_empty() && t[0] != b'/' && go(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

/// Repository names matched by the config's patterns (`infra-*`).
pub fn name_matches(patterns: &[String], full_name: &str) -> bool {
    let name = full_name.split('/').nth(1).unwrap_or(full_name);
    patterns
        .iter()
        .any(|p| glob(p, name) || glob(p, full_name) || p.eq_ignore_ascii_case(full_name))
}

/// Set of topics shared.
pub fn has_topic(topics: &[String], wanted: &[String]) -> bool {
    let t: BTreeSet<String> = topics.iter().map(|s| s.to_ascii_lowercase()).collect();
    wanted.iter().any(|w| t.contains(&w.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_as_rulesets_do() {
        assert!(glob("refs/heads/main", "refs/heads/main"));
        assert!(glob("refs/heads/*", "refs/heads/main"));
        assert!(!glob("refs/heads/*", "refs/heads/release/1"));
        assert!(glob("refs/heads/**", "refs/heads/release/1"));
        assert!(glob("infra-?", "infra-a"));
        assert!(!glob("infra-?", "infra-ab"));
    }
}
