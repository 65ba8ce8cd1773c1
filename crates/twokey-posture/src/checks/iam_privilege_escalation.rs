//! No identity policy allows a known privilege-escalation path: actions that
//! let a principal give itself (or a resource it controls) more permissions
//! than it was granted. Action patterns are matched with IAM's wildcards
//! against each action of a path, so `iam:*` and `*` match; `NotAction` in an
//! `Allow` allows every action it does not list; an unconditional `Deny` on
//! `Resource: "*"` in the same document takes an action away. Resources and
//! other conditions are not narrowed: a path allowed on any resource counts
//! (the check errs towards reporting).

use serde_json::{json, Value};
use twokey_iam::pattern::glob;

use super::per_iam;
use crate::facts::Facts;
use crate::model::{Check, Finding, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "iam.privilege_escalation",
    title: "No policy allows a privilege-escalation path",
    severity: Severity::High,
    prowler: &["iam_policy_allows_privilege_escalation"],
    why: "A principal that can raise its own permissions holds every permission in practice; what a second person approved no longer bounds it.",
    remediation: Remediation {
        cli: "aws iam create-policy-version --policy-arn POLICY_ARN --set-as-default --policy-document file://narrowed.json",
        terraform: "# Narrow the aws_iam_policy document: drop the escalation actions or pin their Resource\n# to ARNs the principal cannot use to raise its own permissions.",
    },
    evaluate,
};

/// Known escalation paths (Rhino Security Labs' list and its successors):
/// every action of a path must be allowed.
pub const PATHS: &[&[&str]] = &[
    &["iam:CreatePolicyVersion"],
    &["iam:SetDefaultPolicyVersion"],
    &["iam:CreateAccessKey"],
    &["iam:CreateLoginProfile"],
    &["iam:UpdateLoginProfile"],
    &["iam:AttachUserPolicy"],
    &["iam:AttachGroupPolicy"],
    &["iam:AttachRolePolicy"],
    &["iam:PutUserPolicy"],
    &["iam:PutGroupPolicy"],
    &["iam:PutRolePolicy"],
    &["iam:AddUserToGroup"],
    &["iam:UpdateAssumeRolePolicy"],
    &["iam:PassRole", "ec2:RunInstances"],
    &[
        "iam:PassRole",
        "lambda:CreateFunction",
        "lambda:InvokeFunction",
    ],
    &[
        "iam:PassRole",
        "lambda:CreateFunction",
        "lambda:CreateEventSourceMapping",
    ],
    &["lambda:UpdateFunctionCode"],
    &["iam:PassRole", "glue:CreateDevEndpoint"],
    &["glue:UpdateDevEndpoint"],
    &["iam:PassRole", "cloudformation:CreateStack"],
    &[
        "iam:PassRole",
        "datapipeline:CreatePipeline",
        "datapipeline:PutPipelineDefinition",
    ],
    &["iam:PassRole", "ecs:RegisterTaskDefinition", "ecs:RunTask"],
    &["iam:PassRole", "sagemaker:CreateNotebookInstance"],
    &[
        "iam:PassRole",
        "codebuild:CreateProject",
        "codebuild:StartBuild",
    ],
    &["ssm:SendCommand"],
    &["ssm:StartSession"],
];

fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

fn statements(doc: &Value) -> Vec<&Value> {
    match &doc["Statement"] {
        Value::Array(a) => a.iter().collect(),
        s @ Value::Object(_) => vec![s],
        _ => vec![],
    }
}

/// Whether statement `s` names `action` (through `Action` or `NotAction`).
fn names(s: &Value, action: &str) -> bool {
    if let Some(a) = s.get("Action") {
        strings(a).iter().any(|p| glob(p, action, true))
    } else if let Some(a) = s.get("NotAction") {
        !strings(a).iter().any(|p| glob(p, action, true))
    } else {
        false
    }
}

/// Whether the document allows `action` on some resource.
pub fn allows(doc: &Value, action: &str) -> bool {
    let st = statements(doc);
    let denied = st.iter().any(|s| {
        s["Effect"] == "Deny"
            && s.get("Condition").is_none()
            && s.get("NotResource").is_none()
            && strings(&s["Resource"]).contains(&"*")
            && names(s, action)
    });
    !denied
        && st
            .iter()
            .any(|s| s["Effect"] == "Allow" && names(s, action))
}

/// The escalation paths the document allows.
pub fn escalations(doc: &Value) -> Vec<&'static [&'static str]> {
    PATHS
        .iter()
        .copied()
        .filter(|path| path.iter().all(|a| allows(doc, a)))
        .collect()
}

fn evaluate(facts: &Facts, _: &Settings) -> Vec<Finding> {
    per_iam(facts, CHECK.id, |at, _, iam| {
        iam.policies
            .iter()
            .map(|p| {
                let found = escalations(&p.document);
                let shown: Vec<String> = found.iter().map(|p| p.join(" + ")).collect();
                let msg = if found.is_empty() {
                    format!(
                        "policy {} allows no known privilege-escalation path",
                        p.name
                    )
                } else {
                    format!(
                        "policy {} allows privilege escalation: {}",
                        p.name,
                        crate::model::first(&shown, 5)
                    )
                };
                at.decide(
                    &p.name,
                    found.is_empty(),
                    msg,
                    json!({"kind": p.kind, "paths": shown}),
                )
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixture::*;
    use crate::facts::{PolicyDocument, PolicyKind};
    use crate::Status::*;

    fn policy(statement: Value) -> Facts {
        let mut f = facts();
        iam(&mut f).policies = vec![PolicyDocument {
            name: "arn:aws:iam::222233334444:policy/p".into(),
            kind: PolicyKind::Managed,
            document: json!({"Version": "2012-10-17", "Statement": statement}),
        }];
        f
    }

    #[test]
    fn read_only_and_narrow_policies_pass() {
        for s in [
            json!([{"Effect": "Allow", "Action": ["s3:GetObject", "iam:Get*", "iam:List*"], "Resource": "*"}]),
            json!({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}),
            json!([{"Effect": "Allow", "Action": "*", "Resource": "*"}, {"Effect": "Deny", "NotAction": ["s3:GetObject"], "Resource": "*"}]),
        ] {
            assert_eq!(statuses(&CHECK, &policy(s.clone())), vec![Pass], "{s}");
        }
    }

    #[test]
    fn star_wildcards_not_action_and_combinations_fail() {
        for s in [
            json!({"Effect": "Allow", "Action": "*", "Resource": "*"}),
            json!({"Effect": "Allow", "Action": "iam:*", "Resource": "*"}),
            json!({"Effect": "Allow", "Action": "IAM:CreatePolicyV*", "Resource": "*"}),
            json!({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}),
            json!({"Effect": "Allow", "Action": ["iam:PassRole", "ec2:Run*"], "Resource": "*"}),
            json!({"Effect": "Allow", "Action": ["iam:Put?olePolicy"], "Resource": "*"}),
        ] {
            let f = policy(s.clone());
            let out = (CHECK.evaluate)(&f, &Settings::default());
            assert_eq!(out[0].status, Fail, "{s}");
            assert!(
                out[0].message.contains("escalation: "),
                "{}",
                out[0].message
            );
        }
        let f = policy(
            json!({"Effect": "Allow", "Action": ["iam:PassRole", "ec2:RunInstances"], "Resource": "*"}),
        );
        let out = (CHECK.evaluate)(&f, &Settings::default());
        assert!(
            out[0].message.contains("iam:PassRole + ec2:RunInstances"),
            "{}",
            out[0].message
        );
    }

    #[test]
    fn a_conditional_deny_does_not_take_an_action_away() {
        let s = json!([
            {"Effect": "Allow", "Action": "iam:CreatePolicyVersion", "Resource": "*"},
            {"Effect": "Deny", "Action": "iam:*", "Resource": "*", "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}}}
        ]);
        assert_eq!(statuses(&CHECK, &policy(s)), vec![Fail]);
    }
}
