//! Notifications through the outbox, to real receivers on loopback: email to
//! a real SMTP server (PyPI `aiosmtpd`, installed by `scripts/setup-smtp.sh`,
//! writing a maildir) and Slack to a local HTTP receiver. The right people get
//! the right messages with the link; the requester never gets an "approve
//! this" message for their own request, not even as an approver or under a
//! linked SSO identity. Also: an `approver_mfa` entitlement cannot be approved
//! through the bearer-token API.

use crate::support;
use crate::support::State;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use support::{start, urls};
use twokey_notify::notifications::{
    build_notifiers, EmailConfig, NotificationsConfig, SmtpSecurity,
};

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("TWOKEY_AIOSMTPD_PYTHON") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/aiosmtpd/bin/python")
}

/// aiosmtpd on a free loopback port, delivering into a maildir; killed on drop.
struct Smtp {
    child: Child,
    port: u16,
    maildir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone)]
struct Mail {
    to: String,
    subject: String,
    body: String,
}

impl Smtp {
    fn start() -> Option<Smtp> {
        let py = python();
        let ok = py.exists()
            && Command::new(&py)
                .args(["-c", "import aiosmtpd"])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
        if !ok {
            let why = format!(
                "aiosmtpd not found for {}; run scripts/setup-smtp.sh",
                py.display()
            );
            if std::env::var_os("CI").is_some() {
                panic!("{why}");
            }
            eprintln!("SKIPPED: {why}");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let tmp = tempfile::tempdir().expect("tempdir");
        let maildir = tmp.path().join("maildir");
        let child = spawn_smtp(port, &maildir);
        Some(Smtp {
            child,
            port,
            maildir,
            _tmp: tmp,
        })
    }

    /// Stops the server: deliveries to it fail until [`Smtp::restart`].
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port and maildir.
    fn restart(&mut self) {
        self.child = spawn_smtp(self.port, &self.maildir);
    }

    /// Forgets the mail received so far.
    fn clear(&self) {
        for sub in ["new", "cur"] {
            if let Ok(rd) = std::fs::read_dir(self.maildir.join(sub)) {
                for f in rd.flatten() {
                    let _ = std::fs::remove_file(f.path());
                }
            }
        }
    }

    fn mails(&self) -> Vec<Mail> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(rd) = std::fs::read_dir(self.maildir.join(sub)) else {
                continue;
            };
            for f in rd.flatten() {
                let text = std::fs::read_to_string(f.path()).unwrap_or_default();
                out.push(parse_mail(&text));
            }
        }
        out
    }
}

/// aiosmtpd on `port`, delivering into `maildir`; returns once it listens.
fn spawn_smtp(port: u16, maildir: &std::path::Path) -> Child {
    let child = Command::new(python())
        .args(["-m", "aiosmtpd", "-n", "-l"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start aiosmtpd");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "aiosmtpd did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

/// Headers (unfolded) and body of an RFC 5322 message.
fn parse_mail(text: &str) -> Mail {
    let text = text.replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let unfolded = head.replace("\n ", " ").replace("\n\t", " ");
    let header = |name: &str| {
        unfolded
            .lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_default()
    };
    Mail {
        to: header("To"),
        subject: header("Subject"),
        // Plain text may come quoted-printable: undo soft breaks and =3D.
        body: body.replace("=\n", "").replace("=3D", "="),
    }
}

type Posts = Arc<Mutex<Vec<Value>>>;

/// A Slack incoming-webhook stand-in on loopback that keeps what it gets;
/// while `down` is set it answers 500 and counts the refusals.
struct SlackReceiver {
    url: String,
    posts: Posts,
    down: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
}

async fn slack_receiver() -> SlackReceiver {
    let posts: Posts = Arc::default();
    let down = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    let (p, d, r) = (posts.clone(), down.clone(), refused.clone());
    let app = axum::Router::new().route(
        "/services/T0/B0/secret",
        axum::routing::post(move |body: String| {
            let (p, d, r) = (p.clone(), d.clone(), r.clone());
            async move {
                if d.load(Ordering::SeqCst) {
                    r.fetch_add(1, Ordering::SeqCst);
                    return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "down");
                }
                if let Ok(v) = serde_json::from_str::<Value>(&body) {
                    if let Ok(mut g) = p.lock() {
                        g.push(v);
                    }
                }
                (axum::http::StatusCode::OK, "ok")
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/services/T0/B0/secret",
        l.local_addr().expect("addr")
    );
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    SlackReceiver {
        url,
        posts,
        down,
        refused,
    }
}

const SSO: &str = "https://idp.example.com";

fn notify_policy() -> String {
    format!(
        r#"
[[identity]]
name = "alice"
email = "alice@example.com"
groups = ["eng", "approvers"]
links = ["{SSO}|alice-sso"]
[[identity]]
name = "bob"
email = "bob@example.com"
groups = ["approvers"]
[[identity]]
name = "carol"
email = "carol@example.com"
groups = ["approvers"]
[[identity]]
name = "nomail"
groups = ["approvers"]

[[entitlement]]
name = "demo"
provider = "exec"
requester_groups = ["eng"]
max_duration = "1h"
approval = {{ count = 1, from = ["approvers"] }}
[entitlement.target]
grant = ["sh", "-c", "mkdir -p \"$D/grants\" && touch \"$D/grants/$TWOKEY_REQUEST_ID\""]
revoke = ["sh", "-c", "rm -f \"$D/grants/$TWOKEY_REQUEST_ID\""]
check = ["sh", "-c", "test -e \"$D/grants/$TWOKEY_REQUEST_ID\""]

[[entitlement]]
name = "prod-mfa"
provider = "exec"
requester_groups = ["eng"]
max_duration = "1h"
approver_mfa = true
approval = {{ count = 1, from = ["approvers"] }}
[entitlement.target]
grant = ["true"]
revoke = ["true"]
check = ["false"]
"#
    )
}

fn to_of(mails: &[Mail], addr: &str) -> Vec<Mail> {
    mails
        .iter()
        .filter(|m| m.to.contains(addr))
        .cloned()
        .collect()
}

async fn wait_for<F: Fn() -> bool>(what: &str, f: F) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_people_get_the_right_messages_by_email_and_slack() {
    let Some(smtp) = Smtp::start() else { return };
    let slack = slack_receiver().await;
    let (slack_url, posts) = (slack.url.clone(), slack.posts.clone());
    let (_d, urls) = urls("tk_notify").await;
    for url in urls {
        let h = start(url, &notify_policy(), vec![]).await;
        let notifiers = build_notifiers(&NotificationsConfig {
            slack_webhook_url: Some(slack_url.clone()),
            email: Some(EmailConfig {
                host: "127.0.0.1".into(),
                port: Some(smtp.port),
                from: "twokey <twokey@example.com>".into(),
                security: SmtpSecurity::None,
                username: None,
                password: None,
            }),
        })
        .expect("notifiers");
        h.broker.set_notifiers(notifiers);
        // People seen through SSO: erin (an approver) and alice's own SSO
        // subject, linked to her in the policy (still alice).
        for (sub, mail, groups) in [
            ("erin", "erin@example.com", vec!["approvers"]),
            ("alice-sso", "alice.sso@example.com", vec!["approvers"]),
        ] {
            h.broker
                .store()
                .upsert_person(&twokey_store::PersonRow {
                    identity: format!("{SSO}|{sub}"),
                    name: sub.into(),
                    email: Some(mail.into()),
                    groups: groups.into_iter().map(String::from).collect(),
                    seen_at: 0,
                })
                .await
                .expect("person");
        }
        smtp.clear();
        let before_slack = posts.lock().expect("lock").len();
        let new_mails = || smtp.mails();

        // 1. alice asks: every eligible approver with an address is told, with the link.
        let id = h.request("alice", "demo", "30m").await;
        let link = format!("http://127.0.0.1:8080/ui/requests/{id}");
        wait_for("approval mails", || {
            let m = new_mails();
            ["bob@", "carol@", "erin@"]
                .iter()
                .all(|a| to_of(&m, a).iter().any(|x| x.subject.contains(&id)))
        })
        .await;
        let m = new_mails();
        for a in ["bob@example.com", "carol@example.com", "erin@example.com"] {
            let got = to_of(&m, a);
            assert_eq!(got.len(), 1, "{a}: {got:?}");
            assert!(got[0].subject.starts_with("Approval needed"), "{got:?}");
            assert!(got[0].body.contains(&link), "link missing: {}", got[0].body);
            assert!(got[0].body.contains("INC-1 test"), "reason missing");
        }
        for a in ["alice@example.com", "alice.sso@example.com"] {
            assert!(
                to_of(&m, a).is_empty(),
                "the requester was asked to approve: {m:?}"
            );
        }
        wait_for("slack approval post", || {
            posts.lock().expect("lock").len() > before_slack
        })
        .await;
        {
            let p = posts.lock().expect("lock");
            let first = &p[before_slack];
            let text = first["text"].as_str().unwrap_or("");
            assert!(text.contains("Approval needed"), "{first}");
            assert!(text.contains(&link), "{first}");
            assert!(
                text.contains("bob")
                    && text.contains("carol")
                    && text.contains("erin")
                    && text.contains("nomail"),
                "{first}"
            );
            assert!(
                !text.contains("For: alice") && !text.contains(", alice"),
                "{first}"
            );
        }

        // 2. bob approves: alice hears of approval and activation; the other
        // approvers (not bob) hear that bob decided.
        let (s, v) = h.approve("bob", &id).await;
        assert_eq!(s, 200, "{v}");
        h.wait_state(&id, State::Active, 20).await;
        wait_for("decision mails", || {
            let m = new_mails();
            let alice = to_of(&m, "alice@example.com");
            alice.iter().any(|x| x.subject.starts_with("Active"))
                && to_of(&m, "erin@")
                    .iter()
                    .any(|x| x.subject.contains("bob approved"))
                && to_of(&m, "carol@")
                    .iter()
                    .any(|x| x.subject.contains("bob approved"))
        })
        .await;
        let m = new_mails();
        let alice: Vec<String> = to_of(&m, "alice@example.com")
            .into_iter()
            .map(|x| x.subject)
            .collect();
        assert!(
            alice
                .iter()
                .any(|s| s.starts_with("Approved: your request")),
            "{alice:?}"
        );
        assert!(
            alice.iter().any(|s| s.starts_with("Active: your grant")),
            "{alice:?}"
        );
        assert!(
            !alice.iter().any(|s| s.starts_with("Approval needed")),
            "{alice:?}"
        );
        let bob: Vec<String> = to_of(&m, "bob@").into_iter().map(|x| x.subject).collect();
        assert!(
            !bob.iter().any(|s| s.contains("bob approved")),
            "bob is told of his own decision: {bob:?}"
        );

        // 3. carol revokes: alice is told.
        let (s, v) = h
            .call(
                "carol",
                Method::POST,
                &format!("/v1/requests/{id}/revoke"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        wait_for("revoked mail", || {
            to_of(&new_mails(), "alice@example.com")
                .iter()
                .any(|x| x.subject.starts_with("Revoked"))
        })
        .await;

        // 4. A second request, denied by carol: alice is told, and so are
        // the other approvers; carol is not told of her own denial.
        let id2 = h.request("alice", "demo", "30m").await;
        wait_for("second approval mail", || {
            to_of(&new_mails(), "bob@")
                .iter()
                .any(|x| x.subject.contains(&id2))
        })
        .await;
        let (s, v) = h
            .call(
                "carol",
                Method::POST,
                &format!("/v1/requests/{id2}/deny"),
                Some(json!({"comment": "no"})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        wait_for("denied mails", || {
            let m = new_mails();
            to_of(&m, "alice@example.com")
                .iter()
                .any(|x| x.subject.starts_with("Denied") && x.subject.contains(&id2))
                && to_of(&m, "bob@")
                    .iter()
                    .any(|x| x.subject.contains("carol denied"))
                && to_of(&m, "erin@")
                    .iter()
                    .any(|x| x.subject.contains("carol denied"))
        })
        .await;
        let m = new_mails();
        assert!(
            !to_of(&m, "carol@")
                .iter()
                .any(|x| x.subject.contains("carol denied")),
            "carol is told of her own decision"
        );
        for a in ["alice@example.com", "alice.sso@example.com"] {
            assert!(
                !to_of(&m, a)
                    .iter()
                    .any(|x| x.subject.starts_with("Approval needed")),
                "{a} was asked to approve her own request"
            );
        }
        // Every notification was delivered (none left in the outbox).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = h
                .broker
                .store()
                .due_notifications(i64::MAX, 10)
                .await
                .expect("outbox");
            if left.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "undelivered notifications: {:?}",
                left.iter()
                    .map(|r| (&r.kind, r.attempts))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mfa_entitlement_cannot_be_approved_through_the_api() {
    let (_d, urls) = urls("tk_mfa_api").await;
    for url in urls {
        let h = start(url, &notify_policy(), vec![]).await;
        let id = h.request("alice", "prod-mfa", "30m").await;
        let (s, v) = h.approve("bob", &id).await;
        assert_eq!(s, 403, "{v}");
        let detail = v["detail"].as_str().unwrap_or("");
        assert!(detail.contains("security key"), "{detail}");
        assert!(detail.contains(&format!("/ui/requests/{id}")), "{detail}");
        assert_eq!(h.show(&id).await["state"], "pending");
        // Denying needs no key.
        let (s, v) = h
            .call(
                "bob",
                Method::POST,
                &format!("/v1/requests/{id}/deny"),
                Some(json!({"comment": "no"})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        h.stop().await;
    }
}

fn email_and_slack(
    slack_url: &str,
    smtp_port: u16,
) -> Vec<Arc<dyn twokey_notify::notifications::Notifier>> {
    build_notifiers(&NotificationsConfig {
        slack_webhook_url: Some(slack_url.to_string()),
        email: Some(EmailConfig {
            host: "127.0.0.1".into(),
            port: Some(smtp_port),
            from: "twokey <twokey@example.com>".into(),
            security: SmtpSecurity::None,
            username: None,
            password: None,
        }),
    })
    .expect("notifiers")
}

/// Slack posts that mention `id`.
fn posts_about(posts: &Posts, id: &str) -> usize {
    posts
        .lock()
        .expect("lock")
        .iter()
        .filter(|p| p["text"].as_str().unwrap_or("").contains(id))
        .count()
}

async fn wait_outbox_empty(h: &support::Harness) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = h
            .broker
            .store()
            .due_notifications(i64::MAX, 10)
            .await
            .expect("outbox");
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "undelivered notifications");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_one_channel_failed_goes_only_to_the_failed_channel() {
    let Some(mut smtp) = Smtp::start() else {
        return;
    };
    let slack = slack_receiver().await;
    let (_d, urls) = urls("tk_notify_retry").await;
    for url in urls {
        let h = start(url, &notify_policy(), vec![]).await;
        h.broker
            .set_notifiers(email_and_slack(&slack.url, smtp.port));
        smtp.clear();

        // 1. Slack is down: the approval mails go out, Slack refuses and is
        // retried (at least twice), then recovers and gets its one post.
        slack.down.store(true, Ordering::SeqCst);
        let refused_before = slack.refused.load(Ordering::SeqCst);
        let id = h.request("alice", "demo", "30m").await;
        wait_for("approval mails and two refused Slack attempts", || {
            let m = smtp.mails();
            ["bob@", "carol@"]
                .iter()
                .all(|a| to_of(&m, a).iter().any(|x| x.subject.contains(&id)))
                && slack.refused.load(Ordering::SeqCst) >= refused_before + 2
        })
        .await;
        slack.down.store(false, Ordering::SeqCst);
        wait_for("the Slack post after recovery", || {
            posts_about(&slack.posts, &id) >= 1
        })
        .await;
        wait_outbox_empty(&h).await;
        let m = smtp.mails();
        for a in ["bob@example.com", "carol@example.com"] {
            let got: Vec<_> = to_of(&m, a)
                .into_iter()
                .filter(|x| x.subject.contains(&id))
                .collect();
            assert_eq!(got.len(), 1, "{a} got the mail more than once: {got:?}");
        }
        assert_eq!(posts_about(&slack.posts, &id), 1);

        // 2. The other way round: the SMTP server is down, Slack gets its
        // post once while email is retried; the server comes back and each
        // approver gets one mail.
        smtp.stop();
        smtp.clear();
        let id2 = h.request("alice", "demo", "30m").await;
        wait_for("the Slack post while email is down", || {
            posts_about(&slack.posts, &id2) >= 1
        })
        .await;
        // Wait until email has failed at least twice (a retry happened).
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let rows = h
                .broker
                .store()
                .due_notifications(i64::MAX, 10)
                .await
                .expect("outbox");
            if rows
                .iter()
                .any(|r| r.entry.subject == id2 && r.attempts >= 2)
            {
                break;
            }
            assert!(Instant::now() < deadline, "email was not retried");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        smtp.restart();
        wait_for("approval mails after the SMTP server is back", || {
            let m = smtp.mails();
            ["bob@", "carol@"]
                .iter()
                .all(|a| to_of(&m, a).iter().any(|x| x.subject.contains(&id2)))
        })
        .await;
        wait_outbox_empty(&h).await;
        assert_eq!(
            posts_about(&slack.posts, &id2),
            1,
            "Slack got the notification again on the email retry"
        );
        let m = smtp.mails();
        for a in ["bob@example.com", "carol@example.com"] {
            let got = to_of(&m, a)
                .into_iter()
                .filter(|x| x.subject.contains(&id2))
                .count();
            assert_eq!(got, 1, "{a}");
        }
        h.stop().await;
    }
}
