-- second factors: TOTP secrets (envelope-encrypted), single-use recovery codes (hashed), login challenges, roles that require MFA
CREATE TABLE identity_mfa_totp (
    user_id TEXT NOT NULL PRIMARY KEY REFERENCES identity_users (id) ON DELETE CASCADE,
    secret {blob} NOT NULL,
    confirmed_at BIGINT NULL,
    last_step BIGINT NOT NULL,
    created_at BIGINT NOT NULL);

CREATE TABLE identity_mfa_recovery_codes (
    user_id TEXT NOT NULL REFERENCES identity_users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at BIGINT NULL,
    PRIMARY KEY (user_id, code_hash));

CREATE TABLE identity_mfa_challenges (
    token_hash TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES identity_users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    attempts INTEGER NOT NULL);
CREATE INDEX ix_identity_mfa_challenges_expires ON identity_mfa_challenges (expires_at);

CREATE TABLE identity_role_mfa (
    role TEXT NOT NULL PRIMARY KEY REFERENCES identity_roles (name) ON DELETE CASCADE,
    required_at BIGINT NOT NULL,
    required_by TEXT NULL);
