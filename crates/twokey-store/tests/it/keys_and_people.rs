//! Migration 0004 on SQLite and PostgreSQL: security keys are added and
//! removed only together with their ledger entry, only by their owner; the
//! people directory keeps the latest sign-in; notifications are queued in the
//! outbox only when asked.

use twokey_core::Event;
use twokey_store::{Change, CredentialRow, CredentialWrite, PersonRow, Store, StoreError};

fn ev(kind: &str, actor: &str) -> Event {
    Event {
        kind: kind.into(),
        actor: actor.into(),
        alert: false,
        data: serde_json::json!({}),
    }
}

fn key(id: &str, who: &str) -> CredentialRow {
    CredentialRow {
        id: id.into(),
        identity: who.into(),
        name: "yubikey".into(),
        passkey: "{}".into(),
        created_at: 1,
        last_used_at: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_people_and_notification_rows_on_both_databases() {
    let dir = tempfile::tempdir().expect("tempdir");
    for url in twokey_store::testing::both(dir.path(), "tk_keys").await {
        let s = Store::open(&url).await.expect("open");
        let bob = "https://idp|bob";
        s.commit(Change {
            now: 10,
            policy_hash: "h".into(),
            credential: Some(CredentialWrite::Add(key("cred-1", bob))),
            events: vec![(bob.into(), ev("mfa.key_added", bob))],
            ..Default::default()
        })
        .await
        .expect("add");
        assert_eq!(s.credentials(bob).await.expect("list").len(), 1);
        assert!(s
            .credentials("https://idp|mallory")
            .await
            .expect("list")
            .is_empty());

        // Someone else cannot remove bob's key; nothing is recorded then.
        let head = s.ledger_head().await.expect("head").size;
        let err = s
            .commit(Change {
                now: 11,
                policy_hash: "h".into(),
                credential: Some(CredentialWrite::Remove {
                    identity: "https://idp|mallory".into(),
                    id: "cred-1".into(),
                }),
                events: vec![("https://idp|mallory".into(), ev("mfa.key_removed", "m"))],
                ..Default::default()
            })
            .await
            .expect_err("not mallory's key");
        assert!(matches!(err, StoreError::Conflict), "{err}");
        assert_eq!(s.ledger_head().await.expect("head").size, head);
        assert_eq!(s.credentials(bob).await.expect("list").len(), 1);

        s.credential_used(bob, "cred-1", Some("{\"c\":2}"), 20)
            .await
            .expect("used");
        let k = &s.credentials(bob).await.expect("list")[0];
        assert_eq!(k.last_used_at, Some(20));
        assert_eq!(k.passkey, "{\"c\":2}");

        s.commit(Change {
            now: 12,
            policy_hash: "h".into(),
            credential: Some(CredentialWrite::Remove {
                identity: bob.into(),
                id: "cred-1".into(),
            }),
            events: vec![(bob.into(), ev("mfa.key_removed", bob))],
            ..Default::default()
        })
        .await
        .expect("remove");
        assert!(s.credentials(bob).await.expect("list").is_empty());

        // People: the latest sign-in wins.
        for (name, mail) in [("bob", "old@example.com"), ("Bob B.", "bob@example.com")] {
            s.upsert_person(&PersonRow {
                identity: bob.into(),
                name: name.into(),
                email: Some(mail.into()),
                groups: vec!["approvers".into()],
                seen_at: 5,
            })
            .await
            .expect("person");
        }
        let people = s.people().await.expect("people");
        assert_eq!(people.len(), 1);
        assert_eq!(people[0].email.as_deref(), Some("bob@example.com"));
        assert_eq!(people[0].groups, vec!["approvers".to_string()]);

        // Notification rows only with `notify`, only for notifying kinds,
        // and never among the alerts.
        for notify in [false, true] {
            s.commit(Change {
                now: 13,
                policy_hash: "h".into(),
                events: vec![
                    ("req-x".into(), ev("request.created", bob)),
                    ("req-x".into(), ev("grant.revoke_requested", bob)),
                ],
                notify,
                ..Default::default()
            })
            .await
            .expect("commit");
        }
        let due = s.due_notifications(i64::MAX, 10).await.expect("due");
        assert_eq!(due.len(), 1, "{due:?}");
        assert_eq!(due[0].kind, "notify:request.created");
        assert!(s.due_alerts(i64::MAX, 10).await.expect("alerts").is_empty());
    }
}
