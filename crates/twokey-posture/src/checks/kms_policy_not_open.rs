//! No KMS key policy allows `kms:*` (or `*`) to every principal without a
//! condition.

use serde_json::{json, Value};

use super::per_region_baseline;
use crate::facts::Facts;
use crate::model::{Check, Finding, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "kms.policy_not_open",
    title: "KMS key policies do not grant kms:* to everyone",
    severity: Severity::High,
    prowler: &["kms_key_not_publicly_accessible"],
    why: "A key policy that lets any principal do anything with the key removes the key as a second lock: whoever can reach the data can also decrypt it, and can even change the key policy alone.",
    remediation: Remediation {
        cli: "aws kms put-key-policy --key-id KEY_ID --policy-name default --policy file://key-policy.json  # name the account root and the roles that use the key; no \"Principal\": \"*\" with kms:*",
        terraform: "data \"aws_iam_policy_document\" \"key\" {\n  statement {\n    actions   = [\"kms:*\"]\n    resources = [\"*\"]\n    principals {\n      type        = \"AWS\"\n      identifiers = [\"arn:aws:iam::ACCOUNT:root\"]\n    }\n  }\n}\nresource \"aws_kms_key\" \"this\" {\n  policy = data.aws_iam_policy_document.key.json\n}",
    },
    evaluate,
};

fn as_list(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

/// Whether a statement's principal is everyone (`*` or `{"AWS": "*"}`).
fn everyone(principal: &Value) -> bool {
    match principal {
        Value::String(s) => s == "*",
        Value::Object(m) => m.get("AWS").is_some_and(|v| as_list(v).contains(&"*")),
        _ => false,
    }
}

/// The statements of `policy` that open the key to everyone without a condition.
pub fn open_statements(policy: &Value) -> Vec<Value> {
    let statements = match policy.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(s @ Value::Object(_)) => vec![s.clone()],
        _ => vec![],
    };
    statements
        .into_iter()
        .filter(|s| {
            s.get("Effect").and_then(Value::as_str) == Some("Allow")
                && s.get("Principal").is_some_and(everyone)
                && s.get("Action").is_some_and(|a| {
                    as_list(a)
                        .iter()
                        .any(|x| *x == "*" || x.eq_ignore_ascii_case("kms:*"))
                })
                && s.get("Condition")
                    .is_none_or(|c| c.as_object().is_none_or(|o| o.is_empty()))
        })
        .collect()
}

fn evaluate(facts: &Facts, _: &Settings) -> Vec<Finding> {
    per_region_baseline(
        facts,
        CHECK.id,
        "KMS keys",
        |b| &b.kms_keys,
        |at, _, keys| {
            keys.iter()
            .map(|k| {
                let open = open_statements(&k.policy);
                at.decide(
                    k.arn.clone(),
                    open.is_empty(),
                    if open.is_empty() {
                        format!("key {}'s policy grants kms:* to no unconditioned wildcard principal", k.arn)
                    } else {
                        format!("key {}'s policy allows kms:* to every principal without a condition", k.arn)
                    },
                    json!({"open_statements": open}),
                )
            })
            .collect()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixture::*;
    use crate::facts::baseline::KmsKey;
    use crate::facts::*;
    use crate::Status::*;

    fn key(policy: Value) -> KmsKey {
        KmsKey {
            arn: "k".into(),
            enabled: true,
            symmetric: true,
            rotation: true,
            policy,
        }
    }

    #[test]
    fn wildcard_principal_with_kms_star_fails_unless_conditioned() {
        let mut f = facts();
        let root = json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "kms:*", "Resource": "*"}]});
        let open = json!({"Statement": {"Effect": "Allow", "Principal": "*", "Action": ["kms:*"], "Resource": "*"}});
        let open_aws = json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": "*", "Resource": "*"}]});
        let conditioned = json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*",
            "Condition": {"StringEquals": {"kms:CallerAccount": "1"}}}]});
        let decrypt_only = json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}]});
        region_mut(&mut f)
            .baseline
            .as_mut()
            .expect("baseline")
            .kms_keys = Collected::Ok(vec![
            key(root),
            key(open),
            key(open_aws),
            key(conditioned),
            key(decrypt_only),
        ]);
        assert_eq!(statuses(&CHECK, &f), vec![Pass, Fail, Fail, Pass, Pass]);
    }
}
