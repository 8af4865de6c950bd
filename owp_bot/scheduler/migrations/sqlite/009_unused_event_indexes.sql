-- No statement reads through events_actor (actor, seq) or events_repo (repo, seq): the event log's optional
-- filters (`?3 IS NULL OR actor = ?3` in events_page) are planned once for every combination, so both backends
-- walk the log in seq order from the cursor whatever the filter (EXPLAIN QUERY PLAN, bench/RESULTS.md). They
-- only cost every event insert two index entries at random places, and every COMMIT the pages they dirtied.
DROP INDEX events_actor;
DROP INDEX events_repo;
