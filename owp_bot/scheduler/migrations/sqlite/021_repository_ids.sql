-- GitHub's numeric repository id never changes across renames and transfers, and every delivery about a repo
-- carries it (`repository.id`). Each name the app saw a repository id under: the pool repo's name, and the names
-- it had before, so that a delivery under a name the pool does not know finds its repo (github_operations.
-- delivery_repo): a new name follows the rename before GitHub's `repository` event arrives; a former name is a
-- late delivery, for the repo under its current name.
CREATE TABLE gh_repo_names (
    github_id INTEGER NOT NULL,                      -- GitHub's repository id
    repo      TEXT NOT NULL,                         -- owner/name, as the app saw it
    PRIMARY KEY (github_id, repo)
) WITHOUT ROWID;

-- What the deliveries the pool applied already showed (each delivery records the pool repo it was applied to).
INSERT INTO gh_repo_names (github_id, repo)
SELECT DISTINCT json_extract(payload, '$.repository.id'), repo FROM gh_deliveries
WHERE outcome = 'ok' AND repo IS NOT NULL
  AND CASE WHEN json_valid(payload) THEN json_type(payload, '$.repository.id') END = 'integer'
ON CONFLICT DO NOTHING;
