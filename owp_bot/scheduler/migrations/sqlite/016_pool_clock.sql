-- When the pool was last noted alive (by any process, every few seconds while it writes): at the first write after
-- a start, a longer gap is time the whole pool was down, which does not count against workers (operations.resume).
CREATE TABLE pool_clock (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    alive_at REAL
);
INSERT INTO pool_clock (id, alive_at) VALUES (1, NULL);
