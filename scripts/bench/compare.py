"""Side by side: twokey's findings (`--format json`) and Prowler's
(`-M json-ocsf`, one file per account) on the checks both have, per
resource. Prints one row per shared check and resource unit, then the
disagreements, then a summary line. Pure Python, no dependencies.

    compare.py TWOKEY_JSON PROWLER_OCSF_JSON...

A twokey check and the Prowler checks it lists (`prowler` in its metadata)
are one shared check. Both sides are reduced to the same unit per check
(below): the status of a unit is FAIL if any finding on it fails, else PASS
(MANUAL and ERROR are shown as such). Units only one side judged are listed
as such: Prowler judges every bucket, twokey only trail buckets.
"""

import json
import re
import sys
from collections import defaultdict


def unit(check, account, region, resource):
    """The resource unit both tools are compared on, for a twokey check id."""
    if check == "cloudtrail.trail":
        return f"account {account}"  # twokey: one per account; Prowler: per region
    if check in ("config.recorder", "guardduty.enabled", "securityhub.enabled"):
        return f"{region}"
    if check == "iam.unused_credentials":
        m = re.match(r"(arn:aws:iam::\d+:user/[^/]+)", resource)
        return m.group(1) if m else resource
    if check.startswith("root."):
        return f"arn:aws:iam::{account}:root"
    return resource


def worst(statuses):
    s = set(statuses)
    for v in ("FAIL", "ERROR", "MANUAL", "PASS"):
        if v in s:
            return v
    return "-"


def main():
    tk = json.load(open(sys.argv[1]))
    shared = {c["id"]: c["prowler"] for c in tk["checks"] if c.get("prowler")}
    to_tk = {p: c for c, ps in shared.items() for p in ps}
    left = defaultdict(list)
    for f in tk["findings"]:
        if f["check"] in shared:
            key = (f["check"], f["account"], unit(f["check"], f["account"], f.get("region"), f["resource"]))
            left[key].append(f["status"].upper())
    right = defaultdict(list)
    for path in sys.argv[2:]:
        for f in json.load(open(path)):
            code = f["metadata"]["event_code"]
            if code not in to_tk:
                continue
            check = to_tk[code]
            account = f["cloud"]["account"]["uid"]
            region = f["cloud"].get("region") or f["resources"][0].get("region")
            res = f["resources"][0]["uid"]
            right[(check, account, unit(check, account, region, res))].append(f["status_code"])
    keys = sorted(set(left) | set(right))
    rows = []
    for k in keys:
        a, b = worst(left.get(k, [])), worst(right.get(k, []))
        rows.append((k, a, b))
    w = max([len(k[2]) for k, _, _ in rows] + [8])
    print(f"{'SHARED CHECK':34} {'ACCOUNT':12} {'RESOURCE':{w}} {'TWOKEY':6} {'PROWLER':7}")
    agree = disagree = only = 0
    for (check, account, res), a, b in rows:
        mark = ""
        if a == "-" or b == "-":
            only += 1
            mark = "  (one side only)"
        elif a == b:
            agree += 1
        else:
            disagree += 1
            mark = "  <-- differs"
        print(f"{check:34} {account:12} {res:{w}} {a:6} {b:7}{mark}")
    print()
    print(f"shared checks: {len(shared)}; units judged by both: {agree + disagree}; "
          f"same verdict: {agree}; different: {disagree}; judged by one side only: {only}")


main()
