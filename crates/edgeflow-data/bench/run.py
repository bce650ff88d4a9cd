"""Runs the edgeflow-data benchmark: every workload x side x thread count, one process
each, one after the other, measuring elements per second (wall time of the iteration
loop), CPU seconds (user + system of the process and its children, from wait4) and peak
memory (maximum resident set of the process, from wait4). Prints a Markdown table; the
load average before each run is printed too, since the machine may be shared.

    python3 crates/edgeflow-data/bench/gen_data.py target/bench-data
    cargo build --release -p edgeflow-data --example bench
    python3 crates/edgeflow-data/bench/run.py target/bench-data \\
        --tf /path/to/tf-venv/bin/python --grain /path/to/grain-venv/bin/python

With --repeat N every row is run N times and the run with the median wall time is shown.
With --check the tf.data forms are first run once with a checksum of every value and must
agree (same element count, same sum within 1e-9 relative) on csv and text; a mismatch
exits 1 before anything is timed.
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
p.add_argument("--repeat", type=int, default=1)
p.add_argument("--check", action="store_true")
p.add_argument("--sides", default=None,
               help="comma-separated substrings; only sides whose label contains one are run")
p.add_argument("--bench-bin", default=os.path.join(root, "target", "release", "examples", "bench"))
a = p.parse_args()

tf = [a.tf, os.path.join(here, "tfdata_bench.py")]
# (label, command, trailing args, workloads it applies to)
sides = [("edgeflow-data", [a.bench_bin], [], None),
         ("tf.data, vectorised + AUTOTUNE", tf, ["vectorised"], None),
         ("tf.data, batch-map-unbatch + AUTOTUNE", tf, ["unbatch"], {"csv"}),
         ("tf.data, per element, autotune off", tf, ["element"], None)]
if a.grain:
    grain = [a.grain, os.path.join(here, "grain_bench.py")]
    sides.append(("Grain, vectorised", grain, ["vectorised"], None))
    sides.append(("Grain, per element", grain, ["element"], None))

if a.sides:
    keep = a.sides.split(",")
    sides = [s for s in sides if any(k in s[0] for k in keep)]


def run(cmd, env=None):
    """One untimed run (for --check): the JSON line, or None and the end of stderr."""
    proc = subprocess.run(cmd, capture_output=True, env=env)
    if proc.returncode != 0:
        return None, proc.stderr.decode()[-400:]
    return json.loads(proc.stdout.decode().strip().splitlines()[-1]), None


def timed(cmd):
    """One timed run: the JSON line plus peak RSS and user + system CPU seconds of the
    process (wait4 on it; for Grain's worker processes the CPU is the parent's only)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = status
    if status != 0:
        return None, "exit status %d" % status
    r = json.loads(out.strip().splitlines()[-1])
    r["rss_mib"] = usage.ru_maxrss / 1024
    r["cpu_s"] = usage.ru_utime + usage.ru_stime
    return r, None


if a.check:
    env = dict(os.environ, EDGEFLOW_BENCH_CHECKSUM="1")
    bad = False
    for w in ("csv", "text"):
        seen = []
        for name, cmd, extra, only in sides:
            if cmd is not tf or (only and w not in only) or w not in a.workloads.split(","):
                continue
            r, err = run(cmd + [w, a.data, "2"] + extra, env)
            if r is None:
                print("check: %s %s failed: %s" % (w, name, err), file=sys.stderr)
                bad = True
                continue
            seen.append((name, r["elements"], r["checksum"]))
            print("check: %s | %s | %d elements | sum %.6f" % (w, name, r["elements"], r["checksum"]),
                  file=sys.stderr)
        for name, n, s in seen[1:]:
            n0, s0 = seen[0][1], seen[0][2]
            if n != n0 or abs(s - s0) > 1e-9 * max(1.0, abs(s0)):
                print("check: %s: %s gives %d / %r, %s gives %d / %r" % (w, name, n, s, seen[0][0], n0, s0),
                      file=sys.stderr)
                bad = True
    if bad:
        sys.exit(1)

print("| workload | side | threads | elements | seconds | elements/s | CPU s | peak RSS MiB | load avg |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for w in a.workloads.split(","):
    for name, cmd, extra, only in sides:
        if only and w not in only:
            continue
        for t in a.threads.split(","):
            results = []
            load = os.getloadavg()[0]
            for _ in range(a.repeat):
                r, err = timed(cmd + [w, a.data, t] + extra)
                if r is None:
                    break
                results.append(r)
            if not results:
                print("| %s | %s | %s | failed: %s ||||||" % (w, name, t, err.replace("\n", " ")[-200:]))
                continue
            results.sort(key=lambda r: r["seconds"])
            r = results[len(results) // 2]
            print("| %s | %s | %s | %d | %.2f | %.0f | %.2f | %.0f | %.2f |" % (
                w, name, t, r["elements"], r["seconds"], r["elements"] / r["seconds"], r["cpu_s"],
                r["rss_mib"], load))
            sys.stdout.flush()
