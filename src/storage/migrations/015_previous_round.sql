-- A round's predecessor (`round create … --previous B`): the round its results are compared
-- with on the feedback pages (与上年度比较). Kept beside `rounds` so that table stays as it was.
CREATE TABLE IF NOT EXISTS round_previous (
    round_id          INTEGER PRIMARY KEY REFERENCES rounds(id),
    previous_round_id INTEGER NOT NULL REFERENCES rounds(id),
    CHECK (round_id <> previous_round_id)
);
