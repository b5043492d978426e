-- entries, history, schemas, change index
CREATE TABLE config_entries (
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    key TEXT NOT NULL,
    value {json} NOT NULL,
    version INTEGER NOT NULL,
    change_index BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (service, environment, key));

CREATE TABLE config_history (
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    key TEXT NOT NULL,
    version INTEGER NOT NULL,
    value {json} NULL,
    change TEXT NOT NULL,
    change_index BIGINT NOT NULL,
    changed_at BIGINT NOT NULL,
    changed_by TEXT NOT NULL,
    PRIMARY KEY (service, environment, key, version));
CREATE INDEX ix_config_history_scope ON config_history (service, environment, change_index);

CREATE TABLE config_schemas (
    key_prefix TEXT NOT NULL PRIMARY KEY,
    schema {json} NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL);

CREATE TABLE config_index (
    id INTEGER NOT NULL PRIMARY KEY,
    value BIGINT NOT NULL);
INSERT INTO config_index (id, value) VALUES (1, 0);
