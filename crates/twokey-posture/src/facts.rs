//! What a scan collected, as plain serde structs: the input of every check.
//!
//! Collection ([`crate::collect`]) fills them from AWS; tests build them by
//! hand or read them from JSON (`twokey posture aws --facts FILE` evaluates
//! recorded facts without AWS). Every part that can fail to be collected is a
//! [`Collected`], so one denied call makes the checks that need it report an
//! error for that resource and leaves every other check alone.

use serde::{Deserialize, Serialize};

pub mod baseline;

pub use baseline::{AccountBaseline, RegionBaseline};

/// A collected value, or why it could not be collected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Collected<T> {
    /// Collected.
    Ok(T),
    /// Not collected: the AWS call, what it was for, and AWS's answer.
    Error(String),
}

impl<T> Collected<T> {
    /// The value, or the error text.
    pub fn as_result(&self) -> Result<&T, &str> {
        match self {
            Self::Ok(v) => Ok(v),
            Self::Error(e) => Err(e),
        }
    }
}

impl<T: Default> Default for Collected<T> {
    fn default() -> Self {
        Self::Ok(T::default())
    }
}

/// Everything one scan collected.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    /// When collection started (Unix ms); "now" for every check.
    pub collected_at_ms: i64,
    /// The organisation, when the scanned account is in one.
    #[serde(default)]
    pub organization: Option<Organization>,
    /// Each account scanned (the management account first).
    #[serde(default)]
    pub accounts: Vec<Account>,
    /// The `aws_iam_assume` targets of the twokey policy in force.
    #[serde(default)]
    pub twokey_targets: Vec<AssumeTarget>,
    /// The principals twokey itself runs as (its gateway role, the roles
    /// it assumes in target accounts).
    #[serde(default)]
    pub twokey_gateway: Vec<String>,
    /// Centralized root access for member accounts
    /// (`iam:ListOrganizationsFeatures` in the management account); `None`
    /// when it was not read (no organisation, or facts recorded before it).
    #[serde(default)]
    pub root_access: Option<Collected<RootAccess>>,
    /// The secrets under custody in twokey (`[[custody]]` of the policy),
    /// with their sealing state when the twokey server was read.
    #[serde(default)]
    pub custody: Vec<CustodyFact>,
    /// The findings of a GitHub posture scan (`twokey posture github
    /// --format json`, given with `--github-results`), for the guard rails
    /// kept as code; `None` when none was given.
    #[serde(default)]
    pub github: Option<Vec<crate::model::Finding>>,
}

impl Facts {
    /// The account with this id, when it was scanned.
    pub fn account(&self, id: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.id == id)
    }

    /// The bucket `name` with its owner, among the scanned accounts.
    pub fn bucket(&self, name: &str) -> Option<(&Account, &Bucket)> {
        self.accounts.iter().find_map(|a| match &a.scan {
            Collected::Ok(s) => s.buckets.iter().find(|b| b.name == name).map(|b| (a, b)),
            Collected::Error(_) => None,
        })
    }

    /// The account findings about the organisation as a whole are filed
    /// under: the management account, else the first scanned; `""` when none.
    pub fn home_account(&self) -> &str {
        self.accounts
            .iter()
            .find(|a| a.management)
            .or(self.accounts.first())
            .map_or("", |a| a.id.as_str())
    }

    /// Every collected regional baseline, with its account id and region.
    pub fn region_baselines(&self) -> impl Iterator<Item = (&str, &str, &RegionBaseline)> {
        self.accounts.iter().flat_map(|a| {
            let regions = match &a.scan {
                Collected::Ok(s) => s.regions.as_slice(),
                Collected::Error(_) => &[],
            };
            regions.iter().filter_map(move |r| {
                r.baseline
                    .as_ref()
                    .map(|b| (a.id.as_str(), r.name.as_str(), b))
            })
        })
    }

    /// Every trail of every scanned account and region, with its account.
    pub fn trails(&self) -> impl Iterator<Item = (&Account, &Trail)> {
        self.accounts.iter().flat_map(|a| {
            let regions = match &a.scan {
                Collected::Ok(s) => s.regions.as_slice(),
                Collected::Error(_) => &[],
            };
            regions.iter().flat_map(move |r| {
                let trails = match &r.trails {
                    Collected::Ok(t) => t.as_slice(),
                    Collected::Error(_) => &[],
                };
                trails.iter().map(move |t| (a, t))
            })
        })
    }
}

/// The AWS organisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Organization {
    /// `o-...`.
    pub id: String,
    /// The management account id.
    pub management_account: String,
}

/// One AWS account and what was collected in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// 12-digit id.
    pub id: String,
    /// Its name in the organisation.
    #[serde(default)]
    pub name: Option<String>,
    /// The organisation's management account (or the only account scanned).
    #[serde(default)]
    pub management: bool,
    /// The path of OU names from the root (`Root/Workloads/Prod`).
    #[serde(default)]
    pub ou_path: Option<String>,
    /// The SCPs in force for the account, one level per target from the
    /// root through its OUs to the account itself (read in the management
    /// account); empty outside an organisation.
    #[serde(default)]
    pub scps: Collected<Vec<ScpLevel>>,
    /// What was collected; an error when the account could not be reached
    /// (the role could not be assumed, the account is suspended, ...).
    pub scan: Collected<AccountScan>,
}

/// The facts of one reached account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountScan {
    /// IAM (global).
    pub iam: Collected<Iam>,
    /// Names of the S3 buckets the account owns (`ListBuckets`).
    #[serde(default)]
    pub bucket_names: Vec<String>,
    /// Those of them some trail writes to, with their details.
    #[serde(default)]
    pub buckets: Vec<Bucket>,
    /// Per region.
    #[serde(default)]
    pub regions: Vec<Region>,
    /// Encryption, logging and identity beyond the guard rails; `None` in
    /// facts recorded before these checks existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<AccountBaseline>,
}

/// IAM facts of one account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Iam {
    /// `GetAccountSummary`.
    pub summary: AccountSummary,
    /// A virtual MFA device is assigned to the root user (`ListVirtualMFADevices`).
    #[serde(default)]
    pub root_virtual_mfa: bool,
    /// IAM users.
    #[serde(default)]
    pub users: Vec<User>,
    /// Customer-managed policies (default version) and inline policies.
    #[serde(default)]
    pub policies: Vec<PolicyDocument>,
    /// `GetAccountAuthorizationDetails` in the API's JSON shape (what
    /// `twokey_iam::AuthDetails` reads): the graph of who can become whom.
    /// `None` in facts recorded before it was collected.
    #[serde(default)]
    pub authorization: Collected<Option<serde_json::Value>>,
    /// `GenerateServiceLastAccessedDetails` per role, when asked for
    /// (`--service-last-accessed`); `None` when not collected.
    #[serde(default)]
    pub service_last_accessed: Option<Collected<Vec<ServiceAccess>>>,
}

/// The services a principal's policies grant and when it last used each
/// (`GetServiceLastAccessedDetails`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccess {
    /// The user or role.
    pub arn: String,
    /// Service namespace → last authenticated (Unix ms), `None` when never.
    pub services: Vec<(String, Option<i64>)>,
}

/// The flags of `GetAccountSummary` the checks use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSummary {
    /// `AccountMFAEnabled` = 1: the root user has an MFA device.
    pub account_mfa_enabled: bool,
    /// `AccountAccessKeysPresent` = 1: the root user has access keys.
    pub account_access_keys_present: bool,
}

/// An IAM user and its long-term credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// User name.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// When it was created (Unix ms).
    pub created_ms: i64,
    /// A console password (login profile), when it has one.
    #[serde(default)]
    pub password: Option<Password>,
    /// Its access keys.
    #[serde(default)]
    pub access_keys: Vec<AccessKey>,
}

/// A user's console password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Password {
    /// When it was set (Unix ms).
    pub created_ms: i64,
    /// `PasswordLastUsed` (Unix ms), absent when never used.
    #[serde(default)]
    pub last_used_ms: Option<i64>,
}

/// An access key (its id only; never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKey {
    /// `AKIA...`.
    pub id: String,
    /// `Status` = Active.
    pub active: bool,
    /// When it was created (Unix ms).
    pub created_ms: i64,
    /// `GetAccessKeyLastUsed` (Unix ms), absent when never used.
    #[serde(default)]
    pub last_used_ms: Option<i64>,
}

/// Where a policy document is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    /// A customer-managed policy (its default version).
    Managed,
    /// Inline on a user.
    UserInline,
    /// Inline on a role.
    RoleInline,
    /// Inline on a group.
    GroupInline,
}

/// An IAM identity policy document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyDocument {
    /// The policy ARN (managed) or `user/NAME/POLICY`-style name (inline).
    pub name: String,
    /// Managed or inline, and on what.
    pub kind: PolicyKind,
    /// The JSON document.
    pub document: serde_json::Value,
}

/// An S3 bucket a trail writes to, read in the account that owns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Bucket name.
    pub name: String,
    /// `GetObjectLockConfiguration`; `None` when Object Lock is not enabled.
    pub object_lock: Collected<Option<ObjectLock>>,
    /// `GetBucketPolicy`; `None` when the bucket has none.
    #[serde(default)]
    pub policy: Collected<Option<String>>,
}

/// A bucket's Object Lock configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectLock {
    /// `ObjectLockEnabled` = Enabled.
    pub enabled: bool,
    /// Default retention mode (`COMPLIANCE`, `GOVERNANCE`), when a default is set.
    #[serde(default)]
    pub mode: Option<String>,
    /// Default retention in days, when given in days.
    #[serde(default)]
    pub days: Option<i32>,
    /// Default retention in years, when given in years.
    #[serde(default)]
    pub years: Option<i32>,
}

impl ObjectLock {
    /// The default retention in days (years count 365 days), if any.
    pub fn retention_days(&self) -> Option<i64> {
        match (self.days, self.years) {
            (Some(d), _) => Some(i64::from(d)),
            (None, Some(y)) => Some(i64::from(y) * 365),
            (None, None) => None,
        }
    }
}

/// The regional facts of one account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Region {
    /// `eu-west-1`.
    pub name: String,
    /// Trails whose home region this is.
    pub trails: Collected<Vec<Trail>>,
    /// AWS Backup vaults.
    pub backup_vaults: Collected<Vec<Vault>>,
    /// AWS Config.
    pub config: Collected<ConfigService>,
    /// GuardDuty detectors.
    pub guardduty: Collected<Vec<Detector>>,
    /// Security Hub: the hub ARN when enabled.
    pub securityhub: Collected<Option<String>>,
    /// Encryption, logging and identity beyond the guard rails; `None` in
    /// facts recorded before these checks existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<RegionBaseline>,
}

/// A CloudTrail trail with its status and selectors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trail {
    /// Trail ARN.
    pub arn: String,
    /// Trail name.
    pub name: String,
    /// Home region.
    pub home_region: String,
    /// `IsMultiRegionTrail`.
    pub multi_region: bool,
    /// `IsOrganizationTrail`.
    pub organization: bool,
    /// `GetTrailStatus.IsLogging`.
    pub logging: bool,
    /// `LogFileValidationEnabled`.
    pub log_file_validation: bool,
    /// `S3BucketName`.
    pub bucket: String,
    /// Management events recorded: read.
    pub management_read: bool,
    /// Management events recorded: write.
    pub management_write: bool,
    /// `KmsKeyId`: the KMS key the trail's log files are encrypted with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key: Option<String>,
}

/// An AWS Backup vault.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vault {
    /// Vault ARN.
    pub arn: String,
    /// Vault name.
    pub name: String,
    /// `NumberOfRecoveryPoints`.
    pub recovery_points: i64,
    /// `Locked`.
    pub locked: bool,
    /// `LockDate` (Unix ms): present only for a compliance-mode lock; from
    /// then on nobody, root included, can remove the lock.
    #[serde(default)]
    pub lock_date_ms: Option<i64>,
    /// `MinRetentionDays`.
    #[serde(default)]
    pub min_retention_days: Option<i64>,
}

/// AWS Config in one region.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigService {
    /// Configuration recorders.
    pub recorders: Vec<Recorder>,
    /// Number of delivery channels.
    pub delivery_channels: usize,
}

/// A Config recorder and its status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorder {
    /// Recorder name.
    pub name: String,
    /// `DescribeConfigurationRecorderStatus.Recording`.
    pub recording: bool,
}

/// A GuardDuty detector.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detector {
    /// Detector id.
    pub id: String,
    /// `Status` = ENABLED.
    pub enabled: bool,
}

/// An `aws_iam_assume` target of the twokey policy, with its role's trust.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssumeTarget {
    /// The entitlement's name.
    pub entitlement: String,
    /// The target role.
    pub role_arn: String,
    /// Identity name → principal ARN, the people who request it.
    pub principals: Vec<(String, String)>,
    /// The role's trust policy document (`GetRole`), URL-decoded.
    pub trust: Collected<String>,
}

/// The SCPs attached to one target (the root, an OU or the account).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScpLevel {
    /// `r-...`, `ou-...` or the account id.
    pub target: String,
    /// The policies attached there.
    pub policies: Vec<Scp>,
}

/// One service control policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scp {
    /// `p-...` (or `p-FullAWSAccess`).
    pub id: String,
    /// Its name.
    pub name: String,
    /// The JSON document.
    pub document: String,
}

/// Centralized root access: the features enabled for the organisation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootAccess {
    /// The organisation it was read for (`o-...`), when AWS said.
    #[serde(default)]
    pub organization_id: Option<String>,
    /// `EnabledFeatures`: `RootCredentialsManagement` (member accounts may
    /// run without root credentials) and `RootSessions` (`sts:AssumeRoot`).
    pub enabled_features: Vec<String>,
}

impl RootAccess {
    /// The feature that lets member accounts run without root credentials.
    pub const CREDENTIALS_MANAGEMENT: &'static str = "RootCredentialsManagement";
    /// The feature that lets the management account open root task sessions.
    pub const ROOT_SESSIONS: &'static str = "RootSessions";

    /// Whether `feature` is enabled.
    pub fn has(&self, feature: &str) -> bool {
        self.enabled_features.iter().any(|f| f == feature)
    }
}

/// A secret under custody in twokey, as declared and (when read) its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustodyFact {
    /// The secret's id (`root-prod`).
    pub secret: String,
    /// The account whose root it belongs to.
    pub account: String,
    /// `password`, `mfa_recovery`, `totp_seed` or `console_password`.
    pub kind: String,
    /// Shares needed to open it.
    pub threshold: u32,
    /// The custodians, by identity.
    pub custodians: Vec<String>,
    /// Who holds the account's other part (the hardware key), by identity.
    #[serde(default)]
    pub held_apart_from: Vec<String>,
    /// Its sealing state from the twokey server; `None` when not read.
    #[serde(default)]
    pub state: Option<CustodyState>,
}

/// A custody secret's sealing state (`GET /v1/custody/secrets`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustodyState {
    /// Sealing generation; 0: never sealed.
    pub generation: u64,
    /// Released since its last sealing: it must be rotated and sealed again.
    pub needs_rotation: bool,
    /// When it was last sealed (Unix ms).
    #[serde(default)]
    pub sealed_at_ms: Option<i64>,
    /// When it was last released (Unix ms).
    #[serde(default)]
    pub released_at_ms: Option<i64>,
    /// The request it was last released for.
    #[serde(default)]
    pub released_for: Option<String>,
}
