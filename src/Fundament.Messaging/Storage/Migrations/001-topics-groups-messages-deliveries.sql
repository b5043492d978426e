-- messages, consumer groups, their deliveries and dead letters, topic grants
-- Messages as published: the id is unique per topic (a re-sent id is a duplicate, dropped) and
-- seq, numbered by the database, is the order consumers see.
CREATE TABLE messaging_messages (
    seq {identity},
    topic TEXT NOT NULL,
    id TEXT NOT NULL,
    msg_key TEXT NULL,
    body TEXT NOT NULL,
    headers TEXT NULL,
    bytes INTEGER NOT NULL,
    published_at BIGINT NOT NULL,
    published_by TEXT NULL,
    UNIQUE (topic, id));

CREATE INDEX messaging_messages_published ON messaging_messages (published_at);

-- Consumer groups: every message published to the topic after a group exists is delivered to it
-- once (to one of its consumers). ordered and dead_letter are 0 or 1.
CREATE TABLE messaging_groups (
    topic TEXT NOT NULL,
    name TEXT NOT NULL,
    max_attempts INTEGER NOT NULL,
    backoff_initial_ms BIGINT NOT NULL,
    backoff_max_ms BIGINT NOT NULL,
    ordered INTEGER NOT NULL,
    dead_letter INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NULL,
    PRIMARY KEY (topic, name));

CREATE INDEX messaging_groups_creator ON messaging_groups (created_by);

-- One row per message a group has not acknowledged: ready (deliverable from visible_at), leased
-- (until visible_at) or dead (a dead letter). An acknowledged message's row is deleted. In an
-- ordered group a row waits while an earlier row of its key exists, dead ones included: a key's
-- dead letters keep its order and hold back what follows until they are replayed or purged.
CREATE TABLE messaging_deliveries (
    topic TEXT NOT NULL,
    grp TEXT NOT NULL,
    seq BIGINT NOT NULL,
    msg_key TEXT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    lease_id TEXT NULL,
    visible_at BIGINT NOT NULL,
    first_failure_at BIGINT NULL,
    last_failure_at BIGINT NULL,
    reason TEXT NULL,
    exception_type TEXT NULL,
    dead_at BIGINT NULL,
    PRIMARY KEY (topic, grp, seq));

-- A lease id is '<pull>.<seq>', so settling one finds its row by the key, without an index of its own.
-- Pulls walk a group's rows that are not dead letters in sequence order (and dead-letter pages the others),
-- so neither a long backlog nor a long dead-letter queue makes the other slow.
CREATE INDEX messaging_deliveries_pending ON messaging_deliveries (topic, grp, seq) WHERE state <> 'dead';
CREATE INDEX messaging_deliveries_dead_seq ON messaging_deliveries (topic, grp, seq) WHERE state = 'dead';
CREATE INDEX messaging_deliveries_key ON messaging_deliveries (topic, grp, msg_key, seq) WHERE msg_key IS NOT NULL;
CREATE INDEX messaging_deliveries_seq ON messaging_deliveries (seq);
CREATE INDEX messaging_deliveries_dead ON messaging_deliveries (dead_at) WHERE state = 'dead';

-- One row per principal that created a group: creates lock it, so a limit cannot be raced past.
CREATE TABLE messaging_principals (
    actor TEXT NOT NULL PRIMARY KEY,
    groups_created BIGINT NOT NULL);

CREATE TABLE messaging_grants (
    id TEXT NOT NULL PRIMARY KEY,
    principal TEXT NOT NULL,
    topic_prefix TEXT NOT NULL,
    capabilities TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NULL);

CREATE INDEX messaging_grants_principal ON messaging_grants (principal);
