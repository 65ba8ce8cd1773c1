//! Every AWS Backup vault that holds recovery points has a Vault Lock in
//! compliance mode (a `LockDate` that has passed) with at least the
//! configured minimum retention. A lock without a lock date is governance
//! mode, and a lock whose date is still ahead is in its cooling-off time:
//! both can be removed, so both fail.

use serde_json::json;

use super::{days_between, per_region};
use crate::facts::{Facts, Vault};
use crate::model::{Check, Finding, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "backup.vault_lock_compliance",
    title: "Backup vaults with recovery points have a compliance-mode Vault Lock",
    severity: Severity::High,
    prowler: &[],
    why: "Backups are the way back after a destructive action; without a compliance-mode lock one administrator can delete the recovery points together with the data.",
    remediation: Remediation {
        cli: "aws backup put-backup-vault-lock-configuration --backup-vault-name VAULT --min-retention-days 35 --changeable-for-days 3",
        terraform: "resource \"aws_backup_vault_lock_configuration\" \"vault\" {\n  backup_vault_name   = aws_backup_vault.vault.name\n  min_retention_days  = 35\n  changeable_for_days = 3\n}",
    },
    evaluate,
};

fn decide(v: &Vault, now: i64, min: i64) -> (bool, String) {
    let name = &v.name;
    let n = v.recovery_points;
    match (v.locked, v.lock_date_ms) {
        (false, _) => (false, format!("vault {name} holds {n} recovery points and has no Vault Lock")),
        (true, None) => (false, format!("vault {name} has a governance-mode Vault Lock (no lock date): it can be removed")),
        (true, Some(d)) if d > now => (false, format!("vault {name}'s Vault Lock is still in its cooling-off time for {} more days: it can be removed until then", days_between(now, d) + 1)),
        (true, Some(_)) => match v.min_retention_days {
            Some(r) if r >= min => (true, format!("vault {name} has a compliance-mode Vault Lock with {r} days minimum retention")),
            Some(r) => (false, format!("vault {name}'s compliance-mode Vault Lock keeps recovery points only {r} days (at least {min} required)")),
            None => (false, format!("vault {name}'s compliance-mode Vault Lock sets no minimum retention")),
        },
    }
}

fn evaluate(facts: &Facts, settings: &Settings) -> Vec<Finding> {
    let min = i64::from(settings.backup_min_retention_days);
    per_region(
        facts,
        CHECK.id,
        "Backup vaults",
        |r| &r.backup_vaults,
        |at, _, vaults| {
            vaults
                .iter()
                .filter(|v| v.recovery_points > 0 || settings.backup_include_empty_vaults)
                .map(|v| {
                    let (ok, msg) = decide(v, facts.collected_at_ms, min);
                    at.decide(&v.arn, ok, msg, json!({"vault": v}))
                })
                .collect()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixture::*;
    use crate::facts::Collected;
    use crate::Status::*;

    /// An edit of a passing value and what the failure must say.
    type Case = (fn(&mut Vault), &'static str);

    fn with(v: Vault) -> Facts {
        let mut f = facts();
        region_mut(&mut f).backup_vaults = Collected::Ok(vec![v]);
        f
    }

    fn compliance() -> Vault {
        Vault {
            arn: "arn:aws:backup:eu-west-1:222233334444:backup-vault:v".into(),
            name: "v".into(),
            recovery_points: 12,
            locked: true,
            lock_date_ms: Some(NOW - DAY),
            min_retention_days: Some(35),
        }
    }

    #[test]
    fn a_compliance_lock_past_its_date_passes() {
        assert_eq!(statuses(&CHECK, &with(compliance())), vec![Pass]);
    }

    #[test]
    fn no_lock_governance_cooling_off_and_short_retention_fail() {
        let cases: [Case; 4] = [
            (|v| v.locked = false, "no Vault Lock"),
            (|v| v.lock_date_ms = None, "governance"),
            (|v| v.lock_date_ms = Some(NOW + 3 * DAY), "cooling-off"),
            (|v| v.min_retention_days = Some(7), "only 7 days"),
        ];
        for (edit, said) in cases {
            let mut v = compliance();
            edit(&mut v);
            let out = (CHECK.evaluate)(&with(v), &Settings::default());
            assert_eq!(out[0].status, Fail);
            assert!(out[0].message.contains(said), "{}", out[0].message);
        }
    }

    #[test]
    fn empty_vaults_are_skipped_unless_asked() {
        let v = Vault {
            recovery_points: 0,
            locked: false,
            ..compliance()
        };
        assert_eq!(statuses(&CHECK, &with(v.clone())), vec![]);
        let s = Settings {
            backup_include_empty_vaults: true,
            ..Settings::default()
        };
        assert_eq!((CHECK.evaluate)(&with(v), &s)[0].status, Fail);
    }
}
