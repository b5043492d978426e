-- webhook subscriptions
CREATE TABLE delivery_webhooks (
    id TEXT NOT NULL PRIMARY KEY,
    owner TEXT NOT NULL,
    all_owners {bool} NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret {blob} NOT NULL,
    created_at BIGINT NOT NULL);
CREATE INDEX ix_delivery_webhooks_owner ON delivery_webhooks (owner);
