using Dapper;
using Fundament.Core.Quotas;

namespace Fundament.Media;

/// <summary>
/// What media counts against a principal's quotas: the bytes and number of assets it owns (trashed
/// and archived ones too, until purged), plus the declared length of its unfinished tus uploads,
/// which are reserved when the upload is created so that a finished upload never goes over.
/// </summary>
internal sealed class MediaQuotaMeter(string quota, IDatabase database, TimeProvider time) : IQuotaMeter
{
    public string Quota => quota;

    public async Task<long> UsedAsync(string actor, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var sql = quota switch
        {
            Fundament.Core.Quotas.Quota.StoredBytes => """
                SELECT (SELECT COALESCE(SUM(size), 0) FROM media_assets WHERE owner = @actor)
                     + (SELECT COALESCE(SUM(length), 0) FROM media_uploads WHERE owner = @actor AND asset_id IS NULL AND expires_at > @now)
                """,
            Fundament.Core.Quotas.Quota.Assets => "SELECT COUNT(*) FROM media_assets WHERE owner = @actor",
            Fundament.Core.Quotas.Quota.PendingUploads => "SELECT COUNT(*) FROM media_uploads WHERE owner = @actor AND asset_id IS NULL AND expires_at > @now",
            _ => throw new InvalidOperationException($"media does not measure {quota}"),
        };
        return await connection.ExecuteScalarAsync<long>(new CommandDefinition(sql, new { actor, now }, cancellationToken: cancellationToken));
    }

    /// <summary>One meter per quota (added, not TryAdd'ed: they share an implementation type).</summary>
    public static void Register(IServiceCollection services)
    {
        foreach (var quota in new[] { Fundament.Core.Quotas.Quota.StoredBytes, Fundament.Core.Quotas.Quota.Assets, Fundament.Core.Quotas.Quota.PendingUploads })
        {
            services.AddSingleton<IQuotaMeter>(sp => new MediaQuotaMeter(quota, sp.GetRequiredService<IDatabase>(), sp.GetRequiredService<TimeProvider>()));
        }
    }
}
