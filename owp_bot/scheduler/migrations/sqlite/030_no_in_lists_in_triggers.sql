-- The in-flight trigger (migration 014) and the outcome trigger (migration 023) without IN lists of three or more
-- values. SQLite 3.40 builds a temporary b-tree for such a list every time a statement or trigger evaluates it (a
-- page allocated and zeroed: ~20,000 instructions), and these ran on every status change and every event: 12% of
-- the instructions of a lease (bench/RESULTS.md, seventeenth session). Here a set of values is a string with each
-- between bars, and `instr(set, '|' || value || '|') > 0` says the value is in it (no status or event type holds a
-- bar: they are the models' enums, which every write goes through).

-- A task's review budget and area lock follow it into flight and out (offered, leased, in_progress, blocked,
-- pr_opened): two triggers, so that only their conditions ask which statuses are in flight.
DROP TRIGGER tasks_in_flight;
CREATE TRIGGER tasks_into_flight AFTER UPDATE OF status ON tasks
WHEN instr('|offered|leased|in_progress|blocked|pr_opened|', '|' || NEW.status || '|') > 0
 AND instr('|offered|leased|in_progress|blocked|pr_opened|', '|' || OLD.status || '|') = 0
BEGIN
  UPDATE repos SET in_flight = in_flight + 1 WHERE id = NEW.repo;
  INSERT OR IGNORE INTO area_locks (repo, area, task_id)
  SELECT NEW.repo, NEW.area, NEW.id FROM repos WHERE id = NEW.repo AND area_locks = 1 AND NEW.area IS NOT NULL;
END;
CREATE TRIGGER tasks_out_of_flight AFTER UPDATE OF status ON tasks
WHEN instr('|offered|leased|in_progress|blocked|pr_opened|', '|' || OLD.status || '|') > 0
 AND instr('|offered|leased|in_progress|blocked|pr_opened|', '|' || NEW.status || '|') = 0
BEGIN
  UPDATE repos SET in_flight = in_flight - 1 WHERE id = NEW.repo;
  DELETE FROM area_locks WHERE task_id = NEW.id;
  -- the area's lock goes to the oldest other task of the repo in it still in flight (migration 014)
  INSERT OR IGNORE INTO area_locks (repo, area, task_id)
  SELECT t.repo, t.area, t.id FROM tasks t JOIN repos r ON r.id = t.repo AND r.area_locks = 1
  WHERE NEW.area IS NOT NULL AND t.repo = NEW.repo AND t.area = NEW.area AND t.id <> NEW.id
    AND t.status IN ('offered', 'leased', 'in_progress', 'blocked', 'pr_opened')
  ORDER BY t.created_at LIMIT 1;
END;

DROP TRIGGER events_count_outcomes;
CREATE TRIGGER events_count_outcomes AFTER INSERT ON events
WHEN instr('|lease.completed|lease.expired|lease.released|offer.rejected|task.merged|task.ready|review.approved|'
           || 'review.changes_requested|review.dismissed|lease.voided|lease.unvoided|', '|' || NEW.type || '|') > 0
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
