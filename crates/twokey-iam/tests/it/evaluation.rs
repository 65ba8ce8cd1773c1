//! twokey-iam's answers on cases whose AWS answer is documented, and on
//! malformed input: each test states the rule it checks.

use twokey_iam::{
    evaluate, Context, Decision, Gap, NamedPolicy, OrgLevel, Policies, Policy, PolicyKind, Request,
};

const ALICE: &str = "arn:aws:iam::111111111111:user/alice";

fn p(id: &str, doc: &str) -> NamedPolicy {
    NamedPolicy {
        id: id.into(),
        policy: Policy::parse(id, doc).unwrap_or_else(|e| panic!("{e}")),
    }
}

fn req(action: &str, resource: &str, ctx: Context) -> Request {
    let now = "2026-06-01T12:00:00Z".parse().expect("time");
    Request::new(ALICE, action, resource, now, ctx)
}

fn identity(docs: &[&str]) -> Policies {
    Policies {
        identity: docs
            .iter()
            .enumerate()
            .map(|(i, d)| p(&format!("p{i}"), d))
            .collect(),
        ..Policies::default()
    }
}

#[test]
fn allowed_names_the_deciding_statement() {
    let pol = identity(&[
        r#"{"Statement":[{"Sid":"Other","Effect":"Allow","Action":"ec2:*","Resource":"*"},
        {"Sid":"Read","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#,
    ]);
    let d = evaluate(
        &req("s3:GetObject", "arn:aws:s3:::b/k", Context::new()),
        &pol,
    );
    let Decision::Allowed { by } = d else {
        panic!("{d}")
    };
    assert_eq!(by.len(), 1);
    assert_eq!(
        (by[0].kind, by[0].index, by[0].sid.as_deref()),
        (PolicyKind::Identity, 1, Some("Read"))
    );
}

#[test]
fn explicit_deny_wins_over_any_allow() {
    let pol = identity(&[
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
        r#"{"Statement":{"Sid":"NoTrail","Effect":"Deny","Action":"cloudtrail:StopLogging","Resource":"*"}}"#,
    ]);
    let d = evaluate(
        &req(
            "cloudtrail:StopLogging",
            "arn:aws:cloudtrail:us-east-1:111111111111:trail/t",
            Context::new(),
        ),
        &pol,
    );
    assert!(
        matches!(&d, Decision::ExplicitDeny { by } if by[0].sid.as_deref() == Some("NoTrail")),
        "{d}"
    );
}

#[test]
fn an_scp_level_without_an_allow_denies_implicitly_and_says_which() {
    let mut pol = identity(&[r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#]);
    let full = p(
        "FullAWSAccess",
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
    );
    let ec2 = p(
        "ec2-only",
        r#"{"Statement":{"Effect":"Allow","Action":"ec2:*","Resource":"*"}}"#,
    );
    pol.scps = vec![
        OrgLevel {
            id: "r-root".into(),
            policies: vec![full],
        },
        OrgLevel {
            id: "ou-prod".into(),
            policies: vec![ec2],
        },
    ];
    let d = evaluate(
        &req("s3:GetObject", "arn:aws:s3:::b/k", Context::new()),
        &pol,
    );
    assert_eq!(
        d,
        Decision::ImplicitDeny {
            gaps: vec![Gap::Scp("ou-prod".into())]
        }
    );
}

#[test]
fn an_unknown_key_gives_allowed_if_never_a_yes_or_no() {
    let pol = identity(&[
        r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"Bool":{"aws:MultiFactorAuthPresent":"true"}}}}"#,
        r#"{"Statement":{"Effect":"Deny","Action":"s3:*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}}"#,
    ]);
    let mut ctx = Context::new();
    ctx.mark_unknown("aws:MultiFactorAuthPresent")
        .mark_unknown("aws:SourceIp");
    let d = evaluate(&req("s3:GetObject", "arn:aws:s3:::b/k", ctx), &pol);
    let Decision::AllowedIf { when, .. } = &d else {
        panic!("{d}")
    };
    let text = when.to_string();
    assert!(text.contains("Bool aws:MultiFactorAuthPresent"), "{text}");
    assert!(
        text.contains("NOT NotIpAddress aws:SourceIp"),
        "the deny appears negated: {text}"
    );
    // Known values decide it outright.
    let mut ctx = Context::new();
    ctx.set("aws:MultiFactorAuthPresent", "true")
        .set("aws:SourceIp", "192.0.2.1");
    let d = evaluate(&req("s3:GetObject", "arn:aws:s3:::b/k", ctx), &pol);
    assert!(matches!(d, Decision::ExplicitDeny { .. }), "{d}");
}

#[test]
fn an_unknown_request_tag_prefix_is_unknown_for_every_tag() {
    let pol = identity(&[
        r#"{"Statement":{"Effect":"Allow","Action":"ec2:RunInstances","Resource":"*",
        "Condition":{"StringEquals":{"aws:RequestTag/team":"red"}}}}"#,
    ]);
    let mut ctx = Context::new();
    ctx.mark_unknown("aws:RequestTag/*");
    let d = evaluate(&req("ec2:RunInstances", "*", ctx), &pol);
    assert_eq!(d.name(), "AllowedIf", "{d}");
}

#[test]
fn policy_variables_and_their_escapes() {
    let pol = identity(&[
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*",
        "Resource":"arn:aws:s3:::home/${aws:username}/${*}literal${?}${$}"}}"#,
    ]);
    let ok = evaluate(
        &req(
            "s3:GetObject",
            "arn:aws:s3:::home/alice/*literal?$",
            Context::new(),
        ),
        &pol,
    );
    assert!(ok.is_allowed(), "{ok}");
    let no = evaluate(
        &req(
            "s3:GetObject",
            "arn:aws:s3:::home/alice/xliteralx$",
            Context::new(),
        ),
        &pol,
    );
    assert!(!no.is_allowed(), "escaped wildcards are literal: {no}");
    let tag = identity(&[
        r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::team-${aws:PrincipalTag/team, 'none'}/*"}}"#,
    ]);
    let mut ctx = Context::new();
    ctx.set("aws:PrincipalTag/team", "red");
    assert!(evaluate(&req("s3:GetObject", "arn:aws:s3:::team-red/x", ctx), &tag).is_allowed());
    assert!(evaluate(
        &req("s3:GetObject", "arn:aws:s3:::team-none/x", Context::new()),
        &tag
    )
    .is_allowed());
}

#[test]
fn cross_account_needs_both_identity_and_resource_policy() {
    let bucket = p(
        "bucket",
        r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:user/alice"},"Action":"s3:GetObject","Resource":"*"}}"#,
    );
    let mut r = req("s3:GetObject", "arn:aws:s3:::b/k", Context::new());
    r.resource_account = Some("222222222222".into());
    let only_resource = Policies {
        resource: Some(bucket.clone()),
        ..Policies::default()
    };
    assert_eq!(
        evaluate(&r, &only_resource),
        Decision::ImplicitDeny {
            gaps: vec![Gap::Identity]
        }
    );
    let mut both =
        identity(&[r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#]);
    both.resource = Some(bucket);
    assert!(evaluate(&r, &both).is_allowed());
}

#[test]
fn set_operators_on_multivalued_keys() {
    let pol = identity(&[
        r#"{"Statement":{"Effect":"Allow","Action":"ec2:CreateTags","Resource":"*",
        "Condition":{"ForAllValues:StringLike":{"aws:TagKeys":["team","env-*"]}}}}"#,
    ]);
    let run = |keys: &[&str]| {
        let mut ctx = Context::new();
        ctx.set_many("aws:TagKeys", keys.iter().map(|k| k.to_string()).collect());
        evaluate(&req("ec2:CreateTags", "*", ctx), &pol).is_allowed()
    };
    assert!(run(&["team", "env-prod"]));
    assert!(!run(&["team", "owner"]));
    assert!(
        evaluate(&req("ec2:CreateTags", "*", Context::new()), &pol).is_allowed(),
        "ForAllValues over no values holds"
    );
}

#[test]
fn url_encoded_documents_as_get_account_authorization_details_returns_them() {
    let enc = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22s3%3AGet%2A%22%2C%22Resource%22%3A%22%2A%22%7D%7D";
    let pol = Policies {
        identity: vec![p("enc", enc)],
        ..Policies::default()
    };
    assert!(evaluate(
        &req("s3:GetObject", "arn:aws:s3:::b/k", Context::new()),
        &pol
    )
    .is_allowed());
}

#[test]
fn malformed_policies_say_what_and_where() {
    let cases = [
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},{"Effect":"Maybe","Action":"s3:*","Resource":"*"}]}"#,
            "Statement[1].Effect",
        ),
        (
            r#"{"Statement":{"Effect":"Allow","Resource":"*"}}"#,
            "Statement[0].Action",
        ),
        (
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEqualz":{"k":"v"}}}}"#,
            "Statement[0].Condition.StringEqualz",
        ),
        (
            r#"{"Statement":{"Effect":"Allow","Action":"getobject","Resource":"*"}}"#,
            "Statement[0].Action[0]",
        ),
        (
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Principal":{"AWZ":"x"}}}"#,
            "Statement[0].Principal.AWZ",
        ),
        (
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"k":{"nested":1}}}}}"#,
            "Statement[0].Condition.StringEquals.k",
        ),
        (
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Extra":1}}"#,
            "Statement",
        ),
        (r#"not json"#, "document"),
    ];
    for (doc, at) in cases {
        let e = Policy::parse("my-policy", doc).expect_err(doc);
        assert_eq!(e.policy, "my-policy");
        assert!(
            e.at.starts_with(at),
            "{doc}: error at {:?}, want {at:?} ({e})",
            e.at
        );
    }
}
