#!/usr/bin/env python3
"""Where a firmware's instructions go, per stage of a function, on QEMU.

Runs an ELF on QEMU with `-d in_asm,exec,nochain` (every translated block is printed once
with its instructions, and every execution of a block is logged), counts how often each
instruction address ran, and attributes each address to a stage with `addr2line -f -i`
(the chain of inlined functions at that address): the stage is the function one level
inside ROOT (the function whose cost is split), or ROOT itself for code written directly
in it (then, with --lines, the nearest preceding `// stage: NAME` marker in the source
line's file decides). Addresses whose chain does not contain ROOT are not counted.

Prints one line per stage: instructions per call (total / --calls), share of ROOT.
Standard library only; needs qemu-system-arm and an addr2line that reads the ELF's DWARF
(`arm-none-eabi-addr2line`; both sides are built with debug info).

usage: profile.py --elf ELF --machine lm3s6965evb|mps2-an386 --root REGEX --calls N
                  [--stage-markers] [--log PATH]
"""
import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile

MACHINES = {
    "lm3s6965evb": ["-machine", "lm3s6965evb", "-cpu", "cortex-m3"],
    "mps2-an386": ["-machine", "mps2-an386", "-cpu", "cortex-m4"],
}


def run_qemu(elf, machine, log):
    cmd = ["qemu-system-arm", *MACHINES[machine], "-icount", "shift=0", "-nographic",
           "-monitor", "none", "-serial", "none", "-semihosting-config",
           "enable=on,target=native", "-kernel", elf, "-d", "in_asm,exec,nochain", "-D", log]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    return out.stdout + out.stderr


def blocks_in(log):
    """Every guest instruction address that QEMU translated."""
    insn = re.compile(r"^0x([0-9a-f]+):\s")
    addrs = set()
    with open(log, errors="replace") as f:
        for line in f:
            m = insn.match(line)
            if m:
                addrs.add(int(m.group(1), 16))
    return addrs


def attribute(log, own_stage):
    """Instructions per stage. `own_stage(addr)` is the stage of an address whose
    inline chain contains ROOT, else None. Code outside ROOT's chain is charged to the
    stage of the innermost call site inside ROOT on a shadow call stack (pushed at each
    `bl`/`blx` that ends a block, popped when a block starts at a pushed return address),
    so callees that were not inlined count for the stage that called them."""
    blocks = {}  # host TB pointer -> (addresses, return address if it ends with a call)
    pending = None
    stack = []  # (return address, stage of the call site or None)
    on_stack = collections.Counter()
    stages = collections.Counter()
    insn = re.compile(r"^0x([0-9a-f]+):\s+((?:[0-9a-f]{4} ?)+)\s+(\S+)")
    trace = re.compile(r"^Trace \d+: (0x[0-9a-f]+) \[[0-9a-f]+/([0-9a-f]+)/")
    with open(log, errors="replace") as f:
        for line in f:
            if line.startswith("IN:"):
                pending = []
                continue
            if pending is not None:
                m = insn.match(line)
                if m:
                    size = 2 * len(m.group(2).split())
                    pending.append((int(m.group(1), 16), size, m.group(3)))
                    continue
            if not line.startswith("Trace"):
                continue
            m = trace.match(line)
            if not m:
                continue
            host = m.group(1)
            if pending:
                ins = pending
                last = ins[-1]
                ret = last[0] + last[1] if last[2] in ("bl", "blx") else None
                per = [own_stage(a) for a, _, _ in ins]
                blocks[host] = (per, ret, last[0])
                pending = None
            b = blocks.get(host)
            if b is None:
                continue
            per, ret, last_addr = b
            pc = int(m.group(2), 16)
            if on_stack[pc]:
                while stack:
                    r, _ = stack.pop()
                    on_stack[r] -= 1
                    if r == pc:
                        break
            ctx = stack[-1][1] if stack else None
            for s in per:
                s = s or ctx
                if s:
                    stages[s] += 1
            if ret is not None:
                site = per[-1] or ctx
                stack.append((ret, site))
                on_stack[ret] += 1
    return stages


def chains(elf, addrs):
    """addr -> [(function, file, line)], innermost first."""
    inp = "".join(f"0x{a:x}\n" for a in addrs)
    out = subprocess.run(["arm-none-eabi-addr2line", "-e", elf, "-f", "-i", "-C", "-a"],
                         input=inp, capture_output=True, text=True).stdout.splitlines()
    res, cur, i = {}, None, 0
    while i < len(out):
        line = out[i]
        if re.fullmatch(r"0x[0-9a-f]+", line):
            cur = int(line, 16)
            res[cur] = []
            i += 1
            continue
        func = line
        loc = out[i + 1] if i + 1 < len(out) else "??:0"
        path, _, ln = loc.rpartition(":")
        ln = re.match(r"\d+", ln)
        res[cur].append((func, path, int(ln.group(0)) if ln else 0))
        i += 2
    return res


_markers = {}


def marker(path, line):
    """The nearest `// stage: NAME` comment at or above `line` of `path`."""
    if path not in _markers:
        marks = []
        try:
            with open(path) as f:
                for n, text in enumerate(f, 1):
                    m = re.search(r"//\s*stage:\s*([\w .+/-]+?)\s*$", text)
                    if m:
                        marks.append((n, m.group(1)))
        except OSError:
            pass
        _markers[path] = marks
    name = None
    for n, s in _markers[path]:
        if n <= line:
            name = s
    return name


def short(func):
    func = re.sub(r"<.*>", "", func)
    func = re.sub(r"::h[0-9a-f]{16}$", "", func)
    return func.split("::")[-1] if "::" in func else func


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--elf", required=True)
    ap.add_argument("--machine", required=True, choices=MACHINES)
    ap.add_argument("--root", required=True, help="regex on the demangled function name")
    ap.add_argument("--calls", type=int, required=True, help="calls of ROOT in the run")
    ap.add_argument("--stage-markers", action="store_true",
                    help="split code written directly in ROOT by `// stage:` comments")
    ap.add_argument("--log", help="keep QEMU's log here")
    ap.add_argument("--reuse-log", action="store_true", help="read --log instead of running QEMU")
    ap.add_argument("--lines", metavar="STAGE",
                    help="also print STAGE's instructions per source line (innermost frame)")
    a = ap.parse_args()
    root = re.compile(a.root)
    log = a.log or tempfile.mktemp(suffix=".qemu.log")
    try:
        out = "" if a.reuse_log else run_qemu(a.elf, a.machine, log)
        ch = chains(a.elf, sorted(blocks_in(log)))
        cache = {}

        def own_stage(addr):
            if addr in cache:
                return cache[addr]
            c = ch.get(addr, [])
            idx = next((k for k, (f, _, _) in enumerate(c) if root.search(f)), None)
            name = None
            if idx == 0:
                f, path, line = c[0]
                name = (marker(path, line) if a.stage_markers else None) or short(f) + " (own code)"
            elif idx is not None:
                name = short(c[idx - 1][0])
                if a.stage_markers:
                    # the call site in ROOT names the stage when it carries a marker
                    _, rpath, rline = c[idx]
                    name = marker(rpath, rline) or name
            cache[addr] = name
            return name

        if a.lines:
            def own_stage_lines(addr, base=own_stage):
                name = base(addr)
                if name == a.lines:
                    f, path, line = ch.get(addr, [("?", "?", 0)])[0]
                    return f"{name} @ {os.path.basename(path)}:{line} {short(f)}"
                return name
            stages = attribute(log, own_stage_lines)
        else:
            stages = attribute(log, own_stage)
    finally:
        if not a.log and os.path.exists(log):
            os.remove(log)
    total = sum(stages.values())
    print(f"{a.machine} {os.path.basename(a.elf)}: root /{a.root}/ "
          f"{total / a.calls:,.0f} instructions per call ({a.calls} calls)")
    for name, n in stages.most_common():
        print(f"  {n / a.calls:>10,.0f}  {100 * n / total:5.1f} %  {name}")
    if not total:
        print(out[-2000:], file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
