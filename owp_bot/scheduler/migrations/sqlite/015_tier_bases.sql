-- The automatic trust rules count merged PRs and expired leases since an admin last set a worker's tier (NULL:
-- never), so that an admin's decision is not undone at the next outcome on the evidence the admin weighed.
ALTER TABLE workers ADD COLUMN tier_merged_base INTEGER;
ALTER TABLE workers ADD COLUMN tier_expired_base INTEGER;
