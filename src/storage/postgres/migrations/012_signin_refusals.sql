-- Sign-in attempts refused while a lock is on, counted: one row per client address and lock
-- window (src/storage/migrations/012_signin_refusals.sql).
CREATE TABLE signin_refusals (
    ip       TEXT COLLATE "C" NOT NULL,
    scope    TEXT COLLATE "C" NOT NULL,            -- 'login' or 'ip': what is locked
    subject  TEXT COLLATE "C" NOT NULL,            -- the locked login key, or the locked address
    until_ms BIGINT NOT NULL,                      -- the end of the lock window
    actor    TEXT COLLATE "C" NOT NULL,            -- the login key of the first refused attempt
    first_at BIGINT NOT NULL,
    last_at  BIGINT NOT NULL,
    count    BIGINT NOT NULL,
    logged   BIGINT,                               -- when summarised into the audit log; NULL before
    PRIMARY KEY (ip, scope, subject, until_ms)
);
CREATE INDEX signin_refusals_open ON signin_refusals(until_ms) WHERE logged IS NULL;
