-- Mirrors migrations/sqlite/007_in_flight_trigger.sql: a task's status change keeps its repo's in-flight count
-- and its area lock in step, in the same statement (one round trip instead of three).
CREATE FUNCTION owp_task_in_flight() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  flying boolean := NEW.status IN ('offered', 'leased', 'in_progress', 'blocked', 'pr_opened');
BEGIN
  UPDATE repos SET in_flight = in_flight + CASE WHEN flying THEN 1 ELSE -1 END WHERE id = NEW.repo;
  IF flying THEN
    INSERT INTO area_locks (repo, area, task_id)
    SELECT NEW.repo, NEW.area, NEW.id FROM repos WHERE id = NEW.repo AND area_locks = 1 AND NEW.area IS NOT NULL
    ON CONFLICT DO NOTHING;
  ELSE
    DELETE FROM area_locks WHERE task_id = NEW.id;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER tasks_in_flight AFTER UPDATE OF status ON tasks FOR EACH ROW
WHEN ((OLD.status IN ('offered', 'leased', 'in_progress', 'blocked', 'pr_opened'))
      IS DISTINCT FROM (NEW.status IN ('offered', 'leased', 'in_progress', 'blocked', 'pr_opened')))
EXECUTE FUNCTION owp_task_in_flight();
