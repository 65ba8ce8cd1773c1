//! The differential corpus: hand-written cases by category and seeded
//! random cases, in iam-simulate's `Simulation` shape (shared by
//! `tests/differential.rs` and `benches/decisions.rs`).

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::{complete, doc, sim, Case};

const A: &str = "111111111111";
const B: &str = "222222222222";

fn alice() -> String {
    format!("arn:aws:iam::{A}:user/alice")
}
fn session() -> String {
    format!("arn:aws:sts::{A}:assumed-role/dev/alice-session")
}
fn role_dev() -> String {
    format!("arn:aws:iam::{A}:role/dev")
}
fn carol() -> String {
    format!("arn:aws:iam::{B}:user/carol")
}
const OBJ: &str = "arn:aws:s3:::logs/a.txt";

fn allow(action: &str, resource: &str) -> Value {
    json!({"Effect": "Allow", "Action": action, "Resource": resource})
}
fn deny(action: &str, resource: &str) -> Value {
    json!({"Effect": "Deny", "Action": action, "Resource": resource})
}
fn with(mut s: Value, k: &str, v: Value) -> Value {
    s[k] = v;
    s
}
fn idp(s: &mut Value, statements: Value) {
    let n = s["identityPolicies"].as_array().map_or(0, |a| a.len());
    s["identityPolicies"]
        .as_array_mut()
        .expect("list")
        .push(json!({"name": format!("id{n}"), "policy": doc(statements)}));
}
fn full() -> Value {
    json!({"name": "FullAWSAccess", "policy": doc(json!([allow("*", "*")]))})
}

/// The hand-written corpus, by category.
pub(crate) fn categories() -> Vec<Case> {
    let mut out = Vec::new();
    let mut add = |id: &str, s: Value| {
        out.push(Case {
            id: id.into(),
            sim: complete(s),
        })
    };
    // identity basics
    let mut s = sim(&alice(), "s3:GetObject", OBJ, A);
    add("identity/none", s.clone());
    idp(&mut s, json!([allow("s3:GetObject", OBJ)]));
    add("identity/exact", s.clone());
    let mut t = sim(&alice(), "s3:GetObject", OBJ, A);
    idp(&mut t, json!([allow("S3:get*", "arn:aws:s3:::logs/*")]));
    add("identity/wildcard-case", t);
    let mut t = sim(&alice(), "s3:GetObject", OBJ, A);
    idp(
        &mut t,
        json!([json!({"Effect":"Allow","NotAction":"iam:*","Resource":"*"})]),
    );
    add("identity/notaction", t);
    let mut t = sim(&alice(), "s3:GetObject", OBJ, A);
    idp(
        &mut t,
        json!([json!({"Effect":"Allow","Action":"*","NotResource":"arn:aws:s3:::logs/*"})]),
    );
    add("identity/notresource", t);
    let mut t = s.clone();
    idp(&mut t, json!([deny("s3:*", "*")]));
    add("identity/deny-wins", t);
    let mut t = sim(&alice(), "s3:GetObject", "arn:aws:s3:::home/alice/x", A);
    idp(
        &mut t,
        json!([allow("s3:GetObject", "arn:aws:s3:::home/${aws:username}/*")]),
    );
    add("identity/variable-username", t);
    let mut t = sim(&alice(), "s3:GetObject", "arn:aws:s3:::home/bob/x", A);
    idp(
        &mut t,
        json!([allow("s3:GetObject", "arn:aws:s3:::home/${aws:username}/*")]),
    );
    add("identity/variable-other-user", t);
    // SCPs
    for (id, levels) in [
        (
            "scp/full-both-levels",
            json!([{"orgIdentifier":"r-root","policies":[full()]},{"orgIdentifier":A,"policies":[full()]}]),
        ),
        (
            "scp/account-level-missing-allow",
            json!([{"orgIdentifier":"r-root","policies":[full()]},{"orgIdentifier":A,"policies":[{"name":"ec2","policy":doc(json!([allow("ec2:*","*")]))}]}]),
        ),
        (
            "scp/root-deny",
            json!([{"orgIdentifier":"r-root","policies":[full(),{"name":"no-s3","policy":doc(json!([deny("s3:*","*")]))}]},{"orgIdentifier":A,"policies":[full()]}]),
        ),
        (
            "scp/ou-allows-s3-only",
            json!([{"orgIdentifier":"r-root","policies":[full()]},{"orgIdentifier":"ou-1","policies":[{"name":"s3","policy":doc(json!([allow("s3:*","*")]))}]},{"orgIdentifier":A,"policies":[full()]}]),
        ),
    ] {
        let mut t = s.clone();
        t["serviceControlPolicies"] = levels;
        add(id, t);
    }
    // RCPs
    let mut t = s.clone();
    t["resourceControlPolicies"] = json!([{"orgIdentifier":"r-root","policies":[{"name":"deny-ext","policy":doc(json!([{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"StringNotEquals":{"aws:PrincipalAccount":B}}}]))}]}]);
    add("rcp/deny-other-accounts", t);
    let mut t = s.clone();
    t["resourceControlPolicies"] = json!([{"orgIdentifier":"r-root","policies":[{"name":"deny-b","policy":doc(json!([{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalAccount":B}}}]))}]}]);
    add("rcp/deny-not-matching", t);
    // Permissions boundaries
    let mut t = s.clone();
    t["permissionBoundaryPolicies"] =
        json!([{"name":"pb","policy":doc(json!([allow("ec2:*","*")]))}]);
    add("boundary/limits-identity", t.clone());
    t["resourcePolicy"] = doc(
        json!([{"Effect":"Allow","Principal":{"AWS":alice()},"Action":"s3:GetObject","Resource":OBJ}]),
    );
    add("boundary/user-named-in-resource-policy", t);
    let mut t = s.clone();
    t["permissionBoundaryPolicies"] =
        json!([{"name":"pb","policy":doc(json!([allow("s3:*","*")]))}]);
    add("boundary/allows", t);
    // Sessions and session policies
    let mut t = sim(&session(), "s3:GetObject", OBJ, A);
    idp(&mut t, json!([allow("s3:*", "*")]));
    add("session/no-session-policy", t.clone());
    t["sessionPolicy"] = doc(json!([allow("ec2:*", "*")]));
    add("session/session-policy-limits", t.clone());
    t["resourcePolicy"] = doc(
        json!([{"Effect":"Allow","Principal":{"AWS":session()},"Action":"s3:GetObject","Resource":OBJ}]),
    );
    add("session/session-named-in-resource-policy", t.clone());
    t["resourcePolicy"] = doc(
        json!([{"Effect":"Allow","Principal":{"AWS":role_dev()},"Action":"s3:GetObject","Resource":OBJ}]),
    );
    add("session/role-named-in-resource-policy", t);
    // Resource policies, same and cross account
    for (who, acct, principal, id) in [
        (
            alice(),
            A,
            json!({"AWS": alice()}),
            "resource/same-account-user",
        ),
        (
            alice(),
            A,
            json!({"AWS": format!("arn:aws:iam::{A}:root")}),
            "resource/same-account-root",
        ),
        (alice(), A, json!({"AWS": A}), "resource/same-account-id"),
        (alice(), A, json!("*"), "resource/same-account-star"),
        (
            carol(),
            A,
            json!({"AWS": carol()}),
            "resource/cross-account-user-no-identity",
        ),
        (
            carol(),
            A,
            json!({"AWS": format!("arn:aws:iam::{B}:root")}),
            "resource/cross-account-root-no-identity",
        ),
    ] {
        let mut t = sim(&who, "s3:GetObject", OBJ, acct);
        t["resourcePolicy"] = doc(
            json!([{"Effect":"Allow","Principal":principal,"Action":"s3:GetObject","Resource":OBJ}]),
        );
        add(id, t.clone());
        idp(&mut t, json!([allow("s3:GetObject", "*")]));
        add(&format!("{id}+identity"), t);
    }
    let mut t = sim(&carol(), "s3:GetObject", OBJ, A);
    idp(&mut t, json!([allow("s3:GetObject", "*")]));
    add("resource/cross-account-identity-only", t);
    // NotPrincipal
    for (who, id) in [
        (alice(), "notprincipal/excluded"),
        (format!("arn:aws:iam::{A}:user/bob"), "notprincipal/other"),
    ] {
        let mut t = sim(&who, "s3:GetObject", OBJ, A);
        idp(&mut t, json!([allow("s3:*", "*")]));
        t["resourcePolicy"] = doc(
            json!([{"Effect":"Deny","NotPrincipal":{"AWS":[alice()]},"Action":"s3:*","Resource":"*"}]),
        );
        add(id, t);
    }
    // Role trust policies
    let admin = format!("arn:aws:iam::{A}:role/admin");
    for (principal, identity, id) in [
        (
            json!({"AWS": alice()}),
            false,
            "trust/user-arn-same-account",
        ),
        (
            json!({"AWS": format!("arn:aws:iam::{A}:root")}),
            false,
            "trust/root-same-account-no-identity",
        ),
        (
            json!({"AWS": format!("arn:aws:iam::{A}:root")}),
            true,
            "trust/root-same-account-identity",
        ),
        (json!({"AWS": carol()}), false, "trust/other-user"),
    ] {
        let mut t = sim(&alice(), "sts:AssumeRole", &admin, A);
        t["resourcePolicy"] =
            doc(json!([{"Effect":"Allow","Principal":principal,"Action":"sts:AssumeRole"}]));
        if identity {
            idp(&mut t, json!([allow("sts:AssumeRole", &admin)]));
        }
        add(id, t);
    }
    let mut t = sim(&alice(), "sts:AssumeRole", &admin, A);
    idp(&mut t, json!([allow("sts:AssumeRole", "*")]));
    add("trust/identity-without-trust", t);
    // KMS key policies
    let key = format!("arn:aws:kms:us-east-1:{A}:key/k1");
    for (principal, identity, id) in [
        (
            json!({"AWS": format!("arn:aws:iam::{A}:root")}),
            true,
            "kms/root-delegates-identity",
        ),
        (
            json!({"AWS": format!("arn:aws:iam::{A}:root")}),
            false,
            "kms/root-delegates-no-identity",
        ),
        (json!({"AWS": alice()}), false, "kms/user-named"),
    ] {
        let mut t = sim(&alice(), "kms:Decrypt", &key, A);
        t["resourcePolicy"] =
            doc(json!([{"Effect":"Allow","Principal":principal,"Action":"kms:*","Resource":"*"}]));
        if identity {
            idp(&mut t, json!([allow("kms:Decrypt", "*")]));
        }
        add(id, t);
    }
    // Conditions
    let conds: Vec<(&str, Value, Value)> = vec![
        (
            "cond/string-equals-tag",
            json!({"StringEquals":{"aws:PrincipalTag/team":"red"}}),
            json!({"aws:PrincipalTag/team":"red"}),
        ),
        (
            "cond/string-equals-tag-miss",
            json!({"StringEquals":{"aws:PrincipalTag/team":"red"}}),
            json!({"aws:PrincipalTag/team":"blue"}),
        ),
        (
            "cond/string-like",
            json!({"StringLike":{"aws:PrincipalTag/team":"r*"}}),
            json!({"aws:PrincipalTag/team":"red"}),
        ),
        (
            "cond/ignore-case",
            json!({"StringEqualsIgnoreCase":{"aws:PrincipalTag/team":"RED"}}),
            json!({"aws:PrincipalTag/team":"red"}),
        ),
        (
            "cond/not-equals-absent",
            json!({"StringNotEquals":{"aws:PrincipalTag/team":"red"}}),
            json!({}),
        ),
        (
            "cond/ifexists-absent",
            json!({"StringEqualsIfExists":{"aws:PrincipalTag/team":"red"}}),
            json!({}),
        ),
        (
            "cond/bool-mfa",
            json!({"Bool":{"aws:MultiFactorAuthPresent":"true"}}),
            json!({"aws:MultiFactorAuthPresent":"true"}),
        ),
        (
            "cond/bool-mfa-absent",
            json!({"Bool":{"aws:MultiFactorAuthPresent":"true"}}),
            json!({}),
        ),
        (
            "cond/null-true",
            json!({"Null":{"aws:MultiFactorAuthPresent":"true"}}),
            json!({}),
        ),
        (
            "cond/null-false",
            json!({"Null":{"aws:MultiFactorAuthPresent":"false"}}),
            json!({}),
        ),
        (
            "cond/ip-in",
            json!({"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}),
            json!({"aws:SourceIp":"10.1.2.3"}),
        ),
        (
            "cond/ip-out",
            json!({"IpAddress":{"aws:SourceIp":["192.168.0.0/16","203.0.113.7/32"]}}),
            json!({"aws:SourceIp":"10.1.2.3"}),
        ),
        (
            "cond/not-ip",
            json!({"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}),
            json!({"aws:SourceIp":"10.1.2.3"}),
        ),
        (
            "cond/ipv6",
            json!({"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}),
            json!({"aws:SourceIp":"2001:db8::1"}),
        ),
        (
            "cond/date-before",
            json!({"DateLessThan":{"aws:CurrentTime":"2026-07-01T00:00:00Z"}}),
            json!({}),
        ),
        (
            "cond/date-after",
            json!({"DateGreaterThan":{"aws:CurrentTime":"2026-07-01T00:00:00Z"}}),
            json!({}),
        ),
        (
            "cond/epoch-numeric",
            json!({"NumericLessThan":{"aws:EpochTime":"2000000000"}}),
            json!({"aws:EpochTime":"1780315200"}),
        ),
        (
            "cond/arn-like",
            json!({"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/a*"}}),
            json!({}),
        ),
        (
            "cond/arn-not-like",
            json!({"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/a*"}}),
            json!({}),
        ),
        (
            "cond/variable-in-value",
            json!({"StringEquals":{"aws:PrincipalTag/owner":"${aws:username}"}}),
            json!({"aws:PrincipalTag/owner":"alice"}),
        ),
        (
            "cond/forall-tagkeys",
            json!({"ForAllValues:StringEquals":{"aws:TagKeys":["team","env"]}}),
            json!({"aws:TagKeys":["team"]}),
        ),
        (
            "cond/forall-tagkeys-extra",
            json!({"ForAllValues:StringEquals":{"aws:TagKeys":["team"]}}),
            json!({"aws:TagKeys":["team","x"]}),
        ),
        (
            "cond/forany-tagkeys",
            json!({"ForAnyValue:StringEquals":{"aws:TagKeys":["env"]}}),
            json!({"aws:TagKeys":["team","env"]}),
        ),
        (
            "cond/forany-absent",
            json!({"ForAnyValue:StringEquals":{"aws:TagKeys":["env"]}}),
            json!({}),
        ),
        (
            "cond/forall-absent",
            json!({"ForAllValues:StringEquals":{"aws:TagKeys":["env"]}}),
            json!({}),
        ),
        (
            "cond/two-keys-and",
            json!({"StringEquals":{"aws:PrincipalTag/team":"red","aws:RequestedRegion":"us-east-1"}}),
            json!({"aws:PrincipalTag/team":"red","aws:RequestedRegion":"eu-west-1"}),
        ),
        (
            "cond/secure-transport",
            json!({"Bool":{"aws:SecureTransport":"false"}}),
            json!({"aws:SecureTransport":"true"}),
        ),
    ];
    for (id, cond, ctx) in conds {
        let mut t = sim(&alice(), "s3:PutObjectTagging", OBJ, A);
        for (k, v) in ctx.as_object().into_iter().flatten() {
            t["request"]["contextVariables"][k] = v.clone();
        }
        idp(&mut t, json!([with(allow("s3:*", "*"), "Condition", cond)]));
        add(id, t);
    }
    out
}

const ACTIONS: &[(&str, &str)] = &[
    ("s3:GetObject", "arn:aws:s3:::logs/a.txt"),
    ("s3:PutObject", "arn:aws:s3:::logs/b/c.txt"),
    ("s3:DeleteObject", "arn:aws:s3:::backup/x"),
    ("s3:ListBucket", "arn:aws:s3:::logs"),
    ("iam:CreateUser", "arn:aws:iam::111111111111:user/mallory"),
    ("iam:PassRole", "arn:aws:iam::111111111111:role/admin"),
    (
        "dynamodb:GetItem",
        "arn:aws:dynamodb:us-east-1:111111111111:table/t",
    ),
    ("sqs:SendMessage", "arn:aws:sqs:us-east-1:222222222222:q"),
    ("kms:Decrypt", "arn:aws:kms:us-east-1:111111111111:key/k1"),
    ("sts:AssumeRole", "arn:aws:iam::111111111111:role/admin"),
    ("sts:AssumeRole", "arn:aws:iam::222222222222:role/ops"),
];

fn rand_action_pattern(rng: &mut StdRng, action: &str) -> String {
    let (svc, name) = action.split_once(':').unwrap_or(("s3", "GetObject"));
    let pick = rng.gen_range(0..8);
    match pick {
        0 => "*".into(),
        1 => format!("{svc}:*"),
        2 => format!("{svc}:{}*", &name[..3.min(name.len())]),
        3 => action.to_ascii_lowercase(),
        4 => format!("{svc}:?{}", &name[1..]),
        5 => "ec2:RunInstances".into(),
        6 => format!("{svc}:List*"),
        _ => action.into(),
    }
}

fn rand_resource_pattern(rng: &mut StdRng, resource: &str) -> String {
    match rng.gen_range(0..7) {
        0 | 1 => "*".into(),
        2 => resource.into(),
        3 => match resource.rfind(['/', ':']) {
            Some(i) => format!("{}*", &resource[..=i]),
            None => "*".into(),
        },
        4 => "arn:aws:s3:::logs/*".into(),
        5 => "arn:aws:iam::*:role/a?min".into(),
        _ => "arn:aws:s3:::backup/*".into(),
    }
}

fn rand_condition(rng: &mut StdRng) -> Value {
    let c = [
        json!({"StringEquals":{"aws:PrincipalTag/team":"red"}}),
        json!({"StringNotEquals":{"aws:PrincipalTag/team":"red"}}),
        json!({"StringLike":{"aws:PrincipalArn":"arn:aws:iam::111111111111:*"}}),
        json!({"StringEqualsIfExists":{"aws:PrincipalTag/team":["red","blue"]}}),
        json!({"Bool":{"aws:MultiFactorAuthPresent":"true"}}),
        json!({"BoolIfExists":{"aws:MultiFactorAuthPresent":"true"}}),
        json!({"Null":{"aws:MultiFactorAuthPresent":"true"}}),
        json!({"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}),
        json!({"NotIpAddress":{"aws:SourceIp":["10.0.0.0/16"]}}),
        json!({"DateLessThan":{"aws:CurrentTime":"2026-06-01T13:00:00Z"}}),
        json!({"DateGreaterThan":{"aws:CurrentTime":"2026-06-01T13:00:00Z"}}),
        json!({"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/*"}}),
        json!({"ArnNotEquals":{"aws:PrincipalArn":"arn:aws:iam::111111111111:user/alice"}}),
        json!({"StringEquals":{"aws:PrincipalAccount":"222222222222"}}),
        json!({"StringEquals":{"aws:ResourceAccount":"111111111111"}}),
        json!({"StringEqualsIgnoreCase":{"aws:RequestedRegion":"US-EAST-1"}}),
        json!({"NumericGreaterThan":{"aws:MultiFactorAuthAge":"3600"}}),
        json!({"StringLike":{"aws:username":"a*"}}),
    ];
    c[rng.gen_range(0..c.len())].clone()
}

fn rand_statement(
    rng: &mut StdRng,
    action: &str,
    resource: &str,
    principal: Option<Value>,
) -> Value {
    let effect = if rng.gen_bool(0.25) { "Deny" } else { "Allow" };
    let a = rand_action_pattern(rng, action);
    let mut s = if rng.gen_bool(0.1) {
        json!({"Effect": effect, "NotAction": "iam:*"})
    } else if rng.gen_bool(0.3) {
        json!({"Effect": effect, "Action": [a, "ec2:Describe*"]})
    } else {
        json!({"Effect": effect, "Action": a})
    };
    let r = rand_resource_pattern(rng, resource);
    if rng.gen_bool(0.1) {
        s["NotResource"] = json!(r);
    } else if principal.is_none() || rng.gen_bool(0.5) {
        s["Resource"] = json!(r);
    }
    if let Some(p) = principal {
        s["Principal"] = p;
    }
    if rng.gen_bool(0.35) {
        s["Condition"] = rand_condition(rng);
    }
    s
}

fn rand_principal_element(rng: &mut StdRng) -> Value {
    let opts = [
        json!("*"),
        json!({"AWS": alice()}),
        json!({"AWS": format!("arn:aws:iam::{A}:root")}),
        json!({"AWS": B}),
        json!({"AWS": [carol(), role_dev()]}),
        json!({"AWS": session()}),
        json!({"AWS": format!("arn:aws:iam::{A}:user/bob")}),
    ];
    opts[rng.gen_range(0..opts.len())].clone()
}

fn rand_case(rng: &mut StdRng, i: usize) -> Case {
    let callers = [
        alice(),
        session(),
        carol(),
        format!("arn:aws:iam::{A}:user/bob"),
    ];
    let who = callers.choose(rng).cloned().unwrap_or_else(alice);
    let (action, resource) = ACTIONS[rng.gen_range(0..ACTIONS.len())];
    let acct = match resource.split(':').nth(4) {
        Some(a) if !a.is_empty() => a.to_string(),
        _ => if rng.gen_bool(0.7) { A } else { B }.to_string(),
    };
    let mut s = sim(&who, action, resource, &acct);
    let ctx = &mut s["request"]["contextVariables"];
    if rng.gen_bool(0.5) {
        ctx["aws:PrincipalTag/team"] = json!(if rng.gen_bool(0.5) { "red" } else { "blue" });
    }
    if rng.gen_bool(0.5) {
        ctx["aws:MultiFactorAuthPresent"] = json!(if rng.gen_bool(0.5) { "true" } else { "false" });
        ctx["aws:MultiFactorAuthAge"] = json!(rng.gen_range(0..7200).to_string());
    }
    if rng.gen_bool(0.6) {
        ctx["aws:SourceIp"] = json!(if rng.gen_bool(0.5) {
            "10.0.3.4"
        } else {
            "10.7.0.1"
        });
    }
    ctx["aws:RequestedRegion"] = json!("us-east-1");
    for n in 0..rng.gen_range(0..3) {
        let st: Vec<Value> = (0..rng.gen_range(1..4))
            .map(|_| rand_statement(rng, action, resource, None))
            .collect();
        s["identityPolicies"]
            .as_array_mut()
            .expect("list")
            .push(json!({"name": format!("id{n}"), "policy": doc(json!(st))}));
    }
    // A role always has a trust policy; other resources may have none.
    if action == "sts:AssumeRole" || rng.gen_bool(0.5) {
        let st: Vec<Value> = (0..rng.gen_range(1..3))
            .map(|_| {
                let p = rand_principal_element(rng);
                rand_statement(rng, action, resource, Some(p))
            })
            .collect();
        s["resourcePolicy"] = doc(json!(st));
    }
    if rng.gen_bool(0.25) {
        let second = if rng.gen_bool(0.5) {
            full()
        } else {
            json!({"name": "scp", "policy": doc(json!([rand_statement(rng, action, resource, None)]))})
        };
        s["serviceControlPolicies"] = json!([{"orgIdentifier": "r-root", "policies": [full()]}, {"orgIdentifier": "ou-x", "policies": [second]}]);
    }
    if rng.gen_bool(0.1) {
        s["resourceControlPolicies"] = json!([{"orgIdentifier": "r-root", "policies": [{"name": "rcp", "policy": doc(json!([{"Effect":"Deny","Principal":"*","Action":["s3:*","sts:*","kms:*","sqs:*"],"Resource":"*","Condition":{"StringNotEquals":{"aws:PrincipalAccount":A}}}]))}]}]);
    }
    if rng.gen_bool(0.2) {
        s["permissionBoundaryPolicies"] = json!([{"name": "pb", "policy": doc(json!([rand_statement(rng, action, resource, None)]))}]);
    }
    if who.contains(":assumed-role/") && rng.gen_bool(0.3) {
        s["sessionPolicy"] = doc(json!([rand_statement(rng, action, resource, None)]));
    }
    Case {
        id: format!("random/{i}"),
        sim: complete(s),
    }
}

/// The seeded random corpus (the same cases on every run).
pub(crate) fn random_cases(n: usize) -> Vec<Case> {
    let mut rng = StdRng::seed_from_u64(0x2c0ffee);
    (0..n).map(|i| rand_case(&mut rng, i)).collect()
}
