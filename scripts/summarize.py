#!/usr/bin/python3
"""Sum the results of every suite scripts/test ran and print the closing line.

Reads meson's testlog.json (one JSON object per test), pytest's JUnit XML and
scripts/fuzz's results (fuzzing.json, one JSON object per harness run; absent
when the fuzzing step was switched off). Exit status is 1 if anything failed or
if no test ran at all."""
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

def meson_counts(path, required=True):
    p = f = s = 0
    if not path.exists():
        # the unit suites did not run: that is a failure
        return (0, 1, 0) if required else (0, 0, 0)
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        res = json.loads(line).get("result")
        if res in ("OK", "EXPECTEDFAIL"):
            p += 1
        elif res == "SKIP":
            s += 1
        else:
            f += 1
    return p, f, s

def junit_counts(path):
    if not path.exists():
        return 0, 1, 0
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    p = f = s = 0
    for ts in suites:
        total = int(ts.get("tests", 0))
        fail = int(ts.get("failures", 0)) + int(ts.get("errors", 0))
        skip = int(ts.get("skipped", 0))
        p += total - fail - skip
        f += fail
        s += skip
    return p, f, s

def main():
    d = Path(sys.argv[1])
    totals = [0, 0, 0]
    for name, counts in (("unit+fuzz", meson_counts(d / "meson.json")),
                         ("functional", junit_counts(d / "functional.xml")),
                         ("fuzzing", meson_counts(d / "fuzzing.json",
                                                  required=False))):
        print(f"{name}: {counts[0]} passed, {counts[1]} failed, {counts[2]} skipped")
        totals = [a + b for a, b in zip(totals, counts)]
    p, f, s = totals
    print(f"{p} passed, {f} failed, {s} skipped")
    sys.exit(1 if f or p == 0 else 0)

main()
