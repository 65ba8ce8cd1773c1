//! Every check with a passing and a failing repository, collected from the
//! GitHub stand-in (built from `@octokit/openapi`) through the gate's REST
//! client, then evaluated: protection only in a ruleset, a ruleset in
//! `evaluate` mode, an organisation ruleset with a bypass team, classic
//! protection with `enforce_admins` off, stale reviews not dismissed,
//! Actions allowed to approve, and the rest.

use std::sync::Arc;

use serde_json::json;
use twokey_gate::github::RestGitHub;
use twokey_posture::{Finding, Status};
use twokey_posture_github::collect::{self, Scope};
use twokey_posture_github::standin::{Bypass, Spec, StandIn};
use twokey_posture_github::{GithubPostureConfig, Registry};

const ORG: &str = "acme";
const HOOK: &str = "https://twokey.example.com/v1/gate/github";

fn config(extra: &str) -> GithubPostureConfig {
    let text = format!(
        "[posture.github]\norg = \"{ORG}\"\niac_repos = [\"infra-*\"]\nbreak_glass = [\"Team/77\"]\ngate_webhook_url = \"{HOOK}\"\n{extra}"
    );
    GithubPostureConfig::parse_file(&text, "test.toml")
        .expect("config")
        .expect("table")
}

fn status(fs: &[Finding], check: &str, resource: &str) -> Status {
    let hits: Vec<&Finding> = fs
        .iter()
        .filter(|f| f.check == check && f.resource == resource)
        .collect();
    assert_eq!(hits.len(), 1, "{check} on {resource}: {hits:#?}");
    hits[0].status
}

fn none_for(fs: &[Finding], check: &str, resource: &str) -> bool {
    !fs.iter()
        .any(|f| f.check == check && f.resource == resource)
}

async fn scan(
    gh: &StandIn,
    cfg: GithubPostureConfig,
) -> (Vec<Finding>, twokey_posture_github::facts::Facts) {
    let client = Arc::new(RestGitHub::new(&gh.url, "t0ken").expect("client"));
    let base = cfg.baseline(false);
    let scope = Arc::new(Scope {
        config: cfg,
        gate_repos: vec![format!("{ORG}/deploy")],
    });
    let facts = collect::collect(client, scope, 1_700_000_000_000)
        .await
        .expect("collect");
    (Registry::builtin().evaluate(&facts, &base), facts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_passes_and_fails_on_the_stand_in() {
    let Some(spec) = Spec::load() else { return };
    let gh = StandIn::start(spec, ORG).await.expect("stand-in");
    gh.require_token("t0ken");
    // Phase A: the organisation lets Actions approve and gives a write token.
    gh.set_workflow(None, "write", true);

    let good = gh.add_repo("good", "main");
    gh.set_protection(&good, StandIn::baseline_protection(1, &[]));
    gh.set_codeowners(&good, true);
    gh.set_workflow(Some(&good), "read", false);
    gh.add_environment(&good, "production", &["octocat"], true);

    // Protection only in a repository ruleset (no classic protection).
    let rs_only = gh.add_repo("ruleset-only", "trunk");
    gh.add_ruleset(
        Some(&rs_only),
        "active",
        &[],
        vec![
            StandIn::pull_request_rule(1, true, true, false),
            StandIn::rule("non_fast_forward"),
            StandIn::rule("deletion"),
        ],
    );
    gh.set_workflow(Some(&rs_only), "read", false);

    // The same ruleset in evaluate mode: nothing is enforced.
    let eval = gh.add_repo("evaluate-mode", "main");
    gh.add_ruleset(
        Some(&eval),
        "evaluate",
        &[],
        vec![
            StandIn::pull_request_rule(2, true, true, true),
            StandIn::rule("non_fast_forward"),
            StandIn::rule("deletion"),
        ],
    );

    // An organisation ruleset with a bypass team on one repository, and one
    // whose only bypass actor is the configured break-glass team.
    let bypass = gh.add_repo("org-bypass", "main");
    let id = gh.add_ruleset(
        None,
        "active",
        &[Bypass {
            actor_type: "Team".into(),
            actor_id: Some(234),
        }],
        vec![StandIn::pull_request_rule(1, true, true, false)],
    );
    gh.set_conditions(
        id,
        json!({ "ref_name": { "include": ["~DEFAULT_BRANCH"], "exclude": [] }, "repository_name": { "include": ["org-bypass"], "exclude": [] } }),
    );
    let glass = gh.add_repo("break-glass", "main");
    let id = gh.add_ruleset(
        None,
        "active",
        &[Bypass {
            actor_type: "Team".into(),
            actor_id: Some(77),
        }],
        vec![StandIn::pull_request_rule(1, true, true, false)],
    );
    gh.set_conditions(
        id,
        json!({ "ref_name": { "include": ["~DEFAULT_BRANCH"], "exclude": [] }, "repository_name": { "include": ["break-glass"], "exclude": [] } }),
    );

    // Classic protection with enforce_admins off, and code owners not enforced.
    let admins = gh.add_repo("admins-bypass", "main");
    let mut p = StandIn::baseline_protection(1, &[]);
    p["enforce_admins"] = json!(false);
    p["required_pull_request_reviews"]["require_code_owner_reviews"] = json!(false);
    gh.set_protection(&admins, p);
    gh.set_codeowners(&admins, true);

    // Stale reviews not dismissed, last push not required, force pushes and
    // deletion allowed, Actions may approve.
    let stale = gh.add_repo("stale", "main");
    let mut p = StandIn::baseline_protection(1, &[]);
    p["required_pull_request_reviews"]["dismiss_stale_reviews"] = json!(false);
    p["required_pull_request_reviews"]["require_last_push_approval"] = json!(false);
    p["allow_force_pushes"] = json!(true);
    p["allow_deletions"] = json!(true);
    gh.set_protection(&stale, p);
    gh.set_workflow(Some(&stale), "write", true);
    gh.add_environment(&stale, "production", &["octocat"], false);
    gh.add_environment(&stale, "prod-eu", &[], false);
    gh.add_environment(&stale, "staging", &[], false);

    // Nothing at all.
    let bare = gh.add_repo("bare", "main");

    // IaC: the gate's repository (from [gate]) at the baseline with the
    // gate's check and hook; an IaC repository by pattern with one approval,
    // no gate check and no hook.
    let deploy = gh.add_repo("deploy", "main");
    gh.set_protection(&deploy, StandIn::baseline_protection(2, &["twokey/plan"]));
    gh.add_hook(&deploy, HOOK);
    let infra = gh.add_repo("infra-net", "main");
    gh.set_protection(&infra, StandIn::baseline_protection(1, &["ci/test"]));
    gh.add_hook(&infra, "https://ci.example.com/hook");

    let (fs, facts) = scan(&gh, config("")).await;
    let b = |r: &str| {
        let d = facts
            .repos
            .iter()
            .find(|x| x.full_name == r)
            .map(|x| x.default_branch.clone())
            .unwrap_or_default();
        format!("{r}@{d}")
    };
    use Status::{Fail, Pass};

    for (check, pass, fail) in [
        ("github.pull_request_required", &good, &bare),
        ("github.pull_request_required", &rs_only, &eval),
        ("github.required_approvals", &good, &infra),
        ("github.required_approvals", &deploy, &bare),
        ("github.dismiss_stale_reviews", &good, &stale),
        ("github.last_push_approval", &rs_only, &stale),
        ("github.code_owner_review", &good, &admins),
        ("github.no_bypass", &good, &admins),
        ("github.no_bypass", &glass, &bypass),
        ("github.rulesets_enforced", &rs_only, &eval),
        ("github.force_push_blocked", &rs_only, &stale),
        ("github.force_push_blocked", &good, &eval),
        ("github.deletion_blocked", &good, &stale),
        ("github.gate_status_check", &deploy, &infra),
    ] {
        assert_eq!(
            status(&fs, check, &b(pass)),
            Pass,
            "{check} should pass on {pass}: {fs:#?}"
        );
        assert_eq!(
            status(&fs, check, &b(fail)),
            Fail,
            "{check} should fail on {fail}"
        );
    }
    // Code owners only where a CODEOWNERS file exists; the gate only on IaC.
    assert!(none_for(&fs, "github.code_owner_review", &b(&stale)));
    assert!(none_for(&fs, "github.gate_status_check", &b(&good)));
    assert_eq!(status(&fs, "github.gate_installed", &deploy), Pass);
    assert_eq!(status(&fs, "github.gate_installed", &infra), Fail);
    assert!(none_for(&fs, "github.gate_installed", &good));
    // IaC repositories need two approvals: one is not enough.
    let infra_facts = facts
        .repos
        .iter()
        .find(|r| r.full_name == infra)
        .expect("infra");
    assert!(infra_facts.iac && infra_facts.required_approvals == 2);
    // Actions and the workflow token: organisation and repositories.
    assert_eq!(status(&fs, "github.actions_cannot_approve", ORG), Fail);
    assert_eq!(status(&fs, "github.workflow_token_read_only", ORG), Fail);
    assert_eq!(status(&fs, "github.actions_cannot_approve", &good), Pass);
    assert_eq!(status(&fs, "github.actions_cannot_approve", &stale), Fail);
    assert_eq!(status(&fs, "github.workflow_token_read_only", &good), Pass);
    assert_eq!(status(&fs, "github.workflow_token_read_only", &stale), Fail);
    // Production environments (by name pattern; staging is not one).
    let env = |r: &str, e: &str| format!("{r}/environments/{e}");
    assert_eq!(
        status(
            &fs,
            "github.environment_reviewers",
            &env(&good, "production")
        ),
        Pass
    );
    assert_eq!(
        status(
            &fs,
            "github.environment_reviewers",
            &env(&stale, "production")
        ),
        Fail
    );
    assert_eq!(
        status(&fs, "github.environment_reviewers", &env(&stale, "prod-eu")),
        Fail
    );
    assert!(none_for(
        &fs,
        "github.environment_reviewers",
        &env(&stale, "staging")
    ));
    // The bypass finding names the team.
    let f = fs
        .iter()
        .find(|f| f.check == "github.no_bypass" && f.resource == b(&bypass))
        .expect("finding");
    assert!(f.message.contains("Team/234"), "{}", f.message);
    // No error anywhere: every call the collection made was answered.
    let errors: Vec<&Finding> = fs.iter().filter(|f| f.status == Status::Error).collect();
    assert!(errors.is_empty(), "{errors:#?}");

    // Phase B: the organisation is strict; it binds every repository, whose
    // own setting is then not read.
    gh.set_workflow(None, "read", false);
    let (fs, _) = scan(&gh, config("")).await;
    assert_eq!(status(&fs, "github.actions_cannot_approve", ORG), Pass);
    assert_eq!(status(&fs, "github.workflow_token_read_only", ORG), Pass);
    assert!(none_for(&fs, "github.actions_cannot_approve", &stale));

    // A raised class: payments repositories need two approvals.
    let (fs, _) = scan(
        &gh,
        config("[[posture.github.class]]\nname = \"strict\"\nrepos = [\"good\"]\napprovals = 2\n"),
    )
    .await;
    assert_eq!(status(&fs, "github.required_approvals", &b(&good)), Fail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_scan_is_answered_not_modified_and_unreadable_parts_are_errors() {
    let Some(spec) = Spec::load() else { return };
    let gh = StandIn::start(spec, ORG).await.expect("stand-in");
    let r = gh.add_repo("good", "main");
    gh.set_protection(&r, StandIn::baseline_protection(1, &[]));
    // Every read answers 200 with an ETag (a 404, like GitHub's for a
    // missing CODEOWNERS, carries none and is asked again in full).
    gh.set_codeowners(&r, true);
    let client = Arc::new(RestGitHub::new(&gh.url, "x").expect("client"));
    let scope = Arc::new(Scope {
        config: config(""),
        gate_repos: vec![],
    });
    collect::collect(client.clone(), scope.clone(), 0)
        .await
        .expect("first");
    let first = client.counts();
    collect::collect(client.clone(), scope.clone(), 0)
        .await
        .expect("second");
    let second = client.counts();
    let n = second.requests - first.requests;
    assert!(
        n > 0 && second.not_modified - first.not_modified == n,
        "{first:?} {second:?}"
    );
    assert_eq!(gh.counts().1, n);

    // A refused token: every check that needed the calls is an error, never a pass.
    gh.require_token("other");
    let fresh = Arc::new(RestGitHub::new(&gh.url, "x").expect("client"));
    let e = collect::collect(fresh, scope, 0)
        .await
        .expect_err("the list fails");
    assert!(e.contains("401"), "{e}");
}
