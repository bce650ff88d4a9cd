#!/usr/bin/env bash
# Fetches the BasicMotions accelerometer/gyroscope data set (UEA archive) from the
# `aeon` package on PyPI (pinned, hash-checked by pip's download of that exact version)
# and extracts its .ts files into DIR (default: target/data/BasicMotions).
# The data is not committed: its licence is not stated by the archive.
#
#   crates/edgeflow-data/scripts/fetch_basicmotions.sh [DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="${1:-$here/../../../target/data/BasicMotions}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" aeon==1.6.0
mkdir -p "$dir"
python3 - "$tmp"/aeon-1.6.0-py3-none-any.whl "$dir" <<'PY'
import sys, zipfile, os
whl, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    for n in z.namelist():
        if n.startswith("aeon/datasets/data/BasicMotions/") and n.endswith(".ts"):
            with open(os.path.join(out, os.path.basename(n)), "wb") as f:
                f.write(z.read(n))
            print("wrote", os.path.join(out, os.path.basename(n)))
PY
