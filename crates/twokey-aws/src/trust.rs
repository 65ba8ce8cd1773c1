//! Whether a role's trust policy lets a principal assume the role **without**
//! the identity policy twokey grants: standing access that no approval or
//! expiry can take away.
//!
//! AWS's evaluation logic for `sts:AssumeRole` (the IAM User Guide, "Policy
//! evaluation logic" and "Cross-account policy evaluation logic"):
//!
//! - **same account**: a trust statement that names the principal's own ARN
//!   (or `*`, or an `Allow` with `NotPrincipal` that leaves it out) allows the
//!   call by itself; the principal's identity policies are not consulted. A
//!   statement that names the *account* (`arn:aws:iam::ACCOUNT:root` or the
//!   bare account id) delegates to IAM: the identity policy must allow too.
//! - **cross account**: the trust and the identity policy must both allow,
//!   whatever the trust names.
//!
//! So a target role whose trust names the account (the README's form) can be
//! assumed only through twokey's grant policy in both cases, and a same-account
//! role whose trust names the person cannot. [`standing_trust`] answers for
//! one principal; [`admits`] says whether the trust lets the principal (or its
//! account) in at all, so a grant that could never work is named too.
//!
//! Conditions are not evaluated: a condition the person can satisfy alone
//! (`sts:SourceIdentity` they choose, a tag on their own principal) is no
//! barrier, so a statement counts whatever its conditions. An explicit `Deny`
//! in the trust is not credited either (the answer errs towards "standing").

use serde_json::Value;

use crate::client::Arn;

/// Why a trust policy gives standing access to one principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandingTrust {
    /// Index of the statement in the trust policy's `Statement` list.
    pub statement: usize,
    /// Its `Sid`, when it has one.
    pub sid: Option<String>,
    /// How it names the principal (`the principal's ARN`, `Principal "*"`, ...).
    pub how: &'static str,
}

impl std::fmt::Display for StandingTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.sid {
            Some(sid) => write!(f, "statement {} ({sid:?}) ", self.statement),
            None => write!(f, "statement {} ", self.statement),
        }?;
        write!(f, "allows sts:AssumeRole to {}", self.how)
    }
}

/// A trust policy that is not a JSON policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadTrust(pub String);

impl std::fmt::Display for BadTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn statements(doc: &str) -> Result<Vec<Value>, BadTrust> {
    let v: Value = serde_json::from_str(doc)
        .map_err(|e| BadTrust(format!("the trust policy is not JSON: {e}")))?;
    match &v["Statement"] {
        Value::Array(a) => Ok(a.clone()),
        s @ Value::Object(_) => Ok(vec![s.clone()]),
        _ => Err(BadTrust("the trust policy has no `Statement`".into())),
    }
}

fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

/// IAM's action wildcards (`*`, `?`), case-insensitive.
fn wildcard(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let t: Vec<char> = text.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn covers_assume_role(s: &Value) -> bool {
    if let Some(a) = s.get("Action") {
        strings(a).iter().any(|p| wildcard(p, "sts:AssumeRole"))
    } else if let Some(a) = s.get("NotAction") {
        !strings(a).iter().any(|p| wildcard(p, "sts:AssumeRole"))
    } else {
        false
    }
}

/// What a `Principal`-block entry of `AWS` names, for one principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Names {
    /// The principal itself (its ARN) or everyone (`*`).
    Directly(&'static str),
    /// The principal's account (root ARN or bare id): IAM decides.
    Account,
    Other,
}

fn names(entry: &str, principal_arn: &str, account: &str) -> Names {
    if entry == "*" {
        return Names::Directly("everyone (Principal \"*\")");
    }
    if entry.eq_ignore_ascii_case(principal_arn) {
        return Names::Directly("the principal's own ARN");
    }
    if entry == account || entry == format!("arn:aws:iam::{account}:root") {
        return Names::Account;
    }
    Names::Other
}

fn aws_entries(block: &Value) -> Vec<&str> {
    match block {
        Value::String(s) if s == "*" => vec!["*"],
        Value::Object(o) => o.get("AWS").map(strings).unwrap_or_default(),
        _ => vec![],
    }
}

/// The first trust statement that lets `principal_arn` assume a role in
/// `role_account` without any identity policy, if one does.
pub fn standing_trust(
    trust_doc: &str,
    role_account: &str,
    principal_arn: &str,
) -> Result<Option<StandingTrust>, BadTrust> {
    let Some(principal_account) = Arn::parse(principal_arn).map(|a| a.account) else {
        return Err(BadTrust(format!(
            "{principal_arn:?} is not an IAM principal ARN"
        )));
    };
    let statements = statements(trust_doc)?;
    if principal_account != role_account {
        // Cross account: the identity policy must allow as well.
        return Ok(None);
    }
    for (i, s) in statements.iter().enumerate() {
        if s["Effect"].as_str() != Some("Allow") || !covers_assume_role(s) {
            continue;
        }
        let how = if let Some(p) = s.get("Principal") {
            aws_entries(p)
                .into_iter()
                .find_map(|e| match names(e, principal_arn, &principal_account) {
                    Names::Directly(how) => Some(how),
                    _ => None,
                })
        } else if let Some(np) = s.get("NotPrincipal") {
            let excluded = aws_entries(np).into_iter().any(|e| {
                names(e, principal_arn, &principal_account) != Names::Other
            });
            (!excluded).then_some("every principal not in its NotPrincipal")
        } else {
            None
        };
        if let Some(how) = how {
            return Ok(Some(StandingTrust {
                statement: i,
                sid: s["Sid"].as_str().map(str::to_string),
                how,
            }));
        }
    }
    Ok(None)
}

/// Whether any `Allow` statement of the trust names the principal, its account
/// or everyone for `sts:AssumeRole` (without it the grant could never work).
pub fn admits(trust_doc: &str, principal_arn: &str) -> Result<bool, BadTrust> {
    let Some(account) = Arn::parse(principal_arn).map(|a| a.account) else {
        return Err(BadTrust(format!(
            "{principal_arn:?} is not an IAM principal ARN"
        )));
    };
    Ok(statements(trust_doc)?.iter().any(|s| {
        s["Effect"].as_str() == Some("Allow")
            && covers_assume_role(s)
            && match (s.get("Principal"), s.get("NotPrincipal")) {
                (Some(p), _) => aws_entries(p)
                    .into_iter()
                    .any(|e| names(e, principal_arn, &account) != Names::Other),
                (None, Some(np)) => !aws_entries(np)
                    .into_iter()
                    .any(|e| names(e, principal_arn, &account) != Names::Other),
                (None, None) => false,
            }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ALICE: &str = "arn:aws:iam::111122223333:user/alice";

    fn doc(statement: Value) -> String {
        json!({"Version": "2012-10-17", "Statement": statement}).to_string()
    }

    fn allow(principal: Value) -> String {
        doc(json!([{
            "Effect": "Allow",
            "Principal": principal,
            "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
            "Condition": {"StringLike": {"sts:SourceIdentity": "*"}}
        }]))
    }

    #[test]
    fn naming_the_user_in_the_same_account_is_standing() {
        let t = allow(json!({"AWS": [ALICE]}));
        let f = standing_trust(&t, "111122223333", ALICE)
            .expect("parses")
            .expect("standing");
        assert_eq!(f.statement, 0);
        assert!(f.to_string().contains("own ARN"), "{f}");
        // The same trust on a role in another account is not: the identity
        // policy must allow too.
        assert_eq!(standing_trust(&t, "222233334444", ALICE), Ok(None));
    }

    #[test]
    fn naming_the_account_is_not_standing() {
        for p in [
            json!({"AWS": "arn:aws:iam::111122223333:root"}),
            json!({"AWS": "111122223333"}),
        ] {
            let t = allow(p);
            assert_eq!(standing_trust(&t, "111122223333", ALICE), Ok(None));
            assert_eq!(admits(&t, ALICE), Ok(true));
        }
    }

    #[test]
    fn everyone_and_not_principal_are_standing() {
        for p in [json!("*"), json!({"AWS": "*"})] {
            assert!(standing_trust(&allow(p), "111122223333", ALICE)
                .expect("parses")
                .is_some());
        }
        let np = doc(json!({
            "Effect": "Allow",
            "NotPrincipal": {"AWS": "arn:aws:iam::111122223333:user/mallory"},
            "Action": "sts:AssumeRole"
        }));
        assert!(standing_trust(&np, "111122223333", ALICE)
            .expect("parses")
            .is_some());
        let np_self = doc(json!({
            "Effect": "Allow",
            "NotPrincipal": {"AWS": ALICE},
            "Action": "sts:AssumeRole"
        }));
        assert_eq!(standing_trust(&np_self, "111122223333", ALICE), Ok(None));
    }

    #[test]
    fn action_wildcards_and_not_action_count() {
        for a in [json!("sts:*"), json!("*"), json!(["s3:*", "STS:Assume*"])] {
            let t = doc(json!({"Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": a}));
            assert!(
                standing_trust(&t, "111122223333", ALICE)
                    .expect("parses")
                    .is_some(),
                "{t}"
            );
        }
        let t = doc(json!({"Effect": "Allow", "Principal": {"AWS": ALICE}, "NotAction": "sts:TagSession"}));
        assert!(standing_trust(&t, "111122223333", ALICE)
            .expect("parses")
            .is_some());
        let other = doc(json!({"Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "sts:TagSession"}));
        assert_eq!(standing_trust(&other, "111122223333", ALICE), Ok(None));
        assert_eq!(admits(&other, ALICE), Ok(false));
    }

    #[test]
    fn deny_and_other_principals_do_not_count() {
        let t = doc(json!([
            {"Effect": "Deny", "Principal": {"AWS": ALICE}, "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:user/bob"}, "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ]));
        assert_eq!(standing_trust(&t, "111122223333", ALICE), Ok(None));
        assert_eq!(admits(&t, ALICE), Ok(false));
    }

    #[test]
    fn bad_documents_are_errors() {
        assert!(standing_trust("nope", "111122223333", ALICE).is_err());
        assert!(standing_trust("{}", "111122223333", ALICE).is_err());
        assert!(standing_trust(&allow(json!("*")), "111122223333", "alice").is_err());
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("sts:Assume?ole", "sts:AssumeRole"));
        assert!(wildcard("*Role", "sts:AssumeRole"));
        assert!(!wildcard("sts:AssumeRoleWith*", "sts:AssumeRole"));
        assert!(wildcard("*", ""));
    }
}
