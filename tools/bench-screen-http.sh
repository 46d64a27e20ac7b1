#!/usr/bin/env bash
# Screening over HTTP on loopback: `tracehound serve` on the demo's data, loaded by wrk (Debian
# package `wrk`) on the same machine for DURATION seconds with CONNECTIONS connections, each
# request screening one address picked at random from every address of the chain
# (GET /v1/chains/<chain>/screen/<address>); then bulk screening of 10,000 addresses in one
# request (POST /v1/screen), timed by curl, five times. Prints requests/s, latency percentiles,
# errors and the bulk times.
#
#   tools/bench-screen-http.sh [DURATION] [CONNECTIONS] [WORK_DIR]
#   tools/bench-screen-http.sh 60 32 target/bench-http
set -euo pipefail
duration=${1:-60}; conns=${2:-32}; work=${3:-target/bench-http}
bin=$(realpath "${TRACEHOUND:-target/release/tracehound}")
command -v wrk >/dev/null || { echo "wrk is required (Debian: apt-get install wrk)"; exit 1; }
mkdir -p "$work"; work=$(realpath "$work"); data="$work/data"
[ -f "$data/report.html" ] || "$bin" --data-dir "$data" demo > "$work/demo.out"
chain=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["chain"])' "$data/demo-chain/ground_truth.json")
"$bin" --data-dir "$data" exposure build --chain "$chain" > /dev/null
key=$("$bin" --data-dir "$data" keys create --role viewer --name bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
"$bin" --data-dir "$data" sql "SELECT DISTINCT address FROM address_clusters WHERE chain = '$chain'" --format csv | tail -n +2 > "$work/addresses.txt"
echo "$(wc -l < "$work/addresses.txt") addresses" >&2
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" --data-dir "$data" serve --listen "127.0.0.1:$port" --rate-limit 1000000000 > "$work/serve.out" 2> "$work/serve.err" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" > /dev/null && break; sleep 0.2; done
cat > "$work/screen.lua" <<EOF
local addresses = {}
for line in io.lines("$work/addresses.txt") do addresses[#addresses + 1] = line end
wrk.headers["X-API-Key"] = "$key"
request = function()
  return wrk.format("GET", "/v1/chains/$chain/screen/" .. addresses[math.random(#addresses)])
end
done = function(summary, latency, requests)
  io.write(string.format("requests %d, errors: connect %d read %d write %d status %d timeout %d\n", summary.requests,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout))
  io.write(string.format("latency p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms\n", latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
EOF
curl -sf -H "X-API-Key: $key" "http://127.0.0.1:$port/v1/chains/$chain/screen/$(head -1 "$work/addresses.txt")" > /dev/null
wrk -t2 -c"$conns" -d"${duration}s" --latency -s "$work/screen.lua" "http://127.0.0.1:$port" | tee "$work/wrk.out"
python3 - "$chain" "$work/addresses.txt" "$work/bulk.json" <<'EOF'
import json, random, sys
chain, path, out = sys.argv[1:]
a = open(path).read().split()
random.seed(7)
json.dump({"chain": chain, "items": [random.choice(a) for _ in range(10000)]}, open(out, "w"))
EOF
for _ in 1 2 3 4 5; do
  curl -s -o "$work/bulk.out" -w "bulk 10000: HTTP %{http_code} in %{time_total} s\n" -H "X-API-Key: $key" -H "Content-Type: application/json" \
    --data-binary "@$work/bulk.json" "http://127.0.0.1:$port/v1/screen"
done
