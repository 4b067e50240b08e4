#!/usr/bin/env bash
# Derived DICOM series from the real InVesalius head CT (see scripts/referee/make_dicom_series.py),
# plus compressed copies made with dcmtk. Idempotent: rebuilt only when the generator changes.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=.cache/testdata/derived/dicom
SRC=.cache/testdata/invesalius-examples/usr/share/doc/invesalius-examples/examples/Cranium.inv3
GEN=scripts/referee/make_dicom_series.py
stamp=$(cat "$GEN" "$0" | sha256sum | cut -c1-16)
[ -f "$OUT/.ok" ] && [ "$(cat "$OUT/.ok")" = "$stamp" ] && exit 0
[ -f "$SRC" ] || { echo "dicom-series: $SRC missing (run scripts/testdata.sh)" >&2; exit 1; }
rm -rf "$OUT" && mkdir -p "$OUT"
nice -n 10 /usr/bin/python3 "$GEN" "$SRC" "$OUT"
compress() { # tool args src dst
  local tool=$1 args=$2 src=$3 dst=$4; mkdir -p "$dst"
  for f in "$src"/*.dcm; do $tool $args "$f" "$dst/$(basename "$f")"; done
}
compress dcmcjpeg "+e1" "$OUT/axial" "$OUT/axial_jpegll_sv1"        # JPEG lossless SV1 (.4.70)
compress dcmcjpeg "+el +sv 7" "$OUT/axial" "$OUT/axial_jpegll_p14"  # JPEG lossless process 14, predictor 7 (.4.57)
compress dcmcrle "" "$OUT/axial" "$OUT/axial_rle"                    # RLE lossless
compress dcmcjpeg "+eb" "$OUT/axial8" "$OUT/axial8_jpeg_baseline"    # JPEG baseline 8-bit
compress dcmconv "+tb" "$OUT/axial" "$OUT/axial_bigendian"           # explicit big endian, 16-bit
compress dcmconv "+tb" "$OUT/axial8" "$OUT/axial8_bigendian"         # explicit big endian, 8-bit in OW (word-swapped)
compress dcmconv "+td" "$OUT/axial8" "$OUT/axial8_deflated"          # deflated
# Validate a sample of the classic (single-frame) files with dicom3tools' dciodvfy: errors fail,
# warnings are fine. The enhanced multi-frame file carries only the functional groups a reader needs
# (no CT acquisition macros), so dciodvfy is not asked about it; dcm2niix reads it in the referee.
if command -v dciodvfy >/dev/null; then
  for f in "$OUT/axial/$(ls "$OUT/axial" | head -1)" "$OUT/oblique/IM0001.dcm" "$OUT/coronal/IM0001.dcm" "$OUT/axial8/IM0001.dcm"; do
    errs=$(dciodvfy "$f" 2>&1 | grep '^Error' || true)
    if [ -n "$errs" ]; then
      echo "dicom-series: dciodvfy reports errors in $f:" >&2; echo "$errs" >&2; exit 1
    fi
  done
  echo "dicom-series: dciodvfy found no errors"
else
  echo "dicom-series: dciodvfy (dicom3tools) not installed: validation skipped" >&2
fi
echo "$stamp" > "$OUT/.ok"
echo "dicom-series: wrote $OUT"
