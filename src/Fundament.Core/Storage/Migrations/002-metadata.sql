-- platform metadata (the master key check value)
CREATE TABLE fundament_metadata (
    name TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL);
