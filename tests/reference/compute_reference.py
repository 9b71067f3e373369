#!/usr/bin/env python3
"""Independent reference values for sheping's scoring (docs/scoring.md).

Reads tests/reference/fixture.json and surveys/default.toml, computes every number of the
round's results with numpy/scipy (and by formula where scipy has no function), and writes
tests/reference/scoring_reference.json in the same shape as sheping's RoundResults JSON.
The Rust test (src/domain/scoring.rs) compares the two with tolerance 1e-9; CI has no scipy
and only reads the JSON. Never generate the JSON from sheping's own output.

The bootstrap (rank_ci95, p_bottom) is recomputed here too, from a from-scratch ChaCha8 and
the documented resampling order, so the Rust stream is checked against the written rule.

Usage: pip install numpy scipy; python3 tests/reference/compute_reference.py
"""

import json
import math
import tomllib
from pathlib import Path

import numpy as np
from scipy import stats

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
Z95 = 1.959963984540054


def none_if_nan(x):
    return None if x is None or not np.isfinite(x) else float(x)


# ---------------------------------------------------------------- inputs

fixture = json.loads((HERE / "fixture.json").read_text(encoding="utf-8"))
survey = tomllib.loads((ROOT / fixture["survey"]).read_text(encoding="utf-8"))
levels = survey["levels"]
dims = survey["dimensions"]
K = len(dims)
LEVEL_SCORE = [float(l["score"]) for l in levels]
WEIGHT = [float(d["weight"]) for d in dims]
SATISFIED = [l["key"] in survey["scoring"]["satisfied_levels"] for l in levels]
MAX = LEVEL_SCORE[0]
PHONE_POINTS = float(survey["scoring"]["phone_points"])
ONSITE_POINTS = float(survey["scoring"]["onsite_points"])
MIN_COMPLETES = survey["scoring"]["min_completes"]
opts = fixture["options"]
units = fixture["units"]
ivs = fixture["interviews"]


def weighted(answers):
    return float(np.dot(WEIGHT, [LEVEL_SCORE[a] for a in answers]))


def t_ci(mean, sd, n):
    if n < 2 or sd is None:
        return None
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return [mean - half, mean + half]


def mean_sd_ci(xs):
    xs = np.asarray(xs, dtype=float)
    n = len(xs)
    if n == 0:
        return None, None, None
    m = float(np.mean(xs))
    sd = float(np.std(xs, ddof=1)) if n >= 2 else None
    return m, sd, t_ci(m, sd, n)


def wilson(s, n):
    if n == 0:
        return None
    p = s / n
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return [max(0.0, centre - half), min(1.0, centre + half)]


def clustered_share_interval(shares, k):
    """Korn-Graubard style: Wilson on the effective sample size, t quantile for z."""
    n = len(shares)
    if n < 2:
        return None
    q = float(np.mean(shares))
    var_mean = float(np.var(shares, ddof=1)) / n
    cap = n * k
    n_eff = min(q * (1 - q) / var_mean, cap) if var_mean > 0 and 0 < q < 1 else cap
    t = float(stats.t.ppf(0.975, n - 1))
    centre = (q + t * t / (2 * n_eff)) / (1 + t * t / n_eff)
    half = t / (1 + t * t / n_eff) * math.sqrt(q * (1 - q) / n_eff + t * t / (4 * n_eff * n_eff))
    lo = 0.0 if q == 0 else max(0.0, centre - half)
    hi = 1.0 if q == 1 else min(1.0, centre + half)
    return [lo, hi]


def alpha(rows):
    x = np.asarray(rows, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        return None
    k = x.shape[1]
    total_var = np.var(x.sum(axis=1), ddof=1)
    if total_var == 0:
        return None
    return float(k / (k - 1) * (1 - np.var(x, axis=0, ddof=1).sum() / total_var))


def round2_key(x):
    """round(x·100) halves away from zero, as an integer number of hundredths (x ≥ 0)."""
    y = x * 100.0
    f = math.floor(y)
    return int(f + (1 if y - f >= 0.5 else 0))


# ---------------------------------------------------------------- per unit

r_all = [weighted(iv["answers"]) for iv in ivs]
results_units = []
unit_r, unit_ballots = [], []
for ui, u in enumerate(units):
    mine = [i for i, iv in enumerate(ivs) if iv["unit"] == ui]
    r = [r_all[i] for i in mine]
    unit_r.append(r)
    n = len(mine)
    m, sd, ci = mean_sd_ci(r)
    shares = [sum(SATISFIED[a] for a in ivs[i]["answers"]) / K for i in mine]
    sm, _, _ = mean_sd_ci(shares)
    sci = clustered_share_interval(shares, K)
    items = [[LEVEL_SCORE[a] for a in ivs[i]["answers"]] for i in mine]
    dim_out = []
    for d, dim in enumerate(dims):
        col = [ivs[i]["answers"][d] for i in mine]
        sat = sum(SATISFIED[a] for a in col)
        dm, _, dci = mean_sd_ci([LEVEL_SCORE[a] for a in col])
        dim_out.append({
            "key": dim["key"],
            "label": dim["label"],
            "mean": dm,
            "ci95": dci,
            "satisfaction_rate": sat / n if n else None,
            "satisfaction_rate_ci95": wilson(sat, n),
            "counts": {lv["key"]: col.count(j) for j, lv in enumerate(levels)},
        })
    phone = {
        "completes": n, "mean": m, "sd": sd, "ci95": ci,
        "satisfaction_rate": sm, "satisfaction_rate_ci95": sci,
        "cronbach_alpha": alpha(items) if n else None,
        "points": m / MAX * PHONE_POINTS if m is not None else None,
        "dimensions": dim_out,
    }

    on = u.get("onsite", "none")
    ballots = []
    if on == "none":
        onsite = None
    elif "direct" in on:
        x = float(on["direct"])
        onsite = {"kind": "direct", "ballots": 0, "mean": x, "sd": None, "ci95": None,
                  "points": x / MAX * ONSITE_POINTS}
    else:
        for b in on["ballots"]:
            ballots.append(weighted(b["dimensions"]) if "dimensions" in b else LEVEL_SCORE[b["overall"]])
        if ballots:
            bm, bsd, bci = mean_sd_ci(ballots)
            onsite = {"kind": "ballots", "ballots": len(ballots), "mean": bm, "sd": bsd, "ci95": bci,
                      "points": bm / MAX * ONSITE_POINTS}
        else:
            onsite = None
    unit_ballots.append(ballots)

    points = phone["points"] + onsite["points"] if phone["points"] is not None and onsite else None
    ci95 = None
    if points is not None and sd is not None:
        se_o = 0.0 if onsite["kind"] == "direct" else (
            onsite["sd"] / math.sqrt(onsite["ballots"]) if onsite["sd"] is not None else None)
        if se_o is not None:
            a, b = PHONE_POINTS / MAX, ONSITE_POINTS / MAX
            half = Z95 * math.sqrt(a * a * (sd / math.sqrt(n)) ** 2 + b * b * se_o ** 2)
            ci95 = [points - half, points + half]
    flags = []
    if n < MIN_COMPLETES:
        flags.append("few_completes")
    if onsite is None:
        flags.append("onsite_missing")
    if u.get("rr1") is not None and u["rr1"] < 0.6:
        flags.append("low_response")
    results_units.append({
        "name": u["name"], "phone": phone, "onsite": onsite,
        "social": {"points": points, "max_points": PHONE_POINTS + ONSITE_POINTS, "ci95": ci95,
                   "rank": None, "rank_ci95": None, "p_bottom": None},
        "flags": flags,
    })

# ---------------------------------------------------------------- ranking

by_social = any(x["onsite"] is not None for x in results_units)
basis = "social" if by_social else "phone"
vals = [x["social"]["points"] if by_social else x["phone"]["points"] for x in results_units]
keys = [round2_key(v) if v is not None else None for v in vals]
present = [k for k in keys if k is not None]
for x, k in zip(results_units, keys):
    if k is not None:
        x["social"]["rank"] = 1 + sum(1 for o in present if o > k)

# ---------------------------------------------------------------- bootstrap

M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF


def splitmix64_key(seed):
    state, out = seed, b""
    for _ in range(4):
        state = (state + 0x9E3779B97F4A7C15) & M64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        out += (z ^ (z >> 31)).to_bytes(8, "little")
    return out


def rotl(v, c):
    return ((v << c) & M32) | (v >> (32 - c))


def chacha8_block(key_words, counter, nonce):
    s = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574, *key_words,
         counter & M32, counter >> 32, nonce & M32, nonce >> 32]
    x = list(s)

    def qr(a, b, c, d):
        x[a] = (x[a] + x[b]) & M32; x[d] = rotl(x[d] ^ x[a], 16)
        x[c] = (x[c] + x[d]) & M32; x[b] = rotl(x[b] ^ x[c], 12)
        x[a] = (x[a] + x[b]) & M32; x[d] = rotl(x[d] ^ x[a], 8)
        x[c] = (x[c] + x[d]) & M32; x[b] = rotl(x[b] ^ x[c], 7)

    for _ in range(4):  # 8 rounds = 4 double rounds
        qr(0, 4, 8, 12); qr(1, 5, 9, 13); qr(2, 6, 10, 14); qr(3, 7, 11, 15)
        qr(0, 5, 10, 15); qr(1, 6, 11, 12); qr(2, 7, 8, 13); qr(3, 4, 9, 14)
    return [(a + b) & M32 for a, b in zip(x, s)]


class Stream:
    def __init__(self, seed, nonce):
        key = splitmix64_key(seed)
        self.key_words = [int.from_bytes(key[i:i + 4], "little") for i in range(0, 32, 4)]
        self.nonce, self.counter, self.buf = nonce, 0, []

    def word(self):
        if not self.buf:
            self.buf = chacha8_block(self.key_words, self.counter, self.nonce)
            self.counter += 1
        return self.buf.pop(0)

    def u64(self):
        lo = self.word()
        return lo | (self.word() << 32)

    def below(self, n):
        m = self.u64() * n
        if (m & M64) < n:
            t = (-n) % (1 << 64) % n
            while (m & M64) < t:
                m = self.u64() * n
        return m >> 64


B, SEED, BOTTOM_K = opts["bootstrap_replicates"], opts["bootstrap_seed"], opts["bottom_k"]
rankable = [i for i, k in enumerate(keys) if k is not None]


def resample(rng, xs):
    n = len(xs)
    s = 0.0
    for _ in range(n):
        s += xs[rng.below(n)]
    return s / n


boot_ranks = {u: [] for u in rankable}
bottom = {u: 0 for u in rankable}
for b in range(B):
    rng = Stream(SEED, b)
    rk = {}
    for u in rankable:
        value = resample(rng, unit_r[u]) / MAX * PHONE_POINTS
        on = units[u].get("onsite", "none")
        if by_social and on != "none":
            if "direct" in on:
                value = value + float(on["direct"]) / MAX * ONSITE_POINTS
            else:
                value = value + resample(rng, unit_ballots[u]) / MAX * ONSITE_POINTS
        rk[u] = round2_key(value)
    for u in rankable:
        boot_ranks[u].append(1 + sum(1 for v in rk.values() if v > rk[u]))
        if sum(1 for v in rk.values() if v < rk[u]) < BOTTOM_K:
            bottom[u] += 1
for u in rankable:
    srt = sorted(boot_ranks[u])
    lo = srt[max(1, -(-B * 25 // 1000)) - 1]
    hi = srt[max(1, -(-B * 975 // 1000)) - 1]
    results_units[u]["social"]["rank_ci95"] = [lo, hi]
    results_units[u]["social"]["p_bottom"] = bottom[u] / B

# ---------------------------------------------------------------- quality

N = len(ivs)
ops = sorted({iv["operator"] for iv in ivs})
unit_mean = [float(np.mean(r)) if r else None for r in unit_r]
centred = [r_all[i] - unit_mean[iv["unit"]] for i, iv in enumerate(ivs)]
groups = [[centred[i] for i, iv in enumerate(ivs) if iv["operator"] == op] for op in ops]

J = len(groups)
f_res = stats.f_oneway(*groups)
grand = np.mean(centred)
ssb = sum(len(g) * (np.mean(g) - grand) ** 2 for g in groups)
ssw = sum(((np.asarray(g) - np.mean(g)) ** 2).sum() for g in groups)
msb, msw = ssb / (J - 1), ssw / (N - J)
m0 = (N - sum(len(g) ** 2 for g in groups) / N) / (J - 1)
rho = (msb - msw) / (msb + (m0 - 1) * msw)
anova = {
    "groups": J, "n": N, "df1": J - 1, "df2": N - J,
    "ss_between": float(ssb), "ss_within": float(ssw),
    "ms_between": float(msb), "ms_within": float(msw),
    "f": float(f_res.statistic), "p": float(f_res.pvalue),
    "rho_int": float(rho), "deff": float(1 + max(rho, 0) * (N / J - 1)),
}

chi2 = []
for d, dim in enumerate(dims):
    table = np.array([[sum(1 for iv in ivs if iv["operator"] == op and iv["answers"][d] == j)
                       for j in range(len(levels))] for op in ops])
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    if table.shape[0] < 2 or table.shape[1] < 2:
        chi2.append({"dimension": dim["key"], "statistic": None, "df": None, "p": None,
                     "low_expected": None})
        continue
    stat, p, dof, expected = stats.chi2_contingency(table, correction=False)
    chi2.append({"dimension": dim["key"], "statistic": float(stat), "df": int(dof), "p": float(p),
                 "low_expected": int((expected < 5).sum())})

straight = [len(set(iv["answers"])) == 1 for iv in ivs]
share = sum(straight) / N
operators = []
for op, g in zip(ops, groups):
    rest = [centred[i] for i, iv in enumerate(ivs) if iv["operator"] != op]
    w = stats.ttest_ind(g, rest, equal_var=False)
    ok = len(g) >= 2 and len(rest) >= 2 and np.isfinite(w.statistic)
    x = sum(1 for i, iv in enumerate(ivs) if iv["operator"] == op and straight[i])
    lp = float(stats.binomtest(x, len(g), share, alternative="greater").pvalue) if share > 0 else None
    operators.append({
        "operator": op, "completes": len(g), "mean_centred": float(np.mean(g)),
        "welch_t": float(w.statistic) if ok else None, "welch_df": float(w.df) if ok else None,
        "p": float(w.pvalue) if ok else None, "p_holm": None, "flagged": False,
        "straight_lines": x, "straight_line_p": lp,
        "straight_line_flagged": lp is not None and lp < 0.01,
    })
tested = [o for o in operators if o["p"] is not None]
running = 0.0
for rank, o in enumerate(sorted(tested, key=lambda o: o["p"])):
    running = max(running, min(1.0, (len(tested) - rank) * o["p"]))
    o["p_holm"] = running
    o["flagged"] = running < 0.05

line_ops = {o["operator"] for o in operators if o["straight_line_flagged"]}
suspicious = []
for i, iv in enumerate(ivs):
    offs = iv.get("answer_offsets_secs")
    gap = float(np.median(np.diff(np.sort(offs)))) if offs and len(offs) >= 2 else None
    reasons = []
    if iv.get("duration_secs") is not None and iv["duration_secs"] < opts["min_duration_secs"]:
        reasons.append("too_short")
    if gap is not None and gap < opts["min_median_gap_secs"]:
        reasons.append("too_fast")
    if straight[i] and iv["operator"] in line_ops:
        reasons.append("straight_lining")
    if reasons:
        suspicious.append({"id": iv["id"], "unit": units[iv["unit"]]["name"],
                           "operator": iv["operator"], "at": iv["at"], "reasons": reasons,
                           "duration_secs": iv.get("duration_secs"), "median_gap_secs": gap})

quality = {
    "completes": N,
    "cronbach_alpha": alpha([[LEVEL_SCORE[a] for a in iv["answers"]] for iv in ivs]),
    "anova": anova,
    "chi2": chi2,
    "operators": operators,
    "flagged_operators": [o["operator"] for o in operators if o["flagged"]],
    "straight_line_share": share,
    "suspicious": suspicious,
}

out = {
    "ranked_by": basis,
    "bootstrap_replicates": B,
    "bootstrap_seed": SEED,
    "bottom_k": BOTTOM_K,
    "units": results_units,
    "quality": quality,
}


def clean(v):
    """numpy scalars to plain JSON; NaN would mean a bug here, so refuse it."""
    if isinstance(v, dict):
        return {k: clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [clean(x) for x in v]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        assert np.isfinite(v), "non-finite reference value"
        return float(v)
    return v


(HERE / "scoring_reference.json").write_text(
    json.dumps(clean(out), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
print("wrote", HERE / "scoring_reference.json")
