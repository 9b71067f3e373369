-- The queue kept in each operator's calling order (clustered by the claim's search key, WITHOUT
-- ROWID) instead of by member. Claiming the next contact and recording the one on screen both
-- touch the front of the operator's own range, so a call changes one queue page there, not a
-- row on a random page for each of the two members plus the index entry that found them
-- (every page a group commit changes is written to the WAL and copied back by the checkpoint).
-- Lookups by member go through the UNIQUE index on member_id.
CREATE TABLE queue_by_operator (
    operator_id   INTEGER NOT NULL REFERENCES users(id),
    round_id      INTEGER NOT NULL REFERENCES rounds(id),
    priority      INTEGER NOT NULL,
    sort_key      INTEGER NOT NULL,
    member_id     INTEGER NOT NULL UNIQUE REFERENCES members(id),
    claim_token   TEXT UNIQUE,
    claimed_at    INTEGER,
    claim_expires INTEGER,
    PRIMARY KEY (operator_id, round_id, priority, sort_key, member_id)
) WITHOUT ROWID;

-- The same rows, so the tallies stay as they are (no trigger exists on the new table yet).
INSERT INTO queue_by_operator (operator_id, round_id, priority, sort_key, member_id, claim_token, claimed_at, claim_expires)
SELECT operator_id, round_id, priority, sort_key, member_id, claim_token, claimed_at, claim_expires
FROM queue ORDER BY operator_id, round_id, priority, sort_key, member_id;

-- Drops queue_next (now the primary key), queue_claims and the tally triggers with the table.
DROP TABLE queue;
ALTER TABLE queue_by_operator RENAME TO queue;

CREATE INDEX queue_claims ON queue(operator_id, round_id, claim_expires) WHERE claim_token IS NOT NULL;

CREATE TRIGGER queue_tally_insert AFTER INSERT ON queue BEGIN
    INSERT INTO queue_tally (round_id, operator_id, priority, n)
    VALUES (NEW.round_id, NEW.operator_id, NEW.priority, 1)
    ON CONFLICT (round_id, operator_id, priority) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER queue_tally_delete AFTER DELETE ON queue BEGIN
    UPDATE queue_tally SET n = n - 1
    WHERE round_id = OLD.round_id AND operator_id = OLD.operator_id AND priority = OLD.priority;
END;

CREATE TRIGGER queue_tally_update AFTER UPDATE OF round_id, operator_id, priority ON queue
WHEN OLD.round_id IS NOT NEW.round_id OR OLD.operator_id IS NOT NEW.operator_id
     OR OLD.priority IS NOT NEW.priority
BEGIN
    UPDATE queue_tally SET n = n - 1
    WHERE round_id = OLD.round_id AND operator_id = OLD.operator_id AND priority = OLD.priority;
    INSERT INTO queue_tally (round_id, operator_id, priority, n)
    VALUES (NEW.round_id, NEW.operator_id, NEW.priority, 1)
    ON CONFLICT (round_id, operator_id, priority) DO UPDATE SET n = n + 1;
END;
