//! Tiny HTML helpers: escaping and the page frame. Every value that comes
//! from a person, the policy or the provider goes through [`e`].

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use twokey_core::Actor;

/// Escapes text for HTML element content and double-quoted attributes.
pub fn e(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The signed-in person as the frame shows them.
pub struct Who<'a> {
    /// The actor.
    pub actor: &'a Actor,
    /// The session's CSRF token (for the logout form).
    pub csrf: &'a str,
}

/// A whole page: skip link, header with navigation, main content.
pub fn page(title: &str, who: Option<Who<'_>>, body: &str) -> String {
    let nav = match &who {
        Some(w) => format!(
            r#"<nav aria-label="Main"><ul>
<li><a href="/ui/">Dashboard</a></li>
<li><a href="/ui/request">New request</a></li>
<li><a href="/ui/audit">Audit log</a></li>
<li><a href="/ui/report">Evidence report</a></li>
<li><a href="/ui/posture">Posture</a></li>
<li><a href="/ui/policy">Policy</a></li>
<li><a href="/ui/keys">Security keys</a></li>
</ul></nav>
<div class="who">Signed in as <strong>{name}</strong> <span class="muted">({key})</span>
<form method="post" action="/ui/logout" class="inline"><input type="hidden" name="csrf" value="{csrf}"><button type="submit">Sign out</button></form></div>"#,
            name = e(&w.actor.name),
            key = e(&w.actor.key.to_string()),
            csrf = e(w.csrf),
        ),
        None => String::new(),
    };
    format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · twokey</title>
<link rel="stylesheet" href="/ui/static/style.css">
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header><span class="brand">twokey</span>
{nav}
</header>
<main id="main" tabindex="-1">
<h1>{title}</h1>
{body}
</main>
</body>
</html>
"##,
        title = e(title),
    )
}

/// A page with a status code.
pub fn respond(status: StatusCode, html: String) -> Response {
    (status, Html(html)).into_response()
}

/// An error page.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    respond(
        status,
        page(
            title,
            None,
            &format!(
                r#"<p role="alert" class="error">{}</p><p><a href="/ui/">Back to the dashboard</a></p>"#,
                e(message)
            ),
        ),
    )
}

/// A duration in ms as `1h 05m` / `4m 10s`.
pub fn dur(ms: i64) -> String {
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
pub fn time(ms: i64) -> String {
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
    fn escapes_markup_and_quotes() {
        assert_eq!(
            e(r#"<a href="x" onclick='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
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
