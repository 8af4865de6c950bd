-- Mirrors migrations/sqlite/008_fewer_event_indexes.sql: one index fewer on every event insert.
DROP INDEX an_events_type_ts;
