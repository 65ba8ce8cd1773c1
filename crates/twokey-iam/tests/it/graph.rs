//! The graph of who can become whom, one account (or two) per edge type:
//! each escalation is found with its path and the statement of each step;
//! an account where every route to the admin role goes through twokey is
//! clean; SCPs, boundaries and denies cut edges; unknown context makes an
//! edge conditional, never a silent yes or no.

use serde_json::{json, Value};
use twokey_iam::graph::{AccountInput, Answer, EdgeKind, Graph, HighRisk, Standing, Twokey};
use twokey_iam::{AuthDetails, NamedPolicy, OrgLevel, Policy};

const A: &str = "111122223333";
const B: &str = "444455556666";

fn arn(acct: &str, what: &str) -> String {
    format!("arn:aws:iam::{acct}:{what}")
}

fn doc(statements: Value) -> Value {
    json!({"Version": "2012-10-17", "Statement": statements})
}

fn allow(action: &str, resource: &str) -> Value {
    json!({"Effect": "Allow", "Action": action, "Resource": resource})
}

fn user(acct: &str, name: &str, inline: Value) -> Value {
    json!({"UserName": name, "Arn": arn(acct, &format!("user/{name}")),
           "UserPolicyList": [{"PolicyName": "p", "PolicyDocument": doc(inline)}]})
}

fn role(acct: &str, name: &str, trust: Value, inline: Value) -> Value {
    json!({"RoleName": name, "Arn": arn(acct, &format!("role/{name}")),
           "AssumeRolePolicyDocument": doc(json!([{"Effect": "Allow", "Principal": trust, "Action": "sts:AssumeRole"}])),
           "RolePolicyList": [{"PolicyName": "p", "PolicyDocument": doc(inline)}]})
}

fn account(acct: &str, users: Value, roles: Value, policies: Value) -> AccountInput {
    let v = json!({"UserDetailList": users, "RoleDetailList": roles, "GroupDetailList": [], "Policies": policies});
    AccountInput {
        account: acct.into(),
        details: AuthDetails::parse(&v.to_string()).expect("details"),
        scps: vec![],
    }
}

fn graph(accounts: Vec<AccountInput>, twokey: Twokey) -> Graph {
    let now = "2026-12-01T12:00:00Z".parse().expect("time");
    Graph::build(accounts, vec![], twokey, now).expect("graph")
}

fn ask(g: &Graph, action: &str, resource: &str) -> Answer {
    g.answer(&HighRisk {
        action: action.into(),
        resource: resource.into(),
        why: "test".into(),
    })
}

fn holder<'a>(a: &'a Answer, principal: &str) -> &'a twokey_iam::graph::Holder {
    a.holders
        .iter()
        .find(|h| h.principal == principal)
        .unwrap_or_else(|| {
            panic!(
                "{principal} is not a holder: {:?}",
                a.holders.iter().map(|h| &h.principal).collect::<Vec<_>>()
            )
        })
}

fn kinds(h: &twokey_iam::graph::Holder) -> Vec<EdgeKind> {
    h.path.iter().map(|e| e.kind.clone()).collect()
}

/// The admin role every escalation aims at: it can stop CloudTrail.
fn admin(acct: &str, trust: Value) -> Value {
    role(acct, "admin", trust, json!([allow("cloudtrail:*", "*")]))
}

#[test]
fn assume_role_by_trust_and_identity() {
    let g = graph(
        vec![account(
            A,
            json!([user(
                A,
                "dev",
                json!([{"Sid": "AssumeAdmin", "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": arn(A, "role/admin")}])
            )]),
            json!([admin(A, json!({"AWS": arn(A, "root")}))]),
            json!([]),
        )],
        Twokey::default(),
    );
    let a = ask(&g, "cloudtrail:StopLogging", "*");
    let h = holder(&a, &arn(A, "user/dev"));
    assert_eq!(kinds(h), vec![EdgeKind::AssumeRole]);
    assert!(!h.conditional());
    let lines = g.describe(h, "cloudtrail:StopLogging").join("\n");
    assert!(
        lines.contains("identity dev/p Statement[0] (AssumeAdmin)"),
        "{lines}"
    );
    assert!(lines.contains("trust policy Statement[0]"), "{lines}");
    assert!(
        lines.contains("role/admin can cloudtrail:StopLogging"),
        "{lines}"
    );
    assert!(!a.tpi_clean());
}

#[test]
fn a_trust_naming_only_the_account_needs_the_identity_policy() {
    let g = graph(
        vec![account(
            A,
            json!([user(A, "reader", json!([allow("s3:GetObject", "*")]))]),
            json!([admin(A, json!({"AWS": arn(A, "root")}))]),
            json!([]),
        )],
        Twokey::default(),
    );
    let a = ask(&g, "cloudtrail:StopLogging", "*");
    assert!(a
        .holders
        .iter()
        .all(|h| h.principal != arn(A, "user/reader")));
}

#[test]
fn cross_account_assume_needs_both_sides() {
    let both = graph(
        vec![
            account(
                A,
                json!([user(A, "ci", json!([allow("sts:AssumeRole", "*")]))]),
                json!([]),
                json!([]),
            ),
            account(
                B,
                json!([]),
                json!([admin(B, json!({"AWS": arn(A, "root")}))]),
                json!([]),
            ),
        ],
        Twokey::default(),
    );
    let a = ask(&both, "cloudtrail:StopLogging", "*");
    let h = holder(&a, &arn(A, "user/ci"));
    assert_eq!(
        h.path[0].to,
        both.node(&arn(B, "role/admin")).expect("node")
    );
    // The trust in B names A, but nothing in A allows the call: no edge.
    let trust_only = graph(
        vec![
            account(
                A,
                json!([user(A, "ci", json!([allow("s3:*", "*")]))]),
                json!([]),
                json!([]),
            ),
            account(
                B,
                json!([]),
                json!([admin(B, json!({"AWS": arn(A, "user/ci")}))]),
                json!([]),
            ),
        ],
        Twokey::default(),
    );
    let a = ask(&trust_only, "cloudtrail:StopLogging", "*");
    assert!(a.holders.iter().all(|h| h.principal != arn(A, "user/ci")));
}

#[test]
fn pass_role_to_compute_runs_as_the_role() {
    let g = graph(
        vec![account(
            A,
            json!([user(
                A,
                "dev",
                json!([
                    allow("iam:PassRole", &arn(A, "role/fn")),
                    allow("lambda:CreateFunction", "*"),
                    allow("lambda:InvokeFunction", "*")
                ])
            )]),
            json!([role(
                A,
                "fn",
                json!({"Service": "lambda.amazonaws.com"}),
                json!([allow("cloudtrail:StopLogging", "*")])
            )]),
            json!([]),
        )],
        Twokey::default(),
    );
    let a = ask(&g, "cloudtrail:StopLogging", "*");
    let h = holder(&a, &arn(A, "user/dev"));
    assert_eq!(
        kinds(h),
        vec![EdgeKind::PassRole {
            service: "lambda.amazonaws.com".into()
        }]
    );
    // Without the launch action there is no way to run as it.
    let g = graph(
        vec![account(
            A,
            json!([user(A, "dev", json!([allow("iam:PassRole", "*")]))]),
            json!([role(
                A,
                "fn",
                json!({"Service": "lambda.amazonaws.com"}),
                json!([allow("cloudtrail:StopLogging", "*")])
            )]),
            json!([]),
        )],
        Twokey::default(),
    );
    assert!(ask(&g, "cloudtrail:StopLogging", "*")
        .holders
        .iter()
        .all(|h| h.principal != arn(A, "user/dev")));
}

#[test]
fn credentials_of_another_user() {
    for (action, kind) in [
        ("iam:CreateAccessKey", EdgeKind::CreateAccessKey),
        ("iam:CreateLoginProfile", EdgeKind::CreateLoginProfile),
        ("iam:UpdateLoginProfile", EdgeKind::UpdateLoginProfile),
    ] {
        let g = graph(
            vec![account(
                A,
                json!([
                    user(A, "helpdesk", json!([allow(action, &arn(A, "user/ops"))])),
                    user(A, "ops", json!([allow("cloudtrail:StopLogging", "*")]))
                ]),
                json!([]),
                json!([]),
            )],
            Twokey::default(),
        );
        let a = ask(&g, "cloudtrail:StopLogging", "*");
        let h = holder(&a, &arn(A, "user/helpdesk"));
        assert_eq!(kinds(h), vec![kind], "{action}");
    }
}

#[test]
fn rewriting_a_trust_policy() {
    let g = graph(
        vec![account(
            A,
            json!([user(
                A,
                "dev",
                json!([allow("iam:UpdateAssumeRolePolicy", &arn(A, "role/admin"))])
            )]),
            json!([admin(A, json!({"Service": "ec2.amazonaws.com"}))]),
            json!([]),
        )],
        Twokey::default(),
    );
    let a = ask(&g, "cloudtrail:StopLogging", "*");
    assert_eq!(
        kinds(holder(&a, &arn(A, "user/dev"))),
        vec![EdgeKind::UpdateAssumeRolePolicy]
    );
}

#[test]
fn writing_ones_own_policies_and_policy_versions() {
    for action in ["iam:PutUserPolicy", "iam:AttachUserPolicy"] {
        let g = graph(
            vec![account(
                A,
                json!([user(A, "dev", json!([allow(action, &arn(A, "user/dev"))]))]),
                json!([]),
                json!([]),
            )],
            Twokey::default(),
        );
        let a = ask(&g, "cloudtrail:StopLogging", "*");
        let h = holder(&a, &arn(A, "user/dev"));
        assert!(
            h.path.len() == 1 && h.path[0].empowered,
            "{action}: {:?}",
            kinds(h)
        );
        assert_eq!(
            h.path[0].kind,
            EdgeKind::WritePolicy {
                action: action.into()
            }
        );
    }
    // A role one can assume, whose policies one can write.
    let g = graph(
        vec![account(
            A,
            json!([user(
                A,
                "dev",
                json!([
                    allow("sts:AssumeRole", &arn(A, "role/app")),
                    allow("iam:PutRolePolicy", &arn(A, "role/app"))
                ])
            )]),
            json!([role(
                A,
                "app",
                json!({"AWS": arn(A, "root")}),
                json!([allow("s3:GetObject", "*")])
            )]),
            json!([]),
        )],
        Twokey::default(),
    );
    let a = ask(&g, "cloudtrail:StopLogging", "*");
    let h = holder(&a, &arn(A, "user/dev"));
    assert!(
        h.path.iter().any(|e| e.empowered
            && e.kind
                == EdgeKind::WritePolicy {
                    action: "iam:PutRolePolicy".into()
                }),
        "{:?}",
        kinds(h)
    );
    // A new default version of a managed policy attached to oneself.
    let p = arn(A, "policy/dev-tools");
    let v = json!({"UserDetailList": [{"UserName": "dev", "Arn": arn(A, "user/dev"),
            "AttachedManagedPolicies": [{"PolicyArn": p}]}],
        "Policies": [{"Arn": p, "DefaultVersionId": "v1", "PolicyVersionList": [{"VersionId": "v1", "IsDefaultVersion": true,
            "Document": doc(json!([allow("iam:CreatePolicyVersion", &p)]))}]}]});
    let g = graph(
        vec![AccountInput {
            account: A.into(),
            details: AuthDetails::parse(&v.to_string()).expect("d"),
            scps: vec![],
        }],
        Twokey::default(),
    );
    let a = ask(&g, "cloudtrail:StopLogging", "*");
    let h = holder(&a, &arn(A, "user/dev"));
    assert_eq!(
        kinds(h),
        vec![EdgeKind::PolicyVersion {
            action: "iam:CreatePolicyVersion".into(),
            policy: p.clone()
        }]
    );
}

#[test]
fn a_boundary_bounds_what_an_empowered_principal_gets() {
    let b = arn(A, "policy/s3-only");
    let v = json!({"UserDetailList": [{"UserName": "dev", "Arn": arn(A, "user/dev"),
            "UserPolicyList": [{"PolicyName": "p", "PolicyDocument": doc(json!([allow("iam:PutUserPolicy", &arn(A, "user/dev"))]))}],
            "PermissionsBoundary": {"PermissionsBoundaryArn": b}}],
        "Policies": [{"Arn": b, "DefaultVersionId": "v1", "PolicyVersionList": [{"VersionId": "v1", "IsDefaultVersion": true,
            "Document": doc(json!([allow("s3:*", "*"), allow("iam:PutUserPolicy", "*")]))}]}]});
    let g = graph(
        vec![AccountInput {
            account: A.into(),
            details: AuthDetails::parse(&v.to_string()).expect("d"),
            scps: vec![],
        }],
        Twokey::default(),
    );
    assert!(ask(&g, "cloudtrail:StopLogging", "*").holders.is_empty());
    assert!(!ask(&g, "s3:DeleteBucket", "arn:aws:s3:::logs")
        .holders
        .is_empty());
}

#[test]
fn an_scp_deny_cuts_the_action() {
    let mut acct = account(
        A,
        json!([user(A, "root-ish", json!([allow("*", "*")]))]),
        json!([]),
        json!([]),
    );
    let scp = |doc: Value| NamedPolicy {
        id: "guard".into(),
        policy: Policy::from_value("guard", &doc).expect("scp"),
    };
    acct.scps = vec![OrgLevel {
        id: "r-root".into(),
        policies: vec![
            scp(json!({"Version": "2012-10-17", "Statement": [allow("*", "*")]})),
            scp(
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "cloudtrail:StopLogging", "Resource": "*"}]}),
            ),
        ],
    }];
    let g = graph(vec![acct], Twokey::default());
    assert!(ask(&g, "cloudtrail:StopLogging", "*").holders.is_empty());
    assert!(!ask(&g, "cloudtrail:DeleteTrail", "*").holders.is_empty());
}

#[test]
fn unknown_context_makes_a_conditional_edge() {
    let g = graph(
        vec![account(
            A,
            json!([user(
                A,
                "dev",
                json!([{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*",
                "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}])
            )]),
            json!([admin(A, json!({"AWS": arn(A, "root")}))]),
            json!([]),
        )],
        Twokey::default(),
    );
    let a = ask(&g, "cloudtrail:StopLogging", "*");
    let h = holder(&a, &arn(A, "user/dev"));
    assert!(h.conditional());
    assert!(
        h.when.to_string().contains("aws:MultiFactorAuthPresent"),
        "{}",
        h.when
    );
    assert!(!a.tpi_clean(), "a conditional standing path is not clean");
}

#[test]
fn every_route_through_twokey_is_clean() {
    // The admin role trusts the account root only; alice reaches it with
    // the grant policy twokey writes (`twokey-<request>`), which standing
    // evaluation leaves out; the gateway writes grants and is reported as
    // twokey's own.
    let target = arn(A, "role/admin");
    let grant = json!({"UserName": "alice", "Arn": arn(A, "user/alice"),
        "UserPolicyList": [{"PolicyName": "twokey-7f3a", "PolicyDocument": doc(json!([allow("sts:AssumeRole", &target)]))}]});
    let gateway = role(
        A,
        "twokey-gateway",
        json!({"Service": "ecs-tasks.amazonaws.com"}),
        json!([
            allow("iam:PutUserPolicy", &arn(A, "user/*")),
            allow("iam:DeleteUserPolicy", &arn(A, "user/*"))
        ]),
    );
    let g = graph(
        vec![account(
            A,
            json!([grant, user(A, "bob", json!([allow("s3:GetObject", "*")]))]),
            json!([admin(A, json!({"AWS": arn(A, "root")})), gateway]),
            json!([]),
        )],
        Twokey {
            targets: vec![target.clone()],
            gateway: vec![arn(A, "role/twokey-gateway")],
        },
    );
    for (action, resource) in [
        ("sts:AssumeRole", target.as_str()),
        ("cloudtrail:StopLogging", "*"),
    ] {
        let a = ask(&g, action, resource);
        assert!(
            a.tpi_clean(),
            "{action}: {:?}",
            a.standing().map(|h| &h.principal).collect::<Vec<_>>()
        );
        assert!(
            a.holders
                .iter()
                .all(|h| h.principal != arn(A, "user/alice")),
            "{action}: the grant is not standing"
        );
    }
    let a = ask(&g, "cloudtrail:StopLogging", "*");
    assert_eq!(holder(&a, &target).standing, Standing::TwokeyTarget);
    let a = ask(&g, "iam:PutUserPolicy", "*");
    assert_eq!(
        holder(&a, &arn(A, "role/twokey-gateway")).standing,
        Standing::TwokeyGateway
    );
    assert!(a.tpi_clean());
    // The same account with one standing way in is not clean, and says which.
    let ci = user(A, "ci", json!([allow("sts:AssumeRole", &target)]));
    let g = graph(
        vec![account(
            A,
            json!([ci]),
            json!([admin(A, json!({"AWS": arn(A, "root")}))]),
            json!([]),
        )],
        Twokey {
            targets: vec![target.clone()],
            gateway: vec![],
        },
    );
    let a = ask(&g, "cloudtrail:StopLogging", "*");
    assert!(!a.tpi_clean());
    assert_eq!(holder(&a, &arn(A, "user/ci")).standing, Standing::Standing);
}
