//! Publishes bundles to a real moto server (S3 with Object Lock), verifies
//! them, and shows that re-putting an object with different content (moto
//! does not enforce retention) is detected.
//!
//! Needs `scripts/setup-moto.sh` (a venv at `.venv/moto`). Without it the
//! test is skipped, unless `CI` is set, where it fails.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use twokey_ledger::{Bundle, Checkpoint, Frontier, LedgerEntry, NoteSigner};
use twokey_ledger_s3::{client, verify_s3, S3Location, S3Sink};

struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn moto_bin() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/moto/bin/moto_server");
    p.exists().then_some(p)
}

async fn start_moto() -> Option<(Moto, String)> {
    let Some(bin) = moto_bin() else {
        if std::env::var_os("CI").is_some() {
            panic!(
                "moto_server not found at .venv/moto/bin/moto_server: run scripts/setup-moto.sh"
            );
        }
        eprintln!("skipping: moto_server missing (run scripts/setup-moto.sh)");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = Command::new(bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server");
    let moto = Moto(child);
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Some((moto, format!("http://127.0.0.1:{port}")));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("moto_server did not start on port {port}");
}

fn entry(i: u64) -> LedgerEntry {
    LedgerEntry {
        index: i,
        time_ms: 1_700_000_000_000 + i as i64,
        kind: "request.created".into(),
        actor: "https://idp|alice".into(),
        subject: format!("req-{i}"),
        policy_hash: "p".into(),
        data: serde_json::json!({"n": i}),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_verify_and_detect_tampering_on_moto() {
    let Some((_moto, endpoint)) = start_moto().await else {
        return;
    };
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    std::env::set_var("AWS_REGION", "us-east-1");
    let loc = S3Location {
        bucket: "audit-worm".into(),
        prefix: "twokey/ledger".into(),
        region: Some("us-east-1".into()),
        endpoint_url: Some(endpoint.clone()),
    };
    let c = client(&loc).await;
    c.create_bucket()
        .bucket(&loc.bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .expect("create bucket with object lock");

    let signer = NoteSigner::generate("twokey/test").expect("key");
    let sink = S3Sink::new(loc.clone(), 1).await;
    let entries: Vec<LedgerEntry> = (0..25).map(entry).collect();
    let mut f = Frontier::new();
    let mut first_note = String::new();
    let mut from = 0;
    for (i, e) in entries.iter().enumerate() {
        f.push(e.leaf_hash());
        let size = i as u64 + 1;
        if size == 10 || size == 25 {
            let note = signer.sign_checkpoint(&Checkpoint::new("twokey/test", size, f.root()));
            let cp = signer.verifier().verify_checkpoint(&note).expect("cp");
            let b = Bundle::new(
                note.clone(),
                cp,
                from,
                &entries[from as usize..size as usize],
            )
            .expect("bundle");
            sink.publish(&b).await.expect("publish");
            sink.publish(&b).await.expect("publish again is a no-op");
            if size == 10 {
                first_note = note;
            }
            from = size;
        }
    }
    // Objects carry COMPLIANCE Object Lock (as moto reports it on GetObject).
    let o = c
        .get_object()
        .bucket(&loc.bucket)
        .key("twokey/ledger/00000000000000000010/checkpoint")
        .send()
        .await
        .expect("get");
    assert_eq!(
        o.object_lock_mode()
            .map(|m| m.as_str().to_string())
            .as_deref(),
        Some("COMPLIANCE")
    );

    let key = signer.verifier();
    let s = verify_s3(&loc, &key, Some(&first_note))
        .await
        .expect("verifies");
    assert_eq!(s.entries, 25);
    assert_eq!(s.checkpoints_verified, 2);
    assert!(s.trusted_verified);

    // The CLI path: twokey audit verify --s3 uses the same function.
    // Tamper: re-put the first bundle's entries with one entry changed.
    let mut bad = Vec::new();
    for (i, e) in entries[..10].iter().enumerate() {
        let mut e = e.clone();
        if i == 4 {
            e.actor = "https://idp|mallory".into();
        }
        e.encode_into(&mut bad);
        bad.push(b'\n');
    }
    c.put_object()
        .bucket(&loc.bucket)
        .key("twokey/ledger/00000000000000000010/entries.ndjson")
        .body(ByteStream::from(bad))
        .send()
        .await
        .expect("moto lets the object be replaced");
    let err = verify_s3(&loc, &key, None)
        .await
        .expect_err("tampering detected");
    let msg = err.to_string();
    assert!(
        msg.contains("hash does not match checkpoint of size 10"),
        "{msg}"
    );

    // Deleting a bundle's checkpoint (a gap) is detected too.
    c.delete_object()
        .bucket(&loc.bucket)
        .key("twokey/ledger/00000000000000000010/checkpoint")
        .send()
        .await
        .expect("delete");
    let err = verify_s3(&loc, &key, Some(&first_note))
        .await
        .expect_err("gap detected");
    eprintln!("{err}");
}
