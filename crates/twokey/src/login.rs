//! `twokey login`: a short-lived API token through the browser (SSO), with a
//! loopback redirect and a PKCE-like verifier. The token is stored in a file
//! only its owner can read (mode 0600) and used when `TWOKEY_TOKEN` is unset.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The stored login.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredToken {
    /// The server it is for.
    pub server: String,
    /// The bearer token.
    pub token: String,
    /// Unix ms.
    pub expires_at: i64,
    /// Who.
    pub name: String,
}

/// Where the token is kept: `TWOKEY_TOKEN_FILE`, else
/// `$XDG_CONFIG_HOME/twokey/token.json`, else `~/.config/twokey/token.json`.
pub(crate) fn token_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TWOKEY_TOKEN_FILE") {
        return Some(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("twokey").join("token.json"))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The stored token for `server`, if there is one that has not expired.
pub(crate) fn stored_token(server: &str) -> Option<String> {
    let path = token_path()?;
    let text = std::fs::read_to_string(path).ok()?;
    let t: StoredToken = serde_json::from_str(&text).ok()?;
    (t.server.trim_end_matches('/') == server.trim_end_matches('/') && t.expires_at > now_ms())
        .then_some(t.token)
}

fn random_b64(n: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn write_private(path: &PathBuf, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Parses the query of `GET /callback?code=..&state=..`.
fn callback_params(request_line: &str) -> Option<(String, String)> {
    let target = request_line.split_whitespace().nth(1)?;
    let query = target.strip_prefix("/callback?")?;
    let (mut code, mut state) = (None, None);
    for kv in query.split('&') {
        let (k, v) = kv.split_once('=')?;
        match k {
            "code" => code = Some(v.to_string()),
            "state" => state = Some(v.to_string()),
            _ => {}
        }
    }
    Some((code?, state?))
}

/// Runs the login; prints the URL to open on stderr.
pub(crate) async fn run(server: &str, no_browser: bool, timeout: Duration) -> anyhow::Result<i32> {
    let server = server.trim_end_matches('/').to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot listen on 127.0.0.1 for the browser's redirect")?;
    let port = listener.local_addr()?.port();
    let state = random_b64(24);
    let verifier = random_b64(32);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    let url = format!("{server}/ui/cli-login?port={port}&state={state}&challenge={challenge}");
    eprintln!("To sign in, open this URL in your browser:\n{url}");
    if !no_browser {
        let _ = std::process::Command::new("xdg-open")
            .arg(&url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
    let (code, got_state) = tokio::time::timeout(timeout, async {
        loop {
            let (mut sock, _) = listener.accept().await?;
            let mut buf = vec![0u8; 8192];
            let n = sock.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let line = head.lines().next().unwrap_or("").to_string();
            match callback_params(&line) {
                Some(p) => {
                    let body = "<!doctype html><title>twokey</title><p>Signed in. You can close this tab and return to the terminal.</p>";
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                    return Ok::<_, std::io::Error>(p);
                }
                None => {
                    let _ = sock
                        .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .await;
                }
            }
        }
    })
    .await
    .map_err(|_| anyhow!("no sign-in within {}s; run twokey login again", timeout.as_secs()))??;
    if got_state != state {
        bail!("the browser came back with a different state; refusing (possible login CSRF)");
    }
    let resp = reqwest::Client::new()
        .post(format!("{server}/v1/cli-login/token"))
        .json(&serde_json::json!({"code": code, "verifier": verifier}))
        .send()
        .await
        .with_context(|| format!("cannot reach the twokey server at {server}"))?;
    let status = resp.status();
    let v: serde_json::Value = resp.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!(
            "the server refused the login: {} (HTTP {})",
            v["detail"].as_str().unwrap_or("no detail"),
            status.as_u16()
        );
    }
    let stored = StoredToken {
        server: server.clone(),
        token: v["token"]
            .as_str()
            .ok_or_else(|| anyhow!("the server's answer has no token"))?
            .to_string(),
        expires_at: v["expires_at"].as_i64().unwrap_or(0),
        name: v["name"].as_str().unwrap_or("?").to_string(),
    };
    let path = token_path().ok_or_else(|| {
        anyhow!("no place to store the token: set HOME, XDG_CONFIG_HOME or TWOKEY_TOKEN_FILE")
    })?;
    write_private(&path, &serde_json::to_string_pretty(&stored)?)?;
    let left_min = (stored.expires_at - now_ms()) / 60_000;
    println!(
        "Signed in as {} (token stored in {}, valid for {}h {:02}m)",
        stored.name,
        path.display(),
        left_min / 60,
        left_min % 60
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_the_callback() {
        assert_eq!(
            callback_params("GET /callback?code=abc&state=xyz HTTP/1.1"),
            Some(("abc".into(), "xyz".into()))
        );
        assert_eq!(callback_params("GET /favicon.ico HTTP/1.1"), None);
        assert_eq!(callback_params("GET /callback?code=abc HTTP/1.1"), None);
    }
}
