//! Service control policies keep monitoring on: for every member account,
//! the SCPs in force (root, each OU on the way, the account) deny each
//! action that would switch off or erase the evidence, for every principal
//! in the account, root included. Evaluated with `twokey-iam` (AWS's
//! evaluation logic: every level must allow, any deny wins; `Action` /
//! `NotAction`, wildcards, `Resource`, conditions), not pattern-matched.
//!
//! The principal is an administrator of the account (an identity policy
//! allowing everything), so only the SCPs can stop it. Every `aws:` context
//! key is unknown: a deny that holds only under a condition leaves the
//! action allowed *if* that condition does not hold, and the finding shows
//! the condition (the principals it exempts). Such an exception fails: a
//! principal it names can switch monitoring off alone, unless every
//! principal it exempts is a role twokey gates (an `aws_iam_assume` target
//! of the twokey policy in force, `--policy`): then using it takes the
//! approvals twokey asks for and lands in the ledger. The management
//! account is not judged: SCPs never apply to it.

use chrono::{DateTime, Utc};
use serde_json::json;
use twokey_iam::{
    evaluate, Context, Decision, NamedPolicy, OrgLevel, Policies, Policy, Request, Requirement,
};

use crate::facts::{Collected, Facts, ScpLevel};
use crate::model::{Check, Finding, For, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "scp.monitoring_protected",
    title: "SCPs deny switching off CloudTrail, Config, GuardDuty, Security Hub, the log bucket's protection and Backup Vault Lock in every member account",
    severity: Severity::Critical,
    prowler: &[],
    why: "An administrator of a member account, or its root user, can otherwise stop the trail, the recorder or the detectors and act unseen; only an SCP binds them, and only if it denies every such action.",
    remediation: Remediation {
        cli: "aws organizations create-policy --type SERVICE_CONTROL_POLICY --name protect-monitoring --content file://protect-monitoring.json\naws organizations attach-policy --policy-id p-... --target-id r-...   # the root, so every member account inherits it",
        terraform: "resource \"aws_organizations_policy\" \"protect_monitoring\" {\n  name    = \"protect-monitoring\"\n  type    = \"SERVICE_CONTROL_POLICY\"\n  content = data.aws_iam_policy_document.protect_monitoring.json\n}\nresource \"aws_organizations_policy_attachment\" \"root\" {\n  policy_id = aws_organizations_policy.protect_monitoring.id\n  target_id = data.aws_organizations_organization.this.roots[0].id\n}",
    },
    evaluate: evaluate_check,
};

/// Actions that switch monitoring off or erase its evidence, on any resource.
pub const ACTIONS: &[&str] = &[
    "cloudtrail:StopLogging",
    "cloudtrail:DeleteTrail",
    "cloudtrail:UpdateTrail",
    "cloudtrail:PutEventSelectors",
    "cloudtrail:PutInsightSelectors",
    "config:StopConfigurationRecorder",
    "config:DeleteConfigurationRecorder",
    "config:DeleteDeliveryChannel",
    "config:PutConfigurationRecorder",
    "guardduty:DeleteDetector",
    "guardduty:UpdateDetector",
    "guardduty:DisassociateFromMasterAccount",
    "guardduty:DisassociateFromAdministratorAccount",
    "securityhub:DisableSecurityHub",
    "securityhub:DisassociateFromMasterAccount",
    "securityhub:DisassociateFromAdministratorAccount",
    "backup:DeleteBackupVaultLockConfiguration",
    "organizations:LeaveOrganization",
];

/// Actions on a trail's log bucket (evaluated on each trail bucket's ARN).
pub const BUCKET_ACTIONS: &[&str] = &[
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketObjectLockConfiguration",
];

/// The SCP levels as the evaluator's, or the first document that does not parse.
pub(crate) fn levels(scps: &[ScpLevel]) -> Result<Vec<OrgLevel>, String> {
    scps.iter()
        .map(|l| {
            let policies = l
                .policies
                .iter()
                .map(|p| {
                    Policy::parse(&p.id, &p.document)
                        .map(|policy| NamedPolicy {
                            id: format!("{} ({})", p.name, p.id),
                            policy,
                        })
                        .map_err(|e| format!("SCP {} ({}) at {}: {e}", p.name, p.id, l.target))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(OrgLevel {
                id: l.target.clone(),
                policies,
            })
        })
        .collect()
}

/// What the SCPs leave an administrator of `account` free to do:
/// (action, resource, how) for each action not denied outright. A deny with
/// an exception on `aws:PrincipalArn` is accepted only when every principal
/// it exempts is one of `gated` (the roles twokey gates, from its policy);
/// else "how" names the exempted principals.
pub fn allowed(
    account: &str,
    scps: &[ScpLevel],
    buckets: &[String],
    now_ms: i64,
    gated: &[String],
) -> Result<Vec<(String, String, String)>, String> {
    let admin = Policy::parse(
        "administrator",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
    )
    .map_err(|e| e.to_string())?;
    let policies = Policies {
        scps: levels(scps)?,
        identity: vec![NamedPolicy {
            id: "administrator".into(),
            policy: admin,
        }],
        ..Policies::default()
    };
    let now: DateTime<Utc> = DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
    let principal = format!("arn:aws:iam::{account}:role/administrator");
    let mut asks: Vec<(&str, String)> = ACTIONS.iter().map(|a| (*a, "*".to_string())).collect();
    for b in buckets {
        asks.extend(
            BUCKET_ACTIONS
                .iter()
                .map(|a| (*a, format!("arn:aws:s3:::{b}"))),
        );
    }
    let ask = |who: Option<&str>, action: &str, resource: &str| {
        let mut ctx = Context::new();
        ctx.mark_unknown("aws:*");
        if let Some(w) = who {
            ctx.set("aws:PrincipalArn", w);
            ctx.set("aws:PrincipalAccount", account);
        }
        let req = Request::new(who.unwrap_or(&principal), action, resource, now, ctx);
        evaluate(&req, &policies)
    };
    let mut out = Vec::new();
    for (action, resource) in asks {
        match ask(None, action, &resource) {
            Decision::ExplicitDeny { .. } | Decision::ImplicitDeny { .. } => {}
            Decision::Allowed { .. } => {
                out.push((action.to_string(), resource, "not denied".to_string()))
            }
            Decision::AllowedIf { when, .. } => {
                if let Some(how) = exemption(account, &when, gated, |who| {
                    ask(Some(who), action, &resource)
                }) {
                    out.push((action.to_string(), resource, how));
                }
            }
        }
    }
    Ok(out)
}

/// Judges a deny that holds unless a condition does: `None` when its only
/// exception is principals twokey gates, else why not. Evaluated: with
/// `aws:PrincipalArn` known, each exempted principal (the condition's
/// patterns in this account, a wildcard standing for any name) and an
/// ungated administrator are asked again.
fn exemption(
    account: &str,
    when: &twokey_iam::Formula,
    gated: &[String],
    ask: impl Fn(&str) -> Decision,
) -> Option<String> {
    let mut leaves = Vec::new();
    requirements(when, &mut leaves);
    let mut patterns = Vec::new();
    for r in &leaves {
        match r {
            Requirement::Condition { key, values, .. }
                if key.eq_ignore_ascii_case("aws:PrincipalArn") =>
            {
                patterns.extend(values.iter().cloned())
            }
            _ => return Some(format!("allowed if {when}")),
        }
    }
    let mut probes: Vec<String> = patterns.iter().map(|p| concrete(p, account)).collect();
    probes.push(format!("arn:aws:iam::{account}:role/administrator"));
    probes.sort();
    probes.dedup();
    let mut exempt = Vec::new();
    for who in &probes {
        match ask(who) {
            Decision::ExplicitDeny { .. } | Decision::ImplicitDeny { .. } => {}
            Decision::Allowed { .. } if gated.iter().any(|g| g == who) => {}
            Decision::Allowed { .. } => exempt.push(who.clone()),
            Decision::AllowedIf { when, .. } => return Some(format!("allowed if {when}")),
        }
    }
    if exempt.is_empty() {
        return None;
    }
    Some(format!(
        "exempts {}, not a role twokey gates (condition on aws:PrincipalArn {:?})",
        exempt.join(", "),
        patterns
    ))
}

fn requirements<'a>(f: &'a twokey_iam::Formula, out: &mut Vec<&'a Requirement>) {
    use twokey_iam::Formula::*;
    match f {
        True | False => {}
        Leaf(r) => out.push(r),
        Not(x) => requirements(x, out),
        All(v) | Any(v) => v.iter().for_each(|x| requirements(x, out)),
    }
}

/// A principal-ARN pattern as one principal of `account`: the account
/// segment becomes the account, any other wildcard a name no one chose
/// (so `role/*` stands for every role, and is not a gated one).
fn concrete(pattern: &str, account: &str) -> String {
    let parts: Vec<&str> = pattern.splitn(6, ':').collect();
    let p = if parts.len() == 6 && parts[4].contains(['*', '?']) {
        format!(
            "{}:{}:{}:{}:{account}:{}",
            parts[0], parts[1], parts[2], parts[3], parts[5]
        )
    } else {
        pattern.to_string()
    };
    p.replace('*', "any-principal").replace('?', "x")
}

fn evaluate_check(facts: &Facts, _: &Settings) -> Vec<Finding> {
    let Some(org) = &facts.organization else {
        return vec![];
    };
    let buckets: Vec<String> = {
        let mut b: Vec<String> = facts.trails().map(|(_, t)| t.bucket.clone()).collect();
        b.sort();
        b.dedup();
        b
    };
    let gated: Vec<String> = facts
        .twokey_targets
        .iter()
        .map(|t| t.role_arn.clone())
        .collect();
    facts
        .accounts
        .iter()
        .filter(|a| a.id != org.management_account)
        .map(|a| {
            let at = For::new(CHECK.id, &a.id);
            let resource = format!("account {}", a.id);
            let scps = match &a.scps {
                Collected::Ok(s) => s,
                Collected::Error(e) => return at.error(resource, "the SCPs in force", e),
            };
            match allowed(&a.id, scps, &buckets, facts.collected_at_ms, &gated) {
                Err(e) => at.error(resource, "the SCPs in force", &e),
                Ok(free) if free.is_empty() => at.decide(
                    resource,
                    true,
                    format!("the SCPs in force deny all {} monitoring-disabling actions in account {}", ACTIONS.len() + buckets.len() * BUCKET_ACTIONS.len(), a.id),
                    json!({"levels": scps.iter().map(|l| &l.target).collect::<Vec<_>>()}),
                ),
                Ok(free) => {
                    let shown: Vec<String> = free.iter().map(|(a, r, how)| if r == "*" { format!("{a} ({how})") } else { format!("{a} on {r} ({how})") }).collect();
                    at.decide(
                        resource,
                        false,
                        format!("in account {} the SCPs leave {} of the monitoring-disabling actions to an administrator: {}", a.id, free.len(), crate::model::first(&shown, 5)),
                        json!({"allowed": shown, "levels": scps.iter().map(|l| &l.target).collect::<Vec<_>>()}),
                    )
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    //! Table tests of the SCP evaluation: inheritance, NotAction, wildcards,
    //! conditions, a policy missing one action.

    use super::*;
    use crate::checks::fixture::*;
    use crate::facts::{Organization, Scp};
    use crate::Status::*;

    const FULL: &str =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

    fn deny(actions: &[&str]) -> String {
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": actions, "Resource": "*"}]}).to_string()
    }

    fn level(target: &str, docs: &[(&str, String)]) -> ScpLevel {
        ScpLevel {
            target: target.into(),
            policies: docs
                .iter()
                .map(|(name, d)| Scp {
                    id: format!("p-{name}"),
                    name: name.to_string(),
                    document: d.clone(),
                })
                .collect(),
        }
    }

    fn with(scps: Vec<ScpLevel>) -> Facts {
        let mut f = facts();
        f.organization = Some(Organization {
            id: "o-1".into(),
            management_account: "111122223333".into(),
        });
        f.accounts[0].scps = Collected::Ok(scps);
        f
    }

    fn all() -> Vec<&'static str> {
        ACTIONS.to_vec()
    }

    fn run(scps: Vec<ScpLevel>) -> Finding {
        let out = (CHECK.evaluate)(&with(scps), &Settings::default());
        assert_eq!(out.len(), 1);
        out[0].clone()
    }

    #[test]
    fn a_root_deny_of_every_action_is_inherited() {
        let f = run(vec![
            level(
                "r-root",
                &[("FullAWSAccess", FULL.into()), ("protect", deny(&all()))],
            ),
            level("ou-work", &[("FullAWSAccess", FULL.into())]),
            level(ACCOUNT, &[("FullAWSAccess", FULL.into())]),
        ]);
        assert_eq!(f.status, Pass, "{}", f.message);
    }

    #[test]
    fn wildcards_and_not_action_deny_too() {
        let wild = deny(&[
            "cloudtrail:*",
            "config:*",
            "guardduty:*",
            "securityhub:Disable*",
            "securityhub:Disassociate*",
            "backup:DeleteBackupVaultLock*",
            "organizations:LeaveOrganization",
        ]);
        assert_eq!(
            run(vec![level(
                "r-root",
                &[("FullAWSAccess", FULL.into()), ("wild", wild)]
            )])
            .status,
            Pass
        );
        // Deny everything except reads: NotAction.
        let not = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "NotAction": ["s3:Get*", "ec2:Describe*"], "Resource": "*"}]}).to_string();
        assert_eq!(
            run(vec![level(
                "r-root",
                &[("FullAWSAccess", FULL.into()), ("not", not)]
            )])
            .status,
            Pass
        );
    }

    #[test]
    fn a_policy_missing_one_action_fails_and_names_it() {
        let mut some = all();
        some.retain(|a| *a != "guardduty:UpdateDetector");
        let f = run(vec![level(
            "r-root",
            &[("FullAWSAccess", FULL.into()), ("protect", deny(&some))],
        )]);
        assert_eq!(f.status, Fail);
        assert!(
            f.message.contains("guardduty:UpdateDetector (not denied)")
                && f.message.contains("1 of"),
            "{}",
            f.message
        );
    }

    #[test]
    fn no_scp_but_full_access_fails_and_a_level_without_allow_denies() {
        assert_eq!(
            run(vec![level("r-root", &[("FullAWSAccess", FULL.into())])]).status,
            Fail
        );
        // An OU without FullAWSAccess and no allow: nothing is allowed below it.
        let f = run(vec![
            level("r-root", &[("FullAWSAccess", FULL.into())]),
            level("ou-locked", &[]),
        ]);
        assert_eq!(f.status, Pass, "{}", f.message);
    }

    #[test]
    fn a_conditional_exception_is_reported_with_its_principals() {
        let doc = json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Deny", "Action": all(), "Resource": "*",
            "Condition": {"ArnNotLike": {"aws:PrincipalARN": "arn:aws:iam::*:role/break-glass"}}
        }]})
        .to_string();
        let f = run(vec![level(
            "r-root",
            &[("FullAWSAccess", FULL.into()), ("protect", doc)],
        )]);
        assert_eq!(f.status, Fail);
        assert!(
            f.message.contains(
                "exempts arn:aws:iam::222233334444:role/break-glass, not a role twokey gates"
            ),
            "{}",
            f.message
        );
    }

    fn excepting(key: &str, op: &str, value: &str, gated: &[&str]) -> Finding {
        let doc = json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Deny", "Action": all(), "Resource": "*",
            "Condition": {op: {key: value}}
        }]})
        .to_string();
        let mut f = with(vec![level(
            "r-root",
            &[("FullAWSAccess", FULL.into()), ("protect", doc)],
        )]);
        f.twokey_targets = gated
            .iter()
            .map(|r| crate::facts::AssumeTarget {
                entitlement: "break-glass".into(),
                role_arn: r.to_string(),
                principals: vec![],
                trust: Collected::Ok(String::new()),
            })
            .collect();
        let out = (CHECK.evaluate)(&f, &Settings::default());
        out[0].clone()
    }

    #[test]
    fn an_exception_for_a_role_twokey_gates_passes_and_any_other_fails() {
        let gated = "arn:aws:iam::222233334444:role/break-glass";
        let arn = "aws:PrincipalARN";
        // The one exempted principal is the gated role: pass.
        let f = excepting(
            arn,
            "ArnNotLike",
            "arn:aws:iam::*:role/break-glass",
            &[gated],
        );
        assert_eq!(f.status, Pass, "{}", f.message);
        // A wider pattern exempts every role, gated or not.
        let f = excepting(arn, "ArnNotLike", "arn:aws:iam::*:role/*", &[gated]);
        assert_eq!(f.status, Fail);
        assert!(
            f.message
                .contains("exempts arn:aws:iam::222233334444:role/"),
            "{}",
            f.message
        );
        let f = excepting(
            arn,
            "ArnNotLike",
            "arn:aws:iam::*:role/break-glass*",
            &[gated],
        );
        assert_eq!(f.status, Fail, "{}", f.message);
        // A deny that names the roles it denies exempts everyone else.
        let f = excepting(arn, "ArnLike", "arn:aws:iam::*:role/intern", &[gated]);
        assert_eq!(f.status, Fail);
        assert!(f.message.contains("role/administrator"), "{}", f.message);
        // A condition on something else than the principal: shown as is.
        let f = excepting("aws:PrincipalTag/team", "StringNotEquals", "sre", &[gated]);
        assert_eq!(f.status, Fail);
        assert!(
            f.message.contains("allowed if") && f.message.contains("team"),
            "{}",
            f.message
        );
    }

    #[test]
    fn the_log_bucket_is_protected_by_resource() {
        let mut f = with(vec![level(
            "r-root",
            &[("FullAWSAccess", FULL.into()), ("protect", deny(&all()))],
        )]);
        region_mut(&mut f).trails = Collected::Ok(vec![crate::facts::Trail {
            bucket: "org-logs".into(),
            ..Default::default()
        }]);
        let out = (CHECK.evaluate)(&f, &Settings::default());
        assert_eq!(out[0].status, Fail);
        assert!(
            out[0]
                .message
                .contains("s3:PutBucketPolicy on arn:aws:s3:::org-logs"),
            "{}",
            out[0].message
        );
        let bucket = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": BUCKET_ACTIONS, "Resource": "arn:aws:s3:::org-logs"}]}).to_string();
        f.accounts[0].scps = Collected::Ok(vec![level(
            "r-root",
            &[
                ("FullAWSAccess", FULL.into()),
                ("protect", deny(&all())),
                ("bucket", bucket),
            ],
        )]);
        assert_eq!((CHECK.evaluate)(&f, &Settings::default())[0].status, Pass);
    }

    #[test]
    fn the_management_account_is_not_judged_and_errors_are_errors() {
        let mut f = with(vec![]);
        f.accounts[0].id = "111122223333".into();
        assert!((CHECK.evaluate)(&f, &Settings::default()).is_empty());
        let mut f = with(vec![]);
        f.accounts[0].scps = Collected::Error("AccessDenied".into());
        assert_eq!(statuses(&CHECK, &f), vec![Error]);
        let f = with(vec![level("r-root", &[("bad", "not json".into())])]);
        assert_eq!(statuses(&CHECK, &f), vec![Error]);
    }
}
