//! Customer-managed symmetric KMS keys rotate automatically.

use serde_json::json;

use super::per_region_baseline;
use crate::facts::Facts;
use crate::model::{Check, Finding, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "kms.rotation_enabled",
    title: "Customer-managed KMS keys rotate automatically",
    severity: Severity::Low,
    prowler: &["kms_cmk_rotation_enabled"],
    why: "Rotation bounds what one leaked or misused key version can decrypt; it is hygiene the baseline asks for on every key that protects logs, backups and data.",
    remediation: Remediation {
        cli: "aws kms enable-key-rotation --key-id KEY_ID",
        terraform: "resource \"aws_kms_key\" \"this\" {\n  enable_key_rotation = true\n}",
    },
    evaluate,
};

fn evaluate(facts: &Facts, _: &Settings) -> Vec<Finding> {
    per_region_baseline(
        facts,
        CHECK.id,
        "KMS keys",
        |b| &b.kms_keys,
        |at, _, keys| {
            keys.iter()
                // Asymmetric and HMAC keys cannot rotate automatically; disabled
                // keys protect nothing new.
                .filter(|k| k.enabled && k.symmetric)
                .map(|k| {
                    at.decide(
                        k.arn.clone(),
                        k.rotation,
                        format!(
                            "key {} {} automatic rotation",
                            k.arn,
                            if k.rotation { "has" } else { "does not have" }
                        ),
                        json!({"rotation": k.rotation}),
                    )
                })
                .collect()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixture::*;
    use crate::facts::baseline::KmsKey;
    use crate::facts::*;
    use crate::Status::*;

    #[test]
    fn rotation_off_fails_asymmetric_and_disabled_are_not_judged() {
        let mut f = facts();
        let k = |enabled, symmetric, rotation| KmsKey {
            arn: "k".into(),
            enabled,
            symmetric,
            rotation,
            policy: serde_json::Value::Null,
        };
        region_mut(&mut f)
            .baseline
            .as_mut()
            .expect("baseline")
            .kms_keys = Collected::Ok(vec![
            k(true, true, false),
            k(true, true, true),
            k(true, false, false),
            k(false, true, false),
        ]);
        assert_eq!(statuses(&CHECK, &f), vec![Fail, Pass]);
    }
}
