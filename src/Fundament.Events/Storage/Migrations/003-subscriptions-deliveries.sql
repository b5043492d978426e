-- subscriptions: a filter over $all, how far it has dispatched, and its deliveries in flight or parked
CREATE TABLE events_subscriptions (
    name TEXT NOT NULL PRIMARY KEY,
    stream_prefix TEXT NULL,
    event_type TEXT NULL,
    mode TEXT NOT NULL,
    max_attempts INTEGER NOT NULL,
    -- Every matching event up to here has a delivery row or was acknowledged.
    dispatched BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NULL);

-- One row per event handed out and not yet acknowledged: leased (until visible_at), ready (to be
-- delivered again from visible_at) or parked. The key makes parking an event twice impossible.
CREATE TABLE events_deliveries (
    subscription TEXT NOT NULL,
    position BIGINT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    lease_id TEXT NULL,
    visible_at BIGINT NOT NULL,
    first_failure_at BIGINT NULL,
    last_failure_at BIGINT NULL,
    last_error TEXT NULL,
    parked_at BIGINT NULL,
    PRIMARY KEY (subscription, position));

CREATE INDEX events_deliveries_lease ON events_deliveries (lease_id);
