#!/usr/bin/env bash
# Outside referees for DICOM-SEG (io/dicomseg): on what medsa writes from the derived axial, coronal,
# oblique and enhanced multi-frame series, dciodvfy (dicom3tools) reports no error, pydicom reads back
# the same voxels placed by position, and highdicom (pinned, in a venv: make highdicom-venv) decodes
# the same mask by source-image reference. Non-zero exit when any referee is missing or disagrees.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v dciodvfy >/dev/null || { echo "dicomseg-referee: dciodvfy missing (apt-get install dicom3tools)" >&2; exit 1; }
make -s highdicom-venv
log=$(mktemp); trap 'rm -f "$log"' EXIT
rc=0
MEDSA_REQUIRE_TESTDATA=1 MEDSA_REQUIRE_HIGHDICOM=1 go test -count=1 -v -run 'TestDerivedSeries|TestSampleSEGs' ./io/dicomseg/ >"$log" 2>&1 || rc=$?
grep -E '^\s*--- (PASS|FAIL|SKIP)' "$log" || true
if [ "$rc" -ne 0 ]; then cat "$log"; echo "dicomseg-referee: FAIL"; exit "$rc"; fi
echo "dicomseg-referee: dciodvfy, pydicom and highdicom agree"
