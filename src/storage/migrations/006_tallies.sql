-- Per operator, round and priority, how many contacts wait in the queue. The call screen shows
-- these counts on every request; counting the queue rows instead reads 15,000+ index entries
-- per operator in a large round. Triggers keep the tally exact inside the same transaction
-- as each queue change, so no code path can forget it (`sheping check` compares the two).
CREATE TABLE queue_tally (
    round_id    INTEGER NOT NULL,
    operator_id INTEGER NOT NULL,
    priority    INTEGER NOT NULL,
    n           INTEGER NOT NULL,
    PRIMARY KEY (round_id, operator_id, priority)
) WITHOUT ROWID;

INSERT INTO queue_tally (round_id, operator_id, priority, n)
SELECT round_id, operator_id, priority, COUNT(*) FROM queue GROUP BY round_id, operator_id, priority;

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

-- Per round, operator and quarter hour (UTC ms / 900,000), the attempts recorded and how many
-- were complete. The call screen shows "today" for the operator on every request; summing the
-- day's quarters (at most 96 rows) replaces reading each attempt with its member and unit.
-- Quarter hours because every time zone's midnight falls on one.
CREATE TABLE operator_tally (
    round_id    INTEGER NOT NULL,
    operator_id INTEGER NOT NULL,
    quarter     INTEGER NOT NULL,
    attempts    INTEGER NOT NULL,
    completes   INTEGER NOT NULL,
    PRIMARY KEY (round_id, operator_id, quarter)
) WITHOUT ROWID;

INSERT INTO operator_tally (round_id, operator_id, quarter, attempts, completes)
SELECT u.round_id, a.operator_id, a.recorded_at / 900000, COUNT(*), SUM(a.outcome = 'complete')
FROM attempts a JOIN members m ON m.id = a.member_id JOIN units u ON u.id = m.unit_id
GROUP BY u.round_id, a.operator_id, a.recorded_at / 900000;

CREATE TRIGGER operator_tally_insert AFTER INSERT ON attempts BEGIN
    INSERT INTO operator_tally (round_id, operator_id, quarter, attempts, completes)
    VALUES ((SELECT u.round_id FROM members m JOIN units u ON u.id = m.unit_id WHERE m.id = NEW.member_id),
            NEW.operator_id, NEW.recorded_at / 900000, 1, NEW.outcome = 'complete')
    ON CONFLICT (round_id, operator_id, quarter)
    DO UPDATE SET attempts = attempts + 1, completes = completes + (NEW.outcome = 'complete');
END;

CREATE TRIGGER operator_tally_delete AFTER DELETE ON attempts BEGIN
    UPDATE operator_tally SET attempts = attempts - 1, completes = completes - (OLD.outcome = 'complete')
    WHERE round_id = (SELECT u.round_id FROM members m JOIN units u ON u.id = m.unit_id WHERE m.id = OLD.member_id)
      AND operator_id = OLD.operator_id AND quarter = OLD.recorded_at / 900000;
END;

CREATE TRIGGER operator_tally_update AFTER UPDATE OF member_id, operator_id, recorded_at, outcome ON attempts
BEGIN
    UPDATE operator_tally SET attempts = attempts - 1, completes = completes - (OLD.outcome = 'complete')
    WHERE round_id = (SELECT u.round_id FROM members m JOIN units u ON u.id = m.unit_id WHERE m.id = OLD.member_id)
      AND operator_id = OLD.operator_id AND quarter = OLD.recorded_at / 900000;
    INSERT INTO operator_tally (round_id, operator_id, quarter, attempts, completes)
    VALUES ((SELECT u.round_id FROM members m JOIN units u ON u.id = m.unit_id WHERE m.id = NEW.member_id),
            NEW.operator_id, NEW.recorded_at / 900000, 1, NEW.outcome = 'complete')
    ON CONFLICT (round_id, operator_id, quarter)
    DO UPDATE SET attempts = attempts + 1, completes = completes + (NEW.outcome = 'complete');
END;
