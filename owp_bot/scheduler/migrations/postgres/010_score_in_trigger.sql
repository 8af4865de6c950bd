-- Mirrors migrations/sqlite/010_score_in_trigger.sql: the outcome trigger keeps the score too. Every number is
-- double precision, as in Python (a bare 0.1 would be numeric here, and sum differently).
CREATE VIEW worker_scores AS
SELECT worker_id,
       floor(100 * (2.0::float8 + good) / (2.0::float8 + 2.0::float8 + good + bad) * 10 + 0.5::float8) / 10
         AS score
FROM (SELECT worker_id,
             completed * 1.0::float8 + merged * 1.0::float8 + approved * 0.5::float8 AS good,
             expired * 1.0::float8 + closed_unmerged * 1.0::float8 + released * 0.5::float8
               + changes * 0.25::float8 + declined * 0.1::float8 AS bad
      FROM worker_outcomes) counted;

CREATE OR REPLACE FUNCTION owp_count_outcome() RETURNS trigger LANGUAGE plpgsql AS $$
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
  IF NEW.type <> 'task.ready' OR d ->> 'previous' = 'pr_opened' THEN
    UPDATE workers SET rep_review = 1,
      reputation = (SELECT s.score FROM worker_scores s WHERE s.worker_id = workers.id)
    WHERE id = d ->> 'worker_id';
  END IF;
  RETURN NULL;
END
$$;

UPDATE workers SET reputation = s.score FROM worker_scores s WHERE s.worker_id = workers.id;
