-- Late records: an interview that happened is never thrown away. An operator whose claim
-- lapsed (or was taken over) may still record it; the attempt is stored and, when another
-- claim or record on the member came in between, flagged `late` for the supervisor.
ALTER TABLE attempts ADD COLUMN late INTEGER NOT NULL DEFAULT 0;

-- Who holds a claim: the queue row's operator is the member's assignee, which a reassignment
-- may change while a lapsed claim still names its holder. NULL on older rows: the assignee.
ALTER TABLE queue ADD COLUMN claimed_by INTEGER REFERENCES users(id);

-- Claims that ended without a record (lapsed and taken by another claim, released, or their
-- queue row removed), so a late record still finds its member, operator and round. Written by
-- triggers, so no code path can forget one; a claim that is recorded never lands here (the
-- hot path pays one probe of the attempts' claim-token index).
CREATE TABLE ended_claims (
    token       TEXT PRIMARY KEY,
    member_id   INTEGER NOT NULL REFERENCES members(id),
    operator_id INTEGER NOT NULL REFERENCES users(id),
    claimed_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX ended_claims_member ON ended_claims(member_id, claimed_at);

CREATE TRIGGER queue_claim_ended AFTER UPDATE OF claim_token ON queue
WHEN OLD.claim_token IS NOT NULL AND OLD.claim_token IS NOT NEW.claim_token
     AND NOT EXISTS (SELECT 1 FROM attempts WHERE claim_token = OLD.claim_token)
BEGIN
    INSERT OR IGNORE INTO ended_claims (token, member_id, operator_id, claimed_at)
    VALUES (OLD.claim_token, OLD.member_id, COALESCE(OLD.claimed_by, OLD.operator_id), COALESCE(OLD.claimed_at, 0));
END;

CREATE TRIGGER queue_claim_deleted AFTER DELETE ON queue
WHEN OLD.claim_token IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM attempts WHERE claim_token = OLD.claim_token)
BEGIN
    INSERT OR IGNORE INTO ended_claims (token, member_id, operator_id, claimed_at)
    VALUES (OLD.claim_token, OLD.member_id, COALESCE(OLD.claimed_by, OLD.operator_id), COALESCE(OLD.claimed_at, 0));
END;
