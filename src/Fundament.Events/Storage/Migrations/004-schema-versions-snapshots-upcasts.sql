-- an event's schema version, each stream's latest snapshot, declarative upcasts per event type
ALTER TABLE events_events ADD COLUMN schema_version INTEGER NOT NULL DEFAULT 1;

CREATE TABLE events_snapshots (
    stream TEXT NOT NULL PRIMARY KEY,
    version BIGINT NOT NULL,
    data TEXT NOT NULL,
    -- UTF-8 bytes of data, counted against the storedBytes quota of recorded_by
    bytes BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    recorded_by TEXT NULL);

CREATE INDEX events_snapshots_recorded_by ON events_snapshots (recorded_by);

-- steps: JSON, one step per schema version from 1 (step i upgrades version i to i + 1)
CREATE TABLE events_upcasts (
    type TEXT NOT NULL PRIMARY KEY,
    steps TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NULL);
