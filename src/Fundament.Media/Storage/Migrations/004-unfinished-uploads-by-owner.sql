-- unfinished uploads by owner (the pendingUploads and storedBytes quotas)
CREATE INDEX ix_media_uploads_owner ON media_uploads (owner, asset_id);
