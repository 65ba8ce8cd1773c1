"""Seeds a moto server with an AWS organisation for the posture benchmark
(scripts/bench-posture.sh): a management account and N member accounts, in
R regions, each with resources that pass and fail the checks twokey and
Prowler share. Run with moto's own Python (it has boto3):

    seed_org.py ENDPOINT MEMBERS REGION[,REGION...]

Prints the member account ids, one a line. Deterministic per account index:
even members are "good" (validated multi-region trail, detectors on), odd
ones "bad", so both tools see passes and failures.
"""

import json
import sys

import boto3

ENDPOINT, MEMBERS, REGIONS = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
HOME = REGIONS[0]


def session(account=None):
    base = dict(endpoint_url=ENDPOINT, region_name=HOME,
                aws_access_key_id="testing", aws_secret_access_key="testing")
    if account is None:
        return base
    sts = boto3.client("sts", **base)
    c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole",
                        RoleSessionName="seed")["Credentials"]
    return dict(endpoint_url=ENDPOINT, region_name=HOME, aws_access_key_id=c["AccessKeyId"],
                aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"])


def client(s, service, region=None):
    args = dict(s)
    if region:
        args["region_name"] = region
    return boto3.client(service, **args)


def seed_account(s, account, good):
    iam = client(s, "iam")
    iam.create_user(UserName="deployer")
    iam.create_access_key(UserName="deployer")  # never used
    if not good:
        iam.create_user(UserName="ops")
        iam.create_login_profile(UserName="ops", Password="Very-long-passw0rd!")
        iam.create_policy(PolicyName="admin-all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    else:
        iam.create_policy(PolicyName="read-only", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}))
    s3 = client(s, "s3")
    bucket = f"trail-{account}"
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE" if good else "GOVERNANCE", "Days": 400}}})
    ct = client(s, "cloudtrail")
    ct.create_trail(Name="main", S3BucketName=bucket, IsMultiRegionTrail=good,
                    EnableLogFileValidation=good)
    ct.start_logging(Name="main")
    ct.put_event_selectors(TrailName="main", EventSelectors=[
        {"ReadWriteType": "All" if good else "WriteOnly", "IncludeManagementEvents": True}])
    for i, r in enumerate(REGIONS):
        on = good or i == 0
        if on:
            client(s, "guardduty", r).create_detector(Enable=True)
            client(s, "securityhub", r).enable_security_hub()
            cfg = client(s, "config", r)
            cfg.put_configuration_recorder(ConfigurationRecorder={
                "name": "default", "roleARN": f"arn:aws:iam::{account}:role/config",
                "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": True}})
            cfg.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": bucket})
            cfg.start_configuration_recorder(ConfigurationRecorderName="default")


def main():
    mgmt = session()
    org = client(mgmt, "organizations")
    org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]
    ou = org.create_organizational_unit(ParentId=root, Name="Workloads")["OrganizationalUnit"]["Id"]
    me = client(mgmt, "sts").get_caller_identity()["Account"]
    seed_account(mgmt, me, True)
    ids = []
    for i in range(MEMBERS):
        st = org.create_account(AccountName=f"workload-{i}", Email=f"w{i}@example.com")["CreateAccountStatus"]
        acct = st["AccountId"]
        org.move_account(AccountId=acct, SourceParentId=root, DestinationParentId=ou)
        seed_account(session(acct), acct, i % 2 == 0)
        ids.append(acct)
    print("\n".join(ids))


main()
