//! The page frame and small formatting helpers. Markup is maud's: every
//! value that comes from a person, the policy or the provider is escaped by
//! the template, never by hand.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, PreEscaped, Render, DOCTYPE};
use twokey_core::Actor;

/// The signed-in person as the frame shows them.
pub(crate) struct Who<'a> {
    /// The actor.
    pub actor: &'a Actor,
    /// The session's CSRF token (for the logout form).
    pub csrf: &'a str,
}

/// A whole page: skip link, header with navigation, main content. `body`
/// is markup already rendered by maud (every value in it escaped).
pub(crate) fn page(title: &str, who: Option<Who<'_>>, body: &str) -> String {
    frame(title, who, None, PreEscaped(body))
}

/// [`page`], with a `<meta http-equiv="refresh">` to `refresh` when given.
pub(crate) fn frame(
    title: &str,
    who: Option<Who<'_>>,
    refresh: Option<&str>,
    body: impl Render,
) -> String {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                @if let Some(url) = refresh {
                    meta http-equiv="refresh" content={ "0;url=" (url) };
                }
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · twokey" }
                link rel="stylesheet" href="/ui/static/style.css";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    span.brand { "twokey" }
                    @if let Some(w) = &who {
                        nav aria-label="Main" {
                            ul {
                                li { a href="/ui/" { "Dashboard" } }
                                li { a href="/ui/request" { "New request" } }
                                li { a href="/ui/audit" { "Audit log" } }
                                li { a href="/ui/report" { "Evidence report" } }
                                li { a href="/ui/posture" { "Posture" } }
                                li { a href="/ui/policy" { "Policy" } }
                                li { a href="/ui/keys" { "Security keys" } }
                            }
                        }
                        div.who {
                            "Signed in as " strong { (w.actor.name) } " " span.muted { "(" (w.actor.key.to_string()) ")" }
                            form method="post" action="/ui/logout" class="inline" {
                                input type="hidden" name="csrf" value=(w.csrf);
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    page.into_string()
}

/// A page with a status code.
pub(crate) fn respond(status: StatusCode, html: String) -> Response {
    (status, Html(html)).into_response()
}

/// An error page.
pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = html! {
        p role="alert" class="error" { (message) }
        p { a href="/ui/" { "Back to the dashboard" } }
    };
    respond(status, frame(title, None, None, body))
}

/// A duration in ms as `1h 05m` / `4m 10s`.
pub(crate) fn dur(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {sec:02}s")
    } else {
        format!("{sec}s")
    }
}

/// Unix ms as an RFC 3339 UTC time (seconds precision).
pub(crate) fn time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_escapes_what_it_is_given() {
        let evil = r#"<a href="x" onclick='y'>&</a>"#;
        let text = frame(evil, None, Some(evil), html! { p { (evil) } });
        assert!(!text.contains(evil), "raw markup in {text}");
        assert!(
            text.contains("&lt;a href=&quot;x&quot; onclick='y'&gt;&amp;&lt;/a&gt;"),
            "{text}"
        );
        assert!(
            text.starts_with("<!DOCTYPE html><html lang=\"en\">"),
            "{text}"
        );
    }

    #[test]
    fn formats_times() {
        assert_eq!(time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(time(1_700_000_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(dur(3_900_000), "1h 05m");
        assert_eq!(dur(250_000), "4m 10s");
    }
}
