#!/usr/bin/env bash
# Remote encoder through a real NVIDIA Triton Inference Server (tritonserver from PyPI's nvidia-pytriton wheel,
# Python backend running our encoder ONNX with onnxruntime; scripts/serve.sh, the `make serve` recipe):
# 1. go test -run TestTriton: parity on the goldens (FP32 wire: embeddings bit-equal, every mask candidate Dice 1;
#    FP16 wire: embeddings within half an fp16 ulp), and the faults: wrong model version refused with both values,
#    wrong token refused with a clear error, slow server -> client timeout and local fallback, server killed mid-
#    session -> local fallback with nothing lost, reconnect when it is back.
# 2. The CLI: `medsa segment --server URL` (HTTP and grpc://) writes the same mask as without; `medsa bench --server URL --json` has
#    provider "server" and the remote keys. Needs bin/medsa, the Triton venv (make triton-venv) and nibabel.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
[ -f .cache/triton-venv/.ok ] || make -s triton-venv
M=${MEDSA_BIN:-bin/medsa}
[ -x "$M" ] || go build -o bin/medsa .
MEDSA_TRITON=1 go test -count=1 -run 'TestTriton$' ./model/

D=.cache/testdata/insighttoolkit5-examples/usr/share/doc/insighttoolkit5-examples/examples/Data
T1=$D/KmeansTest_T1UCharRaw.nii.gz
if [ ! -f "$T1" ]; then
  if [ -n "${MEDSA_REQUIRE_TESTDATA:-}" ]; then echo "triton: test data missing" >&2; exit 1; fi
  echo "triton: CLI part SKIP (no test data)"; exit 0
fi
tmp=$(mktemp -d)
srv=""
cleanup() { # the server's own process group (setsid) only, never ours; the script's status is kept
  local rc=$?
  if [ -n "$srv" ]; then
    if [ "$(ps -o pgid= -p "$srv" 2>/dev/null | tr -d ' ')" = "$srv" ]; then kill -TERM -- "-$srv" 2>/dev/null || true
    else kill -TERM "$srv" 2>/dev/null || true; fi
    wait "$srv" 2>/dev/null || true
  fi
  rm -rf "$tmp"
  exit $rc
}
trap cleanup EXIT
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
GPORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$M" serve-config --no-3d "$tmp/repo" >/dev/null
TMPDIR=$tmp setsid scripts/serve.sh --repo "$tmp/repo" --port "$PORT" --grpc-port "$GPORT" >"$tmp/server.log" 2>&1 &
srv=$!
for _ in $(seq 1 240); do curl -sf "http://127.0.0.1:$PORT/v2/health/ready" && break; sleep 0.25; done
curl -sf "http://127.0.0.1:$PORT/v2/health/ready" || { echo "triton: server not ready"; cat "$tmp/server.log"; exit 1; }
URL=http://127.0.0.1:$PORT
args=(--image "$T1" --plane coronal --box 29,25,93,60,30 --point 60,45,30,+ --threads 2)
"$M" segment "${args[@]}" --out "$tmp/local.nii.gz" --server off >"$tmp/local.log" 2>&1 || { cat "$tmp/local.log"; exit 1; }
MEDSA_SERVER=$URL "$M" segment "${args[@]}" --out "$tmp/remote.nii.gz" >"$tmp/remote.log" 2>"$tmp/remote.err" \
  || { cat "$tmp/remote.log" "$tmp/remote.err"; exit 1; }
grep -q "encoding on the server" "$tmp/remote.log" || { echo "triton: segment did not encode on the server"; cat "$tmp/remote.log" "$tmp/remote.err"; exit 1; }
"$M" segment "${args[@]}" --out "$tmp/grpc.nii.gz" --server "grpc://127.0.0.1:$GPORT" >"$tmp/grpc.log" 2>"$tmp/grpc.err" \
  || { cat "$tmp/grpc.log" "$tmp/grpc.err"; exit 1; }
grep -q "grpc://127.0.0.1:$GPORT: encoding on the server" "$tmp/grpc.log" "$tmp/grpc.err" || { echo "triton: segment did not encode on the server over gRPC"; cat "$tmp/grpc.log" "$tmp/grpc.err"; exit 1; }
"$M" bench --server "$URL" --n 3 --json 2>/dev/null >"$tmp/bench.json"
# A server that is gone: the CLI still segments, and says why on stderr.
"$M" segment "${args[@]}" --out "$tmp/gone.nii.gz" --server http://127.0.0.1:1 >"$tmp/gone.log" 2>"$tmp/gone.err" \
  || { cat "$tmp/gone.log" "$tmp/gone.err"; exit 1; }
grep -q "unreachable, encoding locally: " "$tmp/gone.err" || { echo "triton: no fallback message on stderr"; cat "$tmp/gone.err"; exit 1; }
$PY - "$tmp" "$URL" <<'PYEOF'
import json, sys
import numpy as np, nibabel as nib
tmp, url = sys.argv[1], sys.argv[2]
a = np.asarray(nib.load(f"{tmp}/local.nii.gz").dataobj)
for other in ("remote", "grpc", "gone"):
    b = np.asarray(nib.load(f"{tmp}/{other}.nii.gz").dataobj)
    assert a.shape == b.shape and a.sum() > 0, (a.shape, b.shape, a.sum())
    inter = np.logical_and(a > 0, b > 0).sum()
    d = 2 * inter / ((a > 0).sum() + (b > 0).sum())
    assert d == 1.0, f"{other}: Dice {d} with the local mask"
r = json.load(open(f"{tmp}/bench.json"))
assert r["server"] == url and r["provider"] == "server", r
for k in ("encode_remote_ms_p50", "encode_remote_ms_p95", "wire_bytes_per_embedding", "encode_ms_p50", "decode_ms_p50"):
    assert k in r and r[k] > 0, k
print(f"triton: CLI masks through Triton = local ({int(a.sum())} voxels, Dice 1.0); bench: encode remote p50 "
      f"{r['encode_remote_ms_p50']:.1f} ms vs local {r['encode_ms_p50']:.1f} ms, {r['wire_bytes_per_embedding']} B/embedding")
PYEOF
echo "triton: ok"
