#!/usr/bin/env bash
# Every stage of a simulated chain under a memory limit, side by side with a run under a larger
# one: ingest, index, cluster and a 10-hop trace, each in its own process. Where this user may
# create a cgroup (v1 memory controller or v2), the limited run's processes also run inside a
# memory cgroup of exactly that limit, so the kernel enforces it (page cache included) rather than
# the program merely reporting it. Prints a Markdown table (and writes results.jsonl) with the
# seconds, peak RSS, peak heap and spilled bytes of every stage, the disk used by the tables and
# the index, and checks that both runs give the same tables, index, clusters and trace.
#
#   tools/bench-bounded-memory.sh BLOCKS TXS_PER_BLOCK LIMIT COMPARE_LIMIT [WORK_DIR]
#   tools/bench-bounded-memory.sh 80000 140 4GiB 20GiB target/bench-1x
#
# TRACEHOUND (default target/release/tracehound) is the binary measured.
set -euo pipefail
blocks=${1:?blocks}; txs=${2:?transactions per block}; limit=${3:?limit}; compare=${4:?comparison limit}
work=${5:-target/bench-bounded-$blocks-$txs}
bin=$(realpath "${TRACEHOUND:-target/release/tracehound}")
mkdir -p "$work"; work=$(realpath "$work")
sim="$work/sim"
if [ ! -f "$work/simulate.json" ] || [ ! -f "$sim/ground_truth.json" ]; then
  echo "simulating $blocks blocks of about $txs transactions" >&2
  "$bin" simulate bitcoin --blocks "$blocks" --txs-per-block "$txs" --seed 7 --out "$sim" --json > "$work/simulate.json"
fi
heist=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["heist_txid"])' "$work/simulate.json")
# What an investigator knows of the simulated world (as in the demo): the exchanges' hot wallets
# and the attacker's first address. They are the exposure index's sources.
python3 - "$sim/ground_truth.json" "$work/labels.csv" <<'EOF'
import json, sys
t = json.load(open(sys.argv[1]))
with open(sys.argv[2], "w") as f:
    f.write("address,label,category\n")
    for name, addr in t["exchange_hot_wallets"].items():
        f.write(f"{addr},{name} hot wallet,exchange\n")
    h = t["heist"]
    f.write(f"{t['wallets'][h['attacker_wallet']]['addresses'][0]},heist attacker,hacker\n")
EOF

bytes() { python3 - "$1" <<'EOF'
import re, sys
t = sys.argv[1].strip()
m = re.fullmatch(r"([0-9.]+)\s*([KMGT]?)i?B?", t, re.I)
print(int(float(m.group(1)) * 1024 ** " KMGT".index((m.group(2) or " ").upper())))
EOF
}

# A memory cgroup of `limit` bytes, if this user may make one: prints its directory.
make_cgroup() {
  local name="tracehound-bench-$$-$1" want=$2
  if [ -w /sys/fs/cgroup/memory ]; then
    local d=/sys/fs/cgroup/memory/$name
    mkdir -p "$d" && echo "$want" > "$d/memory.limit_in_bytes" && echo "$d" && return
  elif [ -w /sys/fs/cgroup/cgroup.procs ] && grep -q memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
    local d=/sys/fs/cgroup/$name
    mkdir -p "$d" && echo "$want" > "$d/memory.max" && echo "$d" && return
  fi
  echo ""
}

results="$work/results.jsonl"
: > "$results"
run_all() {
  local label=$1 lim=$2 data="$work/data-$1"
  local cg; cg=$(make_cgroup "$label" "$(bytes "$lim")")
  rm -rf "$data"
  "$bin" --data-dir "$data" labels import csv "$work/labels.csv" --chain bitcoin_regtest --source simulator > /dev/null
  local stage
  for stage in ingest index cluster exposure trace; do
    local args
    case $stage in
      ingest) args=(ingest bitcoin --blocks-dir "$sim/blocks" --json) ;;
      index) args=(index --json) ;;
      cluster) args=(cluster --json) ;;
      exposure) args=(exposure build --chain bitcoin_regtest --json) ;;
      trace) args=(trace bitcoin_regtest --from "$heist:0" --max-hops 10 --model haircut --json) ;;
    esac
    local start end
    start=$(date +%s.%N)
    trap '[ -n "$cg" ] && rmdir "$cg" 2>/dev/null; echo "$label $stage failed: $(tail -3 "$work/$label-$stage.err" "$work/$label-$stage.maxrss" 2>/dev/null)" >&2' ERR
    if [ -n "$cg" ]; then
      [ -f "$cg/memory.max_usage_in_bytes" ] && echo 0 > "$cg/memory.max_usage_in_bytes"
      sh -c 'echo $$ > "$1/cgroup.procs"; shift; exec "$@"' sh "$cg" /usr/bin/time -f '%M' -o "$work/$label-$stage.maxrss" \
        "$bin" --data-dir "$data" --memory-limit "$lim" -v "${args[@]}" > "$work/$label-$stage.json" 2> "$work/$label-$stage.err"
    else
      /usr/bin/time -f '%M' -o "$work/$label-$stage.maxrss" \
        "$bin" --data-dir "$data" --memory-limit "$lim" -v "${args[@]}" > "$work/$label-$stage.json" 2> "$work/$label-$stage.err"
    fi
    end=$(date +%s.%N)
    python3 - "$label" "$stage" "$lim" "$start" "$end" "$work" "$cg" >> "$results" <<'EOF'
import json, re, sys, os
label, stage, lim, start, end, work, cg = sys.argv[1:]
out = json.load(open(f"{work}/{label}-{stage}.json"))
mem = out.get("memory") or out.get("report", {}).get("memory") or {}
maxrss = int(open(f"{work}/{label}-{stage}.maxrss").read().split()[-1]) * 1024
cg_peak = None
if cg and os.path.exists(f"{cg}/memory.max_usage_in_bytes"):
    cg_peak = int(open(f"{cg}/memory.max_usage_in_bytes").read())
print(json.dumps({"run": label, "stage": stage, "limit": lim, "cgroup": bool(cg), "seconds": float(end) - float(start),
                  "max_rss": maxrss, "peak_heap": mem.get("peak_anonymous"), "spilled": mem.get("spilled_bytes"), "cgroup_peak": cg_peak}))
EOF
  done
  [ -n "$cg" ] && rmdir "$cg" 2>/dev/null || true
}

# What a run gives: table sums, the index and clusters files' digests, the trace's accounting.
fingerprint() {
  local data="$work/data-$1" q
  for q in "SELECT count(*), sum(fee), sum(output_value) FROM transactions" "SELECT count(*), sum(value) FROM outputs" \
           "SELECT count(*), sum(value) FROM inputs" "SELECT count(*), sum(cluster_id), max(cluster_size) FROM address_clusters" \
           "SELECT count(*), CAST(sum(direct) AS VARCHAR), CAST(sum(indirect) AS VARCHAR) FROM exposure"; do
    "$bin" --data-dir "$data" sql "$q" --format csv
  done
  sha256sum "$data/index/bitcoin_regtest/graph.thg" "$data/index/bitcoin_regtest/clusters.thc" | cut -d' ' -f1
  python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["accounting"], sort_keys=True))' "$work/$1-trace.json"
}
# Disk of a run's tables, index and clusters, in bytes.
disk() {
  local data="$work/data-$1"
  echo "$(du -sb "$data/chains" | cut -f1) $(stat -c %s "$data/index/bitcoin_regtest/graph.thg") $(stat -c %s "$data/index/bitcoin_regtest/clusters.thc") $(stat -c %s "$data/index/bitcoin_regtest/exposure.idx")" > "$work/$1.disk"
}

# KEEP_DATA=0 removes each run's data directory once it is fingerprinted (for chains whose two
# data directories do not fit the disk at once).
run_all limited "$limit"; fingerprint limited > "$work/limited.fingerprint"; disk limited
if [ "${KEEP_DATA:-1}" = 0 ]; then rm -rf "$work/data-limited"; fi
run_all compare "$compare"; fingerprint compare > "$work/compare.fingerprint"; disk compare
if [ "${KEEP_DATA:-1}" = 0 ]; then rm -rf "$work/data-compare"; fi
if ! cmp -s "$work/limited.fingerprint" "$work/compare.fingerprint"; then
  diff "$work/limited.fingerprint" "$work/compare.fingerprint" >&2; echo "DIFFERENT results" >&2; exit 1
fi
echo "same tables, index, clusters and trace accounting in both runs" >&2

python3 - "$work" "$results" <<'EOF'
import json, os, sys
w, results = sys.argv[1:]
rows = [json.loads(l) for l in open(results)]
sim = json.load(open(f"{w}/simulate.json"))
txs = sim["transactions"]
mib = lambda b: "–" if b is None else f"{b / 2**20:,.0f}"
print(f"chain: {txs:,} transactions ({sim['tip_height']:,} blocks)\n")
print("| run | stage | limit | in a cgroup of the limit | seconds | peak RSS MiB | peak heap MiB | spilled MiB |")
print("|---|---|---|---|---:|---:|---:|---:|")
for r in rows:
    print(f"| {r['run']} | {r['stage']} | {r['limit']} | {'yes' if r['cgroup'] else 'no'} | {r['seconds']:.1f} | {mib(r['max_rss'])} | {mib(r['peak_heap'])} | {mib(r['spilled'])} |")
tables, idx, cl, ex = (int(x) for x in open(f"{w}/limited.disk").read().split())
print(f"\ndisk: tables {tables / txs:.0f} B/tx, graph index {idx / txs:.0f} B/tx, clusters {cl / txs:.0f} B/tx, exposure index {ex / txs:.0f} B/tx")
EOF
