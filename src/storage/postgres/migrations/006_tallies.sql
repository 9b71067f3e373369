-- Per operator, round and priority, how many contacts wait in the queue; per operator, round
-- and quarter hour, the attempts recorded and completed. PostgreSQL dialect of
-- src/storage/migrations/006_tallies.sql: the same tables, kept by the same triggers, written as
-- plpgsql functions (PostgreSQL runs a trigger's body as a function). (SQLite's WITHOUT ROWID
-- has no counterpart: the primary key is an index beside the heap.)
-- The trigger functions are named after their triggers; 009 re-creates the queue triggers on
-- the rebuilt table with the same functions.

CREATE TABLE queue_tally (
    round_id    BIGINT NOT NULL,
    operator_id BIGINT NOT NULL,
    priority    BIGINT NOT NULL,
    n           BIGINT NOT NULL,
    PRIMARY KEY (round_id, operator_id, priority)
);

INSERT INTO queue_tally (round_id, operator_id, priority, n)
SELECT round_id, operator_id, priority, COUNT(*) FROM queue GROUP BY round_id, operator_id, priority;

CREATE FUNCTION queue_tally_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO queue_tally (round_id, operator_id, priority, n)
    VALUES (NEW.round_id, NEW.operator_id, NEW.priority, 1)
    ON CONFLICT (round_id, operator_id, priority) DO UPDATE SET n = queue_tally.n + 1;
    RETURN NULL;
END
$$;

CREATE FUNCTION queue_tally_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE queue_tally SET n = n - 1
    WHERE round_id = OLD.round_id AND operator_id = OLD.operator_id AND priority = OLD.priority;
    RETURN NULL;
END
$$;

CREATE FUNCTION queue_tally_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE queue_tally SET n = n - 1
    WHERE round_id = OLD.round_id AND operator_id = OLD.operator_id AND priority = OLD.priority;
    INSERT INTO queue_tally (round_id, operator_id, priority, n)
    VALUES (NEW.round_id, NEW.operator_id, NEW.priority, 1)
    ON CONFLICT (round_id, operator_id, priority) DO UPDATE SET n = queue_tally.n + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER queue_tally_insert AFTER INSERT ON queue
FOR EACH ROW EXECUTE FUNCTION queue_tally_insert();

CREATE TRIGGER queue_tally_delete AFTER DELETE ON queue
FOR EACH ROW EXECUTE FUNCTION queue_tally_delete();

CREATE TRIGGER queue_tally_update AFTER UPDATE OF round_id, operator_id, priority ON queue
FOR EACH ROW
WHEN (OLD.round_id IS DISTINCT FROM NEW.round_id OR OLD.operator_id IS DISTINCT FROM NEW.operator_id
      OR OLD.priority IS DISTINCT FROM NEW.priority)
EXECUTE FUNCTION queue_tally_update();

-- Per round, operator and quarter hour (UTC ms / 900,000: BIGINT division truncates, as
-- SQLite's integer division does), the attempts recorded and how many were complete.
CREATE TABLE operator_tally (
    round_id    BIGINT NOT NULL,
    operator_id BIGINT NOT NULL,
    quarter     BIGINT NOT NULL,
    attempts    BIGINT NOT NULL,
    completes   BIGINT NOT NULL,
    PRIMARY KEY (round_id, operator_id, quarter)
);

INSERT INTO operator_tally (round_id, operator_id, quarter, attempts, completes)
SELECT u.round_id, a.operator_id, a.recorded_at / 900000, COUNT(*),
       SUM(CASE WHEN a.outcome = 'complete' THEN 1 ELSE 0 END)
FROM attempts a JOIN members m ON m.id = a.member_id JOIN units u ON u.id = m.unit_id
GROUP BY u.round_id, a.operator_id, a.recorded_at / 900000;

CREATE FUNCTION operator_tally_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO operator_tally (round_id, operator_id, quarter, attempts, completes)
    VALUES ((SELECT u.round_id FROM members m JOIN units u ON u.id = m.unit_id WHERE m.id = NEW.member_id),
            NEW.operator_id, NEW.recorded_at / 900000, 1,
            CASE WHEN NEW.outcome = 'complete' THEN 1 ELSE 0 END)
    ON CONFLICT (round_id, operator_id, quarter)
    DO UPDATE SET attempts = operator_tally.attempts + 1,
                  completes = operator_tally.completes + EXCLUDED.completes;
    RETURN NULL;
END
$$;

CREATE FUNCTION operator_tally_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE operator_tally
    SET attempts = attempts - 1,
        completes = completes - CASE WHEN OLD.outcome = 'complete' THEN 1 ELSE 0 END
    WHERE round_id = (SELECT u.round_id FROM members m JOIN units u ON u.id = m.unit_id WHERE m.id = OLD.member_id)
      AND operator_id = OLD.operator_id AND quarter = OLD.recorded_at / 900000;
    RETURN NULL;
END
$$;

CREATE FUNCTION operator_tally_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE operator_tally
    SET attempts = attempts - 1,
        completes = completes - CASE WHEN OLD.outcome = 'complete' THEN 1 ELSE 0 END
    WHERE round_id = (SELECT u.round_id FROM members m JOIN units u ON u.id = m.unit_id WHERE m.id = OLD.member_id)
      AND operator_id = OLD.operator_id AND quarter = OLD.recorded_at / 900000;
    INSERT INTO operator_tally (round_id, operator_id, quarter, attempts, completes)
    VALUES ((SELECT u.round_id FROM members m JOIN units u ON u.id = m.unit_id WHERE m.id = NEW.member_id),
            NEW.operator_id, NEW.recorded_at / 900000, 1,
            CASE WHEN NEW.outcome = 'complete' THEN 1 ELSE 0 END)
    ON CONFLICT (round_id, operator_id, quarter)
    DO UPDATE SET attempts = operator_tally.attempts + 1,
                  completes = operator_tally.completes + EXCLUDED.completes;
    RETURN NULL;
END
$$;

CREATE TRIGGER operator_tally_insert AFTER INSERT ON attempts
FOR EACH ROW EXECUTE FUNCTION operator_tally_insert();

CREATE TRIGGER operator_tally_delete AFTER DELETE ON attempts
FOR EACH ROW EXECUTE FUNCTION operator_tally_delete();

CREATE TRIGGER operator_tally_update AFTER UPDATE OF member_id, operator_id, recorded_at, outcome ON attempts
FOR EACH ROW EXECUTE FUNCTION operator_tally_update();
