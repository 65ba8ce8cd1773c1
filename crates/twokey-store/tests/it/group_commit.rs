//! The group-commit writer on SQLite and PostgreSQL: many changes committed
//! at once go in shared transactions whose ledger rows, head and frontier
//! are written once per batch. A change whose ledger entry the database
//! refuses fails alone (its batch is retried change by change); every other
//! change commits with exactly its entries; indexes stay contiguous, each
//! stored leaf hash is its entry's, the head's root is the root of the rows,
//! and a refused change leaves nothing behind (no entry, no outbox row).

use std::collections::BTreeSet;

use twokey_core::Event;
use twokey_ledger::merkle::root_from_leaves;
use twokey_store::{Backend, Change, Store};

const CHANGES: usize = 96;

/// Ledger inserts of kinds LIKE 'refused.%' fail, as a full disk or a revoked
/// grant would make them fail.
async fn refuse_some_kinds(store: &Store) {
    let stmts: &[&str] = if store.backend() == Backend::Sqlite {
        &["CREATE TRIGGER ledger_refuse BEFORE INSERT ON ledger WHEN NEW.kind LIKE 'refused.%' BEGIN SELECT RAISE(ABORT, 'ledger unavailable'); END;"]
    } else {
        &[
            "CREATE FUNCTION ledger_refuse() RETURNS trigger AS $$ BEGIN IF NEW.kind LIKE 'refused.%' THEN RAISE EXCEPTION 'ledger unavailable'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER ledger_refuse BEFORE INSERT ON ledger FOR EACH ROW EXECUTE FUNCTION ledger_refuse()",
        ]
    };
    for s in stmts {
        sqlx::query(s).execute(store.pool()).await.expect("trigger");
    }
}

/// Change `i`: one to three events; every 7th is refused by the ledger;
/// every 5th raises an alert (an outbox row in the same transaction).
fn change(i: usize) -> Change {
    let refused = i % 7 == 3;
    let events = (0..1 + i % 3)
        .map(|k| {
            let kind = if refused && k == 0 {
                "refused.write".to_string()
            } else {
                format!("bench.event{k}")
            };
            (
                format!("subject-{i}"),
                Event {
                    kind,
                    actor: format!("https://idp.example|user{}", i % 4),
                    alert: i.is_multiple_of(5),
                    data: serde_json::json!({"change": i, "part": k}),
                },
            )
        })
        .collect();
    Change {
        now: 1_700_000_000_000 + i as i64,
        policy_hash: "policy".into(),
        events,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_share_batches_and_a_refused_entry_fails_only_its_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    for url in twokey_store::testing::both(dir.path(), "tk_groupcommit").await {
        let store = Store::open(&url).await.expect("open");
        refuse_some_kinds(&store).await;
        // All at once, so the writer batches them.
        let tasks: Vec<_> = (0..CHANGES)
            .map(|i| {
                let s = store.clone();
                tokio::spawn(async move { (i, s.commit(change(i)).await) })
            })
            .collect();
        let mut committed = BTreeSet::new();
        let mut returned = Vec::new();
        for t in tasks {
            let (i, r) = t.await.expect("task");
            let refused = i % 7 == 3;
            match r {
                Ok(entries) => {
                    assert!(!refused, "{url}: change {i} committed past a refused entry");
                    assert_eq!(entries.len(), 1 + i % 3, "{url}: change {i}");
                    committed.insert(i);
                    returned.extend(entries);
                }
                Err(e) => {
                    assert!(refused, "{url}: change {i} failed: {e}");
                    assert!(e.to_string().contains("ledger unavailable"), "{url}: {e}");
                }
            }
        }
        assert_eq!(
            committed.len(),
            (0..CHANGES).filter(|i| i % 7 != 3).count(),
            "{url}"
        );

        // The stored rows are exactly the returned entries, indexes 0..n.
        let rows = store.ledger_raw(0, 10_000).await.expect("rows");
        let stored = store.ledger(0, 10_000).await.expect("entries");
        returned.sort_by_key(|e| e.index);
        assert_eq!(
            stored, returned,
            "{url}: stored entries differ from returned ones"
        );
        for (n, (row, entry)) in rows.iter().zip(&stored).enumerate() {
            assert_eq!(row.idx, n as i64, "{url}: index gap");
            assert_eq!(
                row.leaf_hash,
                hex::encode(entry.leaf_hash()),
                "{url}: entry {n}"
            );
            let data: serde_json::Value = serde_json::from_str(&row.data).expect("data");
            let i = data["change"].as_u64().expect("change") as usize;
            assert!(
                committed.contains(&i),
                "{url}: entry {n} of refused change {i}"
            );
        }
        // Each change's entries are consecutive (one change, one run of indexes).
        for w in stored.windows(2) {
            if w[0].subject == w[1].subject {
                assert_eq!(w[0].index + 1, w[1].index);
            }
        }
        let leaves: Vec<_> = stored.iter().map(|e| e.leaf_hash()).collect();
        let root = store.ledger_root().await.expect("root");
        assert_eq!(root.size, stored.len() as u64, "{url}");
        assert_eq!(root.root, root_from_leaves(&leaves), "{url}: head root");

        // Outbox rows only for committed changes' alert events.
        let alerts = store.due_alerts(i64::MAX, 10_000).await.expect("alerts");
        let want = committed
            .iter()
            .filter(|i| i.is_multiple_of(5))
            .map(|i| 1 + i % 3)
            .sum::<usize>();
        assert_eq!(alerts.len(), want, "{url}: outbox rows");
        for a in &alerts {
            let i = a.entry.data["change"].as_u64().expect("change") as usize;
            assert!(committed.contains(&i), "{url}: alert of refused change {i}");
        }

        // Later changes continue the same log.
        let more = store.commit(change(1000)).await.expect("after");
        assert_eq!(more[0].index, stored.len() as u64, "{url}");
    }
}

/// A batch is first tried without savepoints; a change that fails inside it
/// (here: removing a security key that is not there, a conflict) makes the
/// writer roll that try back and make the batch again with a savepoint per
/// change. The conflicting changes fail alone with `Conflict` and leave
/// nothing (no entry, no outbox row); every other change commits exactly
/// once (no entry written twice by the second try), indexes contiguous.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_that_conflicts_inside_a_batch_fails_alone_and_the_rest_commit_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    for url in twokey_store::testing::both(dir.path(), "tk_groupconflict").await {
        let store = Store::open(&url).await.expect("open");
        let conflicting = |i: usize| i % 5 == 2;
        let tasks: Vec<_> = (0..CHANGES)
            .map(|i| {
                let s = store.clone();
                let mut c = change(i * 7 + 1); // never a refused kind (i*7+1 % 7 == 1)
                if conflicting(i) {
                    c.credential = Some(twokey_store::CredentialWrite::Remove {
                        identity: format!("https://idp.example|user{i}"),
                        id: format!("no-such-key-{i}"),
                    });
                }
                tokio::spawn(async move { (i, s.commit(c).await) })
            })
            .collect();
        let mut committed = BTreeSet::new();
        for t in tasks {
            let (i, r) = t.await.expect("task");
            match r {
                Ok(_) => {
                    assert!(
                        !conflicting(i),
                        "{url}: change {i} committed past its conflict"
                    );
                    committed.insert(i * 7 + 1);
                }
                Err(e) => {
                    assert!(conflicting(i), "{url}: change {i} failed: {e}");
                    assert!(
                        matches!(e, twokey_store::StoreError::Conflict),
                        "{url}: change {i}: {e}"
                    );
                }
            }
        }
        assert_eq!(
            committed.len(),
            (0..CHANGES).filter(|i| !conflicting(*i)).count(),
            "{url}"
        );
        let stored = store.ledger(0, 10_000).await.expect("entries");
        let mut per_change = std::collections::BTreeMap::new();
        for (n, e) in stored.iter().enumerate() {
            assert_eq!(e.index, n as u64, "{url}: index gap");
            let c = e.data["change"].as_u64().expect("change") as usize;
            assert!(
                committed.contains(&c),
                "{url}: entry {n} of conflicting change {c}"
            );
            *per_change.entry(c).or_insert(0usize) += 1;
        }
        for (c, n) in &per_change {
            assert_eq!(*n, 1 + c % 3, "{url}: change {c} written {n} times over");
        }
        assert_eq!(
            per_change.len(),
            committed.len(),
            "{url}: a change without entries"
        );
        let leaves: Vec<_> = stored.iter().map(|e| e.leaf_hash()).collect();
        let root = store.ledger_root().await.expect("root");
        assert_eq!(root.root, root_from_leaves(&leaves), "{url}: head root");
        let alerts = store.due_alerts(i64::MAX, 10_000).await.expect("alerts");
        for a in &alerts {
            let c = a.entry.data["change"].as_u64().expect("change") as usize;
            assert!(
                committed.contains(&c),
                "{url}: alert of conflicting change {c}"
            );
        }
    }
}
