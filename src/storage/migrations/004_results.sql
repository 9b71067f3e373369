-- On-site evaluation data and API tokens (filled in by the scoring work).
SELECT 1;
