-- one finisher per upload: a claim with its holder and expiry
ALTER TABLE media_uploads ADD COLUMN finishing_until BIGINT NULL;
ALTER TABLE media_uploads ADD COLUMN finishing_by TEXT NULL;
