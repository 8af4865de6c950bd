-- Mirrors migrations/sqlite/015_tier_bases.sql: the automatic trust rules count merged PRs and expired leases
-- since an admin last set a worker's tier (NULL: never).
ALTER TABLE workers ADD COLUMN tier_merged_base integer;
ALTER TABLE workers ADD COLUMN tier_expired_base integer;
