-- secrets, versions, policies
CREATE TABLE vault_secrets (
    path TEXT NOT NULL PRIMARY KEY,
    current_version INTEGER NOT NULL,
    max_versions INTEGER NOT NULL,
    rotate_every_ms BIGINT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL);

CREATE TABLE vault_secret_versions (
    path TEXT NOT NULL REFERENCES vault_secrets (path) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    ciphertext {blob} NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    deleted_at BIGINT NULL,
    destroyed_at BIGINT NULL,
    PRIMARY KEY (path, version));

CREATE TABLE vault_policies (
    id TEXT NOT NULL PRIMARY KEY,
    principal TEXT NOT NULL,
    path_prefix TEXT NOT NULL,
    capabilities {json} NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NULL);
CREATE INDEX ix_vault_policies_principal ON vault_policies (principal);
