#!/usr/bin/env bash
# Before a device call of the 2.x GPU recipe (model/train/gpu_train2.sh): what travels to the device machine (the
# checkout's tracked files plus the carry) may not pass 64 MiB, and the tracked files alone are ~78 MB, most of
# them checkpoints, goldens and the bundled model that the recipe does not read. `off` deletes those from the
# working tree (only when they are committed unchanged); `on` restores them from HEAD. Run `on` right after the call.
set -euo pipefail
cd "$(dirname "$0")/.."
PATHS=(model/train/checkpoints/v2_base.pt model/train/checkpoints/v2_base_s7800.pt
       model/train/checkpoints/v2_joint_weights.pt testdata/golden assets/model)
case "${1:-}" in
off)
  if ! git diff --quiet HEAD -- "${PATHS[@]}"; then
    echo "device-slim: uncommitted changes under ${PATHS[*]}: commit them first" >&2
    exit 1
  fi
  rm -rf "${PATHS[@]}"
  left=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1 || true)
  echo "device-slim: off, $((left / 1048576)) MiB of tracked files left; run 'scripts/device-slim.sh on' after the call"
  ;;
on)
  git checkout HEAD -- "${PATHS[@]}"
  echo "device-slim: on"
  ;;
*)
  echo "usage: scripts/device-slim.sh off|on" >&2
  exit 2
  ;;
esac
