using System.Security.Cryptography;
using Dapper;

namespace Fundament.Core.Keys;

/// <summary>
/// Re-wraps one column of envelopes under the current master key. Rows are streamed on one
/// connection and updated on another, so memory stays flat however many there are; each update is
/// conditional on the old bytes, so a row changed meanwhile (destroyed, rotated) is left to its
/// writer; a row that cannot be unwrapped is counted, not fatal, so one bad item does not stop the
/// rotation of everything else.
/// </summary>
public static class EnvelopeColumn
{
    /// <param name="table">Table name (a constant of the calling module, never input).</param>
    /// <param name="keys">Primary key columns.</param>
    /// <param name="column">The envelope column.</param>
    /// <param name="where">Extra SQL condition on the rows to consider, or null.</param>
    public static async Task<RewrapResult> RewrapAsync(
        IDatabase database, EnvelopeEncryption encryption, string table, string[] keys, string column, string? where, CancellationToken cancellationToken)
    {
        var filter = where is null ? "" : $" AND ({where})";
        var match = string.Join(" AND ", keys.Select((k, i) => $"{k} = @k{i}"));
        await using var reader = await database.OpenAsync(cancellationToken);
        await using var writer = await database.OpenAsync(cancellationToken);
        var rewrapped = 0;
        var failed = 0;
        var rows = reader.QueryUnbufferedAsync($"SELECT {string.Join(", ", keys)}, {column} AS envelope FROM {table} WHERE {column} IS NOT NULL{filter}");
        await foreach (IDictionary<string, object> row in rows.WithCancellation(cancellationToken))
        {
            var envelope = (byte[])row["envelope"];
            if (EnvelopeEncryption.KeyIdOf(envelope) == encryption.CurrentKeyId)
            {
                continue;
            }
            byte[] next;
            try
            {
                next = encryption.Rewrap(envelope);
            }
            catch (CryptographicException)
            {
                failed++;
                continue;
            }
            var args = new DynamicParameters();
            for (var i = 0; i < keys.Length; i++)
            {
                args.Add($"k{i}", row.Values.ElementAt(i));
            }
            args.Add("next", next);
            args.Add("old", envelope);
            rewrapped += await writer.ExecuteAsync(new CommandDefinition(
                $"UPDATE {table} SET {column} = @next WHERE {match} AND {column} = @old", args, cancellationToken: cancellationToken));
        }
        return new RewrapResult(rewrapped, failed);
    }

    /// <summary>The master key ids a sample of up to <paramref name="sample"/> envelopes of the column was wrapped with.</summary>
    public static async Task<IReadOnlyList<string>> KeyIdsAsync(IDatabase database, string table, string column, int sample, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var envelopes = await connection.QueryAsync<byte[]>(new CommandDefinition(
            $"SELECT {column} FROM {table} WHERE {column} IS NOT NULL LIMIT {sample}", cancellationToken: cancellationToken));
        return envelopes.Select(e => EnvelopeEncryption.KeyIdOf(e)).OfType<string>().Distinct(StringComparer.Ordinal).ToList();
    }
}

/// <summary>What a re-wrap did: envelopes moved to the current key, and envelopes that could not be unwrapped.</summary>
public sealed record RewrapResult(int Rewrapped, int Failed)
{
    /// <summary>Both results together (a holder with two encrypted columns).</summary>
    public RewrapResult Plus(RewrapResult other) => new(Rewrapped + other.Rewrapped, Failed + other.Failed);
}
