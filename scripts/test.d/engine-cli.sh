#!/usr/bin/env bash
# Engine CLI referee: `medsa segment` with the bundled model on real images, outputs judged by nibabel:
# the label map lies on the source grid (same shape and affine as nibabel reads the
# source), holds only 0/1, covers the prompted slice; a 2D photo gives a PNG of its size; `medsa bench --json`
# has the documented keys. Needs bin/medsa (make build), the test data cache and /usr/bin/python3 + nibabel.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
D=.cache/testdata/insighttoolkit5-examples/usr/share/doc/insighttoolkit5-examples/examples/Data
T1=$D/KmeansTest_T1UCharRaw.nii.gz
RET=.cache/testdata/python3-skimage/usr/lib/python3/dist-packages/skimage/data/retina.jpg
if [ ! -f "$T1" ] || [ ! -f assets/model/manifest.json ]; then
  if [ -n "${MEDSA_REQUIRE_TESTDATA:-}" ]; then echo "engine-cli: test data or bundled model missing" >&2; exit 1; fi
  echo "engine-cli: SKIP (no test data or bundled model)"; exit 0
fi
[ -x bin/medsa ] || go build -o bin/medsa .
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Coronal plane of an LSA volume (array axis k), box + click, propagated both ways.
./bin/medsa segment --image "$T1" --out "$tmp/t1.nii.gz" --plane coronal --box 29,25,93,60,30 \
  --point 60,45,30,+ --propagate --threads 2 >"$tmp/t1.log" 2>&1 || { cat "$tmp/t1.log"; exit 1; }
# Sagittal plane (array axis i), one click, no propagation.
./bin/medsa segment --image "$T1" --out "$tmp/sag.nii.gz" --plane sagittal --point 64,40,30,+ \
  >"$tmp/sag.log" 2>&1 || { cat "$tmp/sag.log"; exit 1; }
./bin/medsa segment --image "$RET" --out "$tmp/ret.png" --point 700,700,0,+ --point 60,60,0,- \
  >"$tmp/ret.log" 2>&1 || { cat "$tmp/ret.log"; exit 1; }
# Bad prompts must fail with a message naming the problem.
for bad in "--point 500,1,1,+" "--box 1,1,200,20,3" ""; do
  if ./bin/medsa segment --image "$T1" --out "$tmp/bad.nii.gz" $bad >"$tmp/bad.log" 2>&1; then
    echo "engine-cli: segment accepted bad prompt '$bad'" >&2; exit 1
  fi
  grep -qiE "outside|no prompt" "$tmp/bad.log" || { echo "engine-cli: unclear error for '$bad':"; cat "$tmp/bad.log"; exit 1; }
done
./bin/medsa bench --n 3 --json 2>/dev/null >"$tmp/bench.json"
$PY - "$T1" "$tmp" <<'EOF'
import json, sys, zlib, struct
import numpy as np, nibabel as nib
src, tmp = sys.argv[1], sys.argv[2]
s = nib.load(src)
for name, axis, idx in (("t1", 2, 30), ("sag", 0, 64)):
    m = nib.load(f"{tmp}/{name}.nii.gz")
    d = np.asarray(m.dataobj)
    assert d.shape == s.shape[:3], (name, d.shape, s.shape)
    assert np.allclose(m.affine, s.affine, atol=1e-4), (name, m.affine, s.affine)
    assert set(np.unique(d)) <= {0, 1}, np.unique(d)
    on = np.take(d, idx, axis=axis)
    assert on.sum() > 0, f"{name}: nothing on the prompted slice"
    nz = np.nonzero(d)
    if name == "sag":
        assert set(nz[0]) == {64}, f"sag mask off its slice: {sorted(set(nz[0]))[:5]}"
    else:
        assert len(set(nz[2])) > 10, "propagation reached few slices"
    print(f"engine-cli: {name}: {int(d.sum())} voxels on the source grid (affine equal to nibabel's), slices "
          f"{len(set(nz[axis]))}")
# The PNG: read the IHDR for its size (no PIL needed).
b = open(f"{tmp}/ret.png", "rb").read()
w, h = struct.unpack(">II", b[16:24])
assert (w, h) == (1411, 1411), (w, h)
r = json.load(open(f"{tmp}/bench.json"))
keys = ["provider", "model", "encode_ms_p50", "encode_ms_p95", "decode_ms_p50", "decode_ms_p95",
        "click_to_mask_ms_p50", "click_to_mask_ms_p95", "first_mask_ms"]
missing = [k for k in keys if k not in r]
assert not missing, missing
print(f"engine-cli: retina PNG {w}x{h}; bench keys ok ({r['provider']}, decode p50 {r['decode_ms_p50']:.1f} ms)")
EOF
echo "engine-cli: ok"
