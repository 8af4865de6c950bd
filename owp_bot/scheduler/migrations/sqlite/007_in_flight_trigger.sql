-- A task's status change keeps its repo's in-flight count and its area lock in step, in the same statement
-- (issue 9: each was a statement of its own, a round trip each on PostgreSQL). In flight: offered, leased,
-- in_progress, blocked, pr_opened (models.IN_FLIGHT; tests/test_postgres_parity.py checks the two agree).
-- The counts and locks already kept are right: nothing to backfill.
CREATE TRIGGER tasks_in_flight AFTER UPDATE OF status ON tasks
WHEN (OLD.status IN ('offered', 'leased', 'in_progress', 'blocked', 'pr_opened'))
  <> (NEW.status IN ('offered', 'leased', 'in_progress', 'blocked', 'pr_opened'))
BEGIN
  UPDATE repos SET in_flight = in_flight
    + CASE WHEN NEW.status IN ('offered', 'leased', 'in_progress', 'blocked', 'pr_opened') THEN 1 ELSE -1 END
  WHERE id = NEW.repo;
  INSERT OR IGNORE INTO area_locks (repo, area, task_id)
  SELECT NEW.repo, NEW.area, NEW.id FROM repos
  WHERE id = NEW.repo AND area_locks = 1 AND NEW.area IS NOT NULL
    AND NEW.status IN ('offered', 'leased', 'in_progress', 'blocked', 'pr_opened');
  DELETE FROM area_locks
  WHERE task_id = NEW.id AND NEW.status NOT IN ('offered', 'leased', 'in_progress', 'blocked', 'pr_opened');
END;
