-- rate-limit and CORS policies, change index
CREATE TABLE gateway_policies (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    definition {json} NOT NULL,
    version BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (kind, name));

CREATE TABLE gateway_policy_index (
    id INTEGER NOT NULL PRIMARY KEY,
    value BIGINT NOT NULL);
INSERT INTO gateway_policy_index (id, value) VALUES (1, 0);
