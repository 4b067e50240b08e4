#!/usr/bin/env bash
# Write a 512x512x324 label map (derived from the real head CT) as .nii.gz:
# medsa (io/nifti, parallel gzip) vs nibabel, same data, same machine, same run.
# Target: medsa <= 0.5x nibabel's time.
set -euo pipefail
cd "$(dirname "$0")/../.."
SRC=.cache/testdata/invesalius-examples/usr/share/doc/invesalius-examples/examples/Cranium.inv3
PY=scripts/referee/labelmap_bench.py
B=.cache/bench
RAW=$B/labelmap-512x512x324.u8
N=${BENCH_REPS:-3}
mkdir -p "$B"
[ -f "$SRC" ] || { echo "labelmap-write: $SRC missing (run make testdata)" >&2; exit 1; }
if [ ! -s "$RAW" ] || [ "$PY" -nt "$RAW" ]; then
  OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 "$PY" make "$SRC" "$RAW.tmp" && mv "$RAW.tmp" "$RAW"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/labelbench" ./io/nifti/internal/labelbench
medsa=$("$tmp/labelbench" -in "$RAW" -out "$tmp/medsa.nii.gz" -sx 0.4785 -sy 0.4785 -sz 0.5 -n "$N")
nib=$(/usr/bin/python3 -W ignore "$PY" nibabel "$RAW" "$tmp/nibabel.nii.gz" "$N")
/usr/bin/python3 -W ignore "$PY" check "$RAW" "$tmp/medsa.nii.gz"
/usr/bin/python3 - "$medsa" "$nib" <<'PYEOF'
import json, sys, os
m, n = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"labelmap-write 512x512x324 uint8 .nii.gz (best of {os.environ.get('BENCH_REPS', 3)}, {os.cpu_count()} CPUs):")
load = os.getloadavg()[0]
print(f"  medsa   {m['seconds']*1000:8.1f} ms wall  {m['cpu_seconds']*1000:8.1f} ms CPU  {m['bytes']/1e6:6.2f} MB")
print(f"  nibabel {n['seconds']*1000:8.1f} ms wall  {n['cpu_seconds']*1000:8.1f} ms CPU  {n['bytes']/1e6:6.2f} MB")
print(f"  ratio medsa/nibabel = {m['seconds']/n['seconds']:.2f} wall (target <= 0.5), {m['cpu_seconds']/n['cpu_seconds']:.2f} CPU; load average {load:.1f}")
PYEOF
