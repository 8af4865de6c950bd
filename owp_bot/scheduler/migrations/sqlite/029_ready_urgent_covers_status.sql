-- tasks_ready_urgent serves the walks that only count or probe the ready tasks (ready_count for an empty answer's
-- explanation, ready_candidate's "are there more than 512", the urgent tasks' head start in worker_claimant).
-- As with tasks_ready (migration 028), SQLite 3.40 read each entry's row for `status = 'ready'` unless status is
-- a column of the index: counting 59,000 ready tasks took 4.7 ms, with status in it ~1 ms (bench/RESULTS.md).
DROP INDEX tasks_ready_urgent;
CREATE INDEX tasks_ready_urgent ON tasks (priority, updated_at, status) WHERE status = 'ready';
