-- entries and chain head
CREATE TABLE audit_entries (
    seq BIGINT NOT NULL PRIMARY KEY,
    id TEXT NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    actor_name TEXT NULL,
    action TEXT NOT NULL,
    target TEXT NULL,
    outcome TEXT NOT NULL,
    source_ip TEXT NULL,
    details {json} NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL);
CREATE INDEX ix_audit_entries_at ON audit_entries (at);
CREATE INDEX ix_audit_entries_action ON audit_entries (action, seq);
CREATE INDEX ix_audit_entries_actor ON audit_entries (actor, seq);
CREATE INDEX ix_audit_entries_target ON audit_entries (target, seq);
CREATE TABLE audit_chain (
    id INTEGER NOT NULL PRIMARY KEY,
    head_seq BIGINT NOT NULL,
    head_hash TEXT NOT NULL,
    chain_key {blob} NOT NULL);
