-- Reputation reads counters, not the log (issue 8, bench/RESULTS.md): counting a worker's outcome events on
-- every completion scanned its whole history (150 µs at a few hundred events, growing without bound).
-- rep_carry, which held the counts of pruned events, becomes the counters of every outcome event, kept by a
-- trigger in the same transaction as the event; retention no longer needs to fold anything.
ALTER TABLE rep_carry RENAME TO worker_outcomes;

INSERT INTO worker_outcomes (worker_id, completed, expired, released, declined, merged, closed_unmerged, approved,
                             changes)
SELECT json_extract(details, '$.worker_id') AS wid,
       sum(type = 'lease.completed'), sum(type = 'lease.expired'), sum(type = 'lease.released'),
       sum(type = 'offer.rejected'), sum(type = 'task.merged'),
       sum(type = 'task.ready' AND json_extract(details, '$.previous') = 'pr_opened'),
       sum(type = 'review.approved'), sum(type = 'review.changes_requested')
FROM events
WHERE json_extract(details, '$.worker_id') IS NOT NULL
  AND type IN ('lease.completed', 'lease.expired', 'lease.released', 'offer.rejected', 'task.merged',
               'task.ready', 'review.approved', 'review.changes_requested')
GROUP BY wid
ON CONFLICT (worker_id) DO UPDATE SET
  completed = completed + excluded.completed, expired = expired + excluded.expired,
  released = released + excluded.released, declined = declined + excluded.declined,
  merged = merged + excluded.merged, closed_unmerged = closed_unmerged + excluded.closed_unmerged,
  approved = approved + excluded.approved, changes = changes + excluded.changes;

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
END;

-- No query reads the log by worker any more; and events_ts (ts) is a prefix of an_events_ts_type (ts, type,
-- repo). Each index dropped is one B-tree fewer to write on every event.
DROP INDEX rep_events_worker;
DROP INDEX events_ts;
