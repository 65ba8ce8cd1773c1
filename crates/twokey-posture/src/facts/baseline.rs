//! Facts of the rest of the enterprise baseline: encryption, logging and
//! identity beyond the two-person guard rails. Each service is its own
//! [`Collected`], so one denied call leaves the others; the whole part is
//! optional in recorded facts (a file written before these checks existed
//! judges none of them, rather than failing them on missing data).

use serde::{Deserialize, Serialize};

use super::Collected;

/// Account-wide (global) baseline facts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountBaseline {
    /// Every bucket the account owns, with encryption and access logging.
    pub buckets: Collected<Vec<BucketSettings>>,
    /// IAM identity providers (SAML and OIDC provider ARNs).
    pub identity_providers: Collected<Vec<String>>,
    /// The account password policy; `None` when none is set.
    pub password_policy: Collected<Option<PasswordPolicy>>,
}

/// A bucket's default encryption and server access logging.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketSettings {
    /// Bucket name.
    pub name: String,
    /// Default encryption algorithm (`AES256`, `aws:kms`, `aws:kms:dsse`);
    /// `None` when the bucket has no default encryption configuration.
    #[serde(default)]
    pub encryption: Option<String>,
    /// The KMS key of SSE-KMS, when one is named.
    #[serde(default)]
    pub kms_key: Option<String>,
    /// Server access logging target bucket, when logging is on.
    #[serde(default)]
    pub logging_target: Option<String>,
}

/// `GetAccountPasswordPolicy`, the parts the check judges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordPolicy {
    /// `MinimumPasswordLength`.
    pub minimum_length: i32,
    /// `RequireSymbols`.
    pub require_symbols: bool,
    /// `RequireNumbers`.
    pub require_numbers: bool,
    /// `RequireUppercaseCharacters`.
    pub require_uppercase: bool,
    /// `RequireLowercaseCharacters`.
    pub require_lowercase: bool,
    /// `PasswordReusePrevention` (number of previous passwords), when set.
    #[serde(default)]
    pub reuse_prevention: Option<i32>,
    /// `MaxPasswordAge` in days, when set.
    #[serde(default)]
    pub max_age_days: Option<i32>,
}

/// Regional baseline facts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegionBaseline {
    /// `ec2:GetEbsEncryptionByDefault`.
    pub ebs_encryption_by_default: Collected<bool>,
    /// RDS DB instances and Aurora clusters.
    pub databases: Collected<Vec<Database>>,
    /// Redshift clusters.
    pub redshift: Collected<Vec<Warehouse>>,
    /// Customer-managed KMS keys.
    pub kms_keys: Collected<Vec<KmsKey>>,
    /// The KMS key each Backup vault encrypts with.
    pub vault_keys: Collected<Vec<VaultKey>>,
    /// SNS topics.
    pub topics: Collected<Vec<Encrypted>>,
    /// SQS queues.
    pub queues: Collected<Vec<Encrypted>>,
    /// VPCs with their flow logs.
    pub vpcs: Collected<Vec<Vpc>>,
    /// Security group id → VPC id.
    pub security_groups: Collected<Vec<(String, String)>>,
    /// CloudWatch Logs groups with their retention.
    pub log_groups: Collected<Vec<LogGroup>>,
    /// Trails of this region that deliver to CloudWatch Logs: (trail ARN, log group ARN).
    pub trail_log_groups: Collected<Vec<(String, String)>>,
    /// EventBridge rules on the default bus that match CloudTrail API calls.
    pub cloudtrail_rules: Collected<Vec<String>>,
    /// IAM Identity Center instances (`sso-admin:ListInstances`).
    pub identity_center: Collected<Vec<String>>,
}

/// An RDS DB instance or Aurora cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Database {
    /// ARN.
    pub arn: String,
    /// `StorageEncrypted`.
    pub encrypted: bool,
    /// The KMS key, when encrypted.
    #[serde(default)]
    pub kms_key: Option<String>,
    /// An Aurora cluster (`true`) or a DB instance.
    pub cluster: bool,
}

/// A Redshift cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warehouse {
    /// Cluster identifier.
    pub id: String,
    /// `Encrypted`.
    pub encrypted: bool,
    /// The KMS key, when encrypted with one.
    #[serde(default)]
    pub kms_key: Option<String>,
}

/// A customer-managed KMS key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KmsKey {
    /// Key ARN.
    pub arn: String,
    /// `KeyState` = Enabled.
    pub enabled: bool,
    /// Symmetric encryption key (the only kind with automatic rotation).
    pub symmetric: bool,
    /// `GetKeyRotationStatus.KeyRotationEnabled`.
    pub rotation: bool,
    /// The key policy (`GetKeyPolicy`, name `default`).
    #[serde(default)]
    pub policy: serde_json::Value,
}

/// The encryption key of one Backup vault.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultKey {
    /// Vault ARN.
    pub vault: String,
    /// `EncryptionKeyArn`, when given.
    #[serde(default)]
    pub key_arn: Option<String>,
    /// The key is customer-managed (`KeyManager` = CUSTOMER); `None` when
    /// it could not be told (the key is in another account).
    #[serde(default)]
    pub customer_managed: Option<bool>,
}

/// A topic or queue and its server-side encryption key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encrypted {
    /// Topic or queue ARN (a queue URL where no ARN was read).
    pub arn: String,
    /// `KmsMasterKeyId`, when set.
    #[serde(default)]
    pub kms_key: Option<String>,
    /// SQS-managed encryption (`SqsManagedSseEnabled`).
    #[serde(default)]
    pub managed_sse: bool,
}

/// A VPC and whether it has an active flow log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vpc {
    /// `vpc-...`.
    pub id: String,
    /// Flow log ids that are active on it.
    pub flow_logs: Vec<String>,
}

/// A CloudWatch Logs group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogGroup {
    /// ARN.
    pub arn: String,
    /// `retentionInDays`; `None`: kept forever.
    #[serde(default)]
    pub retention_days: Option<i32>,
}
