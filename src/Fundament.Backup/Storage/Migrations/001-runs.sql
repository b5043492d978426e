-- every scheduled (or requested) backup, for the API, the staleness metric and the alert
CREATE TABLE backup_runs (
    id TEXT NOT NULL PRIMARY KEY,
    job_id TEXT NULL,
    location TEXT NOT NULL,
    name TEXT NULL,
    requested_by TEXT NULL,
    node TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT NULL,
    outcome TEXT NOT NULL,
    verified {bool} NULL,
    objects BIGINT NULL,
    bytes BIGINT NULL,
    pruned INTEGER NULL,
    error TEXT NULL);
CREATE INDEX ix_backup_runs_started ON backup_runs (started_at);
CREATE INDEX ix_backup_runs_outcome ON backup_runs (outcome, finished_at);
