-- Claims held now, per operator (src/storage/migrations/005_claims_index.sql).
CREATE INDEX queue_claims ON queue(operator_id, round_id, claim_expires) WHERE claim_token IS NOT NULL;
