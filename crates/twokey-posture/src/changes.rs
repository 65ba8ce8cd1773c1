//! What changed between two scans, per check and resource: the events the
//! posture monitor of `twokey serve` writes to the ledger. Pure.

use std::collections::BTreeMap;

use twokey_core::event::PostureChange;
use twokey_core::LedgerEvent;

use crate::model::{Finding, Status};

/// How a check's result on one resource changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    /// It fails now and did not fail in the last scan (or was not there).
    Failing,
    /// It failed and now passes, or the resource is gone.
    Fixed,
    /// It failed and now its facts could not be collected: nobody knows
    /// whether it was fixed (someone may have taken the scanner's access).
    Undetermined,
}

impl ChangeKind {
    /// The ledger event: `posture.failing`, `posture.fixed`, `posture.undetermined`.
    pub fn event(self, data: PostureChange) -> LedgerEvent {
        match self {
            Self::Failing => LedgerEvent::PostureFailing(data),
            Self::Fixed => LedgerEvent::PostureFixed(data),
            Self::Undetermined => LedgerEvent::PostureUndetermined(data),
        }
    }
}

/// One change: the kind, the finding before (if any) and now (if any).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// What happened.
    pub kind: ChangeKind,
    /// The result in the last scan.
    pub before: Option<Finding>,
    /// The result in this scan (`None`: the resource is gone).
    pub now: Option<Finding>,
}

impl Change {
    /// The finding the change is about (the current one, else the last).
    pub fn finding(&self) -> Option<&Finding> {
        self.now.as_ref().or(self.before.as_ref())
    }
}

/// The identity of a finding across scans.
pub type Key = (String, String, String, String);

/// `(check, account, region or "", resource)`.
pub fn key(f: &Finding) -> Key {
    (
        f.check.clone(),
        f.account.clone(),
        f.region.clone().unwrap_or_default(),
        f.resource.clone(),
    )
}

/// The changes from `before` to `now`, in key order.
pub fn changes(before: &[Finding], now: &[Finding]) -> Vec<Change> {
    let old: BTreeMap<Key, &Finding> = before.iter().map(|f| (key(f), f)).collect();
    let new: BTreeMap<Key, &Finding> = now.iter().map(|f| (key(f), f)).collect();
    let mut out = Vec::new();
    for (k, f) in &new {
        let was = old.get(k).map(|b| b.status);
        let kind = match (was, f.status) {
            (Some(Status::Fail), Status::Fail) => None,
            (_, Status::Fail) => Some(ChangeKind::Failing),
            (Some(Status::Fail), Status::Pass) => Some(ChangeKind::Fixed),
            (Some(Status::Fail), Status::Error) => Some(ChangeKind::Undetermined),
            _ => None,
        };
        if let Some(kind) = kind {
            out.push(Change {
                kind,
                before: old.get(k).map(|b| (*b).clone()),
                now: Some((*f).clone()),
            });
        }
    }
    for (k, b) in &old {
        if b.status == Status::Fail && !new.contains_key(k) {
            out.push(Change {
                kind: ChangeKind::Fixed,
                before: Some((*b).clone()),
                now: None,
            });
        }
    }
    out.sort_by_key(|c| c.finding().map(key));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::For;
    use serde_json::json;

    fn f(resource: &str, status: Status) -> Finding {
        For::new("guardduty.enabled", "222233334444")
            .region("eu-west-1")
            .finding(resource, status, "m", json!(null))
    }

    fn kinds(before: &[Finding], now: &[Finding]) -> Vec<(ChangeKind, String)> {
        changes(before, now)
            .into_iter()
            .map(|c| {
                (
                    c.kind,
                    c.finding().map(|f| f.resource.clone()).unwrap_or_default(),
                )
            })
            .collect()
    }

    #[test]
    fn each_transition() {
        use ChangeKind::*;
        use Status::*;
        // First scan: every failure is new, passes are not news.
        assert_eq!(
            kinds(&[], &[f("a", Fail), f("b", Pass)]),
            vec![(Failing, "a".into())]
        );
        // Still failing, still passing: nothing.
        assert!(kinds(&[f("a", Fail), f("b", Pass)], &[f("a", Fail), f("b", Pass)]).is_empty());
        // Fixed, broken, undetermined, gone.
        assert_eq!(
            kinds(
                &[
                    f("a", Fail),
                    f("b", Pass),
                    f("c", Fail),
                    f("d", Fail),
                    f("e", Error)
                ],
                &[f("a", Pass), f("b", Fail), f("c", Error), f("e", Fail)]
            ),
            vec![
                (Fixed, "a".into()),
                (Failing, "b".into()),
                (Undetermined, "c".into()),
                (Fixed, "d".into()),
                (Failing, "e".into()),
            ]
        );
        // An error that clears to a pass is not news.
        assert!(kinds(&[f("a", Error)], &[f("a", Pass)]).is_empty());
    }
}
