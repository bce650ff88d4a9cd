#!/usr/bin/env python3
"""Writes model_data.cc for harness.cc: the .tflite and its input as C arrays, and a
RegisterModelOps() that adds exactly the model's builtin ops to TFLM's
MicroMutableOpResolver (as TFLM's reference figures were measured: only the model's ops).

usage: gen.py MODEL.tflite INPUT TFLM_DIR OUT.cc
  INPUT     a .npy (version 1/2, C order, little-endian; its data bytes are used as they are)
            or a raw file of the input tensor's bytes
  TFLM_DIR  the TFLM tree: the BuiltinOperator numbering is read from its
            tensorflow/compiler/mlir/lite/schema/schema.fbs and the Add<Op>() names from
            tensorflow/lite/micro/micro_mutable_op_resolver.h, so nothing is restated here.
Prints the op names it registers. Python standard library only (the flatbuffer is read by
hand: root table -> operator_codes -> builtin_code / deprecated_builtin_code).
"""
import re
import struct
import sys


def table_field(buf, table, index):
    """Absolute position of field `index` of the table at `table`, or None if absent."""
    vtable = table - struct.unpack_from("<i", buf, table)[0]
    vt_size = struct.unpack_from("<H", buf, vtable)[0]
    slot = 4 + 2 * index
    if slot >= vt_size:
        return None
    off = struct.unpack_from("<H", buf, vtable + slot)[0]
    return table + off if off else None


def deref(buf, pos):
    return pos + struct.unpack_from("<I", buf, pos)[0]


def op_codes(buf):
    root = deref(buf, 0)
    f = table_field(buf, root, 1)  # Model.operator_codes
    if f is None:
        return []
    vec = deref(buf, f)
    n = struct.unpack_from("<I", buf, vec)[0]
    codes = []
    for i in range(n):
        oc = deref(buf, vec + 4 + 4 * i)
        dep = table_field(buf, oc, 0)  # deprecated_builtin_code: int8
        new = table_field(buf, oc, 3)  # builtin_code: int32
        custom = table_field(buf, oc, 1)
        if custom is not None:
            sys.exit("custom op in the model: the harness registers builtin ops only")
        d = struct.unpack_from("<b", buf, dep)[0] if dep is not None else 0
        b = struct.unpack_from("<i", buf, new)[0] if new is not None else 0
        codes.append(max(d, b))
    return codes


def builtin_names(schema):
    body = re.search(r"enum BuiltinOperator\s*:\s*int32\s*\{(.*?)\}", schema, re.S).group(1)
    body = re.sub(r"//[^\n]*", "", body)
    names = {}
    for name, num in re.findall(r"([A-Z0-9_]+)\s*=\s*(-?\d+)", body):
        names[int(num)] = name
    return names


def method_for(name, methods):
    camel = "".join(p if p[0].isdigit() or len(p) == 1 else p[0] + p[1:].lower() for p in name.split("_"))
    for cand in (camel, camel.replace("v2", "V2")):
        if "Add" + cand in methods:
            return "Add" + cand
    for m in methods:  # spelled otherwise (e.g. SELECT_V2 -> AddSelectV2)
        if m.lower() == ("add" + name.replace("_", "")).lower():
            return m
    sys.exit(f"{name}: no Add<Op>() for it in MicroMutableOpResolver")


def npy_data(raw):
    if raw[:6] != b"\x93NUMPY":
        return raw
    major = raw[6]
    if major == 1:
        hlen, start = struct.unpack_from("<H", raw, 8)[0], 10
    else:
        hlen, start = struct.unpack_from("<I", raw, 8)[0], 12
    header = raw[start:start + hlen].decode("latin1")
    if "'fortran_order': True" in header or "'>" in header:
        sys.exit("input .npy must be C order and little-endian: " + header.strip())
    return raw[start + hlen:]


def c_array(name, data, align):
    lines = [f"alignas({align}) extern const unsigned char {name}[] = {{"]
    for i in range(0, len(data), 16):
        lines.append("  " + ", ".join(str(b) for b in data[i:i + 16]) + ",")
    lines.append("};")
    return "\n".join(lines)


def main():
    model_path, input_path, tflm, out = sys.argv[1:5]
    model = open(model_path, "rb").read()
    data = npy_data(open(input_path, "rb").read())
    schema = open(f"{tflm}/tensorflow/compiler/mlir/lite/schema/schema.fbs").read()
    header = open(f"{tflm}/tensorflow/lite/micro/micro_mutable_op_resolver.h").read()
    methods = set(re.findall(r"TfLiteStatus (Add[A-Za-z0-9]+)\(", header))
    names = builtin_names(schema)
    ops = []
    for c in op_codes(model):
        if c not in names:
            sys.exit(f"builtin op code {c} is not in TFLM's schema")
        if names[c] not in ops:
            ops.append(names[c])
    if len(ops) > 32:
        sys.exit("more than 32 distinct ops: raise the resolver size in harness.cc")
    src = ['#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"', ""]
    src.append(c_array("g_model", model, 16))
    src.append(c_array("g_input", data, 16))
    src.append(f"extern const unsigned int g_input_len = {len(data)};")
    src.append("int RegisterModelOps(tflite::MicroMutableOpResolver<32>& r) {")
    for name in ops:
        src.append(f"  if (r.{method_for(name, methods)}() != kTfLiteOk) return -1;")
    src.append(f"  return {len(ops)};")
    src.append("}")
    open(out, "w").write("\n".join(src) + "\n")
    print(" ".join(ops))


if __name__ == "__main__":
    main()
