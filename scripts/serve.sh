#!/usr/bin/env bash
# Runs NVIDIA Triton Inference Server on medsa's encoders, in the foreground: the tritonserver binary of PyPI's
# nvidia-pytriton wheel (Python backend; 1/model.py runs the ONNX file with onnxruntime on the CPU), from the venv
# `make triton-venv` builds. `make serve` and the tests (scripts/test.d/triton.sh) use this recipe.
# usage: scripts/serve.sh [--repo DIR] [--port 8000] [--grpc-port 8001] [--host 127.0.0.1] [--token-file FILE] [--config python-cpu]
#   --repo: a model repository from `medsa serve-config` (default: written now into .cache/triton-repo)
#   --grpc-port: also serve the Open Inference Protocol over gRPC on this port (grpc://HOST:PORT); default: no gRPC
#   --token-file: require "Authorization: Bearer <token>" on every API (Triton's restricted HTTP and gRPC APIs)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${MEDSA_TRITON_VENV:-$ROOT/.cache/triton-venv}
REPO="" PORT=${PORT:-8000} GRPC_PORT=${GRPC_PORT:-} HOST=${HOST:-127.0.0.1} TOKEN_FILE="" CONFIG=python-cpu
while [ $# -gt 0 ]; do
  case "$1" in
    --repo) REPO=$2; shift 2;;
    --port) PORT=$2; shift 2;;
    --grpc-port) GRPC_PORT=$2; shift 2;;
    --host) HOST=$2; shift 2;;
    --token-file) TOKEN_FILE=$2; shift 2;;
    --config) CONFIG=$2; shift 2;;
    *) echo "serve.sh: unknown argument $1" >&2; exit 2;;
  esac
done
SP=$(echo "$VENV"/lib/python3*/site-packages)
TS=$SP/pytriton/tritonserver
PYV=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ ! -x "$TS/bin/tritonserver" ]; then
  echo "serve.sh: no tritonserver in $VENV (run: make triton-venv)" >&2; exit 1
fi
if [ -z "$REPO" ]; then
  REPO=$ROOT/.cache/triton-repo
  [ -x "$ROOT/bin/medsa" ] || (cd "$ROOT" && go build -o bin/medsa .)
  rm -rf "$REPO"
  "$ROOT/bin/medsa" serve-config "$REPO" >/dev/null
fi
# Triton's Python backend: the shared library, the stub for this Python, the utils module, in one directory.
BD=$(mktemp -d "${TMPDIR:-/tmp}/medsa-triton-backends.XXXXXX")
trap 'rm -rf "$BD"' EXIT
mkdir -p "$BD/python"
ln -s "$TS/backends/python/libtriton_python.so" "$TS/backends/python/triton_python_backend_utils.py" "$BD/python/"
ln -s "$TS/python_backend_stubs/$PYV/triton_python_backend_stub" "$BD/python/"
args=(--model-repository="$REPO" --backend-directory="$BD" --model-config-name="$CONFIG"
      --http-address="$HOST" --http-port="$PORT" --allow-metrics=false
      --exit-timeout-secs=5 --log-verbose=0)
if [ -n "$GRPC_PORT" ]; then
  args+=(--allow-grpc=true --grpc-address="$HOST" --grpc-port="$GRPC_PORT")
else
  args+=(--allow-grpc=false)
fi
if [ -n "$TOKEN_FILE" ]; then
  args+=("--http-restricted-api=health,metadata,model-config,inference,model-repository,shared-memory,statistics,trace,logging:Authorization=Bearer $(cat "$TOKEN_FILE")")
  [ -z "$GRPC_PORT" ] || args+=("--grpc-restricted-protocol=health,metadata,model-config,inference,model-repository,shared-memory,statistics,trace,logging:authorization=Bearer $(cat "$TOKEN_FILE")")
fi
echo "serve.sh: Triton on http://$HOST:$PORT${GRPC_PORT:+ and grpc://$HOST:$GRPC_PORT}, repository $REPO, config $CONFIG" >&2
# Not exec: the trap removes the backend directory when the server ends. Signals are forwarded.
MEDSA_TRITON_PYTHONPATH=$SP OMP_WAIT_POLICY=PASSIVE "$TS/bin/tritonserver" "${args[@]}" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid; rm -rf "$BD"' TERM INT
wait $pid
