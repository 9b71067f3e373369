-- Enumerated columns without a CHECK: SQLite cannot add one to an existing column, so triggers
-- refuse any other value on insert and update. Rows stored before this migration are not
-- touched; readers decode strictly and name such a row (`sheping check` lists it).
-- IF NOT EXISTS: a database rewound to an older user_version runs this again.
-- (units.kind, users.role, attempts.source and plans.kind have CHECKs since 001/002.)

CREATE TRIGGER IF NOT EXISTS attempts_outcome_insert BEFORE INSERT ON attempts
WHEN NEW.outcome NOT IN ('complete', 'partial', 'refused', 'break_off', 'respondent_unavailable',
                         'voicemail', 'no_answer', 'busy', 'appointment', 'wrong_number',
                         'not_in_service', 'unable')
BEGIN
    SELECT RAISE(ABORT, 'attempts.outcome: 拨打结果不是已知的结果代码(complete、partial、refused、break_off、respondent_unavailable、voicemail、no_answer、busy、appointment、wrong_number、not_in_service、unable 之一)');
END;

CREATE TRIGGER IF NOT EXISTS attempts_outcome_update BEFORE UPDATE OF outcome ON attempts
WHEN NEW.outcome NOT IN ('complete', 'partial', 'refused', 'break_off', 'respondent_unavailable',
                         'voicemail', 'no_answer', 'busy', 'appointment', 'wrong_number',
                         'not_in_service', 'unable')
BEGIN
    SELECT RAISE(ABORT, 'attempts.outcome: 拨打结果不是已知的结果代码(complete、partial、refused、break_off、respondent_unavailable、voicemail、no_answer、busy、appointment、wrong_number、not_in_service、unable 之一)');
END;

CREATE TRIGGER IF NOT EXISTS members_category_insert BEFORE INSERT ON members
WHEN NEW.category NOT IN ('党代表', '人大代表', '政协委员', '服务对象')
BEGIN
    SELECT RAISE(ABORT, 'members.category: 代表类别必须是 党代表、人大代表、政协委员、服务对象 之一');
END;

CREATE TRIGGER IF NOT EXISTS members_category_update BEFORE UPDATE OF category ON members
WHEN NEW.category NOT IN ('党代表', '人大代表', '政协委员', '服务对象')
BEGIN
    SELECT RAISE(ABORT, 'members.category: 代表类别必须是 党代表、人大代表、政协委员、服务对象 之一');
END;
