-- A round's predecessor (`round create … --previous B`)
-- (src/storage/migrations/015_previous_round.sql).
CREATE TABLE round_previous (
    round_id          BIGINT PRIMARY KEY REFERENCES rounds(id),
    previous_round_id BIGINT NOT NULL REFERENCES rounds(id),
    CHECK (round_id <> previous_round_id)
);
