//! The gateway permissions the README documents for each AWS provider
//! (`docs/iam/*.json`, the files a user copies), evaluated for every call the
//! provider makes and for calls it must not be able to make, through BOTH
//! twokey-iam and iam-simulate (issue 18). A policy that grew too wide (a
//! bastion group's ingress allowed on every group, a permission set other than
//! twokey's assignable) or too narrow (a call the provider makes refused) turns
//! a row red.

use crate::common;

use common::*;
use serde_json::Value;

const GATEWAY: &str = "111122223333";
const TARGET: &str = "222233334444";
const GATEWAY_ROLE: &str = "arn:aws:iam::111122223333:role/twokey-gateway";
const REVOKER: &str = "arn:aws:sts::222233334444:assumed-role/twokey-revoker/twokey-gateway";
/// The gateway's session where the EC2 provider runs: in the target account
/// (its own credentials there, or the revoker role through `assume_role_arn`).
const IN_TARGET: &str = "arn:aws:sts::222233334444:assumed-role/twokey-gateway/twokey";
const REVOKER_ROLE: &str = "arn:aws:iam::222233334444:role/twokey-revoker";
const OTHER_GATEWAY: &str = "arn:aws:iam::111122223333:role/ci-deployer";

fn policy(file: &str) -> Value {
    let path = repo().join("docs/iam").join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

struct Row {
    name: &'static str,
    principal: &'static str,
    policy: &'static str,
    action: &'static str,
    resource: &'static str,
    account: &'static str,
    allowed: bool,
}

const fn row(
    name: &'static str,
    principal: &'static str,
    policy: &'static str,
    action: &'static str,
    resource: &'static str,
    account: &'static str,
    allowed: bool,
) -> Row {
    Row {
        name,
        principal,
        policy,
        action,
        resource,
        account,
        allowed,
    }
}

const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
const MALLORY: &str = "arn:aws:iam::111122223333:user/mallory";
const TARGET_ROLE: &str = "arn:aws:iam::222233334444:role/prod-admin";
const OTHER_ROLE: &str = "arn:aws:iam::222233334444:role/other-admin";
const BASTION: &str = "arn:aws:ec2:eu-west-1:222233334444:security-group/sg-0123456789abcdef0";
const OTHER_SG: &str = "arn:aws:ec2:eu-west-1:222233334444:security-group/sg-0fedcba9876543210";
const INSTANCE: &str = "arn:aws:sso:::instance/ssoins-1234567890abcdef";
const PS: &str = "arn:aws:sso:::permissionSet/ssoins-1234567890abcdef/ps-0123456789abcdef";
const ADMIN_PS: &str = "arn:aws:sso:::permissionSet/ssoins-1234567890abcdef/ps-00000000000admin";
const ACCOUNT: &str = "arn:aws:sso:::account/222233334444";

fn rows() -> Vec<Row> {
    let g = "gateway-iam-assume.json";
    let r = "revoker-iam-assume.json";
    let sg = "gateway-security-group.json";
    let sso = "gateway-identity-center.json";
    vec![
        // aws_iam_assume: the grant policy on the mapped principal, nobody else.
        row(
            "iam_assume: put the grant policy on alice",
            GATEWAY_ROLE,
            g,
            "iam:PutUserPolicy",
            ALICE,
            GATEWAY,
            true,
        ),
        row(
            "iam_assume: delete it",
            GATEWAY_ROLE,
            g,
            "iam:DeleteUserPolicy",
            ALICE,
            GATEWAY,
            true,
        ),
        row(
            "iam_assume: read it (check)",
            GATEWAY_ROLE,
            g,
            "iam:GetUserPolicy",
            ALICE,
            GATEWAY,
            true,
        ),
        row(
            "iam_assume: list alice's policies (reconciler)",
            GATEWAY_ROLE,
            g,
            "iam:ListUserPolicies",
            ALICE,
            GATEWAY,
            true,
        ),
        row(
            "iam_assume: a policy on an unmapped user",
            GATEWAY_ROLE,
            g,
            "iam:PutUserPolicy",
            MALLORY,
            GATEWAY,
            false,
        ),
        row(
            "iam_assume: attach a managed policy to alice",
            GATEWAY_ROLE,
            g,
            "iam:AttachUserPolicy",
            ALICE,
            GATEWAY,
            false,
        ),
        row(
            "iam_assume: create an access key for alice",
            GATEWAY_ROLE,
            g,
            "iam:CreateAccessKey",
            ALICE,
            GATEWAY,
            false,
        ),
        row(
            "iam_assume: reach the target account's revoker",
            GATEWAY_ROLE,
            g,
            "sts:AssumeRole",
            "arn:aws:iam::222233334444:role/twokey-revoker",
            TARGET,
            true,
        ),
        row(
            "iam_assume: another role of the gateway account reaches the revoker",
            OTHER_GATEWAY,
            g,
            "sts:AssumeRole",
            REVOKER_ROLE,
            TARGET,
            false,
        ),
        row(
            "iam_assume: assume the target role itself",
            GATEWAY_ROLE,
            g,
            "sts:AssumeRole",
            TARGET_ROLE,
            TARGET,
            false,
        ),
        row(
            "iam_assume: revoker reads the target role (trust check)",
            REVOKER,
            r,
            "iam:GetRole",
            TARGET_ROLE,
            TARGET,
            true,
        ),
        row(
            "iam_assume: revoker writes the revoke deny",
            REVOKER,
            r,
            "iam:PutRolePolicy",
            TARGET_ROLE,
            TARGET,
            true,
        ),
        row(
            "iam_assume: revoker reads the revoke deny",
            REVOKER,
            r,
            "iam:GetRolePolicy",
            TARGET_ROLE,
            TARGET,
            true,
        ),
        row(
            "iam_assume: revoker edits another role",
            REVOKER,
            r,
            "iam:PutRolePolicy",
            OTHER_ROLE,
            TARGET,
            false,
        ),
        row(
            "iam_assume: revoker changes the target's trust",
            REVOKER,
            r,
            "iam:UpdateAssumeRolePolicy",
            TARGET_ROLE,
            TARGET,
            false,
        ),
        row(
            "iam_assume: revoker attaches a managed policy",
            REVOKER,
            r,
            "iam:AttachRolePolicy",
            TARGET_ROLE,
            TARGET,
            false,
        ),
        // aws_security_group: ingress on the bastion group, nowhere else.
        row(
            "security_group: describe groups",
            IN_TARGET,
            sg,
            "ec2:DescribeSecurityGroups",
            "*",
            TARGET,
            true,
        ),
        row(
            "security_group: open the bastion port",
            IN_TARGET,
            sg,
            "ec2:AuthorizeSecurityGroupIngress",
            BASTION,
            TARGET,
            true,
        ),
        row(
            "security_group: close it",
            IN_TARGET,
            sg,
            "ec2:RevokeSecurityGroupIngress",
            BASTION,
            TARGET,
            true,
        ),
        row(
            "security_group: record an owner",
            IN_TARGET,
            sg,
            "ec2:UpdateSecurityGroupRuleDescriptionsIngress",
            BASTION,
            TARGET,
            true,
        ),
        row(
            "security_group: open another group",
            IN_TARGET,
            sg,
            "ec2:AuthorizeSecurityGroupIngress",
            OTHER_SG,
            TARGET,
            false,
        ),
        row(
            "security_group: egress on the bastion group",
            IN_TARGET,
            sg,
            "ec2:AuthorizeSecurityGroupEgress",
            BASTION,
            TARGET,
            false,
        ),
        row(
            "security_group: delete the bastion group",
            IN_TARGET,
            sg,
            "ec2:DeleteSecurityGroup",
            BASTION,
            TARGET,
            false,
        ),
        // aws_identity_center: twokey's permission set, not another.
        row(
            "identity_center: assign twokey's permission set",
            GATEWAY_ROLE,
            sso,
            "sso:CreateAccountAssignment",
            PS,
            GATEWAY,
            true,
        ),
        row(
            "identity_center: on the target account",
            GATEWAY_ROLE,
            sso,
            "sso:CreateAccountAssignment",
            ACCOUNT,
            GATEWAY,
            true,
        ),
        row(
            "identity_center: remove the assignment",
            GATEWAY_ROLE,
            sso,
            "sso:DeleteAccountAssignment",
            PS,
            GATEWAY,
            true,
        ),
        row(
            "identity_center: list assignments (check)",
            GATEWAY_ROLE,
            sso,
            "sso:ListAccountAssignments",
            PS,
            GATEWAY,
            true,
        ),
        row(
            "identity_center: follow the creation status",
            GATEWAY_ROLE,
            sso,
            "sso:DescribeAccountAssignmentCreationStatus",
            INSTANCE,
            GATEWAY,
            true,
        ),
        row(
            "identity_center: follow the deletion status",
            GATEWAY_ROLE,
            sso,
            "sso:DescribeAccountAssignmentDeletionStatus",
            INSTANCE,
            GATEWAY,
            true,
        ),
        row(
            "identity_center: assign an admin permission set",
            GATEWAY_ROLE,
            sso,
            "sso:CreateAccountAssignment",
            ADMIN_PS,
            GATEWAY,
            false,
        ),
        row(
            "identity_center: edit the permission set",
            GATEWAY_ROLE,
            sso,
            "sso:PutInlinePolicyToPermissionSet",
            PS,
            GATEWAY,
            false,
        ),
        row(
            "identity_center: attach a managed policy to it",
            GATEWAY_ROLE,
            sso,
            "sso:AttachManagedPolicyToPermissionSet",
            PS,
            GATEWAY,
            false,
        ),
    ]
}

fn simulation(r: &Row) -> Value {
    let mut s = sim(r.principal, r.action, r.resource, r.account);
    s["identityPolicies"] = serde_json::json!([{"name": r.policy, "policy": policy(r.policy)}]);
    if r.resource == REVOKER_ROLE {
        // Cross account: the revoker's documented trust must allow too.
        s["resourcePolicy"] = policy("revoker-trust.json");
    }
    complete(s)
}

fn want(r: &Row) -> &'static str {
    if r.allowed {
        "Allowed"
    } else {
        "ImplicitlyDenied"
    }
}

#[test]
fn every_documented_gateway_policy_row_in_twokey_iam() {
    let mut wrong = Vec::new();
    for r in rows() {
        let got = match ours(&simulation(&r), &[]) {
            Ok(d) => oracle_word(&d).to_string(),
            Err(e) => format!("error: {e}"),
        };
        eprintln!("{:<60} want {:<16} twokey-iam {got}", r.name, want(&r));
        if got != want(&r) {
            wrong.push(r.name);
        }
    }
    assert!(wrong.is_empty(), "rows twokey-iam gets wrong: {wrong:?}");
}

#[test]
fn every_documented_gateway_policy_row_in_iam_simulate() {
    let Some(dir) = oracle_dir() else { return };
    let rows = rows();
    let cases: Vec<Case> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| Case {
            id: i.to_string(),
            sim: simulation(r),
        })
        .collect();
    let (oracle, _) = run_oracle(&dir, &cases, None);
    let mut wrong = Vec::new();
    for (r, o) in rows.iter().zip(&oracle) {
        let got = o
            .result
            .clone()
            .unwrap_or_else(|| format!("error {:?}", o.error));
        eprintln!("{:<60} want {:<16} iam-simulate {got}", r.name, want(r));
        if got != want(r) {
            wrong.push(r.name);
        }
    }
    assert!(
        wrong.is_empty(),
        "rows iam-simulate gets otherwise: {wrong:?}"
    );
}
