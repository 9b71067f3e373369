-- The web console: sign-in sessions, sign-in throttling and the history of answer edits.

-- One row per signed-in browser. The cookie carries a random token; only its SHA-256 is kept,
-- so a copy of the database does not let anyone sign in as a user.
CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id),
    csrf       TEXT NOT NULL,          -- synchronizer token of every form of this session
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,       -- idle expiry counts from here
    ip         TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX sessions_seen ON sessions(last_seen);

-- Failed sign-ins, counted per login and per client address over a sliding window.
CREATE TABLE signin_failures (
    id    INTEGER PRIMARY KEY,
    login TEXT NOT NULL,               -- as typed (lower-cased, trimmed, at most 64 chars)
    ip    TEXT NOT NULL,
    at    INTEGER NOT NULL
);
CREATE INDEX signin_failures_login ON signin_failures(login, at);
CREATE INDEX signin_failures_ip ON signin_failures(ip, at);

-- An administrator's correction of recorded answers (the audit log has the same facts,
-- chained; this table lets the attempt page show its history).
CREATE TABLE answer_edits (
    id         INTEGER PRIMARY KEY,
    attempt_id INTEGER NOT NULL REFERENCES attempts(id),
    at         INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    reason     TEXT NOT NULL,
    before     TEXT,                   -- JSON array of level indices (0 = best) or null
    after      TEXT NOT NULL
);
CREATE INDEX answer_edits_attempt ON answer_edits(attempt_id, at);
