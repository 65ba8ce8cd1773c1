//! Shared AWS plumbing: SDK configuration from a target's settings (region,
//! endpoint, cross-account role), target parsing, and error classification.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_iam::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use serde::Deserialize;
use tokio::sync::OnceCell;
use twokey_providers::ProviderError;

/// Region used when a target names none.
pub const DEFAULT_REGION: &str = "us-east-1";
/// Attempts per AWS call (the SDK's standard retry with backoff; throttling
/// and transient errors are retried within these).
pub const MAX_ATTEMPTS: u32 = 3;
/// Longest time to open a connection to AWS.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest time for one AWS call, retries included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Session name the gateway uses when it assumes a cross-account role.
pub const GATEWAY_SESSION_NAME: &str = "twokey-gateway";

/// Connection settings every AWS target accepts.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Connection {
    /// AWS region (default [`DEFAULT_REGION`]).
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint override (moto, VPC endpoints); AWS's own endpoints otherwise.
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// Role the gateway assumes (via STS, with its own credentials) to reach a
    /// target in another account.
    #[serde(default)]
    pub assume_role_arn: Option<String>,
    /// The target account id; when set with `assume_role_arn`, the role must
    /// be in this account.
    #[serde(default)]
    pub account: Option<String>,
    /// Static gateway credentials instead of the default chain; never read
    /// from a target table (for embedding and tests).
    #[serde(skip)]
    pub credentials: Option<aws_credential_types::Credentials>,
}

impl Connection {
    /// Checks the settings that can be checked without calling AWS.
    pub fn validate(&self, kind: &str) -> Result<(), ProviderError> {
        if let Some(u) = &self.endpoint_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(ProviderError::permanent(format!(
                    "{kind} target: `endpoint_url` = {u:?} must start with http:// or https://"
                )));
            }
        }
        if let Some(a) = &self.account {
            if a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ProviderError::permanent(format!(
                    "{kind} target: `account` = {a:?} is not a 12-digit AWS account id"
                )));
            }
        }
        if let Some(r) = &self.assume_role_arn {
            let arn = Arn::parse(r).ok_or_else(|| {
                ProviderError::permanent(format!(
                    "{kind} target: `assume_role_arn` = {r:?} is not an IAM role ARN"
                ))
            })?;
            if arn.kind != "role" {
                return Err(ProviderError::permanent(format!(
                    "{kind} target: `assume_role_arn` = {r:?} is not an IAM role ARN"
                )));
            }
            if let Some(a) = &self.account {
                if &arn.account != a {
                    return Err(ProviderError::permanent(format!(
                        "{kind} target: `assume_role_arn` {r:?} is not in account {a}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Loads the SDK configuration: the default credential chain (the gateway's
    /// own credentials), then, with `assume_role_arn`, that role's credentials.
    pub async fn load(&self) -> SdkConfig {
        let base = self.base_loader().load().await;
        match &self.assume_role_arn {
            None => base,
            Some(role) => {
                let provider = aws_config::sts::AssumeRoleProvider::builder(role)
                    .session_name(GATEWAY_SESSION_NAME)
                    .configure(&base)
                    .build()
                    .await;
                base.to_builder()
                    .credentials_provider(SharedCredentialsProvider::new(provider))
                    .build()
            }
        }
    }

    /// The gateway's own configuration, ignoring `assume_role_arn`.
    pub async fn load_gateway(&self) -> SdkConfig {
        self.base_loader().load().await
    }

    fn base_loader(&self) -> aws_config::ConfigLoader {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .region(Region::new(
                self.region.clone().unwrap_or_else(|| DEFAULT_REGION.into()),
            ))
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_timeout(OPERATION_TIMEOUT)
                    .build(),
            );
        if let Some(u) = &self.endpoint_url {
            loader = loader.endpoint_url(u);
        }
        if let Some(c) = &self.credentials {
            loader = loader.credentials_provider(c.clone());
        }
        loader
    }
}

/// A lazily loaded SDK client (factories are synchronous; loading
/// credentials is not).
#[derive(Debug)]
pub struct Lazy<C> {
    cell: OnceCell<C>,
}

impl<C> Default for Lazy<C> {
    fn default() -> Self {
        Self {
            cell: OnceCell::new(),
        }
    }
}

impl<C> Lazy<C> {
    /// The client, built by `make` on first use.
    pub async fn get<F, Fut>(&self, make: F) -> &C
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = C>,
    {
        self.cell.get_or_init(make).await
    }
}

/// The parts of an ARN twokey uses: `arn:PARTITION:SERVICE::ACCOUNT:KIND/.../NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn {
    /// The account id.
    pub account: String,
    /// `user`, `role`, ...
    pub kind: String,
    /// The last path segment: the user or role name.
    pub name: String,
}

impl Arn {
    /// Parses an IAM ARN; `None` if it is not one.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.splitn(6, ':');
        let (arn, _partition, service, _region, account, resource) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        if arn != "arn" || service != "iam" || account.is_empty() {
            return None;
        }
        let (kind, rest) = resource.split_once('/')?;
        let name = rest.rsplit('/').next()?;
        if name.is_empty() {
            return None;
        }
        Some(Self {
            account: account.to_string(),
            kind: kind.to_string(),
            name: name.to_string(),
        })
    }
}

/// Keys of [`Connection`], accepted by every AWS target.
pub const CONNECTION_KEYS: &[&str] = &["region", "endpoint_url", "assume_role_arn", "account"];

/// Reads a target table into a config struct, naming the provider in errors
/// and refusing keys that are neither in `keys` nor in [`CONNECTION_KEYS`]
/// (a misspelt setting must not be ignored silently).
pub fn parse_target<T: serde::de::DeserializeOwned>(
    kind: &str,
    target: &toml::Table,
    keys: &[&str],
) -> Result<T, ProviderError> {
    if let Some(k) = target
        .keys()
        .find(|k| !keys.contains(&k.as_str()) && !CONNECTION_KEYS.contains(&k.as_str()))
    {
        let mut known: Vec<&str> = keys.iter().chain(CONNECTION_KEYS).copied().collect();
        known.sort_unstable();
        return Err(ProviderError::permanent(format!(
            "{kind} target: unknown setting `{k}`; known: {}",
            known.join(", ")
        )));
    }
    toml::Value::Table(target.clone())
        .try_into()
        .map_err(|e| ProviderError::permanent(format!("{kind} target: {}", e.to_string().trim())))
}

/// Formats Unix milliseconds as ISO 8601 UTC to the second (`2026-11-23T13:00:00Z`).
pub fn iso8601(ms: i64) -> Result<String, ProviderError> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .ok_or_else(|| ProviderError::permanent(format!("time {ms} ms is out of range")))
}

/// The AWS error code of a failed call, if AWS answered with one.
pub fn error_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(se) => se.err().code(),
        _ => None,
    }
}

/// Error codes worth retrying (throttling, transient service failures).
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "SlowDown",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalFailure",
    "InternalError",
    "InternalServerException",
    "ServiceFailure",
    "ConcurrentModification",
    "ConflictException",
    "RequestExpired",
    "ExpiredToken",
    "ExpiredTokenException",
];

/// Error codes meaning the caller lacks permission.
const DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthFailure",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "OptInRequired",
];

/// Turns an SDK error into a [`ProviderError`] that says what was being done
/// (`action`) to which resource: throttling, timeouts, unreachable endpoints
/// and 5xx answers are retryable; access denied and missing resources are
/// permanent, with a message naming the resource.
pub fn aws_error<E, R>(action: &str, resource: &str, err: SdkError<E, R>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match &err {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("Unknown");
            let msg = se.err().message().unwrap_or("").trim();
            let detail = if msg.is_empty() {
                code.to_string()
            } else {
                format!("{code}: {msg}")
            };
            if RETRYABLE_CODES.contains(&code) {
                ProviderError::retryable(format!(
                    "AWS {action} on {resource} failed, will retry ({detail})"
                ))
            } else if DENIED_CODES.contains(&code) {
                ProviderError::permanent(format!(
                    "AWS denied {action} on {resource}: the gateway's credentials lack permission ({detail})"
                ))
            } else if code.contains("NotFound") || code == "NoSuchEntity" {
                ProviderError::permanent(format!(
                    "AWS {action}: {resource} does not exist ({detail})"
                ))
            } else {
                ProviderError::permanent(format!("AWS {action} on {resource} failed ({detail})"))
            }
        }
        SdkError::ConstructionFailure(_) => ProviderError::permanent(format!(
            "AWS {action} on {resource}: could not build the request ({})",
            DisplayErrorContext(&err)
        )),
        _ => ProviderError::retryable(format!(
            "AWS {action} on {resource}: no answer from AWS, will retry ({})",
            DisplayErrorContext(&err)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns() {
        let a = Arn::parse("arn:aws:iam::111122223333:user/people/alice").expect("arn");
        assert_eq!(
            (a.account.as_str(), a.kind.as_str(), a.name.as_str()),
            ("111122223333", "user", "alice")
        );
        assert!(Arn::parse("arn:aws:s3:::bucket").is_none());
        assert!(Arn::parse("arn:aws:iam::1:role/").is_none());
        assert!(Arn::parse("alice").is_none());
    }

    #[test]
    fn connection_checks() {
        let c = Connection {
            assume_role_arn: Some("arn:aws:iam::222233334444:role/twokey".into()),
            account: Some("111122223333".into()),
            ..Default::default()
        };
        let e = c.validate("x").expect_err("wrong account");
        assert!(e.message.contains("not in account"), "{}", e.message);
        let c = Connection {
            endpoint_url: Some("localhost:5000".into()),
            ..Default::default()
        };
        assert!(c.validate("x").is_err());
    }

    fn service(code: &str) -> ProviderError {
        use aws_sdk_iam::operation::get_role::GetRoleError;
        let meta = aws_smithy_types::error::ErrorMetadata::builder()
            .code(code)
            .message("from AWS")
            .build();
        aws_error(
            "GetRole",
            "target role r",
            SdkError::<GetRoleError, ()>::service_error(GetRoleError::generic(meta), ()),
        )
    }

    #[test]
    fn throttling_is_retried_denials_and_missing_are_named() {
        for code in [
            "Throttling",
            "ThrottlingException",
            "RequestLimitExceeded",
            "TooManyRequestsException",
        ] {
            let e = service(code);
            assert!(e.retryable, "{code}: {}", e.message);
            assert!(
                e.message.contains("will retry") && e.message.contains(code),
                "{}",
                e.message
            );
        }
        let e = service("AccessDenied");
        assert!(!e.retryable);
        assert!(
            e.message.contains("lack permission") && e.message.contains("target role r"),
            "{}",
            e.message
        );
        let e = service("NoSuchEntity");
        assert!(!e.retryable);
        assert!(e.message.contains("does not exist"), "{}", e.message);
        let e = aws_error(
            "GetRole",
            "target role r",
            SdkError::<aws_sdk_iam::operation::get_role::GetRoleError, ()>::timeout_error("slow"),
        );
        assert!(e.retryable, "{}", e.message);
    }

    #[test]
    fn iso() {
        assert_eq!(iso8601(0).expect("time"), "1970-01-01T00:00:00Z");
    }
}
