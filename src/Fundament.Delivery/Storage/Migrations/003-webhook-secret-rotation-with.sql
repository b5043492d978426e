-- webhook secret rotation with overlap
ALTER TABLE delivery_webhooks ADD COLUMN previous_secret {blob} NULL;
ALTER TABLE delivery_webhooks ADD COLUMN previous_until BIGINT NULL;
