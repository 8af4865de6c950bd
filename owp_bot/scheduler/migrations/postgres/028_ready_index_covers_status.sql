-- Mirrors migrations/sqlite/028_ready_index_covers_status.sql, which makes an index cover a column for SQLite's
-- sake; PostgreSQL reads a task's row for its other columns in any case (index-only scans need all-visible pages).
SELECT 1;
