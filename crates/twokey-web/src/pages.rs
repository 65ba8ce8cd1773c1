//! The pages. Each handler reads through the broker and renders escaped
//! HTML. Forms arrive through the CSRF-checking extractors of `csrf.rs`; the
//! buttons a page shows are the core's `allowed_actions`, and the broker
//! decides again when one is pressed.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;
use twokey_core::request::approvals_counted;
use twokey_core::{
    allowed_actions, Action, Actor, NewRequest, Request, ReviewDecision, State as RState,
};
use twokey_server::reads::{AuditVerdict, Listing, PostureView, AUDIT_FULL_EVERY_MS};
use twokey_server::ApiError;

use crate::auth::Session;
use crate::csrf::CheckedForm;
use crate::html::{dur, error_page, page, respond, time, Who};
use crate::AppState;

const CSS: &str = include_str!("../static/style.css");

/// An error of the broker or the store as a page: its status, and what the
/// API's problem details say (an internal failure shows only a correlation
/// id; its cause goes to the log).
pub(crate) fn api_error(err: impl Into<ApiError>) -> Response {
    let err = err.into();
    error_page(err.status(), &err.problem().detail)
}

fn who(s: &Session) -> Who<'_> {
    Who {
        actor: &s.actor,
        csrf: &s.csrf,
    }
}

fn ok(s: &Session, title: &str, body: &str) -> Response {
    respond(StatusCode::OK, page(title, Some(who(s)), body))
}

/// `GET /`: to the dashboard.
pub(crate) async fn root() -> Redirect {
    Redirect::to("/ui/")
}

/// The stylesheet (no inline styles: the CSP allows only `'self'`).
pub(crate) async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

fn state_badge(s: RState) -> Markup {
    html! { span class={ "state state-" (s.as_str()) } { (s.as_str()) } }
}

fn requests_table(st: &AppState, caption: &str, reqs: &[Request], empty: &str) -> Markup {
    let now = st.broker.now();
    let lp = st.broker.policy();
    let required = |r: &Request| {
        lp.policy
            .entitlement(&r.entitlement)
            .map(|x| x.approval.count)
            .unwrap_or(0)
    };
    html! {
        section {
            h2 { (caption) }
            @if reqs.is_empty() {
                p.muted { (empty) }
            } @else {
                table {
                    thead { tr {
                        th scope="col" { "Request" } th scope="col" { "Entitlement" } th scope="col" { "Requester" }
                        th scope="col" { "State" } th scope="col" { "Approvals" } th scope="col" { "Time left" } th scope="col" { "Reason" }
                    } }
                    tbody {
                        @for r in reqs {
                            tr {
                                td { a href={ "/ui/requests/" (r.id) } { (r.id) } }
                                td { (r.entitlement) }
                                td { (r.requester_name) }
                                td { (state_badge(r.state)) }
                                td { (approvals_counted(r)) "/" (required(r)) }
                                td {
                                    @if let (RState::Active, Some(end)) = (r.state, r.ends_at) {
                                        (dur(end - now)) " left"
                                    }
                                }
                                td { (r.reason) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /ui/`: my active grants, requests waiting for me, my requests.
pub(crate) async fn dashboard(State(st): State<AppState>, s: Session) -> Response {
    let mine = match st.broker.list(&s.actor, Listing::Mine { limit: 100 }).await {
        Ok(r) => r,
        Err(err) => return api_error(err),
    };
    let waiting = match st.broker.waiting_for(&s.actor).await {
        Ok(r) => r,
        Err(err) => return api_error(err),
    };
    let active: Vec<Request> = mine
        .iter()
        .filter(|r| matches!(r.state, RState::Active | RState::Approved))
        .cloned()
        .collect();
    let body = html! {
        p { a.button href="/ui/request" { "Request access" } }
        (requests_table(&st, "My active grants", &active, "No active grants."))
        (requests_table(&st, "Waiting for my review", &waiting, "Nothing is waiting for you."))
        (requests_table(&st, "My requests", &mine, "You have not asked for anything yet."))
    };
    ok(&s, "Dashboard", &body.into_string())
}

fn may_request(actor: &Actor, st: &AppState) -> Vec<twokey_core::Entitlement> {
    st.broker
        .policy()
        .policy
        .entitlements
        .values()
        .filter(|ent| ent.may_request(actor))
        .cloned()
        .collect()
}

/// `GET /ui/request`: the request form, with only what I may request.
pub(crate) async fn request_form(State(st): State<AppState>, s: Session) -> Response {
    let ents = may_request(&s.actor, &st);
    if ents.is_empty() {
        return ok(
            &s,
            "Request access",
            r#"<p>The policy lets you request nothing. Ask a policy admin.</p>"#,
        );
    }
    let body = html! {
        form method="post" action="/ui/request" class="stack" {
            input type="hidden" name="csrf" value=(s.csrf);
            label for="entitlement" { "Entitlement" }
            select #entitlement name="entitlement" required {
                @for ent in &ents { option value=(ent.name) { (ent.name) } }
            }
            label for="duration" { "Duration (for example 30m or 1h; counted from activation)" }
            input #duration name="duration" type="text" placeholder="default" pattern="[0-9]+[smhd]?([0-9]+[smhd])*" aria-describedby="ent-help";
            label for="reason" { "Reason" }
            textarea #reason name="reason" rows="3" {}
            label for="ticket" { "Ticket (when the entitlement requires one)" }
            input #ticket name="ticket" type="text";
            button type="submit" { "Submit request" }
        }
        section #ent-help {
            h2 { "What you may request" }
            ul {
                @for ent in &ents {
                    li {
                        strong { (ent.name) } ": " (ent.description) ". Default " (dur(ent.default_duration_ms))
                        ", at most " (dur(ent.max_duration_ms)) "; " (ent.approval.count) " approval(s) from "
                        (ent.approval.from.join(", "))
                        @if ent.approver_mfa { " (approvers confirm with a security key)" }
                        @if ent.reason_required { "; reason required" }
                        @if let Some(p) = &ent.ticket_pattern { "; ticket matching " code { (p.as_str()) } }
                        "."
                    }
                }
            }
        }
    }
    .into_string();
    ok(&s, "Request access", &body)
}

/// Form of `POST /ui/request`.
#[derive(Deserialize)]
pub(crate) struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    entitlement: String,
    #[serde(default)]
    duration: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    ticket: String,
}

fn parse_dur(s: &str) -> Result<Option<i64>, Response> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    twokey_core::time::parse_duration(s)
        .map(Some)
        .map_err(|m| error_page(StatusCode::BAD_REQUEST, &m))
}

/// `POST /ui/request`: create a request, then show it.
pub(crate) async fn create(
    State(st): State<AppState>,
    CheckedForm(s, f): CheckedForm<CreateForm>,
) -> Response {
    let duration_ms = match parse_dur(&f.duration) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let input = NewRequest {
        entitlement: f.entitlement,
        duration_ms,
        reason: f.reason,
        ticket: Some(f.ticket.trim().to_string()).filter(|t| !t.is_empty()),
        break_glass: false,
    };
    match st.broker.create_request(&s.actor, &input).await {
        Ok(r) => Redirect::to(&format!("/ui/requests/{}", r.id)).into_response(),
        Err(err) => api_error(err),
    }
}

fn actor_label(key: &str, r: &Request, viewer: &Actor) -> String {
    if key == viewer.key.to_string() && !viewer.is(&r.requester) {
        return viewer.name.clone();
    }
    if key == r.requester.to_string() {
        return format!("{} (requester)", r.requester_name);
    }
    if let Some(v) = r.reviews.iter().find(|v| v.reviewer.to_string() == key) {
        return v.reviewer_name.clone();
    }
    if key.ends_with("|system") {
        return "twokey".into();
    }
    key.to_string()
}

/// `GET /ui/requests/{id}`: details, reviews, the ledger timeline, actions.
pub(crate) async fn request_page(
    State(st): State<AppState>,
    s: Session,
    Path(id): Path<String>,
) -> Response {
    let (r, timeline) = match st.broker.read_with_timeline(&s.actor, &id).await {
        Ok(v) => v,
        Err(err) => return api_error(err),
    };
    let lp = st.broker.policy();
    let ent = lp.policy.entitlement(&r.entitlement);
    let now = st.broker.now();

    let mut body = facts_section(&r, ent, now).into_string();
    body.push_str(&reviews_section(&r).into_string());

    // Actions the broker would accept from this person, as the core says
    // (the broker checks again when one is taken).
    let allowed = allowed_actions(&lp.policy, &r, &s.actor, now);
    match actions_section(&st, &s, &r, &allowed, ent.is_some_and(|x| x.approver_mfa)).await {
        Ok(actions) => body.push_str(&actions.into_string()),
        Err(resp) => return resp,
    }

    // What the grant did (records the guard attributed to it).
    if r.activated_at.is_some() {
        match st.broker.activity(&r.id, 200).await {
            Ok(a) => body.push_str(&activity_section(&a).into_string()),
            Err(err) => return api_error(err),
        }
    }

    // Timeline from the ledger.
    let timeline = html! {
        section {
            h2 { "Timeline (from the ledger)" }
            ol.timeline {
                @for t in &timeline {
                    li {
                        span.muted { "#" (t.index) " · " (time(t.time_ms)) } " "
                        strong { (t.kind) } " by " (actor_label(&t.actor, &r, &s.actor))
                        @if let Some(c) = t.data["mfa"]["credential_id"].as_str() {
                            " " span.mfa { "confirmed with security key " code { (c.chars().take(16).collect::<String>()) "…" } }
                        }
                    }
                }
            }
        }
    };
    body.push_str(&timeline.into_string());
    ok(&s, &format!("Request {}", r.id), &body)
}

/// The request page's activity section (maud escapes every value).
fn activity_section(a: &twokey_server::activity::ActivityView) -> maud::Markup {
    maud::html! {
        section {
            h2 { "Activity (attributed by the guard)" }
            p.muted {
                (a.events) " records"
                @if a.overflow > 0 { " (" (a.overflow) " beyond the per-grant bound, counted only)" }
                @match a.digest_index {
                    Some(i) => { "; digest #" (i) " (revision " (a.revision) ") in the ledger" }
                    None => { "; its digest is written to the ledger once the grant has ended and settled" }
                }
                @if (a.records.len() as i64) < a.events { "; showing the first " (a.records.len()) }
            }
            @if !a.records.is_empty() {
                table.activity {
                    thead { tr { th { "Time" } th { "Source" } th { "Action" } th { "Principal" } th { "From" } th { "Outcome" } } }
                    tbody {
                        @for rec in &a.records {
                            tr {
                                td { (time(rec.event_time)) }
                                td { (rec.source.as_str()) }
                                td { code { (rec.action) } }
                                td { (rec.principal) }
                                td { (rec.source_ip) }
                                td { @if rec.outcome.is_empty() { "ok" } @else { strong { (rec.outcome) } } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The Actions section of a request page: the forms for what `allowed` (the
/// core's `allowed_actions`) lists, with the security-key flow where the
/// entitlement needs one. Empty when the person may do nothing.
async fn actions_section(
    st: &AppState,
    s: &Session,
    r: &Request,
    allowed: &std::collections::BTreeSet<Action>,
    needs_key: bool,
) -> Result<Markup, Response> {
    let may_review = allowed.contains(&Action::Approve);
    let mine = s.actor.is(&r.requester);
    let has_keys = if may_review && needs_key {
        match st.broker.has_security_key(&s.actor).await {
            Ok(k) => k,
            Err(err) => return Err(api_error(err)),
        }
    } else {
        false
    };
    let (csrf, rid) = (s.csrf.as_str(), r.id.as_str());
    let review = html! {
        @if may_review && needs_key {
            @if has_keys {
                p.muted #mfa-note { "This entitlement requires step-up MFA: approving asks for your security key." }
            } @else {
                p.error #mfa-note {
                    "This entitlement requires step-up MFA. " a href="/ui/keys" { "Add a security key" } " to approve it (you can still deny)."
                }
            }
            form method="post" action={ "/ui/requests/" (rid) "/approve" } class="stack review" data-mfa-request=(rid) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="ceremony" value="";
                input type="hidden" name="assertion" value="";
                label for="comment" { "Comment (optional)" }
                textarea #comment name="comment" rows="2" {}
                div.buttons {
                    @if has_keys {
                        button type="submit" name="decision" value="approve" { "Approve with security key" } " "
                    }
                    button type="submit" name="decision" value="deny" formaction={ "/ui/requests/" (rid) "/deny" } class="danger" { "Deny" }
                }
                p #webauthn-status role="status" aria-live="polite" {}
            }
            script src="/ui/static/webauthn.js" {}
        } @else if may_review {
            form method="post" action={ "/ui/requests/" (rid) "/approve" } class="stack review" {
                input type="hidden" name="csrf" value=(csrf);
                label for="comment" { "Comment (optional)" }
                textarea #comment name="comment" rows="2" {}
                div.buttons {
                    button type="submit" name="decision" value="approve" { "Approve" } " "
                    button type="submit" formaction={ "/ui/requests/" (rid) "/deny" } class="danger" { "Deny" }
                }
            }
        } @else if r.state == RState::Pending && mine {
            p.muted #own-request { "You made this request: someone else has to review it." }
        }
    };
    let actions = html! {
        (review)
        @if allowed.contains(&Action::Cancel) { (form_button(rid, "cancel", "Cancel request", csrf, "")) }
        @if allowed.contains(&Action::Revoke) { (form_button(rid, "revoke", "Revoke now", csrf, "danger")) }
        @if allowed.contains(&Action::Extend) {
            form method="post" action={ "/ui/requests/" (rid) "/extend" } class="stack" {
                input type="hidden" name="csrf" value=(csrf);
                label for="ext-duration" { "Extend by (a new request that needs approval)" }
                input #ext-duration name="duration" type="text" placeholder="default";
                label for="ext-reason" { "Reason (the original's when empty)" }
                input #ext-reason name="reason" type="text";
                button type="submit" { "Ask for an extension" }
            }
        }
        @if allowed.contains(&Action::ReviewBreakGlass) {
            (form_button(rid, "review-break-glass", "Mark break-glass use reviewed", csrf, ""))
        }
    };
    // The section only when the person may do something here.
    Ok(html! {
        @if !actions.0.is_empty() {
            section { h2 { "Actions" } (actions) }
        }
    })
}

/// The facts of a request (state, entitlement, requester, reason, ...).
fn facts_section(r: &Request, ent: Option<&twokey_core::Entitlement>, now: i64) -> maud::Markup {
    maud::html! {
        dl.facts {
            dt { "State" } dd { (state_badge(r.state)) }
            dt { "Entitlement" } dd { (r.entitlement) }
            dt { "Requester" } dd { (r.requester_name) " " span.muted { "(" (r.requester.to_string()) ")" } }
            dt { "Reason" } dd { (r.reason) }
            dt { "Ticket" } dd { (r.ticket.as_deref().unwrap_or("-")) }
            dt { "Duration" } dd { (dur(r.duration_ms)) }
            dt { "Approvals" } dd { (approvals_counted(r)) " of " (ent.map(|x| x.approval.count).unwrap_or(0)) }
            @if let (Some(start), Some(end)) = (r.activated_at, r.ends_at) {
                dt { "Active" }
                dd {
                    (time(start)) " to " (time(end))
                    @if r.state == RState::Active {
                        " · " strong.time-left { (dur(end - now)) " left" }
                    }
                }
            }
            @if r.break_glass {
                dt { "Break-glass" } dd { "yes (self-activated; needs review afterwards)" }
            }
        }
    }
}

/// The reviews of a request, in order.
fn reviews_section(r: &Request) -> maud::Markup {
    maud::html! {
        section {
            h2 { "Reviews" }
            @if r.reviews.is_empty() {
                p.muted { "No reviews yet." }
            } @else {
                ul.reviews {
                    @for v in &r.reviews {
                        li {
                            strong { (v.reviewer_name) }
                            " " (match v.decision { ReviewDecision::Approve => "approved", ReviewDecision::Deny => "denied" })
                            " at " (time(v.at))
                            @if !v.comment.is_empty() { ": “" (v.comment) "”" }
                        }
                    }
                }
            }
        }
    }
}

fn form_button(rid: &str, action: &str, label: &str, csrf: &str, class: &str) -> Markup {
    html! {
        form method="post" action={ "/ui/requests/" (rid) "/" (action) } class="inline" {
            input type="hidden" name="csrf" value=(csrf);
            button type="submit" class=(class) { (label) }
        }
    }
}

/// Form of the request actions.
#[derive(Deserialize)]
pub(crate) struct ActForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    duration: String,
    #[serde(default)]
    reason: String,
    /// Security-key ceremony id (step-up MFA approvals).
    #[serde(default)]
    ceremony: String,
    /// The WebAuthn assertion, as JSON (step-up MFA approvals).
    #[serde(default)]
    assertion: String,
}

/// `POST /ui/requests/{id}/{action}`: approve, deny, cancel, revoke, extend,
/// review-break-glass.
pub(crate) async fn act(
    State(st): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    CheckedForm(s, f): CheckedForm<ActForm>,
) -> Response {
    let b = &st.broker;
    let res = match action.as_str() {
        "approve" => {
            let needs_key = match b.get(&id).await {
                Ok(r) => b
                    .policy()
                    .policy
                    .entitlement(&r.entitlement)
                    .is_some_and(|x| x.approver_mfa),
                Err(err) => return api_error(err),
            };
            // With a key confirmation when the form carries one; the core
            // refuses an approval of an `approver_mfa` entitlement without it.
            let mfa = if needs_key && !f.assertion.is_empty() {
                match crate::mfa::verify_approval(&st, &s, &id, &f.ceremony, &f.assertion).await {
                    Ok(m) => Some(m),
                    Err(msg) => {
                        return error_page(StatusCode::FORBIDDEN, &format!("Not approved: {msg}"))
                    }
                }
            } else {
                None
            };
            b.review_confirmed(&s.actor, &id, ReviewDecision::Approve, &f.comment, mfa)
                .await
        }
        "deny" => {
            b.review(&s.actor, &id, ReviewDecision::Deny, &f.comment)
                .await
        }
        "cancel" => b.cancel(&s.actor, &id).await,
        "revoke" => b.revoke(&s.actor, &id).await,
        "review-break-glass" => b.review_break_glass(&s.actor, &id, &f.comment).await,
        "extend" => {
            let d = match parse_dur(&f.duration) {
                Ok(d) => d,
                Err(r) => return r,
            };
            b.extend(&s.actor, &id, d, &f.reason).await
        }
        _ => return error_page(StatusCode::NOT_FOUND, "no such action"),
    };
    match res {
        Ok(r) => Redirect::to(&format!("/ui/requests/{}", r.id)).into_response(),
        Err(err) => api_error(err),
    }
}

/// `GET /ui/audit`: the latest ledger entries and whether the stored Merkle
/// head matches the entries.
pub(crate) async fn audit(State(st): State<AppState>, s: Session) -> Response {
    let view = match st.broker.audit_view(&s.actor).await {
        Ok(v) => v,
        Err(err) => return api_error(err),
    };
    let status = match &view.verdict {
        AuditVerdict::Failed(p) => {
            html! { p class="error" role="status" { "Verification FAILED: " (p) } }
        }
        AuditVerdict::Verified { size, root } => html! {
            p class="ok" role="status" { "Verified: " (size) " entries; the recomputed Merkle root " code { (root) } " matches the stored head." }
        },
        AuditVerdict::Empty => html! { p class="ok" role="status" { "The ledger is empty." } },
        AuditVerdict::Consistent { size, root } => html! {
            p class="ok" role="status" { "Consistent: " (size) " contiguous entries, Merkle root " code { (root) } " (the store keeps no head root to compare with)." }
        },
    };
    let body = html! {
        (status)
        p.muted { "The whole ledger was last hashed from its first entry at " (time(view.full_at_ms)) "; the entries appended since were hashed onto that result (every " (AUDIT_FULL_EVERY_MS / 60_000) " minutes it is hashed whole again)." }
        p { "Verify offline with a checkpoint held elsewhere: " code { "twokey ledger verify" } "." }
        table {
            caption { "Latest entries, newest first" }
            thead { tr { th scope="col" { "#" } th scope="col" { "Time" } th scope="col" { "Event" } th scope="col" { "Actor" } th scope="col" { "Subject" } } }
            tbody {
                @for en in view.latest.iter().rev() {
                    tr {
                        td { (en.index) }
                        td { (time(en.time_ms)) }
                        td { (en.kind) }
                        td { (en.actor) }
                        td {
                            @if en.subject.starts_with("req-") {
                                a href={ "/ui/requests/" (en.subject) } { (en.subject) }
                            } @else {
                                (en.subject)
                            }
                        }
                    }
                }
            }
        }
    };
    ok(&s, "Audit log", &body.into_string())
}

/// `GET /ui/posture`: the organisation's posture as the monitor last saw
/// it (`[posture]` in `twokey.toml`), failing first; for admins and
/// auditors, like the audit log. Changes are in the ledger (`posture.*`).
pub(crate) async fn posture(State(st): State<AppState>, s: Session) -> Response {
    let PostureView {
        aws: rows,
        github,
        restores,
    } = match st.broker.posture_view(&s.actor).await {
        Ok(v) => v,
        Err(err) => return api_error(err),
    };
    if rows.is_empty() && github.is_empty() {
        return ok(
            &s,
            "Posture",
            "<p>No posture scan yet. Turn it on with <code>[posture] interval = \"1h\"</code> (AWS) or <code>[posture.github] interval</code> (GitHub) in <code>twokey.toml</code>.</p>",
        );
    }
    let body = html! {
        @if rows.is_empty() {
            p { "No AWS posture scan yet." }
        } @else {
            (aws_posture(&rows))
        }
        (github_posture(&github))
        (github_restores(&restores))
        p {
            "Each change (newly failing, fixed, a GitHub restore proposed or applied) is a "
            code { "posture.*" } " entry in the " a href="/ui/audit" { "audit log" } "."
        }
    };
    ok(&s, "Posture", &body.into_string())
}

/// The AWS part of `/ui/posture`: counts, failing by severity, every row
/// failing first.
fn aws_posture(rows: &[twokey_store::PostureRow]) -> Markup {
    let rank = |st: &str| match st {
        "FAIL" => 0,
        "ERROR" => 1,
        _ => 2,
    };
    let sev = |v: &str| match v {
        "critical" => 0,
        "high" => 1,
        "medium" => 2,
        _ => 3,
    };
    let mut sorted: Vec<&twokey_store::PostureRow> = rows.iter().collect();
    sorted.sort_by_key(|r| {
        (
            rank(&r.status),
            sev(&r.severity),
            r.check.clone(),
            r.account.clone(),
        )
    });
    let count = |st: &str| rows.iter().filter(|r| r.status == st).count();
    let at = rows.iter().map(|r| r.scanned_at).max().unwrap_or(0);
    let failing = |v: &str| {
        rows.iter()
            .filter(|r| r.severity == v && r.status == "FAIL")
            .count()
    };
    html! {
        p role="status" {
            "Last scan " (time(at)) ": " strong { (count("FAIL")) " failing" } ", " (count("PASS")) " passing, "
            (count("ERROR")) " not collected."
        }
        table {
            caption { "Failing by severity" }
            thead { tr { th scope="col" { "Severity" } th scope="col" { "Failing" } } }
            tbody {
                @for v in ["critical", "high", "medium", "low"] { tr { td { (v) } td { (failing(v)) } } }
            }
        }
        table {
            caption { "Every check on every resource, failing first" }
            thead { tr {
                th scope="col" { "Status" } th scope="col" { "Severity" } th scope="col" { "Check" } th scope="col" { "Account" }
                th scope="col" { "Region" } th scope="col" { "Resource" } th scope="col" { "Finding" }
            } }
            tbody {
                @for r in sorted {
                    tr class={ "posture-" (r.status) } {
                        td { (r.status) }
                        td { (r.severity) }
                        td { code { (r.check) } }
                        td { (r.account) }
                        td { (if r.region.is_empty() { "global" } else { &r.region }) }
                        td { code { (r.resource) } }
                        td { (r.message) }
                    }
                }
            }
        }
    }
}

/// The GitHub part of `/ui/posture`: the GitHub posture watcher's last
/// status of each check per repository (or organisation), failing first.
fn github_posture(states: &[twokey_store::GithubPostureState]) -> Markup {
    if states.is_empty() {
        return html! { h2 { "GitHub" } p { "No GitHub posture scan yet." } };
    }
    let rank = |st: &str| match st {
        "fail" => 0,
        "error" => 1,
        "excepted" => 2,
        _ => 3,
    };
    let mut sorted: Vec<&twokey_store::GithubPostureState> = states.iter().collect();
    sorted.sort_by(|a, b| {
        (rank(&a.status), &a.resource, &a.check).cmp(&(rank(&b.status), &b.resource, &b.check))
    });
    let count = |st: &str| states.iter().filter(|r| r.status == st).count();
    let at = states.iter().map(|r| r.checked_at).max().unwrap_or(0);
    html! {
        h2 { "GitHub" }
        p role="status" {
            "Last check " (time(at)) ": " strong { (count("fail")) " failing" } ", " (count("pass")) " passing, "
            (count("excepted")) " excepted, " (count("error")) " not collected."
        }
        table {
            caption { "Every GitHub check on every repository, failing first" }
            thead { tr { th scope="col" { "Status" } th scope="col" { "Check" } th scope="col" { "Repository" } th scope="col" { "Checked" } } }
            tbody {
                @for r in sorted {
                    tr class={ "posture-" (r.status) } {
                        td { (r.status) }
                        td { code { (r.check) } }
                        td { code { (r.resource) } }
                        td { (time(r.checked_at)) }
                    }
                }
            }
        }
    }
}

/// The GitHub restore proposals (newest first): each one's repository,
/// state, who proposed and approved it, the calls it makes and its result.
/// Acting on one is the API's (`/v1/posture/github/restores`): two admins.
fn github_restores(rows: &[twokey_store::GithubRestoreRow]) -> maud::Markup {
    let who = |v: &serde_json::Value| match (v["issuer"].as_str(), v["subject"].as_str()) {
        (Some(i), Some(s)) => format!("{i}|{s}"),
        _ => "—".to_string(),
    };
    maud::html! {
        @if !rows.is_empty() {
            h2 { "GitHub restore proposals" }
            table #restores {
                caption { "Restores take effect when a second admin approves them (newest first)" }
                thead { tr {
                    th scope="col" { "Proposal" } th scope="col" { "Repository" } th scope="col" { "State" }
                    th scope="col" { "Opened" } th scope="col" { "Proposed by" } th scope="col" { "Approved by" }
                    th scope="col" { "Calls" } th scope="col" { "Result" }
                } }
                tbody {
                    @for r in rows {
                        @let doc: serde_json::Value = serde_json::from_str(&r.doc).unwrap_or_default();
                        tr class={ "restore-" (r.state) } {
                            td { code { (r.id) } }
                            td { code { (r.resource) } }
                            td { (r.state) }
                            td { (time(r.created_at)) }
                            td { (who(&doc["proposed_by"])) }
                            td { (who(&doc["approved_by"])) }
                            td {
                                @for c in doc["calls"].as_array().into_iter().flatten() {
                                    code { (c["method"].as_str().unwrap_or("?")) " " (c["path"].as_str().unwrap_or("?")) } br;
                                }
                            }
                            td { (doc["result"].as_str().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /ui/policy`: the policy in force, credentials redacted.
pub(crate) async fn policy(State(st): State<AppState>, s: Session) -> Response {
    let lp = st.broker.policy();
    let p = &lp.policy;
    let body = html! {
        p.ok role="status" {
            "Valid: this policy passed validation when it took effect (hash " code { (p.hash) }
            "). Changes need a proposal and another admin's approval."
        }
        table {
            caption { "Entitlements" }
            thead { tr {
                th scope="col" { "Name" } th scope="col" { "Provider" } th scope="col" { "Requester groups" }
                th scope="col" { "Approval" } th scope="col" { "Max duration" }
            } }
            tbody {
                @for ent in p.entitlements.values() {
                    tr {
                        td { (ent.name) }
                        td { (ent.provider) }
                        td { (ent.requester_groups.join(", ")) }
                        td {
                            (ent.approval.count) " from " (ent.approval.from.join(", "))
                            @if ent.approval.exclude_requester_groups { ", not the requester's team" }
                            @if ent.approver_mfa { ", with security key" }
                        }
                        td { (dur(ent.max_duration_ms)) }
                    }
                }
            }
        }
        h2 { "Policy text" }
        pre.policy { (p.redacted_text()) }
    }
    .into_string();
    ok(&s, "Policy", &body)
}

crate::csrf::csrf_field!(CreateForm, ActForm);
