-- A voided report shows in its lease (state `voided`, not `completed`: it led to no pull request), and the pool
-- remembers which PR each voided lease reported, so that a delivery of that PR by the lease's worker (GitHub's API
-- lagged behind it) takes the void back: `lease.unvoided` counts the lease as completed again, not expired
-- (github_operations.void_taken_back). Kept apart from the leases, which every lease writes: nothing on that path.
CREATE TABLE gh_voided_reports (
    lease_id  TEXT PRIMARY KEY REFERENCES leases (id),
    pr_number INTEGER NOT NULL                       -- of the task's repo (tasks.repo, which renames follow)
) WITHOUT ROWID;
CREATE INDEX gh_voided_reports_pr ON gh_voided_reports (pr_number);

-- The leases voided before: each `lease.voided` event's, the last its worker completed on its task before it
-- (events retention pruned are not found; their leases stay `completed`).
INSERT INTO gh_voided_reports (lease_id, pr_number)
SELECT lease_id, pr_number FROM (
  SELECT (SELECT l.id FROM leases l
          WHERE l.task_id = e.target AND l.worker_id = json_extract(e.details, '$.worker_id')
            AND l.state = 'completed' AND l.ended_at <= e.ts
          ORDER BY l.ended_at DESC LIMIT 1) AS lease_id,
         json_extract(e.details, '$.pr_number') AS pr_number
  FROM events e WHERE e.type = 'lease.voided')
WHERE lease_id IS NOT NULL AND pr_number IS NOT NULL
ON CONFLICT DO NOTHING;
UPDATE leases SET state = 'voided' WHERE id IN (SELECT lease_id FROM gh_voided_reports);

-- Migration 022's outcome trigger, with `lease.unvoided`: the reverse of `lease.voided`.
DROP TRIGGER events_count_outcomes;

CREATE TRIGGER events_count_outcomes AFTER INSERT ON events
WHEN NEW.type IN ('lease.completed', 'lease.expired', 'lease.released', 'offer.rejected', 'task.merged',
                  'task.ready', 'review.approved', 'review.changes_requested', 'review.dismissed', 'lease.voided',
                  'lease.unvoided')
 AND json_extract(NEW.details, '$.worker_id') IS NOT NULL
BEGIN
  INSERT INTO worker_outcomes (worker_id, completed, expired, released, declined, merged, closed_unmerged,
                               approved, changes)
  VALUES (json_extract(NEW.details, '$.worker_id'),
          (NEW.type IN ('lease.completed', 'lease.unvoided')) - (NEW.type = 'lease.voided'),
          (NEW.type IN ('lease.expired', 'lease.voided')) - (NEW.type = 'lease.unvoided'),
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
