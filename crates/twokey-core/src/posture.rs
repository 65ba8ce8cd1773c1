//! The posture configuration the policy carries (`[posture]`): which checks
//! run, who the break-glass users are, and the exceptions. It lives in the
//! policy on purpose: switching a check off or excepting a resource is a
//! policy change, so it takes a second person and lands in the ledger like
//! every other one.
//!
//! ```toml
//! [posture]
//! disabled = ["logs.retention_days"]        # check ids that do not run
//! break_glass_users = ["breakglass"]        # IAM users allowed a console password
//! log_retention_days = 365
//!
//! [[posture.exception]]
//! check = "s3.default_encryption"
//! account = "222233334444"                  # or "*"
//! resource = "arn:aws:s3:::public-site-*"   # exact, or `*` wildcards
//! reason = "static website, public by design (CHG-1234)"
//! until = 2027-06-30                        # optional: the exception lapses after this day
//!
//! [posture.as_code]                         # the GitHub repositories that hold the guard rails
//! guardrails = "acme/guardrails"            # the SCPs (`twokey scp generate` output)
//! posture = "acme/guardrails"               # the posture configuration (twokey.toml)
//! policy = "acme/twokey-policy"             # this policy
//! ```
//!
//! Check ids are not known here (the core knows no checks); the posture
//! crate refuses an unknown id when it reads the policy.

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// `[posture]` of the policy; the default when the policy has none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostureConfig {
    /// Check ids switched off.
    pub disabled: Vec<String>,
    /// IAM user names that may keep a console password (break-glass).
    pub break_glass_users: Vec<String>,
    /// Least CloudWatch Logs retention, in days (the check's default when unset).
    pub log_retention_days: Option<u32>,
    /// Resources a check does not judge, each with its reason.
    pub exceptions: Vec<PostureException>,
    /// Where the guard rails live as code (`[posture.as_code]`).
    #[serde(default)]
    pub as_code: AsCode,
}

/// The GitHub repositories (`owner/name`) that hold the guard rails, so
/// `code.guardrails_protected` can ask whether the deploy gate protects
/// them. `None`: not declared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsCode {
    /// The guard-rail SCPs.
    pub guardrails: Option<String>,
    /// The posture configuration (`twokey.toml`).
    pub posture: Option<String>,
    /// The twokey policy itself.
    pub policy: Option<String>,
}

impl AsCode {
    /// Each guard rail with the repository declared for it, in a fixed order:
    /// (`guardrails`, what it is, repository).
    pub fn items(&self) -> [(&'static str, &'static str, Option<&str>); 3] {
        [
            (
                "guardrails",
                "the guard-rail SCPs",
                self.guardrails.as_deref(),
            ),
            (
                "posture",
                "the posture configuration",
                self.posture.as_deref(),
            ),
            ("policy", "the twokey policy", self.policy.as_deref()),
        ]
    }
}

/// One excepted resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostureException {
    /// The check id.
    pub check: String,
    /// A 12-digit account id, or `*` for every account.
    pub account: String,
    /// The resource as findings name it; `*` matches any run of characters.
    pub resource: String,
    /// Why; shown with every excepted finding.
    pub reason: String,
    /// The last day (UTC) the exception holds, as Unix ms of the end of that day.
    pub until_ms: Option<i64>,
    /// 1-based line in the policy.
    pub line: usize,
}

impl PostureException {
    /// Whether this exception covers `check`'s finding on `resource` in
    /// `account` at `now_ms`.
    pub fn covers(&self, check: &str, account: &str, resource: &str, now_ms: i64) -> bool {
        self.check == check
            && (self.account == "*" || self.account == account)
            && wildcard(&self.resource, resource)
            && self.until_ms.is_none_or(|u| now_ms <= u)
    }
}

impl PostureConfig {
    /// The exception covering this finding, if any.
    pub fn exception(
        &self,
        check: &str,
        account: &str,
        resource: &str,
        now_ms: i64,
    ) -> Option<&PostureException> {
        self.exceptions
            .iter()
            .find(|e| e.covers(check, account, resource, now_ms))
    }

    /// Every check id the configuration names (switches and exceptions),
    /// with its line, for the caller that knows the checks to validate.
    pub fn named_checks(&self) -> Vec<(&str, usize)> {
        let mut v: Vec<(&str, usize)> = self.disabled.iter().map(|c| (c.as_str(), 0)).collect();
        v.extend(self.exceptions.iter().map(|e| (e.check.as_str(), e.line)));
        v
    }
}

/// `*` matches any run of characters (none included); everything else is literal.
fn wildcard(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPosture {
    #[serde(default)]
    disabled: Vec<String>,
    #[serde(default)]
    break_glass_users: Vec<String>,
    log_retention_days: Option<u32>,
    #[serde(default)]
    exception: Vec<Spanned<RawException>>,
    as_code: Option<RawAsCode>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAsCode {
    guardrails: Option<String>,
    posture: Option<String>,
    policy: Option<String>,
}

/// `owner/name`: two non-empty parts of GitHub's name characters.
fn is_repo_name(s: &str) -> bool {
    let mut parts = s.split('/');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawException {
    check: String,
    account: String,
    resource: String,
    reason: String,
    until: Option<toml::value::Datetime>,
}

/// Validates `[posture]`; each problem goes to `issue(offset, message)`.
pub(crate) fn validate(
    raw: Option<&Spanned<RawPosture>>,
    line: &dyn Fn(usize) -> usize,
    issue: &mut dyn FnMut(usize, String),
) -> PostureConfig {
    let Some(raw) = raw else {
        return PostureConfig::default();
    };
    let at = raw.span().start;
    let raw = raw.get_ref();
    let mut out = PostureConfig {
        disabled: raw.disabled.clone(),
        break_glass_users: raw.break_glass_users.clone(),
        log_retention_days: raw.log_retention_days,
        exceptions: vec![],
        as_code: AsCode::default(),
    };
    if let Some(c) = &raw.as_code {
        out.as_code = AsCode {
            guardrails: c.guardrails.clone(),
            posture: c.posture.clone(),
            policy: c.policy.clone(),
        };
        for (key, _, repo) in out.as_code.items() {
            if let Some(r) = repo.filter(|r| !is_repo_name(r)) {
                issue(
                    at,
                    format!(
                        "[posture.as_code] {key} = {r:?} is not a GitHub repository (owner/name)"
                    ),
                );
            }
        }
    }
    if raw.log_retention_days == Some(0) {
        issue(at, "[posture] log_retention_days must be at least 1".into());
    }
    for e in &raw.exception {
        let offset = e.span().start;
        let r = e.get_ref();
        if r.check.trim().is_empty() {
            issue(offset, "[[posture.exception]] needs a check id".into());
        }
        if r.account != "*"
            && !(r.account.len() == 12 && r.account.bytes().all(|b| b.is_ascii_digit()))
        {
            issue(
                offset,
                format!(
                    "[[posture.exception]] for {:?}: account {:?} is neither a 12-digit AWS account id nor \"*\"",
                    r.check, r.account
                ),
            );
        }
        if r.resource.trim().is_empty() || r.resource == "*" && r.account == "*" {
            issue(
                offset,
                format!(
                    "[[posture.exception]] for {:?}: name the resource (an exception for every resource of every account is `disabled`, say so there)",
                    r.check
                ),
            );
        }
        if r.reason.trim().is_empty() {
            issue(
                offset,
                format!("[[posture.exception]] for {:?}: give a reason (an auditor reads it with every excepted finding)", r.check),
            );
        }
        let until_ms = match &r.until {
            None => None,
            Some(d) => match (d.date, d.time) {
                (Some(date), None) if d.offset.is_none() => Some(
                    days_from_civil(
                        i64::from(date.year),
                        u32::from(date.month),
                        u32::from(date.day),
                    ) * 86_400_000
                        + 86_399_999,
                ),
                _ => {
                    issue(
                        offset,
                        format!("[[posture.exception]] for {:?}: until must be a plain date (until = 2027-06-30)", r.check),
                    );
                    None
                }
            },
        };
        out.exceptions.push(PostureException {
            check: r.check.clone(),
            account: r.account.clone(),
            resource: r.resource.clone(),
            reason: r.reason.clone(),
            until_ms,
            line: line(offset),
        });
    }
    out
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_runs_and_literals_exactly() {
        assert!(wildcard("a*", "abc"));
        assert!(wildcard("*c", "abc"));
        assert!(wildcard("a*c", "ac"));
        assert!(wildcard("a*b*c", "axxbyyc"));
        assert!(!wildcard("a*b*c", "axxcyyb"));
        assert!(!wildcard("abc", "abcd"));
        assert!(wildcard("arn:aws:s3:::site-*", "arn:aws:s3:::site-prod"));
        assert!(!wildcard("arn:aws:s3:::site-*", "arn:aws:s3:::logs"));
    }

    #[test]
    fn repository_names_are_owner_slash_name() {
        assert!(is_repo_name("acme/guard-rails.v2"));
        assert!(!is_repo_name("acme"));
        assert!(!is_repo_name("acme/"));
        assert!(!is_repo_name("acme/a/b"));
        assert!(!is_repo_name("https://github.com/acme/x"));
    }

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2027, 6, 30), 20_999);
    }

    #[test]
    fn an_exception_lapses_after_its_day() {
        let e = PostureException {
            check: "c".into(),
            account: "*".into(),
            resource: "r".into(),
            reason: "why".into(),
            until_ms: Some(days_from_civil(2027, 6, 30) * 86_400_000 + 86_399_999),
            line: 1,
        };
        let day = 86_400_000;
        assert!(e.covers("c", "111122223333", "r", 20_999 * day + 1));
        assert!(!e.covers("c", "111122223333", "r", 21_000 * day));
        assert!(!e.covers("other", "111122223333", "r", 0));
    }
}
