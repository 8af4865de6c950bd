-- Mirrors migrations/sqlite/016_pool_clock.sql: when the pool was last noted alive, by any replica.
CREATE TABLE pool_clock (
    id       integer PRIMARY KEY CHECK (id = 1),
    alive_at double precision
);
INSERT INTO pool_clock (id, alive_at) VALUES (1, NULL);
