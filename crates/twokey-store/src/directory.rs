//! The directory an identity provider provisions over SCIM 2.0 (migration
//! 0045): users, groups, members. Rows change only through
//! [`crate::Change::directory`], so every change is in the ledger with it;
//! reads are plain queries.
//!
//! The directory says two things the broker acts on: whether an identity has
//! been deactivated (then [`crate::Change::acting`] makes every change it
//! would make fail inside the same transaction, so a racing approval loses),
//! and which groups a linked identity belongs to.

use serde_json::Value;
use sqlx::Row;
use twokey_core::Millis;

use crate::{Store, StoreError};

/// A provisioned user.
#[derive(Debug, Clone, PartialEq)]
pub struct ScimUserRow {
    /// SCIM id (server-assigned).
    pub id: String,
    /// `userName` as given.
    pub user_name: String,
    /// `externalId`, the provisioning client's id for the user.
    pub external_id: Option<String>,
    /// The twokey identity (`issuer|subject`) the user is linked to.
    pub identity: Option<String>,
    /// `active`.
    pub active: bool,
    /// Version, raised by every write (the ETag).
    pub version: i64,
    /// Created, Unix ms.
    pub created_at: Millis,
    /// Last modified, Unix ms.
    pub updated_at: Millis,
    /// The resource as stored, without `meta`.
    pub doc: Value,
}

/// A provisioned group.
#[derive(Debug, Clone, PartialEq)]
pub struct ScimGroupRow {
    /// SCIM id.
    pub id: String,
    /// `displayName`: the group name approval rules see.
    pub display_name: String,
    /// `externalId`.
    pub external_id: Option<String>,
    /// Version (the ETag).
    pub version: i64,
    /// Created, Unix ms.
    pub created_at: Millis,
    /// Last modified, Unix ms.
    pub updated_at: Millis,
    /// The resource as stored, without `meta` and `members`.
    pub doc: Value,
    /// Member user ids.
    pub members: Vec<String>,
}

/// One directory write of a [`crate::Change`].
#[derive(Debug, Clone)]
pub enum DirectoryWrite {
    /// Create (`expected_version` None) or replace a user, conditional on
    /// the version read.
    User {
        /// The new row (its version is set by the store).
        row: ScimUserRow,
        /// The version the change was computed from.
        expected_version: Option<i64>,
    },
    /// Delete a user and their memberships.
    DeleteUser {
        /// SCIM id.
        id: String,
    },
    /// Create or replace a group with its members.
    Group {
        /// The new row.
        row: ScimGroupRow,
        /// The version read.
        expected_version: Option<i64>,
    },
    /// Delete a group.
    DeleteGroup {
        /// SCIM id.
        id: String,
    },
}

/// What the directory says about one identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryPerson {
    /// SCIM id of the linked user.
    pub user_id: String,
    /// `active`.
    pub active: bool,
    /// `displayName` of every group the user is a member of.
    pub groups: Vec<String>,
    /// The user's display name (or userName).
    pub name: String,
    /// The primary (or first) email.
    pub email: Option<String>,
}

/// Applies `writes` inside the open transaction; refuses (`Deactivated`)
/// when `acting` names an identity the directory has deactivated.
pub(crate) async fn apply(
    tx: &mut sqlx::AnyConnection,
    now: Millis,
    acting: Option<&str>,
    writes: &[DirectoryWrite],
) -> Result<(), StoreError> {
    if let Some(identity) = acting {
        // The latest row linked to the identity decides (a user deleted and
        // provisioned again is active again).
        let latest = sqlx::query(
            "SELECT active FROM scim_users WHERE identity = $1 ORDER BY updated_at DESC, id DESC LIMIT 1",
        )
        .bind(identity)
        .fetch_optional(&mut *tx)
        .await?;
        let active: Option<i64> = latest.map(|r| r.try_get(0)).transpose()?;
        if active == Some(0) {
            return Err(StoreError::Deactivated(identity.to_string()));
        }
    }
    for w in writes {
        match w {
            DirectoryWrite::User {
                row,
                expected_version,
            } => put_user(tx, row, *expected_version).await?,
            DirectoryWrite::DeleteUser { id } => {
                let done = sqlx::query(
                    "UPDATE scim_users SET active = 0, deleted_at = $1, updated_at = $1, \
                     user_name_key = 'deleted:' || id, version = version + 1 \
                     WHERE id = $2 AND deleted_at IS NULL",
                )
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::Conflict);
                }
                sqlx::query("DELETE FROM scim_members WHERE user_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            DirectoryWrite::Group {
                row,
                expected_version,
            } => put_group(tx, row, *expected_version, now).await?,
            DirectoryWrite::DeleteGroup { id } => {
                let done = sqlx::query("DELETE FROM scim_groups WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::Conflict);
                }
                sqlx::query("DELETE FROM scim_members WHERE group_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
    }
    Ok(())
}

async fn put_user(
    tx: &mut sqlx::AnyConnection,
    row: &ScimUserRow,
    expected: Option<i64>,
) -> Result<(), StoreError> {
    let key = row.user_name.to_lowercase();
    let taken: i64 =
        sqlx::query("SELECT COUNT(*) FROM scim_users WHERE user_name_key = $1 AND id <> $2 AND deleted_at IS NULL")
            .bind(&key)
            .bind(&row.id)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
    if taken > 0 {
        return Err(StoreError::Duplicate(format!(
            "userName {:?} is already taken",
            row.user_name
        )));
    }
    let doc = row.doc.to_string();
    let active = i64::from(row.active);
    match expected {
        None => {
            sqlx::query(
                "INSERT INTO scim_users (id, user_name_key, external_id, identity, active, version, created_at, updated_at, doc) \
                 VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8)",
            )
            .bind(&row.id)
            .bind(&key)
            .bind(&row.external_id)
            .bind(&row.identity)
            .bind(active)
            .bind(row.created_at)
            .bind(row.updated_at)
            .bind(&doc)
            .execute(&mut *tx)
            .await?;
        }
        Some(v) => {
            let done = sqlx::query(
                "UPDATE scim_users SET user_name_key = $1, external_id = $2, identity = $3, active = $4, \
                 version = $5, updated_at = $6, doc = $7 WHERE id = $8 AND version = $9 AND deleted_at IS NULL",
            )
            .bind(&key)
            .bind(&row.external_id)
            .bind(&row.identity)
            .bind(active)
            .bind(v + 1)
            .bind(row.updated_at)
            .bind(&doc)
            .bind(&row.id)
            .bind(v)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Conflict);
            }
        }
    }
    Ok(())
}

async fn put_group(
    tx: &mut sqlx::AnyConnection,
    row: &ScimGroupRow,
    expected: Option<i64>,
    _now: Millis,
) -> Result<(), StoreError> {
    let doc = row.doc.to_string();
    match expected {
        None => {
            sqlx::query(
                "INSERT INTO scim_groups (id, display_name, external_id, version, created_at, updated_at, doc) \
                 VALUES ($1, $2, $3, 0, $4, $5, $6)",
            )
            .bind(&row.id)
            .bind(&row.display_name)
            .bind(&row.external_id)
            .bind(row.created_at)
            .bind(row.updated_at)
            .bind(&doc)
            .execute(&mut *tx)
            .await?;
        }
        Some(v) => {
            let done = sqlx::query(
                "UPDATE scim_groups SET display_name = $1, external_id = $2, version = $3, updated_at = $4, doc = $5 \
                 WHERE id = $6 AND version = $7",
            )
            .bind(&row.display_name)
            .bind(&row.external_id)
            .bind(v + 1)
            .bind(row.updated_at)
            .bind(&doc)
            .bind(&row.id)
            .bind(v)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Conflict);
            }
        }
    }
    sqlx::query("DELETE FROM scim_members WHERE group_id = $1")
        .bind(&row.id)
        .execute(&mut *tx)
        .await?;
    let mut members = row.members.clone();
    members.sort();
    members.dedup();
    for m in &members {
        let exists: i64 =
            sqlx::query("SELECT COUNT(*) FROM scim_users WHERE id = $1 AND deleted_at IS NULL")
                .bind(m)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
        if exists == 0 {
            return Err(StoreError::Missing(format!("no User with id {m:?}")));
        }
        sqlx::query("INSERT INTO scim_members (group_id, user_id) VALUES ($1, $2)")
            .bind(&row.id)
            .bind(m)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

const USER_COLS: &str =
    "id, external_id, identity, active, version, created_at, updated_at, doc FROM scim_users";
const LIVE: &str = "deleted_at IS NULL";

fn decode_user(r: &sqlx::any::AnyRow) -> Result<ScimUserRow, StoreError> {
    let id: String = r.try_get(0)?;
    let doc: String = r.try_get(7)?;
    let doc: Value =
        serde_json::from_str(&doc).map_err(|e| StoreError::Corrupt(id.clone(), e.to_string()))?;
    let active: i64 = r.try_get(3)?;
    Ok(ScimUserRow {
        user_name: doc["userName"].as_str().unwrap_or_default().to_string(),
        external_id: r.try_get(1)?,
        identity: r.try_get(2)?,
        active: active != 0,
        version: r.try_get(4)?,
        created_at: r.try_get(5)?,
        updated_at: r.try_get(6)?,
        doc,
        id,
    })
}

const GROUP_COLS: &str =
    "id, display_name, external_id, version, created_at, updated_at, doc FROM scim_groups";

fn decode_group(r: &sqlx::any::AnyRow) -> Result<ScimGroupRow, StoreError> {
    let id: String = r.try_get(0)?;
    let doc: String = r.try_get(6)?;
    let doc: Value =
        serde_json::from_str(&doc).map_err(|e| StoreError::Corrupt(id.clone(), e.to_string()))?;
    Ok(ScimGroupRow {
        display_name: r.try_get(1)?,
        external_id: r.try_get(2)?,
        version: r.try_get(3)?,
        created_at: r.try_get(4)?,
        updated_at: r.try_get(5)?,
        doc,
        members: Vec::new(),
        id,
    })
}

impl Store {
    /// One provisioned user.
    pub async fn scim_user(&self, id: &str) -> Result<Option<ScimUserRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {USER_COLS} WHERE id = $1 AND {LIVE}"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(decode_user).transpose()
    }

    /// Every provisioned user, oldest first (the SCIM layer filters and
    /// pages them).
    pub async fn scim_users(&self) -> Result<Vec<ScimUserRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLS} WHERE {LIVE} ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_user).collect()
    }

    /// One provisioned group with its members.
    pub async fn scim_group(&self, id: &str) -> Result<Option<ScimGroupRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {GROUP_COLS} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(mut g) = row.as_ref().map(decode_group).transpose()? else {
            return Ok(None);
        };
        g.members = self.scim_members_of(&g.id).await?;
        Ok(Some(g))
    }

    async fn scim_members_of(&self, group: &str) -> Result<Vec<String>, StoreError> {
        let rows =
            sqlx::query("SELECT user_id FROM scim_members WHERE group_id = $1 ORDER BY user_id")
                .bind(group)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(StoreError::from))
            .collect()
    }

    /// Every provisioned group with its members, oldest first.
    pub async fn scim_groups(&self) -> Result<Vec<ScimGroupRow>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {GROUP_COLS} ORDER BY created_at, id"))
            .fetch_all(&self.pool)
            .await?;
        let mut groups: Vec<ScimGroupRow> =
            rows.iter().map(decode_group).collect::<Result<_, _>>()?;
        let members = sqlx::query("SELECT group_id, user_id FROM scim_members ORDER BY user_id")
            .fetch_all(&self.pool)
            .await?;
        for m in &members {
            let g: String = m.try_get(0)?;
            let u: String = m.try_get(1)?;
            if let Some(group) = groups.iter_mut().find(|x| x.id == g) {
                group.members.push(u);
            }
        }
        Ok(groups)
    }

    /// Group names of the user `user_id`.
    pub async fn scim_groups_of(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT g.display_name FROM scim_members m JOIN scim_groups g ON g.id = m.group_id \
             WHERE m.user_id = $1 ORDER BY g.display_name",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(StoreError::from))
            .collect()
    }

    /// What the directory says about `identity` (`issuer|subject`), if a
    /// provisioned user is linked to it.
    pub async fn directory_person(
        &self,
        identity: &str,
    ) -> Result<Option<DirectoryPerson>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLS} WHERE identity = $1 ORDER BY updated_at DESC, id DESC LIMIT 1"
        ))
        .bind(identity)
        .fetch_optional(&self.pool)
        .await?;
        let Some(u) = row.as_ref().map(decode_user).transpose()? else {
            return Ok(None);
        };
        Ok(Some(self.person_of(&u).await?))
    }

    async fn person_of(&self, u: &ScimUserRow) -> Result<DirectoryPerson, StoreError> {
        Ok(DirectoryPerson {
            user_id: u.id.clone(),
            active: u.active,
            groups: self.scim_groups_of(&u.id).await?,
            name: person_name(&u.doc),
            email: primary_email(&u.doc),
        })
    }

    /// Every active provisioned user linked to an identity, with their
    /// groups: people the broker can notify before their first sign-in.
    pub async fn directory_people(&self) -> Result<Vec<(String, DirectoryPerson)>, StoreError> {
        let mut out = Vec::new();
        for u in self.scim_users().await? {
            if let (Some(identity), true) = (&u.identity, u.active) {
                out.push((identity.clone(), self.person_of(&u).await?));
            }
        }
        Ok(out)
    }
}

/// `displayName`, else `name.formatted`, else `userName`.
fn person_name(doc: &Value) -> String {
    doc["displayName"]
        .as_str()
        .or_else(|| doc["name"]["formatted"].as_str())
        .or_else(|| doc["userName"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The primary email, else the first one.
fn primary_email(doc: &Value) -> Option<String> {
    let emails = doc["emails"].as_array()?;
    emails
        .iter()
        .find(|e| e["primary"] == Value::Bool(true))
        .or_else(|| emails.first())
        .and_then(|e| e["value"].as_str())
        .map(String::from)
}
