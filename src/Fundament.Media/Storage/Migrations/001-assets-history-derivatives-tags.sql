-- assets, history, derivatives, tags, shares, uploads, policies
CREATE TABLE media_assets (
    id TEXT NOT NULL PRIMARY KEY,
    owner TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    kind TEXT NOT NULL,
    mime TEXT NOT NULL,
    filename TEXT NULL,
    title TEXT NULL,
    tags TEXT NOT NULL,
    state TEXT NOT NULL,
    tier TEXT NOT NULL,
    legal_hold {bool} NOT NULL,
    failure_reason TEXT NULL,
    metadata {json} NULL,
    taken_at BIGINT NULL,
    camera TEXT NULL,
    search TEXT NOT NULL,
    meta_search TEXT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    processed_at BIGINT NULL,
    processing_ms BIGINT NULL,
    trashed_at BIGINT NULL,
    previous_state TEXT NULL,
    pending_event TEXT NULL);
CREATE INDEX ix_media_assets_pending ON media_assets (pending_event, updated_at);
CREATE UNIQUE INDEX ux_media_assets_owner_sha ON media_assets (owner, sha256);
CREATE INDEX ix_media_assets_sha ON media_assets (sha256, tier);
CREATE INDEX ix_media_assets_state ON media_assets (state, kind);
CREATE INDEX ix_media_assets_owner ON media_assets (owner, id);

CREATE TABLE media_tags (
    asset_id TEXT NOT NULL REFERENCES media_assets (id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (asset_id, tag));
CREATE INDEX ix_media_tags_tag ON media_tags (tag);

CREATE TABLE media_shares (
    asset_id TEXT NOT NULL REFERENCES media_assets (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    PRIMARY KEY (asset_id, user_id));
CREATE INDEX ix_media_shares_user ON media_shares (user_id);

CREATE TABLE media_history (
    id TEXT NOT NULL PRIMARY KEY,
    asset_id TEXT NOT NULL REFERENCES media_assets (id) ON DELETE CASCADE,
    at BIGINT NOT NULL,
    from_state TEXT NULL,
    to_state TEXT NOT NULL,
    actor TEXT NULL,
    reason TEXT NULL);
CREATE INDEX ix_media_history_asset ON media_history (asset_id, at);

CREATE TABLE media_derivatives (
    asset_id TEXT NOT NULL REFERENCES media_assets (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    blob_key TEXT NOT NULL,
    mime TEXT NOT NULL,
    width INTEGER NULL,
    height INTEGER NULL,
    size BIGINT NOT NULL,
    PRIMARY KEY (asset_id, name));

CREATE TABLE media_uploads (
    id TEXT NOT NULL PRIMARY KEY,
    owner TEXT NOT NULL,
    length BIGINT NOT NULL,
    upload_offset BIGINT NOT NULL,
    filename TEXT NULL,
    title TEXT NULL,
    tags TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    asset_id TEXT NULL);
CREATE INDEX ix_media_uploads_expires ON media_uploads (expires_at);

CREATE TABLE media_policies (
    id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NULL,
    tag TEXT NULL,
    archive_after_days INTEGER NULL,
    trash_after_days INTEGER NULL,
    enabled {bool} NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL);
