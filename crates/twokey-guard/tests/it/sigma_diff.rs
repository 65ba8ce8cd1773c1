//! Differential test against SigmaHQ's reference implementation.
//!
//! The 57 SigmaHQ CloudTrail rules run over the 289 Panther test records, in
//! twokey's engine and in pySigma (SQLite backend, records flattened into a
//! table; see tests/sigma-diff/pysigma_matches.py). The two sets of
//! (rule id, line) matches must be equal except for the pairs listed in
//! crates/twokey-sigma/DIVERGENCES.md, each with its reason.
//!
//! The pySigma side needs Python with pysigma: `tests/sigma-diff/setup.sh`
//! prints the interpreter to put in TWOKEY_PYSIGMA_PYTHON. Without it the
//! test is skipped locally and fails when CI is set.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use twokey_sigma::{Config, Event, RuleSet};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn data() -> PathBuf {
    repo().join("../shared/data")
}

fn rules_dir() -> PathBuf {
    data().join("sigma/rules/cloud/aws/cloudtrail")
}

fn events_path() -> PathBuf {
    data().join("cloudtrail/panther-test-events.ndjson")
}

/// (rule id, 1-based line) pairs twokey's engine finds.
fn twokey_matches() -> BTreeSet<(String, u64)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(rules_dir())
        .expect("SigmaHQ rules in ../shared/data")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 57, "expected the 57 SigmaHQ CloudTrail rules");
    let texts: Vec<(String, String)> = files
        .iter()
        .map(|p| (p.display().to_string(), std::fs::read_to_string(p).unwrap()))
        .collect();
    let set = RuleSet::from_sources(
        Config::cloudtrail(),
        texts.iter().map(|(a, b)| (a.as_str(), b.as_str())),
    );
    assert!(set.unsupported().is_empty(), "{:#?}", set.unsupported());
    assert_eq!(set.rules().len(), 57);
    let events = std::fs::read_to_string(events_path()).unwrap();
    let mut out = BTreeSet::new();
    let mut hits = Vec::new();
    let mut n = 0;
    for (i, line) in events.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        n += 1;
        let ev = Event::parse(line).unwrap();
        set.matches(&ev, &mut hits);
        for &h in &hits {
            out.insert((set.rules()[h].meta.id.clone(), i as u64 + 1));
        }
    }
    assert_eq!(n, 289);
    out
}

/// Divergences listed in DIVERGENCES.md: rows `| rule id | line | side | reason |`.
fn listed_divergences() -> BTreeSet<(String, u64, String)> {
    let text = std::fs::read_to_string(repo().join("crates/twokey-sigma/DIVERGENCES.md")).unwrap();
    let mut out = BTreeSet::new();
    for row in text.lines() {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        if cells.len() < 6 || cells[1].len() != 36 || cells[1].matches('-').count() != 4 {
            continue;
        }
        let line: u64 = cells[2].parse().expect("line number in DIVERGENCES.md");
        assert!(
            !cells[4].is_empty(),
            "divergence {} line {line} has no reason",
            cells[1]
        );
        out.insert((cells[1].to_string(), line, cells[3].to_string()));
    }
    out
}

#[test]
fn sigmahq_rules_match_like_pysigma() {
    let ours = twokey_matches();
    let python = match std::env::var_os("TWOKEY_PYSIGMA_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but TWOKEY_PYSIGMA_PYTHON is not: run tests/sigma-diff/setup.sh and export its output"
            );
            eprintln!("skipping the pySigma comparison: TWOKEY_PYSIGMA_PYTHON is not set");
            return;
        }
    };
    let output = Command::new(&python)
        .arg(repo().join("tests/sigma-diff/pysigma_matches.py"))
        .arg(rules_dir())
        .arg(events_path())
        .output()
        .expect("running the pySigma script");
    assert!(
        output.status.success(),
        "pySigma script failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let theirs: BTreeSet<(String, u64)> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (id, line) = l.split_once('\t').expect("id<TAB>line");
            (id.to_string(), line.parse().unwrap())
        })
        .collect();
    assert!(theirs.len() > 100, "pySigma found suspiciously few matches");
    let mut actual = BTreeSet::new();
    for (id, line) in ours.difference(&theirs) {
        actual.insert((id.clone(), *line, "twokey only".to_string()));
    }
    for (id, line) in theirs.difference(&ours) {
        actual.insert((id.clone(), *line, "pySigma only".to_string()));
    }
    let listed = listed_divergences();
    let unexplained: Vec<_> = actual.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&actual).collect();
    assert!(
        unexplained.is_empty() && stale.is_empty(),
        "divergences not listed in DIVERGENCES.md: {unexplained:#?}\nlisted but not seen: {stale:#?}"
    );
}

/// Without Python: the per-rule match counts stay what they were when the
/// pySigma comparison last passed (pySigma's counts, less the divergences in
/// DIVERGENCES.md). A change here means re-running the comparison.
#[test]
fn sigmahq_match_counts_are_stable() {
    let ours = twokey_matches();
    let mut ids = std::collections::HashMap::new();
    for (stem, _) in EXPECTED {
        let text = std::fs::read_to_string(rules_dir().join(format!("{stem}.yml"))).unwrap();
        let id = text
            .lines()
            .find_map(|l| l.strip_prefix("id: "))
            .unwrap()
            .trim()
            .to_string();
        ids.insert(id, *stem);
    }
    let mut counts: std::collections::BTreeMap<&str, usize> =
        EXPECTED.iter().map(|(s, _)| (*s, 0)).collect();
    for (id, _) in &ours {
        *counts.get_mut(ids[id.as_str()]).unwrap() += 1;
    }
    let expected: std::collections::BTreeMap<&str, usize> = EXPECTED.iter().copied().collect();
    assert_eq!(counts, expected);
}

const EXPECTED: &[(&str, usize)] = &[
    ("aws_cloudtrail_bedrock_guardrail_deleted", 1),
    ("aws_cloudtrail_bedrock_guardrail_updated", 1),
    ("aws_cloudtrail_bucket_deleted", 0),
    ("aws_cloudtrail_console_login_failed_authentication", 0),
    ("aws_cloudtrail_console_login_success_without_mfa", 4),
    ("aws_cloudtrail_disable_logging", 4),
    ("aws_cloudtrail_guardduty_detector_deleted_or_updated", 0),
    ("aws_cloudtrail_imds_malicious_usage", 0),
    ("aws_cloudtrail_new_acl_entries", 5),
    ("aws_cloudtrail_new_route_added", 0),
    ("aws_cloudtrail_pua_trufflehog", 1),
    ("aws_cloudtrail_region_enabled", 0),
    ("aws_cloudtrail_security_group_change_ingress_egress", 4),
    ("aws_cloudtrail_security_group_change_loadbalancer", 0),
    ("aws_cloudtrail_security_group_change_rds", 5),
    ("aws_cloudtrail_ssm_malicious_usage", 2),
    ("aws_cloudtrail_vpc_flow_logs_deleted", 1),
    ("aws_config_disable_recording", 2),
    ("aws_console_getsignintoken", 1),
    ("aws_delete_identity", 0),
    ("aws_delete_saml_provider", 1),
    ("aws_disable_bucket_versioning", 4),
    ("aws_ec2_disable_encryption", 0),
    ("aws_ec2_import_key_pair_activity", 0),
    ("aws_ec2_startup_script_change", 0),
    ("aws_ec2_vm_export_failure", 0),
    ("aws_ecs_task_definition_cred_endpoint_query", 0),
    ("aws_efs_fileshare_modified_or_deleted", 0),
    ("aws_efs_fileshare_mount_modified_or_deleted", 0),
    ("aws_eks_cluster_created_or_deleted", 0),
    ("aws_elasticache_security_group_created", 0),
    ("aws_elasticache_security_group_modified_or_deleted", 0),
    ("aws_enum_buckets", 0),
    ("aws_guardduty_disruption", 0),
    ("aws_iam_backdoor_users_keys", 5),
    ("aws_iam_s3browser_loginprofile_creation", 0),
    ("aws_iam_s3browser_templated_s3_bucket_policy_creation", 0),
    ("aws_iam_s3browser_user_or_accesskey_creation", 0),
    ("aws_kms_import_key_material", 0),
    ("aws_lambda_function_url", 0),
    ("aws_new_lambda_layer_attached", 0),
    ("aws_passed_role_to_glue_development_endpoint", 0),
    ("aws_rds_change_master_password", 1),
    ("aws_rds_dbcluster_actions", 3),
    ("aws_rds_public_db_restore", 0),
    ("aws_root_account_usage", 8),
    ("aws_route_53_domain_transferred_lock_disabled", 0),
    ("aws_route_53_domain_transferred_to_another_account", 0),
    ("aws_s3_data_management_tampering", 6),
    ("aws_securityhub_finding_evasion", 2),
    ("aws_snapshot_backup_exfiltration", 2),
    ("aws_sso_idp_change", 0),
    ("aws_sts_assumerole_misuse", 135),
    ("aws_sts_getcalleridentity_trufflehog", 1),
    ("aws_sts_getsessiontoken_misuse", 1),
    ("aws_susp_saml_activity", 0),
    ("aws_update_login_profile", 2),
];
