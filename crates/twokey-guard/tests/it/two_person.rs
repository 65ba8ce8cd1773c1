//! Grant correlation end to end: `scan` with `--grants FILE` over the
//! real-shaped Panther CloudTrail events, and against a real
//! `twokey serve --dev` (binary from `TWOKEY_BIN`, else
//! `target/debug/twokey`; skipped with a reason when missing unless `CI` is
//! set).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use twokey_guard::scan::{scan_with, GrantArgs};
use twokey_guard::{Format, RuleArgs, ScanArgs};

static N: AtomicU32 = AtomicU32::new(0);

fn tempdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "twokey-guard-2p-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const PANTHER: &str = "../../../shared/data/cloudtrail/panther-test-events.ndjson";

fn panther() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(PANTHER)
}

fn scan(grants: GrantArgs, format: Format, paths: Vec<PathBuf>) -> (i32, String, String) {
    let args = ScanArgs {
        rules: RuleArgs {
            rules: vec![],
            builtin: true,
            config: None,
            strict: false,
        },
        format,
        grants,
        aws: Default::default(),
        paths,
    };
    let mut out = Vec::new();
    let mut err = Vec::new();
    let status = scan_with(&args, &mut out, &mut err).unwrap();
    (
        status,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

fn findings(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Grants in the `--grants` format, shaped like the API's answers.
fn grants_file(dir: &Path) -> PathBuf {
    let ms = |s: &str| twokey_sigma::correlation::parse_time_ms(s).unwrap();
    let review = |who: &str| {
        serde_json::json!({"reviewer": {"issuer": "twokey", "subject": who},
            "reviewer_name": who, "decision": "approve", "comment": "", "at": 0})
    };
    let v = serde_json::json!({
        "requests": [
            {"id": "req-leroy", "entitlement": "sso-sample", "state": "active",
             "requester": {"issuer": "twokey", "subject": "leroy.jenkins"},
             "requester_name": "leroy.jenkins", "reviews": [review("bob"), review("carol")],
             "activated_at": ms("2024-11-25T17:00:00Z"), "ends_at": ms("2024-11-25T23:00:00Z")},
            {"id": "req-example", "entitlement": "example-role", "state": "active",
             "requester": {"issuer": "twokey", "subject": "example-user"},
             "requester_name": "example-user", "reviews": [review("bob")],
             "activated_at": ms("2020-01-01T00:00:00Z"), "ends_at": ms("2020-01-01T01:00:00Z")},
            {"id": "req-jack", "entitlement": "iam-keys", "state": "active",
             "requester": {"issuer": "twokey", "subject": "jack"},
             "requester_name": "jack", "reviews": [review("carol")],
             "activated_at": ms("2022-09-27T17:00:00Z"), "ends_at": ms("2022-09-27T18:00:00Z")}
        ],
        "policy": {"hash": "test", "text": "", "entitlements": {
            "sso-sample": {"provider": "aws_iam_assume", "target": {"role_arn":
                "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/us-west-2/SampleRole"}},
            "example-role": {"provider": "aws_iam_assume", "target": {"role_arn":
                "arn:aws:iam::123456789012:role/example-role"}},
            "iam-keys": {"provider": "exec", "target": {"grant": ["true"],
                "principals": {"jack": "arn:aws:iam::123456789:user/jackson"}}}
        }}
    });
    let p = dir.join("grants.json");
    std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    p
}

#[test]
fn grants_file_flags_panther_events_covered_or_outside() {
    let dir = tempdir();
    let grants = GrantArgs {
        grants: Some(grants_file(&dir)),
        high_risk: vec!["medium".into(), "high".into(), "critical".into()],
        ..Default::default()
    };
    let (status, out, err) = scan(grants, Format::Ndjson, vec![panther()]);
    assert_eq!(status, 1, "{err}");
    let f = findings(&out);
    let at = |line: u64, rule_part: &str| -> &serde_json::Value {
        f.iter()
            .find(|x| {
                x["source"]["line"] == line && x["rule_title"].as_str().unwrap().contains(rule_part)
            })
            .unwrap_or_else(|| panic!("no finding of {rule_part:?} at line {line}"))
    };
    // Event selectors changed by leroy.jenkins (role session name) in the
    // SSO role, during req-leroy: covered, with both approvers.
    let tp = &at(20, "Event Selectors")["two_person"];
    assert_eq!(tp["status"], "covered", "{tp}");
    assert_eq!(tp["request_id"], "req-leroy");
    assert_eq!(tp["entitlement"], "sso-sample");
    let approvers: Vec<&str> = tp["approvers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(approvers, ["bob", "carol"]);
    assert_eq!(at(35, "Lifecycle")["two_person"]["status"], "covered");
    // Same role, a different session (SampleSession) and a day later: outside.
    let tp = &at(16, "Service Control Policy")["two_person"];
    assert_eq!(tp["status"], "outside", "{tp}");
    assert_eq!(
        tp["principal"],
        "arn:aws:sts::111122223333:assumed-role/SampleRole/SampleSession"
    );
    // example-user's grant was for 2020; the trail was deleted in 2019.
    assert_eq!(
        at(251, "Logging Stopped")["two_person"]["status"],
        "outside"
    );
    // Mapped IAM user: jackson is jack's principal, user1 is nobody's.
    let tp = &at(106, "Access Key")["two_person"];
    assert_eq!(tp["status"], "covered", "{tp}");
    assert_eq!(tp["request_id"], "req-jack");
    assert_eq!(at(105, "Access Key")["two_person"]["status"], "outside");
    // Root: nobody's grant.
    assert_eq!(at(202, "Root")["two_person"]["status"], "outside");
    assert_eq!(at(28, "Root")["two_person"]["principal"], "unknown");
    // Only findings at the high-risk levels carry the flag.
    for x in &f {
        let high = ["medium", "high", "critical"].contains(&x["level"].as_str().unwrap());
        assert_eq!(x.get("two_person").is_some(), high, "{x}");
    }
}

/// `AssumeRoot` records shaped as AWS documents them ("Track privileged
/// tasks in AWS CloudTrail", IAM User Guide), one per case, and calls made
/// with the root session in the member account.
const ASSUME_ROOT: &str = "tests/fixtures/assume_root.ndjson";

#[test]
fn assume_root_is_covered_only_by_a_root_task_grant_of_that_account_and_task() {
    let dir = tempdir();
    let ms = |s: &str| twokey_sigma::correlation::parse_time_ms(s).unwrap();
    let v = serde_json::json!({
        "requests": [
            {"id": "req-root", "entitlement": "unlock-logs", "state": "active",
             "requester": {"issuer": "twokey", "subject": "alice"}, "requester_name": "alice",
             "reviews": [{"reviewer": {"issuer": "twokey", "subject": "bob"},
                "reviewer_name": "bob", "decision": "approve", "comment": "", "at": 0}],
             "activated_at": ms("2026-11-30T10:04:30Z"), "ends_at": ms("2026-11-30T10:19:30Z")},
            // An aws_iam_assume grant at the same time covers no root session.
            {"id": "req-role", "entitlement": "prod-admin", "state": "active",
             "requester": {"issuer": "twokey", "subject": "carol"}, "requester_name": "carol",
             "reviews": [], "activated_at": ms("2026-11-30T10:00:00Z"),
             "ends_at": ms("2026-11-30T11:00:00Z")}
        ],
        "policy": {"hash": "test", "text": "", "entitlements": {
            "unlock-logs": {"provider": "aws_root_task", "target": {
                "accounts": ["222222222222"], "task": "S3UnlockBucketPolicy",
                "action": "perform", "bucket": "payments-logs"}},
            "prod-admin": {"provider": "aws_iam_assume", "target": {"role_arn":
                "arn:aws:iam::333333333333:role/prod-admin"}}
        }}
    });
    let p = dir.join("grants.json");
    std::fs::write(&p, v.to_string()).unwrap();
    let grants = GrantArgs {
        grants: Some(p),
        ..Default::default()
    };
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join(ASSUME_ROOT);
    let (status, out, err) = scan(grants, Format::Ndjson, vec![fixture]);
    assert_eq!(status, 1, "{err}");
    let f = findings(&out);
    let of = |line: u64, rule_part: &str| -> &serde_json::Value {
        &f.iter()
            .find(|x| {
                x["source"]["line"] == line && x["rule_title"].as_str().unwrap().contains(rule_part)
            })
            .unwrap_or_else(|| panic!("no finding of {rule_part:?} at line {line}: {out}"))
            ["two_person"]
    };
    let opened = "AssumeRoot";
    // 1: the session twokey opened for req-root.
    let tp = of(1, opened);
    assert_eq!(tp["status"], "covered", "{tp}");
    assert_eq!(tp["request_id"], "req-root");
    assert_eq!(tp["person"], "alice");
    assert_eq!(tp["approvers"][0]["name"], "bob");
    // 2: the root session's own call in the member account, both rules.
    assert_eq!(of(2, "Root User")["status"], "covered");
    assert_eq!(of(2, "Bucket Policy")["request_id"], "req-root");
    // 3: after the grant ended; 4: an account it does not name; 5: another task.
    for line in [3, 4, 5] {
        let tp = of(line, opened);
        assert_eq!(tp["status"], "outside", "line {line}: {tp}");
        assert_eq!(
            tp["principal"],
            "arn:aws:sts::111111111111:assumed-role/twokey-gateway/twokey-gateway"
        );
    }
    // 6: the target given as the account's root ARN.
    assert_eq!(of(6, opened)["request_id"], "req-root");
    // 7: a root session used where no grant opened one.
    assert_eq!(of(7, "Root User")["status"], "outside");
}

#[test]
fn default_levels_skip_medium_and_table_and_ocsf_show_the_flag() {
    let dir = tempdir();
    let g = GrantArgs {
        grants: Some(grants_file(&dir)),
        ..Default::default()
    };
    let (_, out, _) = scan(g.clone(), Format::Ndjson, vec![panther()]);
    for x in findings(&out) {
        let high = ["high", "critical"].contains(&x["level"].as_str().unwrap());
        assert_eq!(x.get("two_person").is_some(), high, "{x}");
    }
    let (_, table, _) = scan(g.clone(), Format::Table, vec![panther()]);
    assert!(table.lines().next().unwrap().ends_with("TWO-PERSON"));
    assert!(
        table.contains("covered req-leroy (by bob, carol)"),
        "{table}"
    );
    assert!(
        table.contains("OUTSIDE arn:aws:iam::123456789012:root"),
        "{table}"
    );
    let (_, ocsf, _) = scan(g, Format::Ocsf, vec![panther()]);
    let o = findings(&ocsf);
    assert!(o
        .iter()
        .any(|x| x["unmapped"]["two_person"]["request_id"] == "req-leroy"));
    // Without grants: no flag, no column.
    let (_, out, _) = scan(GrantArgs::default(), Format::Ndjson, vec![panther()]);
    assert!(findings(&out).iter().all(|x| x.get("two_person").is_none()));
}

#[test]
fn unreadable_grants_fail_the_scan() {
    let dir = tempdir();
    let p = dir.join("g.json");
    std::fs::write(&p, "[1,2]").unwrap();
    let args = ScanArgs {
        rules: RuleArgs {
            rules: vec![],
            builtin: true,
            config: None,
            strict: false,
        },
        format: Format::Ndjson,
        grants: GrantArgs {
            grants: Some(p),
            ..Default::default()
        },
        aws: Default::default(),
        paths: vec![panther()],
    };
    let e = scan_with(&args, &mut Vec::new(), &mut Vec::new()).unwrap_err();
    assert!(format!("{e:#}").contains("grants"), "{e:#}");
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn twokey_bin() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("TWOKEY_BIN") {
        return Some(PathBuf::from(p));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let p = target.join("debug/twokey");
    p.exists().then_some(p)
}

fn run(bin: &Path, server: &str, token: &str, args: &[&str]) -> Output {
    let o = Command::new(bin)
        .args(args)
        .env("TWOKEY_SERVER", server)
        .env("TWOKEY_TOKEN", token)
        .output()
        .expect("run twokey");
    assert!(
        o.status.success(),
        "twokey {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

#[test]
fn grants_from_a_real_dev_server() {
    let Some(bin) = twokey_bin() else {
        let why = "no twokey binary: build it (cargo build -p twokey) or set TWOKEY_BIN";
        assert!(std::env::var_os("CI").is_none(), "{why}");
        eprintln!("skipping grants_from_a_real_dev_server: {why}");
        return;
    };
    let dir = tempdir();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let listen = format!("127.0.0.1:{port}");
    let server = format!("http://{listen}");
    let child = Command::new(&bin)
        .args(["serve", "--dev", "--data-dir"])
        .arg(&dir)
        .args(["--listen", &listen])
        .env("TWOKEY_DEV_POSTGRES", "postgres://nobody@127.0.0.1:1/none")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start twokey serve --dev");
    let _server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    let tokens: serde_json::Value = loop {
        if let Ok(text) = std::fs::read_to_string(dir.join("dev-tokens.json")) {
            if let Ok(v) = serde_json::from_str(&text) {
                if std::net::TcpStream::connect(&listen).is_ok() {
                    break v;
                }
            }
        }
        assert!(Instant::now() < deadline, "dev server did not start");
        std::thread::sleep(Duration::from_millis(100));
    };
    let alice = tokens["alice"].as_str().unwrap();
    let bob = tokens["bob"].as_str().unwrap();
    let req = run(
        &bin,
        &server,
        alice,
        &[
            "request",
            "demo",
            "--for",
            "30m",
            "--reason",
            "guard test",
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&req.stdout).unwrap();
    let id = v["id"].as_str().unwrap().to_string();
    run(&bin, &server, bob, &["approve", &id]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = run(&bin, &server, alice, &["show", &id, "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        if v["state"] == "active" {
            break;
        }
        assert!(Instant::now() < deadline, "grant not active: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }

    let g = GrantArgs {
        server: server.clone(),
        token: Some(bob.to_string()),
        ..Default::default()
    };
    let tp = g.load().unwrap().expect("correlation on with a token");
    let grant = tp
        .index
        .grants()
        .iter()
        .find(|x| x.request_id == id)
        .expect("the active grant is in the index");
    assert_eq!(grant.requester_name, "alice");
    assert_eq!(grant.approvers[0].name, "bob");
    assert_eq!(grant.approvers[0].identity, "twokey|bob");
    assert_eq!(tp.index.targets()["demo"].provider, "exec");

    // alice stops a trail (no eventTime: checked at the current time) in a role session under her name: the demo
    // entitlement (exec) targets no AWS principal, so the call is outside
    // two-person control even though alice holds an active grant.
    let ev = r#"{"eventVersion":"1.08","eventSource":"cloudtrail.amazonaws.com","eventName":"StopLogging","eventID":"e1","eventType":"AwsApiCall","userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::123456789012:assumed-role/prod-admin/x","sessionContext":{"sourceIdentity":"alice","sessionIssuer":{"type":"Role","arn":"arn:aws:iam::123456789012:role/prod-admin"}}}}"#.to_string();
    let f = dir.join("ev.ndjson");
    std::fs::write(&f, ev + "\n").unwrap();
    let (status, out, err) = scan(g, Format::Ndjson, vec![f]);
    assert_eq!(status, 1, "{err}");
    let x = &findings(&out)[0];
    assert_eq!(x["two_person"]["status"], "outside", "{x}");
    assert_eq!(x["two_person"]["person"], "alice");

    // A wrong token is an error, not a silent "no grants".
    let bad = GrantArgs {
        server,
        token: Some("nope".into()),
        ..Default::default()
    };
    let e = bad.load().unwrap_err();
    assert!(format!("{e:#}").contains("401"), "{e:#}");
}

/// The `twokey` binary has global `--server`/`--token`; guard's flags of the
/// same names must not clash with them and must see their values.
#[test]
fn grant_flags_work_under_the_binarys_global_server_and_token() {
    use clap::{CommandFactory as _, Parser, Subcommand};
    #[derive(Parser)]
    struct Cli {
        #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
        server: String,
        #[arg(long, global = true)]
        token: Option<String>,
        #[command(subcommand)]
        cmd: Cmd,
    }
    #[derive(Subcommand)]
    enum Cmd {
        Scan(ScanArgs),
    }
    Cli::command().debug_assert();
    let parse = |args: &[&str]| match Cli::try_parse_from(args).unwrap().cmd {
        Cmd::Scan(s) => s,
    };
    let s = parse(&[
        "twokey",
        "--server",
        "http://a:1",
        "--token",
        "t",
        "scan",
        "x",
    ]);
    assert_eq!(s.grants.server, "http://a:1");
    assert_eq!(s.grants.token.as_deref(), Some("t"));
    let s = parse(&[
        "twokey",
        "scan",
        "--server",
        "http://b:2",
        "--token",
        "u",
        "x",
    ]);
    assert_eq!(s.grants.server, "http://b:2");
    assert_eq!(s.grants.token.as_deref(), Some("u"));
    let s = parse(&[
        "twokey",
        "scan",
        "--grants",
        "g.json",
        "--high-risk",
        "critical",
        "x",
    ]);
    assert_eq!(s.grants.grants, Some(PathBuf::from("g.json")));
    assert_eq!(s.grants.high_risk, ["critical"]);
    let s = parse(&["twokey", "--token", "t", "scan", "--no-grants", "x"]);
    assert!(s.grants.source().is_none());
}
