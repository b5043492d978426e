using Fundament.Storage;

namespace Fundament.Audit;

internal sealed class AuditMigrations : IMigrationSource
{
    public string Module => "audit";

    public IReadOnlyList<Migration> Migrations { get; } =
    [
        new(1, "entries and chain head", """
            CREATE TABLE audit_entries (
                seq BIGINT NOT NULL PRIMARY KEY,
                id TEXT NOT NULL,
                at BIGINT NOT NULL,
                actor TEXT NOT NULL,
                actor_name TEXT NULL,
                action TEXT NOT NULL,
                target TEXT NULL,
                outcome TEXT NOT NULL,
                source_ip TEXT NULL,
                details {json} NULL,
                prev_hash TEXT NOT NULL,
                hash TEXT NOT NULL);
            CREATE INDEX ix_audit_entries_at ON audit_entries (at);
            CREATE INDEX ix_audit_entries_action ON audit_entries (action, seq);
            CREATE INDEX ix_audit_entries_actor ON audit_entries (actor, seq);
            CREATE INDEX ix_audit_entries_target ON audit_entries (target, seq);
            CREATE TABLE audit_chain (
                id INTEGER NOT NULL PRIMARY KEY,
                head_seq BIGINT NOT NULL,
                head_hash TEXT NOT NULL,
                chain_key {blob} NOT NULL);
            """),
        new(2, "pending entries (written in the change's transaction, chained afterwards), authenticated chain head", """
            CREATE TABLE audit_pending (
                id TEXT NOT NULL PRIMARY KEY,
                at BIGINT NOT NULL,
                actor TEXT NOT NULL,
                actor_name TEXT NULL,
                action TEXT NOT NULL,
                target TEXT NULL,
                outcome TEXT NOT NULL,
                source_ip TEXT NULL,
                details {json} NULL,
                mac TEXT NOT NULL);
            CREATE INDEX ix_audit_pending_at ON audit_pending (at, id);
            ALTER TABLE audit_chain ADD COLUMN head_mac TEXT NULL;
            """),
    ];
}
