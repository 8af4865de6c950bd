-- Trust, reputation and analytics on PostgreSQL: mirrors migrations/sqlite/003_insights.sql. Event details
-- are JSON text; expression indexes read them as jsonb.

-- 0..100; 50 is the prior mean (reputation.py), so a new worker starts mid-scale.
ALTER TABLE workers ADD COLUMN reputation double precision NOT NULL DEFAULT 50;
-- Fresh high-priority candidates look for a better-reputed online rival by walking this index.
CREATE INDEX rep_workers_reputation ON workers (reputation DESC) WHERE status NOT IN ('offline', 'paused');
-- Set when a worker's outcomes change; the automatic promotion/demotion rules (when on) review these rows.
ALTER TABLE workers ADD COLUMN rep_review integer NOT NULL DEFAULT 0;
CREATE INDEX rep_workers_review ON workers (id) WHERE rep_review = 1;

-- JSON list of areas that imply min_trust = trusted for every task in them.
ALTER TABLE repos ADD COLUMN sensitive_areas text NOT NULL DEFAULT '[]';

-- Reputation is computed from each worker's outcome events: index them by the worker they concern.
CREATE INDEX rep_events_worker ON events (((details::jsonb) ->> 'worker_id'), type)
WHERE ((details::jsonb) ->> 'worker_id') IS NOT NULL;

-- Outcome counts of events removed by retention, so that pruning the log never changes a reputation.
CREATE TABLE rep_carry (
    worker_id       text PRIMARY KEY,
    completed       integer NOT NULL DEFAULT 0,
    expired         integer NOT NULL DEFAULT 0,
    released        integer NOT NULL DEFAULT 0,
    declined        integer NOT NULL DEFAULT 0,
    merged          integer NOT NULL DEFAULT 0,
    closed_unmerged integer NOT NULL DEFAULT 0,
    approved        integer NOT NULL DEFAULT 0,
    changes         integer NOT NULL DEFAULT 0
);

-- Analytics aggregate over a time range, grouped by type: covering indexes for the pool and per repo.
CREATE INDEX an_events_ts_type ON events (ts, type, repo);
CREATE INDEX an_events_repo_ts_type ON events (repo, ts, type);

-- Periodic samples of each repo's review budget and ready queue (saturation and bottleneck analytics).
CREATE TABLE an_budget_samples (
    repo         text NOT NULL,
    ts           double precision NOT NULL,
    in_flight    integer NOT NULL,
    max_open_prs integer NOT NULL,
    ready        integer NOT NULL,
    PRIMARY KEY (repo, ts)
);
CREATE INDEX an_budget_samples_ts ON an_budget_samples (ts);

-- Outcome counts by type over a time range (closed-unmerged PRs, completion times) and lease busy time.
CREATE INDEX an_events_type_ts ON events (type, ts);
CREATE INDEX an_leases_granted ON leases (granted_at);
