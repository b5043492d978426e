-- upload segments in the hot store, so any media replica can continue a tus upload
CREATE TABLE media_upload_segments (
    blob_key TEXT NOT NULL PRIMARY KEY,
    upload_id TEXT NOT NULL,
    start_offset BIGINT NOT NULL,
    length BIGINT NOT NULL,
    recorded {bool} NOT NULL,
    created_at BIGINT NOT NULL);
CREATE INDEX ix_media_upload_segments_upload ON media_upload_segments (upload_id, start_offset);
