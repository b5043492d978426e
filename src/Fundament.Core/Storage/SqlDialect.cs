using Microsoft.Data.Sqlite;
using Npgsql;

namespace Fundament.Core.Storage;

/// <summary>
/// The few places SQL differs between SQLite and PostgreSQL. Module SQL is written once, portable,
/// with tokens (<c>{blob}</c>, <c>{bool}</c>, <c>{json}</c>, <c>{identity}</c>, <c>{for_update}</c>) this class expands.
/// What cannot be portable (a full-text index: FTS5 on SQLite, a tsvector on PostgreSQL) goes in
/// blocks that start with a line <c>--@sqlite</c> or <c>--@postgres</c> and end at the next such line
/// or <c>--@end</c>; only the engine's own blocks are kept.
/// </summary>
public abstract class SqlDialect
{
    public abstract string Name { get; }

    /// <summary>Column type for binary data.</summary>
    public abstract string Blob { get; }

    /// <summary>Column type for booleans. Compare with the literals TRUE/FALSE, which both engines accept.</summary>
    public abstract string Bool { get; }

    /// <summary>Column type for JSON documents stored as text.</summary>
    public abstract string Json { get; }

    /// <summary>
    /// A 64-bit primary key the database numbers itself, ascending (never reused on SQLite, a
    /// sequence on PostgreSQL): a column definition, <c>seq {identity}</c>.
    /// </summary>
    public abstract string Identity { get; }

    /// <summary>Row-lock suffix for SELECT; SQLite has no row locks (its writers are serialized).</summary>
    public abstract string ForUpdate { get; }

    /// <summary>Row-lock suffix that skips rows other transactions hold: work claiming across replicas.</summary>
    public abstract string SkipLocked { get; }

    public abstract bool IsUniqueViolation(Exception exception);

    /// <summary>
    /// "<paramref name="column"/> is one of the list in parameter <paramref name="parameter"/>": Dapper
    /// expands a list for SQLite, while PostgreSQL takes the array whole.
    /// </summary>
    public abstract string InList(string column, string parameter);

    /// <summary>
    /// "The JSON array of strings in <paramref name="column"/> (stored as text) holds the value of
    /// parameter <paramref name="parameter"/>": a filter the database applies, so paging stays in SQL.
    /// </summary>
    public abstract string JsonArrayContains(string column, string parameter);

    public string Expand(string sql) => KeepOwnBlocks(sql)
        .Replace("{blob}", Blob, StringComparison.Ordinal)
        .Replace("{bool}", Bool, StringComparison.Ordinal)
        .Replace("{json}", Json, StringComparison.Ordinal)
        .Replace("{identity}", Identity, StringComparison.Ordinal)
        .Replace("{for_update}", ForUpdate, StringComparison.Ordinal)
        .Replace("{skip_locked}", SkipLocked, StringComparison.Ordinal);

    private string KeepOwnBlocks(string sql)
    {
        if (!sql.Contains("--@", StringComparison.Ordinal))
        {
            return sql;
        }
        var kept = new System.Text.StringBuilder(sql.Length);
        var keep = true;
        foreach (var line in sql.Split('\n'))
        {
            var trimmed = line.Trim();
            if (trimmed.StartsWith("--@", StringComparison.Ordinal))
            {
                var block = trimmed[3..];
                keep = block == "end" || block == Name || (block == "postgresql" && Name == "postgres");
                if (block is not ("end" or "sqlite" or "postgres" or "postgresql"))
                {
                    throw new InvalidOperationException($"Unknown SQL block '{trimmed}': use --@sqlite, --@postgres or --@end.");
                }
                continue;
            }
            if (keep)
            {
                kept.Append(line).Append('\n');
            }
        }
        return kept.ToString();
    }

    public static SqlDialect Sqlite { get; } = new SqliteDialect();
    public static SqlDialect Postgres { get; } = new PostgresDialect();

    private sealed class SqliteDialect : SqlDialect
    {
        public override string Name => "sqlite";
        public override string Blob => "BLOB";
        public override string Bool => "INTEGER";
        public override string Json => "TEXT";
        public override string Identity => "INTEGER PRIMARY KEY AUTOINCREMENT";
        public override string ForUpdate => "";

        public override string SkipLocked => "";

        public override string InList(string column, string parameter) => $"{column} IN @{parameter}";

        public override string JsonArrayContains(string column, string parameter) =>
            $"EXISTS (SELECT 1 FROM json_each({column}) AS j WHERE j.value = @{parameter})";

        // SQLITE_CONSTRAINT_UNIQUE (2067) and SQLITE_CONSTRAINT_PRIMARYKEY (1555).
        public override bool IsUniqueViolation(Exception exception) =>
            exception is SqliteException { SqliteErrorCode: 19, SqliteExtendedErrorCode: 2067 or 1555 };
    }

    private sealed class PostgresDialect : SqlDialect
    {
        public override string Name => "postgres";
        public override string Blob => "BYTEA";
        public override string Bool => "BOOLEAN";
        public override string Json => "TEXT";
        public override string Identity => "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY";
        public override string ForUpdate => " FOR UPDATE";

        public override string SkipLocked => " FOR UPDATE SKIP LOCKED";

        public override string InList(string column, string parameter) => $"{column} = ANY(@{parameter})";

        public override string JsonArrayContains(string column, string parameter) =>
            $"EXISTS (SELECT 1 FROM jsonb_array_elements_text(CAST({column} AS jsonb)) AS j(value) WHERE j.value = @{parameter})";

        public override bool IsUniqueViolation(Exception exception) =>
            exception is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation };
    }
}
