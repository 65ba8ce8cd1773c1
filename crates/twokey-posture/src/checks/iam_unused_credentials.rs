//! Console passwords and active access keys are used: one never used, or
//! not used for the configured number of days, fails. (Prowler fails only
//! keys last used long ago; a key never used at all passes there.)

use serde_json::json;

use super::{days_between, per_iam};
use crate::facts::Facts;
use crate::model::{Check, Finding, For, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "iam.unused_credentials",
    title: "Passwords and access keys are not unused or never used",
    severity: Severity::Medium,
    prowler: &["iam_user_accesskey_unused", "iam_user_console_access_unused"],
    why: "A credential nobody uses is standing access nobody watches: it can be taken and used alone without anyone missing it.",
    remediation: Remediation {
        cli: "aws iam update-access-key --user-name USER --access-key-id AKIA... --status Inactive\naws iam delete-login-profile --user-name USER",
        terraform: "# Remove the unused aws_iam_access_key / aws_iam_user_login_profile resource.",
    },
    evaluate,
};

fn judge(
    at: &For<'_>,
    resource: String,
    what: &str,
    created: i64,
    last: Option<i64>,
    now: i64,
    max: i64,
) -> Finding {
    let (ok, msg) = match last {
        None => (
            false,
            format!(
                "{what} was never used (created {} days ago)",
                days_between(created, now)
            ),
        ),
        Some(t) if days_between(t, now) > max => (
            false,
            format!(
                "{what} was last used {} days ago (more than {max})",
                days_between(t, now)
            ),
        ),
        Some(t) => (
            true,
            format!("{what} was used {} days ago", days_between(t, now)),
        ),
    };
    at.decide(
        resource,
        ok,
        msg,
        json!({"created_ms": created, "last_used_ms": last}),
    )
}

fn evaluate(facts: &Facts, settings: &Settings) -> Vec<Finding> {
    let now = facts.collected_at_ms;
    let max = i64::from(settings.unused_days);
    per_iam(facts, CHECK.id, |at, _, iam| {
        let mut out = Vec::new();
        for u in &iam.users {
            if let Some(p) = &u.password {
                let what = format!("the console password of IAM user {}", u.name);
                out.push(judge(
                    &at,
                    format!("{}/password", u.arn),
                    &what,
                    p.created_ms,
                    p.last_used_ms,
                    now,
                    max,
                ));
            }
            for k in u.access_keys.iter().filter(|k| k.active) {
                let what = format!("access key {} of IAM user {}", k.id, u.name);
                out.push(judge(
                    &at,
                    format!("{}/{}", u.arn, k.id),
                    &what,
                    k.created_ms,
                    k.last_used_ms,
                    now,
                    max,
                ));
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixture::*;
    use crate::facts::*;
    use crate::Status::*;

    fn key(last: Option<i64>) -> User {
        User {
            name: "ci".into(),
            arn: format!("arn:aws:iam::{ACCOUNT}:user/ci"),
            created_ms: NOW - 400 * DAY,
            password: Some(Password {
                created_ms: NOW - 400 * DAY,
                last_used_ms: last,
            }),
            access_keys: vec![AccessKey {
                id: "AKIAEXAMPLE".into(),
                active: true,
                created_ms: NOW - 400 * DAY,
                last_used_ms: last,
            }],
        }
    }

    #[test]
    fn recently_used_passes() {
        let mut f = facts();
        iam(&mut f).users = vec![key(Some(NOW - 3 * DAY))];
        assert_eq!(statuses(&CHECK, &f), vec![Pass, Pass]);
    }

    #[test]
    fn never_used_and_long_unused_fail() {
        let mut f = facts();
        iam(&mut f).users = vec![key(None)];
        let out = (CHECK.evaluate)(&f, &Settings::default());
        assert!(
            out.iter()
                .all(|x| x.status == Fail && x.message.contains("never used")),
            "{out:?}"
        );
        iam(&mut f).users = vec![key(Some(NOW - 91 * DAY))];
        assert_eq!(statuses(&CHECK, &f), vec![Fail, Fail]);
    }

    #[test]
    fn inactive_keys_are_not_judged() {
        let mut f = facts();
        let mut u = key(None);
        u.password = None;
        u.access_keys[0].active = false;
        iam(&mut f).users = vec![u];
        assert_eq!(statuses(&CHECK, &f), vec![]);
    }
}
