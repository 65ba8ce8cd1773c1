//! `twokey can`'s question over a `get-account-authorization-details` file:
//! users with inline, group and managed policies, a boundary, a role with
//! its trust policy, documents URL-encoded as the API returns them.

use twokey_iam::{evaluate, AuthDetails, AuthDetailsError, Decision, Request};

const DETAILS: &str = include_str!("../data/auth-details.json");

fn can(who: &str, action: &str, resource: &str) -> Decision {
    let details = AuthDetails::parse(DETAILS).expect("details parse");
    let (policies, ctx) = details
        .policies_for(who, action, resource)
        .expect("principal known");
    let now = "2026-12-01T12:00:00Z".parse().expect("time");
    evaluate(&Request::new(who, action, resource, now, ctx), &policies)
}

#[test]
fn alice_can_assume_admin_through_her_inline_policy_and_the_root_trust() {
    let d = can(
        "arn:aws:iam::111122223333:user/alice",
        "sts:AssumeRole",
        "arn:aws:iam::111122223333:role/admin",
    );
    let Decision::Allowed { by } = &d else {
        panic!("{d}")
    };
    assert!(by.iter().any(|s| s.policy == "alice/assume-admin"), "{d}");
}

#[test]
fn bob_cannot_assume_admin_without_an_identity_policy() {
    let d = can(
        "arn:aws:iam::111122223333:user/bob",
        "sts:AssumeRole",
        "arn:aws:iam::111122223333:role/admin",
    );
    assert_eq!(d.name(), "ImplicitDeny", "{d}");
}

#[test]
fn group_managed_policy_default_version_and_principal_tags() {
    // read-logs v2 (the default) needs team=red: alice has the tag, bob not;
    // bob's boundary would stop him anyway. v1 (allow all) is not in force.
    assert!(can(
        "arn:aws:iam::111122223333:user/alice",
        "s3:GetObject",
        "arn:aws:s3:::logs/x"
    )
    .is_allowed());
    assert!(!can(
        "arn:aws:iam::111122223333:user/alice",
        "s3:DeleteObject",
        "arn:aws:s3:::logs/x"
    )
    .is_allowed());
    assert!(!can(
        "arn:aws:iam::111122223333:user/bob",
        "s3:GetObject",
        "arn:aws:s3:::logs/x"
    )
    .is_allowed());
}

#[test]
fn a_session_of_the_role_has_the_roles_policies() {
    let d = can(
        "arn:aws:sts::111122223333:assumed-role/admin/alice",
        "iam:CreateUser",
        "arn:aws:iam::111122223333:user/x",
    );
    assert!(
        matches!(&d, Decision::Allowed { by } if by[0].policy == "arn:aws:iam::aws:policy/AdministratorAccess"),
        "{d}"
    );
}

#[test]
fn unknown_principals_and_missing_policies_are_named() {
    let details = AuthDetails::parse(DETAILS).expect("details parse");
    let e = details
        .policies_for(
            "arn:aws:iam::111122223333:user/mallory",
            "s3:GetObject",
            "*",
        )
        .expect_err("unknown");
    assert!(matches!(e, AuthDetailsError::UnknownPrincipal(_)), "{e}");
    let broken = DETAILS.replace(
        "arn:aws:iam::111122223333:policy/ec2-only\", \"DefaultVersionId",
        "arn:aws:iam::111122223333:policy/gone\", \"DefaultVersionId",
    );
    let details = AuthDetails::parse(&broken).expect("details parse");
    let e = details
        .policies_for("arn:aws:iam::111122223333:user/bob", "s3:GetObject", "*")
        .expect_err("missing");
    assert!(e.to_string().contains("ec2-only"), "{e}");
    let e = AuthDetails::parse(r#"{"UserDetailList": {"not": "a list"}}"#).expect_err("bad");
    assert!(e.to_string().contains("UserDetailList"), "{e}");
}
