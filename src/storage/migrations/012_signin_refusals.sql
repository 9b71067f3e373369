-- Sign-in attempts refused while a lock is on, counted: one row per client address and lock
-- window instead of one audit entry per attempt (anonymous traffic must not grow the chained
-- audit log). A chained row cannot be updated, so the count goes into the chain once, as one
-- `auth.signin_locked` entry, when the window has ended (`logged` then holds that moment).
-- (IF NOT EXISTS: tests rewind `user_version` on a current file to replay a migration before this.)
CREATE TABLE IF NOT EXISTS signin_refusals (
    ip       TEXT NOT NULL,
    scope    TEXT NOT NULL,            -- 'login' or 'ip': what is locked
    subject  TEXT NOT NULL,            -- the locked login key, or the locked address
    until_ms INTEGER NOT NULL,         -- the end of the lock window
    actor    TEXT NOT NULL,            -- the login key of the first refused attempt
    first_at INTEGER NOT NULL,
    last_at  INTEGER NOT NULL,
    count    INTEGER NOT NULL,
    logged   INTEGER,                  -- when summarised into the audit log; NULL before
    PRIMARY KEY (ip, scope, subject, until_ms)
);
CREATE INDEX IF NOT EXISTS signin_refusals_open ON signin_refusals(until_ms) WHERE logged IS NULL;
