-- GPU pools and the placement decision log
CREATE TABLE gpu_pools (
    name TEXT NOT NULL PRIMARY KEY,
    spec {json} NOT NULL,
    created_by TEXT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL);
CREATE TABLE gpu_decisions (
    id TEXT NOT NULL PRIMARY KEY,
    pool TEXT NOT NULL,
    at BIGINT NOT NULL,
    chosen {json} NULL,
    instance_id TEXT NULL,
    terminated_at BIGINT NULL,
    rejected {json} NOT NULL,
    stopped TEXT NULL,
    forecast_micros BIGINT NOT NULL,
    requested_by TEXT NULL);
CREATE INDEX ix_gpu_decisions_pool ON gpu_decisions (pool, id);
