//! Workload accounts have no IAM users with a console password or an active
//! access key: people reach them through roles, which twokey grants for a
//! time, never through standing long-term credentials.

use serde_json::json;

use super::{is_workload, per_iam};
use crate::facts::Facts;
use crate::model::{Check, Finding, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "iam.workload_users",
    title: "Workload accounts have no IAM users with passwords or access keys",
    severity: Severity::High,
    prowler: &[],
    why: "A long-term IAM credential in a workload account is standing access: it works without an approval and does not end when a grant does.",
    remediation: Remediation {
        cli: "aws iam delete-login-profile --user-name USER\naws iam update-access-key --user-name USER --access-key-id AKIA... --status Inactive\naws iam delete-access-key --user-name USER --access-key-id AKIA...",
        terraform: "# Remove the aws_iam_user, aws_iam_user_login_profile and aws_iam_access_key resources;\n# grant access through roles (aws_iam_role) that twokey's aws_iam_assume entitlements target.",
    },
    evaluate,
};

fn evaluate(facts: &Facts, settings: &Settings) -> Vec<Finding> {
    per_iam(facts, CHECK.id, |at, account, iam| {
        if !is_workload(account, settings) {
            return vec![];
        }
        let with: Vec<Finding> =
            iam.users
                .iter()
                .filter_map(|u| {
                    let keys: Vec<&str> = u
                        .access_keys
                        .iter()
                        .filter(|k| k.active)
                        .map(|k| k.id.as_str())
                        .collect();
                    let what = match (u.password.is_some(), keys.is_empty()) {
                        (false, true) => return None,
                        (true, true) => "a console password".to_string(),
                        (false, false) => format!("active access keys {}", keys.join(", ")),
                        (true, false) => format!(
                            "a console password and active access keys {}",
                            keys.join(", ")
                        ),
                    };
                    Some(at.decide(
                    &u.arn,
                    false,
                    format!("IAM user {} in workload account {} has {what}", u.name, account.id),
                    json!({"user": u.name, "password": u.password.is_some(), "active_keys": keys}),
                ))
                })
                .collect();
        if with.is_empty() {
            vec![at.decide(
                format!("account {}", account.id),
                true,
                format!(
                    "workload account {} has no IAM users with long-term credentials",
                    account.id
                ),
                json!({"users": iam.users.len()}),
            )]
        } else {
            with
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixture::*;
    use crate::facts::*;
    use crate::Status::*;

    fn user(password: bool, key_active: Option<bool>) -> User {
        User {
            name: "deploy".into(),
            arn: format!("arn:aws:iam::{ACCOUNT}:user/deploy"),
            created_ms: NOW - 100 * DAY,
            password: password.then_some(Password {
                created_ms: NOW - 100 * DAY,
                last_used_ms: None,
            }),
            access_keys: key_active
                .map(|active| AccessKey {
                    id: "AKIAEXAMPLE".into(),
                    active,
                    created_ms: NOW - 100 * DAY,
                    last_used_ms: None,
                })
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn users_without_credentials_pass_with_credentials_fail() {
        let mut f = facts();
        iam(&mut f).users = vec![user(false, None), user(false, Some(false))];
        assert_eq!(statuses(&CHECK, &f), vec![Pass]);
        iam(&mut f).users = vec![user(true, None), user(false, Some(true))];
        assert_eq!(statuses(&CHECK, &f), vec![Fail, Fail]);
    }

    #[test]
    fn the_management_and_log_archive_accounts_are_not_workloads() {
        let mut f = facts();
        iam(&mut f).users = vec![user(true, Some(true))];
        f.accounts[0].management = true;
        assert_eq!(statuses(&CHECK, &f), vec![]);
        f.accounts[0].management = false;
        let s = Settings {
            log_archive_account: Some(ACCOUNT.into()),
            ..Settings::default()
        };
        assert!((CHECK.evaluate)(&f, &s).is_empty());
    }
}
