//! `exec`: runs configured commands to grant, revoke and check access.
//!
//! ```toml
//! [entitlement.target]
//! grant = ["/usr/local/bin/open-door", "--room", "vault"]
//! revoke = ["/usr/local/bin/close-door", "--room", "vault"]
//! check = ["/usr/local/bin/door-open", "--room", "vault"]   # optional
//! timeout = "30s"                                           # default 30s
//! env = { DOOR_API = "https://doors.internal" }             # optional
//! ```
//!
//! Commands run directly, without a shell (write `["sh", "-c", "..."]` to get
//! one), in their own process group, with stdin and stdout on `/dev/null`,
//! stderr kept for error messages, and the request's details in `TWOKEY_*` environment
//! variables. Exit 0 is success; for `check`, exit 0 means present and exit 1
//! absent. The commands must be idempotent, like every provider.

use std::collections::BTreeMap;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::SecondsFormat;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use crate::{
    parse_target, rfc3339, GrantOutcome, GrantSpec, Presence, Provider, ProviderContext,
    ProviderError,
};

/// How long a command may run when the target sets no `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How much of a command's stderr is kept for error messages.
const STDERR_TAIL_LINES: usize = 10;
/// How long to wait for stderr to close after the command exited.
const STDERR_GRACE: Duration = Duration::from_millis(500);
/// Output beyond this many bytes is read and discarded, so a chatty command
/// neither blocks on a full pipe nor fills memory.
const OUTPUT_KEEP_BYTES: usize = 64 * 1024;

/// The `[entitlement.target]` table of an `exec` entitlement, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    grant: Vec<String>,
    revoke: Vec<String>,
    #[serde(default)]
    check: Option<Vec<String>>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

/// A validated `exec` target.
#[derive(Debug, Clone)]
pub struct ExecConfig {
    /// Program and arguments that apply a grant.
    pub grant: Vec<String>,
    /// Program and arguments that remove a grant.
    pub revoke: Vec<String>,
    /// Program and arguments that report presence (exit 0 present, 1 absent).
    pub check: Option<Vec<String>>,
    /// Longest a single command may run before it is killed.
    pub timeout: Duration,
    /// Extra environment from the target table (overrides [`ProviderContext::env`]).
    pub env: BTreeMap<String, String>,
}

impl ExecConfig {
    /// Validates an `exec` target table; errors name the offending key.
    pub fn from_target(target: &toml::Table) -> Result<Self, ProviderError> {
        let raw: RawConfig = parse_target("exec", target)?;
        let command = |key: &str, argv: Vec<String>| match argv.first() {
            None => Err(ProviderError::permanent(format!(
                "exec target: `{key}` is empty; it needs at least the program to run"
            ))),
            Some(p) if p.is_empty() => Err(ProviderError::permanent(format!(
                "exec target: `{key}` has an empty program name"
            ))),
            Some(_) => Ok(argv),
        };
        let timeout = match raw.timeout {
            None => DEFAULT_TIMEOUT,
            Some(t) => match humantime::parse_duration(&t) {
                Ok(d) if !d.is_zero() => d,
                Ok(_) => {
                    return Err(ProviderError::permanent(
                        "exec target: `timeout` must be longer than zero",
                    ))
                }
                Err(e) => {
                    return Err(ProviderError::permanent(format!(
                    "exec target: `timeout` = {t:?} is not a duration like \"30s\" or \"2m\": {e}"
                )))
                }
            },
        };
        if let Some(k) = raw
            .env
            .keys()
            .find(|k| k.is_empty() || k.contains(['=', '\0']))
        {
            return Err(ProviderError::permanent(format!(
                "exec target: `env` has an invalid variable name {k:?}"
            )));
        }
        Ok(Self {
            grant: command("grant", raw.grant)?,
            revoke: command("revoke", raw.revoke)?,
            check: raw.check.map(|c| command("check", c)).transpose()?,
            timeout,
            env: raw.env,
        })
    }
}

/// Runs the configured commands; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct ExecProvider {
    config: ExecConfig,
    /// Environment from the [`ProviderContext`], below the target's own `env`.
    context_env: BTreeMap<String, String>,
}

/// Builds an [`ExecProvider`] from a target table.
pub fn factory(
    target: &toml::Table,
    ctx: &ProviderContext,
) -> Result<Arc<dyn Provider>, ProviderError> {
    Ok(Arc::new(ExecProvider::new(
        ExecConfig::from_target(target)?,
        ctx,
    )))
}

/// Which operation a command performs; also the value of `TWOKEY_ACTION`.
#[derive(Debug, Clone, Copy)]
enum Action {
    Grant,
    Revoke,
    Check,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Grant => "grant",
            Action::Revoke => "revoke",
            Action::Check => "check",
        }
    }
}

/// What a finished command left behind.
struct Finished {
    status: ExitStatus,
    stderr: Vec<u8>,
}

impl ExecProvider {
    /// A provider for a validated config, with the context's extra environment.
    pub fn new(config: ExecConfig, ctx: &ProviderContext) -> Self {
        Self {
            config,
            context_env: ctx.env.clone(),
        }
    }

    /// The environment a command sees on top of twokey's own: context, then
    /// target `env`, then the `TWOKEY_*` variables, which nothing overrides.
    fn env_for(
        &self,
        action: Action,
        spec: &GrantSpec,
    ) -> Result<Vec<(String, String)>, ProviderError> {
        let mut env: BTreeMap<String, String> = self.context_env.clone();
        env.extend(self.config.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let vars = [
            ("TWOKEY_ACTION", action.as_str().to_string()),
            ("TWOKEY_REQUEST_ID", spec.request_id.clone()),
            ("TWOKEY_ENTITLEMENT", spec.entitlement.clone()),
            ("TWOKEY_REQUESTER", spec.requester.clone()),
            ("TWOKEY_REQUESTER_NAME", spec.requester_name.clone()),
            (
                "TWOKEY_STARTS_AT",
                rfc3339(spec.starts_at_ms, SecondsFormat::Secs)?,
            ),
            (
                "TWOKEY_ENDS_AT",
                rfc3339(spec.ends_at_ms, SecondsFormat::Secs)?,
            ),
            (
                "TWOKEY_ENDS_AT_UNIX",
                spec.ends_at_ms.div_euclid(1000).to_string(),
            ),
            ("TWOKEY_OVERLAPPING", spec.overlapping_active.join(",")),
        ];
        env.extend(vars.into_iter().map(|(k, v)| (k.to_string(), v)));
        Ok(env.into_iter().collect())
    }

    /// Runs one command to completion or until the timeout, then kills it and
    /// everything it started (it runs in its own process group).
    async fn run(
        &self,
        action: Action,
        argv: &[String],
        spec: &GrantSpec,
    ) -> Result<Finished, ProviderError> {
        let (program, args) = argv.split_first().ok_or_else(|| {
            ProviderError::permanent(format!("exec: no {} command", action.as_str()))
        })?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(self.env_for(action, spec)?)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        cmd.process_group(0);
        let mut child = cmd.spawn().map_err(|e| {
            let msg = format!("exec {}: cannot start {program:?}: {e}", action.as_str());
            match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                    ProviderError::permanent(msg)
                }
                _ => ProviderError::retryable(msg),
            }
        })?;
        let pid = child.id();
        // Drain stderr concurrently so a command that writes a lot never
        // blocks on a full pipe while we wait for it to exit. (stdout is not
        // used: it goes to /dev/null.)
        let stderr = child.stderr.take().map(|s| tokio::spawn(read_tail(s)));
        let deadline = tokio::time::Instant::now() + self.config.timeout;

        let status = match tokio::time::timeout_at(deadline, child.wait()).await {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => {
                return Err(ProviderError::retryable(format!(
                    "exec {}: waiting for {program:?} failed: {e}",
                    action.as_str()
                )))
            }
            Err(_) => {
                kill_group(pid);
                // kill() also reaps, so no zombie is left behind.
                let _ = child.kill().await;
                if let Some(task) = stderr {
                    task.abort();
                }
                return Err(ProviderError::retryable(format!(
                    "exec {}: {program:?} did not finish within {}; killed it",
                    action.as_str(),
                    humantime::format_duration(self.config.timeout)
                )));
            }
        };
        // stderr is best effort: a background process the command left
        // running may hold the pipe open, and must not delay the result.
        let stderr = match stderr {
            Some(task) => {
                let grace = deadline.min(tokio::time::Instant::now() + STDERR_GRACE);
                match tokio::time::timeout_at(grace, task).await {
                    Ok(Ok(bytes)) => bytes,
                    _ => b"(stderr not collected: a background process kept it open)".to_vec(),
                }
            }
            None => Vec::new(),
        };
        Ok(Finished { status, stderr })
    }

    /// Runs a grant or revoke command and turns a non-zero exit into an error.
    async fn run_expect_success(
        &self,
        action: Action,
        argv: &[String],
        spec: &GrantSpec,
    ) -> Result<Finished, ProviderError> {
        let done = self.run(action, argv, spec).await?;
        if done.status.success() {
            Ok(done)
        } else {
            Err(failure(action, argv, &done))
        }
    }
}

#[async_trait]
impl Provider for ExecProvider {
    async fn grant(&self, spec: &GrantSpec) -> Result<GrantOutcome, ProviderError> {
        self.run_expect_success(Action::Grant, &self.config.grant, spec)
            .await?;
        Ok(GrantOutcome {
            secret: None,
            detail: format!("ran {} (exit 0)", program_name(&self.config.grant)),
        })
    }

    async fn revoke(&self, spec: &GrantSpec) -> Result<(), ProviderError> {
        self.run_expect_success(Action::Revoke, &self.config.revoke, spec)
            .await?;
        Ok(())
    }

    async fn check(&self, spec: &GrantSpec) -> Result<Presence, ProviderError> {
        let argv = self.config.check.as_ref().ok_or_else(|| {
            ProviderError::permanent("exec target has no `check` command; presence is unknown")
        })?;
        let done = self.run(Action::Check, argv, spec).await?;
        match done.status.code() {
            Some(0) => Ok(Presence::Present),
            Some(1) => Ok(Presence::Absent),
            _ => Err(failure(Action::Check, argv, &done)),
        }
    }

    fn can_check(&self) -> bool {
        self.config.check.is_some()
    }
}

/// The error for a command that ran but failed: exit code (or signal) and the
/// last lines of its stderr. Retryable: twokey cannot tell a flaky script from
/// a broken one, and revocation must keep trying either way.
fn failure(action: Action, argv: &[String], done: &Finished) -> ProviderError {
    let how = match done.status.code() {
        Some(code) => format!("exited with code {code}"),
        None => {
            #[cfg(unix)]
            {
                use std::os::unix::process::ExitStatusExt;
                match done.status.signal() {
                    Some(sig) => format!("was killed by signal {sig}"),
                    None => "ended without an exit code".to_string(),
                }
            }
            #[cfg(not(unix))]
            {
                "ended without an exit code".to_string()
            }
        }
    };
    let tail = stderr_tail(&done.stderr);
    let mut msg = format!("exec {}: {} {how}", action.as_str(), program_name(argv));
    if tail.is_empty() {
        msg.push_str(" (no stderr)");
    } else {
        msg.push_str("; stderr:\n");
        msg.push_str(&tail);
    }
    ProviderError::retryable(msg)
}

/// The program as shown in messages (`sh -c` scripts stay short).
fn program_name(argv: &[String]) -> String {
    argv.first().map(|p| format!("{p:?}")).unwrap_or_default()
}

/// The last [`STDERR_TAIL_LINES`] non-empty lines of `stderr`.
fn stderr_tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(STDERR_TAIL_LINES);
    lines[start..].join("\n")
}

/// Reads a pipe to its end, keeping only the last [`OUTPUT_KEEP_BYTES`].
async fn read_tail(mut pipe: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > OUTPUT_KEEP_BYTES {
                    let excess = kept.len() - OUTPUT_KEEP_BYTES;
                    kept.drain(..excess);
                }
            }
        }
    }
    kept
}

/// Kills the command's whole process group, so a `sh -c` script's children
/// die with it instead of finishing the work after we reported a timeout.
fn kill_group(pid: Option<u32>) {
    #[cfg(unix)]
    if let Some(pid) = pid.and_then(|p| libc::pid_t::try_from(p).ok()) {
        // SAFETY: kill(2) has no memory-safety preconditions. The child has
        // not been reaped yet (we hold it), so its pid, which is also its
        // process group id after process_group(0), cannot have been reused.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    #[cfg(not(unix))]
    let _ = pid;
}
