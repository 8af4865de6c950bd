-- Indexes for the hot path (issue 8, bench/RESULTS.md).
-- leases_of_offline runs in every write transaction: drive it from the offline workers, not the active leases.
CREATE INDEX workers_offline ON workers (last_heartbeat) WHERE status = 'offline';
