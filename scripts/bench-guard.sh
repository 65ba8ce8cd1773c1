#!/usr/bin/env bash
# Benchmark of twokey guard against rsigma and a parse-only baseline.
#
#   scripts/bench-guard.sh [EVENTS]        (default 1000000)
#
# Environment: CARGO_TARGET_DIR (build and corpus; default target-guard),
# TWOKEY_DATA (default ../shared/data), TWOKEY_TOOLS (where rsigma is
# installed, default .tools; an rsigma already on PATH is used as it is),
# PROC_REPEAT (runs of each process, the fastest kept; default 1).
#
# 1. Generates EVENTS CloudTrail records from the real-shaped Panther test
#    events (varied ids, times, IPs, users, regions) into $CARGO_TARGET_DIR/bench.
# 2. Runs on one core (taskset -c 0), with the 57 SigmaHQ CloudTrail rules plus
#    twokey's pack (15 detection rules, 8 correlation rules):
#    - guard-bench: in-process timings of a byte-reading baseline, a full JSON
#      parse (serde_json), twokey's record reader alone, twokey's matcher and a
#      full scan writing NDJSON findings;
#    - `guard scan` and `rsigma engine eval` as whole processes on the same file
#      and rules, findings (each with its event, as twokey's NDJSON has) to a
#      file, CPU time (user+sys, and each) and peak RSS measured (GNU time). rsigma runs with --action reset,
#      the correlation behaviour twokey has (one finding per burst), and
#      --no-detections (base rules of correlations do not report alone).
# 3. Prints events/s, MB/s, the ratios, and the finding counts of both.
#
# Rates are per CPU second, so other work on the machine skews them little.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
data="${TWOKEY_DATA:-$root/../shared/data}"
events="${1:-1000000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target-guard}"
work="$CARGO_TARGET_DIR/bench"
sigmahq="$data/sigma/rules/cloud/aws/cloudtrail"
pack="$root/crates/twokey-guard/rules"
mkdir -p "$work"

pin=()
if command -v taskset >/dev/null; then pin=(taskset -c 0); fi

echo "== building (release)" >&2
cargo build --release -q -p twokey-guard --bin guard-bench --example guard
bench="$CARGO_TARGET_DIR/release/guard-bench"
guard="$CARGO_TARGET_DIR/release/examples/guard"

tools="${TWOKEY_TOOLS:-$root/.tools}"
rsigma="$tools/bin/rsigma"
if [ ! -x "$rsigma" ] && command -v rsigma >/dev/null; then rsigma="$(command -v rsigma)"; fi
if [ ! -x "$rsigma" ]; then
  echo "== installing rsigma into $tools (0.23.0: the newest that builds with this rustc)" >&2
  cargo install rsigma --version 0.23.0 --locked --root "$tools"
fi

corpus="$work/corpus-$events.ndjson"
if [ ! -s "$corpus" ]; then
  echo "== generating $events events" >&2
  "$bench" gen --templates "$data/cloudtrail/panther-test-events.ndjson" --events "$events" --out "$corpus"
fi

# rsigma takes one rules path: the same files, side by side.
rules="$work/rules"
rm -rf "$rules"
mkdir -p "$rules/sigmahq" "$rules/twokey"
cp "$sigmahq"/*.yml "$rules/sigmahq/"
cp -r "$pack"/. "$rules/twokey/"

echo "== guard-bench (in process)" >&2
"${pin[@]}" "$bench" run --repeat 3 --rules "$sigmahq" --rules "$pack" "$corpus" | tee "$work/inproc.txt"


# proc NAME CMD...: runs CMD (stdout to NAME.out, stderr to NAME.err)
# PROC_REPEAT times; writes "user sys maxrss_kb" of the fastest to NAME.time.
proc() {
  local name="$1"; shift
  local best="" i
  for ((i = 0; i < ${PROC_REPEAT:-1}; i++)); do
    rm -f "$work/$name.out"
    if [ -x /usr/bin/time ]; then
      /usr/bin/time -o "$work/$name.t" -f '%U %S %M' "${pin[@]}" "$@" >"$work/$name.out" 2>"$work/$name.err" || true
    else
      { TIMEFORMAT='%U %S 0'; time "${pin[@]}" "$@" >"$work/$name.out" 2>"$work/$name.err" || true; } 2>"$work/$name.t"
    fi
    local t; t=$(tail -1 "$work/$name.t")
    if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN{split(a,x," ");split(b,y," ");exit !(x[1]+x[2]<y[1]+y[2])}'; then best="$t"; fi
  done
  echo "$best" >"$work/$name.time"
}

echo "== twokey guard scan (process)" >&2
proc guard "$guard" scan --rules "$rules" --format ndjson "$corpus"
echo "== rsigma engine eval (process)" >&2
proc rsigma "$rsigma" engine eval --no-detections --action reset --include-event --rules "$rules" --event "@$corpus"

python3 - "$work" "$corpus" <<'PY'
import json, os, sys, collections
work, corpus = sys.argv[1], sys.argv[2]
def times(name):
    u, s, m = (float(x) for x in open(os.path.join(work, name + ".time")).read().split())
    return u, s, m
g_user, g_sys, g_rss = times("guard")
r_user, r_sys, r_rss = times("rsigma")
t_guard, t_rsigma = g_user + g_sys, r_user + r_sys
size = os.path.getsize(corpus)
n = sum(1 for _ in open(corpus, "rb"))
inproc = {}
for line in open(os.path.join(work, "inproc.txt")):
    name, *kv = line.split()
    inproc[name] = dict(x.split("=") for x in kv)

def count(path, key_fns):
    per = collections.Counter()
    total = 0
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            o = json.loads(line)
        except ValueError:
            continue
        total += 1
        for f in key_fns:
            k = f(o)
            if k:
                per[k] += 1
                break
    return total, per

g_total, g_per = count(os.path.join(work, "guard.out"), [lambda o: o.get("rule_id")])
r_total, r_per = count(os.path.join(work, "rsigma.out"), [
    lambda o: o.get("rule_id"), lambda o: (o.get("rule") or {}).get("id") if isinstance(o.get("rule"), dict) else None,
    lambda o: o.get("id"), lambda o: o.get("rule_title") or o.get("title")])

print()
print(f"corpus: {n} events, {size/1e6:.1f} MB ({size/n:.0f} bytes/event); one core")
print(f"{'measurement':<28}{'cpu s':>9}{'events/s':>14}{'MB/s':>10}{'findings':>10}")
for name in ["read-bytes", "serde-json-parse", "twokey-parse", "twokey-match", "twokey-scan-ndjson"]:
    m = inproc.get(name)
    if m:
        s = float(m["cpu_secs"])
        print(f"{name:<28}{s:>9.3f}{n/s:>14,.0f}{size/1e6/s:>10.1f}{m['matches']:>10}")
for name, s, tot in [("guard scan (process)", t_guard, g_total), ("rsigma eval (process)", t_rsigma, r_total)]:
    if s > 0:
        print(f"{name:<28}{s:>9.3f}{n/s:>14,.0f}{size/1e6/s:>10.1f}{tot:>10}")
print()
print(f"{'process':<28}{'user s':>9}{'sys s':>9}{'user ev/s':>14}{'peak RSS MB':>13}")
for name, u, sy, m in [("guard scan", g_user, g_sys, g_rss), ("rsigma eval", r_user, r_sys, r_rss)]:
    print(f"{name:<28}{u:>9.3f}{sy:>9.3f}{(n/u if u > 0 else 0):>14,.0f}{m/1024:>13.1f}")
out_mb = os.path.getsize(os.path.join(work, "guard.out")) / 1e6
print(f"(guard scan wrote {out_mb:.0f} MB of findings; sys time is mostly reading the corpus and writing that file)")
print()
if t_guard > 0 and t_rsigma > 0:
    print(f"twokey guard scan vs rsigma eval (process, CPU time): {t_rsigma / t_guard:.2f}x")
if "twokey-scan-ndjson" in inproc and "read-bytes" in inproc:
    a = float(inproc["twokey-scan-ndjson"]["cpu_secs"])
    print(f"twokey scan / read-bytes baseline throughput: {float(inproc['read-bytes']['cpu_secs']) / a:.2f}")
    print(f"twokey scan / serde_json parse throughput: {float(inproc['serde-json-parse']['cpu_secs']) / a:.2f}")
ids = set(g_per) | set(r_per)
diff = {k: (g_per.get(k, 0), r_per.get(k, 0)) for k in ids if g_per.get(k, 0) != r_per.get(k, 0)}
print(f"findings: twokey {g_total}, rsigma {r_total}; rules whose counts differ: {len(diff)}")
for k, (a, b) in sorted(diff.items()):
    print(f"  {k}: twokey {a}, rsigma {b}")
PY
