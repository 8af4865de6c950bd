-- Mirrors migrations/sqlite/022_voided_leases.sql: `lease.voided` takes back a completion whose pull request
-- GitHub does not show as the worker's, and counts the lease as one that delivered nothing: expired.
CREATE OR REPLACE FUNCTION owp_count_outcome() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  d jsonb := NEW.details::jsonb;
BEGIN
  IF d ->> 'worker_id' IS NULL THEN
    RETURN NULL;
  END IF;
  INSERT INTO worker_outcomes AS w (worker_id, completed, expired, released, declined, merged, closed_unmerged,
                                    approved, changes)
  VALUES (d ->> 'worker_id', (NEW.type = 'lease.completed')::int - (NEW.type = 'lease.voided')::int,
          (NEW.type IN ('lease.expired', 'lease.voided'))::int,
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
                   'lease.voided'))
EXECUTE FUNCTION owp_count_outcome();
