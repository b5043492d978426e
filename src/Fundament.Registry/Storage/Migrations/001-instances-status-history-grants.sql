-- instances, status history, grants, change index
CREATE TABLE registry_instances (
    id TEXT NOT NULL PRIMARY KEY,
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    address TEXT NOT NULL,
    port INTEGER NOT NULL,
    scheme TEXT NOT NULL,
    version TEXT NULL,
    tags {json} NOT NULL,
    metadata {json} NOT NULL,
    routes {json} NOT NULL,
    check_kind TEXT NOT NULL,
    check_path TEXT NULL,
    check_interval_ms BIGINT NULL,
    check_timeout_ms BIGINT NULL,
    ttl_ms BIGINT NULL,
    deregister_after_ms BIGINT NULL,
    status TEXT NOT NULL,
    output TEXT NULL,
    status_changed_at BIGINT NOT NULL,
    critical_since BIGINT NULL,
    last_heartbeat_at BIGINT NULL,
    next_check_at BIGINT NULL,
    lease_owner TEXT NULL,
    lease_until BIGINT NULL,
    registered_by TEXT NOT NULL,
    registered_at BIGINT NOT NULL,
    change_index BIGINT NOT NULL);
CREATE INDEX ix_registry_instances_service ON registry_instances (service);
CREATE INDEX ix_registry_instances_due ON registry_instances (next_check_at);

CREATE TABLE registry_status_history (
    id TEXT NOT NULL PRIMARY KEY,
    instance_id TEXT NOT NULL,
    service TEXT NOT NULL,
    at BIGINT NOT NULL,
    from_status TEXT NULL,
    to_status TEXT NOT NULL,
    output TEXT NULL);
CREATE INDEX ix_registry_status_history_instance ON registry_status_history (instance_id, at);

CREATE TABLE registry_grants (
    client_id TEXT NOT NULL,
    service TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, service));

CREATE TABLE registry_service_index (
    service TEXT NOT NULL PRIMARY KEY,
    change_index BIGINT NOT NULL);

CREATE TABLE registry_index (
    id INTEGER NOT NULL PRIMARY KEY,
    value BIGINT NOT NULL);
INSERT INTO registry_index (id, value) VALUES (1, 0);
