//! Every secret under custody was sealed again (a new password) after it was
//! last released: an opened root secret is known to its requester.

use serde_json::json;

use crate::facts::Facts;
use crate::model::{Check, Finding, For, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "custody.rotated_since_release",
    title: "Custody secrets are rotated and sealed again after each release",
    severity: Severity::High,
    prowler: &[],
    why: "Whoever opened a root secret knows it; until it is changed and sealed again, that one person can use it alone.",
    remediation: Remediation {
        cli: "# change the root password (or regenerate the codes), then seal the new one:\ntwokey custody seal --secret SECRET",
        terraform: "# Custody is kept by twokey (twokey custody seal), not Terraform.",
    },
    evaluate,
};

fn evaluate(facts: &Facts, _: &Settings) -> Vec<Finding> {
    facts
        .custody
        .iter()
        .map(|c| {
            let at = For::new(CHECK.id, &c.account);
            let resource = format!("twokey:custody/{}", c.secret);
            let Some(s) = &c.state else {
                return at.error(
                    resource,
                    "the custody state",
                    "the twokey server's custody state was not read (pass --custody FILE from `twokey --json custody secrets`)",
                );
            };
            let msg = if s.needs_rotation {
                format!(
                    "custody secret {} was released for {} and has not been sealed again since",
                    c.secret,
                    s.released_for.as_deref().unwrap_or("a request")
                )
            } else if s.generation == 0 {
                format!("custody secret {} has never been sealed, so never released", c.secret)
            } else {
                format!(
                    "custody secret {} is sealed (generation {}) and not released since",
                    c.secret, s.generation
                )
            };
            at.decide(
                resource,
                !s.needs_rotation,
                msg,
                json!({"generation": s.generation, "needs_rotation": s.needs_rotation,
                       "sealed_at_ms": s.sealed_at_ms, "released_at_ms": s.released_at_ms,
                       "released_for": s.released_for}),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixture::*;
    use crate::facts::{CustodyFact, CustodyState};
    use crate::Status::*;

    #[test]
    fn released_and_not_sealed_again_fails() {
        let mut f = facts();
        assert!(statuses(&CHECK, &f).is_empty());
        let mut c = CustodyFact {
            secret: "root-prod".into(),
            account: ACCOUNT.into(),
            kind: "password".into(),
            threshold: 2,
            custodians: vec!["carol".into(), "dave".into()],
            held_apart_from: vec![],
            state: None,
        };
        f.custody = vec![c.clone()];
        assert_eq!(statuses(&CHECK, &f), vec![Error]);
        c.state = Some(CustodyState {
            generation: 1,
            needs_rotation: true,
            released_for: Some("req-7".into()),
            ..Default::default()
        });
        f.custody = vec![c.clone()];
        let out = (CHECK.evaluate)(&f, &Settings::default());
        assert_eq!(out[0].status, Fail);
        assert!(out[0].message.contains("req-7"), "{}", out[0].message);
        c.state = Some(CustodyState {
            generation: 2,
            ..Default::default()
        });
        f.custody = vec![c];
        assert_eq!(statuses(&CHECK, &f), vec![Pass]);
    }
}
