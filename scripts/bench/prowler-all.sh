#!/usr/bin/env bash
# Prowler over every account of the seeded organisation, one run per account
# (the management account with its own credentials, members through
# OrganizationAccountAccessRole), on the checks twokey shares with it.
#   prowler-all.sh PROWLER ENDPOINT OUTDIR MGMT_ACCOUNT MEMBERS_FILE REGION...
set -uo pipefail
PROWLER=$1 ENDPOINT=$2 OUT=$3 MGMT=$4 MEMBERS=$5; shift 5
# The shared checks: $PROWLER_CHECKS (bench-posture.sh takes them from the
# `prowler` ids of twokey's checks), else the original set.
if [ -n "${PROWLER_CHECKS:-}" ]; then
  read -r -a CHECKS <<<"$PROWLER_CHECKS"
else
  CHECKS=(cloudtrail_multi_region_enabled cloudtrail_log_file_validation_enabled
    cloudtrail_multi_region_enabled_logging_management_events s3_bucket_object_lock
    config_recorder_all_regions_enabled guardduty_is_enabled securityhub_enabled
    iam_policy_allows_privilege_escalation iam_user_accesskey_unused iam_user_console_access_unused
    iam_no_root_access_key iam_root_mfa_enabled iam_root_hardware_mfa_enabled)
fi
mkdir -p "$OUT"
one() { # ACCOUNT [--role ARN]; exit 3 means failed findings, not an error
  local acct=$1; shift
  AWS_ENDPOINT_URL="$ENDPOINT" "$PROWLER" aws --region "${REGIONS[@]}" "$@" --checks "${CHECKS[@]}" \
    -M json-ocsf -o "$OUT" -F "acct-$acct" --no-banner >"$OUT/log-$acct.txt" 2>&1
  local s=$?
  [ "$s" = 0 ] || [ "$s" = 3 ] || echo "prowler failed for $acct (status $s): $(tail -3 "$OUT/log-$acct.txt")" >&2
}
REGIONS=("$@")
one "$MGMT"
while read -r acct; do
  one "$acct" --role "arn:aws:iam::$acct:role/OrganizationAccountAccessRole"
done <"$MEMBERS"
