-- The scheduler core: repos, tasks, workers, offers, leases, area locks and the event log.
-- Times are seconds since the epoch (REAL). JSON lists are stored as TEXT.

CREATE TABLE repos (
    id                TEXT PRIMARY KEY,              -- owner/name
    max_open_prs      INTEGER NOT NULL CHECK (max_open_prs >= 0),
    area_locks        INTEGER NOT NULL DEFAULT 1,
    lease_ttl         REAL,                          -- NULL: the server default
    offer_ttl         REAL,
    in_flight         INTEGER NOT NULL DEFAULT 0 CHECK (in_flight >= 0),  -- pool tasks offered..pr_opened
    external_open_prs INTEGER NOT NULL DEFAULT 0 CHECK (external_open_prs >= 0),
    created_at        REAL NOT NULL,
    updated_at        REAL NOT NULL
);

CREATE TABLE workers (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    github_handle        TEXT,
    skills               TEXT NOT NULL,              -- JSON list, normalised
    capacity_points      INTEGER NOT NULL CHECK (capacity_points > 0),
    max_concurrent_tasks INTEGER NOT NULL CHECK (max_concurrent_tasks > 0),
    status               TEXT NOT NULL,              -- idle | working | paused | offline
    note                 TEXT,
    trust_tier           INTEGER NOT NULL DEFAULT 1,
    token_hash           TEXT NOT NULL UNIQUE,
    last_heartbeat       REAL NOT NULL,
    created_at           REAL NOT NULL
);
CREATE INDEX workers_handle ON workers (lower(github_handle));
CREATE INDEX workers_stale ON workers (last_heartbeat) WHERE status <> 'offline';

CREATE TABLE tasks (
    id               TEXT PRIMARY KEY,
    repo             TEXT NOT NULL REFERENCES repos (id),
    external_key     TEXT,                           -- import key or issue number: idempotence
    title            TEXT NOT NULL,
    url              TEXT,
    issue_number     INTEGER,
    estimate_points  INTEGER NOT NULL CHECK (estimate_points > 0),
    required_skills  TEXT NOT NULL,                  -- JSON list, normalised
    area             TEXT,
    priority         INTEGER NOT NULL,
    min_trust        INTEGER NOT NULL,
    status           TEXT NOT NULL,
    worker_id        TEXT REFERENCES workers (id),   -- holder while offered..pr_opened, then credit
    pr_url           TEXT,
    pr_number        INTEGER,
    source           TEXT NOT NULL,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    UNIQUE (repo, external_key)
);
-- The candidate scan: ready tasks in assignment order.
CREATE INDEX tasks_ready ON tasks (priority DESC, created_at, id) WHERE status = 'ready';
CREATE INDEX tasks_by_worker ON tasks (worker_id, status);
CREATE INDEX tasks_by_repo ON tasks (repo, status);
CREATE INDEX tasks_issue ON tasks (repo, issue_number);

CREATE TABLE task_skills (
    task_id TEXT NOT NULL REFERENCES tasks (id),
    skill   TEXT NOT NULL,
    PRIMARY KEY (task_id, skill)
) WITHOUT ROWID;

-- One row per (repo, area) with work in flight: the primary key *is* the area lock.
CREATE TABLE area_locks (
    repo    TEXT NOT NULL,
    area    TEXT NOT NULL,
    task_id TEXT NOT NULL UNIQUE,
    PRIMARY KEY (repo, area)
) WITHOUT ROWID;

CREATE TABLE offers (
    id          TEXT PRIMARY KEY,
    task_id     TEXT NOT NULL REFERENCES tasks (id),
    worker_id   TEXT NOT NULL REFERENCES workers (id),
    state       TEXT NOT NULL,
    reason      TEXT,
    note        TEXT,
    created_at  REAL NOT NULL,
    expires_at  REAL NOT NULL,
    resolved_at REAL
);
CREATE UNIQUE INDEX offers_one_pending ON offers (task_id) WHERE state = 'pending';
CREATE INDEX offers_due ON offers (expires_at) WHERE state = 'pending';
CREATE INDEX offers_by_worker ON offers (worker_id, state);
CREATE INDEX offers_declined ON offers (worker_id, task_id, resolved_at) WHERE state = 'rejected';

CREATE TABLE leases (
    id             TEXT PRIMARY KEY,
    task_id        TEXT NOT NULL REFERENCES tasks (id),
    worker_id      TEXT NOT NULL REFERENCES workers (id),
    state          TEXT NOT NULL,
    granted_at     REAL NOT NULL,
    expires_at     REAL NOT NULL,
    max_expires_at REAL NOT NULL,
    ended_at       REAL
);
CREATE UNIQUE INDEX leases_one_active ON leases (task_id) WHERE state = 'active';
CREATE INDEX leases_due ON leases (expires_at) WHERE state = 'active';
CREATE INDEX leases_by_worker ON leases (worker_id, state);

-- Append-only: the audit trail, the SSE stream (id = seq) and the input of analytics.
CREATE TABLE events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    ts      REAL NOT NULL,
    type    TEXT NOT NULL,
    actor   TEXT NOT NULL,
    target  TEXT,
    repo    TEXT,
    details TEXT NOT NULL                              -- JSON object
);
CREATE INDEX events_type ON events (type, seq);
CREATE INDEX events_actor ON events (actor, seq);
CREATE INDEX events_target ON events (target, seq);
CREATE INDEX events_repo ON events (repo, seq);
CREATE INDEX events_ts ON events (ts);

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
