#!/usr/bin/env bash
# Model smoke test (issues 3, 10): a few training steps on tiny data (Med-SA 1.x and 2.0) (also through the GPU recipe's live
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
parity() {  # checkpoint name [zoom policy] -> export, goldens, checker, Go engine parity (ORT vs PyTorch)
  if [ -n "${3:-}" ]; then
    $PY $T/export_model.py "$1" "$tmp/model_$2" 0.0.0-smoke --zoom "$3"
    $PY $T/goldens.py "$1" "$tmp/golden_$2" "$tmp/model_$2/manifest.json"  # + a case through the zoom policy
  else
    $PY $T/export_model.py "$1" "$tmp/model_$2" 0.0.0-smoke
    $PY $T/goldens.py "$1" "$tmp/golden_$2"
  fi
  $PY $T/check_export.py "$tmp/model_$2"
  if [ -f model/golden_test.go ] && [ -e "${MEDSA_ORT_LIB:-.cache/ort/libonnxruntime.so.1}" ]; then
    MEDSA_MODEL_DIR="$tmp/model_$2" MEDSA_GOLDEN_DIR="$tmp/golden_$2" go test -count=1 ./model -run 'TestGolden$'
  else
    echo "model-smoke: Go golden test or ORT library absent; ONNX parity not checked here"
  fi
}
parity "$tmp/adapt/ckpt.pt" v1
# Med-SA 2.0: the data engine's checks, both phases of train2.py (base resumed across two calls, adapt with
# 3D chunks), export and parity
$PY $T/test_dataengine.py
# auto-zoom: evaluate.py's mirror still gives the answers the Go engine is tested against (TestAutoZoomParity)
$PY $T/zoom_cases.py "$tmp/zoom_cases.json" >/dev/null
cmp "$tmp/zoom_cases.json" testdata/autozoom/cases.json
$PY $T/train2.py --out "$tmp/v2base" --phase base --steps 2 --batch 4 --size 64 --tiny --fp32 >/dev/null
$PY $T/train2.py --out "$tmp/v2base" --phase base --steps 4 --batch 4 --size 64 --tiny --fp32 --resume | grep "step 2/4" >/dev/null  # grep -q would close the pipe early
$PY $T/train2.py --out "$tmp/v2adapt" --phase adapt --init "$tmp/v2base/ckpt.pt" --steps 3 --batch 2 --size 64 \
  --tiny --fp32 --chunk-prob 0.5 --depth 4 >/dev/null
# distillation from a teacher's embeddings (train2.Distill; fake teacher files): a run, then resumed with its head
$PY -c "import numpy as np, sys; r = np.random.default_rng(0); np.save(sys.argv[1], r.integers(0, 255, (6, 64, 64), dtype=np.uint8)); np.save(sys.argv[2], r.standard_normal((6, 256, 16, 16)).astype(np.float16))" "$tmp/di.npy" "$tmp/de.npy"
$PY $T/train2.py --out "$tmp/v2dist" --phase base --steps 2 --batch 2 --size 64 --tiny --fp32 --distill "$tmp/di.npy,$tmp/de.npy" | grep "least-squares head" >/dev/null
$PY $T/train2.py --out "$tmp/v2dist" --phase base --steps 3 --batch 2 --size 64 --tiny --fp32 --resume --distill "$tmp/di.npy,$tmp/de.npy" | grep "step 2/3" >/dev/null
parity "$tmp/v2adapt/ckpt.pt" v2 '{"box_margin": 2.0, "min_side": 48, "click_below": 0.02, "click_margin": 2.5, "max_frac": 0.8}'
# LiteMedSAM's layout (TinyViT encoder, 64x64 tokens, 256x256 logits, no mean/std; medsa/litemedsam.py): the
# loader on a random checkpoint, then export, goldens and the Go engine's parity on it (~45 s)
$PY $T/test_litemedsam.py --write "$tmp/lite_medsam.pth"
$PY $T/export_model.py "$tmp/lite_medsam.pth" "$tmp/model_lm" 0.0.0-smoke >/dev/null
$PY $T/goldens.py "$tmp/lite_medsam.pth" "$tmp/golden_lm" "$tmp/model_lm/manifest.json" >/dev/null
$PY $T/check_export.py "$tmp/model_lm" --max-mb 0
# the GPU recipe's online teacher (gpu_train2.sh; train2.Teacher) on that random LiteMedSAM, on the CPU at 64 px:
# phase distill, resumed with its head, then the joint phase with the teacher's loss kept
$PY $T/train2.py --out "$tmp/v2teach" --phase distill --init "$tmp/v2adapt/ckpt.pt" --teacher "$tmp/lite_medsam.pth" \
  --probe 4 --steps 2 --batch 2 --distill-batch 2 --size 64 --tiny --fp32 | grep "held-out R^2 .* at step 2" >/dev/null
$PY $T/train2.py --out "$tmp/v2teach" --phase distill --init "$tmp/v2adapt/ckpt.pt" --teacher "$tmp/lite_medsam.pth" \
  --probe 4 --steps 3 --batch 2 --distill-batch 2 --size 64 --tiny --fp32 --resume | grep "step 2/3" >/dev/null
$PY $T/train2.py --out "$tmp/v2teachj" --phase joint --init "$tmp/v2teach/ckpt.pt" --teacher "$tmp/lite_medsam.pth" \
  --probe 4 --steps 1 --batch 2 --distill-batch 1 --size 64 --tiny --fp32 --freeze-bn | grep "saved .* at step 1" >/dev/null
if [ -e "${MEDSA_ORT_LIB:-.cache/ort/libonnxruntime.so.1}" ]; then
  MEDSA_MODEL_DIR="$tmp/model_lm" MEDSA_GOLDEN_DIR="$tmp/golden_lm" go test -count=1 ./model -run 'TestGolden$'
fi
echo "model-smoke: ok in $(( $(date +%s) - start )) s"
