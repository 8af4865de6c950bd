-- Mirrors migrations/sqlite/018_issue_tasks_unkeyed.sql: a task made from a GitHub issue is found by its issue
-- number, no longer by a key equal to it, so key `12` of an import and issue #12 are two tasks.
UPDATE tasks SET issue_number = CAST(external_key AS integer), external_key = NULL WHERE source = 'github';
CREATE UNIQUE INDEX tasks_github_issue ON tasks (repo, issue_number) WHERE source = 'github';
