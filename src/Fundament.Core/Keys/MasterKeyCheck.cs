using Dapper;

namespace Fundament.Core.Keys;

/// <summary>
/// Refuses a master key the database was not sealed with. The first node to start records the id
/// of its key (<see cref="MasterKey.Id"/>: a truncated SHA-256 of the key under its own label, the
/// value envelopes already carry, never the key) in <c>fundament_metadata</c>; every later start
/// compares. A node whose current key differs, and whose
/// <c>Fundament:PreviousMasterKeys</c> do not hold the recorded one either, stops with exit code 2
/// (on a database from before this check, the first start compares with the key ids of what is
/// already encrypted instead)
/// before it could wrap a secret nobody else can open. A node that holds the recorded key as a
/// previous one is mid-rotation: it records its current key, and from then on a node still on the
/// old key alone is refused.
/// </summary>
internal sealed partial class MasterKeyCheck(IDatabase database, MasterKeyRing ring, IEnumerable<IEnvelopeHolder> holders, TimeProvider time, ILogger<MasterKeyCheck> logger)
{
    internal const string Name = "master_key_id";

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        await using var connection = await database.OpenAsync(cancellationToken);
        var sealedWith = await connection.ExecuteScalarAsync<string>(new CommandDefinition(
            "SELECT value FROM fundament_metadata WHERE name = @name", new { name = Name }, cancellationToken: cancellationToken));
        if (sealedWith is null)
        {
            // Nothing recorded yet: a new database, or one from before this check. What is already encrypted says
            // which key it is: refused only when this node holds none of the keys found (an item a past re-wrap
            // could not move may still name a key long gone, and must not lock every node out).
            var found = new List<(string Holder, string Id)>();
            foreach (var holder in holders)
            {
                found.AddRange((await holder.SampleKeyIdsAsync(cancellationToken)).Select(id => (holder.Name, id)));
            }
            if (found.Count > 0 && !found.Any(f => ring.TryGet(f.Id, out _)))
            {
                var (name, id) = found[0];
                throw new Hosting.StartupException(
                    $"Fundament:MasterKey (or Fundament:MasterKeyFile) is not the key this database was sealed with: what it holds ({name}) is encrypted under key id {id}, " +
                    $"this node's key has id {ring.Current.Id}, and Fundament:PreviousMasterKeys does not hold key {id} either. Every node must be given the same master key.");
            }
            foreach (var (name, id) in found.Where(f => !ring.TryGet(f.Id, out _)))
            {
                LogUnknownKey(logger, name, id);
            }
        }
        await connection.ExecuteAsync(new CommandDefinition(
            "INSERT INTO fundament_metadata (name, value, updated_at) VALUES (@name, @value, @now) ON CONFLICT (name) DO NOTHING",
            new { name = Name, value = ring.Current.Id, now }, cancellationToken: cancellationToken));
        var recorded = await connection.ExecuteScalarAsync<string>(new CommandDefinition(
            "SELECT value FROM fundament_metadata WHERE name = @name", new { name = Name }, cancellationToken: cancellationToken));
        if (recorded == ring.Current.Id)
        {
            return;
        }
        if (recorded is not null && ring.TryGet(recorded, out _))
        {
            // Rotation: only move forward from the key this node also holds.
            await connection.ExecuteAsync(new CommandDefinition(
                "UPDATE fundament_metadata SET value = @value, updated_at = @now WHERE name = @name AND value = @recorded",
                new { name = Name, value = ring.Current.Id, recorded, now }, cancellationToken: cancellationToken));
            LogRotated(logger, recorded, ring.Current.Id);
            return;
        }
        throw new Hosting.StartupException(
            $"Fundament:MasterKey (or Fundament:MasterKeyFile) is not the key this database was sealed with: the database records key id {recorded}, " +
            $"this node's key has id {ring.Current.Id}, and Fundament:PreviousMasterKeys does not hold key {recorded} either. " +
            "Every node must be given the same master key; with the wrong one, nothing already stored can be decrypted and anything new could be read by no other node.");
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Some {Holder} are encrypted under master key {KeyId}, which this node does not hold; they cannot be read until that key is given in Fundament:PreviousMasterKeys")]
    private static partial void LogUnknownKey(ILogger logger, string holder, string keyId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Master key rotation: the database was sealed with key {Previous}; this node records its current key {Current}. Nodes given only the old key will now refuse to start")]
    private static partial void LogRotated(ILogger logger, string previous, string current);
}
