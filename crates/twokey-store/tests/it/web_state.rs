//! Migration 0011 on SQLite and PostgreSQL: ceremony state (logins in
//! flight, security-key ceremonies, `twokey login` codes) shared by replicas.
//! Two stores on one database stand for two replicas: what one puts, the
//! other takes, once; expired state is never returned; the key is not
//! stored in the clear; a kind cannot be taken as another.

use twokey_store::{PutError, Store, WebState};

fn state(doc: &str, expires_at: i64) -> WebState {
    WebState {
        session_hash: "sess-hash".into(),
        doc: doc.into(),
        expires_at,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ceremony_state_is_shared_single_use_and_expires_on_both_databases() {
    let dir = tempfile::tempdir().expect("tempdir");
    for url in twokey_store::testing::both(dir.path(), "tk_webstate").await {
        let a = Store::open(&url).await.expect("replica a");
        let b = Store::open(&url).await.expect("replica b");

        // Put on one replica, taken on the other, exactly once.
        a.put_web_state("webauthn", "ceremony-1", &state(r#"{"x":1}"#, 2_000), 1_000)
            .await
            .expect("put");
        let got = b
            .take_web_state("webauthn", "ceremony-1", 1_500)
            .await
            .expect("take");
        assert_eq!(got, Some(state(r#"{"x":1}"#, 2_000)), "{url}");
        assert_eq!(
            a.take_web_state("webauthn", "ceremony-1", 1_500)
                .await
                .expect("take"),
            None,
            "single use"
        );

        // Another kind under the same key is another row.
        a.put_web_state("cli-login", "k", &state("{}", 2_000), 1_000)
            .await
            .expect("put");
        assert_eq!(
            b.take_web_state("oidc-login", "k", 1_500)
                .await
                .expect("take"),
            None
        );

        // Expired: never returned, even once.
        a.put_web_state("oidc-login", "late", &state("{}", 2_000), 1_000)
            .await
            .expect("put");
        assert_eq!(
            b.take_web_state("oidc-login", "late", 2_000)
                .await
                .expect("take"),
            None,
            "expired at its time"
        );

        // Racing takers on two replicas: one wins.
        a.put_web_state("webauthn", "race", &state("{}", 9_000), 1_000)
            .await
            .expect("put");
        let (x, y) = tokio::join!(
            a.take_web_state("webauthn", "race", 1_100),
            b.take_web_state("webauthn", "race", 1_100)
        );
        let winners = [x.expect("a"), y.expect("b")]
            .into_iter()
            .filter(Option::is_some)
            .count();
        assert_eq!(winners, 1, "{url}");

        // The browser-held value is not in the table.
        let keys: Vec<String> = sqlx::query_scalar("SELECT key_hash FROM web_state")
            .fetch_all(a.pool())
            .await
            .expect("keys");
        assert!(
            keys.iter().all(|k| k.len() == 64 && !k.contains("k")),
            "{keys:?}"
        );

        // Expired rows are dropped on the next put; a flood is refused.
        a.put_web_state("cli-login", "later", &state("{}", 20_000), 10_000)
            .await
            .expect("put");
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM web_state")
            .fetch_one(a.pool())
            .await
            .expect("count");
        assert_eq!(left, 1, "only the live row is left");
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
             INSERT INTO web_state (key_hash, kind, session_hash, doc, expires_at) \
             SELECT 'flood-' || i, 'cli-login', '', '{}', 99999 FROM n",
        )
        .bind(twokey_store::web_state::MAX_IN_FLIGHT - 1)
        .execute(a.pool())
        .await
        .expect("flood");
        let full = a
            .put_web_state("cli-login", "one-more", &state("{}", 20_000), 10_000)
            .await;
        assert!(matches!(full, Err(PutError::Full(_))), "{full:?}");
        a.put_web_state("webauthn", "other-kind", &state("{}", 20_000), 10_000)
            .await
            .expect("another kind is not affected");
    }
}
