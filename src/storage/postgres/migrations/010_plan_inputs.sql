-- The canonical inputs of each plan (JSON, docs/plan.md "The inputs file")
-- (src/storage/migrations/010_plan_inputs.sql).
CREATE TABLE plan_inputs (
    plan_id BIGINT PRIMARY KEY REFERENCES plans(id),
    inputs  TEXT COLLATE "C" NOT NULL
);
