//! Reconciliation: the access a provider finds at its target, compared with
//! the grants twokey holds (pure; the server does the listing and removing).
//!
//! A reconciler lists the twokey-owned access at a target ([`Found`]), loads
//! the grants of the entitlement, and asks [`decide`] what no grant covers
//! (remove it and alert: a failed revoke, or access someone added by hand
//! under a twokey name) and which active grants have no access at the target
//! (report them). Every finding goes into the ledger.
//!
//! Races are decided here too, so that they are tested once:
//! - a grant that is being activated (`approved`: the provider may already
//!   have applied it) or being revoked (`revoking`: the scheduler owns it,
//!   retries until the target confirms, and alerts on failure) covers its
//!   access: the reconciler never fights the scheduler;
//! - an active grant is reported missing only when it was activated at
//!   least `grace_ms` before the listing began (listings of eventually
//!   consistent APIs lag), and not when it is already due to end.

use std::collections::{BTreeMap, BTreeSet};

use crate::request::{Request, State};
use crate::time::Millis;

/// One piece of twokey-owned access present at a target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Found {
    /// The requests that own it, as recorded at the target (an inline policy
    /// name, a rule description). Empty when the target records no owner
    /// (Identity Center assignments): then `requester` says whose it is.
    pub request_ids: Vec<String>,
    /// The twokey identity name the access belongs to; `None` when the
    /// target names nobody twokey knows (a rule from an unmapped address):
    /// such access is never covered by a grant in [`decide`].
    pub requester: Option<String>,
    /// What it is, for people and for the provider's `remove`
    /// (`arn:...:user/alice#twokey-r1`, a CIDR, a user id).
    pub resource: String,
}

/// An active grant, as a simple reconciler knows it (see [`reconcile`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Active {
    /// The request id.
    pub request_id: String,
    /// The requester's twokey identity name.
    pub requester: String,
}

/// What [`reconcile`] or [`decide`] decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciliation {
    /// Access present that no grant covers: remove it and alert.
    pub to_remove: Vec<Found>,
    /// Active grants whose access is not present: report them.
    pub missing: Vec<String>,
}

/// Compares the access present at a target with a list of active grants.
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

/// Whether a grant's access may legitimately be at the target right now:
/// it is being applied, in force, or being removed by the scheduler.
pub fn covers(state: State) -> bool {
    matches!(state, State::Approved | State::Active | State::Revoking)
}

/// The reconciler's decision for one entitlement.
///
/// `grants` are the requests the server knows that may matter: the
/// entitlement's requests in [`covers`] states plus every request a
/// [`Found`] names (any state, any entitlement). `listed_at` is when the
/// target listing began.
///
/// - A [`Found`] with request ids is covered when one of them is a request of
///   this `entitlement` in a covering state whose requester is the found
///   access's person. A request id of
///   another entitlement, of an ended or pending request, of someone else, or
///   of no request at all covers nothing: removed.
/// - A [`Found`] without request ids is covered when its person holds a grant
///   of this entitlement in a covering state.
/// - An `active` grant of this entitlement activated at least `grace_ms`
///   before `listed_at`, and not yet at its end, that no [`Found`] covers, is
///   missing.
pub fn decide(
    entitlement: &str,
    present: &[Found],
    grants: &[Request],
    listed_at: Millis,
    grace_ms: i64,
) -> Reconciliation {
    let by_id: BTreeMap<&str, &Request> = grants.iter().map(|r| (r.id.as_str(), r)).collect();
    let live = |r: &&Request| r.entitlement == entitlement && covers(r.state);
    let mut covered_ids: BTreeSet<&str> = BTreeSet::new();
    let mut covered_people: BTreeSet<&str> = BTreeSet::new();
    let mut to_remove = Vec::new();
    for f in present {
        let covered = if f.request_ids.is_empty() {
            match f.requester.as_deref() {
                Some(p) if grants.iter().filter(live).any(|r| r.requester_name == p) => {
                    covered_people.insert(p);
                    true
                }
                _ => false,
            }
        } else {
            let mut covered = false;
            for id in &f.request_ids {
                let Some(r) = by_id.get(id.as_str()).copied().filter(live) else {
                    continue;
                };
                // The access must be the grant's own person's: a rule from an
                // unmapped address, or alice's policy named after bob's
                // grant, is not covered by that grant.
                if f.requester.as_deref() != Some(r.requester_name.as_str()) {
                    continue;
                }
                covered_ids.insert(id.as_str());
                covered = true;
            }
            covered
        };
        if !covered {
            to_remove.push(f.clone());
        }
    }
    let missing = grants
        .iter()
        .filter(|r| r.entitlement == entitlement && r.state == State::Active)
        .filter(|r| {
            r.activated_at
                .is_some_and(|a| a <= listed_at.saturating_sub(grace_ms))
        })
        .filter(|r| !matches!(r.ends_at, Some(e) if e <= listed_at))
        .filter(|r| {
            !covered_ids.contains(r.id.as_str())
                && !covered_people.contains(r.requester_name.as_str())
        })
        .map(|r| r.id.clone())
        .collect();
    Reconciliation { to_remove, missing }
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

    fn req(id: &str, ent: &str, who: &str, state: State, activated_at: Option<i64>) -> Request {
        Request {
            id: id.into(),
            entitlement: ent.into(),
            requester: crate::IdentityKey {
                issuer: "twokey".into(),
                subject: who.into(),
            },
            requester_name: who.into(),
            requester_groups: Default::default(),
            reason: String::new(),
            ticket: None,
            duration_ms: 3_600_000,
            created_at: 0,
            pending_until: 0,
            state,
            reviews: vec![],
            break_glass: false,
            needs_review: false,
            break_glass_reviewed_by: None,
            activated_at,
            ends_at: activated_at.map(|a| a + 3_600_000),
            end_reason: None,
            revoked_by: None,
            ended_at: None,
            extends: None,
            policy_hash: String::new(),
            version: 0,
        }
    }

    const NOW: i64 = 10_000_000;
    const GRACE: i64 = 60_000;

    #[test]
    fn grants_being_applied_or_revoked_cover_their_access() {
        let grants = [
            req("r1", "e", "alice", State::Approved, None),
            req("r2", "e", "alice", State::Active, Some(NOW - 1_000)),
            req("r3", "e", "alice", State::Revoking, Some(NOW - 900_000)),
        ];
        let present = [
            found(&["r1"], Some("alice")),
            found(&["r2"], Some("alice")),
            found(&["r3"], Some("alice")),
        ];
        let d = decide("e", &present, &grants, NOW, GRACE);
        assert_eq!(d, Reconciliation::default());
    }

    #[test]
    fn ended_pending_foreign_and_unknown_ids_cover_nothing() {
        let grants = [
            req("ended", "e", "alice", State::Expired, Some(NOW - 7_200_000)),
            req("pending", "e", "alice", State::Pending, None),
            req(
                "other-ent",
                "f",
                "alice",
                State::Active,
                Some(NOW - 900_000),
            ),
            req("bobs", "e", "bob", State::Active, Some(NOW - 900_000)),
        ];
        let present = [
            found(&["ended"], Some("alice")),
            found(&["pending"], Some("alice")),
            found(&["other-ent"], Some("alice")),
            // alice's access named after bob's live grant
            found(&["bobs"], Some("alice")),
            found(&["req-made-up"], None),
            // a live id, but from nobody twokey knows (an unmapped address)
            found(&["bobs"], None),
        ];
        let d = decide("e", &present, &grants, NOW, GRACE);
        assert_eq!(d.to_remove, present.to_vec());
        // bob's grant has no access of his own at the target.
        assert_eq!(d.missing, vec!["bobs".to_string()]);
    }

    #[test]
    fn shared_rule_is_kept_while_one_owner_is_live() {
        let grants = [
            req("old", "e", "alice", State::Expired, Some(NOW - 7_200_000)),
            req("new", "e", "alice", State::Active, Some(NOW - 900_000)),
        ];
        let present = [found(&["old", "new"], Some("alice"))];
        assert_eq!(
            decide("e", &present, &grants, NOW, GRACE),
            Reconciliation::default()
        );
    }

    #[test]
    fn ownerless_access_needs_a_live_grant_of_the_person() {
        let grants = [
            req("a", "e", "alice", State::Active, Some(NOW - 900_000)),
            req("b", "e", "bob", State::Revoked, Some(NOW - 7_200_000)),
            req("c", "f", "carol", State::Active, Some(NOW - 900_000)),
        ];
        let present = [
            found(&[], Some("alice")),
            found(&[], Some("bob")),
            found(&[], Some("carol")),
            found(&[], None),
        ];
        let d = decide("e", &present, &grants, NOW, GRACE);
        assert_eq!(d.to_remove, present[1..].to_vec());
        assert!(d.missing.is_empty());
    }

    #[test]
    fn missing_only_after_the_grace_window_and_before_the_end() {
        let mut ending = req("ending", "e", "alice", State::Active, Some(NOW - 900_000));
        ending.ends_at = Some(NOW);
        let grants = [
            req("fresh", "e", "alice", State::Active, Some(NOW - GRACE + 1)),
            req("old", "e", "bob", State::Active, Some(NOW - GRACE)),
            req("activating", "e", "carol", State::Approved, None),
            ending,
            req("elsewhere", "f", "dave", State::Active, Some(NOW - 900_000)),
        ];
        let d = decide("e", &[], &grants, NOW, GRACE);
        assert_eq!(d.missing, vec!["old".to_string()]);
        assert!(d.to_remove.is_empty());
    }
}
