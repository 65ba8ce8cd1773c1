//! The pages. Each handler reads through the broker and renders escaped
//! HTML. Forms arrive through the CSRF-checking extractors of `csrf.rs`; the
//! buttons a page shows are the core's `allowed_actions`, and the broker
//! decides again when one is pressed.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use twokey_core::request::approvals_counted;
use twokey_core::{
    allowed_actions, Action, Actor, NewRequest, Request, ReviewDecision, State as RState,
};
use twokey_server::ApiError;

use crate::auth::Session;
use crate::csrf::CheckedForm;
use crate::html::{dur, e, error_page, page, respond, time, Who};
use crate::AppState;

const CSS: &str = include_str!("../static/style.css");

fn api_error(err: ApiError) -> Response {
    error_page(err.status(), &err.to_string())
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
pub async fn root() -> Redirect {
    Redirect::to("/ui/")
}

/// The stylesheet (no inline styles: the CSP allows only `'self'`).
pub async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

fn state_badge(s: RState) -> String {
    format!(r#"<span class="state state-{0}">{0}</span>"#, s.as_str())
}

fn requests_table(st: &AppState, caption: &str, reqs: &[Request], empty: &str) -> String {
    if reqs.is_empty() {
        return format!(
            r#"<section><h2>{}</h2><p class="muted">{}</p></section>"#,
            e(caption),
            e(empty)
        );
    }
    let now = st.broker.now();
    let lp = st.broker.policy();
    let mut rows = String::new();
    for r in reqs {
        let required = lp
            .policy
            .entitlement(&r.entitlement)
            .map(|x| x.approval.count)
            .unwrap_or(0);
        let left = match (r.state, r.ends_at) {
            (RState::Active, Some(end)) => format!("{} left", dur(end - now)),
            _ => String::new(),
        };
        rows.push_str(&format!(
            r#"<tr><td><a href="/ui/requests/{id}">{id}</a></td><td>{ent}</td><td>{who}</td><td>{state}</td><td>{a}/{req}</td><td>{left}</td><td>{reason}</td></tr>"#,
            id = e(&r.id),
            ent = e(&r.entitlement),
            who = e(&r.requester_name),
            state = state_badge(r.state),
            a = approvals_counted(r),
            req = required,
            left = e(&left),
            reason = e(&r.reason),
        ));
    }
    format!(
        r#"<section><h2>{}</h2><table><thead><tr><th scope="col">Request</th><th scope="col">Entitlement</th><th scope="col">Requester</th><th scope="col">State</th><th scope="col">Approvals</th><th scope="col">Time left</th><th scope="col">Reason</th></tr></thead><tbody>{rows}</tbody></table></section>"#,
        e(caption)
    )
}

/// `GET /ui/`: my active grants, requests waiting for me, my requests.
pub async fn dashboard(State(st): State<AppState>, s: Session) -> Response {
    let mine = match st
        .broker
        .store()
        .requests(Some(&s.actor.key.to_string()), &[], 100)
        .await
    {
        Ok(r) => r,
        Err(err) => return api_error(err.into()),
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
    let body = format!(
        r#"<p><a class="button" href="/ui/request">Request access</a></p>{}{}{}"#,
        requests_table(&st, "My active grants", &active, "No active grants."),
        requests_table(
            &st,
            "Waiting for my review",
            &waiting,
            "Nothing is waiting for you."
        ),
        requests_table(
            &st,
            "My requests",
            &mine,
            "You have not asked for anything yet."
        ),
    );
    ok(&s, "Dashboard", &body)
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
pub async fn request_form(State(st): State<AppState>, s: Session) -> Response {
    let ents = may_request(&s.actor, &st);
    if ents.is_empty() {
        return ok(
            &s,
            "Request access",
            r#"<p>The policy lets you request nothing. Ask a policy admin.</p>"#,
        );
    }
    let mut opts = String::new();
    let mut help = String::new();
    for ent in &ents {
        opts.push_str(&format!(
            r#"<option value="{n}">{n}</option>"#,
            n = e(&ent.name)
        ));
        help.push_str(&format!(
            r#"<li><strong>{n}</strong>: {d}. Default {def}, at most {max}; {appr} approval(s) from {from}{mfa}{reason}{ticket}.</li>"#,
            n = e(&ent.name),
            d = e(&ent.description),
            def = dur(ent.default_duration_ms),
            max = dur(ent.max_duration_ms),
            appr = ent.approval.count,
            from = e(&ent.approval.from.join(", ")),
            reason = if ent.reason_required { "; reason required" } else { "" },
            mfa = if ent.approver_mfa { " (approvers confirm with a security key)" } else { "" },
            ticket = ent
                .ticket_pattern
                .as_ref()
                .map(|p| format!("; ticket matching <code>{}</code>", e(p.as_str())))
                .unwrap_or_default(),
        ));
    }
    let body = format!(
        r#"<form method="post" action="/ui/request" class="stack">
<input type="hidden" name="csrf" value="{csrf}">
<label for="entitlement">Entitlement</label>
<select id="entitlement" name="entitlement" required>{opts}</select>
<label for="duration">Duration (for example 30m or 1h; counted from activation)</label>
<input id="duration" name="duration" type="text" placeholder="default" pattern="[0-9]+[smhd]?([0-9]+[smhd])*" aria-describedby="ent-help">
<label for="reason">Reason</label>
<textarea id="reason" name="reason" rows="3"></textarea>
<label for="ticket">Ticket (when the entitlement requires one)</label>
<input id="ticket" name="ticket" type="text">
<button type="submit">Submit request</button>
</form>
<section id="ent-help"><h2>What you may request</h2><ul>{help}</ul></section>"#,
        csrf = e(&s.csrf),
    );
    ok(&s, "Request access", &body)
}

/// Form of `POST /ui/request`.
#[derive(Deserialize)]
pub struct CreateForm {
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
pub async fn create(
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
pub async fn request_page(
    State(st): State<AppState>,
    s: Session,
    Path(id): Path<String>,
) -> Response {
    let r = match st.broker.get(&id).await {
        Ok(r) => r,
        Err(err) => return api_error(err),
    };
    if let Err(err) = twokey_server::api::require_read(&st.broker, &s.actor, &r) {
        return api_error(err);
    }
    let timeline = match st.broker.store().ledger_for(&id).await {
        Ok(t) => t,
        Err(err) => return api_error(err.into()),
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
        Ok(actions) => body.push_str(&actions),
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
    body.push_str(r#"<section><h2>Timeline (from the ledger)</h2><ol class="timeline">"#);
    for t in &timeline {
        let mfa = match t.data["mfa"]["credential_id"].as_str() {
            Some(c) => format!(
                r#" <span class="mfa">confirmed with security key <code>{}…</code></span>"#,
                e(&c.chars().take(16).collect::<String>())
            ),
            None => String::new(),
        };
        body.push_str(&format!(
            r#"<li><span class="muted">#{} · {}</span> <strong>{}</strong> by {}{mfa}</li>"#,
            t.index,
            time(t.time_ms),
            e(&t.kind),
            e(&actor_label(&t.actor, &r, &s.actor)),
        ));
    }
    body.push_str("</ol></section>");
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
) -> Result<String, Response> {
    let mut actions = String::new();
    let may_review = allowed.contains(&Action::Approve);
    let mine = s.actor.is(&r.requester);
    let csrf = e(&s.csrf);
    let rid = e(&r.id);
    if may_review && needs_key {
        let has_keys = match st
            .broker
            .store()
            .credentials(&s.actor.key.to_string())
            .await
        {
            Ok(k) => !k.is_empty(),
            Err(err) => return Err(api_error(err.into())),
        };
        let approve = if has_keys {
            r#"<button type="submit" name="decision" value="approve">Approve with security key</button>"#.to_string()
        } else {
            String::new()
        };
        let note = if has_keys {
            r#"<p class="muted" id="mfa-note">This entitlement requires step-up MFA: approving asks for your security key.</p>"#
        } else {
            r#"<p class="error" id="mfa-note">This entitlement requires step-up MFA. <a href="/ui/keys">Add a security key</a> to approve it (you can still deny).</p>"#
        };
        actions.push_str(&format!(
            r#"{note}<form method="post" action="/ui/requests/{rid}/approve" class="stack review" data-mfa-request="{rid}">
<input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="ceremony" value="">
<input type="hidden" name="assertion" value="">
<label for="comment">Comment (optional)</label>
<textarea id="comment" name="comment" rows="2"></textarea>
<div class="buttons">{approve}
<button type="submit" name="decision" value="deny" formaction="/ui/requests/{rid}/deny" class="danger">Deny</button></div>
<p id="webauthn-status" role="status" aria-live="polite"></p>
</form>
<script src="/ui/static/webauthn.js"></script>"#
        ));
    } else if may_review {
        actions.push_str(&format!(
            r#"<form method="post" action="/ui/requests/{rid}/approve" class="stack review">
<input type="hidden" name="csrf" value="{csrf}">
<label for="comment">Comment (optional)</label>
<textarea id="comment" name="comment" rows="2"></textarea>
<div class="buttons"><button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" formaction="/ui/requests/{rid}/deny" class="danger">Deny</button></div>
</form>"#
        ));
    } else if r.state == RState::Pending && mine {
        actions.push_str(
            r#"<p class="muted" id="own-request">You made this request: someone else has to review it.</p>"#,
        );
    }
    if allowed.contains(&Action::Cancel) {
        actions.push_str(&form_button(&rid, "cancel", "Cancel request", &csrf, ""));
    }
    if allowed.contains(&Action::Revoke) {
        actions.push_str(&form_button(&rid, "revoke", "Revoke now", &csrf, "danger"));
    }
    if allowed.contains(&Action::Extend) {
        actions.push_str(&format!(
            r#"<form method="post" action="/ui/requests/{rid}/extend" class="stack">
<input type="hidden" name="csrf" value="{csrf}">
<label for="ext-duration">Extend by (a new request that needs approval)</label>
<input id="ext-duration" name="duration" type="text" placeholder="default">
<label for="ext-reason">Reason (the original's when empty)</label>
<input id="ext-reason" name="reason" type="text">
<button type="submit">Ask for an extension</button>
</form>"#
        ));
    }
    if allowed.contains(&Action::ReviewBreakGlass) {
        actions.push_str(&form_button(
            &rid,
            "review-break-glass",
            "Mark break-glass use reviewed",
            &csrf,
            "",
        ));
    }
    Ok(if actions.is_empty() {
        String::new()
    } else {
        format!(r#"<section><h2>Actions</h2>{actions}</section>"#)
    })
}

/// The facts of a request (state, entitlement, requester, reason, ...).
fn facts_section(r: &Request, ent: Option<&twokey_core::Entitlement>, now: i64) -> maud::Markup {
    maud::html! {
        dl.facts {
            dt { "State" } dd { (maud::PreEscaped(state_badge(r.state))) }
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

fn form_button(rid: &str, action: &str, label: &str, csrf: &str, class: &str) -> String {
    format!(
        r#"<form method="post" action="/ui/requests/{rid}/{action}" class="inline"><input type="hidden" name="csrf" value="{csrf}"><button type="submit" class="{class}">{label}</button></form>"#
    )
}

/// Form of the request actions.
#[derive(Deserialize)]
pub struct ActForm {
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
pub async fn act(
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
pub async fn audit(State(st): State<AppState>, s: Session) -> Response {
    if let Err(err) = twokey_server::api::require_read_all(&st.broker, &s.actor, "The audit log") {
        return api_error(err);
    }
    let store = st.broker.store();
    let head = match store.ledger_head().await {
        Ok(h) => h,
        Err(err) => return api_error(err.into()),
    };
    // Recompute the tree from every entry and compare with the stored head.
    let mut frontier = twokey_ledger::Frontier::new();
    let mut from = 0u64;
    let mut latest = Vec::new();
    let mut problem = None;
    loop {
        let page = match store.ledger(from, 1000).await {
            Ok(p) => p,
            Err(err) => return api_error(err.into()),
        };
        if page.is_empty() {
            break;
        }
        for entry in &page {
            if entry.index != frontier.size() && problem.is_none() {
                problem = Some(format!(
                    "entry {} is out of order (expected {})",
                    entry.index,
                    frontier.size()
                ));
            }
            frontier.push(entry.leaf_hash());
        }
        from = frontier.size();
        latest.extend(page);
        if latest.len() > 200 {
            let cut = latest.len() - 200;
            latest.drain(..cut);
        }
    }
    let stored = hex::decode(&head.frontier)
        .ok()
        .and_then(|b| twokey_ledger::Frontier::from_bytes(&b).ok());
    let status = match (problem, stored) {
        (Some(p), _) => format!(r#"<p class="error" role="status">Verification FAILED: {}</p>"#, e(&p)),
        (None, Some(f)) if f.size() == frontier.size() && f.root() == frontier.root() => format!(
            r#"<p class="ok" role="status">Verified: {} entries; the recomputed Merkle root <code>{}</code> matches the stored head.</p>"#,
            frontier.size(),
            hex::encode(frontier.root())
        ),
        (None, None) if head.size == 0 && frontier.size() == 0 => {
            r#"<p class="ok" role="status">The ledger is empty.</p>"#.to_string()
        }
        // A store that keeps no frontier: check what it does keep.
        (None, None) if head.frontier.is_empty() && head.size == frontier.size() => format!(
            r#"<p class="ok" role="status">Consistent: {} contiguous entries, Merkle root <code>{}</code> (the store keeps no head root to compare with).</p>"#,
            frontier.size(),
            hex::encode(frontier.root())
        ),
        _ => r#"<p class="error" role="status">Verification FAILED: the entries do not match the stored Merkle head.</p>"#.to_string(),
    };
    let mut rows = String::new();
    for en in latest.iter().rev() {
        let subject = if en.subject.starts_with("req-") {
            format!(r#"<a href="/ui/requests/{0}">{0}</a>"#, e(&en.subject))
        } else {
            e(&en.subject)
        };
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            en.index,
            time(en.time_ms),
            e(&en.kind),
            e(&en.actor),
            subject
        ));
    }
    let body = format!(
        r#"{status}<p>Verify offline with a checkpoint held elsewhere: <code>twokey ledger verify</code>.</p>
<table><caption>Latest entries, newest first</caption><thead><tr><th scope="col">#</th><th scope="col">Time</th><th scope="col">Event</th><th scope="col">Actor</th><th scope="col">Subject</th></tr></thead><tbody>{rows}</tbody></table>"#
    );
    ok(&s, "Audit log", &body)
}

/// `GET /ui/posture`: the organisation's posture as the monitor last saw
/// it (`[posture]` in `twokey.toml`), failing first; for admins and
/// auditors, like the audit log. Changes are in the ledger (`posture.*`).
pub async fn posture(State(st): State<AppState>, s: Session) -> Response {
    if let Err(err) = twokey_server::api::require_read_all(&st.broker, &s.actor, "The posture") {
        return api_error(err);
    }
    let rows = match st.broker.store().posture().await {
        Ok(r) => r,
        Err(err) => return api_error(err.into()),
    };
    let github = match st.broker.store().github_posture_states().await {
        Ok(r) => r,
        Err(err) => return api_error(err.into()),
    };
    let restores = match st.broker.store().github_restores(100).await {
        Ok(r) => r,
        Err(err) => return api_error(err.into()),
    };
    if rows.is_empty() && github.is_empty() {
        return ok(
            &s,
            "Posture",
            "<p>No posture scan yet. Turn it on with <code>[posture] interval = \"1h\"</code> (AWS) or <code>[posture.github] interval</code> (GitHub) in <code>twokey.toml</code>.</p>",
        );
    }
    let mut body = if rows.is_empty() {
        String::from("<p>No AWS posture scan yet.</p>")
    } else {
        aws_posture(&rows)
    };
    body.push_str(&github_posture(&github));
    body.push_str(&github_restores(&restores).into_string());
    body.push_str("<p>Each change (newly failing, fixed, a GitHub restore proposed or applied) is a <code>posture.*</code> entry in the <a href=\"/ui/audit\">audit log</a>.</p>");
    ok(&s, "Posture", &body)
}

/// The AWS part of `/ui/posture`: counts, failing by severity, every row
/// failing first.
fn aws_posture(rows: &[twokey_store::PostureRow]) -> String {
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
    let mut by = String::new();
    for v in ["critical", "high", "medium", "low"] {
        let n = rows
            .iter()
            .filter(|r| r.severity == v && r.status == "FAIL")
            .count();
        by.push_str(&format!("<tr><td>{v}</td><td>{n}</td></tr>"));
    }
    let mut body = format!(
        r#"<p role="status">Last scan {}: <strong>{} failing</strong>, {} passing, {} not collected.</p>
<table><caption>Failing by severity</caption><thead><tr><th scope="col">Severity</th><th scope="col">Failing</th></tr></thead><tbody>{by}</tbody></table>
<table><caption>Every check on every resource, failing first</caption><thead><tr><th scope="col">Status</th><th scope="col">Severity</th><th scope="col">Check</th><th scope="col">Account</th><th scope="col">Region</th><th scope="col">Resource</th><th scope="col">Finding</th></tr></thead><tbody>"#,
        time(at),
        count("FAIL"),
        count("PASS"),
        count("ERROR"),
    );
    for r in sorted {
        body.push_str(&format!(
            r#"<tr class="posture-{st}"><td>{st}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>"#,
            e(&r.severity),
            e(&r.check),
            e(&r.account),
            e(if r.region.is_empty() { "global" } else { &r.region }),
            e(&r.resource),
            e(&r.message),
            st = e(&r.status),
        ));
    }
    body.push_str("</tbody></table>");
    body
}

/// The GitHub part of `/ui/posture`: the GitHub posture watcher's last
/// status of each check per repository (or organisation), failing first.
fn github_posture(states: &[twokey_store::GithubPostureState]) -> String {
    if states.is_empty() {
        return "<h2>GitHub</h2><p>No GitHub posture scan yet.</p>".into();
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
    let mut body = format!(
        r#"<h2>GitHub</h2><p role="status">Last check {}: <strong>{} failing</strong>, {} passing, {} excepted, {} not collected.</p>
<table><caption>Every GitHub check on every repository, failing first</caption><thead><tr><th scope="col">Status</th><th scope="col">Check</th><th scope="col">Repository</th><th scope="col">Checked</th></tr></thead><tbody>"#,
        time(at),
        count("fail"),
        count("pass"),
        count("excepted"),
        count("error"),
    );
    for r in sorted {
        body.push_str(&format!(
            r#"<tr class="posture-{st}"><td>{st}</td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>"#,
            e(&r.check),
            e(&r.resource),
            time(r.checked_at),
            st = e(&r.status),
        ));
    }
    body.push_str("</tbody></table>");
    body
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
pub async fn policy(State(st): State<AppState>, s: Session) -> Response {
    let lp = st.broker.policy();
    let p = &lp.policy;
    let mut rows = String::new();
    for ent in p.entitlements.values() {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} from {}{}{}</td><td>{}</td></tr>",
            e(&ent.name),
            e(&ent.provider),
            e(&ent.requester_groups.join(", ")),
            ent.approval.count,
            e(&ent.approval.from.join(", ")),
            if ent.approval.exclude_requester_groups {
                ", not the requester's team"
            } else {
                ""
            },
            if ent.approver_mfa {
                ", with security key"
            } else {
                ""
            },
            dur(ent.max_duration_ms),
        ));
    }
    let body = format!(
        r#"<p class="ok" role="status">Valid: this policy passed validation when it took effect (hash <code>{hash}</code>). Changes need a proposal and another admin's approval.</p>
<table><caption>Entitlements</caption><thead><tr><th scope="col">Name</th><th scope="col">Provider</th><th scope="col">Requester groups</th><th scope="col">Approval</th><th scope="col">Max duration</th></tr></thead><tbody>{rows}</tbody></table>
<h2>Policy text</h2><pre class="policy">{text}</pre>"#,
        hash = e(&p.hash),
        text = e(&p.redacted_text()),
    );
    ok(&s, "Policy", &body)
}

crate::csrf::csrf_field!(CreateForm, ActForm);
