-- Social-evaluation scoring: on-site evaluation data, each round's results settings (bootstrap
-- seed, pseudonym key) and API tokens. Results themselves are never stored: they are recomputed
-- from the attempts and these tables every time they are asked for.

-- On-site evaluation (现场评价) by ballots: one row per ballot cast at a unit's evaluation meeting.
CREATE TABLE onsite_ballots (
    id          INTEGER PRIMARY KEY,
    unit_id     INTEGER NOT NULL REFERENCES units(id),
    ballot      TEXT NOT NULL,           -- the ballot's id as written on the form
    overall     INTEGER NOT NULL CHECK (overall IN (0, 1)),
    levels      TEXT NOT NULL,           -- JSON array of level indices (0 = best): one per dimension, or one overall
    source_line INTEGER,
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    UNIQUE (unit_id, ballot)
);
CREATE INDEX onsite_ballots_unit ON onsite_ballots(unit_id);

-- On-site evaluation given as one score per unit, on the level-score scale (0 .. best level's score).
-- A unit has ballots or a direct score, never both (enforced by the importer).
CREATE TABLE onsite_scores (
    unit_id     INTEGER PRIMARY KEY REFERENCES units(id),
    score       REAL NOT NULL,
    source_line INTEGER,
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL
);

-- Drawn once per round, the first time its results are computed, and kept: the bootstrap seed
-- makes the rank intervals reproducible; the pseudonym key (HMAC key) makes respondent ids
-- stable within the round and unlinkable across rounds.
CREATE TABLE round_results (
    round_id       INTEGER PRIMARY KEY REFERENCES rounds(id),
    bootstrap_seed TEXT NOT NULL,        -- u64 as decimal text
    pseudonym_key  TEXT NOT NULL,        -- 32 random bytes, hex
    created_at     INTEGER NOT NULL
);

-- Bearer tokens for the HTTP API. Only the SHA-256 of a token is stored: the token is printed
-- once when created and cannot be recovered from the database.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id),
    token_hash   TEXT NOT NULL UNIQUE,   -- SHA-256 of the token, hex
    prefix       TEXT NOT NULL,          -- first characters of the token, to tell tokens apart
    label        TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    created_by   TEXT NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    last_used_at INTEGER
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);
