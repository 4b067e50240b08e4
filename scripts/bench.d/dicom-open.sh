#!/usr/bin/env bash
# Open a 512x512x324 CT series (derived from the real head CT): medsa vs dcm2niix vs pydicom+numpy,
# same files, same run, paired runs (scripts/bench-pair.py), ratios A/B (median). Target: medsa <= 1.0x dcm2niix.
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
bench() { # label, A, B
  echo "== $1 (A/B)"
  /usr/bin/python3 scripts/bench-pair.py "$RUNS" "$2" "$3"
}
bench "medsa info vs dcm2niix -z n"           "./bin/medsa info $D"                 "$DCM2NIIX"
bench "medsa convert (.nii) vs dcm2niix -z n" "./bin/medsa convert $D $W/ours.nii" "$DCM2NIIX"
bench "pydicom+numpy vs dcm2niix -z n"        "/usr/bin/python3 scripts/referee/pydicom_stack.py $D" "$DCM2NIIX"

