#!/usr/bin/env python3
"""Writes a generated AWS account as GetAccountAuthorizationDetails JSON
(deterministic for a seed), and the high-risk list both engines answer.

usage: gen-iam-account.py OUT_DIR [--roles 5000] [--policies 2000] [--users 200] [--seed 14]

OUT_DIR/auth-details.json  the account (API shape: AWS managed policies included,
                           documents as JSON objects, as the AWS CLI prints them)
OUT_DIR/risks.json         [{"action", "resource"}]: the default high-risk list
OUT_DIR/twokey.json        {"targets": [...], "gateway": [...]}
"""
import argparse, json, os, random

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--roles", type=int, default=5000)
ap.add_argument("--policies", type=int, default=2000)
ap.add_argument("--users", type=int, default=200)
ap.add_argument("--seed", type=int, default=14)
a = ap.parse_args()
rnd = random.Random(a.seed)
ACC = "111111111111"
arn = lambda kind, name: f"arn:aws:iam::{ACC}:{kind}/{name}"
doc = lambda *st: {"Version": "2012-10-17", "Statement": list(st)}
allow = lambda actions, resources, **kw: dict({"Effect": "Allow", "Action": actions, "Resource": resources}, **kw)

NR, NP, NU = a.roles, a.policies, a.users
TARGETS = [f"prod-admin-{i}" for i in range(1, 4)]
services = ["s3", "dynamodb", "sqs", "sns", "logs", "kms", "ec2", "lambda", "rds", "ssm"]


def policy_doc(i):
    r = rnd.random()
    svc = rnd.choice(services)
    if r < 0.55:
        return doc(allow([f"{svc}:Get*", f"{svc}:List*", f"{svc}:Describe*"], f"arn:aws:{svc}:*:{ACC}:res-{i}*"),
                   allow([f"{svc}:Put*"], f"arn:aws:{svc}:*:{ACC}:res-{i}/*"))
    if r < 0.65:
        return doc(allow("sts:AssumeRole", [arn("role", f"app-{rnd.randrange(NR - 4)}") for _ in range(rnd.randint(1, 3))]))
    if r < 0.70:
        return doc(allow("iam:PassRole", arn("role", f"app-{rnd.randrange(NR // 10)}*"),
                         Condition={"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}),
                   allow(["lambda:CreateFunction", "lambda:InvokeFunction"], "*"))
    if r < 0.73:
        return doc(allow("iam:CreateAccessKey", arn("user", f"user-{rnd.randrange(NU)}")))
    if r < 0.76:
        return doc(allow("sts:AssumeRole", "*", Condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}}))
    if r < 0.78:
        return doc(allow(["iam:PutRolePolicy", "iam:AttachRolePolicy"], arn("role", f"app-{rnd.randrange(NR - 4)}")))
    if r < 0.79:
        return doc(allow("cloudtrail:*", "*"), {"Effect": "Deny", "Action": "cloudtrail:StopLogging", "Resource": "*",
                                                  "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}})
    if r < 0.80:
        return doc({"Effect": "Allow", "NotAction": ["iam:*", "organizations:*"], "Resource": "*"})
    if r < 0.81:
        return doc(allow("iam:CreatePolicyVersion", f"arn:aws:iam::{ACC}:policy/p-{rnd.randrange(NP)}"))
    return doc(allow([f"{svc}:*"], f"arn:aws:{svc}:eu-west-1:{ACC}:*"))


policies = [{"PolicyName": f"p-{i}", "PolicyId": f"ANPA{i:016d}", "Arn": f"arn:aws:iam::{ACC}:policy/p-{i}",
             "Path": "/", "DefaultVersionId": "v1", "AttachmentCount": 1, "IsAttachable": True,
             "PolicyVersionList": [{"Document": policy_doc(i), "VersionId": "v1", "IsDefaultVersion": True}]}
            for i in range(NP)]
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
policies.append({"PolicyName": "AdministratorAccess", "PolicyId": "ANPAADMIN", "Arn": ADMIN, "Path": "/",
                 "DefaultVersionId": "v1", "AttachmentCount": 4, "IsAttachable": True,
                 "PolicyVersionList": [{"Document": doc(allow("*", "*")), "VersionId": "v1", "IsDefaultVersion": True}]})
boundary = f"arn:aws:iam::{ACC}:policy/boundary-no-iam"
policies.append({"PolicyName": "boundary-no-iam", "PolicyId": "ANPABOUND", "Arn": boundary, "Path": "/",
                 "DefaultVersionId": "v1", "AttachmentCount": 1, "IsAttachable": True,
                 "PolicyVersionList": [{"Document": doc({"Effect": "Allow", "NotAction": ["iam:*", "sts:AssumeRole"], "Resource": "*"}),
                                        "VersionId": "v1", "IsDefaultVersion": True}]})
pick = lambda n: [{"PolicyName": f"p-{k}", "PolicyArn": f"arn:aws:iam::{ACC}:policy/p-{k}"} for k in rnd.sample(range(NP), n)]


def trust(i):
    r = rnd.random()
    if r < 0.7:
        svc = rnd.choice(["lambda.amazonaws.com", "ec2.amazonaws.com", "ecs-tasks.amazonaws.com"])
        p = {"Service": svc}
    elif r < 0.95:
        p = {"AWS": f"arn:aws:iam::{ACC}:root"}
    else:
        p = {"AWS": arn("role", f"app-{rnd.randrange(NR - 4)}")}
    return doc({"Effect": "Allow", "Principal": p, "Action": "sts:AssumeRole"})


def role(name, i, trust_doc, attached, inline=None, bound=None):
    r = {"Path": "/", "RoleName": name, "RoleId": f"AROA{i:016d}", "Arn": arn("role", name),
         "CreateDate": "2025-01-01T00:00:00Z", "AssumeRolePolicyDocument": trust_doc,
         "InstanceProfileList": [], "RolePolicyList": inline or [], "AttachedManagedPolicies": attached, "Tags": []}
    if bound:
        r["PermissionsBoundary"] = {"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": bound}
    return r


roles = []
APPS = NR - len(TARGETS) - 1  # the twokey targets and the gateway make up the rest
for i in range(APPS):
    inline = [{"PolicyName": "inline", "PolicyDocument": policy_doc(NP + i)}] if rnd.random() < 0.2 else []
    roles.append(role(f"app-{i}", i, trust(i), pick(rnd.randint(1, 3)), inline,
                      boundary if rnd.random() < 0.05 else None))
root_trust = doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACC}:root"}, "Action": "sts:AssumeRole"})
for k, t in enumerate(TARGETS):
    roles.append(role(t, APPS + k, root_trust, [{"PolicyName": "AdministratorAccess", "PolicyArn": ADMIN}]))
roles.append(role("twokey-gateway", APPS + 10, doc({"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                                                  "Action": "sts:AssumeRole"}), [],
                  [{"PolicyName": "gateway", "PolicyDocument": doc(allow(["iam:PutUserPolicy", "iam:DeleteUserPolicy"], arn("user", "*")))}]))

groups = [{"Path": "/", "GroupName": f"g-{g}", "GroupId": f"AGPA{g:016d}", "Arn": arn("group", f"g-{g}"),
           "GroupPolicyList": [], "AttachedManagedPolicies": pick(2)} for g in range(20)]
users = [{"Path": "/", "UserName": f"user-{u}", "UserId": f"AIDA{u:016d}", "Arn": arn("user", f"user-{u}"),
          "CreateDate": "2025-01-01T00:00:00Z", "UserPolicyList": [],
          "GroupList": [f"g-{g}" for g in rnd.sample(range(20), rnd.randint(1, 2))],
          "AttachedManagedPolicies": pick(rnd.randint(0, 2)), "Tags": []} for u in range(NU)]

os.makedirs(a.out, exist_ok=True)
with open(os.path.join(a.out, "auth-details.json"), "w") as f:
    json.dump({"UserDetailList": users, "GroupDetailList": groups, "RoleDetailList": roles, "Policies": policies}, f)
monitoring = ["cloudtrail:StopLogging", "cloudtrail:DeleteTrail", "cloudtrail:UpdateTrail", "cloudtrail:PutEventSelectors",
              "cloudtrail:PutInsightSelectors", "config:StopConfigurationRecorder", "config:DeleteConfigurationRecorder",
              "config:DeleteDeliveryChannel", "config:PutConfigurationRecorder", "guardduty:DeleteDetector",
              "guardduty:UpdateDetector", "guardduty:DisassociateFromMasterAccount",
              "guardduty:DisassociateFromAdministratorAccount", "securityhub:DisableSecurityHub",
              "securityhub:DisassociateFromMasterAccount", "securityhub:DisassociateFromAdministratorAccount",
              "backup:DeleteBackupVaultLockConfiguration", "organizations:LeaveOrganization"]
iam_admin = ["iam:AttachUserPolicy", "iam:AttachRolePolicy", "iam:AttachGroupPolicy", "iam:PutUserPolicy",
             "iam:PutRolePolicy", "iam:PutGroupPolicy", "iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion",
             "iam:AddUserToGroup", "iam:UpdateAssumeRolePolicy"]
risks = [{"action": x, "resource": "*"} for x in monitoring + iam_admin]
risks += [{"action": x, "resource": "arn:aws:s3:::org-logs"} for x in
          ["s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:PutLifecycleConfiguration", "s3:PutBucketObjectLockConfiguration", "s3:DeleteBucket"]]
risks += [{"action": x, "resource": "arn:aws:s3:::org-logs/*"} for x in ["s3:DeleteObject", "s3:DeleteObjectVersion"]]
risks += [{"action": x, "resource": "*"} for x in
          ["backup:DeleteRecoveryPoint", "backup:DeleteBackupVault", "backup:UpdateRecoveryPointLifecycle"]]
risks += [{"action": "sts:AssumeRole", "resource": arn("role", t)} for t in TARGETS]
with open(os.path.join(a.out, "risks.json"), "w") as f:
    json.dump(risks, f, indent=0)
with open(os.path.join(a.out, "twokey.json"), "w") as f:
    json.dump({"targets": [arn("role", t) for t in TARGETS], "gateway": [arn("role", "twokey-gateway")]}, f)
print(f"wrote {a.out}: {len(roles)} roles, {NP} customer-managed policies, {NU} users, {len(risks)} high-risk actions")
