//! SCIM 2.0 provisioning at `/scim/v2` (RFC 7644): an identity provider
//! creates, replaces, patches, deactivates and deletes Users and Groups;
//! every change is committed with its ledger entry. Handlers parse, ask the
//! pure `twokey_core::scim` and commit; deactivating or deleting a user
//! hands the consequences to [`Broker::directory_departed`].
//!
//! ```toml
//! [scim]
//! issuer = "https://idp.example.com"   # the SSO issuer the users sign in with
//! link = "external_id"                  # or "user_name": which SCIM attribute is the SSO subject
//!
//! [[scim.client]]
//! name = "okta"
//! token_env = "TWOKEY_SCIM_TOKEN"       # or token_file; never inline
//! ```
//!
//! Identity stays issuer + subject: a SCIM user is linked to
//! `issuer|externalId` (or `issuer|userName`), never by email or name.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use twokey_core::event::{DirectoryGroup, DirectoryUser};
use twokey_core::scim::{self as model, Kind, ScimError};
use twokey_core::{Event, IdentityKey, LedgerEvent, Secret};
use twokey_store::directory::{DirectoryWrite, ScimGroupRow, ScimUserRow};
use twokey_store::{Change, StoreError};

use crate::broker::Broker;

/// Media type of every SCIM answer.
pub const SCIM_JSON: &str = "application/scim+json";

/// Most resources one list answer carries.
pub const MAX_RESULTS: usize = 200;

/// `[scim]` in `twokey.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScimConfig {
    /// The SSO issuer provisioned users sign in with (`twokey` for the
    /// policy's own identities).
    pub issuer: String,
    /// Which SCIM attribute holds the SSO subject.
    #[serde(default)]
    pub link: Link,
    /// Provisioning clients, one bearer token each.
    #[serde(default)]
    pub client: Vec<ScimClient>,
}

/// Which SCIM attribute is the SSO subject.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Link {
    /// `externalId` (Okta, Entra ID set it to the directory's object id).
    #[default]
    ExternalId,
    /// `userName`.
    UserName,
}

/// One provisioning client.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScimClient {
    /// Its name in the ledger.
    pub name: String,
    /// Its bearer token (give it as `token_env` or `token_file`).
    pub token: Secret,
}

impl ScimConfig {
    /// Checks the settings; errors name them.
    pub fn validate(&self) -> Result<(), String> {
        if self.issuer.trim().is_empty() {
            return Err("[scim] issuer is empty".into());
        }
        if self.client.is_empty() {
            return Err("[scim] has no [[scim.client]]: no one could provision".into());
        }
        for c in &self.client {
            if c.token.expose().len() < 16 {
                return Err(format!(
                    "[[scim.client]] {:?}: the token is shorter than 16 characters",
                    c.name
                ));
            }
        }
        Ok(())
    }
}

struct Scim {
    broker: Arc<Broker>,
    cfg: ScimConfig,
    /// SHA-256 of each client's token, with its name.
    tokens: Vec<([u8; 32], String)>,
    /// `<public_url>/scim/v2`.
    base: String,
}

type St = State<Arc<Scim>>;

/// The SCIM routes, to merge into the server's router.
pub fn router(broker: Arc<Broker>, cfg: ScimConfig, public_url: &str) -> Router {
    let tokens = cfg
        .client
        .iter()
        .map(|c| (sha(c.token.expose()), c.name.clone()))
        .collect();
    let st = Arc::new(Scim {
        broker,
        cfg,
        tokens,
        base: format!("{}/scim/v2", public_url.trim_end_matches('/')),
    });
    let inner = Router::new()
        .route("/ServiceProviderConfig", get(spc))
        .route("/ResourceTypes", get(resource_types))
        .route("/ResourceTypes/{id}", get(resource_type))
        .route("/Schemas", get(schemas))
        .route("/Schemas/{id}", get(schema))
        .route("/Users", get(list_users).post(create_user))
        .route(
            "/Users/{id}",
            get(get_user)
                .put(put_user)
                .patch(patch_user)
                .delete(delete_user),
        )
        .route("/Groups", get(list_groups).post(create_group))
        .route(
            "/Groups/{id}",
            get(get_group)
                .put(put_group)
                .patch(patch_group)
                .delete(delete_group),
        )
        .route("/.search", post(search_all))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(scim_errors_only))
        .layer(axum::middleware::from_fn_with_state(st.clone(), auth))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(1 << 20))
        .with_state(st);
    Router::new().nest("/scim/v2", inner)
}

fn sha(s: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(s.as_bytes()).into()
}

/// The provisioning client a request authenticated as.
#[derive(Clone)]
struct ClientName(String);

/// Bearer token check: the hash of the presented token against every
/// client's, in constant time and without stopping at a match.
async fn auth(
    State(st): St,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use subtle::ConstantTimeEq;
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::api::bearer_token)
        .map(|t| sha(t.trim()));
    let mut who = None;
    if let Some(h) = presented {
        for (t, name) in &st.tokens {
            if bool::from(t.ct_eq(&h)) {
                who = Some(name.clone());
            }
        }
    }
    let Some(name) = who else {
        let mut r = error(&ScimError {
            status: 401,
            scim_type: None,
            detail: "missing or unknown bearer token of a [[scim.client]]".into(),
        });
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"twokey-scim\""),
        );
        return r;
    };
    req.extensions_mut().insert(ClientName(name));
    next.run(req).await
}

/// Every error under `/scim/v2` is a SCIM Error message (axum's own 405,
/// 413 and 415 included).
async fn scim_errors_only(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_scim = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(SCIM_JSON.as_bytes()));
    if !(status.is_client_error() || status.is_server_error()) || is_scim {
        return resp;
    }
    let mut out = error(&ScimError {
        status: status.as_u16(),
        scim_type: None,
        detail: status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_string(),
    });
    for (k, v) in resp.headers() {
        if k == header::ALLOW {
            out.headers_mut().insert(k, v.clone());
        }
    }
    out
}

async fn not_found(uri: axum::http::Uri) -> Response {
    error(&ScimError {
        status: 404,
        scim_type: None,
        detail: format!("no SCIM endpoint {}", uri.path()),
    })
}

async fn search_all() -> Response {
    error(&ScimError {
        status: 501,
        scim_type: None,
        detail: "searching several resource types at once is not supported; use GET /Users?filter= or /Groups?filter=".into(),
    })
}

fn scim(status: StatusCode, body: Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    r
}

fn error(e: &ScimError) -> Response {
    scim(
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
        e.body(),
    )
}

/// A store failure as SCIM answers it: refusals say what, database failures
/// only a correlation id (the cause goes to the log).
fn store_error(e: StoreError) -> ScimError {
    match e {
        StoreError::Duplicate(d) => ScimError {
            status: 409,
            scim_type: Some("uniqueness"),
            detail: d,
        },
        StoreError::Missing(d) => ScimError::bad("invalidValue", d),
        StoreError::Conflict => ScimError {
            status: 412,
            scim_type: None,
            detail: "the resource changed meanwhile; read it again".into(),
        },
        other => {
            let p = crate::error::Problem::internal(
                StatusCode::SERVICE_UNAVAILABLE,
                "a SCIM change could not be recorded; nothing was changed",
                &other,
            );
            ScimError {
                status: 503,
                scim_type: None,
                detail: p.detail,
            }
        }
    }
}

fn parse_body(body: &Bytes) -> Result<Value, ScimError> {
    serde_json::from_slice(body)
        .map_err(|e| ScimError::bad("invalidSyntax", format!("the body is not JSON: {e}")))
}

fn resource_response(status: StatusCode, resource: Value, version: i64) -> Response {
    let mut r = scim(status, resource.clone());
    if let Ok(v) = HeaderValue::from_str(&model::etag(version)) {
        r.headers_mut().insert(header::ETAG, v);
    }
    if let Some(loc) = resource["meta"]["location"]
        .as_str()
        .and_then(|l| HeaderValue::from_str(l).ok())
    {
        r.headers_mut().insert(header::LOCATION, loc);
    }
    r
}

/// `If-Match` (RFC 7644 section 3.14): the version must be the stored one.
fn check_if_match(headers: &HeaderMap, version: i64) -> Result<(), ScimError> {
    let Some(want) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let have = model::etag(version);
    let strong = have.trim_start_matches("W/");
    if want
        .split(',')
        .map(str::trim)
        .any(|w| w == "*" || w == have || w.trim_start_matches("W/") == strong)
    {
        Ok(())
    } else {
        Err(ScimError {
            status: 412,
            scim_type: None,
            detail: format!("If-Match {want} is not the current version {have}"),
        })
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ListParams {
    filter: Option<String>,
    start_index: Option<String>,
    count: Option<String>,
    attributes: Option<String>,
    excluded_attributes: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct OneParams {
    attributes: Option<String>,
    excluded_attributes: Option<String>,
}

fn number(what: &str, v: &Option<String>, default: usize) -> Result<usize, ScimError> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(default),
        Some(s) => s.parse::<i64>().map(|n| n.max(0) as usize).map_err(|_| {
            ScimError::bad(
                "invalidValue",
                format!("{what} must be a whole number, not {s:?}"),
            )
        }),
    }
}

/// Filters and pages `all` (RFC 7644 section 3.4.2.4: startIndex is 1-based,
/// count 0 asks only for the total).
fn list(all: Vec<Value>, p: &ListParams) -> Result<Value, ScimError> {
    let filter = p
        .filter
        .as_deref()
        .filter(|f| !f.trim().is_empty())
        .map(model::parse_filter)
        .transpose()?;
    let hits: Vec<Value> = all
        .into_iter()
        .filter(|r| filter.as_ref().is_none_or(|f| model::matches(f, r)))
        .collect();
    let start = number("startIndex", &p.start_index, 1)?.max(1);
    let count = number("count", &p.count, MAX_RESULTS)?.min(MAX_RESULTS);
    let page: Vec<Value> = hits
        .iter()
        .skip(start - 1)
        .take(count)
        .map(|r| {
            model::project(
                r.clone(),
                p.attributes.as_deref(),
                p.excluded_attributes.as_deref(),
            )
        })
        .collect();
    Ok(json!({
        "schemas": [model::LIST_RESPONSE],
        "totalResults": hits.len(),
        "startIndex": start,
        "itemsPerPage": page.len(),
        "Resources": page,
    }))
}

// ----- discovery --------------------------------------------------------------

async fn spc(State(st): St) -> Response {
    scim(
        StatusCode::OK,
        model::service_provider_config(&st.base, MAX_RESULTS),
    )
}

const KINDS: [Kind; 2] = [Kind::User, Kind::Group];

async fn resource_types(State(st): St) -> Response {
    let all: Vec<Value> = KINDS
        .iter()
        .map(|k| model::resource_type(*k, &st.base))
        .collect();
    scim(StatusCode::OK, list_of(all))
}

fn list_of(all: Vec<Value>) -> Value {
    json!({
        "schemas": [model::LIST_RESPONSE],
        "totalResults": all.len(),
        "startIndex": 1,
        "itemsPerPage": all.len(),
        "Resources": all,
    })
}

async fn resource_type(State(st): St, Path(id): Path<String>) -> Response {
    match KINDS.iter().copied().find(|k| k.name() == id) {
        Some(k) => scim(StatusCode::OK, model::resource_type(k, &st.base)),
        None => not_found_id("ResourceType", &id),
    }
}

async fn schemas(State(st): St) -> Response {
    let all: Vec<Value> = KINDS
        .iter()
        .map(|k| model::schema_resource(*k, &st.base))
        .collect();
    scim(StatusCode::OK, list_of(all))
}

async fn schema(State(st): St, Path(id): Path<String>) -> Response {
    match KINDS.iter().copied().find(|k| k.schema() == id) {
        Some(k) => scim(StatusCode::OK, model::schema_resource(k, &st.base)),
        None => not_found_id("Schema", &id),
    }
}

fn not_found_id(what: &str, id: &str) -> Response {
    error(&ScimError {
        status: 404,
        scim_type: None,
        detail: format!("no {what} {id:?}"),
    })
}

// ----- users ------------------------------------------------------------------

impl Scim {
    fn identity(&self, attrs: &Map<String, Value>) -> Option<IdentityKey> {
        let subject = match self.cfg.link {
            Link::ExternalId => attrs.get("externalId"),
            Link::UserName => attrs.get("userName"),
        }?
        .as_str()?
        .trim();
        (!subject.is_empty()).then(|| IdentityKey {
            issuer: self.cfg.issuer.clone(),
            subject: subject.to_string(),
        })
    }

    fn user_json(&self, u: &ScimUserRow, groups: &[ScimGroupRow]) -> Value {
        let mut v = u.doc.clone();
        v["schemas"] = json!([model::USER_SCHEMA]);
        v["id"] = json!(u.id);
        let member_of: Vec<Value> = groups
            .iter()
            .filter(|g| g.members.contains(&u.id))
            .map(|g| {
                json!({"value": g.id, "$ref": format!("{}/Groups/{}", self.base, g.id), "display": g.display_name})
            })
            .collect();
        if !member_of.is_empty() {
            v["groups"] = Value::Array(member_of);
        }
        v["meta"] = self.meta(Kind::User, &u.id, u.created_at, u.updated_at, u.version);
        v
    }

    fn group_json(&self, g: &ScimGroupRow) -> Value {
        let mut v = g.doc.clone();
        v["schemas"] = json!([model::GROUP_SCHEMA]);
        v["id"] = json!(g.id);
        if !g.members.is_empty() {
            v["members"] = Value::Array(
                g.members
                    .iter()
                    .map(|m| json!({"value": m, "$ref": format!("{}/Users/{m}", self.base)}))
                    .collect(),
            );
        }
        v["meta"] = self.meta(Kind::Group, &g.id, g.created_at, g.updated_at, g.version);
        v
    }

    fn meta(&self, kind: Kind, id: &str, created: i64, updated: i64, version: i64) -> Value {
        json!({
            "resourceType": kind.name(),
            "created": twokey_core::time::format_time(created),
            "lastModified": twokey_core::time::format_time(updated),
            "location": format!("{}{}/{id}", self.base, kind.endpoint()),
            "version": model::etag(version),
        })
    }

    fn event(&self, client: &str, ev: LedgerEvent) -> Event {
        ev.by(format!("scim|{client}"))
    }

    async fn commit(
        &self,
        write: DirectoryWrite,
        subject: String,
        ev: Event,
    ) -> Result<(), ScimError> {
        let b = &self.broker;
        b.store()
            .commit(Change {
                now: b.now(),
                policy_hash: b.policy().policy.hash.clone(),
                directory: vec![write],
                events: vec![(subject, ev)],
                ..Default::default()
            })
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn user(&self, id: &str) -> Result<ScimUserRow, ScimError> {
        self.broker
            .store()
            .scim_user(id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ScimError {
                status: 404,
                scim_type: None,
                detail: format!("no User {id:?}"),
            })
    }

    async fn groups(&self) -> Result<Vec<ScimGroupRow>, ScimError> {
        self.broker.store().scim_groups().await.map_err(store_error)
    }

    async fn user_answer(&self, id: &str, status: StatusCode, p: &OneParams) -> Response {
        let (u, groups) = match (self.user(id).await, self.groups().await) {
            (Ok(u), Ok(g)) => (u, g),
            (Err(e), _) | (_, Err(e)) => return error(&e),
        };
        let v = model::project(
            self.user_json(&u, &groups),
            p.attributes.as_deref(),
            p.excluded_attributes.as_deref(),
        );
        resource_response(status, v, u.version)
    }

    /// Writes a user's new attributes (create when `prev` is None) and, when
    /// they stop being active (or their link changes away), ends what they
    /// had: pending requests cancelled, grants revoked.
    async fn write_user(
        &self,
        client: &str,
        prev: Option<&ScimUserRow>,
        attrs: Map<String, Value>,
        how: &str,
    ) -> Result<String, ScimError> {
        let now = self.broker.now();
        let active = attrs.get("active").and_then(Value::as_bool).unwrap_or(true);
        let identity = self.identity(&attrs);
        let row = ScimUserRow {
            id: prev
                .map(|p| p.id.clone())
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            user_name: attrs
                .get("userName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            external_id: attrs
                .get("externalId")
                .and_then(Value::as_str)
                .map(String::from),
            identity: identity.as_ref().map(|i| i.to_string()),
            active,
            version: 0,
            created_at: prev.map(|p| p.created_at).unwrap_or(now),
            updated_at: now,
            doc: Value::Object(attrs),
        };
        let was_active = prev.is_none_or(|p| p.active);
        let data = DirectoryUser {
            id: row.id.clone(),
            user_name: row.user_name.clone(),
            external_id: row.external_id.clone(),
            identity: row.identity.clone(),
            active: Some(active),
            via: Some(how.to_string()),
        };
        let ev = match (prev, was_active, active) {
            (None, _, _) => LedgerEvent::DirectoryUserCreated(data),
            (Some(_), true, false) => LedgerEvent::DirectoryUserDeactivated(data),
            (Some(_), false, true) => LedgerEvent::DirectoryUserReactivated(data),
            (Some(_), _, _) => LedgerEvent::DirectoryUserUpdated(data),
        };
        let ev = self.event(client, ev);
        let id = row.id.clone();
        self.commit(
            DirectoryWrite::User {
                row,
                expected_version: prev.map(|p| p.version),
            },
            format!("scim:User:{id}"),
            ev,
        )
        .await?;
        // A deactivated user, or an identity the user no longer links to,
        // keeps nothing.
        let old_identity = prev
            .and_then(|p| p.identity.as_deref())
            .and_then(IdentityKey::parse);
        if !active {
            if let Some(i) = &identity {
                self.departed(i, "deactivated in the directory").await?;
            }
        }
        if let (Some(old), true) = (old_identity, was_active) {
            if identity.as_ref() != Some(&old) {
                self.departed(&old, "unlinked in the directory").await?;
            }
        }
        Ok(id)
    }

    async fn departed(&self, identity: &IdentityKey, why: &str) -> Result<(), ScimError> {
        match self.broker.directory_departed(identity, why).await {
            Ok((cancelled, revoked)) => {
                tracing::info!(%identity, cancelled, revoked, "directory: {why}");
                Ok(())
            }
            Err(e) => {
                tracing::error!(%identity, error = %e, "directory: ending the grants of a departed user failed");
                let p = crate::error::ApiError::from(e).problem();
                Err(ScimError {
                    status: 503,
                    scim_type: None,
                    detail: format!(
                        "the user was changed, but ending their requests and grants failed ({}); retry the request",
                        p.detail
                    ),
                })
            }
        }
    }
}

async fn list_users(State(st): St, Query(p): Query<ListParams>) -> Response {
    let (users, groups) = match (
        st.broker.store().scim_users().await.map_err(store_error),
        st.groups().await,
    ) {
        (Ok(u), Ok(g)) => (u, g),
        (Err(e), _) | (_, Err(e)) => return error(&e),
    };
    let all = users.iter().map(|u| st.user_json(u, &groups)).collect();
    match list(all, &p) {
        Ok(v) => scim(StatusCode::OK, v),
        Err(e) => error(&e),
    }
}

async fn get_user(State(st): St, Path(id): Path<String>, Query(p): Query<OneParams>) -> Response {
    st.user_answer(&id, StatusCode::OK, &p).await
}

async fn create_user(
    State(st): St,
    Extension(who): Extension<ClientName>,
    body: Bytes,
) -> Response {
    let res = async {
        let attrs = model::sanitize(Kind::User, &parse_body(&body)?)?;
        st.write_user(&who.0, None, attrs, "POST").await
    }
    .await;
    match res {
        Ok(id) => {
            st.user_answer(&id, StatusCode::CREATED, &OneParams::default())
                .await
        }
        Err(e) => error(&e),
    }
}

async fn put_user(
    State(st): St,
    Path(id): Path<String>,
    headers: HeaderMap,
    Extension(who): Extension<ClientName>,
    body: Bytes,
) -> Response {
    let res = async {
        let prev = st.user(&id).await?;
        check_if_match(&headers, prev.version)?;
        let attrs = model::sanitize(Kind::User, &parse_body(&body)?)?;
        st.write_user(&who.0, Some(&prev), attrs, "PUT").await
    }
    .await;
    match res {
        Ok(id) => {
            st.user_answer(&id, StatusCode::OK, &OneParams::default())
                .await
        }
        Err(e) => error(&e),
    }
}

async fn patch_user(
    State(st): St,
    Path(id): Path<String>,
    headers: HeaderMap,
    Extension(who): Extension<ClientName>,
    body: Bytes,
) -> Response {
    let res = async {
        let prev = st.user(&id).await?;
        check_if_match(&headers, prev.version)?;
        let cur = prev.doc.as_object().cloned().unwrap_or_default();
        let attrs = model::patch(Kind::User, &cur, &parse_body(&body)?)?;
        st.write_user(&who.0, Some(&prev), attrs, "PATCH").await
    }
    .await;
    match res {
        Ok(id) => {
            st.user_answer(&id, StatusCode::OK, &OneParams::default())
                .await
        }
        Err(e) => error(&e),
    }
}

async fn delete_user(
    State(st): St,
    Path(id): Path<String>,
    headers: HeaderMap,
    Extension(who): Extension<ClientName>,
) -> Response {
    let res = async {
        let prev = st.user(&id).await?;
        check_if_match(&headers, prev.version)?;
        let ev = st.event(
            &who.0,
            LedgerEvent::DirectoryUserDeleted(DirectoryUser {
                id: prev.id.clone(),
                user_name: prev.user_name.clone(),
                external_id: prev.external_id.clone(),
                identity: prev.identity.clone(),
                active: None,
                via: None,
            }),
        );
        st.commit(
            DirectoryWrite::DeleteUser { id: id.clone() },
            format!("scim:User:{id}"),
            ev,
        )
        .await?;
        if let Some(i) = prev.identity.as_deref().and_then(IdentityKey::parse) {
            st.departed(&i, "deleted from the directory").await?;
        }
        Ok::<_, ScimError>(())
    }
    .await;
    match res {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error(&e),
    }
}

// ----- groups -----------------------------------------------------------------

impl Scim {
    async fn group(&self, id: &str) -> Result<ScimGroupRow, ScimError> {
        self.broker
            .store()
            .scim_group(id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ScimError {
                status: 404,
                scim_type: None,
                detail: format!("no Group {id:?}"),
            })
    }

    async fn group_answer(&self, id: &str, status: StatusCode, p: &OneParams) -> Response {
        match self.group(id).await {
            Ok(g) => {
                let v = model::project(
                    self.group_json(&g),
                    p.attributes.as_deref(),
                    p.excluded_attributes.as_deref(),
                );
                resource_response(status, v, g.version)
            }
            Err(e) => error(&e),
        }
    }

    async fn write_group(
        &self,
        client: &str,
        prev: Option<&ScimGroupRow>,
        mut attrs: Map<String, Value>,
    ) -> Result<String, ScimError> {
        let now = self.broker.now();
        let members: Vec<String> = match attrs.remove("members") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|m| {
                    m["value"].as_str().map(String::from).ok_or_else(|| {
                        ScimError::bad("invalidValue", "every member needs a value (a User id)")
                    })
                })
                .collect::<Result<_, _>>()?,
            _ => Vec::new(),
        };
        let display_name = attrs
            .get("displayName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let id = prev
            .map(|p| p.id.clone())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let before: Vec<String> = prev.map(|p| p.members.clone()).unwrap_or_default();
        let added: Vec<&String> = members.iter().filter(|m| !before.contains(m)).collect();
        let removed: Vec<&String> = before.iter().filter(|m| !members.contains(m)).collect();
        let data = DirectoryGroup {
            id: id.clone(),
            display_name: display_name.clone(),
            added: Some(added.into_iter().cloned().collect()),
            removed: removed.into_iter().cloned().collect(),
        };
        let ev = self.event(
            client,
            if prev.is_some() {
                LedgerEvent::DirectoryGroupUpdated(data)
            } else {
                LedgerEvent::DirectoryGroupCreated(data)
            },
        );
        let row = ScimGroupRow {
            id: id.clone(),
            display_name,
            external_id: attrs
                .get("externalId")
                .and_then(Value::as_str)
                .map(String::from),
            version: 0,
            created_at: prev.map(|p| p.created_at).unwrap_or(now),
            updated_at: now,
            doc: Value::Object(attrs),
            members,
        };
        self.commit(
            DirectoryWrite::Group {
                row,
                expected_version: prev.map(|p| p.version),
            },
            format!("scim:Group:{id}"),
            ev,
        )
        .await?;
        Ok(id)
    }
}

async fn list_groups(State(st): St, Query(p): Query<ListParams>) -> Response {
    let groups = match st.groups().await {
        Ok(g) => g,
        Err(e) => return error(&e),
    };
    let all = groups.iter().map(|g| st.group_json(g)).collect();
    match list(all, &p) {
        Ok(v) => scim(StatusCode::OK, v),
        Err(e) => error(&e),
    }
}

async fn get_group(State(st): St, Path(id): Path<String>, Query(p): Query<OneParams>) -> Response {
    st.group_answer(&id, StatusCode::OK, &p).await
}

async fn create_group(
    State(st): St,
    Extension(who): Extension<ClientName>,
    body: Bytes,
) -> Response {
    let res = async {
        let attrs = model::sanitize(Kind::Group, &parse_body(&body)?)?;
        st.write_group(&who.0, None, attrs).await
    }
    .await;
    match res {
        Ok(id) => {
            st.group_answer(&id, StatusCode::CREATED, &OneParams::default())
                .await
        }
        Err(e) => error(&e),
    }
}

async fn put_group(
    State(st): St,
    Path(id): Path<String>,
    headers: HeaderMap,
    Extension(who): Extension<ClientName>,
    body: Bytes,
) -> Response {
    let res = async {
        let prev = st.group(&id).await?;
        check_if_match(&headers, prev.version)?;
        let attrs = model::sanitize(Kind::Group, &parse_body(&body)?)?;
        st.write_group(&who.0, Some(&prev), attrs).await
    }
    .await;
    match res {
        Ok(id) => {
            st.group_answer(&id, StatusCode::OK, &OneParams::default())
                .await
        }
        Err(e) => error(&e),
    }
}

async fn patch_group(
    State(st): St,
    Path(id): Path<String>,
    headers: HeaderMap,
    Extension(who): Extension<ClientName>,
    body: Bytes,
) -> Response {
    let res = async {
        let prev = st.group(&id).await?;
        check_if_match(&headers, prev.version)?;
        let mut cur = prev.doc.as_object().cloned().unwrap_or_default();
        if !prev.members.is_empty() {
            cur.insert(
                "members".into(),
                Value::Array(prev.members.iter().map(|m| json!({"value": m})).collect()),
            );
        }
        let attrs = model::patch(Kind::Group, &cur, &parse_body(&body)?)?;
        st.write_group(&who.0, Some(&prev), attrs).await
    }
    .await;
    match res {
        Ok(id) => {
            st.group_answer(&id, StatusCode::OK, &OneParams::default())
                .await
        }
        Err(e) => error(&e),
    }
}

async fn delete_group(
    State(st): St,
    Path(id): Path<String>,
    headers: HeaderMap,
    Extension(who): Extension<ClientName>,
) -> Response {
    let res = async {
        let prev = st.group(&id).await?;
        check_if_match(&headers, prev.version)?;
        let ev = st.event(
            &who.0,
            LedgerEvent::DirectoryGroupDeleted(DirectoryGroup {
                id: prev.id.clone(),
                display_name: prev.display_name.clone(),
                added: None,
                removed: prev.members.clone(),
            }),
        );
        st.commit(
            DirectoryWrite::DeleteGroup { id: id.clone() },
            format!("scim:Group:{id}"),
            ev,
        )
        .await
    }
    .await;
    match res {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error(&e),
    }
}
