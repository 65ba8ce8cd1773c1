//! The formats of a scan's result: a terminal table, JSON, SARIF 2.1.0 and
//! OCSF 1.5 Compliance Finding (class 2003); HTML is in [`crate::html`].
//!
//! - SARIF: <https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html>;
//!   each check is a `reportingDescriptor` (rule), each finding a `result`
//!   whose `kind` is `pass`, `fail` or `open` (§3.27.9: "open" when the
//!   tool could not decide, our error), at a logical location (§3.33)
//!   naming the AWS resource.
//! - OCSF: <https://schema.ocsf.io/1.5.0/classes/compliance_finding>;
//!   `compliance.status_id` 1 Pass, 3 Fail, 0 Unknown (error).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

use crate::model::{Check, Finding, Severity, Status};
use crate::Registry;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for a terminal.
    Table,
    /// The checks and findings as JSON.
    Json,
    /// SARIF 2.1.0 (code-scanning tools).
    Sarif,
    /// OCSF 1.5.0 Compliance Finding events (a JSON array, like Prowler's `json-ocsf`).
    Ocsf,
    /// A self-contained HTML report for a person or an auditor.
    Html,
}

/// A finished evaluation: the checks that ran and what they found.
#[derive(Debug, Clone)]
pub struct Report<'a> {
    /// The checks that ran.
    pub registry: &'a Registry,
    /// Their findings.
    pub findings: Vec<Finding>,
    /// When the facts were collected (Unix ms).
    pub collected_at_ms: i64,
}

/// Counts per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Passing findings.
    pub pass: usize,
    /// Failing findings.
    pub fail: usize,
    /// Findings whose facts could not be collected.
    pub error: usize,
    /// Failing findings the policy excepts.
    #[serde(default)]
    pub excepted: usize,
}

impl Report<'_> {
    /// Counts per status.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for f in &self.findings {
            match f.status {
                Status::Pass => s.pass += 1,
                Status::Fail => s.fail += 1,
                Status::Error => s.error += 1,
                Status::Excepted => s.excepted += 1,
            }
        }
        s
    }

    fn check(&self, f: &Finding) -> Option<&Check> {
        self.registry.get(&f.check)
    }

    /// Failing findings whose check is at or above `level`.
    pub fn failing_at(&self, level: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.status == Status::Fail)
            .filter(|f| self.check(f).is_some_and(|c| c.severity >= level))
            .count()
    }

    /// Renders the report.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Table => self.table(),
            Format::Json => pretty(&self.json()),
            Format::Sarif => pretty(&self.sarif()),
            Format::Ocsf => pretty(&Value::Array(self.ocsf())),
            Format::Html => crate::html::render(self),
        }
    }

    /// Aligned columns: status, severity, check, account, region, resource,
    /// then the message; failures first, most severe first; a summary line.
    pub fn table(&self) -> String {
        let mut rows: Vec<(&Finding, Severity)> = self
            .findings
            .iter()
            .map(|f| (f, self.check(f).map_or(Severity::Low, |c| c.severity)))
            .collect();
        let rank = |s: Status| match s {
            Status::Fail => 0,
            Status::Error => 1,
            Status::Excepted => 2,
            Status::Pass => 3,
        };
        rows.sort_by(|(a, sa), (b, sb)| {
            (rank(a.status), std::cmp::Reverse(*sa), &a.check, &a.account).cmp(&(
                rank(b.status),
                std::cmp::Reverse(*sb),
                &b.check,
                &b.account,
            ))
        });
        let cells: Vec<[String; 7]> = rows
            .iter()
            .map(|(f, s)| {
                [
                    f.status.as_str().to_string(),
                    s.to_string(),
                    f.check.clone(),
                    f.account.clone(),
                    f.region.clone().unwrap_or_else(|| "-".into()),
                    f.resource.clone(),
                    f.message.clone(),
                ]
            })
            .collect();
        let head = [
            "STATUS", "SEVERITY", "CHECK", "ACCOUNT", "REGION", "RESOURCE", "MESSAGE",
        ];
        let mut width = head.map(str::len);
        for r in &cells {
            for (w, c) in width.iter_mut().zip(r.iter()).take(6) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |r: [&str; 7]| {
            let mut s = String::new();
            for (i, c) in r.iter().enumerate() {
                if i < 6 {
                    s.push_str(&format!("{c:<w$}  ", w = width[i]));
                } else {
                    s.push_str(c);
                }
            }
            s.trim_end().to_string()
        };
        let mut out = vec![line(head)];
        for r in &cells {
            out.push(line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5], &r[6]]));
        }
        let s = self.summary();
        out.push(String::new());
        out.push(format!(
            "{} findings from {} checks: {} pass, {} fail, {} error",
            self.findings.len(),
            self.registry.checks().len(),
            s.pass,
            s.fail,
            s.error
        ));
        out.join("\n") + "\n"
    }

    /// `{"collected_at", "summary", "checks", "findings"}`.
    pub fn json(&self) -> Value {
        json!({
            "collected_at": iso(self.collected_at_ms),
            "summary": self.summary(),
            "checks": self.registry.checks(),
            "findings": self.findings,
        })
    }

    /// One SARIF 2.1.0 log with one run.
    pub fn sarif(&self) -> Value {
        let checks = self.registry.checks();
        let index: BTreeMap<&str, usize> =
            checks.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
        let rules: Vec<Value> = checks
            .iter()
            .map(|c| {
                json!({
                    "id": c.id,
                    "name": c.id.replace('.', "_"),
                    "shortDescription": {"text": c.title},
                    "fullDescription": {"text": c.why},
                    "help": {
                        "text": format!("CLI:\n{}\n\nTerraform:\n{}", c.remediation.cli, c.remediation.terraform),
                        "markdown": format!("**CLI**\n```sh\n{}\n```\n**Terraform**\n```hcl\n{}\n```", c.remediation.cli, c.remediation.terraform),
                    },
                    "defaultConfiguration": {"level": sarif_level(c.severity)},
                    "properties": {
                        "security-severity": security_severity(c.severity),
                        "tags": ["security", "two-person-integrity"],
                        "prowler": c.prowler,
                    },
                })
            })
            .collect();
        let results: Vec<Value> = self
            .findings
            .iter()
            .map(|f| {
                let sev = self.check(f).map_or(Severity::Low, |c| c.severity);
                let (kind, level) = match f.status {
                    Status::Fail => ("fail", sarif_level(sev)),
                    Status::Pass => ("pass", "none"),
                    Status::Error => ("open", "none"),
                    // §3.35: a suppressed result keeps its kind and level.
                    Status::Excepted => ("fail", sarif_level(sev)),
                };
                let mut r = json!({
                    "ruleId": f.check,
                    "kind": kind,
                    "level": level,
                    "message": {"text": f.message},
                    "locations": [{"logicalLocations": [{
                        "fullyQualifiedName": f.resource,
                        "kind": "resource",
                    }]}],
                    "properties": {"account": f.account, "region": f.region, "evidence": f.evidence},
                });
                if let Some(i) = index.get(f.check.as_str()) {
                    r["ruleIndex"] = json!(i);
                }
                if f.status == Status::Excepted {
                    r["suppressions"] = json!([{"kind": "external", "status": "accepted", "justification": f.message}]);
                }
                r
            })
            .collect();
        json!({
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": [{
                "tool": {"driver": {
                    "name": "twokey posture",
                    "version": env!("CARGO_PKG_VERSION"),
                    "informationUri": "https://github.com/twokey/twokey",
                    "rules": rules,
                }},
                "results": results,
            }],
        })
    }

    /// One OCSF 1.5.0 Compliance Finding (class 2003) per finding.
    pub fn ocsf(&self) -> Vec<Value> {
        self.findings
            .iter()
            .map(|f| {
                let check = self.check(f);
                let sev = check.map_or(Severity::Low, |c| c.severity);
                let (status_id, status) = match f.status {
                    Status::Pass => (1, "Pass"),
                    Status::Fail => (3, "Fail"),
                    Status::Error => (0, "Unknown"),
                    Status::Excepted => (3, "Fail"),
                };
                // Finding status: 3 Suppressed for an excepted failure, else 1 New.
                let (finding_status_id, finding_status) = match f.status {
                    Status::Excepted => (3, "Suppressed"),
                    _ => (1, "New"),
                };
                let (severity_id, severity) = match sev {
                    Severity::Low => (2, "Low"),
                    Severity::Medium => (3, "Medium"),
                    Severity::High => (4, "High"),
                    Severity::Critical => (5, "Critical"),
                };
                json!({
                    "class_uid": 2003,
                    "class_name": "Compliance Finding",
                    "category_uid": 2,
                    "category_name": "Findings",
                    "activity_id": 1,
                    "activity_name": "Create",
                    "type_uid": 200301,
                    "type_name": "Compliance Finding: Create",
                    "time": self.collected_at_ms,
                    "time_dt": iso(self.collected_at_ms),
                    "severity_id": severity_id,
                    "severity": severity,
                    "status_id": finding_status_id,
                    "status": finding_status,
                    "message": f.message,
                    "metadata": {
                        "version": "1.5.0",
                        "event_code": f.check,
                        "product": {"name": "twokey", "vendor_name": "twokey", "version": env!("CARGO_PKG_VERSION")},
                        "profiles": ["cloud"],
                    },
                    "finding_info": {
                        "uid": format!("twokey-{}-{}-{}-{}", f.check, f.account, f.region.as_deref().unwrap_or("global"), f.resource),
                        "title": check.map_or("", |c| c.title),
                        "desc": check.map_or("", |c| c.why),
                        "types": ["two-person-integrity"],
                        "created_time": self.collected_at_ms,
                    },
                    "compliance": {
                        "status_id": status_id,
                        "status": status,
                        "status_detail": f.message,
                        "control": f.check,
                        "standards": ["twokey two-person baseline"],
                        "requirements": check.map(|c| c.prowler).unwrap_or_default(),
                    },
                    "remediation": {
                        "desc": check.map_or(String::new(), |c| format!("{}\n\n{}", c.remediation.cli, c.remediation.terraform)),
                    },
                    "cloud": {
                        "provider": "AWS",
                        "account": {"uid": f.account, "type_id": 10, "type": "AWS Account"},
                        "region": f.region,
                    },
                    "resources": [{
                        "uid": f.resource,
                        "region": f.region,
                        "cloud_partition": "aws",
                        "data": f.evidence,
                    }],
                })
            })
            .collect()
    }
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
    }
}

/// GitHub code scanning's `security-severity` (a CVSS-like score as text).
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
    }
}

pub(crate) fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::For;

    fn report(r: &Registry) -> Report<'_> {
        let at = For::new("root.hardware_mfa", "222233334444");
        let g = For::new("guardduty.enabled", "222233334444").region("eu-west-1");
        Report {
            registry: r,
            findings: vec![
                at.decide("arn:aws:iam::222233334444:root", false, "no MFA", json!({})),
                g.decide(
                    "arn:aws:guardduty:eu-west-1:222233334444:detector",
                    true,
                    "on",
                    json!({}),
                ),
                g.error("x", "GuardDuty", "AccessDenied"),
            ],
            collected_at_ms: 1_800_000_000_000,
        }
    }

    #[test]
    fn table_puts_failures_first_and_counts() {
        let r = Registry::builtin();
        let t = report(&r).table();
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("STATUS"), "{t}");
        assert!(
            lines[1].starts_with("FAIL") && lines[1].contains("critical"),
            "{t}"
        );
        assert!(
            lines[2].starts_with("ERROR") && lines[3].starts_with("PASS"),
            "{t}"
        );
        assert!(t.contains("1 pass, 1 fail, 1 error"), "{t}");
    }

    #[test]
    fn fail_on_counts_failures_at_or_above() {
        let r = Registry::builtin();
        let rep = report(&r);
        assert_eq!(rep.failing_at(Severity::Critical), 1);
        assert_eq!(rep.failing_at(Severity::Low), 1);
        let mut rep = rep;
        rep.findings.remove(0);
        assert_eq!(rep.failing_at(Severity::Low), 0);
    }

    #[test]
    fn sarif_has_rules_and_kinds() {
        let r = Registry::builtin();
        let s = report(&r).sarif();
        assert_eq!(s["version"], "2.1.0");
        let run = &s["runs"][0];
        assert_eq!(
            run["tool"]["driver"]["rules"].as_array().map(Vec::len),
            Some(r.checks().len())
        );
        let res = run["results"].as_array().expect("results");
        assert_eq!(
            (res[0]["kind"].as_str(), res[0]["level"].as_str()),
            (Some("fail"), Some("error"))
        );
        assert_eq!(res[1]["kind"], "pass");
        assert_eq!(res[2]["kind"], "open");
        let i = res[0]["ruleIndex"].as_u64().expect("index") as usize;
        assert_eq!(run["tool"]["driver"]["rules"][i]["id"], "root.hardware_mfa");
    }

    #[test]
    fn ocsf_is_a_compliance_finding() {
        let r = Registry::builtin();
        let o = report(&r).ocsf();
        assert_eq!(o[0]["class_uid"], 2003);
        assert_eq!(o[0]["type_uid"], 200301);
        assert_eq!(o[0]["metadata"]["version"], "1.5.0");
        assert_eq!(o[0]["compliance"]["status_id"], 3);
        assert_eq!(o[0]["severity_id"], 5);
        assert_eq!(o[1]["compliance"]["status"], "Pass");
        assert_eq!(o[2]["compliance"]["status_id"], 0);
        assert_eq!(o[0]["cloud"]["account"]["uid"], "222233334444");
    }
}
