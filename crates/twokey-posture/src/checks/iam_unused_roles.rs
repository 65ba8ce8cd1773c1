//! Unused access: roles not used for the configured number of days (or
//! never, `RoleLastUsed` from the authorization details), and, where
//! `GenerateServiceLastAccessedDetails` was collected, services a role's
//! policies grant that it has not used in that time. AWS service-linked
//! roles (`/aws-service-role/`) are AWS's and not judged.

use serde_json::json;

use super::{days_between, per_iam};
use crate::facts::{Collected, Facts};
use crate::model::{first, Check, Finding, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "iam.unused_roles",
    title: "Roles and the services they are granted are used",
    severity: Severity::Medium,
    prowler: &[],
    why: "A role nobody uses, or a grant of a service never used, is standing access nobody watches: whoever can still assume it acts alone unnoticed.",
    remediation: Remediation {
        cli: "aws iam delete-role --role-name ROLE   # after detaching its policies\naws iam generate-service-last-accessed-details --arn ROLE_ARN",
        terraform: "# Remove the unused aws_iam_role, or narrow its policy to the services it uses.",
    },
    evaluate,
};

fn ms(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

fn evaluate(facts: &Facts, settings: &Settings) -> Vec<Finding> {
    let now = facts.collected_at_ms;
    let max = i64::from(settings.unused_days);
    per_iam(facts, CHECK.id, |at, account, iam| {
        let mut out = Vec::new();
        let none = serde_json::Value::Null;
        let value = match &iam.authorization {
            Collected::Ok(Some(v)) => v,
            // Facts recorded before the details were collected: no roles.
            Collected::Ok(None) => &none,
            Collected::Error(e) => {
                out.push(at.error(
                    format!("account {}", account.id),
                    "authorization details",
                    e,
                ));
                &none
            }
        };
        for r in value["RoleDetailList"].as_array().into_iter().flatten() {
            let arn = r["Arn"].as_str().unwrap_or_default();
            if arn.contains(":role/aws-service-role/") {
                continue;
            }
            let created = r["CreateDate"].as_str().and_then(ms);
            let last = r["RoleLastUsed"]["LastUsedDate"].as_str().and_then(ms);
            let (ok, msg) = match (last, created) {
                (Some(t), _) if days_between(t, now) > max => (
                    false,
                    format!(
                        "role {arn} was last used {} days ago (more than {max})",
                        days_between(t, now)
                    ),
                ),
                (Some(t), _) => (
                    true,
                    format!("role {arn} was used {} days ago", days_between(t, now)),
                ),
                (None, Some(c)) if days_between(c, now) <= max => (
                    true,
                    format!(
                        "role {arn} was created {} days ago and is not used yet",
                        days_between(c, now)
                    ),
                ),
                (None, _) => (false, format!("role {arn} was never used")),
            };
            out.push(at.decide(
                arn,
                ok,
                msg,
                json!({"last_used": r["RoleLastUsed"]["LastUsedDate"], "created": r["CreateDate"]}),
            ));
        }
        match &iam.service_last_accessed {
            None => {}
            Some(Collected::Error(e)) => out.push(at.error(
                format!("account {} service last accessed", account.id),
                "service last accessed details",
                e,
            )),
            Some(Collected::Ok(list)) => {
                for s in list {
                    let unused: Vec<String> = s
                        .services
                        .iter()
                        .filter(|(_, t)| t.is_none_or(|t| days_between(t, now) > max))
                        .map(|(n, _)| n.clone())
                        .collect();
                    let msg = if unused.is_empty() {
                        format!(
                            "{} used every service it is granted in the last {max} days",
                            s.arn
                        )
                    } else {
                        format!(
                            "{} is granted {} service(s) it has not used in {max} days: {}",
                            s.arn,
                            unused.len(),
                            first(&unused, 6)
                        )
                    };
                    out.push(at.decide(
                        format!("{}/services", s.arn),
                        unused.is_empty(),
                        msg,
                        json!({"unused": unused}),
                    ));
                }
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixture::*;
    use crate::facts::ServiceAccess;
    use crate::Status::*;

    fn time(ms: i64) -> String {
        chrono::DateTime::from_timestamp_millis(ms)
            .expect("time")
            .to_rfc3339()
    }

    #[test]
    fn roles_by_last_use() {
        let mut f = facts();
        iam(&mut f).authorization = Collected::Ok(Some(json!({"RoleDetailList": [
            {"Arn": "arn:aws:iam::222233334444:role/used", "CreateDate": time(NOW - 400 * DAY), "RoleLastUsed": {"LastUsedDate": time(NOW - 2 * DAY)}},
            {"Arn": "arn:aws:iam::222233334444:role/stale", "CreateDate": time(NOW - 400 * DAY), "RoleLastUsed": {"LastUsedDate": time(NOW - 200 * DAY)}},
            {"Arn": "arn:aws:iam::222233334444:role/never", "CreateDate": time(NOW - 400 * DAY)},
            {"Arn": "arn:aws:iam::222233334444:role/new", "CreateDate": time(NOW - DAY)},
            {"Arn": "arn:aws:iam::222233334444:role/aws-service-role/x.amazonaws.com/AWSServiceRoleForX"}
        ]})));
        assert_eq!(statuses(&CHECK, &f), vec![Pass, Fail, Fail, Pass]);
    }

    #[test]
    fn granted_services_not_used() {
        let mut f = facts();
        iam(&mut f).service_last_accessed = Some(Collected::Ok(vec![ServiceAccess {
            arn: "arn:aws:iam::222233334444:role/ci".into(),
            services: vec![("s3".into(), Some(NOW - DAY)), ("iam".into(), None)],
        }]));
        let out = (CHECK.evaluate)(&f, &Settings::default());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].status, Fail);
        assert!(out[0].message.contains(": iam"), "{}", out[0].message);
        iam(&mut f).service_last_accessed = Some(Collected::Error(
            "iam:GenerateServiceLastAccessedDetails: not implemented".into(),
        ));
        assert_eq!(statuses(&CHECK, &f), vec![Error]);
    }
}
