//! `twokey scp generate`: the guard-rail SCPs that keep monitoring on, the
//! ones [`crate::checks::scp_monitoring`] looks for. Pure: the inputs (log
//! buckets, trail, Backup vaults, break-glass role) in, minified JSON
//! documents and Terraform out.
//!
//! AWS limits (Organizations quotas): a policy document holds at most
//! 5,120 characters, and a target (root, OU, account) at most 5 SCPs, of
//! which `FullAWSAccess` usually is one. Statements are packed into as few
//! documents as fit; a statement too long on its own is split by actions;
//! more documents than `max_policies` is an error saying how many it took.

use serde_json::{json, Value};

use crate::checks::scp_monitoring::{ACTIONS, BUCKET_ACTIONS};

/// AWS's limit on one SCP document, in characters (minified JSON).
pub const MAX_CHARS: usize = 5120;
/// AWS's limit on SCPs attached to one target.
pub const MAX_PER_TARGET: usize = 5;

/// What the guard rails protect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuardRails {
    /// The CloudTrail log buckets (names).
    pub log_buckets: Vec<String>,
    /// The organisation trail's ARN (named in each policy's description).
    pub trail: Option<String>,
    /// Backup vault ARNs whose recovery points and access policy are kept.
    pub vaults: Vec<String>,
    /// The break-glass role exempted from every deny (an ARN; the account
    /// may be `*` for the same role name in every account). It must be a
    /// role twokey gates, or the check fails the exemption.
    pub break_glass_role: Option<String>,
    /// How many SCPs may be generated (5 minus the ones already attached
    /// at the target, `FullAWSAccess` usually: 4).
    pub max_policies: usize,
}

/// Extra actions beyond the check's list, from AWS's published guard rails
/// (Control Tower controls, `aws-samples/service-control-policy-examples`):
/// they suppress findings or detach members without stopping a detector.
const MORE_MONITORING: &[&str] = &[
    "cloudtrail:DeleteEventDataStore",
    "cloudtrail:StopEventDataStoreIngestion",
    "config:DeleteConfigRule",
    "config:DeleteEvaluationResults",
    "config:DeleteRetentionConfiguration",
    "config:PutRetentionConfiguration",
    "config:PutDeliveryChannel",
    "guardduty:CreateFilter",
    "guardduty:UpdateFilter",
    "guardduty:CreateIPSet",
    "guardduty:UpdateIPSet",
    "guardduty:DeletePublishingDestination",
    "guardduty:UpdatePublishingDestination",
    "guardduty:DeleteMembers",
    "guardduty:DisassociateMembers",
    "guardduty:StopMonitoringMembers",
    "securityhub:DeleteInsight",
    "securityhub:DisableImportFindingsForProduct",
    "securityhub:BatchDisableStandards",
    "securityhub:DeleteMembers",
    "securityhub:DisassociateMembers",
    "access-analyzer:DeleteAnalyzer",
];

const MORE_BUCKET: &[&str] = &[
    "s3:DeleteBucket",
    "s3:PutEncryptionConfiguration",
    "s3:PutBucketVersioning",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketLogging",
    "s3:PutBucketAcl",
];

const BUCKET_OBJECTS: &[&str] = &[
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:BypassGovernanceRetention",
    "s3:PutObjectRetention",
    "s3:PutObjectLegalHold",
];

const VAULT: &[&str] = &[
    "backup:DeleteBackupVault",
    "backup:DeleteRecoveryPoint",
    "backup:UpdateRecoveryPointLifecycle",
    "backup:PutBackupVaultAccessPolicy",
    "backup:DeleteBackupVaultAccessPolicy",
    "backup:PutBackupVaultLockConfiguration",
];

/// One generated SCP.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedScp {
    /// `twokey-guardrails-1`, ...
    pub name: String,
    /// What it protects.
    pub description: String,
    /// The minified document (at most [`MAX_CHARS`]).
    pub document: String,
}

/// Why no set of SCPs could be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScpError {
    /// An input is malformed.
    #[error("{0}")]
    Input(String),
    /// The statements need more documents than allowed.
    #[error("the guard rails need {needed} SCPs of at most 5,120 characters, but only {allowed} may be attached to a target (AWS allows 5, FullAWSAccess usually takes one): protect fewer buckets or vaults per policy set, or attach the rest at an OU")]
    TooMany {
        /// Documents the statements take.
        needed: usize,
        /// Documents allowed.
        allowed: usize,
    },
}

fn check_inputs(g: &GuardRails) -> Result<(), ScpError> {
    for b in &g.log_buckets {
        let ok = (3..=63).contains(&b.len())
            && b.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.');
        if !ok {
            return Err(ScpError::Input(format!(
                "--log-bucket {b:?} is not an S3 bucket name (3-63 lowercase letters, digits, '-' or '.')"
            )));
        }
    }
    for v in &g.vaults {
        if !v.starts_with("arn:aws:backup:") || !v.contains(":backup-vault:") {
            return Err(ScpError::Input(format!(
                "--vault {v:?} is not a Backup vault ARN (arn:aws:backup:REGION:ACCOUNT:backup-vault:NAME)"
            )));
        }
    }
    if let Some(t) = &g.trail {
        if !t.starts_with("arn:aws:cloudtrail:") || !t.contains(":trail/") {
            return Err(ScpError::Input(format!(
                "--trail {t:?} is not a trail ARN (arn:aws:cloudtrail:REGION:ACCOUNT:trail/NAME)"
            )));
        }
    }
    if let Some(r) = &g.break_glass_role {
        if !r.starts_with("arn:aws:iam::") || !r.contains(":role/") {
            return Err(ScpError::Input(format!(
                "--break-glass-role {r:?} is not a role ARN (arn:aws:iam::ACCOUNT:role/NAME; ACCOUNT may be *)"
            )));
        }
    }
    if g.max_policies == 0 || g.max_policies > MAX_PER_TARGET {
        return Err(ScpError::Input(format!(
            "--max-policies {} must be between 1 and {MAX_PER_TARGET}",
            g.max_policies
        )));
    }
    Ok(())
}

/// A deny statement, exempting the break-glass role when there is one.
fn deny(sid: &str, actions: &[&str], resources: Vec<String>, g: &GuardRails) -> Value {
    let mut s = json!({"Sid": sid, "Effect": "Deny", "Action": actions, "Resource": resources});
    if let Some(r) = &g.break_glass_role {
        s["Condition"] = json!({"ArnNotLike": {"aws:PrincipalARN": r}});
    }
    s
}

/// Every statement, before packing.
pub fn statements(g: &GuardRails) -> Vec<Value> {
    let mut monitoring: Vec<&str> = ACTIONS.to_vec();
    monitoring.extend(MORE_MONITORING);
    let mut out = vec![deny("KeepMonitoringOn", &monitoring, vec!["*".into()], g)];
    if !g.log_buckets.is_empty() {
        let mut bucket: Vec<&str> = BUCKET_ACTIONS.to_vec();
        bucket.extend(MORE_BUCKET);
        let arns = g.log_buckets.iter().map(|b| format!("arn:aws:s3:::{b}"));
        out.push(deny("KeepLogBucket", &bucket, arns.collect(), g));
        let objects = g.log_buckets.iter().map(|b| format!("arn:aws:s3:::{b}/*"));
        out.push(deny("KeepLogObjects", BUCKET_OBJECTS, objects.collect(), g));
    }
    if !g.vaults.is_empty() {
        out.push(deny("KeepBackupVaults", VAULT, g.vaults.clone(), g));
        let points = g.vaults.iter().map(|v| {
            let (head, _) = v.split_once(":backup-vault:").unwrap_or((v, ""));
            format!("{head}:recovery-point:*")
        });
        out.push(deny(
            "KeepRecoveryPoints",
            &[
                "backup:DeleteRecoveryPoint",
                "backup:UpdateRecoveryPointLifecycle",
            ],
            points.collect(),
            g,
        ));
    }
    out
}

fn document(statements: &[Value]) -> String {
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

/// A statement too long for one document, split in halves by `Resource`
/// then by `Action` until each part fits.
fn split(s: Value) -> Result<Vec<Value>, ScpError> {
    if document(std::slice::from_ref(&s)).len() <= MAX_CHARS {
        return Ok(vec![s]);
    }
    for key in ["Resource", "Action"] {
        let list = s[key].as_array().cloned().unwrap_or_default();
        if list.len() > 1 {
            let (a, b) = list.split_at(list.len() / 2);
            let sid = s["Sid"].as_str().unwrap_or("Part").to_string();
            let mut out = Vec::new();
            for (i, half) in [a, b].into_iter().enumerate() {
                let mut part = s.clone();
                part[key] = Value::Array(half.to_vec());
                part["Sid"] = json!(format!("{sid}{}", i + 1));
                out.extend(split(part)?);
            }
            return Ok(out);
        }
    }
    Err(ScpError::Input(format!(
        "statement {} is longer than {MAX_CHARS} characters with one action and one resource",
        s["Sid"]
    )))
}

/// The SCPs: statements packed first-fit into documents of at most
/// [`MAX_CHARS`] characters, at most `max_policies` of them.
pub fn generate(g: &GuardRails) -> Result<Vec<GeneratedScp>, ScpError> {
    check_inputs(g)?;
    let mut parts = Vec::new();
    for s in statements(g) {
        parts.extend(split(s)?);
    }
    let mut docs: Vec<Vec<Value>> = Vec::new();
    for s in parts {
        let slot = docs.iter_mut().find(|d| {
            let mut t = (*d).clone();
            t.push(s.clone());
            document(&t).len() <= MAX_CHARS
        });
        match slot {
            Some(d) => d.push(s),
            None => docs.push(vec![s]),
        }
    }
    if docs.len() > g.max_policies {
        return Err(ScpError::TooMany {
            needed: docs.len(),
            allowed: g.max_policies,
        });
    }
    let n = docs.len();
    let about = match &g.trail {
        Some(t) => format!("twokey guard rails (trail {t})"),
        None => "twokey guard rails".to_string(),
    };
    Ok(docs
        .iter()
        .enumerate()
        .map(|(i, d)| GeneratedScp {
            name: format!("twokey-guardrails-{}", i + 1),
            description: format!("{about}, part {} of {n}: monitoring stays on", i + 1),
            document: document(d),
        })
        .collect())
}

/// Terraform for the SCPs: one `aws_organizations_policy` per document
/// (reading the JSON file written next to it) and its attachment to
/// `var.scp_target_id` (the root, so every member account inherits them).
pub fn terraform(scps: &[GeneratedScp]) -> String {
    let mut out = String::from(
        "# Generated by `twokey scp generate`. Deploy through the twokey deploy gate:\n# a change here needs a second person's approval before `terraform apply`.\n\nvariable \"scp_target_id\" {\n  description = \"The organisation root (r-...) or OU the guard rails are attached to\"\n  type        = string\n}\n",
    );
    for s in scps {
        let id = s.name.replace('-', "_");
        out.push_str(&format!(
            "\nresource \"aws_organizations_policy\" \"{id}\" {{\n  name        = \"{name}\"\n  description = {desc}\n  type        = \"SERVICE_CONTROL_POLICY\"\n  content     = file(\"${{path.module}}/{name}.json\")\n}}\n\nresource \"aws_organizations_policy_attachment\" \"{id}\" {{\n  policy_id = aws_organizations_policy.{id}.id\n  target_id = var.scp_target_id\n}}\n",
            name = s.name,
            desc = serde_json::to_string(&s.description).unwrap_or_default(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::scp_monitoring::allowed;
    use crate::facts::{Scp, ScpLevel};

    const FULL: &str =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

    fn rails() -> GuardRails {
        GuardRails {
            log_buckets: vec!["org-cloudtrail-logs".into()],
            trail: Some("arn:aws:cloudtrail:us-east-1:111122223333:trail/org".into()),
            vaults: vec!["arn:aws:backup:us-east-1:222233334444:backup-vault:prod".into()],
            break_glass_role: None,
            max_policies: 4,
        }
    }

    fn root(scps: &[GeneratedScp]) -> Vec<ScpLevel> {
        let mut policies = vec![Scp {
            id: "p-FullAWSAccess".into(),
            name: "FullAWSAccess".into(),
            document: FULL.into(),
        }];
        policies.extend(scps.iter().map(|s| Scp {
            id: format!("p-{}", s.name),
            name: s.name.clone(),
            document: s.document.clone(),
        }));
        vec![ScpLevel {
            target: "r-root".into(),
            policies,
        }]
    }

    #[test]
    fn the_generated_scps_deny_everything_the_check_asks() {
        let scps = generate(&rails()).expect("fits");
        assert!(scps.iter().all(|s| s.document.len() <= MAX_CHARS));
        let free = allowed(
            "222233334444",
            &root(&scps),
            &["org-cloudtrail-logs".into()],
            0,
            &[],
        )
        .expect("parses");
        assert!(free.is_empty(), "{free:?}");
    }

    #[test]
    fn removing_one_statement_makes_the_check_fail() {
        let g = rails();
        let all = statements(&g);
        for (i, s) in all.iter().enumerate() {
            let mut less = all.clone();
            less.remove(i);
            let scps = vec![GeneratedScp {
                name: "less".into(),
                description: String::new(),
                document: document(&less),
            }];
            let free =
                allowed("222233334444", &root(&scps), &g.log_buckets, 0, &[]).expect("parses");
            let sid = s["Sid"].as_str().unwrap_or_default();
            // The object and vault statements protect more than the check asks.
            if ["KeepMonitoringOn", "KeepLogBucket"].contains(&sid) {
                assert!(!free.is_empty(), "without {sid} the check still passes");
            }
        }
    }

    #[test]
    fn many_buckets_split_across_documents_and_too_many_is_an_error() {
        let mut g = rails();
        g.max_policies = 5;
        g.log_buckets = (0..200)
            .map(|i| format!("org-logs-bucket-{i:04}"))
            .collect();
        let scps = generate(&g).expect("fits in 5");
        assert!(scps.len() > 1 && scps.len() <= 5, "{}", scps.len());
        assert!(scps.iter().all(|s| s.document.len() <= MAX_CHARS));
        // A statement longer than a document was split: more statements than written.
        let sids: usize = scps
            .iter()
            .map(|s| s.document.matches("\"Sid\"").count())
            .sum();
        assert!(sids > statements(&g).len(), "{sids}");
        let free = allowed("222233334444", &root(&scps), &g.log_buckets, 0, &[]).expect("parses");
        assert!(free.is_empty(), "{free:?}");
        g.log_buckets = (0..600)
            .map(|i| format!("org-logs-bucket-{i:04}"))
            .collect();
        let e = generate(&g).expect_err("too many");
        assert!(e.to_string().contains("only 5 may be attached"), "{e}");
        assert!(matches!(e, ScpError::TooMany { allowed: 5, .. }));
    }

    #[test]
    fn bad_inputs_say_which() {
        let mut g = rails();
        g.log_buckets = vec!["Bad_Bucket".into()];
        assert!(generate(&g)
            .expect_err("bad")
            .to_string()
            .contains("--log-bucket \"Bad_Bucket\""));
        let mut g = rails();
        g.break_glass_role = Some("break-glass".into());
        assert!(generate(&g)
            .expect_err("bad")
            .to_string()
            .contains("--break-glass-role"));
        let mut g = rails();
        g.max_policies = 6;
        assert!(generate(&g)
            .expect_err("bad")
            .to_string()
            .contains("--max-policies"));
    }

    #[test]
    fn terraform_names_each_policy_and_its_file() {
        let scps = generate(&rails()).expect("fits");
        let tf = terraform(&scps);
        assert!(tf.contains("resource \"aws_organizations_policy\" \"twokey_guardrails_1\""));
        assert!(tf.contains("file(\"${path.module}/twokey-guardrails-1.json\")"));
        assert!(tf.contains("aws_organizations_policy_attachment"));
    }
}
