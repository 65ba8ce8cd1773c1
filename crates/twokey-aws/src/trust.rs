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
//! Both answers come from the IAM policy evaluator (`twokey-iam`), with every
//! request context key unknown: a condition the person can satisfy alone
//! (`sts:SourceIdentity` they choose, a tag on their own principal) is no
//! barrier, so "allowed if ..." counts as standing; a `Deny` that always
//! applies is credited.

use twokey_iam::{Context, Decision, NamedPolicy, Policies, Policy, Request};

use crate::client::Arn;

/// Why a trust policy gives standing access to one principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandingTrust {
    /// Index of the statement in the trust policy's `Statement` list.
    pub statement: usize,
    /// Its `Sid`, when it has one.
    pub sid: Option<String>,
    /// Whether the answer depends on request context the person supplies
    /// (a source identity, a tag): they can meet it alone.
    pub conditional: bool,
}

impl std::fmt::Display for StandingTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.sid {
            Some(sid) => write!(f, "statement {} ({sid:?}) ", self.statement),
            None => write!(f, "statement {} ", self.statement),
        }?;
        f.write_str("allows sts:AssumeRole to the principal by itself")?;
        if self.conditional {
            f.write_str(" (under conditions the caller can meet)")?;
        }
        Ok(())
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

const TRUST: &str = "trust policy";

/// `sts:AssumeRole` by `principal_arn` on a role in `role_account`, every
/// context key unknown (the caller chooses them), through the IAM evaluator.
fn assume(
    trust_doc: &str,
    role_account: &str,
    principal_arn: &str,
    identity: Vec<NamedPolicy>,
) -> Result<Decision, BadTrust> {
    if Arn::parse(principal_arn).is_none() {
        return Err(BadTrust(format!(
            "{principal_arn:?} is not an IAM principal ARN"
        )));
    }
    let trust = Policy::parse(TRUST, trust_doc).map_err(|e| BadTrust(e.to_string()))?;
    let role = format!("arn:aws:iam::{role_account}:role/twokey-target");
    let mut context = Context::new();
    context.mark_unknown("*");
    let request = Request::new(
        principal_arn,
        "sts:AssumeRole",
        &role,
        chrono::DateTime::UNIX_EPOCH,
        context,
    );
    let policies = Policies {
        identity,
        resource: Some(NamedPolicy {
            id: TRUST.into(),
            policy: trust,
        }),
        ..Policies::default()
    };
    Ok(twokey_iam::evaluate(&request, &policies))
}

/// The first trust statement that lets `principal_arn` assume a role in
/// `role_account` without any identity policy, if one does.
pub fn standing_trust(
    trust_doc: &str,
    role_account: &str,
    principal_arn: &str,
) -> Result<Option<StandingTrust>, BadTrust> {
    let (by, conditional) = match assume(trust_doc, role_account, principal_arn, Vec::new())? {
        Decision::Allowed { by } => (by, false),
        Decision::AllowedIf { by, .. } => (by, true),
        Decision::ExplicitDeny { .. } | Decision::ImplicitDeny { .. } => return Ok(None),
    };
    let first = by.into_iter().min_by_key(|s| s.index);
    Ok(Some(StandingTrust {
        statement: first.as_ref().map_or(0, |s| s.index),
        sid: first.and_then(|s| s.sid),
        conditional,
    }))
}

/// Whether the trust lets the principal assume a role in `role_account` once
/// an identity policy allows (without it the grant could never work): the
/// principal, its account or everyone named for `sts:AssumeRole`, and no
/// deny that always applies. A role's trust must allow in the same account
/// too, so the answer does not depend on where the role is.
pub fn admits(trust_doc: &str, role_account: &str, principal_arn: &str) -> Result<bool, BadTrust> {
    let grant = Policy::parse(
        "grant",
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}"#,
    )
    .map_err(|e| BadTrust(e.to_string()))?;
    let identity = vec![NamedPolicy {
        id: "grant".into(),
        policy: grant,
    }];
    Ok(matches!(
        assume(trust_doc, role_account, principal_arn, identity)?,
        Decision::Allowed { .. } | Decision::AllowedIf { .. }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

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
        assert!(f.to_string().contains("by itself"), "{f}");
        assert!(
            f.conditional,
            "the source-identity condition is the caller's"
        );
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
            assert_eq!(admits(&t, "111122223333", ALICE), Ok(true));
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
        let t = doc(
            json!({"Effect": "Allow", "Principal": {"AWS": ALICE}, "NotAction": "sts:TagSession"}),
        );
        assert!(standing_trust(&t, "111122223333", ALICE)
            .expect("parses")
            .is_some());
        let other = doc(
            json!({"Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "sts:TagSession"}),
        );
        assert_eq!(standing_trust(&other, "111122223333", ALICE), Ok(None));
        assert_eq!(admits(&other, "111122223333", ALICE), Ok(false));
    }

    #[test]
    fn deny_and_other_principals_do_not_count() {
        let t = doc(json!([
            {"Effect": "Deny", "Principal": {"AWS": ALICE}, "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:user/bob"}, "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ]));
        assert_eq!(standing_trust(&t, "111122223333", ALICE), Ok(None));
        assert_eq!(admits(&t, "111122223333", ALICE), Ok(false));
    }

    #[test]
    fn a_deny_that_always_applies_is_credited_a_conditional_one_is_not() {
        let allow_alice =
            json!({"Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "sts:AssumeRole"});
        let t = doc(json!([allow_alice, {"Effect": "Deny", "Principal": "*", "Action": "sts:*"}]));
        assert_eq!(standing_trust(&t, "111122223333", ALICE), Ok(None));
        // A deny the caller can dodge (they choose the source identity).
        let t = doc(json!([allow_alice, {
            "Effect": "Deny", "Principal": "*", "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:SourceIdentity": "nobody"}}
        }]));
        let f = standing_trust(&t, "111122223333", ALICE)
            .expect("parses")
            .expect("standing");
        assert!(f.conditional, "{f}");
    }

    #[test]
    fn bad_documents_are_errors() {
        assert!(standing_trust("nope", "111122223333", ALICE).is_err());
        assert!(standing_trust("{}", "111122223333", ALICE).is_err());
        assert!(standing_trust(&allow(json!("*")), "111122223333", "alice").is_err());
    }
}
