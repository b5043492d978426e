-- route claims
CREATE TABLE registry_route_claims (
    path_prefix TEXT NOT NULL PRIMARY KEY,
    service TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL);
CREATE INDEX ix_registry_route_claims_service ON registry_route_claims (service);
