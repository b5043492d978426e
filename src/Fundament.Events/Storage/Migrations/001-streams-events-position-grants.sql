-- streams, events, the commit-ordered position, stream grants
CREATE TABLE events_streams (
    stream TEXT NOT NULL PRIMARY KEY,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL);

CREATE TABLE events_events (
    position BIGINT NOT NULL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    stream TEXT NOT NULL,
    version BIGINT NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    metadata TEXT NULL,
    recorded_at BIGINT NOT NULL,
    UNIQUE (stream, version));

CREATE INDEX events_events_type ON events_events (type, position);

-- One row: the last position handed out. Appends lock it first and hold it to commit, so
-- positions become visible in order and a reader never passes one a transaction may still fill.
CREATE TABLE events_head (
    id INTEGER NOT NULL PRIMARY KEY,
    position BIGINT NOT NULL);

INSERT INTO events_head (id, position) VALUES (1, 0);

CREATE TABLE events_grants (
    id TEXT NOT NULL PRIMARY KEY,
    principal TEXT NOT NULL,
    stream_prefix TEXT NOT NULL,
    capabilities TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NULL);

CREATE INDEX events_grants_principal ON events_grants (principal);
