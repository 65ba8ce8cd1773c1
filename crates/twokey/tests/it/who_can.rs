//! Who can act alone, through the binary against real moto accounts seeded
//! with the official SDK: one account with each escalation edge type (every
//! one found by `twokey who-can --live` with its path and statements, and
//! by `twokey posture iam` as a failing finding), and one where every route
//! to the admin role goes through twokey (a grant policy twokey writes, its
//! gateway role), which reports clean.

use crate::moto;
use crate::support;

use std::process::Command;

use aws_sdk_iam::Client;
use moto::Moto;
use serde_json::{json, Value};

const ACCT: &str = "123456789012";

fn arn(what: &str) -> String {
    format!("arn:aws:iam::{ACCT}:{what}")
}

fn bin() -> String {
    std::env::var("TWOKEY_BIN").unwrap_or_else(|_| support::BIN.to_string())
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin()).args(args).output().expect("run twokey");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn doc(statements: Value) -> String {
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

fn allow(action: &str, resource: &str) -> Value {
    json!({"Effect": "Allow", "Action": action, "Resource": resource})
}

fn trust(principal: Value) -> String {
    doc(json!([{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}]))
}

async fn user(iam: &Client, name: &str, statements: Value) {
    iam.create_user()
        .user_name(name)
        .send()
        .await
        .expect("user");
    iam.put_user_policy()
        .user_name(name)
        .policy_name("p")
        .policy_document(doc(statements))
        .send()
        .await
        .expect("user policy");
}

async fn role(iam: &Client, name: &str, principal: Value, statements: Value) {
    iam.create_role()
        .role_name(name)
        .assume_role_policy_document(trust(principal))
        .send()
        .await
        .expect("role");
    iam.put_role_policy()
        .role_name(name)
        .policy_name("p")
        .policy_document(doc(statements))
        .send()
        .await
        .expect("role policy");
}

/// Every edge type, each from its own user, each leading to the power to
/// stop CloudTrail.
async fn seed_escalations(iam: &Client) {
    let root = json!({"AWS": arn("root")});
    role(
        iam,
        "admin",
        root.clone(),
        json!([allow("cloudtrail:*", "*")]),
    )
    .await;
    user(
        iam,
        "assumer",
        json!([allow("sts:AssumeRole", &arn("role/admin"))]),
    )
    .await;
    role(
        iam,
        "fn",
        json!({"Service": "lambda.amazonaws.com"}),
        json!([allow("cloudtrail:StopLogging", "*")]),
    )
    .await;
    user(
        iam,
        "passer",
        json!([
            allow("iam:PassRole", &arn("role/fn")),
            allow("lambda:CreateFunction", "*"),
            allow("lambda:InvokeFunction", "*")
        ]),
    )
    .await;
    user(iam, "ops", json!([allow("cloudtrail:StopLogging", "*")])).await;
    user(
        iam,
        "keymaker",
        json!([allow("iam:CreateAccessKey", &arn("user/ops"))]),
    )
    .await;
    user(
        iam,
        "loginmaker",
        json!([allow("iam:CreateLoginProfile", &arn("user/ops"))]),
    )
    .await;
    user(
        iam,
        "loginchanger",
        json!([allow("iam:UpdateLoginProfile", &arn("user/ops"))]),
    )
    .await;
    role(
        iam,
        "locked",
        json!({"Service": "ec2.amazonaws.com"}),
        json!([allow("cloudtrail:StopLogging", "*")]),
    )
    .await;
    user(
        iam,
        "truster",
        json!([allow("iam:UpdateAssumeRolePolicy", &arn("role/locked"))]),
    )
    .await;
    user(
        iam,
        "selfwriter",
        json!([allow("iam:PutUserPolicy", &arn("user/selfwriter"))]),
    )
    .await;
    role(iam, "app", root, json!([allow("s3:GetObject", "*")])).await;
    user(
        iam,
        "appwriter",
        json!([
            allow("sts:AssumeRole", &arn("role/app")),
            allow("iam:AttachRolePolicy", &arn("role/app"))
        ]),
    )
    .await;
    // A managed policy attached to oneself, whose new version one can write.
    let p = iam
        .create_policy()
        .policy_name("versioner-tools")
        .policy_document(doc(json!([allow(
            "iam:CreatePolicyVersion",
            &arn("policy/versioner-tools")
        )])))
        .send()
        .await
        .expect("policy");
    let parn = p.policy().and_then(|p| p.arn()).expect("arn").to_string();
    iam.create_user()
        .user_name("versioner")
        .send()
        .await
        .expect("user");
    iam.attach_user_policy()
        .user_name("versioner")
        .policy_arn(parn)
        .send()
        .await
        .expect("attach");
    // And one who can do nothing of the kind.
    user(iam, "reader", json!([allow("s3:GetObject", "*")])).await;
}

fn first_edge(holders: &[Value], principal: &str) -> String {
    let h = holders
        .iter()
        .find(|h| h["principal"] == arn(principal))
        .unwrap_or_else(|| panic!("{principal} not among {holders:#?}"));
    assert_eq!(h["standing"], "standing", "{h}");
    h["path"][0].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_escalation_edge_is_found_with_its_path() {
    let Some(moto) = Moto::start(&[]) else { return };
    let config = moto.connection().load().await;
    let iam = Client::new(&config);
    seed_escalations(&iam).await;
    let url = moto.url();
    let admin = arn("role/admin");
    let (code, out, err) = run(&[
        "--json",
        "who-can",
        "cloudtrail:StopLogging",
        "--live",
        "--endpoint-url",
        &url,
        "--twokey-target",
        &admin,
    ]);
    assert_eq!(code, 1, "someone can act alone: {err}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    assert_eq!(v["tpi_clean"], false);
    let holders = v["holders"].as_array().expect("holders").clone();
    for (who, edge, statement) in [
        ("user/assumer", "--sts:AssumeRole--> arn:aws:iam::123456789012:role/admin", "identity assumer/p Statement[0]"),
        ("user/passer", "--iam:PassRole to lambda.amazonaws.com--> arn:aws:iam::123456789012:role/fn", "identity passer/p Statement[0]"),
        ("user/keymaker", "--iam:CreateAccessKey--> arn:aws:iam::123456789012:user/ops", "identity keymaker/p Statement[0]"),
        ("user/loginmaker", "--iam:CreateLoginProfile--> arn:aws:iam::123456789012:user/ops", "loginmaker/p"),
        ("user/loginchanger", "--iam:UpdateLoginProfile--> arn:aws:iam::123456789012:user/ops", "loginchanger/p"),
        ("user/truster", "--iam:UpdateAssumeRolePolicy--> arn:aws:iam::123456789012:role/locked", "truster/p"),
        ("user/selfwriter", "--iam:PutUserPolicy--> arn:aws:iam::123456789012:user/selfwriter (with any policy)", "selfwriter/p"),
        ("user/versioner", "--iam:CreatePolicyVersion on arn:aws:iam::123456789012:policy/versioner-tools--> arn:aws:iam::123456789012:user/versioner (with any policy)", "policy/versioner-tools Statement[0]"),
    ] {
        let first = first_edge(&holders, who);
        assert!(first.contains(edge), "{who}: {first}");
        assert!(first.contains(statement), "{who}: {first}");
    }
    // Two steps: assume the app role, then attach a policy to it.
    let h = holders
        .iter()
        .find(|h| h["principal"] == arn("user/appwriter"))
        .expect("appwriter");
    let path: Vec<&str> = h["path"]
        .as_array()
        .expect("path")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        path.iter().any(|l| l.contains(
            "--iam:AttachRolePolicy--> arn:aws:iam::123456789012:role/app (with any policy)"
        )),
        "{path:#?}"
    );
    assert!(
        holders.iter().all(|h| h["principal"] != arn("user/reader")),
        "reader can do nothing"
    );
    let admin_holder = holders
        .iter()
        .find(|h| h["principal"] == admin)
        .expect("admin");
    assert_eq!(admin_holder["standing"], "twokey_target");

    // The same graph as a posture finding, from a real collection.
    let (code, out, err) = run(&[
        "posture",
        "iam",
        "--endpoint-url",
        &url,
        "--regions",
        "us-east-1",
        "--format",
        "json",
        "--high-risk",
        "cloudtrail:StopLogging",
        "--check",
        "iam.standing_high_risk,iam.unused_roles",
    ]);
    assert_eq!(code, 3, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let f: Vec<&Value> = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["check"] == "iam.standing_high_risk")
        .collect();
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0]["status"], "fail");
    assert!(
        f[0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("without a twokey grant"),
        "{}",
        f[0]["message"]
    );
    let holders = f[0]["evidence"]["holders"].as_array().expect("holders");
    assert!(holders
        .iter()
        .any(|h| h["principal"] == arn("user/keymaker")));
    // moto reports no RoleLastUsed: the roles are new (created today).
    let roles: Vec<&Value> = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["check"] == "iam.unused_roles")
        .collect();
    assert!(
        !roles.is_empty() && roles.iter().all(|f| f["status"] == "pass"),
        "{roles:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_through_twokey_reports_clean() {
    let Some(moto) = Moto::start(&[]) else { return };
    let config = moto.connection().load().await;
    let iam = Client::new(&config);
    let admin = arn("role/admin");
    role(
        &iam,
        "admin",
        json!({"AWS": arn("root")}),
        json!([allow("*", "*")]),
    )
    .await;
    // alice holds the grant policy twokey writes while a grant is active.
    iam.create_user()
        .user_name("alice")
        .send()
        .await
        .expect("alice");
    iam.put_user_policy()
        .user_name("alice")
        .policy_name("twokey-0193f7a2")
        .policy_document(doc(json!([allow("sts:AssumeRole", &admin)])))
        .send()
        .await
        .expect("grant policy");
    user(
        &iam,
        "bob",
        json!([
            allow("s3:GetObject", "*"),
            allow("cloudtrail:Describe*", "*")
        ]),
    )
    .await;
    role(
        &iam,
        "twokey-gateway",
        json!({"Service": "ecs-tasks.amazonaws.com"}),
        json!([
            allow("iam:PutUserPolicy", &arn("user/*")),
            allow("iam:DeleteUserPolicy", &arn("user/*"))
        ]),
    )
    .await;
    let url = moto.url();
    let gateway = arn("role/twokey-gateway");
    for (action, resource) in [
        ("sts:AssumeRole", admin.as_str()),
        ("cloudtrail:StopLogging", "*"),
        ("iam:PutUserPolicy", "*"),
    ] {
        let (code, out, err) = run(&[
            "--json",
            "who-can",
            action,
            resource,
            "--live",
            "--endpoint-url",
            &url,
            "--twokey-target",
            &admin,
            "--twokey-gateway",
            &gateway,
        ]);
        assert_eq!(code, 0, "{action}: {out} {err}");
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(v["tpi_clean"], true, "{action}: {v:#}");
        let holders = v["holders"].as_array().expect("holders");
        assert!(
            holders.iter().all(|h| h["principal"] != arn("user/alice")),
            "{action}: a grant is not standing"
        );
        if action == "iam:PutUserPolicy" {
            let g = holders
                .iter()
                .find(|h| h["principal"] == gateway)
                .expect("gateway");
            assert_eq!(g["standing"], "twokey_gateway");
        }
    }
    // The text answer says so too.
    let (code, out, _) = run(&[
        "who-can",
        "cloudtrail:StopLogging",
        "--live",
        "--endpoint-url",
        &url,
        "--twokey-target",
        &admin,
        "--twokey-gateway",
        &gateway,
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("TPI-clean"), "{out}");
    assert!(
        out.contains("twokey target (only through a twokey grant)"),
        "{out}"
    );
}
