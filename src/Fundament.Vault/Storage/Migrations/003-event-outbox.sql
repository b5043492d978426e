-- The outbox of the vault's domain events (secret.created, secret.rotated): a row is written in the
-- transaction of the new version and deleted once the event is on the bus. Paths and versions
-- only: a secret's value never leaves the vault this way.
CREATE TABLE vault_event_outbox (
    id TEXT NOT NULL PRIMARY KEY,
    event TEXT NOT NULL,
    path TEXT NOT NULL,
    version INTEGER NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL);
