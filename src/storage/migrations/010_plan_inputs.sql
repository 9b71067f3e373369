-- The canonical inputs of each plan (JSON, docs/plan.md "The inputs file"), so that
-- `sheping calls verify` and third parties can re-derive it. NULL for plans made before.
ALTER TABLE plans ADD COLUMN inputs TEXT;
