-- A task made from a GitHub issue is found by its issue number, no longer by a key equal to it: the key is the
-- maintainer's own (POST /v1/tasks, task files), so key `12` and issue #12 are two tasks. An import that took an
-- issue's key had also overwritten its issue number; the key still holds it.
UPDATE tasks SET issue_number = CAST(external_key AS INTEGER), external_key = NULL WHERE source = 'github';
CREATE UNIQUE INDEX tasks_github_issue ON tasks (repo, issue_number) WHERE source = 'github';
