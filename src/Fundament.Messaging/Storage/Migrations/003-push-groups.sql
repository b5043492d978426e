-- Push groups: the platform POSTs each message to push_url, signed with push_secret (envelope-encrypted),
-- instead of waiting for consumers to pull. Both NULL for a pull group.
ALTER TABLE messaging_groups ADD COLUMN push_url TEXT NULL;
ALTER TABLE messaging_groups ADD COLUMN push_secret {blob} NULL;
-- The push dispatcher lists push groups every poll: only those rows.
CREATE INDEX messaging_groups_push ON messaging_groups (topic, name) WHERE push_url IS NOT NULL;
