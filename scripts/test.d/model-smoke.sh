#!/usr/bin/env bash
# Model smoke test (issue 3): a few training steps on tiny data (also through the GPU recipe's live
# workers and packed store), ONNX export to a temp dir, onnx.checker, goldens regenerated from PyTorch, then
# the Go engine's golden parity test against that export (ORT vs PyTorch, max |diff| <= 1e-4). Needs
# /usr/bin/python3 with Debian's torch/onnx; < 3 min.
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_WAIT_POLICY=PASSIVE
PY=/usr/bin/python3
if ! $PY -c 'import torch, onnx' 2>/dev/null; then
  if [ -n "${MEDSA_REQUIRE_TESTDATA:-}" ]; then echo "model-smoke: python3-torch/onnx missing" >&2; exit 1; fi
  echo "model-smoke: SKIP (no python3-torch/onnx)"; exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
T=model/train
start=$(date +%s)
$PY $T/build_generic.py "$tmp/gen.npz" 24 8 1 >/dev/null
$PY $T/build_medical.py --tiny "$tmp/med.npz" "$tmp/chunks.npz" >/dev/null
$PY $T/train.py --phase base --data "$tmp/gen.npz" --max-steps 3 --minutes 2 --batch 2 --eval-every 1000 \
  --config '{"hires": 4}' --out "$tmp/base" >/dev/null
$PY $T/train.py --phase adapt --init "$tmp/base/ckpt.pt" --data "$tmp/med.npz" --chunks "$tmp/chunks.npz" \
  --chunk-prob 0.5 --synth-weight 0.5 --extra mask_decoder.hires_fuse --max-steps 3 --minutes 2 --batch 2 --eval-every 1000 --out "$tmp/adapt" >/dev/null
# the GPU recipe's paths on the CPU: live samples built by a worker process, a packed store, chunks
$PY $T/test_train.py
$PY $T/pack_data.py "$tmp/med.npz" "$tmp/med_real.npz.xz" --real-only >/dev/null
$PY $T/train.py --phase adapt --init "$tmp/base/ckpt.pt" --data "$tmp/med_real.npz.xz" \
  --live 'synth:dermoscopy:1,synth:ultrasound:1' --live-frac 0.5 --chunks "$tmp/chunks.npz" --chunk-prob 0.5 \
  --workers 1 --device auto --max-steps 2 --minutes 2 --batch 2 --eval-every 1000 --out "$tmp/adapt_live" >/dev/null
$PY $T/export_model.py "$tmp/adapt/ckpt.pt" "$tmp/model" 0.0.0-smoke
$PY $T/goldens.py "$tmp/adapt/ckpt.pt" "$tmp/golden"
$PY $T/check_export.py "$tmp/model"
if [ -f model/golden_test.go ] && [ -e "${MEDSA_ORT_LIB:-.cache/ort/libonnxruntime.so.1}" ]; then
  MEDSA_MODEL_DIR="$tmp/model" MEDSA_GOLDEN_DIR="$tmp/golden" go test -count=1 ./model -run 'TestGolden$'
else
  echo "model-smoke: Go golden test or ORT library absent; ONNX parity not checked here"
fi
echo "model-smoke: ok in $(( $(date +%s) - start )) s"
