#!/usr/bin/env bash
# `make gpu`: fetches a CUDA build of ONNX Runtime 1.29 (CUDA 13, cuDNN 9) from the
# npm packages com.github.asus4.onnxruntime@0.4.9 (libonnxruntime.so) and
# com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 (the CUDA provider), pinned by
# sha256, no install scripts run, into .cache/ort-gpu. The CUDA 13 runtime
# (libcudart.so.13, libcublas.so.13, libcublasLt.so.13, libcurand.so.10), cuDNN 9
# (libcudnn.so.9) and the NVIDIA driver (libcuda.so.1) must be on the loader path;
# medsa reports which one is missing and falls back to the CPU (--device auto).
# Prints the MEDSA_ORT_LIB to use.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=.cache/ort-gpu
LIB=$DEST/libonnxruntime.so
declare -A SHA=(
  [com.github.asus4.onnxruntime-0.4.9.tgz]=e59788788818fdde1b2e522e766a21ba0f7d8391de55737abf81e32cc801785d
  [com.github.asus4.onnxruntime.linux-x64-gpu-0.4.9.tgz]=2b459e0c17f340c92970c10ed86de4f37a3009f93c14053e6ad4334cbb6be412
)
if [ -f "$LIB" ] && [ -f "$DEST/libonnxruntime_providers_cuda.so" ] && [ -f "$DEST/.stamp" ]; then
  echo "MEDSA_ORT_LIB=$(pwd)/$LIB"; exit 0
fi
mkdir -p "$DEST/tmp"
( cd "$DEST/tmp" && npm pack com.github.asus4.onnxruntime@0.4.9 com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 \
    --ignore-scripts --silent >/dev/null )
for f in "${!SHA[@]}"; do
  echo "${SHA[$f]}  $DEST/tmp/$f" | sha256sum -c --status || { echo "fetch-ort-gpu: $f sha256 mismatch" >&2; exit 1; }
  tar -xzf "$DEST/tmp/$f" -C "$DEST/tmp" --wildcards 'package/Plugins/Linux/x64/*.so'
done
mv "$DEST"/tmp/package/Plugins/Linux/x64/*.so "$DEST/"
rm -rf "$DEST/tmp"
# Let the loader find the bundled provider libraries next to each other.
ln -sf libonnxruntime.so "$DEST/libonnxruntime.so.1"
touch "$DEST/.stamp"
echo "fetch-ort-gpu: $(ls "$DEST")" >&2
echo "MEDSA_ORT_LIB=$(pwd)/$LIB"
