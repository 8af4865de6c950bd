-- events_type (type, seq) was read only by the metrics scrape (an_event_counts_since), which counts the events
-- since the previous scrape: walking that seq range of the log costs it about as much. The index cost every
-- event insert an entry, and every COMMIT one page per event type it touched (5.7 of the 127 pages a COMMIT
-- wrote in the worker loop at W=1000, bench/RESULTS.md).
DROP INDEX events_type;
