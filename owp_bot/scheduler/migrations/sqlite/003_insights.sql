-- Trust, reputation and analytics: the reputation score kept on the worker row (the assignment hot path
-- reads it, never the log), repos' sensitive areas, outcome counts carried over when old events are
-- pruned, review-budget samples for saturation analytics, and the indexes the aggregates run on.

-- 0..100; 50 is the prior mean (reputation.py), so a new worker starts mid-scale.
ALTER TABLE workers ADD COLUMN reputation REAL NOT NULL DEFAULT 50;
-- Fresh high-priority candidates look for a better-reputed online rival by walking this index.
CREATE INDEX rep_workers_reputation ON workers (reputation DESC) WHERE status NOT IN ('offline', 'paused');
-- Set when a worker's outcomes change; the automatic promotion/demotion rules (when on) review these rows.
ALTER TABLE workers ADD COLUMN rep_review INTEGER NOT NULL DEFAULT 0;
CREATE INDEX rep_workers_review ON workers (id) WHERE rep_review = 1;

-- JSON list of areas that imply min_trust = trusted for every task in them.
ALTER TABLE repos ADD COLUMN sensitive_areas TEXT NOT NULL DEFAULT '[]';

-- Reputation is computed from each worker's outcome events: index them by the worker they concern.
CREATE INDEX rep_events_worker ON events (json_extract(details, '$.worker_id'), type)
WHERE json_extract(details, '$.worker_id') IS NOT NULL;

-- Outcome counts of events removed by retention, so that pruning the log never changes a reputation.
CREATE TABLE rep_carry (
    worker_id       TEXT PRIMARY KEY,
    completed       INTEGER NOT NULL DEFAULT 0,
    expired         INTEGER NOT NULL DEFAULT 0,
    released        INTEGER NOT NULL DEFAULT 0,
    declined        INTEGER NOT NULL DEFAULT 0,
    merged          INTEGER NOT NULL DEFAULT 0,
    closed_unmerged INTEGER NOT NULL DEFAULT 0,
    approved        INTEGER NOT NULL DEFAULT 0,
    changes         INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Analytics aggregate over a time range, grouped by type: covering indexes for the pool and per repo.
CREATE INDEX an_events_ts_type ON events (ts, type, repo);
CREATE INDEX an_events_repo_ts_type ON events (repo, ts, type);

-- Periodic samples of each repo's review budget and ready queue (saturation and bottleneck analytics).
CREATE TABLE an_budget_samples (
    repo         TEXT NOT NULL,
    ts           REAL NOT NULL,
    in_flight    INTEGER NOT NULL,
    max_open_prs INTEGER NOT NULL,
    ready        INTEGER NOT NULL,
    PRIMARY KEY (repo, ts)
) WITHOUT ROWID;
CREATE INDEX an_budget_samples_ts ON an_budget_samples (ts);

-- Outcome counts by type over a time range (closed-unmerged PRs, completion times) and lease busy time.
CREATE INDEX an_events_type_ts ON events (type, ts);
CREATE INDEX an_leases_granted ON leases (granted_at);
