-- Mirrors migrations/sqlite/005_outcome_counters.sql: reputation reads counters kept by a trigger, not the log.
ALTER TABLE rep_carry RENAME TO worker_outcomes;

INSERT INTO worker_outcomes (worker_id, completed, expired, released, declined, merged, closed_unmerged, approved,
                             changes)
SELECT (details::jsonb) ->> 'worker_id' AS wid,
       count(*) FILTER (WHERE type = 'lease.completed'), count(*) FILTER (WHERE type = 'lease.expired'),
       count(*) FILTER (WHERE type = 'lease.released'), count(*) FILTER (WHERE type = 'offer.rejected'),
       count(*) FILTER (WHERE type = 'task.merged'),
       count(*) FILTER (WHERE type = 'task.ready' AND (details::jsonb) ->> 'previous' = 'pr_opened'),
       count(*) FILTER (WHERE type = 'review.approved'), count(*) FILTER (WHERE type = 'review.changes_requested')
FROM events
WHERE (details::jsonb) ->> 'worker_id' IS NOT NULL
  AND type IN ('lease.completed', 'lease.expired', 'lease.released', 'offer.rejected', 'task.merged',
               'task.ready', 'review.approved', 'review.changes_requested')
GROUP BY wid
ON CONFLICT (worker_id) DO UPDATE SET
  completed = worker_outcomes.completed + excluded.completed, expired = worker_outcomes.expired + excluded.expired,
  released = worker_outcomes.released + excluded.released, declined = worker_outcomes.declined + excluded.declined,
  merged = worker_outcomes.merged + excluded.merged,
  closed_unmerged = worker_outcomes.closed_unmerged + excluded.closed_unmerged,
  approved = worker_outcomes.approved + excluded.approved, changes = worker_outcomes.changes + excluded.changes;

CREATE FUNCTION owp_count_outcome() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  d jsonb := NEW.details::jsonb;
BEGIN
  IF d ->> 'worker_id' IS NULL THEN
    RETURN NULL;
  END IF;
  INSERT INTO worker_outcomes AS w (worker_id, completed, expired, released, declined, merged, closed_unmerged,
                                    approved, changes)
  VALUES (d ->> 'worker_id', (NEW.type = 'lease.completed')::int, (NEW.type = 'lease.expired')::int,
          (NEW.type = 'lease.released')::int, (NEW.type = 'offer.rejected')::int, (NEW.type = 'task.merged')::int,
          (NEW.type = 'task.ready' AND d ->> 'previous' = 'pr_opened')::int,
          (NEW.type = 'review.approved')::int, (NEW.type = 'review.changes_requested')::int)
  ON CONFLICT (worker_id) DO UPDATE SET
    completed = w.completed + excluded.completed, expired = w.expired + excluded.expired,
    released = w.released + excluded.released, declined = w.declined + excluded.declined,
    merged = w.merged + excluded.merged, closed_unmerged = w.closed_unmerged + excluded.closed_unmerged,
    approved = w.approved + excluded.approved, changes = w.changes + excluded.changes;
  RETURN NULL;
END
$$;

CREATE TRIGGER events_count_outcomes AFTER INSERT ON events FOR EACH ROW
WHEN (NEW.type IN ('lease.completed', 'lease.expired', 'lease.released', 'offer.rejected', 'task.merged',
                   'task.ready', 'review.approved', 'review.changes_requested'))
EXECUTE FUNCTION owp_count_outcome();

DROP INDEX rep_events_worker;
DROP INDEX events_ts;
