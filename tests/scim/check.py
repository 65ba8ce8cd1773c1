"""Runs scim2-tester's whole compliance check against a SCIM base URL.

Usage: check.py BASE_URL TOKEN. Prints one line per check and
`scim: N passed, N failed, N skipped`; exits 1 on any failed check. A check
passes with SUCCESS, COMPLIANT or ACCEPTABLE; SKIPPED is counted apart (a
feature the server says it does not offer, such as cross-type /.search);
DEVIATION, ERROR and CRITICAL fail.
"""

import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

PASS = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE}


def main() -> int:
    base, token = sys.argv[1], sys.argv[2]
    client = SyncSCIMClient(
        Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
    )
    results = check_server(client)
    passed = failed = skipped = 0
    for r in results:
        where = f"{r.resource_type}: " if r.resource_type else ""
        line = f"{r.status.name:8} {where}{r.title}"
        if r.status in PASS:
            passed += 1
        elif r.status == Status.SKIPPED:
            skipped += 1
        else:
            failed += 1
            line += f"\n         {r.reason}"
        print(line)
    print(f"scim: {passed} passed, {failed} failed, {skipped} skipped")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
