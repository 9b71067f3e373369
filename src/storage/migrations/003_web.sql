-- Web sessions and sign-in throttling (filled in by the web-console work).
SELECT 1;
