//! What each grant did: the guard files the records it attributed to a grant
//! (`POST /v1/activity`, admins only), anyone who may read the request reads
//! them (`GET /v1/requests/{id}/activity`), and once a grant has ended and
//! `[activity] settle` has passed (CloudTrail delivers records minutes
//! late) the scheduler writes its digest to the ledger as `grant.activity`;
//! records that arrive later give a new digest that supersedes it.
//!
//! ```toml
//! [activity]
//! settle = "15m"        # wait this long after a grant ended before its digest
//! per_grant = 10000     # records kept per grant; beyond, only counted
//! skew = "5m"           # records this far outside the grant's window are still filed
//! ```

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Deserializer, Serialize};
use twokey_core::activity::{self as act, ActivityRecord};
use twokey_core::{Actor, LedgerEvent, Millis};
use twokey_store::activity::ActivityDigestWrite;
use twokey_store::{Change, StoreError};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::{ApiJson, Auth};
use crate::broker::Broker;
use crate::broker::BrokerError;
use crate::error::{ApiError, Problem};

/// `[activity]` settings, durations parsed when the config is read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivityConfig {
    /// Time after a grant's end before its digest is written.
    #[serde(default = "default_settle", deserialize_with = "duration")]
    pub settle: Millis,
    /// Records kept per grant.
    #[serde(default = "default_per_grant")]
    pub per_grant: i64,
    /// How far outside a grant's window a record is still filed under it.
    #[serde(default = "default_skew", deserialize_with = "duration")]
    pub skew: Millis,
}

fn default_settle() -> Millis {
    15 * 60_000
}
fn default_per_grant() -> i64 {
    10_000
}
fn default_skew() -> Millis {
    5 * 60_000
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Millis, D::Error> {
    let s = String::deserialize(d)?;
    twokey_core::time::parse_duration(&s)
        .map_err(|e| serde::de::Error::custom(format!("[activity] duration {s:?}: {e}")))
}

impl Default for ActivityConfig {
    fn default() -> Self {
        ActivityConfig {
            settle: default_settle(),
            per_grant: default_per_grant(),
            skew: default_skew(),
        }
    }
}

impl ActivityConfig {
    /// Checks the bounds; the error names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=1_000_000).contains(&self.per_grant) {
            return Err(format!(
                "[activity] per_grant = {} must be between 1 and 1000000",
                self.per_grant
            ));
        }
        Ok(())
    }
}

/// Most records in one `POST /v1/activity`.
pub const MAX_BATCH: usize = 5_000;

/// Body of `POST /v1/activity`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityBatch {
    /// The records, each naming its grant.
    pub records: Vec<ActivityRecord>,
}

/// A record that was not filed, and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefusedRecord {
    /// Its position in the batch.
    pub index: usize,
    /// Its event id.
    pub event_id: String,
    /// Why.
    pub reason: String,
}

/// What `POST /v1/activity` did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityReceipt {
    /// Records filed.
    pub kept: u64,
    /// Records filed before (same grant, source and event id).
    pub duplicates: u64,
    /// Records beyond their grant's bound: counted, not kept.
    pub overflow: u64,
    /// Records not filed.
    pub refused: Vec<RefusedRecord>,
}

/// A grant's activity.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityView {
    /// The grant.
    pub request_id: String,
    /// Records attributed (kept plus overflow).
    pub events: i64,
    /// Records beyond the bound, counted only.
    pub overflow: i64,
    /// Ledger index of the latest digest, once the grant ended and settled.
    pub digest_index: Option<u64>,
    /// Digests written.
    pub revision: i64,
    /// Kept records in time order (at most `limit`).
    pub records: Vec<ActivityRecord>,
}

/// `?limit=` of the activity view.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActivityQuery {
    /// Most records returned (1–10000, default 1000).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
}

impl Broker {
    /// Files records under their grants. Only the policy's admins may (the
    /// guard runs with an admin's token); each record must fall inside its
    /// grant's window ([`act::admissible`]).
    pub async fn submit_activity(
        &self,
        actor: &Actor,
        records: Vec<ActivityRecord>,
    ) -> Result<ActivityReceipt, BrokerError> {
        if !self.policy().policy.is_admin(actor) {
            return Err(twokey_core::DomainError::Forbidden(
                "only the policy's admins may file grant activity (run the guard with an admin's token)"
                    .into(),
            )
            .into());
        }
        if records.len() > MAX_BATCH {
            return Err(BrokerError::BadInput(format!(
                "records: {} records in one batch; at most {MAX_BATCH}",
                records.len()
            )));
        }
        let cfg = &self.options().activity;
        let now = self.now();
        let mut requests = std::collections::HashMap::new();
        let mut ok = Vec::with_capacity(records.len());
        let mut refused = Vec::new();
        for (index, rec) in records.into_iter().enumerate() {
            if !requests.contains_key(&rec.request_id) {
                let r = self.store().request(&rec.request_id).await?;
                requests.insert(rec.request_id.clone(), r);
            }
            let Some(Some(req)) = requests.get(&rec.request_id) else {
                refused.push(RefusedRecord {
                    index,
                    event_id: rec.event_id,
                    reason: format!("no such request {:?}", rec.request_id),
                });
                continue;
            };
            let event_id = rec.event_id.clone();
            match act::admissible(req, rec, cfg.skew, now) {
                Ok(r) => ok.push(r),
                Err(e) => refused.push(RefusedRecord {
                    index,
                    event_id,
                    reason: e.to_string(),
                }),
            }
        }
        let added = self
            .store()
            .add_activity(now, &actor.key.to_string(), &ok, cfg.per_grant)
            .await?;
        Ok(ActivityReceipt {
            kept: added.kept,
            duplicates: added.duplicates,
            overflow: added.overflow,
            refused,
        })
    }

    /// A grant's activity (the caller's right to read the request is
    /// checked by the caller of this function).
    pub async fn activity(&self, id: &str, limit: i64) -> Result<ActivityView, BrokerError> {
        let totals = self.store().activity_totals(id).await?;
        let records = self.store().activity(id, limit).await?;
        Ok(match totals {
            Some(t) => ActivityView {
                request_id: id.to_string(),
                events: t.kept + t.overflow,
                overflow: t.overflow,
                digest_index: t.digest_index,
                revision: t.revision,
                records,
            },
            None => ActivityView {
                request_id: id.to_string(),
                events: 0,
                overflow: 0,
                digest_index: None,
                revision: 0,
                records,
            },
        })
    }

    /// Writes the digest of every ended grant whose activity settled and is
    /// not digested (or changed since). Returns how many were written. A
    /// digest another replica wrote first is a conflict and skipped; a
    /// failure is returned, and the work is found again on the next pass.
    pub async fn digest_activity(&self) -> Result<usize, BrokerError> {
        let now = self.now();
        let cfg = &self.options().activity;
        let mut written = 0;
        for (totals, req) in self.store().activity_to_digest(256).await? {
            let ended = req.ended_at.or(req.ends_at).unwrap_or(now);
            if !act::has_ended(&req) || ended.saturating_add(cfg.settle) > now {
                continue;
            }
            let records = self.store().activity(&req.id, cfg.per_grant).await?;
            let d = act::digest(
                &records,
                totals.overflow,
                totals.revision + 1,
                totals.digest_index,
            );
            let change = Change {
                now,
                policy_hash: self.policy().policy.hash.clone(),
                events: vec![(
                    req.id.clone(),
                    LedgerEvent::GrantActivity(d).by(Actor::system().key.to_string()),
                )],
                activity_digest: Some(ActivityDigestWrite {
                    request_id: req.id.clone(),
                    expected_digested: totals.digested,
                    digested: totals.kept + totals.overflow,
                    revision: totals.revision + 1,
                }),
                ..Default::default()
            };
            match self.store().commit(change).await {
                Ok(_) => written += 1,
                Err(StoreError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(written)
    }

    /// [`Broker::digest_activity`] at most once a second (the scheduler
    /// loop runs more often).
    pub(crate) async fn digest_activity_due(&self) -> Result<usize, BrokerError> {
        let now = self.now();
        let last = self.activity_pass.load(Ordering::Relaxed);
        if now.saturating_sub(last) < 1_000 {
            return Ok(0);
        }
        self.activity_pass.store(now, Ordering::Relaxed);
        self.digest_activity().await
    }
}

/// The activity routes, merged into the API.
pub fn routes() -> OpenApiRouter<Arc<Broker>> {
    OpenApiRouter::new()
        .routes(routes!(submit))
        .routes(routes!(show))
}

/// Files activity records the guard attributed to grants.
#[utoipa::path(post, path = "/v1/activity", tag = "activity", request_body = ActivityBatch,
    responses(
        (status = 200, description = "What was filed, and each record that was not, with why", body = ActivityReceipt),
        (status = 400, description = "The body is not a batch of records, or too many", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or an unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
async fn submit(
    State(b): State<Arc<Broker>>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<ActivityBatch>,
) -> Result<Json<ActivityReceipt>, ApiError> {
    Ok(Json(b.submit_activity(&actor, body.records).await?))
}

/// What a grant did: the records attributed to it and its digest.
#[utoipa::path(get, path = "/v1/requests/{id}/activity", tag = "activity",
    params(("id" = String, Path, description = "Request id"), ActivityQuery),
    responses(
        (status = 200, description = "The grant's activity", body = ActivityView),
        (status = 400, description = "A bad limit", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or an unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller may not read the request", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
    ))]
async fn show(
    State(b): State<Arc<Broker>>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    Query(q): Query<ActivityQuery>,
) -> Result<Json<ActivityView>, ApiError> {
    let limit = q.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit = {limit}: give 1 to 10000"
        )));
    }
    b.read(&actor, &id).await?;
    Ok(Json(b.activity(&id, i64::from(limit)).await?))
}
