//! The checks, one module each; [`crate::Registry::builtin`] lists them.
//!
//! A check is a [`Check`](crate::Check) constant with a pure evaluation
//! function over [`Facts`]. The helpers here walk the accounts and regions
//! and turn a part that could not be collected into an error finding, so a
//! check's code holds only its decisions.

use crate::facts::{
    Account, AccountBaseline, AccountScan, Collected, Facts, Region, RegionBaseline,
};
use crate::model::{Finding, For};

pub mod backup_vault_customer_key;
pub mod backup_vault_lock;
pub mod cloudtrail_bucket_account;
pub mod cloudtrail_object_lock;
pub mod cloudtrail_realtime;
pub mod cloudtrail_trail;
pub mod code_guardrails_protected;
pub mod config_recorder;
pub mod custody_rotated;
pub mod ec2_ebs_default_encryption;
pub mod guardduty_enabled;
pub mod iam_console_users;
pub mod iam_password_policy;
pub mod iam_privilege_escalation;
pub mod iam_standing_access;
pub mod iam_unused_credentials;
pub mod iam_unused_roles;
pub mod iam_workload_users;
pub mod identity_federation;
pub mod kms_policy_not_open;
pub mod kms_rotation;
pub mod logs_retention;
pub mod rds_storage_encrypted;
pub mod redshift_encrypted;
pub mod root_centralized_access;
pub mod root_hardware_mfa;
pub mod root_management_custody;
pub mod root_member_credentials;
pub mod root_no_access_keys;
pub mod s3_default_encryption;
pub mod s3_log_bucket_logging;
pub mod scp_monitoring;
pub mod securityhub_enabled;
pub mod sqs_sns_encrypted;
pub mod twokey_assume_trust;
pub mod vpc_flow_logs;

/// Runs `f` on every reached account; an unreached account gives one error
/// finding.
pub(crate) fn per_account(
    facts: &Facts,
    check: &'static str,
    mut f: impl FnMut(For<'_>, &Account, &AccountScan) -> Vec<Finding>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for a in &facts.accounts {
        let at = For::new(check, &a.id);
        match &a.scan {
            Collected::Ok(scan) => out.extend(f(at, a, scan)),
            Collected::Error(e) => {
                out.push(at.error(format!("account {}", a.id), "the account", e))
            }
        }
    }
    out
}

/// Runs `f` on one collected part of every region of every reached account
/// (`part` picks it; `what` names it in an error finding).
pub(crate) fn per_region<T>(
    facts: &Facts,
    check: &'static str,
    what: &str,
    part: fn(&Region) -> &Collected<T>,
    mut f: impl FnMut(For<'_>, &Account, &T) -> Vec<Finding>,
) -> Vec<Finding> {
    per_account(facts, check, |at, account, scan| {
        let mut out = Vec::new();
        for r in &scan.regions {
            let at = at.region(&r.name);
            match part(r) {
                Collected::Ok(v) => out.extend(f(at, account, v)),
                Collected::Error(e) => out.push(at.error(format!("{what} in {}", r.name), what, e)),
            }
        }
        out
    })
}

/// Runs `f` on the IAM facts of every reached account.
pub(crate) fn per_iam(
    facts: &Facts,
    check: &'static str,
    mut f: impl FnMut(For<'_>, &Account, &crate::facts::Iam) -> Vec<Finding>,
) -> Vec<Finding> {
    per_account(facts, check, |at, account, scan| match &scan.iam {
        Collected::Ok(iam) => f(at, account, iam),
        Collected::Error(e) => vec![at.error(format!("account {}", account.id), "IAM", e)],
    })
}

/// Runs `f` on one collected part of the baseline facts of every region
/// of every reached account; regions whose facts carry no baseline (recorded
/// before these checks) are not judged.
pub(crate) fn per_region_baseline<T>(
    facts: &Facts,
    check: &'static str,
    what: &str,
    part: fn(&RegionBaseline) -> &Collected<T>,
    mut f: impl FnMut(For<'_>, &Account, &T) -> Vec<Finding>,
) -> Vec<Finding> {
    per_account(facts, check, |at, account, scan| {
        let mut out = Vec::new();
        for r in &scan.regions {
            let Some(b) = &r.baseline else { continue };
            let at = at.region(&r.name);
            match part(b) {
                Collected::Ok(v) => out.extend(f(at, account, v)),
                Collected::Error(e) => out.push(at.error(format!("{what} in {}", r.name), what, e)),
            }
        }
        out
    })
}

/// Runs `f` on one collected part of the account-wide baseline facts of
/// every reached account that has them.
pub(crate) fn per_account_baseline<T>(
    facts: &Facts,
    check: &'static str,
    what: &str,
    part: fn(&AccountBaseline) -> &Collected<T>,
    mut f: impl FnMut(For<'_>, &Account, &AccountScan, &T) -> Vec<Finding>,
) -> Vec<Finding> {
    per_account(facts, check, |at, account, scan| {
        let Some(b) = &scan.baseline else {
            return vec![];
        };
        match part(b) {
            Collected::Ok(v) => f(at, account, scan, v),
            Collected::Error(e) => vec![at.error(format!("account {}", account.id), what, e)],
        }
    })
}

/// Whole days between two Unix-ms instants (floored).
pub(crate) fn days_between(from_ms: i64, to_ms: i64) -> i64 {
    (to_ms - from_ms).div_euclid(86_400_000)
}

/// Whether the account runs workloads: every account except the
/// organisation's management account and the named log-archive account.
pub(crate) fn is_workload(account: &Account, settings: &crate::Settings) -> bool {
    !account.management && settings.log_archive_account.as_deref() != Some(account.id.as_str())
}

#[cfg(test)]
pub(crate) mod fixture {
    //! Facts for the checks' unit tests: one reached member account with
    //! one region, which each test edits.

    use crate::facts::*;

    pub(crate) const NOW: i64 = 1_800_000_000_000;
    pub(crate) const DAY: i64 = 86_400_000;
    pub(crate) const ACCOUNT: &str = "222233334444";

    pub(crate) fn region() -> Region {
        Region {
            name: "eu-west-1".into(),
            trails: Collected::Ok(vec![]),
            backup_vaults: Collected::Ok(vec![]),
            config: Collected::Ok(ConfigService::default()),
            guardduty: Collected::Ok(vec![]),
            securityhub: Collected::Ok(None),
            baseline: Some(RegionBaseline::default()),
        }
    }

    pub(crate) fn account(id: &str, management: bool) -> Account {
        Account {
            id: id.into(),
            name: Some(format!("acct-{id}")),
            management,
            ou_path: None,
            scps: Collected::Ok(vec![]),
            scan: Collected::Ok(AccountScan {
                iam: Collected::Ok(Iam::default()),
                bucket_names: vec![],
                buckets: vec![],
                regions: vec![region()],
                baseline: Some(AccountBaseline::default()),
            }),
        }
    }

    pub(crate) fn facts() -> Facts {
        Facts {
            collected_at_ms: NOW,
            organization: None,
            accounts: vec![account(ACCOUNT, false)],
            twokey_targets: vec![],
            twokey_gateway: vec![],
            root_access: None,
            custody: vec![],
            github: None,
        }
    }

    pub(crate) fn scan(f: &mut Facts, i: usize) -> &mut AccountScan {
        match &mut f.accounts[i].scan {
            Collected::Ok(s) => s,
            Collected::Error(_) => panic!("fixture account is reached"),
        }
    }

    pub(crate) fn iam(f: &mut Facts) -> &mut Iam {
        match &mut scan(f, 0).iam {
            Collected::Ok(i) => i,
            Collected::Error(_) => panic!("fixture IAM is collected"),
        }
    }

    pub(crate) fn region_mut(f: &mut Facts) -> &mut Region {
        &mut scan(f, 0).regions[0]
    }

    /// The statuses of a check's findings, in order.
    pub(crate) fn statuses(check: &crate::Check, f: &Facts) -> Vec<crate::Status> {
        statuses_with(check, f, &crate::Settings::default())
    }

    /// The same, under `settings`.
    pub(crate) fn statuses_with(
        check: &crate::Check,
        f: &Facts,
        settings: &crate::Settings,
    ) -> Vec<crate::Status> {
        (check.evaluate)(f, settings)
            .into_iter()
            .map(|x| x.status)
            .collect()
    }
}
