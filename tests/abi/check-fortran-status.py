#!/usr/bin/env python3
"""Every status of the C ABI is a Fortran constant of the same name and value.

Usage: check-fortran-status.py include/dragon/status.h bindings/fortran/dragon.f90

Reads the enumerators of `enum dragon_status` in status.h (with C's rules: a value, or the
previous one plus 1) and the DRAGON_TIMEOUT_* macros, and the named constants of the
module, and fails naming each constant that is missing, has another value, or is not an
integer(c_int) (integer(c_int64_t) for the timeouts). Names ending in '_' are not statuses
(DRAGON_STATUS_COUNT_) and are skipped.
"""
import os
import re
import sys


def c_statuses(header):
    text = re.sub(r"/\*.*?\*/", " ", header, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    body = re.search(r"enum\s+dragon_status\s*\{(.*?)\}", text, flags=re.S)
    if body is None:
        sys.exit("FAIL: no 'enum dragon_status { ... }' in status.h")
    statuses = {}
    value = -1
    for item in body.group(1).split(","):
        item = item.strip()
        if not item:
            continue
        m = re.fullmatch(r"(DRAGON_\w+)\s*(?:=\s*(-?\d+|0x[0-9a-fA-F]+))?", item)
        if m is None:
            sys.exit(f"FAIL: cannot read the enumerator '{item}' of status.h")
        value = int(m.group(2), 0) if m.group(2) is not None else value + 1
        if not m.group(1).endswith("_"):
            statuses[m.group(1)] = value
    return statuses


def c_timeouts(header):
    return {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"#define\s+(DRAGON_TIMEOUT_\w+)\s+\(\(dragon_timeout_t\)\s*(-?\d+)\)",
                             header)
    }


def fortran_constants(source):
    constants = {}
    pattern = re.compile(
        r"^\s*integer\s*\(\s*(?:kind\s*=\s*)?(\w+)\s*\)\s*,\s*parameter\s*(?:,\s*public\s*)?::"
        r"\s*(\w+)\s*=\s*(-?\d+)(?:_(\w+))?\s*(?:!.*)?$",
        flags=re.I | re.M)
    for m in pattern.finditer(source):
        constants[m.group(2).upper()] = (m.group(1).lower(), int(m.group(3)))
    return constants


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        header = f.read()
    with open(sys.argv[2], encoding="utf-8") as f:
        module = f.read()
    wanted = [(name, value, "c_int") for name, value in c_statuses(header).items()]
    wanted += [(name, value, "c_int64_t") for name, value in c_timeouts(header).items()]
    if len(wanted) < 20:
        sys.exit(f"FAIL: read only {len(wanted)} constants from status.h")
    have = fortran_constants(module)
    problems = []
    for name, value, kind in wanted:
        if name not in have:
            problems.append(f"{name} (= {value}) is missing")
        elif have[name][1] != value:
            problems.append(f"{name} is {have[name][1]} in Fortran, {value} in C")
        elif have[name][0] != kind:
            problems.append(f"{name} is integer({have[name][0]}), not integer({kind})")
    for p in problems:
        print(f"FAIL: {os.path.normpath(sys.argv[2])}: {p}")
    if problems:
        return 1
    print(f"ok: {len(wanted)} constants of status.h in the Fortran module, same names and values")
    return 0


if __name__ == "__main__":
    sys.exit(main())
