-- The scheduler core on PostgreSQL: the same tables, columns and indexes as migrations/sqlite/001_core.sql.
-- Times are seconds since the epoch (double precision). JSON lists are stored as text, as on SQLite, so
-- that the operations read rows the same way on both backends.

CREATE TABLE repos (
    id                text PRIMARY KEY,              -- owner/name
    max_open_prs      integer NOT NULL CHECK (max_open_prs >= 0),
    area_locks        integer NOT NULL DEFAULT 1,
    lease_ttl         double precision,              -- NULL: the server default
    offer_ttl         double precision,
    in_flight         integer NOT NULL DEFAULT 0 CHECK (in_flight >= 0),  -- pool tasks offered..pr_opened
    external_open_prs integer NOT NULL DEFAULT 0 CHECK (external_open_prs >= 0),
    created_at        double precision NOT NULL,
    updated_at        double precision NOT NULL
);

CREATE TABLE workers (
    id                   text PRIMARY KEY,
    name                 text NOT NULL,
    github_handle        text,
    skills               text NOT NULL,              -- JSON list, normalised
    capacity_points      integer NOT NULL CHECK (capacity_points > 0),
    max_concurrent_tasks integer NOT NULL CHECK (max_concurrent_tasks > 0),
    status               text NOT NULL,              -- idle | working | paused | offline
    note                 text,
    trust_tier           integer NOT NULL DEFAULT 1,
    token_hash           text NOT NULL UNIQUE,
    last_heartbeat       double precision NOT NULL,
    created_at           double precision NOT NULL
);
CREATE INDEX workers_handle ON workers (lower(github_handle));
CREATE INDEX workers_stale ON workers (last_heartbeat) WHERE status <> 'offline';

CREATE TABLE tasks (
    id               text PRIMARY KEY,
    repo             text NOT NULL REFERENCES repos (id),
    external_key     text,                           -- import key or issue number: idempotence
    title            text NOT NULL,
    url              text,
    issue_number     integer,
    estimate_points  integer NOT NULL CHECK (estimate_points > 0),
    required_skills  text NOT NULL,                  -- JSON list, normalised
    area             text,
    priority         integer NOT NULL,
    min_trust        integer NOT NULL,
    status           text NOT NULL,
    worker_id        text REFERENCES workers (id),   -- holder while offered..pr_opened, then credit
    pr_url           text,
    pr_number        integer,
    source           text NOT NULL,
    created_at       double precision NOT NULL,
    updated_at       double precision NOT NULL,
    UNIQUE (repo, external_key)
);
-- The candidate scan: ready tasks in assignment order.
CREATE INDEX tasks_ready ON tasks (priority DESC, created_at, id) WHERE status = 'ready';
CREATE INDEX tasks_by_worker ON tasks (worker_id, status);
CREATE INDEX tasks_by_repo ON tasks (repo, status);
CREATE INDEX tasks_issue ON tasks (repo, issue_number);

CREATE TABLE task_skills (
    task_id text NOT NULL REFERENCES tasks (id),
    skill   text NOT NULL,
    PRIMARY KEY (task_id, skill)
);

-- One row per (repo, area) with work in flight: the primary key *is* the area lock.
CREATE TABLE area_locks (
    repo    text NOT NULL,
    area    text NOT NULL,
    task_id text NOT NULL UNIQUE,
    PRIMARY KEY (repo, area)
);

CREATE TABLE offers (
    id          text PRIMARY KEY,
    task_id     text NOT NULL REFERENCES tasks (id),
    worker_id   text NOT NULL REFERENCES workers (id),
    state       text NOT NULL,
    reason      text,
    note        text,
    created_at  double precision NOT NULL,
    expires_at  double precision NOT NULL,
    resolved_at double precision
);
CREATE UNIQUE INDEX offers_one_pending ON offers (task_id) WHERE state = 'pending';
CREATE INDEX offers_due ON offers (expires_at) WHERE state = 'pending';
CREATE INDEX offers_by_worker ON offers (worker_id, state);
CREATE INDEX offers_declined ON offers (worker_id, task_id, resolved_at) WHERE state = 'rejected';

CREATE TABLE leases (
    id             text PRIMARY KEY,
    task_id        text NOT NULL REFERENCES tasks (id),
    worker_id      text NOT NULL REFERENCES workers (id),
    state          text NOT NULL,
    granted_at     double precision NOT NULL,
    expires_at     double precision NOT NULL,
    max_expires_at double precision NOT NULL,
    ended_at       double precision
);
CREATE UNIQUE INDEX leases_one_active ON leases (task_id) WHERE state = 'active';
CREATE INDEX leases_due ON leases (expires_at) WHERE state = 'active';
CREATE INDEX leases_by_worker ON leases (worker_id, state);

-- Append-only: the audit trail, the SSE stream (id = seq) and the input of analytics. `seq` is not a
-- sequence: event_insert takes the next number from event_counter under the writers' lock
-- (postgres_store.py), so a rolled-back transaction gives its numbers back (no holes), commit order equals
-- seq order on every replica, and a number is never reused, even after old events are pruned.
CREATE TABLE event_counter (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    seq bigint NOT NULL
);
INSERT INTO event_counter (seq) VALUES (0);

CREATE TABLE events (
    seq     bigint PRIMARY KEY,
    ts      double precision NOT NULL,
    type    text NOT NULL,
    actor   text NOT NULL,
    target  text,
    repo    text,
    details text NOT NULL                              -- JSON object
);
CREATE INDEX events_type ON events (type, seq);
CREATE INDEX events_actor ON events (actor, seq);
CREATE INDEX events_target ON events (target, seq);
CREATE INDEX events_repo ON events (repo, seq);
CREATE INDEX events_ts ON events (ts);

CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only';
END;
$$;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
FOR EACH ROW EXECUTE FUNCTION events_append_only();
