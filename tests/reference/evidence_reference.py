#!/usr/bin/env python3
"""Independent reference values for sheping's corroborating-evidence statistics
(docs/scoring.md "Corroborating evidence"): Spearman's rho and p per kind with
scipy.stats.spearmanr, the thirds by percentile rank with scipy.stats.rankdata, and the
evidence_mismatch flag. Writes tests/reference/evidence_reference.json; the Rust test in
src/domain/evidence.rs compares with tolerance 1e-12. CI has no scipy and only reads the JSON.

Usage: pip install numpy scipy; python3 tests/reference/evidence_reference.py
"""

import json
import random
from fractions import Fraction
from pathlib import Path

from scipy import stats

HERE = Path(__file__).resolve().parent
KINDS = ["complaint", "petition", "discipline"]
MIN_UNITS = 5


def make_case(rng, n, with_volume, missing_points, ties):
    units = []
    for i in range(n):
        pts = None if i in missing_points else round(rng.uniform(70, 100), 2)
        if ties and pts is not None and i % 4 == 1:
            pts = 88.5  # tied points
        ev = {}
        if rng.random() < 0.9:
            ev["complaint"] = rng.randint(0, 6) if ties else rng.randint(0, 60)
        if rng.random() < 0.7:
            ev["petition"] = rng.randint(0, 4)
        if rng.random() < 0.5:
            ev["discipline"] = rng.randint(0, 2)
        if with_volume == "all" and ev:
            ev["volume"] = rng.randint(200, 5000)
        elif with_volume == "some" and ev and rng.random() < 0.6:
            ev["volume"] = rng.randint(200, 5000)
        units.append({"points": pts, "evidence": ev})
    return units


def third(r, n):
    pr = Fraction(r - 1) / (n - 1)
    if pr >= Fraction(2, 3):
        return "top"
    if pr <= Fraction(1, 3):
        return "bottom"
    return None


def analyse(units):
    checks = []
    mismatch = [False] * len(units)
    for kind in KINDS:
        members = [(i, u["points"], u["evidence"][kind], u["evidence"].get("volume"))
                   for i, u in enumerate(units)
                   if u["points"] is not None and kind in u["evidence"]]
        if len(members) < MIN_UNITS:
            continue
        by_rate = all(m[3] is not None and m[3] > 0 for m in members)
        values = [m[2] * 1000.0 / m[3] if by_rate else float(m[2]) for m in members]
        pts = [m[1] for m in members]
        res = stats.spearmanr(values, pts)
        rho, p = float(res.statistic), float(res.pvalue)
        ok = rho == rho  # NaN when a variable is constant
        checks.append({"kind": kind, "n": len(members), "basis": "rate" if by_rate else "count",
                       "spearman_rho": rho if ok else None, "p": p if ok else None})
        if kind == "complaint":
            n = len(members)
            rp = stats.rankdata(pts, method="average")
            rv = stats.rankdata(values, method="average")
            for m, a, b in zip(members, rp, rv):
                # average ranks are halves: Fraction of a float is exact
                ta, tb = third(Fraction(float(a)), n), third(Fraction(float(b)), n)
                if ta is not None and ta == tb:
                    mismatch[m[0]] = True
    return checks, mismatch


rng = random.Random(20221)
cases = []
for n, vol, missing, ties in [
    (17, "all", {3}, False),      # rates
    (12, "some", set(), False),   # counts (not every unit has a volume)
    (20, "none", {0, 7}, True),   # many ties on both sides
    (6, "all", set(), True),
    (4, "all", set(), False),     # too few units: no check
]:
    units = make_case(rng, n, vol, missing, ties)
    checks, mismatch = analyse(units)
    cases.append({"units": units, "checks": checks, "mismatch": mismatch})

(HERE / "evidence_reference.json").write_text(
    json.dumps({"cases": cases}, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
print("wrote", HERE / "evidence_reference.json")
