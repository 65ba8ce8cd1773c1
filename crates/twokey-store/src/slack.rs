//! Approve from Slack (migration 0047): the interactivity requests already
//! taken (replay refusal that holds across replicas) and the approver
//! messages posted for each request (so each is updated once someone acted).

use sqlx::Row;
use twokey_core::Millis;

use crate::{Store, StoreError};

/// One approver message posted in Slack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackMessageRow {
    /// The request it is about.
    pub request_id: String,
    /// The Slack user it was sent to.
    pub slack_user: String,
    /// The twokey identity (`issuer|subject`) the link maps that user to.
    pub approver: String,
    /// The conversation (`chat.postMessage`'s `channel`).
    pub channel: String,
    /// The message's timestamp id (`ts`).
    pub ts: String,
    /// When it was posted, Unix ms.
    pub posted_at: Millis,
}

impl Store {
    /// Takes a verified interactivity request once: `true` the first time
    /// `signature_hash` is seen, `false` for a replay. Rows whose
    /// `expires_at` passed are removed on the way (the timestamp window
    /// refuses their requests by itself).
    pub async fn slack_take_signature(
        &self,
        signature_hash: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<bool, StoreError> {
        sqlx::query("DELETE FROM slack_seen WHERE expires_at < $1")
            .bind(now)
            .execute(self.pool())
            .await?;
        let done = sqlx::query(
            "INSERT INTO slack_seen (signature_hash, expires_at) VALUES ($1, $2) ON CONFLICT (signature_hash) DO NOTHING",
        )
        .bind(signature_hash)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a posted approver message; a second one for the same
    /// (request, Slack user) keeps the first.
    pub async fn slack_put_message(&self, m: &SlackMessageRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO slack_messages (request_id, slack_user, approver, channel, ts, posted_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (request_id, slack_user) DO NOTHING",
        )
        .bind(&m.request_id)
        .bind(&m.slack_user)
        .bind(&m.approver)
        .bind(&m.channel)
        .bind(&m.ts)
        .bind(m.posted_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The approver messages posted for a request, oldest first.
    pub async fn slack_messages(
        &self,
        request_id: &str,
    ) -> Result<Vec<SlackMessageRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT request_id, slack_user, approver, channel, ts, posted_at FROM slack_messages WHERE request_id = $1 ORDER BY posted_at, slack_user",
        )
        .bind(request_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SlackMessageRow {
                    request_id: r.try_get(0)?,
                    slack_user: r.try_get(1)?,
                    approver: r.try_get(2)?,
                    channel: r.try_get(3)?,
                    ts: r.try_get(4)?,
                    posted_at: r.try_get(5)?,
                })
            })
            .collect()
    }
}
