-- Mirrors migrations/sqlite/030_no_in_lists_in_triggers.sql, which rewrites two SQLite triggers for SQLite's sake:
-- PostgreSQL evaluates an IN list of constants without building anything.
SELECT 1;
