//! A real moto server per test, on a free loopback port.
#![allow(dead_code)]

pub(crate) mod sts_root;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use twokey_aws::client::Connection;
use twokey_providers::GrantSpec;

static ENV: Once = Once::new();

/// An SDK configuration for `url` in `region` signed with `credentials`,
/// through the product's own loader (its rustls HTTP client: the workspace
/// builds the SDK without a default one).
pub(crate) async fn sdk_config(
    region: &str,
    url: &str,
    credentials: aws_credential_types::Credentials,
) -> aws_config::SdkConfig {
    Connection {
        region: Some(region.to_string()),
        endpoint_url: Some(url.to_string()),
        ..Default::default()
    }
    .load_gateway()
    .await
    .to_builder()
    .credentials_provider(
        aws_credential_types::provider::SharedCredentialsProvider::new(credentials),
    )
    .build()
}

/// Credentials and settings every SDK client in the tests picks up.
pub(crate) fn test_env() {
    ENV.call_once(|| {
        // Set once, before any client reads them.
        std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDTESTING");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/twokey-test");
        std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/twokey-test");
        std::env::remove_var("AWS_PROFILE");
        std::env::remove_var("AWS_SESSION_TOKEN");
    });
}

fn moto_bin() -> PathBuf {
    if let Ok(p) = std::env::var("MOTO_SERVER") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/moto/bin/moto_server")
}

/// A running moto server; killed on drop.
pub(crate) struct Moto {
    child: Option<Child>,
    pub port: u16,
    env: Vec<(String, String)>,
}

impl Moto {
    /// Starts moto, or returns `None` (printing why) when it is not installed
    /// and CI is not set. Under CI a missing moto fails the test.
    pub(crate) fn start(env: &[(&str, &str)]) -> Option<Self> {
        test_env();
        let bin = moto_bin();
        if !bin.exists() {
            let why = format!(
                "moto server not found at {}; run scripts/setup-moto.sh",
                bin.display()
            );
            if std::env::var_os("CI").is_some() {
                panic!("{why}");
            }
            eprintln!("SKIPPED: {why}");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let mut m = Self {
            child: None,
            port,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        m.spawn();
        Some(m)
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(moto_bin());
        cmd.args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start moto_server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto did not start on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The endpoint URL.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A connection to this moto.
    pub(crate) fn connection(&self) -> Connection {
        Connection {
            endpoint_url: Some(self.url()),
            region: Some("us-east-1".into()),
            ..Default::default()
        }
    }

    /// Kills moto and waits until the port is closed.
    pub(crate) fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts moto again on the same port (with no state: moto keeps none).
    pub(crate) fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Makes moto's generated ids deterministic (`/moto-api/seed`), so state
    /// re-created after a restart gets the same ids.
    pub(crate) async fn seed(&self, n: u32) {
        self.moto_api(&format!("/moto-api/seed?a={n}"), "").await;
    }

    /// From now on moto checks signatures and IAM policies of every call
    /// (`/moto-api/reset-auth`, the runtime form of `INITIAL_NO_AUTH_ACTION_COUNT`).
    pub(crate) async fn enforce_auth(&self) {
        self.moto_api("/moto-api/reset-auth", "0").await;
    }

    async fn moto_api(&self, path: &str, body: &str) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect moto");
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        );
        s.write_all(req.as_bytes()).await.expect("moto api");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out).await;
        assert!(
            out.starts_with("HTTP/1.1 200") || out.starts_with("HTTP/1.0 200"),
            "{path}: {out}"
        );
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A grant spec for tests; ends in an hour.
pub(crate) fn spec(id: &str, who: &str, overlapping: &[&str]) -> GrantSpec {
    let now = now_ms();
    GrantSpec {
        request_id: id.into(),
        entitlement: "test".into(),
        requester: format!("https://sso.example|{who}"),
        requester_name: who.into(),
        starts_at_ms: now,
        ends_at_ms: now + 3_600_000,
        overlapping_active: overlapping.iter().map(|s| s.to_string()).collect(),
    }
}

/// Now, Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
