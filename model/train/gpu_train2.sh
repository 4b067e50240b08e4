#!/usr/bin/env bash
# The Med-SA 2.x GPU recipe (issue 10) in one device call. On this CPU distillation from LiteMedSAM moved our
# features at ~+0.1 R^2 per 10 minutes and no fine-tune re-adapted the decoder in time (REPORT.md); on a GPU:
#   1. distill: 2.1.0's image encoder alone learns LiteMedSAM's embedding (online teacher, train2.py --teacher)
#      on the data engine's batches, generated on the GPU (synthetic, real unlabelled and labelled slices);
#   2. joint: the whole model re-trained on the interactive loss with the teacher's loss kept, so the decoder
#      follows the new features and the features do not drift back.
# Smoke steps of both stages first (a broken run costs seconds, and they time the steps: each stage's schedule
# is sized to its minutes); checkpoints to $OUT every minute; a later call resumes (see PREV).
# Here:    make -C model/train pack2 (data/gpu2, 32 MB: the pools and the teacher's encoder), then
#          scripts/device-slim.sh off (what travels may not pass 64 MiB; the tracked files alone are ~78 MB)
# Device:  bash model/train/gpu_train2.sh, carry [model/train/data/gpu2] (+ model/train/runs/gpu2_prev to resume:
#          an earlier call's $OUT; only the unfinished stage's ckpt.pt, 12 MB each), timeout_s 600
# After:   scripts/device-slim.sh on; $OUT's distill/ and joint/ into runs/gpu2/; make -C model/train gpu2-eval
# BUDGET_S (560) bounds the whole call: the joint stage gets what the rest left, at most JOINT_MIN.
# Overrides: DIST_MIN JOINT_MIN BUDGET_S DIST_BATCH JOINT_BATCH JOINT_DISTILL_BATCH SMOKE_STEPS PROBE DEVICE INIT PREV
set -uo pipefail
cd "$(dirname "$0")"
PY=${PY:-python3}
OUTD=${OUT:-runs/gpu2}
DEV=${DEVICE:-cuda}
DIST_MIN=${DIST_MIN:-3}
JOINT_MIN=${JOINT_MIN:-3.5}
BUDGET_S=${BUDGET_S:-560}
DB=${DIST_BATCH:-64}
JB=${JOINT_BATCH:-32}
JDB=${JOINT_DISTILL_BATCH:-8}
SMOKE=${SMOKE_STEPS:-50}
PROBE=${PROBE:-256}
INIT=${INIT:-checkpoints/v2_iou_weights.pt}
PREV=${PREV:-runs/gpu2_prev}
mkdir -p "$OUTD"
log() { echo "[$(date +%T)] $*" | tee -a "$OUTD/console.txt"; }
fail() { log "$1 FAILED"; tail -40 "$OUTD/console.txt"; exit 1; }

log "start on $(nproc) cores, device $DEV"
command -v nvidia-smi >/dev/null && nvidia-smi -L | tee -a "$OUTD/console.txt"
$PY -c 'import torch, numpy; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "numpy", numpy.__version__)' \
  2>&1 | tee -a "$OUTD/console.txt"
TEACHER=$($PY pack_gpu2.py unpack data/gpu2 2>>"$OUTD/console.txt") || fail "unpack data/gpu2"
log "teacher $TEACHER"
COMMON=(--device "$DEV" --size 256 --workers 0 --threads 4 --teacher "$TEACHER" --ckpt-every 1 --seed 11)
DIST=(--phase distill --lr 2e-3 --batch "$DB" --distill-batch "$DB" --real-frac 0.6 --lab-frac 0.3)
JOINT=(--phase joint --lr 5e-4 --batch "$JB" --distill-batch "$JDB" --real-frac 0.6 --lab-frac 0.5 --lab-zoom 0.15
       --freeze-bn)

# the plan: steps per stage from the smoke runs' speed (s/step between their 25th and 50th step), kept in
# plan.env so that a resumed call keeps each schedule's length
rate() { $PY -c 'import json, sys
r = [json.loads(l) for l in open(sys.argv[1]) if "elapsed_s" in l]
a, b = (r[0], r[-1]) if len(r) > 1 else (None, None)
print("%.4f" % ((b["elapsed_s"] - a["elapsed_s"]) / max(1, b["step"] - a["step"])) if a else "")' "$1"; }
if [ -f "$PREV/plan.env" ]; then
  cp "$PREV/plan.env" "$OUTD/plan.env"
  for s in distill joint; do
    [ -f "$PREV/$s/ckpt.pt" ] && mkdir -p "$OUTD/$s" && cp "$PREV/$s/ckpt.pt" "$OUTD/$s/" && cat "$PREV/$s/log.jsonl" >"$OUTD/$s/log.jsonl" 2>/dev/null
  done
  log "resuming $PREV: $(tr '\n' ' ' <"$OUTD/plan.env")"
fi
rm -rf runs/gpu2_smoke_d runs/gpu2_smoke_j
$PY train2.py --out runs/gpu2_smoke_d --init "$INIT" "${COMMON[@]}" "${DIST[@]}" --probe 16 --steps "$SMOKE" \
  --minutes 1 >>"$OUTD/console.txt" 2>&1 || fail "smoke distill"
$PY train2.py --out runs/gpu2_smoke_j --init runs/gpu2_smoke_d/ckpt.pt "${COMMON[@]}" "${JOINT[@]}" --probe 16 \
  --steps "$SMOKE" --minutes 1 >>"$OUTD/console.txt" 2>&1 || fail "smoke joint"
RD=$(rate runs/gpu2_smoke_d/log.jsonl)
RJ=$(rate runs/gpu2_smoke_j/log.jsonl)
log "smoke ok: distill ${RD:-?} s/step at batch $DB, joint ${RJ:-?} s/step at batch $JB"
if [ ! -f "$OUTD/plan.env" ]; then
  steps() { $PY -c 'import sys; r = sys.argv[2]; print(max(100, int(0.9 * float(sys.argv[1]) * 60 / float(r))) if r else 2000)' "$1" "$2"; }
  echo "DIST_STEPS=$(steps "$DIST_MIN" "$RD")" >"$OUTD/plan.env"
  echo "JOINT_STEPS=$(steps "$JOINT_MIN" "$RJ")" >>"$OUTD/plan.env"
fi
. "$OUTD/plan.env"
log "plan: distill $DIST_STEPS steps (${DIST_MIN} min), joint $JOINT_STEPS steps (${JOINT_MIN} min)"

$PY train2.py --out "$OUTD/distill" --init "$INIT" "${COMMON[@]}" "${DIST[@]}" --probe "$PROBE" \
  --steps "$DIST_STEPS" --minutes "$DIST_MIN" --resume >>"$OUTD/console.txt" 2>&1 || fail "distill"
log "distill: $(grep -h 'R^2' "$OUTD/console.txt" | tail -2 | tr '\n' ' ')"
# ~50 s kept for the joint stage's start (probe, teacher, R^2) and its final R^2
JM=$($PY -c 'import sys; print("%.2f" % max(0.3, min(float(sys.argv[1]), (float(sys.argv[2]) - float(sys.argv[3]) - 50) / 60)))' \
  "$JOINT_MIN" "$BUDGET_S" "$SECONDS")
log "joint: $JM min left for it"
$PY train2.py --out "$OUTD/joint" --init "$OUTD/distill/ckpt.pt" "${COMMON[@]}" "${JOINT[@]}" --probe "$PROBE" \
  --steps "$JOINT_STEPS" --minutes "$JM" --resume >>"$OUTD/console.txt" 2>&1 || fail "joint"
log "joint: $(grep -h 'R^2' "$OUTD/console.txt" | tail -1) $(tail -1 "$OUTD/joint/log.jsonl" 2>/dev/null)"
log "done"
