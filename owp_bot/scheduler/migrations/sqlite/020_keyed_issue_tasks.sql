-- Before migration 018 GitHub found an issue's task by a key equal to its number, whoever made the task: a task
-- imported or POSTed with key `20` was issue #20's (its deliveries, `/owp` commands and `Closes #20` went to it,
-- and a delivery had set its issue number). 018 moved only the tasks GitHub had made, so the next delivery for
-- #20 made a second task beside the one a worker may hold. A task whose key is its own issue number is that
-- issue's task, as it was: it becomes GitHub's, found by the issue, with no key (as 018 did), unless GitHub has
-- made one for the issue since.
UPDATE tasks SET source = 'github', external_key = NULL
WHERE source <> 'github' AND issue_number IS NOT NULL AND external_key = CAST(issue_number AS TEXT)
  AND NOT EXISTS (SELECT 1 FROM tasks g
                  WHERE g.repo = tasks.repo AND g.issue_number = tasks.issue_number AND g.source = 'github');
