//! `aws_security_group` against a real moto server.

use crate::common;

use common::{spec, Moto};
use twokey_aws::security_group::SecurityGroupProvider;
use twokey_aws::{reconcile, Active, Reconcile};
use twokey_providers::{Presence, Provider};

const ALICE: &str = "203.0.113.7/32";
const BOB: &str = "2001:db8::7/128";

async fn ec2(m: &Moto) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(&m.connection().load().await)
}

async fn make_group(c: &aws_sdk_ec2::Client) -> String {
    let g = c
        .create_security_group()
        .group_name("bastion")
        .description("bastion")
        .send()
        .await
        .expect("create group");
    g.group_id().expect("group id").to_string()
}

fn provider(m: &Moto, group: &str) -> SecurityGroupProvider {
    let t: toml::Table = toml::from_str(&format!(
        r#"group_id = "{group}"
port = 22
endpoint_url = "{}"
region = "us-east-1"
addresses = {{ alice = "{ALICE}", bob = "{BOB}" }}"#,
        m.url()
    ))
    .expect("toml");
    SecurityGroupProvider::from_target(&t).expect("target")
}

/// (cidr, description) of every ingress rule, sorted.
async fn rules(c: &aws_sdk_ec2::Client, group: &str) -> Vec<(i32, String, String)> {
    let out = c
        .describe_security_groups()
        .group_ids(group)
        .send()
        .await
        .expect("describe");
    let mut v = Vec::new();
    for sg in out.security_groups() {
        for p in sg.ip_permissions() {
            let port = p.from_port().unwrap_or(-1);
            for r in p.ip_ranges() {
                v.push((
                    port,
                    r.cidr_ip().unwrap_or("").to_string(),
                    r.description().unwrap_or("").to_string(),
                ));
            }
            for r in p.ipv6_ranges() {
                v.push((
                    port,
                    r.cidr_ipv6().unwrap_or("").to_string(),
                    r.description().unwrap_or("").to_string(),
                ));
            }
        }
    }
    v.sort();
    v
}

async fn add_rule(c: &aws_sdk_ec2::Client, group: &str, port: i32, cidr: &str, desc: &str) {
    c.authorize_security_group_ingress()
        .group_id(group)
        .ip_permissions(
            aws_sdk_ec2::types::IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(port)
                .to_port(port)
                .ip_ranges(
                    aws_sdk_ec2::types::IpRange::builder()
                        .cidr_ip(cidr)
                        .description(desc)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("add rule");
}

#[tokio::test]
async fn grant_check_revoke_and_idempotence() {
    let Some(m) = Moto::start(&[]) else { return };
    let c = ec2(&m).await;
    let g = make_group(&c).await;
    // Rules twokey must never touch.
    add_rule(&c, &g, 22, "198.51.100.1/32", "office").await;
    add_rule(&c, &g, 443, ALICE, "web").await;
    let before = rules(&c, &g).await;
    let p = provider(&m, &g);
    let a = spec("r1", "alice", &[]);

    assert_eq!(p.check(&a).await.expect("check"), Presence::Absent);
    let out = p.grant(&a).await.expect("grant");
    assert!(out.detail.contains(ALICE), "{}", out.detail);
    assert_eq!(p.check(&a).await.expect("check"), Presence::Present);
    assert!(rules(&c, &g)
        .await
        .contains(&(22, ALICE.into(), "twokey:r1".into())));
    p.grant(&a).await.expect("grant again");
    assert_eq!(rules(&c, &g).await.len(), before.len() + 1);

    // IPv6 single host.
    let b = spec("r2", "bob", &[]);
    p.grant(&b).await.expect("grant bob");
    assert_eq!(p.check(&b).await.expect("check"), Presence::Present);

    p.revoke(&a).await.expect("revoke");
    assert_eq!(p.check(&a).await.expect("check"), Presence::Absent);
    p.revoke(&a).await.expect("revoke again");
    p.revoke(&b).await.expect("revoke bob");
    assert_eq!(rules(&c, &g).await, before, "only twokey's rules went");

    // Granting again after a revoke works.
    p.grant(&a).await.expect("re-grant");
    assert_eq!(p.check(&a).await.expect("check"), Presence::Present);
}

#[tokio::test]
async fn overlapping_grants_share_one_rule() {
    let Some(m) = Moto::start(&[]) else { return };
    let c = ec2(&m).await;
    let g = make_group(&c).await;
    let p = provider(&m, &g);
    let r1 = spec("r1", "alice", &[]);
    let r2 = spec("r2", "alice", &["r1"]);
    p.grant(&r1).await.expect("grant r1");
    p.grant(&r2).await.expect("grant r2");
    assert_eq!(
        rules(&c, &g).await,
        vec![(22, ALICE.into(), "twokey:r1 twokey:r2".into())]
    );
    // r1 ends while r2 is active: r2 keeps its access.
    p.revoke(&spec("r1", "alice", &["r2"]))
        .await
        .expect("revoke r1");
    assert_eq!(p.check(&r1).await.expect("check"), Presence::Absent);
    assert_eq!(p.check(&r2).await.expect("check"), Presence::Present);
    assert_eq!(
        rules(&c, &g).await,
        vec![(22, ALICE.into(), "twokey:r2".into())]
    );
    p.revoke(&spec("r2", "alice", &[]))
        .await
        .expect("revoke r2");
    assert!(rules(&c, &g).await.is_empty());

    // A token lost to a concurrent grant: the broker's overlapping list still
    // keeps the rule for the other grant.
    p.grant(&spec("r3", "alice", &[])).await.expect("grant r3");
    p.revoke(&spec("r3", "alice", &["r4"]))
        .await
        .expect("revoke r3");
    assert_eq!(
        rules(&c, &g).await,
        vec![(22, ALICE.into(), "twokey:r4".into())]
    );
}

#[tokio::test]
async fn unmanaged_rule_for_the_same_address_is_refused() {
    let Some(m) = Moto::start(&[]) else { return };
    let c = ec2(&m).await;
    let g = make_group(&c).await;
    add_rule(&c, &g, 22, ALICE, "alice home, by hand").await;
    let p = provider(&m, &g);
    let e = p
        .grant(&spec("r1", "alice", &[]))
        .await
        .expect_err("refused");
    assert!(!e.retryable);
    assert!(
        e.message.contains("does not manage") && e.message.contains(ALICE),
        "{}",
        e.message
    );
    p.revoke(&spec("r1", "alice", &[])).await.expect("revoke");
    assert_eq!(rules(&c, &g).await.len(), 1, "the hand-made rule stays");
}

#[tokio::test]
async fn missing_group_and_unknown_person_are_clear_errors() {
    let Some(m) = Moto::start(&[]) else { return };
    let p = provider(&m, "sg-0000000000000dead");
    let e = p
        .grant(&spec("r1", "alice", &[]))
        .await
        .expect_err("no group");
    assert!(!e.retryable, "{}", e.message);
    assert!(
        e.message.contains("sg-0000000000000dead") && e.message.contains("does not exist"),
        "{}",
        e.message
    );
    let e = p
        .grant(&spec("r1", "mallory", &[]))
        .await
        .expect_err("no address");
    assert!(e.message.contains("mallory"), "{}", e.message);
}

#[tokio::test]
async fn reconciler_removes_hand_added_access() {
    let Some(m) = Moto::start(&[]) else { return };
    let c = ec2(&m).await;
    let g = make_group(&c).await;
    let p = provider(&m, &g);
    p.grant(&spec("r1", "alice", &[])).await.expect("grant");
    // Someone adds access by hand under a twokey name (or a revoke failed).
    add_rule(&c, &g, 22, "192.0.2.9/32", "twokey:ghost").await;
    add_rule(&c, &g, 22, "192.0.2.10/32", "not twokey's").await;
    let present = p.list_present().await.expect("list");
    assert_eq!(present.len(), 2, "{present:?}");
    let active = [
        Active {
            request_id: "r1".into(),
            requester: "alice".into(),
        },
        Active {
            request_id: "r5".into(),
            requester: "bob".into(),
        },
    ];
    let r = reconcile(&present, &active);
    assert_eq!(r.missing, vec!["r5".to_string()]);
    assert_eq!(r.to_remove.len(), 1);
    assert_eq!(r.to_remove[0].request_ids, vec!["ghost".to_string()]);
    for f in &r.to_remove {
        p.remove(f).await.expect("remove");
    }
    assert_eq!(
        rules(&c, &g).await,
        vec![
            (22, "192.0.2.10/32".into(), "not twokey's".into()),
            (22, ALICE.into(), "twokey:r1".into())
        ]
    );
    assert!(
        reconcile(&p.list_present().await.expect("list"), &active[..1])
            .to_remove
            .is_empty()
    );
}

#[tokio::test]
async fn revoke_fails_while_aws_is_down_and_succeeds_after() {
    let Some(mut m) = Moto::start(&[]) else {
        return;
    };
    m.seed(7).await;
    let c = ec2(&m).await;
    let g = make_group(&c).await;
    let p = provider(&m, &g);
    let a = spec("r1", "alice", &[]);
    p.grant(&a).await.expect("grant");

    m.stop();
    let e = p.revoke(&a).await.expect_err("moto is down");
    assert!(
        e.retryable,
        "unreachable AWS must be retried: {}",
        e.message
    );

    // moto keeps no state across restarts: re-create what AWS would still
    // hold (same group id through the same seed, and the granted rule).
    m.restart();
    m.seed(7).await;
    let c = ec2(&m).await;
    assert_eq!(make_group(&c).await, g, "seeded moto gives the same id");
    add_rule(&c, &g, 22, ALICE, "twokey:r1").await;
    assert_eq!(p.check(&a).await.expect("check"), Presence::Present);

    p.revoke(&a).await.expect("retried revoke");
    assert_eq!(p.check(&a).await.expect("check"), Presence::Absent);
    assert!(rules(&c, &g).await.is_empty());
}
