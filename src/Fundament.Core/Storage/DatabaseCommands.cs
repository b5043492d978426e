using System.Collections.Concurrent;
using System.Data;
using Dapper;

namespace Fundament.Core.Storage;

/// <summary>
/// Dapper commands whose SQL may hold dialect tokens (<c>{for_update}</c>, <c>{bool}</c> ...; see
/// <see cref="SqlDialect.Expand"/>): the seam expands them, callers never do. Expanded text is
/// remembered per statement, so a hot path pays the expansion once.
/// </summary>
public static class DatabaseCommands
{
    private static readonly ConcurrentDictionary<(SqlDialect Dialect, string Sql), string> Expanded = new();

    public static CommandDefinition Command(this IDatabase database, string sql, object? parameters = null, IDbTransaction? transaction = null,
        CommandFlags flags = CommandFlags.Buffered, CancellationToken cancellationToken = default)
    {
        var text = sql.Contains('{', StringComparison.Ordinal)
            ? Expanded.GetOrAdd((database.Dialect, sql), static key => key.Dialect.Expand(key.Sql))
            : sql;
        return new CommandDefinition(text, parameters, transaction, flags: flags, cancellationToken: cancellationToken);
    }
}
