//! One account: IAM (global), its buckets and its regions, at once.

use aws_config::{Region, SdkConfig};
use aws_sdk_iam::operation::get_account_summary::GetAccountSummaryOutput;
use aws_sdk_iam::types::{EntityType, SummaryKeyType, VirtualMfaDevice};
use futures_util::{StreamExt, TryStreamExt};
use tokio::task::JoinSet;

use super::{code, failed, ms};
use crate::facts::{
    AccessKey, AccountScan, AccountSummary, Collected, Iam, Password, PolicyDocument, PolicyKind,
    User,
};

/// Everything collected in one reached account. The regions, IAM and the
/// buckets are read at once: each is a chain of calls that waits on the
/// one before it, so the account takes as long as its longest chain.
pub(super) async fn scan(
    config: &SdkConfig,
    account: &str,
    regions: &[String],
    service_last_accessed: bool,
) -> AccountScan {
    let mut tasks = JoinSet::new();
    for (i, r) in regions.iter().enumerate() {
        let regional = config.to_builder().region(Region::new(r.clone())).build();
        let (r, account) = (r.clone(), account.to_string());
        tasks.spawn(async move { (i, super::region::scan(&regional, &account, &r).await) });
    }
    let buckets = async {
        let names: Vec<String> = match aws_sdk_s3::Client::new(config).list_buckets().send().await {
            Ok(o) => o
                .buckets()
                .iter()
                .filter_map(|b| b.name().map(str::to_string))
                .collect(),
            // Without the names, no trail bucket is found here; the bucket checks
            // then report the bucket as not found in a reached account.
            Err(_) => vec![],
        };
        let baseline = super::baseline::account(config, account, &names).await;
        (names, baseline)
    };
    let (iam, (bucket_names, baseline)) =
        tokio::join!(iam(config, account, service_last_accessed), buckets);
    let mut regional = Vec::with_capacity(regions.len());
    while let Some(done) = tasks.join_next().await {
        if let Ok(r) = done {
            regional.push(r);
        }
    }
    regional.sort_by_key(|(i, _)| *i);
    AccountScan {
        iam,
        bucket_names,
        buckets: vec![],
        regions: regional.into_iter().map(|(_, r)| r).collect(),
        baseline: Some(baseline),
    }
}

async fn iam(config: &SdkConfig, account: &str, service_last_accessed: bool) -> Collected<Iam> {
    let client = aws_sdk_iam::Client::new(config);
    match read_iam(&client, account).await {
        Ok(mut i) => {
            if service_last_accessed {
                if let Collected::Ok(Some(v)) = &i.authorization {
                    let at = format!("account {account}");
                    i.service_last_accessed =
                        Some(super::authorization::service_last_accessed(&client, v, &at).await);
                }
            }
            Collected::Ok(i)
        }
        Err(e) => Collected::Error(e),
    }
}

async fn read_iam(iam: &aws_sdk_iam::Client, account: &str) -> Result<Iam, String> {
    let at = format!("account {account}");
    let summary = async {
        iam.get_account_summary()
            .send()
            .await
            .map(|s| account_summary(&s))
            .map_err(|e| failed("iam:GetAccountSummary", &at, e))
    };
    let devices = async {
        iam.list_virtual_mfa_devices()
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map(|pages| {
                let devices: Vec<VirtualMfaDevice> = pages
                    .into_iter()
                    .flat_map(|p| p.virtual_mfa_devices)
                    .collect();
                root_has_virtual_mfa(&devices)
            })
            .map_err(|e| failed("iam:ListVirtualMFADevices", &at, e))
    };
    // The five reads do not depend on each other: at once, not in turn.
    let (summary, root_virtual_mfa, users, policies, authorization) = tokio::join!(
        summary,
        devices,
        users(iam, &at),
        policies(iam, &at),
        super::authorization::read(iam, &at)
    );
    Ok(Iam {
        summary: summary?,
        root_virtual_mfa: root_virtual_mfa?,
        users: users?,
        policies: policies?,
        authorization: match authorization {
            Ok(v) => Collected::Ok(Some(v)),
            Err(e) => Collected::Error(e),
        },
        service_last_accessed: None,
    })
}

/// The root flags of `GetAccountSummary` (`AccountMFAEnabled`,
/// `AccountAccessKeysPresent`: 1 or 0).
fn account_summary(out: &GetAccountSummaryOutput) -> AccountSummary {
    let flag = |k: SummaryKeyType| {
        out.summary_map()
            .and_then(|m| m.get(&k))
            .copied()
            .unwrap_or(0)
            > 0
    };
    AccountSummary {
        account_mfa_enabled: flag(SummaryKeyType::AccountMfaEnabled),
        account_access_keys_present: flag(SummaryKeyType::AccountAccessKeysPresent),
    }
}

/// Whether a virtual MFA device is assigned to the root user: its user is
/// the account's root ARN, or it has root's serial number.
fn root_has_virtual_mfa(devices: &[VirtualMfaDevice]) -> bool {
    devices.iter().any(|d| {
        d.user().is_some_and(|u| u.arn().ends_with(":root"))
            || d.serial_number().ends_with(":mfa/root-account-mfa-device")
    })
}

/// How many users' login profile and keys are read at once in one account
/// (IAM's own request rate is low; the SDK's adaptive retry slows down on
/// throttling).
const USERS_AT_ONCE: usize = 8;

async fn users(iam: &aws_sdk_iam::Client, at: &str) -> Result<Vec<User>, String> {
    let pages = iam
        .list_users()
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| failed("iam:ListUsers", at, e))?;
    // The futures are made first: a stream that maps with a closure over
    // borrowed users is not provably `Send` inside the spawned account task.
    let reads: Vec<_> = pages
        .iter()
        .flat_map(|p| p.users())
        .map(|u| user(iam, u))
        .collect();
    futures_util::stream::iter(reads)
        .buffered(USERS_AT_ONCE)
        .try_collect()
        .await
}

/// One user's password and access keys (each key's last use).
async fn user(iam: &aws_sdk_iam::Client, u: &aws_sdk_iam::types::User) -> Result<User, String> {
    let name = u.user_name().to_string();
    let profile = async {
        match iam.get_login_profile().user_name(&name).send().await {
            Ok(p) => Ok(p.login_profile().map(|p| Password {
                created_ms: p.create_date().to_millis().unwrap_or(0),
                last_used_ms: ms(u.password_last_used()),
            })),
            Err(e) if code(&e) == Some("NoSuchEntity") => Ok(None),
            Err(e) => Err(failed("iam:GetLoginProfile", &name, e)),
        }
    };
    let keys = async {
        let keys = iam
            .list_access_keys()
            .user_name(&name)
            .send()
            .await
            .map_err(|e| failed("iam:ListAccessKeys", &name, e))?;
        let mut access_keys = Vec::new();
        for k in keys.access_key_metadata() {
            let Some(id) = k.access_key_id() else {
                continue;
            };
            let last = iam
                .get_access_key_last_used()
                .access_key_id(id)
                .send()
                .await
                .map_err(|e| failed("iam:GetAccessKeyLastUsed", id, e))?;
            access_keys.push(AccessKey {
                id: id.to_string(),
                active: k.status().map(|s| s.as_str()) == Some("Active"),
                created_ms: ms(k.create_date()).unwrap_or(0),
                last_used_ms: ms(last.access_key_last_used().and_then(|l| l.last_used_date())),
            });
        }
        Ok::<_, String>(access_keys)
    };
    let (password, access_keys) = tokio::join!(profile, keys);
    Ok(User {
        arn: u.arn().to_string(),
        created_ms: u.create_date().to_millis().unwrap_or(0),
        password: password?,
        access_keys: access_keys?,
        name,
    })
}

fn document(name: &str, doc: Option<&str>) -> Result<serde_json::Value, String> {
    let text = twokey_aws::iam_assume::decode_policy(doc.unwrap_or("{}"));
    serde_json::from_str(&text).map_err(|e| format!("policy {name} is not JSON: {e}"))
}

/// Customer-managed policies (default version) and inline policies, from
/// `GetAccountAuthorizationDetails` (one paginated call for all of them).
async fn policies(iam: &aws_sdk_iam::Client, at: &str) -> Result<Vec<PolicyDocument>, String> {
    let pages = iam
        .get_account_authorization_details()
        .filter(EntityType::LocalManagedPolicy)
        .filter(EntityType::User)
        .filter(EntityType::Role)
        .filter(EntityType::Group)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| failed("iam:GetAccountAuthorizationDetails", at, e))?;
    let mut out = Vec::new();
    for p in &pages {
        for m in p.policies() {
            let name = m.arn().unwrap_or_default().to_string();
            if let Some(v) = m
                .policy_version_list()
                .iter()
                .find(|v| v.is_default_version())
            {
                out.push(PolicyDocument {
                    document: document(&name, v.document())?,
                    name,
                    kind: PolicyKind::Managed,
                });
            }
        }
        let inline = |owner: &str,
                      kind,
                      list: &[aws_sdk_iam::types::PolicyDetail]|
         -> Result<Vec<PolicyDocument>, String> {
            list.iter()
                .map(|d| {
                    let name = format!("{owner}/{}", d.policy_name().unwrap_or_default());
                    Ok(PolicyDocument {
                        document: document(&name, d.policy_document())?,
                        name,
                        kind,
                    })
                })
                .collect()
        };
        for u in p.user_detail_list() {
            out.extend(inline(
                u.arn().unwrap_or_default(),
                PolicyKind::UserInline,
                u.user_policy_list(),
            )?);
        }
        for r in p.role_detail_list() {
            out.extend(inline(
                r.arn().unwrap_or_default(),
                PolicyKind::RoleInline,
                r.role_policy_list(),
            )?);
        }
        for g in p.group_detail_list() {
            out.extend(inline(
                g.arn().unwrap_or_default(),
                PolicyKind::GroupInline,
                g.group_policy_list(),
            )?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    //! The root facts from answers built with the SDK's own models, in the
    //! shapes AWS sends (moto always answers 0 for both flags and cannot
    //! assign a virtual MFA device to root).

    use super::*;
    use aws_sdk_iam::types::User as SdkUser;

    fn summary(mfa: i32, keys: i32) -> GetAccountSummaryOutput {
        GetAccountSummaryOutput::builder()
            .summary_map(SummaryKeyType::AccountMfaEnabled, mfa)
            .summary_map(SummaryKeyType::AccountAccessKeysPresent, keys)
            .summary_map(SummaryKeyType::Users, 3)
            .build()
    }

    #[test]
    fn summary_flags() {
        assert_eq!(
            account_summary(&summary(1, 0)),
            AccountSummary {
                account_mfa_enabled: true,
                account_access_keys_present: false
            }
        );
        let s = account_summary(&summary(0, 1));
        assert!(!s.account_mfa_enabled && s.account_access_keys_present);
        let empty = GetAccountSummaryOutput::builder().build();
        assert_eq!(account_summary(&empty), AccountSummary::default());
    }

    fn device(serial: &str, user_arn: Option<&str>) -> VirtualMfaDevice {
        let mut d = VirtualMfaDevice::builder().serial_number(serial);
        if let Some(arn) = user_arn {
            let u = SdkUser::builder()
                .path("/")
                .user_name("root")
                .user_id("111122223333")
                .arn(arn)
                .create_date(aws_smithy_types::DateTime::from_secs(0))
                .build()
                .expect("user");
            d = d.user(u);
        }
        d.build().expect("device")
    }

    #[test]
    fn a_virtual_device_on_root_is_found() {
        let root = device(
            "arn:aws:iam::111122223333:mfa/root-account-mfa-device",
            Some("arn:aws:iam::111122223333:root"),
        );
        let alice = device(
            "arn:aws:iam::111122223333:mfa/alice",
            Some("arn:aws:iam::111122223333:user/alice"),
        );
        let unassigned = device("arn:aws:iam::111122223333:mfa/spare", None);
        assert!(root_has_virtual_mfa(&[alice.clone(), root]));
        assert!(!root_has_virtual_mfa(&[alice, unassigned]));
    }
}
