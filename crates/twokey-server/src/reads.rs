//! What a caller may see: the broker's reads, each with its own check of who
//! may read it, so the API and the web UI ask the broker instead of reading
//! the store around it (and cannot forget a check).
//!
//! The checks are the core's (`request::may_read`, `Policy::may_read_all`);
//! a refusal is a [`DomainError::Forbidden`] like any other.

use twokey_core::{Actor, DomainError, Millis, ProposalView, Request, State};
use twokey_ledger::LedgerEntry;
use twokey_store::{GithubPostureState, GithubRestoreRow, PostureRow};

use crate::broker::{Broker, BrokerError};

/// Which requests a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// The caller's own requests, newest first (at most `limit`).
    Mine {
        /// Most requests returned.
        limit: i64,
    },
    /// Pending requests the caller may review now.
    Waiting,
    /// Every active grant (admins and auditors).
    Active,
    /// Every request, newest first (admins and auditors).
    All,
}

/// The GitHub and AWS posture as stored by the scans.
#[derive(Debug)]
pub struct PostureView {
    /// The AWS checks' current results.
    pub aws: Vec<PostureRow>,
    /// The GitHub repositories' current results.
    pub github: Vec<GithubPostureState>,
    /// The latest restore proposals of GitHub settings.
    pub restores: Vec<GithubRestoreRow>,
}

/// What recomputing the ledger's Merkle tree from its entries found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditVerdict {
    /// No entries, and a head of size 0.
    Empty,
    /// The recomputed root matches the stored head.
    Verified {
        /// Entries checked.
        size: u64,
        /// The Merkle root, hex.
        root: String,
    },
    /// A store that keeps no frontier: the entries are contiguous and as
    /// many as the head says.
    Consistent {
        /// Entries checked.
        size: u64,
        /// The recomputed Merkle root, hex.
        root: String,
    },
    /// An entry out of order, or a root that does not match the head.
    Failed(String),
}

/// The ledger as the audit page shows it.
#[derive(Debug)]
pub struct AuditView {
    /// Whether the entries match the stored head.
    pub verdict: AuditVerdict,
    /// The latest entries (at most 200), oldest first.
    pub latest: Vec<LedgerEntry>,
    /// When the whole ledger was last hashed from its first entry; the
    /// entries appended since were hashed onto that result as they came.
    pub full_at_ms: Millis,
}

/// How long the audit page extends its last whole-ledger recomputation
/// with the entries appended since (reading only those) before it hashes
/// the whole ledger again: 10 minutes. A rewritten older entry is found by
/// the next whole pass, by `twokey ledger verify`, and by the signed
/// checkpoints; a rewritten last entry is found at once.
pub const AUDIT_FULL_EVERY_MS: i64 = 10 * 60 * 1000;

/// The ledger prefix the audit page last found consistent.
#[derive(Debug)]
pub struct AuditPrefix {
    frontier: twokey_ledger::Frontier,
    last_leaf: Option<[u8; 32]>,
    full_at_ms: Millis,
}

impl Broker {
    /// Refuses a caller who is neither an admin nor an auditor of the policy
    /// in force; `what` names what they asked for.
    pub fn require_read_all(&self, actor: &Actor, what: &str) -> Result<(), BrokerError> {
        if self.policy().policy.may_read_all(actor) {
            Ok(())
        } else {
            Err(DomainError::Forbidden(format!(
                "{what} is open to the policy's admins and auditors only; you see your own requests and those you may review"
            ))
            .into())
        }
    }

    /// Refuses a caller who may not read `r` (neither theirs nor one they may
    /// review, and not an admin or auditor).
    pub fn require_read(&self, actor: &Actor, r: &Request) -> Result<(), BrokerError> {
        if twokey_core::request::may_read(&self.policy().policy, actor, r) {
            Ok(())
        } else {
            Err(DomainError::Forbidden(format!(
                "you may not read request {}: it is neither yours nor one you may review",
                r.id
            ))
            .into())
        }
    }

    /// The person an API token stands for, as the directory knows them now;
    /// `None` for an unknown or expired token.
    pub async fn actor_for_token(&self, token: &str) -> Result<Option<Actor>, BrokerError> {
        match self
            .store()
            .actor_for_token(&crate::token_hash(token), self.now())
            .await?
        {
            Some(a) => Ok(Some(self.directory_actor(a).await?)),
            None => Ok(None),
        }
    }

    /// Requests of a listing, newest first.
    pub async fn list(&self, actor: &Actor, which: Listing) -> Result<Vec<Request>, BrokerError> {
        Ok(match which {
            Listing::Mine { limit } => {
                self.store()
                    .requests(Some(&actor.key.to_string()), &[], limit)
                    .await?
            }
            Listing::Waiting => self.waiting_for(actor).await?,
            Listing::All => {
                self.require_read_all(actor, "scope=all")?;
                self.store().requests(None, &[], 200).await?
            }
            Listing::Active => {
                self.require_read_all(actor, "scope=active")?;
                self.store().requests(None, &[State::Active], 500).await?
            }
        })
    }

    /// One request the caller may read.
    pub async fn read(&self, actor: &Actor, id: &str) -> Result<Request, BrokerError> {
        let r = self.get(id).await?;
        self.require_read(actor, &r)?;
        Ok(r)
    }

    /// One request the caller may read, with its ledger entries in order.
    pub async fn read_with_timeline(
        &self,
        actor: &Actor,
        id: &str,
    ) -> Result<(Request, Vec<LedgerEntry>), BrokerError> {
        let r = self.read(actor, id).await?;
        let timeline = self.store().ledger_for(id).await?;
        Ok((r, timeline))
    }

    /// The last provider error of a grant the broker is retrying, with the
    /// attempt count: `"<error> (attempt N)"`; `None` once it is not
    /// retrying.
    pub async fn retrying_error(&self, r: &Request) -> Result<Option<String>, BrokerError> {
        if !matches!(r.state, State::Approved | State::Revoking) {
            return Ok(None);
        }
        Ok(self
            .store()
            .last_error(&r.id)
            .await?
            .map(|(e, n)| format!("{e} (attempt {n})")))
    }

    /// The policy proposals, with what each changes.
    pub async fn proposal_views(&self) -> Result<Vec<ProposalView>, BrokerError> {
        let mut out = Vec::new();
        for p in self.store().proposals().await? {
            out.push(self.proposal_view(p).await?);
        }
        Ok(out)
    }

    /// A page of the ledger from index `from` (admins and auditors).
    pub async fn ledger_page(
        &self,
        actor: &Actor,
        from: u64,
        limit: i64,
    ) -> Result<Vec<LedgerEntry>, BrokerError> {
        self.require_read_all(actor, "the ledger")?;
        Ok(self.store().ledger(from, limit).await?)
    }

    /// Recomputes the Merkle tree from the ledger's entries and compares it
    /// with the stored head (admins and auditors); with the latest 200
    /// entries. The whole ledger is hashed on the first view and again
    /// [`AUDIT_FULL_EVERY_MS`] later; a view in between hashes only the
    /// entries appended since onto the last result (after checking that
    /// the last entry it hashed is unchanged), so a view costs what was
    /// appended, not the ledger's size.
    pub async fn audit_view(&self, actor: &Actor) -> Result<AuditView, BrokerError> {
        self.require_read_all(actor, "The audit log")?;
        let store = self.store();
        let now = self.now();
        // One recomputation at a time; the next view starts where it ended.
        let mut cache = self.audit_prefix.lock().await;
        let head = store.ledger_head().await?;
        let reuse = match cache.as_ref() {
            Some(p)
                if now - p.full_at_ms < AUDIT_FULL_EVERY_MS && p.frontier.size() <= head.size =>
            {
                self.tail_unchanged(p).await?
            }
            _ => false,
        };
        let (mut frontier, mut last_leaf, full_at_ms) = match cache.take() {
            Some(p) if reuse => (p.frontier, p.last_leaf, p.full_at_ms),
            _ => (twokey_ledger::Frontier::new(), None, now),
        };
        let mut problem = None;
        loop {
            let page = store.ledger(frontier.size(), 1000).await?;
            if page.is_empty() {
                break;
            }
            for entry in &page {
                if entry.index != frontier.size() && problem.is_none() {
                    problem = Some(format!(
                        "entry {} is out of order (expected {})",
                        entry.index,
                        frontier.size()
                    ));
                }
                let leaf = entry.leaf_hash();
                frontier.push(leaf);
                last_leaf = Some(leaf);
            }
        }
        let stored = hex::decode(&head.frontier)
            .ok()
            .and_then(|b| twokey_ledger::Frontier::from_bytes(&b).ok());
        let (size, root) = (frontier.size(), hex::encode(frontier.root()));
        let verdict = match (problem, stored) {
            (Some(p), _) => AuditVerdict::Failed(p),
            (None, Some(f)) if f.size() == size && f.root() == frontier.root() => {
                AuditVerdict::Verified { size, root }
            }
            (None, None) if head.size == 0 && size == 0 => AuditVerdict::Empty,
            (None, None) if head.frontier.is_empty() && head.size == size => {
                AuditVerdict::Consistent { size, root }
            }
            _ => AuditVerdict::Failed("the entries do not match the stored Merkle head".into()),
        };
        let latest = store.ledger(size.saturating_sub(200), 200).await?;
        // Only a ledger that checked out is extended next time; a failure is
        // recomputed from the first entry on every view.
        if matches!(
            verdict,
            AuditVerdict::Verified { .. } | AuditVerdict::Consistent { .. }
        ) {
            *cache = Some(AuditPrefix {
                frontier,
                last_leaf,
                full_at_ms,
            });
        }
        Ok(AuditView {
            verdict,
            latest,
            full_at_ms,
        })
    }

    /// Whether the last entry the cached prefix ends with is still the one
    /// it hashed (a rewritten tail is noticed at once, not after
    /// [`AUDIT_FULL_EVERY_MS`]).
    async fn tail_unchanged(&self, p: &AuditPrefix) -> Result<bool, BrokerError> {
        let Some(last) = p.frontier.size().checked_sub(1) else {
            return Ok(true);
        };
        let page = self.store().ledger(last, 1).await?;
        Ok(page.first().map(|e| (e.index, e.leaf_hash())) == p.last_leaf.map(|h| (last, h)))
    }

    /// The stored posture of AWS and GitHub (admins and auditors).
    pub async fn posture_view(&self, actor: &Actor) -> Result<PostureView, BrokerError> {
        self.require_read_all(actor, "The posture")?;
        Ok(PostureView {
            aws: self.store().posture().await?,
            github: self.store().github_posture_states().await?,
            restores: self.store().github_restores(100).await?,
        })
    }

    /// Whether the caller has a security key registered (to offer the
    /// approval that needs one).
    pub async fn has_security_key(&self, actor: &Actor) -> Result<bool, BrokerError> {
        Ok(!self
            .store()
            .credentials(&actor.key.to_string())
            .await?
            .is_empty())
    }

    /// Whether the database answers (readiness).
    pub async fn ready(&self) -> Result<(), BrokerError> {
        Ok(self.store().ping().await?)
    }

    /// How many requests are in each state (for `/metrics`).
    pub async fn state_counts(&self) -> Result<Vec<(String, i64)>, BrokerError> {
        Ok(self.store().state_counts().await?)
    }
}
