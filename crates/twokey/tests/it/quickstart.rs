//! The README's quickstart, run as written: `twokey serve --dev`, then the CLI
//! as alice and bob. If this fails, the README is lying.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn twokey(server: &str, token: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_twokey"))
        .args(args)
        .env("TWOKEY_SERVER", server)
        .env("TWOKEY_TOKEN", token)
        .output()
        .expect("run twokey")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[test]
fn quickstart_walks_one_full_cycle_with_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let server = format!("http://{listen}");
    let child = Command::new(env!("CARGO_BIN_EXE_twokey"))
        .args(["serve", "--dev", "--data-dir"])
        .arg(dir.path())
        .args(["--listen", &listen])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start server");
    let _guard = Server(child);
    let tokens_path = dir.path().join("dev-tokens.json");
    let deadline = Instant::now() + Duration::from_secs(30);
    let tokens: serde_json::Value = loop {
        if let Ok(text) = std::fs::read_to_string(&tokens_path) {
            if let Ok(v) = serde_json::from_str(&text) {
                if std::net::TcpStream::connect(&listen).is_ok() {
                    break v;
                }
            }
        }
        assert!(Instant::now() < deadline, "dev server did not start");
        std::thread::sleep(Duration::from_millis(100));
    };
    let alice = tokens["alice"].as_str().expect("alice token");
    let bob = tokens["bob"].as_str().expect("bob token");
    assert!(tokens["carol"].is_string());
    // The token file is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&tokens_path)
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let who = twokey(&server, alice, &["whoami"]);
    assert!(stdout(&who).starts_with("alice"), "{}", stdout(&who));

    let req = twokey(
        &server,
        alice,
        &[
            "request",
            "demo",
            "--for",
            "30m",
            "--reason",
            "INC-2211 fix",
            "--json",
        ],
    );
    assert!(
        req.status.success(),
        "{}",
        String::from_utf8_lossy(&req.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&req.stdout).expect("json");
    let id = v["id"].as_str().expect("id").to_string();
    assert_eq!(v["state"], "pending");

    let own = twokey(&server, alice, &["approve", &id]);
    assert!(
        !own.status.success(),
        "alice approving her own request must fail"
    );
    assert!(String::from_utf8_lossy(&own.stderr)
        .contains("you requested this; a different approver is required"));

    let waiting = twokey(&server, bob, &["ls", "--scope", "waiting"]);
    assert!(stdout(&waiting).contains(&id));
    let ok = twokey(&server, bob, &["approve", &id, "--comment", "looks right"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let grant_file = dir.path().join("demo-grants").join(&id);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !grant_file.exists() {
        assert!(Instant::now() < deadline, "grant not applied");
        std::thread::sleep(Duration::from_millis(50));
    }
    let show = twokey(&server, alice, &["show", &id]);
    assert!(stdout(&show).contains("active"), "{}", stdout(&show));
    assert!(stdout(&show).contains("grant.activated"));
    // What she may do now, as the core says (`allowed_actions`).
    assert!(
        stdout(&show).contains("you may: revoke, extend"),
        "{}",
        stdout(&show)
    );

    let rv = twokey(&server, alice, &["revoke", &id]);
    assert!(rv.status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let show = twokey(&server, alice, &["show", &id, "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&show.stdout).expect("json");
        if v["state"] == "revoked" {
            break;
        }
        assert!(Instant::now() < deadline, "not revoked: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!grant_file.exists(), "revoked at the target");
}

const BAD_POLICY: &str = r#"[[identity]]
name = "alice"
groups = ["eng"]
[[identity]]
name = "bob"
groups = ["dba"]

[[entitlement]]
name = "prod-db"
provider = "exec"
requester_groups = ["eng"]
max_duration = "1h"
default_duration = "2h"
approval = { count = 2, from = ["dba"] }
[entitlement.target]
grant = ["true"]
revoke = ["true"]
"#;

fn check(dir: &std::path::Path, name: &str, text: &str) -> (bool, String) {
    let f = dir.join(name);
    std::fs::write(&f, text).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_twokey"))
        .args(["policy", "check"])
        .arg(&f)
        .output()
        .expect("run");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn policy_check_reports_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, err) = check(dir.path(), "policy.toml", BAD_POLICY);
    assert!(!ok);
    assert!(
        err.contains("policy.toml:13:")
            && err.contains("default_duration 2h is over its max_duration 1h"),
        "{err}"
    );
    // Two approvals but only one eligible approver besides the requester.
    let (ok, err) = check(
        dir.path(),
        "two.toml",
        &BAD_POLICY.replace("\"2h\"", "\"30m\""),
    );
    assert!(
        !ok && err.contains("two.toml:14:") && err.contains("only 1 eligible approver"),
        "{err}"
    );
    let good = BAD_POLICY
        .replace("\"2h\"", "\"30m\"")
        .replace("count = 2", "count = 1");
    let (ok, err) = check(dir.path(), "ok.toml", &good);
    assert!(ok, "{err}");
    // Provider settings are validated too.
    let (ok, err) = check(
        dir.path(),
        "prov.toml",
        &good.replace("grant = [\"true\"]\n", ""),
    );
    assert!(
        !ok && err.contains("prod-db") && err.contains("grant"),
        "{err}"
    );
}

/// A postgres entitlement whose admin URL is `target_url_line`.
fn pg_policy(target_url_line: &str) -> String {
    format!(
        r#"[admins]
groups = ["admins"]

[[identity]]
name = "alice"
groups = ["eng"]

[[identity]]
name = "bob"
groups = ["dba", "admins"]

[[identity]]
name = "carol"
groups = ["dba", "admins"]

[[entitlement]]
name = "prod-db"
provider = "postgres"
requester_groups = ["eng"]
max_duration = "1h"
approval = {{ count = 1, from = ["dba"] }}
[entitlement.target]
mode = "login"
{target_url_line}
"#
    )
}

#[test]
fn policy_check_warns_about_inline_credentials_and_reads_references() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |name: &str, text: &str, env: Option<&str>| {
        let f = dir.path().join(name);
        std::fs::write(&f, text).expect("write");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_twokey"));
        cmd.args(["policy", "check"]).arg(&f);
        cmd.env_remove("TK_TEST_ADMIN_URL");
        if let Some(v) = env {
            cmd.env("TK_TEST_ADMIN_URL", v);
        }
        let out = cmd.output().expect("run");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    // Inline: valid, but warned about with file and line, never echoed.
    let (ok, err) = run(
        "inline.toml",
        &pg_policy(r#"url = "postgres://admin:Sup3r-secret@db.internal/app""#),
        None,
    );
    assert!(ok, "{err}");
    assert!(
        err.contains("inline.toml:24: warning: entitlement[prod-db].target.url holds a password in a URL (postgres://admin:***@db.internal/app)")
            && err.contains("url_env"),
        "{err}"
    );
    assert!(!err.contains("Sup3r-secret"), "{err}");
    // By reference: no warning; the value is read where the policy is loaded.
    let by_ref = pg_policy(r#"url_env = "TK_TEST_ADMIN_URL""#);
    let (ok, err) = run(
        "ref.toml",
        &by_ref,
        Some("postgres://admin:Sup3r-secret@db.internal/app"),
    );
    assert!(ok && !err.contains("warning"), "{err}");
    let (ok, err) = run("ref.toml", &by_ref, None);
    assert!(
        !ok && err.contains("ref.toml:22:")
            && err.contains("url_env: the environment variable TK_TEST_ADMIN_URL is not set"),
        "{err}"
    );
}
