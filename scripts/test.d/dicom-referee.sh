#!/usr/bin/env bash
# Outside referee: Debian's dcm2niix and `medsa convert` on the same DICOM input must give the
# same voxels and affines (within 0.01 mm) once nibabel brings both to the closest canonical
# orientation. dcm2niix flips rows and may reorder slices; as_closest_canonical undoes both.
# Non-zero exit on any mismatch, and on any case that cannot be compared.
set -euo pipefail
cd "$(dirname "$0")/../.."
T=.cache/testdata
D=$T/derived/dicom
[ -d "$D/axial" ] || bash scripts/testdata.d/dicom-series.sh
[ -x bin/medsa ] || go build -o bin/medsa .
command -v dcm2niix >/dev/null || { echo "dicom-referee: dcm2niix missing (apt-get install dcm2niix)" >&2; exit 1; }
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
fail=0; n=0
# case NAME INPUT [compare options]: INPUT is a folder or one file.
# With PREP set, dcm2niix reads copies made by that dcmtk command (medsa reads the originals).
case_() {
  local name=$1 in=$2; shift 2
  local src=$in
  if [ -f "$in" ]; then src=$W/$name.in; mkdir -p "$src"; cp "$in" "$src/"; fi
  if [ -n "${PREP:-}" ]; then
    mkdir -p "$W/$name.prep"
    for f in "$src"/*; do $PREP "$f" "$W/$name.prep/$(basename "$f")"; done
    src=$W/$name.prep
  fi
  mkdir -p "$W/$name"
  # -z n: plain .nii; -b n: no sidecar; -m n: never merge series; -x n: no cropping; -i n: keep all images.
  if ! dcm2niix -z n -b n -m n -x n -i n -f ref -o "$W/$name" "$src" >"$W/$name.log" 2>&1; then
    echo "$name: FAIL dcm2niix could not convert (see below)"; tail -5 "$W/$name.log"; fail=1; return
  fi
  local refs=("$W/$name"/ref*.nii)
  if [ ${#refs[@]} -ne 1 ] || [ ! -f "${refs[0]}" ]; then
    echo "$name: FAIL dcm2niix wrote ${#refs[@]} files (${refs[*]##*/}); cannot compare one-to-one"; fail=1; return
  fi
  if ! ./bin/medsa convert "$in" "$W/$name/ours.nii" 2>"$W/$name.err"; then
    echo "$name: FAIL medsa convert: $(cat "$W/$name.err")"; fail=1; return
  fi
  n=$((n+1))
  /usr/bin/python3 scripts/referee/compare_nifti.py "${refs[0]}" "$W/$name/ours.nii" --name "$name" "$@" || fail=1
}
case_ axial-ct            "$D/axial"
case_ oblique-ct          "$D/oblique"
case_ coronal-ct          "$D/coronal"
case_ jpeg-lossless-sv1   "$D/axial_jpegll_sv1"
case_ jpeg-lossless-p14   "$D/axial_jpegll_p14"
case_ rle                 "$D/axial_rle"
case_ big-endian          "$D/axial_bigendian"
# 8-bit samples in a big-endian OW value are swapped in pairs (PS3.5 8.1.1); dcm2niix 1.0.20220720
# (like pydicom 2.3) reads them unswapped, so it judges dcmtk's little-endian conversion instead.
echo "big-endian-8bit-ow: dcm2niix ignores the OW word swap of 8-bit big-endian pixels; it reads dcmconv +te copies"
PREP="dcmconv +te" case_ big-endian-8bit-ow "$D/axial8_bigendian"
# dcm2niix 1.0.20220720 refuses deflated files: it reads copies inflated by dcmconv.
echo "deflated: dcm2niix cannot read deflated files; it reads dcmconv +te copies, medsa the deflated originals"
PREP="dcmconv +te" case_ deflated "$D/axial8_deflated"
# Lossy JPEG: dcm2niix's built-in decoder differs from libjpeg (IJG) by up to 9 grey levels on
# these files; Go's image/jpeg differs from IJG by at most 1. So dcm2niix judges the geometry of
# files decoded by dcmtk's dcmdjpeg (IJG), and the voxels may differ by one grey level.
echo "jpeg-baseline: dcm2niix reads dcmdjpeg (IJG) decodes; medsa decodes the JPEG itself (1 grey level allowed)"
PREP="dcmdjpeg" case_ jpeg-baseline "$D/axial8_jpeg_baseline" --vox-tol 1 --vox-mean 0.05
case_ enhanced-multiframe "$D/multi/enhanced_ct.dcm"
case_ tcia-enhanced-ct    "$T/github.com/suyashkumar/dicom/testdata/5.dcm"
case_ us-rgb              "$T/ami.js/package/data/dicom/US-RGB-8-esopecho.dcm"
case_ us-rgb-bigendian    "$T/ami.js/package/data/dicom/US-RGB-8-epicard.dcm"
case_ mr-small            "$T/python3-pydicom/usr/lib/python3/dist-packages/pydicom/data/test_files/MR_small.dcm"
# `medsa info` prints the affine `medsa convert` writes (as nibabel reads it), for every kind of grid.
for c in oblique-ct coronal-ct enhanced-multiframe us-rgb; do
  [ -f "$W/$c/ours.nii" ] || continue
  in=$(grep -m1 "^case_ $c " "$0" | awk '{print $3}' | tr -d '"'); in=${in//\$D/$D}; in=${in//\$T/$T}
  ./bin/medsa info "$(eval echo "$in")" 2>/dev/null > "$W/$c.json" || { echo "$c: FAIL medsa info"; fail=1; continue; }
  /usr/bin/python3 - "$W/$c.json" "$W/$c/ours.nii" "$c" <<'PY' || fail=1
import json, sys
import numpy as np, nibabel as nib
info = json.load(open(sys.argv[1])); img = nib.load(sys.argv[2])
d = np.abs(np.array(info["affine"]) - img.affine).max()
shape = tuple(info["size"])
ok = d < 1e-4 and img.shape[:3] == shape
print(f"{sys.argv[3]}: info vs convert: affine max|diff| {d:.2e}, size {shape} vs {img.shape[:3]}: {'ok' if ok else 'MISMATCH'}")
sys.exit(0 if ok else 1)
PY
done
# Bad input: non-zero exit and a one-line error naming the input (Fyne's start-up log lines aside).
bad=$W/bad; mkdir -p "$bad/empty"; echo "not an image" > "$bad/notes.txt"; head -c 700 "$D/axial8/IM0001.dcm" > "$bad/trunc.dcm"
for b in "$bad/empty" "$bad/notes.txt" "$bad/trunc.dcm" /nonexistent.nii; do
  if ./bin/medsa info "$b" >/dev/null 2>"$W/err"; then echo "bad input $b: FAIL accepted"; fail=1; continue; fi
  lines=$(grep -v -e 'Fyne error' -e '  Cause:' -e '  At:' "$W/err" | grep -c . || true)
  if [ "$lines" != 1 ] || ! grep -q "$(basename "$b")" "$W/err"; then echo "bad input $b: FAIL want one line naming it, got:"; cat "$W/err"; fail=1
  else echo "bad input $(basename "$b"): ok: $(grep -v -e 'Fyne' -e '  Cause:' -e '  At:' "$W/err")"; fi
done
if [ $fail -ne 0 ]; then echo "dicom-referee: FAILED"; exit 1; fi
echo "dicom-referee: all $n cases agree with dcm2niix"
