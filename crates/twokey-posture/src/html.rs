//! The self-contained HTML report (`--format html`): one file a person can
//! read and hand to an auditor. A summary by severity, then per check why it
//! matters, each resource's status with its evidence, and the remediation
//! (CLI and Terraform). No script, no external asset (styles inline), so it
//! opens offline and archives as evidence.
//!
//! Built with `maud`: the markup is checked at compile time and every
//! interpolated value is HTML-escaped unless marked otherwise (nothing is),
//! so a resource name or an SCP document from AWS cannot inject markup.

use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::model::{Check, Finding, Severity, Status};
use crate::output::Report;

const STYLE: &str = r#"
:root{--fail:#b00020;--pass:#1b6e20;--error:#8a5a00;--ink:#1d1d1f;--mute:#5f6368;--line:#d9d9de}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);margin:0 auto;max-width:72rem;padding:1.5rem}
h1{font-size:1.6rem;margin:.2rem 0}h2{font-size:1.15rem;margin:0}
.meta{color:var(--mute)}
table{border-collapse:collapse;width:100%;margin:.6rem 0}
th,td{border-bottom:1px solid var(--line);padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f6;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;border-radius:.3rem;padding:0 .45rem;font-size:.8rem;font-weight:700;letter-spacing:.02em;text-transform:uppercase;color:#fff}
.s-FAIL{background:var(--fail)}.s-PASS{background:var(--pass)}.s-ERROR{background:var(--error)}
.v-critical{background:#6d0019}.v-high{background:#c2410c}.v-medium{background:#a16207}.v-low{background:#4b5563}
section.check{border:1px solid var(--line);border-radius:.5rem;padding:1rem;margin:1.2rem 0;break-inside:avoid-page}
section.check>header{display:flex;gap:.6rem;align-items:baseline;flex-wrap:wrap}
code,pre{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:#f6f8fa;border:1px solid var(--line);border-radius:.35rem;padding:.6rem;overflow-x:auto;white-space:pre-wrap;word-break:break-word}
details summary{cursor:pointer;color:var(--mute)}
.why{margin:.5rem 0}
.totals{display:flex;gap:1.5rem;flex-wrap:wrap;margin:.5rem 0 1rem}
.totals div{font-size:1.4rem;font-weight:700}.totals span{display:block;font-size:.8rem;font-weight:400;color:var(--mute)}
@media print{details{display:block}details>summary{display:none}section.check{border:0;border-top:2px solid var(--ink);border-radius:0}}
"#;

fn status_badge(s: Status) -> Markup {
    html! { span class={ "badge s-" (s.as_str()) } { (s.as_str()) } }
}

fn severity_badge(s: Severity) -> Markup {
    html! { span class={ "badge v-" (s.as_str()) } { (s.as_str()) } }
}

fn anchor(c: &Check) -> String {
    format!("check-{}", c.id.replace('.', "-"))
}

fn count(findings: &[&Finding], s: Status) -> usize {
    findings.iter().filter(|f| f.status == s).count()
}

/// Failures first, then errors, then passes; by account and resource.
fn ordered<'a>(report: &'a Report<'_>, check: &Check) -> Vec<&'a Finding> {
    let rank = |s: Status| match s {
        Status::Fail => 0,
        Status::Error => 1,
        Status::Excepted => 2,
        Status::Pass => 3,
    };
    let mut v: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.check == check.id)
        .collect();
    v.sort_by(|a, b| {
        (rank(a.status), &a.account, &a.region, &a.resource).cmp(&(
            rank(b.status),
            &b.account,
            &b.region,
            &b.resource,
        ))
    });
    v
}

fn summary(report: &Report<'_>) -> Markup {
    let s = report.summary();
    let accounts: std::collections::BTreeSet<&str> =
        report.findings.iter().map(|f| f.account.as_str()).collect();
    html! {
        div.totals {
            div { (report.findings.len()) span { "findings" } }
            div { (s.fail) span { "failing" } }
            div { (s.pass) span { "passing" } }
            div { (s.error) span { "not collected" } }
            div { (accounts.len()) span { "accounts" } }
        }
        table aria-label="Failing findings by severity" {
            thead { tr { th { "Severity" } th.num { "Checks failing" } th.num { "Failing findings" } th.num { "Passing" } th.num { "Errors" } } }
            tbody {
                @for sev in Severity::ALL.iter().rev() {
                    @let checks: Vec<&Check> = report.registry.checks().iter().filter(|c| c.severity == *sev).collect();
                    @let fs: Vec<&Finding> = report.findings.iter().filter(|f| checks.iter().any(|c| c.id == f.check)).collect();
                    tr {
                        td { (severity_badge(*sev)) }
                        td.num { (checks.iter().filter(|c| fs.iter().any(|f| f.check == c.id && f.status == Status::Fail)).count()) " of " (checks.len()) }
                        td.num { (count(&fs, Status::Fail)) }
                        td.num { (count(&fs, Status::Pass)) }
                        td.num { (count(&fs, Status::Error)) }
                    }
                }
            }
        }
    }
}

fn contents(report: &Report<'_>) -> Markup {
    html! {
        table aria-label="Checks" {
            thead { tr { th { "Check" } th { "Severity" } th.num { "Fail" } th.num { "Pass" } th.num { "Error" } } }
            tbody {
                @for c in sorted_checks(report) {
                    @let fs = ordered(report, c);
                    tr {
                        td { a href={ "#" (anchor(c)) } { (c.title) } br; code { (c.id) } }
                        td { (severity_badge(c.severity)) }
                        td.num { (count(&fs, Status::Fail)) }
                        td.num { (count(&fs, Status::Pass)) }
                        td.num { (count(&fs, Status::Error)) }
                    }
                }
            }
        }
    }
}

/// Checks with failures first, most severe first, then registration order.
fn sorted_checks<'a>(report: &'a Report<'_>) -> Vec<&'a Check> {
    let mut v: Vec<(usize, &Check)> = report.registry.checks().iter().enumerate().collect();
    let fails = |c: &Check| {
        report
            .findings
            .iter()
            .any(|f| f.check == c.id && f.status == Status::Fail)
    };
    v.sort_by_key(|(i, c)| (!fails(c), std::cmp::Reverse(c.severity), *i));
    v.into_iter().map(|(_, c)| c).collect()
}

fn evidence(f: &Finding) -> Markup {
    html! {
        @if !f.evidence.is_null() && f.evidence != serde_json::json!({}) {
            details {
                summary { "evidence" }
                pre { (serde_json::to_string_pretty(&f.evidence).unwrap_or_default()) }
            }
        }
    }
}

fn check_section(report: &Report<'_>, c: &Check) -> Markup {
    let fs = ordered(report, c);
    html! {
        section.check id=(anchor(c)) {
            header {
                (severity_badge(c.severity))
                h2 { (c.title) }
            }
            p.meta {
                code { (c.id) }
                @if !c.prowler.is_empty() {
                    " · Prowler: "
                    @for (i, p) in c.prowler.iter().enumerate() {
                        @if i > 0 { ", " }
                        code { (p) }
                    }
                }
            }
            p.why { strong { "Why it matters: " } (c.why) }
            @if fs.is_empty() {
                p.meta { "No resource in scope for this check." }
            } @else {
                table {
                    thead { tr { th { "Status" } th { "Account" } th { "Region" } th { "Resource" } th { "Finding" } } }
                    tbody {
                        @for f in &fs {
                            tr {
                                td { (status_badge(f.status)) }
                                td { code { (f.account) } }
                                td { (f.region.as_deref().unwrap_or("global")) }
                                td { code { (f.resource) } }
                                td { (f.message) (evidence(f)) }
                            }
                        }
                    }
                }
            }
            @if count(&fs, Status::Fail) > 0 || fs.is_empty() {
                h3 { "Remediation" }
            } @else {
                h3 { "Remediation (if it fails)" }
            }
            p { "AWS CLI:" }
            pre { code { (c.remediation.cli) } }
            p { "Terraform:" }
            pre { code { (c.remediation.terraform) } }
        }
    }
}

/// The whole report as one HTML document.
pub fn render(report: &Report<'_>) -> String {
    let at = crate::output::iso(report.collected_at_ms);
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "twokey posture report, " (at) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    p.meta { "twokey posture · the two-person baseline" }
                    h1 { "Posture report" }
                    p.meta { "Facts collected " time datetime=(at) { (at) } " by twokey " (env!("CARGO_PKG_VERSION")) ". "
                        (report.registry.checks().len()) " checks." }
                }
                main {
                    h2 { "Summary" }
                    (summary(report))
                    h2 { "Checks" }
                    (contents(report))
                    @for c in sorted_checks(report) {
                        (check_section(report, c))
                    }
                }
            }
        }
    };
    page.into_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::For;
    use crate::Registry;
    use serde_json::json;

    #[test]
    fn values_from_aws_are_escaped_and_nothing_is_external() {
        let r = Registry::builtin();
        let at = For::new("root.hardware_mfa", "222233334444");
        let rep = Report {
            registry: &r,
            findings: vec![at.decide(
                "<script>alert(1)</script>",
                false,
                "root has \"no\" MFA & <b>keys</b>",
                json!({"doc": "</pre><img src=x onerror=alert(1)>"}),
            )],
            collected_at_ms: 1_800_000_000_000,
        };
        let h = render(&rep);
        assert!(!h.contains("<script>alert"), "resource not escaped");
        assert!(h.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(h.contains("&lt;b&gt;keys&lt;/b&gt;"));
        assert!(!h.contains("<img src=x"), "evidence not escaped");
        assert!(!h.contains("<script") && !h.contains("<link") && !h.contains("src=\"http"));
        // The failing check is listed first, with its remediation.
        let first = h.find("check-root-hardware_mfa").expect("section");
        assert!(first < h.find("check-cloudtrail-trail").expect("other"));
        assert!(h.contains("aws iam") || h.contains("Terraform:"));
    }

    #[test]
    fn summary_counts_by_severity() {
        let r = Registry::builtin();
        let rep = Report {
            registry: &r,
            findings: vec![
                For::new("root.hardware_mfa", "1").decide("a", false, "x", json!(null)),
                For::new("root.hardware_mfa", "2").decide("b", true, "y", json!(null)),
            ],
            collected_at_ms: 0,
        };
        let h = render(&rep);
        let crit = h
            .find("<span class=\"badge v-critical\"")
            .expect("critical row");
        let row = &h[crit..crit + 400];
        assert!(row.contains(">1 of "), "{row}");
    }
}
