//! `twokey guard activity`: what each grant did. Reads CloudTrail records,
//! PostgreSQL server logs and VPC flow logs, attributes each record to the
//! grant it falls under, and prints the records (NDJSON) or files them with
//! the server (`--submit`, `POST /v1/activity`), which keeps a bounded index
//! per grant and writes a digest to the ledger when the grant has ended.
//!
//! Attribution, by source:
//!
//! - **CloudTrail**: [`correlate`] (source identity, role session name, the
//!   target's `principals`, root task sessions): a record it finds covered
//!   by a grant is that grant's activity.
//! - **PostgreSQL** (`postgres` grants; `log_destination = 'csvlog'` or
//!   `'jsonlog'`, `log_timezone = 'UTC'`, with `log_connections` and
//!   `log_statement` as much as you want to see): in login mode the line's
//!   user is the grant's own role (`tk_` + the request id, as the provider
//!   names it); in membership mode it is the requester's database user of
//!   `target.users`, during the grant.
//! - **VPC flow logs** (`aws_security_group` grants; the default version 2
//!   format): an accepted flow from the requester's `target.addresses`
//!   CIDR to `target.port` that starts during the grant. Flow logs carry no
//!   security group, so give the flow logs of the interfaces behind the
//!   group.
//!
//! The grants are read with `GET /v1/requests?scope=all` (an admin's or
//! auditor's token; `--submit` needs an admin's) or from `--grants FILE`.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::grants::{correlate, Coverage, Grant, GrantIndex, GrantSource};
use crate::input;

/// `twokey guard activity` options.
#[derive(Debug, Clone, clap::Args)]
pub struct ActivityArgs {
    /// twokey server whose grants (and, with --submit, activity index) are used.
    #[arg(long, env = "TWOKEY_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// API token (an admin's for --submit, an admin's or auditor's otherwise).
    #[arg(long, env = "TWOKEY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Offline grants: {"requests": [GET /v1/requests?scope=all], "policy": GET /v1/policy}.
    #[arg(long, value_name = "FILE")]
    pub grants: Option<PathBuf>,
    /// PostgreSQL server log files (csvlog `.csv`, jsonlog `.json`); repeat.
    #[arg(long = "postgres-log", value_name = "FILE")]
    pub postgres_logs: Vec<PathBuf>,
    /// VPC flow log files (default version 2 format, text or `.gz`); repeat.
    #[arg(long = "flow-log", value_name = "FILE")]
    pub flow_logs: Vec<PathBuf>,
    /// File the records with the server instead of printing them.
    #[arg(long)]
    pub submit: bool,
    /// CloudTrail log files (.json, .json.gz), NDJSON files, directories or `-`.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// One attributed record, as `POST /v1/activity` takes it (the server's
/// `twokey_core::activity::ActivityRecord`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The grant.
    pub request_id: String,
    /// Unique per source.
    pub event_id: String,
    /// `cloudtrail`, `postgres` or `flow_log`.
    pub source: String,
    /// Unix ms.
    pub event_time: i64,
    /// What was done.
    pub action: String,
    /// Who, as the source names the caller.
    pub principal: String,
    /// From where.
    pub source_ip: String,
    /// Region, database or interface.
    pub location: String,
    /// Empty on success, else the error.
    pub outcome: String,
    /// A short excerpt.
    pub detail: String,
}

fn s(v: &Value, path: &[&str]) -> String {
    let mut cur = v;
    for k in path {
        match cur.get(k) {
            Some(n) => cur = n,
            None => return String::new(),
        }
    }
    cur.as_str().unwrap_or_default().to_string()
}

fn excerpt(v: &Value, max: usize) -> String {
    cut(serde_json::to_string(v).unwrap_or_default(), max)
}

fn cut(mut out: String, max: usize) -> String {
    if out.len() > max {
        let mut end = max;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push('…');
    }
    out
}

/// The activity record of one CloudTrail record, if a grant covers it.
pub fn cloudtrail_record(event: &Value, index: &GrantIndex) -> Option<Record> {
    let time = s(event, &["eventTime"]);
    let at = twokey_sigma::correlation::parse_time_ms(&time)?;
    let Coverage::Covered {
        request_id,
        principal,
        ..
    } = correlate(event, index, at)
    else {
        return None;
    };
    let event_id = s(event, &["eventID"]);
    if event_id.is_empty() {
        return None;
    }
    let mut detail = serde_json::Map::new();
    for k in ["requestParameters", "resources"] {
        if let Some(v) = event.get(k).filter(|v| !v.is_null()) {
            detail.insert(k.into(), v.clone());
        }
    }
    Some(Record {
        request_id,
        event_id,
        source: "cloudtrail".into(),
        event_time: at,
        action: format!(
            "{}:{}",
            s(event, &["eventSource"]),
            s(event, &["eventName"])
        ),
        principal,
        source_ip: s(event, &["sourceIPAddress"]),
        location: s(event, &["awsRegion"]),
        outcome: s(event, &["errorCode"]),
        detail: if detail.is_empty() {
            String::new()
        } else {
            excerpt(&Value::Object(detail), 1024)
        },
    })
}

/// The login role name the `postgres` provider gives a grant: `tk_` and the
/// request id with anything but `[a-z0-9]` turned into `_`, cut to 63
/// bytes (the provider's `login_role_name`; a test in the `twokey` crate
/// checks the two agree).
pub fn postgres_login_role(request_id: &str) -> String {
    let mut name = String::from("tk_");
    name.extend(request_id.chars().map(|c| {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            c
        } else {
            '_'
        }
    }));
    name.truncate(63);
    name
}

/// One line of a PostgreSQL server log, the fields attribution reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PgLine {
    /// `log_time` / `timestamp`, Unix ms.
    pub at: i64,
    /// `user_name` / `user`.
    pub user: String,
    /// `database_name` / `dbname`.
    pub database: String,
    /// `session_id` / `session_id`.
    pub session: String,
    /// `session_line_num` / `line_num`.
    pub line: String,
    /// `connection_from` / `remote_host`.
    pub from: String,
    /// `command_tag` / `ps`.
    pub command: String,
    /// `error_severity` / `error_severity`.
    pub severity: String,
    /// `sql_state_code` / `state_code`.
    pub state: String,
    /// `message`.
    pub message: String,
}

/// Parses PostgreSQL's log time (`2026-12-02 16:00:00.123 UTC`); only UTC
/// is accepted, since a zone abbreviation cannot be resolved without the
/// server's time zone database.
pub fn pg_time(t: &str) -> Result<i64, String> {
    let t = t.trim();
    let Some(local) = t.strip_suffix(" UTC") else {
        return Err(format!(
            "log time {t:?} is not in UTC; set log_timezone = 'UTC' on the server"
        ));
    };
    let iso = format!("{}Z", local.replacen(' ', "T", 1));
    twokey_sigma::correlation::parse_time_ms(&iso).ok_or_else(|| format!("log time {t:?}"))
}

/// Parses one csvlog record (PostgreSQL's documented column order).
pub fn pg_csv_line(rec: &csv::StringRecord) -> Result<PgLine, String> {
    let f = |i: usize| rec.get(i).unwrap_or_default().to_string();
    if rec.len() < 14 {
        return Err(format!(
            "a csvlog line has at least 14 columns, this one {}",
            rec.len()
        ));
    }
    Ok(PgLine {
        at: pg_time(&f(0))?,
        user: f(1),
        database: f(2),
        from: f(4),
        session: f(5),
        line: f(6),
        command: f(7),
        severity: f(11),
        state: f(12),
        message: f(13),
    })
}

/// Parses one jsonlog line.
pub fn pg_json_line(text: &str) -> Result<PgLine, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let num = |k: &str| match v.get(k) {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    Ok(PgLine {
        at: pg_time(&s(&v, &["timestamp"]))?,
        user: s(&v, &["user"]),
        database: s(&v, &["dbname"]),
        from: s(&v, &["remote_host"]),
        session: s(&v, &["session_id"]),
        line: num("line_num"),
        command: s(&v, &["ps"]),
        severity: s(&v, &["error_severity"]),
        state: s(&v, &["state_code"]),
        message: s(&v, &["message"]),
    })
}

fn active_at(g: &Grant, at: i64) -> bool {
    g.from_ms <= at && at < g.until_ms
}

/// What a log line records: `statement SELECT` (the statement's first
/// word, from `log_statement`), `connection authorized`, `disconnection`,
/// `error SELECT` (a failed command, by its tag), else the message's head.
pub fn pg_action(line: &PgLine, failed: bool) -> String {
    let msg = line.message.trim();
    if let Some(sql) = msg.strip_prefix("statement: ").or_else(|| {
        msg.strip_prefix("execute ")
            .and_then(|m| m.split_once(": ").map(|(_, q)| q))
    }) {
        let word: String = sql
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        return format!("statement {}", word.to_ascii_uppercase());
    }
    let tag = match line.command.as_str() {
        "" | "idle" | "authentication" | "startup" => None,
        t => Some(t),
    };
    if failed {
        return match tag {
            Some(t) => format!("error {t}"),
            None => "error".into(),
        };
    }
    for head in [
        "connection authorized",
        "connection received",
        "disconnection",
    ] {
        if msg.starts_with(head) {
            return head.into();
        }
    }
    let head: String = msg
        .split(':')
        .next()
        .unwrap_or_default()
        .chars()
        .take(64)
        .collect();
    match tag {
        Some(t) if head.is_empty() => t.to_string(),
        _ => head,
    }
}

/// The grant a PostgreSQL log line belongs to, if any.
pub fn postgres_record(line: &PgLine, index: &GrantIndex) -> Option<Record> {
    if line.user.is_empty() {
        return None;
    }
    let grant = index.grants().iter().find(|g| {
        let Some(t) = index.targets().get(&g.entitlement) else {
            return false;
        };
        if t.provider != "postgres" || !active_at(g, line.at) {
            return false;
        }
        match t.mode.as_deref() {
            Some("login") => postgres_login_role(&g.request_id) == line.user,
            Some("membership") => t.users.get(&g.requester_name) == Some(&line.user),
            _ => false,
        }
    })?;
    let failed = matches!(line.severity.as_str(), "ERROR" | "FATAL" | "PANIC");
    let action = pg_action(line, failed);
    Some(Record {
        request_id: grant.request_id.clone(),
        event_id: format!("{}:{}", line.session, line.line),
        source: "postgres".into(),
        event_time: line.at,
        action,
        principal: line.user.clone(),
        source_ip: line
            .from
            .rsplit_once(':')
            .map_or(line.from.as_str(), |(h, _)| h)
            .to_string(),
        location: line.database.clone(),
        outcome: if failed {
            if line.state.is_empty() {
                line.severity.clone()
            } else {
                line.state.clone()
            }
        } else {
            String::new()
        },
        detail: cut(line.message.clone(), 1024),
    })
}

/// One VPC flow log record (default format, version 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// `interface-id`.
    pub interface: String,
    /// `srcaddr`.
    pub src: IpAddr,
    /// `dstaddr`.
    pub dst: IpAddr,
    /// `srcport`.
    pub src_port: u16,
    /// `dstport`.
    pub dst_port: u16,
    /// IANA protocol number.
    pub protocol: u8,
    /// `packets`.
    pub packets: u64,
    /// `bytes`.
    pub bytes: u64,
    /// `start`, Unix ms.
    pub start: i64,
    /// `ACCEPT` or `REJECT`.
    pub action: String,
}

/// Parses a flow log line; `Ok(None)` for the header line and records
/// without data (`NODATA`, `SKIPDATA`).
pub fn flow_line(text: &str) -> Result<Option<Flow>, String> {
    let f: Vec<&str> = text.split_whitespace().collect();
    if f.first() == Some(&"version") {
        return Ok(None);
    }
    if f.len() < 14 {
        return Err(format!(
            "a version 2 flow log record has 14 fields, this one {}",
            f.len()
        ));
    }
    if f[13] != "OK" {
        return Ok(None);
    }
    if f[0] != "2" {
        return Err(format!(
            "flow log version {} (only the default version 2 format is read)",
            f[0]
        ));
    }
    let n = |i: usize, what: &str| -> Result<u64, String> {
        f[i].parse()
            .map_err(|_| format!("{what} {:?} is not a number", f[i]))
    };
    let ip = |i: usize, what: &str| -> Result<IpAddr, String> {
        f[i].parse()
            .map_err(|_| format!("{what} {:?} is not an address", f[i]))
    };
    let port = |i: usize, what: &str| -> Result<u16, String> {
        f[i].parse()
            .map_err(|_| format!("{what} {:?} is not a port", f[i]))
    };
    Ok(Some(Flow {
        interface: f[2].to_string(),
        src: ip(3, "srcaddr")?,
        dst: ip(4, "dstaddr")?,
        src_port: port(5, "srcport")?,
        dst_port: port(6, "dstport")?,
        protocol: f[7]
            .parse()
            .map_err(|_| format!("protocol {:?} is not a number", f[7]))?,
        packets: n(8, "packets")?,
        bytes: n(9, "bytes")?,
        start: i64::try_from(n(10, "start")?)
            .map_err(|_| "start is out of range".to_string())?
            .saturating_mul(1000),
        action: f[12].to_string(),
    }))
}

/// Whether `ip` is inside `cidr` (`203.0.113.7/32`, `2001:db8::/64`, or a
/// bare address).
pub fn in_cidr(ip: IpAddr, cidr: &str) -> bool {
    let (net, bits) = match cidr.split_once('/') {
        Some((n, b)) => (n, b.parse::<u32>().ok()),
        None => (cidr, None),
    };
    let Ok(net) = net.parse::<IpAddr>() else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The grant a flow belongs to, if any.
pub fn flow_record(flow: &Flow, index: &GrantIndex) -> Option<Record> {
    if flow.action != "ACCEPT" {
        return None;
    }
    let grant = index.grants().iter().find(|g| {
        let Some(t) = index.targets().get(&g.entitlement) else {
            return false;
        };
        t.provider == "aws_security_group"
            && active_at(g, flow.start)
            && t.port == Some(flow.dst_port)
            && t.addresses
                .get(&g.requester_name)
                .is_some_and(|c| in_cidr(flow.src, c))
    })?;
    let proto = match flow.protocol {
        6 => "tcp".to_string(),
        17 => "udp".to_string(),
        p => format!("proto{p}"),
    };
    Some(Record {
        request_id: grant.request_id.clone(),
        event_id: format!(
            "{}:{}:{}:{}:{}:{}",
            flow.interface, flow.src, flow.src_port, flow.dst, flow.dst_port, flow.start
        ),
        source: "flow_log".into(),
        event_time: flow.start,
        action: format!("{proto}/{}", flow.dst_port),
        principal: flow.src.to_string(),
        source_ip: flow.src.to_string(),
        location: flow.interface.clone(),
        outcome: String::new(),
        detail: format!(
            "{} packets, {} bytes to {}",
            flow.packets, flow.bytes, flow.dst
        ),
    })
}

/// What one run read and attributed.
#[derive(Debug, Default)]
struct Tally {
    records: Vec<Record>,
    read: u64,
    unreadable: u64,
}

fn read_cloudtrail(
    paths: &[PathBuf],
    index: &GrantIndex,
    t: &mut Tally,
    err: &mut dyn Write,
) -> anyhow::Result<()> {
    for path in input::expand_paths(paths)? {
        let inp = input::read_input(&path)?;
        let mut bad = Vec::new();
        input::for_each_record(
            &inp.text,
            &mut |_, rec| {
                t.read += 1;
                match serde_json::from_str::<Value>(rec) {
                    Ok(v) => t.records.extend(cloudtrail_record(&v, index)),
                    Err(_) => t.unreadable += 1,
                }
            },
            &mut |b| bad.push(b),
        );
        for b in bad {
            t.unreadable += 1;
            writeln!(
                err,
                "twokey guard activity: {}:{}: {}",
                inp.name, b.position, b.reason
            )?;
        }
    }
    Ok(())
}

fn read_postgres(
    paths: &[PathBuf],
    index: &GrantIndex,
    t: &mut Tally,
    err: &mut dyn Write,
) -> anyhow::Result<()> {
    for path in paths {
        let text = input::read_input(path)?.text;
        let name = path.display().to_string();
        let json = path.extension().is_some_and(|e| e == "json");
        let mut one = |pos: String,
                       line: Result<PgLine, String>,
                       err: &mut dyn Write|
         -> anyhow::Result<()> {
            t.read += 1;
            match line {
                Ok(l) => t.records.extend(postgres_record(&l, index)),
                Err(e) => {
                    t.unreadable += 1;
                    writeln!(err, "twokey guard activity: {name}:{pos}: {e}")?;
                }
            }
            Ok(())
        };
        if json {
            for (i, l) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                one((i + 1).to_string(), pg_json_line(l), err)?;
            }
        } else {
            let mut rdr = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(text.as_bytes());
            for (i, rec) in rdr.records().enumerate() {
                let line = rec
                    .map_err(|e| format!("not a csvlog record: {e}"))
                    .and_then(|r| pg_csv_line(&r));
                one(format!("record {}", i + 1), line, err)?;
            }
        }
    }
    Ok(())
}

fn read_flows(
    paths: &[PathBuf],
    index: &GrantIndex,
    t: &mut Tally,
    err: &mut dyn Write,
) -> anyhow::Result<()> {
    for path in paths {
        let text = input::read_input(path)?.text;
        for (i, l) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            match flow_line(l) {
                Ok(Some(f)) => {
                    t.read += 1;
                    t.records.extend(flow_record(&f, index));
                }
                Ok(None) => {}
                Err(e) => {
                    t.read += 1;
                    t.unreadable += 1;
                    writeln!(
                        err,
                        "twokey guard activity: {}:{}: {e}",
                        path.display(),
                        i + 1
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// What the server said about one batch.
#[derive(Debug, Deserialize)]
struct Receipt {
    kept: u64,
    duplicates: u64,
    overflow: u64,
    refused: Vec<Value>,
}

/// Records per `POST /v1/activity`.
const BATCH: usize = 1000;

fn submit(
    server: &str,
    token: &str,
    records: &[Record],
    err: &mut dyn Write,
) -> anyhow::Result<bool> {
    let rt = crate::rt::Rt::new()?;
    let url = format!("{}/v1/activity", server.trim_end_matches('/'));
    let token = token.to_string();
    let batches: Vec<Vec<Record>> = records.chunks(BATCH).map(<[Record]>::to_vec).collect();
    let receipts = rt.run(async move {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()?;
        let mut out = Vec::new();
        for b in batches {
            let resp = client
                .post(&url)
                .bearer_auth(&token)
                .json(&serde_json::json!({ "records": b }))
                .send()
                .await
                .with_context(|| format!("POST {url}"))?;
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            if !status.is_success() {
                anyhow::bail!(
                    "POST {url}: HTTP {status}: {}",
                    body.chars().take(300).collect::<String>()
                );
            }
            out.push(
                serde_json::from_str::<Receipt>(&body)
                    .with_context(|| format!("POST {url}: not a receipt"))?,
            );
        }
        Ok(out)
    })?;
    let (mut kept, mut dup, mut over, mut refused) = (0, 0, 0, 0);
    for r in receipts {
        kept += r.kept;
        dup += r.duplicates;
        over += r.overflow;
        for x in &r.refused {
            refused += 1;
            writeln!(err, "twokey guard activity: refused: {x}")?;
        }
    }
    writeln!(
        err,
        "twokey guard activity: filed {kept}, already filed {dup}, beyond the per-grant bound {over}, refused {refused}"
    )?;
    Ok(refused == 0)
}

/// Runs `twokey guard activity`. Exit status: 0 all attributed records
/// printed or filed; 2 when an input could not be read or the server
/// refused records.
pub fn run_activity(
    args: &ActivityArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    if args.paths.is_empty() && args.postgres_logs.is_empty() && args.flow_logs.is_empty() {
        anyhow::bail!("give CloudTrail paths, --postgres-log or --flow-log");
    }
    let token = args.token.clone().filter(|t| !t.is_empty());
    let source = match (&args.grants, &token) {
        (Some(f), _) => GrantSource::File(f.clone()),
        (None, Some(t)) => GrantSource::Server {
            url: args.server.clone(),
            token: t.clone(),
        },
        (None, None) => anyhow::bail!("give --token (or TWOKEY_TOKEN) or --grants FILE"),
    };
    let index = source.load_scope("all")?;
    let mut t = Tally::default();
    read_cloudtrail(&args.paths, &index, &mut t, err)?;
    read_postgres(&args.postgres_logs, &index, &mut t, err)?;
    read_flows(&args.flow_logs, &index, &mut t, err)?;
    let mut by_grant: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &t.records {
        *by_grant.entry(r.request_id.as_str()).or_default() += 1;
    }
    writeln!(
        err,
        "twokey guard activity: read {} records, {} attributed to {} grants, {} unreadable",
        t.read,
        t.records.len(),
        by_grant.len(),
        t.unreadable
    )?;
    let mut ok = t.unreadable == 0;
    if args.submit {
        let Some(token) = &token else {
            anyhow::bail!("--submit needs --token (an admin's)");
        };
        ok &= submit(&args.server, token, &t.records, err)?;
    } else {
        for r in &t.records {
            serde_json::to_writer(&mut *out, r)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
    }
    Ok(if ok { 0 } else { 2 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn index() -> GrantIndex {
        let requests = json!([
            {"id": "r-pg", "entitlement": "db", "requester": {"issuer": "twokey", "subject": "alice"},
             "requester_name": "alice", "activated_at": 1_000_000, "ends_at": 2_000_000},
            {"id": "r-pgm", "entitlement": "db-member", "requester": {"issuer": "twokey", "subject": "bob"},
             "requester_name": "bob", "activated_at": 1_000_000, "ends_at": 2_000_000},
            {"id": "r-sg", "entitlement": "ssh", "requester": {"issuer": "twokey", "subject": "alice"},
             "requester_name": "alice", "activated_at": 1_000_000, "ends_at": 2_000_000, "ended_at": 1_500_000}
        ]);
        let policy = json!({"hash": "h", "entitlements": {
            "db": {"provider": "postgres", "target": {"mode": "login"}},
            "db-member": {"provider": "postgres", "target": {"mode": "membership", "users": {"bob": "bob_db"}}},
            "ssh": {"provider": "aws_security_group", "target": {"port": 22, "addresses": {"alice": "203.0.113.7/32"}}}
        }});
        GrantIndex::from_api(&requests, &policy).expect("index")
    }

    #[test]
    fn postgres_lines_go_to_the_grant_whose_role_or_user_made_them() {
        let idx = index();
        let csv_text = "2026-12-02 16:00:00.123 UTC,\"tk_r_pg\",\"postgres\",4242,\"127.0.0.1:50000\",674d1a2b.1092,3,\"SELECT\",2026-12-02 16:00:00 UTC,3/7,0,LOG,00000,\"statement: SELECT * FROM accounts\",,,,,,,,,\"psql\",\"client backend\",,0\n";
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(csv_text.as_bytes());
        let rec = rdr.records().next().expect("a record").expect("csv");
        let mut line = pg_csv_line(&rec).expect("parses");
        assert_eq!(line.user, "tk_r_pg");
        assert_eq!(line.at, 1_796_227_200_123);
        // Inside the grant's window.
        line.at = 1_200_000;
        let r = postgres_record(&line, &idx).expect("attributed");
        assert_eq!(r.request_id, "r-pg");
        assert_eq!(r.action, "statement SELECT");
        assert_eq!(r.source_ip, "127.0.0.1");
        assert_eq!(r.event_id, "674d1a2b.1092:3");
        // Outside it, or another role: nobody's.
        line.at = 2_000_000;
        assert!(postgres_record(&line, &idx).is_none());
        line.at = 1_200_000;
        line.user = "tk_other".into();
        assert!(postgres_record(&line, &idx).is_none());
        // Membership: the requester's own database user during the grant.
        line.user = "bob_db".into();
        assert_eq!(
            postgres_record(&line, &idx).expect("member").request_id,
            "r-pgm"
        );
        // jsonlog.
        let j = r#"{"timestamp":"2026-12-02 16:00:01.000 UTC","user":"tk_r_pg","dbname":"postgres","pid":1,"remote_host":"127.0.0.1","session_id":"s1","line_num":4,"ps":"idle","error_severity":"ERROR","state_code":"42501","message":"permission denied for table salaries"}"#;
        let l = pg_json_line(j).expect("json");
        assert_eq!((l.session.as_str(), l.line.as_str()), ("s1", "4"));
        assert_eq!(l.state, "42501");
        // Not UTC: refused with what to change.
        assert!(pg_time("2026-12-02 16:00:01.000 CET")
            .unwrap_err()
            .contains("log_timezone"));
    }

    #[test]
    fn flows_from_the_requesters_address_to_the_port_during_the_grant() {
        let idx = index();
        let line = |src: &str, port: u16, start_s: i64, action: &str| {
            format!("2 123456789012 eni-0a1b {src} 10.0.0.5 50123 {port} 6 10 840 {start_s} {} {action} OK", start_s + 60)
        };
        assert_eq!(flow_line("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status").unwrap(), None);
        assert_eq!(
            flow_line("2 123456789012 eni-0a1b - - - - - - - 1431280876 1431280934 - NODATA")
                .unwrap(),
            None
        );
        let f = flow_line(&line("203.0.113.7", 22, 1_200, "ACCEPT"))
            .unwrap()
            .unwrap();
        let r = flow_record(&f, &idx).expect("attributed");
        assert_eq!(
            (r.request_id.as_str(), r.action.as_str()),
            ("r-sg", "tcp/22")
        );
        // Another address, another port, a rejected flow, after the early end.
        for (src, port, t, a) in [
            ("203.0.113.8", 22, 1_200, "ACCEPT"),
            ("203.0.113.7", 5432, 1_200, "ACCEPT"),
            ("203.0.113.7", 22, 1_200, "REJECT"),
            ("203.0.113.7", 22, 1_600, "ACCEPT"),
        ] {
            let f = flow_line(&line(src, port, t, a)).unwrap().unwrap();
            assert!(flow_record(&f, &idx).is_none(), "{src} {port} {t} {a}");
        }
        assert!(flow_line("2 1 eni x 10.0.0.5 1 22 6 1 1 1 2 ACCEPT OK").is_err());
        assert!(in_cidr("2001:db8::1".parse().unwrap(), "2001:db8::/64"));
        assert!(!in_cidr("2001:db9::1".parse().unwrap(), "2001:db8::/64"));
        assert!(in_cidr("10.1.2.3".parse().unwrap(), "10.0.0.0/8"));
        assert!(!in_cidr("11.1.2.3".parse().unwrap(), "10.0.0.0/8"));
    }
}
