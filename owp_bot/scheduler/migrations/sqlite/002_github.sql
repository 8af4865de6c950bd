-- The GitHub App: installations and the repos they cover, webhook deliveries (idempotence and outcome),
-- pull requests seen, the durable outbox of calls to GitHub, and what the bot last wrote on each issue.

CREATE TABLE gh_installations (
    id         INTEGER PRIMARY KEY,                  -- GitHub's installation id
    account    TEXT NOT NULL,
    suspended  INTEGER NOT NULL DEFAULT 0,
    removed    INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL
);

-- One row per repo the app has seen; the pool's own settings stay in `repos`.
CREATE TABLE gh_repos (
    repo            TEXT PRIMARY KEY,                -- owner/name
    installation_id INTEGER,                         -- NULL: not installed (a GITHUB_TOKEN may still read it)
    ready_label     TEXT,                            -- NULL: the server default (pool:ready)
    updated_at      REAL NOT NULL
);

CREATE TABLE gh_deliveries (
    id          TEXT PRIMARY KEY,                    -- X-GitHub-Delivery
    event       TEXT NOT NULL,
    action      TEXT,
    repo        TEXT,
    outcome     TEXT NOT NULL,                       -- ok | ignored | failed
    detail      TEXT,
    payload     TEXT NOT NULL,                       -- kept so that an admin can retry a failed delivery
    attempts    INTEGER NOT NULL DEFAULT 1,
    received_at REAL NOT NULL,
    updated_at  REAL NOT NULL
);
CREATE INDEX gh_deliveries_outcome ON gh_deliveries (outcome, received_at);

-- Pull requests of pool repos: linked to a task, or external (counted in repos.external_open_prs).
CREATE TABLE gh_pulls (
    repo       TEXT NOT NULL,
    number     INTEGER NOT NULL,
    task_id    TEXT REFERENCES tasks (id),
    author     TEXT NOT NULL,
    url        TEXT NOT NULL,
    state      TEXT NOT NULL,                        -- open | closed | merged
    updated_at REAL NOT NULL,
    PRIMARY KEY (repo, number)
);
CREATE INDEX gh_pulls_task ON gh_pulls (task_id);

-- Calls to GitHub waiting to be made; survives a restart. kind: sync_issue | comment.
CREATE TABLE gh_outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL,
    repo         TEXT NOT NULL,
    issue_number INTEGER NOT NULL,
    body         TEXT,
    state        TEXT NOT NULL,                      -- pending | done | gone | failed
    attempts     INTEGER NOT NULL DEFAULT 0,
    not_before   REAL NOT NULL,
    last_error   TEXT,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL
);
CREATE INDEX gh_outbox_due ON gh_outbox (not_before) WHERE state = 'pending';
-- At most one pending issue sync per issue: many events coalesce into one round of calls.
CREATE UNIQUE INDEX gh_outbox_one_sync ON gh_outbox (repo, issue_number) WHERE state = 'pending' AND kind = 'sync_issue';

-- What the bot last wrote on an issue: its one status comment and the pool:* labels it set.
CREATE TABLE gh_issue_writes (
    repo         TEXT NOT NULL,
    issue_number INTEGER NOT NULL,
    comment_id   INTEGER,
    comment_body TEXT,
    labels       TEXT NOT NULL DEFAULT '[]',         -- JSON list
    PRIMARY KEY (repo, issue_number)
);

-- The event log position up to which write-backs have been planned.
CREATE TABLE gh_cursor (
    name TEXT PRIMARY KEY,
    seq  INTEGER NOT NULL
);
INSERT INTO gh_cursor (name, seq) VALUES ('writeback', 0);

-- App credentials from the manifest flow (GITHUB_* variables take precedence); never served back.
CREATE TABLE gh_app_credentials (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    app_id         INTEGER NOT NULL,
    slug           TEXT NOT NULL,
    html_url       TEXT,
    private_key    TEXT NOT NULL,
    webhook_secret TEXT NOT NULL,
    client_id      TEXT,
    client_secret  TEXT,
    created_at     REAL NOT NULL
);

-- One-time `state` values of manifest flows an admin started.
CREATE TABLE gh_setup_states (
    state      TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
