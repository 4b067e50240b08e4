#!/usr/bin/env bash
# Installs what a fresh Debian bookworm machine lacks to build and test medsa.
# Idempotent: a second run only checks (seconds).
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(gcc pkg-config libgl1-mesa-dev xorg-dev xvfb xdotool imagemagick x11-utils
      libopenjp2-7-dev libcharls-dev libgdcm-tools openjph-tools
      dcm2niix dcmtk dicom3tools python3-nibabel python3-pydicom python3-numpy python3-scipy
      python3-skimage python3-torch python3-onnx python3-matplotlib libopenblas0-pthread
      python3-venv teem-apps ca-certificates orthanc orthanc-dicomweb)
# npm may come from another Node.js distribution (e.g. nodesource); only install Debian's when none is on PATH.
command -v npm >/dev/null || PKGS+=(npm)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  cmd="apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${missing[*]}"
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing ${missing[*]}"
    bash -c "$cmd" >/dev/null
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    echo "setup: installing with sudo: ${missing[*]}"
    sudo bash -c "$cmd" >/dev/null
  else
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "run as root:  $cmd" >&2
    exit 1
  fi
fi

go mod download
scripts/fetch-ort.sh
