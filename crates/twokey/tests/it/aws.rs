//! The AWS providers end to end through the real binary: `twokey serve
//! --config` with a policy using `aws_iam_assume`, `aws_security_group` and
//! `aws_identity_center` against a real moto server, driven by the CLI
//! (`twokey request`, a second person's `twokey approve`, `twokey show`,
//! `twokey audit show`), with the state checked at moto through the AWS SDK.
//! Also the reconciler, the alert webhook and AWS errors on the request.

use crate::support;
use twokey_testkit::policy::PEOPLE;
// The moto harness of the provider tests: one way to start, stop and point
// the SDK at moto.
use crate::moto;

use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moto::Moto;
use serde_json::Value;
use support::{wait_until, Server, TestEnv, BIN};

const ACCOUNT: &str = "123456789012";
const SSO_ACCOUNT: &str = "111122223333";
const ROLE: &str = "prod-admin";
const STANDING_ROLE: &str = "standing-admin";
const ALICE_IP: &str = "203.0.113.7/32";

/// A local webhook receiver: the bodies of the alerts it got.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    let g = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let g = g.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = s.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let len = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())
                                .flatten()
                        })
                        .unwrap_or(0);
                    if buf.len() < end + 4 + len {
                        continue;
                    }
                    let body = &buf[end + 4..end + 4 + len];
                    if let Ok(v) = serde_json::from_slice::<Value>(body) {
                        g.lock().expect("lock").push(v);
                    }
                    let _ = s
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        )
                        .await;
                    return;
                }
            });
        }
    });
    (format!("http://{addr}/hook"), got)
}

fn alert_kinds(got: &Arc<Mutex<Vec<Value>>>) -> Vec<String> {
    got.lock()
        .expect("lock")
        .iter()
        .map(|v| v["kind"].as_str().unwrap_or("").to_string())
        .collect()
}

/// What the tests create at moto.
struct Fixture {
    moto: Moto,
    iam: aws_sdk_iam::Client,
    ec2: aws_sdk_ec2::Client,
    sso: aws_sdk_ssoadmin::Client,
    group: String,
    instance: String,
    permission_set: String,
}

fn arn(kind: &str, name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:{kind}/{name}")
}

impl Fixture {
    /// IAM users alice and bob and the target role (trust policy as the
    /// README documents it); a VPC security group; the Identity Center
    /// instance and a permission set.
    async fn create(moto: Moto) -> Fixture {
        let sdk = moto.connection().load().await;
        let iam = aws_sdk_iam::Client::new(&sdk);
        let ec2 = aws_sdk_ec2::Client::new(&sdk);
        let sso = aws_sdk_ssoadmin::Client::new(&sdk);
        for u in ["alice", "bob"] {
            iam.create_user()
                .user_name(u)
                .send()
                .await
                .expect("create user");
        }
        let trust = |principal: serde_json::Value| {
            serde_json::json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": {"AWS": principal},
                    "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
                    "Condition": {"StringLike": {"sts:SourceIdentity": "*"}}
                }]
            })
            .to_string()
        };
        // The README's trust: the account, so the identity policy decides.
        iam.create_role()
            .role_name(ROLE)
            .assume_role_policy_document(trust(format!("arn:aws:iam::{ACCOUNT}:root").into()))
            .send()
            .await
            .expect("create role");
        // The old form, naming the people: standing access in this account.
        iam.create_role()
            .role_name(STANDING_ROLE)
            .assume_role_policy_document(trust(serde_json::json!([
                arn("user", "alice"),
                arn("user", "bob")
            ])))
            .send()
            .await
            .expect("create role");
        let vpc = ec2
            .create_vpc()
            .cidr_block("10.0.0.0/16")
            .send()
            .await
            .expect("create vpc");
        let vpc_id = vpc
            .vpc()
            .and_then(|v| v.vpc_id())
            .expect("vpc id")
            .to_string();
        let group = ec2
            .create_security_group()
            .group_name("bastion")
            .description("bastion")
            .vpc_id(vpc_id)
            .send()
            .await
            .expect("create group")
            .group_id()
            .expect("group id")
            .to_string();
        let instance = sso
            .list_instances()
            .send()
            .await
            .expect("instances")
            .instances()
            .first()
            .and_then(|i| i.instance_arn())
            .expect("instance arn")
            .to_string();
        // moto answers CreatePermissionSet with a SessionDuration the SDK
        // cannot parse; the set is created all the same (see the crate tests).
        let _ = sso
            .create_permission_set()
            .instance_arn(&instance)
            .name("ProdAdmin")
            .send()
            .await;
        let permission_set = sso
            .list_permission_sets()
            .instance_arn(&instance)
            .send()
            .await
            .expect("permission sets")
            .permission_sets()
            .first()
            .expect("permission set")
            .to_string();
        Fixture {
            moto,
            iam,
            ec2,
            sso,
            group,
            instance,
            permission_set,
        }
    }

    fn policy(&self) -> String {
        let url = self.moto.url();
        format!(
            r#"{PEOPLE}
[[entitlement]]
name = "prod-admin"
provider = "aws_iam_assume"
requester_identities = ["alice", "bob"]
default_duration = "6s"
max_duration = "1h"
reason_required = false
approval = {{ count = 1, from = ["approvers"] }}
[entitlement.target]
role_arn = "{role}"
principals = {{ alice = "{alice}", bob = "{bob}" }}
trust = "account_root"
endpoint_url = "{url}"
region = "us-east-1"

[[entitlement]]
name = "standing-admin"
provider = "aws_iam_assume"
requester_identities = ["alice"]
default_duration = "6s"
max_duration = "1h"
reason_required = false
approval = {{ count = 1, from = ["approvers"] }}
[entitlement.target]
role_arn = "{standing}"
principals = {{ alice = "{alice}" }}
trust = "account_root"
endpoint_url = "{url}"

[[entitlement]]
name = "bastion-ssh"
provider = "aws_security_group"
requester_identities = ["alice"]
default_duration = "6s"
max_duration = "1h"
reason_required = false
approval = {{ count = 1, from = ["approvers"] }}
[entitlement.target]
group_id = "{group}"
port = 22
addresses = {{ alice = "{ALICE_IP}" }}
endpoint_url = "{url}"

[[entitlement]]
name = "prod-sso"
provider = "aws_identity_center"
requester_identities = ["alice", "bob"]
default_duration = "6s"
max_duration = "1h"
reason_required = false
approval = {{ count = 1, from = ["approvers"] }}
[entitlement.target]
instance_arn = "{instance}"
permission_set_arn = "{ps}"
account_id = "{SSO_ACCOUNT}"
users = {{ alice = "u-alice", bob = "u-bob" }}
endpoint_url = "{url}"

[[entitlement]]
name = "ghost-role"
provider = "aws_iam_assume"
requester_identities = ["alice"]
default_duration = "6s"
max_duration = "1h"
reason_required = false
approval = {{ count = 1, from = ["approvers"] }}
[entitlement.target]
role_arn = "{ghost}"
principals = {{ alice = "{alice}" }}
trust = "account_root"
endpoint_url = "{url}"
"#,
            role = arn("role", ROLE),
            ghost = arn("role", "does-not-exist"),
            standing = arn("role", STANDING_ROLE),
            alice = arn("user", "alice"),
            bob = arn("user", "bob"),
            group = self.group,
            instance = self.instance,
            ps = self.permission_set,
        )
    }

    /// Names of the user's inline policies.
    async fn user_policies(&self, user: &str) -> Vec<String> {
        self.iam
            .list_user_policies()
            .user_name(user)
            .send()
            .await
            .expect("list user policies")
            .policy_names()
            .to_vec()
    }

    /// The deny statements' people on the target role.
    async fn denied(&self) -> Vec<String> {
        match self
            .iam
            .get_role_policy()
            .role_name(ROLE)
            .policy_name(twokey_aws::iam_assume::REVOKED_POLICY)
            .send()
            .await
        {
            Ok(o) => twokey_aws::iam_assume::revoked_sessions(
                &twokey_aws::iam_assume::decode_policy(o.policy_document()),
            )
            .into_keys()
            .collect(),
            Err(_) => vec![],
        }
    }

    /// (cidr, description) of the group's ingress rules on port 22.
    async fn rules(&self) -> Vec<(String, String)> {
        let out = self
            .ec2
            .describe_security_groups()
            .group_ids(&self.group)
            .send()
            .await
            .expect("describe");
        let mut v = Vec::new();
        for sg in out.security_groups() {
            for p in sg.ip_permissions() {
                if p.from_port() != Some(22) {
                    continue;
                }
                for r in p.ip_ranges() {
                    v.push((
                        r.cidr_ip().unwrap_or("").to_string(),
                        r.description().unwrap_or("").to_string(),
                    ));
                }
            }
        }
        v.sort();
        v
    }

    async fn add_rule(&self, cidr: &str, description: &str) {
        self.ec2
            .authorize_security_group_ingress()
            .group_id(&self.group)
            .ip_permissions(
                aws_sdk_ec2::types::IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(22)
                    .to_port(22)
                    .ip_ranges(
                        aws_sdk_ec2::types::IpRange::builder()
                            .cidr_ip(cidr)
                            .description(description)
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("authorize by hand");
    }

    async fn delete_rule(&self, cidr: &str) {
        self.ec2
            .revoke_security_group_ingress()
            .group_id(&self.group)
            .ip_permissions(
                aws_sdk_ec2::types::IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(22)
                    .to_port(22)
                    .ip_ranges(aws_sdk_ec2::types::IpRange::builder().cidr_ip(cidr).build())
                    .build(),
            )
            .send()
            .await
            .expect("revoke by hand");
    }

    /// Identity Center users with an assignment of the permission set.
    async fn assigned(&self) -> Vec<String> {
        let o = self
            .sso
            .list_account_assignments()
            .instance_arn(&self.instance)
            .account_id(SSO_ACCOUNT)
            .permission_set_arn(&self.permission_set)
            .send()
            .await
            .expect("list assignments");
        let mut v: Vec<String> = o
            .account_assignments()
            .iter()
            .filter_map(|a| a.principal_id().map(str::to_string))
            .collect();
        v.sort();
        v
    }

    async fn assign_by_hand(&self, user: &str) {
        self.sso
            .create_account_assignment()
            .instance_arn(&self.instance)
            .target_id(SSO_ACCOUNT)
            .target_type(aws_sdk_ssoadmin::types::TargetType::AwsAccount)
            .permission_set_arn(&self.permission_set)
            .principal_type(aws_sdk_ssoadmin::types::PrincipalType::User)
            .principal_id(user)
            .send()
            .await
            .expect("assign by hand");
    }
}

/// The server, its env and the tokens.
struct Running {
    fx: Fixture,
    env: TestEnv,
    server: Server,
    alice: String,
    bob: String,
    alerts: Arc<Mutex<Vec<Value>>>,
}

/// moto + fixture + `twokey serve --config` with the reconciler every second
/// and a webhook alert sink; `None` when moto is missing outside CI.
async fn start(reconcile_interval: &str) -> Option<Running> {
    let moto = Moto::start(&[])?;
    let fx = Fixture::create(moto).await;
    let (hook, alerts) = receiver().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, fx.policy()).expect("write policy");
    let database = format!("sqlite://{}", dir.path().join("twokey.db").display());
    let config = dir.path().join("twokey.toml");
    std::fs::write(
        &config,
        format!(
            r#"listen = "127.0.0.1:0"
database = "{database}"
policy = "{}"
public_url = "http://127.0.0.1"

[reconciler]
interval = "{reconcile_interval}"
grace = "1s"

[activity]
settle = "1s"
skew = "2s"

[[alerts.sink]]
kind = "webhook"
url = "{hook}"
secret = "s3cret"
"#,
            policy.display()
        ),
    )
    .expect("write config");
    let env = TestEnv {
        dir,
        config,
        database,
    };
    let server = Server::start(&env, "aws", &["--backoff-ms", "200"]);
    let alice = env.token("alice");
    let bob = env.token("bob");
    Some(Running {
        fx,
        env,
        server,
        alice,
        bob,
        alerts,
    })
}

fn cli(r: &Running, token: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("TWOKEY_SERVER", &r.server.url)
        .env("TWOKEY_TOKEN", token)
        .env("NO_COLOR", "1")
        .output()
        .expect("run twokey")
}

fn ok(o: &Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// `twokey request ENT --for D` as alice, then `twokey approve` as bob.
fn request_and_approve(r: &Running, ent: &str, duration: &str) -> String {
    let out = ok(
        &cli(
            r,
            &r.alice,
            &[
                "--json", "request", ent, "--for", duration, "--reason", "INC-1",
            ],
        ),
        "twokey request",
    );
    let v: Value = serde_json::from_str(&out).expect("request json");
    assert_eq!(v["state"], "pending", "{v}");
    let id = v["id"].as_str().expect("id").to_string();
    // alice cannot approve her own request; bob can.
    let own = cli(r, &r.alice, &["approve", &id]);
    assert!(!own.status.success(), "self-approval must fail");
    ok(
        &cli(r, &r.bob, &["approve", &id, "--comment", "ok"]),
        "twokey approve",
    );
    id
}

fn show(r: &Running, id: &str) -> Value {
    let out = ok(&cli(r, &r.alice, &["--json", "show", id]), "twokey show");
    serde_json::from_str(&out).expect("show json")
}

async fn wait_state(r: &Running, id: &str, state: &str, secs: u64) -> Value {
    wait_until(
        &format!("{id} to be {state}"),
        Duration::from_secs(secs),
        || async {
            let v = show(r, id);
            if v["state"] == state {
                Ok(v)
            } else {
                Err(format!(
                    "state {} (last error {})",
                    v["state"], v["last_error"]
                ))
            }
        },
    )
    .await
}

fn kinds(v: &Value) -> Vec<String> {
    support::kinds(v)
}

/// The ledger as `twokey audit show` prints it (one line per entry).
fn ledger(r: &Running) -> String {
    ok(
        &cli(r, &r.bob, &["audit", "show", "--limit", "100000"]),
        "twokey audit show",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_provider_request_approve_access_expire_gone() {
    let Some(r) = start("1h").await else { return };

    // aws_iam_assume: an inline policy on alice allowing AssumeRole on the role.
    let iam_id = request_and_approve(&r, "prod-admin", "6s");
    // aws_security_group: an ingress rule from alice's address, owned by the request.
    let sg_id = request_and_approve(&r, "bastion-ssh", "6s");
    // aws_identity_center: an assignment of the permission set to alice's user.
    let sso_id = request_and_approve(&r, "prod-sso", "6s");

    for id in [&iam_id, &sg_id, &sso_id] {
        let v = wait_state(&r, id, "active", 30).await;
        assert!(kinds(&v).contains(&"grant.activated".to_string()), "{v}");
    }
    let policy_name = format!("twokey-{iam_id}");
    assert_eq!(r.fx.user_policies("alice").await, vec![policy_name.clone()]);
    assert!(r.fx.user_policies("bob").await.is_empty());
    let doc =
        r.fx.iam
            .get_user_policy()
            .user_name("alice")
            .policy_name(&policy_name)
            .send()
            .await
            .expect("grant policy");
    let doc: Value = serde_json::from_str(&twokey_aws::iam_assume::decode_policy(
        doc.policy_document(),
    ))
    .expect("policy json");
    assert_eq!(doc["Statement"][0]["Resource"], arn("role", ROLE));
    assert_eq!(
        doc["Statement"][0]["Condition"]["StringEquals"]["sts:SourceIdentity"],
        "alice"
    );
    assert!(doc["Statement"][0]["Condition"]["DateLessThan"]["aws:CurrentTime"].is_string());
    assert_eq!(
        r.fx.rules().await,
        vec![(ALICE_IP.to_string(), format!("twokey:{sg_id}"))]
    );
    assert_eq!(r.fx.assigned().await, vec!["u-alice".to_string()]);

    // The short duration runs out: the scheduler revokes, the provider
    // confirms, the requests show expired, the access is gone at moto.
    for id in [&iam_id, &sg_id, &sso_id] {
        let v = wait_state(&r, id, "expired", 40).await;
        let k = kinds(&v);
        assert!(k.contains(&"grant.expired".to_string()), "{v}");
    }
    assert!(r.fx.user_policies("alice").await.is_empty());
    // Sessions alice already holds are cut: the role denies her sessions
    // issued before the revoke.
    assert_eq!(r.fx.denied().await, vec!["alice".to_string()]);
    assert!(r.fx.rules().await.is_empty());
    assert!(r.fx.assigned().await.is_empty());
    drop(r.env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciler_removes_access_added_by_hand_alerts_and_records_it() {
    let Some(r) = start("1s").await else { return };
    // A live grant the reconciler must leave alone.
    let live = request_and_approve(&r, "bastion-ssh", "10m");
    wait_state(&r, &live, "active", 30).await;
    let iam_live = request_and_approve(&r, "prod-admin", "10m");
    wait_state(&r, &iam_live, "active", 30).await;

    // Access added by hand under twokey names: a rule from an address twokey
    // never opened, a rule from a foreign address naming alice's live request
    // (a forged owner), an inline policy on bob named like a grant, and an
    // Identity Center assignment nobody requested.
    r.fx.add_rule("198.51.100.9/32", "twokey:req-byhand").await;
    r.fx.add_rule("198.51.100.10/32", &format!("twokey:{live}"))
        .await;
    let forged = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": arn("role", ROLE)}]
    });
    r.fx.iam
        .put_user_policy()
        .user_name("bob")
        .policy_name("twokey-req-forged")
        .policy_document(forged.to_string())
        .send()
        .await
        .expect("put forged policy");
    r.fx.assign_by_hand("u-bob").await;

    // The role whose trust names alice directly is standing access: alerted
    // by the reconciler (the posture of twokey's own wiring); the
    // account-root role is not.
    let standing = wait_until(
        "a reconcile_standing_access alert",
        Duration::from_secs(30),
        || async {
            let got = r.alerts.lock().expect("lock").clone();
            let found: Vec<Value> = got
                .into_iter()
                .filter(|a| a["kind"] == "reconcile_standing_access")
                .collect();
            if found.is_empty() {
                Err(format!("{:?}", alert_kinds(&r.alerts)))
            } else {
                Ok(found)
            }
        },
    )
    .await;
    let text = Value::from(standing).to_string();
    assert!(
        text.contains(STANDING_ROLE)
            && text.contains("user/alice")
            && !text.contains("role/prod-admin"),
        "{text}"
    );

    wait_until(
        "the reconciler to remove the hand-made access",
        Duration::from_secs(30),
        || async {
            let rules = r.fx.rules().await;
            let bob = r.fx.user_policies("bob").await;
            let assigned = r.fx.assigned().await;
            if rules.len() == 1 && bob.is_empty() && assigned.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "rules {rules:?}, bob's policies {bob:?}, assigned {assigned:?}"
                ))
            }
        },
    )
    .await;
    // The live grants' access is untouched, pass after pass.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        r.fx.rules().await,
        vec![(ALICE_IP.to_string(), format!("twokey:{live}"))]
    );
    assert_eq!(
        r.fx.user_policies("alice").await,
        vec![format!("twokey-{iam_live}")]
    );
    assert_eq!(show(&r, &live)["state"], "active");
    // bob's forged policy was removed and his sessions cut; alice's were not.
    assert_eq!(r.fx.denied().await, vec!["bob".to_string()]);

    // Every finding is in the ledger: found, then removed.
    let l = ledger(&r);
    for resource in [
        "198.51.100.9/32".to_string(),
        "198.51.100.10/32".to_string(),
        format!("{}#twokey-req-forged", arn("user", "bob")),
        "u-bob".to_string(),
    ] {
        for kind in ["reconcile.uncovered", "reconcile.removed"] {
            assert!(
                l.lines()
                    .any(|line| line.contains(kind) && line.contains(&resource)),
                "no {kind} entry for {resource} in the ledger:\n{l}"
            );
        }
    }
    // The forged rule names alice's request, so her request's timeline shows it.
    let v = show(&r, &live);
    assert!(
        kinds(&v).contains(&"reconcile.uncovered".to_string()),
        "{v}"
    );
    // And alerts went out through the webhook.
    wait_until(
        "uncovered-access alerts",
        Duration::from_secs(20),
        || async {
            let n = alert_kinds(&r.alerts)
                .iter()
                .filter(|k| *k == "reconcile_uncovered")
                .count();
            if n >= 4 {
                Ok(())
            } else {
                Err(format!(
                    "{n} reconcile_uncovered alerts: {:?}",
                    alert_kinds(&r.alerts)
                ))
            }
        },
    )
    .await;

    // An active grant whose access disappears at the target is reported.
    r.fx.delete_rule(ALICE_IP).await;
    wait_until(
        "reconcile.missing on the request",
        Duration::from_secs(30),
        || async {
            let v = show(&r, &live);
            if kinds(&v).contains(&"reconcile.missing".to_string()) {
                Ok(())
            } else {
                Err(format!("{:?}", kinds(&v)))
            }
        },
    )
    .await;
    wait_until("a missing-grant alert", Duration::from_secs(20), || async {
        if alert_kinds(&r.alerts)
            .iter()
            .any(|k| k == "reconcile_missing")
        {
            Ok(())
        } else {
            Err(format!("{:?}", alert_kinds(&r.alerts)))
        }
    })
    .await;
    // Reported once, not at every pass.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let v = show(&r, &live);
    assert_eq!(
        kinds(&v)
            .iter()
            .filter(|k| *k == "reconcile.missing")
            .count(),
        1,
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_errors_show_on_the_request_and_in_alerts() {
    let Some(r) = start("1h").await else { return };
    let id = request_and_approve(&r, "ghost-role", "6s");
    let v = wait_until(
        "the AWS error on the request",
        Duration::from_secs(30),
        || async {
            let v = show(&r, &id);
            match v["last_error"].as_str() {
                Some(e) if e.contains("does not exist") => Ok(v),
                _ => Err(format!("{v}")),
            }
        },
    )
    .await;
    let e = v["last_error"].as_str().unwrap_or("");
    assert!(
        e.contains("GetRole") && e.contains("does-not-exist") && e.contains("NoSuchEntity"),
        "{e}"
    );
    // Never active: the provider did not grant it.
    assert_eq!(v["state"], "approved");
    assert!(r.fx.user_policies("alice").await.is_empty());
    // The human output shows it too.
    let human = ok(&cli(&r, &r.alice, &["show", &id]), "twokey show");
    assert!(human.contains("does not exist"), "{human}");
    // After repeated failures an alert carries the message.
    wait_until(
        "a grant_apply_failed alert",
        Duration::from_secs(40),
        || async {
            let got = r.alerts.lock().expect("lock").clone();
            match got.iter().find(|a| a["kind"] == "grant_apply_failed") {
                Some(a) if a.to_string().contains("does not exist") => Ok(()),
                _ => Err(format!("{:?}", alert_kinds(&r.alerts))),
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trust_that_admits_the_person_without_a_grant_is_refused_and_alerted() {
    let Some(r) = start("1h").await else { return };
    let id = request_and_approve(&r, "standing-admin", "6s");
    let v = wait_until(
        "the standing-trust error on the request",
        Duration::from_secs(30),
        || async {
            let v = show(&r, &id);
            match v["last_error"].as_str() {
                Some(e) if e.contains("standing access") => Ok(v),
                _ => Err(format!("{v}")),
            }
        },
    )
    .await;
    let e = v["last_error"].as_str().unwrap_or("");
    assert!(
        e.contains(STANDING_ROLE) && e.contains(&arn("user", "alice")) && e.contains(":root"),
        "{e}"
    );
    // Never active, and no grant policy was written.
    assert_eq!(v["state"], "approved");
    assert!(r.fx.user_policies("alice").await.is_empty());
    // A configuration error is alerted at the first failure, not the third.
    wait_until(
        "a grant_apply_failed alert",
        Duration::from_secs(10),
        || async {
            let got = r.alerts.lock().expect("lock").clone();
            match got.iter().find(|a| a["kind"] == "grant_apply_failed") {
                Some(a) if a.to_string().contains("standing access") => Ok(a.clone()),
                _ => Err(format!("{:?}", alert_kinds(&r.alerts))),
            }
        },
    )
    .await;
}

#[test]
fn policy_check_knows_the_aws_providers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = r#"[[identity]]
name = "alice"
groups = ["eng"]
[[identity]]
name = "bob"
groups = ["ops"]

[[entitlement]]
name = "bastion"
provider = "aws_security_group"
requester_groups = ["eng"]
max_duration = "1h"
approval = { count = 1, from = ["ops"] }
[entitlement.target]
group_id = "sg-0123456789abcdef0"
port = 22
addresses = { alice = "ADDRESS" }

[[entitlement]]
name = "admin"
provider = "aws_iam_assume"
requester_groups = ["eng"]
max_duration = "1h"
approval = { count = 1, from = ["ops"] }
[entitlement.target]
role_arn = "arn:aws:iam::123456789012:role/prod-admin"
principals = { alice = "arn:aws:iam::123456789012:user/alice" }
trust = "account_root"

[[entitlement]]
name = "sso"
provider = "aws_identity_center"
requester_groups = ["eng"]
max_duration = "1h"
approval = { count = 1, from = ["ops"] }
[entitlement.target]
instance_arn = "arn:aws:sso:::instance/ssoins-1234567890abcdef"
permission_set_arn = "arn:aws:sso:::permissionSet/ssoins-1234567890abcdef/ps-0123456789abcdef"
account_id = "222233334444"
users = { alice = "u-alice" }
"#;
    let check = |name: &str, text: &str| {
        let f = dir.path().join(name);
        std::fs::write(&f, text).expect("write");
        let out = Command::new(BIN)
            .args(["policy", "check"])
            .arg(&f)
            .output()
            .expect("run");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (good, err) = check("ok.toml", &base.replace("ADDRESS", "203.0.113.7/32"));
    assert!(good, "{err}");
    // A wider range than one host is refused, naming the entitlement and person.
    let (good, err) = check("wide.toml", &base.replace("ADDRESS", "0.0.0.0/0"));
    assert!(
        !good && err.contains("bastion") && err.contains("alice") && err.contains("single host"),
        "{err}"
    );
    // A same-account target without the account-root trust is standing
    // access: refused with the file, the line and the fix.
    let (good, err) = check(
        "standing.toml",
        &base
            .replace("ADDRESS", "203.0.113.7/32")
            .replace("trust = \"account_root\"\n", ""),
    );
    // The target table: its header line or its first key's.
    let header = base
        .lines()
        .position(|l| l.starts_with("role_arn = \"arn:aws:iam::123456789012:role/prod-admin"))
        .expect("line");
    let at_line = |n: usize| err.contains(&format!("standing.toml:{n}:"));
    assert!(
        !good
            && (at_line(header) || at_line(header + 1))
            && err.contains("\"admin\"")
            && err.contains("standing access")
            && err.contains("trust = \"account_root\""),
        "{err}"
    );
    // A misspelt setting is an error, not ignored.
    let (good, err) = check(
        "typo.toml",
        &base
            .replace("ADDRESS", "203.0.113.7")
            .replace("role_arn =", "rolearn ="),
    );
    assert!(
        !good && err.contains("admin") && err.contains("unknown setting `rolearn`"),
        "{err}"
    );
    // endpoint_url must be a URL.
    let (good, err) = check(
        "endpoint.toml",
        &base
            .replace("ADDRESS", "203.0.113.7")
            .replace("users = {", "endpoint_url = \"localhost:5000\"\nusers = {"),
    );
    assert!(!good && err.contains("endpoint_url"), "{err}");
    // A bad [reconciler] interval in the server config is refused at start.
    let cfg = dir.path().join("twokey.toml");
    std::fs::write(
        &cfg,
        format!(
            "database = \"sqlite://{}\"\npolicy = \"{}\"\n[reconciler]\ninterval = \"soon\"\n",
            dir.path().join("x.db").display(),
            dir.path().join("ok.toml").display()
        ),
    )
    .expect("write config");
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("[reconciler] interval"),
        "{err}"
    );
}

/// CloudTrail records from the shared real-shaped events, each rewritten to
/// a call in a session of `role` by `source_identity` at `at_ms`.
fn trail_records(n: usize, role: &str, source_identity: &str, at_ms: i64, tag: &str) -> Vec<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/cloudtrail/panther-test-events.ndjson");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (../shared beside the repo)", path.display()));
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["eventSource"].is_string() && v["eventName"].is_string())
        .take(n)
        .enumerate()
        .map(|(i, mut v)| {
            v["userIdentity"] = serde_json::json!({
                "type": "AssumedRole",
                "principalId": format!("AROAEXAMPLE:{source_identity}"),
                "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{source_identity}-session"),
                "accountId": ACCOUNT,
                "sessionContext": {
                    "sessionIssuer": {"type": "Role", "arn": arn("role", role), "accountId": ACCOUNT},
                    "sourceIdentity": source_identity,
                    "attributes": {"mfaAuthenticated": "false"}
                }
            });
            v["eventTime"] = Value::String(twokey_core::time::format_time(at_ms + i as i64 * 100));
            v["eventID"] = Value::String(format!("{tag}-{i}-0b1c2d3e"));
            v
        })
        .collect()
}

fn write_trail(dir: &std::path::Path, name: &str, records: &[Value]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::json!({ "Records": records }).to_string()).expect("write trail");
    p
}

/// One ledger entry through the API, as an admin reads it.
async fn ledger_entry(r: &Running, index: u64) -> Value {
    let v: Value = reqwest::Client::new()
        .get(format!("{}/v1/ledger?from={index}&limit=1", r.server.url))
        .bearer_auth(&r.bob)
        .send()
        .await
        .expect("GET /v1/ledger")
        .json()
        .await
        .expect("ledger json");
    v.as_array()
        .and_then(|a| a.first())
        .cloned()
        .expect("the entry")
}

fn activity(r: &Running, token: &str, id: &str) -> Value {
    let out = ok(
        &cli(r, token, &["--json", "show", id, "--activity"]),
        "twokey show --activity",
    );
    serde_json::from_str(&out).expect("activity json")
}

/// What each grant did, end to end: an `aws_iam_assume` and an
/// `aws_security_group` grant at moto; CloudTrail records (the shared
/// real-shaped events, put in the grant's role session) and VPC flow log
/// records go through `twokey guard activity --submit`; only the grant's
/// own calls and flows are filed, a second submission files nothing twice,
/// a non-admin cannot file; once the grants ended the digest is in the
/// ledger and its hash is the test's own over the records; a record that
/// arrives late gives a second digest that supersedes the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grant_activity_from_cloudtrail_and_flow_logs_is_attributed_and_digested() {
    use sha2::Digest as _;
    let Some(r) = start("1h").await else { return };
    let iam_id = request_and_approve(&r, "prod-admin", "8s");
    let sg_id = request_and_approve(&r, "bastion-ssh", "8s");
    let iam = wait_state(&r, &iam_id, "active", 30).await;
    let sg = wait_state(&r, &sg_id, "active", 30).await;
    let from = iam["activated_at"].as_i64().expect("activated_at");
    let sg_from = sg["activated_at"].as_i64().expect("activated_at");
    let dir = r.env.path();

    // Alice's calls in her session of the role, during the grant.
    let mine = trail_records(5, ROLE, "alice", from + 200, "alice");
    // Not hers: mallory's session of the same role, alice in another
    // role, alice an hour before the grant.
    let mut others = trail_records(2, ROLE, "mallory", from + 200, "mallory");
    others.extend(trail_records(
        2,
        STANDING_ROLE,
        "alice",
        from + 200,
        "other-role",
    ));
    others.extend(trail_records(2, ROLE, "alice", from - 3_600_000, "before"));
    let mut all = mine.clone();
    all.extend(others);
    let trail = write_trail(dir, "trail.json", &all);
    // Flows: alice's address to port 22 during the SG grant; another
    // address; another port.
    let start_s = (sg_from + 1_000) / 1000;
    let flows = dir.join("flows.log");
    std::fs::write(
        &flows,
        format!(
            "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n\
             2 {ACCOUNT} eni-0bastion 203.0.113.7 10.0.0.5 50123 22 6 40 8120 {start_s} {end} ACCEPT OK\n\
             2 {ACCOUNT} eni-0bastion 198.51.100.9 10.0.0.5 50124 22 6 3 180 {start_s} {end} ACCEPT OK\n\
             2 {ACCOUNT} eni-0bastion 203.0.113.7 10.0.0.5 50125 5432 6 3 180 {start_s} {end} ACCEPT OK\n",
            end = start_s + 1
        ),
    )
    .expect("write flows");

    let trail_s = trail.to_str().expect("utf-8 path");
    let flows_s = flows.to_str().expect("utf-8 path");
    // Only an admin files activity (alice is the requester, not an admin).
    let refused = cli(&r, &r.alice, &["guard", "activity", trail_s, "--submit"]);
    assert!(!refused.status.success(), "a non-admin filed activity");
    let o = cli(
        &r,
        &r.bob,
        &[
            "guard",
            "activity",
            trail_s,
            "--flow-log",
            flows_s,
            "--submit",
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{err}");
    assert!(err.contains("filed 6, already filed 0"), "{err}");
    // Again: nothing twice.
    let o = cli(
        &r,
        &r.bob,
        &[
            "guard",
            "activity",
            trail_s,
            "--flow-log",
            flows_s,
            "--submit",
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.contains("filed 0, already filed 6"), "{err}");

    // The requester reads what her grant did: exactly her five calls.
    let a = activity(&r, &r.alice, &iam_id);
    assert_eq!(a["events"], 5, "{a}");
    let ids: Vec<&str> = a["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|x| x["event_id"].as_str().expect("event_id"))
        .collect();
    let want: Vec<String> = mine
        .iter()
        .map(|v| v["eventID"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(ids, want);
    let first = &a["records"][0];
    assert_eq!(
        first["action"],
        format!(
            "{}:{}",
            mine[0]["eventSource"].as_str().expect("src"),
            mine[0]["eventName"].as_str().expect("name")
        )
    );
    assert_eq!(
        first["principal"],
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/alice-session")
    );
    let s = activity(&r, &r.alice, &sg_id);
    assert_eq!(s["events"], 1, "{s}");
    assert_eq!(s["records"][0]["action"], "tcp/22");
    assert_eq!(s["records"][0]["source_ip"], "203.0.113.7");
    // The text view names the calls.
    let text = ok(
        &cli(&r, &r.alice, &["show", &iam_id, "--activity"]),
        "show --activity",
    );
    assert!(text.contains("activity: 5 records"), "{text}");

    // Ended and settled: the digest is in the ledger, and anyone holding
    // the records can recompute its hash.
    wait_state(&r, &iam_id, "expired", 40).await;
    let digested = wait_until("the activity digest", Duration::from_secs(30), || async {
        let a = activity(&r, &r.alice, &iam_id);
        if a["digest_index"].is_u64() {
            Ok(a)
        } else {
            Err(format!("no digest yet: {a}"))
        }
    })
    .await;
    let index = digested["digest_index"].as_u64().expect("index");
    let entry = ledger_entry(&r, index).await;
    assert_eq!(entry["kind"], "grant.activity", "{entry}");
    assert_eq!(entry["subject"], iam_id.as_str());
    assert_eq!(entry["data"]["events"], 5);
    assert_eq!(entry["data"]["revision"], 1);
    let mut lines: Vec<String> = want.iter().map(|i| format!("cloudtrail:{i}")).collect();
    lines.sort();
    let mut h = sha2::Sha256::new();
    for l in &lines {
        h.update(l.as_bytes());
        h.update(b"\n");
    }
    assert_eq!(entry["data"]["records_sha256"], hex::encode(h.finalize()));

    // A record delivered late (inside the grant's window): a new digest.
    let late = trail_records(1, ROLE, "alice", from + 3_000, "late");
    let late_trail = write_trail(dir, "late.json", &late);
    ok(
        &cli(
            &r,
            &r.bob,
            &[
                "guard",
                "activity",
                late_trail.to_str().expect("path"),
                "--submit",
            ],
        ),
        "late activity",
    );
    let again = wait_until("the second digest", Duration::from_secs(30), || async {
        let a = activity(&r, &r.alice, &iam_id);
        if a["revision"] == 2 {
            Ok(a)
        } else {
            Err(format!("revision {}", a["revision"]))
        }
    })
    .await;
    assert_eq!(again["events"], 6);
    let second = again["digest_index"].as_u64().expect("index");
    let log = ledger(&r);
    assert!(log.matches("grant.activity").count() >= 2, "{log}");
    let e2 = ledger_entry(&r, second).await;
    assert_eq!(e2["data"]["supersedes"], index);
    drop(r.env);
}

#[test]
fn the_guard_names_postgres_login_roles_as_the_provider_does() {
    for id in ["r-01HX", "REQ_9.z", &"x".repeat(80), "ümlaut-id"] {
        assert_eq!(
            twokey_guard::activity::postgres_login_role(id),
            twokey_providers::postgres::PostgresProvider::login_role_name(id),
            "{id}"
        );
    }
}
