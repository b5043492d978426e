-- items and attempts
CREATE TABLE delivery_items (
    id TEXT NOT NULL PRIMARY KEY,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    event TEXT NOT NULL,
    subject TEXT NULL,
    payload TEXT NOT NULL,
    secret {blob} NULL,
    source TEXT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_owner TEXT NULL,
    lease_until BIGINT NULL,
    last_error TEXT NULL,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT NULL);
CREATE INDEX ix_delivery_items_due ON delivery_items (state, next_attempt_at);
CREATE INDEX ix_delivery_items_source ON delivery_items (source);

CREATE TABLE delivery_attempts (
    id TEXT NOT NULL PRIMARY KEY,
    item_id TEXT NOT NULL REFERENCES delivery_items (id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    at BIGINT NOT NULL,
    status_code INTEGER NULL,
    error TEXT NULL,
    duration_ms BIGINT NOT NULL);
CREATE INDEX ix_delivery_attempts_item ON delivery_attempts (item_id, attempt);
