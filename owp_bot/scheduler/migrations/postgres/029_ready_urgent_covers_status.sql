-- Mirrors migrations/sqlite/029_ready_urgent_covers_status.sql, which makes an index cover a column for SQLite's
-- sake; PostgreSQL knows a partial index's predicate holds for every entry.
SELECT 1;
