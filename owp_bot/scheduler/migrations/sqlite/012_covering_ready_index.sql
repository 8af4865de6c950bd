-- next_candidate walks tasks_ready in assignment order and skips the tasks this worker may not take. Most of
-- the ones it skips belong to repos whose review budget is full: their ready tasks gather at the front of the
-- queue, and a worker walked past 175 of them in the benchmark's worker loop. With only (priority, created_at,
-- id) in the index, each skipped task cost a read of its row in the table. The index now carries every column
-- the filter reads, so SQLite reads a row only for the task it returns: 231 -> 108 µs per call (median, on a
-- copy of the benchmark's database; same answers for 600 calls, bench/RESULTS.md).
DROP INDEX tasks_ready;
CREATE INDEX tasks_ready ON tasks (priority DESC, created_at, id, repo, area, estimate_points, min_trust, updated_at)
WHERE status = 'ready';
