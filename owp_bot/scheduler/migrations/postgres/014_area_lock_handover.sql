-- Mirrors migrations/sqlite/014_area_lock_handover.sql: a task leaving flight hands its area lock to another task
-- of the same repo and area still in flight (two are in flight together only when area locks were turned on
-- while both were); without it, a third task in that area could be offered while the other was worked on.
CREATE OR REPLACE FUNCTION owp_task_in_flight() RETURNS trigger LANGUAGE plpgsql AS $$
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
    IF NEW.area IS NOT NULL THEN
      INSERT INTO area_locks (repo, area, task_id)
      SELECT t.repo, t.area, t.id FROM tasks t JOIN repos r ON r.id = t.repo AND r.area_locks = 1
      WHERE t.repo = NEW.repo AND t.area = NEW.area AND t.id <> NEW.id
        AND t.status IN ('offered', 'leased', 'in_progress', 'blocked', 'pr_opened')
      ORDER BY t.created_at LIMIT 1
      ON CONFLICT DO NOTHING;
    END IF;
  END IF;
  RETURN NULL;
END
$$;

-- an area a lock went missing from already is locked again, by its oldest task in flight
INSERT INTO area_locks (repo, area, task_id)
SELECT DISTINCT ON (t.repo, t.area) t.repo, t.area, t.id FROM tasks t JOIN repos r ON r.id = t.repo AND r.area_locks = 1
WHERE t.area IS NOT NULL AND t.status IN ('offered', 'leased', 'in_progress', 'blocked', 'pr_opened')
ORDER BY t.repo, t.area, t.created_at
ON CONFLICT DO NOTHING;
