-- The score moves with its counters, in the same trigger (issue 9): an outcome was followed by two statements of
-- the operation's own (read the counters, write the score), round trips on PostgreSQL, and there the counters
-- could only be read after inserting the events held back. reputation.py's `score` is the reference; the
-- weights are repeated here, summed in the same order, in the same floating point, and
-- tests/test_reputation.py checks that both backends store exactly what `score` computes.
CREATE VIEW worker_scores AS
SELECT worker_id,
       CAST(100 * (2.0 + good) / (2.0 + 2.0 + good + bad) * 10 + 0.5 AS INTEGER) / 10.0 AS score
FROM (SELECT worker_id,
             completed * 1.0 + merged * 1.0 + approved * 0.5 AS good,
             expired * 1.0 + closed_unmerged * 1.0 + released * 0.5 + changes * 0.25 + declined * 0.1 AS bad
      FROM worker_outcomes);

DROP TRIGGER events_count_outcomes;

CREATE TRIGGER events_count_outcomes AFTER INSERT ON events
WHEN NEW.type IN ('lease.completed', 'lease.expired', 'lease.released', 'offer.rejected', 'task.merged',
                  'task.ready', 'review.approved', 'review.changes_requested')
 AND json_extract(NEW.details, '$.worker_id') IS NOT NULL
BEGIN
  INSERT INTO worker_outcomes (worker_id, completed, expired, released, declined, merged, closed_unmerged,
                               approved, changes)
  VALUES (json_extract(NEW.details, '$.worker_id'), NEW.type = 'lease.completed', NEW.type = 'lease.expired',
          NEW.type = 'lease.released', NEW.type = 'offer.rejected', NEW.type = 'task.merged',
          NEW.type = 'task.ready' AND json_extract(NEW.details, '$.previous') = 'pr_opened',
          NEW.type = 'review.approved', NEW.type = 'review.changes_requested')
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

-- Scores rounded the new way (halves up, as SQL rounds them), so that every stored score is its counters' score.
UPDATE workers SET reputation = (SELECT score FROM worker_scores WHERE worker_id = workers.id)
WHERE id IN (SELECT worker_id FROM worker_outcomes);
