-- integrity events
CREATE TABLE vault_integrity_events (
    id TEXT NOT NULL PRIMARY KEY,
    path TEXT NOT NULL,
    version INTEGER NULL,
    at BIGINT NOT NULL);
CREATE INDEX ix_vault_integrity_events_at ON vault_integrity_events (at);
