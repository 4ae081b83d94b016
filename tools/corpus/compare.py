#!/usr/bin/env python3
"""Compare two builds of `outdial cpa` clip by clip on a labelled corpus.

    python3 tools/corpus/compare.py corpus-out/test.csv OLD/outdial NEW/outdial

Runs `outdial cpa --json` of both binaries over every clip of LABELS.csv and
prints each clip whose result or verdict time changed (expected class, old
result@ms -> new result@ms, beep times), then the error counts and the humans
classed as machine of both. Use it before merging a change to the analyser:
`--eval` gives the totals, this gives the clips behind them.
"""
import csv
import json
import os
import subprocess
import sys


def run(binary, files):
    out = subprocess.run(
        [binary, "cpa", "--json"] + files, capture_output=True, text=True, check=True
    ).stdout
    results = {}
    for line in out.splitlines():
        obj = json.loads(line)
        results[obj["file"]] = obj
    return results


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    labels, old_bin, new_bin = sys.argv[1:4]
    base = os.path.dirname(labels)
    with open(labels, newline="") as f:
        rows = list(csv.reader(f))[1:]
    files = [os.path.join(base, r[0]) for r in rows]
    old, new = run(old_bin, files), run(new_bin, files)
    errors_old = errors_new = humans = hm_old = hm_new = 0
    for row, path in zip(rows, files):
        expected = row[1]
        a, b = old[path], new[path]
        errors_old += a["result"] != expected
        errors_new += b["result"] != expected
        if expected == "human":
            humans += 1
            hm_old += a["result"] == "machine"
            hm_new += b["result"] == "machine"
        if a["result"] != b["result"] or a["decided_at_ms"] != b["decided_at_ms"]:
            print(
                f"  {row[0]:44s} {expected:9s} {a['result']}@{a['decided_at_ms']} -> "
                f"{b['result']}@{b['decided_at_ms']}  beep {a['beep_at_ms']} -> {b['beep_at_ms']}"
            )
    print(
        f"{labels}: errors {errors_old} -> {errors_new}; "
        f"humans as machine {hm_old} -> {hm_new} of {humans}"
    )


if __name__ == "__main__":
    main()
