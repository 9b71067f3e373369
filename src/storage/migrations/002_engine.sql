-- The call engine: plans, assignments, the operators' queue, claims and call attempts.

CREATE TABLE operator_exclusions (
    round_id   INTEGER NOT NULL REFERENCES rounds(id),
    user_id    INTEGER NOT NULL REFERENCES users(id),
    unit_id    INTEGER NOT NULL REFERENCES units(id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (round_id, user_id, unit_id)
);

-- Every plan generation or reassignment, with what a third party needs to re-derive it.
CREATE TABLE plans (
    id         INTEGER PRIMARY KEY,
    round_id   INTEGER NOT NULL REFERENCES rounds(id),
    kind       TEXT NOT NULL CHECK (kind IN ('generate', 'reassign')),
    seed       TEXT NOT NULL,          -- u64 as decimal text (SQLite integers are signed)
    algorithm  TEXT NOT NULL,
    operators  TEXT NOT NULL,          -- JSON array of logins, canonical order
    members    INTEGER NOT NULL,       -- members (re)assigned by this plan
    digest     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL
);

-- The current operator and call order of each member.
CREATE TABLE assignments (
    member_id   INTEGER PRIMARY KEY REFERENCES members(id),
    operator_id INTEGER NOT NULL REFERENCES users(id),
    seq         INTEGER NOT NULL,
    plan_id     INTEGER NOT NULL REFERENCES plans(id)
);
CREATE INDEX assignments_operator ON assignments(operator_id, seq);

-- The live queue: one row per member that may still be called. It is an index derived from
-- the attempts (rebuilt by `sheping check --repair`), kept so that claiming is O(log n).
-- priority: 0 appointment, 1 retry, 2 first call; sort_key: due time (ms) for 0/1, seq for 2.
CREATE TABLE queue (
    member_id     INTEGER PRIMARY KEY REFERENCES members(id),
    round_id      INTEGER NOT NULL REFERENCES rounds(id),
    operator_id   INTEGER NOT NULL REFERENCES users(id),
    priority      INTEGER NOT NULL,
    sort_key      INTEGER NOT NULL,
    claim_token   TEXT UNIQUE,
    claimed_at    INTEGER,
    claim_expires INTEGER
);
CREATE INDEX queue_next ON queue(operator_id, round_id, priority, sort_key);

CREATE TABLE attempts (
    id             INTEGER PRIMARY KEY,
    member_id      INTEGER NOT NULL REFERENCES members(id),
    operator_id    INTEGER NOT NULL REFERENCES users(id),
    attempt_no     INTEGER NOT NULL,
    claim_token    TEXT UNIQUE,         -- NULL for imported attempts
    claimed_at     INTEGER,
    recorded_at    INTEGER NOT NULL,
    outcome        TEXT NOT NULL,
    aapor_code     TEXT NOT NULL,
    answers        TEXT,                -- JSON array of level indices (0 = best) or null per dimension
    answer_ms      TEXT,                -- JSON array: ms after the claim when each answer was keyed
    comment        TEXT,
    appointment_at INTEGER,
    source         TEXT NOT NULL CHECK (source IN ('web', 'cli', 'import')),
    UNIQUE (member_id, attempt_no)
);
CREATE INDEX attempts_member ON attempts(member_id, attempt_no);
CREATE INDEX attempts_operator ON attempts(operator_id, recorded_at);

-- Admin reopenings (number corrected, refusal reopened), each with a reason.
CREATE TABLE reopenings (
    id        INTEGER PRIMARY KEY,
    member_id INTEGER NOT NULL REFERENCES members(id),
    at        INTEGER NOT NULL,
    reason    TEXT NOT NULL,
    actor     TEXT NOT NULL
);
CREATE INDEX reopenings_member ON reopenings(member_id, at);
