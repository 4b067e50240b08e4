#!/usr/bin/env bash
# Retrieve the 512x512x324 CT series (derived from the real head CT) from a real Orthanc over WADO-RS:
# medsa pacs get (instance list + parallel instance retrievals into the verified cache, from cold) vs curl of
# the same series as one multipart answer, same server, same run, paired runs (scripts/bench-pair.py), ratio A/B.
# Target: medsa <= 1.0x curl.
set -euo pipefail
cd "$(dirname "$0")/../.."
D=.cache/testdata/derived/dicom/big
[ -d "$D" ] || bash scripts/testdata.d/dicom-series.sh
[ -x bin/medsa ] || go build -o bin/medsa .
[ -x /usr/sbin/Orthanc ] || { echo "pacs-retrieve: Orthanc missing (make setup)" >&2; exit 1; }
RUNS=${RUNS:-5}
W=$(mktemp -d); OPID=""
trap '[ -n "$OPID" ] && kill $OPID 2>/dev/null; wait 2>/dev/null; rm -rf "$W"' EXIT
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HP=$(port); DP=$(port); PW="pw-$RANDOM$RANDOM"
cat >"$W/orthanc.json" <<EOF
{"Name": "medsa-bench", "StorageDirectory": "$W/db", "IndexDirectory": "$W/db", "HttpPort": $HP,
 "DicomServerEnabled": false, "DicomPort": $DP, "RemoteAccessAllowed": false, "AuthenticationEnabled": true,
 "RegisteredUsers": {"medsa": "$PW"}, "Plugins": ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"],
 "DicomWeb": {"Enable": true, "Root": "/dicom-web/"}, "HttpThreadsCount": 16}
EOF
/usr/sbin/Orthanc "$W/orthanc.json" >"$W/orthanc.log" 2>&1 &
OPID=$!
R=http://127.0.0.1:$HP
for _ in $(seq 300); do curl -sf -u "medsa:$PW" "$R/system" >/dev/null && break; sleep 0.1; done
for f in "$D"/*; do curl -sf -u "medsa:$PW" -X POST --data-binary @"$f" "$R/instances" >/dev/null; done
export MEDSA_DICOMWEB_USER=medsa MEDSA_DICOMWEB_PASSWORD=$PW MEDSA_DICOMWEB_CONFIG=$W/none.json
study=$(./bin/medsa pacs search --server "$R/dicom-web" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["study_uid"])')
URL=$(./bin/medsa pacs search --server "$R/dicom-web" --study "$study" | grep -o 'http://[^ ]*/series/[^ ]*' | head -1)
echo "pacs-retrieve: $(ls "$D" | wc -l) instances ($(du -sh "$D" | cut -f1)) on Orthanc, $RUNS paired runs"
cat >"$W/ours.sh" <<EOF
rm -rf "$W/cache"; MEDSA_CACHE_DIR="$W/cache" exec ./bin/medsa pacs get "$URL" >/dev/null
EOF
cat >"$W/curl.sh" <<EOF
exec curl -sf -u "medsa:$PW" -H 'Accept: multipart/related; type="application/dicom"' "$URL" -o "$W/series.multipart"
EOF
echo "A = medsa pacs get (cold cache), B = curl of the series' multipart"
/usr/bin/python3 scripts/bench-pair.py "$RUNS" "bash $W/ours.sh" "bash $W/curl.sh"
ls "$W"/cache/dicomweb/*/instances | wc -l | xargs echo "pacs-retrieve: medsa cached instances:"
