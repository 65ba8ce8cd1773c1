//! Where IAM users remain, the account password policy is strong.

use serde_json::json;

use super::per_account_baseline;
use crate::facts::{Collected, Facts};
use crate::model::{Check, Finding, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "iam.password_policy",
    title: "Accounts with IAM users have a strong password policy",
    severity: Severity::Low,
    prowler: &[
        "iam_password_policy_minimum_length_14",
        "iam_password_policy_reuse_24",
        "iam_password_policy_symbol",
        "iam_password_policy_number",
        "iam_password_policy_uppercase",
        "iam_password_policy_lowercase",
    ],
    why: "Break-glass users are the last IAM users left; their passwords must resist guessing, since whoever guesses one acts alone.",
    remediation: Remediation {
        cli: "aws iam update-account-password-policy --minimum-password-length 14 --require-symbols --require-numbers --require-uppercase-characters --require-lowercase-characters --password-reuse-prevention 24",
        terraform: "resource \"aws_iam_account_password_policy\" \"this\" {\n  minimum_password_length      = 14\n  require_symbols              = true\n  require_numbers              = true\n  require_uppercase_characters = true\n  require_lowercase_characters = true\n  password_reuse_prevention    = 24\n}",
    },
    evaluate,
};

fn evaluate(facts: &Facts, settings: &Settings) -> Vec<Finding> {
    let min = settings.password_min_length;
    per_account_baseline(
        facts,
        CHECK.id,
        "the password policy",
        |b| &b.password_policy,
        |at, account, scan, policy| {
            // Only accounts where users remain need one.
            let users = match &scan.iam {
                Collected::Ok(i) => i.users.len(),
                Collected::Error(_) => 0,
            };
            if users == 0 {
                return vec![];
            }
            let resource = format!("arn:aws:iam::{}:account-password-policy", account.id);
            let Some(p) = policy else {
                return vec![at.decide(
                    resource,
                    false,
                    format!(
                        "account {} has {users} IAM users and no password policy",
                        account.id
                    ),
                    json!(null),
                )];
            };
            let mut weak = Vec::new();
            if p.minimum_length < min as i32 {
                weak.push(format!("minimum length {} (< {min})", p.minimum_length));
            }
            for (on, what) in [
                (p.require_symbols, "symbols"),
                (p.require_numbers, "numbers"),
                (p.require_uppercase, "uppercase letters"),
                (p.require_lowercase, "lowercase letters"),
            ] {
                if !on {
                    weak.push(format!("{what} not required"));
                }
            }
            if p.reuse_prevention.unwrap_or(0) < 24 {
                weak.push(format!(
                    "reuse prevention {} (< 24)",
                    p.reuse_prevention.unwrap_or(0)
                ));
            }
            vec![at.decide(
                resource,
                weak.is_empty(),
                if weak.is_empty() {
                    format!("account {}'s password policy is strong", account.id)
                } else {
                    format!(
                        "account {}'s password policy is weak: {}",
                        account.id,
                        weak.join(", ")
                    )
                },
                json!(p),
            )]
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixture::*;
    use crate::facts::baseline::PasswordPolicy;
    use crate::facts::*;
    use crate::Status::*;

    #[test]
    fn judged_only_where_users_remain() {
        let mut f = facts();
        assert!(statuses(&CHECK, &f).is_empty());
        iam(&mut f).users = vec![User {
            name: "bg".into(),
            arn: "a".into(),
            created_ms: 0,
            password: None,
            access_keys: vec![],
        }];
        assert_eq!(statuses(&CHECK, &f), vec![Fail]);
        let strong = PasswordPolicy {
            minimum_length: 14,
            require_symbols: true,
            require_numbers: true,
            require_uppercase: true,
            require_lowercase: true,
            reuse_prevention: Some(24),
            max_age_days: None,
        };
        scan(&mut f, 0)
            .baseline
            .as_mut()
            .expect("baseline")
            .password_policy = Collected::Ok(Some(PasswordPolicy {
            minimum_length: 8,
            ..strong
        }));
        assert_eq!(statuses(&CHECK, &f), vec![Fail]);
        scan(&mut f, 0)
            .baseline
            .as_mut()
            .expect("baseline")
            .password_policy = Collected::Ok(Some(strong));
        assert_eq!(statuses(&CHECK, &f), vec![Pass]);
    }
}
