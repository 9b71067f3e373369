#!/usr/bin/env python3
"""Independent reference values for sheping's round comparison (docs/scoring.md "Comparison
with another round"): Welch's t test with scipy.stats.ttest_ind(equal_var=False) on the
respondents' scores and satisfied shares, and Holm's step-down adjustment written here from
its definition. Writes tests/reference/compare_reference.json; the Rust test in
src/domain/compare.rs compares with tolerance 1e-10. CI has no scipy and only reads the JSON.

Usage: pip install numpy scipy; python3 tests/reference/compare_reference.py
"""

import json
import math
import random
from pathlib import Path

from scipy import stats

HERE = Path(__file__).resolve().parent
SCORES = [100.0, 80.0, 60.0, 0.0]   # the default survey's level scores
WEIGHTS = [0.2] * 5
SATISFIED = [True, True, False, False]


def respondent(rng, quality):
    answers = [0 if rng.random() < quality * 0.7 else 1 if rng.random() < quality else
               2 if rng.random() < 0.9 else 3 for _ in WEIGHTS]
    score = sum(w * SCORES[a] for w, a in zip(WEIGHTS, answers))
    share = sum(SATISFIED[a] for a in answers) / len(answers)
    return score, share


def welch(a, b):
    if len(a) < 2 or len(b) < 2:
        return None
    r = stats.ttest_ind(a, b, equal_var=False)
    t, p = float(r.statistic), float(r.pvalue)
    if not math.isfinite(t):
        return None
    va, vb = stats.tvar(a), stats.tvar(b)
    qa, qb = va / len(a), vb / len(b)
    df = (qa + qb) ** 2 / (qa * qa / (len(a) - 1) + qb * qb / (len(b) - 1))
    return {"t": t, "df": df, "p": p}


def holm(ps):
    m = len(ps)
    order = sorted(range(m), key=lambda i: ps[i])
    out = [0.0] * m
    running = 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * ps[i]))
        out[i] = running
    return out


rng = random.Random(2021)
units = []
for u in range(9):
    qa, qb = rng.uniform(0.5, 0.95), rng.uniform(0.5, 0.95)
    na, nb = rng.randint(15, 45), rng.randint(15, 45)
    if u == 3:
        qa = qb = 0.9
        qb = qa + 0.05
    a = [respondent(rng, qa) for _ in range(na)]
    b = [respondent(rng, qb) for _ in range(nb)]
    if u == 5:
        b = b[:1]  # one respondent: no test
    if u == 7:
        a = [(100.0, 1.0)] * 10  # identical answers on both sides: no test
        b = [(100.0, 1.0)] * 12
    units.append({"a_scores": [x[0] for x in a], "a_shares": [x[1] for x in a],
                  "b_scores": [x[0] for x in b], "b_shares": [x[1] for x in b]})

results = []
for u in units:
    results.append({"welch": welch(u["a_scores"], u["b_scores"]),
                    "welch_rate": welch(u["a_shares"], u["b_shares"])})
tested = [i for i, r in enumerate(results) if r["welch"] is not None]
adjusted = holm([results[i]["welch"]["p"] for i in tested])
for r in results:
    r["p_holm"] = None
    r["significant"] = False
for i, p in zip(tested, adjusted):
    results[i]["p_holm"] = p
    results[i]["significant"] = p < 0.05

(HERE / "compare_reference.json").write_text(
    json.dumps({"units": units, "results": results}, indent=1) + "\n", encoding="utf-8")
print("wrote", HERE / "compare_reference.json")
