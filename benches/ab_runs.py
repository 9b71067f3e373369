#!/usr/bin/env python3
"""Alternated A/B runs of `roster_import` bench binaries, for a machine whose speed drifts.

On a shared machine the ratio to `sqlite3 .import` swings by +-20 % between runs of the same
binary. The bench itself alternates the two imports (ROUNDS, 5 by default) and prints medians;
comparing two builds takes their binaries run in turn, many times, and the medians of those.

    cargo bench --bench roster_import --no-run        # once per build; copy each binary aside
    python3 benches/ab_runs.py run 20 runs.txt BIN_A BIN_B   # 20 rounds, order rotated each round
    python3 benches/ab_runs.py summary runs.txt

`run` appends one line per run (a Python dict of the figures the bench printed) to the file.
"""
import ast
import re
import statistics
import subprocess
import sys

# Each figure is the first match of its patterns, tried in order: the bench's summary lines
# (medians of its rounds), then the single-run lines of builds before the rounds.
FIGURES = {
    "t": [r"sheping roster import: ([\d.]+) s"],
    "sq": [r"sqlite3 \.import: +([\d.]+) s"],
    "ratio": [r"throughput: ([\d.]+)"],
    "wr": [r"medians: sheping [\d.]+ s \(the writing thread ([\d.]+) s",
           r"writing thread ([\d.]+) s"],
    "sqcpu": [r"medians: .*\), sqlite3 ([\d.]+) s", r"\), sqlite3 ([\d.]+) s"],
    "hwm": [r"VmHWM\): ([\d.]+)"],
}


def figure(text, patterns):
    for pattern in patterns:
        m = re.search(pattern, text)
        if m:
            return m.group(1)
    return None


def run(rounds, out, bins):
    with open(out, "a") as f:
        for i in range(rounds):
            for b in bins[i % len(bins):] + bins[: i % len(bins)]:
                text = subprocess.run([b], capture_output=True, text=True).stdout
                rec = {"bin": b}
                for key, patterns in FIGURES.items():
                    rec[key] = figure(text, patterns)
                f.write(repr(rec) + "\n")
                f.flush()


def summary(files):
    recs = [ast.literal_eval(line) for name in files for line in open(name)]
    for b in sorted({r["bin"] for r in recs}):
        rs = [r for r in recs if r["bin"] == b]

        def col(k):
            return sorted(float(r[k]) for r in rs if r[k])

        ratio = col("ratio")
        print(
            f"{b}: {len(rs)} runs; ratio median {statistics.median(ratio):.3f} "
            f"({ratio[0]}-{ratio[-1]}), {sum(x >= 1.0 for x in ratio)} at 1.0 or above; "
            f"import median {statistics.median(col('t')):.3f} s; "
            f"writing thread CPU median {statistics.median(col('wr')):.2f} s; "
            f"sqlite3 CPU median {statistics.median(col('sqcpu')):.2f} s; "
            f"peak memory {col('hwm')[0]}-{col('hwm')[-1]} MiB"
        )


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "run":
        run(int(sys.argv[2]), sys.argv[3], sys.argv[4:])
    elif len(sys.argv) >= 3 and sys.argv[1] == "summary":
        summary(sys.argv[2:])
    else:
        sys.exit(__doc__)
