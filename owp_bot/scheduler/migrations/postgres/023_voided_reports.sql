-- Mirrors migrations/sqlite/023_voided_reports.sql: a voided lease's state is `voided`, the PR each voided lease
-- reported is kept apart from the leases, and `lease.unvoided` takes a void back in the outcome counts.
CREATE TABLE gh_voided_reports (
    lease_id  text PRIMARY KEY REFERENCES leases (id),
    pr_number integer NOT NULL                       -- of the task's repo (tasks.repo, which renames follow)
);
CREATE INDEX gh_voided_reports_pr ON gh_voided_reports (pr_number);

INSERT INTO gh_voided_reports (lease_id, pr_number)
SELECT lease_id, pr_number FROM (
  SELECT (SELECT l.id FROM leases l
          WHERE l.task_id = e.target AND l.worker_id = e.details::jsonb ->> 'worker_id'
            AND l.state = 'completed' AND l.ended_at <= e.ts
          ORDER BY l.ended_at DESC LIMIT 1) AS lease_id,
         (e.details::jsonb ->> 'pr_number')::integer AS pr_number
  FROM events e WHERE e.type = 'lease.voided') AS voided
WHERE lease_id IS NOT NULL AND pr_number IS NOT NULL
ON CONFLICT DO NOTHING;
UPDATE leases SET state = 'voided' WHERE id IN (SELECT lease_id FROM gh_voided_reports);

CREATE OR REPLACE FUNCTION owp_count_outcome() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  d jsonb := NEW.details::jsonb;
BEGIN
  IF d ->> 'worker_id' IS NULL THEN
    RETURN NULL;
  END IF;
  INSERT INTO worker_outcomes AS w (worker_id, completed, expired, released, declined, merged, closed_unmerged,
                                    approved, changes)
  VALUES (d ->> 'worker_id',
          (NEW.type IN ('lease.completed', 'lease.unvoided'))::int - (NEW.type = 'lease.voided')::int,
          (NEW.type IN ('lease.expired', 'lease.voided'))::int - (NEW.type = 'lease.unvoided')::int,
          (NEW.type = 'lease.released')::int, (NEW.type = 'offer.rejected')::int, (NEW.type = 'task.merged')::int,
          (NEW.type = 'task.ready' AND d ->> 'previous' = 'pr_opened')::int,
          (NEW.type = 'review.approved')::int
            - (NEW.type = 'review.dismissed' AND d ->> 'dismissed' = 'approved')::int,
          (NEW.type = 'review.changes_requested')::int
            - (NEW.type = 'review.dismissed' AND d ->> 'dismissed' = 'changes_requested')::int)
  ON CONFLICT (worker_id) DO UPDATE SET
    completed = w.completed + excluded.completed, expired = w.expired + excluded.expired,
    released = w.released + excluded.released, declined = w.declined + excluded.declined,
    merged = w.merged + excluded.merged, closed_unmerged = w.closed_unmerged + excluded.closed_unmerged,
    approved = w.approved + excluded.approved, changes = w.changes + excluded.changes;
  IF NEW.type <> 'task.ready' OR d ->> 'previous' = 'pr_opened' THEN
    UPDATE workers SET rep_review = 1,
      reputation = (SELECT s.score FROM worker_scores s WHERE s.worker_id = workers.id)
    WHERE id = d ->> 'worker_id';
  END IF;
  RETURN NULL;
END
$$;

DROP TRIGGER events_count_outcomes ON events;
CREATE TRIGGER events_count_outcomes AFTER INSERT ON events FOR EACH ROW
WHEN (NEW.type IN ('lease.completed', 'lease.expired', 'lease.released', 'offer.rejected', 'task.merged',
                   'task.ready', 'review.approved', 'review.changes_requested', 'review.dismissed',
                   'lease.voided', 'lease.unvoided'))
EXECUTE FUNCTION owp_count_outcome();
