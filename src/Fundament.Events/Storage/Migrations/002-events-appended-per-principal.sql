-- events appended per principal (the storedEvents quota)
CREATE TABLE events_usage (
    actor TEXT NOT NULL PRIMARY KEY,
    events BIGINT NOT NULL);
