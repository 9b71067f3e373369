-- The canonical inputs of each plan (JSON, docs/plan.md "The inputs file"), so that
-- `sheping calls verify` and third parties can re-derive it. Plans made before have no row.
CREATE TABLE IF NOT EXISTS plan_inputs (
    plan_id INTEGER PRIMARY KEY REFERENCES plans(id),
    inputs  TEXT NOT NULL
);
