-- No query looks attempts up by operator (src/storage/migrations/008_drop_operator_attempts_index.sql).
DROP INDEX IF EXISTS attempts_operator;
