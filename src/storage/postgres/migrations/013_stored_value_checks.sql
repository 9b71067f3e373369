-- Enumerated columns of src/storage/migrations/013_stored_value_checks.sql. SQLite cannot add a
-- CHECK to an existing column and uses triggers; PostgreSQL has both, and both are here:
-- - the CHECK constraints are the rule itself, in the catalogue (pg_dump, other clients, and no
--   way around them by dropping a trigger);
-- - the triggers, with SQLite's names, fire first (BEFORE) and refuse with SQLite's message, so
--   a refused value reads the same on both backends (SQLSTATE 23514, check_violation, like the
--   constraint's own error).
-- (units.kind, users.role, attempts.source and plans.kind have CHECKs since 001/002.)

ALTER TABLE attempts ADD CONSTRAINT attempts_outcome_known CHECK (
    outcome IN ('complete', 'partial', 'refused', 'break_off', 'respondent_unavailable',
                'voicemail', 'no_answer', 'busy', 'appointment', 'wrong_number',
                'not_in_service', 'unable'));

ALTER TABLE members ADD CONSTRAINT members_category_known CHECK (
    category IN ('党代表', '人大代表', '政协委员', '服务对象'));

CREATE FUNCTION attempts_outcome_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = 'check_violation',
        MESSAGE = 'attempts.outcome: 拨打结果不是已知的结果代码(complete、partial、refused、break_off、respondent_unavailable、voicemail、no_answer、busy、appointment、wrong_number、not_in_service、unable 之一)',
        TABLE = 'attempts',
        COLUMN = 'outcome';
END
$$;

CREATE FUNCTION members_category_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = 'check_violation',
        MESSAGE = 'members.category: 代表类别必须是 党代表、人大代表、政协委员、服务对象 之一',
        TABLE = 'members',
        COLUMN = 'category';
END
$$;

CREATE TRIGGER attempts_outcome_insert BEFORE INSERT ON attempts
FOR EACH ROW
WHEN (NEW.outcome NOT IN ('complete', 'partial', 'refused', 'break_off', 'respondent_unavailable',
                          'voicemail', 'no_answer', 'busy', 'appointment', 'wrong_number',
                          'not_in_service', 'unable'))
EXECUTE FUNCTION attempts_outcome_refuse();

CREATE TRIGGER attempts_outcome_update BEFORE UPDATE OF outcome ON attempts
FOR EACH ROW
WHEN (NEW.outcome NOT IN ('complete', 'partial', 'refused', 'break_off', 'respondent_unavailable',
                          'voicemail', 'no_answer', 'busy', 'appointment', 'wrong_number',
                          'not_in_service', 'unable'))
EXECUTE FUNCTION attempts_outcome_refuse();

CREATE TRIGGER members_category_insert BEFORE INSERT ON members
FOR EACH ROW
WHEN (NEW.category NOT IN ('党代表', '人大代表', '政协委员', '服务对象'))
EXECUTE FUNCTION members_category_refuse();

CREATE TRIGGER members_category_update BEFORE UPDATE OF category ON members
FOR EACH ROW
WHEN (NEW.category NOT IN ('党代表', '人大代表', '政协委员', '服务对象'))
EXECUTE FUNCTION members_category_refuse();
