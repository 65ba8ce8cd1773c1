//! Command-line interface.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use reqwest::Method;
use serde_json::{json, Value};

use crate::client::Client;

/// twokey: no single person can perform a high-risk operation alone.
#[derive(Parser, Debug)]
#[command(name = "twokey", version, about)]
pub(crate) struct Cli {
    /// Server URL.
    #[arg(
        long,
        global = true,
        env = "TWOKEY_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    server: String,
    /// API token.
    #[arg(long, global = true, env = "TWOKEY_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the server (`--dev` for a complete local instance).
    Serve(crate::serve::ServeArgs),
    /// Request an entitlement.
    Request {
        /// Entitlement name.
        entitlement: String,
        /// Duration, counted from activation (e.g. 30m, 1h).
        #[arg(long = "for")]
        duration: Option<String>,
        /// Why you need it.
        #[arg(long, default_value = "")]
        reason: String,
        /// Ticket id.
        #[arg(long)]
        ticket: Option<String>,
        /// Activate at once without approval (alerts, needs review afterwards).
        #[arg(long)]
        break_glass: bool,
    },
    /// Approve a request.
    Approve {
        id: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Deny a request.
    Deny {
        id: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Cancel your pending request.
    Cancel { id: String },
    /// Revoke an active grant.
    Revoke { id: String },
    /// Ask to extend an active grant (a new request that needs approval).
    Extend {
        id: String,
        #[arg(long = "for")]
        duration: Option<String>,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Review a break-glass use after the fact.
    ReviewBreakGlass {
        id: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// List requests.
    Ls {
        /// mine, waiting (for me to review), active, all.
        #[arg(long, default_value = "mine")]
        scope: String,
    },
    /// Show one request with its timeline.
    Show {
        id: String,
        /// What the grant did: the CloudTrail, PostgreSQL and flow log
        /// records the guard attributed to it, and its ledger digest.
        #[arg(long)]
        activity: bool,
    },
    /// Show the one-time secret of your grant (a generated password).
    Secret { id: String },
    /// Who the token belongs to.
    Whoami,
    /// Get a short-lived API token through the browser (single sign-on) and
    /// store it for the other commands (used when TWOKEY_TOKEN is unset).
    Login {
        /// Only print the URL to open; do not start a browser.
        #[arg(long)]
        no_browser: bool,
        /// How long to wait for the browser, in seconds.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// Policy as code.
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// API tokens (talks to the database directly).
    #[command(subcommand)]
    Token(TokenCmd),
    /// The tamper-evident ledger: public key, verify, prove, show.
    #[command(subcommand)]
    Audit(crate::audit::AuditCmd),
    /// The auditor's evidence report of a period (JSON, CSV, printable HTML).
    #[command(subcommand)]
    Report(crate::report::ReportCmd),
    /// Sigma rules over CloudTrail: high-risk activity and calls outside two-person control.
    #[command(subcommand)]
    Guard(GuardCmd),
    /// Root secrets under split custody: seal, request, release, open.
    #[command(subcommand)]
    Custody(crate::custody::CustodyCmd),
    /// Whether the guard rails around two-person control stand (AWS).
    #[command(subcommand)]
    Posture(crate::posture::PostureCmd),
    /// Service control policies: the guard rails that keep monitoring on.
    #[command(subcommand)]
    Scp(crate::posture::ScpCmd),
    /// Can PRINCIPAL do ACTION on RESOURCE? (IAM evaluation over authorization details)
    Can(crate::can::CanArgs),
    /// Who can do ACTION [on RESOURCE] without a twokey grant? (the paths)
    WhoCan(crate::who_can::WhoCanArgs),
}

#[derive(Subcommand, Debug)]
enum GuardCmd {
    /// Scan CloudTrail files, directories or stdin (`-`) once.
    Scan(twokey_guard::ScanArgs),
    /// Run continuously on a stream and report findings as they come.
    Watch(twokey_guard::WatchArgs),
    /// What each grant did: CloudTrail, PostgreSQL and flow log records attributed to grants.
    Activity(twokey_guard::activity::ActivityArgs),
}

#[derive(Subcommand, Debug)]
enum PolicyCmd {
    /// Validate a policy file.
    Check { file: PathBuf },
    /// Show the policy in force.
    Show,
    /// Propose a new policy (takes effect when another admin approves).
    Propose { file: PathBuf },
    /// List proposals.
    Proposals,
    /// Approve a proposal.
    Approve { id: String },
    /// Reject a proposal.
    Reject { id: String },
}

#[derive(Subcommand, Debug)]
enum TokenCmd {
    /// Issue a token for an identity of the policy.
    Issue {
        /// Server config file (for the database URL and policy).
        #[arg(long)]
        config: PathBuf,
        /// Identity name from the policy.
        #[arg(long)]
        identity: String,
        /// Lifetime (e.g. 12h); no expiry when absent.
        #[arg(long)]
        ttl: Option<String>,
    },
}

pub(crate) async fn run(cli: Cli) -> anyhow::Result<i32> {
    let token = cli
        .token
        .clone()
        .filter(|t| !t.is_empty())
        .or_else(|| crate::login::stored_token(&cli.server));
    let client = Client::new(&cli.server, token);
    let json_out = cli.json;
    let out = Out { json: json_out };
    match cli.cmd {
        Cmd::Serve(args) => return crate::serve::run(args).await,
        Cmd::Login {
            no_browser,
            timeout,
        } => {
            return crate::login::run(
                &cli.server,
                no_browser,
                std::time::Duration::from_secs(timeout),
            )
            .await
        }
        Cmd::Audit(cmd) => return crate::audit::run(cmd, &cli.server, cli.token.as_deref()).await,
        Cmd::Guard(GuardCmd::Scan(args)) => {
            return twokey_guard::run_scan(&args, &mut std::io::stdout().lock())
        }
        Cmd::Guard(GuardCmd::Watch(args)) => {
            return twokey_guard::run_watch(&args, &mut std::io::stdout().lock())
        }
        Cmd::Guard(GuardCmd::Activity(args)) => {
            return twokey_guard::activity::run_activity(
                &args,
                &mut std::io::stdout().lock(),
                &mut std::io::stderr().lock(),
            )
        }
        Cmd::Posture(cmd) => return crate::posture::run(cmd).await,
        Cmd::Report(cmd) => return crate::report::run(cmd, &client).await,
        Cmd::Scp(cmd) => return crate::posture::run_scp(cmd),
        Cmd::Can(args) => return crate::can::run(&args, json_out),
        Cmd::WhoCan(args) => return crate::who_can::run(&args, json_out).await,
        Cmd::Policy(PolicyCmd::Check { file }) => return policy_check(&file, json_out),
        Cmd::Custody(cmd) => return crate::custody::run(cmd, &client, json_out).await,
        Cmd::Token(TokenCmd::Issue {
            config,
            identity,
            ttl,
        }) => return crate::serve::issue_token(&config, &identity, ttl.as_deref()).await,
        Cmd::Policy(cmd) => policy_cmd(cmd, &client, &out).await?,
        cmd => request_cmd(cmd, &client, &out).await?,
    }
    Ok(0)
}

/// Prints an API answer: as JSON with `--json`, else as `human` says.
struct Out {
    json: bool,
}

impl Out {
    fn print(&self, v: &Value, human: &dyn Fn(&Value) -> String) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
        } else {
            println!("{}", human(v));
        }
    }
}

/// The commands about requests and grants: one API call (or two) each.
async fn request_cmd(cmd: Cmd, client: &Client, out: &Out) -> anyhow::Result<()> {
    let json_out = out.json;
    let out = |v: &Value, human: &dyn Fn(&Value) -> String| out.print(v, human);
    match cmd {
        Cmd::Request {
            entitlement,
            duration,
            reason,
            ticket,
            break_glass,
        } => {
            let v = client
                .call(Method::POST, "/v1/requests", Some(json!({"entitlement": entitlement, "duration": duration, "reason": reason, "ticket": ticket, "break_glass": break_glass})))
                .await?;
            let key = crate::custody::after_request(client, &v).await?;
            out(&v, &|v| {
                let mut s = format!("{}\n{}", summary(v), next_step(v));
                if let Some(p) = &key {
                    s.push_str(&format!("\ncustody one-time key kept at {}", p.display()));
                }
                s
            });
        }
        Cmd::Approve { id, comment } => {
            let v = client
                .call(
                    Method::POST,
                    &format!("/v1/requests/{id}/approve"),
                    Some(json!({"comment": comment})),
                )
                .await?;
            out(&v, &summary);
        }
        Cmd::Deny { id, comment } => {
            let v = client
                .call(
                    Method::POST,
                    &format!("/v1/requests/{id}/deny"),
                    Some(json!({"comment": comment})),
                )
                .await?;
            out(&v, &summary);
        }
        Cmd::Cancel { id } => {
            let v = client
                .call(Method::POST, &format!("/v1/requests/{id}/cancel"), None)
                .await?;
            out(&v, &summary);
        }
        Cmd::Revoke { id } => {
            let v = client
                .call(Method::POST, &format!("/v1/requests/{id}/revoke"), None)
                .await?;
            out(&v, &summary);
        }
        Cmd::Extend {
            id,
            duration,
            reason,
        } => {
            let v = client
                .call(
                    Method::POST,
                    &format!("/v1/requests/{id}/extend"),
                    Some(json!({"duration": duration, "reason": reason})),
                )
                .await?;
            out(&v, &|v| format!("{}\n{}", summary(v), next_step(v)));
        }
        Cmd::ReviewBreakGlass { id, comment } => {
            let v = client
                .call(
                    Method::POST,
                    &format!("/v1/requests/{id}/review-break-glass"),
                    Some(json!({"comment": comment})),
                )
                .await?;
            out(&v, &summary);
        }
        Cmd::Ls { scope } => {
            let v = client
                .call(Method::GET, &format!("/v1/requests?scope={scope}"), None)
                .await?;
            out(&v, &|v| {
                let rows: Vec<String> = v
                    .as_array()
                    .map(|a| a.iter().map(summary).collect())
                    .unwrap_or_default();
                if rows.is_empty() {
                    "no requests".into()
                } else {
                    rows.join("\n")
                }
            });
        }
        Cmd::Show { id, activity } => {
            let v = client
                .call(Method::GET, &format!("/v1/requests/{id}"), None)
                .await?;
            if activity {
                let a = client
                    .call(Method::GET, &format!("/v1/requests/{id}/activity"), None)
                    .await?;
                if json_out {
                    println!("{}", serde_json::to_string_pretty(&a)?);
                } else {
                    println!("{}\n{}", show(&v), show_activity(&a));
                }
            } else {
                out(&v, &show);
            }
        }
        Cmd::Secret { id } => {
            let v = client
                .call(Method::POST, &format!("/v1/requests/{id}/secret"), None)
                .await?;
            out(&v, &|v| {
                v["secret"].as_str().unwrap_or_default().to_string()
            });
        }
        Cmd::Whoami => {
            let v = client.call(Method::GET, "/v1/whoami", None).await?;
            out(&v, &|v| {
                format!(
                    "{} ({}|{}) groups: {}",
                    v["name"].as_str().unwrap_or("?"),
                    v["key"]["issuer"].as_str().unwrap_or("?"),
                    v["key"]["subject"].as_str().unwrap_or("?"),
                    v["groups"]
                        .as_array()
                        .map(|g| g
                            .iter()
                            .filter_map(|x| x.as_str())
                            .collect::<Vec<_>>()
                            .join(", "))
                        .unwrap_or_default()
                )
            });
        }
        other => anyhow::bail!("not a request command: {other:?}"),
    }
    Ok(())
}

/// `twokey policy show|propose|proposals|approve|reject` (`check` is local).
async fn policy_cmd(cmd: PolicyCmd, client: &Client, out: &Out) -> anyhow::Result<()> {
    let out = |v: &Value, human: &dyn Fn(&Value) -> String| out.print(v, human);
    match cmd {
        PolicyCmd::Show => {
            let v = client.call(Method::GET, "/v1/policy", None).await?;
            out(&v, &|v| {
                format!(
                    "# policy {}\n{}",
                    v["hash"].as_str().unwrap_or("?"),
                    v["text"].as_str().unwrap_or("")
                )
            });
        }
        PolicyCmd::Propose { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            for w in twokey_core::secret::inline_credentials(&text, &file.display().to_string()) {
                eprintln!("{w}");
            }
            let v = client
                .call(
                    Method::POST,
                    "/v1/policy/proposals",
                    Some(json!({"text": text})),
                )
                .await?;
            out(&v, &|v| {
                format!(
                    "proposal {} pending: another admin must run `twokey policy approve {}`",
                    v["id"].as_str().unwrap_or("?"),
                    v["id"].as_str().unwrap_or("?")
                )
            });
        }
        PolicyCmd::Proposals => {
            let v = client
                .call(Method::GET, "/v1/policy/proposals", None)
                .await?;
            out(&v, &|v| {
                v.as_array()
                    .map(|a| {
                        a.iter()
                            .map(|p| {
                                format!(
                                    "{}  {}  by {}  hash {}",
                                    p["id"].as_str().unwrap_or("?"),
                                    p["state"].as_str().unwrap_or("?"),
                                    p["proposed_by"]["subject"].as_str().unwrap_or("?"),
                                    p["hash"].as_str().and_then(|h| h.get(..12)).unwrap_or("?")
                                )
                            })
                            .collect::<Vec<_>>()
                            .join("\n")
                    })
                    .unwrap_or_default()
            });
        }
        PolicyCmd::Approve { id } => {
            let v = client
                .call(
                    Method::POST,
                    &format!("/v1/policy/proposals/{id}/approve"),
                    None,
                )
                .await?;
            out(&v, &|v| {
                format!(
                    "proposal {} is {}",
                    v["id"].as_str().unwrap_or("?"),
                    v["state"].as_str().unwrap_or("?")
                )
            });
        }
        PolicyCmd::Reject { id } => {
            let v = client
                .call(
                    Method::POST,
                    &format!("/v1/policy/proposals/{id}/reject"),
                    None,
                )
                .await?;
            out(&v, &|v| {
                format!(
                    "proposal {} is {}",
                    v["id"].as_str().unwrap_or("?"),
                    v["state"].as_str().unwrap_or("?")
                )
            });
        }
        PolicyCmd::Check { .. } => anyhow::bail!("`policy check` runs locally"),
    }
    Ok(())
}

fn policy_check(file: &PathBuf, json_out: bool) -> anyhow::Result<i32> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let name = file.display().to_string();
    let result = twokey_core::Policy::parse(&text, &name)
        .map_err(|e| e.issues)
        .and_then(|p| {
            // Provider settings are checked by building each provider (no connection is made).
            let reg = crate::serve::registry();
            twokey_server::broker::load_policy(p.clone(), &reg, &Default::default(), &name)
                .map(|_| p)
                .map_err(|e| {
                    e.lines()
                        .map(|l| twokey_core::PolicyIssue {
                            file: name.clone(),
                            line: 0,
                            message: l.to_string(),
                        })
                        .collect()
                })
        });
    // Inline credentials are valid but travel with the policy: warn, with
    // file and line, whatever else is wrong.
    let warnings = twokey_core::secret::inline_credentials(&text, &name);
    if !json_out {
        for w in &warnings {
            eprintln!("{w}");
        }
    }
    match result {
        Ok(p) => {
            if json_out {
                println!(
                    "{}",
                    json!({"ok": true, "hash": p.hash, "entitlements": p.entitlements.keys().collect::<Vec<_>>(), "warnings": warnings})
                );
            } else {
                println!(
                    "{name}: ok ({} entitlement(s), policy hash {})",
                    p.entitlements.len(),
                    &p.hash[..12]
                );
            }
            Ok(0)
        }
        Err(issues) => {
            if json_out {
                println!(
                    "{}",
                    json!({"ok": false, "issues": issues, "warnings": warnings})
                );
            } else {
                for i in &issues {
                    eprintln!("{i}");
                }
                eprintln!("{name}: {} problem(s)", issues.len());
            }
            Ok(1)
        }
    }
}

fn fmt_ms(ms: i64) -> String {
    twokey_core::time::format_duration(ms)
}

fn summary(v: &Value) -> String {
    let state = v["state"].as_str().unwrap_or("?");
    let mut s = format!(
        "{}  {:<9} {}  by {}",
        v["id"].as_str().unwrap_or("?"),
        state,
        v["entitlement"].as_str().unwrap_or("?"),
        v["requester_name"].as_str().unwrap_or("?"),
    );
    match state {
        "pending" => s.push_str(&format!(
            "  approvals {}/{}",
            v["approvals"], v["approvals_required"]
        )),
        "active" => s.push_str(&format!(
            "  {} left",
            fmt_ms(v["time_left_ms"].as_i64().unwrap_or(0))
        )),
        _ => {}
    }
    if v["break_glass"].as_bool() == Some(true) {
        s.push_str("  BREAK-GLASS");
        if v["needs_review"].as_bool() == Some(true) {
            s.push_str(" (needs review)");
        }
    }
    if let Some(e) = v["last_error"].as_str() {
        s.push_str(&format!("\n    retrying: {e}"));
    }
    s
}

fn next_step(v: &Value) -> String {
    match v["state"].as_str() {
        Some("pending") => format!(
            "waiting for approval: an approver runs `twokey approve {}`",
            v["id"].as_str().unwrap_or("?")
        ),
        Some("approved") => "approved: activating".into(),
        _ => String::new(),
    }
}

/// The activity table of `twokey show ID --activity`.
fn show_activity(a: &Value) -> String {
    let events = a["events"].as_i64().unwrap_or(0);
    let records = a["records"].as_array().map_or(&[][..], Vec::as_slice);
    let mut s = format!("  activity: {events} records");
    if let Some(o) = a["overflow"].as_i64().filter(|o| *o > 0) {
        s.push_str(&format!(" ({o} beyond the per-grant bound, counted only)"));
    }
    match a["digest_index"].as_u64() {
        Some(i) => s.push_str(&format!(
            "; digest #{i} (revision {}) in the ledger",
            a["revision"]
        )),
        None => s.push_str("; digest written once the grant has ended and settled"),
    }
    if (records.len() as i64) < events {
        s.push_str(&format!("; showing the first {}", records.len()));
    }
    for r in records {
        let outcome = r["outcome"].as_str().unwrap_or_default();
        s.push_str(&format!(
            "\n    {}  {:<10} {:<48} {}  from {}{}",
            twokey_core::time::format_time(r["event_time"].as_i64().unwrap_or(0)),
            r["source"].as_str().unwrap_or("?"),
            r["action"].as_str().unwrap_or("?"),
            r["principal"].as_str().unwrap_or(""),
            r["source_ip"].as_str().unwrap_or(""),
            if outcome.is_empty() {
                String::new()
            } else {
                format!("  FAILED {outcome}")
            }
        ));
    }
    s
}

fn show(v: &Value) -> String {
    let mut s = summary(v);
    s.push_str(&format!(
        "\n  reason: {}\n  duration: {}\n  policy: {}",
        v["reason"].as_str().unwrap_or(""),
        fmt_ms(v["duration_ms"].as_i64().unwrap_or(0)),
        v["policy_hash"]
            .as_str()
            .map(|h| &h[..12.min(h.len())])
            .unwrap_or("?")
    ));
    if let Some(t) = v["ticket"].as_str() {
        s.push_str(&format!("\n  ticket: {t}"));
    }
    if let Some(e) = v["extends"].as_str() {
        s.push_str(&format!("\n  extends: {e}"));
    }
    let actions: Vec<&str> = v["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    s.push_str(&format!(
        "\n  you may: {}",
        if actions.is_empty() {
            "nothing now".to_string()
        } else {
            actions.join(", ")
        }
    ));
    s.push_str("\n  timeline:");
    for e in v["timeline"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "\n    #{:<5} {:<24} {}",
            e["index"],
            e["kind"].as_str().unwrap_or("?"),
            e["actor"].as_str().unwrap_or("?")
        ));
    }
    s
}
