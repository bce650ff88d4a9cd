#!/usr/bin/env python3
"""Panic reachability in a firmware ELF (issue 19): lists every call into a panic entry
point (core::panicking::*, slice index failures, unwrap/expect failures) and the function it
sits in, after LTO and inlining, from `llvm-objdump -d -C`.

Usage (the firmware builds with panic = "abort"; see BENCHMARKS.md for the case list):
    python3 firmware/panic_paths.py firmware/target/thumbv7em-none-eabihf/release/edgeflow-fw-mps2-an386
Needs only Python 3 and llvm-objdump.
"""
import re, subprocess, sys, collections
elf = sys.argv[1]
out = subprocess.run(["llvm-objdump", "-d", "-C", "--no-show-raw-insn", elf], capture_output=True, text=True).stdout
func = None
callers = collections.Counter()
panic_fns = set()
for line in out.splitlines():
    m = re.match(r'^[0-9a-f]+ <(.*)>:$', line)
    if m:
        func = m.group(1) if not m.group(1).startswith("$") else func; continue
    m = re.search(r'\s(bl|b\.w|b|blx)\s+0x[0-9a-f]+ <([^>+]*)', line)
    if m and func:
        tgt = m.group(2)
        if re.search(r'panic|slice_.*fail|slice_index|str_index|unwrap_failed|expect_failed|assert_failed', tgt) and not re.search(r'panic|slice_.*fail|slice_index|unwrap_failed|expect_failed|assert_failed', func):
            callers[func] += 1; panic_fns.add(tgt)
print("panic entry points called:", sorted(panic_fns))
print("functions with a panic call site:", len(callers), "call sites:", sum(callers.values()))
for f, n in callers.most_common():
    print(f"{n:4d}  {f[:150]}")
