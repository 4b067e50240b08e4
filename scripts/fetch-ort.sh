#!/usr/bin/env bash
# Fetches the ONNX Runtime 1.30.0 shared library from the npm package
# onnxruntime-node@1.30.0 (no install scripts run), pinned by sha256. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=.cache/ort
LIB=$DEST/libonnxruntime.so.1
TGZ_SHA=6e3390d6b783e7be946fad629292799da28d0b42f84856e50d2c1b0383291e75
LIB_SHA=ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23
if [ -f "$LIB" ] && echo "$LIB_SHA  $LIB" | sha256sum -c --status; then exit 0; fi
mkdir -p "$DEST"
TMP=$(mktemp -d "$DEST/tmp.XXXXXX") # private: concurrent runs must not share it
trap 'rm -rf "$TMP"' EXIT
( cd "$TMP" && npm pack onnxruntime-node@1.30.0 --ignore-scripts --silent >/dev/null )
echo "$TGZ_SHA  $TMP/onnxruntime-node-1.30.0.tgz" | sha256sum -c --status || {
  echo "fetch-ort: onnxruntime-node-1.30.0.tgz sha256 mismatch" >&2; exit 1; }
tar -xzf "$TMP/onnxruntime-node-1.30.0.tgz" -C "$TMP" package/bin/napi-v6/linux/x64/libonnxruntime.so.1
mv -f "$TMP/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$LIB"
echo "$LIB_SHA  $LIB" | sha256sum -c --status || { echo "fetch-ort: $LIB sha256 mismatch" >&2; exit 1; }
echo "fetch-ort: $LIB"
