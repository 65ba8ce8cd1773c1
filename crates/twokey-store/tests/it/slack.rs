//! Migration 0047 on SQLite and PostgreSQL: a signed Slack request is taken
//! once, by whichever replica (two `Store`s on one database), until its
//! window has passed; approver messages are recorded once per (request,
//! Slack user).

use twokey_store::{SlackMessageRow, Store};

fn msg(request: &str, user: &str, ts: &str, at: i64) -> SlackMessageRow {
    SlackMessageRow {
        request_id: request.into(),
        slack_user: user.into(),
        approver: format!("twokey|{}", user.to_lowercase()),
        channel: format!("D{user}"),
        ts: ts.into(),
        posted_at: at,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_are_taken_once_and_messages_recorded_once_on_both_databases() {
    let dir = tempfile::tempdir().expect("tempdir");
    for url in twokey_store::testing::both(dir.path(), "tk_slack").await {
        let a = Store::open(&url).await.expect("open");
        let b = Store::open(&url).await.expect("open a second handle");
        assert!(a
            .slack_take_signature("sig-1", 1_000, 5_000)
            .await
            .expect("take"));
        assert!(
            !b.slack_take_signature("sig-1", 1_001, 5_000)
                .await
                .expect("take"),
            "a replay to another replica is refused"
        );
        assert!(!a
            .slack_take_signature("sig-1", 4_999, 5_000)
            .await
            .expect("take"));
        assert!(b
            .slack_take_signature("sig-2", 1_002, 5_000)
            .await
            .expect("take"));
        // Once its window has passed the row goes (the window refuses it).
        assert!(a
            .slack_take_signature("sig-3", 6_000, 9_000)
            .await
            .expect("take"));
        let left: Vec<String> =
            sqlx::query_scalar("SELECT signature_hash FROM slack_seen ORDER BY signature_hash")
                .fetch_all(a.pool())
                .await
                .expect("rows");
        assert_eq!(left, ["sig-3"], "expired rows are removed");

        a.slack_put_message(&msg("req-1", "U0BOB", "1.000001", 10))
            .await
            .expect("put");
        a.slack_put_message(&msg("req-1", "U0CAROL", "1.000002", 11))
            .await
            .expect("put");
        // A second post for the same (request, user) keeps the first.
        b.slack_put_message(&msg("req-1", "U0BOB", "1.000009", 12))
            .await
            .expect("put");
        a.slack_put_message(&msg("req-2", "U0BOB", "2.000001", 13))
            .await
            .expect("put");
        let rows = b.slack_messages("req-1").await.expect("read");
        assert_eq!(
            rows,
            [
                msg("req-1", "U0BOB", "1.000001", 10),
                msg("req-1", "U0CAROL", "1.000002", 11)
            ]
        );
        assert!(a.slack_messages("req-3").await.expect("read").is_empty());
    }
}
