#!/usr/bin/env bash
# Builds the aarch64 CPython sysroot that bench/aarch64_insns/run.sh runs LiteRT in, under
# qemu-aarch64 user-mode emulation, without installing any arm64 package on this machine:
#
#   bench/aarch64_insns/setup_sysroot.sh [SYSROOT]     (default: target/aarch64-insns/sysroot)
#
# Needs (and checks, changing nothing on the machine itself):
#   * Debian's arm64 package index: `dpkg --add-architecture arm64 && apt-get update`
#     (only makes `apt-get download PKG:arm64` possible; nothing arm64 is installed);
#   * a pip for the wheels (PIP, default `python3 -m pip`; any venv's pip will do).
# Does: `apt-get download` of python3.11 and its shared libraries for arm64 (Debian 12),
# `dpkg -x` of each into SYSROOT; `pip download` of the aarch64 wheels pinned in
# requirements.txt (manylinux, CPython 3.11), unpacked into SYSROOT/site; and one
# CPU profile per emulated CPU, SYSROOT/cpu/NAME (see below).
#
# Why CPU profiles: qemu-user 7.2 shows the guest this machine's own (x86_64)
# /proc/cpuinfo and /sys/devices/system/cpu, and LiteRT's CPU detection (cpuinfo, used by
# XNNPACK and ruy) crashes on them (SIGSEGV while reading the cache topology). qemu's `-L
# PREFIX` serves a guest path from PREFIX when the file exists there, so each profile
# holds an aarch64 /proc/cpuinfo (one core: the implementer, part and feature list of that
# CPU, as Linux prints them) and a one-core /sys/devices/system/cpu, and links lib, usr
# and etc to the sysroot. The instruction-set features a program sees come from the ELF
# auxiliary vector (HWCAP), which qemu sets from `-cpu`, not from these files.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
sys=${1:-$root/target/aarch64-insns/sysroot}
pip=${PIP:-python3 -m pip}

if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    echo "error: Debian's arm64 package index is not set up; run (as root):" >&2
    echo "    dpkg --add-architecture arm64 && apt-get update" >&2
    exit 1
fi
command -v dpkg-deb >/dev/null || { echo "error: dpkg-deb not found" >&2; exit 1; }

# python3.11's own dependencies (apt-cache depends python3.11-minimal:arm64
# libpython3.11-stdlib:arm64), plus libstdc++/libgcc_s for LiteRT's extension modules.
pkgs="python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libc6 libgcc-s1 libstdc++6
zlib1g libexpat1 libffi8 libssl3 libbz2-1.0 liblzma5 libcrypt1 libuuid1 libsqlite3-0
libncursesw6 libtinfo6 libreadline8 libnsl2 libtirpc3 libdb5.3"
mkdir -p "$sys/debs" "$sys/wheels" "$sys/site"
echo "== downloading the arm64 packages into $sys/debs"
(cd "$sys/debs" && apt-get download $(for p in $pkgs; do echo "$p:arm64"; done))
for d in "$sys"/debs/*.deb; do dpkg-deb -x "$d" "$sys"; done
echo "== downloading the aarch64 wheels (requirements.txt) into $sys/wheels"
$pip download --dest "$sys/wheels" --only-binary=:all: --no-deps --python-version 3.11 \
    --platform manylinux2014_aarch64 --platform manylinux_2_27_aarch64 \
    --platform manylinux_2_28_aarch64 -r "$here/requirements.txt"
for w in "$sys"/wheels/*.whl; do
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$w" "$sys/site"
done

# profile NAME VARIANT PART REVISION FEATURES
profile() {
    local p="$sys/cpu/$1"
    rm -rf "$p"
    mkdir -p "$p/proc" "$p/sys/devices/system/cpu/cpu0/topology"
    for d in lib usr etc; do ln -s "../../$d" "$p/$d"; done
    printf 'processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: %s\nCPU part\t: %s\nCPU revision\t: %s\n\n' \
        "$5" "$2" "$3" "$4" >"$p/proc/cpuinfo"
    local c="$p/sys/devices/system/cpu"
    for f in possible present kernel_max cpu0/topology/physical_package_id \
        cpu0/topology/cluster_cpus_list cpu0/topology/core_siblings_list \
        cpu0/topology/thread_siblings_list; do
        echo 0 >"$c/$f"
    done
}
# Arm's part numbers: Cortex-A72 0xd08 (Raspberry Pi 4), Cortex-A76 0xd0b (Raspberry Pi 5).
profile cortex-a72 0x0 0xd08 3 "fp asimd evtstrm crc32 cpuid"
profile cortex-a76 0x4 0xd0b 1 "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"
echo "== sysroot ready: $sys (profiles: $(ls "$sys/cpu" | tr '\n' ' '))"
