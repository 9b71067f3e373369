#!/usr/bin/env python3
"""Independent re-implementation of the call plan algorithm `sheping-plan-v1`, written from
docs/plan.md only (plain Python 3 standard library).

Usage: plan_reference.py INPUTS.json OUT.json
INPUTS.json holds one inputs file object (docs/plan.md, "The inputs file") or a JSON array of
them; OUT.json receives, for each, {"rows": the digest text, "digest": "fnv1a64:..."} or
{"error": "..."}.
"""

import json
import sys

MASK32 = 0xFFFFFFFF
MASK64 = 0xFFFFFFFFFFFFFFFF
TAGS = {"generate": b"sheping-plan-v1/generate", "reassign": b"sheping-plan-v1/reassign"}


class PlanError(Exception):
    pass


# ---- step 2: the random stream -------------------------------------------------------------


def rotl(x, n):
    return ((x << n) | (x >> (32 - n))) & MASK32


def quarter(x, a, b, c, d):
    x[a] = (x[a] + x[b]) & MASK32
    x[d] = rotl(x[d] ^ x[a], 16)
    x[c] = (x[c] + x[d]) & MASK32
    x[b] = rotl(x[b] ^ x[c], 12)
    x[a] = (x[a] + x[b]) & MASK32
    x[d] = rotl(x[d] ^ x[a], 8)
    x[c] = (x[c] + x[d]) & MASK32
    x[b] = rotl(x[b] ^ x[c], 7)


class Stream:
    """ChaCha8 keystream words, read two at a time as 64-bit draws."""

    def __init__(self, key):
        assert len(key) == 32
        self.key_words = [int.from_bytes(key[4 * i : 4 * i + 4], "little") for i in range(8)]
        self.counter = 0
        self.words = []
        self.pos = 0
        self.draws = 0

    def _block(self):
        state = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
        state += self.key_words
        state += [self.counter & MASK32, (self.counter >> 32) & MASK32, 0, 0]
        x = list(state)
        for _ in range(4):
            quarter(x, 0, 4, 8, 12)
            quarter(x, 1, 5, 9, 13)
            quarter(x, 2, 6, 10, 14)
            quarter(x, 3, 7, 11, 15)
            quarter(x, 0, 5, 10, 15)
            quarter(x, 1, 6, 11, 12)
            quarter(x, 2, 7, 8, 13)
            quarter(x, 3, 4, 9, 14)
        self.counter += 1
        return [(x[i] + state[i]) & MASK32 for i in range(16)]

    def _word(self):
        if self.pos == len(self.words):
            self.words = self._block()
            self.pos = 0
        w = self.words[self.pos]
        self.pos += 1
        return w

    def next_u64(self):
        self.draws += 1
        low = self._word()
        high = self._word()
        return low | (high << 32)


# ---- steps 3 and 4 -------------------------------------------------------------------------


def below(stream, n):
    threshold = (1 << 64) % n
    while True:
        m = stream.next_u64() * n
        if (m & MASK64) >= threshold:
            return m >> 64


def shuffle(stream, items):
    for i in range(len(items) - 1, 0, -1):
        j = below(stream, i + 1)
        items[i], items[j] = items[j], items[i]


# ---- the plan ------------------------------------------------------------------------------


def plan(inputs):
    if inputs["algorithm"] != "sheping-plan-v1":
        raise PlanError("unknown algorithm " + inputs["algorithm"])
    tag = TAGS[inputs["kind"]]
    seed = int(inputs["seed"])

    # Step 1: canonical inputs.
    ops = sorted(set(inputs["operators"]), key=lambda s: s.encode("utf-8"))
    k = len(ops)
    if k == 0:
        raise PlanError("no operators")
    index = {name: i for i, name in enumerate(ops)}
    members = sorted(
        ((m["unit_id"], m["member_id"]) for m in inputs["members"]),
    )
    ids = [mid for _, mid in members]
    if len(set(ids)) != len(ids):
        raise PlanError("duplicate member")
    excluded = {}
    for login, unit in inputs["exclusions"]:
        if login in index:
            excluded.setdefault(unit, set()).add(index[login])
    units = sorted(set(u for u, _ in members))
    M = {u: [mid for uu, mid in members if uu == u] for u in units}
    A = {}
    for u in units:
        A[u] = [o for o in range(k) if o not in excluded.get(u, set())]
        if not A[u]:
            raise PlanError("unit %d fully excluded" % u)
    existing = inputs["existing"]
    E = {}
    for unit, login, count in existing["per_unit"]:
        if login in index:
            E[(unit, index[login])] = count
    t = [existing["total"].get(name, 0) for name in ops]
    S = [existing["max_seq"].get(name, 0) for name in ops]

    # Step 2.
    key = seed.to_bytes(8, "little") + tag
    stream = Stream(key)

    # Step 5.
    owner = {}  # member_id -> operator index
    P = {}
    for u in sorted(units, key=lambda u: (len(A[u]), u)):
        p = list(M[u])
        shuffle(stream, p)
        P[u] = p
        r = list(A[u])
        shuffle(stream, r)
        rank = {o: i for i, o in enumerate(r)}
        c = {o: E.get((u, o), 0) for o in A[u]}
        for m in p:
            o = min(A[u], key=lambda o: (c[o], t[o], rank[o]))
            owner[m] = o
            c[o] += 1
            t[o] += 1

    # Step 6.
    moves = 0
    if max(t) - min(t) > 1:
        n = {}
        for u in units:
            for o in A[u]:
                n[(u, o)] = 0
            for m in M[u]:
                n[(u, owner[m])] += 1

        def count(u, o):
            return E.get((u, o), 0) + n[(u, o)]

        L = {u: min(count(u, o) for o in A[u]) for u in units}

        def givers(u):
            return [o for o in A[u] if n[(u, o)] > 0 and count(u, o) == L[u] + 1]

        def is_taker(u, o):
            return o in A[u] and count(u, o) == L[u]

        repair_units = [u for u in units if givers(u)]
        active = [True] * k
        while True:
            act = [o for o in range(k) if active[o]]
            if not act:
                break
            lo = min(t[o] for o in act)
            hi = max(t[o] for o in act)
            if hi <= lo + 1:
                break
            Q = [o for o in act if t[o] == lo]
            reached = set(Q)
            parent = {}
            used = set()
            grew = True
            while grew:
                grew = False
                for u in repair_units:
                    if u in used:
                        continue
                    if L[u] == 0:
                        cands = [q for q in Q if is_taker(u, q)]
                    else:
                        cands = [q for q in A[u] if is_taker(u, q) and q in reached]
                    if not cands:
                        continue
                    q = cands[0]
                    used.add(u)
                    for g in givers(u):
                        if active[g] and g not in reached:
                            reached.add(g)
                            parent[g] = (u, q)
                            Q.append(g)
                            grew = True
            cands = [o for o in range(k) if o in reached and t[o] >= lo + 2]
            if cands:
                p = max(cands, key=lambda o: (t[o], -o))
                t[p] -= 1
                a = p
                while a in parent:
                    u, b = parent[a]
                    m = [m for m in P[u] if owner[m] == a][-1]
                    owner[m] = b
                    n[(u, a)] -= 1
                    n[(u, b)] += 1
                    moves += 1
                    a = b
                t[a] += 1
            else:
                for o in Q:
                    active[o] = False

    # Step 7.
    rows = []
    unit_of = {mid: u for u, mid in members}
    for o in range(k):
        lst = [(u, mid) for u, mid in members if owner[mid] == o]
        shuffle(stream, lst)
        for i, (u, mid) in enumerate(lst):
            seq = S[o] + 1 + i
            if seq > MASK32:
                raise PlanError("seq overflow")
            rows.append((ops[o], seq, u, mid))
    assert all(unit_of[mid] == u for _, _, u, mid in rows)
    return rows, moves


def digest_text(rows):
    rows = sorted(rows, key=lambda r: (r[0].encode("utf-8"), r[1], r[2], r[3]))
    return "".join("%s\t%d\t%d\t%d\n" % r for r in rows)


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & MASK64
    return "fnv1a64:%016x" % h


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = json.load(f)
    single = isinstance(cases, dict)
    if single:
        cases = [cases]
    out = []
    for inputs in cases:
        try:
            rows, moves = plan(inputs)
        except PlanError as e:
            out.append({"error": str(e)})
            continue
        text = digest_text(rows)
        out.append({"rows": text, "digest": fnv1a64(text.encode("utf-8")), "repair_moves": moves})
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(out[0] if single else out, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
