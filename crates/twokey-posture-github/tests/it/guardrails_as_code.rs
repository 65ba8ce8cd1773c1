//! Security as code across the two posture scans: the GitHub scan of the
//! stand-in is rendered as `twokey posture github --format json` renders it,
//! read back as `twokey posture aws --github-results` reads it, and
//! `code.guardrails_protected` says which guard-rail repository is protected.

use std::sync::Arc;

use twokey_gate::github::RestGitHub;
use twokey_posture::output::{Format, Report};
use twokey_posture::{Settings, Status};
use twokey_posture_github::collect::{self, Scope};
use twokey_posture_github::standin::{Spec, StandIn};
use twokey_posture_github::{GithubPostureConfig, Registry};

const ORG: &str = "acme";
const HOOK: &str = "https://twokey.example.com/v1/gate/github";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_rail_repositories_are_judged_from_the_github_scan() {
    let Some(spec) = Spec::load() else { return };
    let gh = StandIn::start(spec, ORG).await.expect("stand-in");
    // The SCPs and posture configuration: reviewed by two, gate required and installed.
    let rails = gh.add_repo("infra-guardrails", "main");
    gh.set_protection(&rails, StandIn::baseline_protection(2, &["twokey/plan"]));
    gh.add_hook(&rails, HOOK);
    // The policy: protected by one review, but the gate is neither required nor installed.
    let policy = gh.add_repo("infra-policy", "main");
    gh.set_protection(&policy, StandIn::baseline_protection(2, &[]));

    let text = format!(
        "[posture.github]\norg = \"{ORG}\"\niac_repos = [\"infra-*\"]\ngate_webhook_url = \"{HOOK}\"\n"
    );
    let cfg = GithubPostureConfig::parse_file(&text, "test.toml")
        .expect("config")
        .expect("table");
    let base = cfg.baseline(false);
    let client = Arc::new(RestGitHub::new(&gh.url, "t0ken").expect("client"));
    let scope = Arc::new(Scope {
        config: cfg,
        gate_repos: vec![],
    });
    let facts = collect::collect(client, scope, 1_700_000_000_000)
        .await
        .expect("collect");
    let registry = Registry::builtin();
    let posture = registry.as_posture();
    let json = Report {
        registry: &posture,
        findings: registry.evaluate(&facts, &base),
        collected_at_ms: facts.collected_at_ms,
    }
    .render(Format::Json);

    let github = twokey_posture::cli::github_findings(&json).expect("github results");
    let mut aws = twokey_posture::facts::Facts {
        collected_at_ms: 1_700_000_000_000,
        ..Default::default()
    };
    aws.github = Some(github);
    let mut settings = Settings::default();
    settings.posture.as_code.guardrails = Some(rails.clone());
    settings.posture.as_code.posture = Some(rails.clone());
    settings.posture.as_code.policy = Some(policy.clone());
    let check = twokey_posture::Registry::builtin()
        .only(&["code.guardrails_protected".to_string()])
        .expect("check registered");
    let out = check.evaluate(&aws, &settings);
    let got: Vec<(String, Status)> = out.iter().map(|f| (f.resource.clone(), f.status)).collect();
    assert_eq!(
        got,
        vec![
            ("guardrails".to_string(), Status::Pass),
            ("posture".to_string(), Status::Pass),
            ("policy".to_string(), Status::Fail),
        ],
        "{out:#?}"
    );
    let why = &out[2].message;
    assert!(
        why.contains("github.gate_status_check") && why.contains("github.gate_installed"),
        "{why}"
    );
    assert!(!why.contains("github.required_approvals"), "{why}");
}
