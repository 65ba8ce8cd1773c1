//! twokey's built-in rule pack, compiled into the binary.
//!
//! `rules/*.yml` cover the two-person-integrity baseline (logging, audit
//! storage, backups, SCPs, detective services, root and root sessions
//! (`AssumeRoot`), MFA, standing
//! credentials, open security groups, twokey's own roles);
//! `rules/correlations/*.yml` are SigmaHQ's count-based CloudTrail rules
//! (`unsupported/cloud/`) expressed as Sigma correlation rules. A test checks
//! that this list and the directory agree.

/// (path under `rules/`, YAML text) of every rule file in the pack.
pub const PACK: &[(&str, &str)] = &[
    (
        "correlations/aws_ec2_download_userdata.yml",
        include_str!("../rules/correlations/aws_ec2_download_userdata.yml"),
    ),
    (
        "correlations/aws_enum_backup.yml",
        include_str!("../rules/correlations/aws_enum_backup.yml"),
    ),
    (
        "correlations/aws_enum_listing.yml",
        include_str!("../rules/correlations/aws_enum_listing.yml"),
    ),
    (
        "correlations/aws_enum_network.yml",
        include_str!("../rules/correlations/aws_enum_network.yml"),
    ),
    (
        "correlations/aws_enum_storage.yml",
        include_str!("../rules/correlations/aws_enum_storage.yml"),
    ),
    (
        "correlations/aws_lambda_function_created_or_invoked.yml",
        include_str!("../rules/correlations/aws_lambda_function_created_or_invoked.yml"),
    ),
    (
        "correlations/aws_macic_evasion.yml",
        include_str!("../rules/correlations/aws_macic_evasion.yml"),
    ),
    (
        "correlations/aws_ses_messaging_enabled.yml",
        include_str!("../rules/correlations/aws_ses_messaging_enabled.yml"),
    ),
    (
        "tpi_assume_root.yml",
        include_str!("../rules/tpi_assume_root.yml"),
    ),
    (
        "tpi_backup_vault_lock_removed.yml",
        include_str!("../rules/tpi_backup_vault_lock_removed.yml"),
    ),
    (
        "tpi_cloudtrail_logging_stopped.yml",
        include_str!("../rules/tpi_cloudtrail_logging_stopped.yml"),
    ),
    (
        "tpi_cloudtrail_selectors_changed.yml",
        include_str!("../rules/tpi_cloudtrail_selectors_changed.yml"),
    ),
    (
        "tpi_config_disabled.yml",
        include_str!("../rules/tpi_config_disabled.yml"),
    ),
    (
        "tpi_guardduty_disabled.yml",
        include_str!("../rules/tpi_guardduty_disabled.yml"),
    ),
    (
        "tpi_iam_user_or_key_created.yml",
        include_str!("../rules/tpi_iam_user_or_key_created.yml"),
    ),
    (
        "tpi_mfa_deactivated.yml",
        include_str!("../rules/tpi_mfa_deactivated.yml"),
    ),
    (
        "tpi_root_activity.yml",
        include_str!("../rules/tpi_root_activity.yml"),
    ),
    (
        "tpi_s3_bucket_policy_changed.yml",
        include_str!("../rules/tpi_s3_bucket_policy_changed.yml"),
    ),
    (
        "tpi_s3_lifecycle_changed.yml",
        include_str!("../rules/tpi_s3_lifecycle_changed.yml"),
    ),
    (
        "tpi_s3_object_lock_changed.yml",
        include_str!("../rules/tpi_s3_object_lock_changed.yml"),
    ),
    (
        "tpi_scp_detached_or_changed.yml",
        include_str!("../rules/tpi_scp_detached_or_changed.yml"),
    ),
    (
        "tpi_security_group_open_to_world.yml",
        include_str!("../rules/tpi_security_group_open_to_world.yml"),
    ),
    (
        "tpi_securityhub_disabled.yml",
        include_str!("../rules/tpi_securityhub_disabled.yml"),
    ),
    (
        "tpi_twokey_role_changed.yml",
        include_str!("../rules/tpi_twokey_role_changed.yml"),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_lists_every_rule_file() {
        fn walk(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, base, out);
                } else if p.extension().is_some_and(|x| x == "yml") {
                    out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
                }
            }
        }
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let mut on_disk = Vec::new();
        walk(&base, &base, &mut on_disk);
        on_disk.sort();
        let mut listed: Vec<String> = PACK.iter().map(|(n, _)| n.to_string()).collect();
        listed.sort();
        assert_eq!(listed, on_disk);
    }

    #[test]
    fn every_pack_rule_compiles() {
        let set = twokey_sigma::RuleSet::from_sources(
            twokey_sigma::Config::cloudtrail(),
            PACK.iter().copied(),
        );
        assert!(set.unsupported().is_empty(), "{:?}", set.unsupported());
        assert_eq!(set.correlations().len(), 8);
    }
}
