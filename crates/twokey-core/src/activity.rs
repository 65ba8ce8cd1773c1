//! What each grant did: the activity records attributed to a grant (by the
//! guard, from CloudTrail and the PostgreSQL server log), whether a record
//! may be filed under a grant, and the digest written to the ledger when the
//! grant has ended.
//!
//! Pure: the store keeps the records, the broker decides with
//! [`admissible`] which it files and writes [`digest`]'s result as a
//! `grant.activity` entry.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::request::{Request, State};
use crate::time::Millis;

/// Where an activity record was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ActivitySource {
    /// A CloudTrail record.
    Cloudtrail,
    /// A line of the PostgreSQL server log (csvlog or jsonlog).
    Postgres,
    /// A VPC flow log record (traffic through a security group grant).
    FlowLog,
}

impl ActivitySource {
    /// Lower-case name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ActivitySource::Cloudtrail => "cloudtrail",
            ActivitySource::Postgres => "postgres",
            ActivitySource::FlowLog => "flow_log",
        }
    }

    /// Parses [`ActivitySource::as_str`] output.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "cloudtrail" => Some(ActivitySource::Cloudtrail),
            "postgres" => Some(ActivitySource::Postgres),
            "flow_log" => Some(ActivitySource::FlowLog),
            _ => None,
        }
    }
}

/// Longest text kept in one field of a record (longer is cut, marked `…`).
pub const MAX_FIELD: usize = 512;
/// Longest `detail` kept.
pub const MAX_DETAIL: usize = 2048;

/// One thing a grant did, as the guard attributed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActivityRecord {
    /// The grant (request id) the record is attributed to.
    pub request_id: String,
    /// Unique per source: CloudTrail's `eventID`, or the log's own key.
    pub event_id: String,
    /// Where it was read.
    pub source: ActivitySource,
    /// When it happened (Unix ms).
    #[serde(deserialize_with = "crate::time::whole_number")]
    pub event_time: Millis,
    /// What was done: `eventSource:eventName` for CloudTrail, the command
    /// tag or message kind for PostgreSQL, `tcp/22` for flow logs.
    pub action: String,
    /// Who did it, as the source names the caller (ARN, database role).
    #[serde(default)]
    pub principal: String,
    /// The caller's address, when the source has one.
    #[serde(default)]
    pub source_ip: String,
    /// AWS region or database name.
    #[serde(default)]
    pub location: String,
    /// Empty when it succeeded, else the error code.
    #[serde(default)]
    pub outcome: String,
    /// A short excerpt (resources, statement), JSON or text.
    #[serde(default)]
    pub detail: String,
}

/// Why a record is not filed under its grant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAdmissible {
    /// The named request was never activated.
    #[error("request {0} was never active")]
    NeverActive(String),
    /// The record's time lies outside the grant's window.
    #[error("event {event_id} at {event_time} is outside the grant's window {from}..{until}")]
    OutsideWindow {
        /// The record.
        event_id: String,
        /// Its time.
        event_time: Millis,
        /// Activation, less the allowed skew.
        from: Millis,
        /// End, plus the allowed skew.
        until: Millis,
    },
    /// A required field is empty or too long.
    #[error("{field}: {why}")]
    BadField {
        /// The field.
        field: &'static str,
        /// What is wrong.
        why: &'static str,
    },
}

fn cut(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
}

/// Checks a record against the grant it names and returns it with its text
/// fields bounded. A record is admissible when the grant was activated and
/// the event lies in `[activated_at - skew, end + skew)`, where `end` is the
/// confirmed end, else the planned end, else `now` (still active); `skew`
/// allows for clocks and for calls already in flight.
pub fn admissible(
    req: &Request,
    mut rec: ActivityRecord,
    skew: Millis,
    now: Millis,
) -> Result<ActivityRecord, NotAdmissible> {
    let bad = |field, why| Err(NotAdmissible::BadField { field, why });
    if rec.event_id.trim().is_empty() {
        return bad("event_id", "is empty");
    }
    if rec.event_id.len() > MAX_FIELD {
        return bad("event_id", "is longer than 512 bytes");
    }
    if rec.action.trim().is_empty() {
        return bad("action", "is empty");
    }
    if rec.action.chars().any(char::is_control) || rec.event_id.chars().any(char::is_control) {
        return bad("action", "holds control characters");
    }
    let Some(from) = req.activated_at else {
        return Err(NotAdmissible::NeverActive(req.id.clone()));
    };
    let end = match req.state {
        State::Active | State::Approved | State::Revoking => {
            req.ended_at.or(req.ends_at).unwrap_or(now).max(now)
        }
        _ => req.ended_at.or(req.ends_at).unwrap_or(now),
    };
    let (lo, hi) = (from.saturating_sub(skew), end.saturating_add(skew));
    if rec.event_time < lo || rec.event_time >= hi {
        return Err(NotAdmissible::OutsideWindow {
            event_id: rec.event_id,
            event_time: rec.event_time,
            from: lo,
            until: hi,
        });
    }
    for f in [
        &mut rec.action,
        &mut rec.principal,
        &mut rec.source_ip,
        &mut rec.location,
        &mut rec.outcome,
    ] {
        cut(f, MAX_FIELD);
    }
    cut(&mut rec.detail, MAX_DETAIL);
    Ok(rec)
}

/// `grant.activity`: what a grant did, written once the grant has ended and
/// CloudTrail's delivery delay has passed; written again (a higher
/// `revision`) when records arrive after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityDigest {
    /// Records attributed to the grant (kept plus overflow).
    pub events: i64,
    /// Records beyond the per-grant bound: counted, not kept.
    pub overflow: i64,
    /// First and last record time (Unix ms), when there are records.
    pub first_at: Option<Millis>,
    /// Last record time.
    pub last_at: Option<Millis>,
    /// Records by source and action (`cloudtrail iam.amazonaws.com:CreateUser`).
    pub actions: BTreeMap<String, i64>,
    /// Records that failed (a non-empty outcome).
    pub failed: i64,
    /// SHA-256 (hex) of the kept records' `source:event_id` lines, sorted:
    /// anyone holding the records can recompute it.
    pub records_sha256: String,
    /// 1 for the first digest of the grant, then 2, 3, ...
    pub revision: i64,
    /// The ledger index of the digest this one supersedes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<u64>,
}

/// Most distinct actions listed in a digest; the rest are summed under
/// `other`.
pub const MAX_DIGEST_ACTIONS: usize = 200;

/// The digest of a grant's kept records and its overflow count.
pub fn digest(
    records: &[ActivityRecord],
    overflow: i64,
    revision: i64,
    supersedes: Option<u64>,
) -> ActivityDigest {
    let mut ids: Vec<String> = records
        .iter()
        .map(|r| format!("{}:{}", r.source.as_str(), r.event_id))
        .collect();
    ids.sort();
    ids.dedup();
    let mut h = Sha256::new();
    for id in &ids {
        h.update(id.as_bytes());
        h.update(b"\n");
    }
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    for r in records {
        *counts
            .entry(format!("{} {}", r.source.as_str(), r.action))
            .or_default() += 1;
    }
    let actions = if counts.len() > MAX_DIGEST_ACTIONS {
        let mut by_count: Vec<(String, i64)> = counts.into_iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let rest: i64 = by_count[MAX_DIGEST_ACTIONS..].iter().map(|(_, n)| n).sum();
        let mut top: BTreeMap<String, i64> =
            by_count.into_iter().take(MAX_DIGEST_ACTIONS).collect();
        top.insert("other".into(), rest);
        top
    } else {
        counts
    };
    ActivityDigest {
        events: records.len() as i64 + overflow,
        overflow,
        first_at: records.iter().map(|r| r.event_time).min(),
        last_at: records.iter().map(|r| r.event_time).max(),
        actions,
        failed: records.iter().filter(|r| !r.outcome.is_empty()).count() as i64,
        records_sha256: hex::encode(h.finalize()),
        revision,
        supersedes,
    }
}

/// Whether a grant in this state has ended, so its activity can be digested.
pub fn has_ended(req: &Request) -> bool {
    matches!(req.state, State::Expired | State::Revoked) && req.activated_at.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, t: Millis, action: &str) -> ActivityRecord {
        ActivityRecord {
            request_id: "r1".into(),
            event_id: id.into(),
            source: ActivitySource::Cloudtrail,
            event_time: t,
            action: action.into(),
            principal: "arn:aws:sts::1:assumed-role/r/alice".into(),
            source_ip: "203.0.113.7".into(),
            location: "us-east-1".into(),
            outcome: String::new(),
            detail: String::new(),
        }
    }

    fn grant(state: State) -> Request {
        let mut r: Request = serde_json::from_value(serde_json::json!({
            "id": "r1", "entitlement": "e", "requester": {"issuer": "twokey", "subject": "alice"},
            "requester_name": "alice", "requester_groups": [], "reason": "", "ticket": null,
            "duration_ms": 1000, "created_at": 0, "pending_until": 0, "state": "active",
            "reviews": [], "break_glass": false, "needs_review": false,
            "break_glass_reviewed_by": null, "activated_at": 1000, "ends_at": 5000,
            "end_reason": null, "revoked_by": null, "ended_at": null, "extends": null,
            "policy_hash": "", "version": 0
        }))
        .expect("request");
        r.state = state;
        r
    }

    #[test]
    fn a_record_is_filed_only_inside_the_grants_window() {
        let g = grant(State::Expired);
        assert!(admissible(&g, rec("a", 1000, "x"), 0, 9000).is_ok());
        assert!(admissible(&g, rec("a", 4999, "x"), 0, 9000).is_ok());
        assert!(matches!(
            admissible(&g, rec("a", 5000, "x"), 0, 9000),
            Err(NotAdmissible::OutsideWindow { .. })
        ));
        assert!(matches!(
            admissible(&g, rec("a", 999, "x"), 0, 9000),
            Err(NotAdmissible::OutsideWindow { .. })
        ));
        // The skew widens both ends.
        assert!(admissible(&g, rec("a", 900, "x"), 100, 9000).is_ok());
        assert!(admissible(&g, rec("a", 5099, "x"), 100, 9000).is_ok());
        // An early end counts, not the planned one.
        let mut revoked = grant(State::Revoked);
        revoked.ended_at = Some(2000);
        assert!(admissible(&revoked, rec("a", 3000, "x"), 0, 9000).is_err());
        // Still active: up to now.
        let active = grant(State::Active);
        assert!(admissible(&active, rec("a", 8000, "x"), 0, 9000).is_ok());
        let mut never = grant(State::Denied);
        never.activated_at = None;
        assert_eq!(
            admissible(&never, rec("a", 1500, "x"), 0, 9000),
            Err(NotAdmissible::NeverActive("r1".into()))
        );
    }

    #[test]
    fn bad_fields_are_refused_and_long_ones_cut() {
        let g = grant(State::Active);
        assert!(admissible(&g, rec("", 1500, "x"), 0, 2000).is_err());
        assert!(admissible(&g, rec("a", 1500, " "), 0, 2000).is_err());
        assert!(admissible(&g, rec("a\n", 1500, "x"), 0, 2000).is_err());
        let mut long = rec("a", 1500, "x");
        long.detail = "é".repeat(5000);
        let kept = admissible(&g, long, 0, 2000).expect("kept");
        assert!(kept.detail.len() <= MAX_DETAIL + '…'.len_utf8());
        assert!(kept.detail.ends_with('…'));
    }

    #[test]
    fn the_digest_does_not_depend_on_order_and_counts_actions() {
        let a = vec![
            rec("1", 1500, "iam.amazonaws.com:CreateUser"),
            rec("2", 1200, "s3.amazonaws.com:GetObject"),
            rec("3", 1900, "s3.amazonaws.com:GetObject"),
        ];
        let mut b = a.clone();
        b.reverse();
        let (da, db) = (digest(&a, 0, 1, None), digest(&b, 0, 1, None));
        assert_eq!(da, db);
        assert_eq!(da.events, 3);
        assert_eq!(da.first_at, Some(1200));
        assert_eq!(da.last_at, Some(1900));
        assert_eq!(da.actions["cloudtrail s3.amazonaws.com:GetObject"], 2);
        // A different set of records, a different hash.
        let c = digest(&a[..2], 0, 1, None);
        assert_ne!(c.records_sha256, da.records_sha256);
        // The empty digest is the hash of nothing.
        let e = digest(&[], 0, 1, None);
        assert_eq!(
            e.records_sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(e.events, 0);
    }

    #[test]
    fn a_digest_lists_at_most_the_top_actions() {
        let many: Vec<_> = (0..(MAX_DIGEST_ACTIONS + 10))
            .map(|i| rec(&i.to_string(), 1500, &format!("svc:Action{i}")))
            .collect();
        let d = digest(&many, 5, 2, Some(7));
        assert_eq!(d.actions.len(), MAX_DIGEST_ACTIONS + 1);
        assert_eq!(d.actions["other"], 10);
        assert_eq!(d.events, (MAX_DIGEST_ACTIONS + 10) as i64 + 5);
        assert_eq!(d.supersedes, Some(7));
    }
}
