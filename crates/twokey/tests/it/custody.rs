//! Root under two-person control, through the binary: carol seals the root
//! password of account 111122223333 between three custodians (2 of 3);
//! alice requests it and cannot approve it herself; bob approves; carol
//! releases her share, which alone opens nothing; dave releases his; alice
//! opens the very secret carol sealed, and the secret then needs rotation.
//! Along the way every attack the envelopes must stop is tried: the wrong
//! identity file, a tampered share, a replayed share, a share from another
//! request. The server's database is searched, every table and column, for
//! the secret. On SQLite and PostgreSQL.

use crate::support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use base64::Engine;
use sqlx::Row;
use support::{fresh_pg, now_ms, wait_until, Api, Server, TestEnv, BIN};
use twokey_store::{Backend, Store};

const ACCOUNT: &str = "111122223333";

struct Cli<'a> {
    server: &'a Server,
    dir: &'a Path,
}

impl Cli<'_> {
    /// Runs `twokey ARGS` as `who` (their token, their own one-time key dir).
    fn run(&self, who: &str, token: &str, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(BIN)
            .args(args)
            .env("TWOKEY_SERVER", &self.server.url)
            .env("TWOKEY_TOKEN", token)
            .env("TWOKEY_CUSTODY_DIR", self.keys_of(who))
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run twokey");
        {
            let mut input = child.stdin.take().expect("stdin");
            if let Some(s) = stdin {
                input.write_all(s.as_bytes()).expect("write stdin");
            }
        }
        child.wait_with_output().expect("wait twokey")
    }

    fn keys_of(&self, who: &str) -> PathBuf {
        self.dir.join(format!("{who}-custody-keys"))
    }

    fn ok(&self, who: &str, token: &str, args: &[&str], stdin: Option<&str>) -> String {
        let o = self.run(who, token, args, stdin);
        assert!(
            o.status.success(),
            "{who}: twokey {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    /// Runs a command that must be refused, and returns its error text.
    fn refused(&self, who: &str, token: &str, args: &[&str], expect: &[&str]) -> String {
        let o = self.run(who, token, args, Some("not-the-secret\n"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            !o.status.success(),
            "{who}: twokey {args:?} should have been refused:\n{text}"
        );
        for e in expect {
            assert!(
                text.contains(e),
                "{who}: twokey {args:?}: expected {e:?} in:\n{text}"
            );
        }
        text
    }
}

fn keygen(dir: &Path, who: &str) -> String {
    let path = dir.join(format!("{who}.key"));
    let o = Command::new(BIN)
        .args(["custody", "keygen", "--out"])
        .arg(&path)
        .output()
        .expect("keygen");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).expect("key").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "identity files are private");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn policy(r: &[String], held_apart: &str) -> String {
    let mut p = String::from(
        r#"[admins]
groups = ["admins"]
approvals = 1

[[identity]]
name = "alice"
groups = ["eng"]

[[identity]]
name = "bob"
groups = ["approvers", "admins"]

[[identity]]
name = "carol"
groups = ["custodians", "admins"]

[[identity]]
name = "dave"
groups = ["custodians"]

[[identity]]
name = "erin"
groups = ["custodians"]

[[identity]]
name = "frank"
groups = ["security"]

[[entitlement]]
name = "root-prod-open"
description = "Open the root password of the production account"
provider = "custody"
requester_identities = ["alice"]
default_duration = "30m"
max_duration = "1h"
reason_required = true
approval = { count = 1, from = ["approvers"] }
target = { secret = "root-prod" }

"#,
    );
    p.push_str(&format!(
        r#"[[custody]]
secret = "root-prod"
account = "{ACCOUNT}"
kind = "password"
threshold = 2
custodians = [
  {{ identity = "carol", recipient = "{}" }},
  {{ identity = "dave", recipient = "{}" }},
  {{ identity = "erin", recipient = "{}" }},
]
held_apart_from = ["{held_apart}"]
"#,
        r[0], r[1], r[2]
    ));
    p
}

/// `twokey posture aws --check custody.rotated_since_release` over the
/// server's custody state (`twokey --json custody secrets`, saved to a
/// file): the status and message of the root-prod finding.
fn rotation_posture(cli: &Cli<'_>, token: &str, name: &str) -> (String, String) {
    let state = cli.ok("alice", token, &["--json", "custody", "secrets"], None);
    let file = cli.dir.join(format!("custody-{name}.json"));
    std::fs::write(&file, state).expect("write custody state");
    let facts = cli.dir.join("no-aws-facts.json");
    std::fs::write(&facts, r#"{"collected_at_ms": 0, "accounts": []}"#).expect("facts");
    let out = Command::new(BIN)
        .args([
            "posture",
            "aws",
            "--format",
            "json",
            "--check",
            "custody.rotated_since_release",
        ])
        .arg("--facts")
        .arg(&facts)
        .arg("--custody")
        .arg(&file)
        .output()
        .expect("run posture");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "posture json ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let f = v["findings"]
        .as_array()
        .and_then(|f| {
            f.iter()
                .find(|x| x["resource"] == "twokey:custody/root-prod")
        })
        .unwrap_or_else(|| panic!("no root-prod finding: {v}"));
    (
        f["status"].as_str().unwrap_or_default().to_string(),
        f["message"].as_str().unwrap_or_default().to_string(),
    )
}

fn request_id(json_out: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(json_out).expect("json output");
    v["id"].as_str().expect("id").to_string()
}

async fn wait_active(api: &Api, id: &str) {
    wait_until(
        "custody request active",
        Duration::from_secs(20),
        || async {
            let v = api.get(id).await;
            if v["state"] == "active" {
                Ok(())
            } else {
                Err(format!("state {}", v["state"]))
            }
        },
    )
    .await;
}

async fn exec(store: &Store, q: &str) {
    sqlx::query(q)
        .execute(store.pool())
        .await
        .unwrap_or_else(|e| panic!("{q}: {e}"));
}

/// Every text value of every column of every table.
async fn all_values(store: &Store) -> Vec<(String, String, String)> {
    let tables_q = match store.backend() {
        Backend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table'",
        Backend::Postgres => {
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()"
        }
    };
    let tables: Vec<String> = sqlx::query(tables_q)
        .fetch_all(store.pool())
        .await
        .expect("tables")
        .iter()
        .map(|r| r.try_get::<String, _>(0).expect("name"))
        .collect();
    assert!(tables.iter().any(|t| t == "custody_shares"), "{tables:?}");
    let mut out = Vec::new();
    for t in tables {
        let cols_q = match store.backend() {
            Backend::Sqlite => format!("SELECT name FROM pragma_table_info('{t}')"),
            Backend::Postgres => format!("SELECT column_name::text FROM information_schema.columns WHERE table_name = '{t}' AND table_schema = current_schema()"),
        };
        let cols: Vec<String> = sqlx::query(&cols_q)
            .fetch_all(store.pool())
            .await
            .expect("columns")
            .iter()
            .map(|r| r.try_get::<String, _>(0).expect("column"))
            .collect();
        for c in cols {
            // SQLite blobs (sqlx's own checksums) are read as hex, which the
            // search covers too.
            let q = match store.backend() {
                Backend::Sqlite => format!("SELECT CASE WHEN typeof(\"{c}\") = 'blob' THEN lower(hex(\"{c}\")) ELSE CAST(\"{c}\" AS TEXT) END FROM \"{t}\""),
                Backend::Postgres => format!("SELECT CAST(\"{c}\" AS TEXT) FROM \"{t}\""),
            };
            let rows = sqlx::query(&q)
                .fetch_all(store.pool())
                .await
                .unwrap_or_else(|e| panic!("{t}.{c}: {e}"));
            for r in rows {
                if let Ok(Some(v)) = r.try_get::<Option<String>, _>(0) {
                    out.push((t.clone(), c.clone(), v));
                }
            }
        }
    }
    out
}

async fn assert_secret_absent(store: &Store, secret: &str) {
    let forms = [
        secret.to_string(),
        hex::encode(secret),
        base64::engine::general_purpose::STANDARD.encode(secret),
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(secret),
    ];
    let values = all_values(store).await;
    assert!(
        values.len() > 50,
        "the scan read only {} values",
        values.len()
    );
    assert!(
        values.iter().any(|(t, _, _)| t == "custody_releases"),
        "the scan must cover the stored releases"
    );
    // The scan sees what is stored in the clear (the policy names the account).
    assert!(
        values.iter().any(|(_, _, v)| v.contains(ACCOUNT)),
        "the scan reads the stored text"
    );
    for (t, c, v) in &values {
        for f in &forms {
            assert!(!v.contains(f.as_str()), "the secret is readable in {t}.{c}");
        }
    }
}

/// Flips one bit in the payload of a stored base64 envelope.
fn tamper(b64: &str) -> String {
    let e = base64::engine::general_purpose::STANDARD;
    let mut raw = e.decode(b64).expect("envelope base64");
    let n = raw.len();
    raw[n - 20] ^= 0x04;
    e.encode(raw)
}

async fn custody_cycle(database: Option<String>) {
    let env = TestEnv::new(database);
    let dir = env.path().to_path_buf();
    let r: Vec<String> = ["carol", "dave", "erin"]
        .iter()
        .map(|w| keygen(&dir, w))
        .collect();
    std::fs::write(env.path().join("policy.toml"), policy(&r, "frank")).expect("policy");
    let server = Server::start(&env, "custody", &[]);
    let cli = Cli {
        server: &server,
        dir: &dir,
    };
    let tok = |w: &str| env.token(w);
    let (alice, bob, carol, dave, erin) = (
        tok("alice"),
        tok("bob"),
        tok("carol"),
        tok("dave"),
        tok("erin"),
    );
    let key = |w: &str| dir.join(format!("{w}.key")).display().to_string();
    let store = Store::open(&env.database).await.expect("open store");

    // Sealing: the secret comes on stdin, never argv.
    let secret = format!("R00t!pw-{}-x7Qz", now_ms());
    cli.refused(
        "alice",
        &alice,
        &[
            "custody",
            "seal",
            "--account",
            ACCOUNT,
            "--kind",
            "password",
        ],
        &["only a custodian"],
    );
    let out = cli.ok(
        "carol",
        &carol,
        &[
            "custody",
            "seal",
            "--account",
            ACCOUNT,
            "--kind",
            "password",
        ],
        Some(&format!("{secret}\n")),
    );
    assert!(out.contains("generation 1"), "{out}");
    let list = cli.ok("alice", &alice, &["custody", "secrets"], None);
    assert!(
        list.contains("root-prod") && list.contains("2-of-3") && !list.contains("NEEDS ROTATION"),
        "{list}"
    );

    // The request: alice cannot approve it herself; bob does.
    let v = cli.ok(
        "alice",
        &alice,
        &[
            "--json",
            "custody",
            "request",
            "root-prod-open",
            "--for",
            "20m",
            "--reason",
            "INC-7 reset root MFA",
        ],
        None,
    );
    let req = request_id(&v);
    use std::os::unix::fs::PermissionsExt;
    let otk = cli.keys_of("alice").join(format!("{req}.age"));
    let mode = std::fs::metadata(&otk)
        .expect("one-time key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the one-time key is private");
    cli.refused("alice", &alice, &["approve", &req], &["different approver"]);
    cli.refused(
        "carol",
        &carol,
        &["custody", "release", &req, "--identity", &key("carol")],
        &["only while its grant is active"],
    );
    cli.ok("bob", &bob, &["approve", &req], None);
    let api = Api::new(&server.url, &alice);
    wait_active(&api, &req).await;

    // One custodian alone opens nothing.
    let p = cli.ok(
        "carol",
        &carol,
        &["custody", "release", &req, "--identity", &key("carol")],
        None,
    );
    assert!(p.contains("released 1 of 2") && p.contains("carol"), "{p}");
    cli.refused(
        "alice",
        &alice,
        &["custody", "open", &req],
        &["1 of 2 shares released"],
    );
    cli.refused(
        "carol",
        &carol,
        &["custody", "release", &req, "--identity", &key("carol")],
        &["already released"],
    );
    cli.refused(
        "bob",
        &bob,
        &["custody", "release", &req, "--identity", &key("carol")],
        &["not a custodian"],
    );
    // The wrong identity file: erin's share, dave's key.
    cli.refused(
        "erin",
        &erin,
        &["custody", "release", &req, "--identity", &key("dave")],
        &["not encrypted to this identity"],
    );
    cli.refused(
        "dave",
        &dave,
        &["custody", "open", &req],
        &["only the machine that made the request"],
    );
    // And the server hands the releases to nobody but the requester.
    let r = reqwest::Client::new()
        .get(format!("{}/v1/custody/requests/{req}/releases", server.url))
        .bearer_auth(&dave)
        .send()
        .await
        .expect("server up");
    assert_eq!(r.status().as_u16(), 403);
    assert!(r
        .text()
        .await
        .unwrap_or_default()
        .contains("only the requester"));

    // The second custodian; the requester opens the very secret sealed.
    let p = cli.ok(
        "dave",
        &dave,
        &["custody", "release", &req, "--identity", &key("dave")],
        None,
    );
    assert!(p.contains("released 2 of 2"), "{p}");
    let status = cli.ok("alice", &alice, &["custody", "status", &req], None);
    assert!(
        status.contains("released 2 of 2 (by carol, dave)"),
        "{status}"
    );
    let opened = cli.ok("alice", &alice, &["custody", "open", &req], None);
    assert_eq!(opened.trim_end_matches('\n'), secret);
    assert!(!otk.exists(), "the one-time key is removed after opening");
    let list = cli.ok("alice", &alice, &["custody", "secrets"], None);
    assert!(
        list.contains(&format!("NEEDS ROTATION (released for {req})")),
        "{list}"
    );
    // The posture check reads the same state from the server's answer.
    let (status, message) = rotation_posture(&cli, &alice, "before");
    assert_eq!(status, "fail", "{message}");
    assert!(message.contains(&req), "{message}");
    let shown = api.get(&req).await;
    let kinds = support::kinds(&shown);
    for k in [
        "custody.recipient_set",
        "custody.released",
        "custody.opened",
    ] {
        assert!(
            kinds.iter().any(|x| x == k),
            "timeline lacks {k}: {kinds:?}"
        );
    }
    assert_eq!(support::count_kind(&shown, "custody.released"), 2);
    let alerts: i64 = sqlx::query("SELECT COUNT(*) FROM alerts WHERE kind LIKE 'custody.%'")
        .fetch_one(store.pool())
        .await
        .expect("alerts")
        .try_get(0)
        .expect("count");
    assert!(alerts >= 5, "every custody step alerts (found {alerts})");
    let refused: i64 = sqlx::query(&format!(
        "SELECT COUNT(*) FROM ledger WHERE kind = 'custody.refused' AND subject = '{req}'"
    ))
    .fetch_one(store.pool())
    .await
    .expect("refusals")
    .try_get(0)
    .expect("count");
    assert!(
        refused >= 2,
        "bob's release and dave's open were refused on the record (found {refused})"
    );

    // Rotation: a new password sealed again clears "needs rotation".
    let secret2 = format!("N3w-root-{}-pw", now_ms());
    let out = cli.ok(
        "dave",
        &dave,
        &["custody", "seal", "--secret", "root-prod"],
        Some(&secret2),
    );
    assert!(out.contains("generation 2"), "{out}");
    let list = cli.ok("alice", &alice, &["custody", "secrets"], None);
    assert!(
        !list.contains("NEEDS ROTATION") && list.contains("generation 2"),
        "{list}"
    );
    let (status, message) = rotation_posture(&cli, &alice, "after");
    assert_eq!(status, "pass", "{message}");

    // Attacks on request 2 (and 3).
    let req2 = request_id(&cli.ok(
        "alice",
        &alice,
        &["--json", "request", "root-prod-open", "--reason", "INC-8"],
        None,
    ));
    let req3 = request_id(&cli.ok(
        "alice",
        &alice,
        &[
            "--json",
            "custody",
            "request",
            "root-prod-open",
            "--reason",
            "INC-9",
        ],
        None,
    ));
    cli.ok("bob", &bob, &["approve", &req2], None);
    cli.ok("bob", &bob, &["approve", &req3], None);
    wait_active(&api, &req2).await;
    wait_active(&api, &req3).await;

    // A tampered share: a bit of erin's stored envelope flipped.
    let erin_env: String = sqlx::query(
        "SELECT envelope FROM custody_shares WHERE secret_id = 'root-prod' AND share_index = 3",
    )
    .fetch_one(store.pool())
    .await
    .expect("erin's share")
    .try_get(0)
    .expect("envelope");
    exec(
        &store,
        &format!(
            "UPDATE custody_shares SET envelope = '{}' WHERE share_index = 3",
            tamper(&erin_env)
        ),
    )
    .await;
    cli.refused(
        "erin",
        &erin,
        &["custody", "release", &req2, "--identity", &key("erin")],
        &["tampered"],
    );
    exec(
        &store,
        &format!("UPDATE custody_shares SET envelope = '{erin_env}' WHERE share_index = 3"),
    )
    .await;

    // A replayed share: carol's release of request 2 stored a second time as share 2.
    cli.ok(
        "carol",
        &carol,
        &["custody", "release", &req2, "--identity", &key("carol")],
        None,
    );
    exec(&store, &format!("INSERT INTO custody_releases (request_id, share_index, custodian, envelope, released_at) SELECT request_id, 2, 'twokey|dave', envelope, released_at FROM custody_releases WHERE request_id = '{req2}' AND share_index = 1")).await;
    cli.refused(
        "alice",
        &alice,
        &["custody", "open", &req2],
        &["given twice", "replayed"],
    );
    exec(
        &store,
        &format!("DELETE FROM custody_releases WHERE request_id = '{req2}' AND share_index = 2"),
    )
    .await;

    // A share from another request: request 3 is made to release to request 2's
    // one-time key (as if the key were reused), dave releases for request 3,
    // and the server slips that release into request 2.
    let r2: String = sqlx::query(&format!(
        "SELECT recipient FROM custody_requests WHERE request_id = '{req2}'"
    ))
    .fetch_one(store.pool())
    .await
    .expect("recipient")
    .try_get(0)
    .expect("text");
    exec(
        &store,
        &format!("UPDATE custody_requests SET recipient = '{r2}' WHERE request_id = '{req3}'"),
    )
    .await;
    cli.ok(
        "dave",
        &dave,
        &["custody", "release", &req3, "--identity", &key("dave")],
        None,
    );
    exec(&store, &format!("INSERT INTO custody_releases (request_id, share_index, custodian, envelope, released_at) SELECT '{req2}', share_index, custodian, envelope, released_at FROM custody_releases WHERE request_id = '{req3}' AND share_index = 2")).await;
    cli.refused(
        "alice",
        &alice,
        &["custody", "open", &req2],
        &["another request", &req3],
    );
    // The honest releases still open it.
    exec(
        &store,
        &format!("DELETE FROM custody_releases WHERE request_id = '{req2}' AND share_index = 2"),
    )
    .await;
    cli.ok(
        "erin",
        &erin,
        &["custody", "release", &req2, "--identity", &key("erin")],
        None,
    );
    let opened = cli.ok("alice", &alice, &["custody", "open", &req2], None);
    assert_eq!(opened.trim_end_matches('\n'), secret2);

    // Nothing readable ever reached the server.
    assert_secret_absent(&store, &secret).await;
    assert_secret_absent(&store, &secret2).await;
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn custody_two_of_three_on_sqlite() {
    custody_cycle(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn custody_two_of_three_on_postgres() {
    custody_cycle(Some(fresh_pg("twokey_custody").await)).await;
}

#[test]
fn policy_check_refuses_a_custodian_who_holds_the_hardware_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r: Vec<String> = ["carol", "dave", "erin"]
        .iter()
        .map(|w| keygen(dir.path(), w))
        .collect();
    let ok = dir.path().join("ok.toml");
    std::fs::write(&ok, policy(&r, "frank")).expect("write");
    let o = Command::new(BIN)
        .args(["policy", "check"])
        .arg(&ok)
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let bad = dir.path().join("bad.toml");
    let text = policy(&r, "dave");
    std::fs::write(&bad, &text).expect("write");
    let o = Command::new(BIN)
        .args(["policy", "check"])
        .arg(&bad)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let line = text
        .lines()
        .position(|l| l.starts_with("held_apart_from"))
        .expect("line")
        + 1;
    assert!(
        err.contains(&format!("bad.toml:{line}: custody secret \"root-prod\": \"dave\" holds another part of account {ACCOUNT} (held_apart_from) and is also a custodian")),
        "{err}"
    );
}
