//! Real Terraform 1.0.3 (from `scripts/setup-gate-fixtures.sh`) on a
//! configuration without providers: plan to a saved file, apply exactly it.

use std::path::PathBuf;

use twokey_gate::config::{Project, Tool};
use twokey_gate::redact::{redact, MASK};
use twokey_gate::runner::{RunError, Runner};

/// The terraform binary, or `None` (skip) when not installed outside CI.
pub(crate) fn terraform() -> Option<PathBuf> {
    let p = std::env::var_os("TWOKEY_TERRAFORM")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/terraform/terraform")
        });
    if p.exists() {
        return Some(p);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "terraform not found at {}: run scripts/setup-gate-fixtures.sh",
            p.display()
        );
    }
    eprintln!(
        "skipping: terraform not found at {} (run scripts/setup-gate-fixtures.sh)",
        p.display()
    );
    None
}

const MAIN_TF: &str = r#"
variable "env" {
  default = "prod"
}
variable "db_password" {
  default   = "hunter2-from-variable"
  sensitive = true
}
locals {
  bucket = "twokey-${var.env}-logs"
}
output "bucket" {
  value = local.bucket
}
output "password" {
  value     = var.db_password
  sensitive = true
}
output "leaky" {
  value = "password = \"hunter2-in-plain\""
}
"#;

fn project(workspace: &str) -> Project {
    Project {
        repo: "acme/infra".into(),
        name: "prod".into(),
        dir: ".".into(),
        workspace: workspace.into(),
        tool: Tool::Terraform,
        plan_args: vec![],
        apply_args: vec![],
        autoplan: true,
        drift: true,
    }
}

#[tokio::test]
async fn plan_then_apply_exactly_the_saved_plan() {
    let Some(tf) = terraform() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("main.tf"), MAIN_TF).expect("write");
    let runner = Runner::new(tf);
    let plan_path = dir.path().join("plans/prod-abc.tfplan");
    let p = project("staging");
    let plan = runner
        .plan(&p, dir.path(), &plan_path)
        .await
        .expect("plan runs");
    assert!(plan.ok, "{}", plan.output);
    assert!(plan.output.contains("twokey-prod-logs"), "{}", plan.output);
    assert!(
        !plan.output.contains("hunter2-from-variable"),
        "terraform hides sensitive values"
    );
    // Secrets Terraform does not know about are caught by redaction.
    assert!(plan.output.contains("hunter2-in-plain"));
    let shown = redact(&plan.output, &[]);
    assert!(
        !shown.contains("hunter2-in-plain") && shown.contains(MASK),
        "{shown}"
    );
    let sha = plan.plan_sha256.clone().expect("sha");

    // A tampered plan file is refused.
    let mut bytes = std::fs::read(&plan_path).expect("read");
    let original = bytes.clone();
    bytes.push(0);
    std::fs::write(&plan_path, &bytes).expect("write");
    let e = runner
        .apply(&p, dir.path(), &plan_path, &sha)
        .await
        .expect_err("tampered");
    assert!(matches!(e, RunError::PlanChanged(_)), "{e}");
    std::fs::write(&plan_path, &original).expect("restore");

    let applied = runner
        .apply(&p, dir.path(), &plan_path, &sha)
        .await
        .expect("apply runs");
    assert!(applied.ok, "{}", applied.output);
    assert!(
        applied.output.contains("Apply complete"),
        "{}",
        applied.output
    );
    assert!(
        dir.path()
            .join("terraform.tfstate.d/staging/terraform.tfstate")
            .exists(),
        "state written in the project's workspace"
    );
    // Single use is enforced by the gate (plan status moves once), not by
    // Terraform, which re-applies an outputs-only plan without complaint.
}

#[tokio::test]
async fn a_broken_configuration_fails_the_plan() {
    let Some(tf) = terraform() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("main.tf"),
        "output \"x\" { value = nope }\n",
    )
    .expect("write");
    let plan = Runner::new(tf)
        .plan(
            &project("default"),
            dir.path(),
            &dir.path().join("p.tfplan"),
        )
        .await
        .expect("runs");
    assert!(!plan.ok);
    assert!(plan.plan_sha256.is_none());
}
