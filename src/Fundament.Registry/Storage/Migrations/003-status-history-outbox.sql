-- The status history is also the outbox of the registry's domain events (instance.registered,
-- instance.status_changed, instance.deregistered): a row is written with its change and published
-- = 0, then published on the bus and marked. Rows from before are history only. audience is the
-- principal that registered the instance (gone with the instance row once it is deregistered).
ALTER TABLE registry_status_history ADD COLUMN published INTEGER NOT NULL DEFAULT 1;
ALTER TABLE registry_status_history ADD COLUMN audience TEXT NULL;
CREATE INDEX ix_registry_status_history_unpublished ON registry_status_history (at, id) WHERE published = 0;
