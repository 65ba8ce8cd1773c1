//! The evidence report's rows verify against the ledger, through the real
//! binary, on SQLite and PostgreSQL: a ledger of typed events (the same
//! events and bytes the broker writes) is committed through the store and
//! checkpointed by the server's checkpointer; `twokey report access
//! --database` writes the report; for every ledger index of every row,
//! `twokey audit prove` and `twokey audit verify-proof` succeed, the proven
//! entry is the kind, subject and leaf hash the row names, and the row's
//! fields are what the proven entries alone give. Then a row is rewritten
//! in SQL: the report flags it (exit 1, `matches_checkpoint: false`) and its
//! proof fails.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use serde_json::Value;
use sha2::{Digest, Sha256};
use twokey_core::event as ev;
use twokey_core::{Event, LedgerEvent};
use twokey_ledger::checkpoint::generate_key_file;
use twokey_ledger::LedgerEntry;
use twokey_server::checkpoints::{CheckpointOptions, Checkpointer, DirBundleSink};
use twokey_server::report::{self, AccessReport, Period};
use twokey_server::SystemClock;
use twokey_store::testing::both;
use twokey_store::Store;

const BIN: &str = env!("CARGO_BIN_EXE_twokey");
const ORIGIN: &str = "twokey/report-test";
const ALICE: &str = "local|alice";
const BOB: &str = "local|bob";
const CAROL: &str = "local|carol";
const SYSTEM: &str = "local|system";
/// 2026-03-01T00:00:00Z.
const T0: i64 = 1_772_323_200_000;
const MIN: i64 = 60_000;

fn created(reason: &str, break_glass: bool) -> LedgerEvent {
    LedgerEvent::RequestCreated(ev::RequestCreated {
        entitlement: "prod-db".into(),
        duration_ms: 30 * MIN,
        reason: reason.into(),
        ticket: Some("INC-7".into()),
        break_glass,
        extends: None,
    })
}

fn activated(at: i64, break_glass: bool) -> LedgerEvent {
    LedgerEvent::GrantActivated(ev::GrantActivated {
        activated_at: at,
        ends_at: Some(at + 30 * MIN),
        break_glass,
        approvers: vec![BOB.into()],
        detail: "granted".into(),
    })
}

fn approved(comment: &str) -> LedgerEvent {
    LedgerEvent::ReviewApproved(ev::ReviewData {
        comment: comment.into(),
        mfa: None,
    })
}

fn complete() -> LedgerEvent {
    LedgerEvent::RequestApproved(ev::RequestApproved {
        approvals: 1,
        required: 1,
    })
}

async fn rec(store: &Store, t: i64, subject: &str, events: Vec<(&str, LedgerEvent)>) {
    let events: Vec<(String, Event)> = events
        .into_iter()
        .map(|(actor, e)| (subject.to_string(), e.by(actor)))
        .collect();
    store.record(t, "policyhash", events).await.expect("commit");
}

/// The ledger of the scenario: before the period, a grant that starts
/// before it; inside, an approved and expired grant, a revoked one, a
/// denied request, a break-glass with its review and a policy change; after
/// it, a request outside the period. Checkpoints are signed along the way;
/// the last entries stay unsigned.
async fn scenario(store: &Store, cp: &Checkpointer) {
    // Starts 10 minutes before the period (T0), expires inside it.
    rec(
        store,
        T0 - 10 * MIN,
        "req-boundary",
        vec![(ALICE, created("INC-7 boundary", false))],
    )
    .await;
    rec(
        store,
        T0 - 9 * MIN,
        "req-boundary",
        vec![(BOB, approved("ok")), (SYSTEM, complete())],
    )
    .await;
    rec(
        store,
        T0 - 9 * MIN,
        "req-boundary",
        vec![(SYSTEM, activated(T0 - 9 * MIN, false))],
    )
    .await;
    assert!(cp.sign_if_grown(1).await.expect("sign").is_some());
    // Approved and expired.
    rec(
        store,
        T0 + MIN,
        "req-expired",
        vec![(ALICE, created("INC-7 fix the index", false))],
    )
    .await;
    rec(
        store,
        T0 + 2 * MIN,
        "req-expired",
        vec![(BOB, approved("looks right")), (SYSTEM, complete())],
    )
    .await;
    rec(
        store,
        T0 + 2 * MIN,
        "req-expired",
        vec![(SYSTEM, activated(T0 + 2 * MIN, false))],
    )
    .await;
    rec(
        store,
        T0 + 21 * MIN,
        "req-boundary",
        vec![(
            SYSTEM,
            LedgerEvent::GrantExpiring(ev::Expiring {
                ends_at: T0 + 21 * MIN,
            }),
        )],
    )
    .await;
    rec(
        store,
        T0 + 21 * MIN,
        "req-boundary",
        vec![(
            SYSTEM,
            LedgerEvent::GrantExpired(ev::Ended {
                ended_at: T0 + 21 * MIN,
                ends_at: Some(T0 + 21 * MIN),
            }),
        )],
    )
    .await;
    rec(
        store,
        T0 + 32 * MIN,
        "req-expired",
        vec![(
            SYSTEM,
            LedgerEvent::GrantExpiring(ev::Expiring {
                ends_at: T0 + 32 * MIN,
            }),
        )],
    )
    .await;
    rec(
        store,
        T0 + 32 * MIN,
        "req-expired",
        vec![(
            SYSTEM,
            LedgerEvent::GrantExpired(ev::Ended {
                ended_at: T0 + 32 * MIN,
                ends_at: Some(T0 + 32 * MIN),
            }),
        )],
    )
    .await;
    assert!(cp.sign_if_grown(1).await.expect("sign").is_some());
    // Revoked early by carol.
    rec(
        store,
        T0 + 40 * MIN,
        "req-revoked",
        vec![(ALICE, created("INC-8 rotate keys", false))],
    )
    .await;
    rec(
        store,
        T0 + 41 * MIN,
        "req-revoked",
        vec![(BOB, approved("go")), (SYSTEM, complete())],
    )
    .await;
    rec(
        store,
        T0 + 41 * MIN,
        "req-revoked",
        vec![(SYSTEM, activated(T0 + 41 * MIN, false))],
    )
    .await;
    rec(
        store,
        T0 + 45 * MIN,
        "req-revoked",
        vec![(
            CAROL,
            LedgerEvent::GrantRevokeRequested(ev::RevokeRequested { at: T0 + 45 * MIN }),
        )],
    )
    .await;
    rec(
        store,
        T0 + 45 * MIN,
        "req-revoked",
        vec![(
            SYSTEM,
            LedgerEvent::GrantRevoked(ev::Ended {
                ended_at: T0 + 45 * MIN,
                ends_at: Some(T0 + 71 * MIN),
            }),
        )],
    )
    .await;
    // Denied.
    rec(
        store,
        T0 + 50 * MIN,
        "req-denied",
        vec![(ALICE, created("INC-9 curiosity", false))],
    )
    .await;
    rec(
        store,
        T0 + 51 * MIN,
        "req-denied",
        vec![
            (
                CAROL,
                LedgerEvent::ReviewDenied(ev::ReviewData {
                    comment: "not needed".into(),
                    mfa: None,
                }),
            ),
            (CAROL, LedgerEvent::RequestDenied(ev::Empty {})),
        ],
    )
    .await;
    // Break-glass, reviewed by carol.
    rec(
        store,
        T0 + 60 * MIN,
        "req-glass",
        vec![
            (ALICE, created("prod down", true)),
            (
                ALICE,
                LedgerEvent::RequestBreakGlass(ev::BreakGlass {
                    entitlement: "prod-db".into(),
                    reason: "prod down".into(),
                }),
            ),
            (SYSTEM, activated(T0 + 60 * MIN, true)),
        ],
    )
    .await;
    rec(
        store,
        T0 + 70 * MIN,
        "req-glass",
        vec![(
            CAROL,
            LedgerEvent::BreakGlassReviewed(ev::Comment {
                comment: "justified".into(),
            }),
        )],
    )
    .await;
    // A policy change: proposed by bob, approved and applied by carol.
    rec(
        store,
        T0 + 80 * MIN,
        "prop-1",
        vec![(
            BOB,
            LedgerEvent::PolicyProposed(ev::PolicyProposed {
                proposal: "prop-1".into(),
                hash: "newhash".into(),
                base_hash: "policyhash".into(),
            }),
        )],
    )
    .await;
    rec(
        store,
        T0 + 81 * MIN,
        "prop-1",
        vec![
            (
                CAROL,
                LedgerEvent::PolicyApproved(ev::PolicyApproved {
                    proposal: "prop-1".into(),
                    hash: "newhash".into(),
                }),
            ),
            (
                CAROL,
                LedgerEvent::PolicyApplied(ev::PolicyApplied {
                    proposal: "prop-1".into(),
                    hash: "newhash".into(),
                    previous: "policyhash".into(),
                }),
            ),
        ],
    )
    .await;
    assert!(cp.sign_if_grown(1).await.expect("sign").is_some());
    // After the period (T0 + 2h): not in the report, and not checkpointed.
    rec(
        store,
        T0 + 200 * MIN,
        "req-later",
        vec![(ALICE, created("later", false))],
    )
    .await;
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().expect("run twokey");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const FROM: &str = "2026-03-01T00:00:00Z";
const TO: &str = "2026-03-01T02:00:00Z";

fn report(url: &str, key: &str, out: &Path) -> (i32, AccessReport, String) {
    let (code, _, err) = run(&[
        "report",
        "access",
        "--database",
        url,
        "--from",
        FROM,
        "--to",
        TO,
        "--format",
        "json",
        "--public-key",
        key,
        "--out",
        &out.display().to_string(),
    ]);
    let text = std::fs::read_to_string(out).unwrap_or_else(|e| panic!("no report ({e}): {err}"));
    let r: AccessReport =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("report JSON: {e}\n{text}"));
    (code, r, err)
}

/// Proves entry `index` and verifies the proof offline; returns the proven
/// entry and the size of the checkpoint it was proven against.
fn prove(url: &str, key: &str, index: u64, dir: &Path) -> Result<(LedgerEntry, Vec<u8>), String> {
    let d = dir.join(format!("proof-{index}"));
    let ds = d.display().to_string();
    let (code, out, err) = run(&[
        "audit",
        "prove",
        &index.to_string(),
        "--database",
        url,
        "--out",
        &ds,
    ]);
    if code != 0 {
        return Err(format!("prove {index}: exit {code}: {out}{err}"));
    }
    let (code, out, err) = run(&[
        "audit",
        "verify-proof",
        "--proof",
        &format!("{ds}/proof"),
        "--entry",
        &format!("{ds}/entry.json"),
        "--checkpoint",
        &format!("{ds}/checkpoint"),
        "--public-key",
        key,
    ]);
    if code != 0 || !out.starts_with("ok: entry") {
        return Err(format!("verify-proof {index}: exit {code}: {out}{err}"));
    }
    let mut bytes = std::fs::read(d.join("entry.json")).map_err(|e| e.to_string())?;
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    let entry = LedgerEntry::decode(&bytes).map_err(|e| e.to_string())?;
    Ok((entry, bytes))
}

fn leaf_hex(bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(bytes);
    hex::encode(h.finalize())
}

/// Every row's every index proves and verifies; the proven entries are what
/// the row says, and the row's fields are what those entries alone give.
fn check_rows(url: &str, key: &str, r: &AccessReport, dir: &Path) {
    let period = Period {
        from: r.from_ms,
        to: r.to_ms,
    };
    let mut proven_rows = 0;
    for g in &r.grants {
        let mut proven = Vec::new();
        for e in &g.entries {
            let (entry, bytes) = prove(url, key, e.index, dir)
                .unwrap_or_else(|m| panic!("{url}: {}: {m}", g.request_id));
            assert_eq!(entry.index, e.index);
            assert_eq!(
                entry.kind, e.kind,
                "{url}: row {} index {}",
                g.request_id, e.index
            );
            assert_eq!(entry.subject, g.request_id, "{url}: index {}", e.index);
            assert_eq!(entry.time_ms, e.time_ms);
            assert_eq!(leaf_hex(&bytes), e.leaf_hash, "{url}: index {}", e.index);
            assert!(
                e.checkpoint.is_some() && e.matches_checkpoint == Some(true),
                "{url}: {e:?}"
            );
            proven.push(entry);
        }
        // The row again, from the proven entries alone.
        let again = report::build(&proven, &[], period);
        let a = again
            .grants
            .iter()
            .find(|x| x.request_id == g.request_id)
            .expect("rebuilt row");
        assert_eq!(
            (
                &a.entitlement,
                &a.requester,
                &a.reason,
                &a.ticket,
                a.requested_at_ms,
                &a.approvals,
                &a.denials,
                &a.break_glass_reviews
            ),
            (
                &g.entitlement,
                &g.requester,
                &g.reason,
                &g.ticket,
                g.requested_at_ms,
                &g.approvals,
                &g.denials,
                &g.break_glass_reviews
            ),
            "{url}: {}",
            g.request_id
        );
        assert_eq!(
            (
                a.break_glass,
                a.activated_at_ms,
                a.ended_at_ms,
                a.outcome,
                &a.ended_by,
                &a.end_reason
            ),
            (
                g.break_glass,
                g.activated_at_ms,
                g.ended_at_ms,
                g.outcome,
                &g.ended_by,
                &g.end_reason
            ),
            "{url}: {}",
            g.request_id
        );
        // And the facts an auditor reads straight off the created entry.
        let c = &proven[0];
        assert_eq!(c.kind, "request.created");
        assert_eq!(c.actor, g.requester);
        assert_eq!(c.data["reason"], Value::String(g.reason.clone()));
        assert_eq!(c.data["entitlement"], Value::String(g.entitlement.clone()));
        proven_rows += 1;
    }
    for p in &r.policy_changes {
        for e in &p.entries {
            let (entry, bytes) =
                prove(url, key, e.index, dir).unwrap_or_else(|m| panic!("{url}: {m}"));
            assert_eq!(
                (entry.kind.as_str(), entry.subject.as_str()),
                (e.kind.as_str(), p.proposal.as_str())
            );
            assert_eq!(leaf_hex(&bytes), e.leaf_hash);
        }
        proven_rows += 1;
    }
    assert_eq!(proven_rows, 6, "{url}: rows proven");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_rows_verify_against_the_ledger_and_tampering_is_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (n, url) in both(dir.path(), "twokey_report")
        .await
        .into_iter()
        .enumerate()
    {
        let work = dir.path().join(format!("b{n}"));
        std::fs::create_dir_all(&work).expect("dir");
        let store = Store::open(&url).await.expect("open");
        let signer = generate_key_file(&work.join("ledger.key"), ORIGIN).expect("key");
        let key = signer.verifier().to_string();
        let cp = Checkpointer::new(
            store.clone(),
            signer,
            vec![Arc::new(DirBundleSink::new(work.join("bundles")))],
            Arc::new(SystemClock),
            CheckpointOptions {
                origin: ORIGIN.into(),
                ..Default::default()
            },
        );
        scenario(&store, &cp).await;

        let out = work.join("report.json");
        let (code, r, err) = report(&url, &key, &out);
        assert_eq!(code, 0, "{url}: {err}");
        assert!(
            r.integrity.ok && r.integrity.signatures_checked,
            "{url}: {:?}",
            r.integrity
        );
        let ids: Vec<&str> = r.grants.iter().map(|g| g.request_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "req-boundary",
                "req-expired",
                "req-revoked",
                "req-denied",
                "req-glass"
            ],
            "{url}"
        );
        let g = |id: &str| r.grants.iter().find(|g| g.request_id == id).expect("row");
        assert!(g("req-boundary").started_before_period);
        assert_eq!(g("req-boundary").outcome.as_str(), "expired");
        assert_eq!(g("req-expired").approvals[0].by, BOB);
        assert_eq!(g("req-revoked").outcome.as_str(), "revoked");
        assert_eq!(g("req-revoked").ended_by.as_deref(), Some(CAROL));
        assert_eq!(g("req-denied").outcome.as_str(), "denied");
        assert_eq!(g("req-glass").break_glass_reviews[0].by, CAROL);
        assert_eq!(r.policy_changes.len(), 1);
        check_rows(&url, &key, &r, &work);

        // CSV and HTML from the same database.
        let csv_path = work.join("report.csv");
        let (code, _, err) = run(&[
            "report",
            "access",
            "--database",
            &url,
            "--from",
            FROM,
            "--to",
            TO,
            "--format",
            "csv",
            "--out",
            &csv_path.display().to_string(),
        ]);
        assert_eq!(code, 0, "{err}");
        let csv_text = std::fs::read_to_string(&csv_path).expect("csv");
        assert_eq!(
            csv_text.lines().filter(|l| l.starts_with("grant,")).count(),
            5,
            "{csv_text}"
        );
        assert!(
            csv_text.lines().any(|l| l.starts_with("policy,prop-1,")),
            "{csv_text}"
        );

        // Tampering: the reason of req-expired's request rewritten in SQL
        // (the report rehashes every entry; it never reads the stored
        // leaf_hash column, so fixing that column would not help): the
        // report flags the row and the proof fails.
        let idx = g("req-expired").entries[0].index;
        sqlx::query(&format!("UPDATE ledger SET data = REPLACE(data, 'fix the index', 'drop the table') WHERE idx = {idx}"))
            .execute(store.pool())
            .await
            .expect("tamper");
        let (code, t, err) = report(&url, &key, &work.join("tampered.json"));
        assert_eq!(code, 1, "{url}: the tampered ledger was not flagged: {err}");
        assert!(
            err.contains("does not match its signed checkpoints"),
            "{err}"
        );
        assert!(!t.integrity.ok);
        let row = t
            .grants
            .iter()
            .find(|x| x.request_id == "req-expired")
            .expect("row");
        assert_eq!(row.reason, "INC-7 drop the table", "shown as stored");
        assert_eq!(
            row.entries[0].matches_checkpoint,
            Some(false),
            "{url}: not flagged"
        );
        let before = t
            .grants
            .iter()
            .find(|x| x.request_id == "req-boundary")
            .expect("row");
        assert_eq!(
            before.entries[0].matches_checkpoint,
            Some(true),
            "entries under the last good checkpoint stay confirmed"
        );
        let m = prove(&url, &key, idx, &work.join("after"))
            .expect_err("the proof of a tampered entry must fail");
        assert!(m.contains("does not match its own checkpoint"), "{m}");
        // The original report's claim can no longer be backed by a proof.
        assert_eq!(g("req-expired").reason, "INC-7 fix the index");
    }
}
