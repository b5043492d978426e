-- users, roles, sessions, clients, api keys, signing keys, password resets
CREATE TABLE identity_roles (
    name TEXT NOT NULL PRIMARY KEY,
    description TEXT NULL,
    permissions {json} NOT NULL,
    builtin {bool} NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL);

CREATE TABLE identity_users (
    id TEXT NOT NULL PRIMARY KEY,
    username TEXT NOT NULL,
    username_normalized TEXT NOT NULL UNIQUE,
    email TEXT NULL,
    email_normalized TEXT NULL,
    password_hash TEXT NOT NULL,
    disabled {bool} NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    password_changed_at BIGINT NOT NULL);
CREATE INDEX ix_identity_users_email ON identity_users (email_normalized);

CREATE TABLE identity_user_roles (
    user_id TEXT NOT NULL REFERENCES identity_users (id) ON DELETE CASCADE,
    role TEXT NOT NULL REFERENCES identity_roles (name) ON DELETE CASCADE,
    PRIMARY KEY (user_id, role));
CREATE INDEX ix_identity_user_roles_role ON identity_user_roles (role);

CREATE TABLE identity_login_throttle (
    username_normalized TEXT NOT NULL PRIMARY KEY,
    failures INTEGER NOT NULL,
    lockouts INTEGER NOT NULL,
    locked_until BIGINT NULL,
    last_failure_at BIGINT NOT NULL);

CREATE TABLE identity_sessions (
    id TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES identity_users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT NULL,
    revoked_reason TEXT NULL,
    source_ip TEXT NULL,
    user_agent TEXT NULL);
CREATE INDEX ix_identity_sessions_user ON identity_sessions (user_id);

CREATE TABLE identity_refresh_tokens (
    token_hash TEXT NOT NULL PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES identity_sessions (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT NULL);
CREATE INDEX ix_identity_refresh_tokens_session ON identity_refresh_tokens (session_id);

CREATE TABLE identity_clients (
    id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    name_normalized TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    roles {json} NOT NULL,
    disabled {bool} NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NULL,
    secret_rotated_at BIGINT NOT NULL);

CREATE TABLE identity_api_keys (
    id TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES identity_users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    roles {json} NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NULL,
    revoked_at BIGINT NULL,
    last_used_at BIGINT NULL);
CREATE INDEX ix_identity_api_keys_user ON identity_api_keys (user_id);

CREATE TABLE identity_signing_keys (
    kid TEXT NOT NULL PRIMARY KEY,
    algorithm TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    private_key {blob} NOT NULL,
    created_at BIGINT NOT NULL,
    activates_at BIGINT NOT NULL,
    retires_at BIGINT NULL,
    expires_at BIGINT NULL);

CREATE TABLE identity_password_resets (
    token_hash TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES identity_users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT NULL);
CREATE INDEX ix_identity_password_resets_user ON identity_password_resets (user_id);
