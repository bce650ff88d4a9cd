"""Runs the edgeflow-data benchmark: every workload x side x thread count, one process
each, measuring elements per second (wall time of the iteration loop) and peak memory
(maximum resident set of the process, from wait4). Prints a Markdown table.

    python3 crates/edgeflow-data/bench/gen_data.py target/bench-data
    cargo build --release -p edgeflow-data --example bench
    python3 crates/edgeflow-data/bench/run.py target/bench-data \
        --tf /opt/efvenv/bin/python --grain /path/to/grain-venv/bin/python
"""
import argparse
import json
import os
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.abspath(os.path.join(here, "..", "..", ".."))
p = argparse.ArgumentParser()
p.add_argument("data")
p.add_argument("--tf", default=sys.executable)
p.add_argument("--grain", default=None)
p.add_argument("--threads", default="1,2")
p.add_argument("--workloads", default="csv,images,text")
a = p.parse_args()

sides = [("edgeflow-data", [os.path.join(root, "target", "release", "examples", "bench")]),
         ("tf.data", [a.tf, os.path.join(here, "tfdata_bench.py")])]
if a.grain:
    sides.append(("Grain", [a.grain, os.path.join(here, "grain_bench.py")]))


def run(cmd):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read().decode()
    err = proc.stderr.read().decode()
    if status != 0:
        return None, err[-400:]
    return dict(json.loads(out.strip().splitlines()[-1]), rss_mib=usage.ru_maxrss / 1024), None


print("| workload | side | threads | elements | seconds | elements/s | peak RSS MiB |")
print("|---|---|---:|---:|---:|---:|---:|")
for w in a.workloads.split(","):
    for name, cmd in sides:
        for t in a.threads.split(","):
            r, err = run(cmd + [w, a.data, t])
            if r is None:
                print("| %s | %s | %s | failed: %s |||" % (w, name, t, err.replace("\n", " ")[-200:]))
                continue
            print("| %s | %s | %s | %d | %.2f | %.0f | %.0f |" % (
                w, name, t, r["elements"], r["seconds"], r["elements"] / r["seconds"], r["rss_mib"]))
            sys.stdout.flush()
