//! `aws_identity_center` against a real moto server.

use crate::common;

use common::{spec, Moto};
use twokey_aws::identity_center::IdentityCenterProvider;
use twokey_aws::{reconcile, Active, Reconcile};
use twokey_providers::{Presence, Provider};

const ACCOUNT: &str = "111122223333";

async fn sso(m: &Moto) -> aws_sdk_ssoadmin::Client {
    aws_sdk_ssoadmin::Client::new(&m.connection().load().await)
}

/// The instance and a fresh permission set.
async fn setup(c: &aws_sdk_ssoadmin::Client) -> (String, String) {
    let inst = c.list_instances().send().await.expect("instances");
    let instance = inst.instances()[0]
        .instance_arn()
        .expect("instance arn")
        .to_string();
    // moto answers CreatePermissionSet with a numeric SessionDuration the SDK
    // cannot parse (AWS sends an ISO 8601 duration); the set is created all
    // the same, so read its ARN from the list.
    let _ = c
        .create_permission_set()
        .instance_arn(&instance)
        .name("ProdAdmin")
        .send()
        .await;
    let list = c
        .list_permission_sets()
        .instance_arn(&instance)
        .send()
        .await
        .expect("permission sets");
    let ps = list
        .permission_sets()
        .first()
        .expect("permission set arn")
        .to_string();
    (instance, ps)
}

fn provider(m: &Moto, instance: &str, ps: &str) -> IdentityCenterProvider {
    let t: toml::Table = toml::from_str(&format!(
        r#"instance_arn = "{instance}"
permission_set_arn = "{ps}"
account_id = "{ACCOUNT}"
users = {{ alice = "u-alice", bob = "u-bob" }}
endpoint_url = "{}""#,
        m.url()
    ))
    .expect("toml");
    IdentityCenterProvider::from_target(&t).expect("target")
}

async fn assigned(c: &aws_sdk_ssoadmin::Client, instance: &str, ps: &str) -> Vec<String> {
    let o = c
        .list_account_assignments()
        .instance_arn(instance)
        .account_id(ACCOUNT)
        .permission_set_arn(ps)
        .send()
        .await
        .expect("list");
    let mut v: Vec<String> = o
        .account_assignments()
        .iter()
        .filter_map(|a| a.principal_id().map(str::to_string))
        .collect();
    v.sort();
    v
}

async fn assign_by_hand(c: &aws_sdk_ssoadmin::Client, instance: &str, ps: &str, user: &str) {
    c.create_account_assignment()
        .instance_arn(instance)
        .target_id(ACCOUNT)
        .target_type(aws_sdk_ssoadmin::types::TargetType::AwsAccount)
        .permission_set_arn(ps)
        .principal_type(aws_sdk_ssoadmin::types::PrincipalType::User)
        .principal_id(user)
        .send()
        .await
        .expect("assign");
}

#[tokio::test]
async fn grant_check_revoke_and_idempotence() {
    let Some(m) = Moto::start(&[]) else { return };
    let c = sso(&m).await;
    let (i, ps) = setup(&c).await;
    let p = provider(&m, &i, &ps);
    let a = spec("r1", "alice", &[]);
    assert_eq!(p.check(&a).await.expect("check"), Presence::Absent);
    p.grant(&a).await.expect("grant");
    assert_eq!(p.check(&a).await.expect("check"), Presence::Present);
    p.grant(&a).await.expect("grant again");
    assert_eq!(
        assigned(&c, &i, &ps).await,
        vec!["u-alice"],
        "one assignment, not two"
    );
    p.revoke(&a).await.expect("revoke");
    assert_eq!(p.check(&a).await.expect("check"), Presence::Absent);
    p.revoke(&a).await.expect("revoke again");
    p.grant(&a).await.expect("re-grant");
    assert_eq!(p.check(&a).await.expect("check"), Presence::Present);
}

/// AWS TEAM issue #279: one grant's end must not remove an overlapping grant's access.
#[tokio::test]
async fn overlapping_grant_keeps_the_assignment() {
    let Some(m) = Moto::start(&[]) else { return };
    let c = sso(&m).await;
    let (i, ps) = setup(&c).await;
    let p = provider(&m, &i, &ps);
    p.grant(&spec("r1", "alice", &[])).await.expect("grant r1");
    p.grant(&spec("r2", "alice", &["r1"]))
        .await
        .expect("grant r2");
    p.revoke(&spec("r1", "alice", &["r2"]))
        .await
        .expect("revoke r1");
    assert_eq!(
        p.check(&spec("r2", "alice", &[])).await.expect("check"),
        Presence::Present
    );
    p.revoke(&spec("r2", "alice", &[]))
        .await
        .expect("revoke r2");
    assert!(assigned(&c, &i, &ps).await.is_empty());
}

#[tokio::test]
async fn reconciler_removes_hand_added_assignment() {
    let Some(m) = Moto::start(&[]) else { return };
    let c = sso(&m).await;
    let (i, ps) = setup(&c).await;
    let p = provider(&m, &i, &ps);
    p.grant(&spec("r1", "alice", &[])).await.expect("grant");
    assign_by_hand(&c, &i, &ps, "u-bob").await;
    assign_by_hand(&c, &i, &ps, "u-someone-else").await;
    let present = p.list_present().await.expect("list");
    assert_eq!(present.len(), 2, "only mapped users: {present:?}");
    let active = [Active {
        request_id: "r1".into(),
        requester: "alice".into(),
    }];
    let r = reconcile(&present, &active);
    assert_eq!(r.to_remove.len(), 1);
    assert_eq!(r.to_remove[0].requester.as_deref(), Some("bob"));
    p.remove(&r.to_remove[0]).await.expect("remove");
    assert_eq!(
        assigned(&c, &i, &ps).await,
        vec!["u-alice", "u-someone-else"]
    );
    let more = [
        active[0].clone(),
        Active {
            request_id: "r2".into(),
            requester: "bob".into(),
        },
    ];
    assert_eq!(
        reconcile(&p.list_present().await.expect("list"), &more).missing,
        vec!["r2".to_string()]
    );
}

#[tokio::test]
async fn revoke_fails_while_aws_is_down_and_succeeds_after() {
    let Some(mut m) = Moto::start(&[]) else {
        return;
    };
    m.seed(11).await;
    let c = sso(&m).await;
    let (i, ps) = setup(&c).await;
    let p = provider(&m, &i, &ps);
    let a = spec("r1", "alice", &[]);
    p.grant(&a).await.expect("grant");

    m.stop();
    let e = p.revoke(&a).await.expect_err("moto is down");
    assert!(e.retryable, "{}", e.message);

    // moto keeps no state: re-create what AWS would still hold, with the same
    // ARNs through the same seed.
    m.restart();
    m.seed(11).await;
    let c = sso(&m).await;
    assert_eq!(
        setup(&c).await,
        (i.clone(), ps.clone()),
        "seeded moto gives the same ARNs"
    );
    assign_by_hand(&c, &i, &ps, "u-alice").await;
    assert_eq!(p.check(&a).await.expect("check"), Presence::Present);
    p.revoke(&a).await.expect("retried revoke");
    assert_eq!(p.check(&a).await.expect("check"), Presence::Absent);
}
