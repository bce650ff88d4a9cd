#!/usr/bin/env bash
# Training benchmark, side by side in one run: edgeflow train (burn, flex CPU backend)
# and Keras (tensorflow-cpu, pinned in requirements.txt) on the same features, epochs,
# batch size, optimiser and schedule, 3 seeds each, 1 thread each.
#
#   python3 -m venv /tmp/kv && /tmp/kv/bin/pip install -r crates/edgeflow-train/bench/requirements.txt
#   cargo build --release -p edgeflow-cli
#   PYTHON=/tmp/kv/bin/python crates/edgeflow-train/bench/run.sh [CONFIG] [SHAPE]
#
# CONFIG defaults to examples/basicmotions/bench.toml, SHAPE (the model input of one
# example, as keras_bench.py takes it) to 19,30. Prints JSON lines, one per framework
# and seed: mean wall time per epoch (epochs 2..N, training + validation) and test accuracy.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
cfg="${1:-$root/examples/basicmotions/bench.toml}"
shape="${2:-19,30}"
py="${PYTHON:-python3}"
edgeflow="${EDGEFLOW:-$root/target/release/edgeflow}"
work="$(mktemp -d)"
trap 'rm -rf "$work"; rm -f "$(dirname "$cfg")"/.bench-seed*.toml' EXIT
"$edgeflow" train "$cfg" --features-only "$work/features" >&2
for seed in 1 2 3; do
  c="$(dirname "$cfg")/.bench-seed$seed.toml"
  sed -e "0,/^seed = .*/s//seed = $seed/" -e "s|^dir = .*|dir = \"$work/out$seed\"|" "$cfg" > "$c"
  "$edgeflow" train "$c" --plain >&2
  acc="$("$edgeflow" evaluate "$c" --json | "$py" -c 'import json,sys; print(json.load(sys.stdin)["float"]["test"]["accuracy"])')"
  "$py" - "$work/out$seed/train_log.jsonl" "$seed" "$acc" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
t = [r["seconds"] for r in rows]
print(json.dumps({"framework": "edgeflow (burn 0.22 flex)", "seed": int(sys.argv[2]), "epochs": len(rows),
                  "mean_epoch_seconds": sum(t[1:]) / max(len(t) - 1, 1), "first_epoch_seconds": t[0],
                  "test_accuracy": float(sys.argv[3])}))
PY
done
"$py" "$root/crates/edgeflow-train/bench/keras_bench.py" "$cfg" "$work/features" --shape "$shape" --seeds 1 2 3
