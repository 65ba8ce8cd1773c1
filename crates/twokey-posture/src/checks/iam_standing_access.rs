//! Nobody can do a high-risk action alone: for each action of the list
//! (default [`defaults`]: switching monitoring off, deleting log and backup
//! data, IAM changes that grant admin, assuming each twokey target role),
//! every principal that can do it *standing* (no twokey grant active) is
//! found with its path through the graph of who can become whom
//! (`twokey_iam::graph`: assume, pass to compute, credentials of another
//! user, trust and policy rewrites), each step with the statement that
//! allows it, under the SCPs and permission boundaries. A finding passes
//! when the action is TPI-clean: only twokey's target roles (reached only
//! through a grant) and twokey's own gateway can do it. The gateway and the
//! targets are listed in the evidence as such.

use serde_json::{json, Value};
use twokey_iam::graph::{AccountInput, Answer, Graph, HighRisk, Standing, Twokey};
use twokey_iam::{AuthDetails, NamedPolicy, Policy};

use super::scp_monitoring::{levels, ACTIONS, BUCKET_ACTIONS};
use crate::facts::{Collected, Facts};
use crate::model::{first, Check, Finding, For, Remediation, Severity, Status};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "iam.standing_high_risk",
    title: "No principal can do a high-risk action without a twokey grant",
    severity: Severity::Critical,
    prowler: &[],
    why: "Two-person approval protects nothing while someone holds the same power standing: a role that can stop CloudTrail, a user who can attach AdministratorAccess to themselves, a CI role that assumes the admin role without twokey.",
    remediation: Remediation {
        cli: "aws iam detach-role-policy --role-name ROLE --policy-arn POLICY_ARN\naws iam update-assume-role-policy --role-name TARGET --policy-document file://account-root-only.json",
        terraform: "# Remove the statement each path names (the evidence lists them), or put the\n# action behind a twokey entitlement: an aws_iam_assume target role whose trust\n# names only the account root, reached through twokey's time-bound grant.",
    },
    evaluate,
};

/// IAM changes that grant admin.
pub const IAM_ADMIN: &[&str] = &[
    "iam:AttachUserPolicy",
    "iam:AttachRolePolicy",
    "iam:AttachGroupPolicy",
    "iam:PutUserPolicy",
    "iam:PutRolePolicy",
    "iam:PutGroupPolicy",
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:AddUserToGroup",
    "iam:UpdateAssumeRolePolicy",
];

/// Deleting log data (on each trail bucket) and backup data.
pub const LOG_DELETION: &[&str] = &[
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:DeleteBucket",
];
/// Deleting backup data (on each vault).
pub const BACKUP_DELETION: &[&str] = &[
    "backup:DeleteRecoveryPoint",
    "backup:DeleteBackupVault",
    "backup:DeleteBackupVaultLockConfiguration",
    "backup:UpdateRecoveryPointLifecycle",
];

/// The default high-risk list for these facts.
pub fn defaults(facts: &Facts) -> Vec<HighRisk> {
    let risk = |action: &str, resource: &str, why: &str| HighRisk {
        action: action.into(),
        resource: resource.into(),
        why: why.into(),
    };
    let mut out: Vec<HighRisk> = ACTIONS
        .iter()
        .map(|a| risk(a, "*", "disables monitoring"))
        .collect();
    let mut buckets: Vec<String> = facts.trails().map(|(_, t)| t.bucket.clone()).collect();
    buckets.sort();
    buckets.dedup();
    for b in &buckets {
        for a in BUCKET_ACTIONS.iter().chain(&["s3:DeleteBucket"]) {
            out.push(risk(
                a,
                &format!("arn:aws:s3:::{b}"),
                "deletes or unlocks log data",
            ));
        }
        for a in &LOG_DELETION[..2] {
            out.push(risk(a, &format!("arn:aws:s3:::{b}/*"), "deletes log data"));
        }
    }
    let mut vaults = Vec::new();
    for a in &facts.accounts {
        if let Collected::Ok(s) = &a.scan {
            for r in &s.regions {
                if let Collected::Ok(v) = &r.backup_vaults {
                    vaults.extend(v.iter().map(|v| v.arn.clone()));
                }
            }
        }
    }
    if vaults.is_empty() {
        vaults.push("*".into());
    }
    for v in &vaults {
        for a in BACKUP_DELETION {
            out.push(risk(a, v, "deletes backup data"));
        }
    }
    for a in IAM_ADMIN {
        out.push(risk(a, "*", "grants admin"));
    }
    for t in &facts.twokey_targets {
        out.push(risk(
            "sts:AssumeRole",
            &t.role_arn,
            &format!("twokey target of {}", t.entitlement),
        ));
    }
    // An action on a resource is asked once, with every reason it is risky
    // (`backup:DeleteBackupVaultLockConfiguration` on `*` both disables
    // monitoring and deletes backup data when no vault is known).
    let mut merged: Vec<HighRisk> = Vec::with_capacity(out.len());
    for r in out {
        match merged
            .iter_mut()
            .find(|m| m.action == r.action && m.resource == r.resource)
        {
            Some(m) if !m.why.contains(&r.why) => m.why = format!("{}; {}", m.why, r.why),
            Some(_) => {}
            None => merged.push(r),
        }
    }
    merged
}

/// Reads `ACTION` or `ACTION=RESOURCE` (the `--high-risk` syntax).
pub fn parse_risk(s: &str) -> Result<HighRisk, String> {
    let (action, resource) = s.split_once('=').unwrap_or((s, "*"));
    if !action.contains(':') || action.contains(char::is_whitespace) {
        return Err(format!(
            "high-risk action {s:?}: expected service:Action or service:Action=RESOURCE_ARN"
        ));
    }
    Ok(HighRisk {
        action: action.into(),
        resource: resource.into(),
        why: "configured".into(),
    })
}

/// The graph over every account whose authorization details were
/// collected; the accounts that could not be read, with why.
pub fn graph(facts: &Facts) -> (Option<Graph>, Vec<(String, String)>) {
    let mut inputs = Vec::new();
    let mut errors = Vec::new();
    for a in &facts.accounts {
        let scan = match &a.scan {
            Collected::Ok(s) => s,
            Collected::Error(e) => {
                errors.push((a.id.clone(), format!("the account: {e}")));
                continue;
            }
        };
        let auth = match &scan.iam {
            Collected::Ok(i) => &i.authorization,
            Collected::Error(e) => {
                errors.push((a.id.clone(), format!("IAM: {e}")));
                continue;
            }
        };
        let value = match auth {
            Collected::Ok(Some(v)) => v,
            Collected::Ok(None) => {
                errors.push((
                    a.id.clone(),
                    "authorization details: not in these facts".into(),
                ));
                continue;
            }
            Collected::Error(e) => {
                errors.push((a.id.clone(), format!("authorization details: {e}")));
                continue;
            }
        };
        let scps = match &a.scps {
            Collected::Ok(l) => levels(l),
            Collected::Error(e) => Err(e.clone()),
        };
        let scps = match scps {
            Ok(s) => s,
            Err(e) => {
                errors.push((a.id.clone(), format!("SCPs: {e}")));
                continue;
            }
        };
        match AuthDetails::parse(&value.to_string()) {
            Ok(details) => inputs.push(AccountInput {
                account: a.id.clone(),
                details,
                scps,
            }),
            Err(e) => errors.push((a.id.clone(), e.to_string())),
        }
    }
    let mut resource_policies = Vec::new();
    for a in &facts.accounts {
        let Collected::Ok(s) = &a.scan else { continue };
        for b in &s.buckets {
            if let Collected::Ok(Some(text)) = &b.policy {
                let id = format!("bucket policy of {}", b.name);
                match Policy::parse(&id, text) {
                    Ok(policy) => {
                        for arn in [
                            format!("arn:aws:s3:::{}", b.name),
                            format!("arn:aws:s3:::{}/*", b.name),
                        ] {
                            resource_policies.push((
                                arn,
                                NamedPolicy {
                                    id: id.clone(),
                                    policy: policy.clone(),
                                },
                            ));
                        }
                    }
                    Err(e) => errors.push((a.id.clone(), e.to_string())),
                }
            }
        }
    }
    if inputs.is_empty() {
        return (None, errors);
    }
    let twokey = Twokey {
        targets: facts
            .twokey_targets
            .iter()
            .map(|t| t.role_arn.clone())
            .collect(),
        gateway: facts.twokey_gateway.clone(),
    };
    let now = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(facts.collected_at_ms)
        .unwrap_or_default();
    match Graph::build(inputs, resource_policies, twokey, now) {
        Ok(g) => (Some(g), errors),
        Err(e) => {
            errors.push(("-".into(), e.to_string()));
            (None, errors)
        }
    }
}

/// A holder as evidence: principal, standing, path steps with statements.
pub fn holder_json(g: &Graph, a: &Answer, h: &twokey_iam::graph::Holder) -> Value {
    json!({
        "principal": h.principal,
        "standing": match h.standing {
            Standing::Standing => "standing",
            Standing::TwokeyTarget => "twokey_target",
            Standing::TwokeyGateway => "twokey_gateway",
        },
        "conditional": h.conditional(),
        "when": (h.conditional()).then(|| h.when.to_string()),
        "path": g.describe(h, &a.risk.action),
    })
}

fn evaluate(facts: &Facts, settings: &Settings) -> Vec<Finding> {
    let mut out = Vec::new();
    let (graph, errors) = graph(facts);
    for (account, e) in &errors {
        out.push(For::new(CHECK.id, account).error(
            format!("account {account}"),
            "the IAM graph",
            e,
        ));
    }
    let Some(g) = graph else { return out };
    let list = if settings.high_risk.is_empty() {
        defaults(facts)
    } else {
        settings.high_risk.clone()
    };
    let home = facts
        .accounts
        .iter()
        .find(|a| a.management)
        .or(facts.accounts.first())
        .map(|a| a.id.clone())
        .unwrap_or_default();
    for a in g.answer_all(&list) {
        let account = a
            .risk
            .resource
            .split(':')
            .nth(4)
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .or_else(|| {
                let b = a.risk.resource.strip_prefix("arn:aws:s3:::")?;
                let b = b.split('/').next()?;
                facts.bucket(b).map(|(acct, _)| acct.id.clone())
            })
            .unwrap_or_else(|| home.clone());
        let at = For::new(CHECK.id, &account);
        let resource = format!("{} on {}", a.risk.action, a.risk.resource);
        let standing: Vec<String> = a
            .standing()
            .map(|h| {
                let how = if h.path.is_empty() {
                    "directly".to_string()
                } else {
                    format!("{} step(s)", h.path.len())
                };
                let cond = if h.conditional() { ", conditional" } else { "" };
                format!("{} ({how}{cond})", h.principal)
            })
            .collect();
        let evidence = json!({
            "why": a.risk.why,
            "tpi_clean": a.tpi_clean(),
            "holders": a.holders.iter().map(|h| holder_json(&g, &a, h)).collect::<Vec<_>>(),
        });
        let msg = if a.tpi_clean() {
            let twokey = a.holders.len();
            format!(
                "{resource}: TPI-clean; only through a twokey grant ({twokey} twokey principal(s) hold it)"
            )
        } else {
            format!(
                "{resource}: {} principal(s) can do it without a twokey grant: {}",
                standing.len(),
                first(&standing, 4)
            )
        };
        let status = if a.tpi_clean() {
            Status::Pass
        } else {
            Status::Fail
        };
        out.push(at.finding(resource, status, msg, evidence));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_default_action_and_resource_is_asked_once() {
        let f = crate::checks::fixture::facts();
        let d = defaults(&f);
        let mut keys: Vec<(&str, &str)> = d
            .iter()
            .map(|r| (r.action.as_str(), r.resource.as_str()))
            .collect();
        let n = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), n, "{d:#?}");
        let lock = d
            .iter()
            .find(|r| r.action == "backup:DeleteBackupVaultLockConfiguration" && r.resource == "*")
            .expect("asked");
        assert!(
            lock.why.contains("monitoring") && lock.why.contains("backup"),
            "{}",
            lock.why
        );
    }
    use crate::checks::fixture::*;
    use crate::facts::AssumeTarget;

    const ADMIN: &str = "arn:aws:iam::222233334444:role/admin";

    fn details(users: Value, roles: Value) -> Value {
        json!({"UserDetailList": users, "RoleDetailList": roles, "GroupDetailList": [], "Policies": [
            {"PolicyName": "AdministratorAccess", "Arn": "arn:aws:iam::aws:policy/AdministratorAccess", "DefaultVersionId": "v1",
             "PolicyVersionList": [{"VersionId": "v1", "IsDefaultVersion": true, "Document": {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}}]}
        ]})
    }

    fn admin_role() -> Value {
        json!({"RoleName": "admin", "Arn": ADMIN,
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222233334444:root"}, "Action": "sts:AssumeRole"}]},
            "AttachedManagedPolicies": [{"PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}]})
    }

    fn with(v: Value) -> Facts {
        let mut f = facts();
        iam(&mut f).authorization = Collected::Ok(Some(v));
        f.twokey_targets = vec![AssumeTarget {
            entitlement: "prod-admin".into(),
            role_arn: ADMIN.into(),
            principals: vec![],
            trust: Collected::Ok(String::new()),
        }];
        f
    }

    fn only_assume() -> Settings {
        Settings {
            high_risk: vec![parse_risk(&format!("sts:AssumeRole={ADMIN}")).expect("risk")],
            ..Settings::default()
        }
    }

    #[test]
    fn a_user_with_an_active_grant_only_is_clean() {
        let grant = json!({"UserName": "alice", "Arn": "arn:aws:iam::222233334444:user/alice",
            "UserPolicyList": [{"PolicyName": "twokey-r-1", "PolicyDocument": {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": ADMIN}}}]});
        let f = with(details(json!([grant]), json!([admin_role()])));
        let out = (CHECK.evaluate)(&f, &only_assume());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].status, Status::Pass, "{}", out[0].message);
        assert_eq!(out[0].evidence["holders"][0]["standing"], "twokey_target");
    }

    #[test]
    fn a_standing_assume_policy_fails_with_its_statement() {
        let ci = json!({"UserName": "ci", "Arn": "arn:aws:iam::222233334444:user/ci",
            "UserPolicyList": [{"PolicyName": "deploy", "PolicyDocument": {"Version": "2012-10-17", "Statement": {"Sid": "AssumeAll", "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}}}]});
        let f = with(details(json!([ci]), json!([admin_role()])));
        let out = (CHECK.evaluate)(&f, &only_assume());
        assert_eq!(out[0].status, Status::Fail, "{}", out[0].message);
        assert!(
            out[0].message.contains("user/ci (directly)"),
            "{}",
            out[0].message
        );
        let path = out[0].evidence["holders"][0]["path"].to_string();
        assert!(
            path.contains("ci/deploy Statement[0] (AssumeAll)"),
            "{path}"
        );
        assert!(path.contains("trust policy"), "{path}");
    }

    #[test]
    fn unreadable_details_are_an_error_not_a_pass() {
        let mut f = facts();
        iam(&mut f).authorization =
            Collected::Error("iam:GetAccountAuthorizationDetails: AccessDenied".into());
        let out = (CHECK.evaluate)(&f, &Settings::default());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].status, Status::Error);
        assert!(
            out[0].message.contains("AccessDenied"),
            "{}",
            out[0].message
        );
    }

    #[test]
    fn bad_risk_syntax_is_named() {
        let e = parse_risk("StopLogging").expect_err("no service");
        assert!(e.contains("service:Action"), "{e}");
    }
}
