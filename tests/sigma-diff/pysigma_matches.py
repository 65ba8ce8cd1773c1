#!/usr/bin/env python3
"""Reference match set for the differential test of twokey's Sigma engine.

Converts each Sigma rule with pySigma's SQLite backend and runs the SQL over
the CloudTrail records, flattened into one table the way SIEMs that store
CloudTrail as columns do:

* every scalar gets a column named by its dotted path (`userIdentity.type`);
  booleans are `true`/`false`, numbers their JSON text, null is SQL NULL;
* an object or array also gets a column at its own path holding its compact
  JSON text (so `requestParameters|contains: X` searches that text);
* elements of arrays of objects are flattened without an index; when a path
  repeats (also when it differs only in case, as SQLite column names ignore
  case), the first value is kept;
* `status` is `success` when the record has no errorCode, else `failure`
  (the field mapping twokey uses for that name);
* every column is TEXT COLLATE NOCASE: comparisons ignore case, as Sigma's
  plain values do.

Usage: pysigma_matches.py RULES_DIR EVENTS.ndjson
Prints one line per match: `<rule id>\t<1-based line number>`, sorted.
"""

import glob
import json
import os
import re
import sqlite3
import sys

from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection


def flatten(record):
    cols = {}
    seen = set()

    def put(path, value):
        # SQLite column names ignore case: the first spelling wins.
        if path.lower() not in seen:
            seen.add(path.lower())
            cols[path] = value

    def walk(path, v):
        if isinstance(v, dict):
            if path:
                put(path, json.dumps(v, separators=(",", ":"), ensure_ascii=False))
            for k, x in v.items():
                walk(f"{path}.{k}" if path else k, x)
        elif isinstance(v, list):
            put(path, json.dumps(v, separators=(",", ":"), ensure_ascii=False))
            for x in v:
                if isinstance(x, (dict, list)):
                    walk(path, x)
        elif v is None:
            put(path, None)
        elif isinstance(v, bool):
            put(path, "true" if v else "false")
        elif isinstance(v, (int, float)):
            put(path, json.dumps(v))
        else:
            put(path, str(v))

    walk("", record)
    put("status", "success" if record.get("errorCode") is None else "failure")
    return cols


def regexp(pattern, value):
    if value is None:
        return 0
    return 1 if re.search(pattern, str(value)) else 0


def main():
    rules_dir, events_path = sys.argv[1], sys.argv[2]
    rows = []
    with open(events_path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if line.strip():
                rows.append((n, flatten(json.loads(line))))
    columns = {}
    for _, r in rows:
        for c in r:
            columns.setdefault(c.lower(), c)
    columns = sorted(columns.values())
    db = sqlite3.connect(":memory:")
    db.create_function("REGEXP", 2, regexp)

    def q(c):
        return "`" + c.replace("`", "``") + "`"

    db.execute(
        "CREATE TABLE logs (__line INTEGER, "
        + ", ".join(f"{q(c)} TEXT COLLATE NOCASE" for c in columns)
        + ")"
    )
    for n, r in rows:
        keys = ["__line"] + list(r)
        db.execute(
            f"INSERT INTO logs ({', '.join(q(k) for k in keys)}) VALUES ({', '.join('?' * len(keys))})",
            [n] + list(r.values()),
        )

    backend = sqliteBackend()
    out = []
    for path in sorted(glob.glob(os.path.join(rules_dir, "**", "*.yml"), recursive=True)):
        with open(path, encoding="utf-8") as f:
            collection = SigmaCollection.from_yaml(f.read())
        for rule in collection.rules:
            rule_id = str(rule.id)
            for sql in backend.convert_rule(rule):
                sql = sql.replace("SELECT *", "SELECT __line", 1)
                for _ in range(20):
                    try:
                        lines = [x[0] for x in db.execute(sql)]
                        break
                    except sqlite3.OperationalError as e:
                        m = re.match(r"no such column: (.+)", str(e))
                        if not m:
                            raise
                        # A field no record has: every value is NULL.
                        db.execute(f"ALTER TABLE logs ADD COLUMN {q(m.group(1))} TEXT COLLATE NOCASE")
                for line in lines:
                    out.append((rule_id, line))
    for rule_id, line in sorted(set(out)):
        print(f"{rule_id}\t{line}")


if __name__ == "__main__":
    main()
