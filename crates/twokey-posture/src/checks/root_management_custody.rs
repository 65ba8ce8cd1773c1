//! The management account's root is under custody in twokey, with its parts
//! held by different people: a sealed password (or console password) split
//! between distinct custodians, and the other part (the hardware key) held
//! by someone who is not one of them.

use std::collections::BTreeSet;

use serde_json::json;

use super::per_iam;
use super::root_member_credentials::sealed;
use crate::facts::{CustodyFact, Facts};
use crate::model::{Check, Finding, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "root.management_custody",
    title: "The management account's root is under custody with distinct holders",
    severity: Severity::Critical,
    prowler: &[],
    why: "The management account keeps its root user (centralized root access cannot remove it); two-person control holds only if its password is split between custodians and the hardware key is held by someone else, so no single person can sign in.",
    remediation: Remediation {
        cli: "# declare [[custody]] for the management account in the twokey policy:\n#   kind = \"console_password\", threshold = 2, three custodians, held_apart_from = [\"<hardware key holder>\"]\ntwokey custody seal --account MANAGEMENT_ACCOUNT --kind console_password",
        terraform: "# Root custody is declared in the twokey policy ([[custody]]), not in Terraform.",
    },
    evaluate,
};

/// Why a custody declaration does not hold the parts apart, if it does not.
fn apart(c: &CustodyFact) -> Option<String> {
    let custodians: BTreeSet<&String> = c.custodians.iter().collect();
    if custodians.len() != c.custodians.len() {
        return Some(format!("{} names a custodian twice", c.secret));
    }
    if c.threshold < 2 || (c.threshold as usize) > custodians.len() {
        return Some(format!(
            "{} opens with {} of {} shares",
            c.secret,
            c.threshold,
            custodians.len()
        ));
    }
    if c.held_apart_from.is_empty() {
        return Some(format!(
            "{} declares no holder of the other part (held_apart_from: the hardware key)",
            c.secret
        ));
    }
    if let Some(both) = c.held_apart_from.iter().find(|h| custodians.contains(h)) {
        return Some(format!(
            "{both} holds the other part of {} and is also its custodian",
            c.secret
        ));
    }
    None
}

fn evaluate(facts: &Facts, _: &Settings) -> Vec<Finding> {
    per_iam(facts, CHECK.id, |at, account, _| {
        if !account.management {
            return vec![];
        }
        let id = &account.id;
        let passwords: Vec<&CustodyFact> = facts
            .custody
            .iter()
            .filter(|c| c.account == *id && (c.kind == "password" || c.kind == "console_password"))
            .collect();
        let sealed = sealed(facts, id);
        let evidence = json!({"custody": passwords});
        let resource = format!("arn:aws:iam::{id}:root");
        let Some(first) = passwords.first() else {
            return vec![at.decide(
                resource,
                false,
                format!(
                    "the root password of management account {id} is not under custody in twokey"
                ),
                evidence,
            )];
        };
        if let Some(why) = passwords.iter().find_map(|c| apart(c)) {
            return vec![at.decide(
                resource,
                false,
                format!("management account {id}: {why}"),
                evidence,
            )];
        }
        if first.state.is_none() {
            return vec![at.error(
                resource,
                "the custody state",
                "the twokey server's custody state was not read (pass --custody FILE from `twokey --json custody secrets`)",
            )];
        }
        let Some(c) = passwords
            .iter()
            .find(|c| sealed.iter().any(|s| s.secret == c.secret))
        else {
            return vec![at.decide(
                resource,
                false,
                format!("the root password of management account {id} is declared ({}) but never sealed", first.secret),
                evidence,
            )];
        };
        vec![at.decide(
            resource,
            true,
            format!(
                "the root {} of management account {id} is sealed {}-of-{} ({}), the other part held apart by {}",
                c.kind,
                c.threshold,
                c.custodians.len(),
                c.custodians.join(", "),
                c.held_apart_from.join(", ")
            ),
            evidence,
        )]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixture::*;
    use crate::facts::CustodyState;
    use crate::Status::*;

    fn custody() -> CustodyFact {
        CustodyFact {
            secret: "root-mgmt".into(),
            account: ACCOUNT.into(),
            kind: "console_password".into(),
            threshold: 2,
            custodians: vec!["carol".into(), "dave".into(), "erin".into()],
            held_apart_from: vec!["frank".into()],
            state: Some(CustodyState {
                generation: 1,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn sealed_with_distinct_holders_passes_everything_else_fails() {
        let mut f = facts();
        assert!(
            statuses(&CHECK, &f).is_empty(),
            "a member account is not judged"
        );
        f.accounts[0].management = true;
        assert_eq!(statuses(&CHECK, &f), vec![Fail], "no custody");
        f.custody = vec![custody()];
        assert_eq!(statuses(&CHECK, &f), vec![Pass]);
        let fail_with = |f: &Facts, part: &str| {
            let out = (CHECK.evaluate)(f, &Settings::default());
            assert_eq!(out[0].status, Fail, "{}", out[0].message);
            assert!(out[0].message.contains(part), "{}", out[0].message);
        };
        f.custody[0].held_apart_from = vec![];
        fail_with(&f, "no holder of the other part");
        f.custody[0].held_apart_from = vec!["dave".into()];
        fail_with(&f, "dave holds the other part");
        f.custody[0].held_apart_from = vec!["frank".into()];
        f.custody[0].custodians = vec!["carol".into(), "carol".into(), "erin".into()];
        fail_with(&f, "twice");
        f.custody[0].custodians = vec!["carol".into(), "dave".into()];
        f.custody[0].threshold = 3;
        fail_with(&f, "3 of 2");
        f.custody = vec![custody()];
        f.custody[0].state = Some(CustodyState::default());
        fail_with(&f, "never sealed");
        f.custody[0].state = None;
        assert_eq!(statuses(&CHECK, &f), vec![Error]);
        f.custody = vec![custody()];
        f.custody[0].kind = "mfa_recovery".into();
        fail_with(&f, "not under custody");
    }
}
