-- quota overrides per role and per principal
CREATE TABLE identity_quotas (
    scope TEXT NOT NULL,
    subject TEXT NOT NULL,
    quota TEXT NOT NULL,
    quota_limit BIGINT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (scope, subject, quota));
