//! Runs Terraform or OpenTofu: `init`, `plan -out` to a saved plan file bound
//! to the head commit, and `apply` of exactly that file (its SHA-256 checked
//! against the one recorded at plan time).
//!
//! The tool runs with a cleared environment (only `PATH`, `HOME` and what the
//! operator configures), so the gate's GitHub token and webhook secret are
//! never visible to provider code or `local-exec`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::config::Project;

/// Runner failures (not plan failures, which are [`RunOutput`] with `ok == false`).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The executable could not be started.
    #[error("cannot run {0}: {1}")]
    Spawn(String, String),
    /// The saved plan is missing or was changed after planning.
    #[error("saved plan {0} is missing or changed since it was planned")]
    PlanChanged(String),
    /// IO.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// Took too long.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}

/// Output of one plan or apply.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// Whether every step exited 0.
    pub ok: bool,
    /// Combined output of the steps (not yet redacted).
    pub output: String,
    /// For plans: the saved plan's SHA-256.
    pub plan_sha256: Option<String>,
}

/// Runs one tool executable.
#[derive(Debug, Clone)]
pub struct Runner {
    /// The executable (`terraform` or `tofu`, or a full path).
    pub bin: PathBuf,
    /// Extra environment for the tool (for instance cloud credentials).
    pub env: Vec<(String, String)>,
    /// Limit per step.
    pub timeout: Duration,
}

/// SHA-256 of a file, hex.
pub async fn file_sha256(path: &Path) -> Result<String, std::io::Error> {
    let bytes = tokio::fs::read(path).await?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

impl Runner {
    /// A runner for `bin` with a 30-minute step limit.
    pub fn new(bin: impl Into<PathBuf>) -> Runner {
        Runner {
            bin: bin.into(),
            env: Vec::new(),
            timeout: Duration::from_secs(1800),
        }
    }

    async fn step(&self, dir: &Path, args: &[String], out: &mut String) -> Result<bool, RunError> {
        Ok(self.step_code(dir, args, out).await? == 0)
    }

    /// Runs one step; its exit code (-1 when killed by a signal).
    async fn step_code(
        &self,
        dir: &Path,
        args: &[String],
        out: &mut String,
    ) -> Result<i32, RunError> {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", dir)
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("CHECKPOINT_DISABLE", "1")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let fut = cmd.output();
        let res = tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| RunError::Timeout(self.timeout))?
            .map_err(|e| RunError::Spawn(self.bin.display().to_string(), e.to_string()))?;
        out.push_str(&String::from_utf8_lossy(&res.stdout));
        out.push_str(&String::from_utf8_lossy(&res.stderr));
        Ok(res.status.code().unwrap_or(-1))
    }

    async fn prepare(
        &self,
        project: &Project,
        dir: &Path,
        out: &mut String,
    ) -> Result<bool, RunError> {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        if !self
            .step(dir, &s(&["init", "-input=false", "-no-color"]), out)
            .await?
        {
            return Ok(false);
        }
        if project.workspace != "default" {
            let mut ws = String::new();
            let selected = self
                .step(
                    dir,
                    &s(&["workspace", "select", "-no-color", &project.workspace]),
                    &mut ws,
                )
                .await?;
            if !selected
                && !self
                    .step(
                        dir,
                        &s(&["workspace", "new", "-no-color", &project.workspace]),
                        out,
                    )
                    .await?
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Plans `project` in `dir` (the project directory of a checkout of the
    /// head commit), saving the plan to `plan_path`.
    pub async fn plan(
        &self,
        project: &Project,
        dir: &Path,
        plan_path: &Path,
    ) -> Result<RunOutput, RunError> {
        let mut out = String::new();
        if let Some(parent) = plan_path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        if !self.prepare(project, dir, &mut out).await? {
            return Ok(RunOutput {
                ok: false,
                output: out,
                plan_sha256: None,
            });
        }
        let mut args = vec![
            "plan".to_string(),
            "-input=false".into(),
            "-no-color".into(),
            format!("-out={}", plan_path.display()),
        ];
        args.extend(project.plan_args.iter().cloned());
        let mut plan_out = String::new();
        let ok = self.step(dir, &args, &mut plan_out).await?;
        let sha = if ok {
            Some(file_sha256(plan_path).await?)
        } else {
            None
        };
        Ok(RunOutput {
            ok,
            output: plan_out + &if ok { String::new() } else { out },
            plan_sha256: sha,
        })
    }

    /// A drift check: `plan -detailed-exitcode` without saving a plan.
    /// Returns the exit code (0 no changes, 2 reality differs from the code,
    /// anything else a failure) and the output.
    pub async fn plan_detailed(
        &self,
        project: &Project,
        dir: &Path,
    ) -> Result<(i32, String), RunError> {
        let mut out = String::new();
        if !self.prepare(project, dir, &mut out).await? {
            return Ok((1, out));
        }
        let mut args = vec![
            "plan".to_string(),
            "-input=false".into(),
            "-no-color".into(),
            "-detailed-exitcode".into(),
            // Read-only: never hold (or, if cut short, leave behind) the
            // state lock an apply is waiting for.
            "-lock=false".into(),
        ];
        args.extend(project.plan_args.iter().cloned());
        let mut plan_out = String::new();
        let code = self.step_code(dir, &args, &mut plan_out).await?;
        Ok((code, if code == 1 { out + &plan_out } else { plan_out }))
    }

    /// Applies exactly the saved plan at `plan_path`, refusing if its SHA-256
    /// is not `expected_sha256`.
    pub async fn apply(
        &self,
        project: &Project,
        dir: &Path,
        plan_path: &Path,
        expected_sha256: &str,
    ) -> Result<RunOutput, RunError> {
        let actual = file_sha256(plan_path)
            .await
            .map_err(|_| RunError::PlanChanged(plan_path.display().to_string()))?;
        if actual != expected_sha256 {
            return Err(RunError::PlanChanged(plan_path.display().to_string()));
        }
        let mut out = String::new();
        if !self.prepare(project, dir, &mut out).await? {
            return Ok(RunOutput {
                ok: false,
                output: out,
                plan_sha256: None,
            });
        }
        let mut args = vec![
            "apply".to_string(),
            "-input=false".into(),
            "-no-color".into(),
        ];
        args.extend(project.apply_args.iter().cloned());
        args.push(plan_path.display().to_string());
        let mut apply_out = String::new();
        let ok = self.step(dir, &args, &mut apply_out).await?;
        Ok(RunOutput {
            ok,
            output: apply_out,
            plan_sha256: Some(actual),
        })
    }
}
