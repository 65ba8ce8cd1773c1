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

/// Making the KMS key of backup data unusable (each customer-managed key a
/// Backup vault encrypts with).
pub const KEY_DESTRUCTION: &[&str] = &[
    "kms:ScheduleKeyDeletion",
    "kms:DisableKey",
    "kms:PutKeyPolicy",
];

/// The customer-managed KMS keys the Backup vaults encrypt with, sorted.
fn backup_keys(facts: &Facts) -> Vec<String> {
    let mut keys: Vec<String> = facts
        .region_baselines()
        .filter_map(|(_, _, b)| b.vault_keys.as_result().ok())
        .flatten()
        .filter(|v| v.customer_managed == Some(true))
        .filter_map(|v| v.key_arn.clone())
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The KMS keys log data is encrypted with, sorted: each trail's `KmsKeyId`
/// and the SSE-KMS key of each trail bucket (only keys named by ARN: an
/// alias or a bare key id cannot be matched to a key policy).
fn log_keys(facts: &Facts) -> Vec<String> {
    let buckets: Vec<&str> = facts.trails().map(|(_, t)| t.bucket.as_str()).collect();
    let mut keys: Vec<String> = facts
        .trails()
        .filter_map(|(_, t)| t.kms_key.clone())
        .collect();
    for a in &facts.accounts {
        let Collected::Ok(s) = &a.scan else { continue };
        let Some(Collected::Ok(found)) = s.baseline.as_ref().map(|b| &b.buckets) else {
            continue;
        };
        keys.extend(
            found
                .iter()
                .filter(|b| buckets.contains(&b.name.as_str()))
                .filter_map(|b| b.kms_key.clone()),
        );
    }
    keys.retain(|k| k.starts_with("arn:") && k.contains(":key/"));
    keys.sort();
    keys.dedup();
    keys
}

/// `ec2:AuthorizeSecurityGroupIngress` on each of twokey's bastion security
/// groups (the policy's `aws_security_group` entitlements) found in the
/// facts: opening one without a grant is what twokey gates.
pub fn bastion_risks(facts: &Facts, groups: &[String]) -> Vec<HighRisk> {
    let mut out = Vec::new();
    for (account, region, b) in facts.region_baselines() {
        let Ok(found) = b.security_groups.as_result() else {
            continue;
        };
        for (id, _vpc) in found.iter().filter(|(id, _)| groups.contains(id)) {
            out.push(HighRisk {
                action: "ec2:AuthorizeSecurityGroupIngress".into(),
                resource: format!("arn:aws:ec2:{region}:{account}:security-group/{id}"),
                why: "opens a bastion security group twokey gates".into(),
            });
        }
    }
    out
}

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
    for k in backup_keys(facts) {
        for a in KEY_DESTRUCTION {
            out.push(risk(a, &k, "destroys or locks the key of backup data"));
        }
    }
    for k in log_keys(facts) {
        for a in KEY_DESTRUCTION {
            out.push(risk(a, &k, "destroys or locks the key of log data"));
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
    // KMS key policies (the keys of log and backup data among them). The
    // evaluator treats a key policy like any resource policy: it can grant
    // on its own, as in KMS; it does not model that an identity policy
    // needs the key policy to delegate to the account, so it may name more
    // holders than KMS would, never fewer.
    for (account, _, b) in facts.region_baselines() {
        let Ok(keys) = b.kms_keys.as_result() else {
            continue;
        };
        for k in keys.iter().filter(|k| !k.policy.is_null()) {
            let id = format!("key policy of {}", k.arn);
            match Policy::parse(&id, &k.policy.to_string()) {
                Ok(policy) => resource_policies.push((k.arn.clone(), NamedPolicy { id, policy })),
                Err(e) => errors.push((account.to_string(), e.to_string())),
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
        let mut l = defaults(facts);
        l.extend(bastion_risks(facts, &settings.bastion_groups));
        l
    } else {
        settings.high_risk.clone()
    };
    let home = facts.home_account().to_string();
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

    const KEY: &str = "arn:aws:kms:eu-west-1:222233334444:key/backup-key";

    /// A vault encrypting with a customer key whose key policy lets the user
    /// `ops` delete it, though no identity policy of `ops` allows it.
    fn with_backup_key() -> Facts {
        let ops = json!({"UserName": "ops", "Arn": "arn:aws:iam::222233334444:user/ops"});
        let mut f = with(details(json!([ops]), json!([admin_role()])));
        let b = region_mut(&mut f).baseline.as_mut().expect("baseline");
        b.vault_keys = Collected::Ok(vec![crate::facts::baseline::VaultKey {
            vault: "arn:aws:backup:eu-west-1:222233334444:backup-vault:main".into(),
            key_arn: Some(KEY.into()),
            customer_managed: Some(true),
        }]);
        b.kms_keys = Collected::Ok(vec![crate::facts::baseline::KmsKey {
            arn: KEY.into(),
            enabled: true,
            symmetric: true,
            rotation: true,
            policy: json!({"Version": "2012-10-17", "Statement": [{"Sid": "OpsMayDelete", "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::222233334444:user/ops"},
                "Action": "kms:ScheduleKeyDeletion", "Resource": "*"}]}),
        }]);
        b.security_groups = Collected::Ok(vec![("sg-bastion".into(), "vpc-1".into())]);
        f
    }

    #[test]
    fn the_key_of_backup_data_is_high_risk_and_its_key_policy_grants() {
        let f = with_backup_key();
        let d = defaults(&f);
        for a in KEY_DESTRUCTION {
            assert!(
                d.iter().any(|r| r.action == *a && r.resource == KEY),
                "{a}: {d:#?}"
            );
        }
        let settings = Settings {
            high_risk: vec![parse_risk(&format!("kms:ScheduleKeyDeletion={KEY}")).expect("risk")],
            ..Settings::default()
        };
        let out = (CHECK.evaluate)(&f, &settings);
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0].status, Status::Fail, "{}", out[0].message);
        assert!(out[0].message.contains("user/ops"), "{}", out[0].message);
        let path = out[0].evidence["holders"].to_string();
        assert!(path.contains("key policy of"), "{path}");
    }

    #[test]
    fn the_keys_of_log_data_are_high_risk() {
        const TRAIL_KEY: &str = "arn:aws:kms:eu-west-1:222233334444:key/trail-key";
        const BUCKET_KEY: &str = "arn:aws:kms:eu-west-1:222233334444:key/bucket-key";
        let mut f = with_backup_key();
        region_mut(&mut f).trails = Collected::Ok(vec![crate::facts::Trail {
            arn: "arn:aws:cloudtrail:eu-west-1:222233334444:trail/org".into(),
            bucket: "org-trail-logs".into(),
            kms_key: Some(TRAIL_KEY.into()),
            ..Default::default()
        }]);
        let bucket = |name: &str, key: &str| crate::facts::baseline::BucketSettings {
            name: name.into(),
            encryption: Some("aws:kms".into()),
            kms_key: Some(key.into()),
            logging_target: None,
        };
        if let Collected::Ok(s) = &mut f.accounts[0].scan {
            s.baseline = Some(crate::facts::baseline::AccountBaseline {
                buckets: Collected::Ok(vec![
                    bucket("org-trail-logs", BUCKET_KEY),
                    // Not a trail bucket; and an alias cannot be matched.
                    bucket("other", "arn:aws:kms:eu-west-1:222233334444:key/other"),
                ]),
                ..Default::default()
            });
        }
        let d = defaults(&f);
        for key in [TRAIL_KEY, BUCKET_KEY] {
            for a in KEY_DESTRUCTION {
                let r = d
                    .iter()
                    .find(|r| r.action == *a && r.resource == key)
                    .unwrap_or_else(|| panic!("{a} on {key}: {d:#?}"));
                assert!(r.why.contains("log data"), "{}", r.why);
            }
        }
        assert!(
            !d.iter().any(|r| r.resource.ends_with("key/other")),
            "{d:#?}"
        );
        // The backup key is still asked, for its own reason.
        assert!(d
            .iter()
            .any(|r| r.resource == KEY && r.why.contains("backup data")));
        // An alias as the trail's key is left out (no key policy matches it).
        let mut g = f.clone();
        region_mut(&mut g).trails = Collected::Ok(vec![crate::facts::Trail {
            bucket: "x".into(),
            kms_key: Some("alias/trail".into()),
            ..Default::default()
        }]);
        assert!(!defaults(&g).iter().any(|r| r.resource.contains("alias/")));
    }

    #[test]
    fn bastion_groups_of_the_policy_are_asked_by_their_arn() {
        let f = with_backup_key();
        let r = bastion_risks(&f, &["sg-bastion".to_string(), "sg-absent".to_string()]);
        assert_eq!(r.len(), 1, "{r:#?}");
        assert_eq!(r[0].action, "ec2:AuthorizeSecurityGroupIngress");
        assert_eq!(
            r[0].resource,
            "arn:aws:ec2:eu-west-1:222233334444:security-group/sg-bastion"
        );
        let settings = Settings {
            bastion_groups: vec!["sg-bastion".into()],
            ..Settings::default()
        };
        let out = (CHECK.evaluate)(&f, &settings);
        assert!(
            out.iter().any(|x| x.resource.contains("AuthorizeSecurityGroupIngress on arn:aws:ec2:eu-west-1:222233334444:security-group/sg-bastion")),
            "{:#?}",
            out.iter().map(|x| &x.resource).collect::<Vec<_>>()
        );
    }

    #[test]
    fn bad_risk_syntax_is_named() {
        let e = parse_risk("StopLogging").expect_err("no service");
        assert!(e.contains("service:Action"), "{e}");
    }
}
