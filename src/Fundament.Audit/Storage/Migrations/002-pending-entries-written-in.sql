-- pending entries (written in the change's transaction, chained afterwards), authenticated chain head
CREATE TABLE audit_pending (
    id TEXT NOT NULL PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    actor_name TEXT NULL,
    action TEXT NOT NULL,
    target TEXT NULL,
    outcome TEXT NOT NULL,
    source_ip TEXT NULL,
    details {json} NULL,
    mac TEXT NOT NULL);
CREATE INDEX ix_audit_pending_at ON audit_pending (at, id);
ALTER TABLE audit_chain ADD COLUMN head_mac TEXT NULL;
