-- Migration 017's outcome trigger, with one more event: `lease.voided` takes back a completion whose pull request
-- GitHub does not show as the worker's (a PR that does not exist, or someone else's that names no task; see
-- github_operations.report_voided) and counts the lease as what it was, a lease that delivered nothing: expired.
DROP TRIGGER events_count_outcomes;

CREATE TRIGGER events_count_outcomes AFTER INSERT ON events
WHEN NEW.type IN ('lease.completed', 'lease.expired', 'lease.released', 'offer.rejected', 'task.merged',
                  'task.ready', 'review.approved', 'review.changes_requested', 'review.dismissed', 'lease.voided')
 AND json_extract(NEW.details, '$.worker_id') IS NOT NULL
BEGIN
  INSERT INTO worker_outcomes (worker_id, completed, expired, released, declined, merged, closed_unmerged,
                               approved, changes)
  VALUES (json_extract(NEW.details, '$.worker_id'),
          (NEW.type = 'lease.completed') - (NEW.type = 'lease.voided'),
          NEW.type IN ('lease.expired', 'lease.voided'),
          NEW.type = 'lease.released', NEW.type = 'offer.rejected', NEW.type = 'task.merged',
          NEW.type = 'task.ready' AND json_extract(NEW.details, '$.previous') = 'pr_opened',
          (NEW.type = 'review.approved')
            - (NEW.type = 'review.dismissed' AND json_extract(NEW.details, '$.dismissed') = 'approved'),
          (NEW.type = 'review.changes_requested')
            - (NEW.type = 'review.dismissed' AND json_extract(NEW.details, '$.dismissed') = 'changes_requested'))
  ON CONFLICT (worker_id) DO UPDATE SET
    completed = completed + excluded.completed, expired = expired + excluded.expired,
    released = released + excluded.released, declined = declined + excluded.declined,
    merged = merged + excluded.merged, closed_unmerged = closed_unmerged + excluded.closed_unmerged,
    approved = approved + excluded.approved, changes = changes + excluded.changes;
  -- a task back to ready counts only when its PR was closed unmerged; the tier rules review the worker
  UPDATE workers SET rep_review = 1,
    reputation = (SELECT score FROM worker_scores WHERE worker_id = workers.id)
  WHERE id = json_extract(NEW.details, '$.worker_id')
    AND (NEW.type <> 'task.ready' OR json_extract(NEW.details, '$.previous') = 'pr_opened');
END;
