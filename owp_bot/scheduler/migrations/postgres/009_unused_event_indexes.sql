-- Mirrors migrations/sqlite/009_unused_event_indexes.sql: no generic plan reads through these two.
DROP INDEX events_actor;
DROP INDEX events_repo;
