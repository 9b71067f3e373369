-- attempts_member repeats the index of UNIQUE (member_id, attempt_no)
-- (src/storage/migrations/007_drop_duplicate_index.sql).
DROP INDEX IF EXISTS attempts_member;
