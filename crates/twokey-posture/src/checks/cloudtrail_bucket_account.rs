//! A trail's S3 bucket sits in another account than the one it logs (the
//! log-archive account, when one is named), so the people who work in an
//! account cannot delete or rewrite its record.

use serde_json::json;

use crate::facts::{Collected, Facts};
use crate::model::{Check, Finding, For, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "cloudtrail.bucket_other_account",
    title: "Each trail delivers to a bucket in another account (the log archive)",
    severity: Severity::High,
    prowler: &[],
    why: "An administrator of the logged account who also owns the log bucket can change its policy, lifecycle or lock and remove the record of what they did alone.",
    remediation: Remediation {
        cli: "aws cloudtrail update-trail --name TRAIL --s3-bucket-name LOG_ARCHIVE_BUCKET   # a bucket created in the log-archive account, its policy allowing cloudtrail.amazonaws.com",
        terraform: "resource \"aws_cloudtrail\" \"org\" {\n  # ...\n  s3_bucket_name = \"org-trail-logs\" # created by the log-archive account's provider\n}",
    },
    evaluate,
};

fn evaluate(facts: &Facts, settings: &Settings) -> Vec<Finding> {
    let some_unreached = facts
        .accounts
        .iter()
        .any(|a| matches!(a.scan, Collected::Error(_)));
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (account, t) in facts.trails() {
        if !seen.insert(t.arn.as_str()) {
            continue;
        }
        let at = For::new(CHECK.id, &account.id).region(&t.home_region);
        let owner = facts.bucket(&t.bucket).map(|(a, _)| a.id.as_str());
        let evidence = json!({"trail": t.arn, "bucket": t.bucket, "bucket_account": owner});
        let f = match (owner, settings.log_archive_account.as_deref()) {
            (None, _) if some_unreached => at.error(
                &t.arn,
                "the bucket's account",
                &format!("bucket {} is not in any account reached", t.bucket),
            ),
            (None, _) => at.decide(&t.arn, false, format!("trail {} writes to bucket {}, which no account of the organisation owns", t.name, t.bucket), evidence),
            (Some(o), _) if o == account.id => at.decide(&t.arn, false, format!("trail {} writes to bucket {} in its own account {o}", t.name, t.bucket), evidence),
            (Some(o), Some(archive)) if o != archive => at.decide(&t.arn, false, format!("trail {} writes to bucket {} in account {o}, not the log-archive account {archive}", t.name, t.bucket), evidence),
            (Some(o), _) => at.decide(&t.arn, true, format!("trail {} writes to bucket {} in account {o}", t.name, t.bucket), evidence),
        };
        out.push(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixture::*;
    use crate::facts::*;
    use crate::Status::*;

    const ARCHIVE: &str = "999988887777";

    fn with_bucket_in(owner: &str) -> Facts {
        let mut f = facts();
        region_mut(&mut f).trails = Collected::Ok(vec![Trail {
            arn: "arn:aws:cloudtrail:eu-west-1:222233334444:trail/t".into(),
            name: "t".into(),
            home_region: "eu-west-1".into(),
            bucket: "logs".into(),
            ..Trail::default()
        }]);
        f.accounts.push(account(ARCHIVE, false));
        let i = f
            .accounts
            .iter()
            .position(|a| a.id == owner)
            .expect("owner");
        scan(&mut f, i).buckets.push(Bucket {
            name: "logs".into(),
            object_lock: Collected::Ok(None),
            policy: Collected::Ok(None),
        });
        f
    }

    #[test]
    fn a_bucket_in_the_archive_account_passes() {
        assert_eq!(statuses(&CHECK, &with_bucket_in(ARCHIVE)), vec![Pass]);
        let s = Settings {
            log_archive_account: Some(ARCHIVE.into()),
            ..Settings::default()
        };
        let out = (CHECK.evaluate)(&with_bucket_in(ARCHIVE), &s);
        assert_eq!(out[0].status, Pass);
    }

    #[test]
    fn a_bucket_in_the_logged_account_fails() {
        let out = (CHECK.evaluate)(&with_bucket_in(ACCOUNT), &Settings::default());
        assert_eq!(out[0].status, Fail);
        assert!(
            out[0].message.contains("its own account"),
            "{}",
            out[0].message
        );
    }

    #[test]
    fn a_bucket_outside_the_named_archive_fails() {
        let mut f = with_bucket_in(ARCHIVE);
        f.accounts.push(account("555566667777", false));
        let s = Settings {
            log_archive_account: Some("555566667777".into()),
            ..Settings::default()
        };
        assert_eq!((CHECK.evaluate)(&f, &s)[0].status, Fail);
    }

    #[test]
    fn an_unknown_owner_fails_or_errors_when_an_account_was_unreached() {
        let mut f = with_bucket_in(ARCHIVE);
        scan(&mut f, 1).buckets.clear();
        assert_eq!(statuses(&CHECK, &f), vec![Fail]);
        f.accounts[1].scan = Collected::Error("AccessDenied".into());
        assert_eq!(statuses(&CHECK, &f), vec![Error]);
    }
}
