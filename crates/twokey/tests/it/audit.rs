//! Adversarial tests of the ledger through the real store and the real
//! binary: a ledger is built with `Store::commit`, checkpoints are signed by
//! the server's checkpointer, then rows are tampered with directly in SQL
//! (SQLite and PostgreSQL) and `twokey audit verify --database` must fail
//! with a clear message; the untouched ledger must verify (exit 0).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use twokey_core::Event;
use twokey_ledger::bundle::SinkError;
use twokey_ledger::checkpoint::generate_key_file;
use twokey_ledger::{Bundle, Checkpoint, Frontier, NoteSigner};
use twokey_server::checkpoints::{
    BoxFuture, BundleSink, CheckpointOptions, Checkpointer, DirBundleSink,
};
use twokey_server::SystemClock;
use twokey_store::testing::{both, fresh_postgres, fresh_sqlite};
use twokey_store::Store;

const BIN: &str = env!("CARGO_BIN_EXE_twokey");
const ORIGIN: &str = "twokey/test";

fn ev(kind: &str, n: u64) -> Event {
    Event {
        kind: kind.into(),
        actor: "https://idp|alice".into(),
        alert: false,
        data: serde_json::json!({"n": n, "note": format!("hello-{n}"), "ratio": 0.5}),
    }
}

fn dup(s: &NoteSigner) -> NoteSigner {
    NoteSigner::from_key_string(&s.to_key_string()).expect("key")
}

struct Ledger {
    url: String,
    store: Store,
    signer: NoteSigner,
    public_key: String,
    /// A checkpoint exported at size 30 (held by the auditor).
    exported: PathBuf,
    bundles: PathBuf,
}

async fn commit_entries(store: &Store, from: u64, to: u64) {
    let mut i = from;
    while i < to {
        // Batches of 1..=3 events per transaction.
        let n = (i % 3 + 1).min(to - i);
        let events = (i..i + n)
            .map(|k| (format!("req-{k}"), ev("request.created", k)))
            .collect();
        store
            .record(1_700_000_000_000 + i as i64, "policyhash", events)
            .await
            .expect("commit");
        i += n;
    }
}

fn checkpointer(store: &Store, signer: NoteSigner, dir: &Path) -> Checkpointer {
    Checkpointer::new(
        store.clone(),
        signer,
        vec![Arc::new(DirBundleSink::new(dir))],
        Arc::new(SystemClock),
        CheckpointOptions {
            origin: ORIGIN.into(),
            ..Default::default()
        },
    )
}

/// 60 entries, checkpoints at 30 and 60, bundles published, checkpoint 30 exported.
async fn build(url: &str, dir: &Path, tag: &str) -> Ledger {
    let store = Store::open(url).await.expect("open");
    let key_path = dir.join(format!("{tag}.key"));
    let signer = generate_key_file(&key_path, ORIGIN).expect("key");
    let bundles = dir.join(format!("{tag}-bundles"));
    let cp = checkpointer(&store, dup(&signer), &bundles);
    commit_entries(&store, 0, 30).await;
    assert_eq!(cp.sign_if_grown(1).await.expect("sign"), Some(30));
    commit_entries(&store, 30, 60).await;
    assert_eq!(cp.sign_if_grown(1).await.expect("sign"), Some(60));
    assert_eq!(cp.publish_all_now().await.expect("publish"), 2);
    let rows = store.checkpoints().await.expect("checkpoints");
    let exported = dir.join(format!("{tag}-exported-checkpoint"));
    std::fs::write(&exported, &rows[0].note).expect("write");
    Ledger {
        url: url.into(),
        store,
        public_key: signer.verifier().to_string(),
        signer,
        exported,
        bundles,
    }
}

fn verify(l: &Ledger, extra: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .args([
            "audit",
            "verify",
            "--database",
            &l.url,
            "--public-key",
            &l.public_key,
        ])
        .args(extra)
        .output()
        .expect("run twokey");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

async fn sql(store: &Store, q: &str) {
    sqlx::query(q)
        .execute(store.pool())
        .await
        .unwrap_or_else(|e| panic!("{q}: {e}"));
}

fn assert_fails(l: &Ledger, what: &str, extra: &[&str], expect: &[&str]) {
    let (code, text) = verify(l, extra);
    assert_eq!(code, 1, "{what} ({}) was not detected:\n{text}", l.url);
    for e in expect {
        assert!(
            text.contains(e),
            "{what} ({}): message lacks {e:?}:\n{text}",
            l.url
        );
    }
    eprintln!("{what}: {}", text.trim());
}

/// Rewrites entry 3's data, recomputes every leaf, checkpoint and the head
/// consistently, and re-signs the checkpoints with `signer`.
async fn rewrite_history(l: &Ledger, signer: &NoteSigner) {
    let rows = l.store.ledger_raw(0, 1000).await.expect("rows");
    let mut frontier = Frontier::new();
    let mut roots = std::collections::BTreeMap::new();
    for r in &rows {
        let mut e = r.to_entry().expect("entry");
        if e.index == 3 {
            e.data = serde_json::json!({"n": 3, "note": "nothing to see", "ratio": 0.5});
            let data = serde_json::to_string(&e.data).expect("json");
            sqlx::query("UPDATE ledger SET data = $1, leaf_hash = $2 WHERE idx = 3")
                .bind(data)
                .bind(hex::encode(e.leaf_hash()))
                .execute(l.store.pool())
                .await
                .expect("update");
        }
        frontier.push(e.leaf_hash());
        roots.insert(frontier.size(), frontier.root());
    }
    sql(&l.store, "DELETE FROM checkpoints").await;
    for size in [30u64, 60] {
        let note = signer.sign_checkpoint(&Checkpoint::new(ORIGIN, size, roots[&size]));
        sqlx::query(
            "INSERT INTO checkpoints (size, note, created_at, publish_attempts, next_attempt) VALUES ($1, $2, 0, 0, 0)",
        )
        .bind(size as i64)
        .bind(note)
        .execute(l.store.pool())
        .await
        .expect("insert");
    }
    sqlx::query("UPDATE ledger_head SET frontier = $1 WHERE id = 1")
        .bind(hex::encode(frontier.to_bytes()))
        .execute(l.store.pool())
        .await
        .expect("head");
}

fn change_last_char(col: &str) -> String {
    format!(
        "UPDATE ledger SET {col} = substr({col}, 1, length({col}) - 1) || \
         CASE WHEN substr({col}, length({col}), 1) = 'X' THEN 'Y' ELSE 'X' END WHERE idx = 10"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_is_detected_on_both_backends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let skip_pg = std::env::var("TWOKEY_TEST_SKIP_PG").ok().as_deref() == Some("1");
    for backend in 0..2 {
        if backend == 1 && skip_pg {
            continue;
        }
        // A fresh database per scenario.
        let d = dir.path().to_path_buf();
        let next = move || {
            let d = d.clone();
            async move {
                if backend == 0 {
                    Some(fresh_sqlite(&d))
                } else {
                    Some(
                        fresh_postgres("twokey_audit")
                            .await
                            .expect("PostgreSQL is required (or set TWOKEY_TEST_SKIP_PG=1)"),
                    )
                }
            }
        };
        let Some(url) = next().await else { continue };
        let tag = format!("b{backend}");
        let l = build(&url, dir.path(), &tag).await;

        // Untouched: database, with the exported checkpoint, and the bundle directory.
        let (code, text) = verify(&l, &[]);
        assert_eq!(code, 0, "untouched ledger ({url}) failed:\n{text}");
        assert!(text.contains("ok: 60 entries"), "{text}");
        let cp = l.exported.display().to_string();
        let (code, text) = verify(&l, &["--checkpoint", &cp]);
        assert_eq!(code, 0, "{text}");
        assert!(text.contains("extends the trusted checkpoint"), "{text}");
        let out = Command::new(BIN)
            .args(["audit", "verify", "--bundle"])
            .arg(&l.bundles)
            .args(["--public-key", &l.public_key, "--checkpoint", &cp])
            .output()
            .expect("run");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );

        // One byte of each column of entry 10.
        let cases: Vec<(&str, String, Vec<&str>)> = vec![
            (
                "time_ms",
                "UPDATE ledger SET time_ms = time_ms + 1 WHERE idx = 10".into(),
                vec![
                    "hash does not match checkpoint of size 30",
                    "hint: entry 10",
                ],
            ),
            (
                "kind",
                change_last_char("kind"),
                vec![
                    "hash does not match checkpoint of size 30",
                    "hint: entry 10",
                ],
            ),
            (
                "actor",
                change_last_char("actor"),
                vec!["hash does not match", "hint: entry 10"],
            ),
            (
                "subject",
                change_last_char("subject"),
                vec!["hash does not match", "hint: entry 10"],
            ),
            (
                "policy_hash",
                change_last_char("policy_hash"),
                vec!["hash does not match", "hint: entry 10"],
            ),
            (
                "data",
                "UPDATE ledger SET data = REPLACE(data, 'hello-10', 'hello-1X') WHERE idx = 10"
                    .into(),
                vec!["hash does not match", "hint: entry 10"],
            ),
            (
                "data (not JSON)",
                change_last_char("data"),
                vec!["entry 10: data column is not JSON"],
            ),
            (
                "idx",
                "UPDATE ledger SET idx = 1010 WHERE idx = 10".into(),
                vec!["entry 10: missing"],
            ),
            (
                "leaf_hash",
                change_last_char("leaf_hash"),
                vec!["entry 10: its stored leaf_hash does not match"],
            ),
        ];
        for (col, q, expect) in cases {
            let Some(url) = next().await else { break };
            let l = build(
                &url,
                dir.path(),
                &format!("{tag}-{}", col.replace(' ', "_").replace(['(', ')'], "")),
            )
            .await;
            sql(&l.store, &q).await;
            assert_fails(&l, &format!("changed {col}"), &[], &expect);
        }

        // Delete one entry.
        let Some(url) = next().await else { continue };
        let l = build(&url, dir.path(), &format!("{tag}-del")).await;
        sql(&l.store, "DELETE FROM ledger WHERE idx = 12").await;
        assert_fails(
            &l,
            "deleted entry",
            &[],
            &["entry 12: missing, found entry 13"],
        );

        // Swap two entries (positions and contents).
        let Some(url) = next().await else { continue };
        let l = build(&url, dir.path(), &format!("{tag}-swap")).await;
        sql(&l.store, "UPDATE ledger SET idx = -1 WHERE idx = 5").await;
        sql(&l.store, "UPDATE ledger SET idx = 5 WHERE idx = 6").await;
        sql(&l.store, "UPDATE ledger SET idx = 6 WHERE idx = -1").await;
        assert_fails(
            &l,
            "swapped entries",
            &[],
            &["hash does not match checkpoint of size 30", "hint: entry 5"],
        );

        // Drop the tail.
        let Some(url) = next().await else { continue };
        let l = build(&url, dir.path(), &format!("{tag}-tail")).await;
        sql(&l.store, "DELETE FROM ledger WHERE idx >= 50").await;
        assert_fails(
            &l,
            "dropped tail",
            &[],
            &["entries end at 49 but checkpoint says 60: truncated"],
        );

        // Drop the tail and the checkpoints that covered it: the exported checkpoint still catches it.
        let Some(url) = next().await else { continue };
        let l = build(&url, dir.path(), &format!("{tag}-tail2")).await;
        sql(&l.store, "DELETE FROM ledger WHERE idx >= 20").await;
        sql(&l.store, "DELETE FROM checkpoints").await;
        let cp = l.exported.display().to_string();
        assert_fails(
            &l,
            "dropped tail and checkpoints",
            &["--checkpoint", &cp],
            &["entries end at 19 but trusted checkpoint says 30: truncated"],
        );

        // Insert an entry in the middle, renumbering the rest.
        let Some(url) = next().await else { continue };
        let l = build(&url, dir.path(), &format!("{tag}-ins")).await;
        sql(
            &l.store,
            "UPDATE ledger SET idx = -(idx + 1) WHERE idx >= 20",
        )
        .await;
        sql(&l.store, "UPDATE ledger SET idx = -idx WHERE idx < 0").await;
        sql(&l.store, "INSERT INTO ledger (idx, time_ms, kind, actor, subject, policy_hash, data, leaf_hash) \
                       SELECT 20, time_ms, 'grant.activated', actor, subject, policy_hash, data, leaf_hash FROM ledger WHERE idx = 19").await;
        assert_fails(
            &l,
            "inserted entry",
            &[],
            &["hash does not match checkpoint of size 30"],
        );

        // A consistent fork signed by a different key.
        let Some(url) = next().await else { continue };
        let l = build(&url, dir.path(), &format!("{tag}-fork")).await;
        let mallory = NoteSigner::generate(ORIGIN).expect("key");
        rewrite_history(&l, &mallory).await;
        assert_fails(
            &l,
            "fork signed by another key",
            &[],
            &["checkpoint signed by unknown key"],
        );

        // History rewritten and re-signed with the real key after checkpoint 30 was exported.
        let Some(url) = next().await else { continue };
        let l = build(&url, dir.path(), &format!("{tag}-rewrite")).await;
        let signer = dup(&l.signer);
        rewrite_history(&l, &signer).await;
        let (code, _) = verify(&l, &[]);
        assert_eq!(
            code, 0,
            "a consistent re-signed log verifies without an outside checkpoint"
        );
        let cp = l.exported.display().to_string();
        assert_fails(
            &l,
            "history rewritten with the real key",
            &["--checkpoint", &cp],
            &["fork: trusted checkpoint size 30"],
        );
    }
}

/// A sink that fails its first `fail` publishes.
struct Flaky {
    fail: usize,
    calls: AtomicUsize,
    inner: DirBundleSink,
}

impl BundleSink for Flaky {
    fn name(&self) -> String {
        "flaky".into()
    }
    fn publish<'a>(&'a self, bundle: &'a Bundle) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            if self.calls.fetch_add(1, Ordering::SeqCst) < self.fail {
                return Err(SinkError::Other("bucket unreachable".into()));
            }
            self.inner.publish(bundle).await
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_publish_alerts_and_is_retried_until_it_succeeds() {
    let dir = tempfile::tempdir().expect("tempdir");
    for url in both(dir.path(), "twokey_publish").await {
        let store = Store::open(&url).await.expect("open");
        let signer = NoteSigner::generate(ORIGIN).expect("key");
        let sink = Arc::new(Flaky {
            fail: 3,
            calls: AtomicUsize::new(0),
            inner: DirBundleSink::new(dir.path().join(format!("b-{}", url.len()))),
        });
        let cp = Checkpointer::new(
            store.clone(),
            dup(&signer),
            vec![sink.clone()],
            Arc::new(SystemClock),
            CheckpointOptions {
                origin: ORIGIN.into(),
                base_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(50),
                ..Default::default()
            },
        );
        commit_entries(&store, 0, 10).await;
        assert_eq!(cp.sign_if_grown(1).await.expect("sign"), Some(10));
        assert_eq!(cp.publish_pending().await.expect("pass"), 0);
        // The failure is in the ledger as an alert, and in the alert outbox.
        let entries = store.ledger(10, 10).await.expect("ledger");
        assert_eq!(entries[0].kind, "ledger.publish_failed", "{entries:?}");
        assert_eq!(entries[0].data["checkpoint_size"], 10);
        let alerts = store.due_alerts(i64::MAX, 10).await.expect("alerts");
        assert!(
            alerts.iter().any(|a| a.kind == "ledger.publish_failed"),
            "{alerts:?}"
        );
        let row = &store.unpublished_checkpoints().await.expect("rows")[0];
        assert_eq!(row.publish_attempts, 1);
        assert!(row
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("bucket unreachable"));
        // Retried (with backoff) until it succeeds; never dropped.
        let mut published = false;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if cp.publish_pending().await.expect("pass") == 1 {
                published = true;
                break;
            }
        }
        assert!(published, "never published");
        assert!(store
            .unpublished_checkpoints()
            .await
            .expect("rows")
            .is_empty());
        assert_eq!(sink.calls.load(Ordering::SeqCst), 4);
        let rows = store.checkpoints().await.expect("rows");
        assert!(rows[0].published_at.is_some());
        // The alert entries are covered by the next checkpoint, and everything verifies.
        assert!(cp.sign_if_grown(1).await.expect("sign").is_some());
        assert_eq!(cp.publish_pending().await.expect("pass"), 1);
        let out = Command::new(BIN)
            .args(["audit", "verify", "--database", &url, "--public-key"])
            .arg(signer.verifier().to_string())
            .output()
            .expect("run");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `twokey audit verify --s3` against a real moto server: the published
/// bundles verify, a re-put object with changed content does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_s3_through_the_cli_on_moto() {
    let moto = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/moto/bin/moto_server");
    if !moto.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "moto_server missing at {}: run scripts/setup-moto.sh",
            moto.display()
        );
        eprintln!("skipping: moto_server missing (run scripts/setup-moto.sh)");
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _moto = Kill(
        Command::new(&moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto"),
    );
    let endpoint = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    let dir = tempfile::tempdir().expect("tempdir");
    let l = build(&fresh_sqlite(dir.path()), dir.path(), "s3").await;
    let loc = twokey_ledger_s3::S3Location {
        bucket: "worm".into(),
        prefix: "ledger".into(),
        region: Some("us-east-1".into()),
        endpoint_url: Some(endpoint.clone()),
    };
    let c = twokey_ledger_s3::client(&loc).await;
    c.create_bucket()
        .bucket("worm")
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .expect("bucket");
    let sink = twokey_ledger_s3::S3Sink::new(loc.clone(), 1).await;
    let key = l.signer.verifier();
    let rows = l.store.checkpoints().await.expect("rows");
    let mut from = 0u64;
    for r in &rows {
        let entries = l.store.ledger(from, 1000).await.expect("entries");
        let entries: Vec<_> = entries.into_iter().filter(|e| e.index < r.size).collect();
        let cp = key.verify_checkpoint(&r.note).expect("cp");
        let b = Bundle::new(r.note.clone(), cp, from, &entries).expect("bundle");
        sink.publish(&b).await.expect("publish");
        from = r.size;
    }
    let run = || {
        let out = Command::new(BIN)
            .args([
                "audit",
                "verify",
                "--s3",
                "s3://worm/ledger",
                "--endpoint-url",
                &endpoint,
            ])
            .args(["--public-key", &l.public_key, "--checkpoint"])
            .arg(&l.exported)
            .output()
            .expect("run");
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (code, text) = run();
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("ok: 60 entries"), "{text}");
    let mut bad = l.store.ledger(0, 30).await.expect("entries");
    bad[7].subject = "req-other".into();
    let mut body = Vec::new();
    for e in &bad {
        e.encode_into(&mut body);
        body.push(b'\n');
    }
    c.put_object()
        .bucket("worm")
        .key("ledger/00000000000000000030/entries.ndjson")
        .body(body.into())
        .send()
        .await
        .expect("re-put");
    let (code, text) = run();
    assert_eq!(code, Some(1), "tampered S3 object not detected: {text}");
    assert!(
        text.contains("hash does not match checkpoint of size 30"),
        "{text}"
    );
}
