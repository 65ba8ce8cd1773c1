//! Real time and two-person restore, through the gate's webhook endpoint:
//! a signed `branch_protection_rule` event (the real example from
//! `@octokit/webhooks-examples`) after an admin deleted the protection of an
//! IaC repository gives a regression in the ledger that alerts, and, with
//! `action = "propose"`, a restore proposal; its proposer cannot approve it;
//! after a second admin approves, the stand-in shows the restored
//! protection and the re-check passes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::Row;
use twokey_core::Policy;
use twokey_gate::config::GateConfig;
use twokey_gate::db::GateDb;
use twokey_gate::gate::ApiCheckout;
use twokey_gate::github::RestGitHub;
use twokey_gate::testing::{deliver, Fixtures};
use twokey_gate::webhook::sign;
use twokey_gate::Gate;
use twokey_posture_github::collect::Scope;
use twokey_posture_github::standin::{Spec, StandIn};
use twokey_posture_github::watch::Watcher;
use twokey_posture_github::GithubPostureConfig;
use twokey_server::{Broker, BrokerOptions, SystemClock};
use twokey_store::Store;

const ORG: &str = "acme";
const SECRET: &[u8] = b"a-webhook-secret-of-some-length";
const HOOK: &str = "https://twokey.example.com/v1/gate/github";

const POLICY: &str = r#"
[admins]
groups = ["admins"]
approvals = 1

[[identity]]
name = "bob"
groups = ["admins"]
[[identity]]
name = "carol"
groups = ["admins"]
[[identity]]
name = "erin"
groups = ["eng"]
"#;

struct World {
    _dir: tempfile::TempDir,
    gh: StandIn,
    store: Store,
    watcher: Arc<Watcher>,
    url: String,
    tokens: std::collections::BTreeMap<String, String>,
    http: reqwest::Client,
    fixtures: Fixtures,
}

/// The databases every test here runs on: SQLite and PostgreSQL.
async fn backends(prefix: &str) -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let urls = twokey_store::testing::both(dir.path(), prefix).await;
    (dir, urls)
}

async fn start(action: &str, url: &str) -> Option<World> {
    let spec = Spec::load()?;
    let fixtures = Fixtures::load()?;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(url).await.expect("store");
    let gh = StandIn::start(spec, ORG).await.expect("stand-in");
    gh.require_token("tok");
    gh.set_workflow(None, "read", false);
    let deploy = gh.add_repo("deploy", "main");
    gh.set_protection(&deploy, StandIn::baseline_protection(2, &["twokey/plan"]));
    gh.add_hook(&deploy, HOOK);
    let other = gh.add_repo("website", "main");
    gh.set_protection(&other, StandIn::baseline_protection(1, &[]));

    let policy = Policy::parse(POLICY, "test policy").expect("policy");
    let (broker, _) = Broker::start(
        store.clone(),
        policy,
        twokey_providers::Registry::with_builtin(),
        Default::default(),
        Arc::new(SystemClock),
        vec![],
        BrokerOptions::default(),
    )
    .await
    .expect("broker");
    let mut tokens = std::collections::BTreeMap::new();
    for id in &broker.policy().policy.identities {
        let t = twokey_server::new_token();
        broker
            .store()
            .put_token(
                &twokey_server::token_hash(&t),
                &id.actor(),
                broker.now(),
                None,
            )
            .await
            .expect("token");
        tokens.insert(id.name.clone(), t);
    }
    let cfg = GithubPostureConfig::parse_file(
        &format!("[posture.github]\norg = \"{ORG}\"\ngate_webhook_url = \"{HOOK}\"\naction = \"{action}\"\ninterval = \"1h\"\n"),
        "t.toml",
    )
    .expect("config")
    .expect("table");
    let client = Arc::new(RestGitHub::new(&gh.url, "tok").expect("client"));
    let base = cfg.baseline(false);
    let watcher = Arc::new(Watcher::new(
        Scope {
            config: cfg,
            gate_repos: vec![format!("{ORG}/deploy")],
        },
        base,
        client,
        store.clone(),
        "node-a",
    ));
    let gate_github: Arc<dyn twokey_gate::github::GitHub> =
        Arc::new(RestGitHub::new(&gh.url, "tok").expect("client"));
    let gate = Gate::new(
        GateConfig::parse(&format!(
            "[gate]\nallow = [\"{ORG}/deploy\"]\nworkdir = \"{}\"\n",
            dir.path().join("work").display()
        ))
        .expect("gate config"),
        SECRET.to_vec(),
        GateDb::new(store.clone()),
        gate_github.clone(),
        Arc::new(ApiCheckout {
            github: gate_github,
            max_bytes: 1 << 20,
        }),
    )
    .with_settings_watcher(watcher.clone());
    let app = twokey_gate::router(Arc::new(gate)).merge(twokey_posture_github::watch::router(
        watcher.clone(),
        broker.clone(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("server: {e}");
        }
    });
    Some(World {
        _dir: dir,
        gh,
        store,
        watcher,
        url,
        tokens,
        http: reqwest::Client::new(),
        fixtures,
    })
}

/// The real `branch_protection_rule` example with our repository.
fn protection_event(w: &World, repo: &str, action: &str, sender: &str) -> Vec<u8> {
    let mut v = w
        .fixtures
        .example("branch_protection_rule", action, |_| true)
        .expect("webhooks-examples has branch_protection_rule");
    v["repository"]["full_name"] = json!(repo);
    v["organization"]["login"] = json!(ORG);
    v["sender"]["login"] = json!(sender);
    serde_json::to_vec(&v).expect("json")
}

async fn ledger(store: &Store) -> Vec<(String, bool, Value)> {
    store
        .ledger(0, 10_000)
        .await
        .expect("ledger")
        .into_iter()
        // Entries carry no alert flag; that they alert is checked through
        // the alert outbox (one `alerts` row per regression).
        .map(|e| (e.kind, false, e.data))
        .collect()
}

async fn api(w: &World, who: &str, method: reqwest::Method, path: &str) -> (u16, Value) {
    let r = w
        .http
        .request(method, format!("{}{path}", w.url))
        .bearer_auth(&w.tokens[who])
        .send()
        .await
        .expect("call");
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protection_turned_off_alerts_proposes_and_is_restored_by_a_second_person() {
    let (_d, urls) = backends("gh_rt_ptoapairbasp").await;
    for url in urls {
        protection_turned_off_alerts_proposes_and_is_restored_by_a_second_person_on(&url).await;
    }
}

async fn protection_turned_off_alerts_proposes_and_is_restored_by_a_second_person_on(url: &str) {
    let Some(w) = start("propose", url).await else {
        return;
    };
    // The baseline: a scheduled scan records every check as it stands.
    let first = w.watcher.scan_once().await.expect("scan").expect("lease");
    assert!(first.regressions.is_empty(), "{first:?}");

    // An admin deletes the protection; GitHub sends the event.
    let deploy = format!("{ORG}/deploy");
    w.gh.delete_protection(&deploy);
    let body = protection_event(&w, &deploy, "deleted", "mallory");
    let hook = format!("{}/v1/gate/github", w.url);
    let t = Instant::now();
    let (status, text) = deliver(
        &w.http,
        &hook,
        "branch_protection_rule",
        "d-1",
        &sign(SECRET, &body),
        &body,
    )
    .await
    .expect("deliver");
    let took = t.elapsed();
    assert_eq!(status, 200, "{text}");
    assert!(took < Duration::from_secs(5), "re-check took {took:?}");
    assert!(text.contains("regression"), "{text}");

    // In the ledger, alerting, with who did it; and in the alert outbox.
    let l = ledger(&w.store).await;
    let regs: Vec<&(String, bool, Value)> = l
        .iter()
        .filter(|e| e.0 == "posture.github.regression")
        .collect();
    let checks: Vec<&str> = regs.iter().filter_map(|e| e.2["check"].as_str()).collect();
    for c in [
        "github.pull_request_required",
        "github.gate_status_check",
        "github.force_push_blocked",
    ] {
        assert!(checks.contains(&c), "{c} not among {checks:?}");
    }
    assert!(regs
        .iter()
        .all(|e| e.2["sender"] == "mallory"
            && e.2["cause"].as_str().is_some_and(|c| c.contains("d-1"))));
    let alerts: i64 =
        sqlx::query("SELECT COUNT(*) FROM alerts WHERE kind = 'posture.github.regression'")
            .fetch_one(w.store.pool())
            .await
            .expect("alerts")
            .try_get(0)
            .expect("count");
    assert_eq!(alerts as usize, regs.len());

    // A restore proposal with the exact call.
    let (s, list) = api(
        &w,
        "bob",
        reqwest::Method::GET,
        "/v1/posture/github/restores",
    )
    .await;
    assert_eq!(s, 200, "{list}");
    let p = list
        .as_array()
        .and_then(|a| a.first())
        .cloned()
        .expect("a proposal");
    assert_eq!(p["state"], "open");
    assert_eq!(p["resource"], deploy);
    let call = &p["calls"][0];
    assert_eq!(call["method"], "PUT");
    assert_eq!(
        call["path"],
        format!("/repos/{deploy}/branches/main/protection")
    );
    assert_eq!(
        call["body"]["required_pull_request_reviews"]["required_approving_review_count"],
        2
    );
    let id = p["id"].as_str().expect("id").to_string();
    // A redelivery of the same event is refused as a replay: no second proposal.
    let (s, _) = deliver(
        &w.http,
        &hook,
        "branch_protection_rule",
        "d-1",
        &sign(SECRET, &body),
        &body,
    )
    .await
    .expect("deliver");
    assert_eq!(s, 200);
    let (_, list) = api(
        &w,
        "bob",
        reqwest::Method::GET,
        "/v1/posture/github/restores",
    )
    .await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));

    // Nobody approves before someone proposes; a non-admin cannot propose.
    let (s, _) = api(
        &w,
        "carol",
        reqwest::Method::POST,
        &format!("/v1/posture/github/restores/{id}/approve"),
    )
    .await;
    assert_eq!(s, 409);
    let (s, _) = api(
        &w,
        "erin",
        reqwest::Method::POST,
        &format!("/v1/posture/github/restores/{id}/propose"),
    )
    .await;
    assert_eq!(s, 403);
    let (s, v) = api(
        &w,
        "bob",
        reqwest::Method::POST,
        &format!("/v1/posture/github/restores/{id}/propose"),
    )
    .await;
    assert_eq!((s, v["state"].as_str()), (200, Some("proposed")), "{v}");
    // The proposer cannot approve it.
    let (s, v) = api(
        &w,
        "bob",
        reqwest::Method::POST,
        &format!("/v1/posture/github/restores/{id}/approve"),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    assert!(
        w.gh.protection(&deploy).is_none(),
        "nothing applied on a refused approval"
    );
    // A second person approves: twokey applies it and re-checks.
    let (s, v) = api(
        &w,
        "carol",
        reqwest::Method::POST,
        &format!("/v1/posture/github/restores/{id}/approve"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "applied", "{v}");
    let p = w.gh.protection(&deploy).expect("restored");
    assert_eq!(
        p["required_pull_request_reviews"]["required_approving_review_count"],
        2
    );
    assert_eq!(
        p["required_pull_request_reviews"]["require_last_push_approval"],
        true
    );
    assert_eq!(p["enforce_admins"]["enabled"], true);
    assert_eq!(p["allow_force_pushes"]["enabled"], false);
    assert!(p["required_status_checks"]["contexts"]
        .as_array()
        .is_some_and(|c| c.contains(&json!("twokey/plan"))));
    assert_eq!(
        w.gh.writes(),
        vec![format!("PUT /repos/{deploy}/branches/main/protection")]
    );

    // Every step is in the ledger, in order.
    let kinds: Vec<String> = ledger(&w.store)
        .await
        .into_iter()
        .map(|e| e.0)
        .filter(|k| k.starts_with("posture.github.restore"))
        .collect();
    assert_eq!(
        kinds,
        [
            "posture.github.restore_opened",
            "posture.github.restore_proposed",
            "posture.github.restore_refused",
            "posture.github.restore_approved",
            "posture.github.restore_applied"
        ]
    );
    // A second approval of an applied restore is refused.
    let (s, _) = api(
        &w,
        "carol",
        reqwest::Method::POST,
        &format!("/v1/posture/github/restores/{id}/approve"),
    )
    .await;
    assert_eq!(s, 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_mode_alerts_without_a_proposal_and_unsigned_events_are_refused() {
    let (_d, urls) = backends("gh_rt_amawapauear").await;
    for url in urls {
        alert_mode_alerts_without_a_proposal_and_unsigned_events_are_refused_on(&url).await;
    }
}

async fn alert_mode_alerts_without_a_proposal_and_unsigned_events_are_refused_on(url: &str) {
    let Some(w) = start("alert", url).await else {
        return;
    };
    w.watcher.scan_once().await.expect("scan").expect("lease");
    let site = format!("{ORG}/website");
    // An admin switches enforce_admins off.
    w.gh.edit_protection(&site, |p| p["enforce_admins"]["enabled"] = json!(false));
    let body = protection_event(&w, &site, "edited", "mallory");
    let hook = format!("{}/v1/gate/github", w.url);
    // Unsigned (a wrong secret): refused before anything is read.
    let (s, _) = deliver(
        &w.http,
        &hook,
        "branch_protection_rule",
        "d-9",
        &sign(b"not-the-secret-at-all", &body),
        &body,
    )
    .await
    .expect("deliver");
    assert_eq!(s, 401);
    assert!(!ledger(&w.store)
        .await
        .iter()
        .any(|e| e.0 == "posture.github.regression"));
    let (s, text) = deliver(
        &w.http,
        &hook,
        "branch_protection_rule",
        "d-10",
        &sign(SECRET, &body),
        &body,
    )
    .await
    .expect("deliver");
    assert_eq!(s, 200, "{text}");
    let l = ledger(&w.store).await;
    let regs: Vec<&Value> = l
        .iter()
        .filter(|e| e.0 == "posture.github.regression")
        .map(|e| &e.2)
        .collect();
    assert_eq!(regs.len(), 1, "{regs:?}");
    assert_eq!(regs[0]["check"], "github.no_bypass");
    let (_, list) = api(
        &w,
        "bob",
        reqwest::Method::GET,
        "/v1/posture/github/restores",
    )
    .await;
    assert_eq!(list, json!([]));
    // An event about another organisation's repository is not this posture's.
    let body = protection_event(&w, "evil/thing", "edited", "x");
    let mut v: Value = serde_json::from_slice(&body).expect("json");
    v["organization"]["login"] = json!("evil");
    let body = serde_json::to_vec(&v).expect("json");
    let (s, text) = deliver(
        &w.http,
        &hook,
        "branch_protection_rule",
        "d-11",
        &sign(SECRET, &body),
        &body,
    )
    .await
    .expect("deliver");
    assert_eq!(s, 200);
    assert!(text.contains("another organisation"), "{text}");
}

/// Writes a proposal's row as if the approval had committed and the process
/// stopped before (or while) making the calls.
async fn crash_after_approval(w: &World, id: &str, applying_since: Option<i64>) {
    let (_, mut p) = api(
        w,
        "bob",
        reqwest::Method::GET,
        &format!("/v1/posture/github/restores/{id}"),
    )
    .await;
    let version = p["version"].as_i64().expect("version");
    p["state"] = json!("approved");
    p["approved_by"] = json!({"issuer": "twokey", "subject": "carol"});
    p["version"] = json!(version + 1);
    if let Some(t) = applying_since {
        p["applying_since"] = json!(t);
    }
    let done = sqlx::query(
        "UPDATE github_restores SET state = 'approved', doc = $1, version = $2 WHERE id = $3 AND version = $4",
    )
    .bind(p.to_string())
    .bind(version + 1)
    .bind(id)
    .bind(version)
    .execute(w.store.pool())
    .await
    .expect("update");
    assert_eq!(done.rows_affected(), 1);
}

/// An approved restore whose apply was interrupted is made by the next
/// scheduled scan; one a live writer took up within the lease is left to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_restore_is_resumed_by_the_next_scan() {
    let (_d, urls) = backends("gh_rt_airirbtns").await;
    for url in urls {
        an_interrupted_restore_is_resumed_by_the_next_scan_on(&url).await;
    }
}

async fn an_interrupted_restore_is_resumed_by_the_next_scan_on(url: &str) {
    let Some(w) = start("propose", url).await else {
        return;
    };
    w.watcher.scan_once().await.expect("scan").expect("lease");
    let deploy = format!("{ORG}/deploy");
    w.gh.delete_protection(&deploy);
    let body = protection_event(&w, &deploy, "deleted", "mallory");
    let hook = format!("{}/v1/gate/github", w.url);
    let (status, text) = deliver(
        &w.http,
        &hook,
        "branch_protection_rule",
        "d-9",
        &sign(SECRET, &body),
        &body,
    )
    .await
    .expect("deliver");
    assert_eq!(status, 200, "{text}");
    let (_, list) = api(
        &w,
        "bob",
        reqwest::Method::GET,
        "/v1/posture/github/restores",
    )
    .await;
    let id = list[0]["id"].as_str().expect("id").to_string();
    let (s, v) = api(
        &w,
        "bob",
        reqwest::Method::POST,
        &format!("/v1/posture/github/restores/{id}/propose"),
    )
    .await;
    assert_eq!(s, 200, "{v}");

    // Taken up a moment ago by a live writer: the scan leaves it.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .expect("clock");
    crash_after_approval(&w, &id, Some(now)).await;
    w.watcher.scan_once().await.expect("scan");
    let (_, v) = api(
        &w,
        "bob",
        reqwest::Method::GET,
        &format!("/v1/posture/github/restores/{id}"),
    )
    .await;
    assert_eq!(v["state"], "approved", "{v}");
    assert!(
        w.gh.protection(&deploy).is_none(),
        "applied by the scan while a writer held it"
    );

    // Taken up long ago (the process died): the scan makes the calls.
    let (_, cur) = api(
        &w,
        "bob",
        reqwest::Method::GET,
        &format!("/v1/posture/github/restores/{id}"),
    )
    .await;
    let version = cur["version"].as_i64().expect("version");
    let mut stale = cur.clone();
    stale["applying_since"] = json!(1);
    sqlx::query("UPDATE github_restores SET doc = $1 WHERE id = $2 AND version = $3")
        .bind(stale.to_string())
        .bind(&id)
        .bind(version)
        .execute(w.store.pool())
        .await
        .expect("stale claim");
    w.watcher.scan_once().await.expect("scan");
    let (_, v) = api(
        &w,
        "bob",
        reqwest::Method::GET,
        &format!("/v1/posture/github/restores/{id}"),
    )
    .await;
    assert_eq!(v["state"], "applied", "{v}");
    let p = w.gh.protection(&deploy).expect("restored");
    assert_eq!(
        p["required_pull_request_reviews"]["required_approving_review_count"], 2,
        "{p}"
    );
    let applied = ledger(&w.store)
        .await
        .into_iter()
        .filter(|e| e.0 == "posture.github.restore_applied")
        .count();
    assert_eq!(applied, 1);
    // Nothing left to resume.
    assert_eq!(w.watcher.resume_approved().await.expect("resume"), 0);
}

async fn break_ledger(store: &Store) {
    twokey_store::testing::break_ledger(store)
        .await
        .expect("break the ledger");
}

async fn mend_ledger(store: &Store) {
    twokey_store::testing::mend_ledger(store)
        .await
        .expect("mend the ledger");
}

async fn restore_row(store: &Store, id: &str) -> (String, i64) {
    let r = sqlx::query("SELECT state, version FROM github_restores WHERE id = $1")
        .bind(id)
        .fetch_one(store.pool())
        .await
        .expect("row");
    (r.try_get(0).expect("state"), r.try_get(1).expect("version"))
}

/// A restore step and its ledger entry are one transaction: with the
/// ledger down, proposing and approving are refused and the proposal does
/// not move; no proposal is opened without its entry either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_step_without_its_ledger_entry_does_not_happen() {
    let (_d, urls) = backends("gh_rt_fc").await;
    for url in urls {
        a_restore_step_without_its_ledger_entry_does_not_happen_on(&url).await;
    }
}

async fn a_restore_step_without_its_ledger_entry_does_not_happen_on(url: &str) {
    let Some(w) = start("propose", url).await else {
        return;
    };
    w.watcher.scan_once().await.expect("scan").expect("lease");
    let deploy = format!("{ORG}/deploy");
    let hook = format!("{}/v1/gate/github", w.url);

    // The ledger is down when the regression arrives: no proposal row.
    w.gh.delete_protection(&deploy);
    break_ledger(&w.store).await;
    let body = protection_event(&w, &deploy, "deleted", "mallory");
    // However the delivery is answered, nothing may move without evidence.
    deliver(
        &w.http,
        &hook,
        "branch_protection_rule",
        "d-fc-1",
        &sign(SECRET, &body),
        &body,
    )
    .await
    .expect("deliver");
    let rows: i64 = sqlx::query("SELECT COUNT(*) FROM github_restores")
        .fetch_one(w.store.pool())
        .await
        .expect("count")
        .try_get(0)
        .expect("count");
    assert_eq!(rows, 0, "a proposal without its ledger entry");
    mend_ledger(&w.store).await;

    // With the ledger back, the next event opens it.
    let (status, text) = deliver(
        &w.http,
        &hook,
        "branch_protection_rule",
        "d-fc-2",
        &sign(SECRET, &body),
        &body,
    )
    .await
    .expect("deliver");
    assert_eq!(status, 200, "{text}");
    let (_, list) = api(
        &w,
        "bob",
        reqwest::Method::GET,
        "/v1/posture/github/restores",
    )
    .await;
    let id = list[0]["id"].as_str().expect("a proposal").to_string();
    let before = restore_row(&w.store, &id).await;
    assert_eq!(before.0, "open");

    // Down again: proposing is refused and the row stays where it was.
    break_ledger(&w.store).await;
    let (s, v) = api(
        &w,
        "bob",
        reqwest::Method::POST,
        &format!("/v1/posture/github/restores/{id}/propose"),
    )
    .await;
    assert!(s >= 500, "{s} {v}");
    assert_eq!(restore_row(&w.store, &id).await, before);
    mend_ledger(&w.store).await;

    let (s, v) = api(
        &w,
        "bob",
        reqwest::Method::POST,
        &format!("/v1/posture/github/restores/{id}/propose"),
    )
    .await;
    assert_eq!((s, v["state"].as_str()), (200, Some("proposed")), "{v}");
    let proposed = restore_row(&w.store, &id).await;

    // Approval with the ledger down: refused, nothing applied at GitHub.
    break_ledger(&w.store).await;
    let (s, v) = api(
        &w,
        "carol",
        reqwest::Method::POST,
        &format!("/v1/posture/github/restores/{id}/approve"),
    )
    .await;
    assert!(s >= 500, "{s} {v}");
    assert_eq!(restore_row(&w.store, &id).await, proposed);
    assert!(
        w.gh.writes().is_empty(),
        "no call without the approval's entry: {:?}",
        w.gh.writes()
    );
    mend_ledger(&w.store).await;
}

#[tokio::test]
async fn an_environment_that_lets_the_deployer_approve_is_restored_with_its_own_reviewers() {
    let (_d, urls) = backends("gh_rt_aetltdaiirwior").await;
    for url in urls {
        an_environment_that_lets_the_deployer_approve_is_restored_with_its_own_reviewers_on(&url)
            .await;
    }
}

async fn an_environment_that_lets_the_deployer_approve_is_restored_with_its_own_reviewers_on(
    url: &str,
) {
    let Some(w) = start("propose", url).await else {
        return;
    };
    let site = format!("{ORG}/website");
    w.gh.add_environment(&site, "production", &["octocat"], true);
    w.gh.add_environment(&site, "prod-eu", &["octocat"], true);
    let first = w.watcher.scan_once().await.expect("scan").expect("lease");
    assert!(first.regressions.is_empty(), "{first:?}");
    let reviewer_before = w.gh.environment(&site, "production").expect("env")["protection_rules"]
        .as_array()
        .and_then(|r| {
            r.iter()
                .find(|x| x["type"] == "required_reviewers")
                .cloned()
        })
        .expect("required_reviewers rule")["reviewers"]
        .clone();

    // An admin lets the deployer approve their own run in production, and
    // removes every reviewer of prod-eu (GitHub sends no event for either).
    let put = |env: &str, body: Value| {
        let (http, gh, site) = (w.http.clone(), w.gh.url.clone(), site.clone());
        let env = env.to_string();
        async move {
            let r = http
                .put(format!("{gh}/repos/{site}/environments/{env}"))
                .bearer_auth("tok")
                .json(&body)
                .send()
                .await
                .expect("put");
            assert!(r.status().is_success(), "{}", r.status());
        }
    };
    put("production", json!({ "prevent_self_review": false })).await;
    put("prod-eu", json!({ "reviewers": [] })).await;
    let second = w.watcher.scan_once().await.expect("scan").expect("lease");
    assert!(!second.regressions.is_empty(), "{second:?}");

    // One proposal for the repository: production gets its own reviewers back
    // with prevent_self_review; prod-eu, with no reviewer to restore and none
    // in the baseline, is only alerted (no call).
    let (s, list) = api(
        &w,
        "bob",
        reqwest::Method::GET,
        "/v1/posture/github/restores",
    )
    .await;
    assert_eq!(s, 200, "{list}");
    let p = list
        .as_array()
        .and_then(|a| a.iter().find(|p| p["resource"] == site.as_str()))
        .cloned()
        .expect("a proposal for the repository");
    let calls = p["calls"].as_array().cloned().unwrap_or_default();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["method"], "PUT");
    assert_eq!(
        calls[0]["path"],
        format!("/repos/{site}/environments/production")
    );
    assert_eq!(calls[0]["body"]["prevent_self_review"], true);
    assert_eq!(
        calls[0]["body"]["reviewers"][0]["type"],
        reviewer_before[0]["type"]
    );
    assert_eq!(
        calls[0]["body"]["reviewers"][0]["id"],
        reviewer_before[0]["reviewer"]["id"]
    );
    let l = ledger(&w.store).await;
    let regressed: Vec<&str> = l
        .iter()
        .filter(|e| e.0 == "posture.github.regression")
        .filter_map(|e| e.2["resource"].as_str())
        .collect();
    assert!(
        regressed.contains(&format!("{site}/environments/prod-eu").as_str()),
        "{regressed:?}"
    );

    // Two people: bob proposes, carol approves; the stand-in shows it back.
    let id = p["id"].as_str().expect("id").to_string();
    let (s, v) = api(
        &w,
        "bob",
        reqwest::Method::POST,
        &format!("/v1/posture/github/restores/{id}/propose"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = api(
        &w,
        "bob",
        reqwest::Method::POST,
        &format!("/v1/posture/github/restores/{id}/approve"),
    )
    .await;
    assert_eq!(s, 403, "the proposer cannot approve: {v}");
    let (s, v) = api(
        &w,
        "carol",
        reqwest::Method::POST,
        &format!("/v1/posture/github/restores/{id}/approve"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let env = w.gh.environment(&site, "production").expect("env");
    let rule = env["protection_rules"]
        .as_array()
        .and_then(|r| {
            r.iter()
                .find(|x| x["type"] == "required_reviewers")
                .cloned()
        })
        .expect("required_reviewers rule");
    assert_eq!(rule["prevent_self_review"], true, "{env}");
    assert_eq!(rule["reviewers"], reviewer_before, "the same reviewers");
}
