-- The queue keyed by each operator's calling order. PostgreSQL dialect of
-- src/storage/migrations/009_queue_by_operator.sql, step for step, so both schemas end with the
-- same columns in the same order. (In SQLite the point was clustering, WITHOUT ROWID; here the
-- primary key is the claim's search index, as queue_next was.)
CREATE TABLE queue_by_operator (
    operator_id   BIGINT NOT NULL REFERENCES users(id),
    round_id      BIGINT NOT NULL REFERENCES rounds(id),
    priority      BIGINT NOT NULL,
    sort_key      BIGINT NOT NULL,
    member_id     BIGINT NOT NULL UNIQUE REFERENCES members(id),
    claim_token   TEXT COLLATE "C" UNIQUE,
    claimed_at    BIGINT,
    claim_expires BIGINT,
    PRIMARY KEY (operator_id, round_id, priority, sort_key, member_id)
);

-- The same rows, so the tallies stay as they are (no trigger exists on the new table yet).
INSERT INTO queue_by_operator (operator_id, round_id, priority, sort_key, member_id, claim_token, claimed_at, claim_expires)
SELECT operator_id, round_id, priority, sort_key, member_id, claim_token, claimed_at, claim_expires
FROM queue ORDER BY operator_id, round_id, priority, sort_key, member_id;

-- Drops queue_next, queue_claims and the tally triggers with the table (their functions stay).
DROP TABLE queue;
ALTER TABLE queue_by_operator RENAME TO queue;
-- Constraint (and their indexes') names follow the table, as SQLite's automatic ones do.
ALTER TABLE queue RENAME CONSTRAINT queue_by_operator_pkey TO queue_pkey;
ALTER TABLE queue RENAME CONSTRAINT queue_by_operator_member_id_key TO queue_member_id_key;
ALTER TABLE queue RENAME CONSTRAINT queue_by_operator_claim_token_key TO queue_claim_token_key;
ALTER TABLE queue RENAME CONSTRAINT queue_by_operator_operator_id_fkey TO queue_operator_id_fkey;
ALTER TABLE queue RENAME CONSTRAINT queue_by_operator_round_id_fkey TO queue_round_id_fkey;
ALTER TABLE queue RENAME CONSTRAINT queue_by_operator_member_id_fkey TO queue_member_id_fkey;

CREATE INDEX queue_claims ON queue(operator_id, round_id, claim_expires) WHERE claim_token IS NOT NULL;

CREATE TRIGGER queue_tally_insert AFTER INSERT ON queue
FOR EACH ROW EXECUTE FUNCTION queue_tally_insert();

CREATE TRIGGER queue_tally_delete AFTER DELETE ON queue
FOR EACH ROW EXECUTE FUNCTION queue_tally_delete();

CREATE TRIGGER queue_tally_update AFTER UPDATE OF round_id, operator_id, priority ON queue
FOR EACH ROW
WHEN (OLD.round_id IS DISTINCT FROM NEW.round_id OR OLD.operator_id IS DISTINCT FROM NEW.operator_id
      OR OLD.priority IS DISTINCT FROM NEW.priority)
EXECUTE FUNCTION queue_tally_update();
