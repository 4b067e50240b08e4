#!/usr/bin/env bash
# A real PACS end to end: Debian's Orthanc with its DICOMweb plugin on a random loopback port,
# with authentication and its own storage, stopped at the end. The head CT goes in over Orthanc's
# REST API; then medsa searches it (QIDO-RS), opens it by URL (WADO-RS into the cache) in the CLI
# and in the real window under Xvfb, segments it, and pushes the mask back (STOW-RS) as DICOM-SEG
# when the SEG writer is built in; Orthanc's REST API shows what arrived.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x /usr/sbin/Orthanc ] || { echo "pacs: Orthanc missing (make setup installs orthanc orthanc-dicomweb)" >&2; exit 1; }
[ -x bin/medsa ] || go build -o bin/medsa .
SRC=.cache/testdata/derived/dicom/axial
[ -d "$SRC" ] || { echo "pacs: $SRC missing (make testdata)" >&2; exit 1; }
MODEL=assets/model; [ -f $MODEL/manifest.json ] || MODEL=testdata/tinymodel

W=$(mktemp -d)
OPID=""; XPID=""; APID=""
cleanup() {
  for p in "$APID" "$XPID" "$OPID"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
fail() { echo "pacs: FAIL $*" >&2; echo "--- orthanc log" >&2; tail -20 "$W/orthanc.log" >&2 || true; exit 1; }

port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HP=$(port); DP=$(port)
PW="pw-$RANDOM$RANDOM"
cat >"$W/orthanc.json" <<EOF
{"Name": "medsa-pacs-test", "StorageDirectory": "$W/db", "IndexDirectory": "$W/db",
 "HttpPort": $HP, "DicomServerEnabled": false, "DicomPort": $DP, "RemoteAccessAllowed": false,
 "AuthenticationEnabled": true, "RegisteredUsers": {"medsa": "$PW"},
 "Plugins": ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"],
 "DicomWeb": {"Enable": true, "Root": "/dicom-web/", "EnableWado": true}}
EOF
chmod 600 "$W/orthanc.json"
/usr/sbin/Orthanc "$W/orthanc.json" >"$W/orthanc.log" 2>&1 &
OPID=$!
R=http://127.0.0.1:$HP
for _ in $(seq 300); do curl -sf -u "medsa:$PW" "$R/system" >/dev/null && break; sleep 0.1; done
curl -sf -u "medsa:$PW" "$R/system" >/dev/null || fail "Orthanc did not start on $R"
n=0
for f in "$SRC"/*.dcm; do curl -sf -u "medsa:$PW" -X POST --data-binary @"$f" "$R/instances" >/dev/null; n=$((n + 1)); done
echo "pacs: Orthanc on $R with $n instances"

export MEDSA_DICOMWEB_USER=medsa MEDSA_DICOMWEB_PASSWORD=$PW MEDSA_CACHE_DIR=$W/cache MEDSA_DICOMWEB_CONFIG=$W/none.json
DW=$R/dicom-web
study=$(./bin/medsa pacs search --server "$DW" --modality CT --json | /usr/bin/python3 -c 'import json,sys; s=json.load(sys.stdin); assert len(s)==1, s; print(s[0]["study_uid"])')
URL=$(./bin/medsa pacs search --server "$DW" --study "$study" | grep -o 'http://[^ ]*/series/[^ ]*' | head -1)
[ -n "$URL" ] || fail "no series URL from medsa pacs search --study"
./bin/medsa info "$URL" >"$W/remote.json"
./bin/medsa info "$SRC" >"$W/local.json"
/usr/bin/python3 - "$W" <<'EOF' || fail "the series opened by URL differs from the local one"
import json, sys
a, b = (json.load(open(f"{sys.argv[1]}/{n}.json")) for n in ("remote", "local"))
for k in ("size", "affine", "modality", "datatype"):
    assert a[k] == b[k], (k, a[k], b[k])
EOF
echo "pacs: medsa info URL = medsa info folder (size, affine, modality, type)"

# A wrong password: a clear error that does not show it.
if MEDSA_DICOMWEB_PASSWORD=wrong-$PW ./bin/medsa info "$URL" >/dev/null 2>"$W/err.txt"; then fail "a wrong password was accepted"; fi
grep -q "authentication failed" "$W/err.txt" || fail "wrong password: $(cat "$W/err.txt")"
grep -q "wrong-$PW" "$W/err.txt" && fail "the error shows the password"
echo "pacs: wrong password refused: $(head -c 160 "$W/err.txt")"

# Segment on the remote series; with the DICOM-SEG writer, push the mask back.
./bin/medsa segment --image "$URL" --model "$MODEL" --point 128,128,54,+ --out "$W/mask.nii.gz" >/dev/null
if ./bin/medsa segment --image "$URL" --model "$MODEL" --point 128,128,54,+ --out "$W/seg.dcm" >/dev/null 2>"$W/seg.err"; then
  ./bin/medsa pacs push "$W/seg.dcm" --server "$DW"
  curl -sf -u "medsa:$PW" "$R/series?expand" >"$W/series.json"
  /usr/bin/python3 - "$W" <<'EOF' || fail "the pushed SEG is not where it belongs"
import json, sys
series = json.load(open(f"{sys.argv[1]}/series.json"))
mods = sorted(s["MainDicomTags"].get("Modality", "") for s in series)
studies = {s["ParentStudy"] for s in series}
assert mods == ["CT", "SEG"], mods
assert len(studies) == 1, "the SEG landed in another study"
seg = [s for s in series if s["MainDicomTags"].get("Modality") == "SEG"][0]
open(f"{sys.argv[1]}/seg.id", "w").write(seg["Instances"][0])
print("pacs: Orthanc holds the CT and the SEG in one study")
EOF
  curl -sf -u "medsa:$PW" "$R/instances/$(cat "$W/seg.id")/file" -o "$W/back.dcm"
  cmp -s "$W/seg.dcm" "$W/back.dcm" || fail "the SEG retrieved from Orthanc differs from the one pushed"
  echo "pacs: the SEG retrieved back is byte-identical to the one pushed"
else
  echo "pacs: DICOM-SEG output not available ($(head -c 200 "$W/seg.err")); pushed nothing"
fi

# The real window opens the series from the PACS.
for d in $(seq 121 150); do [ -e /tmp/.X$d-lock ] || { DNUM=$d; break; }; done
Xvfb :$DNUM -screen 0 1400x950x24 -nolisten tcp >"$W/xvfb.log" 2>&1 &
XPID=$!
export DISPLAY=:$DNUM LIBGL_ALWAYS_SOFTWARE=1 FYNE_SCALE=1 MEDSA_STATE_FILE=$W/state.json MEDSA_RECOVERY_DIR=$W/rec MEDSA_MODEL_DIR=$MODEL
for _ in $(seq 100); do xdotool getdisplaygeometry >/dev/null 2>&1 && break; sleep 0.1; done
rm -rf "$W/cache"   # the window retrieves it itself
./bin/medsa -no-recovery "$URL" >"$W/app.log" 2>&1 &
APID=$!
ok=""
for _ in $(seq 600); do
  if [ -f "$W/state.json" ] && /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); s=d.get("slice",{}); sys.exit(0 if s.get("w")==256 and s.get("h")==256 else 1)' "$W/state.json" 2>/dev/null; then ok=1; break; fi
  kill -0 $APID 2>/dev/null || break
  sleep 0.1
done
[ -n "$ok" ] || { tail -20 "$W/app.log" >&2; fail "the window did not show the series from the PACS"; }
mkdir -p .cache/screenshots; import -window root .cache/screenshots/gui-pacs.png || true
kill $APID; wait $APID 2>/dev/null || true; APID=""
echo "pacs: the window opened $URL (256x256 slices); screenshot .cache/screenshots/gui-pacs.png"
echo "pacs: ok"
