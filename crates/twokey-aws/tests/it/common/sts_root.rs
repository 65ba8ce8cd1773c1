//! A local STS stand-in for `sts:AssumeRoot`, which moto answers with a 500.
//!
//! It speaks the AWS query protocol as the SDK's `AssumeRoot` model has it
//! (`aws-sdk-sts` `protocol_serde/shape_assume_root*.rs`): a form-encoded
//! POST with `Action=AssumeRoot`, `Version=2011-06-15`, `TargetPrincipal`,
//! `TaskPolicyArn.arn` and `DurationSeconds`; the answer
//! `<AssumeRootResponse><AssumeRootResult><Credentials>` with `AccessKeyId`,
//! `SecretAccessKey`, `SessionToken` and `Expiration`, and errors as STS's
//! `<ErrorResponse><Error><Type><Code><Message>`. It checks what real STS
//! checks that can be checked here: the SigV4 signature (recomputed with the
//! caller's secret, for the `sts` service in this region), the target (an
//! account id or its root ARN), the task policy (one of the five), and
//! `DurationSeconds` (0 to 900, default 900).
//!
//! The credentials it returns are moto's: it assumes
//! `OrganizationAccountAccessRole` in the target account at moto, so the S3
//! and IAM calls made with them reach moto as calls in that member account.
//! It also answers `GetCallerIdentity` for the credentials it issued (as
//! `arn:aws:iam::ACCOUNT:root`, the way a root session is named) and refuses
//! any other key, as STS does.
//!
//! What it cannot show: AWS's own authorization of AssumeRoot (centralized
//! root access enabled, the caller being the management account or the
//! delegated administrator, SCPs), the task policy's actual limits on the
//! session, and the CloudTrail record of the call.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The five task policies AssumeRoot accepts.
pub(crate) const TASK_POLICIES: [&str; 5] = [
    "arn:aws:iam::aws:policy/root-task/IAMAuditRootUserCredentials",
    "arn:aws:iam::aws:policy/root-task/IAMCreateRootUserPassword",
    "arn:aws:iam::aws:policy/root-task/IAMDeleteRootUserCredentials",
    "arn:aws:iam::aws:policy/root-task/S3UnlockBucketPolicy",
    "arn:aws:iam::aws:policy/root-task/SQSUnlockQueuePolicy",
];

/// How the stand-in answers AssumeRoot (the test sets it to attack).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Mint a session at moto for the target account.
    Honest,
    /// Answer again with the first session it minted (a replayed answer).
    Replay,
    /// Answer with credentials STS never issued (a forged answer).
    Forge,
}

/// One AssumeRoot call the stand-in accepted.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    /// `TargetPrincipal` as sent.
    pub target: String,
    /// `TaskPolicyArn.arn` as sent.
    pub task_policy_arn: String,
    /// `DurationSeconds` as sent (900 when absent).
    pub duration_seconds: i64,
    /// The access key id of the caller (from the signature).
    pub caller_key: String,
    /// The access key id answered.
    pub issued_key: String,
}

struct Issued {
    account: String,
    secret: String,
}

struct Inner {
    region: String,
    moto_url: String,
    /// Access key → secret of the callers it accepts (the gateway's).
    callers: BTreeMap<String, String>,
    answer: Answer,
    first: Option<String>,
    issued: BTreeMap<String, Issued>,
    calls: Vec<Call>,
    refusals: Vec<String>,
}

/// A running stand-in; stops with the test's runtime.
#[derive(Clone)]
pub(crate) struct StsRoot {
    inner: Arc<Mutex<Inner>>,
    /// Its endpoint URL.
    pub url: String,
}

impl StsRoot {
    /// Starts the stand-in on a loopback port, for `region`, accepting calls
    /// signed with `callers` (access key, secret) and minting at `moto_url`.
    pub(crate) async fn start(region: &str, moto_url: &str, callers: &[(&str, &str)]) -> StsRoot {
        let inner = Arc::new(Mutex::new(Inner {
            region: region.into(),
            moto_url: moto_url.into(),
            callers: callers
                .iter()
                .map(|(k, s)| (k.to_string(), s.to_string()))
                .collect(),
            answer: Answer::Honest,
            first: None,
            issued: BTreeMap::new(),
            calls: Vec::new(),
            refusals: Vec::new(),
        }));
        let app = axum::Router::new()
            .route("/", axum::routing::post(handle))
            .with_state(inner.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the STS stand-in");
        let url = format!("http://{}", l.local_addr().expect("addr"));
        tokio::spawn(async move {
            axum::serve(l, app).await.expect("STS stand-in");
        });
        StsRoot { inner, url }
    }

    /// How AssumeRoot is answered from now on.
    pub(crate) fn answer(&self, a: Answer) {
        self.inner.lock().expect("lock").answer = a;
    }

    /// The AssumeRoot calls accepted so far.
    pub(crate) fn calls(&self) -> Vec<Call> {
        self.inner.lock().expect("lock").calls.clone()
    }

    /// The reasons of the calls refused so far.
    pub(crate) fn refusals(&self) -> Vec<String> {
        self.inner.lock().expect("lock").refusals.clone()
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ErrorResponse>",
        xml_escape(message)
    );
    (status, [("content-type", "text/xml")], body).into_response()
}

fn ok(action: &str, result: String) -> Response {
    let body = format!(
        "<{action}Response xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><{action}Result>{result}</{action}Result><ResponseMetadata><RequestId>a5c1b2d3-0000-4000-8000-000000000001</RequestId></ResponseMetadata></{action}Response>"
    );
    (StatusCode::OK, [("content-type", "text/xml")], body).into_response()
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("hmac key");
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// The signature's parts: (access key, date, region, service, signed headers, signature).
struct Authorization {
    key: String,
    date: String,
    region: String,
    service: String,
    signed: Vec<String>,
    signature: String,
}

fn parse_authorization(h: &str) -> Option<Authorization> {
    let rest = h.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let mut cred = None;
    let mut signed = None;
    let mut sig = None;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => cred = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => sig = Some(v),
            _ => {}
        }
    }
    let mut c = cred?.split('/');
    let (key, date, region, service, term) =
        (c.next()?, c.next()?, c.next()?, c.next()?, c.next()?);
    if term != "aws4_request" {
        return None;
    }
    Some(Authorization {
        key: key.into(),
        date: date.into(),
        region: region.into(),
        service: service.into(),
        signed: signed?.split(';').map(str::to_string).collect(),
        signature: sig?.into(),
    })
}

/// Recomputes the SigV4 signature of a POST to `/` with `secret`.
fn signature(secret: &str, a: &Authorization, headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let mut canonical_headers = String::new();
    for name in &a.signed {
        let v = headers.get(name.as_str())?.to_str().ok()?;
        let v = v.split_whitespace().collect::<Vec<_>>().join(" ");
        canonical_headers.push_str(&format!("{name}:{v}\n"));
    }
    let canonical = format!(
        "POST\n/\n\n{canonical_headers}\n{}\n{}",
        a.signed.join(";"),
        hex::encode(Sha256::digest(body))
    );
    let amz_date = headers.get("x-amz-date")?.to_str().ok()?;
    let scope = format!("{}/{}/{}/aws4_request", a.date, a.region, a.service);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let k = hmac(format!("AWS4{secret}").as_bytes(), &a.date);
    let k = hmac(&k, &a.region);
    let k = hmac(&k, &a.service);
    let k = hmac(&k, "aws4_request");
    Some(hex::encode(hmac(&k, &to_sign)))
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: BTreeMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let refuse = |status, code: &str, msg: String| {
        inner
            .lock()
            .expect("lock")
            .refusals
            .push(format!("{code}: {msg}"));
        error(status, code, &msg)
    };
    let Some(auth) = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(parse_authorization)
    else {
        return refuse(
            StatusCode::FORBIDDEN,
            "MissingAuthenticationToken",
            "Request is missing Authentication Token".into(),
        );
    };
    let (region, secret) = {
        let i = inner.lock().expect("lock");
        let secret = i
            .callers
            .get(&auth.key)
            .cloned()
            .or_else(|| i.issued.get(&auth.key).map(|s| s.secret.clone()));
        (i.region.clone(), secret)
    };
    let Some(secret) = secret else {
        return refuse(
            StatusCode::FORBIDDEN,
            "InvalidClientTokenId",
            "The security token included in the request is invalid.".into(),
        );
    };
    if auth.service != "sts" || auth.region != region {
        return refuse(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            format!(
                "Credential should be scoped to a valid region and service: {region}/sts, not {}/{}",
                auth.region, auth.service
            ),
        );
    }
    if signature(&secret, &auth, &headers, &body).as_deref() != Some(auth.signature.as_str()) {
        return refuse(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.".into(),
        );
    }
    if form.get("Version").map(String::as_str) != Some("2011-06-15") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            "Version must be 2011-06-15".into(),
        );
    }
    match form.get("Action").map(String::as_str) {
        Some("AssumeRoot") => assume_root(&inner, &auth.key, &form).await,
        Some("GetCallerIdentity") => {
            let account = inner
                .lock()
                .expect("lock")
                .issued
                .get(&auth.key)
                .map(|s| s.account.clone());
            match account {
                Some(a) => ok(
                    "GetCallerIdentity",
                    format!("<Arn>arn:aws:iam::{a}:root</Arn><UserId>{a}</UserId><Account>{a}</Account>"),
                ),
                None => refuse(
                    StatusCode::FORBIDDEN,
                    "AccessDenied",
                    "the stand-in answers GetCallerIdentity only for root sessions it issued".into(),
                ),
            }
        }
        other => refuse(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            format!("the stand-in answers AssumeRoot and GetCallerIdentity, not {other:?}"),
        ),
    }
}

fn target_account(t: &str) -> Option<String> {
    let a = t
        .strip_prefix("arn:aws:iam::")
        .and_then(|r| r.strip_suffix(":root"))
        .unwrap_or(t);
    (a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit())).then(|| a.to_string())
}

async fn assume_root(
    inner: &Arc<Mutex<Inner>>,
    caller: &str,
    form: &BTreeMap<String, String>,
) -> Response {
    let refuse = |msg: String| {
        inner
            .lock()
            .expect("lock")
            .refusals
            .push(format!("ValidationError: {msg}"));
        error(StatusCode::BAD_REQUEST, "ValidationError", &msg)
    };
    let Some(target) = form.get("TargetPrincipal") else {
        return refuse("1 validation error detected: Value null at 'targetPrincipal' failed to satisfy constraint: Member must not be null".into());
    };
    let Some(account) = target_account(target) else {
        return refuse(format!(
            "TargetPrincipal {target:?} is not a member account id or root ARN"
        ));
    };
    let Some(task) = form.get("TaskPolicyArn.arn") else {
        return refuse("1 validation error detected: Value null at 'taskPolicyArn' failed to satisfy constraint: Member must not be null".into());
    };
    if !TASK_POLICIES.contains(&task.as_str()) {
        return refuse(format!(
            "TaskPolicyArn {task:?} is not one of the root task policies"
        ));
    }
    let duration = match form.get("DurationSeconds").map(|d| d.parse::<i64>()) {
        None => 900,
        Some(Ok(d)) if (0..=900).contains(&d) => d,
        Some(_) => {
            return refuse(format!(
                "1 validation error detected: Value '{}' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 900",
                form.get("DurationSeconds").cloned().unwrap_or_default()
            ))
        }
    };
    let (answer, moto_url, region, first) = {
        let i = inner.lock().expect("lock");
        (
            i.answer,
            i.moto_url.clone(),
            i.region.clone(),
            i.first.clone(),
        )
    };
    let result = match (answer, first) {
        (Answer::Replay, Some(first)) => first,
        (Answer::Forge, _) => credentials_xml(
            "ASIAFORGEDFORGED0001",
            "forged/secret/key/that/sts/never/issued00",
            "Rm9yZ2VkU2Vzc2lvblRva2Vu",
            &rfc3339(super::now_ms() / 1000 + duration),
        ),
        _ => {
            // A session at moto in the member account: moto maps its key to
            // that account, so S3 and IAM calls with it act there.
            let sdk = super::sdk_config(
                &region,
                &moto_url,
                aws_credential_types::Credentials::new(
                    "AKIDTESTING",
                    "testing",
                    None,
                    None,
                    "stand-in",
                ),
            )
            .await;
            let out = aws_sdk_sts::Client::new(&sdk)
                .assume_role()
                .role_arn(format!(
                    "arn:aws:iam::{account}:role/OrganizationAccountAccessRole"
                ))
                .role_session_name("root")
                .duration_seconds(duration.max(1) as i32)
                .send()
                .await
                .expect("moto AssumeRole");
            let c = out.credentials().expect("moto credentials");
            let exp = rfc3339(c.expiration().secs());
            let xml = credentials_xml(
                c.access_key_id(),
                c.secret_access_key(),
                c.session_token(),
                &exp,
            );
            let mut i = inner.lock().expect("lock");
            i.issued.insert(
                c.access_key_id().to_string(),
                Issued {
                    account: account.clone(),
                    secret: c.secret_access_key().to_string(),
                },
            );
            i.first.get_or_insert_with(|| xml.clone());
            i.calls.push(Call {
                target: target.clone(),
                task_policy_arn: task.clone(),
                duration_seconds: duration,
                caller_key: caller.to_string(),
                issued_key: c.access_key_id().to_string(),
            });
            return ok("AssumeRoot", xml);
        }
    };
    ok("AssumeRoot", result)
}

fn credentials_xml(key: &str, secret: &str, token: &str, expiration: &str) -> String {
    format!(
        "<Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey><SessionToken>{}</SessionToken><Expiration>{expiration}</Expiration></Credentials>",
        xml_escape(key),
        xml_escape(secret),
        xml_escape(token)
    )
}

/// Unix seconds as `2026-12-02T10:00:00Z`.
fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .expect("time in range")
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
