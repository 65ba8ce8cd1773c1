//! `GetAccountAuthorizationDetails` (every user, group, role and the
//! managed policies attached, AWS managed ones included), written back in
//! the JSON shape the API and `aws iam get-account-authorization-details`
//! give, documents URL-decoded: what `twokey_iam::AuthDetails` reads and
//! `twokey who-can --auth-details` takes.

use aws_sdk_iam::types::{AttachedPolicy, EntityType, PolicyDetail, Tag};
use serde_json::{json, Value};

use super::failed;

fn doc(d: Option<&str>) -> Value {
    let text = twokey_aws::iam_assume::decode_policy(d.unwrap_or("{}"));
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

fn inline(list: &[PolicyDetail]) -> Value {
    list.iter()
        .map(|p| json!({"PolicyName": p.policy_name(), "PolicyDocument": doc(p.policy_document())}))
        .collect()
}

fn attached(list: &[AttachedPolicy]) -> Value {
    list.iter()
        .map(|p| json!({"PolicyName": p.policy_name(), "PolicyArn": p.policy_arn()}))
        .collect()
}

fn tags(list: &[Tag]) -> Value {
    list.iter()
        .map(|t| json!({"Key": t.key(), "Value": t.value()}))
        .collect()
}

fn time(t: Option<&aws_smithy_types::DateTime>) -> Value {
    t.and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
        .map_or(Value::Null, Value::String)
}

/// The account's authorization details, in the API's JSON shape.
pub(crate) async fn read(iam: &aws_sdk_iam::Client, at: &str) -> Result<Value, String> {
    let pages = iam
        .get_account_authorization_details()
        .filter(EntityType::User)
        .filter(EntityType::Role)
        .filter(EntityType::Group)
        .filter(EntityType::LocalManagedPolicy)
        .filter(EntityType::AwsManagedPolicy)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| failed("iam:GetAccountAuthorizationDetails", at, e))?;
    let (mut users, mut groups, mut roles, mut policies) = (vec![], vec![], vec![], vec![]);
    for p in &pages {
        for u in p.user_detail_list() {
            users.push(json!({
                "UserName": u.user_name(), "Arn": u.arn(), "CreateDate": time(u.create_date()),
                "UserPolicyList": inline(u.user_policy_list()),
                "GroupList": u.group_list(),
                "AttachedManagedPolicies": attached(u.attached_managed_policies()),
                "PermissionsBoundary": u.permissions_boundary().map(|b| json!({"PermissionsBoundaryArn": b.permissions_boundary_arn()})),
                "Tags": tags(u.tags()),
            }));
        }
        for g in p.group_detail_list() {
            groups.push(json!({
                "GroupName": g.group_name(), "Arn": g.arn(),
                "GroupPolicyList": inline(g.group_policy_list()),
                "AttachedManagedPolicies": attached(g.attached_managed_policies()),
            }));
        }
        for r in p.role_detail_list() {
            roles.push(json!({
                "RoleName": r.role_name(), "Arn": r.arn(), "CreateDate": time(r.create_date()),
                "AssumeRolePolicyDocument": doc(r.assume_role_policy_document()),
                "RolePolicyList": inline(r.role_policy_list()),
                "AttachedManagedPolicies": attached(r.attached_managed_policies()),
                "PermissionsBoundary": r.permissions_boundary().map(|b| json!({"PermissionsBoundaryArn": b.permissions_boundary_arn()})),
                "Tags": tags(r.tags()),
                "RoleLastUsed": r.role_last_used().map(|l| json!({"LastUsedDate": time(l.last_used_date()), "Region": l.region()})),
            }));
        }
        for m in p.policies() {
            policies.push(json!({
                "PolicyName": m.policy_name(), "Arn": m.arn(),
                "DefaultVersionId": m.default_version_id(),
                "PolicyVersionList": m.policy_version_list().iter().map(|v| json!({
                    "VersionId": v.version_id(), "IsDefaultVersion": v.is_default_version(),
                    "Document": doc(v.document()),
                })).collect::<Vec<_>>(),
            }));
        }
    }
    // Absent optional members are left out, as the API leaves them out.
    let strip = |mut v: Vec<Value>| {
        for o in v.iter_mut().filter_map(Value::as_object_mut) {
            o.retain(|_, x| !x.is_null());
        }
        v
    };
    Ok(json!({
        "UserDetailList": strip(users),
        "GroupDetailList": strip(groups),
        "RoleDetailList": strip(roles),
        "Policies": strip(policies),
    }))
}

/// `GenerateServiceLastAccessedDetails` then `GetServiceLastAccessedDetails`
/// for every role of `details` (AWS's service-linked roles left out),
/// polling each job until it completes.
pub(crate) async fn service_last_accessed(
    iam: &aws_sdk_iam::Client,
    details: &Value,
    at: &str,
) -> crate::facts::Collected<Vec<crate::facts::ServiceAccess>> {
    use crate::facts::{Collected, ServiceAccess};
    use aws_sdk_iam::types::JobStatusType;
    let mut out = Vec::new();
    for r in details["RoleDetailList"].as_array().into_iter().flatten() {
        let Some(arn) = r["Arn"].as_str() else {
            continue;
        };
        if arn.contains(":role/aws-service-role/") {
            continue;
        }
        let job = match iam
            .generate_service_last_accessed_details()
            .arn(arn)
            .send()
            .await
        {
            Ok(o) => o.job_id().unwrap_or_default().to_string(),
            Err(e) => {
                return Collected::Error(failed("iam:GenerateServiceLastAccessedDetails", arn, e))
            }
        };
        let mut tries = 0;
        loop {
            let got = match iam
                .get_service_last_accessed_details()
                .job_id(&job)
                .send()
                .await
            {
                Ok(o) => o,
                Err(e) => {
                    return Collected::Error(failed("iam:GetServiceLastAccessedDetails", arn, e))
                }
            };
            match got.job_status() {
                JobStatusType::Completed => {
                    out.push(ServiceAccess {
                        arn: arn.to_string(),
                        services: got
                            .services_last_accessed()
                            .iter()
                            .map(|s| {
                                (
                                    s.service_namespace().to_string(),
                                    super::ms(s.last_authenticated()),
                                )
                            })
                            .collect(),
                    });
                    break;
                }
                JobStatusType::Failed => {
                    return Collected::Error(format!(
                        "iam:GetServiceLastAccessedDetails on {arn} ({at}): the job failed: {}",
                        got.error().map(|e| e.message()).unwrap_or_default()
                    ))
                }
                _ if tries >= 60 => {
                    return Collected::Error(format!(
                        "iam:GetServiceLastAccessedDetails on {arn} ({at}): not done after 60 s"
                    ))
                }
                _ => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    }
    Collected::Ok(out)
}
