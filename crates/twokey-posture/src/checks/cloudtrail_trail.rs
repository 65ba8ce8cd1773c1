//! Every account is covered by a CloudTrail trail that records all regions
//! (an organisation trail or a multi-region trail), is logging, records
//! management events both read and write, and validates its log files.

use serde_json::json;

use super::per_account;
use crate::facts::{Collected, Facts, Trail};
use crate::model::{Check, Finding, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "cloudtrail.trail",
    title: "An organisation or multi-region trail logs read and write management events with log file validation",
    severity: Severity::Critical,
    prowler: &[
        "cloudtrail_multi_region_enabled",
        "cloudtrail_multi_region_enabled_logging_management_events",
        "cloudtrail_log_file_validation_enabled",
    ],
    why: "Without a complete trail, an action taken alone leaves no record; without validation, a record can be edited or removed unnoticed, so the second person never learns of it.",
    remediation: Remediation {
        cli: "aws cloudtrail create-trail --name org-trail --s3-bucket-name LOG_BUCKET --is-organization-trail --is-multi-region-trail --enable-log-file-validation\naws cloudtrail put-event-selectors --trail-name org-trail --event-selectors '[{\"ReadWriteType\":\"All\",\"IncludeManagementEvents\":true}]'\naws cloudtrail start-logging --name org-trail",
        terraform: "resource \"aws_cloudtrail\" \"org\" {\n  name                          = \"org-trail\"\n  s3_bucket_name                = var.log_bucket\n  is_organization_trail         = true\n  is_multi_region_trail         = true\n  enable_log_file_validation    = true\n  include_global_service_events = true\n  event_selector {\n    read_write_type           = \"All\"\n    include_management_events = true\n  }\n}",
    },
    evaluate,
};

/// What keeps `t` from covering everything, empty when it does.
pub(crate) fn gaps(t: &Trail) -> Vec<&'static str> {
    let mut g = Vec::new();
    if !(t.multi_region || t.organization) {
        g.push("single-region");
    }
    if !t.logging {
        g.push("not logging");
    }
    if !t.management_read {
        g.push("no read management events");
    }
    if !t.management_write {
        g.push("no write management events");
    }
    if !t.log_file_validation {
        g.push("log file validation off");
    }
    g
}

fn evaluate(facts: &Facts, _: &Settings) -> Vec<Finding> {
    // Organisation trails live in the management account and cover members.
    let org_trails: Vec<&Trail> = facts
        .trails()
        .filter(|(a, t)| a.management && t.organization)
        .map(|(_, t)| t)
        .collect();
    per_account(facts, CHECK.id, |at, account, scan| {
        let mut candidates: Vec<&Trail> = org_trails.clone();
        let mut unread = Vec::new();
        for r in &scan.regions {
            match &r.trails {
                Collected::Ok(ts) => {
                    candidates.extend(ts.iter().filter(|t| !t.organization || account.management))
                }
                Collected::Error(e) => unread.push(format!("{}: {e}", r.name)),
            }
        }
        candidates.sort_by(|a, b| a.arn.cmp(&b.arn));
        candidates.dedup_by(|a, b| a.arn == b.arn);
        let resource = format!("account {}", account.id);
        if let Some(t) = candidates.iter().find(|t| gaps(t).is_empty()) {
            return vec![at.decide(
                resource,
                true,
                format!("covered by trail {} (all regions, logging, read+write management events, validated)", t.arn),
                json!({"trail": t}),
            )];
        }
        if !unread.is_empty() {
            return vec![at.error(resource, "the trails", &unread.join("; "))];
        }
        let why = if candidates.is_empty() {
            "no trail covers it".to_string()
        } else {
            candidates
                .iter()
                .map(|t| format!("{}: {}", t.name, gaps(t).join(", ")))
                .collect::<Vec<_>>()
                .join("; ")
        };
        vec![at.decide(
            resource,
            false,
            format!("account {} has no complete trail ({why})", account.id),
            json!({"trails": candidates}),
        )]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixture::*;
    use crate::Status::*;

    /// An edit of a passing value and what the failure must say.
    type Case = (fn(&mut Trail), &'static str);

    fn good() -> Trail {
        Trail {
            arn: format!("arn:aws:cloudtrail:eu-west-1:{ACCOUNT}:trail/t"),
            name: "t".into(),
            home_region: "eu-west-1".into(),
            multi_region: true,
            organization: false,
            logging: true,
            log_file_validation: true,
            bucket: "logs".into(),
            management_read: true,
            management_write: true,
            kms_key: None,
        }
    }

    fn with(t: Trail) -> Facts {
        let mut f = facts();
        region_mut(&mut f).trails = Collected::Ok(vec![t]);
        f
    }

    #[test]
    fn a_complete_multi_region_trail_passes() {
        assert_eq!(statuses(&CHECK, &with(good())), vec![Pass]);
    }

    #[test]
    fn each_gap_fails_and_is_named() {
        let cases: [Case; 5] = [
            (|t| t.multi_region = false, "single-region"),
            (|t| t.logging = false, "not logging"),
            (|t| t.management_read = false, "no read"),
            (|t| t.management_write = false, "no write"),
            (|t| t.log_file_validation = false, "validation off"),
        ];
        for (edit, said) in cases {
            let mut t = good();
            edit(&mut t);
            let out = (CHECK.evaluate)(&with(t), &Settings::default());
            assert_eq!(out[0].status, Fail);
            assert!(out[0].message.contains(said), "{}", out[0].message);
        }
        let out = (CHECK.evaluate)(&facts(), &Settings::default());
        assert!(
            out[0].message.contains("no trail covers it"),
            "{}",
            out[0].message
        );
    }

    #[test]
    fn an_organisation_trail_covers_members() {
        let mut f = facts();
        let mut mgmt = account("111122223333", true);
        if let Collected::Ok(s) = &mut mgmt.scan {
            s.regions[0].trails = Collected::Ok(vec![Trail {
                organization: true,
                multi_region: false,
                ..good()
            }]);
        }
        f.accounts.insert(0, mgmt);
        assert_eq!(statuses(&CHECK, &f), vec![Pass, Pass]);
    }

    #[test]
    fn unreadable_trails_are_an_error_not_a_pass() {
        let mut f = facts();
        region_mut(&mut f).trails = Collected::Error("AccessDenied".into());
        assert_eq!(statuses(&CHECK, &f), vec![Error]);
        f.accounts[0].scan = Collected::Error("could not assume role".into());
        assert_eq!(statuses(&CHECK, &f), vec![Error]);
    }
}
