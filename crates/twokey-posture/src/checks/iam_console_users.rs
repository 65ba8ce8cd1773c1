//! No IAM user has a console password unless the policy names it as a
//! break-glass user.

use serde_json::json;

use super::per_iam;
use crate::facts::Facts;
use crate::model::{Check, Finding, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "iam.console_users_break_glass",
    title: "No IAM user signs in to the console except break-glass users",
    severity: Severity::High,
    prowler: &["iam_user_console_access_unused"],
    why: "An IAM user with a console password is a standing way in that no approval stands in front of; only the break-glass users the policy names (and whose use is reviewed) may have one.",
    remediation: Remediation {
        cli: "aws iam delete-login-profile --user-name USER",
        terraform: "# remove the aws_iam_user_login_profile resource of USER;\n# people sign in through Identity Center and take access through twokey",
    },
    evaluate,
};

fn evaluate(facts: &Facts, settings: &Settings) -> Vec<Finding> {
    per_iam(facts, CHECK.id, |at, _, iam| {
        iam.users
            .iter()
            .filter(|u| u.password.is_some())
            .map(|u| {
                let break_glass = settings.break_glass_users.iter().any(|b| b == &u.name);
                at.decide(
                    u.arn.clone(),
                    break_glass,
                    if break_glass {
                        format!(
                            "user {} has a console password as a named break-glass user",
                            u.name
                        )
                    } else {
                        format!(
                            "user {} has a console password and is not a break-glass user",
                            u.name
                        )
                    },
                    json!({"password": u.password, "break_glass": break_glass}),
                )
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixture::*;
    use crate::facts::*;
    use crate::Status::*;

    #[test]
    fn console_users_fail_unless_break_glass() {
        let mut f = facts();
        let u = |n: &str, pw: bool| User {
            name: n.into(),
            arn: format!("arn:aws:iam::1:user/{n}"),
            created_ms: 0,
            password: pw.then_some(Password {
                created_ms: 0,
                last_used_ms: None,
            }),
            access_keys: vec![],
        };
        iam(&mut f).users = vec![u("alice", true), u("bg", true), u("ci", false)];
        let s = Settings {
            break_glass_users: vec!["bg".into()],
            ..Settings::default()
        };
        let got: Vec<_> = (CHECK.evaluate)(&f, &s)
            .into_iter()
            .map(|x| x.status)
            .collect();
        assert_eq!(got, vec![Fail, Pass]);
    }
}
