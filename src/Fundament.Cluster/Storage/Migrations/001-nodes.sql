-- cluster membership: one row per node, kept fresh by its heartbeat
CREATE TABLE cluster_nodes (
    id TEXT NOT NULL PRIMARY KEY,
    host TEXT NOT NULL,
    roles TEXT NOT NULL,
    version TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    stopped_at BIGINT NULL);
