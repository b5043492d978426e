-- rules, channels, alerts
CREATE TABLE alert_rules (
    id TEXT NOT NULL PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    enabled {bool} NOT NULL,
    for_ms BIGINT NOT NULL,
    severity TEXT NOT NULL,
    service TEXT NULL,
    builtin {bool} NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL);

CREATE TABLE alert_channels (
    id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    secret {blob} NULL,
    enabled {bool} NOT NULL,
    created_at BIGINT NOT NULL);

CREATE TABLE alerts (
    id TEXT NOT NULL PRIMARY KEY,
    rule_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    subject TEXT NOT NULL,
    state TEXT NOT NULL,
    severity TEXT NOT NULL,
    summary TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    fired_at BIGINT NULL,
    resolved_at BIGINT NULL,
    notified_state TEXT NULL,
    updated_at BIGINT NOT NULL);
CREATE UNIQUE INDEX ux_alerts_open ON alerts (fingerprint) WHERE state <> 'resolved';
CREATE INDEX ix_alerts_state ON alerts (state, updated_at);
