//! Reconciler support: what twokey-owned access is present at a target, and
//! how it compares with the active grants.
//!
//! A reconciler calls [`Reconcile::list_present`] on each target, compares the
//! result with the grants it believes active using [`reconcile`], removes what
//! no active grant covers with [`Reconcile::remove`] (a failed revoke, or access
//! someone added by hand under a twokey name), alerts on it, and reports active
//! grants whose access is missing. Every finding belongs in the ledger.

use std::collections::BTreeSet;

use async_trait::async_trait;
use twokey_providers::ProviderError;

/// One piece of twokey-owned access present at a target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Found {
    /// The requests that own it, as recorded at the target (an inline policy
    /// name, a rule description). Empty when the target records no owner
    /// (Identity Center assignments): then `requester` says whose it is.
    pub request_ids: Vec<String>,
    /// The twokey identity name the access belongs to, when known.
    pub requester: Option<String>,
    /// What it is, for people and for [`Reconcile::remove`]
    /// (`inline policy twokey-r1 on user alice`).
    pub resource: String,
}

/// An active grant, as the reconciler knows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Active {
    /// The request id.
    pub request_id: String,
    /// The requester's twokey identity name.
    pub requester: String,
}

/// What [`reconcile`] decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciliation {
    /// Access present that no active grant covers: remove it and alert.
    pub to_remove: Vec<Found>,
    /// Active grants whose access is not present: report them.
    pub missing: Vec<String>,
}

/// Compares the access present at a target with the active grants.
///
/// A [`Found`] is covered when one of its `request_ids` is active or, when it
/// records no request ids, when its `requester` has an active grant. An active
/// grant is missing when no found access covers it that way.
pub fn reconcile(present: &[Found], active: &[Active]) -> Reconciliation {
    let active_ids: BTreeSet<&str> = active.iter().map(|a| a.request_id.as_str()).collect();
    let active_people: BTreeSet<&str> = active.iter().map(|a| a.requester.as_str()).collect();
    let mut covered_ids: BTreeSet<&str> = BTreeSet::new();
    let mut covered_people: BTreeSet<&str> = BTreeSet::new();
    let mut to_remove = Vec::new();
    for f in present {
        if f.request_ids.is_empty() {
            match f.requester.as_deref() {
                Some(p) if active_people.contains(p) => {
                    covered_people.insert(p);
                }
                _ => to_remove.push(f.clone()),
            }
        } else {
            let mut covered = false;
            for id in &f.request_ids {
                if active_ids.contains(id.as_str()) {
                    covered_ids.insert(id.as_str());
                    covered = true;
                }
            }
            if !covered {
                to_remove.push(f.clone());
            }
        }
    }
    let missing = active
        .iter()
        .filter(|a| {
            !covered_ids.contains(a.request_id.as_str())
                && !covered_people.contains(a.requester.as_str())
        })
        .map(|a| a.request_id.clone())
        .collect();
    Reconciliation { to_remove, missing }
}

/// Listing and removing twokey-owned access at a target.
#[async_trait]
pub trait Reconcile: Send + Sync {
    /// The twokey-owned access present at the target.
    async fn list_present(&self) -> Result<Vec<Found>, ProviderError>;
    /// Removes access [`reconcile`] found uncovered. Idempotent.
    async fn remove(&self, found: &Found) -> Result<(), ProviderError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(ids: &[&str], who: Option<&str>) -> Found {
        Found {
            request_ids: ids.iter().map(|s| s.to_string()).collect(),
            requester: who.map(str::to_string),
            resource: format!("{ids:?}"),
        }
    }

    fn active(id: &str, who: &str) -> Active {
        Active {
            request_id: id.into(),
            requester: who.into(),
        }
    }

    #[test]
    fn uncovered_access_is_removed_and_missing_grants_reported() {
        let present = vec![
            found(&["r1"], Some("alice")),
            found(&["stale"], Some("alice")),
            found(&["r3", "r4"], Some("bob")),
        ];
        let r = reconcile(
            &present,
            &[
                active("r1", "alice"),
                active("r4", "bob"),
                active("r9", "carol"),
            ],
        );
        assert_eq!(r.to_remove, vec![found(&["stale"], Some("alice"))]);
        assert_eq!(r.missing, vec!["r9".to_string()]);
    }

    #[test]
    fn ownerless_access_is_matched_by_person() {
        let present = vec![
            found(&[], Some("alice")),
            found(&[], Some("bob")),
            found(&[], None),
        ];
        let r = reconcile(&present, &[active("r1", "alice"), active("r2", "alice")]);
        assert_eq!(r.to_remove, vec![found(&[], Some("bob")), found(&[], None)]);
        assert!(r.missing.is_empty());
    }

    #[test]
    fn nothing_present_nothing_active() {
        assert_eq!(reconcile(&[], &[]), Reconciliation::default());
        let r = reconcile(&[], &[active("r1", "a")]);
        assert_eq!(r.missing, vec!["r1".to_string()]);
    }
}
