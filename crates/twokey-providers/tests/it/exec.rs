//! The exec provider against real `sh -c` scripts in a temporary directory.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use twokey_providers::{GrantSpec, Presence, Provider, ProviderContext, Registry};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let n: u64 = rand::rngs::OsRng.gen();
        let p = std::env::temp_dir().join(format!("twokey-exec-test-{n:016x}"));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn spec() -> GrantSpec {
    GrantSpec {
        request_id: "r-0001".into(),
        entitlement: "demo".into(),
        requester: "twokey|alice".into(),
        requester_name: "alice".into(),
        starts_at_ms: 1_790_000_000_000,
        ends_at_ms: 1_790_003_600_000,
        overlapping_active: vec!["r-0002".into(), "r-0003".into()],
    }
}

fn sh(script: &str) -> toml::Value {
    toml::Value::Array(vec!["sh".into(), "-c".into(), script.into()])
}

/// An exec provider whose scripts see the temp dir as `$DIR`.
fn provider(dir: &TempDir, extra: &[(&str, toml::Value)]) -> Arc<dyn Provider> {
    let mut t = toml::Table::new();
    t.insert("grant".into(), sh("touch \"$DIR/granted\""));
    t.insert("revoke".into(), sh("rm -f \"$DIR/granted\""));
    t.insert("check".into(), sh("test -f \"$DIR/granted\""));
    let mut env = toml::Table::new();
    env.insert("DIR".into(), dir.0.display().to_string().into());
    t.insert("env".into(), env.into());
    for (k, v) in extra {
        t.insert((*k).into(), v.clone());
    }
    let ctx = ProviderContext {
        env: BTreeMap::from([
            ("FROM_CONTEXT".to_string(), "ctx".to_string()),
            ("TWOKEY_ACTION".to_string(), "overridden?".to_string()),
        ]),
    };
    Registry::with_builtin().build("exec", &t, &ctx).unwrap()
}

#[tokio::test]
async fn grant_check_revoke_are_the_commands_and_idempotent() {
    let dir = TempDir::new();
    let p = provider(&dir, &[]);
    assert!(p.can_check());
    assert_eq!(p.check(&spec()).await.unwrap(), Presence::Absent);
    let out = p.grant(&spec()).await.unwrap();
    assert!(out.secret.is_none());
    p.grant(&spec()).await.unwrap();
    assert!(dir.path("granted").exists());
    assert_eq!(p.check(&spec()).await.unwrap(), Presence::Present);
    p.revoke(&spec()).await.unwrap();
    p.revoke(&spec()).await.unwrap();
    assert_eq!(p.check(&spec()).await.unwrap(), Presence::Absent);
}

#[tokio::test]
async fn the_request_reaches_the_command_in_environment_variables() {
    let dir = TempDir::new();
    let p = provider(
        &dir,
        &[(
            "grant",
            sh("env | grep -E '^(TWOKEY_|FROM_CONTEXT=)' | sort > \"$DIR/env\""),
        )],
    );
    p.grant(&spec()).await.unwrap();
    let env = std::fs::read_to_string(dir.path("env")).unwrap();
    for line in [
        "FROM_CONTEXT=ctx",
        "TWOKEY_ACTION=grant",
        "TWOKEY_REQUEST_ID=r-0001",
        "TWOKEY_ENTITLEMENT=demo",
        "TWOKEY_REQUESTER=twokey|alice",
        "TWOKEY_REQUESTER_NAME=alice",
        "TWOKEY_STARTS_AT=2026-09-21T14:13:20Z",
        "TWOKEY_ENDS_AT=2026-09-21T15:13:20Z",
        "TWOKEY_ENDS_AT_UNIX=1790003600",
        "TWOKEY_OVERLAPPING=r-0002,r-0003",
    ] {
        assert!(
            env.lines().any(|l| l == line),
            "missing {line:?} in:\n{env}"
        );
    }
}

#[tokio::test]
async fn a_command_past_its_timeout_is_killed_with_its_children() {
    let dir = TempDir::new();
    // The background subshell would create `late` after 1 s unless the whole
    // process group dies at the timeout.
    let p = provider(
        &dir,
        &[
            (
                "grant",
                sh("(sleep 1; touch \"$DIR/late\") & sleep 1; touch \"$DIR/late\""),
            ),
            ("timeout", "300ms".into()),
        ],
    );
    let started = Instant::now();
    let err = p.grant(&spec()).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert!(err.retryable);
    assert!(
        err.message.contains("did not finish within 300ms"),
        "{}",
        err.message
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !dir.path("late").exists(),
        "a killed command's child still ran"
    );
}

#[tokio::test]
async fn a_failing_command_reports_its_exit_code_and_stderr() {
    let dir = TempDir::new();
    let p = provider(
        &dir,
        &[
            (
                "revoke",
                sh("echo starting; echo 'first problem' >&2; echo 'door is jammed' >&2; exit 3"),
            ),
            ("check", sh("echo 'api down' >&2; exit 2")),
        ],
    );
    let err = p.revoke(&spec()).await.unwrap_err();
    assert!(
        err.message.contains("exited with code 3"),
        "{}",
        err.message
    );
    assert!(err.message.contains("door is jammed"), "{}", err.message);
    assert!(
        !err.message.contains("starting"),
        "stdout leaked: {}",
        err.message
    );
    let err = p.check(&spec()).await.unwrap_err();
    assert!(
        err.message.contains("code 2") && err.message.contains("api down"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn lots_of_stderr_or_a_lingering_background_process_do_not_hang() {
    let dir = TempDir::new();
    let p = provider(
        &dir,
        &[
            ("grant", sh("sleep 5 & exit 0")),
            (
                "revoke",
                sh("yes 'very loud' | head -c 1000000 >&2; echo 'last words' >&2; exit 1"),
            ),
        ],
    );
    let started = Instant::now();
    p.grant(&spec()).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let err = p.revoke(&spec()).await.unwrap_err();
    assert!(err.message.ends_with("last words"), "{}", err.message);
    assert!(
        err.message.len() < 2000,
        "stderr tail not bounded: {} bytes",
        err.message.len()
    );
}

#[tokio::test]
async fn a_missing_program_is_a_permanent_error() {
    let dir = TempDir::new();
    let missing = toml::Value::Array(vec!["/nonexistent/twokey-grant".into()]);
    let err = provider(&dir, &[("grant", missing)])
        .grant(&spec())
        .await
        .unwrap_err();
    assert!(!err.retryable);
    assert!(err.message.contains("cannot start"), "{}", err.message);
}

#[test]
fn bad_targets_are_refused_naming_the_key() {
    let build = |s: &str| {
        let t: toml::Table = toml::from_str(s).unwrap();
        Registry::with_builtin()
            .build("exec", &t, &ProviderContext::default())
            .map(|_| ())
    };
    let err = |s: &str| build(s).unwrap_err().message;
    assert!(err("revoke = [\"true\"]").contains("`grant`"));
    assert!(err("grant = []\nrevoke = [\"true\"]").contains("`grant` is empty"));
    assert!(err("grant = [\"true\"]\nrevoke = [\"true\"]\ncheck = []").contains("`check`"));
    assert!(
        err("grant = [\"true\"]\nrevoke = [\"true\"]\ntimeout = \"soon\"").contains("`timeout`")
    );
    assert!(err("grant = [\"true\"]\nrevoke = [\"true\"]\ntimout = \"1s\"").contains("timout"));
    assert!(build("grant = [\"true\"]\nrevoke = [\"true\"]\ntimeout = \"2m\"").is_ok());
    assert!(Registry::with_builtin().kinds() == ["exec", "noop", "postgres"]);
}

#[tokio::test]
async fn without_a_check_command_presence_is_unknown() {
    let t: toml::Table = toml::from_str("grant = [\"true\"]\nrevoke = [\"true\"]").unwrap();
    let p = Registry::with_builtin()
        .build("exec", &t, &ProviderContext::default())
        .unwrap();
    assert!(!p.can_check());
    assert!(p.check(&spec()).await.is_err());
}

#[tokio::test]
async fn noop_succeeds_and_reports_what_it_applied() {
    let p = Registry::with_builtin()
        .build("noop", &toml::Table::new(), &ProviderContext::default())
        .unwrap();
    assert_eq!(p.check(&spec()).await.unwrap(), Presence::Absent);
    p.grant(&spec()).await.unwrap();
    assert_eq!(p.check(&spec()).await.unwrap(), Presence::Present);
    p.revoke(&spec()).await.unwrap();
    assert_eq!(p.check(&spec()).await.unwrap(), Presence::Absent);
}
