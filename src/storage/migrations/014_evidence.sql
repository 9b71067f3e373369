-- Corroborating records (佐证依据): per unit and kind, a count from the office that holds it
-- (12345 complaints, petitions, disciplinary cases), read beside the social evaluation.
CREATE TABLE IF NOT EXISTS evidence (
    unit_id     INTEGER NOT NULL REFERENCES units(id),
    kind        TEXT NOT NULL CHECK (kind IN ('complaint', 'petition', 'discipline')),
    count       INTEGER NOT NULL CHECK (count >= 0),
    volume      INTEGER CHECK (volume > 0),   -- cases the unit handled in the period
    source      TEXT NOT NULL DEFAULT '',     -- letter number and sending office
    note        TEXT NOT NULL DEFAULT '',
    source_line INTEGER,
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    PRIMARY KEY (unit_id, kind)
);
