#!/usr/bin/env bash
# make package: a Linux desktop package built with the Fyne tool (fyne.io/tools v1.7.4,
# installed into .cache/bin), completed with what medsa needs at run time:
#   usr/local/bin/medsa -> ../lib/medsa/medsa    (the binary; a symlink keeps it next to its files)
#   usr/local/lib/medsa/libonnxruntime.so.1      (found next to the executable)
#   usr/local/lib/medsa/assets/{model,sample}    (the bundled model and sample study)
#   usr/local/share/applications/medsa.desktop, usr/local/share/pixmaps/medsa.png (from fyne package)
# Output: dist/medsa-<version>-linux-<arch>.tar.xz; `sudo tar -C / -xJf ...` installs it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FYNE=$ROOT/.cache/bin/fyne
if [ ! -x "$FYNE" ]; then
  echo "package: installing fyne.io/tools/cmd/fyne@v1.7.4 into .cache/bin"
  (cd /tmp && GOBIN=$ROOT/.cache/bin GOFLAGS=-buildvcs=false go install fyne.io/tools/cmd/fyne@v1.7.4)
fi
[ -x bin/medsa ] || go build -o bin/medsa .
VERSION=$(sed -n 's/^ *Version *= *"\(.*\)"/\1/p' FyneApp.toml)
ARCH=$(go env GOARCH)
ORT=${MEDSA_ORT_LIB:-$ROOT/.cache/ort/libonnxruntime.so.1}
[ -f "$ORT" ] || { echo "package: onnxruntime library missing ($ORT): run make setup" >&2; exit 1; }
[ -f assets/model/manifest.json ] || { echo "package: assets/model missing (the bundled model)" >&2; exit 1; }

W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
# fyne package reads FyneApp.toml here and writes medsa.tar.xz in the working directory.
cp FyneApp.toml "$W/FyneApp.toml.orig"
"$FYNE" package --target linux --exe bin/medsa --name medsa --icon assets/icon.png --release
cp "$W/FyneApp.toml.orig" FyneApp.toml # the tool may bump the build number; keep the file as committed
mv medsa.tar.xz "$W/medsa.tar.xz"
mkdir -p "$W/root"
tar -C "$W/root" -xJf "$W/medsa.tar.xz"
# fyne's layout: medsa/{Makefile, usr/local/{bin,share}}; we ship usr/ (its Makefile knows nothing of lib/medsa).
R=$W/root/medsa
P=$R/usr/local
[ -f "$P/bin/medsa" ] || { echo "package: unexpected fyne package layout:"; (cd "$W/root" && find . | head -20); exit 1; }
mkdir -p "$P/lib/medsa/assets"
mv "$P/bin/medsa" "$P/lib/medsa/medsa"
ln -s ../lib/medsa/medsa "$P/bin/medsa"
cp -L "$ORT" "$P/lib/medsa/libonnxruntime.so.1"
cp -r assets/model "$P/lib/medsa/assets/model"
[ -e assets/sample ] && cp -rL assets/sample "$P/lib/medsa/assets/sample"
mkdir -p dist
OUT=dist/medsa-$VERSION-linux-$ARCH.tar.xz
tar -C "$R" -cJf "$OUT" usr
echo "package: $OUT ($(du -h "$OUT" | cut -f1))"
tar -tJf "$OUT" | sed 's/^/  /' | head -30

# Smoke test: the packaged binary runs from its install tree and finds its library, model and sample.
mkdir -p "$W/inst" && tar -C "$W/inst" -xJf "$OUT"
I=$W/inst/usr/local
sample=$(ls "$I"/lib/medsa/assets/sample/*.nii.gz 2>/dev/null | head -1)
if [ -n "$sample" ]; then
  (cd "$W" && env -u MEDSA_ORT_LIB -u MEDSA_MODEL "$I/bin/medsa" bench --image "$sample" --model "$I/lib/medsa/assets/model" --n 2 --json) \
    >"$W/bench.json" 2>"$W/bench.log" || { echo "package: the packaged medsa failed its bench:" >&2; tail -5 "$W/bench.log" >&2; exit 1; }
fi
echo "package: ok"
