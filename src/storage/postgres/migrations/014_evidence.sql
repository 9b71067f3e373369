-- Corroborating records (佐证依据) per unit and kind (src/storage/migrations/014_evidence.sql).
CREATE TABLE evidence (
    unit_id     BIGINT NOT NULL REFERENCES units(id),
    kind        TEXT COLLATE "C" NOT NULL CHECK (kind IN ('complaint', 'petition', 'discipline')),
    count       BIGINT NOT NULL CHECK (count >= 0),
    volume      BIGINT CHECK (volume > 0),            -- cases the unit handled in the period
    source      TEXT COLLATE "C" NOT NULL DEFAULT '', -- letter number and sending office
    note        TEXT COLLATE "C" NOT NULL DEFAULT '',
    source_line BIGINT,
    created_at  BIGINT NOT NULL,
    created_by  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (unit_id, kind)
);
