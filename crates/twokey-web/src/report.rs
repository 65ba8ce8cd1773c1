//! `/ui/report`: the auditor's evidence report in the browser (admins and
//! auditors): a from/to form, the report's tables, and links to download it
//! as CSV, JSON or printable HTML. Built by `twokey_server::report`; the
//! markup is maud's (every value escaped).

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use twokey_server::report::{self, Period, ReportFormat};
use twokey_server::ApiError;

use crate::auth::Session;
use crate::html::{error_page, page, respond, Who};
use crate::pages::api_error;
use crate::AppState;

/// The form's (and the downloads') parameters.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Params {
    from: Option<String>,
    to: Option<String>,
    format: Option<String>,
}

/// Thirty days, the form's default period.
const DEFAULT_SPAN_MS: i64 = 30 * 86_400_000;

/// `GET /ui/report`.
pub(crate) async fn page_handler(
    State(st): State<AppState>,
    s: Session,
    Query(q): Query<Params>,
) -> Response {
    if let Err(err) = st.broker.require_read_all(&s.actor, "The evidence report") {
        return api_error(err);
    }
    let now = st.broker.now();
    let from = q
        .from
        .clone()
        .unwrap_or_else(|| report::rfc3339(now - DEFAULT_SPAN_MS));
    let to = q.to.clone().unwrap_or_else(|| report::rfc3339(now));
    let form = maud::html! {
        form method="get" action="/ui/report" class="noprint" {
            p {
                label for="from" { "From (RFC 3339)" } " "
                input id="from" name="from" value=(from) required;
                " "
                label for="to" { "To" } " "
                input id="to" name="to" value=(to) required;
                " "
                button type="submit" { "Show" }
            }
        }
    };
    let mut status = StatusCode::OK;
    let body = if q.from.is_none() && q.to.is_none() {
        maud::html! {
            (form)
            p { "Every request and grant of the period, the policy changes, posture, directory and custody entries, each with its ledger indexes and checkpoint." }
        }
    } else {
        match Period::parse(&from, &to) {
            Err(e) => {
                status = StatusCode::BAD_REQUEST;
                maud::html! { (form) p class="error" role="alert" { (e.to_string()) } }
            }
            Ok(p) => match report::load(st.broker.store(), p, None).await {
                Err(e) => return api_error(e),
                Ok(r) => {
                    // The report's own times are RFC 3339 in UTC: nothing in
                    // them needs URL encoding.
                    let link = |f: &str| {
                        format!("/ui/report/download?from={}&to={}&format={f}", r.from, r.to)
                    };
                    maud::html! {
                        (form)
                        p class="noprint" {
                            "Download: "
                            a href=(link("csv")) { "CSV" } " · "
                            a href=(link("json")) { "JSON" } " · "
                            a href=(link("html")) { "printable HTML" }
                        }
                        (report::html_body(&r))
                    }
                }
            },
        }
    };
    respond(
        status,
        page(
            "Evidence report",
            Some(Who {
                actor: &s.actor,
                csrf: &s.csrf,
            }),
            &body.into_string(),
        ),
    )
}

/// `GET /ui/report/download?from&to&format`: the report as a file.
pub(crate) async fn download(
    State(st): State<AppState>,
    s: Session,
    Query(q): Query<Params>,
) -> Response {
    if let Err(err) = st.broker.require_read_all(&s.actor, "The evidence report") {
        return api_error(err);
    }
    let (Some(from), Some(to)) = (q.from.as_deref(), q.to.as_deref()) else {
        return error_page(StatusCode::BAD_REQUEST, "from and to are required");
    };
    let period = match Period::parse(from, to) {
        Ok(p) => p,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let format = match ReportFormat::parse(q.format.as_deref()) {
        Ok(f) => f,
        Err(m) => return error_page(StatusCode::BAD_REQUEST, &m),
    };
    let r = match report::load(st.broker.store(), period, None).await {
        Ok(r) => r,
        Err(e) => return api_error(e),
    };
    match format.render(&r) {
        Ok((media, body)) => (
            [
                (header::CONTENT_TYPE, media.to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!(
                        "attachment; filename=\"twokey-access-report.{}\"",
                        format.extension()
                    ),
                ),
            ],
            body,
        )
            .into_response(),
        Err(e) => api_error(ApiError::Internal(format!("rendering the report: {e}"))),
    }
}
