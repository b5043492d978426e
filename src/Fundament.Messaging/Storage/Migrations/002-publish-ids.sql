-- Message ids published through a broker (the RabbitMQ transport): a re-send within the dedupe
-- window is answered as a duplicate without publishing again. The embedded transport dedupes by
-- messaging_messages' unique key instead. seq is the sequence the first publish was given.
CREATE TABLE messaging_publish_ids (
    topic TEXT NOT NULL,
    id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    published_at BIGINT NOT NULL,
    PRIMARY KEY (topic, id));

CREATE INDEX messaging_publish_ids_published ON messaging_publish_ids (published_at);
