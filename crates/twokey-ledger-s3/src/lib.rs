//! twokey ledger bundles on S3 with Object Lock.
//!
//! [`S3Sink::publish`] writes a bundle as two objects under the prefix, with
//! the same names as the directory sink so [`twokey_ledger::bundle::verify_bundles`]
//! reads both:
//!
//! ```text
//! <prefix>/<size:020>/entries.ndjson
//! <prefix>/<size:020>/checkpoint        written last: its presence marks a complete bundle
//! ```
//!
//! Each object is put with `ObjectLockMode::Compliance` and
//! `ObjectLockRetainUntilDate` = now + retention, so the bucket must have
//! Object Lock enabled. Publishing is async (the SDK is); the server wraps it
//! as an async bundle sink. It is idempotent: an existing identical bundle
//! is accepted, a different one is refused ([`SinkError::Conflict`]).
//!
//! [`verify_s3`] lists the prefix (ListObjectsV2), fetches every bundle
//! (GetObject) and runs the ledger's verifier with only the public key and,
//! optionally, a trusted checkpoint.

#![warn(missing_docs)]

use std::time::{Duration, SystemTime};

use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::ObjectLockMode;
use aws_sdk_s3::Client;
use twokey_ledger::bundle::{
    verify_bundles, PublishedBundle, SinkError, CHECKPOINT_FILE, ENTRIES_FILE,
};
use twokey_ledger::{Bundle, NoteVerifier, Summary, VerifyError};

/// Where and how to reach the bucket.
#[derive(Debug, Clone, Default)]
pub struct S3Location {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix (slashes at either end are ignored).
    pub prefix: String,
    /// Region (default `us-east-1`).
    pub region: Option<String>,
    /// Endpoint override (moto, S3-compatible stores); path-style addressing.
    pub endpoint_url: Option<String>,
}

impl S3Location {
    /// Parses `s3://bucket/prefix`.
    pub fn parse_url(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{url:?} is not an s3://bucket/prefix URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("{url:?} has no bucket"));
        }
        Ok(Self {
            bucket: bucket.into(),
            prefix: prefix.trim_matches('/').into(),
            ..Default::default()
        })
    }

    fn key(&self, size: u64, file: &str) -> String {
        let p = self.prefix.trim_matches('/');
        if p.is_empty() {
            format!("{size:020}/{file}")
        } else {
            format!("{p}/{size:020}/{file}")
        }
    }
}

/// An S3 client for `loc` (credentials from the usual AWS chain; rustls).
pub async fn client(loc: &S3Location) -> Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .region(aws_config::Region::new(
            loc.region.clone().unwrap_or_else(|| "us-east-1".into()),
        ));
    if let Some(u) = &loc.endpoint_url {
        loader = loader.endpoint_url(u);
    }
    let conf = loader.load().await;
    let s3 = aws_sdk_s3::config::Builder::from(&conf)
        .force_path_style(loc.endpoint_url.is_some())
        .build();
    Client::from_conf(s3)
}

/// Publishes bundles to S3 with Object Lock in COMPLIANCE mode.
#[derive(Debug, Clone)]
pub struct S3Sink {
    client: Client,
    loc: S3Location,
    retention: Duration,
}

impl S3Sink {
    /// A sink writing under `loc` with objects locked for `retention_days`.
    pub async fn new(loc: S3Location, retention_days: u32) -> Self {
        Self {
            client: client(&loc).await,
            loc,
            retention: Duration::from_secs(u64::from(retention_days) * 86_400),
        }
    }

    /// The sink's name for messages.
    pub fn name(&self) -> String {
        format!("s3://{}/{}", self.loc.bucket, self.loc.prefix)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SinkError> {
        get_object(&self.client, &self.loc.bucket, key)
            .await
            .map_err(|e| SinkError::Other(e.into()))
    }

    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), SinkError> {
        let until = SystemTime::now() + self.retention;
        self.client
            .put_object()
            .bucket(&self.loc.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .object_lock_mode(ObjectLockMode::Compliance)
            .object_lock_retain_until_date(DateTime::from(until))
            .send()
            .await
            .map_err(|e| {
                SinkError::Other(
                    format!(
                        "put s3://{}/{key}: {}",
                        self.loc.bucket,
                        aws_sdk_s3::error::DisplayErrorContext(e)
                    )
                    .into(),
                )
            })?;
        Ok(())
    }

    /// Publishes one bundle (entries first, then the checkpoint). Idempotent
    /// for an identical bundle; refuses to replace a different one.
    pub async fn publish(&self, bundle: &Bundle) -> Result<(), SinkError> {
        let size = bundle.checkpoint.size;
        let cp_key = self.loc.key(size, CHECKPOINT_FILE);
        let en_key = self.loc.key(size, ENTRIES_FILE);
        if let Some(existing) = self.get(&cp_key).await? {
            let same_entries =
                self.get(&en_key).await?.as_deref() == Some(bundle.entries_ndjson.as_slice());
            return if existing == bundle.note.as_bytes() && same_entries {
                Ok(())
            } else {
                Err(SinkError::Conflict {
                    path: format!("s3://{}/{cp_key}", self.loc.bucket),
                })
            };
        }
        self.put(&en_key, bundle.entries_ndjson.clone()).await?;
        self.put(&cp_key, bundle.note.as_bytes().to_vec()).await
    }
}

/// An SDK error flattened to its full text.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StringError(String);

/// Reads one object, `None` when it does not exist.
pub async fn get_object(
    client: &Client,
    bucket: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, StringError> {
    match client.get_object().bucket(bucket).key(key).send().await {
        Ok(o) => {
            let b = o
                .body
                .collect()
                .await
                .map_err(|e| StringError(format!("s3://{bucket}/{key}: {e}")))?;
            Ok(Some(b.into_bytes().to_vec()))
        }
        Err(e) => {
            if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                Ok(None)
            } else {
                Err(StringError(format!(
                    "s3://{bucket}/{key}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(e)
                )))
            }
        }
    }
}

/// Why S3 verification could not run or failed.
#[derive(Debug, thiserror::Error)]
pub enum S3VerifyError {
    /// Listing or reading failed.
    #[error("{0}")]
    Read(String),
    /// The bundles do not verify.
    #[error("{0}")]
    Verify(#[from] VerifyError),
}

/// Verifies every bundle under `loc` with the log's public key and,
/// optionally, a trusted checkpoint held elsewhere.
pub async fn verify_s3(
    loc: &S3Location,
    key: &NoteVerifier,
    trusted: Option<&str>,
) -> Result<Summary, S3VerifyError> {
    let client = client(loc).await;
    let prefix = match loc.prefix.trim_matches('/') {
        "" => String::new(),
        p => format!("{p}/"),
    };
    let mut sizes = std::collections::BTreeSet::new();
    let mut token = None;
    loop {
        let page = client
            .list_objects_v2()
            .bucket(&loc.bucket)
            .prefix(&prefix)
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| {
                S3VerifyError::Read(format!(
                    "listing s3://{}/{prefix}: {}",
                    loc.bucket,
                    aws_sdk_s3::error::DisplayErrorContext(e)
                ))
            })?;
        for o in page.contents() {
            let Some(k) = o.key() else { continue };
            let rest = &k[prefix.len().min(k.len())..];
            if let Some((dir, _)) = rest.split_once('/') {
                if dir.len() == 20 && dir.bytes().all(|b| b.is_ascii_digit()) {
                    if let Ok(n) = dir.parse::<u64>() {
                        sizes.insert(n);
                    }
                }
            }
        }
        token = page.next_continuation_token().map(String::from);
        if token.is_none() {
            break;
        }
    }
    let mut bundles = Vec::new();
    let mut entries = Vec::new();
    for size in sizes {
        let label = format!("s3://{}/{}", loc.bucket, loc.key(size, ""));
        let read = |file: &'static str| {
            let k = loc.key(size, file);
            let client = &client;
            let label = &label;
            async move {
                get_object(client, &loc.bucket, &k)
                    .await
                    .map_err(|e| S3VerifyError::Read(e.to_string()))?
                    .ok_or_else(|| {
                        S3VerifyError::Verify(VerifyError::Bundle {
                            path: label.clone(),
                            reason: format!("{file} is missing"),
                        })
                    })
            }
        };
        let note =
            String::from_utf8(read(CHECKPOINT_FILE).await?).map_err(|_| VerifyError::Bundle {
                path: label.clone(),
                reason: "checkpoint is not UTF-8".into(),
            })?;
        entries.push(read(ENTRIES_FILE).await?);
        bundles.push(PublishedBundle { label, size, note });
    }
    Ok(verify_bundles(&bundles, key, trusted, |i| {
        Ok(std::mem::take(&mut entries[i]))
    })?)
}
