-- Mirrors migrations/sqlite/021_repository_ids.sql: each name the app saw GitHub's repository id under.
CREATE TABLE gh_repo_names (
    github_id bigint NOT NULL,                       -- GitHub's repository id
    repo      text NOT NULL,                         -- owner/name, as the app saw it
    PRIMARY KEY (github_id, repo)
);

INSERT INTO gh_repo_names (github_id, repo)
SELECT DISTINCT (payload::jsonb -> 'repository' ->> 'id')::bigint, repo FROM gh_deliveries
WHERE outcome = 'ok' AND repo IS NOT NULL
  AND CASE WHEN outcome = 'ok' THEN jsonb_typeof(payload::jsonb -> 'repository' -> 'id') END = 'number'
ON CONFLICT DO NOTHING;
