//! The facts from AWS, on the official SDK.
//!
//! The management account (or the only account) is reached with the
//! default credential chain; every other account of the organisation
//! through a role assumed in it (default [`DEFAULT_MEMBER_ROLE`]). Accounts
//! are scanned [`Options::concurrency`] at a time, their regions at once;
//! the SDK retries throttling with backoff (`twokey_aws::client`'s
//! settings). A call that fails becomes a [`Collected::Error`] naming the
//! call, the resource and AWS's answer: one denied account or region never
//! stops the rest.
//!
//! Connection conventions are twokey-aws's ([`Connection`]: `endpoint_url`,
//! region, rustls).

mod account;
mod authorization;
mod baseline;
pub mod custody;
mod region;
mod root;

use std::sync::Arc;

use anyhow::Context;
use aws_config::{Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_iam::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use twokey_aws::client::{Arn, Connection};

use crate::facts::{
    Account, AssumeTarget, Bucket, Collected, Facts, ObjectLock, Organization, Scp, ScpLevel,
};

/// The role assumed in member accounts unless another is named: the one AWS
/// Organizations creates in every account it creates.
pub const DEFAULT_MEMBER_ROLE: &str = "OrganizationAccountAccessRole";
/// Session name of the assumed roles (CloudTrail shows it).
pub const SESSION_NAME: &str = "twokey-posture";

/// What to scan and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The management account's connection (region = where global calls go).
    pub connection: Connection,
    /// Regions to scan; empty: every region enabled in the management account.
    pub regions: Vec<String>,
    /// Role assumed in each member account.
    pub member_role: String,
    /// Accounts scanned at once (at least 1).
    pub concurrency: usize,
    /// The `aws_iam_assume` targets of the twokey policy, to read their trust.
    pub targets: Vec<Target>,
    /// The principals twokey runs as (reported as such by the IAM graph).
    pub gateway: Vec<String>,
    /// Also ask `GenerateServiceLastAccessedDetails` for every role (one
    /// job per role: slow on large accounts).
    pub service_last_accessed: bool,
}

/// An `aws_iam_assume` target to read.
#[derive(Debug, Clone)]
pub struct Target {
    /// The entitlement.
    pub entitlement: String,
    /// The role.
    pub role_arn: String,
    /// Identity name → principal ARN.
    pub principals: Vec<(String, String)>,
    /// The entitlement's own connection, for a role outside the scanned accounts.
    pub connection: Connection,
}

/// An account to scan.
#[derive(Debug, Clone)]
struct Scope {
    id: String,
    name: Option<String>,
    management: bool,
    ou_path: Option<String>,
    /// Why it is not scanned (suspended), if so.
    skip: Option<String>,
    /// Targets from the root to the account (`r-...`, `ou-...`, the id).
    chain: Vec<String>,
    /// The SCPs in force, level by level.
    scps: Collected<Vec<ScpLevel>>,
}

/// A failed AWS call as one line: the call, the resource, AWS's code and message.
pub(crate) fn failed<E, R>(action: &str, resource: &str, err: SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match &err {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("Unknown");
            let msg = se.err().message().unwrap_or("").trim();
            format!("{action} on {resource}: {code}: {msg}")
        }
        _ => format!("{action} on {resource}: {}", DisplayErrorContext(&err)),
    }
}

/// The error code AWS answered with, if it did.
pub(crate) fn code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(se) => se.err().code(),
        _ => None,
    }
}

/// Unix ms of an SDK time.
pub(crate) fn ms(t: Option<&aws_smithy_types::DateTime>) -> Option<i64> {
    t.and_then(|t| t.to_millis().ok())
}

/// Told of each account as its scan finishes: (account, done, total).
pub type Progress = Arc<dyn Fn(&str, usize, usize) + Send + Sync>;

/// Collects the facts; `progress` is told each account as it finishes
/// (`done`, `total`). Fails only when the starting credentials do not work.
pub async fn collect(opts: &Options, now_ms: i64, progress: Progress) -> anyhow::Result<Facts> {
    let base = opts.connection.load().await;
    let me = aws_sdk_sts::Client::new(&base)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(failed(
                "sts:GetCallerIdentity",
                "the starting credentials",
                e
            ))
        })?
        .account()
        .map(str::to_string)
        .context("sts:GetCallerIdentity answered no account")?;
    let (organization, scopes) = organization(&base, &me).await?;
    let regions = if opts.regions.is_empty() {
        enabled_regions(&base).await?
    } else {
        opts.regions.clone()
    };
    let total = scopes.len();
    let limit = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for (i, scope) in scopes.into_iter().enumerate() {
        let (limit, base, regions) = (limit.clone(), base.clone(), regions.clone());
        let role = opts.member_role.clone();
        let me = me.clone();
        let sla = opts.service_last_accessed;
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let config = if scope.skip.is_some() {
                None
            } else if scope.id == me {
                Some(Ok(base.clone()))
            } else {
                Some(assume(&base, &scope.id, &role).await)
            };
            let scan = match (&scope.skip, config) {
                (Some(why), _) => Collected::Error(why.clone()),
                (None, Some(Ok(c))) => {
                    Collected::Ok(account::scan(&c, &scope.id, &regions, sla).await)
                }
                (None, Some(Err(e))) => Collected::Error(e),
                (None, None) => Collected::Error("not scanned".into()),
            };
            (i, scope, scan)
        });
    }
    let gathered = async {
        let mut accounts: Vec<(usize, Account)> = Vec::with_capacity(total);
        while let Some(done) = tasks.join_next().await {
            let (i, scope, scan) = done.context("an account scan panicked")?;
            progress(&scope.id, accounts.len() + 1, total);
            accounts.push((
                i,
                Account {
                    id: scope.id,
                    name: scope.name,
                    management: scope.management,
                    ou_path: scope.ou_path,
                    scps: scope.scps,
                    scan,
                },
            ));
        }
        accounts.sort_by_key(|(i, _)| *i);
        anyhow::Ok(accounts)
    };
    // The organisation's root-access feature is read while the accounts
    // are scanned, not after them.
    let in_organization = organization.is_some();
    let root_access = async {
        if in_organization {
            Some(root::root_access(&base).await)
        } else {
            None
        }
    };
    let (accounts, root_access) = tokio::join!(gathered, root_access);
    let mut facts = Facts {
        collected_at_ms: now_ms,
        organization,
        accounts: accounts?.into_iter().map(|(_, a)| a).collect(),
        twokey_targets: vec![],
        twokey_gateway: opts.gateway.clone(),
        root_access,
        custody: vec![],
        github: None,
    };
    trail_buckets(&mut facts, &base, &me, &opts.member_role).await;
    facts.twokey_targets = targets(&opts.targets, &base, &me, &opts.member_role, &facts).await;
    Ok(facts)
}

/// The SDK configuration of `role` in `account`, checked with one STS call
/// so a role that cannot be assumed is named at once.
async fn assume(base: &SdkConfig, account: &str, role: &str) -> Result<SdkConfig, String> {
    let arn = format!("arn:aws:iam::{account}:role/{role}");
    let provider = aws_config::sts::AssumeRoleProvider::builder(&arn)
        .session_name(SESSION_NAME)
        .configure(base)
        .build()
        .await;
    let config = base
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        .build();
    match aws_sdk_sts::Client::new(&config)
        .get_caller_identity()
        .send()
        .await
    {
        Ok(_) => Ok(config),
        Err(e) => Err(format!(
            "could not assume {arn}: {}",
            failed("sts:AssumeRole", &arn, e)
        )),
    }
}

/// The organisation and the accounts to scan (management first); just the
/// caller's account when it is in no organisation.
async fn organization(
    base: &SdkConfig,
    me: &str,
) -> anyhow::Result<(Option<Organization>, Vec<Scope>)> {
    let org = aws_sdk_organizations::Client::new(base);
    let described = match org.describe_organization().send().await {
        Ok(o) => o,
        Err(e) if code(&e) == Some("AWSOrganizationsNotInUseException") => {
            let only = Scope {
                id: me.to_string(),
                name: None,
                management: true,
                ou_path: None,
                skip: None,
                chain: vec![],
                scps: Collected::Ok(vec![]),
            };
            return Ok((None, vec![only]));
        }
        Err(e) => anyhow::bail!(failed(
            "organizations:DescribeOrganization",
            "the organisation",
            e
        )),
    };
    let o = described
        .organization()
        .context("DescribeOrganization answered no organisation")?;
    let organization = Organization {
        id: o.id().unwrap_or_default().to_string(),
        management_account: o.master_account_id().unwrap_or_default().to_string(),
    };
    let roots = org
        .list_roots()
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| anyhow::anyhow!(failed("organizations:ListRoots", "the organisation", e)))?;
    let mut scopes = Vec::new();
    // Walk the tree from each root, so each account knows its OU path.
    let mut parents: Vec<(String, String, Vec<String>)> = roots
        .iter()
        .flat_map(|p| p.roots())
        .map(|r| {
            let id = r.id().unwrap_or_default().to_string();
            (id.clone(), r.name().unwrap_or("Root").to_string(), vec![id])
        })
        .collect();
    while let Some((parent, path, chain)) = parents.pop() {
        let accounts = org
            .list_accounts_for_parent()
            .parent_id(&parent)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| {
                anyhow::anyhow!(failed("organizations:ListAccountsForParent", &parent, e))
            })?;
        for a in accounts.iter().flat_map(|p| p.accounts()) {
            let id = a.id().unwrap_or_default().to_string();
            let state = a
                .state()
                .map(|s| s.as_str().to_string())
                .or_else(|| a.status().map(|s| s.as_str().to_string()))
                .unwrap_or_else(|| "ACTIVE".into());
            scopes.push(Scope {
                management: id == organization.management_account,
                skip: (state != "ACTIVE").then(|| format!("account {id} is {state}: not scanned")),
                name: a.name().map(str::to_string),
                ou_path: Some(path.clone()),
                chain: chain.iter().cloned().chain([id.clone()]).collect(),
                scps: Collected::Ok(vec![]),
                id,
            });
        }
        let ous = org
            .list_organizational_units_for_parent()
            .parent_id(&parent)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| {
                anyhow::anyhow!(failed(
                    "organizations:ListOrganizationalUnitsForParent",
                    &parent,
                    e
                ))
            })?;
        for ou in ous.iter().flat_map(|p| p.organizational_units()) {
            let id = ou.id().unwrap_or_default().to_string();
            parents.push((
                id.clone(),
                format!("{path}/{}", ou.name().unwrap_or_default()),
                chain.iter().cloned().chain([id]).collect(),
            ));
        }
    }
    let mut cache = std::collections::BTreeMap::new();
    for s in &mut scopes {
        s.scps = scps(&org, &s.chain, &mut cache).await;
    }
    scopes.sort_by(|a, b| (!a.management, &a.id).cmp(&(!b.management, &b.id)));
    Ok((Some(organization), scopes))
}

/// The SCPs attached at each target of `chain` (`ListPoliciesForTarget`,
/// `DescribePolicy`; each target and policy read once per scan).
async fn scps(
    org: &aws_sdk_organizations::Client,
    chain: &[String],
    cache: &mut std::collections::BTreeMap<String, Result<ScpLevel, String>>,
) -> Collected<Vec<ScpLevel>> {
    use aws_sdk_organizations::types::PolicyType;
    let mut levels = Vec::new();
    for target in chain {
        if !cache.contains_key(target) {
            let read = async {
                let pages = org
                    .list_policies_for_target()
                    .target_id(target)
                    .filter(PolicyType::ServiceControlPolicy)
                    .into_paginator()
                    .send()
                    .try_collect()
                    .await
                    .map_err(|e| failed("organizations:ListPoliciesForTarget", target, e))?;
                let mut policies = Vec::new();
                for p in pages.iter().flat_map(|p| p.policies()) {
                    let id = p.id().unwrap_or_default();
                    let d = org
                        .describe_policy()
                        .policy_id(id)
                        .send()
                        .await
                        .map_err(|e| failed("organizations:DescribePolicy", id, e))?;
                    policies.push(Scp {
                        id: id.to_string(),
                        name: p.name().unwrap_or_default().to_string(),
                        document: d
                            .policy()
                            .and_then(|p| p.content())
                            .unwrap_or_default()
                            .to_string(),
                    });
                }
                Ok(ScpLevel {
                    target: target.clone(),
                    policies,
                })
            };
            let level = read.await;
            cache.insert(target.clone(), level);
        }
        match cache.get(target) {
            Some(Ok(l)) => levels.push(l.clone()),
            Some(Err(e)) => return Collected::Error(e.clone()),
            None => return Collected::Error(format!("SCPs of {target} not read")),
        }
    }
    Collected::Ok(levels)
}

/// Regions enabled in the management account (`ec2:DescribeRegions`).
async fn enabled_regions(base: &SdkConfig) -> anyhow::Result<Vec<String>> {
    let out = aws_sdk_ec2::Client::new(base)
        .describe_regions()
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(failed("ec2:DescribeRegions", "the management account", e)))?;
    let mut v: Vec<String> = out
        .regions()
        .iter()
        .filter_map(|r| r.region_name().map(str::to_string))
        .collect();
    v.sort();
    Ok(v)
}

/// The SDK configuration for a scanned account (again: configurations are
/// cheap, and assuming twice keeps the account tasks independent).
async fn config_for(
    base: &SdkConfig,
    me: &str,
    account: &str,
    role: &str,
) -> Result<SdkConfig, String> {
    if account == me {
        Ok(base.clone())
    } else {
        assume(base, account, role).await
    }
}

/// Reads the Object Lock configuration of every trail's bucket in the
/// scanned account that owns it.
async fn trail_buckets(facts: &mut Facts, base: &SdkConfig, me: &str, role: &str) {
    let names: std::collections::BTreeSet<String> =
        facts.trails().map(|(_, t)| t.bucket.clone()).collect();
    for account in &mut facts.accounts {
        let Collected::Ok(scan) = &mut account.scan else {
            continue;
        };
        let owned: Vec<&String> = names
            .iter()
            .filter(|n| scan.bucket_names.contains(n))
            .collect();
        if owned.is_empty() {
            continue;
        }
        let config = config_for(base, me, &account.id, role).await;
        for name in owned {
            let object_lock = match &config {
                Ok(c) => object_lock(c, name).await,
                Err(e) => Collected::Error(e.clone()),
            };
            let policy = match &config {
                Ok(c) => bucket_policy(c, name).await,
                Err(e) => Collected::Error(e.clone()),
            };
            scan.buckets.push(Bucket {
                name: name.clone(),
                object_lock,
                policy,
            });
        }
    }
}

/// `GetBucketPolicy` (who can delete the log data is decided with it).
async fn bucket_policy(config: &SdkConfig, bucket: &str) -> Collected<Option<String>> {
    match aws_sdk_s3::Client::new(config)
        .get_bucket_policy()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(o) => Collected::Ok(o.policy().map(str::to_string)),
        Err(e) if code(&e) == Some("NoSuchBucketPolicy") => Collected::Ok(None),
        Err(e) => Collected::Error(failed("s3:GetBucketPolicy", bucket, e)),
    }
}

/// `GetObjectLockConfiguration`, in the bucket's own region.
async fn object_lock(config: &SdkConfig, bucket: &str) -> Collected<Option<ObjectLock>> {
    let s3 = aws_sdk_s3::Client::new(config);
    let region = match s3.get_bucket_location().bucket(bucket).send().await {
        Ok(o) => match o.location_constraint().map(|l| l.as_str()) {
            None | Some("") => "us-east-1".to_string(),
            Some("EU") => "eu-west-1".to_string(),
            Some(r) => r.to_string(),
        },
        Err(e) => return Collected::Error(failed("s3:GetBucketLocation", bucket, e)),
    };
    let regional = config.to_builder().region(Region::new(region)).build();
    let s3 = aws_sdk_s3::Client::new(&regional);
    match s3
        .get_object_lock_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(o) => Collected::Ok(o.object_lock_configuration().map(|c| {
            let retention = c.rule().and_then(|r| r.default_retention());
            ObjectLock {
                enabled: c.object_lock_enabled().map(|e| e.as_str()) == Some("Enabled"),
                mode: retention
                    .and_then(|d| d.mode())
                    .map(|m| m.as_str().to_string()),
                days: retention.and_then(|d| d.days()),
                years: retention.and_then(|d| d.years()),
            }
        })),
        Err(e) if code(&e) == Some("ObjectLockConfigurationNotFoundError") => Collected::Ok(None),
        Err(e) => Collected::Error(failed("s3:GetObjectLockConfiguration", bucket, e)),
    }
}

/// Reads each twokey target role's trust, through the scanned account that
/// holds it or, outside them, the entitlement's own connection.
async fn targets(
    targets: &[Target],
    base: &SdkConfig,
    me: &str,
    role: &str,
    facts: &Facts,
) -> Vec<AssumeTarget> {
    let mut out = Vec::new();
    for t in targets {
        let trust = match Arn::parse(&t.role_arn) {
            None => Collected::Error(format!("{:?} is not an IAM role ARN", t.role_arn)),
            Some(arn) => {
                let config = if facts
                    .account(&arn.account)
                    .is_some_and(|a| matches!(a.scan, Collected::Ok(_)))
                {
                    config_for(base, me, &arn.account, role).await
                } else {
                    Ok(t.connection.load().await)
                };
                match config {
                    Err(e) => Collected::Error(e),
                    Ok(c) => match aws_sdk_iam::Client::new(&c)
                        .get_role()
                        .role_name(&arn.name)
                        .send()
                        .await
                    {
                        Ok(o) => match o.role().and_then(|r| r.assume_role_policy_document()) {
                            Some(doc) => Collected::Ok(twokey_aws::iam_assume::decode_policy(doc)),
                            None => Collected::Error(format!(
                                "iam:GetRole on {}: no trust policy in the answer",
                                t.role_arn
                            )),
                        },
                        Err(e) => Collected::Error(failed("iam:GetRole", &t.role_arn, e)),
                    },
                }
            }
        };
        out.push(AssumeTarget {
            entitlement: t.entitlement.clone(),
            role_arn: t.role_arn.clone(),
            principals: t.principals.clone(),
            trust,
        });
    }
    out
}

/// The calling account's id and its `GetAccountAuthorizationDetails` in
/// the API's JSON shape (`twokey who-can --live`).
pub async fn authorization_details(
    connection: &Connection,
) -> anyhow::Result<(String, serde_json::Value)> {
    let config = connection.load().await;
    let me = aws_sdk_sts::Client::new(&config)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(failed("sts:GetCallerIdentity", "the credentials", e)))?
        .account()
        .map(str::to_string)
        .context("sts:GetCallerIdentity answered no account")?;
    let iam = aws_sdk_iam::Client::new(&config);
    let v = authorization::read(&iam, &format!("account {me}"))
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    Ok((me, v))
}
