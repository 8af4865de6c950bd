-- What the GitHub side keeps apart from the event log (docs/github-app.md): the newest state of each issue the
-- pool applied, the reviews reputation counted; and a renamed repo takes its history along.

-- Per issue, GitHub's `updated_at` of the newest view of it the pool applied, and whether that view had the issue
-- in the pool (open, with the ready label): GitHub does not deliver in order, and a late delivery of an older
-- state must not undo a newer one (github_operations.reconcile_issue).
CREATE TABLE gh_issue_seen (
    repo         TEXT NOT NULL,
    issue_number INTEGER NOT NULL,
    updated_at   REAL NOT NULL,                      -- GitHub's issue.updated_at (whole seconds)
    in_pool      INTEGER NOT NULL,
    PRIMARY KEY (repo, issue_number)
) WITHOUT ROWID;

-- Each approval or change request reputation counted, for whom, and whether its dismissal took it back: a dismissal
-- reads this, not the review's event, which retention (OWP_EVENT_RETENTION) may have pruned. Filled from the log.
CREATE TABLE gh_reviews (
    review_id INTEGER PRIMARY KEY,                   -- GitHub's review id
    task_id   TEXT NOT NULL REFERENCES tasks (id),
    worker_id TEXT,                                  -- NULL: counted for nobody (a review of a task's old PR)
    state     TEXT NOT NULL,                         -- approved | changes_requested
    dismissed INTEGER NOT NULL DEFAULT 0
);
INSERT INTO gh_reviews (review_id, task_id, worker_id, state)
SELECT json_extract(details, '$.review_id'), target, json_extract(details, '$.worker_id'), substr(type, 8)
FROM events
WHERE type IN ('review.approved', 'review.changes_requested') AND json_extract(details, '$.review_id') IS NOT NULL
ON CONFLICT (review_id) DO NOTHING;
UPDATE gh_reviews SET dismissed = 1
WHERE review_id IN (SELECT json_extract(details, '$.review_id') FROM events WHERE type = 'review.dismissed');

-- A repo renamed or transferred on GitHub keeps its history under its new name (github_operations.repo_renamed):
-- the `repo` column of its events follows it; every other column of an event stays as it was written.
DROP TRIGGER events_no_update;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
WHEN NEW.seq IS NOT OLD.seq OR NEW.ts IS NOT OLD.ts OR NEW.type IS NOT OLD.type OR NEW.actor IS NOT OLD.actor
  OR NEW.target IS NOT OLD.target OR NEW.details IS NOT OLD.details
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
