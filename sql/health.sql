-- Readiness (server/web/health.py): does the database answer at all?

-- name: ping
SELECT 1 AS ok;
