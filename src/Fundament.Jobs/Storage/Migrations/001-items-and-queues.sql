-- items and queues
CREATE TABLE jobs_items (
    id TEXT NOT NULL PRIMARY KEY,
    type TEXT NOT NULL,
    payload TEXT NOT NULL,
    priority INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    progress INTEGER NOT NULL,
    cancel_requested {bool} NOT NULL,
    idempotency_key TEXT NULL,
    run_at BIGINT NOT NULL,
    lease_owner TEXT NULL,
    lease_until BIGINT NULL,
    last_error TEXT NULL,
    created_at BIGINT NOT NULL,
    started_at BIGINT NULL,
    finished_at BIGINT NULL);
CREATE INDEX ix_jobs_items_due ON jobs_items (type, state, priority, run_at);
CREATE INDEX ix_jobs_items_lease ON jobs_items (state, lease_until);
CREATE UNIQUE INDEX ux_jobs_items_idempotency ON jobs_items (idempotency_key);

CREATE TABLE jobs_queues (
    type TEXT NOT NULL PRIMARY KEY,
    paused {bool} NOT NULL,
    updated_at BIGINT NOT NULL);
