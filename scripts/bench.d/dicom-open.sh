#!/usr/bin/env bash
# Open a 512x512x324 CT series (derived from the real head CT): medsa vs dcm2niix vs pydicom+numpy,
# same files, same run, paired runs (farm-bench --vs), ratios A/B (median). Target: medsa <= 1.0x dcm2niix.
#   medsa info      reads, sorts and decodes the series into memory (what the GUI does on open)
#   medsa convert   the same, plus writing an uncompressed .nii (what dcm2niix -z n does)
set -euo pipefail
cd "$(dirname "$0")/../.."
D=.cache/testdata/derived/dicom/big
[ -d "$D" ] || bash scripts/testdata.d/dicom-series.sh
[ -x bin/medsa ] || go build -o bin/medsa .
RUNS=${RUNS:-7}
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
nfiles=$(ls "$D" | wc -l)
echo "dicom-open: $nfiles files of 512x512 int16 ($(du -sh "$D" | cut -f1)), $RUNS paired runs each"
cat "$D"/* > /dev/null # warm the page cache for everyone
DCM2NIIX="dcm2niix -z n -b n -w 1 -f ref -o $W $D"
if command -v farm-bench >/dev/null; then
  bench() { # label, A, B
    echo "== $1"
    farm-bench -n "$RUNS" --warmup 1 --timeout 600 --vs "$3" -- $2 2>&1 | grep -Ei 'wall|ratio|A/B|cpu|peak' || true
  }
  bench "medsa info vs dcm2niix -z n"        "./bin/medsa info $D"                 "$DCM2NIIX"
  bench "medsa convert (.nii) vs dcm2niix -z n" "./bin/medsa convert $D $W/ours.nii" "$DCM2NIIX"
  bench "pydicom+numpy vs dcm2niix -z n"     "/usr/bin/python3 scripts/referee/pydicom_stack.py $D" "$DCM2NIIX"
else
  # No farm-bench: plain wall-clock medians.
  med() { local t=(); for i in $(seq "$RUNS"); do s=$(date +%s.%N); "$@" >/dev/null 2>&1; t+=("$(echo "$(date +%s.%N) - $s" | bc)"); done; printf '%s\n' "${t[@]}" | sort -n | sed -n "$(( (RUNS+1)/2 ))p"; }
  a=$(med ./bin/medsa info "$D"); c=$(med ./bin/medsa convert "$D" "$W/ours.nii"); p=$(med /usr/bin/python3 scripts/referee/pydicom_stack.py "$D"); b=$(med $DCM2NIIX)
  echo "median wall s: medsa info $a, medsa convert $c, pydicom $p, dcm2niix $b"
  echo "ratios vs dcm2niix: info $(echo "scale=2; $a/$b" | bc)x convert $(echo "scale=2; $c/$b" | bc)x pydicom $(echo "scale=2; $p/$b" | bc)x"
fi
