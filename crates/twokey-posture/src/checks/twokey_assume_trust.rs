//! twokey's own wiring: the trust policy of every `aws_iam_assume` target
//! role in the policy in force demands `sts:SourceIdentity` (so every
//! session names the person) and gives none of its requesters standing
//! trust (access without twokey's time-bounded grant,
//! [`twokey_aws::trust::standing_trust`]).

use serde_json::{json, Value};
use twokey_aws::client::Arn;
use twokey_aws::trust::standing_trust;
use twokey_iam::pattern::glob;

use crate::facts::{AssumeTarget, Collected, Facts};
use crate::model::{Check, Finding, For, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "twokey.assume_trust",
    title: "twokey's target roles require a source identity and give no standing trust",
    severity: Severity::Critical,
    prowler: &[],
    why: "A target role its requesters can assume without twokey's grant is access no approval gave and no expiry ends; without sts:SourceIdentity, CloudTrail cannot name the person behind a session.",
    remediation: Remediation {
        cli: "aws iam update-assume-role-policy --role-name ROLE --policy-document '{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::GATEWAY_ACCOUNT:root\"},\"Action\":[\"sts:AssumeRole\",\"sts:SetSourceIdentity\"],\"Condition\":{\"StringLike\":{\"sts:SourceIdentity\":\"*\"}}}]}'",
        terraform: "data \"aws_iam_policy_document\" \"trust\" {\n  statement {\n    actions = [\"sts:AssumeRole\", \"sts:SetSourceIdentity\"]\n    principals {\n      type        = \"AWS\"\n      identifiers = [\"arn:aws:iam::GATEWAY_ACCOUNT:root\"]\n    }\n    condition {\n      test     = \"StringLike\"\n      variable = \"sts:SourceIdentity\"\n      values   = [\"*\"]\n    }\n  }\n}",
    },
    evaluate,
};

/// `Allow` statements for `sts:AssumeRole` that do not condition on
/// `sts:SourceIdentity` (their indexes).
fn without_source_identity(trust: &Value) -> Vec<usize> {
    let st: Vec<&Value> = match &trust["Statement"] {
        Value::Array(a) => a.iter().collect(),
        s @ Value::Object(_) => vec![s],
        _ => vec![],
    };
    st.iter()
        .enumerate()
        .filter(|(_, s)| {
            let actions: Vec<&str> = match &s["Action"] {
                Value::String(a) => vec![a.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            s["Effect"] == "Allow" && actions.iter().any(|a| glob(a, "sts:AssumeRole", true))
        })
        .filter(|(_, s)| {
            let keyed = s["Condition"].as_object().is_some_and(|ops| {
                ops.values().any(|keys| {
                    keys.as_object().is_some_and(|k| {
                        k.keys()
                            .any(|k| k.eq_ignore_ascii_case("sts:SourceIdentity"))
                    })
                })
            });
            !keyed
        })
        .map(|(i, _)| i)
        .collect()
}

fn judge(at: &For<'_>, t: &AssumeTarget, trust: &str) -> Finding {
    let role = &t.role_arn;
    let account = Arn::parse(role).map(|a| a.account).unwrap_or_default();
    let doc: Value = match serde_json::from_str(trust) {
        Ok(v) => v,
        Err(e) => return at.error(role, "the trust policy", &format!("not JSON: {e}")),
    };
    let mut problems = Vec::new();
    for (who, arn) in &t.principals {
        match standing_trust(trust, &account, arn) {
            Ok(Some(s)) => problems.push(format!("{who} ({arn}) has standing trust: {s}")),
            Ok(None) => {}
            Err(e) => problems.push(format!("{who}: {e}")),
        }
    }
    let missing = without_source_identity(&doc);
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(usize::to_string).collect();
        problems.push(format!(
            "statement {} does not require sts:SourceIdentity",
            list.join(", ")
        ));
    }
    let msg = if problems.is_empty() {
        format!("role {role} (entitlement {}) requires sts:SourceIdentity and gives its requesters no standing trust", t.entitlement)
    } else {
        format!(
            "role {role} (entitlement {}): {}",
            t.entitlement,
            problems.join("; ")
        )
    };
    at.decide(
        role,
        problems.is_empty(),
        msg,
        json!({"trust": doc, "principals": t.principals}),
    )
}

fn evaluate(facts: &Facts, _: &Settings) -> Vec<Finding> {
    facts
        .twokey_targets
        .iter()
        .map(|t| {
            let account = Arn::parse(&t.role_arn)
                .map(|a| a.account)
                .unwrap_or_default();
            let at = For::new(CHECK.id, &account);
            match &t.trust {
                Collected::Ok(trust) => judge(&at, t, trust),
                Collected::Error(e) => at.error(&t.role_arn, "the role's trust policy", e),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixture::*;
    use crate::Status::*;

    const ROLE: &str = "arn:aws:iam::111122223333:role/prod-admin";
    const ALICE: &str = "arn:aws:iam::111122223333:user/alice";

    fn target(principal: Value, condition: bool) -> Facts {
        let mut s = json!({"Effect": "Allow", "Principal": {"AWS": principal}, "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"]});
        if condition {
            s["Condition"] = json!({"StringLike": {"sts:SourceIdentity": "*"}});
        }
        let mut f = facts();
        f.twokey_targets = vec![AssumeTarget {
            entitlement: "prod-admin".into(),
            role_arn: ROLE.into(),
            principals: vec![("alice".into(), ALICE.into())],
            trust: Collected::Ok(json!({"Version": "2012-10-17", "Statement": [s]}).to_string()),
        }];
        f
    }

    #[test]
    fn the_readme_trust_passes() {
        assert_eq!(
            statuses(
                &CHECK,
                &target(json!("arn:aws:iam::111122223333:root"), true)
            ),
            vec![Pass]
        );
    }

    #[test]
    fn standing_trust_and_a_missing_source_identity_fail() {
        let out = (CHECK.evaluate)(&target(json!(ALICE), true), &Settings::default());
        assert_eq!(out[0].status, Fail);
        assert!(
            out[0].message.contains("alice") && out[0].message.contains("standing"),
            "{}",
            out[0].message
        );
        let out = (CHECK.evaluate)(
            &target(json!("arn:aws:iam::111122223333:root"), false),
            &Settings::default(),
        );
        assert_eq!(out[0].status, Fail);
        assert!(
            out[0].message.contains("sts:SourceIdentity"),
            "{}",
            out[0].message
        );
    }

    #[test]
    fn an_unreadable_role_is_an_error() {
        let mut f = target(json!(ALICE), true);
        f.twokey_targets[0].trust = Collected::Error("NoSuchEntity".into());
        assert_eq!(statuses(&CHECK, &f), vec![Error]);
    }
}
