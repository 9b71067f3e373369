-- attempts_member repeats the index SQLite already keeps for UNIQUE (member_id, attempt_no):
-- every recorded attempt wrote the same key into two B-trees. Queries use the unique index.
DROP INDEX IF EXISTS attempts_member;
