-- Mirrors migrations/sqlite/020_keyed_issue_tasks.sql: a task keyed with its own issue number was that issue's
-- task before migration 018 (GitHub found tasks by key); it stays the issue's, so no second task appears for it.
UPDATE tasks SET source = 'github', external_key = NULL
WHERE source <> 'github' AND issue_number IS NOT NULL AND external_key = CAST(issue_number AS text)
  AND NOT EXISTS (SELECT 1 FROM tasks g
                  WHERE g.repo = tasks.repo AND g.issue_number = tasks.issue_number AND g.source = 'github');
