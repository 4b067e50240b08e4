#!/usr/bin/env bash
# Load on the remote encoder: N (default 8) simulated annotators, separate processes (the model package's test
# binary, TestTritonLoadClient), each scrolling through a 48-slice CT-sized series at ~10 slices/s with prefetch
# and clicking on every slice for LOAD_SECONDS (default 10), against one Triton (scripts/serve.sh, Python backend,
# CPU), with and without dynamic batching. Prints per-client click->mask p50/p95, and the server's throughput
# (slices encoded per second, all clients). A client fails on any error, local fallback or a mask that differs
# from a local-only engine's (stale). Figures on a shared 2-core CPU are indicative only: server and 8 clients
# share it. Env: CLIENTS, LOAD_SECONDS.
set -euo pipefail
cd "$(dirname "$0")/../.."
CLIENTS=${CLIENTS:-8} SECONDS_=${LOAD_SECONDS:-10}
PY=/usr/bin/python3
[ -f .cache/triton-venv/.ok ] || make -s triton-venv
M=${MEDSA_BIN:-bin/medsa}
[ -x "$M" ] || go build -o bin/medsa .
tmp=$(mktemp -d)
srv=""
stop() { if [ -n "$srv" ]; then kill -TERM -- "-$srv" 2>/dev/null || true; wait "$srv" 2>/dev/null || true; srv=""; fi; }
trap 'stop; rm -rf "$tmp"' EXIT
go test -c -o "$tmp/model.test" ./model/
for mode in batching no-batching; do
  extra=()
  [ "$mode" = no-batching ] && extra=(--no-batching)
  "$M" serve-config --no-3d --threads 2 "${extra[@]}" "$tmp/repo-$mode" >/dev/null
  PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  TMPDIR=$tmp setsid scripts/serve.sh --repo "$tmp/repo-$mode" --port "$PORT" >"$tmp/server-$mode.log" 2>&1 &
  srv=$!
  for _ in $(seq 1 240); do curl -sf "http://127.0.0.1:$PORT/v2/health/ready" && break; sleep 0.25; done
  pids=()
  t0=$(date +%s.%N)
  for c in $(seq 1 "$CLIENTS"); do
    (cd model && MEDSA_LOAD_URL=http://127.0.0.1:$PORT MEDSA_LOAD_SECONDS=$SECONDS_ MEDSA_LOAD_CLIENT=$c OMP_WAIT_POLICY=PASSIVE \
      "$tmp/model.test" -test.run 'TestTritonLoadClient$' -test.count=1 >"$tmp/client-$mode-$c.log" 2>&1) &
    pids+=($!)
  done
  fail=0
  for p in "${pids[@]}"; do wait "$p" || fail=1; done
  t1=$(date +%s.%N)
  stop
  grep -h '^LOAD ' "$tmp"/client-$mode-*.log | sed 's/^LOAD //' >"$tmp/$mode.jsonl" || true
  if [ "$fail" != 0 ]; then echo "triton-load: a client failed ($mode):"; grep -hv "medsa/model" "$tmp"/client-$mode-*.log | tail -20; exit 1; fi
  $PY - "$tmp/$mode.jsonl" "$mode" "$t0" "$t1" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
mode, t0, t1 = sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
enc = sum(r["remote_encodes"] for r in rows)
secs = max(r["seconds"] for r in rows)
print(f"triton-load {mode}: {len(rows)} clients, {enc} slices encoded on the server in ~{secs:.0f} s "
      f"= {enc / secs:.1f} slices/s; wall {t1 - t0:.1f} s")
for r in sorted(rows, key=lambda r: r["client"]):
    print(f"  client {r['client']}: {r['clicks']} clicks, click->mask p50 {r['click_ms_p50']:.0f} ms p95 {r['click_ms_p95']:.0f} ms, "
          f"{r['remote_encodes']} remote encodes, {r['fallbacks']} fallbacks, {r['stale']}/{r['checked']} stale")
PYEOF
done
