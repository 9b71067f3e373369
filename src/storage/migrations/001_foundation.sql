-- Foundation: rounds, units, the contact database, users and the audit log.
-- Times are INTEGER milliseconds since the Unix epoch (UTC): unambiguous and indexable.

CREATE TABLE rounds (
    id            INTEGER PRIMARY KEY,
    key           TEXT NOT NULL UNIQUE,
    title         TEXT NOT NULL,
    -- The survey definition as it was when the round was created (TOML, defaults written out).
    survey_toml   TEXT NOT NULL,
    survey_source TEXT NOT NULL,
    field_start   TEXT,            -- local date YYYY-MM-DD, inclusive
    field_end     TEXT,            -- local date YYYY-MM-DD, inclusive
    locked_at     INTEGER,
    locked_by     TEXT,
    created_at    INTEGER NOT NULL
);

CREATE TABLE units (
    id        INTEGER PRIMARY KEY,
    round_id  INTEGER NOT NULL REFERENCES rounds(id),
    name      TEXT NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('党政机关', '事业单位')),
    sector    TEXT NOT NULL DEFAULT '',
    code      TEXT,
    UNIQUE (round_id, name)
);

CREATE TABLE members (
    id           INTEGER PRIMARY KEY,
    unit_id      INTEGER NOT NULL REFERENCES units(id),
    name         TEXT,             -- NULL once contacts are purged
    phone        TEXT,             -- canonical form, NULL once purged
    phone_alt    TEXT,
    category     TEXT NOT NULL,    -- 党代表 / 人大代表 / 政协委员 / 服务对象
    organization TEXT,
    note         TEXT,
    source_line  INTEGER,
    created_at   INTEGER NOT NULL,
    UNIQUE (unit_id, phone)
);
-- UNIQUE (unit_id, phone) also serves lookups by unit.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    login         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'statistician', 'evaluator')),
    password_hash TEXT NOT NULL,
    active        INTEGER NOT NULL DEFAULT 1,
    created_at    INTEGER NOT NULL
);

-- Append-only; each entry carries the hash of the previous one (tamper evidence).
CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    round_key TEXT,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_round ON audit_log(round_key, at);

-- Small settings, e.g. the audit chain's head hash (catches removal of the newest entries).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
