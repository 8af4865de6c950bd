-- The reputation head start (issue 8, bench/RESULTS.md): while a better-reputed worker is online, urgent
-- tasks that became ready in the last OWP_REPUTATION_HEAD_START seconds wait for it. After a bulk import every
-- urgent task is that fresh, and next_candidate walked past all of them (25,000 at 100k tasks) on each call.
-- urgent_settled asks this index whether any urgent task is past its head start; when none is, the walk
-- starts below the urgent priorities.
CREATE INDEX tasks_ready_urgent ON tasks (priority, updated_at) WHERE status = 'ready';
