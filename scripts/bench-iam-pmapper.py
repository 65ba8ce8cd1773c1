#!/usr/bin/env python3
"""PMapper (principalmapper 1.1.5) on the generated account: the same
GetAccountAuthorizationDetails JSON through PMapper's own gathering code
(`get_nodes_groups_and_policies`, fed by an offline IAM client that answers
from the file: no access keys, passwords or MFA devices, as the file holds
none), its edge checkers (`obtain_edges`, offline: no session), then the
high-risk list answered with `search_authorization_for` for every node
(what `pmapper argquery -s --action A --resource R` does).

Prints one JSON line: {"load_s", "graph_s", "answer_s", "nodes", "edges",
"holders", "peak_rss_kb"}. Run by scripts/bench-iam.sh, never by the tests.
"""
import collections, collections.abc, json, resource, sys, time

# principalmapper 1.1.5 (its last release) imports Mapping from
# `collections`, which Python 3.10 removed: give it the abc names.
for _n in ("Mapping", "MutableMapping", "Iterable", "Callable"):
    setattr(collections, _n, getattr(collections.abc, _n))

from principalmapper.common import Graph
from principalmapper.graphing import edge_identification, gathering
from principalmapper.querying.query_interface import search_authorization_for
from principalmapper.util.case_insensitive_dict import CaseInsensitiveDict

details_file, risks_file = sys.argv[1], sys.argv[2]


class NoSuchEntity(Exception):
    pass


class OfflineIam:
    """The IAM client calls PMapper's gathering makes, answered from the file."""

    def __init__(self, data):
        self.data = data

    def get_paginator(self, name):
        data = self.data

        class P:
            def paginate(self, **_):
                if name == "get_account_authorization_details":
                    return [data]
                if name == "list_virtual_mfa_devices":
                    return [{"VirtualMFADevices": []}]
                raise NotImplementedError(name)

        return P()

    def list_access_keys(self, **_):
        return {"AccessKeyMetadata": []}

    def get_login_profile(self, **_):
        raise NoSuchEntity("NoSuchEntity: no login profile in the file")

    def list_mfa_devices(self, **_):
        return {"MFADevices": []}


t0 = time.perf_counter()
with open(details_file) as f:
    data = json.load(f)
with open(risks_file) as f:
    risks = json.load(f)
res = gathering.get_nodes_groups_and_policies(OfflineIam(data))
t1 = time.perf_counter()
gathering.update_admin_status(res["nodes"], None)
edges = edge_identification.obtain_edges(
    None, ["iam", "sts", "ec2", "lambda", "cloudformation", "codebuild", "sagemaker", "autoscaling", "ssm"], res["nodes"])
graph = Graph(res["nodes"], edges, res["policies"], res["groups"], {"account_id": "111111111111", "pmapper_version": "1.1.5"})
t2 = time.perf_counter()
holders = 0
for r in risks:
    for n in graph.nodes:
        q = search_authorization_for(graph, n, r["action"], r["resource"], CaseInsensitiveDict({}))
        holders += int(q.allowed)
t3 = time.perf_counter()
print(json.dumps({"load_s": t1 - t0, "graph_s": t2 - t1, "answer_s": t3 - t2, "nodes": len(graph.nodes),
                  "edges": len(edges), "holders": holders,
                  "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
