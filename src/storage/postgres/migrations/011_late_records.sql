-- Late records: an interview that happened is never thrown away. PostgreSQL dialect of
-- src/storage/migrations/011_late_records.sql.
ALTER TABLE attempts ADD COLUMN late BIGINT NOT NULL DEFAULT 0;

-- Who holds a claim. NULL on older rows: the assignee.
ALTER TABLE queue ADD COLUMN claimed_by BIGINT REFERENCES users(id);

-- Claims that ended without a record, written by triggers so no code path can forget one.
CREATE TABLE ended_claims (
    token       TEXT COLLATE "C" PRIMARY KEY,
    member_id   BIGINT NOT NULL REFERENCES members(id),
    operator_id BIGINT NOT NULL REFERENCES users(id),
    claimed_at  BIGINT NOT NULL
);
CREATE INDEX ended_claims_member ON ended_claims(member_id, claimed_at);

-- A trigger's WHEN cannot hold a subquery in PostgreSQL, so the "not recorded" probe of the
-- SQLite trigger's WHEN is the function's first step. ON CONFLICT DO NOTHING is SQLite's
-- INSERT OR IGNORE here: the only constraint the row can break is the token's key.
CREATE FUNCTION record_ended_claim() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM attempts WHERE claim_token = OLD.claim_token) THEN
        INSERT INTO ended_claims (token, member_id, operator_id, claimed_at)
        VALUES (OLD.claim_token, OLD.member_id, COALESCE(OLD.claimed_by, OLD.operator_id),
                COALESCE(OLD.claimed_at, 0))
        ON CONFLICT (token) DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER queue_claim_ended AFTER UPDATE OF claim_token ON queue
FOR EACH ROW
WHEN (OLD.claim_token IS NOT NULL AND OLD.claim_token IS DISTINCT FROM NEW.claim_token)
EXECUTE FUNCTION record_ended_claim();

CREATE TRIGGER queue_claim_deleted AFTER DELETE ON queue
FOR EACH ROW
WHEN (OLD.claim_token IS NOT NULL)
EXECUTE FUNCTION record_ended_claim();
