-- Claims held now, per operator: the call screen asks on every request, and without this
-- index it would read every queue row of the operator (15,000+ in a large round).
CREATE INDEX queue_claims ON queue(operator_id, round_id, claim_expires) WHERE claim_token IS NOT NULL;
