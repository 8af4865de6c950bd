-- Every event insert kept seven indexes up to date: a fifth of the server's CPU per lease in the claim benchmark
-- (bench/RESULTS.md). an_events_type_ts (type, ts) served three analytics queries, which now read the period
-- from an_events_ts_type (ts, type, repo): one index fewer on every write, a wider scan on a report.
DROP INDEX an_events_type_ts;
