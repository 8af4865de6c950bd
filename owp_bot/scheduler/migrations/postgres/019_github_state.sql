-- Mirrors migrations/sqlite/019_github_state.sql: the newest state of each issue the pool applied, the reviews
-- reputation counted; and a renamed repo takes its history along.

CREATE TABLE gh_issue_seen (
    repo         text NOT NULL,
    issue_number integer NOT NULL,
    updated_at   double precision NOT NULL,          -- GitHub's issue.updated_at (whole seconds)
    in_pool      integer NOT NULL,
    PRIMARY KEY (repo, issue_number)
);

CREATE TABLE gh_reviews (
    review_id bigint PRIMARY KEY,                    -- GitHub's review id
    task_id   text NOT NULL REFERENCES tasks (id),
    worker_id text,                                  -- NULL: counted for nobody (a review of a task's old PR)
    state     text NOT NULL,                         -- approved | changes_requested
    dismissed integer NOT NULL DEFAULT 0
);
INSERT INTO gh_reviews (review_id, task_id, worker_id, state)
SELECT (details::jsonb ->> 'review_id')::bigint, target, details::jsonb ->> 'worker_id', substr(type, 8)
FROM events
WHERE type IN ('review.approved', 'review.changes_requested') AND details::jsonb ->> 'review_id' IS NOT NULL
ON CONFLICT (review_id) DO NOTHING;
UPDATE gh_reviews SET dismissed = 1
WHERE review_id IN (SELECT (details::jsonb ->> 'review_id')::bigint FROM events
                    WHERE type = 'review.dismissed' AND details::jsonb ->> 'review_id' IS NOT NULL);

-- Only the `repo` column of an event may change (a renamed repo); every other column stays as it was written.
CREATE OR REPLACE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.seq, NEW.ts, NEW.type, NEW.actor, NEW.target, NEW.details)
       IS DISTINCT FROM (OLD.seq, OLD.ts, OLD.type, OLD.actor, OLD.target, OLD.details) THEN
        RAISE EXCEPTION 'events are append-only';
    END IF;
    RETURN NEW;
END;
$$;
