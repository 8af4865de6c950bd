-- Migration 007's trigger, with one more step: a task leaving flight hands its area lock to another task of
-- the same repo and area still in flight. Two can be in flight together only when area locks were turned on
-- while both were (area_locks_rebuild_repo locks the older); without the handover, the first one's end freed
-- the area while the other was still being worked on, and a third task in it could be offered.
DROP TRIGGER tasks_in_flight;
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
  INSERT OR IGNORE INTO area_locks (repo, area, task_id)
  SELECT t.repo, t.area, t.id FROM tasks t JOIN repos r ON r.id = t.repo AND r.area_locks = 1
  WHERE NEW.status NOT IN ('offered', 'leased', 'in_progress', 'blocked', 'pr_opened') AND NEW.area IS NOT NULL
    AND t.repo = NEW.repo AND t.area = NEW.area AND t.id <> NEW.id
    AND t.status IN ('offered', 'leased', 'in_progress', 'blocked', 'pr_opened')
  ORDER BY t.created_at LIMIT 1;
END;

-- an area a lock went missing from already is locked again, by its oldest task in flight
INSERT OR IGNORE INTO area_locks (repo, area, task_id)
SELECT t.repo, t.area, t.id FROM tasks t JOIN repos r ON r.id = t.repo AND r.area_locks = 1
WHERE t.area IS NOT NULL AND t.status IN ('offered', 'leased', 'in_progress', 'blocked', 'pr_opened')
ORDER BY t.created_at;
