-- leases
CREATE TABLE fundament_leases (
    name TEXT NOT NULL PRIMARY KEY,
    owner TEXT NOT NULL,
    until_at BIGINT NOT NULL);
